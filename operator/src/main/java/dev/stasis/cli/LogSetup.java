package dev.stasis.cli;

import ch.qos.logback.classic.Level;
import ch.qos.logback.classic.LoggerContext;
import ch.qos.logback.classic.encoder.JsonEncoder;
import ch.qos.logback.classic.joran.JoranConfigurator;
import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.core.ConsoleAppender;
import ch.qos.logback.core.joran.spi.JoranException;
import org.slf4j.LoggerFactory;

/**
 * Where log lines go and how they look: one line per event on stderr, as text for people
 * (logback.xml, which every process starts with) or as one JSON object for a cluster's log search.
 * Both carry the line's MDC fields: the resource a line is about ({@code resource.namespace},
 * {@code resource.name}, {@code resource.uid}, {@code resource.kind}; JOSDK sets them while it
 * reconciles) and the node and attempt of the work ({@code node}, {@code attempt}).
 */
final class LogSetup {
  /** How lines look. */
  enum Format { json, text }

  private LogSetup() {}

  /** Replaces what this process logs and how. */
  static void apply(Format format, Level level) {
    LoggerContext context = (LoggerContext) LoggerFactory.getILoggerFactory();
    context.reset();
    if (format == Format.json) {
      json(context);
    } else {
      text(context);
    }
    context.getLogger(org.slf4j.Logger.ROOT_LOGGER_NAME).setLevel(level);
  }

  private static void text(LoggerContext context) {
    JoranConfigurator configurator = new JoranConfigurator();
    configurator.setContext(context);
    try {
      configurator.doConfigure(LogSetup.class.getResource("/logback.xml"));
    } catch (JoranException e) {
      throw new IllegalStateException("logback.xml in the jar does not configure logback: " + e.getMessage(), e);
    }
  }

  /** Logback's own JSON lines, without what a log search does not need (the context, sequence numbers). */
  private static void json(LoggerContext context) {
    JsonEncoder json = new JsonEncoder();
    json.setWithSequenceNumber(false);
    json.setWithNanoseconds(false);
    json.setWithContext(false);
    json.setWithMessage(false);
    json.setWithArguments(false);
    json.setWithFormattedMessage(true);
    json.setContext(context);
    json.start();
    ConsoleAppender<ILoggingEvent> stderr = new ConsoleAppender<>();
    stderr.setName("stderr");
    stderr.setTarget("System.err");
    stderr.setContext(context);
    stderr.setEncoder(json);
    stderr.start();
    context.getLogger(org.slf4j.Logger.ROOT_LOGGER_NAME).addAppender(stderr);
  }
}

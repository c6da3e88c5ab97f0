package dev.stasis.storage;

import java.io.IOException;

public class ObjectNotFoundException extends IOException {
  public ObjectNotFoundException(String uri) {
    super("no object at " + uri);
  }
}

package dev.stasis.criu;

import java.nio.ByteBuffer;

/** Just enough of the protobuf wire format to read CRIU's small service images. */
final class ProtobufReader {
  private final ByteBuffer buf;

  ProtobufReader(ByteBuffer buf) {
    this.buf = buf;
  }

  static int fieldNumber(int tag) {
    return tag >>> 3;
  }

  static int wireType(int tag) {
    return tag & 7;
  }

  boolean hasMore() {
    return buf.hasRemaining();
  }

  int readTag() {
    return (int) readVarint();
  }

  long readVarint() {
    long result = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      byte b = buf.get();
      result |= (long) (b & 0x7f) << shift;
      if ((b & 0x80) == 0) {
        return result;
      }
    }
    throw new IllegalStateException("varint longer than 10 bytes");
  }

  ProtobufReader readMessage() {
    int length = (int) readVarint();
    if (length < 0 || length > buf.remaining()) {
      throw new IllegalStateException("embedded message length " + length + " exceeds its container");
    }
    ByteBuffer slice = buf.slice().limit(length);
    buf.position(buf.position() + length);
    return new ProtobufReader(slice);
  }

  byte[] readBytes() {
    int length = (int) readVarint();
    if (length < 0 || length > buf.remaining()) {
      throw new IllegalStateException("field length " + length + " exceeds its container");
    }
    byte[] bytes = new byte[length];
    buf.get(bytes);
    return bytes;
  }

  void skip(int tag) {
    switch (wireType(tag)) {
      case 0 -> readVarint();
      case 1 -> buf.position(buf.position() + 8);
      case 2 -> readMessage();
      case 5 -> buf.position(buf.position() + 4);
      default -> throw new IllegalStateException("unsupported wire type " + wireType(tag));
    }
  }
}

package dev.stasis.archive;

import java.nio.file.attribute.PosixFilePermission;
import java.util.EnumSet;
import java.util.Set;

/** Converts between tar's octal mode bits (rwxrwxrwx = 0777) and Java's permission sets. */
final class PermissionBits {
  // PosixFilePermission's constants run from OWNER_READ (0400) down to OTHERS_EXECUTE (0001).
  private static final PosixFilePermission[] BY_BIT_FROM_0400 = PosixFilePermission.values();

  private PermissionBits() {}

  static int toMode(Set<PosixFilePermission> permissions) {
    int mode = 0;
    for (int i = 0; i < BY_BIT_FROM_0400.length; i++) {
      if (permissions.contains(BY_BIT_FROM_0400[i])) {
        mode |= 0400 >> i;
      }
    }
    return mode;
  }

  static Set<PosixFilePermission> toPermissions(int mode) {
    Set<PosixFilePermission> permissions = EnumSet.noneOf(PosixFilePermission.class);
    for (int i = 0; i < BY_BIT_FROM_0400.length; i++) {
      if ((mode & (0400 >> i)) != 0) {
        permissions.add(BY_BIT_FROM_0400[i]);
      }
    }
    return permissions;
  }
}

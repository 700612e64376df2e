package io.grpcshm.dsa;

import io.grpcshm.dsa.internal.Libc;
import java.nio.file.Path;

/** Opens a work-queue device node; a seam so tests can simulate EACCES, EBUSY and friends. */
@FunctionalInterface
interface DeviceOpener {
  /** Returns an fd, or -errno. */
  int open(Path node);

  DeviceOpener LIBC = node -> Libc.open(node.toString(), Libc.O_RDWR | Libc.O_CLOEXEC);
}

package io.grpcshm.internal.nativeio;

import java.io.IOException;

/** A failed system call: which call and which errno, so logs say exactly what the kernel said. */
public final class NativeException extends RuntimeException {
  private static final long serialVersionUID = 1L;
  private final int errno;

  public NativeException(String call, int errno) {
    super(call + " failed: errno " + errno + " (" + describe(errno) + ")");
    this.errno = errno;
  }

  public int errno() {
    return errno;
  }

  public IOException asIoException() {
    return new IOException(getMessage(), this);
  }

  private static String describe(int errno) {
    return switch (errno) {
      case 1 -> "EPERM";
      case 2 -> "ENOENT";
      case 4 -> "EINTR";
      case 9 -> "EBADF";
      case 11 -> "EAGAIN";
      case 12 -> "ENOMEM";
      case 13 -> "EACCES";
      case 22 -> "EINVAL";
      case 24 -> "EMFILE";
      case 32 -> "EPIPE";
      case 98 -> "EADDRINUSE";
      case 104 -> "ECONNRESET";
      case 110 -> "ETIMEDOUT";
      case 111 -> "ECONNREFUSED";
      default -> "errno " + errno;
    };
  }
}

package io.grpcshm.policy.internal;

/** A model artifact that cannot be used; the message names the problem (and line). */
public final class ModelFormatException extends IllegalArgumentException {
  private static final long serialVersionUID = 1L;

  public ModelFormatException(String message) {
    super(message);
  }
}

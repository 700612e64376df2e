package io.grpcshm.dsa.internal;

/**
 * One of the checks the DSA path makes on a host, whether it ran here, and what it found; the
 * host report prints them so a run without DSA says what it did not check.
 */
public record DsaCheck(String name, boolean ran, String outcome) {
  @Override
  public String toString() {
    return (ran ? "[ran]     " : "[not run] ") + name + ": " + outcome;
  }
}

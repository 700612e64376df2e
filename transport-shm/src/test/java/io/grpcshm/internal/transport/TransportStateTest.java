package io.grpcshm.internal.transport;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import io.grpcshm.internal.transport.ShmClientTransport.State;
import org.junit.jupiter.api.Test;

/** The client transport's lifecycle only moves forward along its documented edges. */
class TransportStateTest {
  @Test
  void legalTransitions() {
    assertEquals(State.READY, State.NEW.to(State.HANDSHAKING).to(State.READY));
    assertEquals(State.TERMINATED, State.READY.to(State.SHUTDOWN).to(State.TERMINATED));
    assertEquals(State.SHUTDOWN, State.HANDSHAKING.to(State.SHUTDOWN));
    assertEquals(State.SHUTDOWN, State.NEW.to(State.SHUTDOWN));
  }

  @Test
  void illegalTransitionsThrow() {
    assertThrows(IllegalStateException.class, () -> State.NEW.to(State.READY));
    assertThrows(IllegalStateException.class, () -> State.READY.to(State.HANDSHAKING));
    assertThrows(IllegalStateException.class, () -> State.SHUTDOWN.to(State.READY));
    assertThrows(IllegalStateException.class, () -> State.TERMINATED.to(State.SHUTDOWN));
    assertThrows(IllegalStateException.class, () -> State.READY.to(State.TERMINATED));
  }
}

package io.grpcshm;

import io.grpcshm.internal.movement.BulkSession;
import java.nio.ByteBuffer;

/**
 * Lets a marshaller hand large off-heap byte ranges of a message to grpc-shm's data movers
 * instead of writing them through grpc's {@code OutputStream}. For use inside
 * {@link io.grpc.Drainable#drainTo}, on the thread grpc called it on:
 *
 * <pre>{@code
 * try {
 *   ...write the message's other bytes...
 *   BulkWriter.mark();
 *   ...write the bytes that precede the range (e.g. the field's tag and length), flush...
 *   if (!BulkWriter.tryMove(range)) {
 *     ...write the range through the stream as usual...
 *   }
 * } finally {
 *   BulkWriter.finish();
 * }
 * }</pre>
 *
 * {@code tryMove} succeeds only when the bytes written since {@code mark()} went into a
 * shared-memory buffer of grpc-shm that still has room for the whole range; on any other
 * transport (Netty, in-process), with compression, or for a heap buffer it returns false and
 * nothing was written. Moves may complete asynchronously (mode ASYNC/PIPELINED); {@code finish()}
 * waits for them, so the source buffers may be released once it returns.
 */
public final class BulkWriter {
  private BulkWriter() {}

  /** Starts watching which transport buffer receives the next bytes. */
  public static void mark() {
    BulkSession.mark();
  }

  /**
   * Moves {@code src}'s remaining bytes into the buffer that received the bytes written since
   * {@link #mark()}, right after them, with the mover the call's {@link DataMovement} picks.
   * On success {@code src}'s position is at its limit.
   *
   * @return false, having written nothing, if this is not possible
   */
  public static boolean tryMove(ByteBuffer src) {
    return BulkSession.tryMove(src);
  }

  /** Waits for this thread's moves in flight (falling back to CPU copies if a mover failed). */
  public static void finish() {
    BulkSession.finish();
  }
}

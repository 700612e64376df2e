package io.grpcshm.internal.transport;

import io.grpc.internal.WritableBuffer;
import java.util.ArrayDeque;

/**
 * One stream's outbound flow control. Data frames are sent while the peer's window for the stream
 * is positive (a frame may take it below zero: large payload extents are never split) and queued
 * otherwise; frames that must follow the data (trailers, end of stream) queue behind it. Runs on
 * the stream's serializer.
 */
final class OutboundFlow {
  /**
   * Told how many payload bytes left the queue, for grpc's onReady accounting: a stream's
   * transport state, whose grpc method of this name implements it (no adapter per stream).
   */
  interface SentListener {
    void onSentBytes(int bytes);
  }

  private record Item(WritableBuffer data, boolean endOfStream, Runnable action) {}

  private final ShmConnection connection;
  private final int streamId;
  private final SentListener sentListener;
  /** Created when something must wait: most streams of small calls never queue. */
  private ArrayDeque<Item> queue;
  private int window;
  private boolean cancelled;
  /**
   * A frame grpc wrote without asking for a flush (a message's 5-byte prefix, a unary message
   * before its end of stream), kept so that it leaves with the next frame as one record. Only
   * heap bytes, only while nothing is queued and the window is open.
   */
  private WritableBuffer held;

  OutboundFlow(ShmConnection connection, int streamId, int initialWindow, SentListener listener) {
    this.connection = connection;
    this.streamId = streamId;
    this.window = initialWindow;
    this.sentListener = listener;
  }

  /**
   * Keeps {@code data}, written without a flush, to send it with the next frame; false if it
   * cannot be kept (the caller then sends it with {@link #data}). Keeps one small heap frame at a
   * time, and only when it could be sent now.
   */
  boolean tryHold(WritableBuffer data) {
    if (cancelled) {
      data.release();
      return true;
    }
    if (held != null || !isEmpty() || window <= 0 || !(data instanceof HeapWritableBuffer)
        || data.readableBytes() > HeapWritableBuffer.MAX_CACHED_CAPACITY) {
      return false;
    }
    held = data;
    return true;
  }

  /** Sends or queues a payload frame ({@code data} may be null for a bare end-of-stream). */
  void data(WritableBuffer data, boolean endOfStream) {
    if (cancelled) {
      if (data != null) {
        data.release();
      }
      return;
    }
    int bytes = data == null ? 0 : data.readableBytes();
    if (held != null) {
      // The held frame goes first, in the same record as this one when both fit.
      WritableBuffer first = held;
      held = null;
      int firstBytes = first.readableBytes();
      if (isEmpty() && (bytes == 0 || window > firstBytes)) {
        window -= firstBytes + bytes;
        connection.sendData(streamId, endOfStream, first, data);
        sentListener.onSentBytes(firstBytes + bytes);
        return;
      }
      sendNow(first, false, firstBytes);
    }
    if (isEmpty() && (bytes == 0 || window > 0)) {
      sendNow(data, endOfStream, bytes); // the common case: nothing ahead of it, window open
      return;
    }
    enqueue(new Item(data, endOfStream, null));
    drain();
  }

  /** Sends the held frame, if any. */
  private void releaseHeld() {
    if (held != null) {
      WritableBuffer first = held;
      held = null;
      sendNow(first, false, first.readableBytes());
    }
  }

  /** Runs {@code action} (which sends a frame) once every queued payload has been sent. */
  void afterData(Runnable action) {
    if (cancelled) {
      return;
    }
    releaseHeld();
    if (isEmpty()) {
      action.run();
      return;
    }
    enqueue(new Item(null, false, action));
    drain();
  }

  void windowUpdate(int delta) {
    window += delta;
    drain();
  }

  boolean hasQueued() {
    return !isEmpty();
  }

  private boolean isEmpty() {
    return queue == null || queue.isEmpty();
  }

  private void enqueue(Item item) {
    if (queue == null) {
      queue = new ArrayDeque<>(4);
    }
    queue.add(item);
  }

  /** Drops everything queued, returning shared-memory extents to the pool. */
  void cancel() {
    cancelled = true;
    if (held != null) {
      held.release();
      held = null;
    }
    if (queue == null) {
      return;
    }
    Item item;
    while ((item = queue.poll()) != null) {
      if (item.data() != null) {
        item.data().release();
      }
    }
  }

  private void drain() {
    if (queue == null) {
      return;
    }
    Item item;
    while ((item = queue.peek()) != null) {
      if (item.action() != null) {
        queue.poll();
        item.action().run();
        continue;
      }
      int bytes = item.data() == null ? 0 : item.data().readableBytes();
      if (bytes > 0 && window <= 0) {
        return;
      }
      queue.poll();
      sendNow(item.data(), item.endOfStream(), bytes);
    }
  }

  private void sendNow(WritableBuffer data, boolean endOfStream, int bytes) {
    window -= bytes;
    connection.sendData(streamId, endOfStream, data);
    if (bytes > 0) {
      sentListener.onSentBytes(bytes);
    }
  }
}

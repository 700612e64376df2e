package io.grpcshm.internal.handshake;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;

/**
 * Messages on the rendezvous socket (SOCK_SEQPACKET, one message per packet). Layout of every
 * message: {@code magic u32 'GSHM' | type u8 | version u8 | reserved u16 | body}, little-endian.
 * Decoding validates every field it returns; a malformed message throws
 * {@link HandshakeException} and the connection is dropped.
 */
public sealed interface HandshakeMessage {
  int MAGIC = 0x4d485347; // "GSHM" little-endian
  /**
   * 4: both rings' headers live in the region's first page (version 3 put each ring's header in
   * a page of its own, before its data); 3: CLIENT_HELLO carries the client's target address
   * (version 2 did not; version 1 used a futex on the ring word instead of WAKE messages).
   */
  int VERSION = 4;
  int HEADER = 8;

  int TYPE_CLIENT_HELLO = 1;
  int TYPE_SERVER_WELCOME = 2;
  int TYPE_SERVER_REJECT = 3;
  int TYPE_CLIENT_READY = 4;
  int TYPE_SEGMENT_ATTACH = 5;
  int TYPE_SEGMENT_ACK = 6;
  int TYPE_GOODBYE = 7;
  int TYPE_WAKE = 8;

  /**
   * SERVER_WELCOME's header u16 (reserved, zero, in every other message): the optional features
   * this server serves on the connection. Peers that predate a bit send 0 and ignore the field,
   * so a feature is used only where the server announced it.
   */
  int FEATURE_REPLY_MAILBOX = 0x1;

  /** Max length of a reject message's text, in bytes. */
  int MAX_REASON = 1024;

  /**
   * Client's opening: what it would like (the server decides), and the TCP address it aimed at
   * ({@code targetAddress} null and {@code targetPort} 0 when it addressed the socket by name
   * only). The server refuses a target it does not serve.
   */
  record ClientHello(int ringCapacity, long poolSize, int streamWindow,
      java.net.InetAddress targetAddress, int targetPort) implements HandshakeMessage {
    public ClientHello {
      if (targetAddress == null ? targetPort != 0 : targetPort < 1 || targetPort > 0xffff) {
        throw new IllegalArgumentException("bad target " + targetAddress + " port " + targetPort);
      }
    }

    /** A hello with no target (the client addressed the socket by name). */
    public ClientHello(int ringCapacity, long poolSize, int streamWindow) {
      this(ringCapacity, poolSize, streamWindow, null, 0);
    }
  }

  /**
   * Server's answer with the region's memfd attached; {@code features} (header u16) is a set of
   * FEATURE_ bits.
   */
  record ServerWelcome(int ringCapacity, long poolSize, long regionSize, long connectionId,
      int streamWindow, int features) implements HandshakeMessage {}

  /** Refusal: a gRPC status code and a reason; nothing was mapped. */
  record ServerReject(int statusCode, String reason) implements HandshakeMessage {}

  /** Client mapped the region; streams may start. */
  record ClientReady() implements HandshakeMessage {}

  /** A new persistent payload segment (memfd attached) the sender will reference by id. */
  record SegmentAttach(int segmentId, long size) implements HandshakeMessage {}

  /** The receiver mapped (or refused) a segment. */
  record SegmentAck(int segmentId, boolean accepted) implements HandshakeMessage {}

  /** Orderly close notice; the socket closes right after. */
  record Goodbye() implements HandshakeMessage {}

  /**
   * The sender published a record on a ring whose consumer had announced sleep (and the sender
   * cleared that announcement): poll the rings. A hint, never data.
   */
  record Wake() implements HandshakeMessage {}

  /** The encoded WAKE message (header only). */
  static byte[] wakeBytes() {
    byte[] b = new byte[HEADER];
    int n = encode(new Wake(), b);
    return java.util.Arrays.copyOf(b, n);
  }

  static int encode(HandshakeMessage message, byte[] out) {
    ByteBuffer b = ByteBuffer.wrap(out).order(ByteOrder.LITTLE_ENDIAN);
    b.putInt(MAGIC);
    switch (message) {
      case ClientHello m -> {
        header(b, TYPE_CLIENT_HELLO);
        b.putInt(m.ringCapacity()).putLong(m.poolSize()).putInt(m.streamWindow());
        byte[] addr = m.targetAddress() == null ? new byte[0] : m.targetAddress().getAddress();
        b.putShort((short) m.targetPort()).put((byte) addr.length).put(addr);
      }
      case ServerWelcome m -> {
        header(b, TYPE_SERVER_WELCOME, m.features());
        b.putInt(m.ringCapacity()).putLong(m.poolSize()).putLong(m.regionSize())
            .putLong(m.connectionId()).putInt(m.streamWindow());
      }
      case ServerReject m -> {
        header(b, TYPE_SERVER_REJECT);
        byte[] reason = m.reason().getBytes(StandardCharsets.UTF_8);
        int len = Math.min(reason.length, MAX_REASON);
        b.putInt(m.statusCode()).putShort((short) len).put(reason, 0, len);
      }
      case ClientReady m -> header(b, TYPE_CLIENT_READY);
      case SegmentAttach m -> {
        header(b, TYPE_SEGMENT_ATTACH);
        b.putInt(m.segmentId()).putLong(m.size());
      }
      case SegmentAck m -> {
        header(b, TYPE_SEGMENT_ACK);
        b.putInt(m.segmentId()).put((byte) (m.accepted() ? 1 : 0));
      }
      case Goodbye m -> header(b, TYPE_GOODBYE);
      case Wake m -> header(b, TYPE_WAKE);
    }
    return b.position();
  }

  private static void header(ByteBuffer b, int type) {
    header(b, type, 0);
  }

  private static void header(ByteBuffer b, int type, int reserved) {
    b.put((byte) type).put((byte) VERSION).putShort((short) reserved);
  }

  static HandshakeMessage decode(byte[] in, int length) throws HandshakeException {
    if (length < HEADER) {
      throw new HandshakeException("handshake message too short: " + length + " bytes");
    }
    ByteBuffer b = ByteBuffer.wrap(in, 0, length).order(ByteOrder.LITTLE_ENDIAN);
    int magic = b.getInt();
    int type = b.get() & 0xff;
    int version = b.get() & 0xff;
    int reserved = b.getShort() & 0xffff;
    if (magic != MAGIC) {
      throw new HandshakeException(
          "not a grpc-shm peer (magic 0x" + Integer.toHexString(magic) + ")");
    }
    if (version != VERSION) {
      throw new HandshakeException(
          "unsupported grpc-shm protocol version " + version + " (we speak " + VERSION + ")");
    }
    try {
      HandshakeMessage m = switch (type) {
        case TYPE_CLIENT_HELLO -> {
          int ring = b.getInt();
          long pool = b.getLong();
          int window = b.getInt();
          int port = b.getShort() & 0xffff;
          int addrLen = b.get() & 0xff;
          if (addrLen != 0 && addrLen != 4 && addrLen != 16) {
            throw new HandshakeException("bad target address length " + addrLen);
          }
          if ((addrLen == 0) != (port == 0)) {
            throw new HandshakeException(
                "target port " + port + " with an address of " + addrLen + " bytes");
          }
          if (addrLen > b.remaining()) {
            throw new HandshakeException("truncated handshake message type " + type);
          }
          byte[] addr = new byte[addrLen];
          b.get(addr);
          java.net.InetAddress target;
          try {
            // An IPv4-mapped IPv6 address comes back as the IPv4 address (as Java does anyway).
            target = addrLen == 0 ? null : java.net.InetAddress.getByAddress(addr);
          } catch (java.net.UnknownHostException e) {
            throw new HandshakeException("bad target address: " + e.getMessage());
          }
          yield new ClientHello(ring, pool, window, target, port);
        }
        case TYPE_SERVER_WELCOME ->
            // Unknown feature bits are kept: the client uses only those it knows.
            new ServerWelcome(b.getInt(), b.getLong(), b.getLong(), b.getLong(), b.getInt(),
                reserved);
        case TYPE_SERVER_REJECT -> {
          int code = b.getInt();
          int len = b.getShort() & 0xffff;
          if (len > MAX_REASON || len > b.remaining()) {
            throw new HandshakeException("reject reason length " + len + " out of bounds");
          }
          byte[] reason = new byte[len];
          b.get(reason);
          yield new ServerReject(code, new String(reason, StandardCharsets.UTF_8));
        }
        case TYPE_CLIENT_READY -> new ClientReady();
        case TYPE_SEGMENT_ATTACH -> new SegmentAttach(b.getInt(), b.getLong());
        case TYPE_SEGMENT_ACK -> {
          int id = b.getInt();
          int ok = b.get();
          if (ok != 0 && ok != 1) {
            throw new HandshakeException("bad segment ack flag " + ok);
          }
          yield new SegmentAck(id, ok == 1);
        }
        case TYPE_GOODBYE -> new Goodbye();
        case TYPE_WAKE -> new Wake();
        default -> throw new HandshakeException("unknown handshake message type " + type);
      };
      if (b.hasRemaining()) {
        throw new HandshakeException(
            "trailing " + b.remaining() + " bytes after handshake message type " + type);
      }
      return m;
    } catch (java.nio.BufferUnderflowException e) {
      throw new HandshakeException("truncated handshake message type " + type);
    }
  }
}

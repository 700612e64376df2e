package io.grpcshm.internal.handshake;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.grpcshm.internal.ring.RingDescriptor;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.List;
import org.junit.jupiter.api.Test;

class HandshakeMessageTest {
  @Test
  void everyMessageRoundTrips() throws Exception {
    List<HandshakeMessage> all = List.of(
        new HandshakeMessage.ClientHello(1 << 20, 1L << 28, 4 << 20),
        new HandshakeMessage.ClientHello(1 << 20, 1L << 28, 4 << 20,
            java.net.InetAddress.getByName("127.0.0.2"), 50051),
        new HandshakeMessage.ClientHello(1 << 16, 4096, 1,
            java.net.InetAddress.getByName("fe80::1"), 65535),
        new HandshakeMessage.ServerWelcome(1 << 20, 1L << 28, 123456789L, 42L, 1 << 22, 0),
        new HandshakeMessage.ServerWelcome(1 << 20, 1L << 28, 123456789L, 42L, 1 << 22,
            HandshakeMessage.FEATURE_REPLY_MAILBOX | 0x8000),
        new HandshakeMessage.ServerReject(7, "uid 1000 not allowed"),
        new HandshakeMessage.ClientReady(),
        new HandshakeMessage.SegmentAttach(3, 1L << 30),
        new HandshakeMessage.SegmentAck(3, true),
        new HandshakeMessage.Goodbye());
    byte[] buf = new byte[4096];
    for (HandshakeMessage m : all) {
      int len = HandshakeMessage.encode(m, buf);
      assertEquals(m, HandshakeMessage.decode(buf, len));
    }
  }

  @Test
  void malformedMessagesAreRejectedWithAReason() {
    byte[] buf = new byte[4096];
    int len = HandshakeMessage.encode(new HandshakeMessage.ClientHello(4096, 4096, 1), buf);
    assertTrue(assertThrows(HandshakeException.class, () -> HandshakeMessage.decode(buf, 3))
        .getMessage().contains("too short"));
    assertTrue(assertThrows(HandshakeException.class, () -> HandshakeMessage.decode(buf, len - 1))
        .getMessage().contains("truncated"));
    byte[] trailing = buf.clone();
    assertTrue(assertThrows(HandshakeException.class,
        () -> HandshakeMessage.decode(trailing, len + 4)).getMessage().contains("trailing"));
    byte[] badMagic = buf.clone();
    badMagic[0] = 'X';
    assertTrue(assertThrows(HandshakeException.class, () -> HandshakeMessage.decode(badMagic, len))
        .getMessage().contains("not a grpc-shm peer"));
    byte[] badVersion = buf.clone();
    badVersion[5] = 9;
    assertTrue(assertThrows(HandshakeException.class,
        () -> HandshakeMessage.decode(badVersion, len)).getMessage().contains("version"));
    byte[] badType = buf.clone();
    badType[4] = 99;
    assertTrue(assertThrows(HandshakeException.class, () -> HandshakeMessage.decode(badType, len))
        .getMessage().contains("unknown"));
  }

  @Test
  void helloTargetIsValidatedStrictly() throws Exception {
    byte[] buf = new byte[4096];
    int len = HandshakeMessage.encode(new HandshakeMessage.ClientHello(4096, 4096, 1,
        java.net.InetAddress.getByName("127.0.0.1"), 80), buf);
    assertEquals(8 + 19 + 4, len);
    assertEquals(4, buf[26]);
    byte[] badLen = buf.clone();
    badLen[26] = 5;
    assertTrue(assertThrows(HandshakeException.class, () -> HandshakeMessage.decode(badLen, len))
        .getMessage().contains("address length"));
    byte[] noPort = buf.clone();
    noPort[24] = 0;
    noPort[25] = 0;
    assertTrue(assertThrows(HandshakeException.class, () -> HandshakeMessage.decode(noPort, len))
        .getMessage().contains("target port 0"));
    assertTrue(assertThrows(HandshakeException.class, () -> HandshakeMessage.decode(buf, len - 1))
        .getMessage().contains("truncated"));
    // A version 2 hello (24 bytes, no target) is refused for its version.
    int len0 = HandshakeMessage.encode(new HandshakeMessage.ClientHello(4096, 4096, 1), buf);
    assertEquals(27, len0);
    buf[5] = 2;
    assertTrue(assertThrows(HandshakeException.class, () -> HandshakeMessage.decode(buf, 24))
        .getMessage().contains("version"));
  }

  @Test
  void lyingReasonLengthIsRejected() {
    ByteBuffer b = ByteBuffer.allocate(64).order(ByteOrder.LITTLE_ENDIAN);
    b.putInt(HandshakeMessage.MAGIC).put((byte) HandshakeMessage.TYPE_SERVER_REJECT)
        .put((byte) HandshakeMessage.VERSION).putShort((short) 0)
        .putInt(7).putShort((short) 5000).put(new byte[10]);
    assertThrows(HandshakeException.class, () -> HandshakeMessage.decode(b.array(), b.position()));
  }

  @Test
  void layoutRejectsImpossibleSizes() {
    assertThrows(IllegalArgumentException.class, () -> new RegionLayout(3000, 1 << 20));
    assertThrows(IllegalArgumentException.class, () -> new RegionLayout(4096, 100));
    assertThrows(IllegalArgumentException.class, () -> new RegionLayout(4096, 1L << 40));
    RegionLayout layout = new RegionLayout(1 << 16, 1 << 20);
    assertEquals(layout.serverToClientPoolOffset() + (1 << 20), layout.totalSize());
    assertEquals(0, layout.clientToServerPoolOffset() % RegionLayout.PAGE);
  }

  /** PROTOCOL.md §4, version 4: one page of headers, then page-aligned rings and pools. */
  @Test
  void layoutKeepsEveryHeaderInTheFirstPage() {
    int ring = 1 << 20;
    long pool = 256L << 20;
    RegionLayout layout = new RegionLayout(ring, pool);
    MemorySegment region = MemorySegment.ofArray(new byte[ring * 2 + 3 * RegionLayout.PAGE]);
    RegionLayout small = new RegionLayout(ring, RegionLayout.PAGE);
    MemorySegment c2sHeader = small.ringHeader(region, true);
    MemorySegment s2cHeader = small.ringHeader(region, false);
    // The region header (32 bytes) and both ring headers lie apart, all in the first page.
    assertEquals(1024, c2sHeader.address() - region.address());
    assertEquals(2048, s2cHeader.address() - region.address());
    assertEquals(RingDescriptor.HEADER_LENGTH, c2sHeader.byteSize());
    assertTrue(2048 + RingDescriptor.HEADER_LENGTH <= RegionLayout.PAGE);
    // Ring data areas and pools start on page boundaries, back to back.
    assertEquals(4096, layout.clientToServerRingOffset());
    assertEquals(4096 + ring, layout.serverToClientRingOffset());
    assertEquals(4096 + 2L * ring, layout.clientToServerPoolOffset());
    assertEquals(4096 + 2L * ring + pool, layout.serverToClientPoolOffset());
    assertEquals(4096 + 2L * ring + 2 * pool, layout.totalSize());
    assertEquals(ring, small.ringData(region, false).byteSize());
    assertEquals(4096 + ring, small.ringData(region, false).address() - region.address());
  }
}

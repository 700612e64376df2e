package io.grpcshm.loadgen;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;
import picocli.CommandLine;

class ByteSizeTest {
  @Test
  void bytesAndHumanReadableSizesAsGhzTakesThem() {
    assertEquals(4194304, ByteSize.parse("4194304"));
    assertEquals(42_000_000, ByteSize.parse("42 MB"));
    assertEquals(42_000_000, ByteSize.parse("42mb"));
    assertEquals(4 << 20, ByteSize.parse("4MiB"));
    assertEquals(512_000, ByteSize.parse("512kb"));
    assertEquals(1536, ByteSize.parse("1.5 KiB"));
    assertEquals(100, ByteSize.parse("100B"));
    assertEquals(1 << 30, ByteSize.parse("1GiB"));
  }

  @Test
  void nonsenseAndOutOfRangeAreRefused() {
    for (String bad : new String[] {"", "abc", "-5", "4 XB", "0", "3GB", "2GiB"}) {
      assertThrows(CommandLine.TypeConversionException.class, () -> ByteSize.parse(bad), bad);
    }
    Cli r = Cli.run("--call", "a.B/C", "--max-recv-message-size", "lots", "localhost:1");
    assertEquals(2, r.exitCode());
    assertTrue(r.err().contains("not a size: 'lots'"), r.err());
  }
}

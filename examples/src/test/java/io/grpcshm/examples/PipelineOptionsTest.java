package io.grpcshm.examples;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.List;
import org.junit.jupiter.api.Test;
import picocli.CommandLine.ParameterException;

/** Pipeline's command line. */
class PipelineOptionsTest {
  @Test
  void pipelineOptionsParseAndRejectBadValues() {
    Pipeline.Options o = Pipeline.parse(
        "--sizes-mb", "1, 20", "--calls", "2", "--target", "localhost:1", "--stream-batches", "0");

    assertEquals(List.of(1.0, 20.0), o.sizesMb());
    assertEquals(2, o.calls());
    assertEquals("localhost:1", o.target());
    assertEquals(0, o.streamBatches());
    assertEquals(Pipeline.Options.defaults().warmupSeconds(), o.warmupSeconds());
    assertEquals(Pipeline.Options.defaults(), Pipeline.parse());
    assertEquals(List.of(20.0, 120.0), Pipeline.parse("--sizes-mb", "20,120", "--calls", "3").sizesMb());
    for (String[] bad : List.of(new String[] {"--calls", "0"}, new String[] {"--sizes-mb", "300"},
        new String[] {"--sizes-mb", "0"}, new String[] {"--calls"}, new String[] {"--x", "1"})) {
      assertThrows(ParameterException.class, () -> Pipeline.parse(bad),
          List.of(bad).toString());
    }
  }
}

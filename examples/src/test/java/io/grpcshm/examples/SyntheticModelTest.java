package io.grpcshm.examples;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import io.grpcshm.examples.pipeline.ClassScore;
import io.grpcshm.examples.pipeline.DType;
import io.grpcshm.examples.pipeline.ImageResult;
import io.grpcshm.examples.pipeline.InferenceResult;
import io.grpcshm.examples.pipeline.TensorBatch;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.zip.CRC32C;
import org.junit.jupiter.api.Test;

/** The pipeline's pre-processing and synthetic model, without any transport. */
class SyntheticModelTest {
  @Test
  void batchesAreMobileNetSizedDeterministicAndOffHeap() {
    TensorBatch a = Preprocessor.batch(3, 2);
    TensorBatch b = Preprocessor.batch(3, 2);

    assertEquals(List.of(2L, 224L, 224L, 3L), a.getShapeList());
    assertEquals(DType.FLOAT32, a.getDtype());
    assertEquals(2 * 224 * 224 * 3 * 4, a.getData().size());
    assertTrue(a.getData().asReadOnlyByteBuffer().isDirect(), "the tensor lives off-heap");
    assertEquals(a.getData(), b.getData(), "same batch id, same bytes");
    assertNotEquals(a.getData(), Preprocessor.batch(4, 2).getData());
    assertNotEquals(a.getData().substring(0, Preprocessor.IMAGE_BYTES),
        a.getData().substring(Preprocessor.IMAGE_BYTES), "images of a batch differ");
  }

  @Test
  void pixelsAreNormalisedToMinusOneToOne() {
    ByteBuffer data = Preprocessor.batch(9, 1).getData().asReadOnlyByteBuffer()
        .order(ByteOrder.LITTLE_ENDIAN);
    float min = Float.MAX_VALUE;
    float max = -Float.MAX_VALUE;
    Set<Float> distinct = new HashSet<>();
    while (data.hasRemaining()) {
      float v = data.getFloat();
      min = Math.min(min, v);
      max = Math.max(max, v);
      distinct.add(v);
    }
    assertTrue(min >= -1f && max <= 1f, min + ".." + max);
    assertTrue(distinct.size() > 100, "an image, not a constant: " + distinct.size());
    for (float v : distinct) {
      float pixel = (v + 1f) * 127.5f;
      assertEquals(Math.round(pixel), pixel, 1e-3, "every value is an 8-bit pixel / 127.5 - 1");
    }
  }

  @Test
  void sweepSizesCoverOneToOneHundredTwentyMegabytes() {
    assertEquals(2, Preprocessor.imagesFor(1));
    assertEquals(199, Preprocessor.imagesFor(120));
    assertEquals(1, Preprocessor.imagesFor(0.01));
    assertTrue(Preprocessor.imagesFor(120) * (long) Preprocessor.IMAGE_BYTES
        < InferenceService.MAX_MESSAGE_BYTES);
  }

  @Test
  void resultHasTopFiveBestFirstPerImageAndTheChecksum() {
    TensorBatch batch = Preprocessor.batch(11, 3);

    InferenceResult r = SyntheticModel.run(batch).build();

    assertEquals(11, r.getBatchId());
    assertEquals(3, r.getImagesCount());
    CRC32C crc = new CRC32C();
    crc.update(batch.getData().toByteArray());
    assertEquals((int) crc.getValue(), r.getDataCrc32C());
    for (ImageResult image : r.getImagesList()) {
      assertEquals(SyntheticModel.TOP_K, image.getTopCount());
      Set<Integer> ids = new HashSet<>();
      for (int i = 0; i < image.getTopCount(); i++) {
        ClassScore s = image.getTop(i);
        assertTrue(s.getClassId() >= 0 && s.getClassId() < SyntheticModel.CLASSES);
        ids.add(s.getClassId());
        if (i > 0) {
          assertTrue(image.getTop(i - 1).getScore() >= s.getScore(), image.toString());
        }
      }
      assertEquals(SyntheticModel.TOP_K, ids.size());
    }
    assertNotEquals(r.getImages(0), r.getImages(1), "different images, different answers");
  }

  @Test
  void heapAndDirectCopiesOfTheSameBytesGiveBitIdenticalResults() {
    TensorBatch direct = Preprocessor.batch(12, 2);
    TensorBatch heap = direct.toBuilder()
        .setData(ByteString.copyFrom(direct.getData().toByteArray())).build();

    assertEquals(SyntheticModel.run(direct).build(), SyntheticModel.run(heap).build());
  }

  @Test
  void oneChangedElementChangesTheChecksum() {
    TensorBatch batch = Preprocessor.batch(13, 1);
    byte[] bytes = batch.getData().toByteArray();
    bytes[bytes.length / 2] ^= 1;
    TensorBatch changed = batch.toBuilder().setData(ByteString.copyFrom(bytes)).build();

    assertNotEquals(SyntheticModel.run(batch).getDataCrc32C(),
        SyntheticModel.run(changed).getDataCrc32C());
  }

  @Test
  void uint8AndFloat32TensorsOfTheSameValuesGiveTheSameScores() {
    int n = 2;
    int h = 9;
    int w = 13; // not multiples of the grid: uneven cells
    int c = 3;
    byte[] pixels = new byte[n * h * w * c];
    ByteBuffer floats = ByteBuffer.allocate(pixels.length * 4).order(ByteOrder.LITTLE_ENDIAN);
    for (int i = 0; i < pixels.length; i++) {
      int v = (i * 37 + i / 5) % 256;
      pixels[i] = (byte) v;
      floats.putFloat(v);
    }
    TensorBatch u8 = TensorBatch.newBuilder().setBatchId(1).addAllShape(List.of(2L, 9L, 13L, 3L))
        .setDtype(DType.UINT8).setData(ByteString.copyFrom(pixels)).build();
    TensorBatch f32 = u8.toBuilder().setDtype(DType.FLOAT32)
        .setData(ByteString.copyFrom(floats.array())).build();

    assertEquals(SyntheticModel.run(f32).getImagesList(), SyntheticModel.run(u8).getImagesList());
  }

  @Test
  void shapesThatDoNotDescribeTheDataAreRejected() {
    TensorBatch good = Preprocessor.batch(14, 1);
    List<TensorBatch> bad = List.of(
        good.toBuilder().setShape(0, 2).build(),
        good.toBuilder().clearShape().addAllShape(List.of(1L, 224L, 672L)).build(),
        good.toBuilder().setShape(1, -224).build(),
        good.toBuilder().setShape(1, 0).build(),
        good.toBuilder().setShape(0, Long.MAX_VALUE).build(),
        good.toBuilder().setShape(0, 1L << 40).setShape(1, 1L << 20).build(),
        good.toBuilder().setDtype(DType.DTYPE_UNSPECIFIED).build(),
        good.toBuilder().setDtype(DType.UINT8).build());
    for (TensorBatch b : bad) {
      assertThrows(SyntheticModel.InvalidTensorException.class, () -> SyntheticModel.run(b),
          b.getShapeList() + " " + b.getDtype());
    }
  }
}

package io.grpcshm.examples;

import com.google.protobuf.UnsafeByteOperations;
import io.grpcshm.examples.pipeline.DType;
import io.grpcshm.examples.pipeline.TensorBatch;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.List;
import java.util.SplittableRandom;

/**
 * The pipeline's pre-processing stage: synthesises camera-like RGB images (deterministically, from
 * the batch id) and normalises them into MobileNetV2's input, float32 NHWC 224×224×3 scaled to
 * [-1, 1] ({@code pixel / 127.5 - 1}). One image is {@value #IMAGE_BYTES} bytes (0.6 MB), so
 * 2 to 199 images make the 1–120 MB batches of the workload.
 *
 * <p>The tensor lives off-heap: a direct {@link ByteBuffer} wrapped, not copied, with
 * {@link UnsafeByteOperations#unsafeWrap}. The transport can then hand the payload to a data mover
 * (CPU copy, software copy engine, DSA) instead of copying it through the Java heap. The buffer is
 * never written after wrapping, which is what {@code unsafeWrap} requires.
 */
final class Preprocessor {
  static final int HEIGHT = 224;
  static final int WIDTH = 224;
  static final int CHANNELS = 3;
  static final int IMAGE_BYTES = HEIGHT * WIDTH * CHANNELS * Float.BYTES;

  private Preprocessor() {}

  /** Images in a batch of about {@code megabytes} MB (10^6 B), at least one. */
  static int imagesFor(double megabytes) {
    return Math.max(1, (int) Math.round(megabytes * 1e6 / IMAGE_BYTES));
  }

  /** A batch of {@code images} synthetic, normalised images; the same id gives the same bytes. */
  static TensorBatch batch(long batchId, int images) {
    if (images <= 0 || (long) images * IMAGE_BYTES > Integer.MAX_VALUE - 64) {
      throw new IllegalArgumentException("images must be in 1.." + (Integer.MAX_VALUE / IMAGE_BYTES)
          + ": " + images);
    }
    ByteBuffer tensor = ByteBuffer.allocateDirect(images * IMAGE_BYTES)
        .order(ByteOrder.LITTLE_ENDIAN);
    for (int i = 0; i < images; i++) {
      render(new SplittableRandom(batchId * 1_000_003L + i), tensor, i * IMAGE_BYTES);
    }
    return TensorBatch.newBuilder()
        .setBatchId(batchId)
        .addAllShape(List.of((long) images, (long) HEIGHT, (long) WIDTH, (long) CHANNELS))
        .setDtype(DType.FLOAT32)
        .setData(UnsafeByteOperations.unsafeWrap(tensor))
        .build();
  }

  /**
   * One image: a colour gradient, a bright disc (the "object") and sensor noise, as 8-bit pixels,
   * then normalised to float32 in [-1, 1].
   */
  private static void render(SplittableRandom random, ByteBuffer out, int start) {
    int[] base = new int[CHANNELS];
    int[] gx = new int[CHANNELS];
    int[] gy = new int[CHANNELS];
    int[] disc = new int[CHANNELS];
    for (int c = 0; c < CHANNELS; c++) {
      base[c] = random.nextInt(160);
      gx[c] = random.nextInt(-64, 65); // change across the whole width, in pixel levels
      gy[c] = random.nextInt(-64, 65);
      disc[c] = random.nextInt(-80, 81);
    }
    int cx = random.nextInt(WIDTH);
    int cy = random.nextInt(HEIGHT);
    int r2 = (int) Math.pow(random.nextInt(16, 96), 2);
    long noise = random.nextLong() | 1; // xorshift state, never zero
    int at = start;
    for (int y = 0; y < HEIGHT; y++) {
      for (int x = 0; x < WIDTH; x++) {
        boolean inDisc = (x - cx) * (x - cx) + (y - cy) * (y - cy) <= r2;
        noise ^= noise << 13;
        noise ^= noise >>> 7;
        noise ^= noise << 17;
        for (int c = 0; c < CHANNELS; c++) {
          int v = base[c] + gx[c] * x / WIDTH + gy[c] * y / HEIGHT + (inDisc ? disc[c] : 0)
              + (int) ((noise >>> (8 * c)) & 15);
          int pixel = Math.clamp(v, 0, 255);
          out.putFloat(at, pixel / 127.5f - 1f);
          at += Float.BYTES;
        }
      }
    }
  }
}

package io.grpcshm.examples;

import com.google.protobuf.ByteString;
import io.grpcshm.examples.pipeline.ClassScore;
import io.grpcshm.examples.pipeline.DType;
import io.grpcshm.examples.pipeline.ImageResult;
import io.grpcshm.examples.pipeline.InferenceResult;
import io.grpcshm.examples.pipeline.TensorBatch;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.ConcurrentHashMap;
import java.util.zip.CRC32C;

/**
 * The pipeline's "inference": a deterministic synthetic computation standing in for a model, so
 * that the example needs no download. For each image of an NHWC batch it averages every channel
 * over a {@value #GRID}×{@value #GRID} spatial grid (a pooled feature vector of GRID²·C values),
 * applies a fixed pseudo-random linear layer to {@value #CLASSES} classes and keeps the
 * {@value #TOP_K} best. It also computes the CRC32C of the tensor bytes.
 *
 * <p>Every element is read exactly once, in a fixed order, with double accumulation, so the
 * result depends only on the bytes: heap or direct buffer, shared memory or TCP, the server and
 * the client (which runs the same code to check the server) get bit-identical scores.
 */
final class SyntheticModel {
  static final int GRID = 4;
  static final int CLASSES = 1000;
  static final int TOP_K = 5;
  private static final long WEIGHT_SEED = 0x5EED_CAFE_F00DL;

  /** Fixed weights per channel count (the layer's input width is GRID²·channels). */
  private static final Map<Integer, float[][]> LAYERS = new ConcurrentHashMap<>();

  private SyntheticModel() {}

  /** A request the model cannot process (the service answers INVALID_ARGUMENT). */
  static final class InvalidTensorException extends IllegalArgumentException {
    InvalidTensorException(String message) {
      super(message);
    }
  }

  /** Shape checked against the dtype and the data length. */
  record Shape(int images, int height, int width, int channels, DType dtype) {
    int elementBytes() {
      return dtype == DType.FLOAT32 ? Float.BYTES : 1;
    }

    long imageBytes() {
      return (long) height * width * channels * elementBytes();
    }

    static Shape of(TensorBatch batch) {
      if (batch.getDtype() != DType.FLOAT32 && batch.getDtype() != DType.UINT8) {
        throw new InvalidTensorException("dtype must be FLOAT32 or UINT8, got "
            + batch.getDtype());
      }
      if (batch.getShapeCount() != 4) {
        throw new InvalidTensorException("shape must be [batch, height, width, channels], got "
            + batch.getShapeList());
      }
      for (long d : batch.getShapeList()) {
        if (d <= 0 || d > Integer.MAX_VALUE) {
          throw new InvalidTensorException("bad dimension in shape " + batch.getShapeList());
        }
      }
      Shape shape = new Shape((int) batch.getShape(0), (int) batch.getShape(1),
          (int) batch.getShape(2), (int) batch.getShape(3), batch.getDtype());
      long expected;
      try {
        expected = Math.multiplyExact(shape.imageBytes(), (long) shape.images());
      } catch (ArithmeticException e) {
        throw new InvalidTensorException("shape too large: " + batch.getShapeList());
      }
      if (expected != batch.getData().size()) {
        throw new InvalidTensorException("shape " + batch.getShapeList() + " of " + batch.getDtype()
            + " needs " + expected + " bytes, data has " + batch.getData().size());
      }
      return shape;
    }
  }

  /**
   * Runs the model over {@code batch} (its {@code data} may alias shared memory: it is read, never
   * kept). The result has the batch id, the images' top classes and the checksum; compute time
   * and {@code read_in_place} are the caller's to fill in.
   */
  static InferenceResult.Builder run(TensorBatch batch) {
    Shape shape = Shape.of(batch);
    ByteString data = batch.getData();
    // A view, not a copy, for the flat (aliased or array-backed) strings grpc hands us.
    ByteBuffer buffer = data.asReadOnlyByteBuffer().order(ByteOrder.LITTLE_ENDIAN);
    InferenceResult.Builder result = InferenceResult.newBuilder()
        .setBatchId(batch.getBatchId())
        .setDataCrc32C(crc32c(buffer));
    float[][] weights = weights(shape.channels());
    double[] features = new double[GRID * GRID * shape.channels()];
    for (int i = 0; i < shape.images(); i++) {
      pool(buffer, (long) i * shape.imageBytes(), shape, features);
      result.addImages(topK(scores(features, weights)));
    }
    return result;
  }

  /** The CRC32C the server reports for these bytes. */
  static int crc32c(ByteBuffer data) {
    CRC32C crc = new CRC32C();
    crc.update(data.duplicate());
    return (int) crc.getValue();
  }

  /** Average of each channel over each grid cell of one image. */
  private static void pool(ByteBuffer buffer, long start, Shape shape, double[] features) {
    int c = shape.channels();
    Arrays.fill(features, 0);
    long[] counts = new long[GRID * GRID];
    int rowBytes = shape.width() * c * shape.elementBytes();
    boolean floats = shape.dtype() == DType.FLOAT32;
    for (int y = 0; y < shape.height(); y++) {
      int cellY = (int) ((long) y * GRID / shape.height());
      int row = Math.toIntExact(start + (long) y * rowBytes);
      for (int x = 0; x < shape.width(); x++) {
        int cell = cellY * GRID + (int) ((long) x * GRID / shape.width());
        int base = cell * c;
        int at = row + x * c * shape.elementBytes();
        for (int ch = 0; ch < c; ch++) {
          features[base + ch] += floats
              ? buffer.getFloat(at + ch * Float.BYTES)
              : buffer.get(at + ch) & 0xFF;
        }
        counts[cell]++;
      }
    }
    for (int cell = 0; cell < GRID * GRID; cell++) {
      for (int ch = 0; ch < c; ch++) {
        features[cell * c + ch] = counts[cell] == 0 ? 0 : features[cell * c + ch] / counts[cell];
      }
    }
  }

  private static double[] scores(double[] features, float[][] weights) {
    double[] scores = new double[CLASSES];
    for (int k = 0; k < CLASSES; k++) {
      float[] w = weights[k];
      double s = w[features.length]; // bias
      for (int f = 0; f < features.length; f++) {
        s += w[f] * features[f];
      }
      scores[k] = s;
    }
    return scores;
  }

  /** The TOP_K best classes, best first; ties go to the lower class id. */
  private static ImageResult topK(double[] scores) {
    int[] best = new int[TOP_K];
    Arrays.fill(best, -1);
    for (int k = 0; k < scores.length; k++) {
      int pos = TOP_K;
      while (pos > 0 && (best[pos - 1] < 0 || scores[k] > scores[best[pos - 1]])) {
        pos--;
      }
      if (pos < TOP_K) {
        System.arraycopy(best, pos, best, pos + 1, TOP_K - pos - 1);
        best[pos] = k;
      }
    }
    ImageResult.Builder image = ImageResult.newBuilder();
    for (int k : best) {
      if (k >= 0) {
        image.addTop(ClassScore.newBuilder().setClassId(k).setScore((float) scores[k]));
      }
    }
    return image.build();
  }

  /** CLASSES rows of GRID²·channels weights plus a bias, uniform in [-1, 1), from a fixed seed. */
  private static float[][] weights(int channels) {
    return LAYERS.computeIfAbsent(channels, ch -> {
      SplittableRandom random = new SplittableRandom(WEIGHT_SEED + ch);
      int inputs = GRID * GRID * ch;
      float[][] w = new float[CLASSES][inputs + 1];
      for (float[] row : w) {
        for (int f = 0; f < row.length; f++) {
          row[f] = (float) (random.nextDouble() * 2 - 1);
        }
      }
      return w;
    });
  }
}

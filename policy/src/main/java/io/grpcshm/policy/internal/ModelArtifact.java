package io.grpcshm.policy.internal;

import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The policy model file: a few {@code policy.*} header lines that say what the model was trained
 * on (schema, signal sources, candidates, provenance), a {@code ---} line, then LightGBM's own
 * model text unchanged (so LightGBM can load the tail, which the identity test does).
 */
public record ModelArtifact(Map<String, String> meta, String lightgbmText, GbdtModel model) {
  public static final String MAGIC = "# grpc-shm policy model";
  public static final String SEPARATOR = "---";

  public static String write(Map<String, String> meta, String lightgbmText) {
    StringBuilder b = new StringBuilder(MAGIC).append('\n');
    b.append("policy.format=").append(Schema.FORMAT).append('\n');
    b.append("policy.features=").append(String.join(",", Schema.FEATURES)).append('\n');
    meta.forEach((k, v) -> b.append("policy.").append(k).append('=')
        .append(v.replace('\n', ' ')).append('\n'));
    return b.append(SEPARATOR).append('\n').append(lightgbmText).toString();
  }

  /** Parses and validates; every failure names the problem. */
  public static ModelArtifact parse(String text) {
    if (text == null || text.isEmpty()) {
      throw new ModelFormatException("model file is empty");
    }
    if (!text.startsWith(MAGIC)) {
      throw new ModelFormatException("not a policy model: first line is not '" + MAGIC + "'");
    }
    int sep = text.indexOf("\n" + SEPARATOR + "\n");
    if (sep < 0) {
      throw new ModelFormatException("corrupt policy model: no '---' line before the trees");
    }
    Map<String, String> meta = new LinkedHashMap<>();
    for (String line : text.substring(0, sep).split("\n")) {
      if (line.startsWith("policy.")) {
        int eq = line.indexOf('=');
        if (eq < 0) {
          throw new ModelFormatException("corrupt header line: " + line);
        }
        meta.put(line.substring(7, eq), line.substring(eq + 1));
      }
    }
    String format = meta.get("format");
    if (!String.valueOf(Schema.FORMAT).equals(format)) {
      throw new ModelFormatException("incompatible model: format " + format + ", this runtime reads "
          + Schema.FORMAT);
    }
    String features = meta.getOrDefault("features", "");
    if (!features.equals(String.join(",", Schema.FEATURES))) {
      throw new ModelFormatException("incompatible model: features [" + features
          + "], this runtime uses " + Schema.FEATURES);
    }
    String lgbm = text.substring(sep + SEPARATOR.length() + 2);
    GbdtModel model = GbdtModel.parse(lgbm);
    if (model.numFeatures() != Schema.WIDTH) {
      throw new ModelFormatException("incompatible model: " + model.numFeatures()
          + " input features, expected " + Schema.WIDTH);
    }
    List<String> names = model.featureNames();
    if (!names.equals(Schema.FEATURES)) {
      throw new ModelFormatException("incompatible model: tree feature_names " + names
          + " differ from " + Schema.FEATURES);
    }
    return new ModelArtifact(Map.copyOf(meta), lgbm, model);
  }

  public String meta(String key) {
    return meta.getOrDefault(key, "");
  }

  @Override
  public String toString() {
    return "ModelArtifact" + Arrays.toString(new Object[] {meta.get("trained"), model.numTrees()});
  }
}

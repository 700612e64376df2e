package io.grpcshm.policy.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

class GbdtModelTest {
  // Tree 0: numeric split on f0 <= 10 (missing NaN, default left) then categorical split on f1
  // in {1, 3} (bitset 0b1010); tree 1: a single leaf.
  static final String MODEL = """
      tree
      version=v4
      num_class=1
      num_tree_per_iteration=1
      label_index=0
      max_feature_idx=1
      objective=regression
      feature_names=a b
      feature_infos=[0:100] 0:1:2:3

      Tree=0
      num_leaves=3
      num_cat=1
      split_feature=0 1
      split_gain=1 1
      threshold=10 0
      decision_type=10 1
      left_child=1 -1
      right_child=-3 -2
      leaf_value=1.5 2.5 3.5
      leaf_weight=1 1 1
      leaf_count=1 1 1
      internal_value=0 0
      internal_weight=0 0
      internal_count=3 2
      cat_boundaries=0 1
      cat_threshold=10
      is_linear=0
      shrinkage=1


      Tree=1
      num_leaves=1
      num_cat=0
      split_feature=
      split_gain=
      threshold=
      decision_type=
      left_child=
      right_child=
      leaf_value=0.25
      leaf_weight=
      leaf_count=
      internal_value=
      internal_weight=
      internal_count=
      is_linear=0
      shrinkage=1


      end of trees
      """;

  @Test
  void numericalAndCategoricalSplitsAndMissingValues() {
    GbdtModel m = GbdtModel.parse(MODEL);
    assertEquals(2, m.numTrees());
    assertEquals(2, m.numFeatures());
    assertEquals(1.5 + 0.25, m.predict(new double[] {5, 1}));   // left, cat 1 in set
    assertEquals(1.5 + 0.25, m.predict(new double[] {10, 3}));  // <= is left
    assertEquals(2.5 + 0.25, m.predict(new double[] {5, 2}));   // cat 2 not in set
    assertEquals(2.5 + 0.25, m.predict(new double[] {5, 40}));  // beyond the bitset: right
    assertEquals(2.5 + 0.25, m.predict(new double[] {5, -1}));  // negative category: right
    assertEquals(2.5 + 0.25, m.predict(new double[] {5, Double.NaN})); // NaN category: right
    assertEquals(3.5 + 0.25, m.predict(new double[] {11, 1}));  // right
    // decision_type 10 = missing NaN (8) | default left (2): NaN goes left.
    assertEquals(1.5 + 0.25, m.predict(new double[] {Double.NaN, 1}));
  }

  @Test
  void corruptModelsAreRejectedWithTheProblemNamed() {
    var e = assertThrows(ModelFormatException.class, () -> GbdtModel.parse("hello"));
    assertTrue(e.getMessage().contains("not a LightGBM text model"), e.getMessage());
    e = assertThrows(ModelFormatException.class,
        () -> GbdtModel.parse(MODEL.replace("end of trees", "")));
    assertTrue(e.getMessage().contains("truncated"), e.getMessage());
    e = assertThrows(ModelFormatException.class,
        () -> GbdtModel.parse(MODEL.replace("left_child=1 -1", "left_child=1")));
    assertTrue(e.getMessage().contains("Tree=0: left_child has 1 values, expected 2"),
        e.getMessage());
    e = assertThrows(ModelFormatException.class,
        () -> GbdtModel.parse(MODEL.replace("num_class=1", "num_class=3")));
    assertTrue(e.getMessage().contains("multiclass"), e.getMessage());
    e = assertThrows(ModelFormatException.class,
        () -> GbdtModel.parse(MODEL.replace("objective=regression", "objective=binary")));
    assertTrue(e.getMessage().contains("objective 'binary'"), e.getMessage());
    e = assertThrows(ModelFormatException.class,
        () -> GbdtModel.parse(MODEL.replace("split_feature=0 1", "split_feature=0 7")));
    assertTrue(e.getMessage().contains("out of range"), e.getMessage());
    e = assertThrows(ModelFormatException.class,
        () -> GbdtModel.parse(MODEL.replace("threshold=10 0", "threshold=10 x")));
    assertTrue(e.getMessage().contains("bad number in threshold"), e.getMessage());
  }

  @Test
  void artifactHeaderIsChecked() {
    var e = assertThrows(ModelFormatException.class, () -> ModelArtifact.parse(MODEL));
    assertTrue(e.getMessage().contains("not a policy model"), e.getMessage());
    String wrongSchema = ModelArtifact.MAGIC + "\npolicy.format=1\npolicy.features=a,b\n---\n"
        + MODEL;
    e = assertThrows(ModelFormatException.class, () -> ModelArtifact.parse(wrongSchema));
    assertTrue(e.getMessage().startsWith("incompatible model: features [a,b]"), e.getMessage());
    String future = ModelArtifact.write(java.util.Map.of(), MODEL).replace("policy.format=1",
        "policy.format=9");
    e = assertThrows(ModelFormatException.class, () -> ModelArtifact.parse(future));
    assertTrue(e.getMessage().contains("format 9"), e.getMessage());
    // Right header, but the trees have 2 features, not the schema's 8.
    e = assertThrows(ModelFormatException.class,
        () -> ModelArtifact.parse(ModelArtifact.write(java.util.Map.of(), MODEL)));
    assertTrue(e.getMessage().contains("2 input features, expected 8"), e.getMessage());
    assertThrows(ModelFormatException.class, () -> ModelArtifact.parse(""));
  }
}

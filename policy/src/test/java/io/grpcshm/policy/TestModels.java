package io.grpcshm.policy;

import io.grpcshm.policy.internal.ModelArtifact;
import java.util.Map;

/** A hand-written model: CPU costs e^1-1 µs up to 1 MiB and e^5-1 above; SOFTWARE e^3-1. */
final class TestModels {
  private TestModels() {}

  static final String TREES = """
      tree
      version=v4
      num_class=1
      num_tree_per_iteration=1
      label_index=0
      max_feature_idx=7
      objective=regression
      feature_names=payload_bytes reuse_window pf_rate llc_pressure active_streams mover cache_injection mode
      feature_infos=none

      Tree=0
      num_leaves=3
      num_cat=1
      split_feature=5 0
      split_gain=1 1
      threshold=0 1048576
      decision_type=1 0
      left_child=1 -1
      right_child=-3 -2
      leaf_value=1 5 3
      leaf_weight=1 1 1
      leaf_count=1 1 1
      internal_value=0 0
      internal_weight=0 0
      internal_count=3 2
      cat_boundaries=0 1
      cat_threshold=1
      is_linear=0
      shrinkage=1


      end of trees
      """;

  /**
   * Mode-dependent: in SYNC the CPU costs e^1-1 µs and SOFTWARE e^2-1; in ASYNC and PIPELINED
   * the CPU e^3-1 and SOFTWARE e^2.5-1.
   */
  static final String MODE_TREES = """
      tree
      version=v4
      num_class=1
      num_tree_per_iteration=1
      label_index=0
      max_feature_idx=7
      objective=regression
      feature_names=payload_bytes reuse_window pf_rate llc_pressure active_streams mover cache_injection mode
      feature_infos=none

      Tree=0
      num_leaves=4
      num_cat=3
      split_feature=7 5 5
      split_gain=1 1 1
      threshold=0 1 2
      decision_type=1 1 1
      left_child=1 -1 -3
      right_child=2 -2 -4
      leaf_value=1 2 3 2.5
      leaf_weight=1 1 1 1
      leaf_count=1 1 1 1
      internal_value=0 0 0
      internal_weight=0 0 0
      internal_count=4 2 2
      cat_boundaries=0 1 2 3
      cat_threshold=1 1 1
      is_linear=0
      shrinkage=1


      end of trees
      """;

  static String modeArtifact() {
    return ModelArtifact.write(Map.of("candidates", "cpu,software", "trained", "test"),
        MODE_TREES);
  }

  static String artifact() {
    return ModelArtifact.write(Map.of("candidates", "cpu,software", "trained", "test"), TREES);
  }
}

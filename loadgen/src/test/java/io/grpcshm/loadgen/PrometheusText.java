package io.grpcshm.loadgen;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A strict reader of the Prometheus text exposition format 0.0.4, enough to check what
 * grpc-load writes: HELP/TYPE once per family and before its samples, a family's samples
 * together, valid metric and label names, escaped label values, float values, and histograms
 * with ascending le buckets, cumulative counts and a +Inf bucket equal to _count.
 */
final class PrometheusText {
  record Sample(String name, Map<String, String> labels, double value) {}

  private static final Pattern SAMPLE =
      Pattern.compile("^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\\{(.*)\\})? (\\S+)$");
  private static final Pattern LABEL =
      Pattern.compile("([a-zA-Z_][a-zA-Z0-9_]*)=\"((?:[^\"\\\\\\n]|\\\\[\\\\\"n])*)\"(,|$)");
  private static final Pattern META =
      Pattern.compile("^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) (.*)$");

  final Map<String, String> types = new LinkedHashMap<>();
  final List<Sample> samples = new ArrayList<>();

  static PrometheusText parse(String text) {
    PrometheusText t = new PrometheusText();
    assertTrue(text.endsWith("\n"), "the exposition ends with a line feed");
    Set<String> helped = new HashSet<>();
    Set<String> closed = new HashSet<>();
    String current = null;
    for (String line : text.split("\n")) {
      if (line.isEmpty()) {
        continue;
      }
      Matcher meta = META.matcher(line);
      if (line.startsWith("#")) {
        assertTrue(meta.matches(), "bad comment line: " + line);
        String family = meta.group(2);
        if (meta.group(1).equals("HELP")) {
          assertTrue(helped.add(family), "second HELP for " + family);
        } else {
          assertTrue(Set.of("counter", "gauge", "histogram", "summary", "untyped")
              .contains(meta.group(3)), "bad TYPE: " + line);
          assertTrue(t.types.putIfAbsent(family, meta.group(3)) == null,
              "second TYPE for " + family);
        }
        continue;
      }
      Matcher m = SAMPLE.matcher(line);
      assertTrue(m.matches(), "bad sample line: " + line);
      String name = m.group(1);
      String family = t.familyOf(name);
      assertNotNull(family, "sample before its TYPE: " + line);
      if (!family.equals(current)) {
        assertFalse(closed.contains(family), "samples of " + family + " are not together");
        if (current != null) {
          closed.add(current);
        }
        current = family;
      }
      Map<String, String> labels = new LinkedHashMap<>();
      if (m.group(2) != null && !m.group(2).isEmpty()) {
        Matcher l = LABEL.matcher(m.group(2));
        int end = 0;
        while (l.find() && l.start() == end) {
          assertTrue(labels.put(l.group(1), l.group(2)) == null, "repeated label: " + line);
          end = l.end();
        }
        assertEquals(m.group(2).length(), end, "bad labels: " + line);
      }
      t.samples.add(new Sample(name, labels, value(m.group(3), line)));
    }
    t.checkHistograms();
    return t;
  }

  private static double value(String v, String line) {
    switch (v) {
      case "+Inf":
        return Double.POSITIVE_INFINITY;
      case "-Inf":
        return Double.NEGATIVE_INFINITY;
      case "NaN":
        return Double.NaN;
      default:
        try {
          return Double.parseDouble(v);
        } catch (NumberFormatException e) {
          fail("bad value in: " + line);
          return 0;
        }
    }
  }

  private String familyOf(String name) {
    if (types.containsKey(name)) {
      return name;
    }
    for (String suffix : List.of("_bucket", "_sum", "_count")) {
      if (name.endsWith(suffix)) {
        String base = name.substring(0, name.length() - suffix.length());
        String type = types.get(base);
        if ("histogram".equals(type) || ("summary".equals(type) && !suffix.equals("_bucket"))) {
          return base;
        }
      }
    }
    return null;
  }

  private void checkHistograms() {
    types.forEach((family, type) -> {
      if (!type.equals("histogram")) {
        return;
      }
      double previousLe = Double.NEGATIVE_INFINITY;
      double previousCount = 0;
      List<Sample> buckets = samples(family + "_bucket");
      assertFalse(buckets.isEmpty(), family + " has no buckets");
      for (Sample b : buckets) {
        String le = b.labels().get("le");
        assertNotNull(le, "bucket without le: " + b);
        double bound = value(le, b.toString());
        assertTrue(bound > previousLe, family + ": le not ascending at " + le);
        assertTrue(b.value() >= previousCount, family + ": buckets not cumulative at " + le);
        previousLe = bound;
        previousCount = b.value();
      }
      assertEquals(Double.POSITIVE_INFINITY, previousLe, family + " lacks le=\"+Inf\"");
      assertEquals(1, samples(family + "_count").size());
      assertEquals(1, samples(family + "_sum").size());
      assertEquals(previousCount, samples(family + "_count").get(0).value(),
          family + ": +Inf bucket differs from _count");
    });
  }

  List<Sample> samples(String name) {
    return samples.stream().filter(s -> s.name().equals(name)).toList();
  }

  double value(String name, String label, String labelValue) {
    Map<String, Double> found = new HashMap<>();
    for (Sample s : samples(name)) {
      if (label == null || labelValue.equals(s.labels().get(label))) {
        found.put(s.labels().toString(), s.value());
      }
    }
    assertEquals(1, found.size(), name + " " + label + "=" + labelValue + ": " + found);
    return found.values().iterator().next();
  }
}

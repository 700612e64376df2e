package io.grpcshm.policy.tools;

import io.grpcshm.policy.PolicyEngine;
import io.grpcshm.policy.internal.Evaluation;
import io.grpcshm.policy.internal.ModelArtifact;
import io.grpcshm.policy.internal.TraceCsv;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * {@code evaluate}: scores a model on traces from a separate profiling run (pure Java, no
 * LightGBM): Table-5.3 figures for the model's argmin, for the runtime engine's bucketed/cached
 * decisions with and without online correction, and for the fallback rule and fixed choices.
 */
@Command(name = "evaluate", mixinStandardHelpOptions = true,
    description = "Evaluate a policy model on held-out traces.")
public final class Evaluate implements Callable<Integer> {
  @Option(names = "--traces", split = ",", required = true) List<Path> traces;

  @Option(names = "--model", description = "model file (default: the shipped default model)")
  Path model;

  @Option(names = "--train-traces", split = ",",
      description = "the run the model was trained on: fits the best size-threshold rule that the"
          + " model is judged against")
  List<Path> trainTraces;

  @Option(names = "--out", description = "also write the report here") Path out;

  @Option(names = "--predictions", description = "write each row with its predicted latency (CSV)")
  Path predictions;

  public static void main(String[] args) {
    System.exit(Cli.run(new Evaluate(), args));
  }

  @Override
  public Integer call() throws Exception {
    String text;
    if (model != null) {
      text = Files.readString(model, StandardCharsets.UTF_8);
    } else {
      try (InputStream in = PolicyEngine.class.getResourceAsStream(
          PolicyEngine.DEFAULT_MODEL_RESOURCE)) {
        if (in == null) {
          throw new IllegalStateException("no default model resource");
        }
        text = new String(in.readAllBytes(), StandardCharsets.UTF_8);
      }
    }
    ModelArtifact a = ModelArtifact.parse(text);
    List<TraceCsv.Row> rows = new ArrayList<>();
    for (Path p : traces) {
      rows.addAll(TraceCsv.read(p));
    }
    List<Evaluation.Instance> inst = Evaluation.instances(rows);
    // The host the traces describe: the movers that were profiled.
    java.util.Set<io.grpcshm.dsa.MoverKind> movers = java.util.EnumSet.noneOf(
        io.grpcshm.dsa.MoverKind.class);
    rows.forEach(r -> movers.add(r.mover()));
    StringBuilder b = new StringBuilder("# Policy model evaluation (separate run)\n\n");
    b.append("model: ").append(model == null ? "default resource" : model).append(", trained ")
        .append(a.meta("trained")).append(" on ").append(a.meta("traces")).append("\n\n");
    b.append("traces: ").append(traces).append(" (").append(rows.size()).append(" rows)\n\n");
    b.append(Reports.full(a, null, rows));
    var calibrations = TraceCsv.calibrations(rows);
    b.append("Predictions are scaled by each run's own calibrated lines, as the engine deployed"
        + " on that host scales them:\n\n");
    calibrations.forEach((run, c) -> b.append("- ").append(run).append(": ")
        .append(PolicyEngine.builder().modelText(text).hostMovers(movers).hostCalibration(c)
            .build().status()).append('\n'));
    b.append('\n');
    b.append(Evaluation.decisions(inst, Reports.engineChooser(text, false, movers, calibrations))
        .table("Runtime engine (bucketed features, decision cache)")).append('\n');
    b.append(Evaluation.decisions(inst, Reports.engineChooser(text, true, movers, calibrations))
        .table("Runtime engine + online correction (fed the chosen candidate's latency)"))
        .append('\n');
    b.append(Reports.modeHints(rows, a)).append('\n');
    if (trainTraces != null && !trainTraces.isEmpty()) {
      List<TraceCsv.Row> train = new ArrayList<>();
      for (Path p : trainTraces) {
        train.addAll(TraceCsv.read(p));
      }
      b.append(Reports.comparison(a, text, movers, train, rows));
    } else {
      b.append("(no --train-traces: the comparison with the best size-threshold rule is"
          + " skipped)\n");
    }
    if (predictions != null) {
      StringBuilder p = new StringBuilder(TraceCsv.header()).append(",predicted_us\n");
      var pred = Evaluation.deployedLog(a, Evaluation.hostLines(rows));
      for (TraceCsv.Row r : rows) {
        p.append(r.toCsv()).append(',').append(Math.expm1(pred.applyAsDouble(r))).append('\n');
      }
      Files.writeString(predictions, p.toString(), StandardCharsets.UTF_8);
    }
    if (out != null) {
      Files.writeString(out, b.toString(), StandardCharsets.UTF_8);
    }
    System.out.println(b);
    return 0;
  }
}

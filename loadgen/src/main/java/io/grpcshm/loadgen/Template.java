package io.grpcshm.loadgen;

import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.ThreadLocalRandom;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * ghz-style call templates in request data and metadata: {@code {{.RequestNumber}}},
 * {@code {{.WorkerID}}}, {@code {{.UUID}}}, {@code {{.FullyQualifiedName}}}, {@code
 * {{.MethodName}}}, {@code {{.ServiceName}}}, {@code {{.InputName}}}, {@code {{.OutputName}}},
 * {@code {{.Timestamp}}}, {@code {{.TimestampUnix}}}, {@code {{.TimestampUnixMilli}}}, {@code
 * {{.TimestampUnixNano}}}, and the functions {@code {{newUUID}}}, {@code {{randomString N}}},
 * {@code {{randomInt MIN MAX}}}. Parsed once; rendering is a walk over the pieces.
 */
final class Template {
  private static final Pattern ACTION = Pattern.compile("\\{\\{\\s*(.*?)\\s*}}");
  private static final char[] ALPHANUM =
      "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789".toCharArray();

  /** What a template can refer to for one call. */
  record Context(long requestNumber, int workerId, String fullMethod, String service,
      String method, String inputName, String outputName) {}

  private interface Piece {
    void append(StringBuilder out, Context ctx);
  }

  private final List<Piece> pieces;
  private final boolean constant;

  private Template(List<Piece> pieces, boolean constant) {
    this.pieces = pieces;
    this.constant = constant;
  }

  /** True when the text has no {{...}} actions (render once, reuse). */
  boolean isConstant() {
    return constant;
  }

  static Template parse(String text) {
    List<Piece> pieces = new ArrayList<>();
    Matcher m = ACTION.matcher(text);
    int last = 0;
    boolean constant = true;
    while (m.find()) {
      String literal = text.substring(last, m.start());
      pieces.add((out, ctx) -> out.append(literal));
      pieces.add(action(m.group(1)));
      constant = false;
      last = m.end();
    }
    String tail = text.substring(last);
    pieces.add((out, ctx) -> out.append(tail));
    return new Template(pieces, constant);
  }

  String render(Context ctx) {
    StringBuilder sb = new StringBuilder();
    for (Piece p : pieces) {
      p.append(sb, ctx);
    }
    return sb.toString();
  }

  private static Piece action(String expr) {
    String[] words = expr.trim().split("\\s+");
    switch (words[0]) {
      case ".RequestNumber": return (o, c) -> o.append(c.requestNumber());
      case ".WorkerID": return (o, c) -> o.append(c.workerId());
      case ".UUID", "newUUID": return (o, c) -> o.append(UUID.randomUUID());
      case ".FullyQualifiedName": return (o, c) -> o.append(c.fullMethod());
      case ".MethodName": return (o, c) -> o.append(c.method());
      case ".ServiceName": return (o, c) -> o.append(c.service());
      case ".InputName": return (o, c) -> o.append(c.inputName());
      case ".OutputName": return (o, c) -> o.append(c.outputName());
      case ".Timestamp": return (o, c) -> o.append(Instant.now());
      case ".TimestampUnix": return (o, c) -> o.append(System.currentTimeMillis() / 1000);
      case ".TimestampUnixMilli": return (o, c) -> o.append(System.currentTimeMillis());
      case ".TimestampUnixNano": {
        return (o, c) -> {
          Instant now = Instant.now();
          o.append(now.getEpochSecond() * 1_000_000_000L + now.getNano());
        };
      }
      case "randomString": {
        int n = words.length > 1 ? intArg(expr, words[1]) : 0;
        return (o, c) -> {
          ThreadLocalRandom r = ThreadLocalRandom.current();
          int len = n > 0 ? n : r.nextInt(1, 17);
          for (int i = 0; i < len; i++) {
            o.append(ALPHANUM[r.nextInt(ALPHANUM.length)]);
          }
        };
      }
      case "randomInt": {
        if (words.length != 3) {
          throw new IllegalArgumentException("template {{" + expr + "}}: randomInt MIN MAX");
        }
        int lo = intArg(expr, words[1]);
        int hi = intArg(expr, words[2]);
        if (hi <= lo) {
          throw new IllegalArgumentException("template {{" + expr + "}}: MAX must exceed MIN");
        }
        return (o, c) -> o.append(ThreadLocalRandom.current().nextInt(lo, hi));
      }
      default:
        throw new IllegalArgumentException("unknown template action {{" + expr + "}}; known: "
            + ".RequestNumber .WorkerID .UUID .FullyQualifiedName .MethodName .ServiceName "
            + ".InputName .OutputName .Timestamp .TimestampUnix .TimestampUnixMilli "
            + ".TimestampUnixNano newUUID 'randomString N' 'randomInt MIN MAX'");
    }
  }

  private static int intArg(String expr, String word) {
    try {
      return Integer.parseInt(word);
    } catch (NumberFormatException e) {
      throw new IllegalArgumentException("template {{" + expr + "}}: '" + word
          + "' is not an integer", e);
    }
  }
}

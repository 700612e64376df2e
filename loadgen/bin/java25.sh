#!/bin/sh
# Runs a JDK 25+ `java` so `mvn exec:exec@grpc-load` works without a toolchain-selecting phase
# even when the default java is 17: $JAVA25_HOME, then $JAVA_HOME, then the newest JDK under
# /usr/lib/jvm whose `release` file says JAVA_VERSION >= 25.
major() {
  sed -n 's/^JAVA_VERSION="\([0-9]*\).*/\1/p' "$1/release" 2>/dev/null
}
best=""
best_major=0
for j in "$JAVA25_HOME" "$JAVA_HOME" /usr/lib/jvm/*; do
  [ -n "$j" ] && [ -x "$j/bin/java" ] || continue
  m=$(major "$j")
  [ -n "$m" ] || continue
  if [ "$m" -ge 25 ] && [ "$m" -gt "$best_major" ]; then
    best="$j"
    best_major="$m"
    [ "$j" = "$JAVA25_HOME" ] && break
  fi
done
if [ -z "$best" ]; then
  echo "grpc-load: no JDK 25+ found (set JAVA25_HOME)" >&2
  exit 1
fi
exec "$best/bin/java" "$@"

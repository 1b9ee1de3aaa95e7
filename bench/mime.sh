#!/bin/sh
# MIME builder throughput: bench/mime.sh [N recipients, default 1000000]
# Single-threaded, so msgs/s is per core.  Builds with -O2 into bench/build.
set -e
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT="$ROOT/bench/build"
mkdir -p "$OUT"
${CC:-gcc} -std=gnu11 -O2 -Wall -Wextra -Werror -I"$ROOT/include" \
	-o "$OUT/bench_mime" "$ROOT/bench/bench_mime.c" \
	"$ROOT/src/mime.c" "$ROOT/src/mime_encode.c" \
	"$ROOT/src/unsub_token.c" "$ROOT/src/sha256.c"
"$OUT/bench_mime" "${1:-1000000}"

#!/bin/sh
# Template rendering throughput, one core.
#
#   bench/render.sh [N]      N renders per template (default 1000000)
#   BENCH_POOL=64 bench/render.sh 200000   data pool that stays in cache
#
# Rates are per core (thread CPU time).  For each template it prints the
# plain rate (tmpl_render of the compiled template), the specialised rate
# (tmpl_render of tmpl_specialize(template, {broadcast, list, workspace}),
# what the sender uses; outputs are checked byte-identical first) and the
# same-run memcpy baseline.
# Builds bench/bench_render with -O2 into bench/build/ and renders the 5 KB
# and 20 KB newsletters in bench/templates/ N times each, then the same
# newsletters with a block that uses the Liquid tags and filters added in
# 1.3 (case/when, liquid, ranges, parentloop, for over an object, number
# and string filters): *_liquid.liquid.  newsletter_5k_port.liquid is the
# 5 KB newsletter as ported from Shopify or Jekyll: the same content written
# with 1.3's tags (capture, case/when, the liquid tag, map/uniq/sort/slice/
# join over the broadcast's data, a tablerow grid), most of which the
# specialiser pre-renders.
set -eu
N=${1:-1000000}
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
OUT="$HERE/build"
CC=${CC:-cc}
mkdir -p "$OUT"
$CC -std=gnu11 -O2 -DNDEBUG -Wall -Wextra -Werror -Wno-unused-parameter -I"$ROOT/include" \
	$(pkg-config --cflags json-c) \
	-o "$OUT/bench_render" "$HERE/bench_render.c" "$ROOT"/src/tmpl/*.c \
	$(pkg-config --libs json-c) -lm
"$OUT/bench_render" "$N" \
	"$HERE/templates/newsletter_5k.liquid=render_5k" \
	"$HERE/templates/newsletter_20k.liquid=render_20k" \
	"$HERE/templates/newsletter_5k_liquid.liquid=render_5k_liquid" \
	"$HERE/templates/newsletter_5k_port.liquid=render_5k_port" \
	"$HERE/templates/newsletter_20k_liquid.liquid=render_20k_liquid"

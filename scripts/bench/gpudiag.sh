#!/usr/bin/env bash
# GPU diagnostics for docs/PERFORMANCE.md: clocks, power state and utilisation
# while the roofline probe (bandwidth.mjs) runs under Deno/wgpu.
set -uo pipefail
OUT=${OUT:-/tmp/ember-h200}
mkdir -p "$OUT"
source .gpu/setup.sh
nvidia-smi -q -d CLOCK,PERFORMANCE,POWER > "$OUT/diag.txt" 2>&1
nvidia-smi dmon -s pucm -d 1 > "$OUT/dmon.txt" 2>&1 &
dm=$!
(cd /tmp && ONEPASS=1 ITERS=${ITERS:-20} timeout 120 /tmp/deno run -A --unstable-webgpu "$OLDPWD/.gpu/bandwidth.mjs") >> "$OUT/diag.txt" 2>&1
(cd /tmp && ITERS=${ITERS:-20} L=8 timeout 120 /tmp/deno run -A --unstable-webgpu "$OLDPWD/.gpu/bandwidth.mjs") >> "$OUT/diag.txt" 2>&1
kill $dm
nvidia-smi -q -d CLOCK,PERFORMANCE >> "$OUT/diag.txt" 2>&1
cat "$OUT/dmon.txt"
grep -E 'GB/s|adapter' "$OUT/diag.txt"

#!/usr/bin/env bash
# The GPU benchmark of docs/PERFORMANCE.md ("Engine and H200"), run on the lent
# GPU machine from the repository root with the build outputs carried:
#
#   bash ../shared/gpu/prepare.sh                      # here: .gpu/ (Vulkan loaders, Deno)
#   GOOS=js GOARCH=wasm go build -ldflags=-s -o build/ember.wasm ./wasm
#   go build -ldflags=-s -o build/convert ./scripts/convert
#   go build -ldflags=-s -o build/bench ./scripts/bench
#   mkdir -p build/goroot/lib/wasm && cp "$(go env GOROOT)/lib/wasm/wasm_exec.js" build/goroot/lib/wasm/
#   run (carry .gpu and build): bash scripts/bench/h200.sh
#
# It writes the synthetic llama2-7b bundles with the linux/amd64 converter,
# runs the roofline probe (bandwidth.mjs) and scripts/bench under Deno (wgpu on
# the NVIDIA Vulkan driver), sampling nvidia-smi's memory.used meanwhile.
# Results go to $OUT (default /tmp/ember-h200): log.txt and bench-SCHEME.json.
set -uo pipefail
OUT=${OUT:-/tmp/ember-h200}
mkdir -p "$OUT"
LOG="$OUT/log.txt"
source .gpu/setup.sh
export EMBER_DENO=/tmp/deno EMBER_DENO_NATIVE_GPU=1 EMBER_WASM=$PWD/build/ember.wasm GOROOT=$PWD/build/goroot
P=${P:-512}
N=${N:-128}
# Default runs per bundle: P prompt tokens then N decode steps with 16 steps in
# flight (with a timestamp profile of one decode pass), and a short-prompt run.
now() { date +%s.%N; }
since() { awk "BEGIN{printf \"%.1f\", $(now) - $1}"; }
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,clocks.max.mem --format=csv >> "$LOG" 2>&1
if [ "${BANDWIDTH:-1}" = 1 ]; then
  echo "== bandwidth.mjs" >> "$LOG"
  # ONEPASS=1: all dispatches of a sweep in one compute pass, as the engine runs them.
  (cd /tmp && ONEPASS=${ONEPASS:-1} ITERS=${ITERS:-10} timeout 90 /tmp/deno run -A --unstable-webgpu "$OLDPWD/.gpu/bandwidth.mjs") >> "$LOG" 2>&1
fi
for q in ${QUANTS:-q8_channel q8_block32}; do
  [ "$q" = q8_block32 ] && [ -n "${CONFIGS_B32:-}" ] && CONFIGS=$CONFIGS_B32
  echo "== $q" >> "$LOG"
  t=$(now)
  build/convert -synthetic llama2-7b -quant "$q" -out "/tmp/b-$q" 2>&1 | tr "\r" "\n" | tail -1 >> "$LOG"
  echo "convert: $(since "$t") s; $(du -sb "/tmp/b-$q" | cut -f1) bytes" >> "$LOG"
  # CONFIGS: bench variants separated by ';' (default: one run, P prompt tokens, N decode steps).
  IFS=';' read -ra configs <<< "${CONFIGS:-"-prompt-tokens $P -n $N -lookahead 16 -profile 3;-prompt-tokens 128 -n 256 -lookahead 16"}"
  # WASMS: builds to compare on the same machine (default build/ember.wasm).
  i=0
  for wasm in ${WASMS:-build/ember.wasm}; do
    export EMBER_WASM=$PWD/$wasm
    for cfg in "${configs[@]}"; do
      i=$((i+1))
      nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 200 > "/tmp/mem-$q.txt" 2>&1 &
      smi=$!
      t=$(now)
      echo "-- bench $q $wasm $cfg" >> "$LOG"
      # shellcheck disable=SC2086
      timeout ${BENCH_TIMEOUT:-200} build/bench -model "/tmp/b-$q" -backend webgpu -runtime deno $cfg -json \
        > "$OUT/bench-$q-$i.json" 2>> "$LOG"
      echo "bench exit $? after $(since "$t") s" >> "$LOG"
      kill $smi 2>/dev/null
      echo "nvidia-smi memory.used max: $(sort -n "/tmp/mem-$q.txt" | tail -1) MiB (idle $(head -1 "/tmp/mem-$q.txt") MiB)" >> "$LOG"
    done
  done
  rm -rf "/tmp/b-$q"
done
if [ "${KERNELBENCH:-0}" = 1 ] && [ -f build/kernelbench/prog.wasm ]; then
  echo "== kernelbench" >> "$LOG"
  (cd build/kernelbench && timeout 120 /tmp/deno run -A --unstable-webgpu runner.mjs prog.wasm) > "$OUT/kernelbench.txt" 2>&1
fi
cat "$LOG"

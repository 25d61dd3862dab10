#!/usr/bin/env bash
# The README's Performance table in one run: every bench, one after the other, one JSON line each
# (after a "# command" line). Any maskgen training running on the machine is paused (SIGSTOP) for the
# run and resumed after, so the figures are an idle machine's. The benches whose ratios the README
# gives (the step's share of sgemm, compiled against per-kernel) take more runs: this host's speed
# wanders 2-3x within seconds.
#
#   scripts/perf-table.sh > perf.jsonl
set -u
cd "$(dirname "$0")/.."
export PEER_PYTHON=${PEER_PYTHON:-/usr/bin/python3}
M="node bin/maskgen.js"
P=$(pgrep -d' ' -f "bin/maskgen.js .*train-" || true)
if [ -n "$P" ]; then
  kill -STOP $P
  trap 'kill -CONT $P' EXIT
  sleep 2
fi
run() { echo "# $*"; timeout 600 $M "$@" 2>/dev/null | tail -1; }
run --backend onnx bench train-transformer --peer --runs 7
run --backend onnx bench train-transformer --no-compiled --runs 3
run --backend onnx bench generate --peer
run --backend onnx bench generate --images 16 --peer
run --backend onnx bench tokenizer --peer --runs 7
run --backend onnx bench tokenizer --no-compiled --runs 3
run --backend onnx bench refine --config small --runs 11
run --backend wasm bench train-transformer --runs 3
run --backend wasm bench generate --runs 3
run --backend wasm bench tokenizer --runs 3
run --backend wasm bench refine --config small --runs 3

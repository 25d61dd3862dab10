#!/usr/bin/env bash
# Parallel decoding against the autoregressive baseline (README, "Autoregressive baseline"): the
# speed of a masked and an autoregressive bundle of the same size through `bench generate`, taken in
# interleaved rounds so that both kinds see the same machine, then the independent classifier's
# accuracy at guidance 3 for both. One JSON line per measurement in $OUT, a summary on stdout.
#
#   MASKED=runs/fmnist AR=runs/ar-fmnist scripts/compare-ar-masked.sh
set -euo pipefail
MASKED=${MASKED:-runs/fmnist}
AR=${AR:-runs/ar-fmnist}
ROUNDS=${ROUNDS:-3}
PER_CLASS=${PER_CLASS:-30}
OUT=${OUT:-runs/compare-ar-masked.jsonl}
M=${M:-npx tsx src/cli/main.ts}
B="--backend ${BACKEND:-onnx} ${THREADS:+--threads $THREADS}"
DATA=${DATA:-data}
CLASSIFIER=${CLASSIFIER:-runs/fmnist-classifier}
mkdir -p "$(dirname "$OUT")"
: >"$OUT"

bench() { # LABEL IMAGES BUNDLE [STEPS]
  local label=$1 images=$2 bundle=$3 steps=${4:-12}
  $M $B bench generate --bundle "$bundle" --images "$images" --steps "$steps" --guidance 3 --runs 3 --prompt "a photo of a dress" |
    tail -n 1 | jq -c --arg name "$label" '{"label": $name} + .' >>"$OUT"
}

for round in $(seq "$ROUNDS"); do
  echo "speed, round $round of $ROUNDS" >&2
  for images in 16 1; do
    bench "autoregressive, KV cache" "$images" "$AR"
    for steps in 8 12 24; do bench "masked, $steps steps" "$images" "$MASKED" "$steps"; done
  done
done

for bundle in "$MASKED" "$AR"; do
  echo "classifier accuracy, $bundle" >&2
  npx tsx scripts/eval-fmnist.ts --bundle "$bundle" --classifier "$CLASSIFIER" --test "$DATA/fmnist-test" --train "$DATA/fmnist-train" \
    --guidance 3 --per-class "$PER_CLASS" ${BACKEND:+--backend $BACKEND} |
    tail -n 1 | jq -c --arg name "accuracy $bundle" '{"label": $name, accuracy: .guidance["3"].accuracy, frechet: .guidance["3"].frechet, seconds: .guidance["3"].seconds}' >>"$OUT"
done

# the median over the rounds of each bench's median ms per image, and the accuracies
jq -s -r '
  (map(select(.bench == "generate")) | group_by([.images, .label])[] |
    (map(.msPerImage) | sort | .[(length / 2 | floor)]) as $ms |
    "\(.[0].images) images\t\(.[0].label)\t\($ms | . * 10 | round / 10) ms/image\t\(1000 / $ms | . * 10 | round / 10) images/s"),
  (map(select(.accuracy != null))[] | "\(.label)\t\(.accuracy * 1000 | round / 10) %\tFréchet \(.frechet * 100 | round / 100)\t\(.seconds) s")' "$OUT"

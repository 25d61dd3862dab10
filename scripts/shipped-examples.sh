#!/usr/bin/env bash
# The README's pictures of the shipped model: a grid for a dozen prompts, one example of each edit,
# and the training curves of every stage. Run after scripts/emoji.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
M="node bin/maskgen.js ${BACKEND:+--backend $BACKEND} ${THREADS:+--threads $THREADS}"
BUNDLE=${BUNDLE:-models/maskgen-emoji-small}
OUT=runs/shipped-examples
mkdir -p "$OUT" docs/images
$M generate --bundle "$BUNDLE" --prompts scripts/emoji-prompts.txt --n 4 --seed 1 --out "$OUT/grid"
cp "$OUT/grid/grid.png" docs/images/shipped-grid.png
# Edits work on the 32 px token grid; the refiner is not involved.
$M edit --bundle "$BUNDLE" --image data/emoji64/twitter_1f600.png --box 0,32,64,32 --prompt "crying face" --seed 1 --out "$OUT/inpaint.png"
$M edit --bundle "$BUNDLE" --image data/emoji64/twitter_1f499.png --extend 32,0,32,0 --prompt "two hearts" --seed 1 --out "$OUT/outpaint.png"
$M edit --bundle "$BUNDLE" --image data/emoji64/twitter_1f600.png --mask-free --guidance 2 --prompt "crying face" --seed 1 --out "$OUT/maskfree.png"
for e in inpaint outpaint maskfree; do
  node -e "require('sharp')('$OUT/$e-before-after.png').metadata().then(m => require('sharp')('$OUT/$e-before-after.png').resize(m.width * 3, m.height * 3, { kernel: 'nearest' }).toFile('docs/images/shipped-$e.png'))"
done
# The refiner is the one of earlier bundles; its training logs are not in the tree (its curves are in
# docs/images/shipped-curves.png of git history before the 2,048-code tokenizer).
npx tsx scripts/plot-curves.ts --out docs/images/shipped-curves.png \
  --panel "tokenizer=runs/emoji-tok8/logs/vqgan.jsonl:loss" \
  --panel "transformer=runs/emoji10f/logs/transformer.jsonl:loss"

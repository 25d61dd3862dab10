#!/usr/bin/env bash
# The shipped model, end to end on a CPU: emoji (Twemoji + Noto) from the npm packages → tokenizer
# (32 px) → masked transformer → latent-diffusion refiner (32 → 64 px) → models/maskgen-emoji-small.
# Each stage's wall time goes to runs/emoji-recipe-times.txt. Measured times are in the README.
#
#   THREADS=1 scripts/emoji.sh     # one core per stage (the README's figures ran two stages side by side)
set -euo pipefail
cd "$(dirname "$0")/.."
M="node bin/maskgen.js"
B="--backend ${BACKEND:-auto} ${THREADS:+--threads $THREADS}"
TIMES=runs/emoji-recipe-times.txt
mkdir -p runs
stage() {
  local name=$1
  shift
  local t0=$SECONDS
  "$@"
  echo "$name $((SECONDS - t0))s" | tee -a "$TIMES"
}
stage import $M data import-emoji --vendors twitter,google --out data/emoji64 --size 64
stage tokenizer $M train-tokenizer $B --config small --data data/emoji64 --out runs/emoji-tok3 --steps 3000
$M reconstruct $B --bundle runs/emoji-tok3 --data data/emoji64 --out runs/emoji-tok3/recon --json
stage transformer $M train-transformer $B --config small --data data/emoji64 --tokenizer runs/emoji-tok3 --out runs/emoji3 --steps 3000
# The shipped transformer then trained 3,000 steps more, resumed with a new cosine horizon (a warm restart).
cp -r runs/emoji3 runs/emoji4
stage transformer-more $M train-transformer $B --config small --data data/emoji64 --tokenizer runs/emoji-tok3 --out runs/emoji4 --resume --steps 6000
# The refiner trains on the 64 px originals; 10% are held out (runs/emoji-refiner/holdout.json) for scripts/eval-refiner.ts.
# (The shipped one was stopped at denoiser step 660 and resumed with --steps 4500.)
stage refiner $M train-refiner $B --config small --data data/emoji64 --out runs/emoji-refiner --hold-out 0.1 --steps 4500
stage export $M export --bundle runs/emoji4 --refiner runs/emoji-refiner --out models/maskgen-emoji-small --float16 \
  --credit "Trained on Twemoji graphics (c) Twitter, Inc. and other contributors, CC-BY 4.0, https://github.com/twitter/twemoji" \
  --credit "Trained on Noto Emoji graphics (c) Google, Apache License 2.0, https://github.com/googlefonts/noto-emoji" \
  --credit "Images taken from the npm packages emoji-datasource-twitter and emoji-datasource-google (MIT) by Cal Henderson / iamcal"
stage grid $M generate $B --bundle models/maskgen-emoji-small --prompts scripts/emoji-prompts.txt --n 4 --seed 1 --out runs/emoji-samples

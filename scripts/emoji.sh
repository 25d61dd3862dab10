#!/usr/bin/env bash
# The shipped model, end to end on a CPU: emoji (Twemoji + Noto) from the npm packages → tokenizer
# (32 px) → masked transformer → latent-diffusion refiner (32 → 64 px) → models/maskgen-emoji-small.
# Each stage's wall time goes to runs/emoji-recipe-times.txt. Measured times are in the README.
#
#   THREADS=1 scripts/emoji.sh     # one core per stage (the README's figures ran two stages side by side)
set -euo pipefail
cd "$(dirname "$0")/.."
TIMES=runs/emoji-recipe-times.txt
source scripts/recipe-lib.sh
stage import $M data import-emoji --vendors twitter,google --out data/emoji64 --size 64
# A seeded tenth held out (the same images train-refiner --hold-out 0.1 holds out) to measure the tokenizer on.
$M data split --data data/emoji64 --hold-out 0.1 --train data/emoji64-train --held data/emoji64-held
# Tokenizer: 2,048 codes of 32 dimensions, horizontal flips, 16,000 steps on the training side only,
# measured on the held-out tenth. scripts/emoji-tok-config.json is scripts/emoji-config.json with those
# codes and steps and 6,000 transformer steps.
stage tokenizer $M train-tokenizer $B --config scripts/emoji-tok-config.json --data data/emoji64-train --out runs/emoji-tok8
$M reconstruct $B --bundle runs/emoji-tok8 --data data/emoji64-held --out runs/emoji-tok8/recon-held --json
# The transformer learns every name from all the images (two per name), with an EMA of its weights
# (what the bundle ships): 6,000 steps on the images, then 1,500 more on the images and their mirrors
# (resumed with --flip and a new cosine horizon): the mirrors bring back the colour words ("green heart").
stage transformer $M train-transformer $B --config scripts/emoji-tok-config.json --data data/emoji64 --tokenizer runs/emoji-tok8 --out runs/emoji10f --steps 6000 --ema 0.999
stage transformer-flips $M train-transformer $B --config scripts/emoji-tok-config.json --data data/emoji64 --tokenizer runs/emoji-tok8 --out runs/emoji10f --resume --steps 7500 --ema 0.999 --flip
# The refiner trains on the 64 px originals; 10% are held out (runs/emoji-refiner/holdout.json) for scripts/eval-refiner.ts.
# (The shipped refiner is the one of the previous recipe, taken over from the earlier bundle: stopped at denoiser
# step 660 and resumed with --steps 4500.)
[ -d runs/emoji-refiner ] || stage refiner $M train-refiner $B --config small --data data/emoji64 --out runs/emoji-refiner --hold-out 0.1 --steps 4500
npx tsx scripts/eval-emoji.ts $B --bundle runs/emoji10f --refiner runs/emoji-refiner --classifier runs/emoji64-classifier --guidance 3,5 --plausibility 0.1 --prompts 2000
stage export $M export --bundle runs/emoji10f --refiner runs/emoji-refiner --out models/maskgen-emoji-small --float16 \
  --sampling "${SAMPLING:-{\"guidance\":5,\"plausibility\":0.1}}" \
  --credit "Trained on Twemoji graphics (c) Twitter, Inc. and other contributors, CC-BY 4.0, https://github.com/twitter/twemoji" \
  --credit "Trained on Noto Emoji graphics (c) Google, Apache License 2.0, https://github.com/googlefonts/noto-emoji" \
  --credit "Images from the npm packages emoji-datasource-twitter and emoji-datasource-google (MIT) by Cal Henderson"
stage grid $M generate $B --bundle models/maskgen-emoji-small --prompts scripts/emoji-prompts.txt --n 4 --seed 1 --out runs/emoji-samples

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
# Tokenizer: codebook 1024, horizontal flips, 6,000 steps planned (scripts/emoji-config.json); the
# shipped one was stopped at step 5,170 (Ctrl-C saves) to give the transformer its hour.
stage tokenizer $M train-tokenizer $B --config scripts/emoji-config.json --data data/emoji64-train --out runs/emoji-tok5
$M reconstruct $B --bundle runs/emoji-tok5 --data data/emoji64-held --out runs/emoji-tok5/recon-held --json
# The transformer learns every name from all the images (two per name): 3,500 steps, continued to
# 5,000 and then to 9,000 with an EMA of the weights (what the bundle ships), each a warm restart
# with a new cosine horizon (--resume --steps N; the shipped run was stopped and resumed so).
stage transformer $M train-transformer $B --config scripts/emoji-config.json --data data/emoji64 --tokenizer runs/emoji-tok5 --out runs/emoji6 --steps 3500
stage transformer-continued $M train-transformer $B --config scripts/emoji-config.json --data data/emoji64 --tokenizer runs/emoji-tok5 --out runs/emoji6 --resume --steps 5000
stage transformer-ema $M train-transformer $B --config scripts/emoji-config.json --data data/emoji64 --tokenizer runs/emoji-tok5 --out runs/emoji6 --resume --steps 9000 --ema 0.999
# The refiner trains on the 64 px originals; 10% are held out (runs/emoji-refiner/holdout.json) for scripts/eval-refiner.ts.
# (The shipped refiner is the one of the previous recipe, taken over from the earlier bundle: stopped at denoiser
# step 660 and resumed with --steps 4500.)
[ -d runs/emoji-refiner ] || stage refiner $M train-refiner $B --config small --data data/emoji64 --out runs/emoji-refiner --hold-out 0.1 --steps 4500
npx tsx scripts/eval-emoji.ts $B --bundle runs/emoji6 --refiner runs/emoji-refiner --classifier runs/emoji64-classifier --guidance 3
npx tsx scripts/eval-emoji.ts $B --bundle runs/emoji6 --refiner runs/emoji-refiner --classifier runs/emoji64-classifier --guidance 3,5 --plausibility 0.1
stage export $M export --bundle runs/emoji6 --refiner runs/emoji-refiner --out models/maskgen-emoji-small --float16 \
  --sampling "${SAMPLING:-{\"guidance\":3,\"plausibility\":0.1}}" \
  --credit "Trained on Twemoji graphics (c) Twitter, Inc. and other contributors, CC-BY 4.0, https://github.com/twitter/twemoji" \
  --credit "Trained on Noto Emoji graphics (c) Google, Apache License 2.0, https://github.com/googlefonts/noto-emoji" \
  --credit "Images taken from the npm packages emoji-datasource-twitter and emoji-datasource-google (MIT) by Cal Henderson / iamcal"
stage grid $M generate $B --bundle models/maskgen-emoji-small --prompts scripts/emoji-prompts.txt --n 4 --seed 1 --out runs/emoji-samples

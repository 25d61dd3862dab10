#!/usr/bin/env bash
# The shipped Fashion-MNIST bundle (models/maskgen-fmnist-small), end to end on a CPU: import →
# tokenizer (32 px, 1 channel) → masked transformer with its built-in text encoder → the independent
# classifier's check → export. Needs: apt-get install dataset-fashion-mnist. Stage times go to
# runs/fmnist-recipe-times.txt; the measured ones are in the README.
#
#   THREADS=1 scripts/fmnist.sh
set -euo pipefail
cd "$(dirname "$0")/.."
TIMES=runs/fmnist-recipe-times.txt
source scripts/recipe-lib.sh
stage import $M data import-fashion-mnist --split train --out data/fmnist-train
$M data import-fashion-mnist --split test --out data/fmnist-test
stage tokenizer $M train-tokenizer $B --config small --channels 1 --data data/fmnist-train --out runs/fmnist-tok --steps 3000
$M reconstruct $B --bundle runs/fmnist-tok --data data/fmnist-test --limit 2000 --json
stage transformer $M train-transformer $B --config small --data data/fmnist-train --tokenizer runs/fmnist-tok --out runs/fmnist --steps 2000
# Continued to 4,000 steps (a new cosine horizon) with an EMA of the weights, which the bundle ships.
stage transformer-continued $M train-transformer $B --config small --data data/fmnist-train --tokenizer runs/fmnist-tok --out runs/fmnist --resume --steps 4000 --ema 0.999
# The sampler sweep behind the shipped settings (README: "The shipped Fashion-MNIST model").
npx tsx scripts/eval-fmnist.ts $B --bundle runs/fmnist --classifier runs/fmnist-classifier --per-class 50 --guidance 1.5,2,3
npx tsx scripts/eval-edit-fmnist.ts $B --bundle runs/fmnist --selection least-likely --per-pair 20 --sweep 0.1x8@6t0.5,0.1x10@6t0.5
stage export $M export --bundle runs/fmnist --out models/maskgen-fmnist-small --float16 \
  --sampling "${SAMPLING:-{\"guidance\":2,\"maskFree\":{\"strength\":0.1,\"iterations\":8,\"steps\":2,\"revert\":0.15}}}" \
  --credit "Trained on Fashion-MNIST (c) Zalando SE, MIT License, https://github.com/zalandoresearch/fashion-mnist (Debian package dataset-fashion-mnist)"

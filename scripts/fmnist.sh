#!/usr/bin/env bash
# Fashion-MNIST end to end on a CPU: import, tokenizer (30 min on 2 cores), transformer (60 min),
# then the independent-classifier check of generated images. Needs: apt-get install dataset-fashion-mnist
set -euo pipefail
cd "$(dirname "$0")/.."
npx maskgen data import-fashion-mnist --split train --out data/fmnist-train
npx maskgen data import-fashion-mnist --split test --out data/fmnist-test
npx maskgen train-tokenizer --config small --channels 1 --data data/fmnist-train --out runs/fmnist-tok
npx maskgen reconstruct --bundle runs/fmnist-tok --data data/fmnist-test --out runs/fmnist-tok/recon --json
npx maskgen train-transformer --config small --data data/fmnist-train --tokenizer runs/fmnist-tok --out runs/fmnist
npx tsx scripts/eval-fmnist.ts --bundle runs/fmnist --grid runs/fmnist/classes.png

#!/usr/bin/env bash
# The Fashion-MNIST refiner (14 → 28 px) and its evaluation against bicubic upsampling.
set -euo pipefail
cd "$(dirname "$0")/.."
M="node bin/maskgen.js"
$M train-refiner --config scripts/refiner-fmnist.json --data data/fmnist-train --out runs/fmnist-refiner
npx tsx scripts/eval-refiner.ts --refiner runs/fmnist-refiner --data data/fmnist-test --train-data data/fmnist-train \
  --classifier runs/fmnist28-classifier --limit 500 --guidance 0,1,3 --figure docs/images/refiner-fmnist.png

#!/usr/bin/env bash
# Emoji (Twemoji + Noto, 32 px RGB) end to end on a CPU: import, tokenizer, transformer, a grid.
set -euo pipefail
cd "$(dirname "$0")/.."
npx maskgen data import-emoji --vendors twitter,google --out data/emoji64 --size 64
npx maskgen train-tokenizer --config small --data data/emoji64 --out runs/emoji-tok --steps 1700
npx maskgen reconstruct --bundle runs/emoji-tok --data data/emoji64 --out runs/emoji-tok/recon --json
npx maskgen train-transformer --config small --data data/emoji64 --tokenizer runs/emoji-tok --out runs/emoji --steps 1700
npx maskgen generate --bundle runs/emoji --prompts scripts/emoji-prompts.txt --n 4 --seed 1 --out runs/emoji/samples

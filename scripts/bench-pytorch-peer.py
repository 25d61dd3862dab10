#!/usr/bin/env python3
"""The PyTorch peer of `maskgen bench train-transformer`, `maskgen bench generate` and `maskgen bench tokenizer`.

The same masked transformer as src/transformer/model.ts (token embedding with [MASK], row + column
positions, pre-LN blocks with self-attention, cross-attention to 16 fixed random text tokens and a
GELU MLP, final LayerNorm, head to codebook logits), trained with AdamW on masked, label-smoothed
cross-entropy at batch 32; and one image generated with 12 MaskGIT steps and classifier-free
guidance (cond and uncond in one batch of 2; `--images N` generates N together in a batch of 2N). Prints one JSON object, like the maskgen benches, so
that both can be measured on the same machine in the same run:

    apt-get install python3-torch          # Debian's PyTorch 1.13 (CPU)
    /usr/bin/python3 scripts/bench-pytorch-peer.py [--threads 2] [--runs 5]
    /usr/bin/python3 scripts/bench-pytorch-peer.py --model tokenizer   # the ViT-VQGAN, small preset

The tokenizer peer is src/vqgan/model.ts at the `small` preset (32 px, patch 4, width 128, 3 encoder
and 4 decoder pre-LN blocks, a 512-code factorized l2-normalized codebook in 16 dimensions, straight-
through), trained at batch 16 on L2 + L1 + codebook + 0.25 commitment + 0.05 hinge adversarial loss
with the patch discriminator (4 convolutions, width 32, LeakyReLU 0.2) and its own hinge step: both
phases of `bench tokenizer` with the discriminator on.

Not part of the test suite and not needed by maskgen; it only sets the bar.
"""
import argparse
import json
import math
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class Attention(nn.Module):
    def __init__(self, dim, heads, context_dim=None):
        super().__init__()
        self.heads = heads
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(context_dim or dim, 2 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x, context=None):
        b, t, d = x.shape
        ctx = x if context is None else context
        s = ctx.shape[1]
        h, dh = self.heads, d // self.heads
        q = self.q(x).view(b, t, h, dh).transpose(1, 2) / math.sqrt(dh)
        k, v = self.kv(ctx).view(b, s, 2, h, dh).permute(2, 0, 3, 1, 4)
        att = torch.softmax(q @ k.transpose(-1, -2), dim=-1)
        return self.proj((att @ v).transpose(1, 2).reshape(b, t, d))


class Block(nn.Module):
    def __init__(self, dim, heads, mlp_ratio, text_dim):
        super().__init__()
        self.ln1, self.attn = nn.LayerNorm(dim), Attention(dim, heads)
        self.ln_cross, self.cross = nn.LayerNorm(dim), Attention(dim, heads, text_dim)
        self.ln2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, dim * mlp_ratio), nn.GELU(), nn.Linear(dim * mlp_ratio, dim))

    def forward(self, x, text):
        x = x + self.attn(self.ln1(x))
        x = x + self.cross(self.ln_cross(x), text)
        return x + self.mlp(self.ln2(x))


class MaskedTransformer(nn.Module):
    def __init__(self, codebook=512, grid=8, width=256, depth=6, heads=4, mlp_ratio=4, text_dim=256):
        super().__init__()
        self.mask_id, self.tokens = codebook, grid * grid
        self.embed = nn.Embedding(codebook + 1, width)
        self.row = nn.Parameter(torch.randn(grid, 1, width) * 0.02)
        self.col = nn.Parameter(torch.randn(1, grid, width) * 0.02)
        self.blocks = nn.ModuleList(Block(width, heads, mlp_ratio, text_dim) for _ in range(depth))
        self.norm = nn.LayerNorm(width)
        self.head = nn.Linear(width, codebook)

    def forward(self, tokens, text):
        pos = (self.row + self.col).reshape(self.tokens, -1)
        h = self.embed(tokens) + pos
        for block in self.blocks:
            h = block(h, text)
        return self.head(self.norm(h))


class VitBlock(nn.Module):
    def __init__(self, dim, heads, mlp_ratio):
        super().__init__()
        self.ln1, self.attn = nn.LayerNorm(dim), Attention(dim, heads)
        self.ln2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, dim * mlp_ratio), nn.GELU(), nn.Linear(dim * mlp_ratio, dim))

    def forward(self, x):
        x = x + self.attn(self.ln1(x))
        return x + self.mlp(self.ln2(x))


class VitVqgan(nn.Module):
    def __init__(self, size=32, channels=3, patch=4, width=128, depth=3, dec_depth=4, heads=4, mlp_ratio=4, codes=512, code_dim=16):
        super().__init__()
        self.size, self.channels, self.patch = size, channels, patch
        n, pd = (size // patch) ** 2, patch * patch * channels
        self.embed, self.enc_pos = nn.Linear(pd, width), nn.Parameter(torch.randn(n, width) * 0.02)
        self.enc = nn.ModuleList(VitBlock(width, heads, mlp_ratio) for _ in range(depth))
        self.enc_norm, self.to_code = nn.LayerNorm(width), nn.Linear(width, code_dim)
        self.codebook = nn.Parameter(torch.randn(codes, code_dim))
        self.from_code, self.dec_pos = nn.Linear(code_dim, width), nn.Parameter(torch.randn(n, width) * 0.02)
        self.dec = nn.ModuleList(VitBlock(width, heads, mlp_ratio) for _ in range(dec_depth))
        self.dec_norm, self.to_pixels = nn.LayerNorm(width), nn.Linear(width, pd)

    def forward(self, images):  # [B, C, H, W] in [-1, 1]
        b, c, p, g = images.shape[0], self.channels, self.patch, self.size // self.patch
        x = images.view(b, c, g, p, g, p).permute(0, 2, 4, 3, 5, 1).reshape(b, g * g, p * p * c)
        h = self.embed(x) + self.enc_pos
        for blk in self.enc:
            h = blk(h)
        zn = F.normalize(self.to_code(self.enc_norm(h)), dim=-1)
        codes = F.normalize(self.codebook, dim=-1)
        ids = (zn @ codes.t()).argmax(-1)
        q = codes[ids]
        codebook_loss = F.mse_loss(zn.detach(), q)
        commit_loss = F.mse_loss(zn, q.detach())
        h = self.from_code(zn + (q - zn).detach()) + self.dec_pos
        for blk in self.dec:
            h = blk(h)
        out = torch.tanh(self.to_pixels(self.dec_norm(h)))
        recon = out.view(b, g, g, p, p, c).permute(0, 5, 1, 3, 2, 4).reshape(b, c, g * p, g * p)
        return recon, codebook_loss, commit_loss


def discriminator(channels=3, width=32):
    return nn.Sequential(
        nn.Conv2d(channels, width, 4, 2, 1), nn.LeakyReLU(0.2),
        nn.Conv2d(width, width * 2, 4, 2, 1), nn.LeakyReLU(0.2),
        nn.Conv2d(width * 2, width * 4, 3, 1, 1), nn.LeakyReLU(0.2),
        nn.Conv2d(width * 4, 1, 3, 1, 1),
    )


def bench_tokenizer(args):
    """Both phases of one ViT-VQGAN training step with the discriminator, batch 16 at 32 px."""
    b = 16 if args.batch_size == 32 else args.batch_size
    model, disc = VitVqgan(), discriminator()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.99), weight_decay=0.01)
    dopt = torch.optim.AdamW(disc.parameters(), lr=1e-3, betas=(0.5, 0.9))
    images = torch.rand(b, 3, 32, 32) * 2 - 1

    def train_step():
        recon, cb, commit = model(images)
        diff = recon - images
        g_adv = -disc(recon).mean()
        loss = diff.pow(2).mean() + diff.abs().mean() + cb + 0.25 * commit + 0.05 * g_adv
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        d_loss = F.relu(1 - disc(images)).mean() + F.relu(1 + disc(recon.detach())).mean()
        dopt.zero_grad(set_to_none=True)
        d_loss.backward()
        dopt.step()

    ms = time_median(train_step, args.runs, 2)
    print(json.dumps({
        "bench": "pytorch-peer-tokenizer",
        "torch": torch.__version__,
        "threads": args.threads,
        "batchSize": b,
        "msPerTrainStep": ms,
        "trainImagesPerSec": b * 1000 / ms,
    }))


def time_median(fn, runs, warmup):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--steps", type=int, default=12)
    ap.add_argument("--images", type=int, default=1, help="images generated together (cond and uncond in one batch of 2x)")
    ap.add_argument("--no-train", action="store_true", help="time generation only")
    ap.add_argument("--model", choices=["transformer", "tokenizer"], default="transformer")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    if args.model == "tokenizer":
        return bench_tokenizer(args)

    model = MaskedTransformer()
    k, n, b = 512, model.tokens, args.batch_size
    text = torch.randn(1, 16, 256)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-4, weight_decay=0.01)
    tokens = (torch.arange(b * n) * 7919 % k).view(b, n)

    def train_step():
        ratio = torch.cos(torch.rand(b, 1) * math.pi / 2)
        masked = torch.rand(b, n) < ratio
        inp = torch.where(masked, torch.full_like(tokens, model.mask_id), tokens)
        logits = model(inp, text.expand(b, -1, -1))
        loss = F.cross_entropy(logits.view(-1, k), tokens.view(-1), reduction="none", label_smoothing=0.1)
        loss = (loss * masked.view(-1)).sum() / masked.sum().clamp(min=1)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()

    train_ms = None if args.no_train else time_median(train_step, args.runs, 2)

    model.eval()

    images = args.images
    cond = text.expand(images, -1, -1)
    both = torch.cat([cond, torch.zeros_like(cond)])

    @torch.no_grad()
    def generate():
        grid = torch.full((images, n), model.mask_id)
        for step in range(args.steps):
            logits = model(torch.cat([grid, grid]), both)
            guided = logits[images:] + 3.0 * (logits[:images] - logits[images:])
            probs = torch.softmax(guided, -1)
            sampled = torch.multinomial(probs.view(-1, k), 1).view(images, n)
            unknown = grid == model.mask_id
            conf = torch.log(probs.gather(-1, sampled[..., None]).squeeze(-1))
            temp = 4.5 * (1 - (step + 1) / args.steps)
            conf = conf + temp * -torch.log(-torch.log(torch.rand(images, n)))
            conf = torch.where(unknown, conf, torch.full_like(conf, math.inf))
            still_masked = math.floor(n * math.cos(math.pi / 2 * (step + 1) / args.steps))
            chosen = torch.where(unknown, sampled, grid)
            if still_masked > 0:
                cut = conf.topk(still_masked, dim=-1, largest=False).indices
                chosen.scatter_(1, cut, model.mask_id)
            grid = chosen
        return grid

    gen_ms = time_median(generate, args.runs, 1)
    print(json.dumps({
        "bench": "pytorch-peer",
        "torch": torch.__version__,
        "threads": args.threads,
        "batchSize": b,
        "msPerStep": train_ms,
        "tokensPerSec": None if train_ms is None else b * n * 1000 / train_ms,
        "images": images,
        "msPerImage": gen_ms / images,
        "imagesPerSec": 1000 * images / gen_ms,
        "steps": args.steps,
    }))


if __name__ == "__main__":
    main()

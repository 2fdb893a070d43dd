#!/usr/bin/env python3
"""PyTorch side of bench_train: training steps of the motion predictor's twin, timed.

    torch_ref.py --threads 2 --reps 5 --steps 5 --cases small,base,paper

The model is the PyTorch twin of models/motion_predictor.h, copied from
tests/motion/make_golden.py (same modules, same parameter names). One training step is what
`storyrun train` does per step on one rank: zero_grad, forward over B clips of L frames
(start/end = each clip's first/last frame), the weighted MSE (end frames weight 0),
backward, clip_grad_norm_(1.0), AdamW (weight decay on the 2-D tensors only). Data:
torch.randn with a fixed seed; weights: the module's default initialisation (timing only).
Timing: 2 warm-up steps, then `reps` timed runs of `steps` steps each; per-step times.
--cuda: on the GPU with AMP: parameters and AdamW in f32, forward under
torch.autocast("cuda", dtype=torch.bfloat16) (no GradScaler: bf16 needs none), the loss
in f32, torch.cuda.synchronize() before each clock read. Without CUDA it prints NOTORCH.

Cases (layers, width, heads, mlp_ratio, embed_dim D, frames L, batch B):
  small  2,   64,  4, 4,   16,  8, 8   (configs/train-demo.yaml)
  base   4,  256,  8, 4,  512, 16, 8
  paper  8, 1024, 16, 4, 1024, 16, 8   (the reported size; OpenCLIP ViT-H/14 space)

Prints, one line each:
  READY torch <version>, <n> threads
  RESULT <case> <median ms per step> <min ms per step>
Without torch it prints "NOTORCH <reason>".
"""
import argparse
import math
import statistics
import time

CASES = {
    "small": (2, 64, 4, 4, 16, 8, 8),
    "base": (4, 256, 8, 4, 512, 16, 8),
    "paper": (8, 1024, 16, 4, 1024, 16, 8),
}


def build(torch, nn):
    class Attention(nn.Module):
        def __init__(self, C, H):
            super().__init__()
            self.H = H
            self.qkv = nn.Linear(C, 3 * C)
            self.proj = nn.Linear(C, C)

        def forward(self, x):
            B, T, C = x.shape
            hd = C // self.H
            q, k, v = self.qkv(x).split(C, dim=2)
            q, k, v = (t.view(B, T, self.H, hd).transpose(1, 2) for t in (q, k, v))
            att = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(hd), dim=-1)
            y = (att @ v).transpose(1, 2).reshape(B, T, C)
            return self.proj(y)

    class Mlp(nn.Module):
        def __init__(self, C, F):
            super().__init__()
            self.fc = nn.Linear(C, F)
            self.proj = nn.Linear(F, C)
            self.act = nn.GELU()

        def forward(self, x):
            return self.proj(self.act(self.fc(x)))

    class Block(nn.Module):
        def __init__(self, C, H, F, eps):
            super().__init__()
            self.ln1 = nn.LayerNorm(C, eps=eps)
            self.attn = Attention(C, H)
            self.ln2 = nn.LayerNorm(C, eps=eps)
            self.mlp = Mlp(C, F)

        def forward(self, x):
            x = x + self.attn(self.ln1(x))
            return x + self.mlp(self.ln2(x))

    class MotionPredictor(nn.Module):
        def __init__(self, layers, width, heads, mlp_ratio, embed_dim, frames, ln_eps):
            super().__init__()
            C, D = width, embed_dim
            self.in_proj = nn.Linear(D, C)
            self.pos_emb = nn.Parameter(torch.randn(frames, C) * 0.02)
            self.blocks = nn.ModuleList([Block(C, heads, mlp_ratio * C, ln_eps) for _ in range(layers)])
            self.ln_f = nn.LayerNorm(C, eps=ln_eps)
            self.out_proj = nn.Linear(C, D)

        def forward(self, start, end, T):
            a = torch.arange(T, dtype=start.dtype, device=start.device) / (T - 1)
            K = start[:, None, :] + a[None, :, None] * (end - start)[:, None, :]
            x = self.in_proj(K) + self.pos_emb[:T]
            for b in self.blocks:
                x = b(x)
            return self.out_proj(self.ln_f(x))

    return MotionPredictor


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--cases", default="small,base,paper")
    ap.add_argument("--cuda", action="store_true")
    args = ap.parse_args()
    try:
        import torch
        import torch.nn as nn
    except Exception as e:  # noqa: BLE001 - any import failure means "no reference"
        print("NOTORCH cannot import torch: %s" % e, flush=True)
        return 0
    torch.set_num_threads(args.threads)
    if args.cuda and not torch.cuda.is_available():
        print("NOTORCH torch %s has no CUDA device" % torch.__version__, flush=True)
        return 0
    dev = "cuda" if args.cuda else "cpu"
    sync = torch.cuda.synchronize if args.cuda else (lambda: None)
    print("READY torch %s, %d threads%s" % (torch.__version__, torch.get_num_threads(),
                                             ", CUDA AMP bf16" if args.cuda else ""), flush=True)
    MotionPredictor = build(torch, nn)
    for name in args.cases.split(","):
        layers, width, heads, ratio, D, L, B = CASES[name]
        torch.manual_seed(0)
        model = MotionPredictor(layers, width, heads, ratio, D, L, 1e-5).to(dev)
        decay = [p for p in model.parameters() if p.dim() >= 2]
        rest = [p for p in model.parameters() if p.dim() < 2]
        opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01},
                                 {"params": rest, "weight_decay": 0.0}], lr=1e-4)
        clips = torch.randn(B, L, D).to(dev)
        w = torch.ones(L, device=dev)
        w[0] = w[-1] = 0.0

        def step():
            opt.zero_grad(set_to_none=False)
            with torch.autocast(device_type=dev, dtype=torch.bfloat16, enabled=args.cuda):
                P = model(clips[:, 0], clips[:, -1], L)
            P = P.float()
            loss = ((P - clips) ** 2 * w[None, :, None]).sum() / (B * D * w.sum())
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()

        for _ in range(2):
            step()
        sync()
        times = []
        for _ in range(args.reps):
            t0 = time.perf_counter()
            for _ in range(args.steps):
                step()
            sync()
            times.append((time.perf_counter() - t0) * 1e3 / args.steps)
        print("RESULT %s %.4f %.4f" % (name, statistics.median(times), min(times)), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

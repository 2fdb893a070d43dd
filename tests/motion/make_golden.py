#!/usr/bin/env python3
"""tests/motion/make_golden.py: the PyTorch twin of the motion predictor
(models/motion_predictor.h) and the reference states tests/motion/test_motion.c compares
against, as llm.c's test_gpt2 does for GPT-2.

Writes tests/motion/data/<case>.safetensors (float32, tiny model) for two cases:
  main  clips (B, T, D) with T = L; start/end are each clip's first/last frame; the
        default endpoint weight 0; plus 10 training steps on the same batch with AdamW
        (weight decay on the 2-D tensors only), gradient clipping and the warm-up +
        cosine schedule.
  ew    separate start/end (B, D) that differ from the target's ends, T < L, endpoint
        weight 0.5 (loss and gradients only).
Each file holds the initial weights under the state_dict names, the batch ("batch.*"),
"expected.loss" (1,), "grad.<name>" for every parameter, and for main "steps.loss",
"steps.grad_norm", "steps.lr" (10,) and the weights after the 10 steps ("final.<name>").
__metadata__: the model and optimizer settings (decimal text), the versions, and
"loss_f32_vs_f64" / "grad_f32_vs_f64": the reference's own rounding noise (the same
computation in float64; max |g32 - g64| / max |g64| over tensors), for information.

Regenerate (torch CPU; the versions used are in each file's metadata):
    /opt/ref-venv/bin/python tests/motion/make_golden.py
The output is deterministic (one thread, fixed seeds, sorted keys).
"""
import json
import math
import os
import platform
import struct
import sys

import numpy as np
import torch
import torch.nn as nn
from safetensors import safe_open

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "data")

# The tiny model of the test (C = width, H = heads, L = frames).
CFG = dict(layers=2, width=32, heads=4, mlp_ratio=4, embed_dim=24, frames=6, ln_eps=1e-5)
BATCH = 3
# 10 AdamW steps on the main batch
OPT = dict(lr=3e-3, min_lr=3e-4, warmup=3, total=10, beta1=0.9, beta2=0.99, eps=1e-8, weight_decay=0.1, clip=0.5)
STEPS = 10


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
        q, k, v = (t.view(B, T, self.H, hd).transpose(1, 2) for t in (q, k, v))  # (B, H, T, hd)
        att = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(hd), dim=-1)  # no mask
        y = (att @ v).transpose(1, 2).reshape(B, T, C)
        return self.proj(y)


class Mlp(nn.Module):
    def __init__(self, C, F):
        super().__init__()
        self.fc = nn.Linear(C, F)
        self.proj = nn.Linear(F, C)
        self.act = nn.GELU()  # exact (erf)

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
        """start, end (B, D) -> P (B, T, D) from K[b, t] = start + t / (T - 1) (end - start)."""
        a = torch.arange(T, dtype=start.dtype) / (T - 1)
        K = start[:, None, :] + a[None, :, None] * (end - start)[:, None, :]
        x = self.in_proj(K) + self.pos_emb[:T]
        for b in self.blocks:
            x = b(x)
        return self.out_proj(self.ln_f(x))


def weighted_mse(P, Y, endpoint_weight):
    B, T, D = P.shape
    w = torch.ones(T, dtype=P.dtype)
    w[0] = w[-1] = endpoint_weight
    return ((P - Y) ** 2 * w[None, :, None]).sum() / (B * D * w.sum())


def lr_at(step):
    """Warm-up then cosine (models/motion_optim.c smp_lr_at)."""
    o = OPT
    if o["warmup"] > 0 and step < o["warmup"]:
        return o["lr"] * (step + 1) / o["warmup"]
    span = o["total"] - 1 - o["warmup"]
    if span <= 0:
        return o["lr"]
    if step >= o["total"] - 1:
        return o["min_lr"]
    ratio = (step - o["warmup"]) / span
    return o["min_lr"] + 0.5 * (1.0 + math.cos(math.pi * ratio)) * (o["lr"] - o["min_lr"])


def make_model(seed):
    torch.manual_seed(seed)
    m = MotionPredictor(**CFG)
    # LayerNorms away from (1, 0) so their gradients are not a special case
    with torch.no_grad():
        for name, p in m.named_parameters():
            if ".ln" in name or name.startswith("ln_f"):
                p.add_(0.1 * torch.randn_like(p))
    return m


def write_safetensors(path, tensors, metadata):
    """Deterministic writer: tensors sorted by name, header keys sorted, padded to 8 bytes."""
    header = {"__metadata__": dict(sorted(metadata.items()))}
    blobs, offset = [], 0
    for name in sorted(tensors):
        a = np.ascontiguousarray(tensors[name].detach().cpu().numpy().astype("<f4"))
        raw = a.tobytes()
        header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=True).encode()
    text += b" " * ((8 - (8 + len(text)) % 8) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)
    os.replace(tmp, path)
    with safe_open(path, framework="pt") as f:  # read back with the reference reader
        assert f.metadata() == dict(metadata), path
        assert sorted(f.keys()) == sorted(tensors), path


def loss_and_grads(model, start, end, target, T, ew):
    model.zero_grad(set_to_none=False)
    loss = weighted_mse(model(start, end, T), target, ew)
    loss.backward()
    return loss.detach().clone(), {n: p.grad.detach().clone() for n, p in model.named_parameters()}


def f64_noise(model, start, end, target, T, ew, loss32, grads32):
    m64 = MotionPredictor(**CFG).double()
    m64.load_state_dict({k: v.double() for k, v in model.state_dict().items()})
    loss64, g64 = loss_and_grads(m64, start.double(), end.double(), target.double(), T, ew)
    dl = abs(loss32.item() - loss64.item()) / abs(loss64.item())
    dg = max((grads32[n].double() - g64[n]).abs().max().item() / g64[n].abs().max().item() for n in g64)
    return dl, dg


def base_meta(case, ew, T):
    meta = {k: repr(v) for k, v in CFG.items()}
    meta.update(case=case, endpoint_weight=repr(ew), batch=str(BATCH), T=str(T), torch=torch.__version__,
                numpy=np.__version__, python=platform.python_version())
    return meta


def case_main():
    ew, T = 0.0, CFG["frames"]
    model = make_model(1234)
    torch.manual_seed(99)
    clips = torch.randn(BATCH, T, CFG["embed_dim"])
    start, end = clips[:, 0].contiguous(), clips[:, -1].contiguous()
    tensors = {n: p.detach().clone() for n, p in model.named_parameters()}
    tensors["batch.clips"] = clips
    loss, grads = loss_and_grads(model, start, end, clips, T, ew)
    tensors["expected.loss"] = loss.reshape(1)
    tensors.update({"grad." + n: g for n, g in grads.items()})
    dl, dg = f64_noise(model, start, end, clips, T, ew, loss, grads)

    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": OPT["weight_decay"]},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=OPT["lr"], betas=(OPT["beta1"], OPT["beta2"]), eps=OPT["eps"], foreach=False)
    losses, norms, lrs = [], [], []
    for step in range(STEPS):
        opt.zero_grad(set_to_none=False)
        loss = weighted_mse(model(start, end, T), clips, ew)
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(model.parameters(), OPT["clip"])
        lr = lr_at(step)
        for g in opt.param_groups:
            g["lr"] = lr
        opt.step()
        losses.append(loss.item())
        norms.append(norm.item())
        lrs.append(lr)
    tensors["steps.loss"] = torch.tensor(losses)
    tensors["steps.grad_norm"] = torch.tensor(norms)
    tensors["steps.lr"] = torch.tensor(lrs)
    tensors.update({"final." + n: p.detach().clone() for n, p in model.named_parameters()})
    meta = base_meta("main", ew, T)
    meta.update({"opt." + k: repr(v) for k, v in OPT.items()})
    meta.update(steps=str(STEPS), loss_f32_vs_f64=f"{dl:.3e}", grad_f32_vs_f64=f"{dg:.3e}")
    print(f"main: loss {tensors['expected.loss'].item():.6f} (f32 vs f64 {dl:.2e}, grads {dg:.2e})")
    print("  step losses", " ".join(f"{x:.6f}" for x in losses))
    print("  grad norms ", " ".join(f"{x:.4f}" for x in norms), f"(clip {OPT['clip']})")
    return tensors, meta


def case_ew():
    ew, T = 0.5, CFG["frames"] - 1
    model = make_model(4321)
    torch.manual_seed(7)
    D = CFG["embed_dim"]
    start, end = torch.randn(BATCH, D), torch.randn(BATCH, D)
    target = torch.randn(BATCH, T, D)
    tensors = {n: p.detach().clone() for n, p in model.named_parameters()}
    tensors.update({"batch.start": start, "batch.end": end, "batch.target": target})
    loss, grads = loss_and_grads(model, start, end, target, T, ew)
    tensors["expected.loss"] = loss.reshape(1)
    tensors.update({"grad." + n: g for n, g in grads.items()})
    dl, dg = f64_noise(model, start, end, target, T, ew, loss, grads)
    meta = base_meta("ew", ew, T)
    meta.update(loss_f32_vs_f64=f"{dl:.3e}", grad_f32_vs_f64=f"{dg:.3e}")
    print(f"ew: loss {loss.item():.6f} (f32 vs f64 {dl:.2e}, grads {dg:.2e})")
    return tensors, meta


def main():
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    os.makedirs(OUT, exist_ok=True)
    for name, fn in (("main", case_main), ("ew", case_ew)):
        tensors, meta = fn()
        path = os.path.join(OUT, name + ".safetensors")
        write_safetensors(path, tensors, meta)
        print(f"  wrote {path} ({os.path.getsize(path)} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

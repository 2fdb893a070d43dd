#!/usr/bin/env python3
"""diffusers' side of bench_unet: one UNet2DConditionModel forward at a time, on request.

    torch_ref.py --config JSON --batch 2 --size 64 --seq 77 --threads 2

Builds UNet2DConditionModel(**config) in fp32 with torch's default (random) initialisation,
inputs from a seeded generator: sample (B, 4, size, size), timestep 999, encoder_hidden_states
(B, seq, cross_attention_dim); forwards run under torch.inference_mode() with diffusers'
default attention processor (F.scaled_dot_product_attention).

Protocol (one line each, stdout; requests on stdin):
  -> READY torch <version>, diffusers <version>, <n> threads
  -> BUILT <weights bytes> <parameters>
  <- RUN       -> TIME <ms>           one forward pass (the first one resets the memory peak)
  <- MEM       -> MEM <forward peak bytes>
bench_unet alternates RUN here with its own runs, so both sides are timed under the same
machine load. weights bytes: resident-set growth while the model was built; forward peak:
the process's high-water mark (VmHWM, reset through /proc/self/clear_refs just before the
first run) minus its resident set at that moment. torch's tensors are malloc'd, not Python
objects, so tracemalloc cannot see them; the kernel's RSS accounting can. Without
torch/diffusers it prints "NOTORCH <reason>" and exits.
"""
import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "common"))
from memstat import reset_hwm, status_bytes  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", required=True, help="the UNet config as JSON text")
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--seq", type=int, default=77)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    try:
        import diffusers
        import torch
        from diffusers import UNet2DConditionModel
    except Exception as e:  # noqa: BLE001 - any import failure means "no reference"
        print("NOTORCH cannot import torch/diffusers: %s" % e, flush=True)
        return 0
    torch.set_num_threads(args.threads)
    print("READY torch %s, diffusers %s, %d threads" % (torch.__version__, diffusers.__version__,
                                                       torch.get_num_threads()), flush=True)
    cfg = json.loads(args.config)
    torch.manual_seed(0)
    rss0 = status_bytes("VmRSS")
    unet = UNet2DConditionModel(**cfg).eval()
    params = sum(p.numel() for p in unet.parameters())
    print("BUILT %d %d" % (status_bytes("VmRSS") - rss0, params), flush=True)
    g = torch.Generator().manual_seed(1)
    B, S = args.batch, args.size
    sample = torch.randn(B, unet.config.in_channels, S, S, generator=g)
    context = torch.randn(B, args.seq, unet.config.cross_attention_dim, generator=g)
    t = torch.full((B,), 999.0)
    rss1, out = None, None
    with torch.inference_mode():
        for line in sys.stdin:
            req = line.strip()
            if req == "RUN":
                if rss1 is None:
                    rss1 = status_bytes("VmRSS")
                    reset_hwm()
                t0 = time.perf_counter()
                out = unet(sample, t, encoder_hidden_states=context).sample
                print("TIME %.3f" % ((time.perf_counter() - t0) * 1e3), flush=True)
            elif req == "MEM":
                print("MEM %d" % (status_bytes("VmHWM") - (rss1 or 0)), flush=True)
    if out is not None:
        sys.stderr.write("torch noise_pred mean |y| %.4f\n" % out.abs().mean().item())
    return 0


if __name__ == "__main__":
    sys.exit(main())

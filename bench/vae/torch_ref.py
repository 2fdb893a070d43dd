#!/usr/bin/env python3
"""diffusers' side of bench_vae: one AutoencoderKL.decode, timed, with its memory.

    torch_ref.py --config JSON --size 512 --threads 2 --reps 3 [--tiled]

Builds AutoencoderKL(**config) in fp32 with torch's default (random) initialisation and
drops the encoder and quant_conv (a decode does not use them, and storyrun loads only the
decoder). The latent (1, latent_channels, size/8, size/8) comes from a seeded generator.
Runs one warm-up decode and `reps` timed ones under torch.inference_mode() (diffusers'
default attention processor: F.scaled_dot_product_attention); --tiled: enable_tiling()
first (diffusers' default tiles: sample_size pixels, 1/4 overlap).

Prints, one line each:
  READY torch <version>, diffusers <version>, <n> threads
  RESULT <median ms> <min ms> <weights bytes> <decode peak bytes> <parameters>
weights bytes: resident-set growth while the decoder was built; decode peak bytes: the
process's high-water mark (VmHWM, reset through /proc/self/clear_refs just before the
warm-up run) minus its resident set at that moment. Without torch/diffusers it prints
"NOTORCH <reason>".
"""
import argparse
import gc
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "common"))
from memstat import reset_hwm, status_bytes  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", required=True, help="the VAE config as JSON text")
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--tiled", action="store_true")
    args = ap.parse_args()
    try:
        import diffusers
        import torch
        from diffusers import AutoencoderKL
    except Exception as e:  # noqa: BLE001 - any import failure means "no reference"
        print("NOTORCH cannot import torch/diffusers: %s" % e, flush=True)
        return 0
    torch.set_num_threads(args.threads)
    print("READY torch %s, diffusers %s, %d threads" % (torch.__version__, diffusers.__version__,
                                                       torch.get_num_threads()), flush=True)
    cfg = json.loads(args.config)
    torch.manual_seed(0)
    rss0 = status_bytes("VmRSS")
    vae = AutoencoderKL(**cfg).eval()
    vae.encoder, vae.quant_conv = None, None
    gc.collect()
    weights = status_bytes("VmRSS") - rss0
    params = sum(p.numel() for p in vae.parameters())
    if args.tiled:
        vae.enable_tiling()
    f = 2 ** (len(cfg["block_out_channels"]) - 1)
    g = torch.Generator().manual_seed(1)
    z = torch.randn(1, vae.config.latent_channels, args.size // f, args.size // f, generator=g)
    times = []
    with torch.inference_mode():
        rss1 = status_bytes("VmRSS")
        reset_hwm()
        out = vae.decode(z).sample  # warm-up
        for _ in range(args.reps):
            t0 = time.perf_counter()
            out = vae.decode(z).sample
            times.append((time.perf_counter() - t0) * 1e3)
        peak = status_bytes("VmHWM") - rss1
    sys.stderr.write("torch image mean |x| %.4f\n" % out.abs().mean().item())
    print("RESULT %.3f %.3f %d %d %d" % (statistics.median(times), min(times), weights, peak, params), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

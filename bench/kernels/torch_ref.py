#!/usr/bin/env python3
"""PyTorch CPU timings for bench_kernels: the same ops at the same shapes.

Two ways to run:
  torch_ref.py --threads 2 --reps 7            time the default rows, print
                                               "spec<TAB>median ms<TAB>min ms"
  torch_ref.py --threads 2 --reps 7 --serve    bench_kernels' mode: print "READY ...", then
                                               read one spec per stdin line and answer
                                               "RESULT <median ms> <min ms>" (reps runs
                                               after two warm-up runs)
Without torch it prints "NOTORCH <reason>" and exits 0.

Spec lines (shared with bench_kernels.c):
  attn B Lq Lk C H          F.scaled_dot_product_attention on (B, H, L, C/H) tensors
  conv N Ci Co H W k s p    F.conv2d with bias
  linear M K N              F.linear with bias
  group_norm N C H W G      F.group_norm with affine parameters
  layer_norm M C            F.layer_norm with affine parameters
  geglu M F2                h, g = x.chunk(2, -1); h * F.gelu(g)
"""
import argparse
import statistics
import sys
import time

DEFAULT_SPECS = [
    "attn 2 4096 4096 320 8",
    "attn 2 4096 77 320 8",
    "attn 2 1024 1024 640 8",
    "attn 2 256 256 1280 8",
    "conv 1 320 320 64 64 3 1 1",
    "conv 2 320 320 64 64 3 1 1",
    "linear 4096 320 320",
    "linear 4096 320 1280",
]


def build(torch, F, spec):
    """Returns a no-argument callable that runs the op once."""
    f = spec.split()
    kind, a = f[0], [int(v) for v in f[1:]]
    rnd = lambda *s: torch.rand(*s) * 2 - 1
    if kind == "attn":
        B, Lq, Lk, C, H = a
        q, k, v = rnd(B, H, Lq, C // H), rnd(B, H, Lk, C // H), rnd(B, H, Lk, C // H)
        return lambda: F.scaled_dot_product_attention(q, k, v)
    if kind == "conv":
        N, Ci, Co, Hh, W, k, s, p = a
        x, w, b = rnd(N, Ci, Hh, W), rnd(Co, Ci, k, k) * 0.05, rnd(Co)
        return lambda: F.conv2d(x, w, b, stride=s, padding=p)
    if kind == "linear":
        M, K, N = a
        x, w, b = rnd(M, K), rnd(N, K) * 0.05, rnd(N)
        return lambda: F.linear(x, w, b)
    if kind == "group_norm":
        N, C, Hh, W, G = a
        x, g, b = rnd(N, C, Hh, W), rnd(C), rnd(C)
        return lambda: F.group_norm(x, G, g, b, 1e-5)
    if kind == "layer_norm":
        M, C = a
        x, g, b = rnd(M, C), rnd(C), rnd(C)
        return lambda: F.layer_norm(x, (C,), g, b, 1e-5)
    if kind == "geglu":
        M, F2 = a
        x = rnd(M, F2)

        def geglu():
            h, g = x.chunk(2, dim=-1)
            return h * F.gelu(g)

        return geglu
    raise ValueError("unknown spec: " + spec)


def time_ms(fn, reps):
    """(median, min) in ms of reps runs after two warm-up runs."""
    fn()
    fn()
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        ts.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(ts), min(ts)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--serve", action="store_true")
    args = ap.parse_args()
    try:
        import torch
        import torch.nn.functional as F
    except Exception as e:  # noqa: BLE001 - any import failure means "no reference"
        print("NOTORCH cannot import torch: %s" % e, flush=True)
        return 0
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    with torch.inference_mode():
        if not args.serve:
            for spec in DEFAULT_SPECS:
                med, best = time_ms(build(torch, F, spec), args.reps)
                print("%s\t%.3f\t%.3f" % (spec, med, best), flush=True)
            return 0
        print("READY torch %s, %d threads" % (torch.__version__, torch.get_num_threads()), flush=True)
        for line in sys.stdin:
            spec = line.strip()
            if not spec:
                continue
            try:
                med, best = time_ms(build(torch, F, spec), args.reps)
                print("RESULT %.4f %.4f" % (med, best), flush=True)
            except Exception as e:  # noqa: BLE001 - report and go on with the next row
                print("ERROR %s" % e, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

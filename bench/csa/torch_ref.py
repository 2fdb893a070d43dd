#!/usr/bin/env python3
"""The reference side of bench_csa: Consistent Self-Attention as the public StoryDiffusion
code computes it, one layer call at a time, on request.

    torch_ref.py --threads 2 [--cuda]

For image i of an id pass of n images, the reference concatenates its own tokens with the
tokens sampled from the other n - 1 images into one key/value input, projects it, runs one
F.scaled_dot_product_attention call and the output projection:

    kv_i = cat([x_i] + [x_j[idx_j] for j != i])            (L + (n-1) K, C)
    y_i  = to_out(sdpa(to_q(x_i), to_k(kv_i), to_v(kv_i)))  heads of 64

The sampled tokens x_j[idx_j] are taken once per layer call and shared by all images.
CPU: float32 and torch.set_num_threads(threads); --cuda: float16 on the GPU.

Inputs, weights and sampled indices are the ones bench_csa makes (the same seeded
splitmix64 streams as bench/common's bench_uniform, drawn here with numpy), so both sides
compute the same outputs and bench_csa compares checksums of them.

Protocol (one line each; requests on stdin, answers on stdout):
  -> READY torch <version>, <device>, <n> threads      or  NOTORCH <reason> (then exits)
  <- CASE L C heads n K    -> BUILT                     make the case's tensors
  <- RUN                   -> TIME <ms> <peak bytes>    one layer call (all n images)
  <- SUM                   -> SUM <sum |y|> <sum y^2>   checksums of the last outputs
peak bytes: memory the call needs beyond what was allocated before it. CPU: the process's
resident-set high-water mark (VmHWM, reset through /proc/self/clear_refs after glibc has
returned its free heap pages with malloc_trim) minus the resident set at that moment; the
kernel's accounting sees torch's malloc'd tensors, tracemalloc would not. CUDA:
torch.cuda.max_memory_allocated() minus memory_allocated() before the call.
"""
import argparse
import ctypes
import math
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "common"))
from memstat import reset_hwm, status_bytes  # noqa: E402

# Seeds of the streams; bench_csa.c uses the same numbers.
SEED_WQ, SEED_WK, SEED_WV, SEED_WO, SEED_BO, SEED_X, SEED_IDX = 11, 12, 13, 14, 15, 21, 31


def splitmix_raw(np, seed, n):
    """The n outputs of a splitmix64 generator started at state `seed` (bench_common.c)."""
    i = np.arange(1, n + 1, dtype=np.uint64)
    z = np.uint64(seed) + i * np.uint64(0x9E3779B97F4A7C15)  # wraps modulo 2^64 like C
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def uniform(np, seed, n, scale):
    """scale * bench_uniform(): float32 in [-scale, scale), as bench_csa.c makes it."""
    u = ((splitmix_raw(np, seed, n) >> np.uint64(40)).astype(np.float64) * (2.0 / 16777216.0) - 1.0)
    return np.float32(scale) * u.astype(np.float32)


def sample_indices(np, seed, L, K):
    """K distinct token indices of L, ascending: the K smallest splitmix keys (ties: lower index)."""
    order = np.argsort(splitmix_raw(np, seed, L), kind="stable")
    return np.sort(order[:K]).astype(np.int64)


class Case:
    def __init__(self, torch, np, dev, dt, L, C, heads, n, K):
        self.torch, self.L, self.C, self.heads, self.n, self.K = torch, L, C, heads, n, K
        bound = 1.0 / math.sqrt(C)

        def t(a, *shape):
            return torch.from_numpy(a.reshape(shape)).to(device=dev, dtype=dt)

        self.wq = t(uniform(np, SEED_WQ, C * C, bound), C, C)
        self.wk = t(uniform(np, SEED_WK, C * C, bound), C, C)
        self.wv = t(uniform(np, SEED_WV, C * C, bound), C, C)
        self.wo = t(uniform(np, SEED_WO, C * C, bound), C, C)
        self.bo = t(uniform(np, SEED_BO, C, bound), C)
        self.x = t(uniform(np, SEED_X, n * L * C, 1.7), n, L, C)  # about unit variance
        self.idx = [torch.from_numpy(sample_indices(np, SEED_IDX + j, L, K)).to(dev) for j in range(n)]
        self.y = torch.empty(n, L, C, device=dev, dtype=dt)

    def run(self):
        torch, F = self.torch, self.torch.nn.functional
        n, L, C, H = self.n, self.L, self.C, self.heads
        D = C // H
        samples = [self.x[j].index_select(0, self.idx[j]) for j in range(n)]
        for i in range(n):
            kv = torch.cat([self.x[i]] + [samples[j] for j in range(n) if j != i], 0)  # (Lk, C)
            q = F.linear(self.x[i], self.wq).view(1, L, H, D).transpose(1, 2)
            k = F.linear(kv, self.wk).view(1, -1, H, D).transpose(1, 2)
            v = F.linear(kv, self.wv).view(1, -1, H, D).transpose(1, 2)
            o = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(L, C)
            torch.addmm(self.bo, o, self.wo.t(), out=self.y[i])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--cuda", action="store_true")
    args = ap.parse_args()
    try:
        import numpy as np
        import torch
    except Exception as e:  # noqa: BLE001 - any import failure means "no reference"
        print("NOTORCH cannot import torch/numpy: %s" % e, flush=True)
        return 0
    if args.cuda and not torch.cuda.is_available():
        print("NOTORCH torch sees no CUDA device", flush=True)
        return 0
    torch.set_num_threads(args.threads)
    dev, dt = ("cuda", torch.float16) if args.cuda else ("cpu", torch.float32)
    where = torch.cuda.get_device_name(0) if args.cuda else "cpu"
    print("READY torch %s, %s %s, %d threads" % (torch.__version__, where, str(dt).replace("torch.", ""),
                                                 torch.get_num_threads()), flush=True)
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        libc = None
    case = None
    with torch.inference_mode():
        for line in sys.stdin:
            req = line.split()
            if not req:
                continue
            if req[0] == "CASE":
                case = None  # free the previous case's tensors first
                if args.cuda:
                    torch.cuda.empty_cache()
                L, C, heads, n, K = (int(v) for v in req[1:6])
                case = Case(torch, np, dev, dt, L, C, heads, n, K)
                print("BUILT", flush=True)
            elif req[0] == "RUN":
                if args.cuda:
                    torch.cuda.synchronize()
                    torch.cuda.reset_peak_memory_stats()
                    base = torch.cuda.memory_allocated()
                else:
                    if libc is not None:
                        libc.malloc_trim(0)
                    base = status_bytes("VmRSS")
                    reset_hwm()
                t0 = time.perf_counter()
                case.run()
                if args.cuda:
                    torch.cuda.synchronize()
                ms = (time.perf_counter() - t0) * 1e3
                peak = (torch.cuda.max_memory_allocated() if args.cuda else status_bytes("VmHWM")) - base
                print("TIME %.3f %d" % (ms, peak), flush=True)
            elif req[0] == "SUM":
                y = case.y.double()
                print("SUM %.10e %.10e" % (y.abs().sum().item(), (y * y).sum().item()), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""tests/golden/make_golden.py: PyTorch reference outputs for every op of kernels/ops.h.

Writes tests/golden/data/<op>.safetensors (one file per op, several cases each) and
tests/golden/VERSIONS.md. tests/golden/test_ops_golden.c reads the files with
models/safetensors.c, runs cpu_<op> and compares. The files are committed: CI never
runs torch.

Regenerate (any machine with PyPI access; the versions of the committed files are in
VERSIONS.md and in every file's metadata):
    python3 -m venv /opt/ref-venv
    /opt/ref-venv/bin/pip install torch==2.15.0 safetensors==0.8.0 numpy==2.4.6
    /opt/ref-venv/bin/python tests/golden/make_golden.py            # every op file
    /opt/ref-venv/bin/python tests/golden/make_golden.py gather_rows # only the named ones
Naming ops rewrites only their files; VERSIONS.md is rewritten with the other files'
counts and sizes read back from disk (they must have been made with the same versions).
Another torch version may change the last bit of some outputs; the C tolerances are
far above that, but commit regenerated files only together with VERSIONS.md.

The output is deterministic: each op file has its own seed (crc32 of the op name, so
adding a case to one op leaves the others unchanged), torch runs on one thread with
deterministic algorithms, and the files are written by write_safetensors() below with
sorted keys (the safetensors package orders __metadata__ differently on every run).
Each written file is read back with the safetensors package to prove it is valid.

File layout: tensors "<case>/<role>" (float32), e.g. "k3_s2_p1/x", "k3_s2_p1/out";
__metadata__: "op", "cases" (comma-separated, in order), "<case>.<param>" (decimal
text: ints, or floats as Python repr of the float32 value the C side must pass), the
versions, and "<case>.f32_vs_f64": max |torch fp32 - torch fp64| on the same inputs,
a measure of the rounding noise of the reference itself (informational).
"""
import json
import math
import os
import platform
import struct
import sys
import zlib

import numpy as np
import torch
import torch.nn.functional as F

try:
    import safetensors
    from safetensors import safe_open
except ImportError:  # the check after writing needs it
    sys.exit("make_golden.py needs the safetensors package (pip install safetensors)")

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "data")
MAX_TOTAL_BYTES = 2 * 1024 * 1024

VERSIONS = {
    "torch": torch.__version__,
    "python": platform.python_version(),
    "numpy": np.__version__,
    "safetensors": safetensors.__version__,
}


def f32(v):
    """The float32 value of v as the text the C side parses (exact round trip)."""
    return repr(float(np.float32(v)))


# ---- writer ---------------------------------------------------------------------------


def write_safetensors(path, tensors, metadata):
    """Deterministic safetensors writer: tensors sorted by name, contiguous, header keys
    sorted, padded with spaces to a multiple of 8 bytes (as the reference writer does)."""
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
    # read back with the reference implementation
    with safe_open(path, framework="pt") as f:
        assert f.metadata() == dict(metadata), path
        assert sorted(f.keys()) == sorted(tensors), path
        for name in tensors:
            assert torch.equal(f.get_tensor(name), tensors[name].float()), (path, name)


# ---- cases ----------------------------------------------------------------------------


class OpFile:
    """The cases of one op. case() runs fn on the inputs in float32 (the expected output)
    and in float64 (to report the reference's own rounding noise)."""

    def __init__(self, op):
        self.op = op
        self.seed = zlib.crc32(op.encode()) & 0x7FFFFFFF
        torch.manual_seed(self.seed)
        self.tensors, self.meta, self.cases = {}, {}, []

    def case(self, name, fn, inputs, params=None):
        assert name.replace("_", "").isalnum() and name not in self.cases, name
        inputs = {k: v.float().contiguous() for k, v in inputs.items() if v is not None}
        out = fn(**inputs).float().contiguous()
        out64 = fn(**{k: v.double() for k, v in inputs.items()})
        noise = (out.double() - out64).abs().max().item() if out.numel() else 0.0
        for role, t in list(inputs.items()) + [("out", out)]:
            assert t.dim() <= 4, (self.op, name, role)
            self.tensors[f"{name}/{role}"] = t
        for k, v in (params or {}).items():
            self.meta[f"{name}.{k}"] = v if isinstance(v, str) else str(v)
        self.meta[f"{name}.f32_vs_f64"] = "%.3e" % noise
        self.cases.append(name)
        shapes = " ".join(f"{r}{tuple(t.shape)}" for r, t in inputs.items())
        print(f"  {self.op:20s} {name:24s} {shapes} -> out{tuple(out.shape)}  fp32 vs fp64 {noise:.2e}")

    def save(self):
        meta = dict(self.meta)
        meta["op"] = self.op
        meta["cases"] = ",".join(self.cases)
        meta["seed"] = str(self.seed)
        meta["generator"] = "tests/golden/make_golden.py"
        for k, v in VERSIONS.items():
            meta[f"version.{k}"] = v
        path = os.path.join(DATA, f"{self.op}.safetensors")
        write_safetensors(path, self.tensors, meta)
        return path


def randn(*shape, scale=1.0, shift=0.0):
    return torch.randn(*shape) * scale + shift


# ---- ops ------------------------------------------------------------------------------
# Shapes are small (the files are committed) but odd, so no size is a multiple of a
# vector width by accident, and some cross the CPU kernels' tile sizes.


def gen_linear(o):
    def fn(x, w, b=None):
        return F.linear(x, w, b)

    for name, lead, k, n, bias in [
        ("bias_2d", (5,), 12, 7, True),
        ("nobias_3d", (2, 3), 13, 9, False),
        ("bias_4d", (2, 2, 3), 16, 5, True),
        ("bias_k320", (17,), 320, 33, True),  # K of an SD block: longer accumulation
    ]:
        x = randn(*lead, k)
        w = randn(n, k, scale=1 / math.sqrt(k))
        b = randn(n) if bias else None
        o.case(name, fn, {"x": x, "w": w, "b": b})


def gen_matmul(o):
    for name, B, M, K, N, trans_b, alpha in [
        ("nn_b1", 1, 5, 7, 6, 0, 1.0),
        ("nt_b3_alpha", 3, 9, 8, 11, 1, 0.125),
        ("nn_b2_alpha", 2, 4, 33, 3, 0, -2.5),
        ("nt_b2_k64", 2, 17, 64, 19, 1, 1 / math.sqrt(64)),  # attention-like q k^T
    ]:
        a = randn(B, M, K)
        b = randn(B, N, K) if trans_b else randn(B, K, N)
        al = float(np.float32(alpha))

        def fn(a, b, trans_b=trans_b, al=al):
            return al * torch.matmul(a, b.transpose(1, 2) if trans_b else b)

        o.case(name, fn, {"a": a, "b": b}, {"trans_b": trans_b, "alpha": f32(alpha)})


def gen_conv2d(o):
    for name, N, ci, co, h, w, k, stride, pad, bias in [
        ("k1_s1_p0", 2, 5, 6, 7, 9, 1, 1, 0, True),
        ("k1_s2_p0", 1, 4, 3, 7, 8, 1, 2, 0, True),
        ("k3_s1_p1", 2, 5, 6, 7, 9, 3, 1, 1, True),
        ("k3_s2_p1", 2, 5, 6, 7, 9, 3, 2, 1, True),
        ("k3_s2_p1_even", 1, 3, 4, 8, 8, 3, 2, 1, True),  # SD downsampler shape
        ("k3_s1_p0", 1, 3, 4, 6, 5, 3, 1, 0, True),
        ("k3_s2_p0_nobias", 1, 3, 4, 9, 7, 3, 2, 0, False),
        ("k3_s1_p2", 1, 2, 3, 4, 5, 3, 1, 2, True),
        ("k3_s1_p1_ci32", 1, 32, 16, 8, 8, 3, 1, 1, True),  # K = 288: longer sums
        ("k1_s1_p0_1x1", 3, 8, 5, 1, 1, 1, 1, 0, True),
    ]:
        x = randn(N, ci, h, w)
        wt = randn(co, ci, k, k, scale=1 / math.sqrt(ci * k * k))
        b = randn(co) if bias else None

        def fn(x, w, b=None, stride=stride, pad=pad):
            return F.conv2d(x, w, b, stride=stride, padding=pad)

        o.case(name, fn, {"x": x, "w": wt, "b": b}, {"stride": stride, "pad": pad})


def gen_group_norm(o):
    for name, shape, groups, eps, silu, scale, shift in [
        ("g32_sd", (2, 64, 4, 4), 32, 1e-5, 0, 1.0, 0.0),
        ("g32_sd_silu", (2, 64, 4, 4), 32, 1e-5, 1, 1.0, 0.0),
        ("g3_odd_silu", (1, 6, 5, 3), 3, 1e-6, 1, 1.0, 0.0),
        ("g1_whole", (2, 5, 3, 3), 1, 1e-5, 0, 1.0, 0.0),
        ("gc_per_channel", (1, 4, 3, 5), 4, 1e-5, 0, 1.0, 0.0),
        ("g4_3d", (2, 8, 10), 4, 1e-6, 0, 1.0, 0.0),  # (N, C, L): temporal layers
        ("g32_offset_silu", (1, 64, 3, 3), 32, 1e-5, 1, 3.0, 10.0),  # mean >> std
    ]:
        C = shape[1]
        x = randn(*shape, scale=scale, shift=shift)
        gamma = randn(C, scale=0.5, shift=1.0)
        beta = randn(C, scale=0.5)

        def fn(x, gamma, beta, groups=groups, eps=eps, silu=silu):
            y = F.group_norm(x, groups, gamma, beta, eps)
            return F.silu(y) if silu else y

        o.case(name, fn, {"x": x, "gamma": gamma, "beta": beta},
               {"groups": groups, "eps": f32(eps), "fuse_silu": silu})


def gen_layer_norm(o):
    for name, shape, affine, eps, scale, shift in [
        ("affine_3d", (2, 5, 16), True, 1e-5, 1.0, 0.0),
        ("plain_2d", (3, 7), False, 1e-6, 1.0, 0.0),
        ("affine_c320", (3, 320), True, 1e-5, 1.0, 0.0),
        ("affine_offset", (4, 33), True, 1e-5, 2.0, 8.0),  # mean >> std
        ("affine_4d", (2, 2, 3, 9), True, 1e-5, 1.0, 0.0),
    ]:
        C = shape[-1]
        x = randn(*shape, scale=scale, shift=shift)
        gamma = randn(C, scale=0.5, shift=1.0) if affine else None
        beta = randn(C, scale=0.5) if affine else None

        def fn(x, gamma=None, beta=None, eps=eps):
            return F.layer_norm(x, (x.shape[-1],), gamma, beta, eps)

        o.case(name, fn, {"x": x, "gamma": gamma, "beta": beta}, {"eps": f32(eps)})


def gen_softmax(o):
    def fn(x):
        return torch.softmax(x, dim=-1)

    o.case("rows_3d", fn, {"x": randn(2, 3, 17)})
    o.case("wide_77", fn, {"x": randn(4, 77, scale=3.0)})
    o.case("large_logits", fn, {"x": randn(3, 40, scale=30.0, shift=50.0)})  # needs max subtraction
    o.case("one_column", fn, {"x": randn(5, 1)})
    o.case("long_row_300", fn, {"x": randn(2, 300, scale=4.0)})


def gen_gelu(o):
    x = torch.cat([randn(3, 33, scale=3.0).flatten(), torch.tensor([-12.0, -6.0, -0.0, 0.0, 6.0, 12.0])])
    for tanh in (0, 1):
        def fn(x, tanh=tanh):
            return F.gelu(x, approximate="tanh" if tanh else "none")

        o.case("tanh" if tanh else "erf", fn, {"x": x.reshape(3, 35)}, {"tanh_approx": tanh})
    o.case("erf_4d", lambda x: F.gelu(x), {"x": randn(2, 3, 4, 5, scale=2.0)}, {"tanh_approx": 0})


def gen_quick_gelu(o):
    def fn(x):
        return x * torch.sigmoid(1.702 * x)

    o.case("wide_range", fn, {"x": randn(4, 29, scale=6.0)})
    o.case("extremes", fn, {"x": torch.tensor([[-100.0, -30.0, -5.0, 0.0, 5.0, 30.0, 100.0]])})


def gen_silu(o):
    def fn(x):
        return F.silu(x)

    o.case("wide_range", fn, {"x": randn(3, 5, 21, scale=6.0)})
    o.case("extremes", fn, {"x": torch.tensor([[-100.0, -30.0, -5.0, 0.0, 5.0, 30.0, 100.0]])})


def gen_geglu(o):
    def fn(x):
        h, gate = x.chunk(2, dim=-1)
        return h * F.gelu(gate)

    o.case("f12_3d", fn, {"x": randn(2, 5, 24, scale=2.0)})
    o.case("f37_2d", fn, {"x": randn(3, 74, scale=2.0)})


def gen_upsample_nearest2x(o):
    def fn(x):
        return F.interpolate(x, scale_factor=2.0, mode="nearest")

    o.case("odd", fn, {"x": randn(2, 3, 4, 5)})
    o.case("one_pixel", fn, {"x": randn(1, 2, 1, 1)})
    o.case("wide", fn, {"x": randn(1, 1, 3, 17)})


def gen_binary(o, op):
    for name, sa, sb in [
        ("same_4d", (2, 3, 4, 5), (2, 3, 4, 5)),
        ("nchw_nc11", (2, 3, 4, 5), (2, 3, 1, 1)),  # time embedding added to a ResNet block
        ("blc_c", (2, 7, 6), (6,)),  # bias-like broadcast over tokens
        ("blc_1l1", (2, 7, 6), (1, 7, 1)),
        ("same_1d", (13,), (13,)),
    ]:
        o.case(name, lambda a, b: op(a, b), {"a": randn(*sa), "b": randn(*sb)})


def gen_scale(o):
    for name, shape, alpha, beta in [
        ("vae_factor", (2, 4, 3, 5), 0.18215, 0.0),
        ("affine", (3, 11), 2.0, -1.0),  # [0, 1] -> [-1, 1]
        ("half_shift", (17,), 0.5, 0.5),
    ]:
        a, b = float(np.float32(alpha)), float(np.float32(beta))
        o.case(name, lambda x, a=a, b=b: x * a + b, {"x": randn(*shape)}, {"alpha": f32(alpha), "beta": f32(beta)})


def gen_concat(o):
    for name, sa, sb, dim in [
        ("nchw_dim1", (2, 3, 4, 5), (2, 2, 4, 5), 1),  # UNet skip connection
        ("blc_last", (2, 3, 4), (2, 3, 6), 2),
        ("bl_dim0", (2, 5), (3, 5), 0),
        ("blc_dim1", (2, 4, 3), (2, 7, 3), 1),  # tokens of two sequences
    ]:
        o.case(name, lambda a, b, dim=dim: torch.cat([a, b], dim=dim), {"a": randn(*sa), "b": randn(*sb)}, {"dim": dim})


def gen_transpose(o):
    # Tiles are 32x32 on both back ends: ragged edges, exact multiples, B = 1, and a
    # vector (one row) are all covered.
    for name, shape in [
        ("b1_ragged", (1, 33, 47)),  # one partial tile in each direction
        ("b3_small", (3, 5, 7)),  # smaller than one tile
        ("b2_tiles", (2, 64, 32)),  # whole tiles only
        ("b2_row", (2, 1, 40)),  # (1, N) -> (N, 1)
    ]:
        o.case(name, lambda x: x.transpose(-1, -2), {"x": randn(*shape)})


def gen_gather_rows(o):
    # idx is stored as float32 (exact for these small integers); the C side converts it.
    # Repeats, the first and last rows, leading dims on both sides, C = 1.
    def make(name, xshape, oshape, idx):
        C = xshape[-1]
        assert oshape[-1] == C and math.prod(oshape) // C == len(idx)

        def fn(x, idx):
            return torch.index_select(x.reshape(-1, C), 0, idx.long()).reshape(oshape)

        o.case(name, fn, {"x": randn(*xshape), "idx": torch.tensor(idx, dtype=torch.float32)})

    make("rows_2d", (9, 13), (6, 13), [8, 0, 3, 3, 7, 1])
    make("lead_dims", (2, 5, 7), (3, 4, 7), torch.randint(0, 10, (12,)).tolist())  # N > M
    make("tokens_half", (1, 40, 64), (1, 20, 64), torch.randperm(40)[:20].tolist())  # CSA-like
    make("c1", (3, 1), (5, 1), [2, 2, 0, 1, 2])


def gen_lerp(o):
    for name, shape, t in [("t030", (2, 3, 7), 0.3), ("t075", (19,), 0.75), ("t_neg", (4, 5), -0.5), ("t1", (6,), 1.0)]:
        tt = float(np.float32(t))
        o.case(name, lambda a, b, tt=tt: torch.lerp(a, b, tt), {"a": randn(*shape), "b": randn(*shape)}, {"t": f32(t)})


def get_timestep_embedding(timesteps, embedding_dim, flip_sin_to_cos=False, downscale_freq_shift=1.0,
                           scale=1.0, max_period=10000):
    """diffusers.models.embeddings.get_timestep_embedding, line for line (diffusers is not
    a dependency). In float64 mode only the dtype differs."""
    dt = timesteps.dtype
    half_dim = embedding_dim // 2
    exponent = -math.log(max_period) * torch.arange(start=0, end=half_dim, dtype=dt)
    exponent = exponent / (half_dim - downscale_freq_shift)
    emb = torch.exp(exponent)
    emb = timesteps[:, None].to(dt) * emb[None, :]
    emb = scale * emb
    emb = torch.cat([torch.sin(emb), torch.cos(emb)], dim=-1)
    if flip_sin_to_cos:
        emb = torch.cat([emb[:, half_dim:], emb[:, :half_dim]], dim=-1)
    if embedding_dim % 2 == 1:
        emb = torch.nn.functional.pad(emb, (0, 1, 0, 0))
    return emb


def gen_timestep_embedding(o):
    steps = torch.tensor([0.0, 1.0, 17.0, 261.5, 500.0, 999.0])
    for name, dim, flip, shift, period in [
        ("sd_flip_shift0", 32, 1, 0.0, 10000),  # SD UNet: flip_sin_to_cos=True, freq_shift=0
        ("noflip_shift1", 32, 0, 1.0, 10000),  # diffusers default
        ("flip_shift1_odd", 33, 1, 1.0, 10000),  # odd dim: a zero column at the end
        ("noflip_shift0_odd", 17, 0, 0.0, 10000),
        ("period_1000", 16, 1, 0.0, 1000),
    ]:
        def fn(t, dim=dim, flip=flip, shift=shift, period=period):
            return get_timestep_embedding(t, dim, bool(flip), shift, 1.0, period)

        o.case(name, fn, {"t": steps},
               {"flip_sin_to_cos": flip, "downscale_freq_shift": f32(shift), "max_period": f32(period)})


def gen_attention(o):
    """q (B, Lq, H*D); segments k_i, v_i (Bk_i, Lk_i, H*D); head h = channels h*D..h*D+D-1.
    torch side: keys of all segments concatenated (batch-1 segments expanded), then SDPA."""

    def make(name, B, Lq, H, D, segs, causal=0, scale=0.0):
        C = H * D
        inputs = {"q": randn(B, Lq, C)}
        for i, (bk, lk) in enumerate(segs):
            inputs[f"k{i}"] = randn(bk, lk, C)
            inputs[f"v{i}"] = randn(bk, lk, C)
        n = len(segs)

        def fn(q, **kv):
            def heads(t):
                return t.reshape(t.shape[0], t.shape[1], H, D).transpose(1, 2)  # (B, H, L, D)

            ks = torch.cat([kv[f"k{i}"].expand(B, -1, -1) for i in range(n)], dim=1)
            vs = torch.cat([kv[f"v{i}"].expand(B, -1, -1) for i in range(n)], dim=1)
            o_ = F.scaled_dot_product_attention(heads(q), heads(ks), heads(vs), is_causal=bool(causal),
                                                scale=scale if scale > 0 else None)
            return o_.transpose(1, 2).reshape(B, Lq, C)

        o.case(name, fn, inputs, {"heads": H, "causal": causal, "scale": f32(scale), "nsegs": n})

    make("self_b2", 2, 7, 2, 8, [(2, 7)])
    make("cross_lq9_lk5", 2, 9, 3, 4, [(2, 5)])  # text conditioning: Lq != Lk
    make("cross_d40_lk77", 1, 20, 2, 40, [(1, 77)])  # SD head dim 40, 77 text tokens
    make("segs3_bank", 2, 6, 2, 8, [(2, 6), (2, 4), (1, 5)])  # own + gathered + shared bank
    make("segs2_scale", 3, 5, 1, 16, [(3, 3), (1, 8)], scale=0.3)
    make("causal_b2", 2, 6, 2, 8, [(2, 6)], causal=1)  # CLIP text encoder
    make("causal_l77", 1, 77, 2, 16, [(1, 77)], causal=1)
    make("tiles_lk300", 2, 70, 2, 16, [(2, 150), (2, 100), (1, 50)])  # > 256 keys: several tiles


OPS = {
    "linear": gen_linear,
    "matmul": gen_matmul,
    "conv2d": gen_conv2d,
    "group_norm": gen_group_norm,
    "layer_norm": gen_layer_norm,
    "softmax": gen_softmax,
    "gelu": gen_gelu,
    "quick_gelu": gen_quick_gelu,
    "silu": gen_silu,
    "geglu": gen_geglu,
    "upsample_nearest2x": gen_upsample_nearest2x,
    "add": lambda o: gen_binary(o, torch.add),
    "mul": lambda o: gen_binary(o, torch.mul),
    "scale": gen_scale,
    "concat": gen_concat,
    "transpose": gen_transpose,
    "gather_rows": gen_gather_rows,
    "lerp": gen_lerp,
    "timestep_embedding": gen_timestep_embedding,
    "attention": gen_attention,
}


def ops_in_header():
    """The op names of STORY_OPS in kernels/ops.h, so a new op without goldens is noticed."""
    import re

    with open(os.path.join(HERE, "..", "..", "kernels", "ops.h")) as f:
        return re.findall(r"^\s*X\((\w+),", f.read(), flags=re.M)


def main():
    torch.set_num_threads(1)  # summation order independent of the machine
    torch.use_deterministic_algorithms(True)
    os.makedirs(DATA, exist_ok=True)
    print("make_golden.py: " + ", ".join(f"{k} {v}" for k, v in VERSIONS.items()))
    declared = ops_in_header()
    missing = [op for op in declared if op not in OPS]
    if missing:
        sys.exit(f"make_golden.py: ops in kernels/ops.h without a generator: {', '.join(missing)}")
    only = sys.argv[1:]
    unknown = [op for op in only if op not in declared]
    if unknown:
        sys.exit(f"make_golden.py: not ops of kernels/ops.h: {', '.join(unknown)}")
    total, rows = 0, []
    for op in declared:
        if only and op not in only:  # keep the committed file; read its figures back
            path = os.path.join(DATA, f"{op}.safetensors")
            if not os.path.exists(path):
                sys.exit(f"make_golden.py: {path} is missing: regenerate it too")
            with safe_open(path, framework="pt") as f:
                meta = f.metadata()
            made_with = {k: meta.get(f"version.{k}") for k in VERSIONS}
            if made_with != VERSIONS:
                sys.exit(f"make_golden.py: {path} was made with {made_with}, not {VERSIONS}: regenerate all")
            size = os.path.getsize(path)
            total += size
            rows.append((op, len(meta["cases"].split(",")), size))
            continue
        o = OpFile(op)
        OPS[op](o)
        path = o.save()
        size = os.path.getsize(path)
        total += size
        rows.append((op, len(o.cases), size))
    if total > MAX_TOTAL_BYTES:
        sys.exit(f"make_golden.py: goldens total {total} bytes, over the {MAX_TOTAL_BYTES}-byte budget")
    with open(os.path.join(HERE, "VERSIONS.md"), "w") as f:
        f.write("# Versions used for tests/golden/data\n\n")
        f.write("Written by `tests/golden/make_golden.py` (do not edit by hand; rerun the script).\n")
        f.write("torch ran on the CPU, one thread, deterministic algorithms.\n\n")
        f.write("| package | version |\n|---|---|\n")
        for k, v in VERSIONS.items():
            f.write(f"| {k} | {v} |\n")
        f.write("\n| op file | cases | bytes |\n|---|---:|---:|\n")
        for op, n, size in rows:
            f.write(f"| {op}.safetensors | {n} | {size} |\n")
        f.write(f"| total | {sum(r[1] for r in rows)} | {total} |\n")
    print(f"make_golden.py: {len(rows)} op files, {sum(r[1] for r in rows)} cases, {total} bytes in {DATA}")


if __name__ == "__main__":
    main()

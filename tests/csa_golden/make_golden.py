#!/usr/bin/env python3
"""Writes tests/csa_golden/golden.safetensors: what Consistent Self-Attention (DESIGN.md 2.1,
models/csa.h) computes for one tiny attention layer, with diffusers' own Attention module
(AttnProcessor2_0: to_q/to_k/to_v without bias, scaled dot product over the heads,
to_out.0 with bias) as the reference, for tests/csa_golden/test_csa_golden.c.

    /opt/ref-venv/bin/python tests/csa_golden/make_golden.py

The layer: C = 32 channels, 4 heads of 8, a 4 x 4 token grid (L = 16), K = 8 sampled tokens
per image (rate 0.5), 2 guidance halves (rows [uncond images; cond images]). Seeded torch
CPU float32, one thread.

Which tokens are sampled is not random here: the script reproduces models/csa.c's
csa_sample exactly (Philox-4x32-10 in numpy, keyed as partition/partition.c's csa_key
packs (seed, kind, index, step, layer field = grid height, purpose SAMPLE); word j of the
stream for token j; the K smallest words, ties by token index; sorted ascending) and saves
the indices. The C test asserts that the code picked exactly these indices (a cross-check
of the sampler) and then compares the outputs. Self-attention has no positional encoding,
so the order of the key/value tokens does not change the result: the reference
concatenates [own tokens, other tokens] while the C code reads them as separate segments
in its own order; both are the same attention.

Cases (the plan: seed SEED, step STEP, one CSA layer of an up block):
  id.*      bank mode id pass of one character with n = 3 id images (story frames
            ID_FRAMES). id.x (6, 16, 32) random x_normed rows [uncond 0..2; cond 0..2].
            id.index (3, 8) int32: image i's sampled tokens (stream kind FRAME, index
            ID_FRAMES[i]). id.bank (2, 24, 32): the bank the pass must store, half h,
            image j's tokens at [8j, 8j + 8) = id.x[h*3 + j][id.index[j]].
            id.out_on: image i, half h attends to its own 16 tokens + the bank of half h
            without image i's own sample (gate on); id.out_off: plain self-attention.
  frame.*   one frame reading two character banks: bank A = id.bank (3 images), bank B =
            frame.bank_b (2, 16, 32) (2 images) given directly. frame.x (2, 16, 32);
            frame.out: row h attends to its own tokens + bank A half h + bank B half h.
            frame.bank_b_bumped, frame.out_bumped: the same with one token of bank B (cond
            half, token 5) moved by +2 in every channel (the test's negative control).
  many.*    a frame naming 15 characters with 1 image and 1 token each (more banks than
            the attention kernel has segments: models/csa.c joins them into one copy).
            many.banks (15, 2, 1, 32); many.out14: frame.x with banks 0..13 (segments);
            many.out15: with all 15 (the joined copy).
  win.*     window mode, F = 5 frames, W = 3 (windows t = 0, 1, 2 cover [t, t + 3)).
            win.prev (5, 2, 16, 32): every frame's tokens of step STEP - 1. win.frames (2,)
            int32 = [2, 4]: frame 2 lies in windows 0, 1, 2, frame 4 in window 2 only.
            win.x (2, 2, 16, 32): those frames' tokens at step STEP. win.index (3, 3, 8)
            int32: window t's sample of its frame at position p (stream kind WINDOW, index
            t, words offset by p * L). win.out (2, 2, 16, 32): frame f, half h = the mean
            over the windows t containing f of attention over f's own tokens + win.prev[g]
            [h][win.index[t][g - t]] for the other frames g of window t.
  attn.*    the layer's weights in diffusers' names (to_q.weight, ..., to_out.0.bias).

Metadata: one key, "storyrun.csa_golden", a JSON object with the versions used, the case
configuration and f32_vs_f64. Every output is also computed in float64 from the same
inputs; the script prints (and records as f32_vs_f64) how far the float32 reference is
from it (the floor of any f32 comparison).
"""
import json
import os
import platform

import numpy as np
import torch
import diffusers
import safetensors
from diffusers.models.attention_processor import Attention
from safetensors.torch import save_file

C, HEADS, GRID_H, GRID_W = 32, 4, 4, 4
L = GRID_H * GRID_W
K = 8
HALVES = 2
SEED = 20240607          # CsaPlan.seed
STEP = 2                 # the denoising step of every call (plan: 3 steps, no warm-up)
ID_FRAMES = [1, 4, 6]    # story frames of the id images
N_ID = len(ID_FRAMES)
N_B = 2                  # id images of character B
N_MANY = 15
F_WIN, W_WIN = 5, 3
WIN_FRAMES = [2, 4]

# partition/partition.h: CsaKind, CsaPurpose
KIND_FRAME, KIND_WINDOW = 2, 3
PURPOSE_SAMPLE = 1

# ---- Philox-4x32-10 (Random123), numpy uint32 arithmetic ----------------------------------

M0, M1 = np.uint64(0xD2511F53), np.uint64(0xCD9E8D57)
W0, W1 = 0x9E3779B9, 0xBB67AE85
MASK32 = np.uint64(0xFFFFFFFF)


def philox4x32_10(ctr, key):
    """ctr (N, 4) uint32 counters, key (2,) ints -> (N, 4) uint32."""
    c = [ctr[:, i].astype(np.uint64) for i in range(4)]
    k0, k1 = int(key[0]) & 0xFFFFFFFF, int(key[1]) & 0xFFFFFFFF
    for r in range(10):
        if r:
            k0 = (k0 + W0) & 0xFFFFFFFF
            k1 = (k1 + W1) & 0xFFFFFFFF
        p0 = M0 * c[0]  # < 2^64: exact in uint64
        p1 = M1 * c[2]
        hi0, lo0 = p0 >> np.uint64(32), p0 & MASK32
        hi1, lo1 = p1 >> np.uint64(32), p1 & MASK32
        c = [hi1 ^ c[1] ^ np.uint64(k0), lo1, hi0 ^ c[3] ^ np.uint64(k1), lo0]
    return np.stack(c, axis=1).astype(np.uint32)


def philox_kat():
    """Random123's known-answer vectors for philox4x32, 10 rounds."""
    kat = [
        ([0, 0, 0, 0], [0, 0], [0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8]),
        ([0xFFFFFFFF] * 4, [0xFFFFFFFF] * 2, [0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD]),
        ([0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344], [0xA4093822, 0x299F31D0],
         [0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1]),
    ]
    for ctr, key, want in kat:
        got = philox4x32_10(np.array([ctr], dtype=np.uint32), key)[0]
        assert [int(v) for v in got] == want, (ctr, key, [hex(v) for v in got])


def csa_stream(kind, index, step, layer, purpose):
    """partition.c csa_key: purpose 8 bits | kind 4 | layer 12 | step 16 | index 24."""
    return purpose | kind << 8 | layer << 12 | step << 24 | index << 40


def philox_words(seed, stream, first, n):
    """Elements first .. first + n - 1 of the stream (models/rng.c rng_philox_u32: element
    i is word i % 4 of block i / 4; counter = (block lo, block hi, stream lo, stream hi))."""
    i = np.arange(first, first + n, dtype=np.uint64)
    blocks = i // np.uint64(4)
    ctr = np.stack([blocks & MASK32, blocks >> np.uint64(32),
                    np.full_like(blocks, stream & 0xFFFFFFFF),
                    np.full_like(blocks, stream >> 32)], axis=1).astype(np.uint32)
    out = philox4x32_10(ctr, [seed & 0xFFFFFFFF, seed >> 32])
    return out[np.arange(n), (i % np.uint64(4)).astype(np.int64)]


def csa_sample(kind, index, step, grid_h, offset, n_tokens, k):
    """models/csa.c csa_sample: the k smallest words (ties by token), ascending."""
    stream = csa_stream(kind, index, step, grid_h, PURPOSE_SAMPLE)
    words = philox_words(SEED, stream, offset, n_tokens).astype(np.uint64)
    order = sorted(range(n_tokens), key=lambda j: (int(words[j]), j))
    return np.array(sorted(order[:k]), dtype=np.int32)


# ---- the attention layer ------------------------------------------------------------------

def make_layer():
    attn = Attention(query_dim=C, heads=HEADS, dim_head=C // HEADS, bias=False, out_bias=True)
    with torch.no_grad():
        # logits of std ~2 (not a near-uniform softmax), so wrong tokens show
        for lin in (attn.to_q, attn.to_k):
            lin.weight.copy_(torch.randn(C, C) * 0.25)
        attn.to_v.weight.copy_(torch.randn(C, C) * 0.2)
        attn.to_out[0].weight.copy_(torch.randn(C, C) * 0.2)
        attn.to_out[0].bias.copy_(torch.randn(C) * 0.1)
    return attn.eval()


def run(attn, q, kv):
    """diffusers Attention: q (Lq, C) queries, kv (Lk, C) key/value tokens -> (Lq, C)."""
    with torch.no_grad():
        return attn(q[None], encoder_hidden_states=kv[None])[0]


class Both:
    """The layer in f32 (the golden) and f64 (to measure the golden's own rounding)."""

    def __init__(self, attn):
        self.f32 = attn
        self.f64 = make_layer().double()
        self.f64.load_state_dict({k: v.double() for k, v in attn.state_dict().items()})
        self.worst = 0.0

    def __call__(self, q, kv):
        a = run(self.f32, q, kv)
        b = run(self.f64, q.double(), kv.double())
        self.worst = max(self.worst, float((a.double() - b).abs().max() / b.abs().max()))
        return a


def main():
    torch.manual_seed(0)
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    philox_kat()
    attn = make_layer()
    ref = Both(attn)
    t = {}
    for name, p in attn.state_dict().items():
        t["attn." + name] = p.detach().clone().contiguous()

    # (a) id pass: rows [h * N_ID + i]
    x = torch.randn(HALVES * N_ID, L, C)
    idx = np.stack([csa_sample(KIND_FRAME, f, STEP, GRID_H, 0, L, K) for f in ID_FRAMES])
    bank = torch.stack([torch.cat([x[h * N_ID + j][torch.from_numpy(idx[j]).long()]
                                   for j in range(N_ID)]) for h in range(HALVES)])
    out_on = torch.empty_like(x)
    out_off = torch.empty_like(x)
    for h in range(HALVES):
        for i in range(N_ID):
            r = h * N_ID + i
            others = [bank[h][j * K:(j + 1) * K] for j in range(N_ID) if j != i]
            out_on[r] = ref(x[r], torch.cat([x[r]] + others))
            out_off[r] = ref(x[r], x[r])
    t.update({"id.x": x, "id.frames": torch.tensor(ID_FRAMES, dtype=torch.int32),
              "id.index": torch.from_numpy(idx), "id.bank": bank,
              "id.out_on": out_on, "id.out_off": out_off})

    # (b) a frame reading the banks of characters A (= the id pass's) and B
    fx = torch.randn(HALVES, L, C)
    bank_b = torch.randn(HALVES, N_B * K, C)
    bumped = bank_b.clone()
    bumped[1, 5] += 2.0

    def frame_out(banks):
        return torch.stack([ref(fx[h], torch.cat([fx[h]] + [b[h] for b in banks]))
                            for h in range(HALVES)])

    t.update({"frame.x": fx, "frame.bank_b": bank_b, "frame.out": frame_out([bank, bank_b]),
              "frame.bank_b_bumped": bumped, "frame.out_bumped": frame_out([bank, bumped])})

    # (b') more banks than attention segments
    many = torch.randn(N_MANY, HALVES, 1, C)
    t.update({"many.banks": many, "many.out14": frame_out(list(many[:14])),
              "many.out15": frame_out(list(many))})

    # (c) window mode
    prev = torch.randn(F_WIN, HALVES, L, C)
    wx = torch.randn(len(WIN_FRAMES), HALVES, L, C)
    n_win = F_WIN - W_WIN + 1
    widx = np.stack([np.stack([csa_sample(KIND_WINDOW, w, STEP, GRID_H, p * L, L, K)
                               for p in range(W_WIN)]) for w in range(n_win)])
    wout = torch.empty_like(wx)
    for a, f in enumerate(WIN_FRAMES):
        for h in range(HALVES):
            outs = []
            for w in range(n_win):
                if not w <= f < w + W_WIN:
                    continue
                pool = [prev[g][h][torch.from_numpy(widx[w][g - w]).long()]
                        for g in range(w, w + W_WIN) if g != f]
                outs.append(ref(wx[a][h], torch.cat([wx[a][h]] + pool)))
            wout[a][h] = torch.stack(outs).mean(0)
    t.update({"win.prev": prev, "win.frames": torch.tensor(WIN_FRAMES, dtype=torch.int32),
              "win.x": wx, "win.index": torch.from_numpy(widx), "win.out": wout})

    t = {k: v.contiguous() for k, v in t.items()}
    info = {"torch": torch.__version__, "diffusers": diffusers.__version__,
            "numpy": np.__version__, "safetensors": safetensors.__version__,
            "python": platform.python_version(),
            "config": f"C={C} heads={HEADS} grid={GRID_H}x{GRID_W} K={K} halves={HALVES} "
                      f"seed={SEED} step={STEP} id_frames={ID_FRAMES} F={F_WIN} W={W_WIN}",
            "f32_vs_f64": f"{ref.worst:.3e}"}
    # one metadata key: safetensors writes several in a random order (the file would
    # change on every run)
    meta = {"storyrun.csa_golden": json.dumps(info, sort_keys=True)}
    here = os.path.dirname(os.path.abspath(__file__))
    path = os.path.join(here, "golden.safetensors")
    tmp = path + ".tmp"
    save_file(t, tmp, metadata=meta)
    os.chmod(tmp, 0o644)
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    print(f"{path}: {len(t)} tensors, {os.path.getsize(path)} bytes")
    print(f"f32 reference vs f64, max |diff| / max |f64| over all outputs: {ref.worst:.3e}")
    print("id.index:", idx.tolist())


if __name__ == "__main__":
    main()

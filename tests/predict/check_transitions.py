#!/usr/bin/python3
"""Checks transitions stores written by `storyrun predict` with h5py (Debian's python3-h5py).

    check_transitions.py expect STORE pairs=N L=N D=N source=story|pairs predictor=CKPT
        shapes and types of every dataset (docs/stores.md), the attributes, the predictor's
        SHA-256 (hashlib, on the checkpoint file), finite values, frame indices; for a story,
        pair i is frames (i, i + 1), so end_embed[i] == start_embed[i + 1] bitwise.
    check_transitions.py same A.h5 B.h5
        every dataset of A equals B's (shape, dtype, bytes), every attribute but `created`.

Exit 0 and a last line "check_transitions: ok" when everything holds; 1 with the problems;
77 (ctest's skip code here) when h5py is not installed.
"""
import hashlib
import sys

try:
    import h5py
    import numpy as np
except ImportError as e:  # pragma: no cover
    print(f"check_transitions: skipped: {e} (install python3-h5py)")
    sys.exit(77)

problems = []


def bad(msg):
    problems.append(msg)
    print("FAIL", msg)


def datasets(f):
    out = {}
    f.visititems(lambda n, o: out.__setitem__(n, o) if isinstance(o, h5py.Dataset) else None)
    return out


def expect(path, args):
    want = dict(a.split("=", 1) for a in args)
    f = h5py.File(path, "r")
    n, L, D = int(want["pairs"]), int(want["L"]), int(want["D"])
    shapes = {
        "pairs": ((n, L, D), "f4"),
        "start_embed": ((n, D), "f4"),
        "end_embed": ((n, D), "f4"),
        "pair_meta/start_frame": ((n,), "i8"),
        "pair_meta/end_frame": ((n,), "i8"),
        "pair_meta/start_path": ((n,), "S"),
        "pair_meta/end_path": ((n,), "S"),
        "pair_meta/prompt": ((n,), "S"),
    }
    for name, (shape, kind) in shapes.items():
        if name not in f:
            bad(f"{path}: {name} is missing")
            continue
        d = f[name]
        if d.shape != shape or not d.dtype.str.lstrip("<>|").startswith(kind):
            bad(f"{path}: {name} is {d.shape} {d.dtype}; expected {shape} {kind}")
    a = f.attrs
    for k, v in (("kind", "transitions"), ("source_kind", want["source"])):
        if a.get(k) != v:
            bad(f"{path}: attribute {k} is {a.get(k)!r}; expected {v!r}")
    for k, v in (("format_version", 1), ("n_pairs", n), ("L", L), ("D", D),
                 ("predictor_frames", L), ("predictor_embed_dim", D)):
        if int(a.get(k, -1)) != v:
            bad(f"{path}: attribute {k} is {a.get(k)}; expected {v}")
    sha = hashlib.sha256(open(want["predictor"], "rb").read()).hexdigest()
    if a.get("predictor_sha256") != sha:
        bad(f"{path}: predictor_sha256 {a.get('predictor_sha256')} != {sha}")
    if not str(a.get("storyrun_version", "")).startswith("0."):
        bad(f"{path}: storyrun_version {a.get('storyrun_version')!r}")
    if problems:
        return
    P, ks, ke = f["pairs"][()], f["start_embed"][()], f["end_embed"][()]
    for name, x in (("pairs", P), ("start_embed", ks), ("end_embed", ke)):
        if not np.isfinite(x).all():
            bad(f"{path}: {name} has non-finite values")
    if (ks == ke).all(axis=1).any():
        bad(f"{path}: a pair has equal start and end embeddings")
    sf, ef = f["pair_meta/start_frame"][()], f["pair_meta/end_frame"][()]
    if want["source"] == "story":
        if list(sf) != list(range(n)) or list(ef) != list(range(1, n + 1)):
            bad(f"{path}: frames {list(sf)} -> {list(ef)}; expected i -> i + 1")
        if n > 1 and ke[:-1].tobytes() != ks[1:].tobytes():
            bad(f"{path}: end_embed[i] != start_embed[i + 1] (the same frame)")
        ends = [p.decode() for p in f["pair_meta/end_path"][()]]
        starts = [p.decode() for p in f["pair_meta/start_path"][()]]
        if starts[1:] != ends[:-1] or not all(p.endswith(".png") for p in ends):
            bad(f"{path}: paths {starts} -> {ends}")
        if not all(p.decode() for p in f["pair_meta/prompt"][()]):
            bad(f"{path}: an empty prompt for a story frame")
    elif (sf != -1).any() or (ef != -1).any():
        bad(f"{path}: frame indices {list(sf)} {list(ef)}; expected -1 for a pairs file")


def same(pa, pb):
    a, b = h5py.File(pa, "r"), h5py.File(pb, "r")
    da, db = datasets(a), datasets(b)
    if sorted(da) != sorted(db):
        bad(f"{pb}: datasets {sorted(db)} != {sorted(da)}")
    for name in sorted(set(da) & set(db)):
        x, y = da[name][()], db[name][()]
        if x.shape != y.shape or x.dtype != y.dtype or x.tobytes() != y.tobytes():
            bad(f"{pb}: {name} differs from {pa}")
    for k in set(a.attrs) | set(b.attrs):
        if k == "created":
            continue
        va, vb = a.attrs.get(k), b.attrs.get(k)
        if not np.array_equal(np.asarray(va), np.asarray(vb)):
            bad(f"{pb}: attribute {k} is {vb!r}, {pa} has {va!r}")
    print(f"compared {len(da)} datasets and {len(a.attrs)} attributes")


def main():
    if len(sys.argv) >= 3 and sys.argv[1] == "expect":
        expect(sys.argv[2], sys.argv[3:])
    elif len(sys.argv) == 4 and sys.argv[1] == "same":
        same(sys.argv[2], sys.argv[3])
    else:
        print(__doc__)
        sys.exit(2)
    if problems:
        print(f"check_transitions: {len(problems)} problem(s)")
        sys.exit(1)
    print("check_transitions: ok")


main()

#!/usr/bin/python3
"""Checks embedding stores written by `storyrun embed` with h5py (Debian's python3-h5py).

    check_store.py same A.h5 B.h5 [C.h5 ...]
        every dataset of A equals B's (same shape, dtype and bytes: bitwise for embeds),
        and every root attribute but `created`/`updated`.
    check_store.py expect STORE key=value ...
        clips=N done=N L=N D=N dtype=f16|f32  the store's shape, done count and type
        skip=SUBSTRING:REASON                 every clip whose video path contains SUBSTRING
                                              is not done and its skip_reason contains REASON
    check_store.py logs DIR PATTERN COUNT
        the number of lines matching the regex PATTERN in DIR/rank*.log is COUNT.

Exit 0 and a last line "check_store: ok" when everything holds; 1 with the problems;
77 (ctest's skip code here) when h5py is not installed.
"""
import glob
import re
import sys

try:
    import h5py
    import numpy as np
except ImportError as e:  # pragma: no cover
    print(f"check_store: skipped: {e} (install python3-h5py)")
    sys.exit(77)

problems = []


def bad(msg):
    problems.append(msg)
    print("FAIL", msg)


def datasets(f):
    out = {}
    f.visititems(lambda name, obj: out.__setitem__(name, obj) if isinstance(obj, h5py.Dataset) else None)
    return out


def same(paths):
    ref = h5py.File(paths[0], "r")
    rd = datasets(ref)
    for p in paths[1:]:
        g = h5py.File(p, "r")
        gd = datasets(g)
        if sorted(rd) != sorted(gd):
            bad(f"{p}: datasets {sorted(gd)} != {sorted(rd)} of {paths[0]}")
            continue
        for name in sorted(rd):
            a, b = rd[name], gd[name]
            if a.shape != b.shape or a.dtype != b.dtype:
                bad(f"{p}: {name} is {b.shape} {b.dtype}, {paths[0]} has {a.shape} {a.dtype}")
                continue
            x, y = a[()], b[()]
            if x.tobytes() != y.tobytes():
                diff = np.argwhere(x != y) if x.dtype.kind != "S" else [i for i in range(len(x)) if x[i] != y[i]]
                bad(f"{p}: {name} differs from {paths[0]} at {len(diff)} place(s), first {list(diff[0])}")
            else:
                print(f"  same {name} {a.shape} {a.dtype}")
        for k in sorted(set(ref.attrs) | set(g.attrs)):
            if k in ("created", "updated"):
                continue
            va, vb = ref.attrs.get(k), g.attrs.get(k)
            if not (np.array_equal(va, vb) if not isinstance(va, str) else va == vb):
                bad(f"{p}: attribute {k} = {vb!r}, {paths[0]} has {va!r}")


def expect(path, args):
    f = h5py.File(path, "r")
    e, done = f["embeds"], f["done"][()]
    n = e.shape[0]
    print(f"  {path}: embeds {e.shape} {e.dtype}, {int(done.sum())} done")
    for a in args:
        k, v = a.split("=", 1)
        if k == "clips" and n != int(v):
            bad(f"{n} clips, expected {v}")
        elif k == "done" and int(done.sum()) != int(v):
            bad(f"{int(done.sum())} done, expected {v}")
        elif k == "L" and (e.shape[1] != int(v) or f.attrs["L"] != int(v)):
            bad(f"L: shape {e.shape[1]}, attribute {f.attrs['L']}, expected {v}")
        elif k == "D" and (e.shape[2] != int(v) or f.attrs["D"] != int(v)):
            bad(f"D: shape {e.shape[2]}, attribute {f.attrs['D']}, expected {v}")
        elif k == "dtype" and (e.dtype != np.dtype({"f16": "float16", "f32": "float32"}[v]) or f.attrs["dtype"] != v):
            bad(f"dtype {e.dtype} / attribute {f.attrs['dtype']!r}, expected {v}")
        elif k == "skip":
            sub, reason = v.split(":", 1)
            paths = f["clip_meta/video_path"][()]
            why = f["clip_meta/skip_reason"][()]
            hit = [i for i in range(n) if sub.encode() in paths[i]]
            if not hit:
                bad(f"no clip of a video matching {sub!r}")
            for i in hit:
                if done[i] or reason.encode() not in why[i]:
                    bad(f"clip {i} ({paths[i].decode()}): done {done[i]}, skip_reason {why[i].decode()!r}; "
                        f"expected not done with {reason!r}")
    # every store: shapes agree, done rows finite and not all zero, frames ascending
    for name, shape in (("done", (n,)), ("clip_meta/frames", (n, e.shape[1])), ("clip_meta/fps", (n,)),
                        ("clip_meta/video_path", (n,)), ("clip_meta/caption", (n,)),
                        ("clip_meta/video_index", (n,)), ("clip_meta/skip_reason", (n,))):
        if f[name].shape != shape:
            bad(f"{name} has shape {f[name].shape}, expected {shape}")
    x = e[()].astype(np.float32)
    fr = f["clip_meta/frames"][()]
    for i in np.flatnonzero(done):
        if not np.all(np.isfinite(x[i])) or not np.any(x[i]):
            bad(f"clip {i} is done but its embeddings are not finite or all zero")
        if not (np.all(np.diff(fr[i]) >= 0) and fr[i][0] >= 0):
            bad(f"clip {i}: frames {fr[i]} are not ascending indices")
    for k in ("encoder_id", "encoder_hash", "plan_hash", "preprocess", "storyrun_version", "created", "updated"):
        if not isinstance(f.attrs.get(k), str):
            bad(f"attribute {k} missing or not a string: {f.attrs.get(k)!r}")
    print(f"  attributes: L {f.attrs['L']} D {f.attrs['D']} stride {f.attrs['stride']} "
          f"clips_per_video {f.attrs['clips_per_video']} format {f.attrs['format_version']}")


def logs(folder, pattern, count):
    rx = re.compile(pattern)
    n = 0
    for p in sorted(glob.glob(f"{folder}/rank*.log")):
        with open(p, encoding="utf-8", errors="replace") as fh:
            n += sum(1 for line in fh if rx.search(line))
    print(f"  {n} line(s) match {pattern!r} in {folder}")
    if n != int(count):
        bad(f"{folder}: {n} line(s) match {pattern!r}, expected {count}")


def main():
    if len(sys.argv) < 3:
        print(__doc__)
        return 2
    mode = sys.argv[1]
    if mode == "same":
        same(sys.argv[2:])
    elif mode == "expect":
        expect(sys.argv[2], sys.argv[3:])
    elif mode == "logs":
        logs(sys.argv[2], sys.argv[3], sys.argv[4])
    else:
        print(__doc__)
        return 2
    if problems:
        print(f"check_store: {len(problems)} problem(s)")
        return 1
    print("check_store: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Writes tests/eval_video/data: PNG frame folders and what transformers and the lpips
package compute for them, for `storyrun eval-video` (jobs/eval_video.c, models/lpips.c).

    /opt/ref-venv/bin/python tests/eval_video/make_golden.py

(needs `pip install --no-deps lpips` in that environment: the lpips package's own code
computes LPIPS; torchvision, which it imports only for alexnet's layer list, and scipy,
which its trainer imports and LPIPS never calls, are stood in for below.)

data/clip_a/000.png ..  5 frames 48x40 RGB: a shape moving over a gradient, noise
data/clip_b/000.png ..  4 frames 40x36 RGB
data/golden.json        per clip, the measures as docs/eval.md defines them:
  clipsim_first  = mean over i >= 1 of cos(E(f_i), E(f_0))
  clipsim_frames = mean over i of cos(E(f_i), E(f_{i+1}))
  E = CLIPVisionModelWithProjection(tests/clip_vision/data/tiny_quick).image_embeds of
      CLIPImageProcessorPil(size {"shortest_edge": 32}, crop 32x32) pixel values, f32;
      cosines and means in float64
  lpips_first / lpips_frames: the same means of lpips.LPIPS(net='alex') distances, frames
      as lpips.im2tensor makes them (v / 127.5 - 1), with the seeded weights below
  versions of the packages

LPIPS weights (seeded, not the published ones; the C test writes the same file): tensor t
of the list NAMES, element i (row-major) = float32(u * 0.1) for the lin layers and
float32((2u - 1) / sqrt(fan_in)) otherwise, u = (splitmix64((t + 1) << 32 | i) >> 11) * 2^-53.
"""
import importlib.metadata as md
import json
import math
import os
import platform
import sys
import types

import numpy as np
import torch
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "data")
ENCODER = os.path.join(HERE, "..", "clip_vision", "data", "tiny_quick")

CONVS = [("net.slice1.0", 3, 64, 11), ("net.slice2.3", 64, 192, 5), ("net.slice3.6", 192, 384, 3),
         ("net.slice4.8", 384, 256, 3), ("net.slice5.10", 256, 256, 3)]
NAMES = []
for name, ci, co, k in CONVS:
    NAMES += [(name + ".weight", (co, ci, k, k), ci * k * k), (name + ".bias", (co,), ci * k * k)]
for l, (_, _, co, _) in enumerate(CONVS):
    NAMES.append((f"lin{l}.model.1.weight", (1, co, 1, 1), 0))


def splitmix64(x):
    m = np.uint64(0xFFFFFFFFFFFFFFFF)
    x = (x + np.uint64(0x9E3779B97F4A7C15)) & m
    z = x
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def seeded_weights():
    out = {}
    with np.errstate(over="ignore"):
        for t, (name, shape, fan) in enumerate(NAMES):
            n = int(np.prod(shape))
            i = np.arange(n, dtype=np.uint64)
            z = splitmix64((np.uint64(t + 1) << np.uint64(32)) | i)
            u = (z >> np.uint64(11)).astype(np.float64) * 2.0**-53
            v = u * 0.1 if fan == 0 else (2 * u - 1) * (1.0 / math.sqrt(fan))
            out[name] = torch.from_numpy(v.astype(np.float32).reshape(shape))
    return out


def stand_ins():
    """torchvision.models.alexnet's features (the layer list torchvision defines) and an
    unused scipy.ndimage.zoom, so that the lpips package imports without them."""
    nn = torch.nn

    class AlexNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.features = nn.Sequential(
                nn.Conv2d(3, 64, 11, stride=4, padding=2), nn.ReLU(inplace=True),
                nn.MaxPool2d(3, 2), nn.Conv2d(64, 192, 5, padding=2), nn.ReLU(inplace=True),
                nn.MaxPool2d(3, 2), nn.Conv2d(192, 384, 3, padding=1), nn.ReLU(inplace=True),
                nn.Conv2d(384, 256, 3, padding=1), nn.ReLU(inplace=True),
                nn.Conv2d(256, 256, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2))

    tv = types.ModuleType("torchvision")
    tv.models = types.ModuleType("torchvision.models")
    tv.models.alexnet = lambda pretrained=False, **kw: AlexNet()
    sys.modules["torchvision"], sys.modules["torchvision.models"] = tv, tv.models
    sp = types.ModuleType("scipy")
    sp.ndimage = types.ModuleType("scipy.ndimage")
    sp.ndimage.zoom = None
    sys.modules["scipy"], sys.modules["scipy.ndimage"] = sp, sp.ndimage


def frames(w, h, n, seed):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    noise = rng.integers(0, 256, (h // 4, w // 4, 3))
    out = []
    for k in range(n):
        img = np.stack([127.5 + 120 * np.sin(x / w * 3 + 0.4 * k), 255.0 * y / (h - 1),
                        127.5 + 120 * np.cos((x + y) / (w + h) * 7 + 0.2 * k)], -1)
        cx, cy = w * (0.25 + 0.12 * k), h * (0.3 + 0.08 * k)
        img[(x - cx) ** 2 + (y - cy) ** 2 < (min(w, h) * 0.2) ** 2] = [240, 30, 40]
        img[h - h // 4:, :w // 4] = noise
        out.append(np.clip(np.round(img), 0, 255).astype(np.uint8))
    return out


def main():
    # transformers first: it looks for a real torchvision, which must not be the stand-in
    from transformers import CLIPVisionModelWithProjection
    from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil
    stand_ins()
    import lpips

    torch.manual_seed(0)
    enc = CLIPVisionModelWithProjection.from_pretrained(ENCODER).eval()
    proc = CLIPImageProcessorPil(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    net = lpips.LPIPS(net="alex", pretrained=False, pnet_rand=True, verbose=False).eval()
    missing, unexpected = net.load_state_dict(seeded_weights(), strict=False)
    assert not unexpected and all(k.startswith(("lins.", "scaling_layer.")) for k in missing), missing
    assert torch.equal(net.lins[0].model[1].weight, net.lin0.model[1].weight)

    golden = {}
    for clip, (w, h, n, seed) in {"clip_a": (48, 40, 5, 1), "clip_b": (40, 36, 4, 2)}.items():
        d = os.path.join(OUT, clip)
        os.makedirs(d, exist_ok=True)
        imgs = frames(w, h, n, seed)
        for k, im in enumerate(imgs):
            Image.fromarray(im, "RGB").save(os.path.join(d, f"{k:03d}.png"))
        # read back what was written: the test reads the same files
        pil = [Image.open(os.path.join(d, f"{k:03d}.png")) for k in range(n)]
        pix = proc(images=pil, return_tensors="pt")["pixel_values"]
        with torch.no_grad():
            e = enc(pixel_values=pix).image_embeds.numpy().astype(np.float64)
        cos = lambda a, b: float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))
        t = [torch.Tensor((np.asarray(p.convert("RGB")) / (255 / 2.0) - 1.0)[:, :, :, None]
                          .transpose((3, 2, 0, 1))) for p in pil]
        with torch.no_grad():
            lp = lambda a, b: float(net(t[a], t[b]).item())
            golden[clip] = {
                "frames": n,
                "clipsim_first": float(np.mean([cos(e[i], e[0]) for i in range(1, n)])),
                "clipsim_frames": float(np.mean([cos(e[i], e[i + 1]) for i in range(n - 1)])),
                "lpips_first": float(np.mean([lp(i, 0) for i in range(1, n)])),
                "lpips_frames": float(np.mean([lp(i, i + 1) for i in range(n - 1)])),
            }
    versions = {p: md.version(p) for p in ("torch", "transformers", "numpy", "pillow", "lpips")}
    versions["python"] = platform.python_version()
    golden["versions"] = versions
    with open(os.path.join(OUT, "golden.json"), "w") as f:
        json.dump(golden, f, indent=2)
        f.write("\n")
    print(json.dumps(golden, indent=2))


if __name__ == "__main__":
    main()

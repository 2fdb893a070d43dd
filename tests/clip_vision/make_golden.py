#!/usr/bin/env python3
"""Writes tests/clip_vision/data: what transformers computes with tiny seeded
CLIPVisionModelWithProjection models, and what CLIPImageProcessor makes of a few
synthetic images, for the CLIP vision encoder test (tests/clip_vision, models/clip_vision.c).

    /opt/ref-venv/bin/python tests/clip_vision/make_golden.py

Models (seeded random weights, the real architecture):
  tiny_quick/       config.json + model.safetensors as save_pretrained writes them:
                    hidden 32, 2 layers, 4 heads, MLP 64, image 32, patch 8 (17 tokens),
                    projection 16, quick_gelu (OpenAI CLIP's activation)
  tiny_quick.safetensors  the same tensors in one file, with safetensors metadata
                    "storyrun.config.image_encoder" = {"num_attention_heads": 4,
                    "hidden_act": "quick_gelu"} (what the shapes cannot tell)
  tiny_gelu/        hidden 32, 3 layers, 4 heads, MLP 64, image 28, patch 14 (5 tokens),
                    projection 16, gelu (OpenCLIP's, as IP-Adapter's image_encoder), saved
                    sharded (model.safetensors.index.json + shards)
  tiny_noconfig.safetensors  tiny_quick's embedding tensors without metadata: a width the
                    loader cannot map to a known model (its config must be refused)

golden.safetensors (f32), metadata: versions.
  <model>.pixel_values (2, 3, S, S)   seeded normal inputs
  <model>.image_embeds (2, 16), .pooled (2, C) (post_layernorm of the class token),
  <model>.last_hidden_state (2, T, C), .hidden_states_0 (after pre_layrnorm),
  <model>.hidden_states_1 (after layer 1)
  proc.lut (3, 256)    CLIPImageProcessor's normalised value of each 8-bit level, per
                       channel: (float32(v * (1/255)) - mean) / std in float32
  e2e.pixel_values (1, 3, 32, 32), e2e.image_embeds (1, 16): CLIPImageProcessor with
                       size {"shortest_edge": 32}, crop 32x32 on img_317x211.png, then
                       tiny_quick

images/NAME.png      synthetic inputs (gradients, hard-edged shapes, a noise patch): RGB of
                     odd sizes (upscaled, downscaled, and 250x600, which Pillow 13 resizes
                     vertical pass first), a grayscale (mode L) and an RGBA one with
                     varying alpha
images/NAME.crop.png the 224x224 RGB crop the processor normalises (PIL bicubic resize of
                     the shortest side to 224, center crop); the script asserts that
                     CLIPImageProcessor's pixel_values == proc.lut[c][crop] bit for bit, so
                     the crop and the LUT together are its exact pixel values (stored this
                     way because 3 x 224 x 224 floats per image would be 600 kB).

CLIPImageProcessor in transformers 5.24 is the torchvision backend when torchvision is
installed and falls back to CLIPImageProcessorPil (PIL resize, numpy) otherwise; the
reference environment has no torchvision, and the PIL backend is used explicitly here (it is
also what transformers 4.x's CLIPImageProcessor and the IP-Adapter / StoryDiffusion
reference code ran).
"""
import importlib.metadata as md
import json
import os
import platform
import shutil
import sys

import numpy as np
import torch
from PIL import Image
from safetensors.numpy import save_file
from safetensors.torch import load_file
from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection
from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "data")

MODELS = {
    "tiny_quick": dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                       num_attention_heads=4, image_size=32, patch_size=8, projection_dim=16,
                       hidden_act="quick_gelu"),
    "tiny_gelu": dict(hidden_size=32, intermediate_size=64, num_hidden_layers=3,
                      num_attention_heads=4, image_size=28, patch_size=14, projection_dim=16,
                      hidden_act="gelu"),
}


def make_model(name, seed):
    torch.manual_seed(seed)
    cfg = CLIPVisionConfig(**MODELS[name])
    m = CLIPVisionModelWithProjection(cfg).eval()
    # the default init leaves norms at 1/0 and small weights: perturb everything so that
    # every parameter matters to the outputs
    with torch.no_grad():
        for p in m.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    return m


def synth_images():
    """Deterministic test images: smooth gradients, hard-edged shapes (bicubic overshoot
    clips at 0 and 255), a noise patch (high frequencies), odd sizes."""
    rng = np.random.default_rng(1234)

    def base(w, h, phase):
        y, x = np.mgrid[0:h, 0:w].astype(np.float64)
        r = 127.5 + 127.5 * np.sin(x / w * 3.1 + phase)
        g = 255.0 * y / max(h - 1, 1)
        b = 127.5 + 127.5 * np.cos((x + y) / (w + h) * 9.0 + phase)
        img = np.stack([r, g, b], -1)
        cy, cx, rad = h * 0.45, w * 0.55, min(w, h) * 0.25
        img[(x - cx) ** 2 + (y - cy) ** 2 < rad**2] = [250, 20, 60]
        img[int(h * 0.1):int(h * 0.3), int(w * 0.1):int(w * 0.4)] = [0, 0, 0]
        img[int(h * 0.7):int(h * 0.9), int(w * 0.6):int(w * 0.95)] = [255, 255, 255]
        ph, pw = min(48, h // 4), min(48, w // 4)
        y0, x0 = int(h * 0.6), int(w * 0.1)
        img[y0:y0 + ph, x0:x0 + pw] = rng.integers(0, 256, (ph, pw, 3))
        return np.clip(np.round(img), 0, 255).astype(np.uint8)

    imgs = {
        "img_317x211": Image.fromarray(base(317, 211, 0.3), "RGB"),
        "img_640x480": Image.fromarray(base(640, 480, 1.1), "RGB"),
        "img_200x300": Image.fromarray(base(200, 300, 2.0), "RGB"),
        "gray_150x97": Image.fromarray(base(150, 97, 0.7)[..., 1], "L"),
        # taller than 2:1 and downscaled: Pillow 13 resizes it vertically first
        "img_250x600": Image.fromarray(base(250, 600, 1.6), "RGB"),
    }
    rgba = base(333, 250, 2.5)
    y, x = np.mgrid[0:250, 0:333]
    alpha = np.clip(255.0 * x / 332 + 40 * np.sin(y / 9.0), 0, 255).astype(np.uint8)
    alpha[:20] = 0
    imgs["rgba_333x250"] = Image.fromarray(np.dstack([rgba, alpha]), "RGBA")
    return imgs


def crop_of(proc, img):
    """The uint8 crop CLIPImageProcessorPil normalises, by the transformers functions it
    calls (convert_to_rgb, resize, center_crop)."""
    arr = proc.convert_to_rgb(np.array(img) if img.mode == "RGB" else img)
    chw = np.moveaxis(arr, -1, 0)
    from transformers.image_processing_utils import SizeDict
    chw = proc.resize(chw, SizeDict(shortest_edge=224), resample=proc.resample)
    chw = proc.center_crop(chw, SizeDict(height=224, width=224))
    return chw


def main():
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    if os.path.isdir(OUT):
        shutil.rmtree(OUT)
    os.makedirs(os.path.join(OUT, "images"))
    golden = {}

    models = {}
    for seed, name in enumerate(MODELS):
        m = make_model(name, 100 + seed)
        models[name] = m
        folder = os.path.join(OUT, name)
        if name == "tiny_gelu":
            m.save_pretrained(folder, max_shard_size="60KB")
        else:
            m.save_pretrained(folder)
        with open(os.path.join(folder, "config.json")) as f:
            cfgjson = json.load(f)
        cfgjson.pop("transformers_version", None)  # keep the files stable across versions
        with open(os.path.join(folder, "config.json"), "w") as f:
            json.dump(cfgjson, f, indent=2, sort_keys=True)
        S = MODELS[name]["image_size"]
        torch.manual_seed(7 + seed)
        x = torch.randn(2, 3, S, S)
        with torch.no_grad():
            o = m(pixel_values=x, output_hidden_states=True)
            pooled = m.vision_model(pixel_values=x).pooler_output
        golden[f"{name}.pixel_values"] = x.numpy()
        golden[f"{name}.image_embeds"] = o.image_embeds.numpy()
        golden[f"{name}.pooled"] = pooled.numpy()
        golden[f"{name}.last_hidden_state"] = o.last_hidden_state.numpy()
        golden[f"{name}.hidden_states_0"] = o.hidden_states[0].numpy()
        golden[f"{name}.hidden_states_1"] = o.hidden_states[1].numpy()
        assert len(o.hidden_states) == MODELS[name]["num_hidden_layers"] + 1

    # single files: the same tensors, the config's shapeless values as metadata (or none)
    sd = {k: v.contiguous().numpy() for k, v in models["tiny_quick"].state_dict().items()}
    save_file(sd, os.path.join(OUT, "tiny_quick.safetensors"),
              metadata={"storyrun.config.image_encoder":
                        json.dumps({"num_attention_heads": 4, "hidden_act": "quick_gelu"})})
    sd = {k: v for k, v in sd.items() if ".layers." not in k}
    save_file(sd, os.path.join(OUT, "tiny_noconfig.safetensors"))
    # the folder's safetensors hold exactly these tensors
    re = load_file(os.path.join(OUT, "tiny_quick", "model.safetensors"))
    assert set(re) == set(models["tiny_quick"].state_dict()), sorted(re)

    # the image processor
    proc = CLIPImageProcessorPil()
    assert proc.rescale_factor == 1 / 255 and proc.size == {"shortest_edge": 224}
    mean = np.array(proc.image_mean, dtype=np.float32)
    std = np.array(proc.image_std, dtype=np.float32)
    levels = (np.arange(256, dtype=np.float64) * (1 / 255)).astype(np.float32)
    lut = np.stack([(levels - mean[c]) / std[c] for c in range(3)]).astype(np.float32)
    golden["proc.lut"] = lut
    sizes = {}
    for name, img in synth_images().items():
        img.save(os.path.join(OUT, "images", name + ".png"))
        back = Image.open(os.path.join(OUT, "images", name + ".png"))
        assert back.mode == img.mode and np.array_equal(np.array(back), np.array(img))
        pv = proc(images=back, return_tensors="np")["pixel_values"][0]
        crop = crop_of(proc, back)
        assert crop.shape == (3, 224, 224), crop.shape
        rebuilt = np.stack([lut[c][crop[c]] for c in range(3)])
        assert pv.dtype == np.float32 and np.array_equal(pv, rebuilt), name
        Image.fromarray(np.moveaxis(crop, 0, -1), "RGB").save(
            os.path.join(OUT, "images", name + ".crop.png"))
        sizes[name] = list(img.size)

    # end to end: processor at the tiny model's size, then the model
    small = CLIPImageProcessorPil(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    e2e = small(images=Image.open(os.path.join(OUT, "images", "img_317x211.png")),
                return_tensors="pt")["pixel_values"]
    with torch.no_grad():
        golden["e2e.pixel_values"] = e2e.numpy()
        golden["e2e.image_embeds"] = models["tiny_quick"](pixel_values=e2e).image_embeds.numpy()

    versions = {p: md.version(p) for p in ("torch", "transformers", "numpy", "safetensors", "pillow")}
    versions["python"] = platform.python_version()
    save_file({k: np.ascontiguousarray(v, dtype=np.float32) for k, v in golden.items()},
              os.path.join(OUT, "golden.safetensors"),
              metadata={"versions": json.dumps(versions), "images": json.dumps(sizes)})
    total = 0
    for root, _, files in os.walk(OUT):
        total += sum(os.path.getsize(os.path.join(root, f)) for f in files)
    print(f"wrote {OUT}: {total} bytes; versions {versions}", file=sys.stderr)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Writes tests/golden/unet/golden.safetensors: what diffusers' UNet2DConditionModel computes
with the UNets of the tiny models in tests/golden/models (make_tiny_models.py writes them),
for the UNet tests (tests/unet).

    /opt/ref-venv/bin/pip install diffusers==0.42.1 torch safetensors numpy
    /opt/ref-venv/bin/python tests/golden/make_unet_golden.py

The UNets are read from the diffusers folders (UNet2DConditionModel.from_pretrained); their
single-file twins hold the same values, so the goldens serve both layouts.
  tiny_sd15/unet: blocks (16, 32), CrossAttnDownBlock2D + DownBlock2D, 8 heads (the
      attention_head_dim quirk), 1x1-conv projections, cross_attention_dim 32.
  tiny_sdxl/unet: blocks (16, 32), DownBlock2D + CrossAttnDownBlock2D, heads (2, 4),
      transformer depth (1, 2), linear projections, context 48, text_time add_embedding
      (pooled 24 + 6 x 8).

  tiny_sd2 (written here, tests/golden/unet/tiny_sd2_unet/: config.json and
      diffusion_pytorch_model.safetensors, stored in f16): four blocks (8, 16, 24, 24) laid out
      like SD2.x (three CrossAttnDownBlock2D + DownBlock2D, heads (2, 2, 3, 3), linear
      projections, upcast_attention), context 24: every level of the real up/down channel
      arithmetic. The reference runs in f32 on the f16-rounded weights, which is what storyrun
      loads from the file (f16 -> f32 is exact).

golden.safetensors (f32), one group per case <name>:
  <name>.sample (B, 4, H, W)         seeded torch.randn
  <name>.timesteps (B)               one per row (floats: schedulers pass fractional t)
  <name>.context (B, L, D)           encoder_hidden_states, seeded torch.randn
  <name>.text_embeds (B, 24), <name>.time_ids (B, 6)     SDXL added_cond_kwargs
  <name>.noise_pred (B, 4, H, W)     unet(...).sample
  fourier.<i>.x, fourier.<i>.y      diffusers.utils.torch_utils.fourier_filter(x, threshold,
                                     scale) alone, on odd, even and degenerate plane sizes
metadata "cases": JSON list of {name, model, freeu: null | [b1, b2, s1, s2]} (FreeU through
unet.enable_freeu, as the pipelines' enable_freeu does it); "versions".
"""
import importlib.metadata as md
import json
import os
import platform
import struct
import sys

import numpy as np
import torch
from safetensors.numpy import load_file

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "unet")
MODELS = os.path.join(HERE, "models")

# B = 2 is the usual guidance batch [uncond; cond]. Sizes: H, W multiples of 2 (one
# downsampler); 12 x 20 puts FreeU's Fourier filter on 6 x 10 and 12 x 20 planes (not
# powers of two). Timesteps cover t = 0, the top of the schedule and fractional values.
CASES = [
    dict(name="sd15_square", model="tiny_sd15", B=2, H=16, W=16, L=77, t=[981.0, 981.0], seed=1),
    dict(name="sd15_wide", model="tiny_sd15", B=2, H=12, W=20, L=77, t=[500.5, 1.0], seed=2),
    dict(name="sd15_single", model="tiny_sd15", B=1, H=8, W=8, L=10, t=[0.0], seed=3),
    dict(name="sd15_freeu", model="tiny_sd15", B=2, H=12, W=20, L=77, t=[701.0, 701.0], seed=4,
         freeu=[1.5, 1.6, 0.9, 0.2]),
    dict(name="sd2_levels", model="tiny_sd2", B=2, H=16, W=24, L=77, t=[999.0, 999.0], seed=8),
    dict(name="sd2_freeu", model="tiny_sd2", B=2, H=24, W=16, L=20, t=[33.0, 600.0], seed=9,
         freeu=[1.4, 1.6, 0.9, 0.2]),
    dict(name="sdxl_square", model="tiny_sdxl", B=2, H=16, W=16, L=77, t=[999.0, 999.0], seed=5,
         time_ids=[[128, 128, 0, 0, 128, 128], [1024, 768, 16, 32, 1024, 1024]]),
    dict(name="sdxl_wide", model="tiny_sdxl", B=2, H=12, W=20, L=77, t=[250.25, 10.0], seed=6,
         time_ids=[[96, 160, 0, 0, 96, 160], [96, 160, 0, 0, 96, 160]]),
    dict(name="sdxl_freeu", model="tiny_sdxl", B=2, H=12, W=20, L=77, t=[400.0, 400.0], seed=7,
         time_ids=[[96, 160, 0, 0, 96, 160], [96, 160, 0, 0, 96, 160]], freeu=[1.1, 1.2, 0.6, 0.4]),
]


# fourier_filter alone: (shape, threshold, scale); FreeU uses threshold 1.
FOURIER = [((2, 3, 6, 10), 1, 0.6), ((1, 2, 5, 7), 1, 0.2), ((1, 1, 1, 4), 1, 0.4),
           ((1, 2, 8, 8), 2, 1.7), ((1, 1, 3, 2), 1, 0.0)]


def fourier_cases(golden):
    from diffusers.utils.torch_utils import fourier_filter

    g = torch.Generator().manual_seed(11)
    for i, (shape, threshold, scale) in enumerate(FOURIER):
        x = torch.randn(*shape, generator=g)
        golden["fourier.%d.x" % i] = x.numpy()
        golden["fourier.%d.y" % i] = fourier_filter(x, threshold=threshold, scale=scale).numpy()


SD2_CONFIG = dict(
    block_out_channels=[8, 16, 24, 24], layers_per_block=2, norm_num_groups=4, cross_attention_dim=24,
    attention_head_dim=[2, 2, 3, 3], use_linear_projection=True, upcast_attention=True, sample_size=32,
    down_block_types=["CrossAttnDownBlock2D"] * 3 + ["DownBlock2D"],
    up_block_types=["UpBlock2D"] + ["CrossAttnUpBlock2D"] * 3)


def tiny_sd2():
    """A seeded SD2.x-layout UNet, saved as a diffusers unet folder (safetensors, fp32)."""
    from diffusers import UNet2DConditionModel

    torch.manual_seed(2024)
    unet = UNet2DConditionModel(**SD2_CONFIG).eval()
    with torch.no_grad():  # spread the values: default init leaves norms at exactly 1 / 0
        for name, p in unet.named_parameters():
            if "norm" in name:
                p.add_(0.1 * torch.randn(p.shape))
    folder = os.path.join(OUT, "tiny_sd2_unet")
    unet.half().save_pretrained(folder, safe_serialization=True)
    for f in os.listdir(folder):
        os.chmod(os.path.join(folder, f), 0o644)
    return unet.float()


def run_case(unets, c):
    from diffusers import UNet2DConditionModel

    if c["model"] == "tiny_sd2" and c["model"] not in unets:
        unets[c["model"]] = tiny_sd2()
    if c["model"] not in unets:
        unets[c["model"]] = UNet2DConditionModel.from_pretrained(
            os.path.join(MODELS, c["model"], "unet")).eval()
    unet = unets[c["model"]]
    cfg = unet.config
    g = torch.Generator().manual_seed(c["seed"])
    B, H, W, L = c["B"], c["H"], c["W"], c["L"]
    sample = torch.randn(B, cfg.in_channels, H, W, generator=g)
    context = torch.randn(B, L, cfg.cross_attention_dim, generator=g)
    t = torch.tensor(c["t"], dtype=torch.float32)
    kw = {}
    out = {"sample": sample, "timesteps": t, "context": context}
    if cfg.addition_embed_type == "text_time":
        pooled = cfg.projection_class_embeddings_input_dim - 6 * cfg.addition_time_embed_dim
        text_embeds = torch.randn(B, pooled, generator=g)
        time_ids = torch.tensor(c["time_ids"], dtype=torch.float32)
        kw["added_cond_kwargs"] = {"text_embeds": text_embeds, "time_ids": time_ids}
        out["text_embeds"], out["time_ids"] = text_embeds, time_ids
    if c.get("freeu"):
        b1, b2, s1, s2 = c["freeu"]
        unet.enable_freeu(s1=s1, s2=s2, b1=b1, b2=b2)
    with torch.no_grad():
        out["noise_pred"] = unet(sample, t, encoder_hidden_states=context, **kw).sample
    if c.get("freeu"):
        unet.disable_freeu()
    return {"%s.%s" % (c["name"], k): v.numpy() for k, v in out.items()}


def write_st(path, tensors, metadata):
    """Byte-reproducible safetensors: tensors in name order, sorted header keys, padded to
    8 bytes; read back to check."""
    header = {"__metadata__": dict(sorted(metadata.items()))}
    blobs, offset = [], 0
    for name in sorted(tensors):
        raw = np.ascontiguousarray(tensors[name], dtype="<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(tensors[name].shape),
                        "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=True).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path + ".tmp", "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))
    os.replace(path + ".tmp", path)
    back = load_file(path)
    assert sorted(back) == sorted(tensors)
    assert all(np.array_equal(back[k], tensors[k].astype(np.float32)) for k in tensors)


def versions():
    v = {"python": platform.python_version()}
    for p in ("torch", "diffusers", "numpy", "safetensors"):
        v[p] = md.version(p)
    return v


def main():
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    os.makedirs(OUT, exist_ok=True)
    unets, golden = {}, {}
    for c in CASES:
        golden.update(run_case(unets, c))
    fourier_cases(golden)
    cases = [dict(name=c["name"], model=c["model"], freeu=c.get("freeu")) for c in CASES]
    fourier = [dict(threshold=t, scale=s) for _, t, s in FOURIER]
    meta = {"cases": json.dumps(cases), "fourier": json.dumps(fourier), "versions": json.dumps(versions())}
    path = os.path.join(OUT, "golden.safetensors")
    write_st(path, golden, meta)
    with open(os.path.join(OUT, "VERSIONS.md"), "w") as f:
        f.write("# Versions used for tests/golden/unet\n\nWritten by `tests/golden/make_unet_golden.py` "
                "(do not edit by hand; rerun the script).\ntorch ran on the CPU, one thread, "
                "deterministic algorithms.\n\n| package | version |\n|---|---|\n")
        for k, v in versions().items():
            f.write("| %s | %s |\n" % (k, v))
        f.write("\ngolden.safetensors: %d tensors, %d bytes\n" % (len(golden), os.path.getsize(path)))
    for c in CASES:
        y = golden[c["name"] + ".noise_pred"]
        print("%-12s noise_pred %s max |y| %.4f" % (c["name"], y.shape, np.abs(y).max()))
    print("wrote %s: %d golden tensors" % (path, len(golden)))


if __name__ == "__main__":
    sys.exit(main())

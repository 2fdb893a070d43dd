#!/usr/bin/env python3
"""tests/golden/make_vae_golden.py: what diffusers' AutoencoderKL computes with tiny VAEs,
for storyrun's VAE tests (tests/vae).

    /opt/ref-venv/bin/pip install torch==2.15.0 diffusers==0.42.1 safetensors==0.8.0 numpy==2.4.6
    /opt/ref-venv/bin/python tests/golden/make_vae_golden.py

Models (f = the image / latent scale factor):
  sd15   tests/golden/models/tiny_sd15 vae (make_tiny_models.py): blocks (16, 32), 1 layer
         per block, 8 groups, f = 2, scaling_factor 0.18215
  sdxl   tests/golden/models/tiny_sdxl vae (fp16 variant, loaded as f32): the same
         architecture, scaling_factor 0.13025
  f8     written here as tests/golden/vae/tiny_f8 (a diffusers folder whose unet and
         text_encoder are links to tiny_sd15's, so that it opens as a model): blocks
         (8, 16, 32, 32), 2 layers per block, 4 groups, f = 8, no quant_conv /
         post_quant_conv, scaling_factor 0.3611 with shift_factor 0.1159 (the SD3 values),
         every parameter = initializer + seeded noise (no all-ones norms)
  f8_old tests/golden/vae/tiny_f8_old: the same weights with the mid-block attention
         under the pre-0.14 names (query, key, value, proj_attn); goldens shared with f8
Weights are exact in float16 (the folders' values and the single files' agree); tiny_f8's
are stored as F16.

golden.safetensors (f32), per model M:
  M.decode.z (2, 4, h, w) -> M.decode.out          vae.decode(z).sample
  M.encode.x (2, 3, H, W) -> M.encode.mean, .logvar latent_dist.mean / .logvar (clamped)
  M.encode.noise, M.encode.sample                  mean + std * noise
  M.encode_odd.x (1, 3, odd H, odd W) -> .mean, .logvar   (the (0, 1, 0, 1) pad at work)
  M.tiled_decode.z -> .out                          enable_tiling() with small tiles so that
  M.tiled_encode.x -> .mean, .logvar                several tiles and partial ones occur
  M.unscale.in -> .out                              latents / scaling_factor + shift_factor
                                                    (diffusers' pipelines before decoding)
Metadata: one key, "golden" (so that the file's bytes do not depend on the writer's key
order), a JSON object: "generator", "versions" (the packages used) and "tiling": {M:
{"tile_sample_min_size", "tile_latent_min_size", "tile_overlap_factor"}} as set on the model
for the tiled cases.
torch runs on the CPU, one thread, in float32.
"""
import importlib.metadata as md
import json
import os
import platform
import shutil
import sys

import numpy as np
import torch
from diffusers import AutoencoderKL
from safetensors.torch import save_file

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "vae")
MODELS = os.path.join(HERE, "models")

OLD_NAMES = {"to_q": "query", "to_k": "key", "to_v": "value", "to_out.0": "proj_attn"}


def noise(seed, *shape, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g) * scale


def tiny_f8():
    torch.manual_seed(8001)
    vae = AutoencoderKL(in_channels=3, out_channels=3, down_block_types=["DownEncoderBlock2D"] * 4,
                        up_block_types=["UpDecoderBlock2D"] * 4, block_out_channels=(8, 16, 32, 32),
                        layers_per_block=2, latent_channels=4, norm_num_groups=4, sample_size=64,
                        scaling_factor=0.3611, shift_factor=0.1159, use_quant_conv=False,
                        use_post_quant_conv=False)
    g = torch.Generator().manual_seed(8002)
    with torch.no_grad():
        for _, p in sorted(vae.named_parameters()):
            p.add_(torch.randn(p.shape, generator=g) * 0.05)
            p.copy_(p.half().float())
    return vae.eval()


def write_f8_folder(vae, name, old_names):
    """A diffusers folder: model_index.json, vae/ (own), unet/ and text_encoder/ linked."""
    root = os.path.join(OUT, name)
    if os.path.isdir(root):
        shutil.rmtree(root)
    os.makedirs(os.path.join(root, "vae"))
    for comp in ("unet", "text_encoder"):
        os.symlink(os.path.join("..", "..", "models", "tiny_sd15", comp), os.path.join(root, comp))
    index = {"_class_name": "StableDiffusionPipeline", "_diffusers_version": md.version("diffusers"),
             "text_encoder": ["transformers", "CLIPTextModel"], "unet": ["diffusers", "UNet2DConditionModel"],
             "vae": ["diffusers", "AutoencoderKL"]}
    with open(os.path.join(root, "model_index.json"), "w") as f:
        json.dump(index, f, indent=2, sort_keys=True)
        f.write("\n")
    cfg = {k: v for k, v in dict(vae.config).items() if not k.startswith("_")}
    cfg = dict({"_class_name": "AutoencoderKL", "_diffusers_version": md.version("diffusers")}, **cfg)
    with open(os.path.join(root, "vae", "config.json"), "w") as f:
        json.dump(cfg, f, indent=2, sort_keys=True, default=list)
        f.write("\n")
    sd = {}
    for k, v in vae.state_dict().items():
        if old_names and ".attentions.0." in k:
            for new, old in OLD_NAMES.items():
                k = k.replace(".attentions.0." + new + ".", ".attentions.0." + old + ".")
        sd[k] = v.half().contiguous()  # exact: the values are float16-exact
    st = os.path.join(root, "vae", "diffusion_pytorch_model.safetensors")
    save_file(sd, st, metadata={"format": "pt"})
    os.chmod(st, 0o644)
    # diffusers reads it back to the same values (old names: its deprecated-name conversion)
    back = AutoencoderKL.from_pretrained(os.path.join(root, "vae"), torch_dtype=torch.float32)
    for k, v in vae.state_dict().items():
        assert torch.equal(back.state_dict()[k], v), k


# Per model: decode latent size, encode image size, odd image size, tiling, tiled sizes.
CASES = {
    "sd15": dict(dec=(12, 10), enc=(20, 18), odd=(19, 17), tile=(32, 16), tdec=(40, 36), tenc=(72, 80)),
    "sdxl": dict(dec=(12, 10), enc=(20, 18), odd=(19, 17), tile=(32, 16), tdec=(40, 36), tenc=(72, 80)),
    "f8": dict(dec=(6, 5), enc=(48, 40), odd=(41, 35), tile=(64, 8), tdec=(20, 18), tenc=(136, 120)),
}


def golden_for(name, vae, seed, out, meta):
    c = CASES[name]
    sf, shift = vae.config.scaling_factor, vae.config.shift_factor
    with torch.no_grad():
        z = noise(seed, 2, 4, *c["dec"])
        out[f"{name}.decode.z"] = z
        out[f"{name}.decode.out"] = vae.decode(z).sample

        x = noise(seed + 1, 2, 3, *c["enc"]).clamp(-1, 1)
        d = vae.encode(x).latent_dist
        out[f"{name}.encode.x"] = x
        out[f"{name}.encode.mean"] = d.mean
        out[f"{name}.encode.logvar"] = d.logvar
        n = noise(seed + 2, *d.mean.shape)
        out[f"{name}.encode.noise"] = n
        out[f"{name}.encode.sample"] = d.mean + d.std * n

        x = noise(seed + 3, 1, 3, *c["odd"]).clamp(-1, 1)
        d = vae.encode(x).latent_dist
        out[f"{name}.encode_odd.x"] = x
        out[f"{name}.encode_odd.mean"] = d.mean
        out[f"{name}.encode_odd.logvar"] = d.logvar

        lat = noise(seed + 4, 2, 4, *c["dec"])
        out[f"{name}.unscale.in"] = lat
        out[f"{name}.unscale.out"] = lat / sf + (shift or 0.0)

        ts, tl = c["tile"]
        vae.enable_tiling()
        vae.tile_sample_min_size, vae.tile_latent_min_size = ts, tl
        meta["tiling"][name] = {"tile_sample_min_size": ts, "tile_latent_min_size": tl,
                                "tile_overlap_factor": vae.tile_overlap_factor}
        z = noise(seed + 5, 1, 4, *c["tdec"])
        out[f"{name}.tiled_decode.z"] = z
        out[f"{name}.tiled_decode.out"] = vae.decode(z).sample
        x = noise(seed + 6, 1, 3, *c["tenc"]).clamp(-1, 1)
        d = vae.encode(x).latent_dist
        out[f"{name}.tiled_encode.x"] = x
        out[f"{name}.tiled_encode.mean"] = d.mean
        out[f"{name}.tiled_encode.logvar"] = d.logvar
        vae.disable_tiling()
        # the tiled results must differ from plain ones, or tiling never happened
        assert not torch.allclose(vae.decode(out[f"{name}.tiled_decode.z"]).sample,
                                  out[f"{name}.tiled_decode.out"], atol=1e-3), name


def main():
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    os.makedirs(OUT, exist_ok=True)
    versions = {"python": platform.python_version(), "torch": torch.__version__,
                "diffusers": md.version("diffusers"), "numpy": np.__version__,
                "safetensors": md.version("safetensors")}
    out, meta = {}, {"generator": "tests/golden/make_vae_golden.py", "versions": versions, "tiling": {}}

    sd15 = AutoencoderKL.from_pretrained(os.path.join(MODELS, "tiny_sd15", "vae")).eval()
    sdxl = AutoencoderKL.from_pretrained(os.path.join(MODELS, "tiny_sdxl", "vae"), variant="fp16",
                                         torch_dtype=torch.float32).eval()
    f8 = tiny_f8()
    write_f8_folder(f8, "tiny_f8", False)
    write_f8_folder(f8, "tiny_f8_old", True)
    golden_for("sd15", sd15, 100, out, meta)
    golden_for("sdxl", sdxl, 200, out, meta)
    golden_for("f8", f8, 300, out, meta)

    out = {k: v.contiguous().float() for k, v in sorted(out.items())}
    path = os.path.join(OUT, "golden.safetensors")
    save_file(out, path, metadata={"golden": json.dumps(meta, sort_keys=True)})
    os.chmod(path, 0o644)
    with open(os.path.join(OUT, "VERSIONS.md"), "w") as f:
        f.write("# Versions used for tests/golden/vae\n\n")
        f.write("Written by `tests/golden/make_vae_golden.py` (do not edit by hand; rerun the script).\n")
        f.write("torch ran on the CPU, one thread, deterministic algorithms, float32.\n\n")
        f.write("| package | version |\n|---|---|\n")
        for k, v in versions.items():
            f.write(f"| {k} | {v} |\n")
        f.write(f"\ngolden.safetensors: {len(out)} tensors, {os.path.getsize(path)} bytes\n")
    print(f"wrote {path}: {len(out)} tensors, {os.path.getsize(path)} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())

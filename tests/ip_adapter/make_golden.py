#!/usr/bin/env python3
"""tests/ip_adapter/make_golden.py: IP-Adapter goldens for tests/ip_adapter, from diffusers'
own loader and attention processor (IPAdapterAttnProcessor2_0, ImageProjection) on the tiny
UNets of tests/golden/models (tests/golden/make_tiny_models.py writes them).

    /opt/ref-venv/bin/pip install diffusers==0.42.1 torch safetensors numpy
    /opt/ref-venv/bin/python tests/ip_adapter/make_golden.py

Adapters, seeded, in the public checkpoint layout (ip-adapter_sd15.safetensors):
  image_proj.proj.weight (4 X, D), image_proj.proj.bias, image_proj.norm.weight/.bias (X),
  ip_adapter.N.to_k_ip.weight / .to_v_ip.weight (C, X), N = 2k + 1 over the attn2 layers in
  unet.attn_processors order (down, up, mid). They are handed to diffusers exactly as its
  load_ip_adapter hands a safetensors file over: split at the first "." into
  {"image_proj": ..., "ip_adapter": ...} and passed to unet._load_ip_adapter_weights.
  ip_sd15.safetensors   for tiny_sd15 (X 32, D 24; 6 layers over down, mid, up), stored F16
                        like the public file (the reference uses the F16-rounded values)
  ip_sdxl.safetensors   for tiny_sdxl (X 48, D 20; 12 layers, transformer depth 2), F32

golden.safetensors (f32), per case <name>:
  <name>.sample (B, 4, H, W), <name>.timesteps (B), <name>.context (B, L, X)
  <name>.text_embeds (B, 24), <name>.time_ids (B, 6)      SDXL added_cond_kwargs
  <name>.image_embeds (B, n, D)                            n images per row
  <name>.tokens (B, 4 n, X)                                unet.encoder_hid_proj (ImageProjection)
  <name>.plain (B, 4, H, W)                                the UNet without the adapter
  <name>.scale<s> (B, 4, H, W)                             with the adapter at ip scale s
metadata "cases": JSON list of {name, model, adapter, scales, shared}; shared: every row has
the same image (storyrun may then pass one row of tokens); "numbering": per model, the
attn2 processor names in attn_processors order with their N; "versions".
"""
import importlib.metadata as md
import json
import os
import platform

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from diffusers import UNet2DConditionModel
from diffusers.models.attention_processor import IPAdapterAttnProcessor2_0

HERE = os.path.dirname(os.path.abspath(__file__))
MODELS = os.path.join(HERE, "..", "golden", "models")
SCALES = [0.6, 0.0]

CASES = [
    dict(name="sd15", model="tiny_sd15", adapter="ip_sd15", B=2, n=1, H=8, W=12, L=10,
         t=[981.0, 981.0], seed=1),
    dict(name="sd15_shared", model="tiny_sd15", adapter="ip_sd15", B=2, n=1, H=8, W=8, L=7,
         t=[500.5, 20.0], seed=2, shared=True),
    dict(name="sd15_two_images", model="tiny_sd15", adapter="ip_sd15", B=2, n=2, H=8, W=8, L=7,
         t=[250.0, 250.0], seed=3),
    dict(name="sdxl", model="tiny_sdxl", adapter="ip_sdxl", B=2, n=1, H=8, W=12, L=10,
         t=[999.0, 999.0], seed=4, time_ids=[[64, 96, 0, 0, 64, 96], [64, 96, 0, 0, 64, 96]]),
]
ADAPTERS = {"ip_sd15": dict(model="tiny_sd15", D=24, dtype=torch.float16, seed=11),
            "ip_sdxl": dict(model="tiny_sdxl", D=20, dtype=torch.float32, seed=12)}


def load_unet(model):
    u = UNet2DConditionModel.from_pretrained(os.path.join(MODELS, model, "unet"),
                                             torch_dtype=torch.float32)
    return u.eval()


def hidden_size(unet, name):
    """The channels of processor `name`, as diffusers' _convert_ip_adapter_attn_to_diffusers."""
    c = unet.config.block_out_channels
    if name.startswith("mid_block"):
        return c[-1]
    if name.startswith("up_blocks"):
        return list(reversed(c))[int(name[len("up_blocks.")])]
    return c[int(name[len("down_blocks.")])]


def make_adapter(unet, D, dtype, seed):
    """A seeded adapter state dict in the public flat layout, and the numbering."""
    g = torch.Generator().manual_seed(seed)
    X = unet.config.cross_attention_dim
    sd = {"image_proj.proj.weight": torch.randn(4 * X, D, generator=g) / D ** 0.5,
          "image_proj.proj.bias": 0.1 * torch.randn(4 * X, generator=g),
          "image_proj.norm.weight": 1 + 0.2 * torch.randn(X, generator=g),
          "image_proj.norm.bias": 0.2 * torch.randn(X, generator=g)}
    numbering, key_id = [], 1
    for name in unet.attn_processors.keys():
        if name.endswith("attn1.processor"):
            continue
        C = hidden_size(unet, name)
        # large enough that the image branch moves the output clearly
        sd[f"ip_adapter.{key_id}.to_k_ip.weight"] = torch.randn(C, X, generator=g) / X ** 0.5
        sd[f"ip_adapter.{key_id}.to_v_ip.weight"] = 2 * torch.randn(C, X, generator=g) / X ** 0.5
        numbering.append([name, key_id])
        key_id += 2
    sd = {k: v.to(dtype).contiguous() for k, v in sd.items()}
    return sd, numbering


def split(flat):
    """What diffusers' load_ip_adapter does with a .safetensors file's keys."""
    out = {"image_proj": {}, "ip_adapter": {}}
    for k, v in flat.items():
        head, rest = k.split(".", 1)
        out[head][rest] = v.to(torch.float32)
    return out


def set_scale(unet, s):
    for p in unet.attn_processors.values():
        if isinstance(p, IPAdapterAttnProcessor2_0):
            p.scale = [s]


def main():
    torch.manual_seed(0)
    golden, meta_cases, numbering = {}, [], {}
    adapters = {}
    for an, a in ADAPTERS.items():
        unet = load_unet(a["model"])
        sd, num = make_adapter(unet, a["D"], a["dtype"], a["seed"])
        path = os.path.join(HERE, an + ".safetensors")
        save_file(sd, path)
        adapters[an] = load_file(path)  # what storyrun reads (F16 values for ip_sd15)
        numbering[a["model"]] = num
    for c in CASES:
        a = ADAPTERS[c["adapter"]]
        unet = load_unet(c["model"])
        X = unet.config.cross_attention_dim
        g = torch.Generator().manual_seed(c["seed"])
        B, n = c["B"], c["n"]
        sample = torch.randn(B, 4, c["H"], c["W"], generator=g)
        ctx = torch.randn(B, c["L"], X, generator=g)
        ie = torch.randn(B, n, a["D"], generator=g)
        if c.get("shared"):
            ie = ie[:1].expand(B, n, a["D"]).contiguous()
        t = torch.tensor(c["t"], dtype=torch.float32)
        added = {}
        if "time_ids" in c:
            added["text_embeds"] = torch.randn(B, 24, generator=g)
            added["time_ids"] = torch.tensor(c["time_ids"], dtype=torch.float32)
        with torch.no_grad():
            plain = unet(sample, t, encoder_hidden_states=ctx,
                         added_cond_kwargs=dict(added) if added else None).sample
            unet._load_ip_adapter_weights([split(adapters[c["adapter"]])])
            tokens = unet.encoder_hid_proj([ie])[0]  # (B, n, 4, X)
            outs = {}
            for s in SCALES:
                set_scale(unet, s)
                outs[s] = unet(sample, t, encoder_hidden_states=ctx,
                               added_cond_kwargs=dict(added, image_embeds=[ie])).sample
        assert torch.equal(outs[0.0], plain), c["name"]  # scale 0 skips the branch
        d = (outs[0.6] - plain).abs().max().item()
        assert d > 1e-2, (c["name"], d)
        print(f"{c['name']}: max |ip 0.6 - plain| {d:.3g}, max |pred| {outs[0.6].abs().max():.3g}")
        p = c["name"] + "."
        golden[p + "sample"] = sample
        golden[p + "timesteps"] = t
        golden[p + "context"] = ctx
        golden[p + "image_embeds"] = ie
        golden[p + "tokens"] = tokens.reshape(B, n * 4, X)
        golden[p + "plain"] = plain
        for s in SCALES:
            golden[p + f"scale{s:g}"] = outs[s]
        for k, v in added.items():
            golden[p + k] = v
        meta_cases.append(dict(name=c["name"], model=c["model"], adapter=c["adapter"],
                               scales=SCALES, shared=bool(c.get("shared"))))
    versions = {k: md.version(k) for k in ("torch", "diffusers", "safetensors", "numpy")}
    versions["python"] = platform.python_version()
    golden = {k: v.to(torch.float32).contiguous() for k, v in golden.items()}
    save_file(golden, os.path.join(HERE, "golden.safetensors"),
              metadata={"cases": json.dumps(meta_cases), "numbering": json.dumps(numbering),
                        "versions": json.dumps(versions)})


if __name__ == "__main__":
    main()

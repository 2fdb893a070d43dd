#!/usr/bin/env python3
"""tests/golden/make_tiny_models.py: tiny seeded SD1.5-style and SDXL-style models, each
saved as a diffusers folder AND as one single-file checkpoint with the original LDM key
names, for the weight loader's tests (tests/weights) and the text encoder goldens.

    /opt/ref-venv/bin/pip install torch==2.15.0 diffusers==0.42.1 transformers==5.24.0 \
        accelerate==1.15.0 safetensors==0.8.0 numpy==2.4.6
    /opt/ref-venv/bin/python tests/golden/make_tiny_models.py

The architectures are the real ones (diffusers UNet2DConditionModel and AutoencoderKL,
transformers CLIPTextModel / CLIPTextModelWithProjection) at tiny widths. The vocabulary
is CLIP's real one (49408 ids) so that real prompts tokenized with tests/golden/tokenizer
can be encoded; the token embedding is therefore the largest tensor of every model.

Written under tests/golden/models/:
  tiny_sd15/            diffusers folder: unet/ and vae/ in F32 (plain files), text_encoder/
                        only as the fp16 variant (model.fp16.safetensors) with the
                        "text_model." names of the published SD1.5 repositories
  tiny_sd15.safetensors single file, LDM names (cond_stage_model.transformer.*,
                        model.diffusion_model.*, first_stage_model.*), F16, plus the I64
                        position_ids and F32 schedule buffers real checkpoints carry
  tiny_sdxl/            diffusers folder: unet/ sharded (index.json + 2 shards, BF16),
                        vae/ as the fp16 variant only, text_encoder/ fp16 variant with the
                        flattened names transformers >= 5.6 writes (no "text_model."),
                        text_encoder_2/ fp16 variant (text_model.* + text_projection)
  tiny_sdxl.safetensors single file: conditioner.embedders.0 (CLIP) and .1 (OpenCLIP with
                        fused in_proj and the transposed text_projection), F16
  tiny_*.manifest.txt   per component and diffusers name: shape and crc32 of the f32
                        values (little-endian): what both layouts must load to
The tokenizer folders hold the configs of tests/golden/tokenizer/sd15 (pad with
<|endoftext|>) and sdxl_2 (pad with "!"), and vocab.json.gz / merges.txt.gz as relative
symbolic links to the shared tests/golden/tokenizer/ files (storyrun reads .gz).

Every weight is made exactly representable in float16 (so the F16 single files and the F32
folder files hold the same values; the SDXL UNet's in bfloat16 too, for its BF16 shards), and
every parameter gets seeded noise on top of its initializer (no all-ones norm weights: a
swapped name must change a value). The token embeddings repeat with a period of
TOKEN_PERIOD rows so that git's zlib compresses them; ids closer than that still get
distinct rows. Sizes: about 22 MB on disk, 5 MB deflated (the 49408-row embeddings are
16 MB of it, and compress to almost nothing).

Values that the single-file layout cannot carry (attention heads of the tiny widths differ
from the families' 64-wide heads; 8 groups in the norms, not 32) are written as safetensors metadata
"storyrun.config.<component>" = a JSON object, which storyrun merges over the config it
derives from the shapes. Real checkpoints need no such hints.

Verification (all offline): each folder component is loaded back with from_pretrained,
and the single file with the pipeline's from_single_file(..., config=<the folder>), which
runs diffusers' own LDM -> diffusers conversion; every tensor must equal the original.
"""
import json
import os
import platform
import shutil
import struct
import sys
import gzip
import tempfile
import zlib

import numpy as np
import torch

import diffusers
import safetensors
import transformers
from diffusers import (AutoencoderKL, EulerDiscreteScheduler, PNDMScheduler, StableDiffusionPipeline,
                       StableDiffusionXLPipeline, UNet2DConditionModel)
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer
from safetensors import safe_open

HERE = os.path.dirname(os.path.abspath(__file__))
TOKDATA = os.path.join(HERE, "tokenizer")
OUT = os.path.join(HERE, "models")
VOCAB = 49408
TOKEN_PERIOD = 251  # rows; a prime, so ids differing by a power of two never share a row

VERSIONS = {
    "torch": torch.__version__,
    "diffusers": diffusers.__version__,
    "transformers": transformers.__version__,
    "safetensors": safetensors.__version__,
    "numpy": np.__version__,
    "python": platform.python_version(),
}

# ---- safetensors writer (deterministic) ----------------------------------------------

ST_DTYPES = {torch.float32: ("F32", "<f4"), torch.float16: ("F16", "<f2"), torch.int64: ("I64", "<i8"),
             torch.bfloat16: ("BF16", None)}


def write_st(path, tensors, metadata=None):
    """tensors: name -> torch tensor (F32, F16 or I64), written in sorted name order with
    sorted header keys, padded to 8 bytes; read back with the safetensors package."""
    header = {}
    if metadata:
        header["__metadata__"] = dict(sorted(metadata.items()))
    blobs, offset = [], 0
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        code, npt = ST_DTYPES[t.dtype]
        if t.dtype == torch.bfloat16:  # numpy has no bfloat16: its bits as uint16
            raw = t.view(torch.int16).numpy().astype("<i2").tobytes()
        else:
            raw = t.numpy().astype(npt).tobytes()
        header[name] = {"dtype": code, "shape": list(t.shape), "data_offsets": [offset, offset + len(raw)]}
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
    with safe_open(path, framework="pt") as f:
        assert sorted(f.keys()) == sorted(tensors), path
        for name in tensors:
            assert torch.equal(f.get_tensor(name), tensors[name].cpu()), (path, name)


def f16(sd):
    return {k: v.half() for k, v in sd.items()}


# ---- tiny models -----------------------------------------------------------------------


def seeded_noise(model, seed, bf16=False):
    """Initializer + seeded noise, then rounded to float16-exact values (bf16: values exact
    in both bfloat16 and float16: 8-bit mantissas, magnitudes 0 or >= 2^-14)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in sorted(model.named_parameters()):
            p.add_(torch.randn(p.shape, generator=g) * 0.05)
            if name.endswith("token_embedding.weight"):
                base = p[:TOKEN_PERIOD].clone()
                p.copy_(base[torch.arange(p.shape[0]) % TOKEN_PERIOD])
            if bf16:
                p.copy_(p.bfloat16().float())
                p[p.abs() < 2.0 ** -14] = 0
                assert torch.equal(p.bfloat16().float(), p), name
            p.copy_(p.half().float())
            assert not bf16 or torch.equal(p.bfloat16().float(), p), name
    return model.eval()


def clip_config(hidden, heads, inter, act, proj):
    # bos/eos/pad ids as the published SD text encoder configs have them (eos 2: the pooled
    # output is taken at the argmax id, i.e. the first <|endoftext|>)
    return CLIPTextConfig(vocab_size=VOCAB, hidden_size=hidden, intermediate_size=inter,
                          num_hidden_layers=2, num_attention_heads=heads, max_position_embeddings=77,
                          hidden_act=act, projection_dim=proj, layer_norm_eps=1e-5,
                          bos_token_id=0, eos_token_id=2, pad_token_id=1)


def tiny_vae(seed, scaling_factor, sample_size):
    torch.manual_seed(seed)
    vae = AutoencoderKL(in_channels=3, out_channels=3, down_block_types=["DownEncoderBlock2D"] * 2,
                        up_block_types=["UpDecoderBlock2D"] * 2, block_out_channels=(16, 32),
                        layers_per_block=1, latent_channels=4, norm_num_groups=8,
                        sample_size=sample_size, scaling_factor=scaling_factor)
    return seeded_noise(vae, seed + 1)


def sd15_components():
    torch.manual_seed(1501)
    unet = UNet2DConditionModel(sample_size=64, in_channels=4, out_channels=4, layers_per_block=2,
                                block_out_channels=(16, 32),
                                down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
                                up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
                                cross_attention_dim=32, attention_head_dim=8, norm_num_groups=8)
    unet = seeded_noise(unet, 1502)
    vae = tiny_vae(1503, 0.18215, 512)
    torch.manual_seed(1505)
    te = seeded_noise(CLIPTextModel(clip_config(32, 4, 37, "quick_gelu", 32)), 1506)
    sched = PNDMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                          num_train_timesteps=1000, set_alpha_to_one=False, skip_prk_steps=True,
                          steps_offset=1, prediction_type="epsilon")
    return dict(unet=unet, vae=vae, text_encoder=te, scheduler=sched)


def sdxl_components():
    torch.manual_seed(2001)
    # text_encoder 32 wide + text_encoder_2 16 wide = context 48; pooled (projection) 24;
    # add_embedding input = 6 * addition_time_embed_dim + 24
    unet = UNet2DConditionModel(sample_size=128, in_channels=4, out_channels=4, layers_per_block=2,
                                block_out_channels=(16, 32),
                                down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
                                up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
                                transformer_layers_per_block=(1, 2), cross_attention_dim=48,
                                attention_head_dim=(2, 4), use_linear_projection=True,
                                addition_embed_type="text_time", addition_time_embed_dim=8,
                                projection_class_embeddings_input_dim=6 * 8 + 24, norm_num_groups=8)
    unet = seeded_noise(unet, 2002, bf16=True)  # the folder stores it as BF16 shards
    vae = tiny_vae(2003, 0.13025, 1024)
    torch.manual_seed(2005)
    te = seeded_noise(CLIPTextModel(clip_config(32, 4, 37, "quick_gelu", 32)), 2006)
    torch.manual_seed(2007)
    te2 = seeded_noise(CLIPTextModelWithProjection(clip_config(16, 2, 23, "gelu", 24)), 2008)
    sched = EulerDiscreteScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                                   num_train_timesteps=1000, steps_offset=1, timestep_spacing="leading",
                                   interpolation_type="linear", prediction_type="epsilon",
                                   use_karras_sigmas=False)
    return dict(unet=unet, vae=vae, text_encoder=te, text_encoder_2=te2, scheduler=sched)


# ---- diffusers -> LDM names (the inverse of the loader's map) -----------------------------

RESNET_TO_LDM = [("norm1", "in_layers.0"), ("conv1", "in_layers.2"), ("norm2", "out_layers.0"),
                 ("conv2", "out_layers.3"), ("time_emb_proj", "emb_layers.1"),
                 ("conv_shortcut", "skip_connection")]


def unet_to_ldm(sd, config):
    L = config["layers_per_block"]
    out = {}
    fixed = {"time_embedding.linear_1": "time_embed.0", "time_embedding.linear_2": "time_embed.2",
             "add_embedding.linear_1": "label_emb.0.0", "add_embedding.linear_2": "label_emb.0.2",
             "conv_in": "input_blocks.0.0", "conv_norm_out": "out.0", "conv_out": "out.2"}
    up_has_attn = {int(k.split(".")[1]) for k in sd if k.startswith("up_blocks.") and ".attentions." in k}
    for k, v in sd.items():
        p = k.split(".")
        head = next((h for h in fixed if k.startswith(h + ".")), None)
        if head:
            new = fixed[head] + k[len(head):]
        elif p[0] in ("down_blocks", "up_blocks"):
            b, kind = int(p[1]), p[2]
            down = p[0] == "down_blocks"
            if kind in ("resnets", "attentions"):
                l = int(p[3])
                rest = ".".join(p[4:])
                if kind == "resnets":
                    for a, c in RESNET_TO_LDM:
                        rest = rest.replace(a, c)
                idx = 1 + b * (L + 1) + l if down else b * (L + 1) + l
                new = f"{'input_blocks' if down else 'output_blocks'}.{idx}.{0 if kind == 'resnets' else 1}.{rest}"
            else:  # downsamplers.0.conv.X / upsamplers.0.conv.X
                rest = ".".join(p[5:])
                if down:
                    new = f"input_blocks.{(b + 1) * (L + 1)}.0.op.{rest}"
                else:
                    sub = 2 if b in up_has_attn else 1
                    new = f"output_blocks.{b * (L + 1) + L}.{sub}.conv.{rest}"
        elif p[0] == "mid_block":
            i = int(p[2])
            rest = ".".join(p[3:])
            if p[1] == "resnets":
                for a, c in RESNET_TO_LDM:
                    rest = rest.replace(a, c)
                new = f"middle_block.{0 if i == 0 else 2}.{rest}"
            else:
                new = f"middle_block.1.{rest}"
        else:
            raise KeyError(k)
        out["model.diffusion_model." + new] = v
    return out


def vae_to_ldm(sd, config):
    n = len(config["block_out_channels"])
    out = {}
    attn = {"group_norm": "norm", "to_q": "q", "to_k": "k", "to_v": "v", "to_out.0": "proj_out"}
    for k, v in sd.items():
        p = k.split(".")
        part = p[0]  # encoder / decoder / quant_conv / post_quant_conv
        if part in ("quant_conv", "post_quant_conv") or p[1] in ("conv_in", "conv_out"):
            new = k
        elif p[1] == "conv_norm_out":
            new = f"{part}.norm_out.{p[2]}"
        elif p[1] in ("down_blocks", "up_blocks"):
            i = int(p[2])
            j = i if part == "encoder" else n - 1 - i
            word = "down" if part == "encoder" else "up"
            if p[3] == "resnets":
                rest = ".".join(p[5:]).replace("conv_shortcut", "nin_shortcut")
                new = f"{part}.{word}.{j}.block.{p[4]}.{rest}"
            else:
                new = f"{part}.{word}.{j}.{'downsample' if word == 'down' else 'upsample'}.conv.{p[-1]}"
        elif p[1] == "mid_block":
            if p[2] == "resnets":
                rest = ".".join(p[4:]).replace("conv_shortcut", "nin_shortcut")
                new = f"{part}.mid.block_{int(p[3]) + 1}.{rest}"
            else:
                sub = ".".join(p[4:-1])
                new = f"{part}.mid.attn_1.{attn[sub]}.{p[-1]}"
                if sub != "group_norm" and p[-1] == "weight":
                    v = v.reshape(*v.shape, 1, 1)  # linear (C, C) -> conv 1x1 (C, C, 1, 1)
        else:
            raise KeyError(k)
        out["first_stage_model." + new] = v
    return out


def clip_sd(model):
    """State dict with the "text_model." names whatever the transformers version."""
    sd = model.state_dict()
    if not any(k.startswith("text_model.") for k in sd):
        sd = {("text_model." + k if k != "text_projection.weight" else k): v for k, v in sd.items()}
    return sd


def openclip_to_ldm(sd, prefix):
    out = {}
    layers = {int(k.split(".")[3]) for k in sd if k.startswith("text_model.encoder.layers.")}
    for i in sorted(layers):
        a = f"text_model.encoder.layers.{i}."
        b = f"{prefix}transformer.resblocks.{i}."
        for w in ("weight", "bias"):
            out[b + "ln_1." + w] = sd[a + "layer_norm1." + w]
            out[b + "ln_2." + w] = sd[a + "layer_norm2." + w]
            out[b + "attn.out_proj." + w] = sd[a + "self_attn.out_proj." + w]
            out[b + "mlp.c_fc." + w] = sd[a + "mlp.fc1." + w]
            out[b + "mlp.c_proj." + w] = sd[a + "mlp.fc2." + w]
            out[b + "attn.in_proj_" + w] = torch.cat([sd[a + f"self_attn.{q}_proj.{w}"] for q in "qkv"], 0)
    out[prefix + "token_embedding.weight"] = sd["text_model.embeddings.token_embedding.weight"]
    out[prefix + "positional_embedding"] = sd["text_model.embeddings.position_embedding.weight"]
    out[prefix + "ln_final.weight"] = sd["text_model.final_layer_norm.weight"]
    out[prefix + "ln_final.bias"] = sd["text_model.final_layer_norm.bias"]
    out[prefix + "text_projection"] = sd["text_projection.weight"].t().contiguous()  # (C, P)
    assert len(out) == len(sd) - 4 * len(layers), (len(out), len(sd))  # q, k, v fused
    return out


def schedule_buffers():
    betas = torch.linspace(0.00085 ** 0.5, 0.012 ** 0.5, 1000, dtype=torch.float64) ** 2
    return {"betas": betas.float(), "alphas_cumprod": torch.cumprod(1 - betas, 0).float()}


# ---- folders -----------------------------------------------------------------------------


def tokenizer_folder(dst, style, vocab_dir):
    """Configs of tests/golden/tokenizer/<style>; vocab and merges as links to the shared
    .gz files (vocab_dir=None) or uncompressed copies (for transformers, which reads no .gz)."""
    os.makedirs(dst, exist_ok=True)
    for f in sorted(os.listdir(os.path.join(TOKDATA, style))):
        shutil.copyfile(os.path.join(TOKDATA, style, f), os.path.join(dst, f))
    for f in ("vocab.json", "merges.txt"):
        if vocab_dir:
            shutil.copyfile(os.path.join(vocab_dir, f), os.path.join(dst, f))
        else:
            target = os.path.relpath(os.path.join(TOKDATA, f + ".gz"), dst)
            os.symlink(target, os.path.join(dst, f + ".gz"))


def save_folder(path, pipe_cls, comps, styles, layout, vocab_dir):
    """Saves the pipeline (configs, model_index.json), then rewrites the weight files as
    `layout` says: component -> "plain" | "fp16" | ("fp16", "flat") | ("shards", n)."""
    tmp = tempfile.mkdtemp()
    tok = {name: CLIPTokenizer.from_pretrained(os.path.join(vocab_dir, style)) for name, style in styles.items()}
    pipe = pipe_cls(**comps, **tok, **({"safety_checker": None, "feature_extractor": None,
                                        "requires_safety_checker": False}
                                       if pipe_cls is StableDiffusionPipeline else {}))
    pipe.save_pretrained(tmp, safe_serialization=True)
    if os.path.exists(path):
        shutil.rmtree(path)
    os.makedirs(path)
    shutil.copyfile(os.path.join(tmp, "model_index.json"), os.path.join(path, "model_index.json"))
    shutil.copytree(os.path.join(tmp, "scheduler"), os.path.join(path, "scheduler"))
    for name, style in styles.items():
        tokenizer_folder(os.path.join(path, name), style, None)
    for name, how in layout.items():
        d = os.path.join(path, name)
        os.makedirs(d)
        shutil.copyfile(os.path.join(tmp, name, "config.json"), os.path.join(d, "config.json"))
        model = comps[name]
        is_clip = name.startswith("text_encoder")
        base = "model" if is_clip else "diffusion_pytorch_model"
        sd = clip_sd(model) if is_clip else model.state_dict()
        if how == ("fp16", "flat"):
            sd = model.state_dict()
            assert not any(k.startswith("text_model.") for k in sd), "transformers wrote text_model.*"
        if how == "plain":
            write_st(os.path.join(d, base + ".safetensors"), sd, {"format": "pt"})
        elif how[0] == "fp16":
            write_st(os.path.join(d, base + ".fp16.safetensors"), f16(sd), {"format": "pt"})
        else:  # ("shards", n, dtype): split by sorted name into n files + index
            names = sorted(sd)
            n = how[1]
            sd = {k: v.to(how[2]) for k, v in sd.items()}
            weight_map, total = {}, 0
            for s in range(n):
                part = names[s * len(names) // n:(s + 1) * len(names) // n]
                fname = f"{base}-{s + 1:05d}-of-{n:05d}.safetensors"
                write_st(os.path.join(d, fname), {k: sd[k] for k in part}, {"format": "pt"})
                for k in part:
                    weight_map[k] = fname
                    total += sd[k].numel() * sd[k].element_size()
            with open(os.path.join(d, base + ".safetensors.index.json"), "w") as f:
                json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2,
                          sort_keys=True)
                f.write("\n")
    shutil.rmtree(tmp)


def verify_folder(path, comps, vocab_dir):
    """from_pretrained on each component of the written folder gives the original tensors."""
    loaders = {"unet": UNet2DConditionModel, "vae": AutoencoderKL, "text_encoder": CLIPTextModel,
               "text_encoder_2": CLIPTextModelWithProjection}
    for name, cls in loaders.items():
        if name not in comps:
            continue
        d = os.path.join(path, name)
        variant = "fp16" if any(f.endswith(".fp16.safetensors") for f in os.listdir(d)) else None
        m = cls.from_pretrained(d, variant=variant, torch_dtype=torch.float32)
        same_state(m.state_dict(), comps[name].state_dict(), f"{path}/{name}")


def same_state(got, want, what):
    assert sorted(got) == sorted(want), (what, set(got) ^ set(want))
    for k in want:
        assert torch.equal(got[k].float(), want[k].float()), (what, k)


def pack(path):
    """git keeps `path` as path.tar.gz (reproducible: sorted, owner 0, mtime 0, gzip -n): the
    raw SDXL single file is 6 MB, mostly zero mantissa bits, 1.2 MB packed. tests/CMakeLists.txt
    unpacks it into the build folder; the raw file stays here (git ignores it) for the other
    golden scripts."""
    import gzip, io, tarfile
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.GNU_FORMAT) as tar:
        info = tar.gettarinfo(path, arcname=os.path.basename(path))
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        info.mtime = 0
        info.mode = 0o644
        with open(path, "rb") as f:
            tar.addfile(info, f)
    with open(path + ".tar.gz", "wb") as out:
        with gzip.GzipFile(fileobj=out, mode="wb", compresslevel=9, mtime=0, filename="") as gz:
            gz.write(raw.getvalue())


def verify_single(file, folder, pipe_cls, comps, styles, vocab_dir):
    """diffusers' own single-file conversion of `file` gives the original tensors. The
    config folder needs plain vocab files for the tokenizers: a temporary copy has them."""
    tmp = tempfile.mkdtemp()
    cfg = os.path.join(tmp, "cfg")
    shutil.copytree(folder, cfg, symlinks=True)
    for name, style in styles.items():
        shutil.rmtree(os.path.join(cfg, name))
        tokenizer_folder(os.path.join(cfg, name), style, vocab_dir)
    pipe = pipe_cls.from_single_file(file, config=cfg, local_files_only=True, torch_dtype=torch.float32)
    for name in comps:
        if name == "scheduler":
            continue
        same_state(getattr(pipe, name).state_dict(), comps[name].state_dict(), f"{file}:{name}")
    shutil.rmtree(tmp)


def crc_f32(t):
    return zlib.crc32(t.detach().float().contiguous().numpy().astype("<f4").tobytes())


def write_manifest(path, comps):
    lines = ["# component name shape crc32-of-f32-values (tests/golden/make_tiny_models.py; "
             + ", ".join(f"{k} {v}" for k, v in VERSIONS.items()) + ")"]
    for name in sorted(comps):
        if name == "scheduler":
            continue
        sd = clip_sd(comps[name]) if name.startswith("text_encoder") else comps[name].state_dict()
        for k in sorted(sd):
            shape = "x".join(str(s) for s in sd[k].shape) or "scalar"
            lines.append(f"{name} {k} {shape} {crc_f32(sd[k]):08x}")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return len(lines) - 1


def hints(**kv):
    return {f"storyrun.config.{k}": json.dumps(v, separators=(",", ":"), sort_keys=True) for k, v in kv.items()}


def size_of(path):
    if os.path.isfile(path):
        return os.path.getsize(path)
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            p = os.path.join(root, f)
            if not os.path.islink(p):
                total += os.path.getsize(p)
    return total


def main():
    torch.set_num_threads(1)
    os.makedirs(OUT, exist_ok=True)
    vocab_dir = tempfile.mkdtemp()
    for f in ("vocab.json", "merges.txt"):
        with gzip.open(os.path.join(TOKDATA, f + ".gz"), "rb") as src, open(os.path.join(vocab_dir, f), "wb") as dst:
            shutil.copyfileobj(src, dst)
    for style in ("sd15", "sdxl_2"):
        tokenizer_folder(os.path.join(vocab_dir, style), style, vocab_dir)
    meta = {"generator": "tests/golden/make_tiny_models.py"}
    meta.update({f"version.{k}": v for k, v in VERSIONS.items()})

    # SD1.5
    c = sd15_components()
    folder = os.path.join(OUT, "tiny_sd15")
    save_folder(folder, StableDiffusionPipeline, c, {"tokenizer": "sd15"},
                {"unet": "plain", "vae": "plain", "text_encoder": ("fp16",)}, vocab_dir)
    verify_folder(folder, c, vocab_dir)
    ldm = {}
    ldm.update(unet_to_ldm(c["unet"].state_dict(), c["unet"].config))
    ldm.update(vae_to_ldm(c["vae"].state_dict(), c["vae"].config))
    ldm.update({"cond_stage_model.transformer." + k: v for k, v in clip_sd(c["text_encoder"]).items()})
    ldm = f16(ldm)
    ldm["cond_stage_model.transformer.text_model.embeddings.position_ids"] = torch.arange(77).reshape(1, 77)
    ldm.update(schedule_buffers())
    single = os.path.join(OUT, "tiny_sd15.safetensors")
    write_st(single, ldm, dict(meta, **hints(unet={"norm_num_groups": 8}, vae={"norm_num_groups": 8},
                                             text_encoder={"num_attention_heads": 4})))
    verify_single(single, folder, StableDiffusionPipeline, c, {"tokenizer": "sd15"}, vocab_dir)
    n15 = write_manifest(os.path.join(OUT, "tiny_sd15.manifest.txt"), c)

    # SDXL
    c = sdxl_components()
    folder = os.path.join(OUT, "tiny_sdxl")
    styles = {"tokenizer": "sd15", "tokenizer_2": "sdxl_2"}
    save_folder(folder, StableDiffusionXLPipeline, c, styles,
                {"unet": ("shards", 2, torch.bfloat16), "vae": ("fp16",), "text_encoder": ("fp16", "flat"),
                 "text_encoder_2": ("fp16",)}, vocab_dir)
    verify_folder(folder, c, vocab_dir)
    ldm = {}
    ldm.update(unet_to_ldm(c["unet"].state_dict(), c["unet"].config))
    ldm.update(vae_to_ldm(c["vae"].state_dict(), c["vae"].config))
    ldm.update({"conditioner.embedders.0.transformer." + k: v for k, v in clip_sd(c["text_encoder"]).items()})
    ldm.update(openclip_to_ldm(clip_sd(c["text_encoder_2"]), "conditioner.embedders.1.model."))
    ldm = f16(ldm)
    single = os.path.join(OUT, "tiny_sdxl.safetensors")
    write_st(single, ldm, dict(meta, **hints(unet={"attention_head_dim": [2, 4], "norm_num_groups": 8},
                                             vae={"norm_num_groups": 8},
                                             text_encoder={"num_attention_heads": 4},
                                             text_encoder_2={"num_attention_heads": 2})))
    verify_single(single, folder, StableDiffusionXLPipeline, c, styles, vocab_dir)
    nxl = write_manifest(os.path.join(OUT, "tiny_sdxl.manifest.txt"), c)
    shutil.rmtree(vocab_dir)
    pack(single)

    for name in ("tiny_sd15", "tiny_sd15.safetensors", "tiny_sdxl", "tiny_sdxl.safetensors"):
        p = os.path.join(OUT, name)
        print(f"  {name:24s} {size_of(p) / 1e6:6.2f} MB ({len(zlib.compress(open(p, 'rb').read(), 6)) / 1e6 if os.path.isfile(p) else 0:.2f} MB deflated)")
    print(f"tiny models written and verified: sd15 {n15} tensors, sdxl {nxl} tensors; "
          + ", ".join(f"{k} {v}" for k, v in VERSIONS.items()))


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Writes tests/golden/clip/golden.safetensors: what transformers and diffusers compute
with the text encoders of the tiny models in tests/golden/models (make_tiny_models.py
writes them), for the text encoder and conditioning tests (tests/clip).

    /opt/ref-venv/bin/pip install transformers==5.24.0 diffusers==0.42.1 accelerate
    /opt/ref-venv/bin/python tests/golden/make_text_golden.py

The models are read from their diffusers folders (tiny_sd15: CLIPTextModel, 32 wide,
2 layers, 4 heads, quick_gelu; tiny_sdxl: the same architecture plus a
CLIPTextModelWithProjection 16 wide, 2 heads, gelu, projection 24; eos_token_id 2 in every
config, the legacy value of the published models: pooled = state at argmax(ids)). Their
single-file twins hold the same values, so these goldens serve both layouts.

golden.safetensors (f32, ids as I32), metadata: the prompts and cases as JSON, versions.
  sd15_te.*, sdxl_te.*, sdxl_te2.*   per encoder, for the prompts of PROMPTS:
      ids (N, 77)              tokenizer(prompt, padding="max_length", truncation=True)
                               (SD1.5's tokenizer for the CLIPTextModels, SDXL's
                               tokenizer_2, which pads with "!", for text_encoder_2)
      n_untruncated (N)        len(tokenizer(prompt).input_ids), BOS and EOS included
      last_hidden_state, hidden_states_m2 (= hidden_states[-2]), hidden_states_0 (N, 77, C)
      pooled (N, C); text_encoder_2 also text_embeds (N, projection_dim)
  eos.*                        sd15's encoder on raw ids (eos.ids, (4, 77)) whose largest id
                               repeats or precedes the EOS, pooled with the legacy rule
                               (eos.pooled_argmax, config eos_token_id 2) and with
                               eos_token_id = EOS_ID (eos.pooled_first: first position of it)
  sd15.<case>.context          what StableDiffusionPipeline feeds its UNet as
                               encoder_hidden_states: (2B or B, 77, 32), [uncond, cond]
  sdxl.<case>.context, .text_embeds, .time_ids
                               what StableDiffusionXLPipeline feeds its UNet:
                               encoder_hidden_states (2B, 77, 48), added_cond_kwargs
                               text_embeds (2B, 24) and time_ids (2B, 6)
The pipeline values are captured from a real pipeline call (the tiny models' own UNet, VAE
and scheduler) by a hook on the UNet's forward, which stops the call there: the whole
encode_prompt + add_time_ids path of diffusers runs unchanged.
"""
import gzip
import importlib.metadata as md
import json
import os
import platform
import shutil
import struct
import sys
import tempfile

import numpy as np
import torch
from safetensors.numpy import load_file
from transformers import CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer
from transformers.utils import logging as hf_logging

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "clip")
TOKDATA = os.path.join(HERE, "tokenizer")
MODELS = os.path.join(HERE, "models")
EOS_ID = 269  # "a</w>": a stand-in EOS for the first-position pooling rule

PROMPTS = [
    "",
    "a photo of an astronaut riding a horse on mars",
    "Bob's 3 cats (sitting) on a mat!!  #caption",
    "café naïve — 東京の夜景, 🚀✨ emoji & ünïcödé",
    "[Bob] a man in a black suit, walking in the rain at night, cinematic lighting",
    ("a very long prompt that goes on and on " * 12).strip(),  # 110 tokens: cut at 77
    "portrait, masterpiece, best quality, highly detailed, 8k, sharp focus",
]
NEGATIVE = "blurry, low quality, deformed hands"

SD15_CASES = [
    dict(name="cfg_neg", prompts=[PROMPTS[1], PROMPTS[4]], negative=[NEGATIVE, ""]),
    dict(name="cfg_none", prompts=[PROMPTS[3]], negative=None),
    dict(name="long_skip1", prompts=[PROMPTS[5]], negative=["x"], clip_skip=1),
    dict(name="nocfg", prompts=[PROMPTS[6], PROMPTS[0]], negative=None, guidance=1.0),
]
SDXL_CASES = [
    dict(name="zeros", prompts=[PROMPTS[1], PROMPTS[2]], negative=None),
    dict(name="neg_sizes", prompts=[PROMPTS[4], PROMPTS[3]], prompts_2=[PROMPTS[6], PROMPTS[1]],
         negative=[NEGATIVE, "ugly"], negative_2=["", "ugly, bad"], original_size=[1024, 768],
         crops=[16, 32], target_size=[1024, 1024], negative_original_size=[512, 512],
         negative_crops=[0, 8], negative_target_size=[768, 640]),
    dict(name="empty_string", prompts=[PROMPTS[5]], negative=[""]),
    dict(name="nozeros", prompts=[PROMPTS[2]], negative=None, force_zeros=False),
    dict(name="skip1", prompts=[PROMPTS[1]], negative=[NEGATIVE], clip_skip=1),
    dict(name="nocfg", prompts=[PROMPTS[4]], negative=None, guidance=1.0),
]
HEIGHT, WIDTH = 64, 96  # the pipelines' height and width (default original/target size)


def tokenizers(tmp):
    """CLIPTokenizers over the real vocab with SD1.5's and SDXL tokenizer_2's configs."""
    out = {}
    for cfg in ("sd15", "sdxl_2"):
        d = os.path.join(tmp, cfg)
        os.makedirs(d)
        for f in ("vocab.json", "merges.txt"):
            with gzip.open(os.path.join(TOKDATA, f + ".gz"), "rb") as src, \
                    open(os.path.join(d, f), "wb") as dst:
                shutil.copyfileobj(src, dst)
        for f in os.listdir(os.path.join(TOKDATA, cfg)):
            shutil.copy(os.path.join(TOKDATA, cfg, f), d)
        out[cfg] = CLIPTokenizer.from_pretrained(d)
    return out


def encode(tok, text):
    return tok(text, padding="max_length", max_length=77, truncation=True).input_ids


def load(cls, folder):
    """A component of a tiny model's diffusers folder, f32 (the fp16 variant when that is
    all the folder has: its values are f16-exact, so nothing changes)."""
    variant = "fp16" if any(f.endswith(".fp16.safetensors") for f in os.listdir(folder)) else None
    return cls.from_pretrained(folder, variant=variant, torch_dtype=torch.float32).eval()


def encoder_golden(tag, model, tok, golden):
    ids = [encode(tok, p) for p in PROMPTS]
    n_untr = [len(tok(p).input_ids) for p in PROMPTS]
    with torch.no_grad():
        o = model(torch.tensor(ids), output_hidden_states=True)
    text_model = model.text_model if hasattr(model, "text_model") else model
    assert len(o.hidden_states) == text_model.config.num_hidden_layers + 1
    golden[tag + ".ids"] = np.array(ids, dtype=np.int32)
    golden[tag + ".n_untruncated"] = np.array(n_untr, dtype=np.int32)
    golden[tag + ".last_hidden_state"] = o.last_hidden_state.numpy()
    golden[tag + ".hidden_states_m2"] = o.hidden_states[-2].numpy()
    golden[tag + ".hidden_states_0"] = o.hidden_states[0].numpy()
    if hasattr(o, "text_embeds"):
        golden[tag + ".text_embeds"] = o.text_embeds.numpy()
        with torch.no_grad():  # pooled: the final-normed state the projection reads
            pooled = text_model(torch.tensor(ids)).pooler_output
        golden[tag + ".pooled"] = pooled.numpy()
    else:
        golden[tag + ".pooled"] = o.pooler_output.numpy()


def eos_golden(model, golden):
    """Raw ids where the two pooling rules of transformers pick different positions."""
    g = torch.Generator().manual_seed(77)
    ids = torch.randint(300, 49000, (4, 77), generator=g)
    ids[:, 0] = 49406
    ids[0, 10] = EOS_ID          # first EOS_ID at 10, the largest id elsewhere
    ids[0, 30] = 49407
    ids[1, 5] = ids[1, 40] = 49407  # the largest id twice: argmax takes the first
    ids[1, 20] = EOS_ID
    ids[2, 76] = EOS_ID          # EOS_ID last, largest id at 3
    ids[2, 3] = 49407
    ids[3, 1] = ids[3, 2] = EOS_ID  # EOS_ID right after BOS, twice
    ids[3, 60] = 49407
    for r in range(4):  # EOS_ID only where placed above
        row = ids[r]
        row[(row == EOS_ID).nonzero().flatten()[2:]] = 300
    with torch.no_grad():
        golden["eos.pooled_argmax"] = model(ids).pooler_output.numpy()
        saved = model.eos_token_id
        model.eos_token_id = EOS_ID
        golden["eos.pooled_first"] = model(ids).pooler_output.numpy()
        model.eos_token_id = saved
    golden["eos.ids"] = ids.numpy().astype(np.int32)


class Captured(Exception):
    pass


def capture_unet_inputs(pipe, **kwargs):
    """Runs the pipeline up to its first UNet call and returns what the UNet got."""
    got = {}

    def hook(module, args, kw):
        got["context"] = kw["encoder_hidden_states"].detach().clone()
        extra = kw.get("added_cond_kwargs") or {}
        for k in ("text_embeds", "time_ids"):
            if k in extra:
                got[k] = extra[k].detach().clone()
        raise Captured()

    h = pipe.unet.register_forward_pre_hook(hook, with_kwargs=True)
    try:
        pipe(num_inference_steps=1, height=HEIGHT, width=WIDTH, output_type="latent", **kwargs)
    except Captured:
        pass
    finally:
        h.remove()
    assert "context" in got, "the pipeline never called its UNet"
    return got


def unet_vae_scheduler(folder, scheduler_cls):
    from diffusers import AutoencoderKL, UNet2DConditionModel
    return dict(unet=load(UNet2DConditionModel, os.path.join(folder, "unet")),
                vae=load(AutoencoderKL, os.path.join(folder, "vae")),
                scheduler=scheduler_cls.from_pretrained(folder, subfolder="scheduler"))


def sd15_golden(te, tok, golden):
    from diffusers import PNDMScheduler, StableDiffusionPipeline
    comps = unet_vae_scheduler(os.path.join(MODELS, "tiny_sd15"), PNDMScheduler)
    pipe = StableDiffusionPipeline(text_encoder=te, tokenizer=tok, safety_checker=None,
                                   feature_extractor=None, requires_safety_checker=False, **comps)
    pipe.set_progress_bar_config(disable=True)
    # diffusers 0.42's clip_skip path reads text_encoder.text_model.final_layer_norm, the
    # module layout of transformers 4; in transformers 5 CLIPTextModel *is* the text model.
    # A plain attribute (not a registered submodule) gives that path the same final norm.
    if not hasattr(te, "text_model"):
        te.__dict__["text_model"] = te
    for c in SD15_CASES:
        got = capture_unet_inputs(pipe, prompt=c["prompts"], negative_prompt=c["negative"],
                                  guidance_scale=c.get("guidance", 7.5),
                                  clip_skip=c.get("clip_skip"),
                                  generator=torch.Generator().manual_seed(0))
        golden["sd15.%s.context" % c["name"]] = got["context"].numpy()
    te.__dict__.pop("text_model", None)


def sdxl_golden(te1, te2, tok1, tok2, golden):
    from diffusers import EulerDiscreteScheduler, StableDiffusionXLPipeline
    comps = unet_vae_scheduler(os.path.join(MODELS, "tiny_sdxl"), EulerDiscreteScheduler)
    for c in SDXL_CASES:
        pipe = StableDiffusionXLPipeline(text_encoder=te1, text_encoder_2=te2, tokenizer=tok1,
                                         tokenizer_2=tok2, add_watermarker=False,
                                         force_zeros_for_empty_prompt=c.get("force_zeros", True),
                                         **comps)
        pipe.set_progress_bar_config(disable=True)
        kw = dict(prompt=c["prompts"], prompt_2=c.get("prompts_2"), negative_prompt=c["negative"],
                  negative_prompt_2=c.get("negative_2"), guidance_scale=c.get("guidance", 5.0),
                  clip_skip=c.get("clip_skip"), generator=torch.Generator().manual_seed(0))
        for k in ("original_size", "target_size", "negative_original_size", "negative_target_size"):
            if k in c:
                kw[k] = tuple(c[k])
        if "crops" in c:
            kw["crops_coords_top_left"] = tuple(c["crops"])
        if "negative_crops" in c:
            kw["negative_crops_coords_top_left"] = tuple(c["negative_crops"])
        got = capture_unet_inputs(pipe, **kw)
        for k in ("context", "text_embeds", "time_ids"):
            golden["sdxl.%s.%s" % (c["name"], k)] = got[k].numpy()


def write_st(path, tensors, metadata):
    """Byte-reproducible safetensors (the package's writer orders metadata keys at random):
    tensors in name order, sorted header keys, padded to 8 bytes; read back to check."""
    codes = {np.dtype("<f4"): "F32", np.dtype("<i4"): "I32"}
    header = {"__metadata__": dict(sorted(metadata.items()))}
    blobs, offset = [], 0
    for name in sorted(tensors):
        t = np.ascontiguousarray(tensors[name])
        raw = t.tobytes()
        header[name] = {"dtype": codes[t.dtype], "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=True).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path + ".tmp", "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))
    os.replace(path + ".tmp", path)
    back = load_file(path)
    assert sorted(back) == sorted(tensors) and all(np.array_equal(back[k], tensors[k]) for k in tensors)


def versions():
    v = {"python": platform.python_version()}
    for p in ("torch", "transformers", "diffusers", "numpy", "safetensors", "tokenizers"):
        v[p] = md.version(p)
    return v


def main():
    hf_logging.set_verbosity_error()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    os.makedirs(OUT, exist_ok=True)
    tmp = tempfile.mkdtemp()
    try:
        toks = tokenizers(tmp)
        sd15_te = load(CLIPTextModel, os.path.join(MODELS, "tiny_sd15", "text_encoder"))
        sdxl_te = load(CLIPTextModel, os.path.join(MODELS, "tiny_sdxl", "text_encoder"))
        sdxl_te2 = load(CLIPTextModelWithProjection, os.path.join(MODELS, "tiny_sdxl", "text_encoder_2"))
        golden = {}
        encoder_golden("sd15_te", sd15_te, toks["sd15"], golden)
        encoder_golden("sdxl_te", sdxl_te, toks["sd15"], golden)
        encoder_golden("sdxl_te2", sdxl_te2, toks["sdxl_2"], golden)
        eos_golden(sd15_te, golden)
        sd15_golden(sd15_te, toks["sd15"], golden)
        sdxl_golden(sdxl_te, sdxl_te2, toks["sd15"], toks["sdxl_2"], golden)
    finally:
        shutil.rmtree(tmp)
    meta = {"prompts": json.dumps(PROMPTS, ensure_ascii=False),
            "sd15_cases": json.dumps(SD15_CASES, ensure_ascii=False),
            "sdxl_cases": json.dumps(SDXL_CASES, ensure_ascii=False),
            "size": json.dumps([HEIGHT, WIDTH]), "eos_id": str(EOS_ID),
            "versions": json.dumps(versions())}
    golden = {k: np.ascontiguousarray(v, dtype=np.int32 if v.dtype.kind == "i" else np.float32)
              for k, v in golden.items()}
    path = os.path.join(OUT, "golden.safetensors")
    write_st(path, golden, meta)
    with open(os.path.join(OUT, "VERSIONS.md"), "w") as f:
        f.write("# Versions used for tests/golden/clip\n\nWritten by `tests/golden/make_text_golden.py` "
                "(do not edit by hand; rerun the script).\ntorch ran on the CPU, one thread, "
                "deterministic algorithms.\n\n| package | version |\n|---|---|\n")
        for k, v in versions().items():
            f.write("| %s | %s |\n" % (k, v))
        f.write("\ngolden.safetensors: %d tensors, %d bytes\n" % (len(golden), os.path.getsize(path)))
    print("wrote %s: %d golden tensors" % (path, len(golden)))


if __name__ == "__main__":
    sys.exit(main())

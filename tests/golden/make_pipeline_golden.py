#!/usr/bin/env python3
"""Writes tests/golden/pipeline/{sd15,sdxl}.safetensors: whole text-to-image runs of
diffusers' StableDiffusionPipeline and StableDiffusionXLPipeline on the tiny models of
tests/golden/models (make_tiny_models.py), a few steps of every sampler storyrun offers,
for the end-to-end tests of tests/pipeline.

    /opt/ref-venv/bin/pip install torch==2.15.0 diffusers==0.42.1 transformers==5.24.0 \
        safetensors numpy
    /opt/ref-venv/bin/python tests/golden/make_pipeline_golden.py

The pipelines are built from the diffusers folders' components (from_pretrained of unet/,
vae/, text_encoder*/; the tokenizers over the real CLIP vocabulary with the folders'
configs), safety_checker=None, no watermark. Each case runs

    pipe(prompt, negative_prompt, height=H, width=W, num_inference_steps=steps,
         guidance_scale=g, guidance_rescale=r, generator=torch.Generator("cpu").manual_seed(seed),
         output_type="np", callback_on_step_end=<records the latents after every step>)

with the scheduler of the case made by from_config(<the folder's scheduler config>,
**overrides) exactly as SAMPLERS lists them (storyrun's --sampler names), and FreeU on
when the case says so (pipe.enable_freeu). The tiny VAEs have two blocks, so their scale
factor is 2: the latents of an H x W image are (1, 4, H/2, W/2).

Per case <c>, in the model's file (F32):
  <c>.init_latents  (1, 4, h, w)       randn(generator) * scheduler.init_noise_sigma, the
                                       UNet's first input before scale_model_input
  <c>.step_latents  (steps, 1, 4, h, w)  latents after each scheduler step
  <c>.latents       (1, 4, h, w)       the final latents (= step_latents[-1])
  <c>.image         (1, H, W, 3)       the decoded image in [0, 1] (output_type="np",
                                       before the 8-bit rounding)
  <c>.timesteps     (steps)            scheduler.timesteps
metadata: "cases" (JSON list: name, sampler, prompt, negative (null: none given), seed,
steps, guidance, guidance_rescale, freeu [s1, s2, b1, b2] or null, height, width, and the
scheduler class and config as run), "versions" (JSON).
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

import diffusers
from diffusers import (AutoencoderKL, DDIMScheduler, DPMSolverMultistepScheduler, EulerAncestralDiscreteScheduler,
                       EulerDiscreteScheduler, StableDiffusionPipeline, StableDiffusionXLPipeline,
                       UNet2DConditionModel)
from diffusers.utils import logging as df_logging

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "pipeline")
TOKDATA = os.path.join(HERE, "tokenizer")
MODELS = os.path.join(HERE, "models")

# storyrun's --sampler names -> the diffusers scheduler made from the model's config. DDIM:
# clip_sample and set_alpha_to_one false, as the published SD1.5 and SDXL scheduler configs
# say (and storyrun's configs for single files); the tiny folders' configs were saved by
# PNDMScheduler / EulerDiscreteScheduler and lack these DDIM keys, whose class defaults
# (true) would otherwise apply.
SAMPLERS = {
    "ddim": (DDIMScheduler, {"clip_sample": False, "set_alpha_to_one": False}),
    "euler": (EulerDiscreteScheduler, {}),
    "euler_a": (EulerAncestralDiscreteScheduler, {}),
    "dpmpp_2m": (DPMSolverMultistepScheduler, {}),
    "dpmpp_2m_karras": (DPMSolverMultistepScheduler, {"use_karras_sigmas": True}),
}

PROMPT = "a photo of an astronaut riding a horse on mars, cinematic lighting"
NEGATIVE = "blurry, low quality"
HEIGHT, WIDTH = 24, 32  # latents 12 x 16 (tiny VAE: scale factor 2)


def cases(default_guidance, freeu):
    c = []
    for i, s in enumerate(SAMPLERS):
        c.append(dict(name=s, sampler=s, seed=100 + i, steps=4, guidance=default_guidance))
    c += [
        dict(name="euler_a_rescale", sampler="euler_a", seed=7, steps=3, guidance=default_guidance,
             guidance_rescale=0.7),
        dict(name="dpmpp_2m_3steps", sampler="dpmpp_2m", seed=8, steps=3, guidance=default_guidance),
        dict(name="ddim_nocfg", sampler="ddim", seed=9, steps=3, guidance=1.0),
        dict(name="euler_freeu", sampler="euler", seed=10, steps=3, guidance=default_guidance, freeu=freeu),
        dict(name="euler_a_noneg", sampler="euler_a", seed=11, steps=3, guidance=default_guidance,
             negative=None),
    ]
    for x in c:
        x.setdefault("prompt", PROMPT)
        x.setdefault("negative", NEGATIVE)
        x.setdefault("guidance_rescale", 0.0)
        x.setdefault("freeu", None)
        x.update(height=HEIGHT, width=WIDTH)
    return c


def tokenizers(tmp):
    """CLIPTokenizers over the real vocabulary with SD1.5's and SDXL tokenizer_2's configs
    (transformers reads no .gz: plain copies in a temporary folder)."""
    out = {}
    for cfg in ("sd15", "sdxl_2"):
        d = os.path.join(tmp, cfg)
        os.makedirs(d)
        for f in ("vocab.json", "merges.txt"):
            with gzip.open(os.path.join(TOKDATA, f + ".gz"), "rb") as src, open(os.path.join(d, f), "wb") as dst:
                shutil.copyfileobj(src, dst)
        for f in os.listdir(os.path.join(TOKDATA, cfg)):
            shutil.copy(os.path.join(TOKDATA, cfg, f), d)
        out[cfg] = CLIPTokenizer.from_pretrained(d)
    return out


def load(cls, folder):
    """A component in f32 (the fp16 variant when that is all the folder has: the tiny
    models' values are f16-exact, so nothing changes)."""
    variant = "fp16" if any(f.endswith(".fp16.safetensors") for f in os.listdir(folder)) else None
    return cls.from_pretrained(folder, variant=variant, torch_dtype=torch.float32).eval()


def scheduler_config(folder):
    with open(os.path.join(folder, "scheduler", "scheduler_config.json")) as f:
        return json.load(f)


def run_case(pipe, base_config, c, golden, meta):
    cls, overrides = SAMPLERS[c["sampler"]]
    pipe.scheduler = cls.from_config(base_config, **overrides)
    if c["freeu"]:
        s1, s2, b1, b2 = c["freeu"]
        pipe.enable_freeu(s1=s1, s2=s2, b1=b1, b2=b2)
    else:
        pipe.disable_freeu()
    steps = []

    def on_step(p, i, t, kw):
        steps.append(kw["latents"].detach().clone())
        return kw

    init = {}
    g = torch.Generator("cpu").manual_seed(c["seed"])
    # the initial latents: what prepare_latents returns, recorded by wrapping it
    orig_prepare = pipe.prepare_latents

    def prepare(*a, **kw):
        lat = orig_prepare(*a, **kw)
        init["latents"] = lat.detach().clone()
        return lat

    pipe.prepare_latents = prepare
    try:
        out = pipe(prompt=c["prompt"], negative_prompt=c["negative"], height=c["height"], width=c["width"],
                   num_inference_steps=c["steps"], guidance_scale=c["guidance"],
                   guidance_rescale=c["guidance_rescale"], generator=g, output_type="np",
                   callback_on_step_end=on_step, callback_on_step_end_tensor_inputs=["latents"])
    finally:
        del pipe.prepare_latents
    n = c["name"]
    golden[n + ".init_latents"] = init["latents"].numpy()
    golden[n + ".step_latents"] = torch.stack(steps).numpy()
    golden[n + ".latents"] = steps[-1].numpy()
    golden[n + ".image"] = np.asarray(out.images, dtype=np.float32)
    golden[n + ".timesteps"] = pipe.scheduler.timesteps.float().numpy()
    assert len(steps) == c["steps"], (n, len(steps))
    m = dict(c)
    # strict JSON: non-finite numbers (lambda_min_clipped = -inf) as strings
    finite = lambda v: str(v) if isinstance(v, float) and not np.isfinite(v) else v
    m["scheduler"] = dict(class_name=cls.__name__,
                          config={k: finite(v) for k, v in pipe.scheduler.config.items() if not k.startswith("_")})
    meta.append(m)


def sd15(toks):
    folder = os.path.join(MODELS, "tiny_sd15")
    pipe = StableDiffusionPipeline(
        unet=load(UNet2DConditionModel, os.path.join(folder, "unet")),
        vae=load(AutoencoderKL, os.path.join(folder, "vae")),
        text_encoder=load(CLIPTextModel, os.path.join(folder, "text_encoder")),
        tokenizer=toks["sd15"], scheduler=DDIMScheduler.from_config(scheduler_config(folder)),
        safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    # diffusers' suggested FreeU values for SD1.5: s1 0.9, s2 0.2, b1 1.2, b2 1.4
    return pipe, scheduler_config(folder), cases(7.5, [0.9, 0.2, 1.2, 1.4])


def sdxl(toks):
    folder = os.path.join(MODELS, "tiny_sdxl")
    pipe = StableDiffusionXLPipeline(
        unet=load(UNet2DConditionModel, os.path.join(folder, "unet")),
        vae=load(AutoencoderKL, os.path.join(folder, "vae")),
        text_encoder=load(CLIPTextModel, os.path.join(folder, "text_encoder")),
        text_encoder_2=load(CLIPTextModelWithProjection, os.path.join(folder, "text_encoder_2")),
        tokenizer=toks["sd15"], tokenizer_2=toks["sdxl_2"],
        scheduler=EulerDiscreteScheduler.from_config(scheduler_config(folder)),
        add_watermarker=False, force_zeros_for_empty_prompt=True)
    pipe.set_progress_bar_config(disable=True)
    # StoryDiffusion's SDXL FreeU: s1 0.6, s2 0.4, b1 1.1, b2 1.2
    return pipe, scheduler_config(folder), cases(5.0, [0.6, 0.4, 1.1, 1.2])


def write_st(path, tensors, metadata):
    """Byte-reproducible safetensors: tensors in name order, sorted header keys, padded to
    8 bytes; read back to check."""
    header = {"__metadata__": dict(sorted(metadata.items()))}
    blobs, offset = [], 0
    for name in sorted(tensors):
        t = np.ascontiguousarray(tensors[name], dtype="<f4")
        raw = t.tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [offset, offset + len(raw)]}
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
    df_logging.set_verbosity_error()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    os.makedirs(OUT, exist_ok=True)
    tmp = tempfile.mkdtemp()
    lines = []
    try:
        toks = tokenizers(tmp)
        for name, make in (("sd15", sd15), ("sdxl", sdxl)):
            pipe, base, cs = make(toks)
            golden, meta = {}, []
            with torch.no_grad():
                for c in cs:
                    run_case(pipe, base, c, golden, meta)
            golden = {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in golden.items()}
            path = os.path.join(OUT, name + ".safetensors")
            write_st(path, golden, {"cases": json.dumps(meta, ensure_ascii=False, sort_keys=True, allow_nan=False),
                                    "model": "tests/golden/models/tiny_" + name,
                                    "versions": json.dumps(versions(), sort_keys=True)})
            lines.append("| %s.safetensors | %d | %d |" % (name, len(cs), os.path.getsize(path)))
            print("wrote %s: %d cases" % (path, len(cs)))
    finally:
        shutil.rmtree(tmp)
    with open(os.path.join(OUT, "VERSIONS.md"), "w") as f:
        f.write("# Versions used for tests/golden/pipeline\n\nWritten by `tests/golden/make_pipeline_golden.py` "
                "(do not edit by hand; rerun the script).\ntorch ran on the CPU, one thread, "
                "deterministic algorithms.\n\n| package | version |\n|---|---|\n")
        for k, v in versions().items():
            f.write("| %s | %s |\n" % (k, v))
        f.write("\n| file | cases | bytes |\n|---|---:|---:|\n" + "\n".join(lines) + "\n")


if __name__ == "__main__":
    sys.exit(main())

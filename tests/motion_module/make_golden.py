#!/usr/bin/env python3
"""tests/motion_module/make_golden.py: goldens for the AnimateDiff motion modules and the video
UNet (models/motion_module.c, models/unet_video.c) from diffusers' MotionAdapter and
UNetMotionModel.

    /opt/ref-venv/bin/python tests/motion_module/make_golden.py

A tiny seeded MotionAdapter matching the tiny SD1.5 UNet of tests/golden/models/tiny_sd15
(block_out_channels (16, 32), layers_per_block 2, 8 norm groups) with 2 motion heads,
max_seq_length 16, 1 temporal transformer block per motion module in block 0 and 2 in
block 1, and a mid-block motion module. Written under tests/motion_module/data/:

  adapter/              the diffusers layout (MotionAdapter.save_pretrained: config.json and
                        diffusion_pytorch_model.safetensors), weights in F16
  mm_tiny.safetensors   the same weights in the original AnimateDiff key layout
                        (mm_sd_v15_v2.safetensors style, F16), made by the inverse of diffusers'
                        convert_animatediff_checkpoint_to_diffusers and checked against it;
                        metadata "storyrun.config.motion_adapter" carries the head count
                        (the original files do not store it; real SD1.5 adapters use 8)
  golden.safetensors    inputs and outputs (F32):
    tt.x, tt.y          (a) adapter.down_blocks[1].motion_modules[0] (C = 32, 2 blocks) on
                        x (B*F = 2*4, 32, 4, 4), frames = 4
    video.sample        (b) UNetMotionModel.from_unet2d(tiny_sd15 unet, adapter) on B = 2
    video.timesteps         videos of F = 4 frames, 8 x 8 latents, one timestep per video;
    video.context           context (B*F, 8, 32) as AnimateDiffPipeline passes it (the prompt
    video.noise_pred        repeated per frame; here every frame's differs). sample and
                        noise_pred are stored frames folded into the batch, (B*F, 4, 8, 8),
                        row b*F + f (diffusers' (B, 4, F, H, W) permuted), the layout storyrun
                        uses; timesteps (B,).
    e2e.latents         (c) AnimateDiffPipeline (unet tiny_sd15 + the adapter, DDIMScheduler
    e2e.prompt_embeds       from tiny_sd15's config with AnimateDiff's settings: linear betas,
    e2e.negative_...        no clipping, linspace spacing, steps_offset 1; 3 steps, guidance
    e2e.latents_out         7.5, output_type "latent") on one video of F = 4 frames from the
                        given initial latents (F, 4, 8, 8) and (1, 8, 32) prompt embeddings.
                        Metadata "scheduler": the scheduler's config; "e2e": the settings.

Every weight is made exactly representable in float16 (so the F16 files hold the values the
F32 reference computed with) and gets seeded noise on top of its initializer. The positional
encodings (pos_embed.pe) are not noised: they are the sinusoidal buffer both layouts define.
"""
import copy
import json
import os
import platform
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "data")
MODELS = os.path.join(HERE, "..", "golden", "models")

ADAPTER = dict(block_out_channels=(16, 32), motion_layers_per_block=2,
               motion_transformer_layers_per_block=(1, 2), motion_mid_block_layers_per_block=1,
               motion_transformer_layers_per_mid_block=1, motion_num_attention_heads=2,
               motion_norm_num_groups=8, motion_max_seq_length=16, use_motion_mid_block=True)


def to_original(name):
    """diffusers MotionAdapter name -> original AnimateDiff name (None: not stored there).

    down_blocks.N.motion_modules.M.X / up_blocks.N... / mid_block.motion_modules.0.X become
    ....motion_modules.M.temporal_transformer.X' where in X' (inside transformer_blocks.K):
    attn1 -> attention_blocks.0, attn2 -> attention_blocks.1, norm1 -> norms.0,
    norm2 -> norms.1, norm3 -> ff_norm; norm, proj_in, proj_out, ff.* keep their names.
    pos_embed.pe is written separately (the original has one per attention block)."""
    head, sep, rest = name.partition(".motion_modules.")
    m, _, rest = rest.partition(".")
    if rest.endswith("pos_embed.pe"):
        return None
    parts = rest.split(".")
    if parts[0] == "transformer_blocks":
        sub = {"attn1": "attention_blocks.0", "attn2": "attention_blocks.1", "norm1": "norms.0",
               "norm2": "norms.1", "norm3": "ff_norm"}
        parts[2] = sub.get(parts[2], parts[2])
    return "%s%s%s.temporal_transformer.%s" % (head, sep, m, ".".join(parts))


def original_pe(max_len, c):
    """AnimateDiff's PositionalEncoding buffer (1, max_len, c)."""
    import math
    position = torch.arange(max_len).unsqueeze(1)
    div = torch.exp(torch.arange(0, c, 2) * (-math.log(10000.0) / c))
    pe = torch.zeros(1, max_len, c)
    pe[0, :, 0::2] = torch.sin(position * div)
    pe[0, :, 1::2] = torch.cos(position * div)
    return pe


def main():
    from diffusers import MotionAdapter, UNet2DConditionModel, UNetMotionModel
    from diffusers.loaders.single_file_utils import convert_animatediff_checkpoint_to_diffusers
    from safetensors.torch import save_file

    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    os.makedirs(OUT, exist_ok=True)
    torch.manual_seed(77)
    adapter = MotionAdapter(**ADAPTER).eval()
    g = torch.Generator().manual_seed(78)
    with torch.no_grad():
        for name, p in adapter.named_parameters():
            p.add_(0.15 * torch.randn(p.shape, generator=g))
            p.copy_(p.half().float())
    folder = os.path.join(OUT, "adapter")
    # a copy goes to F16: half() would round the reference's positional buffers too
    copy.deepcopy(adapter).half().save_pretrained(folder, safe_serialization=True)
    for f in os.listdir(folder):
        os.chmod(os.path.join(folder, f), 0o644)

    # the original layout, checked by diffusers' own conversion back to the adapter's names
    sd = adapter.state_dict()
    orig = {}
    for k, v in sd.items():
        o = to_original(k)
        if o is not None:
            orig[o] = v.half().contiguous()
        elif k.endswith("transformer_blocks.0.pos_embed.pe") or k.endswith("pos_embed.pe"):
            base = to_original(k.replace("pos_embed.pe", "attn1.to_q.weight"))
            for a in (0, 1):
                key = base.replace("attention_blocks.0.to_q.weight",
                                   "attention_blocks.%d.pos_encoder.pe" % a)
                orig[key] = original_pe(v.shape[1], v.shape[2]).half()
    back = convert_animatediff_checkpoint_to_diffusers(orig)
    want = {k: v for k, v in sd.items() if not k.endswith("pos_embed.pe")}
    assert sorted(back) == sorted(want), set(back) ^ set(want)
    for k in want:
        assert torch.equal(back[k].float(), want[k].float()), k
    save_file(orig, os.path.join(OUT, "mm_tiny.safetensors"),
              metadata={"storyrun.config.motion_adapter":
                        json.dumps({"motion_num_attention_heads": 2})})

    golden = {}
    # (a) one motion module (AnimateDiffTransformer3D) on frames folded into the batch
    B, F = 2, 4
    tt = adapter.down_blocks[1].motion_modules[0]
    x = torch.randn(B * F, 32, 4, 4, generator=g)
    with torch.no_grad():
        golden["tt.x"] = x
        golden["tt.y"] = tt(x, num_frames=F)

    # (b) the video UNet
    unet = UNet2DConditionModel.from_pretrained(os.path.join(MODELS, "tiny_sd15", "unet")).eval()
    model = UNetMotionModel.from_unet2d(unet, adapter).eval()
    H = W = 8
    sample = torch.randn(B, 4, F, H, W, generator=g)
    context = torch.randn(B * F, 8, 32, generator=g)
    t = torch.tensor([700.0, 35.0])
    with torch.no_grad():
        pred = model(sample, t, encoder_hidden_states=context).sample  # (B, 4, F, H, W)
    fold = lambda v: v.permute(0, 2, 1, 3, 4).reshape(B * F, 4, H, W).contiguous()
    golden["video.sample"] = fold(sample)
    golden["video.timesteps"] = t
    golden["video.context"] = context
    golden["video.noise_pred"] = fold(pred)
    # (c) end to end: AnimateDiffPipeline's denoising loop (DDIM as AnimateDiff's examples
    # configure it, classifier-free guidance 7.5, 3 steps) from given latents and prompt
    # embeddings, output_type "latent"
    from diffusers import AnimateDiffPipeline, AutoencoderKL, DDIMScheduler
    sched = DDIMScheduler.from_pretrained(
        os.path.join(MODELS, "tiny_sd15", "scheduler"), beta_schedule="linear",
        clip_sample=False, timestep_spacing="linspace", steps_offset=1)
    vae = AutoencoderKL.from_pretrained(os.path.join(MODELS, "tiny_sd15", "vae")).eval()
    pipe = AnimateDiffPipeline(vae=vae, text_encoder=None, tokenizer=None, unet=unet,
                               motion_adapter=adapter, scheduler=sched)
    pipe.set_progress_bar_config(disable=True)
    pos = torch.randn(1, 8, 32, generator=g)
    neg = torch.randn(1, 8, 32, generator=g)
    lat = torch.randn(1, 4, F, H, W, generator=g)
    with torch.no_grad():
        res = pipe(prompt_embeds=pos, negative_prompt_embeds=neg, num_frames=F,
                   height=H * pipe.vae_scale_factor, width=W * pipe.vae_scale_factor,
                   num_inference_steps=3, guidance_scale=7.5, latents=lat.clone(),
                   output_type="latent").frames
    fold1 = lambda v: v.permute(0, 2, 1, 3, 4).reshape(F, 4, H, W).contiguous()
    golden["e2e.latents"] = fold1(lat)
    golden["e2e.prompt_embeds"] = pos
    golden["e2e.negative_prompt_embeds"] = neg
    golden["e2e.latents_out"] = fold1(res)
    import inspect
    keys = inspect.signature(DDIMScheduler.__init__).parameters
    sched_json = json.dumps({k: v for k, v in dict(sched.config).items() if k in keys})

    golden = {k: v.float().contiguous() for k, v in golden.items()}
    path = os.path.join(OUT, "golden.safetensors")
    save_file(golden, path, metadata={"scheduler": sched_json, "e2e": json.dumps(
        {"steps": 3, "guidance_scale": 7.5, "frames": F})})
    for f in ("golden.safetensors", "mm_tiny.safetensors"):
        os.chmod(os.path.join(OUT, f), 0o644)

    import diffusers
    import safetensors
    with open(os.path.join(OUT, "VERSIONS.md"), "w") as f:
        f.write("# Versions used for tests/motion_module/data\n\n"
                "Written by `tests/motion_module/make_golden.py` (do not edit by hand; rerun "
                "the script).\ntorch ran on the CPU, one thread, deterministic algorithms.\n\n"
                "| package | version |\n|---|---|\n")
        for n, v in [("python", platform.python_version()), ("torch", torch.__version__),
                     ("diffusers", diffusers.__version__), ("numpy", np.__version__),
                     ("safetensors", safetensors.__version__)]:
            f.write("| %s | %s |\n" % (n, v))
        f.write("\ngolden.safetensors: %d tensors, %d bytes; max |noise_pred| %.4g, "
                "max |tt.y| %.4g\n" % (len(golden), os.path.getsize(path),
                                        golden["video.noise_pred"].abs().max(),
                                        golden["tt.y"].abs().max()))
    return 0


if __name__ == "__main__":
    sys.exit(main())

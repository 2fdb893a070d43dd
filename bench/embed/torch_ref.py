#!/usr/bin/env python3
"""transformers' side of bench_embed: CLIPVisionModelWithProjection forwards, timed.

    torch_ref.py --tiny DIR --out TMPDIR --threads 2 --reps 3 --frames 8 [--quick]

Cases, in order: "tiny" (the model folder DIR) and, without --quick, "vith" (a ViT-H/14
sized CLIPVisionConfig: hidden 1280, 32 layers, 16 heads, MLP 5120, patch 14, image 224,
projection 1024, gelu) built with torch.manual_seed(0) and its default (random)
initialisation, then saved with save_pretrained (safetensors) into TMPDIR/vith so that
storyrun loads the same weights. For each case the pixel values (frames, 3, S, S) come from
a seeded generator and are written to TMPDIR/<case>_pixels.f32 (raw float32), and the
image_embeds of the last run to TMPDIR/<case>_embeds.f32. Timing: torch.no_grad(), one
clip of `frames` frames per forward; "tiny" runs `inner` forwards per timed rep after a
warm-up, "vith" one forward per rep and no warm-up (each takes seconds on 2 cores).

Prints, one line each:
  READY torch <version>, transformers <version>, <n> threads
  MODEL <case> <path>
  RESULT <case> <median ms per clip> <min ms per clip>
Without torch/transformers it prints "NOTORCH <reason>".
"""
import argparse
import os
import statistics
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tiny", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--frames", type=int, default=8)
    ap.add_argument("--inner", type=int, default=50)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    try:
        import torch
        import transformers
        from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection
    except Exception as e:  # noqa: BLE001 - any import failure means "no reference"
        print("NOTORCH cannot import torch/transformers: %s" % e, flush=True)
        return 0
    transformers.utils.logging.disable_progress_bar()
    torch.set_num_threads(args.threads)
    print("READY torch %s, transformers %s, %d threads" % (
        torch.__version__, transformers.__version__, torch.get_num_threads()), flush=True)

    cases = [("tiny", args.tiny, args.inner, 1)]
    if not args.quick:
        cases.append(("vith", None, 1, 0))
    for name, path, inner, warm in cases:
        if path is None:
            cfg = CLIPVisionConfig(hidden_size=1280, intermediate_size=5120, num_hidden_layers=32,
                                   num_attention_heads=16, patch_size=14, image_size=224,
                                   projection_dim=1024, hidden_act="gelu", layer_norm_eps=1e-5)
            torch.manual_seed(0)
            model = CLIPVisionModelWithProjection(cfg)
            path = os.path.join(args.out, name)
            model.save_pretrained(path, safe_serialization=True)
        else:
            model = CLIPVisionModelWithProjection.from_pretrained(path)
        model = model.float().eval()
        print("MODEL %s %s" % (name, path), flush=True)
        s = model.config.image_size
        g = torch.Generator().manual_seed(1)
        px = torch.randn(args.frames, 3, s, s, generator=g, dtype=torch.float32)
        px.numpy().tofile(os.path.join(args.out, name + "_pixels.f32"))
        times = []
        with torch.no_grad():
            for _ in range(warm):
                model(pixel_values=px)
            for _ in range(args.reps):
                t0 = time.perf_counter()
                for _ in range(inner):
                    emb = model(pixel_values=px).image_embeds
                times.append((time.perf_counter() - t0) * 1000.0 / inner)
        emb.contiguous().numpy().tofile(os.path.join(args.out, name + "_embeds.f32"))
        print("RESULT %s %.6f %.6f" % (name, statistics.median(times), min(times)), flush=True)
        del model
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

#!/usr/bin/env python3
"""Writes tests/golden/sched/: what diffusers' schedulers and torch's CPU generator compute,
for the sampler and RNG tests (tests/sched: models/scheduler*.c, models/rng.c).

    /opt/ref-venv/bin/python tests/golden/make_sched_golden.py

sched.safetensors (f32), metadata "cases" (JSON list) and "sweeps" (JSON list):
  case <name>: a denoising loop as StableDiffusionPipeline runs it, with a stand-in UNet.
      scheduler = <Class>.from_config(config); set_timesteps(steps)
      gen = torch.Generator().manual_seed(seed)
      latents = randn(shape, generator=gen) * init_noise_sigma
      per step i: x_in = scale_model_input(latents, t)          -> <name>.x_in      (S, *shape)
                                                        (euler kinds; the others pass latents)
                  uncond, cond = fake_unet(x_in, t)              -> <name>.uncond, .cond
                  eps = uncond + g (cond - uncond), rescale_noise_cfg when rescale > 0
                  latents = step(eps, t, latents, generator=gen[, eta]) -> <name>.latents (S, *shape)
      <name>.timesteps (S), <name>.sigmas (ddim: absent), <name>.init_noise_sigma (1),
      <name>.latents0 (initial latents, scaled)
    The stand-in UNet is any smooth function: the test feeds the stored uncond/cond to
    storyrun's loop, so it need not be reimplemented in C.
  sweep <kind>.<spacing>[.karras]: timesteps and sigmas for every step count of STEP_COUNTS,
      concatenated: sweep.<id>.timesteps, sweep.<id>.sigmas
  schedule.<beta_schedule>[.zsnr]: alphas_cumprod of the training schedule (1000)
rng.safetensors (f32), metadata "rng" (JSON):
  randn.<seed>.<n>: torch.manual_seed(seed); torch.randn(n) (n <= 1024 whole; larger:
      .head (first 512) and .tail (last 512), and an FNV-1a 64 hash of all bytes in metadata)
  randn_scalar.<seed>.<n>: the same under ATEN_CPU_CAPABILITY=default (torch's non-AVX2 path)
  seq.<seed>: one generator, randn of each size in SEQ_SIZES in turn, concatenated
  default.<n>: torch.Generator() never seeded (seed 67280421310721)
  randn16.<float16|bfloat16>.<seed>.<n>: torch.randn(n, dtype=...) (values widened to f32,
      exactly); randn16_scalar.* the same under ATEN_CPU_CAPABILITY=default
"""
import importlib.metadata as md
import json
import os
import platform
import subprocess
import sys

import numpy as np
import torch
from safetensors.numpy import save_file

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "sched")

SD15 = {  # runwayml / stable-diffusion-v1-5 scheduler/scheduler_config.json (PNDM)
    "beta_end": 0.012, "beta_schedule": "scaled_linear", "beta_start": 0.00085,
    "num_train_timesteps": 1000, "set_alpha_to_one": False, "skip_prk_steps": True,
    "steps_offset": 1, "trained_betas": None, "clip_sample": False,
}
SDXL = {  # stable-diffusion-xl-base-1.0 scheduler/scheduler_config.json (Euler)
    "beta_end": 0.012, "beta_schedule": "scaled_linear", "beta_start": 0.00085,
    "clip_sample": False, "interpolation_type": "linear", "num_train_timesteps": 1000,
    "prediction_type": "epsilon", "sample_max_value": 1.0, "set_alpha_to_one": False,
    "skip_prk_steps": True, "steps_offset": 1, "timestep_spacing": "leading",
    "trained_betas": None, "use_karras_sigmas": False,
}
SD21 = dict(SD15, prediction_type="v_prediction")

CLASSES = {"ddim": "DDIMScheduler", "euler": "EulerDiscreteScheduler",
           "euler_a": "EulerAncestralDiscreteScheduler", "dpmpp_2m": "DPMSolverMultistepScheduler"}


def case(name, kind, config, steps, g=7.5, rescale=0.0, eta=0.0, seed=0, tol=1e-5):
    return dict(name=name, kind=kind, config=config, steps=steps, guidance=g, rescale=rescale,
                eta=eta, seed=seed, tol=tol)


CASES = [
    case("ddim_sd15", "ddim", SD15, 10),
    case("ddim_v_trailing_zsnr", "ddim", dict(SD21, timestep_spacing="trailing",
                                              rescale_betas_zero_snr=True), 8, g=5.0, rescale=0.7),
    case("ddim_eta", "ddim", SD15, 6, g=6.0, eta=0.6, seed=3),
    case("ddim_linspace", "ddim", dict(SD15, timestep_spacing="linspace"), 7),
    case("ddim_cos_sample", "ddim", {"beta_schedule": "squaredcos_cap_v2", "prediction_type": "sample",
                                     "clip_sample": False}, 5, g=3.0),
    case("euler_sdxl", "euler", SDXL, 10, g=5.0),
    case("euler_sd15_linspace", "euler", SD15, 7),
    case("euler_v_trailing", "euler", dict(SD21, timestep_spacing="trailing"), 6, rescale=0.5),
    case("euler_karras", "euler", dict(SDXL, use_karras_sigmas=True), 9, seed=11),
    case("euler_karras_bounds_v", "euler", dict(SD21, use_karras_sigmas=True, sigma_min=0.1,
                                                sigma_max=10.0), 5),
    case("euler_log_linear", "euler", dict(SDXL, interpolation_type="log_linear"), 6),
    # zero terminal SNR starts at sigma 4096: diffusers' f32 step x + (x - x0) / sigma * dt
    # cancels 1000-fold (sigma_1 / sigma_0 ~ 1e-3), leaving ~3e-5 relative rounding noise in
    # its own result, which the later steps carry; hence the looser tolerance of this case
    case("euler_zsnr_v", "euler", dict(SD21, timestep_spacing="trailing", rescale_betas_zero_snr=True), 6,
         rescale=0.7, tol=1e-4),
    case("euler_final_sigma_min", "euler", dict(SDXL, final_sigmas_type="sigma_min"), 5),
    case("euler_a_sdxl", "euler_a", SDXL, 10, g=5.0, seed=7),
    case("euler_a_sd15_v", "euler_a", SD21, 7, rescale=0.7, seed=8),
    case("dpm_sd15", "dpmpp_2m", SD15, 10),
    case("dpm_sdxl_karras", "dpmpp_2m", dict(SDXL, use_karras_sigmas=True), 12, g=5.0),
    case("dpm_v_karras_20", "dpmpp_2m", dict(SD21, use_karras_sigmas=True), 20, rescale=0.7),
    case("dpm_sigma_min_20", "dpmpp_2m", dict(SDXL, final_sigmas_type="sigma_min"), 20),
    case("dpm_heun", "dpmpp_2m", dict(SD15, solver_type="heun"), 8),
    case("dpm_order1", "dpmpp_2m", dict(SD15, solver_order=1), 6),
    case("dpm_trailing_euler_final", "dpmpp_2m", dict(SD15, timestep_spacing="trailing",
                                                      euler_at_final=True,
                                                      final_sigmas_type="sigma_min"), 16),
    case("dpm_linear", "dpmpp_2m", {}, 10),
    case("dpm_cos_clipped", "dpmpp_2m", {"beta_schedule": "squaredcos_cap_v2",
                                         "lambda_min_clipped": -5.1}, 9),
]
SHAPE = (2, 4, 4, 4)
STEP_COUNTS = list(range(1, 41)) + [50, 100, 250]
SWEEPS = [  # (kind, base config, extra)
    (k, cfg, dict(timestep_spacing=sp, **extra))
    for k, cfg, extras in [("ddim", SD15, [{}]), ("euler", SDXL, [{}, {"use_karras_sigmas": True}]),
                           ("euler_a", SDXL, [{}]), ("dpmpp_2m", SD15, [{}, {"use_karras_sigmas": True}])]
    for extra in extras for sp in ["leading", "trailing", "linspace"]
]
RNG_SEEDS = [0, 1, 42, 123456789, 2**32 + 5, 2**63 + 11]
RNG_SIZES = [1, 3, 15, 16, 17, 31, 100, 1000, 4 * 64 * 64, 4 * 128 * 128]
SEQ_SIZES = [3, 5, 20, 2, 256, 7, 1, 16, 4 * 8 * 8, 9]


def scheduler(kind, config):
    import diffusers
    cls = getattr(diffusers, CLASSES[kind])
    return cls.from_config(dict(config))


def fake_unet(x, t):
    """(B, ...) -> (uncond, cond): smooth, timestep-dependent, different per half."""
    tt = float(t) / 1000.0
    pat = torch.linspace(-1.0, 1.0, x[0].numel()).reshape(x.shape[1:])
    uncond = torch.tanh(0.9 * x + 0.3 * tt * pat) * 0.8 + 0.05 * pat
    cond = torch.tanh(0.7 * x - 0.2 * tt + 0.4 * pat) * 0.9 - 0.1 * pat * tt
    return uncond, cond


def run_case(c, out, meta):
    from diffusers.pipelines.stable_diffusion.pipeline_stable_diffusion import rescale_noise_cfg
    s = scheduler(c["kind"], c["config"])
    s.set_timesteps(c["steps"])
    gen = torch.Generator().manual_seed(c["seed"])
    latents = torch.randn(SHAPE, generator=gen, dtype=torch.float32) * s.init_noise_sigma
    n = c["name"]
    out[n + ".latents0"] = latents.numpy().copy()
    xs, us, cs, ls = [], [], [], []
    for t in s.timesteps:
        x_in = s.scale_model_input(latents, t)
        uncond, cond = fake_unet(x_in, t)
        eps = uncond + c["guidance"] * (cond - uncond)
        if c["rescale"] > 0:
            eps = rescale_noise_cfg(eps, cond, guidance_rescale=c["rescale"])
        kw = {"generator": gen}
        if c["kind"] == "ddim":
            kw["eta"] = c["eta"]
        latents = s.step(eps, t, latents, **kw).prev_sample
        xs.append(x_in.numpy().copy())
        us.append(uncond.numpy())
        cs.append(cond.numpy())
        ls.append(latents.numpy().copy())
    if c["kind"] in ("euler", "euler_a"):  # ddim and dpmpp_2m feed the sample itself
        out[n + ".x_in"] = np.stack(xs)
    out[n + ".uncond"] = np.stack(us)
    out[n + ".cond"] = np.stack(cs)
    out[n + ".latents"] = np.stack(ls)
    out[n + ".timesteps"] = s.timesteps.numpy().astype(np.float32)
    if hasattr(s, "sigmas") and c["kind"] != "ddim":
        out[n + ".sigmas"] = s.sigmas.numpy().astype(np.float32)
    out[n + ".init_noise_sigma"] = np.array([float(s.init_noise_sigma)], np.float32)
    m = dict(c)
    m["config"] = {k: v for k, v in c["config"].items()}
    m["shape"] = list(SHAPE)
    m["num_steps"] = len(s.timesteps)
    meta.append(m)


def run_sweeps(out, meta):
    for kind, base, extra in SWEEPS:
        cfg = dict(base, **extra)
        sid = f"{kind}.{extra['timestep_spacing']}" + (".karras" if extra.get("use_karras_sigmas") else "")
        ts, sg, counts = [], [], []
        for n in STEP_COUNTS:
            s = scheduler(kind, cfg)
            s.set_timesteps(n)
            t = s.timesteps.numpy().astype(np.float64)
            if t.min() < 0 or t.max() > 999:
                continue  # diffusers would index out of range: storyrun refuses these
            ts.append(t.astype(np.float32))
            counts.append([n, len(t)])
            if kind != "ddim":
                sg.append(s.sigmas.numpy().astype(np.float32))
        out[f"sweep.{sid}.timesteps"] = np.concatenate(ts)
        if sg:
            out[f"sweep.{sid}.sigmas"] = np.concatenate(sg)
        meta.append({"id": sid, "kind": kind, "config": cfg, "counts": counts})


def schedules(out):
    for bs in ["linear", "scaled_linear", "squaredcos_cap_v2"]:
        cfg = {"beta_schedule": bs, "beta_start": 0.00085, "beta_end": 0.012}
        out[f"schedule.{bs}"] = scheduler("ddim", cfg).alphas_cumprod.numpy()
        out[f"schedule.{bs}.zsnr"] = scheduler("euler", dict(cfg, rescale_betas_zero_snr=True)) \
            .alphas_cumprod.numpy()


def fnv1a64(b):
    h = 0xcbf29ce484222325
    for byte in b:
        h = ((h ^ byte) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return h


RNG_CHILD = r"""
import sys, json, numpy as np, torch
seeds, sizes, path = json.loads(sys.argv[1]), json.loads(sys.argv[2]), sys.argv[3]
out = {}
for s in seeds:
    for n in sizes:
        for name, dt in [("float32", torch.float32), ("float16", torch.float16), ("bfloat16", torch.bfloat16)]:
            torch.manual_seed(s)
            out[f"{name}.{s}.{n}"] = torch.randn(n, dtype=dt).float().numpy()
np.savez(path, **out)
"""
HALF_SIZES = [1, 3, 15, 16, 17, 100, 1000, 4 * 64 * 64]


def rng(out, meta):
    hashes = {}

    def put(key, a):
        if a.size <= 1024:
            out[key] = a
        else:
            out[key + ".head"] = a[:512].copy()
            out[key + ".tail"] = a[-512:].copy()
            hashes[key] = "%016x" % fnv1a64(a.astype("<f4").tobytes())

    for s in RNG_SEEDS:
        for n in RNG_SIZES:
            g = torch.Generator().manual_seed(s)
            assert g.initial_seed() == s
            put(f"randn.{s}.{n}", torch.randn(n, generator=g).numpy())
        g = torch.Generator().manual_seed(s)
        out[f"seq.{s}"] = np.concatenate([torch.randn(n, generator=g).numpy() for n in SEQ_SIZES])
    for name, dt in [("float16", torch.float16), ("bfloat16", torch.bfloat16)]:
        for s in RNG_SEEDS[:3]:
            for n in HALF_SIZES:
                g = torch.Generator().manual_seed(s)
                put(f"randn16.{name}.{s}.{n}", torch.randn(n, generator=g, dtype=dt).float().numpy())
    g = torch.Generator()
    out["default.100"] = torch.randn(100, generator=g).numpy()
    meta["default_seed"] = str(g.initial_seed())
    # torch's DEFAULT CPU capability: only in a fresh process
    scalar_seeds, scalar_sizes = RNG_SEEDS[:3], [16, 17, 100, 1000, 4 * 64 * 64]
    tmp = os.path.join(OUT, "_scalar.npz")
    env = dict(os.environ, ATEN_CPU_CAPABILITY="default")
    subprocess.run([sys.executable, "-c", RNG_CHILD, json.dumps(scalar_seeds), json.dumps(scalar_sizes), tmp],
                   env=env, check=True)
    with np.load(tmp) as z:
        for k in z.files:
            name, s, n = k.split(".")
            put(f"randn_scalar.{s}.{n}" if name == "float32" else f"randn16_scalar.{name}.{s}.{n}", z[k])
    os.remove(tmp)
    meta.update(seeds=[str(s) for s in RNG_SEEDS], sizes=RNG_SIZES, seq_sizes=SEQ_SIZES,
                scalar_seeds=[str(s) for s in scalar_seeds], scalar_sizes=scalar_sizes, fnv1a64=hashes,
                half_seeds=[str(s) for s in RNG_SEEDS[:3]], half_sizes=HALF_SIZES,
                cpu_capability=torch.backends.cpu.get_cpu_capability())


def main():
    torch.set_num_threads(1)
    os.makedirs(OUT, exist_ok=True)
    versions = {"torch": torch.__version__, "diffusers": md.version("diffusers"), "numpy": np.__version__,
                "python": platform.python_version()}
    out, cases, sweeps = {}, [], []
    for c in CASES:
        run_case(c, out, cases)
    run_sweeps(out, sweeps)
    schedules(out)
    save_file({k: np.ascontiguousarray(v, dtype=np.float32) for k, v in out.items()},
              os.path.join(OUT, "sched.safetensors"),
              metadata={"cases": json.dumps(cases), "sweeps": json.dumps(sweeps),
                        "versions": json.dumps(versions)})
    rout, rmeta = {}, {}
    rng(rout, rmeta)
    save_file({k: np.ascontiguousarray(v, dtype=np.float32) for k, v in rout.items()},
              os.path.join(OUT, "rng.safetensors"),
              metadata={"rng": json.dumps(rmeta), "versions": json.dumps(versions)})
    with open(os.path.join(OUT, "VERSIONS.md"), "w") as f:
        f.write("# Versions used for tests/golden/sched\n\n"
                "Written by `tests/golden/make_sched_golden.py` (do not edit by hand; rerun it).\n"
                f"torch CPU capability: {torch.backends.cpu.get_cpu_capability()} "
                "(the randn_scalar goldens ran under ATEN_CPU_CAPABILITY=default).\n\n"
                "| package | version |\n|---|---|\n")
        for k, v in versions.items():
            f.write(f"| {k} | {v} |\n")
        f.write(f"\n{len(CASES)} loop cases, {len(SWEEPS)} timestep sweeps "
                f"({len(STEP_COUNTS)} step counts each).\n")
    print("wrote", OUT)


if __name__ == "__main__":
    main()

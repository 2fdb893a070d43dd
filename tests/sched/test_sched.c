// tests/sched/test_sched.c: the samplers (models/scheduler*.c) against diffusers
// (tests/golden/make_sched_golden.py wrote tests/golden/sched/sched.safetensors).
//
//   test_sched schedule GOLDEN_DIR    training schedules; timesteps and sigmas of every
//                                     kind x spacing (x Karras) for 43 step counts
//   test_sched loop GOLDEN_DIR [--device|--cuda]
//                                     whole denoising loops as StableDiffusionPipeline
//                                     runs them (CFG, guidance rescale, the generator's
//                                     latents and ancestral noise) with a stand-in UNet
//                                     whose outputs the golden file holds; --device keeps
//                                     the latents in device memory (test_sched_emu: the
//                                     CUDA emulation runtime); --cuda on a real GPU (exit
//                                     77 without one)
//   test_sched config SD15 SDXL       configs from models (scheduler_config.json) and the
//                                     messages for bad configs and arguments
//
// Tolerances, and why:
//   timesteps: identical, except Euler's Karras timesteps (float, from log-interpolating
//     the Karras sigmas): |diff| <= 1e-3. numpy's float32 log and float64 pow/log (SIMD,
//     not correctly rounded) can differ from libm's by an ulp, which moves t by ~1e-4;
//     the UNet's timestep embedding does not see such a difference.
//   sigmas, init_noise_sigma: relative 1e-6 (the same f32 values up to an ulp, 6e-8).
//   alphas_cumprod: relative 1e-6, bit-identical in practice (the count is printed); with
//     rescale_betas_zero_snr 1e-5: torch's f32 sqrt (MKL) is not correctly rounded (1 ulp
//     off on ~20% of inputs) and the rescale subtracts sqrt(alphas_cumprod[-1]) from every
//     value, which cancels near the end of the schedule and magnifies that ulp to ~4e-6.
//   latents after each step, UNet inputs: max abs error <= 1e-5 * max(1, max |ref|). Each
//     step is the same linear map of f32 tensors, applied with coefficients computed in
//     double instead of torch's chain of f32 ops: a few roundings of 6e-8 per step,
//     amplified by at most ~1/sqrt(alpha_cumprod) ~ 15 in DDIM's first steps, give ~1e-6
//     after 20 steps; a wrong coefficient, sign or step index moves values by >= 1e-3.
//     One case (euler_zsnr_v, Euler from sigma 4096) gets 1e-4: diffusers' own f32 first
//     step cancels 1000-fold there (make_sched_golden.py says more).
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cuda_runtime_api.h"
#include "kernels/ops.h"
#include "models/rng.h"
#include "models/safetensors.h"
#include "models/scheduler.h"
#include "runner/json.h"

#define TOL_LATENTS 1e-5
#define TOL_SIGMA 1e-6
#define TOL_KARRAS_T 1e-3
#define TOL_ZSNR_AC 1e-5

static int g_checks, g_fail;
static SafeTensors g_st;

static void die(const char *what, const char *msg) {
    fprintf(stderr, "test_sched: %s: %s\n", what, msg);
    exit(1);
}

static float *golden(const char *name, int64_t *n) {
    const SafeTensorsEntry *e = st_find(&g_st, name);
    if (!e) die(name, "not in sched.safetensors (rerun tests/golden/make_sched_golden.py)");
    float *v = malloc((size_t)e->numel * sizeof *v);
    if (!v || st_load_f32(e, v)) die(name, "cannot read");
    if (n) *n = e->numel;
    return v;
}

static int has(const char *name) { return st_find(&g_st, name) != NULL; }

static void fail_line(const char *fmt, const char *a, double b, double c) {
    printf("  FAIL ");
    printf(fmt, a, b, c);
    printf("\n");
}

// |got - want| <= tol * (relative ? max(1, |want|) per value : 1); quiet when fine.
static int compare(const char *what, const float *got, const float *want, int64_t n, double tol,
                   int mode) {
    double worst = 0, mx = 0;
    int64_t at = 0;
    for (int64_t i = 0; i < n; i++) mx = fabs(want[i]) > mx ? fabs(want[i]) : mx;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - want[i]);
        double lim = mode == 2 ? tol * fabs(want[i]) : mode == 1 ? tol * (mx > 1 ? mx : 1) : tol;
        double r = lim > 0 ? d / lim : (d > 0 ? INFINITY : 0);
        if (!(r <= worst)) worst = r, at = i;
    }
    g_checks++;
    if (worst <= 1) return 1;
    g_fail++;
    printf("  FAIL %s: error %.3g x the limit at %lld: got %.9g want %.9g (tol %.1g)\n", what,
           worst, (long long)at, got[at], want[at], tol);
    return 0;
}

static JsonDoc *meta_json(const char *key) {
    const char *text = st_meta(&g_st, key);
    if (!text) die(key, "missing from sched.safetensors' metadata");
    JsonError je;
    JsonDoc *d = json_parse(key, text, strlen(text), NULL, &je);
    if (!d) die(key, je.msg);
    return d;
}

static void open_golden(const char *dir) {
    char path[4096], err[512];
    snprintf(path, sizeof path, "%s/sched.safetensors", dir);
    if (st_open(&g_st, path, err, sizeof err)) die(path, err);
}

static SchedKind kind_of(const char *name) {
    SchedKind k;
    if (sched_kind_parse(name, &k, NULL)) die(name, "unknown kind");
    return k;
}

static void init_from_json(Scheduler *s, SchedKind kind, const JsonDoc *doc, const JsonValue *cfgv,
                           int steps, const char *what) {
    SchedConfig cfg;
    char err[512];
    sched_config_unset(&cfg);
    if (sched_config_from_json(&cfg, doc, cfgv, err, sizeof err)) die(what, err);
    if (sched_init(s, kind, &cfg, steps, err, sizeof err)) die(what, err);
}

// ---- schedule ---------------------------------------------------------------------------

static void run_schedule(const char *dir) {
    open_golden(dir);
    // training schedules
    static const char *const bs[] = {"linear", "scaled_linear", "squaredcos_cap_v2"};
    for (int b = 0; b < 3; b++)
        for (int z = 0; z < 2; z++) {
            char key[96], json[256], err[256];
            snprintf(key, sizeof key, "schedule.%s%s", bs[b], z ? ".zsnr" : "");
            snprintf(json, sizeof json,
                     "{\"beta_schedule\": \"%s\", \"beta_start\": 0.00085, \"beta_end\": 0.012, "
                     "\"rescale_betas_zero_snr\": %s}",
                     bs[b], z ? "true" : "false");
            JsonError je;
            JsonDoc *doc = json_parse(key, json, strlen(json), NULL, &je);
            Scheduler s;
            init_from_json(&s, z ? SCHED_EULER : SCHED_DDIM, doc, json_root(doc), 10, key);
            int64_t n;
            float *want = golden(key, &n);
            if (n != s.num_train) die(key, "length");
            int exact = 0;
            for (int64_t i = 0; i < n; i++) exact += s.alphas_cumprod[i] == want[i];
            compare(key, s.alphas_cumprod, want, n, z ? TOL_ZSNR_AC : TOL_SIGMA, 2);
            printf("  %-40s alphas_cumprod: %d of %lld bit-identical\n", key, exact, (long long)n);
            (void)err;
            sched_free(&s);
            free(want);
            json_free(doc);
        }

    JsonDoc *doc = meta_json("sweeps");
    const JsonValue *sweeps = json_root(doc);
    for (size_t w = 0; w < json_count(sweeps); w++) {
        const JsonValue *sw = json_at(sweeps, w);
        const char *id = json_get(sw, "id")->str;
        SchedKind kind = kind_of(json_get(sw, "kind")->str);
        const JsonValue *counts = json_get(sw, "counts");
        char key[160];
        snprintf(key, sizeof key, "sweep.%s.timesteps", id);
        int64_t nt, ns = 0;
        float *wt = golden(key, &nt), *wsg = NULL;
        snprintf(key, sizeof key, "sweep.%s.sigmas", id);
        if (has(key)) wsg = golden(key, &ns);
        int karras_t = kind == SCHED_EULER && strstr(id, "karras");
        int64_t ot = 0, os = 0;
        int ok_before = g_fail;
        double worst_t = 0;
        for (size_t c = 0; c < json_count(counts); c++) {
            int steps = (int)json_at(json_at(counts, c), 0)->i,
                len = (int)json_at(json_at(counts, c), 1)->i;
            char what[200];
            snprintf(what, sizeof what, "sweep %s, %d steps", id, steps);
            Scheduler s;
            init_from_json(&s, kind, doc, json_get(sw, "config"), steps, what);
            g_checks++;
            if (s.num_steps != len || ot + len > nt) {
                g_fail++;
                fail_line("%s: %g timesteps, diffusers %g", what, s.num_steps, len);
                sched_free(&s);
                break;
            }
            for (int i = 0; i < len; i++) {
                double d = fabs((double)s.timesteps[i] - wt[ot + i]);
                worst_t = d > worst_t ? d : worst_t;
                if (karras_t ? !(d <= TOL_KARRAS_T) : d != 0) {
                    g_fail++;
                    fail_line("%s: timestep %g, diffusers %g", what, s.timesteps[i], wt[ot + i]);
                    break;
                }
            }
            ot += len;
            if (wsg) {
                if (os + s.num_sigmas > ns) die(key, "fewer sigmas than steps");
                strcat(what, ": sigmas");
                compare(what, s.sigmas, wsg + os, s.num_sigmas, TOL_SIGMA, 2);
                os += s.num_sigmas;
            }
            sched_free(&s);
        }
        printf("  %-4s sweep %-26s %zu step counts%s", g_fail == ok_before ? "ok" : "FAIL", id,
               json_count(counts), karras_t ? "" : ", timesteps identical");
        if (karras_t) printf(", timesteps max |diff| %.3g", worst_t);
        printf("\n");
        free(wt);
        free(wsg);
    }
    json_free(doc);
}

// ---- loops ------------------------------------------------------------------------------

// A (host or device) tensor holding `count` floats of a golden at offset off.
static void upload(Tensor *t, const float *src) {
    if (t->dev == DEV_CPU)
        memcpy(t->data, src, tensor_nbytes(t));
    else
        story_cuda_memcpy(t->data, src, tensor_nbytes(t), 0);
}

static void download(float *dst, const Tensor *t) {
    if (t->dev == DEV_CPU)
        memcpy(dst, t->data, tensor_nbytes(t));
    else
        story_cuda_memcpy(dst, t->data, tensor_nbytes(t), 1);
}

static void run_case(const JsonDoc *doc, const JsonValue *c, Device dev) {
    const char *name = json_get(c, "name")->str;
    SchedKind kind = kind_of(json_get(c, "kind")->str);
    int steps = (int)json_get(c, "steps")->i;
    double g = json_get(c, "guidance")->d, rescale = json_get(c, "rescale")->d,
           eta = json_get(c, "eta")->d;
    const JsonValue *tv = json_get(c, "tol");  // a case's own tolerance (see the golden script)
    double tol = tv && tv->type == JSON_NUMBER ? tv->d : TOL_LATENTS;
    uint64_t seed = (uint64_t)json_get(c, "seed")->i;
    const JsonValue *shp = json_get(c, "shape");
    int64_t shape[4];
    for (int d = 0; d < 4; d++) shape[d] = json_at(shp, d)->i;
    int fails = g_fail;
    char what[256];

    Scheduler s;
    init_from_json(&s, kind, doc, json_get(c, "config"), steps, name);
    s.eta = (float)eta;
    char key[160];
    int64_t n;
    snprintf(key, sizeof key, "%s.timesteps", name);
    float *wt = golden(key, &n);
    g_checks++;
    if (n != s.num_steps) {
        g_fail++;
        fail_line("%s: %g steps, diffusers %g", name, s.num_steps, (double)n);
        sched_free(&s);
        free(wt);
        return;
    }
    snprintf(what, sizeof what, "%s: timesteps", name);
    compare(what, s.timesteps, wt, n,
            kind == SCHED_EULER && strstr(name, "karras") ? TOL_KARRAS_T : 0, 0);
    free(wt);
    snprintf(key, sizeof key, "%s.sigmas", name);
    if (has(key)) {
        float *ws = golden(key, &n);
        snprintf(what, sizeof what, "%s: sigmas", name);
        if (n != s.num_sigmas) die(what, "count differs");
        compare(what, s.sigmas, ws, n, TOL_SIGMA, 2);
        free(ws);
    }
    snprintf(key, sizeof key, "%s.init_noise_sigma", name);
    float *wi = golden(key, &n);
    snprintf(what, sizeof what, "%s: init_noise_sigma", name);
    compare(what, &s.init_noise_sigma, wi, 1, TOL_SIGMA, 2);
    free(wi);

    Arena arena, ws;
    if (arena_init(&arena, dev, 1 << 20) || arena_init(&ws, dev, 1 << 20)) die(name, "no memory");
    Tensor lat = arena_tensor(&arena, DT_F32, 4, shape);
    Tensor x_in = arena_tensor(&arena, DT_F32, 4, shape);
    Tensor un = arena_tensor(&arena, DT_F32, 4, shape), co = arena_tensor(&arena, DT_F32, 4, shape);
    Tensor eps = arena_tensor(&arena, DT_F32, 4, shape),
           noise = arena_tensor(&arena, DT_F32, 4, shape);
    sched_state_alloc(&s, &arena, &lat);
    int64_t per = tensor_numel(&lat);
    float *host = malloc((size_t)per * sizeof(float));

    TorchRng gen;
    rng_torch_seed(&gen, seed);
    if (rng_torch_randn_tensor(&gen, &lat)) die(name, "randn");
    sched_scale_noise(&s, &lat, &lat);
    snprintf(key, sizeof key, "%s.latents0", name);
    float *w0 = golden(key, &n);
    download(host, &lat);
    snprintf(what, sizeof what, "%s: initial latents", name);
    compare(what, host, w0, per, tol, 1);
    free(w0);

    // the UNet's inputs: stored for the Euler kinds; the others feed the sample itself
    snprintf(key, sizeof key, "%s.x_in", name);
    float *wx = has(key) ? golden(key, &n) : NULL;
    float *wprev = golden((snprintf(key, sizeof key, "%s.latents0", name), key), &n);
    float *wu = golden((snprintf(key, sizeof key, "%s.uncond", name), key), &n);
    float *wc = golden((snprintf(key, sizeof key, "%s.cond", name), key), &n);
    float *wl = golden((snprintf(key, sizeof key, "%s.latents", name), key), &n);
    if (n != per * s.num_steps) die(name, "golden loop size");
    double worst = 0;
    for (int i = 0; i < s.num_steps; i++) {
        sched_scale_model_input(&s, i, &x_in, &lat);
        download(host, &x_in);
        snprintf(what, sizeof what, "%s: step %d UNet input", name, i);
        compare(what, host, wx ? wx + i * per : i ? wl + (i - 1) * per : wprev, per, tol, 1);
        upload(&un, wu + i * per);
        upload(&co, wc + i * per);
        sched_cfg(&eps, &un, &co, (float)g, (float)rescale);
        if (sched_needs_noise(&s) && rng_torch_randn_tensor(&gen, &noise)) die(name, "randn");
        sched_step(&s, i, &eps, &lat, &noise, &lat, &ws);
        download(host, &lat);
        snprintf(what, sizeof what, "%s: latents after step %d", name, i);
        compare(what, host, wl + i * per, per, tol, 1);
        double mx = 1;
        for (int64_t k = 0; k < per; k++)
            mx = fabs(wl[i * per + k]) > mx ? fabs(wl[i * per + k]) : mx;
        for (int64_t k = 0; k < per; k++) {
            double e = fabs((double)host[k] - wl[i * per + k]) / mx;
            worst = e > worst ? e : worst;
        }
    }
    printf("  %-4s %-26s %-8s %2d steps, latents max err %.2g x max(1, |ref|)\n",
           g_fail == fails ? "ok" : "FAIL", name, sched_kind_name(kind), s.num_steps, worst);
    free(wx), free(wprev), free(wu), free(wc), free(wl), free(host);
    arena_free(&ws);
    arena_free(&arena);
    sched_free(&s);
}

static void run_loops(const char *dir, Device dev) {
    open_golden(dir);
    JsonDoc *doc = meta_json("cases");
    for (size_t i = 0; i < json_count(json_root(doc)); i++)
        run_case(doc, json_at(json_root(doc), i), dev);
    json_free(doc);
}

// ---- configs from models, errors ---------------------------------------------------------

static void expect_error(const char *what, int rc, const char *err, const char *needle) {
    g_checks++;
    if (rc == 0 || !strstr(err, needle)) {
        g_fail++;
        printf("  FAIL %s: rc %d, message \"%s\" (expected one with \"%s\")\n", what, rc, err,
               needle);
    } else {
        printf("  ok   %-34s %s\n", what, err);
    }
}

static int config_text(const char *text, SchedConfig *c, char *err, size_t errlen) {
    JsonError je;
    JsonDoc *doc = json_parse("scheduler_config.json", text, strlen(text), NULL, &je);
    if (!doc) die(text, je.msg);
    sched_config_unset(c);
    int rc = sched_config_from_json(c, doc, json_root(doc), err, errlen);
    json_free(doc);
    return rc;
}

static void run_config(const char *sd15, const char *sdxl) {
    char err[512];
    // the tiny models' own configs (PNDM for SD1.5, Euler for SDXL), read through weights.h
    const char *paths[2] = {sd15, sdxl};
    for (int m = 0; m < 2; m++) {
        Weights *w;
        if (weights_open(&w, paths[m], err, sizeof err)) die(paths[m], err);
        SchedConfig c;
        if (sched_config_from_weights(&c, w, err, sizeof err)) die(paths[m], err);
        Scheduler s;
        if (sched_init(&s, m ? SCHED_EULER : SCHED_DDIM, &c, 10, err, sizeof err))
            die(paths[m], err);
        // leading spacing with steps_offset 1 (both configs say so): 901, 801, ..., 1
        int ok = s.num_steps == 10 && s.timesteps[0] == 901 && s.timesteps[9] == 1 &&
                 fabsf(s.alphas_cumprod[999] - 0.00466009509f) < 1e-9f;
        if (m) ok &= fabsf(s.init_noise_sigma - 8.4501f) < 1e-4f;  // sqrt(sigma(901)^2 + 1)
        g_checks++;
        if (!ok) g_fail++;
        printf("  %-4s %s: %s config -> %s, t %g..%g, init_noise_sigma %g\n", ok ? "ok" : "FAIL",
               paths[m], m ? "SDXL" : "SD1.5", sched_kind_name(s.kind), s.timesteps[0],
               s.timesteps[9], s.init_noise_sigma);
        sched_free(&s);
        if (m) {  // 1000 leading steps: t = 999 + 1 = 1000, clamped to the last sigma (as
                  // diffusers)
            if (sched_init(&s, SCHED_EULER, &c, 1000, err, sizeof err)) die(paths[m], err);
            ok = s.timesteps[0] == 1000 && s.timesteps[999] == 1 && s.sigmas[0] == s.sigmas[1] &&
                 fabsf(s.sigmas[0] - 14.6146f) < 1e-4f;
            g_checks++;
            if (!ok) g_fail++;
            printf("  %-4s euler, 1000 leading steps: t %g, %g; sigma %g, %g\n", ok ? "ok" : "FAIL",
                   s.timesteps[0], s.timesteps[1], s.sigmas[0], s.sigmas[1]);
            sched_free(&s);
        }
        weights_close(w);
    }
    // family defaults (single files without a config): SD1.5 + Euler spaces "linspace"
    SchedConfig c;
    sched_config_family(&c, FAMILY_SD1);
    Scheduler s;
    if (sched_init(&s, SCHED_EULER, &c, 4, err, sizeof err)) die("family", err);
    g_checks++;
    if (s.timesteps[0] != 999 || s.timesteps[3] != 0) g_fail++;
    printf("  %-4s SD1.x family config, euler 4 steps: t %g %g %g %g\n",
           s.timesteps[0] == 999 && s.timesteps[3] == 0 ? "ok" : "FAIL", s.timesteps[0],
           s.timesteps[1], s.timesteps[2], s.timesteps[3]);
    sched_free(&s);

    expect_error("bad prediction_type",
                 config_text("{\"prediction_type\": \"flow\"}", &c, err, sizeof err), err,
                 "line 1, column 21");
    expect_error("bad spacing type",
                 config_text("{\n \"timestep_spacing\": 3}", &c, err, sizeof err), err, "line 2");
    expect_error("thresholding", config_text("{\"thresholding\": true}", &c, err, sizeof err), err,
                 "thresholding");
    expect_error("trained_betas",
                 config_text("{\"trained_betas\": [0.1, 0.2]}", &c, err, sizeof err), err,
                 "trained_betas");
    expect_error("solver_order 3", config_text("{\"solver_order\": 3}", &c, err, sizeof err), err,
                 "solver_order");
    expect_error("algorithm_type",
                 config_text("{\"algorithm_type\": \"sde-dpmsolver++\"}", &c, err, sizeof err), err,
                 "dpmsolver++");
    g_checks++;
    if (config_text(
            "{\"sigma_min\": null, \"trained_betas\": null, \"_class_name\": \"X\", \"foo\": 1}",
            &c, err, sizeof err)) {
        g_fail++;
        printf("  FAIL nulls and unknown keys: %s\n", err);
    }
    sched_config_unset(&c);
    expect_error("0 steps", sched_init(&s, SCHED_DDIM, &c, 0, err, sizeof err), err, "0 steps");
    expect_error("1001 steps", sched_init(&s, SCHED_EULER, &c, 1001, err, sizeof err), err,
                 "1001 steps");
    c.steps_offset = 1;  // leading, 1000 steps: t = 999 + 1 is past the schedule
    expect_error("timestep past the end", sched_init(&s, SCHED_DDIM, &c, 1000, err, sizeof err),
                 err, "outside the training range");
    SchedKind k;
    int karras;
    g_checks++;
    if (sched_kind_parse("lms", &k, &karras) == 0 ||
        sched_kind_parse("dpmpp_2m_karras", &k, &karras) || k != SCHED_DPMPP_2M || !karras ||
        sched_kind_from_class("EulerAncestralDiscreteScheduler") != SCHED_EULER_A ||
        sched_kind_from_class("PNDMScheduler") != -1)
        g_fail++, printf("  FAIL kind names\n");
}

int main(int argc, char **argv) {
    cpu_set_threads(1);
    const char *mode = argc > 1 ? argv[1] : "";
    if (!strcmp(mode, "schedule") && argc == 3) {
        run_schedule(argv[2]);
    } else if (!strcmp(mode, "loop") &&
               (argc == 3 || (argc == 4 && !strcmp(argv[3], "--device")))) {
        run_loops(argv[2], argc == 4 ? DEV_CUDA : DEV_CPU);
    } else if (!strcmp(mode, "loop") && argc == 4 && !strcmp(argv[3], "--cuda")) {
        if (!cuda_available()) {
            printf("sched loop: skipped: no CUDA device\n");
            return 77;
        }
        run_loops(argv[2], DEV_CUDA);
    } else if (!strcmp(mode, "config") && argc == 4) {
        run_config(argv[2], argv[3]);
    } else {
        fprintf(
            stderr,
            "usage: test_sched schedule GOLDEN_DIR | test_sched loop GOLDEN_DIR [--device|--cuda]\n"
            "       test_sched config SD15 SDXL\n");
        return 2;
    }
    st_close(&g_st);
    printf("sched %s: %d checks, %d failure(s)\n", mode, g_checks, g_fail);
    return g_fail ? 1 : 0;
}

// tests/vae/test_vae_golden.c: the VAE (models/vae.c, models/vae_tiled.c) against diffusers'
// AutoencoderKL (tests/golden/make_vae_golden.py wrote tests/golden/vae/golden.safetensors).
//
//   test_vae_golden [--chunked] GOLDEN_DIR NAME=MODEL...   CPU, f32, every case of each model
//   test_vae_golden --cuda GOLDEN_DIR NAME=MODEL...        CUDA f32 and f16 (exit 77 without
//                                                         a device)
//   test_vae_golden --layouts GOLDEN_DIR NAME=A=B...       two layouts of one model decode
//                                                         bit-identically
// NAME is the goldens' prefix (sd15, sdxl, f8), MODEL a diffusers folder or a single file.
// --chunked runs the mid-block attention as CUDA does (blocks of queries through matmul +
// softmax), with a score budget small enough that several blocks occur.
// Cases per model: decode (device level and host image), encode (mean, clamped logvar),
// sampling with the golden noise, an odd-sized encode (the asymmetric pad), latent
// scaling both ways, tiled decode and tiled encode (diffusers' enable_tiling() with small
// tiles), plus: the scratch arena never exceeds what vae_*_scratch_bytes promised, the
// tiled scratch does not grow with the image, and bad inputs give messages.
//
// Tolerance, CPU f32: max abs error <= 1e-4 * max(1, max |reference|). Both sides compute
// in f32 with the same formulas; they differ in summation order (Winograd vs direct
// convolution, blocked GEMMs) and exp approximations, ~1e-6 relative per op; through ~20
// layers of width <= 32 that stays near 1e-5. A wrong weight, pad side, blend weight or
// tile offset moves values by 1e-2 and more. Latent scaling: 1e-6 (one multiply-add).
// Tolerance, CUDA: f32 2e-3 * scale (cuBLAS may use TF32-free but differently blocked
// sums, and the attention's order differs); f16 3e-2 * scale (10-bit mantissa through the
// residual stream).
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cuda_runtime_api.h"
#include "kernels/ops.h"
#include "models/safetensors.h"
#include "models/vae.h"
#include "models/vae_impl.h"
#include "models/weights.h"
#include "runner/json.h"

static int g_checks, g_fail;
static SafeTensors g_st;
static char g_err[2048];
static double g_tol = 1e-4;

static void die(const char *what, const char *msg) {
    fprintf(stderr, "test_vae_golden: %s: %s\n", what, msg);
    exit(1);
}

static const SafeTensorsEntry *entry(const char *name) {
    const SafeTensorsEntry *e = st_find(&g_st, name);
    if (!e) die(name, "not in golden.safetensors (rerun tests/golden/make_vae_golden.py)");
    return e;
}

static float *golden(const char *name) {
    const SafeTensorsEntry *e = entry(name);
    float *v = malloc((size_t)e->numel * sizeof *v);
    if (!v || st_load_f32(e, v)) die(name, "cannot read");
    return v;
}

// A host f32 tensor holding golden `name` (data malloc'd).
static Tensor golden_tensor(const char *name) {
    const SafeTensorsEntry *e = entry(name);
    Tensor t = tensor_view(golden(name), DT_F32, DEV_CPU, e->ndim, e->shape);
    return t;
}

static Tensor host_zeros(const Tensor *like) {
    Tensor t = tensor_view(calloc((size_t)tensor_numel(like), sizeof(float)), DT_F32, DEV_CPU,
                           like->ndim, like->shape);
    return t;
}

static void check(int ok, const char *fmt, const char *what) {
    g_checks++;
    if (!ok) g_fail++;
    printf("  %-4s ", ok ? "ok" : "FAIL");
    printf(fmt, what);
    printf("\n");
}

// max |got - want| <= tol * max(1, max |want|), got a tensor anywhere, want golden `name`.
static void compare(const char *what, const Tensor *got, const char *name, double tol) {
    const SafeTensorsEntry *e = entry(name);
    g_checks++;
    if (tensor_numel(got) != e->numel) {
        g_fail++;
        printf("  FAIL %-40s %lld values, golden %s has %lld\n", what, (long long)tensor_numel(got),
               name, (long long)e->numel);
        return;
    }
    float *want = golden(name), *have = malloc((size_t)e->numel * sizeof *have);
    tensor_to_host_f32(got, have);
    double err = 0, mx = 0;
    int64_t at = 0;
    for (int64_t i = 0; i < e->numel; i++) {
        double d = fabs((double)have[i] - want[i]);
        if (!(d <= err)) err = d, at = i;  // NaN counts as the worst
        if (fabs(want[i]) > mx) mx = fabs(want[i]);
    }
    double lim = tol * (mx > 1 ? mx : 1);
    int ok = err <= lim;
    if (!ok) g_fail++;
    printf("  %-4s %-40s max abs err %.3g (limit %.3g, max |ref| %.3g)\n", ok ? "ok" : "FAIL", what,
           err, lim, mx);
    if (!ok)
        printf("       worst at %lld: got %.7g want %.7g\n", (long long)at, have[at], want[at]);
    free(want);
    free(have);
}

// A device-level copy of host tensor h (model dtype and device), from arena a.
static Tensor to_model(const Vae *m, Arena *a, const Tensor *h) {
    Tensor t = arena_tensor(a, m->dtype, h->ndim, h->shape);
    tensor_from_host_f32(&t, h->data);
    return t;
}

// ws's peak during one case must stay within what the scratch function promised.
static size_t g_base;
static void case_begin(Arena *ws) {
    g_base = ws->used;
    ws->peak = ws->used;
}
static void case_end(Arena *ws, const char *what, size_t promised) {
    char msg[200];
    size_t used = ws->peak - g_base;
    snprintf(msg, sizeof msg, "%s: scratch %.2f MiB <= promised %.2f MiB", what, used / 1048576.0,
             promised / 1048576.0);
    check(used <= promised, "%s", msg);
}

// The tiling the golden script set for model `name` (metadata "golden": {"tiling": {name: ...}}).
static VaeTiling tiling_of(const char *name) {
    const char *text = st_meta(&g_st, "golden");
    if (!text) die("golden", "missing from golden.safetensors' metadata");
    JsonError je;
    JsonDoc *d = json_parse("golden metadata", text, strlen(text), NULL, &je);
    if (!d) die("golden metadata", je.msg);
    const JsonValue *r = json_get(json_get(json_root(d), "tiling"), name);
    const JsonValue *ts = json_get(r, "tile_sample_min_size"),
                    *tl = json_get(r, "tile_latent_min_size"),
                    *ov = json_get(r, "tile_overlap_factor");
    if (!ts || !tl || !ov) die(name, "no tiling in the golden metadata");
    VaeTiling t = {(int)ts->d, (int)tl->d, ov->d};
    json_free(d);
    return t;
}

typedef struct {
    Weights *w;
    Vae m;
    Arena weights, ws, io;
} Model;

static void model_open(Model *md, const char *path, Device dev, DType dt) {
    memset(md, 0, sizeof *md);
    if (weights_open(&md->w, path, g_err, sizeof g_err)) die(path, g_err);
    VaeConfig cfg;
    if (vae_config(&cfg, md->w, g_err, sizeof g_err)) die(path, g_err);
    size_t wb = vae_weight_bytes(&cfg, VAE_BOTH, dt);
    if (arena_init(&md->weights, dev, wb)) die(path, "no memory for the weights");
    if (vae_load(&md->m, md->w, VAE_BOTH, &md->weights, dt, g_err, sizeof g_err)) die(path, g_err);
    if (md->weights.used > wb) die(path, "vae_weight_bytes is too small");
    if (arena_init(&md->ws, dev, (size_t)64 << 20) || arena_init(&md->io, dev, (size_t)16 << 20))
        die(path, "no memory for activations");
}

static void model_close(Model *md) {
    vae_free(&md->m);
    arena_free(&md->weights);
    arena_free(&md->ws);
    arena_free(&md->io);
    weights_close(md->w);
}

static void run_cases(const char *name, const char *path, Device dev, DType dt, double tol) {
    Model md;
    model_open(&md, path, dev, dt);
    const Vae *m = &md.m;
    const int f = vae_scale_factor(&m->cfg);
    char n[128], what[160];
    printf("%s (%s, %s %s, f = %d, scaling_factor %g, shift %g):\n", name, path,
           dev == DEV_CPU ? "cpu" : "cuda", dtype_name(dt), f, m->cfg.scaling_factor,
           m->cfg.shift_factor);
#define G(suffix) (snprintf(n, sizeof n, "%s.%s", name, suffix), n)
#define W(fmt) (snprintf(what, sizeof what, fmt, dtype_name(dt)), what)

    // decode, device level
    Tensor zh = golden_tensor(G("decode.z"));
    const int B = (int)zh.shape[0], h = (int)zh.shape[2], w = (int)zh.shape[3];
    size_t mark = arena_mark(&md.io);
    Tensor z = to_model(m, &md.io, &zh);
    Tensor out =
        ARENA_TENSOR(&md.io, m->dtype, B, m->cfg.out_channels, (int64_t)h * f, (int64_t)w * f);
    case_begin(&md.ws);
    if (vae_decode(m, &z, &out, &md.ws, g_err, sizeof g_err)) die(name, g_err);
    case_end(&md.ws, "decode", vae_decode_scratch_bytes(m, B, h, w));
    compare(W("decode (vae_decode, %s)"), &out, G("decode.out"), tol);
    Tensor img = host_zeros(&out);
    if (vae_decode_image(m, &zh, &img, NULL, &md.ws, g_err, sizeof g_err)) die(name, g_err);
    compare("decode (vae_decode_image, host)", &img, G("decode.out"), tol);
    free(img.data);
    arena_release(&md.io, mark);

    // encode + sample
    Tensor xh = golden_tensor(G("encode.x"));
    const int H = (int)xh.shape[2], Wd = (int)xh.shape[3], hl = vae_latent_size(&m->cfg, H),
              wl = vae_latent_size(&m->cfg, Wd), lat = m->cfg.latent_channels;
    Tensor x = to_model(m, &md.io, &xh);
    Tensor mean = ARENA_TENSOR(&md.io, m->dtype, B, lat, hl, wl),
           logvar = ARENA_TENSOR(&md.io, m->dtype, B, lat, hl, wl);
    case_begin(&md.ws);
    if (vae_encode(m, &x, &mean, &logvar, &md.ws, g_err, sizeof g_err)) die(name, g_err);
    case_end(&md.ws, "encode", vae_encode_scratch_bytes(m, B, H, Wd));
    compare("encode: mean", &mean, G("encode.mean"), tol);
    compare("encode: logvar (clamped)", &logvar, G("encode.logvar"), tol);
    Tensor noise = golden_tensor(G("encode.noise"));
    Tensor smp = host_zeros(&noise);
    vae_sample(&smp, &mean, &logvar, &noise);
    compare("sample: mean + exp(logvar / 2) * noise", &smp, G("encode.sample"), tol);
    free(noise.data);
    free(smp.data);
    arena_release(&md.io, mark);
    free(xh.data);

    // odd sizes: the (0, 1, 0, 1) pad of every downsampling
    xh = golden_tensor(G("encode_odd.x"));
    Tensor gm = golden_tensor(G("encode_odd.mean"));
    Tensor om = host_zeros(&gm), ol = host_zeros(&gm);
    if (vae_encode_image(m, &xh, &om, &ol, NULL, &md.ws, g_err, sizeof g_err)) die(name, g_err);
    snprintf(what, sizeof what, "encode %lldx%lld: mean", (long long)xh.shape[3],
             (long long)xh.shape[2]);
    compare(what, &om, G("encode_odd.mean"), tol);
    compare("encode odd: logvar", &ol, G("encode_odd.logvar"), tol);
    free(om.data), free(ol.data), free(gm.data), free(xh.data);

    // latent scaling, in place on the model's device
    Tensor lh = golden_tensor(G("unscale.in"));
    Tensor l = to_model(m, &md.io, &lh);
    vae_latents_unscale(m, &l);
    compare("latents / scaling_factor + shift_factor", &l, G("unscale.out"),
            dt == DT_F32 ? 1e-6 : tol);
    vae_latents_scale(m, &l);
    compare("... and back (vae_latents_scale)", &l, G("unscale.in"), dt == DT_F32 ? 1e-6 : tol);
    free(lh.data);
    arena_release(&md.io, mark);

    // tiled decode and encode, tiles as the golden script set them
    VaeTiling t = tiling_of(name);
    if (vae_tiling_check(m, &t, g_err, sizeof g_err)) die(name, g_err);
    Tensor tz = golden_tensor(G("tiled_decode.z"));
    const int th = (int)tz.shape[2], tw = (int)tz.shape[3];
    Tensor timg = tensor_view(NULL, DT_F32, DEV_CPU, 4,
                              SHAPE(1, m->cfg.out_channels, (int64_t)th * f, (int64_t)tw * f));
    timg = host_zeros(&timg);
    size_t promised = vae_image_scratch_bytes(m, &t, th, tw);
    case_begin(&md.ws);
    if (vae_decode_image(m, &tz, &timg, &t, &md.ws, g_err, sizeof g_err)) die(name, g_err);
    case_end(&md.ws, "tiled decode", promised);
    snprintf(what, sizeof what, "tiled decode %dx%d, tiles of %d", tw * f, th * f,
             t.tile_sample_min_size);
    compare(what, &timg, G("tiled_decode.out"), tol);
    snprintf(what, sizeof what, "tiled scratch %.2f MiB for %dx%d latents, the same for %dx%d",
             promised / 1048576.0, tw, th, 8 * tw, 8 * th);
    check(vae_image_scratch_bytes(m, &t, 8 * th, 8 * tw) == promised, "%s", what);
    free(tz.data), free(timg.data);

    Tensor tx = golden_tensor(G("tiled_encode.x"));
    gm = golden_tensor(G("tiled_encode.mean"));
    om = host_zeros(&gm), ol = host_zeros(&gm);
    check(vae_image_latent_size(m, &t, (int)tx.shape[2]) == gm.shape[2] &&
              vae_image_latent_size(m, &t, (int)tx.shape[3]) == gm.shape[3],
          "%s", "tiled encode: latent size as diffusers'");
    promised = vae_image_scratch_bytes(m, &t, (int)gm.shape[2], (int)gm.shape[3]);
    case_begin(&md.ws);
    if (vae_encode_image(m, &tx, &om, &ol, &t, &md.ws, g_err, sizeof g_err)) die(name, g_err);
    case_end(&md.ws, "tiled encode", promised);
    snprintf(what, sizeof what, "tiled encode %lldx%lld: mean", (long long)tx.shape[3],
             (long long)tx.shape[2]);
    compare(what, &om, G("tiled_encode.mean"), tol);
    compare("tiled encode: logvar", &ol, G("tiled_encode.logvar"), tol);
    free(om.data), free(ol.data), free(gm.data), free(tx.data);

    // bad input: messages, not crashes
    Tensor bad = ARENA_TENSOR(&md.io, m->dtype, 1, lat + 1, 4, 4),
           bo = ARENA_TENSOR(&md.io, m->dtype, 1, 3, 4 * f, 4 * f);
    g_err[0] = 0;
    check(vae_decode(m, &bad, &bo, &md.ws, g_err, sizeof g_err) == -1 && strstr(g_err, "z is"),
          "%s", "decode of a latent with the wrong channel count is refused");
    Tensor tiny = ARENA_TENSOR(&md.io, m->dtype, 1, 3, 1, 1);
    g_err[0] = 0;
    int too_small = f > 1 && vae_encode(m, &tiny, NULL, NULL, &md.ws, g_err, sizeof g_err) == -1 &&
                    strstr(g_err, "too small");
    check(f == 1 || too_small, "%s", "encode of a 1x1 image is refused (too small)");
    VaeTiling odd = t;
    odd.tile_sample_min_size += 1;
    check(vae_tiling_check(m, &odd, g_err, sizeof g_err) == -1, "%s",
          "inconsistent tile sizes are refused");
    arena_release(&md.io, mark);
    free(zh.data);
#undef G
#undef W
    model_close(&md);
}

static void run_layouts(const char *name, const char *a, const char *b) {
    char n[128];
    snprintf(n, sizeof n, "%s.decode.z", name);
    Tensor zh = golden_tensor(n);
    Model ma, mb;
    model_open(&ma, a, DEV_CPU, DT_F32);
    model_open(&mb, b, DEV_CPU, DT_F32);
    const int f = vae_scale_factor(&ma.m.cfg);
    Tensor oa =
        tensor_view(NULL, DT_F32, DEV_CPU, 4,
                    SHAPE(zh.shape[0], ma.m.cfg.out_channels, zh.shape[2] * f, zh.shape[3] * f));
    oa = host_zeros(&oa);
    Tensor ob = host_zeros(&oa);
    if (vae_decode_image(&ma.m, &zh, &oa, NULL, &ma.ws, g_err, sizeof g_err) ||
        vae_decode_image(&mb.m, &zh, &ob, NULL, &mb.ws, g_err, sizeof g_err))
        die(name, g_err);
    char what[600];
    snprintf(what, sizeof what, "%s: %s and %s decode bit-identically", name, a, b);
    check(!memcmp(oa.data, ob.data, tensor_nbytes(&oa)), "%s", what);
    free(oa.data), free(ob.data), free(zh.data);
    model_close(&ma);
    model_close(&mb);
}

static void open_golden(const char *dir) {
    char p[1024];
    snprintf(p, sizeof p, "%s/golden.safetensors", dir);
    if (st_open(&g_st, p, g_err, sizeof g_err)) die(p, g_err);
}

int main(int argc, char **argv) {
    cpu_set_threads(2);
    const char *mode = "golden";
    if (argc > 1 && !strncmp(argv[1], "--", 2)) mode = argv[1] + 2, argv++, argc--;
    if (argc < 3) {
        fprintf(stderr,
                "usage: test_vae_golden [--chunked | --cuda] GOLDEN_DIR NAME=MODEL...\n"
                "       test_vae_golden --layouts GOLDEN_DIR NAME=MODEL_A=MODEL_B...\n");
        return 2;
    }
    if (!strcmp(mode, "cuda") && !cuda_available()) {
        printf("vae_golden cuda: skipped: no CUDA device\n");
        return 77;
    }
    if (!strcmp(mode, "chunked")) {
        vae_attn_chunked = 1;
        vae_attn_score_bytes = 4096;  // a few dozen query rows per block at these sizes
    }
    open_golden(argv[1]);
    for (int i = 2; i < argc; i++) {
        char spec[1024];
        snprintf(spec, sizeof spec, "%s", argv[i]);
        char *a = strchr(spec, '='), *b = a ? strchr(a + 1, '=') : NULL;
        if (!a) die(argv[i], "expected NAME=MODEL");
        *a++ = 0;
        if (!strcmp(mode, "layouts")) {
            if (!b) die(argv[i], "expected NAME=MODEL_A=MODEL_B");
            *b++ = 0;
            run_layouts(spec, a, b);
        } else if (!strcmp(mode, "cuda")) {
            g_tol = 2e-3;
            run_cases(spec, a, DEV_CUDA, DT_F32, 2e-3);
            run_cases(spec, a, DEV_CUDA, DT_F16, 3e-2);
        } else {
            run_cases(spec, a, DEV_CPU, DT_F32, g_tol);
        }
    }
    st_close(&g_st);
    printf("vae_golden %s: %d checks, %d failure(s)\n", mode, g_checks, g_fail);
    return g_fail ? 1 : 0;
}

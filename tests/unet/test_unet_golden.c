// tests/unet/test_unet_golden.c: the UNet (models/unet*.c) against diffusers'
// UNet2DConditionModel on the tiny models of tests/golden/models, with the goldens of
// tests/golden/unet (make_unet_golden.py).
//
//   test_unet_golden golden  GOLDEN_DIR SD15 SDXL      every case (FreeU ones included)
//   test_unet_golden layouts GOLDEN_DIR SD15_A SD15_B SDXL_A SDXL_B
//                                                      both layouts: bit-identical outputs
//   test_unet_golden seam    GOLDEN_DIR SD15 SDXL      the self-attention hook
//   test_unet_golden scratch GOLDEN_DIR SD15 SDXL      unet_scratch_bytes is the real peak
//   test_unet_golden fourier GOLDEN_DIR                unet_fourier_filter vs diffusers'
//   test_unet_golden config                            configs storyrun cannot run are refused
//   test_unet_golden cuda    GOLDEN_DIR SD15 SDXL      CUDA, f16 and bf16, against the same
//                                                      goldens (exit 77 without a device)
// SD15 / SDXL: a diffusers folder or a single-file checkpoint.
//
// Tolerance (f32 on the CPU): max abs error <= 1e-4 * max(1, max |reference|). Both sides
// compute the same formulas in f32 and differ only in summation order (GEMM blocking,
// Winograd vs direct convolution, online vs plain softmax) and exp/erf approximations:
// relative errors of ~1e-6 per op that the group norms keep from growing; over the ~40
// ops on the longest path of these tiny UNets the observed error is ~1e-6 of an output of
// magnitude ~2. A real defect (a wrong skip, head split, norm, or FreeU half) moves the
// output by 1e-2 and more (FreeU alone moves it by ~1). Fourier filter: 1e-5 (one filter).
// CUDA: max abs error <= TOL * max(1, max |reference|) with TOL 3e-2 for f16 (10-bit
// mantissa, rounding at every op over ~40 ops) and 1.5e-1 for bf16 (7-bit), as for CLIP.
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cuda_runtime_api.h"
#include "kernels/ops.h"
#include "models/safetensors.h"
#include "models/unet.h"
#include "models/unet_internal.h"
#include "models/weights.h"
#include "runner/json.h"

#define TOL 1e-4

static int g_checks, g_fail;
static SafeTensors g_st;
static char g_err[2048];

static void die(const char *what, const char *msg) {
    fprintf(stderr, "test_unet_golden: %s: %s\n", what, msg);
    exit(1);
}

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static void
check(int ok, const char *fmt, ...) {
    g_checks++;
    if (!ok) g_fail++;
    printf("  %-4s ", ok ? "ok" : "FAIL");
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
}

static const SafeTensorsEntry *gentry(const char *name) {
    const SafeTensorsEntry *e = st_find(&g_st, name);
    if (!e) die(name, "not in golden.safetensors (rerun tests/golden/make_unet_golden.py)");
    return e;
}

static float *golden(const char *name, int64_t *n) {
    const SafeTensorsEntry *e = gentry(name);
    float *v = malloc((size_t)e->numel * sizeof *v);
    if (!v || st_load_f32(e, v)) die(name, "cannot read");
    if (n) *n = e->numel;
    return v;
}

// max |got - want| <= tol * max(1, max |want|).
static double compare(const char *what, const float *got, const float *want, int64_t n,
                      double tol) {
    double err = 0, mx = 0;
    int64_t at = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - want[i]);
        if (!(d <= err)) err = d, at = i;  // NaN counts as the worst
        if (fabs(want[i]) > mx) mx = fabs(want[i]);
    }
    double lim = tol * (mx > 1 ? mx : 1);
    g_checks++;
    int ok = err <= lim;
    if (!ok) g_fail++;
    printf("  %-4s %-40s max abs err %.3g (limit %.3g, max |ref| %.3g)\n", ok ? "ok" : "FAIL", what,
           err, lim, mx);
    if (!ok) printf("       worst at %lld: got %.7g want %.7g\n", (long long)at, got[at], want[at]);
    return err;
}

// ---- models and cases -----------------------------------------------------------------------

typedef struct {
    const char *path;
    Weights *w;      // a model (diffusers folder or single file), or
    SafeTensors st;  // a bare diffusers unet folder (tests/golden/unet/tiny_sd2_unet)
    Unet u;
    Arena weights;
} Model;

static int st_source(void *ctx, const char *name, int ndim, const int64_t *shape, Arena *arena,
                     DType dt, Tensor *out, char *err, size_t errlen) {
    const SafeTensorsEntry *e = st_find(ctx, name);
    int ok = e && e->ndim == ndim;
    for (int i = 0; ok && i < ndim; i++) ok = e->shape[i] == shape[i];
    if (!ok) return snprintf(err, errlen, "%s: missing or of another shape", name), -1;
    *out = arena_tensor(arena, dt, ndim, shape);
    return st_load_as(e, dt, out->data) ? (snprintf(err, errlen, "%s: cannot read", name), -1) : 0;
}

// A unet folder alone: config.json + diffusion_pytorch_model.safetensors.
static void model_open_folder(Model *m, const char *dir) {
    memset(m, 0, sizeof *m);
    m->path = dir;
    char path[1024];
    snprintf(path, sizeof path, "%s/diffusion_pytorch_model.safetensors", dir);
    if (st_open(&m->st, path, g_err, sizeof g_err)) die(path, g_err);
    snprintf(path, sizeof path, "%s/config.json", dir);
    JsonError je;
    JsonDoc *doc = json_parse_file(path, NULL, &je);
    if (!doc) die(path, je.msg);
    UnetConfig cfg;
    if (unet_config_parse(&cfg, doc, g_err, sizeof g_err)) die(path, g_err);
    json_free(doc);
    if (arena_init(&m->weights, DEV_CPU, unet_weight_bytes(&cfg, DT_F32))) die(path, "no memory");
    if (unet_load_source(&m->u, &cfg, st_source, &m->st, &m->weights, DT_F32, g_err, sizeof g_err))
        die(path, g_err);
}

static void model_open(Model *m, const char *path) {
    memset(m, 0, sizeof *m);
    m->path = path;
    if (weights_open(&m->w, path, g_err, sizeof g_err)) die(path, g_err);
    UnetConfig cfg;
    if (unet_config(&cfg, m->w, g_err, sizeof g_err)) die(path, g_err);
    if (arena_init(&m->weights, DEV_CPU, unet_weight_bytes(&cfg, DT_F32))) die(path, "no memory");
    if (unet_load(&m->u, m->w, &m->weights, DT_F32, g_err, sizeof g_err)) die(path, g_err);
    if (m->weights.used > m->weights.cap) die(path, "unet_weight_bytes too small");
}

static void model_close(Model *m) {
    unet_free(&m->u);
    arena_free(&m->weights);
    if (m->w) weights_close(m->w);
    st_close(&m->st);
}

// A case's inputs as host tensors (views on golden arrays).
typedef struct {
    char name[64], model[32];
    int has_freeu;
    UnetFreeU freeu;
    float *sample, *t, *ctx, *text_embeds, *time_ids;
    Tensor ts, tc, tt;
    int64_t B, H, W, L;
} Case;

static void case_load(Case *c, const JsonValue *v) {
    memset(c, 0, sizeof *c);
    snprintf(c->name, sizeof c->name, "%s", json_get(v, "name")->str);
    snprintf(c->model, sizeof c->model, "%s", json_get(v, "model")->str);
    const JsonValue *f = json_get(v, "freeu");
    if (f && f->type == JSON_ARRAY) {
        c->has_freeu = 1;
        c->freeu = (UnetFreeU){(float)json_at(f, 0)->d, (float)json_at(f, 1)->d,
                               (float)json_at(f, 2)->d, (float)json_at(f, 3)->d};
    }
    char k[128];
    snprintf(k, sizeof k, "%s.sample", c->name);
    const SafeTensorsEntry *e = gentry(k);
    c->B = e->shape[0], c->H = e->shape[2], c->W = e->shape[3];
    c->sample = golden(k, NULL);
    c->ts = tensor_view(c->sample, DT_F32, DEV_CPU, 4, e->shape);
    snprintf(k, sizeof k, "%s.timesteps", c->name);
    c->t = golden(k, NULL);
    snprintf(k, sizeof k, "%s.context", c->name);
    e = gentry(k);
    c->L = e->shape[1];
    c->ctx = golden(k, NULL);
    c->tc = tensor_view(c->ctx, DT_F32, DEV_CPU, 3, e->shape);
    snprintf(k, sizeof k, "%s.text_embeds", c->name);
    if (st_find(&g_st, k)) {
        e = gentry(k);
        c->text_embeds = golden(k, NULL);
        c->tt = tensor_view(c->text_embeds, DT_F32, DEV_CPU, 2, e->shape);
        snprintf(k, sizeof k, "%s.time_ids", c->name);
        c->time_ids = golden(k, NULL);
    }
}

static void case_free(Case *c) {
    free(c->sample), free(c->t), free(c->ctx), free(c->text_embeds), free(c->time_ids);
}

static UnetInputs case_inputs(const Case *c) {
    UnetInputs in = {0};
    in.sample = &c->ts;
    in.timesteps = c->t;
    in.encoder_hidden_states = &c->tc;
    in.text_embeds = c->text_embeds ? &c->tt : NULL;
    in.time_ids = c->time_ids;
    in.freeu = c->has_freeu ? &c->freeu : NULL;
    return in;
}

// Runs the case on m with the given inputs (hook etc. set by the caller); a malloc'd output.
static float *run(const Model *m, const Case *c, const UnetInputs *in, size_t *peak) {
    const int64_t n = c->B * m->u.cfg.out_channels * c->H * c->W;
    float *y = malloc((size_t)n * sizeof *y);
    Tensor out = tensor_view(y, DT_F32, DEV_CPU, 4, SHAPE(c->B, m->u.cfg.out_channels, c->H, c->W));
    Arena ws;
    if (arena_init(&ws, DEV_CPU,
                   unet_scratch_bytes(&m->u, (int)c->B, (int)c->H, (int)c->W, (int)c->L)))
        die(c->name, "no memory for the scratch arena");
    if (unet_forward(&m->u, in, &out, &ws, g_err, sizeof g_err)) die(c->name, g_err);
    if (peak) *peak = ws.peak;
    arena_free(&ws);
    return y;
}

static JsonDoc *g_meta;
static const char *g_dir;

static const JsonValue *cases(void) {
    const char *text = st_meta(&g_st, "cases");
    if (!text) die("cases", "missing from golden.safetensors' metadata");
    JsonError je;
    g_meta = json_parse("cases", text, strlen(text), NULL, &je);
    if (!g_meta) die("cases", je.msg);
    return json_root(g_meta);
}

static void open_golden(const char *dir) {
    char path[1024];
    g_dir = dir;
    snprintf(path, sizeof path, "%s/golden.safetensors", dir);
    if (st_open(&g_st, path, g_err, sizeof g_err)) die(path, g_err);
}

// ---- modes ------------------------------------------------------------------------------------

// Inputs that do not fit the model are refused with a message, not a crash.
static void input_errors(const Model *m, const Case *c) {
    static float buf[2 * 77 * 64];
    float t[2] = {1, 1}, ids[12] = {0};
    Tensor odd = tensor_view(buf, DT_F32, DEV_CPU, 4, SHAPE(1, 4, 7, 8));
    Tensor ctx = tensor_view(buf, DT_F32, DEV_CPU, 3, SHAPE(1, 77, m->u.cfg.cross_dim[0] + 1));
    Tensor out = tensor_view(buf, DT_F32, DEV_CPU, 4, SHAPE(1, 4, 8, 8));
    UnetInputs in = case_inputs(c);
    in.sample = &odd, in.timesteps = t, in.time_ids = ids;
    int rc = unet_forward(&m->u, &in, &out, NULL, g_err, sizeof g_err);
    check(rc < 0 && strstr(g_err, "must be multiples of"), "%-40s 7 x 8 latent refused: %s",
          c->name, g_err);
    in = case_inputs(c);
    in.encoder_hidden_states = &ctx;
    rc = unet_forward(&m->u, &in, &out, NULL, g_err, sizeof g_err);
    check(rc < 0 && strstr(g_err, "encoder_hidden_states"), "%-40s wrong context refused: %s",
          c->name, g_err);
    if (m->u.cfg.addition_time_embed_dim) {
        in = case_inputs(c);
        in.text_embeds = NULL;
        out = tensor_view(buf, DT_F32, DEV_CPU, 4, SHAPE(c->B, 4, c->H, c->W));
        rc = unet_forward(&m->u, &in, &out, NULL, g_err, sizeof g_err);
        check(rc < 0 && strstr(g_err, "text_embeds"), "%-40s missing text_embeds refused: %s",
              c->name, g_err);
    }
}

// The model a case names: tiny_sd15 -> m[0], tiny_sdxl -> m[1], tiny_sd2 -> m[2].
static const Model *case_model(const Model *m, const Case *c) {
    return strstr(c->model, "sdxl") ? &m[1] : strstr(c->model, "sd2") ? &m[2] : &m[0];
}

static void mode_golden(const char *sd15, const char *sdxl) {
    Model m[3];
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/tiny_sd2_unet", g_dir);
    model_open(&m[0], sd15);
    model_open(&m[1], sdxl);
    model_open_folder(&m[2], dir);
    const JsonValue *cs = cases();
    for (size_t i = 0; i < json_count(cs); i++) {
        Case c;
        case_load(&c, json_at(cs, i));
        const Model *md = case_model(m, &c);
        UnetInputs in = case_inputs(&c);
        float *y = run(md, &c, &in, NULL);
        char k[128], what[128];
        snprintf(k, sizeof k, "%s.noise_pred", c.name);
        int64_t n;
        float *want = golden(k, &n);
        snprintf(what, sizeof what, "%s noise_pred%s", c.name, c.has_freeu ? " (FreeU)" : "");
        compare(what, y, want, n, TOL);
        if (c.has_freeu) {  // the FreeU goldens must not pass without FreeU
            in.freeu = NULL;
            float *y0 = run(md, &c, &in, NULL);
            double d = 0;
            for (int64_t j = 0; j < n; j++) d = fmax(d, fabs((double)y0[j] - want[j]));
            check(d > 100 * TOL, "%-40s without FreeU differs by %.3g (> %.3g)", c.name, d,
                  100 * TOL);
            free(y0);
        }
        free(want), free(y);
        if (i == 0 || !strcmp(c.name, "sdxl_square") || !strcmp(c.name, "sd2_levels"))
            input_errors(md, &c);
        case_free(&c);
    }
    for (int i = 0; i < 3; i++) model_close(&m[i]);
}

static void mode_layouts(const char *const paths[4]) {
    const JsonValue *cs = cases();
    for (int p = 0; p < 2; p++) {
        Model a, b;
        model_open(&a, paths[2 * p]);
        model_open(&b, paths[2 * p + 1]);
        for (size_t i = 0; i < json_count(cs); i++) {
            Case c;
            case_load(&c, json_at(cs, i));
            if (!!strstr(c.model, "sdxl") != p || strstr(c.model, "sd2")) {
                case_free(&c);
                continue;
            }
            UnetInputs in = case_inputs(&c);
            float *ya = run(&a, &c, &in, NULL), *yb = run(&b, &c, &in, NULL);
            const int64_t n = tensor_numel(&c.ts) / a.u.cfg.in_channels * a.u.cfg.out_channels;
            check(!memcmp(ya, yb, (size_t)n * sizeof *ya),
                  "%-40s folder and single file bit-identical", c.name);
            free(ya), free(yb);
            case_free(&c);
        }
        model_close(&a);
        model_close(&b);
    }
}

// ---- the seam -----------------------------------------------------------------------------------

typedef struct {
    int mode;  // 0: record and call the default; 1: keys/values = {x, x}; 2: write zeros
    int calls, bad_order;
    UnetAttnSite sites[64];
} Probe;

static void probe_hook(void *ctx, const UnetAttnSite *site, Tensor *out, const Tensor *x,
                       const UnetAttention *attn, Arena *scratch) {
    Probe *p = ctx;
    if (site->layer != p->calls) p->bad_order++;
    if (p->calls < 64) p->sites[p->calls] = *site;
    p->calls++;
    if (x->shape[1] != (int64_t)site->height * site->width || out->shape[2] != x->shape[2])
        p->bad_order++;
    if (p->mode == 0) {
        unet_self_attn_default(NULL, site, out, x, attn, scratch);
    } else if (p->mode == 1) {
        const Tensor *kv[2] = {x, x};  // each key twice: the same softmax weights
        unet_attention(attn, out, x, kv, 2, scratch);
    } else {
        memset(out->data, 0, tensor_nbytes(out));
    }
}

static void mode_seam(const char *sd15, const char *sdxl) {
    const JsonValue *cs = cases();
    const char *paths[2] = {sd15, sdxl};
    const char *names[2] = {"sd15_wide", "sdxl_freeu"};
    for (int p = 0; p < 2; p++) {
        Model m;
        model_open(&m, paths[p]);
        Case c;
        for (size_t i = 0; i < json_count(cs); i++)
            if (!strcmp(json_get(json_at(cs, i), "name")->str, names[p]))
                case_load(&c, json_at(cs, i));
        UnetInputs in = case_inputs(&c);
        float *y0 = run(&m, &c, &in, NULL);
        const int64_t n = c.B * m.u.cfg.out_channels * c.H * c.W;
        const int layers = unet_self_attn_layers(&m.u);
        for (int mode = 0; mode < 3; mode++) {
            Probe pr = {0};
            pr.mode = mode;
            in.self_attn = probe_hook, in.self_attn_ctx = &pr, in.step = 7;
            float *y = run(&m, &c, &in, NULL);
            char what[96];
            snprintf(what, sizeof what, "%s mode %d: hook calls", c.name, mode);
            check(pr.calls == layers && pr.bad_order == 0,
                  "%-40s %d (layers %d, in order, L = H x W)", what, pr.calls, layers);
            double d = 0;
            for (int64_t j = 0; j < n; j++) d = fmax(d, fabs((double)y[j] - y0[j]));
            if (mode == 0) {
                int kinds = 1;  // sites: down blocks, then mid, then up; steps passed through
                for (int j = 0; j < pr.calls && j < 64; j++) {
                    const UnetAttnSite *s = &pr.sites[j];
                    kinds &= s->step == 7 && (j == 0 || s->kind >= pr.sites[j - 1].kind);
                }
                check(kinds && d == 0, "%-40s sites ordered, output identical (diff %.3g)", c.name,
                      d);
            } else if (mode == 1) {
                snprintf(what, sizeof what, "%s kv {x, x} == plain", c.name);
                check(d <= 1e-5, "%-40s max diff %.3g (limit %.3g)", what, d, 1e-5);
            } else {
                snprintf(what, sizeof what, "%s zero attn1 changes output", c.name);
                check(d > 1e-3, "%-40s max diff %.3g (> %.3g)", what, d, 1e-3);
            }
            free(y);
        }
        // SDXL's tiny UNet has an up block of depth 2: the transformer index must reach 1
        free(y0);
        case_free(&c);
        model_close(&m);
    }
}

static void mode_scratch(const char *sd15, const char *sdxl) {
    const JsonValue *cs = cases();
    Model m[3];
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/tiny_sd2_unet", g_dir);
    model_open(&m[0], sd15);
    model_open(&m[1], sdxl);
    model_open_folder(&m[2], dir);
    for (size_t i = 0; i < json_count(cs); i++) {
        Case c;
        case_load(&c, json_at(cs, i));
        const Model *md = case_model(m, &c);
        // An arena of exactly the dry run's activation peak (no room for the convolutions'
        // workspace, which then uses its own buffers): the forward must fit to the byte.
        const size_t need =
            unet_scratch_bytes(&md->u, (int)c.B, (int)c.H, (int)c.W, (int)c.L) - UNET_CONV_MARGIN;
        Arena ws;
        if (arena_init(&ws, DEV_CPU, need)) die(c.name, "no memory");
        const int64_t n = c.B * md->u.cfg.out_channels * c.H * c.W;
        float *y = malloc((size_t)n * sizeof *y);
        Tensor out =
            tensor_view(y, DT_F32, DEV_CPU, 4, SHAPE(c.B, md->u.cfg.out_channels, c.H, c.W));
        UnetInputs in = case_inputs(&c);
        if (unet_forward(&md->u, &in, &out, &ws, g_err, sizeof g_err)) die(c.name, g_err);
        check(ws.peak == need, "%-40s arena peak %zu == dry-run bytes %zu", c.name, ws.peak, need);
        free(y);
        arena_free(&ws);
        case_free(&c);
    }
    for (int i = 0; i < 3; i++) model_close(&m[i]);
}

static void mode_fourier(void) {
    const char *text = st_meta(&g_st, "fourier");
    if (!text) die("fourier", "missing from golden.safetensors' metadata");
    JsonError je;
    JsonDoc *d = json_parse("fourier", text, strlen(text), NULL, &je);
    if (!d) die("fourier", je.msg);
    for (size_t i = 0; i < json_count(json_root(d)); i++) {
        const JsonValue *v = json_at(json_root(d), i);
        char k[64], what[96];
        snprintf(k, sizeof k, "fourier.%zu.x", i);
        const SafeTensorsEntry *e = gentry(k);
        float *x = golden(k, NULL);
        snprintf(k, sizeof k, "fourier.%zu.y", i);
        int64_t n;
        float *y = golden(k, &n);
        Tensor t = tensor_view(x, DT_F32, DEV_CPU, 4, e->shape);
        const int th = (int)json_get(v, "threshold")->d;
        const float s = (float)json_get(v, "scale")->d;
        unet_fourier_filter(&t, th, s);
        snprintf(what, sizeof what, "fourier (%lld, %lld, %lld, %lld) t %d s %.1f",
                 (long long)e->shape[0], (long long)e->shape[1], (long long)e->shape[2],
                 (long long)e->shape[3], th, s);
        compare(what, x, y, n, 1e-5);
        free(x), free(y);
    }
    json_free(d);
}

// Configs storyrun cannot compute are refused, naming the key.
static void mode_config(void) {
    static const char *const bad[][2] = {
        {"{\"resnet_time_scale_shift\": \"scale_shift\"}", "resnet_time_scale_shift"},
        {"{\"down_block_types\": [\"SimpleCrossAttnDownBlock2D\", \"DownBlock2D\", "
         "\"DownBlock2D\", "
         "\"DownBlock2D\"]}",
         "down_block_types"},
        {"{\"class_embed_type\": \"timestep\"}", "class_embed_type"},
        {"{\"addition_embed_type\": \"text\"}", "addition_embed_type"},
        {"{\"addition_embed_type\": \"text_time\"}", "addition_time_embed_dim"},
        {"{\"attention_head_dim\": [8, 8]}", "attention_head_dim"},
        {"{\"block_out_channels\": [320, 640, 1280, 1000]}", "norm_num_groups"},
        {"{\"only_cross_attention\": [false, true, false, false]}", "only_cross_attention"},
        {"{\"mid_block_type\": \"UNetMidBlock2DSimpleCrossAttn\"}", "mid_block_type"},
        {"{\"cross_attention_dim\": [768, 768, 1024, 768]}", "cross_attention_dim"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        JsonError je;
        JsonDoc *d = json_parse("config.json", bad[i][0], strlen(bad[i][0]), NULL, &je);
        if (!d) die(bad[i][0], je.msg);
        UnetConfig cfg;
        g_err[0] = 0;
        int rc = unet_config_parse(&cfg, d, g_err, sizeof g_err);
        g_checks++;
        int ok = rc < 0 && strstr(g_err, bad[i][1]) && strstr(g_err, "config.json");
        if (!ok) g_fail++;
        printf("  %-4s %s -> %s\n", ok ? "ok" : "FAIL", bad[i][0], rc < 0 ? g_err : "accepted");
        json_free(d);
    }
    // The published architectures have exactly diffusers' parameter counts (sum of numel over
    // UNet2DConditionModel(**config).parameters(), diffusers 0.42.1): every tensor's shape is
    // derived as diffusers derives it. {} is diffusers' default (SD1.5 with a 1280 context).
    static const struct {
        const char *name, *json;
        int64_t params;
    } real[] = {
        {"default config", "{}", 872300484},
        {"SD1.5", "{\"cross_attention_dim\": 768}", 859520964},
        {"SD2.1",
         "{\"attention_head_dim\": [5, 10, 20, 20], \"cross_attention_dim\": 1024, "
         "\"use_linear_projection\": true, \"upcast_attention\": true}",
         865910724},
        {"SDXL base",
         "{\"addition_embed_type\": \"text_time\", \"addition_time_embed_dim\": 256, "
         "\"attention_head_dim\": [5, 10, 20], \"block_out_channels\": [320, 640, 1280], "
         "\"cross_attention_dim\": 2048, \"down_block_types\": [\"DownBlock2D\", "
         "\"CrossAttnDownBlock2D\", "
         "\"CrossAttnDownBlock2D\"], \"up_block_types\": [\"CrossAttnUpBlock2D\", "
         "\"CrossAttnUpBlock2D\", "
         "\"UpBlock2D\"], \"projection_class_embeddings_input_dim\": 2816, "
         "\"transformer_layers_per_block\": [1, 2, 10], \"use_linear_projection\": true}",
         2567463684},
    };
    for (size_t i = 0; i < sizeof real / sizeof real[0]; i++) {
        JsonError je;
        JsonDoc *d = json_parse("config.json", real[i].json, strlen(real[i].json), NULL, &je);
        if (!d) die(real[i].name, je.msg);
        UnetConfig cfg;
        int rc = unet_config_parse(&cfg, d, g_err, sizeof g_err);
        const int64_t np = rc ? 0 : unet_param_count(&cfg);
        check(rc == 0 && np == real[i].params, "%-40s %lld weights (diffusers: %lld)%s%s",
              real[i].name, (long long)np, (long long)real[i].params, rc ? ": " : "",
              rc ? g_err : "");
        json_free(d);
    }
}

// ---- CUDA -----------------------------------------------------------------------------------

// Host f32 values into a device tensor of dtype dt from arena a.
static Tensor upload(Arena *a, DType dt, const float *src, int ndim, const int64_t *shape) {
    Tensor t = arena_tensor(a, dt, ndim, shape);
    const int64_t n = tensor_numel(&t);
    void *h = malloc(tensor_nbytes(&t));
    for (int64_t i = 0; i < n; i++) {
        if (dt == DT_F32)
            ((float *)h)[i] = src[i];
        else
            ((uint16_t *)h)[i] = dt == DT_F16 ? f32_to_f16(src[i]) : f32_to_bf16(src[i]);
    }
    story_cuda_memcpy(t.data, h, tensor_nbytes(&t), 0);
    free(h);
    return t;
}

static float *download(const Tensor *t) {
    const int64_t n = tensor_numel(t);
    void *h = malloc(tensor_nbytes(t));
    float *f = malloc((size_t)n * sizeof *f);
    story_cuda_memcpy(h, t->data, tensor_nbytes(t), 1);
    for (int64_t i = 0; i < n; i++)
        f[i] = t->dtype == DT_F32   ? ((float *)h)[i]
               : t->dtype == DT_F16 ? f16_to_f32(((uint16_t *)h)[i])
                                    : bf16_to_f32(((uint16_t *)h)[i]);
    free(h);
    return f;
}

static void mode_cuda(const char *sd15, const char *sdxl) {
    const JsonValue *cs = cases();
    const char *paths[2] = {sd15, sdxl};
    const DType dts[2] = {DT_F16, DT_BF16};
    const double tols[2] = {3e-2, 1.5e-1};
    for (int d = 0; d < 2; d++)
        for (int p = 0; p < 2; p++) {
            Weights *w;
            UnetConfig cfg;
            Unet u;
            Arena wa, io;
            if (weights_open(&w, paths[p], g_err, sizeof g_err)) die(paths[p], g_err);
            if (unet_config(&cfg, w, g_err, sizeof g_err)) die(paths[p], g_err);
            if (arena_init(&wa, DEV_CUDA, unet_weight_bytes(&cfg, dts[d])) ||
                arena_init(&io, DEV_CUDA, (size_t)16 << 20))
                die(paths[p], "no device memory");
            if (unet_load(&u, w, &wa, dts[d], g_err, sizeof g_err)) die(paths[p], g_err);
            for (size_t i = 0; i < json_count(cs); i++) {
                Case c;
                case_load(&c, json_at(cs, i));
                if (!!strstr(c.model, "sdxl") != p || strstr(c.model, "sd2")) {
                    case_free(&c);
                    continue;
                }
                const size_t mark = arena_mark(&io);
                Tensor x = upload(&io, dts[d], c.sample, 4, c.ts.shape);
                Tensor ctx = upload(&io, dts[d], c.ctx, 3, c.tc.shape);
                Tensor te = c.text_embeds ? upload(&io, dts[d], c.text_embeds, 2, c.tt.shape) : x;
                Tensor y = arena_tensor(&io, dts[d], 4, SHAPE(c.B, cfg.out_channels, c.H, c.W));
                UnetInputs in = case_inputs(&c);
                in.sample = &x, in.encoder_hidden_states = &ctx;
                in.text_embeds = c.text_embeds ? &te : NULL;
                Arena ws;
                if (arena_init(&ws, DEV_CUDA,
                               unet_scratch_bytes(&u, (int)c.B, (int)c.H, (int)c.W, (int)c.L)))
                    die(c.name, "no device memory");
                if (unet_forward(&u, &in, &y, &ws, g_err, sizeof g_err)) die(c.name, g_err);
                float *got = download(&y);
                char k[128], what[128];
                snprintf(k, sizeof k, "%s.noise_pred", c.name);
                int64_t n;
                float *want = golden(k, &n);
                snprintf(what, sizeof what, "%s %s", c.name, dtype_name(dts[d]));
                compare(what, got, want, n, tols[d]);
                free(got), free(want);
                arena_free(&ws);
                arena_release(&io, mark);
                case_free(&c);
            }
            unet_free(&u);
            arena_free(&io);
            arena_free(&wa);
            weights_close(w);
        }
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "";
    cpu_set_threads(2);
    if (!strcmp(mode, "config") && argc == 2) {
        mode_config();
    } else if (!strcmp(mode, "fourier") && argc == 3) {
        open_golden(argv[2]);
        mode_fourier();
    } else if (!strcmp(mode, "golden") && argc == 5) {
        open_golden(argv[2]);
        mode_golden(argv[3], argv[4]);
    } else if (!strcmp(mode, "layouts") && argc == 7) {
        open_golden(argv[2]);
        mode_layouts((const char *const *)argv + 3);
    } else if (!strcmp(mode, "seam") && argc == 5) {
        open_golden(argv[2]);
        mode_seam(argv[3], argv[4]);
    } else if (!strcmp(mode, "cuda") && argc == 5) {
        if (!cuda_available()) {
            printf("unet_golden cuda: skipped: no CUDA device\n");
            return 77;
        }
        open_golden(argv[2]);
        mode_cuda(argv[3], argv[4]);
    } else if (!strcmp(mode, "scratch") && argc == 5) {
        open_golden(argv[2]);
        mode_scratch(argv[3], argv[4]);
    } else {
        fprintf(stderr,
                "usage: %s golden|seam|scratch|cuda GOLDEN_DIR SD15 SDXL\n"
                "       %s layouts GOLDEN_DIR SD15_A SD15_B SDXL_A SDXL_B\n"
                "       %s fourier GOLDEN_DIR\n       %s config\n",
                argv[0], argv[0], argv[0], argv[0]);
        return 2;
    }
    json_free(g_meta);
    st_close(&g_st);
    printf("unet_golden %s: %d checks, %d failure(s)\n", mode, g_checks, g_fail);
    return g_fail ? 1 : 0;
}

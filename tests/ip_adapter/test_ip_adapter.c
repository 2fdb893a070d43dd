// tests/ip_adapter/test_ip_adapter.c: IP-Adapter (models/ip_adapter.c) against diffusers'
// ImageProjection and IPAdapterAttnProcessor2_0 on the tiny UNets of tests/golden/models,
// with the goldens of make_golden.py in this folder.
//
//   test_ip_adapter golden    DIR SD15 SDXL  projection + UNet noise prediction, ip scale
//                                            0.6 and 0 (0 must equal the plain UNet bit for bit)
//   test_ip_adapter numbering DIR SD15 SDXL  ip_adapter.N of every attn2 layer vs diffusers'
//                                            loader, the real SD1.5/SDXL layouts, the seam
//   test_ip_adapter errors    DIR SD15 SDXL  wrong and foreign checkpoints are refused
//   test_ip_adapter cuda      DIR SD15 SDXL  f16 / bf16 on the device (exit 77 without one)
//
// Tolerances (f32 on the CPU): max abs error <= TOL * max(1, max |reference|), TOL 1e-5 for
// the projection (one linear + LayerNorm) and 1e-4 for the UNet's output (the UNet goldens'
// bound: the same formulas in f32, differing in summation order over ~40 ops; the image
// branch adds one attention and one scaled add per layer). The adapter moves the output by
// 0.6 .. 1.0 at scale 0.6 (make_golden.py asserts > 1e-2), so a wrong layer number, a
// missing scale or to_out applied to one branch only is far outside the bound.
// CUDA: 3e-2 (f16) and 1.5e-1 (bf16), as for the UNet.
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kernels/cuda_runtime_api.h"
#include "kernels/ops.h"
#include "models/ip_adapter.h"
#include "models/safetensors.h"
#include "models/unet.h"
#include "models/unet_internal.h"
#include "models/weights.h"
#include "runner/json.h"

static int g_checks, g_fail;
static SafeTensors g_st;
static char g_err[2048];
static const char *g_dir;

static void die(const char *what, const char *msg) {
    fprintf(stderr, "test_ip_adapter: %s: %s\n", what, msg);
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
    if (!e) die(name, "not in golden.safetensors (rerun tests/ip_adapter/make_golden.py)");
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
static void compare(const char *what, const float *got, const float *want, int64_t n, double tol) {
    double err = 0, mx = 0;
    int64_t at = 0;
    for (int64_t i = 0; i < n; i++) {
        const double d = fabs((double)got[i] - want[i]);
        if (!(d <= err)) err = d, at = i;  // NaN counts as the worst
        if (fabs(want[i]) > mx) mx = fabs(want[i]);
    }
    const double lim = tol * (mx > 1 ? mx : 1);
    check(err <= lim, "%-36s max abs err %.3g (limit %.3g, max |ref| %.3g)", what, err, lim, mx);
    if (!(err <= lim))
        printf("       worst at %lld: got %.7g want %.7g\n", (long long)at, got[at], want[at]);
}

static JsonDoc *g_meta_doc[2];

static const JsonValue *meta_json(int i, const char *key) {
    const char *text = st_meta(&g_st, key);
    if (!text) die(key, "missing from golden.safetensors' metadata");
    JsonError je;
    json_free(g_meta_doc[i]);
    g_meta_doc[i] = json_parse(key, text, strlen(text), NULL, &je);
    if (!g_meta_doc[i]) die(key, je.msg);
    return json_root(g_meta_doc[i]);
}

// ---- models -----------------------------------------------------------------------------------

typedef struct {
    Weights *w;
    Unet u;
    Arena weights;
} Model;

static void model_open(Model *m, const char *path, Device dev, DType dt) {
    memset(m, 0, sizeof *m);
    UnetConfig cfg;
    if (weights_open(&m->w, path, g_err, sizeof g_err)) die(path, g_err);
    if (unet_config(&cfg, m->w, g_err, sizeof g_err)) die(path, g_err);
    if (arena_init(&m->weights, dev, unet_weight_bytes(&cfg, dt))) die(path, "no memory");
    if (unet_load(&m->u, m->w, &m->weights, dt, g_err, sizeof g_err)) die(path, g_err);
}

static void model_close(Model *m) {
    unet_free(&m->u);
    arena_free(&m->weights);
    weights_close(m->w);
}

static void adapter_open(IpAdapter *ip, Arena *a, const Unet *u, const char *name, Device dev,
                         DType dt) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s.safetensors", g_dir, name);
    SafeTensors st;
    if (st_open(&st, path, g_err, sizeof g_err)) die(path, g_err);
    const SafeTensorsEntry *e = st_find(&st, "image_proj.proj.weight");
    if (!e) die(path, "no image_proj.proj.weight");
    if (arena_init(a, dev, ip_adapter_weight_bytes(u, (int)e->shape[1], dt)))
        die(path, "no memory");
    if (ip_adapter_load_st(ip, u, &st, a, dt, g_err, sizeof g_err)) die(path, g_err);
    if (a->used > a->cap) die(path, "ip_adapter_weight_bytes too small");
    st_close(&st);
}

// A case: host inputs from the goldens.
typedef struct {
    char name[64], model[32], adapter[32];
    int shared;
    int64_t B, H, W, L, T;  // T: image tokens per row (4 per image)
    float *sample, *t, *ctx, *ie, *text_embeds, *time_ids;
    int64_t ie_rows;  // B * images per row
} Case;

static void case_load(Case *c, const JsonValue *v) {
    memset(c, 0, sizeof *c);
    snprintf(c->name, sizeof c->name, "%s", json_get(v, "name")->str);
    snprintf(c->model, sizeof c->model, "%s", json_get(v, "model")->str);
    snprintf(c->adapter, sizeof c->adapter, "%s", json_get(v, "adapter")->str);
    c->shared = json_get(v, "shared")->boolean;
    char k[128];
    snprintf(k, sizeof k, "%s.sample", c->name);
    const SafeTensorsEntry *e = gentry(k);
    c->B = e->shape[0], c->H = e->shape[2], c->W = e->shape[3];
    c->sample = golden(k, NULL);
    snprintf(k, sizeof k, "%s.timesteps", c->name);
    c->t = golden(k, NULL);
    snprintf(k, sizeof k, "%s.context", c->name);
    c->L = gentry(k)->shape[1];
    c->ctx = golden(k, NULL);
    snprintf(k, sizeof k, "%s.image_embeds", c->name);
    e = gentry(k);
    c->ie_rows = e->shape[0] * e->shape[1];
    c->ie = golden(k, NULL);
    snprintf(k, sizeof k, "%s.tokens", c->name);
    c->T = gentry(k)->shape[1];
    snprintf(k, sizeof k, "%s.text_embeds", c->name);
    if (st_find(&g_st, k)) {
        c->text_embeds = golden(k, NULL);
        snprintf(k, sizeof k, "%s.time_ids", c->name);
        c->time_ids = golden(k, NULL);
    }
}

static void case_free(Case *c) {
    free(c->sample), free(c->t), free(c->ctx), free(c->ie), free(c->text_embeds), free(c->time_ids);
}

// Host f32 values into a tensor of dtype dt on a's device.
static Tensor put(Arena *a, DType dt, const float *src, int ndim, const int64_t *shape) {
    Tensor t = arena_tensor(a, dt, ndim, shape);
    const int64_t n = tensor_numel(&t);
    if (a->dev == DEV_CPU) {
        memcpy(t.data, src, (size_t)n * sizeof(float));
        return t;
    }
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

static float *get(const Tensor *t) {
    const int64_t n = tensor_numel(t);
    float *f = malloc((size_t)n * sizeof *f);
    if (t->dev == DEV_CPU) {
        memcpy(f, t->data, (size_t)n * sizeof *f);
        return f;
    }
    void *h = malloc(tensor_nbytes(t));
    story_cuda_memcpy(h, t->data, tensor_nbytes(t), 1);
    for (int64_t i = 0; i < n; i++)
        f[i] = t->dtype == DT_F32   ? ((float *)h)[i]
               : t->dtype == DT_F16 ? f16_to_f32(((uint16_t *)h)[i])
                                    : bf16_to_f32(((uint16_t *)h)[i]);
    free(h);
    return f;
}

// One case on (model, adapter): the projection, then scale 0.6, scale 0 and the plain UNet.
// tol_proj / tol: the bounds; exact0: scale 0 must equal the plain UNet bit for bit.
static void run_case(const Model *m, const IpAdapter *ip, const Case *c, DType dt, double tol_proj,
                     double tol, const char *tag) {
    const Device dev = m->u.dev;
    const int64_t X = ip->cross_dim;
    Arena io;
    if (arena_init(&io, dev, (size_t)8 << 20)) die(c->name, "no memory");
    Tensor x = put(&io, dt, c->sample, 4, SHAPE(c->B, 4, c->H, c->W));
    Tensor ctx = put(&io, dt, c->ctx, 3, SHAPE(c->B, c->L, X));
    Tensor ie = put(&io, dt, c->ie, 2, SHAPE(c->ie_rows, ip->embed_dim));
    Tensor te = c->text_embeds ? put(&io, dt, c->text_embeds, 2, SHAPE(c->B, 24)) : x;
    // (B * n, 4, X) is the memory of (B, 4 n, X): an image's tokens follow the previous one's
    Tensor tok = arena_tensor(&io, dt, 3, SHAPE(c->ie_rows, IP_ADAPTER_TOKENS, X));
    ip_adapter_project(ip, &tok, &ie);
    char k[128], what[128];
    snprintf(k, sizeof k, "%s.tokens", c->name);
    int64_t n;
    float *want = golden(k, &n), *got = get(&tok);
    snprintf(what, sizeof what, "%s%s projection", c->name, tag);
    compare(what, got, want, n, tol_proj);
    free(want), free(got);

    Tensor tokens = tensor_view(tok.data, dt, dev, 3, SHAPE(c->B, c->T, X));
    // shared image: one row of tokens serves every row of the batch
    Tensor tokens1 = tensor_view(tok.data, dt, dev, 3, SHAPE(1, c->T, X));
    const Tensor *use = c->shared ? &tokens1 : &tokens;
    Tensor y = arena_tensor(&io, dt, 4, SHAPE(c->B, 4, c->H, c->W));
    Arena ws;
    if (arena_init(&ws, dev,
                   unet_scratch_bytes(&m->u, (int)c->B, (int)c->H, (int)c->W, (int)c->L) +
                       ip_adapter_scratch_bytes(ip, &m->u, (int)c->B, (int)c->H, (int)c->W,
                                                (int)use->shape[0], (int)c->T)))
        die(c->name, "no memory for the scratch arena");
    UnetInputs in = {0};
    in.sample = &x, in.timesteps = c->t, in.encoder_hidden_states = &ctx;
    in.text_embeds = c->text_embeds ? &te : NULL, in.time_ids = c->time_ids;
    const int64_t ny = c->B * 4 * c->H * c->W;
    float *plain = NULL;
    if (unet_forward(&m->u, &in, &y, &ws, g_err, sizeof g_err)) die(c->name, g_err);
    plain = get(&y);
    const float scales[2] = {0.6f, 0.0f};
    for (int s = 0; s < 2; s++) {
        IpAdapterRun run;
        ip_adapter_bind(&run, ip, use, scales[s], &in);
        if (unet_forward(&m->u, &in, &y, &ws, g_err, sizeof g_err)) die(c->name, g_err);
        got = get(&y);
        snprintf(k, sizeof k, "%s.scale%g", c->name, scales[s]);
        want = golden(k, NULL);
        snprintf(what, sizeof what, "%s%s scale %g%s", c->name, tag, scales[s],
                 c->shared ? " (1 token row)" : "");
        compare(what, got, want, ny, tol);
        if (scales[s] == 0.0f) {
            int same = !memcmp(got, plain, (size_t)ny * sizeof *got);
            check(same, "%-36s scale 0 == the plain UNet, bit for bit", c->name);
        }
        free(got), free(want);
    }
    snprintf(k, sizeof k, "%s.plain", c->name);
    want = golden(k, NULL);
    snprintf(what, sizeof what, "%s%s plain UNet", c->name, tag);
    compare(what, plain, want, ny, tol);
    free(want), free(plain);
    arena_free(&ws);
    arena_free(&io);
}

static void mode_golden(const char *sd15, const char *sdxl, Device dev, DType dt, double tol_proj,
                        double tol) {
    const JsonValue *cs = meta_json(0, "cases");
    const char *paths[2] = {sd15, sdxl};
    char tag[32] = "";
    if (dev != DEV_CPU) snprintf(tag, sizeof tag, " %s", dtype_name(dt));
    for (int p = 0; p < 2; p++) {
        Model m;
        model_open(&m, paths[p], dev, dt);
        IpAdapter ip;
        Arena wa;
        adapter_open(&ip, &wa, &m.u, p ? "ip_sdxl" : "ip_sd15", dev, dt);
        for (size_t i = 0; i < json_count(cs); i++) {
            Case c;
            case_load(&c, json_at(cs, i));
            if (!!strstr(c.model, "sdxl") == p) run_case(&m, &ip, &c, dt, tol_proj, tol, tag);
            case_free(&c);
        }
        ip_adapter_free(&ip);
        arena_free(&wa);
        model_close(&m);
    }
}

// ---- numbering --------------------------------------------------------------------------------

typedef struct {
    int self_calls, cross_calls, bad;
    int last_self;
} SeamProbe;

static void probe_self(void *ctx, const UnetAttnSite *site, Tensor *out, const Tensor *x,
                       const UnetAttention *attn, Arena *scratch) {
    SeamProbe *p = ctx;
    p->bad += site->layer != p->self_calls;
    p->self_calls++;
    p->last_self = site->layer;
    unet_self_attn_default(NULL, site, out, x, attn, scratch);
}

// attn2 sees the block's attn1 site: the same layer, right after it.
static void probe_cross(void *ctx, const UnetAttnSite *site, Tensor *out, const Tensor *x,
                        const UnetAttention *attn, const Tensor *context, Arena *scratch) {
    SeamProbe *p = ctx;
    p->bad += site->layer != p->last_self || site->layer != p->cross_calls;
    p->bad += x->shape[1] != (int64_t)site->height * site->width;
    p->cross_calls++;
    unet_cross_attn_default(NULL, site, out, x, attn, context, scratch);
}

static void numbering_of(const char *model, const Unet *u, const JsonValue *want) {
    const int n = unet_self_attn_layers(u);
    UnetAttnSite *s = malloc((size_t)n * sizeof *s);
    int *idx = malloc((size_t)n * sizeof *idx);
    const int f = 1 << (u->cfg.nblocks - 1);
    check(unet_self_attn_sites(u, 2 * f, 2 * f, s) == n && ip_adapter_layer_numbers(u, idx) == n &&
              (size_t)n == json_count(want),
          "%-36s %d attn2 layers (diffusers: %zu)", model, n, json_count(want));
    int bad = 0;
    for (int i = 0; i < n && (size_t)i < json_count(want); i++) {
        char name[160];
        if (s[i].kind == UNET_MID)
            snprintf(name, sizeof name,
                     "mid_block.attentions.%d.transformer_blocks.%d.attn2.processor",
                     s[i].attention, s[i].transformer);
        else
            snprintf(name, sizeof name,
                     "%s_blocks.%d.attentions.%d.transformer_blocks.%d.attn2.processor",
                     s[i].kind == UNET_DOWN ? "down" : "up", s[i].block, s[i].attention,
                     s[i].transformer);
        int found = -1;
        for (size_t j = 0; j < json_count(want); j++)
            if (!strcmp(json_at(json_at(want, j), 0)->str, name))
                found = (int)json_at(json_at(want, j), 1)->d;
        if (found != idx[i]) {
            bad++;
            printf("       layer %d %s: storyrun N %d, diffusers %d\n", i, name, idx[i], found);
        }
    }
    check(bad == 0, "%-36s every ip_adapter.N matches diffusers' loader", model);
    free(s), free(idx);
}

static int fake_source(void *ctx, const char *name, int ndim, const int64_t *shape, Arena *arena,
                       DType dt, Tensor *out, char *err, size_t errlen) {
    (void)ctx, (void)name, (void)err, (void)errlen;
    *out = arena_tensor(arena, dt, ndim, shape);
    return 0;
}

// The real SD1.5 / SDXL base architectures (no weights): N in forward order (down, mid, up)
// must be the public files' numbering: down 1.., up next, mid last.
static void numbering_real(const char *name, const char *json, int nd, int nm, int nu) {
    JsonError je;
    JsonDoc *d = json_parse("config.json", json, strlen(json), NULL, &je);
    if (!d) die(name, je.msg);
    UnetConfig cfg;
    if (unet_config_parse(&cfg, d, g_err, sizeof g_err)) die(name, g_err);
    json_free(d);
    Arena a = unet_counting_arena(DEV_CPU);
    Unet u;
    if (unet_load_source(&u, &cfg, fake_source, NULL, &a, DT_F32, g_err, sizeof g_err))
        die(name, g_err);
    const int n = nd + nm + nu;
    int *idx = malloc((size_t)(n + 1) * sizeof *idx);
    int got = ip_adapter_layer_numbers(&u, idx), ok = got == n;
    for (int i = 0; ok && i < n; i++) {
        const int k = i < nd ? i : i < nd + nm ? nd + nu + (i - nd) : nd + (i - nd - nm);
        ok = idx[i] == 2 * k + 1;
    }
    check(ok, "%-36s %d layers: down 1..%d, mid %d..%d, up %d..%d", name, got, 2 * nd - 1,
          2 * (nd + nu) + 1, 2 * n - 1, 2 * nd + 1, 2 * (nd + nu) - 1);
    free(idx);
    unet_free(&u);
}

static void mode_numbering(const char *sd15, const char *sdxl) {
    const JsonValue *num = meta_json(1, "numbering");
    const char *paths[2] = {sd15, sdxl}, *names[2] = {"tiny_sd15", "tiny_sdxl"};
    for (int p = 0; p < 2; p++) {
        Model m;
        model_open(&m, paths[p], DEV_CPU, DT_F32);
        numbering_of(names[p], &m.u, json_get(num, names[p]));
        // the seam: attn2 called once per transformer block, after its attn1, same site
        SeamProbe pr = {0};
        pr.last_self = -1;
        const int f = 1 << (m.u.cfg.nblocks - 1), X = m.u.cfg.cross_dim[0];
        float *buf = calloc((size_t)2 * 4 * 4 * f * f + 2 * 5 * X + 2 * 24, sizeof *buf);
        float t[2] = {10, 900}, ids[12] = {64, 64, 0, 0, 64, 64, 64, 64, 0, 0, 64, 64};
        for (int i = 0; i < 2 * 4 * 4 * f * f; i++) buf[i] = sinf((float)i);
        Tensor x = tensor_view(buf, DT_F32, DEV_CPU, 4, SHAPE(2, 4, 2 * f, 2 * f));
        Tensor y = tensor_view(buf, DT_F32, DEV_CPU, 4, SHAPE(2, 4, 2 * f, 2 * f));
        Tensor ctx = tensor_view(buf + 2 * 4 * 4 * f * f, DT_F32, DEV_CPU, 3, SHAPE(2, 5, X));
        Tensor te =
            tensor_view(buf + 2 * 4 * 4 * f * f + 2 * 5 * X, DT_F32, DEV_CPU, 2, SHAPE(2, 24));
        UnetInputs in = {0};
        in.sample = &x, in.timesteps = t, in.encoder_hidden_states = &ctx;
        in.text_embeds = &te, in.time_ids = ids;
        in.self_attn = probe_self, in.self_attn_ctx = &pr;
        in.cross_attn = probe_cross, in.cross_attn_ctx = &pr;
        Arena ws;
        if (arena_init(&ws, DEV_CPU, unet_scratch_bytes(&m.u, 2, 2 * f, 2 * f, 5)))
            die("ws", "no memory");
        Tensor out = tensor_view(malloc(tensor_nbytes(&y)), DT_F32, DEV_CPU, 4, y.shape);
        if (unet_forward(&m.u, &in, &out, &ws, g_err, sizeof g_err)) die(names[p], g_err);
        const int L = unet_self_attn_layers(&m.u);
        check(pr.cross_calls == L && pr.self_calls == L && pr.bad == 0,
              "%-36s seam: %d attn2 calls (layers %d), each after its attn1, same site", names[p],
              pr.cross_calls, L);
        free(out.data), free(buf);
        arena_free(&ws);
        model_close(&m);
    }
    numbering_real("SD1.5 (real config)",
                   "{\"block_out_channels\": [320, 640, 1280, 1280], \"cross_attention_dim\": 768,"
                   " \"attention_head_dim\": 8, \"layers_per_block\": 2, \"down_block_types\": "
                   "[\"CrossAttnDownBlock2D\", \"CrossAttnDownBlock2D\", \"CrossAttnDownBlock2D\", "
                   "\"DownBlock2D\"], \"up_block_types\": [\"UpBlock2D\", \"CrossAttnUpBlock2D\", "
                   "\"CrossAttnUpBlock2D\", \"CrossAttnUpBlock2D\"]}",
                   6, 1, 9);
    numbering_real("SDXL base (real config)",
                   "{\"block_out_channels\": [320, 640, 1280], \"cross_attention_dim\": 2048,"
                   " \"attention_head_dim\": [5, 10, 20], \"layers_per_block\": 2,"
                   " \"addition_embed_type\": \"text_time\", \"addition_time_embed_dim\": 256,"
                   " \"projection_class_embeddings_input_dim\": 2816,"
                   " \"transformer_layers_per_block\": [1, 2, 10], \"use_linear_projection\": true,"
                   " \"down_block_types\": [\"DownBlock2D\", \"CrossAttnDownBlock2D\", "
                   "\"CrossAttnDownBlock2D\"], \"up_block_types\": [\"CrossAttnUpBlock2D\", "
                   "\"CrossAttnUpBlock2D\", \"UpBlock2D\"]}",
                   24, 10, 36);
}

// ---- errors -----------------------------------------------------------------------------------

static void expect_refused(const Unet *u, const char *path, const char *needle, const char *what) {
    IpAdapter ip;
    Arena a;
    if (arena_init(&a, DEV_CPU, (size_t)4 << 20)) die(path, "no memory");
    const int rc = ip_adapter_load(&ip, u, path, &a, DT_F32, g_err, sizeof g_err);
    check(rc < 0 && strstr(g_err, needle), "%-36s refused: %s", what, rc < 0 ? g_err : "(loaded)");
    arena_free(&a);
}

static void mode_errors(const char *sd15, const char *sdxl) {
    (void)sdxl;
    Model m;
    model_open(&m, sd15, DEV_CPU, DT_F32);
    char path[1024], tmp[1024];
    snprintf(path, sizeof path, "%s/ip_sdxl.safetensors", g_dir);
    expect_refused(&m.u, path, "another base model", "SDXL adapter on an SD1.5 UNet");
    snprintf(path, sizeof path, "%s/no_such_adapter.safetensors", g_dir);
    expect_refused(&m.u, path, "no_such_adapter", "missing file");
    // the SD1.5 adapter's tensors plus one of IP-Adapter Plus, or one renumbered
    snprintf(path, sizeof path, "%s/ip_sd15.safetensors", g_dir);
    SafeTensors st;
    if (st_open(&st, path, g_err, sizeof g_err)) die(path, g_err);
    const int n = st_count(&st);
    StWriteTensor *t = calloc((size_t)n + 1, sizeof *t);
    char(*names)[64] = calloc((size_t)n, sizeof *names);
    for (int i = 0; i < n; i++) {
        const SafeTensorsEntry *e = st_entry(&st, i);
        snprintf(names[i], sizeof names[i], "%s", e->name);
        t[i] = (StWriteTensor){names[i], e->dtype, e->ndim, e->shape, e->data};
    }
    static const uint16_t latents[16];
    t[n] = (StWriteTensor){"image_proj.latents", ST_F16, 3, SHAPE(1, 4, 4), latents};
    snprintf(tmp, sizeof tmp, "ip_adapter_plus_%d.safetensors", (int)getpid());
    if (st_write(tmp, t, n + 1, NULL, 0, g_err, sizeof g_err)) die(tmp, g_err);
    expect_refused(&m.u, tmp, "IP-Adapter Plus", "Resampler (Plus) tensor");
    for (int i = 0; i < n; i++)  // ip_adapter.1 -> ip_adapter.0: the attn1 numbering
        if (!strncmp(names[i], "ip_adapter.1.", 13)) names[i][11] = '0';
    if (st_write(tmp, t, n, NULL, 0, g_err, sizeof g_err)) die(tmp, g_err);
    expect_refused(&m.u, tmp, "no tensor ip_adapter.1.to_k_ip.weight", "renumbered layers");
    remove(tmp);
    free(t), free(names);
    st_close(&st);
    model_close(&m);
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "";
    cpu_set_threads(2);
    if (argc != 5) {
        fprintf(stderr, "usage: %s golden|numbering|errors|cuda DIR SD15 SDXL\n", argv[0]);
        return 2;
    }
    g_dir = argv[2];
    if (!strcmp(mode, "cuda") && !cuda_available()) {
        printf("ip_adapter cuda: skipped: no CUDA device\n");
        return 77;
    }
    char path[1024];
    snprintf(path, sizeof path, "%s/golden.safetensors", g_dir);
    if (st_open(&g_st, path, g_err, sizeof g_err)) die(path, g_err);
    if (!strcmp(mode, "golden")) {
        mode_golden(argv[3], argv[4], DEV_CPU, DT_F32, 1e-5, 1e-4);
    } else if (!strcmp(mode, "numbering")) {
        mode_numbering(argv[3], argv[4]);
    } else if (!strcmp(mode, "errors")) {
        mode_errors(argv[3], argv[4]);
    } else if (!strcmp(mode, "cuda")) {
        mode_golden(argv[3], argv[4], DEV_CUDA, DT_F16, 3e-2, 3e-2);
        mode_golden(argv[3], argv[4], DEV_CUDA, DT_BF16, 1.5e-1, 1.5e-1);
    } else {
        fprintf(stderr, "usage: %s golden|numbering|errors|cuda DIR SD15 SDXL\n", argv[0]);
        return 2;
    }
    json_free(g_meta_doc[0]), json_free(g_meta_doc[1]);
    st_close(&g_st);
    printf("ip_adapter %s: %d checks, %d failure(s)\n", mode, g_checks, g_fail);
    return g_fail ? 1 : 0;
}

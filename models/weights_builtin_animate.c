// models/weights_builtin_animate.c: the motion adapter and IP-Adapter components of
// builtin:tiny-animate (see models/animate_weights.h), and the animate job's access to a
// built-in model's components.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "models/animate_weights.h"
#include "models/motion_module.h"
#include "models/weights_impl.h"
#include "runner/check.h"

typedef enum { K_LINEAR, K_ONES, K_ZEROS, K_PE } Kind;

typedef struct {
    char name[160];
    int ndim;
    int64_t shape[3];
    Kind kind;
    int64_t fan_in;
} Par;

typedef struct {
    Par *p;
    int n, cap;
} Pars;

static void padd(Pars *ps, Kind kind, int64_t fan_in, const char *name, const char *suffix,
                 int ndim, int64_t d0, int64_t d1, int64_t d2) {
    if (ps->n == ps->cap) {
        ps->cap = ps->cap ? 2 * ps->cap : 128;
        ps->p = realloc(ps->p, (size_t)ps->cap * sizeof *ps->p);
        if (!ps->p) STORY_FATAL("out of memory");
    }
    Par *p = &ps->p[ps->n++];
    memset(p, 0, sizeof *p);
    const int k = snprintf(p->name, sizeof p->name, "%s%s", name, suffix);
    if (k < 0 || (size_t)k >= sizeof p->name) STORY_FATAL("built-in tensor name too long: %s", name);
    p->kind = kind, p->fan_in = fan_in, p->ndim = ndim;
    p->shape[0] = d0, p->shape[1] = d1, p->shape[2] = d2;
}

// nn.Linear(in, out) named PREFIX.weight / PREFIX.bias
static void lin(Pars *ps, const char *prefix, int64_t out, int64_t in, int bias) {
    padd(ps, K_LINEAR, in, prefix, ".weight", 2, out, in, 0);
    if (bias) padd(ps, K_LINEAR, in, prefix, ".bias", 1, out, 0, 0);
}

static void nrm(Pars *ps, const char *prefix, int64_t c) {
    padd(ps, K_ONES, 0, prefix, ".weight", 1, c, 0, 0);
    padd(ps, K_ZEROS, 0, prefix, ".bias", 1, c, 0, 0);
}

// ---- configs ---------------------------------------------------------------------------------

static const JsonValue *jget(const JsonDoc *d, const char *key) {
    return json_get(json_root(d), key);
}

static int64_t jint(const JsonDoc *d, const char *key, int64_t dflt) {
    const JsonValue *v = jget(d, key);
    return v && v->type == JSON_NUMBER && v->is_int ? v->i : dflt;
}

// An int or a list of ints, nb values (a single value repeats).
static void jper(const JsonDoc *d, const char *key, int64_t dflt, int64_t *out, int nb) {
    const JsonValue *v = jget(d, key);
    for (int i = 0; i < nb; i++) {
        const JsonValue *x = v && v->type == JSON_ARRAY ? json_at(v, (size_t)i) : v;
        out[i] = x && x->type == JSON_NUMBER && x->is_int ? x->i : dflt;
    }
}

static int has_cross(const JsonDoc *d, const char *key, int i) {
    const JsonValue *t = json_at(jget(d, key), (size_t)i);
    return t && t->type == JSON_STRING && strstr(t->str, "CrossAttn") != NULL;
}

enum { MAXB = UNET_MAX_BLOCKS };

typedef struct {
    int nb;
    int64_t ch[MAXB], layers, depth[MAXB], ctx;
} UnetShape;

static void unet_shape(const JsonDoc *u, UnetShape *s) {
    s->nb = (int)json_count(jget(u, "block_out_channels"));
    if (s->nb > MAXB) s->nb = MAXB;
    jper(u, "block_out_channels", 0, s->ch, s->nb);
    jper(u, "transformer_layers_per_block", 1, s->depth, s->nb);
    s->layers = jint(u, "layers_per_block", 2);
    s->ctx = jint(u, "cross_attention_dim", 768);
}

// ---- the motion adapter (diffusers MotionAdapter names) -------------------------------------

static void motion_module(Pars *ps, const char *p, int64_t c, int64_t depth, int64_t max_frames) {
    char q[200];
    snprintf(q, sizeof q, "%s.norm", p), nrm(ps, q, c);
    snprintf(q, sizeof q, "%s.proj_in", p), lin(ps, q, c, c, 1);
    for (int64_t k = 0; k < depth; k++) {
        char b[180];
        snprintf(b, sizeof b, "%s.transformer_blocks.%lld", p, (long long)k);
        for (int a = 1; a <= 3; a++) snprintf(q, sizeof q, "%s.norm%d", b, a), nrm(ps, q, c);
        for (int a = 1; a <= 2; a++) {
            static const char *proj[] = {"to_q", "to_k", "to_v"};
            for (int j = 0; j < 3; j++)
                snprintf(q, sizeof q, "%s.attn%d.%s", b, a, proj[j]), lin(ps, q, c, c, 0);
            snprintf(q, sizeof q, "%s.attn%d.to_out.0", b, a), lin(ps, q, c, c, 1);
        }
        padd(ps, K_PE, 0, b, ".pos_embed.pe", 3, 1, max_frames, c);
        snprintf(q, sizeof q, "%s.ff.net.0.proj", b), lin(ps, q, 8 * c, c, 1);
        snprintf(q, sizeof q, "%s.ff.net.2", b), lin(ps, q, c, 4 * c, 1);
    }
    snprintf(q, sizeof q, "%s.proj_out", p), lin(ps, q, c, c, 1);
}

static void motion_params(Pars *ps, const JsonDoc *cfg, const UnetShape *u) {
    const int64_t depth = jint(cfg, "motion_transformer_layers_per_block", 1);
    const int64_t mid_depth = jint(cfg, "motion_mid_block_layers_per_block", 1);
    const int64_t L = jint(cfg, "motion_layers_per_block", u->layers);
    const int64_t T = jint(cfg, "motion_max_seq_length", 32);
    const JsonValue *mid = jget(cfg, "use_motion_mid_block");
    char p[160];
    for (int i = 0; i < u->nb; i++)
        for (int64_t j = 0; j < L; j++) {
            snprintf(p, sizeof p, "down_blocks.%d.motion_modules.%lld", i, (long long)j);
            motion_module(ps, p, u->ch[i], depth, T);
        }
    for (int i = 0; i < u->nb; i++)
        for (int64_t j = 0; j <= L; j++) {
            snprintf(p, sizeof p, "up_blocks.%d.motion_modules.%lld", i, (long long)j);
            motion_module(ps, p, u->ch[u->nb - 1 - i], depth, T);
        }
    if (mid && mid->type == JSON_BOOL && mid->boolean)
        motion_module(ps, "mid_block.motion_modules.0", u->ch[u->nb - 1], mid_depth, T);
}

// ---- the IP-Adapter (public ip-adapter_sd15 names) ------------------------------------------

// ip_adapter.N for the k-th attn2 in diffusers' attn_processors order (down, up, mid).
static void ip_params(Pars *ps, const JsonDoc *cfg, const JsonDoc *ucfg, const UnetShape *u) {
    const int64_t D = jint(cfg, "image_embed_dim", 1024), X = u->ctx;
    const int64_t T = jint(cfg, "num_tokens", 4);
    lin(ps, "image_proj.proj", T * X, D, 1);
    nrm(ps, "image_proj.norm", X);
    int64_t ch[3 * MAXB * 4];
    int n = 0;
    for (int i = 0; i < u->nb; i++)
        if (has_cross(ucfg, "down_block_types", i))
            for (int64_t j = 0; j < u->layers; j++)
                for (int64_t k = 0; k < u->depth[i]; k++) ch[n++] = u->ch[i];
    for (int i = 0; i < u->nb; i++)
        if (has_cross(ucfg, "up_block_types", i))
            for (int64_t j = 0; j <= u->layers; j++)
                for (int64_t k = 0; k < u->depth[u->nb - 1 - i]; k++) ch[n++] = u->ch[u->nb - 1 - i];
    for (int64_t k = 0; k < u->depth[u->nb - 1]; k++) ch[n++] = u->ch[u->nb - 1];
    for (int k = 0; k < n; k++) {
        char p[96];
        snprintf(p, sizeof p, "ip_adapter.%d.to_k_ip", 2 * k + 1), lin(ps, p, ch[k], X, 0);
        snprintf(p, sizeof p, "ip_adapter.%d.to_v_ip", 2 * k + 1), lin(ps, p, ch[k], X, 0);
    }
}

// ---- values and the image --------------------------------------------------------------------

static uint64_t splitmix64(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t fnv1a(const char *s) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
    return h;
}

static void fill(const Par *p, uint64_t seed, float *dst, int64_t n) {
    if (p->kind == K_ONES || p->kind == K_ZEROS) {
        for (int64_t i = 0; i < n; i++) dst[i] = p->kind == K_ONES ? 1.0f : 0.0f;
        return;
    }
    if (p->kind == K_PE) {
        motion_pe_fill(dst, (int)p->shape[1], (int)p->shape[2]);
        return;
    }
    const float bound = 1.0f / sqrtf((float)p->fan_in);
    uint64_t s = seed ^ fnv1a(p->name);
    for (int64_t i = 0; i < n; i++) {
        const float u = (float)(splitmix64(&s) >> 40) * (1.0f / 16777216.0f);
        dst[i] = (2.0f * u - 1.0f) * bound;
    }
}

static int cmp_par(const void *a, const void *b) {
    return strcmp(((const Par *)a)->name, ((const Par *)b)->name);
}

static uint8_t *build(Pars *ps, uint64_t seed, const char *meta_key, const char *meta_json,
                      size_t *size) {
    qsort(ps->p, (size_t)ps->n, sizeof *ps->p, cmp_par);
    WBuf h = {0};
    uint64_t off = 0;
    wb_printf(&h, "{\"__metadata__\":{\"format\":\"pt\",\"storyrun.builtin.seed\":\"%llu\"",
              (unsigned long long)seed);
    if (meta_key) {
        wb_printf(&h, ",");
        wb_json_string(&h, meta_key);
        wb_printf(&h, ":");
        wb_json_string(&h, meta_json);
    }
    wb_printf(&h, "}");
    for (int i = 0; i < ps->n; i++) {
        const Par *p = &ps->p[i];
        int64_t n = 1;
        wb_printf(&h, ",");
        wb_json_string(&h, p->name);
        wb_printf(&h, ":{\"dtype\":\"F32\",\"shape\":[");
        for (int k = 0; k < p->ndim; k++) {
            wb_printf(&h, "%s%lld", k ? "," : "", (long long)p->shape[k]);
            n *= p->shape[k];
        }
        wb_printf(&h, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)off,
                  (unsigned long long)(off + 4 * (uint64_t)n));
        off += 4 * (uint64_t)n;
    }
    wb_printf(&h, "}");
    while ((8 + h.n) % 8) wb_printf(&h, " ");
    *size = 8 + h.n + off;
    uint8_t *img = mallocCheck(*size);
    const uint64_t len = h.n;
    for (int k = 0; k < 8; k++) img[k] = (uint8_t)(len >> (8 * k));
    memcpy(img + 8, h.s, h.n);
    float *data = (float *)(img + 8 + h.n);
    for (int i = 0; i < ps->n; i++) {
        const Par *p = &ps->p[i];
        int64_t n = 1;
        for (int k = 0; k < p->ndim; k++) n *= p->shape[k];
        fill(p, seed, data, n);
        data += n;
    }
    free(h.s);
    return img;
}

int wbuiltin_animate_image(const char *component, const JsonDoc *cfg, const JsonDoc *unet_cfg,
                           uint64_t seed, uint8_t **image, size_t *size) {
    UnetShape u;
    unet_shape(unet_cfg, &u);
    Pars ps = {0};
    char meta[128];
    if (!strcmp(component, "motion_adapter")) {
        motion_params(&ps, cfg, &u);
        snprintf(meta, sizeof meta, "{\"motion_num_attention_heads\":%lld}",
                 (long long)jint(cfg, "motion_num_attention_heads", 8));
        *image = build(&ps, seed, "storyrun.config.motion_adapter", meta, size);
    } else if (!strcmp(component, "ip_adapter")) {
        ip_params(&ps, cfg, unet_cfg, &u);
        *image = build(&ps, seed, NULL, NULL, size);
    } else {
        return -1;
    }
    free(ps.p);
    return 0;
}

// ---- access ----------------------------------------------------------------------------------

int animate_weights_has(const Weights *w, const char *component) {
    const WComponent *c = w_component_c(w, component);
    return c && c->n > 0;
}

// The in-memory file that holds a built-in component.
static const SafeTensors *component_file(const Weights *w, const char *component, char *err,
                                         size_t errlen) {
    const WComponent *c = w_component_c(w, component);
    if (!c || !c->n)
        return w_err(err, errlen, "%s: no %s component", weights_path(w), component), NULL;
    return &w->files[c->t[0].file];
}

int animate_motion_adapter_from_weights(MotionAdapterFile *f, const Weights *w, char *err,
                                        size_t errlen) {
    memset(f, 0, sizeof *f);
    const SafeTensors *st = component_file(w, "motion_adapter", err, errlen);
    if (!st) return -1;
    const JsonDoc *cfg = weights_config_doc(w, "motion_adapter");
    const JsonDoc *ucfg = weights_config_doc(w, "unet");
    if (!cfg || !ucfg) return w_err(err, errlen, "%s: no motion adapter config", weights_path(w));
    UnetShape u;
    unet_shape(ucfg, &u);
    MotionAdapterConfig *c = &f->cfg;
    c->nblocks = u.nb;
    const int depth = (int)jint(cfg, "motion_transformer_layers_per_block", 1);
    const int heads = (int)jint(cfg, "motion_num_attention_heads", 8);
    const int L = (int)jint(cfg, "motion_layers_per_block", u.layers);
    for (int i = 0; i < u.nb; i++) {
        c->channels[i] = (int)u.ch[i];
        c->layers[i] = L;
        c->heads[i] = heads;
        for (int j = 0; j <= L && j < UNET_MAX_LAYERS; j++)
            c->down_depth[i][j] = c->up_depth[i][j] = depth;
    }
    const JsonValue *mid = jget(cfg, "use_motion_mid_block");
    c->mid = mid && mid->type == JSON_BOOL && mid->boolean;
    c->mid_depth = (int)jint(cfg, "motion_mid_block_layers_per_block", 1);
    c->max_frames = (int)jint(cfg, "motion_max_seq_length", 32);
    snprintf(f->path, sizeof f->path, "%s/motion_adapter", weights_path(w));
    // a second view of the same image (the in-memory file whose data area st reads):
    // motion_adapter_close closes the view, w keeps the bytes
    for (int i = 0; i < w->nmem; i++) {
        const uint8_t *img = w->mem[i];
        uint64_t hlen = 0;
        for (int k = 0; k < 8; k++) hlen |= (uint64_t)img[k] << (8 * k);
        if (img + 8 + hlen == st->data)
            return st_open_memory(&f->st, img, 8 + hlen + st->data_size, f->path, err, errlen);
    }
    return w_err(err, errlen, "%s: not an in-memory component", f->path);
}

int animate_ip_adapter_from_weights(IpAdapter *ip, const Unet *unet, const Weights *w,
                                    Arena *arena, DType dt, char *err, size_t errlen) {
    const SafeTensors *st = component_file(w, "ip_adapter", err, errlen);
    if (!st) return -1;
    return ip_adapter_load_st(ip, unet, st, arena, dt, err, errlen);
}

int animate_ip_adapter_embed_dim(const Weights *w) {
    WeightInfo info;
    if (weights_find(w, "ip_adapter", "image_proj.proj.weight", &info)) return 0;
    return (int)info.shape[1];
}

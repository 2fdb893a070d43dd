// models/vae.c: AutoencoderKL's config and weights (see vae.h); the passes are in
// vae_forward.c.
#include "models/vae.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "models/vae_impl.h"
#include "runner/check.h"

static size_t al(size_t n) { return (n + 255) & ~(size_t)255; }

// ---- config -----------------------------------------------------------------------------

static int cfg_ints(const JsonDoc *doc, const char *key, int *out, int cap, int lo, int hi,
                    char *err, size_t errlen) {
    const JsonValue *v = json_get(json_root(doc), key);
    if (!v) return 0;
    if (v->type != JSON_ARRAY || json_count(v) < 1 || (int)json_count(v) > cap)
        return json_errat(doc, v->pos, err, errlen, "\"%s\": expected an array of 1 to %d integers",
                          key, cap);
    for (size_t i = 0; i < json_count(v); i++) {
        int64_t x;
        char what[64];
        snprintf(what, sizeof what, "\"%s\"[%zu]", key, i);
        if (json_as_int(doc, json_at(v, i), what, lo, hi, &x, err, errlen)) return -1;
        out[i] = (int)x;
    }
    return (int)json_count(v);
}

// An array of n numbers, or null (returns 0), or absent (0).
static int cfg_floats(const JsonDoc *doc, const char *key, float *out, int n, char *err,
                      size_t errlen) {
    const JsonValue *v = json_get(json_root(doc), key);
    if (!v || v->type == JSON_NULL) return 0;
    if (v->type != JSON_ARRAY || (int)json_count(v) != n)
        return json_errat(doc, v->pos, err, errlen,
                          "\"%s\": expected null or %d numbers (one per latent channel)", key, n);
    for (int i = 0; i < n; i++) {
        double d;
        if (json_as_number(doc, json_at(v, i), key, &d, err, errlen)) return -1;
        out[i] = (float)d;
    }
    return 1;
}

static int cfg_int(const JsonDoc *doc, const char *key, int lo, int hi, int *out, char *err,
                   size_t errlen) {
    int64_t v = *out;
    if (json_get_int(doc, json_root(doc), key, lo, hi, &v, err, errlen) < 0) return -1;
    *out = (int)v;
    return 0;
}

static int cfg_bool(const JsonDoc *doc, const char *key, bool *out, char *err, size_t errlen) {
    return json_get_bool(doc, json_root(doc), key, out, err, errlen) < 0 ? -1 : 0;
}

// Every entry of array `key` (when present) must be `want`, and there must be n of them.
static int cfg_types(const JsonDoc *doc, const char *key, const char *want, int n, char *err,
                     size_t errlen) {
    const JsonValue *v = json_get(json_root(doc), key);
    if (!v) return 0;
    if (v->type != JSON_ARRAY || (int)json_count(v) != n)
        return json_errat(doc, v->pos, err, errlen,
                          "\"%s\": expected %d entries (one per block_out_channels)", key, n);
    for (int i = 0; i < n; i++) {
        const JsonValue *s = json_at(v, (size_t)i);
        if (s->type != JSON_STRING || strcmp(s->str, want))
            return json_errat(doc, s->pos, err, errlen, "\"%s\"[%d]: only \"%s\" is supported", key,
                              i, want);
    }
    return 0;
}

int vae_config(VaeConfig *cfg, const Weights *w, char *err, size_t errlen) {
    const JsonDoc *doc = weights_config_doc(w, "vae");
    if (!doc || json_root(doc)->type != JSON_OBJECT)
        return snprintf(err, errlen, "%s: the model has no vae config (vae/config.json)",
                        weights_path(w)),
               -1;
    return vae_config_parse(cfg, doc, err, errlen);
}

int vae_config_parse(VaeConfig *cfg, const JsonDoc *doc, char *err, size_t errlen) {
    memset(cfg, 0, sizeof *cfg);
    const JsonValue *root = json_root(doc);
    if (root->type != JSON_OBJECT)
        return json_errat(doc, root->pos, err, errlen, "expected the vae config object");
    // Defaults are diffusers' AutoencoderKL defaults, used only where a key is absent.
    cfg->in_channels = cfg->out_channels = 3;
    cfg->latent_channels = 4;
    cfg->nblocks = 1;
    cfg->block_out_channels[0] = 64;
    cfg->layers_per_block = 1;
    cfg->norm_num_groups = 32;
    cfg->sample_size = 32;
    cfg->force_upcast = cfg->use_quant_conv = cfg->use_post_quant_conv =
        cfg->mid_block_add_attention = true;
    int nb = cfg_ints(doc, "block_out_channels", cfg->block_out_channels, VAE_MAX_BLOCKS, 1,
                      1 << 16, err, errlen);
    if (nb < 0) return -1;
    if (nb > 0) cfg->nblocks = nb;
    if (cfg_int(doc, "in_channels", 1, 1 << 16, &cfg->in_channels, err, errlen) ||
        cfg_int(doc, "out_channels", 1, 1 << 16, &cfg->out_channels, err, errlen) ||
        cfg_int(doc, "latent_channels", 1, VAE_MAX_LATENT, &cfg->latent_channels, err, errlen) ||
        cfg_int(doc, "layers_per_block", 1, 64, &cfg->layers_per_block, err, errlen) ||
        cfg_int(doc, "norm_num_groups", 1, 1 << 16, &cfg->norm_num_groups, err, errlen) ||
        cfg_bool(doc, "force_upcast", &cfg->force_upcast, err, errlen) ||
        cfg_bool(doc, "use_quant_conv", &cfg->use_quant_conv, err, errlen) ||
        cfg_bool(doc, "use_post_quant_conv", &cfg->use_post_quant_conv, err, errlen) ||
        cfg_bool(doc, "mid_block_add_attention", &cfg->mid_block_add_attention, err, errlen) ||
        cfg_types(doc, "down_block_types", "DownEncoderBlock2D", cfg->nblocks, err, errlen) ||
        cfg_types(doc, "up_block_types", "UpDecoderBlock2D", cfg->nblocks, err, errlen))
        return -1;
    const JsonValue *ss = json_get(root, "sample_size");  // an int, or [h, w]
    if (ss && ss->type == JSON_ARRAY && json_count(ss) > 0) ss = json_at(ss, 0);
    if (ss) {
        int64_t v;
        if (json_as_int(doc, ss, "\"sample_size\"", 1, 1 << 20, &v, err, errlen)) return -1;
        cfg->sample_size = (int)v;
    }
    const char *act = "silu";
    if (json_get_string(doc, root, "act_fn", &act, err, errlen) < 0) return -1;
    if (strcmp(act, "silu") && strcmp(act, "swish"))
        return snprintf(err, errlen, "%s: \"act_fn\": \"%s\" is not supported (silu)",
                        json_file(doc), act),
               -1;
    double sf = 0.18215, shift = 0;
    if (json_get_number(doc, root, "scaling_factor", &sf, err, errlen) < 0) return -1;
    const JsonValue *sv = json_get(root, "shift_factor");
    if (sv && sv->type != JSON_NULL &&
        json_as_number(doc, sv, "\"shift_factor\"", &shift, err, errlen))
        return -1;
    if (!(sf > 0))
        return snprintf(err, errlen, "%s: \"scaling_factor\": expected a positive number, found %g",
                        json_file(doc), sf),
               -1;
    cfg->scaling_factor = (float)sf;
    cfg->shift_factor = (float)shift;
    int hm = cfg_floats(doc, "latents_mean", cfg->latents_mean, cfg->latent_channels, err, errlen);
    int hs = hm < 0 ? -1
                    : cfg_floats(doc, "latents_std", cfg->latents_std, cfg->latent_channels, err,
                                 errlen);
    if (hm < 0 || hs < 0) return -1;
    cfg->has_latents_stats = hm && hs;  // diffusers' pipelines use them only as a pair
    for (int i = 0; i < cfg->nblocks; i++)
        if (cfg->block_out_channels[i] % cfg->norm_num_groups)
            return snprintf(
                       err, errlen,
                       "%s: block_out_channels[%d] = %d is not a multiple of norm_num_groups %d",
                       json_file(doc), i, cfg->block_out_channels[i], cfg->norm_num_groups),
                   -1;
    return 0;
}

int vae_scale_factor(const VaeConfig *cfg) { return 1 << (cfg->nblocks - 1); }

DType vae_default_dtype(const VaeConfig *cfg, Device dev) {
    return dev == DEV_CPU || cfg->force_upcast ? DT_F32 : DT_F16;
}

int vae_latent_size(const VaeConfig *cfg, int n) {
    for (int i = 0; i + 1 < cfg->nblocks; i++) {
        if (n < 2) return 0;
        n = (n + 1 - 3) / 2 + 1;  // pad (0, 1), kernel 3, stride 2
    }
    return n;
}

// ---- loading ----------------------------------------------------------------------------

// Loads tensors from a source, or (src NULL) only counts the bytes they would take.
typedef struct {
    VaeTensorSource src;
    void *ctx;
    Arena *arena;
    DType dt;
    size_t bytes;    // counting: arena bytes
    int64_t params;  // counting: values
    char *err;
    size_t errlen;
} Loader;

#if defined(__GNUC__)
__attribute__((format(printf, 8, 9)))
#endif
static int
ld(Loader *l, Tensor *t, int ndim, int64_t d0, int64_t d1, int64_t d2, int64_t d3, const char *fmt,
   ...) {
    char name[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    const int64_t shape[4] = {d0, d1, d2, d3};
    if (!l->src) {
        int64_t n = 1;
        for (int i = 0; i < ndim; i++) n *= shape[i];
        l->params += n;
        l->bytes += al((size_t)n * dtype_size(l->dt));
        return 0;
    }
    return l->src(l->ctx, name, ndim, shape, l->arena, l->dt, t, l->err, l->errlen);
}

static int ld_conv(Loader *l, Tensor *w, Tensor *b, int co, int ci, int k, const char *prefix) {
    return ld(l, w, 4, co, ci, k, k, "%s.weight", prefix) ||
           ld(l, b, 1, co, 0, 0, 0, "%s.bias", prefix);
}

static int ld_norm(Loader *l, Tensor *w, Tensor *b, int c, const char *prefix) {
    return ld(l, w, 1, c, 0, 0, 0, "%s.weight", prefix) ||
           ld(l, b, 1, c, 0, 0, 0, "%s.bias", prefix);
}

static int ld_resnet(Loader *l, VaeResnet *p, int cin, int cout, const char *prefix) {
    char n[200];
    p->cin = cin, p->cout = cout;
#define SUB(s) (snprintf(n, sizeof n, "%s.%s", prefix, s), n)
    if (ld_norm(l, &p->norm1_w, &p->norm1_b, cin, SUB("norm1")) ||
        ld_conv(l, &p->conv1_w, &p->conv1_b, cout, cin, 3, SUB("conv1")) ||
        ld_norm(l, &p->norm2_w, &p->norm2_b, cout, SUB("norm2")) ||
        ld_conv(l, &p->conv2_w, &p->conv2_b, cout, cout, 3, SUB("conv2")))
        return -1;
    if (cin != cout && ld_conv(l, &p->short_w, &p->short_b, cout, cin, 1, SUB("conv_shortcut")))
        return -1;
#undef SUB
    return 0;
}

static int ld_linear(Loader *l, Tensor *w, Tensor *b, int c, const char *prefix, const char *name) {
    return ld(l, w, 2, c, c, 0, 0, "%s.%s.weight", prefix, name) ||
           ld(l, b, 1, c, 0, 0, 0, "%s.%s.bias", prefix, name);
}

static int ld_mid(Loader *l, VaeMid *p, int c, int attn, const char *coder) {
    char n[200];
    for (int i = 0; i < 2; i++) {
        snprintf(n, sizeof n, "%s.mid_block.resnets.%d", coder, i);
        if (ld_resnet(l, &p->res[i], c, c, n)) return -1;
    }
    p->has_attn = attn;
    if (!attn) return 0;
    snprintf(n, sizeof n, "%s.mid_block.attentions.0", coder);
    char g[220];
    snprintf(g, sizeof g, "%s.group_norm", n);
    return ld_norm(l, &p->norm_w, &p->norm_b, c, g) ||
           ld_linear(l, &p->q_w, &p->q_b, c, n, "to_q") ||
           ld_linear(l, &p->k_w, &p->k_b, c, n, "to_k") ||
           ld_linear(l, &p->v_w, &p->v_b, c, n, "to_v") ||
           ld_linear(l, &p->o_w, &p->o_b, c, n, "to_out.0");
}

static int ld_encoder(Loader *l, VaeEncoder *e, const VaeConfig *c) {
    const int nb = c->nblocks, L = c->layers_per_block, *ch = c->block_out_channels,
              lat = c->latent_channels;
    char n[200];
    if (ld_conv(l, &e->conv_in_w, &e->conv_in_b, ch[0], c->in_channels, 3, "encoder.conv_in"))
        return -1;
    for (int i = 0; i < nb; i++) {
        for (int j = 0; j < L; j++) {
            int cin = j ? ch[i] : (i ? ch[i - 1] : ch[0]);
            snprintf(n, sizeof n, "encoder.down_blocks.%d.resnets.%d", i, j);
            if (ld_resnet(l, &e->res[i * L + j], cin, ch[i], n)) return -1;
        }
        snprintf(n, sizeof n, "encoder.down_blocks.%d.downsamplers.0.conv", i);
        if (i + 1 < nb && ld_conv(l, &e->down_w[i], &e->down_b[i], ch[i], ch[i], 3, n)) return -1;
    }
    if (ld_mid(l, &e->mid, ch[nb - 1], c->mid_block_add_attention, "encoder") ||
        ld_norm(l, &e->norm_out_w, &e->norm_out_b, ch[nb - 1], "encoder.conv_norm_out") ||
        ld_conv(l, &e->conv_out_w, &e->conv_out_b, 2 * lat, ch[nb - 1], 3, "encoder.conv_out"))
        return -1;
    return c->use_quant_conv
               ? ld_conv(l, &e->quant_w, &e->quant_b, 2 * lat, 2 * lat, 1, "quant_conv")
               : 0;
}

static int ld_decoder(Loader *l, VaeDecoder *d, const VaeConfig *c) {
    const int nb = c->nblocks, L = c->layers_per_block, *ch = c->block_out_channels,
              lat = c->latent_channels;
    char n[200];
    if (c->use_post_quant_conv &&
        ld_conv(l, &d->post_quant_w, &d->post_quant_b, lat, lat, 1, "post_quant_conv"))
        return -1;
    if (ld_conv(l, &d->conv_in_w, &d->conv_in_b, ch[nb - 1], lat, 3, "decoder.conv_in") ||
        ld_mid(l, &d->mid, ch[nb - 1], c->mid_block_add_attention, "decoder"))
        return -1;
    for (int i = 0; i < nb; i++) {
        int out = ch[nb - 1 - i], prev = i ? ch[nb - i] : out;
        for (int j = 0; j <= L; j++) {
            snprintf(n, sizeof n, "decoder.up_blocks.%d.resnets.%d", i, j);
            if (ld_resnet(l, &d->res[i * (L + 1) + j], j ? out : prev, out, n)) return -1;
        }
        snprintf(n, sizeof n, "decoder.up_blocks.%d.upsamplers.0.conv", i);
        if (i + 1 < nb && ld_conv(l, &d->up_w[i], &d->up_b[i], out, out, 3, n)) return -1;
    }
    return ld_norm(l, &d->norm_out_w, &d->norm_out_b, ch[0], "decoder.conv_norm_out") ||
                   ld_conv(l, &d->conv_out_w, &d->conv_out_b, c->out_channels, ch[0], 3,
                           "decoder.conv_out")
               ? -1
               : 0;
}

static int vae_alloc(Vae *m, int parts) {
    const VaeConfig *c = &m->cfg;
    m->parts = parts;
    if (parts & VAE_ENCODER)
        m->enc.res = calloc((size_t)c->nblocks * c->layers_per_block, sizeof(VaeResnet));
    if (parts & VAE_DECODER)
        m->dec.res = calloc((size_t)c->nblocks * (c->layers_per_block + 1), sizeof(VaeResnet));
    return ((parts & VAE_ENCODER) && !m->enc.res) || ((parts & VAE_DECODER) && !m->dec.res) ? -1
                                                                                            : 0;
}

static int vae_walk(Vae *m, Loader *l) {
    if ((m->parts & VAE_ENCODER) && ld_encoder(l, &m->enc, &m->cfg)) return -1;
    if ((m->parts & VAE_DECODER) && ld_decoder(l, &m->dec, &m->cfg)) return -1;
    return 0;
}

size_t vae_weight_bytes(const VaeConfig *cfg, int parts, DType dt) {
    Vae m;
    memset(&m, 0, sizeof m);
    m.cfg = *cfg;
    if (vae_alloc(&m, parts)) STORY_FATAL("out of memory");
    Loader l = {NULL, NULL, NULL, dt, 0, 0, NULL, 0};
    vae_walk(&m, &l);
    vae_free(&m);
    return l.bytes + 256;
}

int vae_load_source(Vae *m, const VaeConfig *cfg, int parts, VaeTensorSource src, void *ctx,
                    Arena *arena, DType dt, char *err, size_t errlen) {
    memset(m, 0, sizeof *m);
    if (!(parts & VAE_BOTH))
        return snprintf(err, errlen, "vae_load: nothing to load (parts %d)", parts), -1;
    if (arena->dev == DEV_CPU && dt != DT_F32)
        return snprintf(err, errlen, "vae_load: the CPU back end computes in f32, not %s",
                        dtype_name(dt)),
               -1;
    m->cfg = *cfg;
    m->dtype = dt;
    m->dev = arena->dev;
    if (vae_alloc(m, parts)) return snprintf(err, errlen, "vae_load: out of memory"), -1;
    Loader l = {src, ctx, arena, dt, 0, 0, err, errlen};
    if (vae_walk(m, &l)) {
        vae_free(m);
        return -1;
    }
    return 0;
}

// The weights' "vae" component. Folders of diffusers < 0.14 name the mid-block attention's
// layers query/key/value/proj_attn; those are taken when the new name is absent.
static int weights_source(void *ctx, const char *name, int ndim, const int64_t *shape, Arena *arena,
                          DType dt, Tensor *out, char *err, size_t errlen) {
    static const char *renames[][2] = {{".to_q.", ".query."},
                                       {".to_k.", ".key."},
                                       {".to_v.", ".value."},
                                       {".to_out.0.", ".proj_attn."}};
    const Weights *w = ctx;
    WeightInfo info;
    const char *at = strstr(name, ".attentions.0.");
    if (at && weights_find(w, "vae", name, &info) != 0) {
        for (size_t i = 0; i < sizeof renames / sizeof renames[0]; i++) {
            const char *p = strstr(at, renames[i][0]);
            if (!p) continue;
            char old[300];
            snprintf(old, sizeof old, "%.*s%s%s", (int)(p - name), name, renames[i][1],
                     p + strlen(renames[i][0]));
            if (weights_find(w, "vae", old, &info) == 0)
                return weights_load(w, "vae", old, ndim, shape, arena, dt, out, err, errlen);
        }
    }
    return weights_load(w, "vae", name, ndim, shape, arena, dt, out, err, errlen);
}

int vae_load(Vae *m, const Weights *w, int parts, Arena *arena, DType dt, char *err,
             size_t errlen) {
    VaeConfig cfg;
    if (vae_config(&cfg, w, err, errlen)) return memset(m, 0, sizeof *m), -1;
    return vae_load_source(m, &cfg, parts, weights_source, (void *)w, arena, dt, err, errlen);
}

int64_t vae_param_count(const VaeConfig *cfg, int parts) {
    Vae m;
    memset(&m, 0, sizeof m);
    m.cfg = *cfg;
    if (vae_alloc(&m, parts)) STORY_FATAL("out of memory");
    Loader l = {NULL, NULL, NULL, DT_F32, 0, 0, NULL, 0};
    vae_walk(&m, &l);
    vae_free(&m);
    return l.params;
}

void vae_free(Vae *m) {
    free(m->enc.res);
    free(m->dec.res);
    m->enc.res = m->dec.res = NULL;
}

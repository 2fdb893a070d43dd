// models/unet.c: UNet2DConditionModel config and weight loading (see unet.h).
#include "models/unet.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "models/unet_internal.h"
#include "runner/check.h"

// ---- config -----------------------------------------------------------------------------

// root[key] as n ints in [lo, hi]: an int (the same for all n), a list of n ints, or
// null / absent (def for all). Returns 1 when set, 0 when absent or null, -1 on error.
static int cfg_ints(const JsonDoc *doc, const char *key, int n, int lo, int hi, int def, int *out,
                    char *err, size_t errlen) {
    const JsonValue *v = json_get(json_root(doc), key);
    char what[96];
    snprintf(what, sizeof what, "\"%s\"", key);
    if (!v || v->type == JSON_NULL) {
        for (int i = 0; i < n; i++) out[i] = def;
        return 0;
    }
    if (v->type == JSON_ARRAY) {
        if ((int)v->len != n)
            return json_errat(doc, v->pos, err, errlen,
                              "%s: expected %d values (one per block), found %zu", what, n, v->len);
        for (int i = 0; i < n; i++) {
            int64_t x;
            snprintf(what, sizeof what, "\"%s\"[%d]", key, i);
            if (json_as_int(doc, json_at(v, i), what, lo, hi, &x, err, errlen)) return -1;
            out[i] = (int)x;
        }
        return 1;
    }
    int64_t x;
    if (json_as_int(doc, v, what, lo, hi, &x, err, errlen)) return -1;
    for (int i = 0; i < n; i++) out[i] = (int)x;
    return 1;
}

// root[key] must be absent, null, or equal `want` (a JSON scalar's text: "false", "1",
// "\"default\""): storyrun computes only that case.
static int cfg_only(const JsonDoc *doc, const char *key, const char *want, char *err,
                    size_t errlen) {
    const JsonValue *v = json_get(json_root(doc), key);
    if (!v || v->type == JSON_NULL) return 0;
    char got[128];
    if (v->type == JSON_STRING)
        snprintf(got, sizeof got, "\"%s\"", v->str);
    else if (v->type == JSON_BOOL)
        snprintf(got, sizeof got, "%s", v->boolean ? "true" : "false");
    else if (v->type == JSON_NUMBER)
        snprintf(got, sizeof got, "%g", v->d);
    else
        snprintf(got, sizeof got, "%s", json_type_name(v->type));
    if (!strcmp(got, want)) return 0;
    if (v->type == JSON_NUMBER && want[0] != '"' && atof(want) == v->d) return 0;
    return json_errat(doc, v->pos, err, errlen,
                      "\"%s\": %s is not supported by storyrun's UNet (only %s)", key, got, want);
}

static int cfg_block_types(const JsonDoc *doc, const char *key, int n, const char *cross,
                           const char *plain, int *out, char *err, size_t errlen) {
    const JsonValue *v = json_get(json_root(doc), key);
    if (!v) {  // diffusers' defaults: cross-attention everywhere but the lowest resolution
        for (int i = 0; i < n; i++) out[i] = key[0] == 'd' ? i < n - 1 : i > 0;
        return 0;
    }
    if (v->type != JSON_ARRAY || (int)v->len != n)
        return json_errat(doc, v->pos, err, errlen, "\"%s\": expected a list of %d block types",
                          key, n);
    for (int i = 0; i < n; i++) {
        const char *s;
        char what[64];
        snprintf(what, sizeof what, "\"%s\"[%d]", key, i);
        if (json_as_string(doc, json_at(v, i), what, &s, err, errlen)) return -1;
        if (!strcmp(s, cross))
            out[i] = 1;
        else if (!strcmp(s, plain))
            out[i] = 0;
        else
            return json_errat(doc, json_at(v, i)->pos, err, errlen,
                              "%s: \"%s\" is not supported (%s or %s)", what, s, cross, plain);
    }
    return 0;
}

int unet_config_parse(UnetConfig *c, const JsonDoc *doc, char *err, size_t errlen) {
    memset(c, 0, sizeof *c);
    const JsonValue *root = json_root(doc);
    if (!root || root->type != JSON_OBJECT)
        return snprintf(err, errlen, "%s: the UNet config is not a JSON object", json_file(doc)),
               -1;
    // Everything storyrun does not compute must have diffusers' default (or be absent).
    static const char *const only[][2] = {
        {"class_embed_type", "null"},
        {"time_embedding_type", "\"positional\""},
        {"resnet_time_scale_shift", "\"default\""},
        {"dual_cross_attention", "false"},
        {"act_fn", "\"silu\""},
        {"conv_in_kernel", "3"},
        {"conv_out_kernel", "3"},
        {"time_cond_proj_dim", "null"},
        {"encoder_hid_dim_type", "null"},
        {"encoder_hid_dim", "null"},
        {"time_embedding_act_fn", "null"},
        {"timestep_post_act", "null"},
        {"attention_type", "\"default\""},
        {"mid_block_scale_factor", "1"},
        {"resnet_out_scale_factor", "1"},
        {"resnet_skip_time_act", "false"},
        {"downsample_padding", "1"},
        {"class_embeddings_concat", "false"},
        {"mid_block_type", "\"UNetMidBlock2DCrossAttn\""},
        {"num_class_embeds", "null"},
        {"mid_block_only_cross_attention", "false"},
    };
    for (size_t i = 0; i < sizeof only / sizeof only[0]; i++)
        if (cfg_only(doc, only[i][0], only[i][1], err, errlen)) return -1;
    const JsonValue *mbt = json_get(root, "mid_block_type");
    if (mbt && mbt->type == JSON_NULL)
        return json_errat(doc, mbt->pos, err, errlen,
                          "\"mid_block_type\": a UNet without a mid block is not supported");
    const JsonValue *oca = json_get(root, "only_cross_attention");
    if (oca && oca->type == JSON_ARRAY) {
        for (size_t i = 0; i < oca->len; i++)
            if (json_at(oca, i)->type != JSON_BOOL || json_at(oca, i)->boolean)
                return json_errat(doc, json_at(oca, i)->pos, err, errlen,
                                  "\"only_cross_attention\"[%zu]: only false is supported", i);
    } else if (cfg_only(doc, "only_cross_attention", "false", err, errlen)) {
        return -1;
    }

    int64_t v;
    const JsonValue *boc = json_get(root, "block_out_channels");
    if (!boc) {
        static const int sd[4] = {320, 640, 1280, 1280};
        c->nblocks = 4;
        memcpy(c->block_out_channels, sd, sizeof sd);
    } else {
        if (boc->type != JSON_ARRAY || boc->len < 1 || boc->len > UNET_MAX_BLOCKS)
            return json_errat(doc, boc->pos, err, errlen,
                              "\"block_out_channels\": expected a list of 1 to %d ints",
                              UNET_MAX_BLOCKS);
        c->nblocks = (int)boc->len;
        if (cfg_ints(doc, "block_out_channels", c->nblocks, 1, 1 << 16, 0, c->block_out_channels,
                     err, errlen) < 0)
            return -1;
    }
    const int n = c->nblocks;
    c->in_channels = c->out_channels = 4;
    if (json_get_int(doc, root, "in_channels", 1, 1024, &v, err, errlen) < 0) return -1;
    if (json_get(root, "in_channels")) c->in_channels = (int)v;
    if (json_get_int(doc, root, "out_channels", 1, 1024, &v, err, errlen) < 0) return -1;
    if (json_get(root, "out_channels")) c->out_channels = (int)v;
    bool center = false;
    if (json_get_bool(doc, root, "center_input_sample", &center, err, errlen) < 0) return -1;
    c->center_input_sample = center;
    if (cfg_block_types(doc, "down_block_types", n, "CrossAttnDownBlock2D", "DownBlock2D",
                        c->down_cross, err, errlen) ||
        cfg_block_types(doc, "up_block_types", n, "CrossAttnUpBlock2D", "UpBlock2D", c->up_cross,
                        err, errlen))
        return -1;
    if (cfg_ints(doc, "layers_per_block", n, 1, UNET_MAX_LAYERS - 1, 2, c->layers, err, errlen) < 0)
        return -1;
    int heads[UNET_MAX_BLOCKS];
    int set = cfg_ints(doc, "num_attention_heads", n, 1, 4096, 0, heads, err, errlen);
    if (set < 0) return -1;
    if (!set && cfg_ints(doc, "attention_head_dim", n, 1, 4096, 8, heads, err, errlen) < 0)
        return -1;
    memcpy(c->heads, heads, sizeof heads);
    if (cfg_ints(doc, "transformer_layers_per_block", n, 1, 64, 1, c->depth, err, errlen) < 0)
        return -1;
    int rev[UNET_MAX_BLOCKS];
    set = cfg_ints(doc, "reverse_transformer_layers_per_block", n, 1, 64, 1, rev, err, errlen);
    if (set < 0) return -1;
    for (int i = 0; i < n; i++) c->up_depth[i] = set ? rev[i] : c->depth[n - 1 - i];
    if (cfg_ints(doc, "cross_attention_dim", n, 1, 1 << 16, 1280, c->cross_dim, err, errlen) < 0)
        return -1;
    for (int i = 1; i < n; i++)  // one encoder_hidden_states serves every block
        if (c->cross_dim[i] != c->cross_dim[0])
            return json_errat(
                doc, json_get(root, "cross_attention_dim")->pos, err, errlen,
                "\"cross_attention_dim\": different widths per block are not supported");
    bool lin = false;
    if (json_get_bool(doc, root, "use_linear_projection", &lin, err, errlen) < 0) return -1;
    c->use_linear_projection = lin;
    c->norm_num_groups = 32;
    if (json_get_int(doc, root, "norm_num_groups", 1, 1 << 16, &v, err, errlen) < 0) return -1;
    if (json_get(root, "norm_num_groups")) c->norm_num_groups = (int)v;
    double d = 1e-5;
    if (json_get_number(doc, root, "norm_eps", &d, err, errlen) < 0) return -1;
    if (!(d > 0 && d < 1))
        return json_errat(doc, json_get(root, "norm_eps")->pos, err, errlen,
                          "\"norm_eps\": expected (0, 1)");
    c->norm_eps = (float)d;
    bool flip = true;
    if (json_get_bool(doc, root, "flip_sin_to_cos", &flip, err, errlen) < 0) return -1;
    c->flip_sin_to_cos = flip;
    d = 0;
    if (json_get_number(doc, root, "freq_shift", &d, err, errlen) < 0) return -1;
    c->freq_shift = (float)d;
    c->time_embed_dim = 4 * c->block_out_channels[0];
    const JsonValue *ted = json_get(root, "time_embedding_dim");
    if (ted && ted->type != JSON_NULL) {
        if (json_as_int(doc, ted, "\"time_embedding_dim\"", 1, 1 << 16, &v, err, errlen)) return -1;
        c->time_embed_dim = (int)v;
    }
    const char *add = NULL;
    const JsonValue *aet = json_get(root, "addition_embed_type");
    if (aet && aet->type != JSON_NULL) {
        if (json_as_string(doc, aet, "\"addition_embed_type\"", &add, err, errlen)) return -1;
        if (strcmp(add, "text_time"))
            return json_errat(
                doc, aet->pos, err, errlen,
                "\"addition_embed_type\": \"%s\" is not supported (null or \"text_time\")", add);
        const JsonValue *a = json_get(root, "addition_time_embed_dim");
        const JsonValue *p = json_get(root, "projection_class_embeddings_input_dim");
        if (!a || !p || a->type == JSON_NULL || p->type == JSON_NULL)
            return json_errat(
                doc, aet->pos, err, errlen,
                "\"addition_embed_type\": \"text_time\" needs \"addition_time_embed_dim\" and "
                "\"projection_class_embeddings_input_dim\"");
        if (json_as_int(doc, a, "\"addition_time_embed_dim\"", 1, 1 << 16, &v, err, errlen))
            return -1;
        c->addition_time_embed_dim = (int)v;
        if (json_as_int(doc, p, "\"projection_class_embeddings_input_dim\"",
                        6 * (int64_t)c->addition_time_embed_dim + 1, 1 << 20, &v, err, errlen))
            return -1;
        c->projection_class_embeddings_input_dim = (int)v;
    }
    // Shapes that have to agree: every width is a multiple of the groups and of the heads.
    for (int i = 0; i < n; i++) {
        int ch = c->block_out_channels[i];
        if (ch % c->norm_num_groups)
            return json_errat(
                doc, boc ? boc->pos : 0, err, errlen,
                "\"block_out_channels\"[%d] = %d is not a multiple of norm_num_groups %d", i, ch,
                c->norm_num_groups);
        if ((c->down_cross[i] || c->up_cross[n - 1 - i] || i == n - 1) && ch % c->heads[i])
            return json_errat(doc, json_root(doc)->pos, err, errlen,
                              "block %d: %d channels do not split into %d attention heads", i, ch,
                              c->heads[i]);
    }
    if (c->block_out_channels[0] % c->norm_num_groups || c->in_channels < 1)
        return snprintf(err, errlen, "%s: bad UNet config", json_file(doc)), -1;
    return 0;
}

int unet_config(UnetConfig *cfg, const Weights *w, char *err, size_t errlen) {
    const JsonDoc *doc = weights_config_doc(w, "unet");
    if (!doc)
        return snprintf(err, errlen, "%s: the model has no unet (or its config.json is missing)",
                        weights_path(w)),
               -1;
    return unet_config_parse(cfg, doc, err, errlen);
}

// ---- loading ----------------------------------------------------------------------------

typedef struct {
    UnetTensorSource src;
    void *ctx;
    Arena *arena;
    DType dt;
    char *err;
    size_t errlen;
    int failed;
} Loader;

#if defined(__GNUC__)
__attribute__((format(printf, 5, 6)))
#endif
static void
ld_tensor(Loader *ld, Tensor *t, int ndim, const int64_t *shape, const char *fmt, ...) {
    if (ld->failed) return;
    char name[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    if (ld->src(ld->ctx, name, ndim, shape, ld->arena, ld->dt, t, ld->err, ld->errlen))
        ld->failed = 1;
}

static void ld_linear(Loader *ld, UnetParam *p, int64_t out, int64_t in, int bias,
                      const char *prefix) {
    ld_tensor(ld, &p->w, 2, SHAPE(out, in), "%s.weight", prefix);
    if (bias) ld_tensor(ld, &p->b, 1, SHAPE(out), "%s.bias", prefix);
}

static void ld_conv(Loader *ld, UnetParam *p, int64_t co, int64_t ci, int k, const char *prefix) {
    ld_tensor(ld, &p->w, 4, SHAPE(co, ci, k, k), "%s.weight", prefix);
    ld_tensor(ld, &p->b, 1, SHAPE(co), "%s.bias", prefix);
}

static void ld_norm(Loader *ld, UnetParam *p, int64_t c, const char *prefix) {
    ld_tensor(ld, &p->w, 1, SHAPE(c), "%s.weight", prefix);
    ld_tensor(ld, &p->b, 1, SHAPE(c), "%s.bias", prefix);
}

static void ld_resnet(Loader *ld, UnetResnet *r, int cin, int cout, int temb, const char *prefix) {
    char p[200];
    r->cin = cin, r->cout = cout;
#define SUB(s) (snprintf(p, sizeof p, "%s.%s", prefix, s), p)
    ld_norm(ld, &r->norm1, cin, SUB("norm1"));
    ld_conv(ld, &r->conv1, cout, cin, 3, SUB("conv1"));
    ld_linear(ld, &r->time_emb_proj, cout, temb, 1, SUB("time_emb_proj"));
    ld_norm(ld, &r->norm2, cout, SUB("norm2"));
    ld_conv(ld, &r->conv2, cout, cout, 3, SUB("conv2"));
    if (cin != cout) ld_conv(ld, &r->conv_shortcut, cout, cin, 1, SUB("conv_shortcut"));
#undef SUB
}

static void ld_attention(Loader *ld, UnetAttention *a, int c, int ckv, int heads,
                         const char *prefix) {
    char p[220];
    a->heads = heads, a->head_dim = c / heads;
    snprintf(p, sizeof p, "%s.to_q", prefix);
    ld_linear(ld, &a->to_q, c, c, 0, p);
    snprintf(p, sizeof p, "%s.to_k", prefix);
    ld_linear(ld, &a->to_k, c, ckv, 0, p);
    snprintf(p, sizeof p, "%s.to_v", prefix);
    ld_linear(ld, &a->to_v, c, ckv, 0, p);
    snprintf(p, sizeof p, "%s.to_out.0", prefix);
    ld_linear(ld, &a->to_out, c, c, 1, p);
}

// proj_in / proj_out: a linear (C, C) or a 1x1 conv (C, C, 1, 1) seen as the linear it is.
static void ld_proj(Loader *ld, UnetParam *p, int c, int linear, const char *prefix) {
    if (linear) {
        ld_linear(ld, p, c, c, 1, prefix);
    } else {
        ld_conv(ld, p, c, c, 1, prefix);
        if (!ld->failed) p->w = tensor_reshape(&p->w, 2, SHAPE(c, c));
    }
}

static void ld_transformer(Loader *ld, UnetTransformer *t, const UnetConfig *cfg, int c, int heads,
                           int depth, int cross, const char *prefix) {
    char p[200];
    t->channels = c, t->heads = heads, t->depth = depth;
    t->blocks = calloc((size_t)depth, sizeof *t->blocks);
    if (!t->blocks) {
        snprintf(ld->err, ld->errlen, "unet: out of memory");
        ld->failed = 1;
        return;
    }
    snprintf(p, sizeof p, "%s.norm", prefix);
    ld_norm(ld, &t->norm, c, p);
    snprintf(p, sizeof p, "%s.proj_in", prefix);
    ld_proj(ld, &t->proj_in, c, cfg->use_linear_projection, p);
    for (int i = 0; i < depth; i++) {
        UnetTransformerBlock *b = &t->blocks[i];
        char q[240];
#define SUB(s) (snprintf(q, sizeof q, "%s.transformer_blocks.%d.%s", prefix, i, s), q)
        ld_norm(ld, &b->norm1, c, SUB("norm1"));
        ld_attention(ld, &b->attn1, c, c, heads, SUB("attn1"));
        ld_norm(ld, &b->norm2, c, SUB("norm2"));
        ld_attention(ld, &b->attn2, c, cross, heads, SUB("attn2"));
        ld_norm(ld, &b->norm3, c, SUB("norm3"));
        ld_linear(ld, &b->ff_in, 8 * (int64_t)c, c, 1, SUB("ff.net.0.proj"));
        ld_linear(ld, &b->ff_out, c, 4 * (int64_t)c, 1, SUB("ff.net.2"));
#undef SUB
    }
    snprintf(p, sizeof p, "%s.proj_out", prefix);
    ld_proj(ld, &t->proj_out, c, cfg->use_linear_projection, p);
}

// The architecture, channel for channel as diffusers' UNet2DConditionModel.__init__ builds it.
static void ld_unet(Loader *ld, Unet *m) {
    const UnetConfig *c = &m->cfg;
    const int n = c->nblocks, T = c->time_embed_dim, C0 = c->block_out_channels[0];
    char p[160];
    ld_conv(ld, &m->conv_in, C0, c->in_channels, 3, "conv_in");
    ld_linear(ld, &m->time_1, T, C0, 1, "time_embedding.linear_1");
    ld_linear(ld, &m->time_2, T, T, 1, "time_embedding.linear_2");
    if (c->addition_time_embed_dim) {
        ld_linear(ld, &m->add_1, T, c->projection_class_embeddings_input_dim, 1,
                  "add_embedding.linear_1");
        ld_linear(ld, &m->add_2, T, T, 1, "add_embedding.linear_2");
    }
    int out_ch = C0;
    for (int i = 0; i < n; i++) {
        UnetBlock *b = &m->down[i];
        int in_ch = out_ch;
        out_ch = c->block_out_channels[i];
        b->nlayers = c->layers[i], b->cross = c->down_cross[i], b->resample = i < n - 1,
        b->cout = out_ch;
        for (int j = 0; j < b->nlayers; j++) {
            snprintf(p, sizeof p, "down_blocks.%d.resnets.%d", i, j);
            ld_resnet(ld, &b->res[j], j ? out_ch : in_ch, out_ch, T, p);
            if (b->cross) {
                snprintf(p, sizeof p, "down_blocks.%d.attentions.%d", i, j);
                ld_transformer(ld, &b->attn[j], c, out_ch, c->heads[i], c->depth[i],
                               c->cross_dim[i], p);
            }
        }
        if (b->resample) {
            snprintf(p, sizeof p, "down_blocks.%d.downsamplers.0.conv", i);
            ld_conv(ld, &b->sample_conv, out_ch, out_ch, 3, p);
        }
    }
    const int top = c->block_out_channels[n - 1];
    ld_resnet(ld, &m->mid_res[0], top, top, T, "mid_block.resnets.0");
    ld_transformer(ld, &m->mid_attn, c, top, c->heads[n - 1], c->depth[n - 1], c->cross_dim[n - 1],
                   "mid_block.attentions.0");
    ld_resnet(ld, &m->mid_res[1], top, top, T, "mid_block.resnets.1");
    int prev = top;
    for (int i = 0; i < n; i++) {
        UnetBlock *b = &m->up[i];
        const int r = n - 1 - i;  // the down block this one mirrors
        const int oc = c->block_out_channels[r], ic = c->block_out_channels[r > 0 ? r - 1 : 0];
        b->nlayers = c->layers[r] + 1, b->cross = c->up_cross[i], b->resample = i < n - 1,
        b->cout = oc;
        for (int j = 0; j < b->nlayers; j++) {
            const int skip = j == b->nlayers - 1 ? ic : oc, rin = j ? oc : prev;
            snprintf(p, sizeof p, "up_blocks.%d.resnets.%d", i, j);
            ld_resnet(ld, &b->res[j], rin + skip, oc, T, p);
            if (b->cross) {
                snprintf(p, sizeof p, "up_blocks.%d.attentions.%d", i, j);
                ld_transformer(ld, &b->attn[j], c, oc, c->heads[r], c->up_depth[i], c->cross_dim[r],
                               p);
            }
        }
        if (b->resample) {
            snprintf(p, sizeof p, "up_blocks.%d.upsamplers.0.conv", i);
            ld_conv(ld, &b->sample_conv, oc, oc, 3, p);
        }
        prev = oc;
    }
    ld_norm(ld, &m->norm_out, C0, "conv_norm_out");
    ld_conv(ld, &m->conv_out, c->out_channels, C0, 3, "conv_out");
}

int unet_load_source(Unet *m, const UnetConfig *cfg, UnetTensorSource src, void *ctx, Arena *arena,
                     DType dt, char *err, size_t errlen) {
    memset(m, 0, sizeof *m);
    if (arena->dev == DEV_CPU && dt != DT_F32)
        return snprintf(err, errlen, "unet: the CPU back end computes in f32, not %s",
                        dtype_name(dt)),
               -1;
    m->cfg = *cfg;
    m->dtype = dt;
    m->dev = arena->dev;
    Loader ld = {src, ctx, arena, dt, err, errlen, 0};
    ld_unet(&ld, m);
    if (ld.failed) {
        unet_free(m);
        return -1;
    }
    return 0;
}

static int weights_source(void *ctx, const char *name, int ndim, const int64_t *shape, Arena *arena,
                          DType dt, Tensor *out, char *err, size_t errlen) {
    return weights_load((const Weights *)ctx, "unet", name, ndim, shape, arena, dt, out, err,
                        errlen);
}

int unet_load(Unet *m, const Weights *w, Arena *arena, DType dt, char *err, size_t errlen) {
    UnetConfig cfg;
    memset(m, 0, sizeof *m);
    if (unet_config(&cfg, w, err, errlen)) return -1;
    return unet_load_source(m, &cfg, weights_source, (void *)w, arena, dt, err, errlen);
}

static void free_transformer(UnetTransformer *t) {
    free(t->blocks);
    t->blocks = NULL;
}

void unet_free(Unet *m) {
    for (int i = 0; i < UNET_MAX_BLOCKS; i++)
        for (int j = 0; j < UNET_MAX_LAYERS; j++) {
            free_transformer(&m->down[i].attn[j]);
            free_transformer(&m->up[i].attn[j]);
        }
    free_transformer(&m->mid_attn);
}

// A source that only takes the space (and counts the values): for the sizes below.
static int count_source(void *ctx, const char *name, int ndim, const int64_t *shape, Arena *arena,
                        DType dt, Tensor *out, char *err, size_t errlen) {
    (void)name, (void)err, (void)errlen;
    *out = arena_tensor(arena, dt, ndim, shape);
    *(int64_t *)ctx += tensor_numel(out);
    return 0;
}

static size_t dry_load(const UnetConfig *cfg, DType dt, int64_t *params) {
    Arena a = unet_counting_arena(DEV_CUDA);  // device: no host dtype restriction
    Unet m;
    char err[256];
    *params = 0;
    if (unet_load_source(&m, cfg, count_source, params, &a, dt, err, sizeof err))
        STORY_FATAL("unet: sizing the weights failed: %s", err);
    unet_free(&m);
    return a.peak + 256;
}

int unet_load_shapes(Unet *m, const UnetConfig *cfg, DType dt, Device dev, char *err,
                     size_t errlen) {
    Arena a = unet_counting_arena(dev);
    int64_t n = 0;
    return unet_load_source(m, cfg, count_source, &n, &a, dt, err, errlen);
}

size_t unet_weight_bytes(const UnetConfig *cfg, DType dt) {
    int64_t n;
    return dry_load(cfg, dt, &n);
}

int64_t unet_param_count(const UnetConfig *cfg) {
    int64_t n;
    dry_load(cfg, DT_F32, &n);
    return n;
}

Arena unet_counting_arena(Device dev) {
    Arena a;
    memset(&a, 0, sizeof a);
    // Never dereferenced: allocations only advance `used` (and `peak`).
    a.base = (char *)(uintptr_t)4096;
    a.cap = (size_t)1 << 60;
    a.dev = dev;
    return a;
}

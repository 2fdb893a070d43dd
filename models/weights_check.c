// models/weights_check.c: what `storyrun inspect` reports about a model. Every tensor a
// component's config implies (diffusers' UNet2DConditionModel, AutoencoderKL,
// CLIPTextModel(WithProjection) module trees) must be there; the configs must agree with
// the shapes and with each other (the UNet's context width is the text encoders' widths);
// mixed dtypes, unused tensors and assumed values are noted.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "models/weights_impl.h"

typedef struct {
    WeightsProblem *out;
    int cap, n;
} Report;

#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
static void
add(Report *r, WeightsSeverity s, const char *fmt, ...) {
    if (r->n < r->cap) {
        va_list ap;
        va_start(ap, fmt);
        r->out[r->n].severity = s;
        vsnprintf(r->out[r->n].msg, sizeof r->out[r->n].msg, fmt, ap);
        va_end(ap);
    }
    r->n++;
}

// ---- config values ------------------------------------------------------------------

enum { MAXB = 8 };

// Names of tensors (short; a cut one is simply not found).
#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
static void
namef(char *buf, size_t n, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, n, fmt, ap);
    va_end(ap);
}
#define NAMEF(buf, ...) namef((buf), sizeof(buf), __VA_ARGS__)

// An int, or a list of ints (n of them, at most MAXB); returns the count, 0 if absent.
static int cfg_ints(const WComponent *c, const char *key, int64_t *v) {
    const JsonValue *x = c && c->config ? json_get(json_root(c->config), key) : NULL;
    if (!x) return 0;
    if (x->type == JSON_NUMBER && x->is_int) {
        v[0] = x->i;
        return 1;
    }
    if (x->type != JSON_ARRAY) return 0;
    int n = 0;
    for (size_t i = 0; i < x->len && n < MAXB; i++)
        if (x->items[i].type == JSON_NUMBER && x->items[i].is_int) v[n++] = x->items[i].i;
    return n;
}

static int64_t cfg_int(const WComponent *c, const char *key, int64_t dflt) {
    int64_t v[MAXB];
    return cfg_ints(c, key, v) == 1 ? v[0] : dflt;
}

static const char *cfg_str(const WComponent *c, const char *key) {
    const JsonValue *x = c && c->config ? json_get(json_root(c->config), key) : NULL;
    return x && x->type == JSON_STRING ? x->str : NULL;
}

// n ints per block: a single value repeats.
static void per_block(const WComponent *c, const char *key, int64_t dflt, int64_t *v, int nb) {
    int64_t x[MAXB];
    int n = cfg_ints(c, key, x);
    for (int i = 0; i < nb; i++) v[i] = n == 0 ? dflt : n == 1 ? x[0] : i < n ? x[i] : x[n - 1];
}

// ---- expected names -----------------------------------------------------------------

typedef struct {
    const WComponent *c;
    Report *r;
    int missing;
    char first[3][200];
    int expected;
} Want;

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static void
want(Want *x, const char *fmt, ...) {
    char name[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    x->expected++;
    if (w_lookup(x->c, name)) return;
    if (x->missing < 3) NAMEF(x->first[x->missing], "%s", name);
    x->missing++;
}

static void want_wb(Want *x, const char *p) {
    want(x, "%s.weight", p);
    want(x, "%s.bias", p);
}

static void want_resnet(Want *x, const char *p, bool temb, bool shortcut) {
    static const char *parts[] = {"norm1", "conv1", "norm2", "conv2"};
    char q[200];
    for (int i = 0; i < 4; i++) {
        NAMEF(q, "%s.%s", p, parts[i]);
        want_wb(x, q);
    }
    if (temb) {
        NAMEF(q, "%s.time_emb_proj", p);
        want_wb(x, q);
    }
    if (shortcut) {
        NAMEF(q, "%s.conv_shortcut", p);
        want_wb(x, q);
    }
}

// Transformer2DModel with `depth` BasicTransformerBlocks (self-attention, cross-attention
// and GEGLU feed-forward).
static void want_transformer(Want *x, const char *p, int64_t depth) {
    char q[200];
    static const char *wb[] = {"norm", "proj_in", "proj_out"};
    for (int i = 0; i < 3; i++) {
        NAMEF(q, "%s.%s", p, wb[i]);
        want_wb(x, q);
    }
    for (int64_t t = 0; t < depth; t++) {
        static const char *blk[] = {"norm1",          "norm2",         "norm3",   "attn1.to_out.0",
                                    "attn2.to_out.0", "ff.net.0.proj", "ff.net.2"};
        for (int i = 0; i < 7; i++) {
            NAMEF(q, "%s.transformer_blocks.%lld.%s", p, (long long)t, blk[i]);
            want_wb(x, q);
        }
        for (int a = 1; a <= 2; a++)
            for (int k = 0; k < 3; k++)
                want(x, "%s.transformer_blocks.%lld.attn%d.to_%c.weight", p, (long long)t, a,
                     "qkv"[k]);
    }
}

static void want_unet(Want *x) {
    const WComponent *c = x->c;
    int64_t ch[MAXB], depth[MAXB];
    int nb = cfg_ints(c, "block_out_channels", ch);
    int64_t L = cfg_int(c, "layers_per_block", 2);
    per_block(c, "transformer_layers_per_block", 1, depth, nb);
    const JsonValue *down = json_get(json_root(c->config), "down_block_types");
    const JsonValue *up = json_get(json_root(c->config), "up_block_types");
    char p[200];
    want_wb(x, "conv_in");
    want_wb(x, "time_embedding.linear_1");
    want_wb(x, "time_embedding.linear_2");
    want_wb(x, "conv_norm_out");
    want_wb(x, "conv_out");
    const char *add = cfg_str(c, "addition_embed_type");
    if (add && !strcmp(add, "text_time")) {
        want_wb(x, "add_embedding.linear_1");
        want_wb(x, "add_embedding.linear_2");
    }
    for (int i = 0; i < nb; i++) {
        const JsonValue *t = json_at(down, (size_t)i);
        bool attn = t && t->type == JSON_STRING && strstr(t->str, "CrossAttn");
        for (int64_t j = 0; j < L; j++) {
            int64_t in = j == 0 ? (i == 0 ? ch[0] : ch[i - 1]) : ch[i];
            NAMEF(p, "down_blocks.%d.resnets.%lld", i, (long long)j);
            want_resnet(x, p, true, in != ch[i]);
            if (attn) {
                NAMEF(p, "down_blocks.%d.attentions.%lld", i, (long long)j);
                want_transformer(x, p, depth[i]);
            }
        }
        if (i + 1 < nb) {
            NAMEF(p, "down_blocks.%d.downsamplers.0.conv", i);
            want_wb(x, p);
        }
    }
    if (nb) {
        want_resnet(x, "mid_block.resnets.0", true, false);
        want_resnet(x, "mid_block.resnets.1", true, false);
        want_transformer(x, "mid_block.attentions.0", depth[nb - 1]);
    }
    for (int i = 0; i < nb; i++) {  // up blocks run from the lowest resolution: reversed
        const JsonValue *t = json_at(up, (size_t)i);
        bool attn = t && t->type == JSON_STRING && strstr(t->str, "CrossAttn");
        for (int64_t j = 0; j <= L; j++) {  // every up resnet takes a skip: conv_shortcut
            NAMEF(p, "up_blocks.%d.resnets.%lld", i, (long long)j);
            want_resnet(x, p, true, true);
            if (attn) {
                NAMEF(p, "up_blocks.%d.attentions.%lld", i, (long long)j);
                want_transformer(x, p, depth[nb - 1 - i]);
            }
        }
        if (i + 1 < nb) {
            NAMEF(p, "up_blocks.%d.upsamplers.0.conv", i);
            want_wb(x, p);
        }
    }
}

static void want_vae_mid(Want *x, const char *coder, bool attn) {
    char p[200];
    for (int k = 0; k < 2; k++) {
        NAMEF(p, "%s.mid_block.resnets.%d", coder, k);
        want_resnet(x, p, false, false);
    }
    static const char *a[] = {"group_norm", "to_q", "to_k", "to_v", "to_out.0"};
    for (int k = 0; attn && k < 5; k++) {
        NAMEF(p, "%s.mid_block.attentions.0.%s", coder, a[k]);
        want_wb(x, p);
    }
}

static void want_vae(Want *x) {
    const WComponent *c = x->c;
    int64_t ch[MAXB];
    int nb = cfg_ints(c, "block_out_channels", ch);
    int64_t L = cfg_int(c, "layers_per_block", 2);
    const JsonValue *mid = json_get(json_root(c->config), "mid_block_add_attention");
    bool attn = !mid || mid->type != JSON_BOOL || mid->boolean;
    char p[200];
    want_wb(x, "encoder.conv_in");
    for (int i = 0; i < nb; i++) {
        for (int64_t j = 0; j < L; j++) {
            int64_t in = j == 0 ? (i == 0 ? ch[0] : ch[i - 1]) : ch[i];
            NAMEF(p, "encoder.down_blocks.%d.resnets.%lld", i, (long long)j);
            want_resnet(x, p, false, in != ch[i]);
        }
        if (i + 1 < nb) {
            NAMEF(p, "encoder.down_blocks.%d.downsamplers.0.conv", i);
            want_wb(x, p);
        }
    }
    want_vae_mid(x, "encoder", attn);
    want_wb(x, "encoder.conv_norm_out");
    want_wb(x, "encoder.conv_out");
    const JsonValue *q = json_get(json_root(c->config), "use_quant_conv");
    if (!q || q->type != JSON_BOOL || q->boolean) want_wb(x, "quant_conv");
    q = json_get(json_root(c->config), "use_post_quant_conv");
    if (!q || q->type != JSON_BOOL || q->boolean) want_wb(x, "post_quant_conv");
    want_wb(x, "decoder.conv_in");
    want_vae_mid(x, "decoder", attn);
    for (int i = 0; i < nb; i++) {
        int64_t out = ch[nb - 1 - i], prev = i == 0 ? out : ch[nb - i];
        for (int64_t j = 0; j <= L; j++) {
            NAMEF(p, "decoder.up_blocks.%d.resnets.%lld", i, (long long)j);
            want_resnet(x, p, false, j == 0 && prev != out);
        }
        if (i + 1 < nb) {
            NAMEF(p, "decoder.up_blocks.%d.upsamplers.0.conv", i);
            want_wb(x, p);
        }
    }
    want_wb(x, "decoder.conv_norm_out");
    want_wb(x, "decoder.conv_out");
}

static void want_clip(Want *x, bool projection) {
    int64_t layers = cfg_int(x->c, "num_hidden_layers", 0);
    want(x, "text_model.embeddings.token_embedding.weight");
    want(x, "text_model.embeddings.position_embedding.weight");
    char p[200];
    for (int64_t l = 0; l < layers; l++) {
        static const char *parts[] = {"layer_norm1",      "layer_norm2",      "self_attn.q_proj",
                                      "self_attn.k_proj", "self_attn.v_proj", "self_attn.out_proj",
                                      "mlp.fc1",          "mlp.fc2"};
        for (int i = 0; i < 8; i++) {
            NAMEF(p, "text_model.encoder.layers.%lld.%s", (long long)l, parts[i]);
            want_wb(x, p);
        }
    }
    want_wb(x, "text_model.final_layer_norm");
    if (projection) want(x, "text_projection.weight");
}

// ---- config vs shapes ---------------------------------------------------------------

// The structural keys of the config must match what the tensors say.
static void compare_config(const Weights *w, const WComponent *c, Report *r) {
    static const char *unet_keys[] = {"in_channels",
                                      "out_channels",
                                      "block_out_channels",
                                      "layers_per_block",
                                      "cross_attention_dim",
                                      "transformer_layers_per_block",
                                      "down_block_types",
                                      "up_block_types",
                                      "projection_class_embeddings_input_dim",
                                      "use_linear_projection",
                                      NULL};
    static const char *vae_keys[] = {"in_channels",        "out_channels",     "latent_channels",
                                     "block_out_channels", "layers_per_block", NULL};
    static const char *clip_keys[] = {"vocab_size",
                                      "hidden_size",
                                      "intermediate_size",
                                      "num_hidden_layers",
                                      "max_position_embeddings",
                                      NULL};
    const char **keys = !strcmp(c->name, "unet")  ? unet_keys
                        : !strcmp(c->name, "vae") ? vae_keys
                                                  : clip_keys;
    char err[512];
    JsonDoc *d = wcfg_derive(w, c, NULL, err, sizeof err);
    if (!d) return;
    for (int i = 0; keys[i]; i++) {
        const JsonValue *a = json_get(json_root(c->config), keys[i]),
                        *b = json_get(json_root(d), keys[i]);
        if (!a || !b) continue;
        WBuf x = {0}, y = {0};
        wb_json_value(&x, a);
        wb_json_value(&y, b);
        // an int equals a list of that int repeated (transformer_layers_per_block)
        bool same = !strcmp(x.s, y.s);
        if (!same && a->type == JSON_NUMBER && b->type == JSON_ARRAY) {
            same = b->len > 0;
            for (size_t k = 0; k < b->len; k++)
                same &= !strcmp(b->items[k].str ? b->items[k].str : "", a->str);
        }
        if (!same && !(a->type == JSON_NULL && b->type == JSON_NULL))
            add(r, WP_ERROR, "%s: config says %s = %s, the tensors say %s", c->name, keys[i], x.s,
                y.s);
        free(x.s);
        free(y.s);
    }
    json_free(d);
}

// ---- the checks ---------------------------------------------------------------------

static void check_component(const Weights *w, const WComponent *c, Report *r) {
    bool unet = !strcmp(c->name, "unet"), vae = !strcmp(c->name, "vae"),
         clip = !strncmp(c->name, "text_encoder", 12);
    if (!unet && !vae && !clip) return;
    if (!c->config) {
        add(r, WP_ERROR, "%s: no config", c->name);
        return;
    }
    Want x = {.c = c, .r = r};
    if (unet) want_unet(&x);
    if (vae) want_vae(&x);
    if (clip) {
        const JsonValue *arch = json_at(json_get(json_root(c->config), "architectures"), 0);
        bool proj = (arch && arch->type == JSON_STRING && strstr(arch->str, "WithProjection")) ||
                    (w->family == FAMILY_SDXL && !strcmp(c->name, "text_encoder_2"));
        want_clip(&x, proj);
    }
    if (x.missing)
        add(r, WP_ERROR, "%s: %d of the %d tensors its config needs are missing: %s%s%s%s%s%s",
            c->name, x.missing, x.expected, x.first[0], x.missing > 1 ? ", " : "",
            x.missing > 1 ? x.first[1] : "", x.missing > 2 ? ", " : "",
            x.missing > 2 ? x.first[2] : "", x.missing > 3 ? ", ..." : "");
    if (!c->derived) compare_config(w, c, r);
    int extra = c->n - (x.expected - x.missing);  // present but not in the module tree
    for (int i = 0; i < c->n; i++)
        if (strstr(c->t[i].name, "position_ids")) extra--;  // a buffer older saves include
    if (extra > 0) add(r, WP_NOTE, "%s: %d tensors that the model does not use", c->name, extra);
    // dtypes of the floating-point tensors
    int count[ST_NDTYPES] = {0}, kinds = 0;
    for (int i = 0; i < c->n; i++) count[c->t[i].e->dtype]++;
    char list[200] = "";
    size_t o = 0;
    for (int d = 0; d < ST_NDTYPES; d++) {
        if (!count[d] || (d != ST_F16 && d != ST_BF16 && d != ST_F32 && d != ST_F64)) continue;
        kinds++;
        o += (size_t)snprintf(list + o, sizeof list - o, "%s%s (%d)", o ? ", " : "",
                              st_dtype_name((StDType)d), count[d]);
        if (o >= sizeof list) break;
    }
    if (kinds > 1) add(r, WP_NOTE, "%s: mixed dtypes: %s", c->name, list);
    // heads must divide the widths
    if (clip) {
        int64_t h = cfg_int(c, "hidden_size", 0), n = cfg_int(c, "num_attention_heads", 0);
        if (n <= 0 || h % n)
            add(r, WP_ERROR, "%s: num_attention_heads %lld does not divide hidden_size %lld",
                c->name, (long long)n, (long long)h);
    }
    if (unet) {
        int64_t ch[MAXB], heads[MAXB];
        int nb = cfg_ints(c, "block_out_channels", ch);
        per_block(c, "attention_head_dim", 8, heads, nb);
        for (int i = 0; i < nb; i++)
            if (heads[i] <= 0 || ch[i] % heads[i])
                add(r, WP_ERROR, "unet: block %d: %lld heads do not divide %lld channels", i,
                    (long long)heads[i], (long long)ch[i]);
    }
}

int weights_check(const Weights *w, WeightsProblem *out, int cap) {
    Report r = {out, cap, 0};
    const char *need[] = {"unet",           "vae",        "text_encoder", "tokenizer",
                          "text_encoder_2", "tokenizer_2"};
    int nneed = w->family == FAMILY_SDXL ? 6 : 4;
    for (int i = 0; i < nneed; i++) {
        const WComponent *c = w_component_c(w, need[i]);
        bool tok = !strncmp(need[i], "tokenizer", 9);
        if (!c || (!tok && !c->n))
            add(&r, WP_ERROR, "%s: missing (a %s model needs it)%s", need[i],
                family_name(w->family),
                w->layout == LAYOUT_SINGLE_FILE && !strcmp(need[i], "vae")
                    ? ": no first_stage_model.* in the file"
                    : "");
        else if (tok && !c->tok_dir)
            add(&r, WP_ERROR,
                "%s: no vocabulary: the model has none and storyrun's CLIP vocabulary "
                "was not found (set STORYRUN_CLIP_DIR=PREFIX/share/storyrun/clip)",
                need[i]);
        else if (tok && c->dir && strcmp(c->dir, c->tok_dir))
            add(&r, WP_WARNING, "%s: the folder has no vocab.json: using %s", need[i], c->tok_dir);
        else if (tok && !c->dir)
            add(&r, WP_NOTE, "%s: storyrun's CLIP vocabulary (%s)", need[i], c->tok_dir);
    }
    for (int i = 0; i < w->ncomp; i++) check_component(w, &w->comp[i], &r);
    for (int i = 0; i < w->nskipped; i++) add(&r, WP_NOTE, "%s", w->skipped[i]);
    // across components: the UNet's context is the text encoders' hidden states
    const WComponent *unet = w_component_c(w, "unet"), *vae = w_component_c(w, "vae"),
                     *te = w_component_c(w, "text_encoder"),
                     *te2 = w_component_c(w, "text_encoder_2");
    int64_t ctx = cfg_int(unet, "cross_attention_dim", -1);
    int64_t h1 = cfg_int(te, "hidden_size", 0), h2 = te2 ? cfg_int(te2, "hidden_size", 0) : 0;
    if (unet && te && ctx != h1 + h2) {
        char widths[64];
        NAMEF(widths, te2 ? "%lld + %lld" : "%lld", (long long)h1, (long long)h2);
        add(&r, WP_ERROR, "unet cross_attention_dim %lld != the text encoder width%s %s",
            (long long)ctx, te2 ? "s" : "", widths);
    }
    if (w->family == FAMILY_SDXL && unet && te2) {
        int64_t in = cfg_int(unet, "projection_class_embeddings_input_dim", -1),
                t = cfg_int(unet, "addition_time_embed_dim", -1),
                p = cfg_int(te2, "projection_dim", -1);
        if (in != 6 * t + p)
            add(&r, WP_ERROR,
                "unet projection_class_embeddings_input_dim %lld != 6 x "
                "addition_time_embed_dim %lld + text_encoder_2 projection_dim %lld",
                (long long)in, (long long)t, (long long)p);
    }
    int64_t lat = cfg_int(vae, "latent_channels", -1), uin = cfg_int(unet, "in_channels", -1);
    if (vae && unet && lat != uin)
        add(&r, WP_WARNING,
            "vae latent_channels %lld != unet in_channels %lld (an inpainting "
            "model? storyrun generates from noise only)",
            (long long)lat, (long long)uin);
    if (w->layout == LAYOUT_SINGLE_FILE) {
        const char *ex;
        int n = weights_unused(w, &ex);
        if (n) add(&r, WP_NOTE, "%d tensors of the file are not used (e.g. %s)", n, ex);
        if (w->family == FAMILY_SD2)
            add(&r, WP_WARNING,
                "scheduler: the prediction type is not in the weights; assuming "
                "v_prediction (SD2.x 768-v); SD2.x base (512) models predict epsilon");
        for (int i = 0; i < st_meta_count(&w->files[0]); i++) {
            const char *v, *k = st_meta_at(&w->files[0], i, &v);
            if (!strncmp(k, "storyrun.config.", 16))
                add(&r, WP_NOTE, "%s: config values from the file's metadata: %s", k + 16, v);
        }
    }
    return r.n;
}

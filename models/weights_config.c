// models/weights_config.c: the configs a single-file checkpoint does not carry, derived
// from its tensors (already under their diffusers names) with diffusers' config.json keys,
// so that models read one kind of config whatever the layout.
//
// From the shapes: channels, block counts and types, layers per block, transformer depth
// per block, cross-attention width, linear vs conv projections, the add embedding's input,
// text encoder widths, depth, vocabulary and positions, the projection width.
// The families' known values where no shape tells (diffusers' published configs):
//   UNet attention_head_dim (the number of heads, a misnomer kept from diffusers): SD1.x 8;
//     SD2.x and SDXL: channels / 64 per block ([5, 10, 20, 20] and [5, 10, 20]);
//     upcast_attention true for SD2.x; sample_size 64 / 96 / 128 latents.
//   Text encoders: heads = hidden / 64 (ViT-L 12, ViT-H 16, bigG 20); quick_gelu for the
//     OpenAI CLIP towers, gelu for OpenCLIP; SDXL's addition_time_embed_dim 256.
//   VAE: scaling_factor 0.18215 (SD1.x, SD2.x) or 0.13025 (SDXL), 32 groups.
// A "storyrun.config.<component>" metadata object is merged last (it wins).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "models/weights_impl.h"
#include "runner/check.h"

// ---- text building ------------------------------------------------------------------

void wb_printf(WBuf *b, const char *fmt, ...) {
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->s ? b->s + b->n : NULL, b->s ? b->cap - b->n : 0, fmt, ap);
        va_end(ap);
        if (n < 0) STORY_FATAL("vsnprintf failed");
        if (b->s && b->n + (size_t)n < b->cap) {
            b->n += (size_t)n;
            return;
        }
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + (size_t)n + 1) cap *= 2;
        b->s = realloc(b->s, cap);
        if (!b->s) STORY_FATAL("out of memory (%zu bytes)", cap);
        b->cap = cap;
        b->s[b->n] = '\0';
    }
}

void wb_json_string(WBuf *b, const char *s) {
    wb_printf(b, "\"");
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            wb_printf(b, "\\%c", ch);
        else if (ch < 0x20)
            wb_printf(b, "\\u%04x", ch);
        else
            wb_printf(b, "%c", ch);
    }
    wb_printf(b, "\"");
}

void wb_json_value(WBuf *b, const JsonValue *v) {
    switch (v->type) {
    case JSON_NULL: wb_printf(b, "null"); break;
    case JSON_BOOL: wb_printf(b, v->boolean ? "true" : "false"); break;
    case JSON_NUMBER: wb_printf(b, "%s", v->str); break;
    case JSON_STRING: wb_json_string(b, v->str); break;
    case JSON_ARRAY:
        wb_printf(b, "[");
        for (size_t i = 0; i < v->len; i++) {
            if (i) wb_printf(b, ", ");
            wb_json_value(b, &v->items[i]);
        }
        wb_printf(b, "]");
        break;
    case JSON_OBJECT:
        wb_printf(b, "{");
        for (size_t i = 0; i < v->len; i++) {
            if (i) wb_printf(b, ", ");
            wb_json_string(b, v->members[i].key);
            wb_printf(b, ": ");
            wb_json_value(b, &v->members[i].value);
        }
        wb_printf(b, "}");
        break;
    }
}

// An ordered list of key -> JSON text; setting a key again replaces its value in place.
enum { KV_MAX = 48 };
typedef struct {
    char key[64];
    WBuf val;
} Kv;
typedef struct {
    Kv kv[KV_MAX];
    int n;
} Kvs;

static WBuf *kv_slot(Kvs *m, const char *key) {
    for (int i = 0; i < m->n; i++)
        if (!strcmp(m->kv[i].key, key)) {
            m->kv[i].val.n = 0;
            m->kv[i].val.s[0] = '\0';
            return &m->kv[i].val;
        }
    if (m->n == KV_MAX) STORY_FATAL("derived config has more than %d keys", KV_MAX);
    Kv *k = &m->kv[m->n++];
    snprintf(k->key, sizeof k->key, "%s", key);
    memset(&k->val, 0, sizeof k->val);
    return &k->val;
}

#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
static void
kv(Kvs *m, const char *key, const char *fmt, ...) {
    WBuf *b = kv_slot(m, key);
    char tmp[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    wb_printf(b, "%s", tmp);
}

static void kv_ints(Kvs *m, const char *key, const int64_t *v, int n, bool collapse) {
    bool same = true;
    for (int i = 1; i < n; i++) same &= v[i] == v[0];
    WBuf *b = kv_slot(m, key);
    if (collapse && same && n) {
        wb_printf(b, "%lld", (long long)v[0]);
        return;
    }
    wb_printf(b, "[");
    for (int i = 0; i < n; i++) wb_printf(b, "%s%lld", i ? ", " : "", (long long)v[i]);
    wb_printf(b, "]");
}

static void kv_strs(Kvs *m, const char *key, const char *const *v, int n) {
    WBuf *b = kv_slot(m, key);
    wb_printf(b, "[");
    for (int i = 0; i < n; i++) {
        if (i) wb_printf(b, ", ");
        wb_json_string(b, v[i]);
    }
    wb_printf(b, "]");
}

// ---- shapes -------------------------------------------------------------------------

#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
static int64_t
dim_of(const WComponent *c, int d, const char *fmt, ...) {
    char name[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    const WTensor *t = w_lookup(c, name);
    return t && d < t->ndim ? t->shape[d] : -1;
}

// 1 + the largest N of names "<prefix>N." (0 when none).
static int count_index(const WComponent *c, const char *prefix) {
    size_t pl = strlen(prefix);
    int n = 0;
    for (int i = 0; i < c->n; i++) {
        if (strncmp(c->t[i].name, prefix, pl)) continue;
        char *end;
        long v = strtol(c->t[i].name + pl, &end, 10);
        if (end != c->t[i].name + pl && *end == '.' && v + 1 > n) n = (int)v + 1;
    }
    return n;
}

static const WTensor *find_suffix(const WComponent *c, const char *suffix) {
    size_t sl = strlen(suffix);
    for (int i = 0; i < c->n; i++) {
        size_t n = strlen(c->t[i].name);
        if (n >= sl && !strcmp(c->t[i].name + n - sl, suffix)) return &c->t[i];
    }
    return NULL;
}

enum { MAXB = 8 };

static void derive_unet(const Weights *w, const WComponent *c, Kvs *m) {
    ModelFamily f = w->family;
    int nb = count_index(c, "down_blocks.");
    if (nb > MAXB) nb = MAXB;
    int64_t ch[MAXB], depth[MAXB], heads[MAXB];
    const char *down[MAXB], *up[MAXB];
    for (int i = 0; i < nb; i++) {
        ch[i] = dim_of(c, 0, "down_blocks.%d.resnets.0.conv1.weight", i);
        char p[96];
        snprintf(p, sizeof p, "down_blocks.%d.attentions.0.transformer_blocks.", i);
        depth[i] = count_index(c, p);
        down[i] = depth[i] ? "CrossAttnDownBlock2D" : "DownBlock2D";
        if (!depth[i]) depth[i] = 1;
        snprintf(p, sizeof p, "up_blocks.%d.attentions.", i);
        up[i] = count_index(c, p) ? "CrossAttnUpBlock2D" : "UpBlock2D";
        heads[i] = f == FAMILY_SD1 ? 8 : ch[i] / 64 > 1 ? ch[i] / 64 : 1;
    }
    kv(m, "_class_name", "\"UNet2DConditionModel\"");
    kv(m, "sample_size", "%d", f == FAMILY_SDXL ? 128 : f == FAMILY_SD2 ? 96 : 64);
    kv(m, "in_channels", "%lld", (long long)dim_of(c, 1, "conv_in.weight"));
    kv(m, "out_channels", "%lld", (long long)dim_of(c, 0, "conv_out.weight"));
    kv_strs(m, "down_block_types", down, nb);
    kv_strs(m, "up_block_types", up, nb);
    kv_ints(m, "block_out_channels", ch, nb, false);
    kv(m, "layers_per_block", "%d", count_index(c, "down_blocks.0.resnets."));
    const WTensor *k = find_suffix(c, ".attn2.to_k.weight");
    kv(m, "cross_attention_dim", "%lld", (long long)(k && k->ndim == 2 ? k->shape[1] : -1));
    kv_ints(m, "attention_head_dim", heads, nb, f == FAMILY_SD1);
    const WTensor *pin = find_suffix(c, ".proj_in.weight");
    kv(m, "use_linear_projection", "%s", pin && pin->ndim == 2 ? "true" : "false");
    kv_ints(m, "transformer_layers_per_block", depth, nb, true);
    kv(m, "upcast_attention", "%s", f == FAMILY_SD2 ? "true" : "false");
    int64_t add_in = dim_of(c, 1, "add_embedding.linear_1.weight");
    if (add_in > 0) {
        // add_embedding input = 6 time ids x addition_time_embed_dim + the pooled width
        const WComponent *te2 = w_component_c(w, "text_encoder_2");
        int64_t pooled = te2 ? dim_of(te2, 0, "text_projection.weight") : -1;
        int64_t tdim = pooled > 0 && add_in > pooled && (add_in - pooled) % 6 == 0
                           ? (add_in - pooled) / 6
                           : 256;
        kv(m, "addition_embed_type", "\"text_time\"");
        kv(m, "addition_time_embed_dim", "%lld", (long long)tdim);
        kv(m, "projection_class_embeddings_input_dim", "%lld", (long long)add_in);
    } else {
        kv(m, "addition_embed_type", "null");
        kv(m, "addition_time_embed_dim", "null");
        kv(m, "projection_class_embeddings_input_dim", "null");
    }
    kv(m, "class_embed_type", "null");
    kv(m, "mid_block_type", "\"UNetMidBlock2DCrossAttn\"");
    kv(m, "norm_num_groups", "32");
    kv(m, "norm_eps", "1e-05");
    kv(m, "act_fn", "\"silu\"");
    kv(m, "flip_sin_to_cos", "true");
    kv(m, "freq_shift", "0");
    kv(m, "center_input_sample", "false");
    kv(m, "downsample_padding", "1");
    kv(m, "mid_block_scale_factor", "1");
    kv(m, "only_cross_attention", "false");
    kv(m, "dual_cross_attention", "false");
    kv(m, "resnet_time_scale_shift", "\"default\"");
    kv(m, "time_embedding_type", "\"positional\"");
    kv(m, "num_attention_heads", "null");
}

static void derive_vae(const Weights *w, const WComponent *c, Kvs *m) {
    ModelFamily f = w->family;
    int nb = count_index(c, "encoder.down_blocks.");
    if (nb > MAXB) nb = MAXB;
    int64_t ch[MAXB];
    const char *down[MAXB], *up[MAXB];
    for (int i = 0; i < nb; i++) {
        ch[i] = dim_of(c, 0, "encoder.down_blocks.%d.resnets.0.conv1.weight", i);
        down[i] = "DownEncoderBlock2D";
        up[i] = "UpDecoderBlock2D";
    }
    kv(m, "_class_name", "\"AutoencoderKL\"");
    kv(m, "in_channels", "%lld", (long long)dim_of(c, 1, "encoder.conv_in.weight"));
    kv(m, "out_channels", "%lld", (long long)dim_of(c, 0, "decoder.conv_out.weight"));
    kv(m, "latent_channels", "%lld", (long long)dim_of(c, 1, "decoder.conv_in.weight"));
    kv_strs(m, "down_block_types", down, nb);
    kv_strs(m, "up_block_types", up, nb);
    kv_ints(m, "block_out_channels", ch, nb, false);
    kv(m, "layers_per_block", "%d", count_index(c, "encoder.down_blocks.0.resnets."));
    kv(m, "norm_num_groups", "32");
    kv(m, "act_fn", "\"silu\"");
    kv(m, "sample_size", "%d", f == FAMILY_SDXL ? 1024 : f == FAMILY_SD2 ? 768 : 512);
    kv(m, "scaling_factor", "%s", f == FAMILY_SDXL ? "0.13025" : "0.18215");
    kv(m, "force_upcast", "true");
    kv(m, "use_quant_conv", "%s", w_lookup(c, "quant_conv.weight") ? "true" : "false");
    kv(m, "use_post_quant_conv", "%s", w_lookup(c, "post_quant_conv.weight") ? "true" : "false");
    kv(m, "mid_block_add_attention", "%s",
       w_lookup(c, "encoder.mid_block.attentions.0.to_q.weight") ? "true" : "false");
}

static void derive_clip(const Weights *w, const WComponent *c, Kvs *m) {
    // OpenCLIP towers: SD2.x's text_encoder and SDXL's text_encoder_2
    bool openclip = w->family == FAMILY_SD2 || !strcmp(c->name, "text_encoder_2");
    int64_t hidden = dim_of(c, 1, "text_model.embeddings.token_embedding.weight");
    int64_t proj = dim_of(c, 0, "text_projection.weight");
    kv(m, "architectures", "[\"%s\"]", proj > 0 ? "CLIPTextModelWithProjection" : "CLIPTextModel");
    kv(m, "model_type", "\"clip_text_model\"");
    kv(m, "vocab_size", "%lld",
       (long long)dim_of(c, 0, "text_model.embeddings.token_embedding.weight"));
    kv(m, "hidden_size", "%lld", (long long)hidden);
    kv(m, "intermediate_size", "%lld",
       (long long)dim_of(c, 0, "text_model.encoder.layers.0.mlp.fc1.weight"));
    kv(m, "num_hidden_layers", "%d", count_index(c, "text_model.encoder.layers."));
    kv(m, "num_attention_heads", "%lld", (long long)(hidden / 64 > 1 ? hidden / 64 : 1));
    kv(m, "max_position_embeddings", "%lld",
       (long long)dim_of(c, 0, "text_model.embeddings.position_embedding.weight"));
    kv(m, "hidden_act", "\"%s\"", openclip ? "gelu" : "quick_gelu");
    kv(m, "layer_norm_eps", "1e-05");
    if (proj > 0) kv(m, "projection_dim", "%lld", (long long)proj);
    // the ids of the published SD configs (eos 2: pooled at the argmax id, the first EOS)
    kv(m, "bos_token_id", "0");
    kv(m, "eos_token_id", "2");
    kv(m, "pad_token_id", "1");
    kv(m, "attention_dropout", "0.0");
    kv(m, "dropout", "0.0");
    kv(m, "initializer_factor", "1.0");
    kv(m, "initializer_range", "0.02");
}

static JsonDoc *kvs_doc(Kvs *m, const char *what, char *err, size_t errlen) {
    WBuf b = {0};
    wb_printf(&b, "{\n");
    for (int i = 0; i < m->n; i++) {
        wb_printf(&b, "  ");
        wb_json_string(&b, m->kv[i].key);
        wb_printf(&b, ": %s%s\n", m->kv[i].val.s, i + 1 < m->n ? "," : "");
        free(m->kv[i].val.s);
    }
    wb_printf(&b, "}\n");
    JsonError je;
    JsonDoc *d = json_parse(what, b.s, b.n, NULL, &je);
    if (!d) w_err(err, errlen, "%s", je.msg);  // a bug: the text above is ours
    free(b.s);
    return d;
}

JsonDoc *wcfg_derive(const Weights *w, const WComponent *c, const char *hints, char *err,
                     size_t errlen) {
    Kvs m;
    m.n = 0;
    if (!strcmp(c->name, "unet"))
        derive_unet(w, c, &m);
    else if (!strcmp(c->name, "vae"))
        derive_vae(w, c, &m);
    else
        derive_clip(w, c, &m);
    char what[600];
    if (hints) {
        snprintf(what, sizeof what, "%s (metadata storyrun.config.%s)", w->path, c->name);
        JsonError je;
        JsonDoc *h = json_parse(what, hints, strlen(hints), NULL, &je);
        if (!h || json_root(h)->type != JSON_OBJECT) {
            if (h)
                w_err(err, errlen, "%s: expected a JSON object", what);
            else
                w_err(err, errlen, "%s", je.msg);
            json_free(h);
            for (int i = 0; i < m.n; i++) free(m.kv[i].val.s);
            return NULL;
        }
        const JsonValue *r = json_root(h);
        for (size_t i = 0; i < r->len; i++) {
            if (r->members[i].key_len >= sizeof m.kv[0].key) continue;
            wb_json_value(kv_slot(&m, r->members[i].key), &r->members[i].value);
        }
        json_free(h);
    }
    snprintf(what, sizeof what, "%s (%s config derived from the tensors)", w->path, c->name);
    return kvs_doc(&m, what, err, errlen);
}

JsonDoc *wcfg_scheduler(ModelFamily f) {
    Kvs m;
    m.n = 0;
    // the training schedule of all three families; the class is what the published
    // pipelines ship (SD2.x: the 768-v models predict v, as diffusers assumes for SD2)
    kv(&m, "_class_name", "\"%s\"",
       f == FAMILY_SDXL  ? "EulerDiscreteScheduler"
       : f == FAMILY_SD2 ? "DDIMScheduler"
                         : "PNDMScheduler");
    kv(&m, "beta_start", "0.00085");
    kv(&m, "beta_end", "0.012");
    kv(&m, "beta_schedule", "\"scaled_linear\"");
    kv(&m, "num_train_timesteps", "1000");
    kv(&m, "prediction_type", "\"%s\"", f == FAMILY_SD2 ? "v_prediction" : "epsilon");
    kv(&m, "steps_offset", "1");
    // only SDXL's published config names a spacing; SD1.x/SD2.x leave each scheduler's
    // class default (DDIM: leading; Euler, DPM++: linspace), as a diffusers folder would
    if (f == FAMILY_SDXL) kv(&m, "timestep_spacing", "\"leading\"");
    kv(&m, "clip_sample", "false");
    kv(&m, "set_alpha_to_one", "false");
    if (f == FAMILY_SD1) kv(&m, "skip_prk_steps", "true");
    if (f == FAMILY_SDXL) {
        kv(&m, "interpolation_type", "\"linear\"");
        kv(&m, "use_karras_sigmas", "false");
    }
    char err[256];
    return kvs_doc(&m, "derived scheduler config", err, sizeof err);
}

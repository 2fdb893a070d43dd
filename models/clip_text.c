// models/clip_text.c: CLIPTextModel and CLIPTextModelWithProjection (see clip_text.h).
#include "models/clip_text.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cuda_runtime_api.h"
#include "kernels/ops.h"
#include "runner/check.h"

// ---- config -----------------------------------------------------------------------------

// doc's root[key] as an integer in [lo, hi]; absent: *out = def.
static int cfg_int(const JsonDoc *doc, const char *key, int lo, int hi, int def, int *out, char *err,
                   size_t errlen) {
    int64_t v = def;
    if (json_get_int(doc, json_root(doc), key, lo, hi, &v, err, errlen) < 0) return -1;
    *out = (int)v;
    return 0;
}

int clip_text_config(ClipTextConfig *cfg, const Weights *w, const char *component, int with_projection,
                     char *err, size_t errlen) {
    memset(cfg, 0, sizeof *cfg);
    const JsonDoc *doc = weights_config_doc(w, component);
    if (!doc || json_root(doc)->type != JSON_OBJECT)
        return snprintf(err, errlen, "%s: %s has no config (config.json)", weights_path(w), component), -1;
    const char *file = json_file(doc);
    // Defaults are transformers' CLIPTextConfig defaults, used only where a key is absent.
    if (cfg_int(doc, "hidden_size", 1, 1 << 16, 512, &cfg->hidden_size, err, errlen) ||
        cfg_int(doc, "intermediate_size", 1, 1 << 18, 2048, &cfg->intermediate_size, err, errlen) ||
        cfg_int(doc, "num_hidden_layers", 1, 1024, 12, &cfg->num_hidden_layers, err, errlen) ||
        cfg_int(doc, "num_attention_heads", 1, 1024, 8, &cfg->num_attention_heads, err, errlen) ||
        cfg_int(doc, "max_position_embeddings", 1, 1 << 16, 77, &cfg->max_position_embeddings, err,
                errlen) ||
        cfg_int(doc, "vocab_size", 1, 1 << 24, 49408, &cfg->vocab_size, err, errlen) ||
        cfg_int(doc, "eos_token_id", 0, 1 << 24, 49407, &cfg->eos_token_id, err, errlen) ||
        cfg_int(doc, "projection_dim", 1, 1 << 16, 512, &cfg->projection_dim, err, errlen))
        return -1;
    if (!with_projection) cfg->projection_dim = 0;
    if (cfg->hidden_size % cfg->num_attention_heads)
        return snprintf(err, errlen, "%s: hidden_size %d is not a multiple of num_attention_heads %d",
                        file, cfg->hidden_size, cfg->num_attention_heads),
               -1;
    const char *act = "quick_gelu";
    if (json_get_string(doc, json_root(doc), "hidden_act", &act, err, errlen) < 0) return -1;
    if (!strcmp(act, "quick_gelu"))
        cfg->act = CLIP_ACT_QUICK_GELU;
    else if (!strcmp(act, "gelu"))
        cfg->act = CLIP_ACT_GELU;
    else if (!strcmp(act, "gelu_new") || !strcmp(act, "gelu_pytorch_tanh"))
        cfg->act = CLIP_ACT_GELU_TANH;
    else
        return snprintf(err, errlen,
                        "%s: \"hidden_act\": \"%s\" is not supported (quick_gelu, gelu, gelu_new, "
                        "gelu_pytorch_tanh)",
                        file, act),
               -1;
    double eps = 1e-5;
    if (json_get_number(doc, json_root(doc), "layer_norm_eps", &eps, err, errlen) < 0) return -1;
    if (!(eps > 0 && eps < 1))
        return snprintf(err, errlen, "%s: \"layer_norm_eps\": expected a number in (0, 1), found %g", file, eps),
               -1;
    cfg->layer_norm_eps = (float)eps;
    return 0;
}

// ---- loading ----------------------------------------------------------------------------

static size_t round256(size_t n) { return (n + 255) & ~(size_t)255; }

size_t clip_text_weight_bytes(const ClipTextConfig *cfg, DType dt) {
    size_t es = dtype_size(dt), C = (size_t)cfg->hidden_size, I = (size_t)cfg->intermediate_size;
    size_t per_layer = 4 * round256(C * es)                          // two layer norms
                       + 4 * (round256(C * C * es) + round256(C * es))  // q, k, v, out
                       + round256(I * C * es) + round256(I * es)        // fc1
                       + round256(C * I * es) + round256(C * es);       // fc2
    size_t n = round256((size_t)cfg->vocab_size * C * es) + round256((size_t)cfg->max_position_embeddings * C * es) +
               (size_t)cfg->num_hidden_layers * per_layer + 2 * round256(C * es);
    if (cfg->projection_dim) n += round256((size_t)cfg->projection_dim * C * es);
    return n + 256;  // the arena may start unaligned
}

typedef struct {
    const Weights *w;
    const char *component;
    const char *prefix;  // "text_model." or ""
    Arena *arena;
    DType dt;
    char *err;
    size_t errlen;
} Loader;

static int load_tensor(Loader *ld, Tensor *t, const char *prefix, const char *name, int64_t d0, int64_t d1) {
    char full[256];
    snprintf(full, sizeof full, "%s%s", prefix, name);
    int64_t shape[2] = {d0, d1};
    return weights_load(ld->w, ld->component, full, d1 ? 2 : 1, shape, ld->arena, ld->dt, t, ld->err,
                        ld->errlen);
}

#define LOAD(t, name, d0, d1)                                                                      \
    do {                                                                                           \
        if (load_tensor(&ld, (t), ld.prefix, (name), (d0), (d1))) goto fail;                       \
    } while (0)

int clip_text_load(ClipText *m, const Weights *w, const char *component, int with_projection,
                   Arena *arena, DType dt, char *err, size_t errlen) {
    memset(m, 0, sizeof *m);
    if (arena->dev == DEV_CPU && dt != DT_F32)
        return snprintf(err, errlen, "clip_text_load: the CPU back end computes in f32, not %s",
                        dtype_name(dt)),
               -1;
    if (clip_text_config(&m->cfg, w, component, with_projection, err, errlen)) return -1;
    const ClipTextConfig *c = &m->cfg;
    m->dtype = dt;
    m->dev = arena->dev;
    // Published SD repositories write "text_model.embeddings...", transformers >= 5 writes
    // "embeddings..." for a CLIPTextModel: take whichever the component has.
    WeightInfo info;
    Loader ld = {w, component, "text_model.", arena, dt, err, errlen};
    if (weights_find(w, component, "text_model.embeddings.token_embedding.weight", &info) != 0 &&
        weights_find(w, component, "embeddings.token_embedding.weight", &info) == 0)
        ld.prefix = "";
    const int64_t C = c->hidden_size, I = c->intermediate_size;
    m->layers = calloc((size_t)c->num_hidden_layers, sizeof *m->layers);
    if (!m->layers) return snprintf(err, errlen, "clip_text_load: out of memory"), -1;
    LOAD(&m->tok_emb, "embeddings.token_embedding.weight", c->vocab_size, C);
    LOAD(&m->pos_emb, "embeddings.position_embedding.weight", c->max_position_embeddings, C);
    for (int i = 0; i < c->num_hidden_layers; i++) {
        ClipTextLayer *l = &m->layers[i];
        char n[160];
#define LAYER(t, suffix, d0, d1)                                                                   \
    do {                                                                                           \
        snprintf(n, sizeof n, "encoder.layers.%d.%s", i, suffix);                                  \
        LOAD(t, n, d0, d1);                                                                        \
    } while (0)
        LAYER(&l->ln1_w, "layer_norm1.weight", C, 0);
        LAYER(&l->ln1_b, "layer_norm1.bias", C, 0);
        LAYER(&l->q_w, "self_attn.q_proj.weight", C, C);
        LAYER(&l->q_b, "self_attn.q_proj.bias", C, 0);
        LAYER(&l->k_w, "self_attn.k_proj.weight", C, C);
        LAYER(&l->k_b, "self_attn.k_proj.bias", C, 0);
        LAYER(&l->v_w, "self_attn.v_proj.weight", C, C);
        LAYER(&l->v_b, "self_attn.v_proj.bias", C, 0);
        LAYER(&l->o_w, "self_attn.out_proj.weight", C, C);
        LAYER(&l->o_b, "self_attn.out_proj.bias", C, 0);
        LAYER(&l->ln2_w, "layer_norm2.weight", C, 0);
        LAYER(&l->ln2_b, "layer_norm2.bias", C, 0);
        LAYER(&l->fc1_w, "mlp.fc1.weight", I, C);
        LAYER(&l->fc1_b, "mlp.fc1.bias", I, 0);
        LAYER(&l->fc2_w, "mlp.fc2.weight", C, I);
        LAYER(&l->fc2_b, "mlp.fc2.bias", C, 0);
#undef LAYER
    }
    LOAD(&m->final_ln_w, "final_layer_norm.weight", C, 0);
    LOAD(&m->final_ln_b, "final_layer_norm.bias", C, 0);
    if (c->projection_dim) {  // a sibling of text_model, never under it
        if (load_tensor(&ld, &m->proj_w, "", "text_projection.weight", c->projection_dim, C)) goto fail;
    }
    return 0;
fail:
    clip_text_free(m);
    return -1;
}
#undef LOAD

void clip_text_free(ClipText *m) {
    free(m->layers);
    m->layers = NULL;
}

// ---- forward ----------------------------------------------------------------------------

int clip_text_eos_position(const ClipTextConfig *cfg, const int *ids, int L) {
    int pos = 0;
    if (cfg->eos_token_id == 2) {  // legacy configs: torch.argmax, the first largest id
        for (int i = 1; i < L; i++)
            if (ids[i] > ids[pos]) pos = i;
        return pos;
    }
    for (int i = 0; i < L; i++)  // argmax of (ids == eos): 0 when there is none
        if (ids[i] == cfg->eos_token_id) return i;
    return 0;
}

size_t clip_text_scratch_bytes(const ClipTextConfig *cfg, DType dt, int B, int L) {
    size_t es = dtype_size(dt), BL = (size_t)B * L;
    size_t n = 5 * round256(BL * cfg->hidden_size * es) + round256(BL * cfg->intermediate_size * es) +
               round256((size_t)B * cfg->hidden_size * es) + 256;
    return n;
}

// nbytes from src to dst, both on `dev` (row gathers and whole-tensor copies).
static void dev_copy(Device dev, void *dst, const void *src, size_t nbytes) {
    if (dev == DEV_CPU)
        memcpy(dst, src, nbytes);
    else
        story_cuda_memcpy(dst, src, nbytes, 2);
}

static void check_out(const ClipText *m, const Tensor *t, const char *what, int64_t d0, int64_t d1,
                      int64_t d2) {
    char d[96];
    int ok = t->dtype == m->dtype && t->dev == m->dev && tensor_numel(t) == d0 * d1 * (d2 ? d2 : 1) &&
             t->shape[0] == d0;
    if (!ok)
        STORY_FATAL("clip_text_forward: %s is %s, expected (%lld, %lld%s) %s %s", what,
                    tensor_desc(t, d, sizeof d), (long long)d0, (long long)d1, d2 ? ", L, C" : "",
                    dtype_name(m->dtype), m->dev == DEV_CPU ? "cpu" : "cuda");
}

int clip_text_forward(const ClipText *m, const int *ids, int B, int L, Arena *ws,
                      const ClipTextOutputs *out, char *err, size_t errlen) {
    const ClipTextConfig *c = &m->cfg;
    const int64_t C = c->hidden_size, nl = c->num_hidden_layers;
    STORY_CHECK(ws->dev == m->dev, "the scratch arena must be on the model's device");
    if (B < 1 || L < 1 || L > c->max_position_embeddings)
        return snprintf(err, errlen, "clip text encoder: %d sequences of %d tokens (at most %d)", B, L,
                        c->max_position_embeddings),
               -1;
    for (int64_t i = 0; i < (int64_t)B * L; i++)
        if (ids[i] < 0 || ids[i] >= c->vocab_size)
            return snprintf(err, errlen,
                            "clip text encoder: token id %d (sequence %lld, position %lld) is outside "
                            "the vocabulary of %d ids (a tokenizer that does not match the model?)",
                            ids[i], (long long)(i / L), (long long)(i % L), c->vocab_size),
                   -1;
    const int need_final = out->last_hidden_state || out->pooled || out->text_embeds;
    int hidx = out->hidden_index < 0 ? (int)(nl + 1 + out->hidden_index) : out->hidden_index;
    if (out->hidden_state && (hidx < 0 || hidx > nl))
        return snprintf(err, errlen, "clip text encoder: hidden_states[%d] of a %lld-layer model",
                        out->hidden_index, (long long)nl),
               -1;
    STORY_CHECK(!out->text_embeds || c->projection_dim, "text_embeds asked of a model without projection");
    if (out->last_hidden_state) check_out(m, out->last_hidden_state, "last_hidden_state", B, L, C);
    if (out->hidden_state) check_out(m, out->hidden_state, "hidden_state", B, L, C);
    if (out->pooled) check_out(m, out->pooled, "pooled", B, C, 0);
    if (out->text_embeds) check_out(m, out->text_embeds, "text_embeds", B, c->projection_dim, 0);
    const int64_t run = need_final ? nl : (out->hidden_state ? hidx : 0);

    size_t mark = arena_mark(ws);
    const DType dt = m->dtype;
    const size_t row = (size_t)C * dtype_size(dt);
    Tensor x = ARENA_TENSOR(ws, dt, B, L, C);  // the residual stream
    Tensor h = ARENA_TENSOR(ws, dt, B, L, C);
    Tensor q = ARENA_TENSOR(ws, dt, B, L, C);
    Tensor k = ARENA_TENSOR(ws, dt, B, L, C);
    Tensor v = ARENA_TENSOR(ws, dt, B, L, C);
    Tensor f = ARENA_TENSOR(ws, dt, B, L, c->intermediate_size);

    // embeddings: token rows gathered, then + position_embedding[0..L) broadcast over B
    for (int64_t i = 0; i < (int64_t)B * L; i++)
        dev_copy(m->dev, (char *)x.data + i * row, (const char *)m->tok_emb.data + (size_t)ids[i] * row, row);
    Tensor pos = tensor_view(m->pos_emb.data, dt, m->dev, 2, SHAPE(L, C));
    op_add(&x, &x, &pos);
    if (out->hidden_state && hidx == 0) dev_copy(m->dev, out->hidden_state->data, x.data, tensor_nbytes(&x));

    const KVSegment seg = {&k, &v};
    for (int64_t li = 0; li < run; li++) {
        const ClipTextLayer *l = &m->layers[li];
        // x += out_proj(attention(layer_norm1(x))), causal, heads interleaved in channels
        op_layer_norm(&h, &x, &l->ln1_w, &l->ln1_b, c->layer_norm_eps);
        op_linear(&q, &h, &l->q_w, &l->q_b);
        op_linear(&k, &h, &l->k_w, &l->k_b);
        op_linear(&v, &h, &l->v_w, &l->v_b);
        op_attention(&h, &q, &seg, 1, c->num_attention_heads, 1, 0.0f);
        op_linear(&q, &h, &l->o_w, &l->o_b);
        op_add(&x, &x, &q);
        // x += fc2(act(fc1(layer_norm2(x))))
        op_layer_norm(&h, &x, &l->ln2_w, &l->ln2_b, c->layer_norm_eps);
        op_linear(&f, &h, &l->fc1_w, &l->fc1_b);
        if (c->act == CLIP_ACT_QUICK_GELU)
            op_quick_gelu(&f, &f);
        else
            op_gelu(&f, &f, c->act == CLIP_ACT_GELU_TANH);
        op_linear(&q, &f, &l->fc2_w, &l->fc2_b);
        op_add(&x, &x, &q);
        if (out->hidden_state && hidx == li + 1)
            dev_copy(m->dev, out->hidden_state->data, x.data, tensor_nbytes(&x));
    }

    if (out->last_hidden_state)
        op_layer_norm(out->last_hidden_state, &x, &m->final_ln_w, &m->final_ln_b, c->layer_norm_eps);
    if (out->pooled || out->text_embeds) {
        // The final norm is per token: norming the gathered EOS rows gives the same values.
        Tensor pooled = out->pooled ? *out->pooled : ARENA_TENSOR(ws, dt, B, C);
        for (int b = 0; b < B; b++) {
            int p = clip_text_eos_position(c, ids + (size_t)b * L, L);
            dev_copy(m->dev, (char *)pooled.data + b * row, (const char *)x.data + ((size_t)b * L + p) * row, row);
        }
        op_layer_norm(&pooled, &pooled, &m->final_ln_w, &m->final_ln_b, c->layer_norm_eps);
        if (out->text_embeds) op_linear(out->text_embeds, &pooled, &m->proj_w, NULL);
    }
    arena_release(ws, mark);
    return 0;
}

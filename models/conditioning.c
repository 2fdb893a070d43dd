// models/conditioning.c: prompt conditioning as diffusers builds it (see conditioning.h).
#include "models/conditioning.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cuda_runtime_api.h"
#include "kernels/ops.h"
#include "runner/check.h"
#include "runner/json.h"

static size_t round256(size_t n) { return (n + 255) & ~(size_t)255; }

static const char *const enc_names[COND_MAX_ENCODERS] = {"text_encoder", "text_encoder_2"};
static const char *const tok_names[COND_MAX_ENCODERS] = {"tokenizer", "tokenizer_2"};

static int n_encoders(ModelFamily f) { return f == FAMILY_SDXL ? 2 : 1; }

// ---- loading ------------------------------------------------------------------------------

// diffusers' force_zeros_for_empty_prompt from a folder's model_index.json; true when the
// folder has none or the key is absent (a single-file checkpoint carries no pipeline config).
static int read_force_zeros(const Weights *w, int *out, char *err, size_t errlen) {
    *out = 1;
    if (weights_layout(w) != LAYOUT_DIFFUSERS) return 0;
    char path[4096];
    snprintf(path, sizeof path, "%s/model_index.json", weights_path(w));
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    fclose(f);
    JsonError je;
    JsonDoc *doc = json_parse_file(path, NULL, &je);
    if (!doc) return snprintf(err, errlen, "%s", je.msg), -1;
    bool v = true;
    int rc = json_get_bool(doc, json_root(doc), "force_zeros_for_empty_prompt", &v, err, errlen);
    json_free(doc);
    if (rc < 0) return -1;
    *out = v;
    return 0;
}

int cond_weight_bytes(const Weights *w, DType dt, size_t *bytes, char *err, size_t errlen) {
    *bytes = 0;
    int n = n_encoders(weights_family(w));
    for (int e = 0; e < n; e++) {
        ClipTextConfig cfg;
        if (clip_text_config(&cfg, w, enc_names[e], e == 1, err, errlen)) return -1;
        *bytes += clip_text_weight_bytes(&cfg, dt);
    }
    return 0;
}

int cond_load(Conditioner *c, const Weights *w, Arena *arena, DType dt, char *err, size_t errlen) {
    memset(c, 0, sizeof *c);
    c->family = weights_family(w);
    if (c->family == FAMILY_UNKNOWN)
        return snprintf(err, errlen, "%s: unknown model family: cannot tell how to encode prompts",
                        weights_path(w)),
               -1;
    c->n_enc = n_encoders(c->family);
    if (read_force_zeros(w, &c->force_zeros_for_empty_prompt, err, errlen)) return -1;
    for (int e = 0; e < c->n_enc; e++) {
        if (weights_tokenizer_load(w, tok_names[e], &c->tok[e], err, errlen) ||
            clip_text_load(&c->enc[e], w, enc_names[e], e == 1, arena, dt, err, errlen)) {
            cond_free(c);
            return -1;
        }
    }
    return 0;
}

void cond_free(Conditioner *c) {
    for (int e = 0; e < COND_MAX_ENCODERS; e++) {
        if (c->tok[e].impl) tok_free(&c->tok[e]);
        clip_text_free(&c->enc[e]);
    }
}

// ---- sizes ----------------------------------------------------------------------------------

static int seq_len(const Conditioner *c) { return c->tok[0].model_max_length; }

static int64_t context_dim(const Conditioner *c) {
    int64_t C = 0;
    for (int e = 0; e < c->n_enc; e++) C += c->enc[e].cfg.hidden_size;
    return C;
}

// the pooled embeds: text_embeds of the last encoder (SDXL); none for one encoder
static int64_t pooled_dim(const Conditioner *c) {
    return c->n_enc == 2 ? c->enc[1].cfg.projection_dim : 0;
}

size_t cond_output_bytes(const Conditioner *c, int B, int do_cfg) {
    size_t es = dtype_size(c->enc[0].dtype), rows = (size_t)B * (do_cfg ? 2 : 1);
    return round256(rows * seq_len(c) * context_dim(c) * es) + round256(rows * pooled_dim(c) * es) + 512;
}

size_t cond_scratch_bytes(const Conditioner *c, int B) {
    size_t es = dtype_size(c->enc[0].dtype), n = 0, fw = 0;
    const int L = seq_len(c);
    for (int e = 0; e < c->n_enc; e++) {
        n += round256((size_t)B * L * c->enc[e].cfg.hidden_size * es);
        size_t s = clip_text_scratch_bytes(&c->enc[e].cfg, c->enc[e].dtype, B, L);
        fw = s > fw ? s : fw;
    }
    return n + round256((size_t)B * pooled_dim(c) * es) + fw + 512;
}

// ---- helpers --------------------------------------------------------------------------------

static int zero_tensor(Tensor *t, char *err, size_t errlen) {
    size_t n = tensor_nbytes(t);
    if (t->dev == DEV_CPU) {
        memset(t->data, 0, n);
        return 0;
    }
    void *z = calloc(1, n ? n : 1);  // +0.0 in f32, f16 and bf16 alike
    if (!z) return snprintf(err, errlen, "conditioning: out of host memory (%zu bytes)", n), -1;
    story_cuda_memcpy(t->data, z, n, 0);
    free(z);
    return 0;
}

// ids (B, L) of texts with tokenizer tok; n_untr[b * stride] gets the uncut lengths.
static void tokenize(Tokenizer *tok, const char *const *texts, int B, int L, int *ids, int *n_untr,
                     int stride) {
    for (int b = 0; b < B; b++) {
        int untr = 0;
        int n = tok_encode(tok, texts[b] ? texts[b] : "", ids + (size_t)b * L, L, &untr);
        STORY_CHECK(n > 0, "tok_encode with max_len %d", L);
        if (n_untr) n_untr[(size_t)b * stride] = untr;
    }
}

// ---- SD1.x / SD2.x ---------------------------------------------------------------------------

// dst (B, L, C) = last_hidden_state of texts, or with skip > 0
// final_layer_norm(hidden_states[-(skip + 1)]).
static int sd_encode(Conditioner *c, const char *const *texts, int B, int skip, int *ids, int *n_untr,
                     Tensor *dst, Arena *ws, char *err, size_t errlen) {
    const int L = seq_len(c);
    const ClipText *m = &c->enc[0];
    tokenize(&c->tok[0], texts, B, L, ids, n_untr, 1);
    ClipTextOutputs o = {0};
    if (skip > 0) {
        o.hidden_state = dst;
        o.hidden_index = -(skip + 1);
    } else {
        o.last_hidden_state = dst;
    }
    if (clip_text_forward(m, ids, B, L, ws, &o, err, errlen)) return -1;
    if (skip > 0) op_layer_norm(dst, dst, &m->final_ln_w, &m->final_ln_b, m->cfg.layer_norm_eps);
    return 0;
}

// ---- SDXL ----------------------------------------------------------------------------------

// dst (B, L, C1 + C2) = concat(hidden_states[hidden_index] of both encoders), pooled (B, P) =
// text_embeds of encoder 2.
static int sdxl_encode(Conditioner *c, const char *const *texts, const char *const *texts_2, int B,
                       int hidden_index, int *ids, int *n_untr, Tensor *dst, Tensor *pooled, Arena *ws,
                       char *err, size_t errlen) {
    const int L = seq_len(c);
    size_t mark = arena_mark(ws);
    Tensor h[2];
    int rc = 0;
    for (int e = 0; e < 2 && !rc; e++) {
        const ClipText *m = &c->enc[e];
        tokenize(&c->tok[e], e ? texts_2 : texts, B, L, ids, n_untr ? n_untr + e : NULL, 2);
        h[e] = ARENA_TENSOR(ws, m->dtype, B, L, m->cfg.hidden_size);
        ClipTextOutputs o = {.hidden_state = &h[e], .hidden_index = hidden_index};
        if (e == 1) o.text_embeds = pooled;
        rc = clip_text_forward(m, ids, B, L, ws, &o, err, errlen);
    }
    if (!rc) op_concat(dst, &h[0], &h[1], 2);
    arena_release(ws, mark);
    return rc;
}

static void time_ids(float out[6], const int orig[2], const int crop[2], const int target[2]) {
    for (int i = 0; i < 2; i++) {
        out[i] = (float)orig[i];
        out[2 + i] = (float)crop[i];
        out[4 + i] = (float)target[i];
    }
}

void cond_time_ids_row(const CondOutput *out, int row, float ids[6]) {
    // cat([negative, positive], 0).repeat(B, 1): even rows negative, odd rows positive
    const float *src = out->do_cfg ? out->time_ids[row % 2] : out->time_ids[1];
    memcpy(ids, src, 6 * sizeof(float));
}

// ---- the entry point ---------------------------------------------------------------------------

static int check_conditioner(const Conditioner *c, char *err, size_t errlen) {
    if (c->n_enc != n_encoders(c->family))
        return snprintf(err, errlen, "conditioning: %s needs %d text encoder(s), got %d",
                        family_name(c->family), n_encoders(c->family), c->n_enc),
               -1;
    for (int e = 0; e < c->n_enc; e++) {
        const ClipText *m = &c->enc[e];
        if (!m->layers || !c->tok[e].impl)
            return snprintf(err, errlen, "conditioning: %s is not loaded", enc_names[e]), -1;
        if (c->tok[e].model_max_length != seq_len(c) || seq_len(c) > m->cfg.max_position_embeddings)
            return snprintf(err, errlen,
                            "conditioning: %s's model_max_length %d does not fit (tokenizer: %d, "
                            "max_position_embeddings: %d)",
                            tok_names[e], c->tok[e].model_max_length, seq_len(c),
                            m->cfg.max_position_embeddings),
                   -1;
        if (m->dtype != c->enc[0].dtype || m->dev != c->enc[0].dev)
            return snprintf(err, errlen, "conditioning: the text encoders differ in dtype or device"), -1;
    }
    if (c->n_enc == 2 && !c->enc[1].cfg.projection_dim)
        return snprintf(err, errlen, "conditioning: SDXL's text_encoder_2 has no text_projection"), -1;
    return 0;
}

int cond_encode(Conditioner *c, const CondRequest *req, Arena *out_arena, Arena *ws, CondOutput *out,
                char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    if (check_conditioner(c, err, errlen)) return -1;
    const int B = req->B, L = seq_len(c), cfg = req->do_cfg != 0;
    if (B < 1 || !req->prompts)
        return snprintf(err, errlen, "conditioning: a batch of %d prompts", B), -1;
    // SD: hidden_states[-(k + 1)], SDXL: [-(k + 2)], of layers + 1 states (both encoders)
    int max_skip = c->enc[0].cfg.num_hidden_layers - (c->n_enc == 2);
    if (c->n_enc == 2 && c->enc[1].cfg.num_hidden_layers - 1 < max_skip)
        max_skip = c->enc[1].cfg.num_hidden_layers - 1;
    if (req->clip_skip < 0 || req->clip_skip > max_skip)
        return snprintf(err, errlen, "conditioning: clip_skip %d: this model allows 0 to %d", req->clip_skip,
                        max_skip),
               -1;
    const ClipText *m0 = &c->enc[0];
    out->rows = B * (cfg ? 2 : 1);
    out->do_cfg = cfg;
    out->context = ARENA_TENSOR(out_arena, m0->dtype, out->rows, L, context_dim(c));
    if (c->n_enc == 2) out->pooled = ARENA_TENSOR(out_arena, m0->dtype, out->rows, pooled_dim(c));
    // rows: [negative (B); positive (B)] with guidance, else [positive (B)]
    Tensor pos = tensor_rows(&out->context, cfg ? B : 0, B), neg = tensor_rows(&out->context, 0, B);
    Tensor pos_pooled = {0}, neg_pooled = {0};
    if (c->n_enc == 2) {
        pos_pooled = tensor_rows(&out->pooled, cfg ? B : 0, B);
        neg_pooled = tensor_rows(&out->pooled, 0, B);
    }
    int *ids = malloc((size_t)B * L * sizeof *ids);
    const char **empty = calloc((size_t)B, sizeof *empty);  // B x "" for a missing negative
    if (!ids || !empty) {
        free(ids);
        free(empty);
        return snprintf(err, errlen, "conditioning: out of host memory"), -1;
    }
    for (int b = 0; b < B; b++) empty[b] = "";
    int rc = 0;
    if (c->n_enc == 1) {
        rc = sd_encode(c, req->prompts, B, req->clip_skip, ids, req->n_untruncated, &pos, ws, err, errlen);
        if (!rc && cfg)
            rc = sd_encode(c, req->negative ? req->negative : empty, B, 0, ids, NULL, &neg, ws, err, errlen);
    } else {
        const char *const *p2 = req->prompts_2 ? req->prompts_2 : req->prompts;
        rc = sdxl_encode(c, req->prompts, p2, B, -(req->clip_skip + 2), ids, req->n_untruncated, &pos,
                         &pos_pooled, ws, err, errlen);
        if (!rc && cfg) {
            if (!req->negative && c->force_zeros_for_empty_prompt) {
                rc = zero_tensor(&neg, err, errlen);
                if (!rc) rc = zero_tensor(&neg_pooled, err, errlen);
            } else {
                const char *const *n1 = req->negative ? req->negative : empty;
                const char *const *n2 = req->negative_2 ? req->negative_2 : n1;
                rc = sdxl_encode(c, n1, n2, B, -2, ids, NULL, &neg, &neg_pooled, ws, err, errlen);
            }
        }
        // add_time_ids; the defaults are diffusers' (height, width), (0, 0), (height, width)
        const int hw[2] = {req->height, req->width};
        const int *orig = req->original_size[0] ? req->original_size : hw;
        const int *target = req->target_size[0] ? req->target_size : hw;
        time_ids(out->time_ids[1], orig, req->crops_top_left, target);
        if (req->has_negative_sizes)
            time_ids(out->time_ids[0], req->negative_original_size, req->negative_crops_top_left,
                     req->negative_target_size);
        else
            memcpy(out->time_ids[0], out->time_ids[1], sizeof out->time_ids[1]);
    }
    free(ids);
    free(empty);
    return rc;
}

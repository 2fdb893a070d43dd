// models/motion_predictor.c: the motion predictor's config, parameter layout, weight
// initialisation and forward pass (with the loss). Backward: motion_backward.c; AdamW and
// the schedule: motion_optim.c; checkpoints: motion_checkpoint.c.
#include "motion_predictor.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../runner/check.h"
#include "motion_internal.h"
#include "motion_ops.h"

void smp_config_default(SmpConfig *c, int embed_dim, int frames) {
    memset(c, 0, sizeof *c);
    c->layers = 8;
    c->width = 1024;
    c->heads = 16;
    c->mlp_ratio = 4;
    c->embed_dim = embed_dim;
    c->frames = frames;
    c->ln_eps = 1e-5f;
    c->endpoint_weight = 0.0f;
    c->token_inputs = 0;
}

int smp_config_check(const SmpConfig *c, char *err, size_t errlen) {
    const struct {
        const char *name;
        int v, lo, hi;
    } ints[] = {{"layers", c->layers, 1, 256},         {"width", c->width, 1, 65536},
                {"heads", c->heads, 1, 4096},          {"mlp_ratio", c->mlp_ratio, 1, 64},
                {"embed_dim", c->embed_dim, 1, 65536}, {"frames", c->frames, 2, 4096}};
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++)
        if (ints[i].v < ints[i].lo || ints[i].v > ints[i].hi) {
            snprintf(err, errlen, "motion predictor config: %s is %d; expected %d..%d",
                     ints[i].name, ints[i].v, ints[i].lo, ints[i].hi);
            return -1;
        }
    if (c->width % c->heads != 0) {
        snprintf(err, errlen, "motion predictor config: width %d is not a multiple of heads %d",
                 c->width, c->heads);
        return -1;
    }
    if (!(c->ln_eps > 0.0f) || !isfinite(c->ln_eps)) {
        snprintf(err, errlen, "motion predictor config: ln_eps is %g; expected a positive number",
                 c->ln_eps);
        return -1;
    }
    if (!(c->endpoint_weight >= 0.0f) || !isfinite(c->endpoint_weight)) {
        snprintf(err, errlen,
                 "motion predictor config: endpoint_weight is %g; expected a number >= 0",
                 c->endpoint_weight);
        return -1;
    }
    if (c->token_inputs != 0) {
        snprintf(err, errlen,
                 "motion predictor config: token_inputs is %d; token-sequence inputs are not "
                 "supported yet (expected 0)",
                 c->token_inputs);
        return -1;
    }
    return 0;
}

int smp_frames_check(const SmpConfig *c, int T, char *err, size_t errlen) {
    if (T < 2 || T > c->frames) {
        snprintf(err, errlen,
                 "motion predictor: clips of %d frames; expected 2..%d (the model's frames)", T,
                 c->frames);
        return -1;
    }
    if (T < 3 && c->endpoint_weight == 0.0f) {
        snprintf(
            err, errlen,
            "motion predictor: clips of %d frames have no inner frame and endpoint_weight is 0; "
            "expected at least 3 frames",
            T);
        return -1;
    }
    return 0;
}

// ---- parameter layout --------------------------------------------------------------------

static void add_tensor(SmpModel *m, int *n, size_t *off, const char *name, int64_t d0, int64_t d1) {
    SmpTensorInfo *t = &m->info[(*n)++];
    snprintf(t->name, sizeof t->name, "%s", name);
    t->ndim = d1 > 0 ? 2 : 1;
    t->shape[0] = d0;
    t->shape[1] = d1 > 0 ? d1 : 0;
    t->numel = (size_t)d0 * (size_t)(d1 > 0 ? d1 : 1);
    t->offset = *off;
    t->decay = t->ndim == 2;
    *off += t->numel;
}

// Fills m->info in buffer order; returns the tensor count.
static int build_layout(SmpModel *m) {
    const SmpConfig *c = &m->cfg;
    int64_t C = c->width, D = c->embed_dim, F = (int64_t)c->mlp_ratio * c->width;
    int n = 0;
    size_t off = 0;
    char name[48];
    add_tensor(m, &n, &off, "in_proj.weight", C, D);
    add_tensor(m, &n, &off, "in_proj.bias", C, 0);
    add_tensor(m, &n, &off, "pos_emb", c->frames, C);
    for (int l = 0; l < c->layers; l++) {
        const struct {
            const char *suffix;
            int64_t d0, d1;
        } bt[] = {
            {"ln1.weight", C, 0},        {"ln1.bias", C, 0},         {"attn.qkv.weight", 3 * C, C},
            {"attn.qkv.bias", 3 * C, 0}, {"attn.proj.weight", C, C}, {"attn.proj.bias", C, 0},
            {"ln2.weight", C, 0},        {"ln2.bias", C, 0},         {"mlp.fc.weight", F, C},
            {"mlp.fc.bias", F, 0},       {"mlp.proj.weight", C, F},  {"mlp.proj.bias", C, 0}};
        for (size_t i = 0; i < sizeof bt / sizeof bt[0]; i++) {
            snprintf(name, sizeof name, "blocks.%d.%s", l, bt[i].suffix);
            add_tensor(m, &n, &off, name, bt[i].d0, bt[i].d1);
        }
    }
    add_tensor(m, &n, &off, "ln_f.weight", C, 0);
    add_tensor(m, &n, &off, "ln_f.bias", C, 0);
    add_tensor(m, &n, &off, "out_proj.weight", D, C);
    add_tensor(m, &n, &off, "out_proj.bias", D, 0);
    m->num_params = off;
    return n;
}

// Points v's fields into buf, in the order build_layout made.
static void point_tensors(const SmpModel *m, SmpTensors *v, float *buf) {
    const SmpTensorInfo *t = m->info;
    int i = 0;
    v->in_w = buf + t[i++].offset;
    v->in_b = buf + t[i++].offset;
    v->pos = buf + t[i++].offset;
    for (int l = 0; l < m->cfg.layers; l++) {
        SmpBlockTensors *b = &v->blocks[l];
        float **f[] = {&b->ln1_w, &b->ln1_b, &b->qkv_w, &b->qkv_b, &b->proj_w, &b->proj_b,
                       &b->ln2_w, &b->ln2_b, &b->fc_w,  &b->fc_b,  &b->mlp_w,  &b->mlp_b};
        for (size_t k = 0; k < sizeof f / sizeof f[0]; k++) *f[k] = buf + t[i++].offset;
    }
    v->lnf_w = buf + t[i++].offset;
    v->lnf_b = buf + t[i++].offset;
    v->out_w = buf + t[i++].offset;
    v->out_b = buf + t[i++].offset;
    STORY_CHECK(i == m->ntensors, "layout has %d tensors, pointed %d", m->ntensors, i);
}

// Carves the activation buffer (when base is NULL, only counts). Returns the float count.
static size_t point_acts(SmpModel *m, float *base) {
    const SmpConfig *c = &m->cfg;
    size_t N = (size_t)m->max_batch * c->frames, C = c->width, D = c->embed_dim;
    size_t F = (size_t)c->mlp_ratio * C,
           att = (size_t)m->max_batch * c->heads * c->frames * c->frames;
    size_t off = 0;
#define TAKE(ptr, n)                                                          \
    do {                                                                      \
        if (base) (ptr) = base + off;                                         \
        off += ((size_t)(n) + 15) & ~(size_t)15; /* 64-byte aligned pieces */ \
    } while (0)
    TAKE(m->K, N * D);
    TAKE(m->x0, N * C);
    for (int l = 0; l < c->layers; l++) {
        SmpBlockActs *a = &m->blk[l];
        TAKE(a->ln1, N * C);
        TAKE(a->ln1_mean, N);
        TAKE(a->ln1_rstd, N);
        TAKE(a->qkv, N * 3 * C);
        TAKE(a->att, att);
        TAKE(a->atty, N * C);
        TAKE(a->res1, N * C);
        TAKE(a->ln2, N * C);
        TAKE(a->ln2_mean, N);
        TAKE(a->ln2_rstd, N);
        TAKE(a->fc, N * F);
        TAKE(a->fcg, N * F);
        TAKE(a->res2, N * C);
    }
    TAKE(m->lnf, N * C);
    TAKE(m->lnf_mean, N);
    TAKE(m->lnf_rstd, N);
    TAKE(m->out, N * D);
    return off;
}

static size_t point_scratch(SmpModel *m, float *base) {
    const SmpConfig *c = &m->cfg;
    size_t N = (size_t)m->max_batch * c->frames, C = c->width, D = c->embed_dim;
    size_t F = (size_t)c->mlp_ratio * C,
           att = (size_t)m->max_batch * c->heads * c->frames * c->frames;
    size_t off = 0;
    TAKE(m->d_res, N * C);
    TAKE(m->d_ln, N * C);
    TAKE(m->d_atty, N * C);
    TAKE(m->d_qkv, N * 3 * C);
    TAKE(m->d_att, att);
    TAKE(m->d_fcg, N * F);
    TAKE(m->d_fc, N * F);
    TAKE(m->d_out, N * D);
#undef TAKE
    return off;
}

static float *alloc_floats(size_t n) {
    float *p = NULL;
    size_t bytes = ((n * sizeof(float)) + 63) & ~(size_t)63;
    if (posix_memalign((void **)&p, 64, bytes ? bytes : 64) != 0) p = NULL;
    STORY_CHECK(p != NULL, "out of memory allocating %zu floats", n);
    return p;
}

int smp_init(SmpModel *m, const SmpConfig *cfg, int max_batch, char *err, size_t errlen) {
    memset(m, 0, sizeof *m);
    if (smp_config_check(cfg, err, errlen) != 0) return -1;
    if (max_batch < 1) {
        snprintf(err, errlen, "motion predictor: batch size %d; expected >= 1", max_batch);
        return -1;
    }
    m->cfg = *cfg;
    m->max_batch = max_batch;
    m->info = mallocCheck(sizeof(SmpTensorInfo) * (size_t)(5 + 12 * cfg->layers + 4));
    m->ntensors = build_layout(m);
    m->params = alloc_floats(m->num_params);
    m->grads = alloc_floats(m->num_params);
    memset(m->params, 0, m->num_params * sizeof(float));
    memset(m->grads, 0, m->num_params * sizeof(float));
    m->p.blocks = mallocCheck(sizeof(SmpBlockTensors) * (size_t)cfg->layers);
    m->g.blocks = mallocCheck(sizeof(SmpBlockTensors) * (size_t)cfg->layers);
    point_tensors(m, &m->p, m->params);
    point_tensors(m, &m->g, m->grads);
    m->blk = mallocCheck(sizeof(SmpBlockActs) * (size_t)cfg->layers);
    m->num_acts = point_acts(m, NULL);
    m->acts = alloc_floats(m->num_acts);
    point_acts(m, m->acts);
    m->scratch = alloc_floats(point_scratch(m, NULL));
    point_scratch(m, m->scratch);
    m->loss = -1.0f;
    return 0;
}

void smp_free(SmpModel *m) {
    if (!m) return;
    free(m->info);
    free(m->params);
    free(m->grads);
    free(m->p.blocks);
    free(m->g.blocks);
    free(m->blk);
    free(m->acts);
    free(m->scratch);
    memset(m, 0, sizeof *m);
}

const SmpTensorInfo *smp_find_tensor(const SmpModel *m, const char *name) {
    for (int i = 0; i < m->ntensors; i++)
        if (strcmp(m->info[i].name, name) == 0) return &m->info[i];
    return NULL;
}

void smp_init_weights(SmpModel *m, uint64_t seed) {
    TorchRng g;
    rng_torch_seed(&g, seed);
    float resid_std = 0.02f / sqrtf(2.0f * (float)m->cfg.layers);
    for (int i = 0; i < m->ntensors; i++) {
        const SmpTensorInfo *t = &m->info[i];
        float *p = m->params + t->offset;
        size_t len = strlen(t->name);
        // the only 1-D weights are LayerNorm scales
        int is_ln_w = t->ndim == 1 && len > 7 && strcmp(t->name + len - 7, ".weight") == 0;
        if (t->ndim == 2) {
            int resid = strstr(t->name, "attn.proj.weight") || strstr(t->name, "mlp.proj.weight");
            float std = resid ? resid_std : 0.02f;
            rng_torch_randn(&g, p, (int64_t)t->numel);
            for (size_t k = 0; k < t->numel; k++) p[k] *= std;
        } else {
            float v = is_ln_w ? 1.0f : 0.0f;
            for (size_t k = 0; k < t->numel; k++) p[k] = v;
        }
    }
}

// ---- forward ----------------------------------------------------------------------------

// loss = sum_{b,t,d} w_t (P - target)^2 / (B D sum_t w_t), summed in double in a fixed order.
static float frame_weight(const SmpConfig *c, int t, int T) {
    return (t == 0 || t == T - 1) ? c->endpoint_weight : 1.0f;
}

static double weight_sum(const SmpConfig *c, int T) {
    double s = 0.0;
    for (int t = 0; t < T; t++) s += frame_weight(c, t, T);
    return s;
}

float smp_forward(SmpModel *m, const float *start, const float *end, const float *target, int B,
                  int T) {
    const SmpConfig *c = &m->cfg;
    STORY_CHECK(B >= 1 && B <= m->max_batch, "batch %d, the model was built for 1..%d", B,
                m->max_batch);
    STORY_CHECK(T >= 2 && T <= c->frames, "%d frames, the model was built for 2..%d", T, c->frames);
    int N = B * T, C = c->width, D = c->embed_dim, H = c->heads, F = c->mlp_ratio * c->width;
    m->B = B;
    m->T = T;
    m->target = target;

    // K[b, t] = start + t / (T - 1) (end - start)   (B, T, D)
#pragma omp parallel for collapse(2) schedule(static) if ((size_t)B * T * D >= SMP_PAR_MIN)
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) {
            float a = (float)t / (float)(T - 1);
            const float *s = start + (size_t)b * D, *e = end + (size_t)b * D;
            float *k = m->K + ((size_t)b * T + t) * D;
            for (int d = 0; d < D; d++) k[d] = s[d] + a * (e[d] - s[d]);
        }

    // x0 = K @ in_w^T + in_b + pos[t]
    smp_linear_forward(m->x0, m->K, m->p.in_w, m->p.in_b, N, D, C);
#pragma omp parallel for schedule(static) if ((size_t)N * C >= SMP_PAR_MIN)
    for (int n = 0; n < N; n++) {
        float *x = m->x0 + (size_t)n * C;
        const float *pe = m->p.pos + (size_t)(n % T) * C;
        for (int i = 0; i < C; i++) x[i] += pe[i];
    }

    const float *x = m->x0;
    for (int l = 0; l < c->layers; l++) {
        const SmpBlockTensors *w = &m->p.blocks[l];
        SmpBlockActs *a = &m->blk[l];
        smp_layernorm_forward(a->ln1, a->ln1_mean, a->ln1_rstd, x, w->ln1_w, w->ln1_b, N, C,
                              c->ln_eps);
        smp_linear_forward(a->qkv, a->ln1, w->qkv_w, w->qkv_b, N, C, 3 * C);
        smp_attention_forward(a->atty, a->att, a->qkv, B, T, C, H);
        smp_linear_forward(a->res1, a->atty, w->proj_w, w->proj_b, N, C, C);
#pragma omp parallel for schedule(static) if ((size_t)N * C >= SMP_PAR_MIN)
        for (size_t i = 0; i < (size_t)N * C; i++) a->res1[i] += x[i];
        smp_layernorm_forward(a->ln2, a->ln2_mean, a->ln2_rstd, a->res1, w->ln2_w, w->ln2_b, N, C,
                              c->ln_eps);
        smp_linear_forward(a->fc, a->ln2, w->fc_w, w->fc_b, N, C, F);
        smp_gelu_forward(a->fcg, a->fc, (size_t)N * F);
        smp_linear_forward(a->res2, a->fcg, w->mlp_w, w->mlp_b, N, F, C);
#pragma omp parallel for schedule(static) if ((size_t)N * C >= SMP_PAR_MIN)
        for (size_t i = 0; i < (size_t)N * C; i++) a->res2[i] += a->res1[i];
        x = a->res2;
    }
    smp_layernorm_forward(m->lnf, m->lnf_mean, m->lnf_rstd, x, m->p.lnf_w, m->p.lnf_b, N, C,
                          c->ln_eps);
    smp_linear_forward(m->out, m->lnf, m->p.out_w, m->p.out_b, N, C, D);

    if (!target) {
        m->loss = -1.0f;
        return m->loss;
    }
    double sum = 0.0;
    for (int n = 0; n < N; n++) {
        float wt = frame_weight(c, n % T, T);
        if (wt == 0.0f) continue;
        const float *p = m->out + (size_t)n * D, *y = target + (size_t)n * D;
        double s = 0.0;
        for (int d = 0; d < D; d++) {
            double e = (double)p[d] - y[d];
            s += e * e;
        }
        sum += wt * s;
    }
    m->loss = (float)(sum / ((double)B * D * weight_sum(c, T)));
    return m->loss;
}

float smp_forward_clips(SmpModel *m, const float *clips, int B, int T) {
    int D = m->cfg.embed_dim;
    STORY_CHECK(B >= 1 && B <= m->max_batch, "batch %d, the model was built for 1..%d", B,
                m->max_batch);
    // The end points go through d_out (free until backward) as (B, D) + (B, D).
    float *start = m->d_out, *end = m->d_out + (size_t)B * D;
    for (int b = 0; b < B; b++) {
        memcpy(start + (size_t)b * D, clips + (size_t)b * T * D, (size_t)D * sizeof(float));
        memcpy(end + (size_t)b * D, clips + ((size_t)b * T + T - 1) * D, (size_t)D * sizeof(float));
    }
    return smp_forward(m, start, end, clips, B, T);
}

void smp_loss_backward(SmpModel *m, float *dout) {
    const SmpConfig *c = &m->cfg;
    int B = m->B, T = m->T, N = B * T, D = c->embed_dim;
    double norm = 2.0 / ((double)B * D * weight_sum(c, T));
#pragma omp parallel for schedule(static) if ((size_t)N * D >= SMP_PAR_MIN)
    for (int n = 0; n < N; n++) {
        float k = (float)(norm * frame_weight(c, n % T, T));
        const float *p = m->out + (size_t)n * D, *y = m->target + (size_t)n * D;
        float *g = dout + (size_t)n * D;
        for (int d = 0; d < D; d++) g[d] = k * (p[d] - y[d]);
    }
}

// models/motion_optim.c: gradient clipping, AdamW and the learning-rate schedule of the
// motion predictor, written to give torch's results (torch.nn.utils.clip_grad_norm_ and
// torch.optim.AdamW's single-tensor CPU path): scalars are computed in double as Python
// does and rounded to float where torch's kernels take them as float.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../runner/check.h"
#include "motion_internal.h"

#define NORM_CHUNK 16384

double smp_clip_grad_norm(SmpModel *m, double max_norm) {
    // Sums of squares over fixed chunks of the buffer, then over the chunks in order: the
    // same bits for any thread count (an OpenMP reduction adds the threads' partial sums
    // in whatever order they finish, so resumed runs could drift apart).
    size_t n = m->num_params, nchunk = (n + NORM_CHUNK - 1) / NORM_CHUNK;
    double *part = mallocCheck(nchunk * sizeof(double));
    const float *g = m->grads;
#pragma omp parallel for schedule(static) if (n >= SMP_PAR_MIN)
    for (size_t c = 0; c < nchunk; c++) {
        size_t k1 = (c + 1) * NORM_CHUNK < n ? (c + 1) * NORM_CHUNK : n;
        double s = 0.0;
        for (size_t k = c * NORM_CHUNK; k < k1; k++) s += (double)g[k] * g[k];
        part[c] = s;
    }
    double total = 0.0;
    for (size_t c = 0; c < nchunk; c++) total += part[c];
    free(part);
    double norm = sqrt(total);
    if (max_norm > 0.0) {
        // torch always multiplies by the clamped coefficient (1.0 leaves grads unchanged)
        double coef = max_norm / (norm + 1e-6);
        if (coef < 1.0) smp_scale_grads(m, (float)coef);
    }
    return norm;
}

void smp_adamw_config_default(SmpAdamWConfig *c) {
    c->beta1 = 0.9;
    c->beta2 = 0.999;
    c->eps = 1e-8;
    c->weight_decay = 0.01;
}

void smp_adamw_init(SmpAdamW *o, const SmpAdamWConfig *cfg, size_t num_params) {
    o->cfg = *cfg;
    o->n = num_params;
    o->m = mallocCheck(num_params * sizeof(float));
    o->v = mallocCheck(num_params * sizeof(float));
    memset(o->m, 0, num_params * sizeof(float));
    memset(o->v, 0, num_params * sizeof(float));
    o->step = 0;
}

void smp_adamw_free(SmpAdamW *o) {
    if (!o) return;
    free(o->m);
    free(o->v);
    memset(o, 0, sizeof *o);
}

// Per element, as torch's _single_tensor_adamw:
//   p *= 1 - lr wd;  m = lerp(m, g, 1 - b1);  v = v b2 + (1 - b2) g^2;
//   p += -lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
void smp_adamw_step(SmpAdamW *o, SmpModel *m, double lr) {
    STORY_CHECK(o->n == m->num_params, "optimizer for %zu parameters, model has %zu", o->n,
                m->num_params);
    o->step++;
    const SmpAdamWConfig *c = &o->cfg;
    double t = (double)o->step;
    double bc1 = 1.0 - pow(c->beta1, t), bc2 = 1.0 - pow(c->beta2, t);
    float step_size = (float)(-(lr / bc1)), bc2_sqrt = (float)sqrt(bc2), eps = (float)c->eps;
    float w1 = (float)(1.0 - c->beta1), b2 = (float)c->beta2, w2 = (float)(1.0 - c->beta2);
    float decay = (float)(1.0 - lr * c->weight_decay);
    for (int i = 0; i < m->ntensors; i++) {
        const SmpTensorInfo *info = &m->info[i];
        float *p = m->params + info->offset, *mm = o->m + info->offset, *vv = o->v + info->offset;
        const float *g = m->grads + info->offset;
        size_t n = info->numel;
        int wd = info->decay && c->weight_decay != 0.0;
#pragma omp parallel for schedule(static) if (n >= SMP_PAR_MIN)
        for (size_t k = 0; k < n; k++) {
            float pk = wd ? p[k] * decay : p[k];
            float gk = g[k];
            float mk = mm[k] + w1 * (gk - mm[k]);
            float vk = vv[k] * b2 + w2 * (gk * gk);
            mm[k] = mk;
            vv[k] = vk;
            float denom = sqrtf(vk) / bc2_sqrt + eps;
            p[k] = pk + step_size * (mk / denom);
        }
    }
}

double smp_lr_at(const SmpSchedule *s, long step) {
    if (s->warmup > 0 && step < s->warmup) return s->lr * (double)(step + 1) / (double)s->warmup;
    long span = s->total - 1 - s->warmup;  // steps of the cosine after warm-up
    if (span <= 0) return s->lr;
    if (step >= s->total - 1) return s->min_lr;
    double ratio = (double)(step - s->warmup) / (double)span;
    return s->min_lr + 0.5 * (1.0 + cos(3.14159265358979323846 * ratio)) * (s->lr - s->min_lr);
}

// models/motion_cuda.c: the motion predictor's forward, backward and AdamW on a CUDA
// device (motion_cuda.h), step for step the CPU model's (motion_predictor.c,
// motion_backward.c, motion_optim.c) with the kernels of kernels/cuda/motion_kernels.h
// and motion_train.h. Built with CUDA only; otherwise smp_cuda_init says why not.
#include "motion_cuda.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../runner/check.h"

#ifdef STORY_HAVE_CUDA
#include "../kernels/cuda/motion_kernels.h"
#include "../kernels/cuda/motion_train.h"
#include "../kernels/cuda_runtime_api.h"
#include "../kernels/ops.h"

#define NORM_CHUNK 16384  // as motion_optim.c: the same partial sums, in double

// Device twins of host pointers into host->params / host->grads (same offsets).
#define DP(d, hp) ((d)->params + ((hp) - (d)->host->params))
#define DW(d, hp) ((d)->wbf + ((hp) - (d)->host->params))
#define DG(d, hg) ((d)->grads + ((hg) - (d)->host->grads))

static size_t round16(size_t n) { return (n + 15) & ~(size_t)15; }

// Carves the f32 activations (fbase) and their bf16 copies (hbase); NULL bases only
// count. Returns the float count, *nh the bf16 count.
static size_t carve(SmpCuda *d, float *fbase, uint16_t *hbase, size_t *nh) {
    const SmpConfig *c = &d->host->cfg;
    size_t N = (size_t)d->host->max_batch * c->frames, C = c->width, D = c->embed_dim;
    size_t F = (size_t)c->mlp_ratio * C,
           att = (size_t)d->host->max_batch * c->heads * c->frames * c->frames;
    size_t off = 0, hoff = 0;
#define TAKE(ptr, n)                    \
    do {                                \
        if (fbase) (ptr) = fbase + off; \
        off += round16(n);              \
    } while (0)
#define TAKEH(ptr, n)                    \
    do {                                 \
        if (hbase) (ptr) = hbase + hoff; \
        hoff += round16(n);              \
    } while (0)
    TAKE(d->K, N * D);
    TAKEH(d->hK, N * D);
    TAKE(d->x0, N * C);
    for (int l = 0; l < c->layers; l++) {
        SmpBlockActs *a = &d->blk[l];
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
        TAKEH(d->hln1[l], N * C);
        TAKEH(d->hatty[l], N * C);
        TAKEH(d->hln2[l], N * C);
        TAKEH(d->hfcg[l], N * F);
    }
    TAKE(d->lnf, N * C);
    TAKE(d->lnf_mean, N);
    TAKE(d->lnf_rstd, N);
    TAKE(d->out, N * D);
    TAKEH(d->hlnf, N * C);
    // backward scratch
    TAKE(d->d_res, N * C);
    TAKE(d->d_ln, N * C);
    TAKE(d->d_atty, N * C);
    TAKE(d->d_qkv, N * 3 * C);
    TAKE(d->d_att, att);
    TAKE(d->d_fcg, N * F);
    TAKE(d->d_fc, N * F);
    TAKE(d->d_out, N * D);
    size_t widest = 3 * C > F ? 3 * C : F;
    if (D > widest) widest = D;
    TAKEH(d->hgrad, N * widest);
    TAKE(d->clips, N * D);
#undef TAKE
#undef TAKEH
    *nh = hoff;
    return off;
}

static void *dev_alloc(size_t bytes, int *fail) {
    void *p = story_cuda_malloc(bytes);
    if (!p) *fail = 1;
    return p;
}

int smp_cuda_init(SmpCuda *d, SmpModel *host, char *err, size_t errlen) {
    memset(d, 0, sizeof *d);
    const char *why = NULL;
    if (!cuda_available()) {  // the emulation counts as one
        story_cuda_device_count(&why);
        snprintf(err, errlen, "motion predictor on CUDA: no CUDA device: %s",
                 why && *why ? why : "none found");
        return -1;
    }
    d->host = host;
    int L = host->cfg.layers;
    size_t n = host->num_params, N = (size_t)host->max_batch * host->cfg.frames;
    d->blk = mallocCheck(sizeof(SmpBlockActs) * (size_t)L);
    d->hln1 = mallocCheck(sizeof(uint16_t *) * (size_t)L * 4);
    d->hatty = d->hln1 + L, d->hln2 = d->hln1 + 2 * L, d->hfcg = d->hln1 + 3 * L;
    size_t nh = 0, nf = carve(d, NULL, NULL, &nh);
    d->nparts = (n + NORM_CHUNK - 1) / NORM_CHUNK;
    size_t nrows = N > d->nparts ? N : d->nparts;
    int fail = 0;
    d->params = dev_alloc(n * sizeof(float), &fail);
    d->grads = dev_alloc(n * sizeof(float), &fail);
    d->m = dev_alloc(n * sizeof(float), &fail);
    d->v = dev_alloc(n * sizeof(float), &fail);
    d->wbf = dev_alloc(n * sizeof(uint16_t), &fail);
    d->acts = dev_alloc(nf * sizeof(float), &fail);
    d->hacts = dev_alloc(nh * sizeof(uint16_t), &fail);
    d->rows = dev_alloc(nrows * sizeof(double), &fail);
    d->parts = d->rows;  // the loss rows and the norm's partial sums are never live together
    d->host_rows = mallocCheck(nrows * sizeof(double));
    if (fail) {
        snprintf(err, errlen,
                 "motion predictor on CUDA: out of device memory for %zu parameters and "
                 "activations of %d clips x %d frames (%.1f MiB); lower train.batch or the model "
                 "size",
                 n, host->max_batch, host->cfg.frames,
                 (double)(n * 18 + nf * 4 + nh * 2) / (1024.0 * 1024.0));
        smp_cuda_free(d);
        return -1;
    }
    carve(d, d->acts, d->hacts, &nh);
    d->scratch = d->d_res;
    cuda_smp_scale(d->m, 0.0f, (int64_t)n);
    cuda_smp_scale(d->v, 0.0f, (int64_t)n);
    cuda_smp_scale(d->grads, 0.0f, (int64_t)n);
    smp_cuda_upload(d, NULL);
    d->loss = -1.0f;
    return 0;
}

void smp_cuda_free(SmpCuda *d) {
    if (!d) return;
    void *dev[] = {d->params, d->grads, d->m, d->v, d->wbf, d->acts, d->hacts, d->rows};
    for (size_t i = 0; i < sizeof dev / sizeof dev[0]; i++) story_cuda_free(dev[i]);
    free(d->blk);
    free(d->hln1);
    free(d->host_rows);
    memset(d, 0, sizeof *d);
}

void smp_cuda_upload(SmpCuda *d, const SmpAdamW *opt) {
    size_t n = d->host->num_params, bytes = n * sizeof(float);
    story_cuda_memcpy(d->params, d->host->params, bytes, 0);
    cuda_smp_to_bf16(d->wbf, d->params, (int64_t)n);
    if (opt) {
        STORY_CHECK(opt->n == n, "optimizer for %zu parameters, model has %zu", opt->n, n);
        story_cuda_memcpy(d->m, opt->m, bytes, 0);
        story_cuda_memcpy(d->v, opt->v, bytes, 0);
    }
}

void smp_cuda_download(SmpCuda *d, SmpAdamW *opt) {
    size_t n = d->host->num_params, bytes = n * sizeof(float);
    story_cuda_memcpy(d->host->params, d->params, bytes, 1);
    story_cuda_memcpy(d->host->grads, d->grads, bytes, 1);
    if (opt) {
        STORY_CHECK(opt->n == n, "optimizer for %zu parameters, model has %zu", opt->n, n);
        story_cuda_memcpy(opt->m, d->m, bytes, 1);
        story_cuda_memcpy(opt->v, d->v, bytes, 1);
    }
}

// ---- forward ------------------------------------------------------------------------------------

// out (N, OC) = x (N, IC) @ w^T + b with xh, wh the bf16 copies of x and w.
static void linear_fwd(float *out, const uint16_t *xh, const uint16_t *wh, const float *b, int N,
                       int IC, int OC) {
    cuda_smp_matmul_bf16(out, xh, wh, N, OC, IC, 0, 1, 0.0f);
    cuda_smp_add_rows(out, b, N, OC, 1);
}

// dx (N, IC) = dout @ w (when dx); dw (OC, IC) += dout^T @ x; db (OC) += column sums.
static void linear_bwd(SmpCuda *d, float *dx, float *dw, float *db, const float *dout,
                       const uint16_t *xh, const uint16_t *wh, int N, int IC, int OC) {
    cuda_smp_to_bf16(d->hgrad, dout, (int64_t)N * OC);
    if (dx) cuda_smp_matmul_bf16(dx, d->hgrad, wh, N, IC, OC, 0, 0, 0.0f);
    cuda_smp_matmul_bf16(dw, d->hgrad, xh, OC, IC, N, 1, 0, 1.0f);
    cuda_smp_col_sum(db, dout, N, OC, 1);
}

float smp_cuda_forward_clips(SmpCuda *d, const float *clips, int B, int T) {
    SmpModel *h = d->host;
    const SmpConfig *c = &h->cfg;
    STORY_CHECK(B >= 1 && B <= h->max_batch, "batch %d, the model was built for 1..%d", B,
                h->max_batch);
    STORY_CHECK(T >= 2 && T <= c->frames, "%d frames, the model was built for 2..%d", T, c->frames);
    int N = B * T, C = c->width, D = c->embed_dim, H = c->heads, F = c->mlp_ratio * c->width;
    d->B = B, d->T = T;
    story_cuda_memcpy(d->clips, clips, (size_t)N * D * sizeof(float), 0);
    cuda_smp_interp(d->K, d->clips, B, T, D);
    cuda_smp_to_bf16(d->hK, d->K, (int64_t)N * D);
    linear_fwd(d->x0, d->hK, DW(d, h->p.in_w), DP(d, h->p.in_b), N, D, C);
    cuda_smp_add_rows(d->x0, DP(d, h->p.pos), N, C, T);

    const float *x = d->x0;
    for (int l = 0; l < c->layers; l++) {
        const SmpBlockTensors *w = &h->p.blocks[l];
        SmpBlockActs *a = &d->blk[l];
        cuda_smp_layernorm_forward(a->ln1, a->ln1_mean, a->ln1_rstd, x, DP(d, w->ln1_w),
                                   DP(d, w->ln1_b), N, C, c->ln_eps);
        cuda_smp_to_bf16(d->hln1[l], a->ln1, (int64_t)N * C);
        linear_fwd(a->qkv, d->hln1[l], DW(d, w->qkv_w), DP(d, w->qkv_b), N, C, 3 * C);
        cuda_smp_attention_forward(a->atty, a->att, a->qkv, B, T, C, H);
        cuda_smp_to_bf16(d->hatty[l], a->atty, (int64_t)N * C);
        linear_fwd(a->res1, d->hatty[l], DW(d, w->proj_w), DP(d, w->proj_b), N, C, C);
        cuda_smp_add(a->res1, x, (int64_t)N * C);
        cuda_smp_layernorm_forward(a->ln2, a->ln2_mean, a->ln2_rstd, a->res1, DP(d, w->ln2_w),
                                   DP(d, w->ln2_b), N, C, c->ln_eps);
        cuda_smp_to_bf16(d->hln2[l], a->ln2, (int64_t)N * C);
        linear_fwd(a->fc, d->hln2[l], DW(d, w->fc_w), DP(d, w->fc_b), N, C, F);
        cuda_smp_gelu_forward(a->fcg, a->fc, (int64_t)N * F);
        cuda_smp_to_bf16(d->hfcg[l], a->fcg, (int64_t)N * F);
        linear_fwd(a->res2, d->hfcg[l], DW(d, w->mlp_w), DP(d, w->mlp_b), N, F, C);
        cuda_smp_add(a->res2, a->res1, (int64_t)N * C);
        x = a->res2;
    }
    cuda_smp_layernorm_forward(d->lnf, d->lnf_mean, d->lnf_rstd, x, DP(d, h->p.lnf_w),
                               DP(d, h->p.lnf_b), N, C, c->ln_eps);
    cuda_smp_to_bf16(d->hlnf, d->lnf, (int64_t)N * C);
    linear_fwd(d->out, d->hlnf, DW(d, h->p.out_w), DP(d, h->p.out_b), N, C, D);

    // loss and d loss / d P (into d_out, for backward), as smp_forward / smp_loss_backward
    double wsum = 0.0;
    for (int t = 0; t < T; t++) wsum += (t == 0 || t == T - 1) ? c->endpoint_weight : 1.0f;
    double norm = 2.0 / ((double)B * D * wsum);
    cuda_smp_mse(d->rows, d->d_out, d->out, d->clips, N, T, D, c->endpoint_weight,
                 (float)(norm * c->endpoint_weight), (float)norm);
    story_cuda_memcpy(d->host_rows, d->rows, (size_t)N * sizeof(double), 1);
    double sum = 0.0;
    for (int n = 0; n < N; n++) sum += d->host_rows[n];
    d->loss = (float)(sum / ((double)B * D * wsum));
    story_cuda_memcpy(h->out, d->out, (size_t)N * D * sizeof(float), 1);
    h->B = B, h->T = T, h->loss = d->loss;
    return d->loss;
}

// ---- backward -----------------------------------------------------------------------------------

void smp_cuda_zero_grad(SmpCuda *d) {
    cuda_smp_scale(d->grads, 0.0f, (int64_t)d->host->num_params);
}

void smp_cuda_scale_grads(SmpCuda *d, float s) {
    cuda_smp_scale(d->grads, s, (int64_t)d->host->num_params);
}

void smp_cuda_backward(SmpCuda *d) {
    SmpModel *h = d->host;
    const SmpConfig *c = &h->cfg;
    STORY_CHECK(d->B > 0, "smp_cuda_backward needs a forward first");
    int B = d->B, T = d->T, N = B * T, C = c->width, D = c->embed_dim, H = c->heads,
        F = c->mlp_ratio * c->width, L = c->layers;

    linear_bwd(d, d->d_ln, DG(d, h->g.out_w), DG(d, h->g.out_b), d->d_out, d->hlnf,
               DW(d, h->p.out_w), N, C, D);
    const float *x_last = L > 0 ? d->blk[L - 1].res2 : d->x0;
    cuda_smp_scale(d->d_res, 0.0f, (int64_t)N * C);
    cuda_smp_layernorm_backward(d->d_res, DG(d, h->g.lnf_w), DG(d, h->g.lnf_b), d->d_ln, x_last,
                                DP(d, h->p.lnf_w), d->lnf_mean, d->lnf_rstd, N, C);
    for (int l = L - 1; l >= 0; l--) {
        const SmpBlockTensors *w = &h->p.blocks[l], *g = &h->g.blocks[l];
        const SmpBlockActs *a = &d->blk[l];
        const float *x_in = l > 0 ? d->blk[l - 1].res2 : d->x0;
        linear_bwd(d, d->d_fcg, DG(d, g->mlp_w), DG(d, g->mlp_b), d->d_res, d->hfcg[l],
                   DW(d, w->mlp_w), N, F, C);
        cuda_smp_gelu_backward(d->d_fc, d->d_fcg, a->fc, (int64_t)N * F);
        linear_bwd(d, d->d_ln, DG(d, g->fc_w), DG(d, g->fc_b), d->d_fc, d->hln2[l], DW(d, w->fc_w),
                   N, C, F);
        cuda_smp_layernorm_backward(d->d_res, DG(d, g->ln2_w), DG(d, g->ln2_b), d->d_ln, a->res1,
                                    DP(d, w->ln2_w), a->ln2_mean, a->ln2_rstd, N, C);
        linear_bwd(d, d->d_atty, DG(d, g->proj_w), DG(d, g->proj_b), d->d_res, d->hatty[l],
                   DW(d, w->proj_w), N, C, C);
        cuda_smp_attention_backward(d->d_qkv, d->d_att, d->d_atty, a->qkv, a->att, B, T, C, H);
        linear_bwd(d, d->d_ln, DG(d, g->qkv_w), DG(d, g->qkv_b), d->d_qkv, d->hln1[l],
                   DW(d, w->qkv_w), N, C, 3 * C);
        cuda_smp_layernorm_backward(d->d_res, DG(d, g->ln1_w), DG(d, g->ln1_b), d->d_ln, x_in,
                                    DP(d, w->ln1_w), a->ln1_mean, a->ln1_rstd, N, C);
    }
    cuda_smp_col_sum(DG(d, h->g.pos), d->d_res, N, C, T);
    linear_bwd(d, NULL, DG(d, h->g.in_w), DG(d, h->g.in_b), d->d_res, d->hK, DW(d, h->p.in_w), N, D,
               C);
}

// ---- optimizer ----------------------------------------------------------------------------------

double smp_cuda_clip_grad_norm(SmpCuda *d, double max_norm) {
    size_t n = d->host->num_params;
    cuda_smp_sumsq(d->parts, d->grads, (int64_t)n, NORM_CHUNK);
    story_cuda_memcpy(d->host_rows, d->parts, d->nparts * sizeof(double), 1);
    double total = 0.0;
    for (size_t i = 0; i < d->nparts; i++) total += d->host_rows[i];
    double norm = sqrt(total);
    if (max_norm > 0.0) {
        double coef = max_norm / (norm + 1e-6);
        if (coef < 1.0) smp_cuda_scale_grads(d, (float)coef);
    }
    return norm;
}

void smp_cuda_adamw_step(SmpCuda *d, SmpAdamW *o, double lr) {
    SmpModel *h = d->host;
    STORY_CHECK(o->n == h->num_params, "optimizer for %zu parameters, model has %zu", o->n,
                h->num_params);
    o->step++;
    const SmpAdamWConfig *c = &o->cfg;
    double t = (double)o->step;
    double bc1 = 1.0 - pow(c->beta1, t), bc2 = 1.0 - pow(c->beta2, t);
    float step_size = (float)(-(lr / bc1)), bc2_sqrt = (float)sqrt(bc2), eps = (float)c->eps;
    float w1 = (float)(1.0 - c->beta1), b2 = (float)c->beta2, w2 = (float)(1.0 - c->beta2);
    float decay = (float)(1.0 - lr * c->weight_decay);
    for (int i = 0; i < h->ntensors; i++) {
        const SmpTensorInfo *info = &h->info[i];
        size_t off = info->offset;
        int wd = info->decay && c->weight_decay != 0.0;
        cuda_smp_adamw(d->params + off, d->wbf + off, d->grads + off, d->m + off, d->v + off,
                       (int64_t)info->numel, wd ? decay : 1.0f, w1, b2, w2, step_size, bc2_sqrt,
                       eps);
    }
}

#else  // no CUDA in this build

int smp_cuda_init(SmpCuda *d, SmpModel *host, char *err, size_t errlen) {
    memset(d, 0, sizeof *d);
    (void)host;
    snprintf(err, errlen,
             "motion predictor on CUDA: this build of storyrun has no CUDA back end "
             "(configured with STORY_CUDA=OFF or no nvcc found)");
    return -1;
}
void smp_cuda_free(SmpCuda *d) {
    if (d) memset(d, 0, sizeof *d);
}
#define SMP_NO_CUDA() STORY_FATAL("motion predictor on CUDA: no CUDA back end in this build")
void smp_cuda_upload(SmpCuda *d, const SmpAdamW *opt) {
    (void)d, (void)opt;
    SMP_NO_CUDA();
}
void smp_cuda_download(SmpCuda *d, SmpAdamW *opt) {
    (void)d, (void)opt;
    SMP_NO_CUDA();
}
float smp_cuda_forward_clips(SmpCuda *d, const float *clips, int B, int T) {
    (void)d, (void)clips, (void)B, (void)T;
    SMP_NO_CUDA();
}
void smp_cuda_zero_grad(SmpCuda *d) {
    (void)d;
    SMP_NO_CUDA();
}
void smp_cuda_backward(SmpCuda *d) {
    (void)d;
    SMP_NO_CUDA();
}
void smp_cuda_scale_grads(SmpCuda *d, float s) {
    (void)d, (void)s;
    SMP_NO_CUDA();
}
double smp_cuda_clip_grad_norm(SmpCuda *d, double max_norm) {
    (void)d, (void)max_norm;
    SMP_NO_CUDA();
}
void smp_cuda_adamw_step(SmpCuda *d, SmpAdamW *opt, double lr) {
    (void)d, (void)opt, (void)lr;
    SMP_NO_CUDA();
}

#endif

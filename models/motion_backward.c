// models/motion_backward.c: the motion predictor's backward pass, from the loss of the last
// forward down to every parameter gradient (accumulated into m->grads), in the reverse
// order of smp_forward. d_res carries the gradient of the residual stream x; each branch
// adds its input gradient to it through the LayerNorm backward.
#include <string.h>

#include "../runner/check.h"
#include "motion_internal.h"
#include "motion_ops.h"

void smp_zero_grad(SmpModel *m) { memset(m->grads, 0, m->num_params * sizeof(float)); }

void smp_set_grad_ready_hook(SmpModel *m, SmpGradReadyFn fn, void *ctx) {
    m->grad_ready = fn;
    m->grad_ready_ctx = ctx;
}

void smp_scale_grads(SmpModel *m, float s) {
    float *g = m->grads;
    size_t n = m->num_params;
#pragma omp parallel for schedule(static) if (n >= SMP_PAR_MIN)
    for (size_t i = 0; i < n; i++) g[i] *= s;
}

// Reports grads of tensors [first, last] (buffer order, contiguous) as final.
static void ready(SmpModel *m, int first, int last) {
    if (!m->grad_ready) return;
    const SmpTensorInfo *a = &m->info[first], *b = &m->info[last];
    m->grad_ready(m->grad_ready_ctx, a->offset, b->offset + b->numel - a->offset);
}

void smp_backward(SmpModel *m) {
    const SmpConfig *c = &m->cfg;
    STORY_CHECK(m->target != NULL, "smp_backward needs a forward with a target");
    int B = m->B, T = m->T, N = B * T, C = c->width, D = c->embed_dim, H = c->heads,
        F = c->mlp_ratio * c->width;
    int L = c->layers;

    // P = ln_f(x) @ out_w^T + out_b
    smp_loss_backward(m, m->d_out);
    smp_linear_backward(m->d_ln, m->g.out_w, m->g.out_b, m->d_out, m->lnf, m->p.out_w, N, C, D);
    const float *x_last = L > 0 ? m->blk[L - 1].res2 : m->x0;
    memset(m->d_res, 0, (size_t)N * C * sizeof(float));
    smp_layernorm_backward(m->d_res, m->g.lnf_w, m->g.lnf_b, m->d_ln, x_last, m->p.lnf_w,
                           m->lnf_mean, m->lnf_rstd, N, C);
    // tensors in buffer order: 3 before the blocks, 12 per block, 4 after
    ready(m, 3 + 12 * L, 3 + 12 * L + 3);

    for (int l = L - 1; l >= 0; l--) {
        const SmpBlockTensors *w = &m->p.blocks[l];
        SmpBlockTensors *g = &m->g.blocks[l];
        const SmpBlockActs *a = &m->blk[l];
        const float *x_in = l > 0 ? m->blk[l - 1].res2 : m->x0;

        // res2 = res1 + gelu(fc(ln2(res1))) @ mlp_w^T + mlp_b: d_res is d res2 here
        smp_linear_backward(m->d_fcg, g->mlp_w, g->mlp_b, m->d_res, a->fcg, w->mlp_w, N, F, C);
        smp_gelu_backward(m->d_fc, m->d_fcg, a->fc, (size_t)N * F);
        smp_linear_backward(m->d_ln, g->fc_w, g->fc_b, m->d_fc, a->ln2, w->fc_w, N, C, F);
        smp_layernorm_backward(m->d_res, g->ln2_w, g->ln2_b, m->d_ln, a->res1, w->ln2_w,
                               a->ln2_mean, a->ln2_rstd, N, C);
        // res1 = x + attn(ln1(x)) @ proj_w^T + proj_b: d_res is d res1 here
        smp_linear_backward(m->d_atty, g->proj_w, g->proj_b, m->d_res, a->atty, w->proj_w, N, C, C);
        smp_attention_backward(m->d_qkv, m->d_att, m->d_atty, a->qkv, a->att, B, T, C, H);
        smp_linear_backward(m->d_ln, g->qkv_w, g->qkv_b, m->d_qkv, a->ln1, w->qkv_w, N, C, 3 * C);
        smp_layernorm_backward(m->d_res, g->ln1_w, g->ln1_b, m->d_ln, x_in, w->ln1_w, a->ln1_mean,
                               a->ln1_rstd, N, C);
        ready(m, 3 + 12 * l, 3 + 12 * l + 11);
    }

    // x0 = K @ in_w^T + in_b + pos[t]: d pos[t] = sum over the batch of d x0[b, t]
    for (int b = 0; b < B; b++) {
        const float *dr = m->d_res + (size_t)b * T * C;
        for (size_t i = 0; i < (size_t)T * C; i++) m->g.pos[i] += dr[i];
    }
    smp_linear_backward(NULL, m->g.in_w, m->g.in_b, m->d_res, m->K, m->p.in_w, N, D, C);
    ready(m, 0, 2);
}

// tests/motion/test_motion_grad.c: the backward of every motion predictor op, and of the
// whole model, against central finite differences.
//
//   test_motion_grad ops     linear, layernorm, gelu, attention: every input element
//   test_motion_grad model   the whole model (loss included): one random unit direction
//                            per parameter tensor
//
// Per op, J(x) = sum(op(x) * R) with a fixed random R (evaluated in double from the f32
// outputs), so dJ/dx is the op's backward with dout = R. Each input element is moved by
// +-h (h = 1e-2, the step actually taken in f32 is used) and
//   err = max_i |fd_i - g_i| / max_i |g_i|
// must stay under the op's tolerance. The f32 forward limits fd's precision: output
// rounding ~6e-8 relative over ~50 outputs, divided by 2h, is ~1e-5 of a typical
// gradient, and the O(h^2) truncation adds ~1e-4 for the curved ops. Tolerances: linear
// 1e-3 (linear in each input: rounding only), gelu, layernorm and attention 2e-3.
// Model: J = the loss; direction v (unit L2 norm) per tensor, fd = (J(p + hv) - J(p - hv))
// / 2h vs <g, v>, err = |fd - <g, v>| / |g|_2 <= 2e-3 (the loss's f32 rounding, ~1e-7,
// over 2h = 2e-2 is ~1e-5 of loss changes of ~1e-3). A wrong term in any backward gives
// errors of order 1.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/test_check.h"
#include "kernels/ops.h"
#include "models/motion_ops.h"
#include "models/motion_predictor.h"

#define H_STEP 1e-2f

static TorchRng g_rng;

static float *randn(size_t n, float scale, float shift) {
    float *p = malloc(n * sizeof(float));
    rng_torch_randn(&g_rng, p, (int64_t)n);
    for (size_t i = 0; i < n; i++) p[i] = p[i] * scale + shift;
    return p;
}

static float *zeros(size_t n) { return calloc(n, sizeof(float)); }

// The forward of the op under test, reading its inputs from ctx, writing out.
typedef void (*Forward)(void *ctx, float *out);

static double objective(Forward f, void *ctx, float *out, const float *R, size_t nout) {
    f(ctx, out);
    double s = 0.0;
    for (size_t i = 0; i < nout; i++) s += (double)out[i] * R[i];
    return s;
}

// Checks the analytic gradient g (n) of input x (n) element by element.
static void fd_check(const char *what, float *x, const float *g, size_t n, Forward f, void *ctx,
                     size_t nout, const float *R, double tol) {
    float *out = malloc(nout * sizeof(float));
    double err = 0.0, gmax = 0.0;
    for (size_t i = 0; i < n; i++) {
        float x0 = x[i], xp = x0 + H_STEP, xm = x0 - H_STEP;
        x[i] = xp;
        double jp = objective(f, ctx, out, R, nout);
        x[i] = xm;
        double jm = objective(f, ctx, out, R, nout);
        x[i] = x0;
        double fd = (jp - jm) / ((double)xp - xm);
        err = fmax(err, fabs(fd - g[i]));
        gmax = fmax(gmax, fabs(g[i]));
    }
    double r = err / gmax;
    printf("  %-22s %4zu elements: max |fd - g| / max |g| = %.2e (tolerance %.0e)\n", what, n, r,
           tol);
    CHECK(r <= tol && gmax > 0.0, "%s: %.3e > %.0e", what, r, tol);
    free(out);
}

// ---- ops ---------------------------------------------------------------------------------------

typedef struct {
    float *x, *w, *b, *mean, *rstd;
    int N, IC, OC;
} LinearCtx;

static void linear_fwd(void *c, float *out) {
    LinearCtx *k = c;
    smp_linear_forward(out, k->x, k->w, k->b, k->N, k->IC, k->OC);
}

static void layernorm_fwd(void *c, float *out) {
    LinearCtx *k = c;
    smp_layernorm_forward(out, k->mean, k->rstd, k->x, k->w, k->b, k->N, k->IC, 1e-5f);
}

static void gelu_fwd(void *c, float *out) {
    LinearCtx *k = c;
    smp_gelu_forward(out, k->x, (size_t)k->N);
}

typedef struct {
    float *qkv, *att;
    int B, T, C, H;
} AttnCtx;

static void attn_fwd(void *c, float *out) {
    AttnCtx *k = c;
    smp_attention_forward(out, k->att, k->qkv, k->B, k->T, k->C, k->H);
}

static void mode_ops(void) {
    {  // linear
        LinearCtx k = {
            randn(5 * 7, 1, 0), randn(4 * 7, 0.5f, 0), randn(4, 1, 0), NULL, NULL, 5, 7, 4};
        size_t nout = 5 * 4;
        float *R = randn(nout, 1, 0), *dx = zeros(5 * 7), *dw = zeros(4 * 7), *db = zeros(4);
        float *junk = zeros(nout);
        linear_fwd(&k, junk);
        smp_linear_backward(dx, dw, db, R, k.x, k.w, k.N, k.IC, k.OC);
        fd_check("linear dx", k.x, dx, 35, linear_fwd, &k, nout, R, 1e-3);
        fd_check("linear dw", k.w, dw, 28, linear_fwd, &k, nout, R, 1e-3);
        fd_check("linear db", k.b, db, 4, linear_fwd, &k, nout, R, 1e-3);
        // accumulation: a second backward adds the same again
        smp_linear_backward(NULL, dw, NULL, R, k.x, k.w, k.N, k.IC, k.OC);
        float *dw1 = zeros(28);
        smp_linear_backward(NULL, dw1, NULL, R, k.x, k.w, k.N, k.IC, k.OC);
        double e = 0;
        for (int i = 0; i < 28; i++) e = fmax(e, fabs(dw[i] - 2 * dw1[i]));
        CHECK(e < 1e-5, "linear dw does not accumulate (%.3e)", e);
        free(k.x), free(k.w), free(k.b), free(R), free(dx), free(dw), free(db), free(junk),
            free(dw1);
    }
    {  // layernorm, input off-centre and scaled like a residual stream
        int N = 4, C = 10;
        LinearCtx k = {randn((size_t)N * C, 2, 0.7f),
                       randn(C, 0.3f, 1),
                       randn(C, 0.3f, 0),
                       zeros(N),
                       zeros(N),
                       N,
                       C,
                       C};
        size_t nout = (size_t)N * C;
        float *R = randn(nout, 1, 0), *dx = zeros(nout), *dw = zeros(C), *db = zeros(C),
              *out = zeros(nout);
        layernorm_fwd(&k, out);
        smp_layernorm_backward(dx, dw, db, R, k.x, k.w, k.mean, k.rstd, N, C);
        fd_check("layernorm dx", k.x, dx, nout, layernorm_fwd, &k, nout, R, 2e-3);
        fd_check("layernorm dw", k.w, dw, C, layernorm_fwd, &k, nout, R, 2e-3);
        fd_check("layernorm db", k.b, db, C, layernorm_fwd, &k, nout, R, 2e-3);
        free(k.x), free(k.w), free(k.b), free(k.mean), free(k.rstd), free(R), free(dx), free(dw),
            free(db), free(out);
    }
    {  // gelu over [-4, 4]
        int n = 41;
        LinearCtx k = {zeros(n), NULL, NULL, NULL, NULL, n, 0, 0};
        for (int i = 0; i < n; i++) k.x[i] = -4.0f + 8.0f * i / (n - 1) + 0.013f;
        float *R = randn(n, 1, 0), *dx = zeros(n);
        smp_gelu_backward(dx, R, k.x, (size_t)n);
        fd_check("gelu dx", k.x, dx, (size_t)n, gelu_fwd, &k, (size_t)n, R, 2e-3);
        free(k.x), free(R), free(dx);
    }
    {  // attention: 2 clips, 4 frames, 3 heads of 4
        AttnCtx k = {randn(2 * 4 * 36, 1, 0), zeros(2 * 3 * 4 * 4), 2, 4, 12, 3};
        size_t nout = 2 * 4 * 12, nq = 2 * 4 * 36;
        float *R = randn(nout, 1, 0), *dq = zeros(nq), *datt = zeros(2 * 3 * 16),
              *out = zeros(nout);
        attn_fwd(&k, out);
        smp_attention_backward(dq, datt, R, k.qkv, k.att, k.B, k.T, k.C, k.H);
        fd_check("attention dqkv", k.qkv, dq, nq, attn_fwd, &k, nout, R, 2e-3);
        // softmax rows sum to 1
        double worst = 0;
        for (int r = 0; r < 2 * 3 * 4; r++) {
            double s = 0;
            for (int j = 0; j < 4; j++) s += k.att[r * 4 + j];
            worst = fmax(worst, fabs(s - 1));
        }
        CHECK(worst < 1e-6, "attention rows sum to 1 +- %.2e", worst);
        free(k.qkv), free(k.att), free(R), free(dq), free(datt), free(out);
    }
}

// ---- whole model -------------------------------------------------------------------------------

static void mode_model(void) {
    SmpConfig c;
    smp_config_default(&c, 8, 5);
    c.layers = 2;
    c.width = 16;
    c.heads = 2;
    c.endpoint_weight = 0.3f;
    int B = 2, T = 4;  // T < L: pos_emb's last row gets no gradient
    char err[512];
    SmpModel m;
    if (smp_init(&m, &c, B, err, sizeof err)) {
        fprintf(stderr, "%s\n", err);
        exit(1);
    }
    // weights larger than the training init, LayerNorms away from (1, 0), so every term of
    // the backward matters
    TorchRng g;
    rng_torch_seed(&g, 3);
    rng_torch_randn(&g, m.params, (int64_t)m.num_params);
    for (size_t i = 0; i < m.num_params; i++) m.params[i] *= 0.3f;
    for (int i = 0; i < m.ntensors; i++) {
        const SmpTensorInfo *t = &m.info[i];
        size_t len = strlen(t->name);
        if (t->ndim == 1 && !strcmp(t->name + len - 7, ".weight"))
            for (size_t k = 0; k < t->numel; k++) m.params[t->offset + k] += 1.0f;
    }
    size_t D = (size_t)c.embed_dim;
    float *start = randn((size_t)B * D, 1, 0), *end = randn((size_t)B * D, 1, 0),
          *target = randn((size_t)B * T * D, 1, 0);
    smp_zero_grad(&m);
    float loss = smp_forward(&m, start, end, target, B, T);
    smp_backward(&m);
    printf("  model: %zu parameters, %d tensors, loss %.5f\n", m.num_params, m.ntensors, loss);

    double worst = 0.0;
    const char *worst_name = "";
    float *v = malloc(m.num_params * sizeof(float));
    for (int i = 0; i < m.ntensors; i++) {
        const SmpTensorInfo *t = &m.info[i];
        float *p = m.params + t->offset;
        const float *gr = m.grads + t->offset;
        rng_torch_randn(&g, v, (int64_t)t->numel);
        double vn = 0, gn = 0, gv = 0;
        for (size_t k = 0; k < t->numel; k++) vn += (double)v[k] * v[k];
        vn = sqrt(vn);
        for (size_t k = 0; k < t->numel; k++) {
            v[k] = (float)(v[k] / vn);
            gn += (double)gr[k] * gr[k];
            gv += (double)gr[k] * v[k];
        }
        gn = sqrt(gn);
        float *saved = malloc(t->numel * sizeof(float));
        memcpy(saved, p, t->numel * sizeof(float));
        for (size_t k = 0; k < t->numel; k++) p[k] = saved[k] + H_STEP * v[k];
        double jp = smp_forward(&m, start, end, target, B, T);
        for (size_t k = 0; k < t->numel; k++) p[k] = saved[k] - H_STEP * v[k];
        double jm = smp_forward(&m, start, end, target, B, T);
        memcpy(p, saved, t->numel * sizeof(float));
        free(saved);
        double fd = (jp - jm) / (2.0 * H_STEP);
        if (!strcmp(t->name, "pos_emb")) {
            // row T (unused by T frames) must have a zero gradient
            double unused = 0;
            for (int k = T * c.width; k < c.frames * c.width; k++)
                unused = fmax(unused, fabs(gr[k]));
            CHECK(unused == 0.0, "pos_emb rows past T have gradient %.3e", unused);
        }
        double r = fabs(fd - gv) / gn;
        CHECK(r <= 2e-3 && gn > 0, "%s: |fd - <g,v>| / |g| = %.3e (fd %.6e, <g,v> %.6e, |g| %.3e)",
              t->name, r, fd, gv, gn);
        if (r > worst) worst = r, worst_name = t->name;
    }
    printf("  model: worst |fd - <g,v>| / |g| = %.2e (%s), tolerance 2e-3\n", worst, worst_name);
    free(v), free(start), free(end), free(target);
    smp_free(&m);
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "";
    cpu_set_threads(2);
    rng_torch_seed(&g_rng, 2024);
    if (!strcmp(mode, "ops")) {
        mode_ops();
    } else if (!strcmp(mode, "model")) {
        mode_model();
    } else {
        fprintf(stderr, "usage: %s ops|model\n", argv[0]);
        return 2;
    }
    printf("motion grad %s: %d checks, %d failure(s)\n", mode, checks, failures);
    return failures ? 1 : 0;
}

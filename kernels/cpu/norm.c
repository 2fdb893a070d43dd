// kernels/cpu/norm.c: group_norm (optionally fused with SiLU), layer_norm, softmax.
// Statistics as torch computes them: biased variance, eps inside the square root.
// Sums are accumulated in float over chunks and in double across chunks, and the
// variance is a second pass over (x - mean)^2, so long groups lose no precision.
#include <omp.h>

#include "cpu_internal.h"

#define NORM_CHUNK 1024

CPU_SIMD_CLONES
static double norm_sum(const float *x, int64_t n) {
    double total = 0.0;
    for (int64_t i0 = 0; i0 < n; i0 += NORM_CHUNK) {
        int64_t e = n - i0 < NORM_CHUNK ? n - i0 : NORM_CHUNK;
        float s = 0.0f;
#pragma omp simd reduction(+ : s)
        for (int64_t i = 0; i < e; i++) s += x[i0 + i];
        total += s;
    }
    return total;
}

CPU_SIMD_CLONES
static double norm_sqdev(const float *x, int64_t n, float mean) {
    double total = 0.0;
    for (int64_t i0 = 0; i0 < n; i0 += NORM_CHUNK) {
        int64_t e = n - i0 < NORM_CHUNK ? n - i0 : NORM_CHUNK;
        float s = 0.0f;
#pragma omp simd reduction(+ : s)
        for (int64_t i = 0; i < e; i++) {
            float d = x[i0 + i] - mean;
            s += d * d;
        }
        total += s;
    }
    return total;
}

// y = x * a + c, then optionally y * sigmoid(y).
CPU_SIMD_CLONES
static void norm_affine(float *y, const float *x, int64_t n, float a, float c, int silu) {
    if (silu) {
#pragma omp simd
        for (int64_t i = 0; i < n; i++) {
            float v = x[i] * a + c;
            y[i] = v / (1.0f + cpu_expf(-v));
        }
    } else {
#pragma omp simd
        for (int64_t i = 0; i < n; i++) y[i] = x[i] * a + c;
    }
}

static void norm_check_param(const char *op, const Tensor *p, const Tensor *x, int64_t C) {
    if (!p) return;
    CPU_CHECK_F32(op, p);
    CPU_CHECK_SHAPES(op, tensor_numel(p) == C, p, x, "gamma/beta must have C elements");
}

void cpu_group_norm(Tensor *out, const Tensor *x, const Tensor *gamma, const Tensor *beta, int groups, float eps,
                    int fuse_silu) {
    CPU_CHECK_F32("group_norm", out);
    CPU_CHECK_F32("group_norm", x);
    CPU_CHECK_SHAPES("group_norm", x->ndim >= 2 && cpu_same_shape(out, x), out, x,
                     "x must be (N, C, ...) and out the same shape");
    const int64_t N = x->shape[0], C = x->shape[1], S = tensor_numel(x) / (N * C);
    CPU_CHECK(groups >= 1 && C % groups == 0, "group_norm: %lld channels are not divisible into %d groups",
                (long long)C, groups);
    norm_check_param("group_norm", gamma, x, C);
    norm_check_param("group_norm", beta, x, C);
    const int64_t cpg = C / groups, items = N * groups, cnt = cpg * S;
    const float *xd = x->data, *gd = gamma ? gamma->data : NULL, *bd = beta ? beta->data : NULL;
    float *od = out->data;
#pragma omp parallel for schedule(dynamic, 1) if (tensor_numel(x) > 16384)
    for (int64_t it = 0; it < items; it++) {
        int64_t g = it % groups;
        const float *xs = xd + it * cnt;
        float *ys = od + it * cnt;
        float mean = (float)(norm_sum(xs, cnt) / (double)cnt);
        float var = (float)(norm_sqdev(xs, cnt, mean) / (double)cnt);
        float rstd = 1.0f / sqrtf(var + eps);
        for (int64_t c = 0; c < cpg; c++) {
            int64_t ch = g * cpg + c;
            float a = rstd * (gd ? gd[ch] : 1.0f);
            float b = (bd ? bd[ch] : 0.0f) - mean * a;
            norm_affine(ys + c * S, xs + c * S, S, a, b, fuse_silu);
        }
    }
}

CPU_SIMD_CLONES
static void layer_norm_row(float *y, const float *x, int64_t C, const float *g, const float *b, float eps) {
    float mean = (float)(norm_sum(x, C) / (double)C);
    float var = (float)(norm_sqdev(x, C, mean) / (double)C);
    float rstd = 1.0f / sqrtf(var + eps);
#pragma omp simd
    for (int64_t i = 0; i < C; i++) {
        float v = (x[i] - mean) * rstd;
        y[i] = v * (g ? g[i] : 1.0f) + (b ? b[i] : 0.0f);
    }
}

void cpu_layer_norm(Tensor *out, const Tensor *x, const Tensor *gamma, const Tensor *beta, float eps) {
    CPU_CHECK_F32("layer_norm", out);
    CPU_CHECK_F32("layer_norm", x);
    CPU_CHECK_SHAPES("layer_norm", cpu_same_shape(out, x), out, x, "out must have x's shape");
    const int64_t C = x->shape[x->ndim - 1], rows = cpu_rows(x);
    norm_check_param("layer_norm", gamma, x, C);
    norm_check_param("layer_norm", beta, x, C);
    const float *xd = x->data, *gd = gamma ? gamma->data : NULL, *bd = beta ? beta->data : NULL;
    float *od = out->data;
#pragma omp parallel for schedule(static) if (tensor_numel(x) > 16384)
    for (int64_t r = 0; r < rows; r++) layer_norm_row(od + r * C, xd + r * C, C, gd, bd, eps);
}

CPU_SIMD_CLONES
static void softmax_row(float *y, const float *x, int64_t n) {
    float mx = -INFINITY;
#pragma omp simd reduction(max : mx)
    for (int64_t i = 0; i < n; i++) mx = x[i] > mx ? x[i] : mx;
    float s = 0.0f;
#pragma omp simd reduction(+ : s)
    for (int64_t i = 0; i < n; i++) {
        float e = cpu_expf(x[i] - mx);
        y[i] = e;
        s += e;
    }
    float inv = 1.0f / s;
#pragma omp simd
    for (int64_t i = 0; i < n; i++) y[i] *= inv;
}

void cpu_softmax(Tensor *out, const Tensor *x) {
    CPU_CHECK_F32("softmax", out);
    CPU_CHECK_F32("softmax", x);
    CPU_CHECK_SHAPES("softmax", cpu_same_shape(out, x), out, x, "out must have x's shape");
    const int64_t n = x->shape[x->ndim - 1], rows = cpu_rows(x);
    const float *xd = x->data;
    float *od = out->data;
#pragma omp parallel for schedule(static) if (tensor_numel(x) > 16384)
    for (int64_t r = 0; r < rows; r++) softmax_row(od + r * n, xd + r * n, n);
}

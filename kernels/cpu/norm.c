// kernels/cpu/norm.c: group_norm (optionally fused with SiLU), layer_norm, softmax.
// Statistics as torch computes them: biased variance, eps inside the square root.
// Sums are accumulated in float over chunks and in double across chunks, and the
// variance is a second pass over (x - mean)^2, so long groups lose no precision.
// Each thread makes one call into a SIMD-cloned function for its whole share of rows or
// groups; the per-row helpers below are inlined into it.
#include <omp.h>

#include "cpu_internal.h"

#define NORM_CHUNK 1024

static inline double norm_sum(const float *x, int64_t n) {
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

static inline double norm_sqdev(const float *x, int64_t n, float mean) {
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

static void norm_check_param(const char *op, const Tensor *p, const Tensor *x, int64_t C) {
    if (!p) return;
    CPU_CHECK_F32(op, p);
    CPU_CHECK_SHAPES(op, tensor_numel(p) == C, p, x, "gamma/beta must have C elements");
}

// Groups [g0, g1) of x viewed as (N * groups, cpg, S): normalise, scale by gamma[ch],
// shift by beta[ch] as y = x * a + c with a = rstd * gamma, c = beta - mean * a; SiLU after.
CPU_SIMD_CLONES
static void group_norm_span(float *y, const float *x, int64_t g0, int64_t g1, int groups, int64_t cpg, int64_t S,
                            const float *gamma, const float *beta, float eps, int silu) {
    const int64_t cnt = cpg * S;
    for (int64_t it = g0; it < g1; it++) {
        int64_t g = it % groups;
        const float *xs = x + it * cnt;
        float *ys = y + it * cnt;
        float mean = (float)(norm_sum(xs, cnt) / (double)cnt);
        float var = (float)(norm_sqdev(xs, cnt, mean) / (double)cnt);
        float rstd = 1.0f / sqrtf(var + eps);
        for (int64_t c = 0; c < cpg; c++) {
            int64_t ch = g * cpg + c;
            float a = rstd * (gamma ? gamma[ch] : 1.0f);
            float b = (beta ? beta[ch] : 0.0f) - mean * a;
            const float *xc = xs + c * S;
            float *yc = ys + c * S;
            if (silu) {
#pragma omp simd
                for (int64_t i = 0; i < S; i++) {
                    float v = xc[i] * a + b;
                    yc[i] = v / (1.0f + cpu_expf(-v));
                }
            } else {
#pragma omp simd
                for (int64_t i = 0; i < S; i++) yc[i] = xc[i] * a + b;
            }
        }
    }
}

// Splits [0, n) items into one contiguous span per thread.
#define NORM_SPANS(n, big, body)                                      \
    do {                                                              \
        int64_t n_ = (n);                                             \
        if (n_ <= 0) break;                                           \
        int nt_ = (big) ? cpu_threads() : 1;                          \
        if (nt_ > n_) nt_ = (int)n_;                                  \
        _Pragma("omp parallel for schedule(static) num_threads(nt_)") \
        for (int p_ = 0; p_ < nt_; p_++) {                            \
            int64_t s = n_ * p_ / nt_, e = n_ * (p_ + 1) / nt_;       \
            body;                                                     \
        }                                                             \
    } while (0)

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
    const float *xd = x->data, *gd = gamma ? gamma->data : NULL, *bd = beta ? beta->data : NULL;
    float *od = out->data;
    NORM_SPANS(N * groups, tensor_numel(x) > 16384,
               group_norm_span(od, xd, s, e, groups, C / groups, S, gd, bd, eps, fuse_silu));
}

// Rows [r0, r1) of (rows, C).
CPU_SIMD_CLONES
static void layer_norm_span(float *y, const float *x, int64_t r0, int64_t r1, int64_t C, const float *g,
                            const float *b, float eps) {
    for (int64_t r = r0; r < r1; r++) {
        const float *xr = x + r * C;
        float *yr = y + r * C;
        float mean = (float)(norm_sum(xr, C) / (double)C);
        float var = (float)(norm_sqdev(xr, C, mean) / (double)C);
        float rstd = 1.0f / sqrtf(var + eps);
        if (g && b) {
#pragma omp simd
            for (int64_t i = 0; i < C; i++) yr[i] = (xr[i] - mean) * rstd * g[i] + b[i];
        } else {
#pragma omp simd
            for (int64_t i = 0; i < C; i++) {
                float v = (xr[i] - mean) * rstd;
                yr[i] = v * (g ? g[i] : 1.0f) + (b ? b[i] : 0.0f);
            }
        }
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
    NORM_SPANS(rows, tensor_numel(x) > 16384, layer_norm_span(od, xd, s, e, C, gd, bd, eps));
}

// Rows [r0, r1) of (rows, n): max, exp(x - max) summed, scaled by 1 / sum.
CPU_SIMD_CLONES
static void softmax_span(float *y, const float *x, int64_t r0, int64_t r1, int64_t n) {
    for (int64_t r = r0; r < r1; r++) {
        const float *xr = x + r * n;
        float *yr = y + r * n;
        float mx = -INFINITY;
#pragma omp simd reduction(max : mx)
        for (int64_t i = 0; i < n; i++) mx = xr[i] > mx ? xr[i] : mx;
        float s = 0.0f;
#pragma omp simd reduction(+ : s)
        for (int64_t i = 0; i < n; i++) {
            float e = cpu_expf(xr[i] - mx);
            yr[i] = e;
            s += e;
        }
        float inv = 1.0f / s;
#pragma omp simd
        for (int64_t i = 0; i < n; i++) yr[i] *= inv;
    }
}

void cpu_softmax(Tensor *out, const Tensor *x) {
    CPU_CHECK_F32("softmax", out);
    CPU_CHECK_F32("softmax", x);
    CPU_CHECK_SHAPES("softmax", cpu_same_shape(out, x), out, x, "out must have x's shape");
    const int64_t n = x->shape[x->ndim - 1], rows = cpu_rows(x);
    const float *xd = x->data;
    float *od = out->data;
    NORM_SPANS(rows, tensor_numel(x) > 16384, softmax_span(od, xd, s, e, n));
}

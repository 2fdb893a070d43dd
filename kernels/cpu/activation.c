// kernels/cpu/activation.c: gelu (erf and tanh forms), quick_gelu, silu, geglu.
// The functions torch computes:
//   gelu      x * 0.5 * (1 + erf(x / sqrt 2))
//   gelu tanh 0.5 * x * (1 + tanh(sqrt(2/pi) * (x + 0.044715 x^3)))
//   silu      x / (1 + exp(-x));  quick_gelu  x * sigmoid(1.702 x)
//   geglu     x = [h, gate] along the last dim -> h * gelu(gate)
// evaluated without libm calls so the loops vectorise:
//   gelu = 0.5 x erfc(-x / sqrt 2), erfc(z) = t exp(-z^2 + P(t)), t = 1 / (1 + z/2) for
//     z >= 0 (the Chebyshev fit published as erfcc in Numerical Recipes, relative error
//     < 1.2e-7) and erfc(-z) = 2 - erfc(z). Relative error ~3e-7 at every x, also for
//     x << 0 where 1 + erf(x) cancels.
//   gelu tanh = x * sigmoid(2u) with u = sqrt(2/pi) (x + 0.044715 x^3): the same
//     function, since (1 + tanh u) / 2 == sigmoid(2u).
#include <omp.h>

#include "cpu_internal.h"

#define ACT_PAR_MIN 32768  // below this, threads cost more than they save

static void act_check(const char *op, const Tensor *out, const Tensor *x) {
    CPU_CHECK_F32(op, out);
    CPU_CHECK_F32(op, x);
    CPU_CHECK_SHAPES(op, cpu_same_shape(out, x), out, x, "out must have x's shape");
}

// erfc(z) for z >= 0.
static inline float erfc_pos(float z) {
    float t = 1.0f / (1.0f + 0.5f * z);
    float p = 0.17087277f;
    p = p * t - 0.82215223f;
    p = p * t + 1.48851587f;
    p = p * t - 1.13520398f;
    p = p * t + 0.27886807f;
    p = p * t - 0.18628806f;
    p = p * t + 0.09678418f;
    p = p * t + 0.37409196f;
    p = p * t + 1.00002368f;
    p = p * t - 1.26551223f;
    return t * cpu_expf(p - z * z);
}

static inline float gelu_erf1(float x) {
    float e = erfc_pos(fabsf(x) * (float)M_SQRT1_2);  // erfc(|x| / sqrt 2)
    return x >= 0.0f ? x - 0.5f * x * e : 0.5f * x * e;
}

static inline float gelu_tanh1(float x) {
    const float two_beta = (float)(M_SQRT2 * M_2_SQRTPI), kappa = 0.044715f;
    float u2 = two_beta * (x + kappa * x * x * x);
    return x / (1.0f + cpu_expf(-u2));
}

CPU_SIMD_CLONES
static void gelu_span(float *y, const float *x, int64_t n, int tanh_approx) {
    if (tanh_approx) {
#pragma omp simd
        for (int64_t i = 0; i < n; i++) y[i] = gelu_tanh1(x[i]);
    } else {
#pragma omp simd
        for (int64_t i = 0; i < n; i++) y[i] = gelu_erf1(x[i]);
    }
}

CPU_SIMD_CLONES
static void geglu_row(float *o, const float *h, const float *g, int64_t n) {
#pragma omp simd
    for (int64_t i = 0; i < n; i++) o[i] = h[i] * gelu_erf1(g[i]);
}

CPU_SIMD_CLONES
static void sigmoid_mul(float *y, const float *x, int64_t n, float k) {
#pragma omp simd
    for (int64_t i = 0; i < n; i++) {
        float v = x[i];
        y[i] = v * (1.0f / (1.0f + cpu_expf(-k * v)));
    }
}

CPU_SIMD_CLONES
static void silu_span(float *y, const float *x, int64_t n) {
#pragma omp simd
    for (int64_t i = 0; i < n; i++) y[i] = x[i] / (1.0f + cpu_expf(-x[i]));
}

// Splits [0, n) into one span per thread so each runs one vectorised call.
#define ACT_SPANS(n, body)                                            \
    do {                                                              \
        int64_t n_ = (n);                                             \
        if (n_ <= 0) break;                                           \
        int nt_ = n_ > ACT_PAR_MIN ? cpu_threads() : 1;               \
        _Pragma("omp parallel for schedule(static) num_threads(nt_)") \
        for (int p_ = 0; p_ < nt_; p_++) {                            \
            int64_t s = n_ * p_ / nt_, e = n_ * (p_ + 1) / nt_;       \
            body;                                                     \
        }                                                             \
    } while (0)

void cpu_gelu(Tensor *out, const Tensor *x, int tanh_approx) {
    act_check("gelu", out, x);
    const float *xd = x->data;
    float *od = out->data;
    ACT_SPANS(tensor_numel(x), gelu_span(od + s, xd + s, e - s, tanh_approx));
}

void cpu_quick_gelu(Tensor *out, const Tensor *x) {
    act_check("quick_gelu", out, x);
    const float *xd = x->data;
    float *od = out->data;
    ACT_SPANS(tensor_numel(x), sigmoid_mul(od + s, xd + s, e - s, 1.702f));
}

void cpu_silu(Tensor *out, const Tensor *x) {
    act_check("silu", out, x);
    const float *xd = x->data;
    float *od = out->data;
    ACT_SPANS(tensor_numel(x), silu_span(od + s, xd + s, e - s));
}

void cpu_geglu(Tensor *out, const Tensor *x) {
    CPU_CHECK_F32("geglu", out);
    CPU_CHECK_F32("geglu", x);
    const int64_t F2 = x->shape[x->ndim - 1], F = F2 / 2, rows = cpu_rows(x);
    CPU_CHECK_SHAPES("geglu",
                     F2 % 2 == 0 && out->ndim == x->ndim && out->shape[out->ndim - 1] == F && cpu_rows(out) == rows,
                     out, x, "x must be (..., 2F) and out (..., F)");
    CPU_CHECK(out->data != x->data, "geglu: out must not alias x");
    const float *xd = x->data;
    float *od = out->data;
#pragma omp parallel for schedule(static) if (rows * F > ACT_PAR_MIN)
    for (int64_t r = 0; r < rows; r++) {
        const float *h = xd + r * F2;
        geglu_row(od + r * F, h, h + F, F);
    }
}

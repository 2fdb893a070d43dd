// kernels/cpu/cpu_internal.h: what the CPU reference ops share: argument checks,
// vectorisable exp, SIMD dispatch and BLAS threading helpers. Private to kernels/cpu.
#pragma once
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "../../runner/check.h"
#include "../ops.h"

// ---- argument checks ----------------------------------------------------------------
// CPU_CHECK(cond, fmt, ...): fatal with a formatted message when cond is false.
#define CPU_CHECK(cond, ...)                                                                   \
    do {                                                                                       \
        if (!(cond)) STORY_FATAL(__VA_ARGS__);                                                 \
    } while (0)

// Every cpu_* op takes fp32 host tensors; a mismatch is a bug in the caller (ops.h).
#define CPU_CHECK_F32(op, t)                                                                   \
    do {                                                                                       \
        char d_[96];                                                                           \
        CPU_CHECK((t) != NULL && (t)->data != NULL, "%s: %s is NULL", op, #t);               \
        CPU_CHECK((t)->dtype == DT_F32 && (t)->dev == DEV_CPU,                               \
                    "%s: %s must be an f32 cpu tensor, got %s", op, #t,                        \
                    tensor_desc((t), d_, sizeof d_));                                          \
    } while (0)

// A shape condition that names the op and both tensors.
#define CPU_CHECK_SHAPES(op, cond, a, b, what)                                                 \
    do {                                                                                       \
        if (!(cond)) {                                                                         \
            char da_[96], db_[96];                                                             \
            STORY_FATAL("%s: %s: %s %s vs %s %s", op, what, #a, tensor_desc((a), da_, sizeof da_), \
                        #b, tensor_desc((b), db_, sizeof db_));                                \
        }                                                                                      \
    } while (0)

static inline int cpu_same_shape(const Tensor *a, const Tensor *b) {
    if (a->ndim != b->ndim) return 0;
    for (int i = 0; i < a->ndim; i++)
        if (a->shape[i] != b->shape[i]) return 0;
    return 1;
}

static inline int64_t cpu_rows(const Tensor *t) { return tensor_numel(t) / t->shape[t->ndim - 1]; }

// ---- SIMD clones ----------------------------------------------------------------------
// clang reports `omp simd` loops it leaves scalar (float max reductions at baseline SSE2)
// as warnings; the loops are still correct, so that report is not an error here.
#if defined(__clang__)
#pragma clang diagnostic ignored "-Wpass-failed"
#endif

// Hot loops are compiled three times (AVX-512, AVX2+FMA, baseline SSE2) and picked at
// load time, so the default build runs well everywhere without -march=native.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(STORY_NO_CLONES) && \
    !defined(__AVX2__)
#define CPU_SIMD_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define CPU_SIMD_CLONES
#endif

// ---- exp without libm, vectorisable ---------------------------------------------------
// Both are branch-free so `#pragma omp simd` loops vectorise them. Relative error
// <= 2e-7 (about 2 ulp) for results in the normal range; results below 2^-126 flush to
// 0 and the argument is clamped so huge inputs give +inf (expf) like libm.

// 2^n as a float for integer-valued n in [-127, 128]; -127 gives 0, 128 gives +inf.
static inline float cpu_pow2i_(float n) {
    int32_t bits = ((int32_t)n + 127) << 23;
    float r;
    memcpy(&r, &bits, 4);
    return r;
}

// Round to nearest for |x| < 2^22 without SSE4.1 (adding 1.5 * 2^23 drops the fraction).
static inline float cpu_round_(float x) { return (x + 12582912.0f) - 12582912.0f; }

// 2^x for x <= 127 (larger x saturate at 2^127; attention only needs x <= 0).
// Minimax polynomial for 2^f on [-0.5, 0.5].
static inline float cpu_exp2f(float x) {
    x = x < -127.0f ? -127.0f : x;
    x = x > 127.0f ? 127.0f : x;
    float n = cpu_round_(x), f = x - n;
    float p = 1.5376991e-4f;
    p = p * f + 1.3397791e-3f;
    p = p * f + 9.6183550e-3f;
    p = p * f + 5.5503339e-2f;
    p = p * f + 2.4022648e-1f;
    p = p * f + 6.9314718e-1f;
    p = p * f + 1.0f;
    return p * cpu_pow2i_(n);
}

// e^x with a Cody-Waite split of ln 2, minimax polynomial for e^r on [-ln2/2, ln2/2].
static inline float cpu_expf(float x) {
    float xc = x < -87.5f ? -87.5f : x;  // keeps n >= -126
    xc = xc > 88.8f ? 88.8f : xc;        // n <= 128; 2^128 is applied as 2 * 2^127
    float n = cpu_round_(xc * 1.44269504f);
    float r = xc - n * 0.693145752f;  // ln2_hi has 15 significant bits: n * ln2_hi is exact
    r = r - n * 1.42860677e-6f;       // ln2_lo
    float p = 1.3864962e-3f;
    p = p * r + 8.3734849e-3f;
    p = p * r + 4.1667644e-2f;
    p = p * r + 1.6666436e-1f;
    p = p * r + 0.49999994f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    float two = n > 127.0f ? 2.0f : 1.0f;  // overflows to +inf past ln(FLT_MAX) like libm
    n = n > 127.0f ? 127.0f : n;
    float y = (p * two) * cpu_pow2i_(n);
    return x < -87.336544f ? 0.0f : y;  // results below FLT_MIN flush to 0
}

// ---- threads and BLAS --------------------------------------------------------------------
// OpenBLAS may be its pthread build, which has its own thread pool. Inside our own OpenMP
// regions it must run single-threaded, or the two pools oversubscribe the cores.
// cpu_blas_single_begin() returns the previous setting for cpu_blas_single_end().
int cpu_blas_single_begin(void);
void cpu_blas_single_end(int prev);

// Row-major C (M, N) = alpha * op(A) op(B) + beta * C, like cblas_sgemm, split over the
// OpenMP threads along M (or N when M is small) with single-threaded BLAS per part.
// Must not be called from inside a parallel region.
void cpu_sgemm(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda,
               const float *B, int ldb, float beta, float *C, int ldc);

// The same with a bias: C = alpha * op(A) op(B) + bias, bias_n (N) added to every row or
// bias_m (M) to every column (one of them non-NULL; beta is then ignored).
void cpu_sgemm_bias(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda,
                    const float *B, int ldb, float beta, float *C, int ldc, const float *bias_n,
                    const float *bias_m);

// The same on one thread (for use inside a parallel region with cpu_blas_single_begin).
void cpu_sgemm_serial(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A,
                      int lda, const float *B, int ldb, float beta, float *C, int ldc);

// ---- attention (attention.c, attention_avx512.c) -------------------------------------------
#define CPU_ATTN_TK 256  // keys per tile: scores for a tile stay in L2
// Set to 1 to use the portable BLAS path even where AVX-512 is available (tests).
extern int cpu_attention_force_blas;
int cpu_attn_avx512_available(void);
size_t cpu_attn_avx512_scratch(int D);  // floats of per-thread scratch
// Queries i0 .. i0+rows-1 (rows <= 128) of batch b, head h; see attention_avx512.c.
void cpu_attn_avx512_item(float *out, const float *q, const KVSegment *segs, int nsegs, int64_t b, int64_t h,
                          int64_t Lq, int64_t HD, int D, int64_t i0, int rows, int causal, float alpha,
                          float *scratch);

// ---- convolution (conv.c, conv_winograd.c) -----------------------------------------------
// 3x3 convolution, stride 1 or 2, via Winograd GEMMs; shapes already checked by cpu_conv2d.
void cpu_conv3x3_winograd(float *out, const float *x, const float *w, const float *bias, int64_t N, int64_t Ci,
                          int64_t H, int64_t W, int64_t Co, int64_t Ho, int64_t Wo, int stride, int pad, Arena *ws);

// Per-thread scratch that grows and is kept (aligned 64). slot separates independent
// users within one thread (0..3). Never freed: bounded by the largest problem seen.
float *cpu_scratch(int slot, size_t nfloats);

// Scratch: from the caller's arena when it has room (released before returning), else from
// a per-thread buffer that persists (slot 3 is the calling thread's, for shared data).
typedef struct {
    Arena *ws;
    size_t mark;
} ConvScratch;

// Bump allocation on the caller's host arena, as arena_alloc does (256-byte aligned);
// NULL when it lacks room. Done here because story_core does not link the arena code.
static inline float *conv_arena(ConvScratch *cs, size_t nfloats) {
    Arena *a = cs->ws;
    if (!a || a->dev != DEV_CPU || !a->base) return NULL;
    size_t off = (a->used + 255) & ~(size_t)255, bytes = nfloats * sizeof(float);
    if (off + bytes > a->cap) return NULL;
    a->used = off + bytes;
    if (a->used > a->peak) a->peak = a->used;
    return (float *)(a->base + off);
}

static inline float *conv_scratch(ConvScratch *cs, size_t nfloats, int slot) {
    float *p = conv_arena(cs, nfloats);
    return p ? p : cpu_scratch(slot, nfloats);
}

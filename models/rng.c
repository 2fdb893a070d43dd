// models/rng.c: torch's CPU generator (MT19937 + its normal sampling) and Philox-4x32-10.
// See rng.h for what is reproduced. Every float operation below is written the way the
// reference rounds it: a plain a * b + c must stay two roundings, so the compiler may not
// contract it into an FMA (GCC's default for gnu11 on an FMA-capable -march); the places
// where torch's compiled code does use an FMA call fmaf explicitly.
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

#include "models/rng.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cuda_runtime_api.h"
#include "runner/check.h"

// ---- MT19937 as at::mt19937 ---------------------------------------------------------------

#define MT_M 397
#define MT_MATRIX_A 0x9908b0dfu
#define MT_UMASK 0x80000000u
#define MT_LMASK 0x7fffffffu

void rng_torch_seed(TorchRng *g, uint64_t seed) {
    g->seed = seed;
    g->state[0] = (uint32_t)(seed & 0xffffffffu);
    for (int j = 1; j < RNG_MT_N; j++)
        g->state[j] = 1812433253u * (g->state[j - 1] ^ (g->state[j - 1] >> 30)) + (uint32_t)j;
    g->left = 1;
    g->next = 0;
    g->has_f64 = 0;
    g->next_f64 = 0.0;
}

uint64_t rng_torch_initial_seed(const TorchRng *g) { return g->seed; }

static inline uint32_t mt_twist(uint32_t u, uint32_t v) {
    return (((u & MT_UMASK) | (v & MT_LMASK)) >> 1) ^ ((v & 1u) ? MT_MATRIX_A : 0u);
}

static void mt_next_state(TorchRng *g) {
    uint32_t *s = g->state;
    int j = 0;
    for (; j < RNG_MT_N - MT_M; j++) s[j] = s[j + MT_M] ^ mt_twist(s[j], s[j + 1]);
    for (; j < RNG_MT_N - 1; j++) s[j] = s[j + MT_M - RNG_MT_N] ^ mt_twist(s[j], s[j + 1]);
    s[RNG_MT_N - 1] = s[MT_M - 1] ^ mt_twist(s[RNG_MT_N - 1], s[0]);
    g->left = RNG_MT_N;
    g->next = 0;
}

uint32_t rng_torch_u32(TorchRng *g) {
    if (--g->left == 0) mt_next_state(g);
    uint32_t y = g->state[g->next++];
    y ^= y >> 11;
    y ^= (y << 7) & 0x9d2c5680u;
    y ^= (y << 15) & 0xefc60000u;
    y ^= y >> 18;
    return y;
}

uint64_t rng_torch_u64(TorchRng *g) {
    uint64_t hi = rng_torch_u32(g);
    uint64_t lo = rng_torch_u32(g);
    return (hi << 32) | lo;
}

// at::uniform_real_distribution<float>(0, 1): 24 bits, exact in float.
static inline float uniform_f32(TorchRng *g) {
    return (float)(rng_torch_u32(g) & 0xffffffu) * (1.0f / 16777216.0f);
}

// at::uniform_real_distribution<double>(0, 1): 53 bits of random64.
static inline double uniform_f64(TorchRng *g) {
    return (double)(rng_torch_u64(g) & ((1ULL << 53) - 1)) * (1.0 / 9007199254740992.0);
}

void rng_torch_rand(TorchRng *g, float *out, int64_t n) {
    for (int64_t i = 0; i < n; i++) out[i] = uniform_f32(g);
}

// ---- the Cephes float log / sincos of torch's avx_mathfun.h ------------------------------
// One lane of log256_ps and sincos256_ps. GCC contracts a multiply whose only use is an
// add or subtract into an FMA, in statement order; those places are the fmaf calls.

static inline uint32_t f2u(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}
static inline float u2f(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

// x in (0, 1] here (1 - u with u in [0, 1)): no zero, negative or denormal input.
static float cephes_logf(float x) {
    const float c_sqrthf = 0.707106781186547524f;
    const float p[9] = {7.0376836292E-2f,  -1.1514610310E-1f, 1.1676998740E-1f,
                        -1.2420140846E-1f, +1.4249322787E-1f, -1.6668057665E-1f,
                        +2.0000714765E-1f, -2.4999993993E-1f, +3.3333331174E-1f};
    const float q1 = -2.12194440e-4f, q2 = 0.693359375f;
    uint32_t bits = f2u(x);
    float e = (float)((int32_t)(bits >> 23) - 0x7f) + 1.0f;
    float m = u2f((bits & ~0x7f800000u) | f2u(0.5f));  // mantissa in [0.5, 1)
    if (m < c_sqrthf) {
        e = e - 1.0f;
        m = (m - 1.0f) + m;
    } else {
        m = m - 1.0f;
    }
    float z = m * m;
    float y = fmaf(p[0], m, p[1]);
    for (int k = 2; k < 9; k++) y = fmaf(y, m, p[k]);
    y = y * m;
    y = fmaf(y, z, e * q1);
    y = fmaf(-z, 0.5f, y);
    return fmaf(e, q2, m + y);
}

// x >= 0 here (2 pi u with u in [0, 1)).
static void cephes_sincosf(float x, float *s, float *c) {
    const float dp1 = -0.78515625f, dp2 = -2.4187564849853515625e-4f,
                dp3 = -3.77489497744594108e-8f;
    const float sc0 = -1.9515295891E-4f, sc1 = 8.3321608736E-3f, sc2 = -1.6666654611E-1f;
    const float cc0 = 2.443315711809948E-005f, cc1 = -1.388731625493765E-003f,
                cc2 = 4.166664568298827E-002f;
    const float fopi = 1.27323954473516f;  // 4 / pi
    uint32_t sign_sin = f2u(x) & 0x80000000u;
    x = u2f(f2u(x) & 0x7fffffffu);
    int32_t j = (int32_t)(x * fopi);  // truncation, as cvttps
    j = (j + 1) & ~1;
    float y = (float)j;
    uint32_t swap_sin = (uint32_t)(j & 4) << 29;
    int poly_sin = (j & 2) == 0;  // 1: sin from the sine polynomial, cos from the cosine one
    x = fmaf(y, dp1, x);
    x = fmaf(y, dp2, x);
    x = fmaf(y, dp3, x);
    uint32_t sign_cos = (uint32_t)(~(j - 2) & 4) << 29;
    sign_sin ^= swap_sin;
    float z = x * x;
    float yc = fmaf(cc0, z, cc1);
    yc = fmaf(yc, z, cc2);
    yc = yc * z;
    yc = fmaf(yc, z, -(z * 0.5f));
    yc = yc + 1.0f;
    float ys = fmaf(sc0, z, sc1);
    ys = fmaf(ys, z, sc2);
    ys = ys * z;
    ys = fmaf(ys, x, x);
    // the masked select of the vector code: one side is the value, the other +0
    float sv = poly_sin ? 0.0f + ys : yc + 0.0f;
    float cv = poly_sin ? yc + 0.0f : 0.0f + ys;
    *s = u2f(f2u(sv) ^ sign_sin);
    *c = u2f(f2u(cv) ^ sign_cos);
}

// normal_fill_16: d[0..16) holds uniforms; Box-Muller over (j, j + 8).
static void fill16_avx2(float *d) {
    const float two_pi = (float)(2.0 * 3.14159265358979323846);
    for (int j = 0; j < 8; j++) {
        float u1 = 1.0f - d[j];
        float u2 = d[j + 8];
        float radius = sqrtf(-2.0f * cephes_logf(u1));
        float s, c;
        cephes_sincosf(two_pi * u2, &s, &c);
        // torch adds the mean (0) last: fmadd(n, std = 1, mean = 0) turns -0 into +0
        d[j] = radius * c + 0.0f;
        d[j + 8] = radius * s + 0.0f;
    }
}

static void fill16_scalar(float *d) {
    const double two_pi = 2.0 * 3.14159265358979323846;
    for (int j = 0; j < 8; j++) {
        float u1 = 1.0f - d[j];
        float u2 = d[j + 8];
        float radius = sqrtf(-2.0f * logf(u1));
        float theta = (float)(two_pi * (double)u2);
        d[j] = radius * cosf(theta) + 0.0f;  // * std + mean, std = 1, mean = 0
        d[j + 8] = radius * sinf(theta) + 0.0f;
    }
}

// at::normal_distribution<double>(0, 1), with the generator's one-value cache.
static double normal_f64(TorchRng *g) {
    if (g->has_f64) {
        g->has_f64 = 0;
        return g->next_f64;
    }
    const double two_pi = 2.0 * 3.14159265358979323846;
    double u1 = uniform_f64(g);
    double u2 = uniform_f64(g);
    double r = sqrt(-2.0 * log1p(-u2));
    double theta = two_pi * u1;
    g->next_f64 = r * sin(theta);
    g->has_f64 = 1;
    return r * cos(theta);
}

// The numel >= 16 path. The float kernel draws all n uniforms first; the one for 16-bit
// types draws them block by block, so it draws only the full blocks' before the tail's.
static void normal_fill(TorchRng *g, float *out, int64_t n, RngTorchPath path, int per_block) {
    void (*fill16)(float *) = path == RNG_TORCH_SCALAR ? fill16_scalar : fill16_avx2;
    int64_t first = per_block ? n / 16 * 16 : n;
    for (int64_t i = 0; i < first; i++) out[i] = uniform_f32(g);
    for (int64_t i = 0; i + 16 <= n; i += 16) fill16(out + i);
    if (n % 16) {  // the last 16 values again, from 16 new uniforms
        float *tail = out + n - 16;
        for (int i = 0; i < 16; i++) tail[i] = uniform_f32(g);
        fill16(tail);
    }
}

void rng_torch_randn_path(TorchRng *g, float *out, int64_t n, RngTorchPath path) {
    if (n <= 0) return;
    if (n < 16) {
        for (int64_t i = 0; i < n; i++) out[i] = (float)(normal_f64(g) + 0.0);  // * 1 + mean 0
        return;
    }
    normal_fill(g, out, n, path, 0);
}

void rng_torch_randn_half(TorchRng *g, uint16_t *out, int64_t n, DType dt, RngTorchPath path) {
    if (n <= 0) return;
    float *f = mallocCheck((size_t)n * sizeof(float));
    if (n < 16) {  // static_cast<Half>(double): through float
        for (int64_t i = 0; i < n; i++) f[i] = (float)(normal_f64(g) + 0.0);
    } else {
        normal_fill(g, f, n, path, 1);
    }
    for (int64_t i = 0; i < n; i++) out[i] = dt == DT_F16 ? f32_to_f16(f[i]) : f32_to_bf16(f[i]);
    free(f);
}

void rng_torch_randn(TorchRng *g, float *out, int64_t n) {
    rng_torch_randn_path(g, out, n, RNG_TORCH_AVX2);
}

// Host f32 values into t (any dtype, host or device). Returns 0, or -1 without memory.
static int store_f32(Tensor *t, const float *f, int64_t n) {
    if (t->dtype == DT_F32 && t->dev == DEV_CPU) {
        memcpy(t->data, f, (size_t)n * sizeof(float));
        return 0;
    }
    const void *host = f;
    uint16_t *h = NULL;
    if (t->dtype != DT_F32) {
        h = malloc((size_t)(n > 0 ? n : 1) * sizeof(uint16_t));
        if (!h) return -1;
        for (int64_t i = 0; i < n; i++)
            h[i] = t->dtype == DT_F16 ? f32_to_f16(f[i]) : f32_to_bf16(f[i]);
        host = h;
    }
    if (t->dev == DEV_CPU)
        memcpy(t->data, host, tensor_nbytes(t));
    else
        story_cuda_memcpy(t->data, host, tensor_nbytes(t), 0);
    free(h);
    return 0;
}

int rng_torch_randn_tensor_as(TorchRng *g, Tensor *t, DType draw) {
    int64_t n = tensor_numel(t);
    float *f = malloc((size_t)(n > 0 ? n : 1) * sizeof(float));
    if (!f) return -1;
    if (draw == DT_F32) {
        rng_torch_randn(g, f, n);
    } else {  // the 16-bit values, widened exactly; store_f32 narrows them back losslessly
        uint16_t *h = malloc((size_t)(n > 0 ? n : 1) * sizeof(uint16_t));
        if (!h) {
            free(f);
            return -1;
        }
        rng_torch_randn_half(g, h, n, draw, RNG_TORCH_AVX2);
        for (int64_t i = 0; i < n; i++)
            f[i] = draw == DT_F16 ? f16_to_f32(h[i]) : bf16_to_f32(h[i]);
        free(h);
    }
    int rc = store_f32(t, f, n);
    free(f);
    return rc;
}

int rng_torch_randn_tensor(TorchRng *g, Tensor *t) {
    return rng_torch_randn_tensor_as(g, t, DT_F32);
}

// ---- Philox-4x32-10 -------------------------------------------------------------------------

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u  // golden ratio
#define PHILOX_W1 0xBB67AE85u  // sqrt(3) - 1

void rng_philox4x32(const uint32_t counter[4], const uint32_t key[2], uint32_t out[4]) {
    uint32_t c0 = counter[0], c1 = counter[1], c2 = counter[2], c3 = counter[3];
    uint32_t k0 = key[0], k1 = key[1];
    for (int r = 0; r < 10; r++) {
        if (r) {
            k0 += PHILOX_W0;
            k1 += PHILOX_W1;
        }
        uint64_t p0 = (uint64_t)PHILOX_M0 * c0, p1 = (uint64_t)PHILOX_M1 * c2;
        uint32_t hi0 = (uint32_t)(p0 >> 32), lo0 = (uint32_t)p0;
        uint32_t hi1 = (uint32_t)(p1 >> 32), lo1 = (uint32_t)p1;
        c0 = hi1 ^ c1 ^ k0;
        c1 = lo1;
        c2 = hi0 ^ c3 ^ k1;
        c3 = lo0;
    }
    out[0] = c0;
    out[1] = c1;
    out[2] = c2;
    out[3] = c3;
}

static void philox_block(uint64_t key, uint64_t stream, uint64_t block, uint32_t out[4]) {
    const uint32_t ctr[4] = {(uint32_t)block, (uint32_t)(block >> 32), (uint32_t)stream,
                             (uint32_t)(stream >> 32)};
    const uint32_t k[2] = {(uint32_t)key, (uint32_t)(key >> 32)};
    rng_philox4x32(ctr, k, out);
}

uint32_t rng_philox_u32(uint64_t key, uint64_t stream, uint64_t i) {
    uint32_t w[4];
    philox_block(key, stream, i / 4, w);
    return w[i % 4];
}

float rng_philox_uniform(uint64_t key, uint64_t stream, uint64_t i) {
    return (float)(rng_philox_u32(key, stream, i) >> 8) * (1.0f / 16777216.0f);
}

// The pair (a, b) of 32-bit words -> two normals.
static void philox_box_muller(uint32_t a, uint32_t b, float *n0, float *n1) {
    const double two_pi = 2.0 * 3.14159265358979323846;
    double u1 = ((double)a + 1.0) * (1.0 / 4294967296.0);  // (0, 1]
    double u2 = (double)b * (1.0 / 4294967296.0);          // [0, 1)
    double r = sqrt(-2.0 * log(u1));
    *n0 = (float)(r * cos(two_pi * u2));
    *n1 = (float)(r * sin(two_pi * u2));
}

float rng_philox_normal(uint64_t key, uint64_t stream, uint64_t i) {
    uint32_t w[4];
    philox_block(key, stream, i / 4, w);
    int pair = (int)(i % 4) / 2;
    float n0, n1;
    philox_box_muller(w[2 * pair], w[2 * pair + 1], &n0, &n1);
    return (i & 1) ? n1 : n0;
}

void rng_philox_normal_fill(uint64_t key, uint64_t stream, uint64_t first, float *out, int64_t n) {
    int64_t j = 0;
    while (j < n) {
        uint64_t i = first + (uint64_t)j;
        if (i % 4 == 0 && n - j >= 4) {  // a whole block: both pairs of one philox call
            uint32_t w[4];
            philox_block(key, stream, i / 4, w);
            philox_box_muller(w[0], w[1], out + j, out + j + 1);
            philox_box_muller(w[2], w[3], out + j + 2, out + j + 3);
            j += 4;
        } else {
            out[j++] = rng_philox_normal(key, stream, i);
        }
    }
}

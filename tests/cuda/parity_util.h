// tests/cuda/parity_util.h: what the CUDA-vs-CPU parity tests share: a seeded RNG,
// host/device tensors in any storage dtype, and an element-wise comparison with a
// per-dtype tolerance. Device memory comes from story_cuda_malloc (host memory in the
// emulation, real device memory on a GPU).
#pragma once
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cuda_runtime_api.h"
#include "kernels/ops.h"
#include "kernels/tensor.h"
#include "runner/check.h"

// ---- RNG (splitmix64) -------------------------------------------------------------------
typedef struct {
    uint64_t s;
} PuRng;

static inline uint64_t pu_next(PuRng *r) {
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
static inline float pu_uniform(PuRng *r, float lo, float hi) {
    return lo + (hi - lo) * (float)((pu_next(r) >> 40) * (1.0 / 16777216.0));
}
static inline float pu_normal(PuRng *r) {
    double u1 = ((pu_next(r) >> 11) + 1.0) * (1.0 / 9007199254740993.0),
           u2 = (pu_next(r) >> 11) * (1.0 / 9007199254740992.0);
    return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

// ---- tolerances -----------------------------------------------------------------------
// |got - ref| <= atol + rtol * |ref| per element. The inputs of both sides are the same
// values (rounded to the storage type first), math is fp32 on both, so what remains is
// the rounding of the output to its storage type (half an ulp; an ulp when the fp32
// results straddle a rounding boundary) plus fp32 reassociation (~1e-6 relative):
//   f32   rtol 1e-5                         atol 1e-5
//   f16   rtol 1e-3  (ulp 2^-10 = 9.8e-4)    atol 1e-4 (near zero, subnormals below 6e-5)
//   bf16  rtol 1e-2  (ulp 2^-7 = 7.8e-3)     atol 1e-3
typedef struct {
    float rtol, atol;
} PuTol;

static inline PuTol pu_tol(DType dt) {
    switch (dt) {
    case DT_F16: return (PuTol){1e-3f, 1e-4f};
    case DT_BF16: return (PuTol){1e-2f, 1e-3f};
    default: return (PuTol){1e-5f, 1e-5f};
    }
}

static inline float pu_round1(float x, DType dt) {
    if (dt == DT_F16) return f16_to_f32(f32_to_f16(x));
    if (dt == DT_BF16) return bf16_to_f32(f32_to_bf16(x));
    return x;
}

// ---- tensors ----------------------------------------------------------------------------
// Every buffer a test makes is recorded and released by pu_free_all().
#define PU_MAX_ALLOCS 4096
static void *pu_host_allocs[PU_MAX_ALLOCS], *pu_dev_allocs[PU_MAX_ALLOCS];
static int pu_n_host, pu_n_dev;

static inline Tensor pu_host(int ndim, const int64_t *shape) {
    Tensor t = tensor_view(NULL, DT_F32, DEV_CPU, ndim, shape);
    t.data = mallocCheck(tensor_nbytes(&t));
    STORY_CHECK(pu_n_host < PU_MAX_ALLOCS, "too many test buffers");
    pu_host_allocs[pu_n_host++] = t.data;
    return t;
}

// Normal(mean, std) values, already rounded to dt so both back ends see the same input.
static inline void pu_fill(Tensor *t, PuRng *r, float mean, float std, DType dt) {
    float *p = (float *)t->data;
    for (int64_t i = 0; i < tensor_numel(t); i++) p[i] = pu_round1(mean + std * pu_normal(r), dt);
}

static inline Tensor pu_host_rand(int ndim, const int64_t *shape, PuRng *r, float mean, float std,
                                  DType dt) {
    Tensor t = pu_host(ndim, shape);
    pu_fill(&t, r, mean, std, dt);
    return t;
}

// Device tensor of dt; misalign > 0 shifts the data by that many elements so the
// kernels' unaligned (scalar) paths run too. The bytes around the data are canaries
// that pu_compare checks, so a kernel writing past its output is caught; each buffer
// has its own canary byte, so copying another buffer's guard bytes is caught too.
#define PU_CANARY(i) ((unsigned char)(0xA5 ^ ((i)*29)))
#define PU_GUARD 64
static size_t pu_dev_pre[PU_MAX_ALLOCS], pu_dev_len[PU_MAX_ALLOCS];

static inline Tensor pu_dev_empty(int ndim, const int64_t *shape, DType dt, int misalign) {
    Tensor t = tensor_view(NULL, dt, DEV_CUDA, ndim, shape);
    const size_t pre = (size_t)misalign * dtype_size(dt),
                 bytes = pre + tensor_nbytes(&t) + PU_GUARD;
    char *base = (char *)story_cuda_malloc(bytes);
    STORY_CHECK(base != NULL, "story_cuda_malloc failed");
    STORY_CHECK(pu_n_dev < PU_MAX_ALLOCS, "too many test buffers");
    unsigned char *fill = (unsigned char *)mallocCheck(bytes);
    memset(fill, PU_CANARY(pu_n_dev), bytes);
    story_cuda_memcpy(base, fill, bytes, 0);
    free(fill);
    pu_dev_pre[pu_n_dev] = pre;
    pu_dev_len[pu_n_dev] = bytes;
    pu_dev_allocs[pu_n_dev++] = base;
    t.data = base + pre;
    return t;
}

// 1 when the canaries around d's buffer are intact (or d is not a pu_dev_empty buffer).
static inline int pu_canaries_ok(const Tensor *d) {
    for (int i = 0; i < pu_n_dev; i++) {
        char *base = (char *)pu_dev_allocs[i];
        if (base + pu_dev_pre[i] != (char *)d->data) continue;
        unsigned char *h = (unsigned char *)mallocCheck(pu_dev_len[i]);
        story_cuda_memcpy(h, base, pu_dev_len[i], 1);
        int ok = 1;
        for (size_t j = 0; j < pu_dev_pre[i]; j++) ok &= h[j] == PU_CANARY(i);
        for (size_t j = pu_dev_len[i] - PU_GUARD; j < pu_dev_len[i]; j++)
            ok &= h[j] == PU_CANARY(i);
        free(h);
        return ok;
    }
    return 1;
}

static inline Tensor pu_to_dev(const Tensor *h, DType dt, int misalign) {
    Tensor d = pu_dev_empty(h->ndim, h->shape, dt, misalign);
    const int64_t n = tensor_numel(h);
    const float *src = (const float *)h->data;
    void *tmp = mallocCheck((size_t)n * dtype_size(dt));
    for (int64_t i = 0; i < n; i++) {
        if (dt == DT_F32)
            ((float *)tmp)[i] = src[i];
        else if (dt == DT_F16)
            ((uint16_t *)tmp)[i] = f32_to_f16(src[i]);
        else
            ((uint16_t *)tmp)[i] = f32_to_bf16(src[i]);
    }
    story_cuda_memcpy(d.data, tmp, (size_t)n * dtype_size(dt), 0);
    free(tmp);
    return d;
}

// Device tensor -> f32 host array of numel(d) values.
static inline void pu_to_host(const Tensor *d, float *dst) {
    const int64_t n = tensor_numel(d);
    story_cuda_sync();
    if (d->dtype == DT_F32) {
        story_cuda_memcpy(dst, d->data, (size_t)n * 4, 1);
        return;
    }
    uint16_t *tmp = (uint16_t *)mallocCheck((size_t)n * 2);
    story_cuda_memcpy(tmp, d->data, (size_t)n * 2, 1);
    for (int64_t i = 0; i < n; i++)
        dst[i] = d->dtype == DT_F16 ? f16_to_f32(tmp[i]) : bf16_to_f32(tmp[i]);
    free(tmp);
}

static inline void pu_free_all(void) {
    for (int i = 0; i < pu_n_dev; i++) story_cuda_free(pu_dev_allocs[i]);
    for (int i = 0; i < pu_n_host; i++) free(pu_host_allocs[i]);
    pu_n_dev = pu_n_host = 0;
}

// ---- comparison -------------------------------------------------------------------------
static int pu_checks, pu_failures;

// Compares the device tensor d with the f32 reference ref (same element count).
static inline int pu_compare(const char *what, const Tensor *d, const float *ref, PuTol tol) {
    const int64_t n = tensor_numel(d);
    float *got = (float *)mallocCheck((size_t)(n ? n : 1) * sizeof(float));
    pu_to_host(d, got);
    int64_t worst = -1, bad = 0;
    double worst_excess = 0.0, max_abs = 0.0;
    for (int64_t i = 0; i < n; i++) {
        const double err = fabs((double)got[i] - (double)ref[i]);
        const double lim = tol.atol + tol.rtol * fabs((double)ref[i]);
        if (err > max_abs || err != err) max_abs = err;
        if (!(err <= lim)) {  // also catches NaN
            bad++;
            if (worst < 0 || err - lim > worst_excess) worst = i, worst_excess = err - lim;
        }
    }
    pu_checks++;
    char desc[96];
    if (!pu_canaries_ok(d)) {
        pu_failures++;
        printf("FAIL %-58s %s: the kernel wrote outside the tensor's bytes\n", what,
               tensor_desc(d, desc, sizeof desc));
    } else if (bad) {
        pu_failures++;
        printf(
            "FAIL %-58s %s: %lld of %lld outside tol (rtol %.0e atol %.0e); worst [%lld] got %.7g "
            "want %.7g\n",
            what, tensor_desc(d, desc, sizeof desc), (long long)bad, (long long)n, (double)tol.rtol,
            (double)tol.atol, (long long)worst, (double)got[worst], (double)ref[worst]);
    } else {
        printf("ok   %-58s %s: max abs err %.3g\n", what, tensor_desc(d, desc, sizeof desc),
               max_abs);
    }
    free(got);
    return bad == 0;
}

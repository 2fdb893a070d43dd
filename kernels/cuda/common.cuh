// kernels/cuda/common.cuh: what the hand-written kernels share: packed (16-byte)
// loads, warp/block reductions, dtype dispatch and the host-side argument checks.
// Written only against port.cuh, so it compiles for the GPU and for the emulation.
#pragma once
#include <math.h>
#include <stdint.h>

#include "../../runner/check.h"
#include "../ops.h"
#include "kernels.h"
#include "port.cuh"

// ---- host-side checks -----------------------------------------------------------------

// STORY_CHECK takes a plain message; these take a format and arguments.
#define KCHECK(cond, fmt, ...)                                                  \
    do {                                                                        \
        if (!(cond)) STORY_FATAL("check failed: %s: " fmt, #cond, __VA_ARGS__); \
    } while (0)

#if STORY_EMU
#define KLAUNCH_CHECK(what) ((void)(what))
#else
#define KLAUNCH_CHECK(what) story_cuda_check_launch((what), __FILE__, __LINE__)
#endif

// Description of t for messages; valid until the next call with the same slot.
static inline const char *kdesc(const Tensor *t, int slot) {
    static char buf[4][96];
    if (!t) return "(null)";
    return tensor_desc(t, buf[slot & 3], sizeof buf[0]);
}

// t lives on the CUDA device; op names the caller.
static inline void kcheck_dev(const char *op, const char *what, const Tensor *t) {
    KCHECK(t != NULL, "cuda_%s: %s is NULL", op, what);
    KCHECK(t->dev == DEV_CUDA && t->data != NULL, "cuda_%s: %s is %s, expected a CUDA tensor", op,
           what, kdesc(t, 0));
}

// out and x on the device, same dtype and element count (elementwise ops).
static inline void kcheck_same(const char *op, const Tensor *out, const Tensor *x) {
    kcheck_dev(op, "out", out);
    kcheck_dev(op, "x", x);
    KCHECK(out->dtype == x->dtype && tensor_numel(out) == tensor_numel(x),
           "cuda_%s: out %s does not match input %s", op, kdesc(out, 0), kdesc(x, 1));
}

static inline int kaligned16(const void *p) { return ((uintptr_t)p & 15u) == 0; }

// Grid for a grid-stride loop over n work items with `threads` per block.
static inline unsigned kgrid(int64_t n, int threads) {
    int64_t g = (n + threads - 1) / threads;
    if (g < 1) g = 1;
    if (g > (1 << 20)) g = 1 << 20;  // the loop strides over the rest
    return (unsigned)g;
}

// Runs BODY with T bound to the storage type of dt.
#define KDISPATCH(dt, op, T, ...)                                         \
    switch (dt) {                                                         \
    case DT_F32: {                                                        \
        typedef float T;                                                  \
        __VA_ARGS__;                                                      \
    } break;                                                              \
    case DT_F16: {                                                        \
        typedef half_t T;                                                 \
        __VA_ARGS__;                                                      \
    } break;                                                              \
    case DT_BF16: {                                                       \
        typedef bf16_t T;                                                 \
        __VA_ARGS__;                                                      \
    } break;                                                              \
    default: STORY_FATAL("cuda_%s: unsupported dtype %d", op, (int)(dt)); \
    }

// ---- device helpers -------------------------------------------------------------------

// V elements of T moved as one 16-byte (or smaller) access.
template <typename T, int V>
struct alignas(sizeof(T) * V) Pack {
    T v[V];
};

// Elements per 16-byte pack.
template <typename T>
struct PackWidth {
    static constexpr int value = 16 / (int)sizeof(T);
};

template <typename T, int V>
__device__ inline Pack<T, V> load_pack(const T *p, int64_t i) {
    return reinterpret_cast<const Pack<T, V> *>(p)[i];
}
template <typename T, int V>
__device__ inline void store_pack(T *p, int64_t i, const Pack<T, V> &v) {
    reinterpret_cast<Pack<T, V> *>(p)[i] = v;
}

__device__ inline int64_t kthread_id() { return (int64_t)blockIdx.x * blockDim.x + threadIdx.x; }
__device__ inline int64_t kthread_count() { return (int64_t)gridDim.x * blockDim.x; }

__device__ inline float warp_sum(float v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}
__device__ inline float warp_max(float v) {
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

// Sum over the block; every thread gets the result. scratch: __shared__ float[32].
// blockDim.x must be a multiple of 32. Ends with a barrier so scratch can be reused.
__device__ inline float block_sum(float v, float *scratch) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarps = blockDim.x >> 5;
    v = warp_sum(v);
    if (lane == 0) scratch[warp] = v;
    __syncthreads();
    v = lane < nwarps ? scratch[lane] : 0.0f;
    v = warp_sum(v);
    __syncthreads();
    return v;
}

// Online-softmax state (running max m, sum s of exp(x - m)) merged across lanes.
__device__ inline void softmax_merge(float &m, float &s, float m2, float s2) {
    const float mm = fmaxf(m, m2);
    if (mm == -INFINITY) {  // both empty: keep (−inf, 0)
        s = 0.0f;
        return;
    }
    s = s * expf(m - mm) + s2 * expf(m2 - mm);
    m = mm;
}

__device__ inline void block_softmax_state(float &m, float &s, float *sm, float *ss) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarps = blockDim.x >> 5;
    for (int o = 16; o > 0; o >>= 1) {
        const float m2 = __shfl_xor_sync(0xffffffffu, m, o);
        const float s2 = __shfl_xor_sync(0xffffffffu, s, o);
        softmax_merge(m, s, m2, s2);
    }
    if (lane == 0) {
        sm[warp] = m;
        ss[warp] = s;
    }
    __syncthreads();
    m = lane < nwarps ? sm[lane] : -INFINITY;
    s = lane < nwarps ? ss[lane] : 0.0f;
    for (int o = 16; o > 0; o >>= 1) {
        const float m2 = __shfl_xor_sync(0xffffffffu, m, o);
        const float s2 = __shfl_xor_sync(0xffffffffu, s, o);
        softmax_merge(m, s, m2, s2);
    }
    __syncthreads();
}

// Formulas in the order torch (and the CPU reference) writes them.
__device__ inline float gelu_erf_f(float x) {
    return x * 0.5f * (1.0f + erff(x * 0.70710678118654752f));
}
__device__ inline float silu_f(float x) { return x / (1.0f + expf(-x)); }

// Threads per block for a row of n packs: a multiple of 32 in [32, max_threads].
static inline int krow_threads(int64_t n, int max_threads) {
    int64_t t = (n + 31) / 32 * 32;
    if (t < 32) t = 32;
    if (t > max_threads) t = max_threads;
    return (int)t;
}

// kernels/cuda/norm.cu: group_norm (optionally fused with SiLU), layer_norm, softmax.
// Statistics are fp32 and two-pass (mean, then the sum of squared deviations), like the
// CPU reference, so a large mean does not cancel the variance away. gamma/beta may be
// stored in the activation dtype or in f32.
#include "../cuda_runtime_api.h"
#include "common.cuh"

// Rows up to this many floats are cached in shared memory between passes: 48 KiB
// (static + dynamic) is what every device grants a block without an opt-in, and the
// kernels' own reduction arrays take a few hundred bytes of it.
static const int64_t NORM_CACHE_MAX = 12000;

__device__ inline float load_param(const void *p, int dt, int64_t i) {
    if (dt == DT_F32) return ((const float *)p)[i];
    if (dt == DT_F16) return to_f32(((const half_t *)p)[i]);
    return to_f32(((const bf16_t *)p)[i]);
}

static void check_param(const char *op, const char *what, const Tensor *p, const Tensor *x,
                        int64_t n) {
    if (!p) return;
    kcheck_dev(op, what, p);
    KCHECK(tensor_numel(p) == n && (p->dtype == x->dtype || p->dtype == DT_F32),
           "cuda_%s: %s %s must have %lld elements, dtype f32 or that of x %s", op, what,
           kdesc(p, 0), (long long)n, kdesc(x, 1));
}

// ---- group_norm -------------------------------------------------------------------------
// x (N, C, S) with S the product of the trailing dims: group g of item n is one
// contiguous chunk of (C/G)*S elements. Stage 1 splits each chunk into P parts and
// writes each part's (mean, M2); stage 2 runs one block row per (n, c), merges the P
// partials of its group (Chan's formula) and normalises that channel. Two stages keep
// every SM busy even when N*G is small (the VAE has 32 groups of 1M elements).

// grid (N*G, P); chunk_packs = chunk / V. partials: (N*G, P, 2).
template <typename T, int V>
__global__ void gn_stats_kernel(float *partials, const T *x, int64_t chunk_packs, int P) {
    __shared__ float red[32];
    const int64_t g = blockIdx.x, p = blockIdx.y;
    const int64_t begin = p * chunk_packs / P, end = (p + 1) * chunk_packs / P;
    const T *xg = x + g * chunk_packs * V;
    float s = 0.0f;
    for (int64_t i = begin + threadIdx.x; i < end; i += blockDim.x) {
        const Pack<T, V> v = load_pack<T, V>(xg, i);
        for (int j = 0; j < V; j++) s += to_f32(v.v[j]);
    }
    const float cnt = (float)((end - begin) * V);
    const float mean = cnt > 0.0f ? block_sum(s, red) / cnt : 0.0f;
    float q = 0.0f;
    for (int64_t i = begin + threadIdx.x; i < end; i += blockDim.x) {
        const Pack<T, V> v = load_pack<T, V>(xg, i);
        for (int j = 0; j < V; j++) {
            const float d = to_f32(v.v[j]) - mean;
            q += d * d;
        }
    }
    q = block_sum(q, red);
    if (threadIdx.x == 0) {
        partials[(g * P + p) * 2] = mean;
        partials[(g * P + p) * 2 + 1] = q;
    }
}

// grid (N*C, ysplit): block row nc normalises channel c = nc % C of item n = nc / C.
template <typename T, int V>
__global__ void gn_apply_kernel(T *out, const T *x, const void *gamma, const void *beta, int pdt,
                                const float *partials, int64_t s_packs, int C, int cpg,
                                int64_t chunk_packs, int P, float eps, int fuse_silu) {
    __shared__ float stat[2];
    const int64_t nc = blockIdx.x, g = nc / cpg;  // groups are contiguous runs of cpg channels
    const int c = (int)(nc % C);
    if (threadIdx.x == 0) {
        float n = 0.0f, mean = 0.0f, m2 = 0.0f;
        for (int p = 0; p < P; p++) {
            const float nb =
                (float)(((int64_t)(p + 1) * chunk_packs / P - (int64_t)p * chunk_packs / P) * V);
            if (nb == 0.0f) continue;
            const float mb = partials[(g * P + p) * 2], qb = partials[(g * P + p) * 2 + 1];
            const float nn = n + nb, d = mb - mean;
            mean += d * (nb / nn);
            m2 += qb + d * d * (n * nb / nn);
            n = nn;
        }
        stat[0] = mean;
        stat[1] = 1.0f / sqrtf(m2 / n + eps);
    }
    __syncthreads();
    // y = x * a + b with b = beta - mean * a, as the CPU reference computes it.
    const float a = stat[1] * (gamma ? load_param(gamma, pdt, c) : 1.0f);
    const float b = (beta ? load_param(beta, pdt, c) : 0.0f) - stat[0] * a;
    const T *xc = x + nc * s_packs * V;
    T *oc = out + nc * s_packs * V;
    const int64_t stride = (int64_t)gridDim.y * blockDim.x;
    for (int64_t i = (int64_t)blockIdx.y * blockDim.x + threadIdx.x; i < s_packs; i += stride) {
        const Pack<T, V> v = load_pack<T, V>(xc, i);
        Pack<T, V> o;
        for (int j = 0; j < V; j++) {
            float y = to_f32(v.v[j]) * a + b;
            if (fuse_silu) y = silu_f(y);
            o.v[j] = from_f32<T>(y);
        }
        store_pack<T, V>(oc, i, o);
    }
}

// Partials buffer, kept across calls: (N*G*P*2) floats, grown when a call needs more.
// Freeing waits for the device, so a kernel still reading the old buffer is done first.
static float *gn_scratch(size_t floats) {
    static float *buf = NULL;
    static size_t cap = 0;
    if (floats > cap) {
        if (buf) story_cuda_free(buf);
        cap = floats < 4096 ? 4096 : floats;
        buf = (float *)story_cuda_malloc(cap * sizeof(float));
        if (!buf)
            STORY_FATAL("cuda_group_norm: cannot allocate %zu bytes of device scratch",
                        cap * sizeof(float));
    }
    return buf;
}

template <typename T, int V>
static void launch_group_norm(Tensor *out, const Tensor *x, const Tensor *gamma, const Tensor *beta,
                              int64_t N, int64_t C, int64_t G, int64_t S, float eps,
                              int fuse_silu) {
    const int64_t chunk = C / G * S, chunk_packs = chunk / V, s_packs = S / V;
    // Parts of ~8K elements, at most 64 per group (stage 2 merges them serially).
    int64_t P = chunk / 8192;
    P = P < 1 ? 1 : P > 64 ? 64 : P;
    float *partials = gn_scratch((size_t)(N * G * P * 2));
    KCHECK(N * G <= 0x7fffffff && N * C <= 0x7fffffff, "cuda_group_norm: x %s is too large",
           kdesc(x, 0));

    auto ks = gn_stats_kernel<T, V>;
    KERNEL_LAUNCH(ks, dim3((unsigned)(N * G), (unsigned)P), 256, 0, 0, partials, (const T *)x->data,
                  chunk_packs, (int)P);
    KLAUNCH_CHECK("group_norm stats");

    const int threads = krow_threads(s_packs, 256);
    int64_t ysplit = (s_packs + threads * 4 - 1) / (threads * 4);
    ysplit = ysplit < 1 ? 1 : ysplit > 65535 ? 65535 : ysplit;
    const int pdt = gamma ? (int)gamma->dtype : beta ? (int)beta->dtype : (int)DT_F32;
    auto ka = gn_apply_kernel<T, V>;
    KERNEL_LAUNCH(ka, dim3((unsigned)(N * C), (unsigned)ysplit), threads, 0, 0, (T *)out->data,
                  (const T *)x->data, gamma ? gamma->data : NULL, beta ? beta->data : NULL, pdt,
                  (const float *)partials, s_packs, (int)C, (int)(C / G), chunk_packs, (int)P, eps,
                  fuse_silu);
    KLAUNCH_CHECK("group_norm apply");
}

void cuda_group_norm(Tensor *out, const Tensor *x, const Tensor *gamma, const Tensor *beta,
                     int groups, float eps, int fuse_silu) {
    kcheck_same("group_norm", out, x);
    KCHECK(x->ndim >= 2 && groups > 0 && x->shape[1] % groups == 0,
           "cuda_group_norm: x %s must be (N, C, ...) with C divisible by groups = %d", kdesc(x, 0),
           groups);
    const int64_t N = x->shape[0], C = x->shape[1];
    const int64_t S = N * C > 0 ? tensor_numel(x) / (N * C) : 0;
    check_param("group_norm", "gamma", gamma, x, C);
    check_param("group_norm", "beta", beta, x, C);
    KCHECK(!gamma || !beta || gamma->dtype == beta->dtype,
           "cuda_group_norm: gamma %s and beta %s differ in dtype", kdesc(gamma, 0),
           kdesc(beta, 1));
    if (tensor_numel(x) == 0) return;
    const int vec = kaligned16(out->data) && kaligned16(x->data);
    KDISPATCH(x->dtype, "group_norm", T, {
        constexpr int V = PackWidth<T>::value;
        if (vec && S % V == 0)
            launch_group_norm<T, V>(out, x, gamma, beta, N, C, groups, S, eps, fuse_silu);
        else
            launch_group_norm<T, 1>(out, x, gamma, beta, N, C, groups, S, eps, fuse_silu);
    });
}

// ---- layer_norm -------------------------------------------------------------------------

// One block per row of C = c_packs * V elements; cache: the row kept in shared memory.
template <typename T, int V>
__global__ void ln_kernel(T *out, const T *x, const void *gamma, const void *beta, int pdt,
                          int64_t c_packs, float eps, int cache) {
    __shared__ float red[32];
    DYNAMIC_SHARED(float, row);
    const int64_t r = blockIdx.x;
    const T *xr = x + r * c_packs * V;
    T *orow = out + r * c_packs * V;
    const float C = (float)(c_packs * V);
    float s = 0.0f;
    for (int64_t i = threadIdx.x; i < c_packs; i += blockDim.x) {
        const Pack<T, V> v = load_pack<T, V>(xr, i);
        for (int j = 0; j < V; j++) {
            const float f = to_f32(v.v[j]);
            s += f;
            if (cache) row[i * V + j] = f;
        }
    }
    const float mean = block_sum(s, red) / C;
    float q = 0.0f;
    for (int64_t i = threadIdx.x; i < c_packs; i += blockDim.x) {
        const Pack<T, V> v = cache ? Pack<T, V>() : load_pack<T, V>(xr, i);
        for (int j = 0; j < V; j++) {
            const float d = (cache ? row[i * V + j] : to_f32(v.v[j])) - mean;
            q += d * d;
        }
    }
    const float rstd = 1.0f / sqrtf(block_sum(q, red) / C + eps);
    for (int64_t i = threadIdx.x; i < c_packs; i += blockDim.x) {
        const Pack<T, V> v = cache ? Pack<T, V>() : load_pack<T, V>(xr, i);
        Pack<T, V> o;
        for (int j = 0; j < V; j++) {
            const int64_t c = i * V + j;
            float y = ((cache ? row[c] : to_f32(v.v[j])) - mean) * rstd;
            if (gamma) y *= load_param(gamma, pdt, c);
            if (beta) y += load_param(beta, pdt, c);
            o.v[j] = from_f32<T>(y);
        }
        store_pack<T, V>(orow, i, o);
    }
}

void cuda_layer_norm(Tensor *out, const Tensor *x, const Tensor *gamma, const Tensor *beta,
                     float eps) {
    kcheck_same("layer_norm", out, x);
    KCHECK(x->ndim >= 1, "cuda_layer_norm: x %s has no dims", kdesc(x, 0));
    const int64_t C = x->shape[x->ndim - 1], rows = C > 0 ? tensor_numel(x) / C : 0;
    check_param("layer_norm", "gamma", gamma, x, C);
    check_param("layer_norm", "beta", beta, x, C);
    KCHECK(!gamma || !beta || gamma->dtype == beta->dtype,
           "cuda_layer_norm: gamma %s and beta %s differ in dtype", kdesc(gamma, 0),
           kdesc(beta, 1));
    KCHECK(rows <= 0x7fffffff, "cuda_layer_norm: x %s has too many rows", kdesc(x, 0));
    if (rows == 0) return;
    const int cache = C <= NORM_CACHE_MAX;
    const size_t smem = cache ? (size_t)C * sizeof(float) : 0;
    const int pdt = gamma ? (int)gamma->dtype : beta ? (int)beta->dtype : (int)DT_F32;
    const void *pg = gamma ? gamma->data : NULL, *pb = beta ? beta->data : NULL;
    const int vec = kaligned16(out->data) && kaligned16(x->data);
    KDISPATCH(x->dtype, "layer_norm", T, {
        constexpr int V = PackWidth<T>::value;
        if (vec && C % V == 0) {
            auto k = ln_kernel<T, V>;
            KERNEL_LAUNCH(k, (unsigned)rows, krow_threads(C / V, 256), smem, 0, (T *)out->data,
                          (const T *)x->data, pg, pb, pdt, C / V, eps, cache);
        } else {
            auto k = ln_kernel<T, 1>;
            KERNEL_LAUNCH(k, (unsigned)rows, krow_threads(C, 256), smem, 0, (T *)out->data,
                          (const T *)x->data, pg, pb, pdt, C, eps, cache);
        }
    });
    KLAUNCH_CHECK("layer_norm");
}

// ---- softmax ----------------------------------------------------------------------------

// One block per row of L = l_packs * V: online (max, sum) in one pass, then the write.
template <typename T, int V>
__global__ void softmax_kernel(T *out, const T *x, int64_t l_packs, int cache) {
    __shared__ float red_m[32], red_s[32];
    DYNAMIC_SHARED(float, row);
    const int64_t r = blockIdx.x;
    const T *xr = x + r * l_packs * V;
    T *orow = out + r * l_packs * V;
    float m = -INFINITY, s = 0.0f;
    for (int64_t i = threadIdx.x; i < l_packs; i += blockDim.x) {
        const Pack<T, V> v = load_pack<T, V>(xr, i);
        float f[V], pm = -INFINITY, ps = 0.0f;
        for (int j = 0; j < V; j++) {
            f[j] = to_f32(v.v[j]);
            pm = fmaxf(pm, f[j]);
            if (cache) row[i * V + j] = f[j];
        }
        if (pm != -INFINITY)
            for (int j = 0; j < V; j++) ps += expf(f[j] - pm);
        softmax_merge(m, s, pm, ps);
    }
    block_softmax_state(m, s, red_m, red_s);
    const float inv = 1.0f / s;
    for (int64_t i = threadIdx.x; i < l_packs; i += blockDim.x) {
        const Pack<T, V> v = cache ? Pack<T, V>() : load_pack<T, V>(xr, i);
        Pack<T, V> o;
        for (int j = 0; j < V; j++)
            o.v[j] = from_f32<T>(expf((cache ? row[i * V + j] : to_f32(v.v[j])) - m) * inv);
        store_pack<T, V>(orow, i, o);
    }
}

void cuda_softmax(Tensor *out, const Tensor *x) {
    kcheck_same("softmax", out, x);
    KCHECK(x->ndim >= 1, "cuda_softmax: x %s has no dims", kdesc(x, 0));
    const int64_t L = x->shape[x->ndim - 1], rows = L > 0 ? tensor_numel(x) / L : 0;
    KCHECK(rows <= 0x7fffffff, "cuda_softmax: x %s has too many rows", kdesc(x, 0));
    if (rows == 0) return;
    const int cache = L <= NORM_CACHE_MAX;
    const size_t smem = cache ? (size_t)L * sizeof(float) : 0;
    const int vec = kaligned16(out->data) && kaligned16(x->data);
    KDISPATCH(x->dtype, "softmax", T, {
        constexpr int V = PackWidth<T>::value;
        if (vec && L % V == 0) {
            auto k = softmax_kernel<T, V>;
            KERNEL_LAUNCH(k, (unsigned)rows, krow_threads(L / V, 256), smem, 0, (T *)out->data,
                          (const T *)x->data, L / V, cache);
        } else {
            auto k = softmax_kernel<T, 1>;
            KERNEL_LAUNCH(k, (unsigned)rows, krow_threads(L, 256), smem, 0, (T *)out->data,
                          (const T *)x->data, L, cache);
        }
    });
    KLAUNCH_CHECK("softmax");
}

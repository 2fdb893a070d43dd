// kernels/cuda/motion_train.cu: the motion predictor's device training kernels besides
// LayerNorm, GELU and attention (motion.cu): bf16 casts, input interpolation, adds and
// their gradients, the loss, the gradient norm and AdamW (declarations and shapes:
// motion_train.h). Every output element is computed by one thread or one block in a
// fixed order, so results do not change from run to run.
#include "../cuda_runtime_api.h"
#include "common.cuh"
#include "motion_train.h"

#define SMPT_THREADS 256

// Sum of v over the block in double (blockDim.x == SMPT_THREADS); thread 0 gets it.
__device__ inline double block_sum_f64(double v, double *red) {
    red[threadIdx.x] = v;
    __syncthreads();
    for (int s = SMPT_THREADS / 2; s > 0; s >>= 1) {
        if ((int)threadIdx.x < s) red[threadIdx.x] += red[threadIdx.x + s];
        __syncthreads();
    }
    return red[0];
}

__global__ void smp_to_bf16_kernel(bf16_t *out, const float *x, int64_t n) {
    for (int64_t i = kthread_id(); i < n; i += kthread_count()) out[i] = from_f32<bf16_t>(x[i]);
}

__global__ void smp_interp_kernel(float *K, const float *clips, int T, int D, int64_t n) {
    for (int64_t i = kthread_id(); i < n; i += kthread_count()) {
        const int64_t d = i % D, bt = i / D, b = bt / T, t = bt % T;
        const float a = (float)t / (float)(T - 1);
        const float s = clips[b * T * D + d], e = clips[(b * T + T - 1) * D + d];
        K[i] = s + a * (e - s);
    }
}

__global__ void smp_add_rows_kernel(float *x, const float *v, int C, int period, int64_t n) {
    for (int64_t i = kthread_id(); i < n; i += kthread_count()) {
        const int64_t row = i / C, c = i % C;
        x[i] += v[(row % period) * C + c];
    }
}

__global__ void smp_add_kernel(float *y, const float *x, int64_t n) {
    for (int64_t i = kthread_id(); i < n; i += kthread_count()) y[i] += x[i];
}

// One thread per output element (r, c); rows r, r + period, ... in order.
__global__ void smp_col_sum_kernel(float *dv, const float *d, int N, int C, int period) {
    const int64_t j = kthread_id();
    if (j >= (int64_t)period * C) return;
    const int r = (int)(j / C), c = (int)(j % C);
    float s = 0.0f;
    for (int n = r; n < N; n += period) s += d[(int64_t)n * C + c];
    dv[j] += s;
}

// One block per row.
__global__ void smp_mse_kernel(double *row_sum, float *dP, const float *P, const float *Y, int T,
                               int D, float w_end, float k_end, float k_inner) {
    __shared__ double red[SMPT_THREADS];
    const int64_t n = blockIdx.x;
    const int t = (int)(n % T);
    const int end = t == 0 || t == T - 1;
    const float k = end ? k_end : k_inner;
    const float *p = P + n * D, *y = Y + n * D;
    float *g = dP + n * D;
    double s = 0.0;
    for (int d = threadIdx.x; d < D; d += blockDim.x) {
        const double e = (double)p[d] - (double)y[d];
        s += e * e;
        g[d] = k * (p[d] - y[d]);
    }
    s = block_sum_f64(s, red);
    if (threadIdx.x == 0) row_sum[n] = (end ? (double)w_end : 1.0) * s;
}

// One block per chunk.
__global__ void smp_sumsq_kernel(double *part, const float *g, int64_t n, int64_t chunk) {
    __shared__ double red[SMPT_THREADS];
    const int64_t lo = (int64_t)blockIdx.x * chunk;
    const int64_t hi = lo + chunk < n ? lo + chunk : n;
    double s = 0.0;
    for (int64_t k = lo + threadIdx.x; k < hi; k += blockDim.x) s += (double)g[k] * g[k];
    s = block_sum_f64(s, red);
    if (threadIdx.x == 0) part[blockIdx.x] = s;
}

__global__ void smp_scale_kernel(float *g, float s, int64_t n) {
    for (int64_t i = kthread_id(); i < n; i += kthread_count()) g[i] = s == 0.0f ? 0.0f : g[i] * s;
}

__global__ void smp_adamw_kernel(float *p, bf16_t *pbf, const float *g, float *m, float *v,
                                 int64_t n, float decay, float w1, float b2, float w2,
                                 float step_size, float bc2_sqrt, float eps) {
    for (int64_t k = kthread_id(); k < n; k += kthread_count()) {
        const float pk = p[k] * decay, gk = g[k];
        const float mk = m[k] + w1 * (gk - m[k]);
        const float vk = v[k] * b2 + w2 * (gk * gk);
        m[k] = mk;
        v[k] = vk;
        const float denom = sqrtf(vk) / bc2_sqrt + eps;
        const float np = pk + step_size * (mk / denom);
        p[k] = np;
        if (pbf) pbf[k] = from_f32<bf16_t>(np);
    }
}

// ---- launchers ----------------------------------------------------------------------------------

extern "C" void cuda_smp_to_bf16(uint16_t *out, const float *x, int64_t n) {
    if (n <= 0) return;
    KERNEL_LAUNCH(smp_to_bf16_kernel, kgrid(n, SMPT_THREADS), SMPT_THREADS, 0, 0,
                  reinterpret_cast<bf16_t *>(out), x, n);
    KLAUNCH_CHECK("smp_to_bf16_kernel");
}

extern "C" void cuda_smp_interp(float *K, const float *clips, int B, int T, int D) {
    const int64_t n = (int64_t)B * T * D;
    if (n <= 0) return;
    KCHECK(T >= 2, "cuda_smp_interp: %d frames, expected >= 2", T);
    KERNEL_LAUNCH(smp_interp_kernel, kgrid(n, SMPT_THREADS), SMPT_THREADS, 0, 0, K, clips, T, D, n);
    KLAUNCH_CHECK("smp_interp_kernel");
}

extern "C" void cuda_smp_add_rows(float *x, const float *v, int N, int C, int period) {
    const int64_t n = (int64_t)N * C;
    if (n <= 0) return;
    KCHECK(period >= 1, "cuda_smp_add_rows: period %d", period);
    KERNEL_LAUNCH(smp_add_rows_kernel, kgrid(n, SMPT_THREADS), SMPT_THREADS, 0, 0, x, v, C, period,
                  n);
    KLAUNCH_CHECK("smp_add_rows_kernel");
}

extern "C" void cuda_smp_add(float *y, const float *x, int64_t n) {
    if (n <= 0) return;
    KERNEL_LAUNCH(smp_add_kernel, kgrid(n, SMPT_THREADS), SMPT_THREADS, 0, 0, y, x, n);
    KLAUNCH_CHECK("smp_add_kernel");
}

extern "C" void cuda_smp_col_sum(float *dv, const float *d, int N, int C, int period) {
    const int64_t n = (int64_t)period * C;
    if (n <= 0 || N <= 0) return;
    KERNEL_LAUNCH(smp_col_sum_kernel, kgrid(n, SMPT_THREADS), SMPT_THREADS, 0, 0, dv, d, N, C,
                  period);
    KLAUNCH_CHECK("smp_col_sum_kernel");
}

extern "C" void cuda_smp_mse(double *row_sum, float *dP, const float *P, const float *Y, int N,
                             int T, int D, float w_end, float k_end, float k_inner) {
    if (N <= 0) return;
    KERNEL_LAUNCH(smp_mse_kernel, N, SMPT_THREADS, 0, 0, row_sum, dP, P, Y, T, D, w_end, k_end,
                  k_inner);
    KLAUNCH_CHECK("smp_mse_kernel");
}

extern "C" void cuda_smp_sumsq(double *part, const float *g, int64_t n, int64_t chunk) {
    if (n <= 0) return;
    const int64_t nchunk = (n + chunk - 1) / chunk;
    KCHECK(nchunk <= (1LL << 31) - 1, "cuda_smp_sumsq: %lld chunks", (long long)nchunk);
    KERNEL_LAUNCH(smp_sumsq_kernel, (unsigned)nchunk, SMPT_THREADS, 0, 0, part, g, n, chunk);
    KLAUNCH_CHECK("smp_sumsq_kernel");
}

extern "C" void cuda_smp_scale(float *g, float s, int64_t n) {
    if (n <= 0) return;
    KERNEL_LAUNCH(smp_scale_kernel, kgrid(n, SMPT_THREADS), SMPT_THREADS, 0, 0, g, s, n);
    KLAUNCH_CHECK("smp_scale_kernel");
}

extern "C" void cuda_smp_adamw(float *p, uint16_t *pbf, const float *g, float *m, float *v,
                               int64_t n, float decay, float w1, float b2, float w2,
                               float step_size, float bc2_sqrt, float eps) {
    if (n <= 0) return;
    KERNEL_LAUNCH(smp_adamw_kernel, kgrid(n, SMPT_THREADS), SMPT_THREADS, 0, 0, p,
                  reinterpret_cast<bf16_t *>(pbf), g, m, v, n, decay, w1, b2, w2, step_size,
                  bc2_sqrt, eps);
    KLAUNCH_CHECK("smp_adamw_kernel");
}

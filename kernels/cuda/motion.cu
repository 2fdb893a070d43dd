// kernels/cuda/motion.cu: the motion predictor's LayerNorm, GELU and attention kernels,
// forward and backward (declarations and shapes: motion_kernels.h). Straightforward
// versions: one block per row (LayerNorm) or per (clip, head) (attention), every output
// element computed by one thread, no atomics, so results are run-to-run identical.
#include "../cuda_runtime_api.h"
#include "common.cuh"
#include "motion_kernels.h"

#define SMP_THREADS 256

// ---- LayerNorm ------------------------------------------------------------------------------

// One block per row; mean, then the sum of squared deviations (two passes, as the CPU).
__global__ void smp_ln_fwd_kernel(float *out, float *mean, float *rstd, const float *x,
                                  const float *w, const float *b, int C, float eps) {
    __shared__ float red[32];
    const int64_t n = blockIdx.x;
    const float *xr = x + n * C;
    float s = 0.0f;
    for (int c = threadIdx.x; c < C; c += blockDim.x) s += xr[c];
    const float mu = block_sum(s, red) / (float)C;
    float q = 0.0f;
    for (int c = threadIdx.x; c < C; c += blockDim.x) {
        const float d = xr[c] - mu;
        q += d * d;
    }
    const float rs = rsqrtf(block_sum(q, red) / (float)C + eps);
    float *o = out + n * C;
    for (int c = threadIdx.x; c < C; c += blockDim.x) o[c] = (xr[c] - mu) * rs * w[c] + b[c];
    if (threadIdx.x == 0) {
        mean[n] = mu;
        rstd[n] = rs;
    }
}

// dx += rstd (g - mean(g) - xhat mean(g xhat)), g = dout * w. One block per row.
__global__ void smp_ln_bwd_dx_kernel(float *dx, const float *dout, const float *x, const float *w,
                                     const float *mean, const float *rstd, int C) {
    __shared__ float red[32];
    const int64_t n = blockIdx.x;
    const float *xr = x + n * C, *dr = dout + n * C;
    const float mu = mean[n], rs = rstd[n];
    float sg = 0.0f, sgx = 0.0f;
    for (int c = threadIdx.x; c < C; c += blockDim.x) {
        const float g = dr[c] * w[c];
        sg += g;
        sgx += g * ((xr[c] - mu) * rs);
    }
    const float mg = block_sum(sg, red) / (float)C;
    const float mgx = block_sum(sgx, red) / (float)C;
    float *dxr = dx + n * C;
    for (int c = threadIdx.x; c < C; c += blockDim.x) {
        const float xhat = (xr[c] - mu) * rs;
        dxr[c] += rs * (dr[c] * w[c] - mg - xhat * mgx);
    }
}

// dw += sum_n dout xhat, db += sum_n dout: one thread per column, rows in order.
__global__ void smp_ln_bwd_dw_kernel(float *dw, float *db, const float *dout, const float *x,
                                     const float *mean, const float *rstd, int N, int C) {
    const int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= C) return;
    float sw = 0.0f, sb = 0.0f;
    for (int n = 0; n < N; n++) {
        const float d = dout[(int64_t)n * C + c];
        sw += d * ((x[(int64_t)n * C + c] - mean[n]) * rstd[n]);
        sb += d;
    }
    dw[c] += sw;
    db[c] += sb;
}

// ---- GELU (exact) -------------------------------------------------------------------------------

__global__ void smp_gelu_fwd_kernel(float *out, const float *x, int64_t n) {
    for (int64_t i = kthread_id(); i < n; i += kthread_count())
        out[i] = 0.5f * x[i] * (1.0f + erff(x[i] * 0.70710678118654752440f));
}

// gelu'(x) = Phi(x) + x phi(x)
__global__ void smp_gelu_bwd_kernel(float *dx, const float *dout, const float *x, int64_t n) {
    for (int64_t i = kthread_id(); i < n; i += kthread_count()) {
        const float v = x[i];
        const float cdf = 0.5f * (1.0f + erff(v * 0.70710678118654752440f));
        const float pdf = 0.39894228040143267794f * expf(-0.5f * v * v);
        dx[i] = dout[i] * (cdf + v * pdf);
    }
}

// ---- attention ----------------------------------------------------------------------------------
// Block (b, h) = blockIdx.x / H, % H. q of frame t at qkv[(b T + t) 3C + h hd], k at + C,
// v at + 2C. Phases are separated by __syncthreads, which also orders the block's
// global-memory writes (att, datt) before the reads of the next phase.

__global__ void smp_attn_fwd_kernel(float *out, float *att, const float *qkv, int T, int C, int H) {
    const int b = blockIdx.x / H, h = blockIdx.x % H, hd = C / H, C3 = 3 * C;
    const float scale = rsqrtf((float)hd);
    const float *base = qkv + (int64_t)b * T * C3 + (int64_t)h * hd;
    float *a = att + (int64_t)blockIdx.x * T * T;
    for (int idx = threadIdx.x; idx < T * T; idx += blockDim.x) {
        const int t = idx / T, s = idx % T;
        const float *q = base + (int64_t)t * C3, *k = base + (int64_t)s * C3 + C;
        float dot = 0.0f;
        for (int i = 0; i < hd; i++) dot += q[i] * k[i];
        a[idx] = dot * scale;
    }
    __syncthreads();
    for (int t = threadIdx.x; t < T; t += blockDim.x) {
        float *ar = a + (int64_t)t * T, mx = -INFINITY, sum = 0.0f;
        for (int s = 0; s < T; s++) mx = fmaxf(mx, ar[s]);
        for (int s = 0; s < T; s++) {
            ar[s] = expf(ar[s] - mx);
            sum += ar[s];
        }
        const float inv = 1.0f / sum;
        for (int s = 0; s < T; s++) ar[s] *= inv;
    }
    __syncthreads();
    for (int idx = threadIdx.x; idx < T * hd; idx += blockDim.x) {
        const int t = idx / hd, i = idx % hd;
        float o = 0.0f;
        for (int s = 0; s < T; s++) o += a[(int64_t)t * T + s] * base[(int64_t)s * C3 + 2 * C + i];
        out[((int64_t)b * T + t) * C + (int64_t)h * hd + i] = o;
    }
}

// dA = dY V^T; dS = A (dA - rowsum(dA A)) scale (into datt); dQ = dS K; dK = dS^T Q; dV = A^T dY.
__global__ void smp_attn_bwd_kernel(float *dqkv, float *datt, const float *dout, const float *qkv,
                                    const float *att, int T, int C, int H) {
    DYNAMIC_SHARED(float, rowdot);  // (T)
    const int b = blockIdx.x / H, h = blockIdx.x % H, hd = C / H, C3 = 3 * C;
    const float scale = rsqrtf((float)hd);
    const float *base = qkv + (int64_t)b * T * C3 + (int64_t)h * hd;
    float *dbase = dqkv + (int64_t)b * T * C3 + (int64_t)h * hd;
    const float *a = att + (int64_t)blockIdx.x * T * T;
    float *da = datt + (int64_t)blockIdx.x * T * T;
    const float *dy = dout + (int64_t)b * T * C + (int64_t)h * hd;
    for (int idx = threadIdx.x; idx < T * T; idx += blockDim.x) {
        const int t = idx / T, s = idx % T;
        const float *dyt = dy + (int64_t)t * C, *v = base + (int64_t)s * C3 + 2 * C;
        float dot = 0.0f;
        for (int i = 0; i < hd; i++) dot += dyt[i] * v[i];
        da[idx] = dot;
    }
    __syncthreads();
    for (int t = threadIdx.x; t < T; t += blockDim.x) {
        float r = 0.0f;
        for (int s = 0; s < T; s++) r += da[(int64_t)t * T + s] * a[(int64_t)t * T + s];
        rowdot[t] = r;
    }
    __syncthreads();
    for (int idx = threadIdx.x; idx < T * T; idx += blockDim.x)
        da[idx] = a[idx] * (da[idx] - rowdot[idx / T]) * scale;
    __syncthreads();
    for (int idx = threadIdx.x; idx < T * hd; idx += blockDim.x) {
        const int t = idx / hd,
                  i = idx % hd;  // t: the query frame for dq, the key frame for dk / dv
        float dq = 0.0f, dk = 0.0f, dv = 0.0f;
        for (int s = 0; s < T; s++) {
            dq += da[(int64_t)t * T + s] * base[(int64_t)s * C3 + C + i];
            dk += da[(int64_t)s * T + t] * base[(int64_t)s * C3 + i];
            dv += a[(int64_t)s * T + t] * dy[(int64_t)s * C + i];
        }
        float *row = dbase + (int64_t)t * C3;
        row[i] = dq;
        row[C + i] = dk;
        row[2 * C + i] = dv;
    }
}

// ---- launchers ----------------------------------------------------------------------------------

extern "C" void cuda_smp_layernorm_forward(float *out, float *mean, float *rstd, const float *x,
                                           const float *w, const float *b, int N, int C,
                                           float eps) {
    if (N <= 0) return;
    KERNEL_LAUNCH(smp_ln_fwd_kernel, N, SMP_THREADS, 0, 0, out, mean, rstd, x, w, b, C, eps);
    KLAUNCH_CHECK("smp_ln_fwd_kernel");
}

extern "C" void cuda_smp_layernorm_backward(float *dx, float *dw, float *db, const float *dout,
                                            const float *x, const float *w, const float *mean,
                                            const float *rstd, int N, int C) {
    if (N <= 0) return;
    KERNEL_LAUNCH(smp_ln_bwd_dx_kernel, N, SMP_THREADS, 0, 0, dx, dout, x, w, mean, rstd, C);
    KLAUNCH_CHECK("smp_ln_bwd_dx_kernel");
    KERNEL_LAUNCH(smp_ln_bwd_dw_kernel, kgrid(C, SMP_THREADS), SMP_THREADS, 0, 0, dw, db, dout, x,
                  mean, rstd, N, C);
    KLAUNCH_CHECK("smp_ln_bwd_dw_kernel");
}

extern "C" void cuda_smp_gelu_forward(float *out, const float *x, int64_t n) {
    if (n <= 0) return;
    KERNEL_LAUNCH(smp_gelu_fwd_kernel, kgrid(n, SMP_THREADS), SMP_THREADS, 0, 0, out, x, n);
    KLAUNCH_CHECK("smp_gelu_fwd_kernel");
}

extern "C" void cuda_smp_gelu_backward(float *dx, const float *dout, const float *x, int64_t n) {
    if (n <= 0) return;
    KERNEL_LAUNCH(smp_gelu_bwd_kernel, kgrid(n, SMP_THREADS), SMP_THREADS, 0, 0, dx, dout, x, n);
    KLAUNCH_CHECK("smp_gelu_bwd_kernel");
}

extern "C" void cuda_smp_attention_forward(float *out, float *att, const float *qkv, int B, int T,
                                           int C, int H) {
    if (B <= 0) return;
    KCHECK(C % H == 0, "cuda_smp_attention_forward: width %d is not a multiple of heads %d", C, H);
    KERNEL_LAUNCH(smp_attn_fwd_kernel, B * H, 128, 0, 0, out, att, qkv, T, C, H);
    KLAUNCH_CHECK("smp_attn_fwd_kernel");
}

extern "C" void cuda_smp_attention_backward(float *dqkv, float *datt, const float *dout,
                                            const float *qkv, const float *att, int B, int T, int C,
                                            int H) {
    if (B <= 0) return;
    KCHECK(C % H == 0, "cuda_smp_attention_backward: width %d is not a multiple of heads %d", C, H);
    KERNEL_LAUNCH(smp_attn_bwd_kernel, B * H, 128, (size_t)T * sizeof(float), 0, dqkv, datt, dout,
                  qkv, att, T, C, H);
    KLAUNCH_CHECK("smp_attn_bwd_kernel");
}

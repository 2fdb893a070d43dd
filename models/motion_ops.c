// models/motion_ops.c: forward and backward of the motion predictor's layers on the CPU.
// Matrix products go to OpenBLAS; the rest are plain loops with OpenMP over rows (or over
// (batch, head) for attention). Column sums (bias and LayerNorm parameter gradients) are
// split over threads by column block, each summing its rows in order, so every result is
// the same for any thread count.
#include "motion_ops.h"
#include "motion_internal.h"
#include "kernels/ops.h"

#include <math.h>
#include <string.h>

#define COL_BLOCK 64

// acc (C) += column sums of a (N, C); and, when b is given, acc2 (C) += column sums of
// a * b (element-wise), for the LayerNorm weight gradient.
static void column_sums(float *acc, float *acc2, const float *a, const float *b, int N, int C) {
    int nblk = (C + COL_BLOCK - 1) / COL_BLOCK;
#pragma omp parallel for schedule(static) if ((size_t)N * C >= SMP_PAR_MIN)
    for (int blk = 0; blk < nblk; blk++) {
        int c0 = blk * COL_BLOCK, c1 = c0 + COL_BLOCK < C ? c0 + COL_BLOCK : C;
        float s[COL_BLOCK], s2[COL_BLOCK];
        for (int c = c0; c < c1; c++) s[c - c0] = 0.0f, s2[c - c0] = 0.0f;
        for (int n = 0; n < N; n++) {
            const float *ar = a + (size_t)n * C;
            for (int c = c0; c < c1; c++) s[c - c0] += ar[c];
            if (acc2) {
                const float *br = b + (size_t)n * C;
                for (int c = c0; c < c1; c++) s2[c - c0] += ar[c] * br[c];
            }
        }
        for (int c = c0; c < c1; c++) {
            acc[c] += s[c - c0];
            if (acc2) acc2[c] += s2[c - c0];
        }
    }
}

void smp_linear_forward(float *out, const float *x, const float *w, const float *b, int N, int IC,
                        int OC) {
    if (N <= 0) return;
    if (b) {
#pragma omp parallel for schedule(static) if ((size_t)N * OC >= SMP_PAR_MIN)
        for (int n = 0; n < N; n++) memcpy(out + (size_t)n * OC, b, (size_t)OC * sizeof(float));
    }
    // out (N, OC) = x (N, IC) @ w^T (IC, OC) + out
    cpu_sgemm(0, 1, N, OC, IC, 1.0f, x, IC, w, IC, b ? 1.0f : 0.0f, out, OC);
}

void smp_linear_backward(float *dx, float *dw, float *db, const float *dout, const float *x,
                         const float *w, int N, int IC, int OC) {
    if (N <= 0) return;
    // dx (N, IC) = dout (N, OC) @ w (OC, IC)
    if (dx)
        cpu_sgemm(0, 0, N, IC, OC, 1.0f, dout, OC, w, IC, 0.0f, dx, IC);
    // dw (OC, IC) += dout^T (OC, N) @ x (N, IC)
    cpu_sgemm(1, 0, OC, IC, N, 1.0f, dout, OC, x, IC, 1.0f, dw, IC);
    if (db) column_sums(db, NULL, dout, NULL, N, OC);
}

void smp_layernorm_forward(float *out, float *mean, float *rstd, const float *x, const float *w,
                           const float *b, int N, int C, float eps) {
#pragma omp parallel for schedule(static) if ((size_t)N * C >= SMP_PAR_MIN)
    for (int n = 0; n < N; n++) {
        const float *xr = x + (size_t)n * C;
        double s = 0.0;
        for (int c = 0; c < C; c++) s += xr[c];
        float mu = (float)(s / C);
        double v = 0.0;
        for (int c = 0; c < C; c++) {
            double d = (double)xr[c] - mu;
            v += d * d;
        }
        float rs = (float)(1.0 / sqrt(v / C + eps));  // biased variance, as torch
        float *o = out + (size_t)n * C;
        for (int c = 0; c < C; c++) o[c] = (xr[c] - mu) * rs * w[c] + b[c];
        mean[n] = mu;
        rstd[n] = rs;
    }
}

// With xhat = (x - mean) rstd and g = dout * w:
//   dx = rstd (g - mean(g) - xhat mean(g xhat)),  dw += sum_n dout xhat,  db += sum_n dout.
void smp_layernorm_backward(float *dx, float *dw, float *db, const float *dout, const float *x,
                            const float *w, const float *mean, const float *rstd, int N, int C) {
#pragma omp parallel for schedule(static) if ((size_t)N * C >= SMP_PAR_MIN)
    for (int n = 0; n < N; n++) {
        const float *xr = x + (size_t)n * C, *dr = dout + (size_t)n * C;
        float mu = mean[n], rs = rstd[n];
        double sg = 0.0, sgx = 0.0;
        for (int c = 0; c < C; c++) {
            float g = dr[c] * w[c];
            sg += g;
            sgx += (double)g * ((xr[c] - mu) * rs);
        }
        float mg = (float)(sg / C), mgx = (float)(sgx / C);
        float *dxr = dx + (size_t)n * C;
        for (int c = 0; c < C; c++) {
            float xhat = (xr[c] - mu) * rs;
            dxr[c] += rs * (dr[c] * w[c] - mg - xhat * mgx);
        }
    }
    // dw needs xhat per element; recompute it per column block instead of storing (N, C).
    int nblk = (C + COL_BLOCK - 1) / COL_BLOCK;
#pragma omp parallel for schedule(static) if ((size_t)N * C >= SMP_PAR_MIN)
    for (int blk = 0; blk < nblk; blk++) {
        int c0 = blk * COL_BLOCK, c1 = c0 + COL_BLOCK < C ? c0 + COL_BLOCK : C;
        float sw[COL_BLOCK], sb[COL_BLOCK];
        for (int c = c0; c < c1; c++) sw[c - c0] = 0.0f, sb[c - c0] = 0.0f;
        for (int n = 0; n < N; n++) {
            const float *xr = x + (size_t)n * C, *dr = dout + (size_t)n * C;
            float mu = mean[n], rs = rstd[n];
            for (int c = c0; c < c1; c++) {
                sw[c - c0] += dr[c] * ((xr[c] - mu) * rs);
                sb[c - c0] += dr[c];
            }
        }
        for (int c = c0; c < c1; c++) dw[c] += sw[c - c0], db[c] += sb[c - c0];
    }
}

#define SMP_SQRT1_2 0.70710678118654752440f
#define SMP_INV_SQRT_2PI 0.39894228040143267794f

void smp_gelu_forward(float *out, const float *x, size_t n) {
#pragma omp parallel for schedule(static) if (n >= SMP_PAR_MIN)
    for (size_t i = 0; i < n; i++) out[i] = 0.5f * x[i] * (1.0f + erff(x[i] * SMP_SQRT1_2));
}

// gelu'(x) = Phi(x) + x phi(x), Phi the standard normal CDF and phi its density.
void smp_gelu_backward(float *dx, const float *dout, const float *x, size_t n) {
#pragma omp parallel for schedule(static) if (n >= SMP_PAR_MIN)
    for (size_t i = 0; i < n; i++) {
        float v = x[i];
        float cdf = 0.5f * (1.0f + erff(v * SMP_SQRT1_2));
        float pdf = SMP_INV_SQRT_2PI * expf(-0.5f * v * v);
        dx[i] = dout[i] * (cdf + v * pdf);
    }
}

void smp_attention_forward(float *out, float *att, const float *qkv, int B, int T, int C, int H) {
    int hd = C / H, C3 = 3 * C;
    float scale = 1.0f / sqrtf((float)hd);
#pragma omp parallel for collapse(2) schedule(static) if ((size_t)B * H * T * T * hd >= SMP_PAR_MIN)
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++) {
            const float *base = qkv + (size_t)b * T * C3 + (size_t)h * hd;
            float *a = att + ((size_t)b * H + h) * T * T;
            for (int t = 0; t < T; t++) {
                const float *q = base + (size_t)t * C3;
                float *ar = a + (size_t)t * T, mx = -INFINITY;
                for (int s = 0; s < T; s++) {
                    const float *k = base + (size_t)s * C3 + C;
                    float dot = 0.0f;
                    for (int i = 0; i < hd; i++) dot += q[i] * k[i];
                    ar[s] = dot * scale;
                    if (ar[s] > mx) mx = ar[s];
                }
                float sum = 0.0f;
                for (int s = 0; s < T; s++) {
                    ar[s] = expf(ar[s] - mx);
                    sum += ar[s];
                }
                float inv = 1.0f / sum;
                for (int s = 0; s < T; s++) ar[s] *= inv;
                float *o = out + ((size_t)b * T + t) * C + (size_t)h * hd;
                for (int i = 0; i < hd; i++) o[i] = 0.0f;
                for (int s = 0; s < T; s++) {
                    const float *v = base + (size_t)s * C3 + 2 * C;
                    for (int i = 0; i < hd; i++) o[i] += ar[s] * v[i];
                }
            }
        }
}

// Per (b, h), with A = att, S the pre-softmax scores and Y = A V:
//   dA = dY V^T,  dV = A^T dY,  dS = A * (dA - rowsum(dA * A)),  dQ = scale dS K,  dK = scale dS^T
//   Q.
void smp_attention_backward(float *dqkv, float *datt, const float *dout, const float *qkv,
                            const float *att, int B, int T, int C, int H) {
    int hd = C / H, C3 = 3 * C;
    float scale = 1.0f / sqrtf((float)hd);
#pragma omp parallel for collapse(2) schedule(static) if ((size_t)B * H * T * T * hd >= SMP_PAR_MIN)
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++) {
            const float *base = qkv + (size_t)b * T * C3 + (size_t)h * hd;
            float *dbase = dqkv + (size_t)b * T * C3 + (size_t)h * hd;
            const float *a = att + ((size_t)b * H + h) * T * T;
            float *da = datt + ((size_t)b * H + h) * T * T;
            const float *dy = dout + (size_t)b * T * C + (size_t)h * hd;
            for (int t = 0; t < T; t++)
                for (int j = 0; j < 3; j++)
                    memset(dbase + (size_t)t * C3 + (size_t)j * C, 0, (size_t)hd * sizeof(float));
            for (int t = 0; t < T; t++) {
                const float *dyt = dy + (size_t)t * C;
                const float *ar = a + (size_t)t * T;
                float *dar = da + (size_t)t * T;
                float rowdot = 0.0f;
                for (int s = 0; s < T; s++) {
                    const float *v = base + (size_t)s * C3 + 2 * C;
                    float *dv = dbase + (size_t)s * C3 + 2 * C;
                    float dot = 0.0f;
                    for (int i = 0; i < hd; i++) {
                        dot += dyt[i] * v[i];
                        dv[i] += ar[s] * dyt[i];
                    }
                    dar[s] = dot;
                    rowdot += dot * ar[s];
                }
                const float *q = base + (size_t)t * C3;
                float *dq = dbase + (size_t)t * C3;
                for (int s = 0; s < T; s++) {
                    float ds = ar[s] * (dar[s] - rowdot) * scale;
                    const float *k = base + (size_t)s * C3 + C;
                    float *dk = dbase + (size_t)s * C3 + C;
                    for (int i = 0; i < hd; i++) {
                        dq[i] += ds * k[i];
                        dk[i] += ds * q[i];
                    }
                }
            }
        }
}

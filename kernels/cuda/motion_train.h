// kernels/cuda/motion_train.h: the rest of the motion predictor's device training path
// (models/motion_cuda.c): casts to bf16 for the autocast matmuls, the input
// interpolation, bias / position / residual adds and their gradients, the MSE loss with
// its gradient, the gradient-norm reduction, scaling and the fused AdamW update. f32
// unless named otherwise; bf16 buffers are uint16_t here (raw bits) so C code can hold
// them. Device pointers, the default stream. motion_train.cu holds the hand-written
// kernels (emulated in CI, tests/motion_cuda); lib_motion.cu the one cuBLAS call.
// Reductions are fixed-order (no atomics): results are run-to-run identical.
#pragma once
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// out (n) bf16 = round-to-nearest-even of x (n).
void cuda_smp_to_bf16(uint16_t *out, const float *x, int64_t n);
// K (B, T, D): K[b, t] = c[b, 0] + t / (T - 1) (c[b, T-1] - c[b, 0]) for clips c (B, T, D).
void cuda_smp_interp(float *K, const float *clips, int B, int T, int D);
// x (N, C) += v[(n % period), :] with v (period, C): period 1 adds a bias, T pos_emb.
void cuda_smp_add_rows(float *x, const float *v, int N, int C, int period);
// y (n) += x (n): the residual stream.
void cuda_smp_add(float *y, const float *x, int64_t n);
// dv (period, C) += sum over rows n with n % period == r of d (N, C), rows in order:
// period 1 is a bias gradient, T the pos_emb gradient.
void cuda_smp_col_sum(float *dv, const float *d, int N, int C, int period);
// The loss of smp_forward and its gradient (models/motion_predictor.c): for each row n of
// P, Y (N = B T, D), row_sum[n] = w_t sum_d (P - Y)^2 in double (t = n % T; w_t =
// w_end at t = 0 and T - 1, else 1) and dP = k_t (P - Y) with k_t = k_end or k_inner.
void cuda_smp_mse(double *row_sum, float *dP, const float *P, const float *Y, int N, int T, int D,
                  float w_end, float k_end, float k_inner);
// part[c] = sum of g[k]^2 (double) over chunk c = [c chunk, (c + 1) chunk) of g (n).
void cuda_smp_sumsq(double *part, const float *g, int64_t n, int64_t chunk);
// g (n) *= s; s == 0 writes zeros (also over NaN: zeroing a fresh buffer).
void cuda_smp_scale(float *g, float s, int64_t n);
// One torch.optim.AdamW update of n parameters (motion_optim.c's formulas, same float
// rounding of the scalars): p *= decay (1 - lr wd, or 1 without decay); m = m + w1 (g -
// m); v = v b2 + w2 g^2; p += step_size m / (sqrt(v) / bc2_sqrt + eps). pbf (n) gets
// the bf16 copy of the new p when not NULL (the weights the next forward multiplies).
void cuda_smp_adamw(float *p, uint16_t *pbf, const float *g, float *m, float *v, int64_t n,
                    float decay, float w1, float b2, float w2, float step_size, float bc2_sqrt,
                    float eps);

// lib_motion.cu (cuBLAS, not emulated). Row-major out (M, N) = op(a) @ op(b) + beta out,
// op(a) (M, K) is a (M, K) or, with trans_a, a (K, M) transposed; op(b) (K, N) is b (K, N)
// or, with trans_b, b (N, K) transposed. a and b bf16, out f32, f32 accumulation
// (cublasGemmEx, CUBLAS_COMPUTE_32F): torch.autocast(bfloat16)'s matmul, kept in f32.
void cuda_smp_matmul_bf16(float *out, const uint16_t *a, const uint16_t *b, int M, int N, int K,
                          int trans_a, int trans_b, float beta);

#ifdef __cplusplus
}
#endif

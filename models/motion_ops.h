// models/motion_ops.h: the layers of the motion predictor with their backward passes, on
// host f32 buffers (CPU, OpenMP + OpenBLAS). N rows, C channels; all row-major.
//
// Conventions of the backward functions: parameter gradients (dw, db) are ADDED to
// (gradient accumulation over micro-batches works); a layernorm's input gradient is ADDED
// (it feeds the residual stream); every other input gradient is WRITTEN. Reductions over
// rows run in a fixed order, so results do not depend on the thread count.
#pragma once
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

// out (N, OC) = x (N, IC) @ w^T + b; w (OC, IC), b (OC) or NULL.
void smp_linear_forward(float *out, const float *x, const float *w, const float *b, int N, int IC,
                        int OC);
// dx (N, IC) = dout @ w (skipped when dx is NULL); dw (OC, IC) += dout^T @ x;
// db (OC) += column sums of dout (skipped when db is NULL).
void smp_linear_backward(float *dx, float *dw, float *db, const float *dout, const float *x,
                         const float *w, int N, int IC, int OC);

// out (N, C) = (x - mean) * rstd * w + b per row; mean/rstd (N) are kept for backward.
void smp_layernorm_forward(float *out, float *mean, float *rstd, const float *x, const float *w,
                           const float *b, int N, int C, float eps);
// dx (N, C) += ...; dw, db (C) += ...
void smp_layernorm_backward(float *dx, float *dw, float *db, const float *dout, const float *x,
                            const float *w, const float *mean, const float *rstd, int N, int C);

// GELU, exact: 0.5 x (1 + erf(x / sqrt 2)). out and x (n).
void smp_gelu_forward(float *out, const float *x, size_t n);
// dx (n) = dout * gelu'(x).
void smp_gelu_backward(float *dx, const float *dout, const float *x, size_t n);

// Multi-head self-attention over T frames, no mask. qkv (B, T, 3C) holds [q | k | v],
// head h at columns h*hd .. h*hd + hd - 1 of each; att (B, H, T, T) = softmax(q k^T /
// sqrt(hd)) over the last axis (kept for backward); out (B, T, C).
void smp_attention_forward(float *out, float *att, const float *qkv, int B, int T, int C, int H);
// dqkv (B, T, 3C) written from dout (B, T, C); datt (B, H, T, T) is scratch.
void smp_attention_backward(float *dqkv, float *datt, const float *dout, const float *qkv,
                            const float *att, int B, int T, int C, int H);

#ifdef __cplusplus
}
#endif

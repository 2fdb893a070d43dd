// kernels/cuda/motion_kernels.h: CUDA kernels of the motion predictor's training path
// (models/motion_ops.h is the CPU reference with the same shapes and conventions):
// LayerNorm forward (keeping mean/rstd) and backward, exact GELU forward and backward,
// multi-head self-attention over a clip's frames forward and backward. f32, device
// pointers, the default stream. Defined in motion.cu, which also builds for the
// emulation runtime (tests/motion/test_motion_cuda.c checks it against the CPU ops).
// Matrix products of the model go to cuBLAS; they are not here.
#pragma once
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// out (N, C) = (x - mean) * rstd * w + b; mean, rstd (N) written.
void cuda_smp_layernorm_forward(float *out, float *mean, float *rstd, const float *x,
                                const float *w, const float *b, int N, int C, float eps);
// dx (N, C) += ...; dw, db (C) += ... (each column summed over rows in order: deterministic).
void cuda_smp_layernorm_backward(float *dx, float *dw, float *db, const float *dout, const float *x,
                                 const float *w, const float *mean, const float *rstd, int N,
                                 int C);
void cuda_smp_gelu_forward(float *out, const float *x, int64_t n);
void cuda_smp_gelu_backward(float *dx, const float *dout, const float *x, int64_t n);
// qkv (B, T, 3C), att (B, H, T, T) kept, out (B, T, C). One block per (clip, head): meant
// for the predictor's short clips (T up to a few dozen frames).
void cuda_smp_attention_forward(float *out, float *att, const float *qkv, int B, int T, int C,
                                int H);
// dqkv (B, T, 3C) written; datt (B, H, T, T) scratch. No atomics: deterministic.
void cuda_smp_attention_backward(float *dqkv, float *datt, const float *dout, const float *qkv,
                                 const float *att, int B, int T, int C, int H);

#ifdef __cplusplus
}
#endif

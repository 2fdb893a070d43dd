// kernels/cuda/kernels.h: hand-written CUDA pieces that other CUDA code builds on
// (lib_gemm.cu's conv2d and linear), plus the launch-error hook. Plain C declarations:
// the definitions live in emulatable .cu files, so tests also run them emulated.
#pragma once
#include <stdint.h>

#include "../tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

// out (outer, C, inner) += b (C), in place; C = numel(b), outer = numel(out) / (C*inner).
// linear: inner = 1; conv2d: out (N, Co, Ho*Wo), inner = Ho*Wo.
void cuda_bias_add(Tensor *out, const Tensor *b, int64_t inner);

// col (N, Ci*k*k, Ho*Wo) from x (N, Ci, H, W): row (ci*k + ky)*k + kx, column oy*Wo + ox
// holds x[n, ci, oy*stride - pad + ky, ox*stride - pad + kx] (0 outside the image).
// Ho = (H + 2*pad - k)/stride + 1, same for Wo. col and x have the same dtype.
void cuda_im2col(Tensor *col, const Tensor *x, int k, int stride, int pad);

// Aborts with file, line and the CUDA error if the last kernel launch failed
// (lib_runtime.cu). With STORY_CUDA_SYNC=1 in the environment it also waits for the
// kernel, so asynchronous faults are reported at the launch that caused them.
void story_cuda_check_launch(const char *what, const char *file, int line);

#ifdef __cplusplus
}
#endif

// kernels/ops.h: every tensor op, declared once for both back ends.
//
// STORY_OPS below is the single list of op signatures. It is expanded three times:
//   op_<name>    the entry point models call; dispatches on the output's device
//   cpu_<name>   kernels/cpu/*.c: fp32 reference (OpenMP, BLAS for GEMMs)
//   cuda_<name>  kernels/cuda/*.cu: fp16/bf16 storage, fp32 accumulation, cuBLAS GEMMs
// Outputs are preallocated by the caller; ops check shapes and abort on a mismatch
// (a shape error is a bug in the model code, not bad user input).
// In-place use (out == x) is allowed for elementwise ops, softmax and the norms.
#pragma once
#include "tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

// One key/value segment of an attention call: (Bk, Lk, H*D) each, Bk == B or 1
// (1: the same tokens serve every batch item, e.g. a character bank).
typedef struct {
    const Tensor *k;
    const Tensor *v;
} KVSegment;

#define ATTN_MAX_SEGMENTS 16

// X(name, (parameters), (arguments), tensor whose device picks the back end)
#define STORY_OPS(X)                                                                          \
    /* out (M, N) = x (M, K) @ w^T + b; w is (N, K) as torch stores it, b (N) or NULL.   */ \
    /* x and out may have any leading dims; M = numel / K.                                */ \
    X(linear, (Tensor * out, const Tensor *x, const Tensor *w, const Tensor *b),             \
      (out, x, w, b), out)                                                                    \
    /* out (B, M, N) = alpha * a (B, M, K) @ b (B, K, N), or @ b^T with b (B, N, K).     */ \
    X(matmul, (Tensor * out, const Tensor *a, const Tensor *b, int trans_b, float alpha),    \
      (out, a, b, trans_b, alpha), out)                                                       \
    /* out (N, Co, Ho, Wo) = conv(x (N, Ci, H, W), w (Co, Ci, k, k)) + b (Co) or NULL;    */ \
    /* k in {1, 3}, stride in {1, 2}, symmetric zero padding. ws: scratch arena.          */ \
    X(conv2d,                                                                                \
      (Tensor * out, const Tensor *x, const Tensor *w, const Tensor *b, int stride, int pad, \
       Arena *ws),                                                                            \
      (out, x, w, b, stride, pad, ws), out)                                                   \
    /* x (N, C, ...) normalised over groups of C/groups channels; gamma, beta (C).        */ \
    X(group_norm,                                                                            \
      (Tensor * out, const Tensor *x, const Tensor *gamma, const Tensor *beta, int groups,   \
       float eps, int fuse_silu),                                                             \
      (out, x, gamma, beta, groups, eps, fuse_silu), out)                                     \
    /* x (..., C) normalised over the last dim; gamma, beta (C) or NULL.                  */ \
    X(layer_norm,                                                                            \
      (Tensor * out, const Tensor *x, const Tensor *gamma, const Tensor *beta, float eps),   \
      (out, x, gamma, beta, eps), out)                                                        \
    /* softmax over the last dim.                                                         */ \
    X(softmax, (Tensor * out, const Tensor *x), (out, x), out)                                \
    /* GELU: erf form (tanh_approx = 0) or the tanh approximation.                        */ \
    X(gelu, (Tensor * out, const Tensor *x, int tanh_approx), (out, x, tanh_approx), out)    \
    /* x * sigmoid(1.702 x) (CLIP).                                                       */ \
    X(quick_gelu, (Tensor * out, const Tensor *x), (out, x), out)                             \
    X(silu, (Tensor * out, const Tensor *x), (out, x), out)                                   \
    /* x (..., 2F) = [h, gate] -> out (..., F) = h * gelu_erf(gate) (diffusers GEGLU).    */ \
    X(geglu, (Tensor * out, const Tensor *x), (out, x), out)                                  \
    /* out (N, C, 2H, 2W) = nearest upsampling of x (N, C, H, W).                         */ \
    X(upsample_nearest2x, (Tensor * out, const Tensor *x), (out, x), out)                     \
    /* out = a + b, out = a * b: b has a's shape or broadcasts to it (numpy rules, b's   */ \
    /* shape right-aligned, size-1 dims repeat), e.g. (N, C, H, W) + (N, C, 1, 1).        */ \
    X(add, (Tensor * out, const Tensor *a, const Tensor *b), (out, a, b), out)                \
    X(mul, (Tensor * out, const Tensor *a, const Tensor *b), (out, a, b), out)                \
    /* out = alpha * x + beta (beta = 0 for a plain scale).                               */ \
    X(scale, (Tensor * out, const Tensor *x, float alpha, float beta), (out, x, alpha, beta), \
      out)                                                                                    \
    /* out (B, N, M) = x (B, M, N): the last two dims swapped (B may be 1).               */ \
    X(transpose, (Tensor * out, const Tensor *x), (out, x), out)                              \
    /* out (N, C) = rows idx[0..N-1] of x (M, C); x and out may have leading dims         */ \
    /* (M = numel(x) / C, N = numel(out) / C, C = the last dim of both). idx is a host    */ \
    /* int32 array of N values in [0, M); repeats allowed. Gathers sampled CSA tokens.    */ \
    X(gather_rows, (Tensor * out, const Tensor *x, const int32_t *idx), (out, x, idx), out)   \
    /* out = concat(a, b) along dim (all other dims equal).                               */ \
    X(concat, (Tensor * out, const Tensor *a, const Tensor *b, int dim), (out, a, b, dim),    \
      out)                                                                                    \
    /* out = a + t * (b - a).                                                             */ \
    X(lerp, (Tensor * out, const Tensor *a, const Tensor *b, float t), (out, a, b, t), out)   \
    /* diffusers get_timestep_embedding: out (N, dim) from timesteps t (N), f32, host.   */ \
    X(timestep_embedding,                                                                    \
      (Tensor * out, const float *t, int flip_sin_to_cos, float downscale_freq_shift,        \
       float max_period),                                                                     \
      (out, t, flip_sin_to_cos, downscale_freq_shift, max_period), out)                       \
    /* Multi-head scaled dot-product attention with keys/values given as segments.       */ \
    /* q (B, Lq, H*D); each segment's k, v (Bk, Lk_i, H*D) with Bk in {B, 1};            */ \
    /* out (B, Lq, H*D). Keys of all segments act as one sequence, in segment order.     */ \
    /* causal: query i sees keys j <= i (one segment, Lq == Lk). scale <= 0: 1/sqrt(D).  */ \
    /* Tiled with an online softmax: the (Lq, Lk) score matrix is never materialised.    */ \
    X(attention,                                                                             \
      (Tensor * out, const Tensor *q, const KVSegment *segs, int nsegs, int heads,          \
       int causal, float scale),                                                              \
      (out, q, segs, nsegs, heads, causal, scale), out)

#define STORY_DECLARE_OP(prefix, name, params) void prefix##_##name params;
#define STORY_DECL_OP_(name, params, args, dev) STORY_DECLARE_OP(op, name, params)
#define STORY_DECL_CPU_(name, params, args, dev) STORY_DECLARE_OP(cpu, name, params)
#define STORY_DECL_CUDA_(name, params, args, dev) STORY_DECLARE_OP(cuda, name, params)
STORY_OPS(STORY_DECL_OP_)
STORY_OPS(STORY_DECL_CPU_)
STORY_OPS(STORY_DECL_CUDA_)

// Number of threads the CPU kernels use (OpenMP); set once at start-up.
void cpu_set_threads(int n);
int cpu_threads(void);
// Row-major host f32 GEMM, C (M, N) = alpha * op(A) op(B) + beta * C, as cblas_sgemm but
// split over the CPU kernels' OpenMP threads with single-threaded BLAS per part (one thread
// pool on the cores: calling a threaded BLAS between OpenMP regions makes the two pools
// fight). For host code outside the ops (the motion predictor's training). Not from inside
// a parallel region.
void cpu_sgemm(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda,
               const float *B, int ldb, float beta, float *C, int ldc);

// 1 when this build has the CUDA back end and a device is usable.
int cuda_available(void);

#ifdef __cplusplus
}
#endif

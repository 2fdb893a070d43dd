// kernels/cuda/lib_motion.cu: the motion predictor's autocast matmul on cuBLAS
// (motion_train.h): bf16 operands, f32 output and accumulation. Real GPU only.
// Row-major out (M, N) = op(a) @ op(b) is the column-major out^T (N, M) = op(b)^T @
// op(a)^T; a row-major (R, C) buffer is the column-major (C, R) one with ld C.
#include "lib_cuda.cuh"
#include "motion_train.h"

extern "C" void cuda_smp_matmul_bf16(float *out, const uint16_t *a, const uint16_t *b, int M, int N,
                                     int K, int trans_a, int trans_b, float beta) {
    if (M <= 0 || N <= 0) return;
    if (K <= 0) {  // cuBLAS would leave out untouched; the empty product is 0
        if (beta == 0.0f) CUDA_CHECK(cudaMemset(out, 0, (size_t)M * N * sizeof(float)));
        return;
    }
    const float alpha = 1.0f;
    // b: row-major (K, N) is column-major (N, K), ld N, used as is; trans_b: (N, K)
    // row-major is column-major (K, N), ld K, transposed. Likewise a with (M, K).
    CUBLAS_CHECK(cublasGemmEx(story_cublas_handle(), trans_b ? CUBLAS_OP_T : CUBLAS_OP_N,
                              trans_a ? CUBLAS_OP_T : CUBLAS_OP_N, N, M, K, &alpha, b, CUDA_R_16BF,
                              trans_b ? K : N, a, CUDA_R_16BF, trans_a ? M : K, &beta, out,
                              CUDA_R_32F, N, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
}

// kernels/cuda/lib_gemm.cu: the GEMM ops on cuBLAS: linear, batched matmul, conv2d.
// Storage f16/bf16 (or f32 for tests) with fp32 accumulation (CUBLAS_COMPUTE_32F; for
// f32 that is plain SGEMM, no TF32, so results match the CPU at fp32 tolerances).
// cuBLAS is column-major and our tensors are row-major: a row-major (R, C) matrix is
// the column-major (C, R) one, so out = A @ B is computed as out^T = B^T @ A^T with
// the operands swapped and nothing transposed in memory.
#include <limits.h>

#include "../ops.h"
#include "kernels.h"
#include "lib_cuda.cuh"

static const char *kdesc_(const Tensor *t, int slot) {
    static char buf[4][96];
    return t ? tensor_desc(t, buf[slot & 3], sizeof buf[0]) : "(null)";
}

#define GCHECK(cond, fmt, ...)                                                  \
    do {                                                                        \
        if (!(cond)) STORY_FATAL("check failed: %s: " fmt, #cond, __VA_ARGS__); \
    } while (0)

static void gcheck_dev(const char *op, const char *what, const Tensor *t, DType dt) {
    GCHECK(t != NULL, "cuda_%s: %s is NULL", op, what);
    GCHECK(t->dev == DEV_CUDA && t->data && t->dtype == dt,
           "cuda_%s: %s is %s, expected a %s CUDA tensor", op, what, kdesc_(t, 0), dtype_name(dt));
}

static cudaDataType_t cuda_dtype(DType dt) {
    switch (dt) {
    case DT_F32: return CUDA_R_32F;
    case DT_F16: return CUDA_R_16F;
    case DT_BF16: return CUDA_R_16BF;
    }
    STORY_FATAL("unsupported dtype %d", (int)dt);
}

static int as_int(const char *op, int64_t v) {
    GCHECK(v >= 0 && v <= INT_MAX, "cuda_%s: dimension %lld exceeds cuBLAS's int range", op,
           (long long)v);
    return (int)v;
}

// Column-major C (m, n) = alpha * op(A) (m, k) @ op(B) (k, n), `batch` times with the
// given element strides (0 repeats the operand). All three share dtype dt.
static void gemm(const char *op, cublasOperation_t ta, cublasOperation_t tb, int64_t m, int64_t n,
                 int64_t k, float alpha, const void *A, int64_t lda, int64_t sa, const void *B,
                 int64_t ldb, int64_t sb, void *C, int64_t ldc, int64_t sc, int64_t batch,
                 DType dt) {
    if (m == 0 || n == 0 || batch == 0) return;
    const cudaDataType_t t = cuda_dtype(dt);
    const float beta = 0.0f;
    cublasHandle_t h = story_cublas_handle();
    if (k == 0) {  // cuBLAS would not touch C; the product of empty matrices is 0
        CUDA_CHECK(cudaMemset(C, 0, (size_t)(sc * (batch - 1) + ldc * n) * dtype_size(dt)));
        return;
    }
    if (batch == 1) {
        CUBLAS_CHECK(cublasGemmEx(h, ta, tb, as_int(op, m), as_int(op, n), as_int(op, k), &alpha, A,
                                  t, as_int(op, lda), B, t, as_int(op, ldb), &beta, C, t,
                                  as_int(op, ldc), CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
    } else {
        CUBLAS_CHECK(cublasGemmStridedBatchedEx(
            h, ta, tb, as_int(op, m), as_int(op, n), as_int(op, k), &alpha, A, t, as_int(op, lda),
            sa, B, t, as_int(op, ldb), sb, &beta, C, t, as_int(op, ldc), sc, as_int(op, batch),
            CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
    }
}

// out (M, N) = x (M, K) @ w^T + b. Column-major: out^T (N, M) = w (N, K) @ x^T (K, M),
// where w^T is how cuBLAS sees w's row-major (N, K) memory, hence op T on it.
void cuda_linear(Tensor *out, const Tensor *x, const Tensor *w, const Tensor *b) {
    GCHECK(out && x && w, "cuda_linear: %s", "out, x and w are required");
    const DType dt = out->dtype;
    gcheck_dev("linear", "out", out, dt);
    gcheck_dev("linear", "x", x, dt);
    gcheck_dev("linear", "w", w, dt);
    GCHECK(w->ndim == 2 && x->ndim >= 1 && out->ndim >= 1, "cuda_linear: w %s must be (N, K)",
           kdesc_(w, 0));
    const int64_t N = w->shape[0], K = w->shape[1];
    const int64_t M = K > 0 ? tensor_numel(x) / K : 0;
    GCHECK(
        x->shape[x->ndim - 1] == K && out->shape[out->ndim - 1] == N && tensor_numel(out) == M * N,
        "cuda_linear: x %s @ w %s^T does not fit out %s", kdesc_(x, 0), kdesc_(w, 1),
        kdesc_(out, 2));
    GCHECK(out->data != x->data, "cuda_linear: out %s aliases x", kdesc_(out, 0));
    if (b) {
        gcheck_dev("linear", "b", b, dt);
        GCHECK(tensor_numel(b) == N, "cuda_linear: bias %s must have %lld elements", kdesc_(b, 0),
               (long long)N);
    }
    gemm("linear", CUBLAS_OP_T, CUBLAS_OP_N, N, M, K, 1.0f, w->data, K, 0, x->data, K, 0, out->data,
         N, 0, 1, dt);
    if (b && M > 0) cuda_bias_add(out, b, 1);
}

// out (B, M, N) = alpha * a (B, M, K) @ b (B, K, N) [or b^T with b (B, N, K)].
// Leading dims are flattened into B; a or b may have a batch of 1 (used for every item).
void cuda_matmul(Tensor *out, const Tensor *a, const Tensor *b, int trans_b, float alpha) {
    GCHECK(out && a && b, "cuda_matmul: %s", "out, a and b are required");
    const DType dt = out->dtype;
    gcheck_dev("matmul", "out", out, dt);
    gcheck_dev("matmul", "a", a, dt);
    gcheck_dev("matmul", "b", b, dt);
    GCHECK(out->ndim >= 2 && a->ndim >= 2 && b->ndim >= 2,
           "cuda_matmul: a %s, b %s, out %s need 2+ dims", kdesc_(a, 0), kdesc_(b, 1),
           kdesc_(out, 2));
    const int64_t M = a->shape[a->ndim - 2], K = a->shape[a->ndim - 1];
    const int64_t N = trans_b ? b->shape[b->ndim - 2] : b->shape[b->ndim - 1];
    const int64_t Kb = trans_b ? b->shape[b->ndim - 1] : b->shape[b->ndim - 2];
    const int64_t B = M * N > 0 ? tensor_numel(out) / (M * N) : 0;
    const int64_t Ba = M * K > 0 ? tensor_numel(a) / (M * K) : B,
                  Bb = N * K > 0 ? tensor_numel(b) / (N * K) : B;
    GCHECK(Kb == K && out->shape[out->ndim - 2] == M && out->shape[out->ndim - 1] == N &&
               (Ba == B || Ba == 1) && (Bb == B || Bb == 1),
           "cuda_matmul: a %s @ b %s%s does not fit out %s", kdesc_(a, 0), kdesc_(b, 1),
           trans_b ? "^T" : "", kdesc_(out, 2));
    GCHECK(out->data != a->data && out->data != b->data, "cuda_matmul: out %s aliases an input",
           kdesc_(out, 0));
    // out^T (N, M) = op(b^T) (N, K) @ a^T (K, M).
    gemm("matmul", trans_b ? CUBLAS_OP_T : CUBLAS_OP_N, CUBLAS_OP_N, N, M, K, alpha, b->data,
         trans_b ? K : N, Bb == 1 ? 0 : N * K, a->data, K, Ba == 1 ? 0 : M * K, out->data, N, M * N,
         B, dt);
}

// conv2d as GEMM per image: out[n] (Co, P) = w (Co, K) @ col[n] (K, P) with P = Ho*Wo,
// K = Ci*k*k; column-major: out[n]^T (P, Co) = col[n]^T (P, K) @ w^T (K, Co).
// A 1x1 stride-1 unpadded conv needs no im2col: col[n] is x[n] itself.
void cuda_conv2d(Tensor *out, const Tensor *x, const Tensor *w, const Tensor *b, int stride,
                 int pad, Arena *ws) {
    GCHECK(out && x && w, "cuda_conv2d: %s", "out, x and w are required");
    const DType dt = out->dtype;
    gcheck_dev("conv2d", "out", out, dt);
    gcheck_dev("conv2d", "x", x, dt);
    gcheck_dev("conv2d", "w", w, dt);
    GCHECK(x->ndim == 4 && w->ndim == 4 && out->ndim == 4 && w->shape[2] == w->shape[3] &&
               stride > 0 && pad >= 0,
           "cuda_conv2d: x %s, w %s, out %s, stride %d, pad %d", kdesc_(x, 0), kdesc_(w, 1),
           kdesc_(out, 2), stride, pad);
    const int64_t N = x->shape[0], Ci = x->shape[1], H = x->shape[2], W = x->shape[3];
    const int64_t Co = w->shape[0], k = w->shape[2];
    const int64_t Ho = (H + 2 * pad - k) / stride + 1, Wo = (W + 2 * pad - k) / stride + 1;
    GCHECK(w->shape[1] == Ci && out->shape[0] == N && out->shape[1] == Co && out->shape[2] == Ho &&
               out->shape[3] == Wo && Ho > 0 && Wo > 0,
           "cuda_conv2d: x %s * w %s (stride %d, pad %d) does not fit out %s", kdesc_(x, 0),
           kdesc_(w, 1), stride, pad, kdesc_(out, 2));
    GCHECK(out->data != x->data, "cuda_conv2d: out %s aliases x", kdesc_(out, 0));
    if (b) {
        gcheck_dev("conv2d", "b", b, dt);
        GCHECK(tensor_numel(b) == Co, "cuda_conv2d: bias %s must have %lld elements", kdesc_(b, 0),
               (long long)Co);
    }
    const int64_t P = Ho * Wo, K = Ci * k * k;
    if (N == 0 || P == 0 || Co == 0) return;
    const size_t esz = dtype_size(dt);
    if (k == 1 && stride == 1 && pad == 0) {
        gemm("conv2d", CUBLAS_OP_N, CUBLAS_OP_N, P, Co, K, 1.0f, x->data, P, K * P, w->data, K, 0,
             out->data, P, Co * P, N, dt);
    } else {
        // im2col for as many images at once as the workspace holds (at least one).
        const size_t per_image = (size_t)(K * P) * esz;
        size_t mark = 0, avail = 0;
        if (ws) {
            GCHECK(ws->dev == DEV_CUDA,
                   "cuda_conv2d: workspace arena is on device %d, expected CUDA", (int)ws->dev);
            mark = arena_mark(ws);
            const size_t start = (mark + 255) & ~(size_t)255;
            avail = ws->cap > start ? ws->cap - start : 0;
        }
        int64_t chunk = (int64_t)(avail / per_image);
        void *col_mem = NULL, *owned = NULL;
        if (chunk >= 1) {
            if (chunk > N) chunk = N;
            col_mem = arena_alloc(ws, (size_t)chunk * per_image);
        } else {  // no or too small a workspace: a stream-ordered allocation for one image
            chunk = 1;
            CUDA_CHECK(cudaMallocAsync(&owned, per_image, 0));
            col_mem = owned;
        }
        for (int64_t n0 = 0; n0 < N; n0 += chunk) {
            const int64_t nb = N - n0 < chunk ? N - n0 : chunk;
            const int64_t xs_shape[4] = {nb, Ci, H, W}, col_shape[3] = {nb, K, P};
            Tensor xs = tensor_view((char *)x->data + (size_t)(n0 * Ci * H * W) * esz, dt, DEV_CUDA,
                                    4, xs_shape);
            Tensor col = tensor_view(col_mem, dt, DEV_CUDA, 3, col_shape);
            cuda_im2col(&col, &xs, (int)k, stride, pad);
            gemm("conv2d", CUBLAS_OP_N, CUBLAS_OP_N, P, Co, K, 1.0f, col_mem, P, K * P, w->data, K,
                 0, (char *)out->data + (size_t)(n0 * Co * P) * esz, P, Co * P, nb, dt);
        }
        if (owned) CUDA_CHECK(cudaFreeAsync(owned, 0));
        if (ws) arena_release(ws, mark);
    }
    if (b) {
        const int64_t o_shape[3] = {N, Co, P};
        Tensor o = tensor_view(out->data, dt, DEV_CUDA, 3, o_shape);
        cuda_bias_add(&o, b, P);
    }
}

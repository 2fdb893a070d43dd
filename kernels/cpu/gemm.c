// kernels/cpu/gemm.c: linear and batched matmul on OpenBLAS.
#include <omp.h>

#include "cpu_internal.h"

// out (M, N) = x (M, K) @ w^T + b. The bias is written first and the GEMM accumulates
// onto it (beta = 1): OpenBLAS would otherwise spend the same pass zeroing C.
void cpu_linear(Tensor *out, const Tensor *x, const Tensor *w, const Tensor *b) {
    CPU_CHECK_F32("linear", out);
    CPU_CHECK_F32("linear", x);
    CPU_CHECK_F32("linear", w);
    CPU_CHECK_SHAPES("linear", w->ndim == 2 && x->shape[x->ndim - 1] == w->shape[1], x, w,
                     "x's last dim must equal w's in-features (w is (out, in))");
    int64_t K = w->shape[1], N = w->shape[0], M = cpu_rows(x);
    CPU_CHECK_SHAPES("linear", out->shape[out->ndim - 1] == N && cpu_rows(out) == M, out, x,
                     "out must be (..., N) with x's leading dims");
    if (b) {
        CPU_CHECK_F32("linear", b);
        CPU_CHECK_SHAPES("linear", tensor_numel(b) == N, b, w, "bias must have w's out-features");
    }
    CPU_CHECK(out->data != x->data, "linear: out must not alias x");
    cpu_sgemm_bias(0, 1, (int)M, (int)N, (int)K, 1.0f, x->data, (int)K, w->data, (int)K, 0.0f, out->data, (int)N,
                   b ? (const float *)b->data : NULL, NULL);
}

// Leading dims of a (.., M, K) tensor as one batch count.
static int64_t batch_of(const Tensor *t) {
    int64_t n = 1;
    for (int i = 0; i < t->ndim - 2; i++) n *= t->shape[i];
    return n;
}

// out (B, M, N) = alpha * a (B, M, K) @ b (B, K, N) [or b^T with b (B, N, K)].
// b may have batch 1 (shared by every batch item).
void cpu_matmul(Tensor *out, const Tensor *a, const Tensor *b, int trans_b, float alpha) {
    CPU_CHECK_F32("matmul", out);
    CPU_CHECK_F32("matmul", a);
    CPU_CHECK_F32("matmul", b);
    CPU_CHECK_SHAPES("matmul", a->ndim >= 2 && b->ndim >= 2 && out->ndim >= 2, a, b,
                     "operands need at least 2 dims");
    int64_t M = a->shape[a->ndim - 2], K = a->shape[a->ndim - 1];
    int64_t bk = trans_b ? b->shape[b->ndim - 1] : b->shape[b->ndim - 2];
    int64_t N = trans_b ? b->shape[b->ndim - 2] : b->shape[b->ndim - 1];
    int64_t B = batch_of(a), Bb = batch_of(b);
    CPU_CHECK_SHAPES("matmul", bk == K, a, b, "inner dims differ");
    CPU_CHECK_SHAPES("matmul", Bb == B || Bb == 1, a, b, "batch dims differ");
    CPU_CHECK_SHAPES("matmul",
                     out->shape[out->ndim - 2] == M && out->shape[out->ndim - 1] == N && batch_of(out) == B,
                     out, a, "out must be (B, M, N)");
    CPU_CHECK(out->data != a->data && out->data != b->data, "matmul: out must not alias an input");
    const float *pa = a->data, *pb = b->data;
    float *po = out->data;
    int64_t sb = Bb == 1 ? 0 : K * N;
    int ldb = (int)(trans_b ? K : N);
    double flops = 2.0 * M * N * K;
    int nt = cpu_threads();
    if (B >= nt && flops < 5e7) {
        // Many small products: one per thread at a time.
        int prev = cpu_blas_single_begin();
#pragma omp parallel for schedule(dynamic, 1)
        for (int64_t i = 0; i < B; i++)
            cpu_sgemm_serial(0, trans_b, (int)M, (int)N, (int)K, alpha, pa + i * M * K, (int)K, pb + i * sb, ldb,
                             0.0f, po + i * M * N, (int)N);
        cpu_blas_single_end(prev);
    } else {
        for (int64_t i = 0; i < B; i++)
            cpu_sgemm(0, trans_b, (int)M, (int)N, (int)K, alpha, pa + i * M * K, (int)K, pb + i * sb, ldb, 0.0f,
                      po + i * M * N, (int)N);
    }
}

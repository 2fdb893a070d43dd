// kernels/cpu/threads.c: thread counts for OpenMP and OpenBLAS, the GEMM helper every
// CPU op uses, and per-thread scratch buffers.
//
// Threading model: OpenMP owns the cores. GEMMs big enough to share are split over the
// OpenMP threads (along M, or N when M is small) and each part runs single-threaded
// OpenBLAS. On a 2-core machine that is ~25% faster than OpenBLAS's own threading for
// SD shapes (4096 x 320 x 320), and it never has two thread pools spinning on the
// same cores.
#include <cblas.h>
#include <omp.h>
#include <stdlib.h>

#include "cpu_internal.h"

// Declared by OpenBLAS's cblas.h; repeated so a netlib-style cblas.h also compiles.
void openblas_set_num_threads(int num_threads);
int openblas_get_num_threads(void);

static int g_threads = 0;  // 0: not set yet, use omp_get_max_threads()

void cpu_set_threads(int n) {
    if (n < 1) n = 1;
    g_threads = n;
    omp_set_num_threads(n);
    openblas_set_num_threads(n);
}

int cpu_threads(void) { return g_threads > 0 ? g_threads : omp_get_max_threads(); }

int cpu_blas_single_begin(void) {
    int prev = openblas_get_num_threads();
    if (prev != 1) openblas_set_num_threads(1);
    return prev;
}

void cpu_blas_single_end(int prev) {
    if (prev != 1) openblas_set_num_threads(prev);
}

void cpu_sgemm_serial(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A,
                      int lda, const float *B, int ldb, float beta, float *C, int ldc) {
    if (M <= 0 || N <= 0) return;
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans,
                M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

// C rows [m0, m1) x columns [n0, n1) = bias: bias_n[n] per column or bias_m[m] per row.
static void fill_bias(float *C, int ldc, int m0, int m1, int n0, int n1, const float *bias_n, const float *bias_m) {
    for (int m = m0; m < m1; m++) {
        float *row = C + (size_t)m * ldc;
        if (bias_n) {
            for (int n = n0; n < n1; n++) row[n] = bias_n[n];
        } else {
            float v = bias_m[m];
            for (int n = n0; n < n1; n++) row[n] = v;
        }
    }
}

// One part of a split GEMM: rows [m0, m1) or columns [n0, n1) of C.
static void sgemm_part(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda,
                       const float *B, int ldb, float beta, float *C, int ldc, const float *bias_n,
                       const float *bias_m, int split_m, int s, int e) {
    int m0 = split_m ? s : 0, m1 = split_m ? e : M, n0 = split_m ? 0 : s, n1 = split_m ? N : e;
    if (bias_n || bias_m) {  // the GEMM then accumulates onto the bias (beta = 1)
        fill_bias(C, ldc, m0, m1, n0, n1, bias_n, bias_m);
        beta = 1.0f;
    }
    const float *a = trans_a ? A + m0 : A + (size_t)m0 * lda;
    const float *b = trans_b ? B + (size_t)n0 * ldb : B + n0;
    cpu_sgemm_serial(trans_a, trans_b, m1 - m0, n1 - n0, K, alpha, a, lda, b, ldb, beta, C + (size_t)m0 * ldc + n0,
                     ldc);
}

void cpu_sgemm_bias(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda,
                    const float *B, int ldb, float beta, float *C, int ldc, const float *bias_n,
                    const float *bias_m) {
    int nt = cpu_threads();
    double flops = 2.0 * M * N * K;
    if (M <= 0 || N <= 0) return;
    // Each part packs the other operand whole: splitting M repeats B's packing (K x N) per
    // part, splitting N repeats A's (M x K), so split the longer side.
    int split_m = M >= N;
    if (omp_in_parallel()) {  // the caller's region owns the threads (and BLAS's setting)
        sgemm_part(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, bias_n, bias_m, 1, 0, M);
        return;
    }
    if (nt <= 1 || flops < 4e6) {
        // Small: one thread. OpenBLAS's pool stays asleep too; woken, its threads would
        // spin for a while and compete with the next OpenMP region for the cores.
        int prev = cpu_blas_single_begin();
        sgemm_part(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, bias_n, bias_m, 1, 0, M);
        cpu_blas_single_end(prev);
        return;
    }
    // nt parts, rounded to 16 rows/columns so the BLAS micro-kernel sees full panels. Each thread writes the bias of its own part right
    // before its GEMM, while that part is in its cache.
    int len = split_m ? M : N;
    int part = (len + nt - 1) / nt;
    part = (part + 15) & ~15;
    int nparts = (len + part - 1) / part;
    int prev = cpu_blas_single_begin();
#pragma omp parallel for num_threads(nt) schedule(static, 1)
    for (int p = 0; p < nparts; p++) {
        int s = p * part, e = len - s < part ? len : s + part;
        sgemm_part(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, bias_n, bias_m, split_m, s, e);
    }
    cpu_blas_single_end(prev);
}

void cpu_sgemm(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda,
               const float *B, int ldb, float beta, float *C, int ldc) {
    cpu_sgemm_bias(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, NULL, NULL);
}

// ---- per-thread scratch ----------------------------------------------------------------
#define CPU_SCRATCH_SLOTS 4
static _Thread_local float *t_scratch[CPU_SCRATCH_SLOTS];
static _Thread_local size_t t_scratch_n[CPU_SCRATCH_SLOTS];

float *cpu_scratch(int slot, size_t nfloats) {
    CPU_CHECK(slot >= 0 && slot < CPU_SCRATCH_SLOTS, "cpu_scratch: slot %d out of range", slot);
    if (t_scratch_n[slot] < nfloats) {
        free(t_scratch[slot]);
        size_t bytes = ((nfloats * sizeof(float)) + 63) & ~(size_t)63;
        t_scratch[slot] = aligned_alloc(64, bytes);
        if (!t_scratch[slot]) STORY_FATAL("cpu_scratch: out of memory for %zu bytes", bytes);
        t_scratch_n[slot] = nfloats;
    }
    return t_scratch[slot];
}

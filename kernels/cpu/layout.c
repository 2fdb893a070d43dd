// kernels/cpu/layout.c: ops that only move data. The transpose of the last two dims: a
// plain strided copy touches a new cache line per element on one side; 32x32 tiles
// (4 KiB each way) keep both the rows read and the rows written in L1 while a tile is
// moved. gather_rows: one memcpy per row, rows spread over threads when there are many.
#include <omp.h>

#include "cpu_internal.h"

#define TR_TILE 32
#define TR_PAR_MIN 32768
#define GATHER_PAR_MIN 65536  // floats: below this a thread team costs more than it saves

// out (B, N, M) = x (B, M, N).
void cpu_transpose(Tensor *out, const Tensor *x) {
    CPU_CHECK_F32("transpose", out);
    CPU_CHECK_F32("transpose", x);
    CPU_CHECK_SHAPES("transpose",
                     x->ndim == 3 && out->ndim == 3 && out->shape[0] == x->shape[0] &&
                         out->shape[1] == x->shape[2] && out->shape[2] == x->shape[1],
                     out, x, "x must be (B, M, N) and out (B, N, M)");
    CPU_CHECK(out->data != x->data, "transpose: out must not alias x");
    const int64_t B = x->shape[0], M = x->shape[1], N = x->shape[2];
    const int64_t tm = (M + TR_TILE - 1) / TR_TILE, tn = (N + TR_TILE - 1) / TR_TILE;
    const int64_t ntiles = B * tm * tn;
    const float *xd = x->data;
    float *od = out->data;
    // One task per (batch, tile row, tile column): B = 1 still spreads over threads.
#pragma omp parallel for schedule(static) if (B * M * N > TR_PAR_MIN)
    for (int64_t t = 0; t < ntiles; t++) {
        const int64_t b = t / (tm * tn), r = t - b * tm * tn;
        const int64_t i0 = (r / tn) * TR_TILE, j0 = (r % tn) * TR_TILE;
        const int64_t i1 = i0 + TR_TILE < M ? i0 + TR_TILE : M;
        const int64_t j1 = j0 + TR_TILE < N ? j0 + TR_TILE : N;
        const float *xs = xd + b * M * N;
        float *os = od + b * M * N;
        // Write rows of out (contiguous in i), read down columns of the tile.
        for (int64_t j = j0; j < j1; j++)
            for (int64_t i = i0; i < i1; i++) os[j * M + i] = xs[i * N + j];
    }
}

// out (N, C) = rows idx[0..N-1] of x (M, C).
void cpu_gather_rows(Tensor *out, const Tensor *x, const int32_t *idx) {
    CPU_CHECK_F32("gather_rows", out);
    CPU_CHECK_F32("gather_rows", x);
    const int64_t C = x->shape[x->ndim - 1];
    CPU_CHECK_SHAPES("gather_rows", C > 0 && out->shape[out->ndim - 1] == C, out, x,
                     "x must be (..., C) and out (..., C) with the same C > 0");
    const int64_t M = cpu_rows(x), N = cpu_rows(out);
    CPU_CHECK(N == 0 || idx != NULL, "gather_rows: idx is NULL for %lld rows", (long long)N);
    const float *xd = x->data;
    float *od = out->data;
    const uintptr_t o0 = (uintptr_t)od, x0 = (uintptr_t)xd;
    CPU_CHECK(o0 + (uintptr_t)(N * C) * sizeof(float) <= x0 ||
                  x0 + (uintptr_t)(M * C) * sizeof(float) <= o0,
              "gather_rows: out overlaps x");
    for (int64_t i = 0; i < N; i++)
        CPU_CHECK(idx[i] >= 0 && idx[i] < M, "gather_rows: idx[%lld] = %d outside [0, %lld)",
                  (long long)i, (int)idx[i], (long long)M);
    const size_t row_bytes = (size_t)C * sizeof(float);
#pragma omp parallel for schedule(static) if (N * C > GATHER_PAR_MIN)
    for (int64_t i = 0; i < N; i++) memcpy(od + i * C, xd + (int64_t)idx[i] * C, row_bytes);
}

// kernels/cpu/layout.c: transpose of the last two dims. A plain strided copy touches a
// new cache line per element on one side; 32x32 tiles (4 KiB each way) keep both the
// rows read and the rows written in L1 while a tile is moved.
#include <omp.h>

#include "cpu_internal.h"

#define TR_TILE 32
#define TR_PAR_MIN 32768

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

// kernels/cuda/gather.cu: out (N, C) = rows idx[0..N-1] of x (M, C), any storage dtype.
// A row is moved as raw bytes, so f32, f16 and bf16 are the same kernel: 16-byte packs
// when both row starts stay 16-byte aligned, else 4- or 2-byte words.
// The indices live on the host (CSA draws its sampled-token sets there); like the
// timesteps of embed.cu they travel by value inside the kernel's arguments, so no
// device buffer and no host-to-device copy is needed. N larger than one chunk is done
// in several launches.
#include "common.cuh"

// 512 indices = 2 KiB of arguments, well inside the 4 KiB every architecture accepts.
#define GATHER_IDX_PER_LAUNCH 512

struct GatherIdx {
    int32_t i[GATHER_IDX_PER_LAUNCH];
};

// A 16-byte unit for the packed path (alignas keeps it one vector access).
struct alignas(16) GatherU16B {
    uint32_t w[4];
};

// grid: (blocks along a row, rows of this launch). Block y copies row blockIdx.y of out
// (relative to this launch's first row) from row idx.i[blockIdx.y] of x; units of U.
template <typename U>
__global__ void gather_rows_kernel(U *out, const U *x, GatherIdx idx, int64_t row_units) {
    const int r = blockIdx.y;
    const U *src = x + (int64_t)idx.i[r] * row_units;
    U *dst = out + (int64_t)r * row_units;
    const int64_t stride = (int64_t)gridDim.x * blockDim.x;
    for (int64_t j = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; j < row_units; j += stride)
        dst[j] = src[j];
}

template <typename U>
static void launch_gather(void *out, const void *x, const GatherIdx &idx, int rows,
                          size_t row_bytes) {
    const int64_t units = (int64_t)(row_bytes / sizeof(U));
    const int threads = krow_threads(units, 256);
    int64_t gx = (units + threads - 1) / threads;
    if (gx > 64) gx = 64;  // the loop strides over the rest of a very long row
    const dim3 grid((unsigned)gx, (unsigned)rows), block((unsigned)threads);
    auto k = gather_rows_kernel<U>;
    KERNEL_LAUNCH(k, grid, block, 0, 0, (U *)out, (const U *)x, idx, units);
    KLAUNCH_CHECK("gather_rows");
}

void cuda_gather_rows(Tensor *out, const Tensor *x, const int32_t *idx) {
    kcheck_dev("gather_rows", "out", out);
    kcheck_dev("gather_rows", "x", x);
    const int64_t C = x->shape[x->ndim - 1];
    KCHECK(out->dtype == x->dtype && C > 0 && out->shape[out->ndim - 1] == C,
           "cuda_gather_rows: x %s must be (..., C) and out %s (..., C), same C > 0 and dtype",
           kdesc(x, 0), kdesc(out, 1));
    const int64_t M = tensor_numel(x) / C, N = tensor_numel(out) / C;
    const size_t esize = dtype_size(x->dtype), row_bytes = (size_t)C * esize;
    const uintptr_t o0 = (uintptr_t)out->data, x0 = (uintptr_t)x->data;
    KCHECK(o0 + (uintptr_t)N * row_bytes <= x0 || x0 + (uintptr_t)M * row_bytes <= o0,
           "cuda_gather_rows: out %s overlaps x %s", kdesc(out, 0), kdesc(x, 1));
    if (N == 0) return;
    KCHECK(idx != NULL, "cuda_gather_rows: idx is NULL for out %s", kdesc(out, 0));
    for (int64_t i = 0; i < N; i++)
        KCHECK(idx[i] >= 0 && idx[i] < M, "cuda_gather_rows: idx[%lld] = %d outside [0, %lld)",
               (long long)i, (int)idx[i], (long long)M);
    // The widest unit that divides the row and keeps every row start of both aligned.
    const int packed = row_bytes % 16 == 0 && kaligned16(out->data) && kaligned16(x->data);
    const int word = row_bytes % 4 == 0 && o0 % 4 == 0 && x0 % 4 == 0;
    for (int64_t r0 = 0; r0 < N; r0 += GATHER_IDX_PER_LAUNCH) {
        const int rows = (int)(N - r0 < GATHER_IDX_PER_LAUNCH ? N - r0 : GATHER_IDX_PER_LAUNCH);
        GatherIdx gi;
        for (int i = 0; i < GATHER_IDX_PER_LAUNCH; i++) gi.i[i] = i < rows ? idx[r0 + i] : 0;
        void *dst = (char *)out->data + (size_t)r0 * row_bytes;
        if (packed)
            launch_gather<GatherU16B>(dst, x->data, gi, rows, row_bytes);
        else if (word)
            launch_gather<uint32_t>(dst, x->data, gi, rows, row_bytes);
        else
            launch_gather<uint16_t>(dst, x->data, gi, rows, row_bytes);
    }
}

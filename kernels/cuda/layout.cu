// kernels/cuda/layout.cu: ops that only move data: concat along a dim, nearest 2x
// upsampling and the transpose of the last two dims. All are memory-bound: concat and
// upsampling move 16-byte packs when shapes allow, the transpose goes through a
// shared-memory tile so both its reads and its writes are coalesced.
#include "common.cuh"

// ---- concat -----------------------------------------------------------------------------

// out viewed as (outer, ai + bi), a as (outer, ai), b as (outer, bi); all sizes in units
// of V-element packs.
template <typename T, int V>
__global__ void concat_kernel(T *out, const T *a, const T *b, int64_t n_packs, int64_t ai,
                              int64_t bi) {
    const int64_t stride = kthread_count(), row = ai + bi;
    for (int64_t i = kthread_id(); i < n_packs; i += stride) {
        const int64_t o = i / row, r = i - o * row;
        const Pack<T, V> v =
            r < ai ? load_pack<T, V>(a, o * ai + r) : load_pack<T, V>(b, o * bi + (r - ai));
        store_pack<T, V>(out, i, v);
    }
}

template <typename T>
static void launch_concat(Tensor *out, const Tensor *a, const Tensor *b, int64_t ai, int64_t bi) {
    const int64_t n = tensor_numel(out);
    if (n == 0) return;
    constexpr int V = PackWidth<T>::value, THREADS = 256;
    T *o = (T *)out->data;
    const T *pa = (const T *)a->data, *pb = (const T *)b->data;
    if (ai % V == 0 && bi % V == 0 && kaligned16(o) && kaligned16(pa) && kaligned16(pb)) {
        auto k = concat_kernel<T, V>;
        KERNEL_LAUNCH(k, kgrid(n / V, THREADS), THREADS, 0, 0, o, pa, pb, n / V, ai / V, bi / V);
    } else {
        auto k = concat_kernel<T, 1>;
        KERNEL_LAUNCH(k, kgrid(n, THREADS), THREADS, 0, 0, o, pa, pb, n, ai, bi);
    }
    KLAUNCH_CHECK("concat");
}

void cuda_concat(Tensor *out, const Tensor *a, const Tensor *b, int dim) {
    kcheck_dev("concat", "out", out);
    kcheck_dev("concat", "a", a);
    kcheck_dev("concat", "b", b);
    const int nd = out->ndim;
    if (dim < 0) dim += nd;
    KCHECK(dim >= 0 && dim < nd && a->ndim == nd && b->ndim == nd && a->dtype == out->dtype &&
               b->dtype == out->dtype,
           "cuda_concat: dim %d of a %s, b %s into out %s", dim, kdesc(a, 0), kdesc(b, 1),
           kdesc(out, 2));
    int64_t ai = 1, bi = 1;
    for (int i = 0; i < nd; i++) {
        const int ok = i == dim ? out->shape[i] == a->shape[i] + b->shape[i]
                                : (out->shape[i] == a->shape[i] && out->shape[i] == b->shape[i]);
        KCHECK(ok, "cuda_concat: a %s and b %s do not concatenate along dim %d into out %s",
               kdesc(a, 0), kdesc(b, 1), dim, kdesc(out, 2));
        if (i >= dim) ai *= a->shape[i], bi *= b->shape[i];
    }
    KCHECK(out->data != a->data && out->data != b->data, "cuda_concat: out %s aliases an input",
           kdesc(out, 0));
    KDISPATCH(out->dtype, "concat", T, launch_concat<T>(out, a, b, ai, bi));
}

// ---- nearest 2x upsampling --------------------------------------------------------------

// x viewed as rows (N*C*H, W), P input columns per thread: input row r becomes output
// rows 2r and 2r+1 (each 2W long), every input element written twice per row.
// n_items = N*C*H*W / P; w_items = W / P.
template <typename T, int P>
__global__ void upsample2x_kernel(T *out, const T *x, int64_t n_items, int64_t w_items) {
    const int64_t stride = kthread_count();
    for (int64_t i = kthread_id(); i < n_items; i += stride) {
        const int64_t r = i / w_items, c = i - r * w_items;
        // An output row (2W elements) holds w_items packs of 2P.
        const Pack<T, P> in = load_pack<T, P>(x, i);
        Pack<T, 2 * P> o;
        for (int j = 0; j < P; j++) o.v[2 * j] = o.v[2 * j + 1] = in.v[j];
        store_pack<T, 2 * P>(out, (2 * r) * w_items + c, o);
        store_pack<T, 2 * P>(out, (2 * r + 1) * w_items + c, o);
    }
}

// Unaligned fallback: one element, four scalar stores.
template <typename T>
__global__ void upsample2x_scalar_kernel(T *out, const T *x, int64_t n, int64_t W) {
    const int64_t stride = kthread_count();
    for (int64_t i = kthread_id(); i < n; i += stride) {
        const int64_t r = i / W, c = i - r * W;
        const T v = x[i];
        T *o = out + (2 * r) * (2 * W) + 2 * c;
        o[0] = v, o[1] = v, o[2 * W] = v, o[2 * W + 1] = v;
    }
}

template <typename T>
static void launch_upsample(Tensor *out, const Tensor *x) {
    const int64_t n = tensor_numel(x), W = x->shape[3];
    if (n == 0) return;
    constexpr int P = PackWidth<T>::value / 2, THREADS = 256;
    T *o = (T *)out->data;
    const T *xi = (const T *)x->data;
    // Input packs of P elements need 8-byte alignment, output packs of 2P 16 bytes.
    if (W % P == 0 && kaligned16(o) && ((uintptr_t)xi % (P * sizeof(T))) == 0) {
        auto k = upsample2x_kernel<T, P>;
        KERNEL_LAUNCH(k, kgrid(n / P, THREADS), THREADS, 0, 0, o, xi, n / P, W / P);
    } else {
        auto k = upsample2x_scalar_kernel<T>;
        KERNEL_LAUNCH(k, kgrid(n, THREADS), THREADS, 0, 0, o, xi, n, W);
    }
    KLAUNCH_CHECK("upsample_nearest2x");
}

void cuda_upsample_nearest2x(Tensor *out, const Tensor *x) {
    kcheck_dev("upsample_nearest2x", "out", out);
    kcheck_dev("upsample_nearest2x", "x", x);
    KCHECK(x->ndim == 4 && out->ndim == 4 && out->dtype == x->dtype &&
               out->shape[0] == x->shape[0] && out->shape[1] == x->shape[1] &&
               out->shape[2] == 2 * x->shape[2] && out->shape[3] == 2 * x->shape[3],
           "cuda_upsample_nearest2x: x %s must be (N, C, H, W) and out %s (N, C, 2H, 2W)",
           kdesc(x, 0), kdesc(out, 1));
    KCHECK(out->data != x->data, "cuda_upsample_nearest2x: out %s aliases x", kdesc(out, 0));
    KDISPATCH(out->dtype, "upsample_nearest2x", T, launch_upsample<T>(out, x));
}

// ---- transpose of the last two dims -----------------------------------------------------

// One block moves a TR_TILE x TR_TILE tile of x (B, M, N) into out (B, N, M): threads
// (TR_TILE, TR_ROWS) read tile rows along N (coalesced), then write tile rows along M
// (coalesced) from the transposed shared tile. The tile is TR_TILE + 1 wide so a column
// read (stride TR_TILE + 1 words for 4-byte T) hits 32 different banks.
// grid: (ceil(N / TR_TILE), ceil(M / TR_TILE), B).
#define TR_TILE 32
#define TR_ROWS 8

template <typename T>
__global__ void transpose_kernel(T *out, const T *x, int64_t M, int64_t N) {
    __shared__ T tile[TR_TILE][TR_TILE + 1];
    const int64_t b = blockIdx.z;
    const int64_t i0 = (int64_t)blockIdx.y * TR_TILE, j0 = (int64_t)blockIdx.x * TR_TILE;
    const T *xs = x + b * M * N;
    T *os = out + b * M * N;
    const int tx = threadIdx.x, ty = threadIdx.y;
    // Read: element (i0 + r, j0 + tx) of x into tile[r][tx].
    for (int r = ty; r < TR_TILE; r += TR_ROWS) {
        const int64_t i = i0 + r, j = j0 + tx;
        if (i < M && j < N) tile[r][tx] = xs[i * N + j];
    }
    __syncthreads();
    // Write: out (j0 + r, i0 + tx) = x (i0 + tx, j0 + r) = tile[tx][r].
    for (int r = ty; r < TR_TILE; r += TR_ROWS) {
        const int64_t j = j0 + r, i = i0 + tx;
        if (j < N && i < M) os[j * M + i] = tile[tx][r];
    }
}

template <typename T>
static void launch_transpose(Tensor *out, const Tensor *x) {
    const int64_t B = x->shape[0], M = x->shape[1], N = x->shape[2];
    if (B * M * N == 0) return;
    const int64_t gx = (N + TR_TILE - 1) / TR_TILE, gy = (M + TR_TILE - 1) / TR_TILE;
    KCHECK(gy <= 65535 && B <= 65535 && gx <= 0x7fffffff,
           "cuda_transpose: x %s exceeds the launch grid", kdesc(x, 0));
    const dim3 grid((unsigned)gx, (unsigned)gy, (unsigned)B), block(TR_TILE, TR_ROWS);
    auto k = transpose_kernel<T>;
    KERNEL_LAUNCH(k, grid, block, 0, 0, (T *)out->data, (const T *)x->data, M, N);
    KLAUNCH_CHECK("transpose");
}

void cuda_transpose(Tensor *out, const Tensor *x) {
    kcheck_dev("transpose", "out", out);
    kcheck_dev("transpose", "x", x);
    KCHECK(x->ndim == 3 && out->ndim == 3 && out->dtype == x->dtype &&
               out->shape[0] == x->shape[0] && out->shape[1] == x->shape[2] &&
               out->shape[2] == x->shape[1],
           "cuda_transpose: x %s must be (B, M, N) and out %s (B, N, M)", kdesc(x, 0),
           kdesc(out, 1));
    KCHECK(out->data != x->data, "cuda_transpose: out %s aliases x", kdesc(out, 0));
    KDISPATCH(out->dtype, "transpose", T, launch_transpose<T>(out, x));
}

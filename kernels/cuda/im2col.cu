// kernels/cuda/im2col.cu: unfolds conv2d input patches into a matrix so a convolution
// becomes a GEMM (lib_gemm.cu). col (N, Ci*k*k, Ho*Wo) from x (N, Ci, H, W).
#include "common.cuh"

// Block row blockIdx.x is one col row (img, ci, ky, kx); its threads walk the Ho*Wo
// output pixels, so stores are coalesced (and loads too for stride 1), and the only
// per-element index math is a 32-bit divide by Wo.
template <typename T>
__global__ void im2col_kernel(T *col, const T *x, int Ci, int H, int W, int k, int stride, int pad,
                              int Ho, int Wo) {
    const int P = Ho * Wo, K = Ci * k * k;
    const int64_t rowi = blockIdx.x;
    const int kr = (int)(rowi % K), img = (int)(rowi / K);
    const int kx = kr % k, ky = kr / k % k, ci = kr / (k * k);
    const T *xp = x + ((int64_t)img * Ci + ci) * H * W;
    T *cp = col + rowi * P;
    const T zero = from_f32<T>(0.0f);
    for (int p = blockIdx.y * blockDim.x + threadIdx.x; p < P; p += gridDim.y * blockDim.x) {
        const int oy = p / Wo, ox = p - oy * Wo;
        const int iy = oy * stride - pad + ky, ix = ox * stride - pad + kx;
        cp[p] = (iy >= 0 && iy < H && ix >= 0 && ix < W) ? xp[(int64_t)iy * W + ix] : zero;
    }
}

void cuda_im2col(Tensor *col, const Tensor *x, int k, int stride, int pad) {
    kcheck_dev("im2col", "col", col);
    kcheck_dev("im2col", "x", x);
    KCHECK(x->ndim == 4 && k > 0 && stride > 0 && pad >= 0,
           "cuda_im2col: x %s, k %d, stride %d, pad %d", kdesc(x, 0), k, stride, pad);
    const int64_t N = x->shape[0], Ci = x->shape[1], H = x->shape[2], W = x->shape[3];
    const int64_t Ho = (H + 2 * pad - k) / stride + 1, Wo = (W + 2 * pad - k) / stride + 1;
    KCHECK(Ho > 0 && Wo > 0 && H * W <= 0x7fffffff && Ci * k * k <= 0x7fffffff,
           "cuda_im2col: x %s is smaller than the kernel (k %d, pad %d)", kdesc(x, 0), k, pad);
    KCHECK(col->dtype == x->dtype && col->ndim == 3 && col->shape[0] == N &&
               col->shape[1] == Ci * k * k && col->shape[2] == Ho * Wo,
           "cuda_im2col: col %s must be (%lld, %lld, %lld) for x %s", kdesc(col, 0), (long long)N,
           (long long)(Ci * k * k), (long long)(Ho * Wo), kdesc(x, 1));
    const int64_t n = tensor_numel(col);
    if (n == 0) return;
    const int64_t P = Ho * Wo, rows = N * Ci * k * k;
    const int threads = krow_threads(P, 256);
    int64_t ysplit = (P + threads * 4 - 1) / (threads * 4);  // ~4 pixels per thread
    ysplit = ysplit > 65535 ? 65535 : ysplit;
    KCHECK(rows <= 0x7fffffff, "cuda_im2col: col %s has too many rows", kdesc(col, 0));
    KDISPATCH(x->dtype, "im2col", T, {
        auto kern = im2col_kernel<T>;
        KERNEL_LAUNCH(kern, dim3((unsigned)rows, (unsigned)ysplit), threads, 0, 0, (T *)col->data,
                      (const T *)x->data, (int)Ci, (int)H, (int)W, k, stride, pad, (int)Ho,
                      (int)Wo);
    });
    KLAUNCH_CHECK("im2col");
}

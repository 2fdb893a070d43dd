// kernels/cpu/conv.c: 2-D convolution, NCHW, kernel 1 or 3, stride 1 or 2, zero padding.
//
// Three paths, all ending in OpenBLAS GEMMs:
//   1x1, stride 1, no padding: out[n] (Co, H*W) = w (Co, Ci) @ x[n] (Ci, H*W), no copies.
//   3x3, >= 16 channels in and out: Winograd (conv_winograd.c), 2.25x (stride 1) or 1.44x
//     (stride 2) fewer multiplications than the direct sum.
//   everything else: im2col per image and per block of output rows (the column buffer
//     stays in cache), then w (Co, Ci*k*k) @ col (Ci*k*k, rows*Wo).
// Work is split over OpenMP threads by (image, block) with single-threaded BLAS inside.
#include <omp.h>

#include "cpu_internal.h"

static void conv_fill_bias(float *o, int64_t Co, int64_t len, int64_t ldo, const float *bias) {
    for (int64_t c = 0; c < Co; c++) {
        float v = bias ? bias[c] : 0.0f, *row = o + c * ldo;
        for (int64_t i = 0; i < len; i++) row[i] = v;
    }
}

// ---- im2col ------------------------------------------------------------------------------
// col (Ci*k*k, rows*Wo) for output rows oy0 .. oy0+rows-1 of image x (Ci, H, W).
CPU_SIMD_CLONES
static void im2col_rows(float *col, const float *x, int64_t Ci, int64_t H, int64_t W, int k, int stride, int pad,
                        int64_t Wo, int64_t oy0, int rows) {
    const int64_t ncol = (int64_t)rows * Wo;
    for (int kw = 0; kw < k; kw++) {
        // Output columns ox whose input column ox*stride - pad + kw lies inside the image.
        int64_t lo = 0, hi = Wo;
        while (lo < Wo && lo * stride - pad + kw < 0) lo++;
        while (hi > lo && (hi - 1) * stride - pad + kw >= W) hi--;
        for (int64_t ci = 0; ci < Ci; ci++)
            for (int kh = 0; kh < k; kh++) {
                float *dst = col + ((ci * k + kh) * k + kw) * ncol;
                for (int r = 0; r < rows; r++) {
                    int64_t iy = (oy0 + r) * stride - pad + kh;
                    float *d = dst + r * Wo;
                    if (iy < 0 || iy >= H) {
                        memset(d, 0, Wo * sizeof(float));
                        continue;
                    }
                    const float *src = x + (ci * H + iy) * W - pad + kw;
                    for (int64_t ox = 0; ox < lo; ox++) d[ox] = 0.0f;
                    if (stride == 1) {
                        memcpy(d + lo, src + lo, (hi - lo) * sizeof(float));
                    } else {
#pragma omp simd
                        for (int64_t ox = lo; ox < hi; ox++) d[ox] = src[2 * ox];
                    }
                    for (int64_t ox = hi; ox < Wo; ox++) d[ox] = 0.0f;
                }
            }
    }
}

static void conv_im2col(float *out, const float *x, const float *w, const float *bias, int64_t N, int64_t Ci,
                        int64_t H, int64_t W, int64_t Co, int64_t Ho, int64_t Wo, int k, int stride, int pad,
                        ConvScratch *cs) {
    const int64_t K = Ci * k * k;
    const int nt = cpu_threads();
    // Output pixels per block: up to 512 (each GEMM call repacks w, so wide is better)
    // while the column buffer stays under 8 MB and every thread gets at least 2 blocks.
    int64_t cols = (2 << 20) / K;
    cols = cols < 128 ? 128 : cols > 512 ? 512 : cols;
    int rows = (int)(cols / Wo);
    if (rows < 1) rows = 1;
    if (rows > Ho) rows = (int)Ho;
    while (rows > 1 && N * ((Ho + rows - 1) / rows) < 2 * nt) rows /= 2;
    const int64_t nblk = (Ho + rows - 1) / rows, items = N * nblk;
    const size_t per_thread = (size_t)K * rows * Wo;
    float *pool = conv_arena(cs, nt * per_thread);
    int prev = cpu_blas_single_begin();
#pragma omp parallel num_threads(nt)
    {
        float *col = pool ? pool + omp_get_thread_num() * per_thread : cpu_scratch(1, per_thread);
#pragma omp for schedule(dynamic, 1)
        for (int64_t it = 0; it < items; it++) {
            int64_t n = it / nblk, oy0 = (it % nblk) * rows;
            int r = (int)(Ho - oy0 < rows ? Ho - oy0 : rows);
            int64_t ncol = (int64_t)r * Wo;
            float *o = out + n * Co * Ho * Wo + oy0 * Wo;
            im2col_rows(col, x + n * Ci * H * W, Ci, H, W, k, stride, pad, Wo, oy0, r);
            conv_fill_bias(o, Co, ncol, Ho * Wo, bias);
            cpu_sgemm_serial(0, 0, (int)Co, (int)ncol, (int)K, 1.0f, w, (int)K, col, (int)ncol, 1.0f, o,
                             (int)(Ho * Wo));
        }
    }
    cpu_blas_single_end(prev);
}

void cpu_conv2d(Tensor *out, const Tensor *x, const Tensor *w, const Tensor *b, int stride, int pad, Arena *ws) {
    CPU_CHECK_F32("conv2d", out);
    CPU_CHECK_F32("conv2d", x);
    CPU_CHECK_F32("conv2d", w);
    CPU_CHECK_SHAPES("conv2d", x->ndim == 4 && w->ndim == 4 && w->shape[1] == x->shape[1], x, w,
                     "x must be (N, Ci, H, W) and w (Co, Ci, k, k)");
    const int64_t N = x->shape[0], Ci = x->shape[1], H = x->shape[2], W = x->shape[3], Co = w->shape[0];
    const int k = (int)w->shape[2];
    CPU_CHECK_SHAPES("conv2d", (k == 1 || k == 3) && w->shape[3] == k, w, x, "kernel must be 1x1 or 3x3");
    CPU_CHECK(stride == 1 || stride == 2, "conv2d: stride must be 1 or 2, got %d", stride);
    CPU_CHECK(pad >= 0 && pad <= 2, "conv2d: padding must be 0..2, got %d", pad);
    const int64_t Ho = (H + 2 * pad - k) / stride + 1, Wo = (W + 2 * pad - k) / stride + 1;
    CPU_CHECK_SHAPES("conv2d",
                     Ho >= 1 && Wo >= 1 && out->ndim == 4 && out->shape[0] == N && out->shape[1] == Co &&
                         out->shape[2] == Ho && out->shape[3] == Wo,
                     out, x, "out must be (N, Co, Ho, Wo) with Ho = (H + 2 pad - k) / stride + 1");
    if (b) {
        CPU_CHECK_F32("conv2d", b);
        CPU_CHECK_SHAPES("conv2d", tensor_numel(b) == Co, b, w, "bias must have Co elements");
    }
    CPU_CHECK(out->data != x->data, "conv2d: out must not alias x");
    const float *xd = x->data, *wd = w->data, *bd = b ? b->data : NULL;
    float *od = out->data;

    if (k == 1 && stride == 1 && pad == 0) {
        for (int64_t n = 0; n < N; n++)
            cpu_sgemm_bias(0, 0, (int)Co, (int)(H * W), (int)Ci, 1.0f, wd, (int)Ci, xd + n * Ci * H * W, (int)(H * W),
                           0.0f, od + n * Co * H * W, (int)(H * W), NULL, bd);
    } else if (k == 3 && Ci >= 16 && Co >= 16 && N * ((Ho + 1) / 2) * ((Wo + 1) / 2) >= 16) {
        cpu_conv3x3_winograd(od, xd, wd, bd, N, Ci, H, W, Co, Ho, Wo, stride, pad, ws);
    } else {
        ConvScratch cs = {ws, ws ? arena_mark(ws) : 0};
        conv_im2col(od, xd, wd, bd, N, Ci, H, W, Co, Ho, Wo, k, stride, pad, &cs);
        if (ws) arena_release(ws, cs.mark);
    }
}

// kernels/cpu/conv.c: 2-D convolution, NCHW, kernel 1 or 3, stride 1 or 2, zero padding.
//
// Three paths, all ending in OpenBLAS GEMMs:
//   1x1, stride 1, no padding: out[n] (Co, H*W) = w (Co, Ci) @ x[n] (Ci, H*W), no copies.
//   3x3, stride 1, >= 16 channels in and out: Winograd F(2x2, 3x3). Each 2x2 output tile
//     needs 16 products instead of 36, so the GEMM work drops 2.25x. The transforms use
//     only +-1 and 1/2; the rounding error is about twice the direct sum's (max |error|
//     ~7e-7 of max |out| at 320 channels, torch's direct conv ~3e-7).
//   everything else: im2col per image and per block of output rows (the column buffer
//     stays in cache), then w (Co, Ci*k*k) @ col (Ci*k*k, rows*Wo).
// Work is split over OpenMP threads by (image, block) with single-threaded BLAS inside.
#include <omp.h>

#include "cpu_internal.h"

// Scratch: from the caller's arena when it has room (released before returning), else from
// a per-thread buffer that persists (slot 3 is the calling thread's, for shared data).
typedef struct {
    Arena *ws;
    size_t mark;
} ConvScratch;

// Bump allocation on the caller's host arena, as arena_alloc does (256-byte aligned);
// NULL when it lacks room. Done here because story_core does not link the arena code.
static float *conv_arena(ConvScratch *cs, size_t nfloats) {
    Arena *a = cs->ws;
    if (!a || a->dev != DEV_CPU || !a->base) return NULL;
    size_t off = (a->used + 255) & ~(size_t)255, bytes = nfloats * sizeof(float);
    if (off + bytes > a->cap) return NULL;
    a->used = off + bytes;
    if (a->used > a->peak) a->peak = a->used;
    return (float *)(a->base + off);
}

static float *conv_scratch(ConvScratch *cs, size_t nfloats, int slot) {
    float *p = conv_arena(cs, nfloats);
    return p ? p : cpu_scratch(slot, nfloats);
}

static void conv_fill_bias(float *o, int64_t Co, int64_t len, int64_t ldo, const float *bias) {
    for (int64_t c = 0; c < Co; c++) {
        float v = bias ? bias[c] : 0.0f, *row = o + c * ldo;
        for (int64_t i = 0; i < len; i++) row[i] = v;
    }
}

// ---- Winograd F(2x2, 3x3) ----------------------------------------------------------------
// Winograd weights for output channels co0 .. co1-1: U[xi*xstride + (co-co0)*Ci + ci] =
// (G g G^T)[xi] for the 16 positions xi of the 4x4 transform, g = w[co, ci] (3x3),
// G rows (1,0,0), (.5,.5,.5), (.5,-.5,.5), (0,0,1). tmp: 9*Ci floats. Each channel's
// taps are first gathered tap-major so the arithmetic vectorises over ci.
CPU_SIMD_CLONES
static void wino_weights(float *U, size_t xstride, const float *w, int64_t Ci, int64_t co0, int64_t co1,
                         float *tmp) {
    for (int64_t co = co0; co < co1; co++) {
        const float *wc = w + co * Ci * 9;
        for (int64_t ci = 0; ci < Ci; ci++)
            for (int k = 0; k < 9; k++) tmp[k * Ci + ci] = wc[ci * 9 + k];
        float *u = U + (co - co0) * Ci;
        const float *g0 = tmp, *g1 = tmp + Ci, *g2 = tmp + 2 * Ci, *g3 = tmp + 3 * Ci, *g4 = tmp + 4 * Ci,
                    *g5 = tmp + 5 * Ci, *g6 = tmp + 6 * Ci, *g7 = tmp + 7 * Ci, *g8 = tmp + 8 * Ci;
#pragma omp simd
        for (int64_t ci = 0; ci < Ci; ci++) {
            // G g: rows t0..t3, columns 0..2
            float t00 = g0[ci], t01 = g1[ci], t02 = g2[ci];
            float t10 = 0.5f * (g0[ci] + g3[ci] + g6[ci]), t11 = 0.5f * (g1[ci] + g4[ci] + g7[ci]),
                  t12 = 0.5f * (g2[ci] + g5[ci] + g8[ci]);
            float t20 = 0.5f * (g0[ci] - g3[ci] + g6[ci]), t21 = 0.5f * (g1[ci] - g4[ci] + g7[ci]),
                  t22 = 0.5f * (g2[ci] - g5[ci] + g8[ci]);
            float t30 = g6[ci], t31 = g7[ci], t32 = g8[ci];
            // (G g) G^T, row i -> xi = 4i .. 4i+3
            u[0 * xstride + ci] = t00;
            u[1 * xstride + ci] = 0.5f * (t00 + t01 + t02);
            u[2 * xstride + ci] = 0.5f * (t00 - t01 + t02);
            u[3 * xstride + ci] = t02;
            u[4 * xstride + ci] = t10;
            u[5 * xstride + ci] = 0.5f * (t10 + t11 + t12);
            u[6 * xstride + ci] = 0.5f * (t10 - t11 + t12);
            u[7 * xstride + ci] = t12;
            u[8 * xstride + ci] = t20;
            u[9 * xstride + ci] = 0.5f * (t20 + t21 + t22);
            u[10 * xstride + ci] = 0.5f * (t20 - t21 + t22);
            u[11 * xstride + ci] = t22;
            u[12 * xstride + ci] = t30;
            u[13 * xstride + ci] = 0.5f * (t30 + t31 + t32);
            u[14 * xstride + ci] = 0.5f * (t30 - t31 + t32);
            u[15 * xstride + ci] = t32;
        }
    }
}

// V[xi] (Ci, ldv), columns col0 .. col0 + R*tw - 1: the tiles of tile rows ty0 .. ty0+R-1
// of channels ci0 .. ci1-1 of image x (Ci, H, W), tile (ty0 + rt, tx) in column
// col0 + rt*tw + tx. V = B^T d B with B^T rows (1,0,-1,0), (0,1,1,0), (0,-1,1,0), (0,1,0,-1).
// rowbuf: 8 * (2*tw + 2) floats.
CPU_SIMD_CLONES
static void wino_input(float *V, int64_t ldv, int64_t col0, const float *x, int64_t Ci, int64_t ci0, int64_t ci1,
                       int64_t H, int64_t W, int pad, int64_t ty0, int R, int64_t tw, float *rowbuf) {
    const int64_t Wp = 2 * tw + 2;  // >= W + pad: covers every input column a tile reads
    float *r0 = rowbuf, *r1 = r0 + Wp, *r2 = r1 + Wp, *r3 = r2 + Wp;  // B^T applied to 4 input rows
    float *rows[4];
    for (int k = 0; k < 4; k++) rows[k] = rowbuf + (4 + k) * Wp;
    for (int64_t ci = ci0; ci < ci1; ci++) {
        const float *xc = x + ci * H * W;
        for (int rt = 0; rt < R; rt++) {
            int64_t y0 = 2 * (ty0 + rt) - pad;
            for (int k = 0; k < 4; k++) {  // zero-padded copies of input rows y0 .. y0+3
                float *d = rows[k];
                int64_t y = y0 + k;
                memset(d, 0, Wp * sizeof(float));
                if (y >= 0 && y < H) memcpy(d + pad, xc + y * W, W * sizeof(float));
            }
#pragma omp simd
            for (int64_t c = 0; c < Wp; c++) {
                r0[c] = rows[0][c] - rows[2][c];
                r1[c] = rows[1][c] + rows[2][c];
                r2[c] = rows[2][c] - rows[1][c];
                r3[c] = rows[1][c] - rows[3][c];
            }
            const float *rr[4] = {r0, r1, r2, r3};
            for (int i = 0; i < 4; i++) {
                const float *a = rr[i];
                float *v0 = V + ((size_t)(i * 4 + 0) * Ci + ci) * ldv + col0 + rt * tw;
                float *v1 = V + ((size_t)(i * 4 + 1) * Ci + ci) * ldv + col0 + rt * tw;
                float *v2 = V + ((size_t)(i * 4 + 2) * Ci + ci) * ldv + col0 + rt * tw;
                float *v3 = V + ((size_t)(i * 4 + 3) * Ci + ci) * ldv + col0 + rt * tw;
#pragma omp simd
                for (int64_t t = 0; t < tw; t++) {
                    float d0 = a[2 * t], d1 = a[2 * t + 1], d2 = a[2 * t + 2], d3 = a[2 * t + 3];
                    v0[t] = d0 - d2;
                    v1[t] = d1 + d2;
                    v2[t] = d2 - d1;
                    v3[t] = d1 - d3;
                }
            }
        }
    }
}

// out (Co, Ho, Wo) of one image, channels co0 .. co1-1, tile rows ty0 .. ty0+R-1, from
// M[xi] (Co, ldm) laid out like V: Y = A^T m A with A^T rows (1,1,1,0), (0,1,-1,-1), + bias.
// rowbuf: 4 * tw floats.
CPU_SIMD_CLONES
static void wino_output(float *out, const float *M, int64_t ldm, int64_t col0, const float *bias, int64_t Co,
                        int64_t co0, int64_t co1, int64_t Ho, int64_t Wo, int64_t ty0, int R, int64_t tw,
                        float *rowbuf) {
    float *y0 = rowbuf, *y1 = rowbuf + 2 * tw;  // two output rows of a tile row, width 2*tw
    for (int64_t co = co0; co < co1; co++) {
        float b = bias ? bias[co] : 0.0f;
        for (int rt = 0; rt < R; rt++) {
            const float *m[16];
            for (int k = 0; k < 16; k++) m[k] = M + ((size_t)k * Co + co) * ldm + col0 + rt * tw;
#pragma omp simd
            for (int64_t t = 0; t < tw; t++) {
                float s0[4], s1[4];
                for (int j = 0; j < 4; j++) {
                    s0[j] = m[j][t] + m[4 + j][t] + m[8 + j][t];
                    s1[j] = m[4 + j][t] - m[8 + j][t] - m[12 + j][t];
                }
                y0[2 * t] = s0[0] + s0[1] + s0[2] + b;
                y0[2 * t + 1] = s0[1] - s0[2] - s0[3] + b;
                y1[2 * t] = s1[0] + s1[1] + s1[2] + b;
                y1[2 * t + 1] = s1[1] - s1[2] - s1[3] + b;
            }
            int64_t oy = 2 * (ty0 + rt);
            float *o = out + co * Ho * Wo;
            memcpy(o + oy * Wo, y0, Wo * sizeof(float));
            if (oy + 1 < Ho) memcpy(o + (oy + 1) * Wo, y1, Wo * sizeof(float));
        }
    }
}

// Two schedules, both in OpenBLAS GEMMs (co block, Ci) @ (Ci, tiles) per position xi.
// Every GEMM call repacks its slice of U, so each call should cover many tiles.
//  - Large images: work item = (image, R tile rows, about 256 tiles). U is transformed
//    once; each thread transforms its tiles, runs the GEMMs per block of <= WINO_CO output
//    channels and transforms back while the block is in cache.
//  - Few tiles (small images, many channels): the tiles of all images are transformed
//    together; work item = a block of output channels, whose weights the thread
//    transforms itself (U is never held whole: 16*Co*Ci floats would be 105 MB at 1280
//    channels), then GEMMs and output transform for that block.
#define WINO_TILES 256
#define WINO_CO 256
static void conv_winograd(float *out, const float *x, const float *w, const float *bias, int64_t N, int64_t Ci,
                          int64_t H, int64_t W, int64_t Co, int64_t Ho, int64_t Wo, int pad, ConvScratch *cs) {
    const int64_t th = (Ho + 1) / 2, tw = (Wo + 1) / 2, rowbuf_n = 8 * (2 * tw + 2);
    const int nt = cpu_threads();
    int R = (int)(WINO_TILES / tw);
    if (R < 1) R = 1;
    if (R > th) R = (int)th;
    const int64_t nblk = (th + R - 1) / R;
    int prev = cpu_blas_single_begin();
    if (N * nblk >= 2 * nt) {
        // Output channels in equal blocks of at most WINO_CO (M stays ~4 MB per thread).
        const int64_t ncb = (Co + WINO_CO - 1) / WINO_CO, CB = ((Co + ncb - 1) / ncb + 15) & ~(int64_t)15;
        const int64_t T = (int64_t)R * tw, items = N * nblk;
        const size_t per_thread = (16 * (size_t)(Ci + CB) * T + rowbuf_n + 9 * Ci + 15) & ~(size_t)15;
        float *U = conv_scratch(cs, 16 * (size_t)Co * Ci, 3);
        float *pool = conv_arena(cs, nt * per_thread);
#pragma omp parallel num_threads(nt)
        {
            float *V = pool ? pool + omp_get_thread_num() * per_thread : cpu_scratch(1, per_thread);
            float *M = V + 16 * (size_t)Ci * T, *rowbuf = M + 16 * (size_t)CB * T, *tmp = rowbuf + rowbuf_n;
#pragma omp for schedule(static)
            for (int64_t co = 0; co < Co; co++) wino_weights(U + co * Ci, (size_t)Co * Ci, w, Ci, co, co + 1, tmp);
#pragma omp for schedule(dynamic, 1)
            for (int64_t it = 0; it < items; it++) {
                int64_t n = it / nblk, ty0 = (it % nblk) * R;
                int r = (int)(th - ty0 < R ? th - ty0 : R);
                int64_t t = (int64_t)r * tw;
                wino_input(V, t, 0, x + n * Ci * H * W, Ci, 0, Ci, H, W, pad, ty0, r, tw, rowbuf);
                for (int64_t c0 = 0; c0 < Co; c0 += CB) {
                    int64_t cb = Co - c0 < CB ? Co - c0 : CB;
                    for (int k = 0; k < 16; k++)
                        cpu_sgemm_serial(0, 0, (int)cb, (int)t, (int)Ci, 1.0f, U + ((size_t)k * Co + c0) * Ci, (int)Ci,
                                         V + (size_t)k * Ci * t, (int)t, 0.0f, M + (size_t)k * cb * t, (int)t);
                    // M: channels c0 .. c0+cb-1 as rows 0 .. cb-1 of each (cb, t) block.
                    wino_output(out + (n * Co + c0) * Ho * Wo, M, t, 0, bias ? bias + c0 : NULL, cb, 0, cb, Ho, Wo,
                                ty0, r, tw, rowbuf);
                }
            }
        }
    } else {
        const int64_t T = N * th * tw;  // tile (n, ty, tx) is column (n*th + ty)*tw + tx
        // Channel blocks: at most 64 each, a multiple of the thread count in number.
        int64_t nb = (Co + 63) / 64;
        nb = (nb + nt - 1) / nt * nt;
        const int64_t CB = (Co + nb - 1) / nb, CI_ITEM = 16, nci = (Ci + CI_ITEM - 1) / CI_ITEM;
        nb = (Co + CB - 1) / CB;
        float *V = conv_scratch(cs, 16 * (size_t)Ci * T, 2);
        const size_t per_thread = (16 * (size_t)CB * (Ci + T) + rowbuf_n + 9 * Ci + 15) & ~(size_t)15;
        float *pool = conv_arena(cs, nt * per_thread);
#pragma omp parallel num_threads(nt)
        {
            float *Ub = pool ? pool + omp_get_thread_num() * per_thread : cpu_scratch(1, per_thread);
            float *M = Ub + 16 * (size_t)CB * Ci, *rowbuf = M + 16 * (size_t)CB * T, *tmp = rowbuf + rowbuf_n;
#pragma omp for schedule(dynamic, 1)
            for (int64_t it = 0; it < N * nci; it++) {
                int64_t n = it / nci, c0 = (it % nci) * CI_ITEM, c1 = c0 + CI_ITEM < Ci ? c0 + CI_ITEM : Ci;
                wino_input(V, T, n * th * tw, x + n * Ci * H * W, Ci, c0, c1, H, W, pad, 0, (int)th, tw, rowbuf);
            }
#pragma omp for schedule(dynamic, 1)
            for (int64_t b = 0; b < nb; b++) {
                int64_t c0 = b * CB, cb = Co - c0 < CB ? Co - c0 : CB;
                wino_weights(Ub, (size_t)cb * Ci, w, Ci, c0, c0 + cb, tmp);
                for (int k = 0; k < 16; k++)
                    cpu_sgemm_serial(0, 0, (int)cb, (int)T, (int)Ci, 1.0f, Ub + (size_t)k * cb * Ci, (int)Ci,
                                     V + (size_t)k * Ci * T, (int)T, 0.0f, M + (size_t)k * cb * T, (int)T);
                for (int64_t n = 0; n < N; n++)
                    wino_output(out + (n * Co + c0) * Ho * Wo, M, T, n * th * tw, bias ? bias + c0 : NULL, cb, 0, cb,
                                Ho, Wo, 0, (int)th, tw, rowbuf);
            }
        }
    }
    cpu_blas_single_end(prev);
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
    ConvScratch cs = {ws, ws ? arena_mark(ws) : 0};

    if (k == 1 && stride == 1 && pad == 0) {
        for (int64_t n = 0; n < N; n++)
            cpu_sgemm_bias(0, 0, (int)Co, (int)(H * W), (int)Ci, 1.0f, wd, (int)Ci, xd + n * Ci * H * W, (int)(H * W),
                           0.0f, od + n * Co * H * W, (int)(H * W), NULL, bd);
    } else if (k == 3 && stride == 1 && Ci >= 16 && Co >= 16 && N * ((Ho + 1) / 2) * ((Wo + 1) / 2) >= 16) {
        conv_winograd(od, xd, wd, bd, N, Ci, H, W, Co, Ho, Wo, pad, &cs);
    } else {
        conv_im2col(od, xd, wd, bd, N, Ci, H, W, Co, Ho, Wo, k, stride, pad, &cs);
    }
    if (ws) arena_release(ws, cs.mark);
}

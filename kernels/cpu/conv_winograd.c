// kernels/cpu/conv_winograd.c: 3x3 convolutions as Winograd GEMMs (called by conv.c).
//
// stride 1, F(2x2, 3x3): a 2x2 output tile from a 4x4 input patch with 16 products per
//   (co, ci) instead of 36 (2.25x less GEMM work). The transforms use only +-1 and 1/2;
//   the rounding error is about twice the direct sum's (max |error| ~7e-7 of max |out|
//   at 320 channels; torch's direct convolution ~3e-7).
// stride 2, polyphase: split by the parity of the taps, a 3x3 stride-2 convolution is a
//   1x1 tap (w11), two 2-tap convolutions ((w10, w12) along x, (w01, w21) along y) and a
//   2x2 one (w00, w02, w20, w22) over the even/odd input rows and columns. Winograd
//   F(2, 2) on the 2-tap parts and F(2x2, 2x2) on the 2x2 part give a 2x2 output tile
//   from a 5x5 input patch with 4 + 6 + 6 + 9 = 25 products instead of 36 (1.44x less).
//   Transforms use only +-1.
// Both are a set of P positions: V[p] (Ci, tiles) from the input, U[umap[p]] (Co, Ci)
// from the weights (16 matrices in both schemes), M[p] = U V[p] by OpenBLAS, and the
// output transform sums the M[p] of each tile.
#include <omp.h>

#include "cpu_internal.h"

#define WINO_NU 16                       // weight matrices per scheme
#define WINO_ROWBUF(tw) (20 * (tw) + 32)  // row scratch of the input / output transforms

typedef struct {
    int npos;
    unsigned char umap[25];
    void (*weights)(float *U, size_t xstride, const float *w, int64_t Ci, int64_t co0, int64_t co1, float *tmp);
    void (*input)(float *V, int64_t ldv, int64_t col0, const float *x, int64_t Ci, int64_t ci0, int64_t ci1,
                  int64_t H, int64_t W, int pad, int64_t ty0, int R, int64_t tw, float *rowbuf);
    void (*output)(float *out, const float *M, int64_t ldm, int64_t col0, const float *bias, int64_t Co,
                   int64_t co0, int64_t co1, int64_t Ho, int64_t Wo, int64_t ty0, int R, int64_t tw,
                   float *rowbuf);
} WinoScheme;

// Each output channel's 9 taps gathered tap-major (tmp[k*Ci + ci]) so that the weight
// transforms vectorise over ci.
static inline void wino_gather_taps(float *tmp, const float *w, int64_t Ci, int64_t co) {
    const float *wc = w + co * Ci * 9;
    for (int64_t ci = 0; ci < Ci; ci++)
        for (int k = 0; k < 9; k++) tmp[k * Ci + ci] = wc[ci * 9 + k];
}

// ---- stride 1: F(2x2, 3x3) -----------------------------------------------------------------
// Winograd weights for output channels co0 .. co1-1: U[xi*xstride + (co-co0)*Ci + ci] =
// (G g G^T)[xi] for the 16 positions xi of the 4x4 transform, g = w[co, ci] (3x3),
// G rows (1,0,0), (.5,.5,.5), (.5,-.5,.5), (0,0,1). tmp: 9*Ci floats.
CPU_SIMD_CLONES
static void wino_s1_weights(float *U, size_t xstride, const float *w, int64_t Ci, int64_t co0, int64_t co1,
                         float *tmp) {
    for (int64_t co = co0; co < co1; co++) {
        wino_gather_taps(tmp, w, Ci, co);
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
// rowbuf: WINO_ROWBUF(tw) floats.
CPU_SIMD_CLONES
static void wino_s1_input(float *V, int64_t ldv, int64_t col0, const float *x, int64_t Ci, int64_t ci0, int64_t ci1,
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
// rowbuf: WINO_ROWBUF(tw) floats.
CPU_SIMD_CLONES
static void wino_s1_output(float *out, const float *M, int64_t ldm, int64_t col0, const float *bias, int64_t Co,
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

// ---- stride 2: polyphase, F(2, 2) and F(2x2, 2x2) -------------------------------------------------
// Positions p: 0..3 the w11 tap at patch (2r+1, 2c+1); 4..9 rows 1, 3 of the patch through
// F(2, 2) along x (w10, w12); 10..15 columns 1, 3 through F(2, 2) along y (w01, w21);
// 16..24 the 3x3 even sub-grid through F(2x2, 2x2) (w00, w02, w20, w22).
// F(2, 2): d (3) -> (d0 - d1, d1, d2 - d1); g (2) -> (g0, g0 + g1, g1); y = (m0 + m1, m1 + m2).

CPU_SIMD_CLONES
static void wino_s2_weights(float *U, size_t xstride, const float *w, int64_t Ci, int64_t co0, int64_t co1,
                            float *tmp) {
    for (int64_t co = co0; co < co1; co++) {
        wino_gather_taps(tmp, w, Ci, co);
        float *u = U + (co - co0) * Ci;
        const float *g0 = tmp, *g1 = tmp + Ci, *g2 = tmp + 2 * Ci, *g3 = tmp + 3 * Ci, *g4 = tmp + 4 * Ci,
                    *g5 = tmp + 5 * Ci, *g6 = tmp + 6 * Ci, *g7 = tmp + 7 * Ci, *g8 = tmp + 8 * Ci;
#pragma omp simd
        for (int64_t ci = 0; ci < Ci; ci++) {
            u[0 * xstride + ci] = g4[ci];  // w11
            u[1 * xstride + ci] = g3[ci];  // (w10, w12)
            u[2 * xstride + ci] = g3[ci] + g5[ci];
            u[3 * xstride + ci] = g5[ci];
            u[4 * xstride + ci] = g1[ci];  // (w01, w21)
            u[5 * xstride + ci] = g1[ci] + g7[ci];
            u[6 * xstride + ci] = g7[ci];
            // G g G^T for g = [[w00, w02], [w20, w22]], G rows (1,0), (1,1), (0,1)
            float a0 = g0[ci], a1 = g2[ci], b0 = g0[ci] + g6[ci], b1 = g2[ci] + g8[ci], c0 = g6[ci], c1 = g8[ci];
            u[7 * xstride + ci] = a0;
            u[8 * xstride + ci] = a0 + a1;
            u[9 * xstride + ci] = a1;
            u[10 * xstride + ci] = b0;
            u[11 * xstride + ci] = b0 + b1;
            u[12 * xstride + ci] = b1;
            u[13 * xstride + ci] = c0;
            u[14 * xstride + ci] = c0 + c1;
            u[15 * xstride + ci] = c1;
        }
    }
}

// As wino_s1_input, for stride 2: tile (ty, tx) reads the 5x5 patch at input rows
// 4ty - pad .. +4 and columns 4tx - pad .. +4. Each patch row is first split by column
// mod 4 (q[k][t] = column 4t + k, zero-padded), so the transform reads unit strides.
// rowbuf: 5 rows x 4 phases x (tw + 1) floats.
CPU_SIMD_CLONES
static void wino_s2_input(float *V, int64_t ldv, int64_t col0, const float *x, int64_t Ci, int64_t ci0, int64_t ci1,
                          int64_t H, int64_t W, int pad, int64_t ty0, int R, int64_t tw, float *rowbuf) {
    const int64_t Q = tw + 1;  // q[k] holds columns 4t + k - pad, t = 0 .. tw
    for (int64_t ci = ci0; ci < ci1; ci++) {
        const float *xc = x + ci * H * W;
        for (int rt = 0; rt < R; rt++) {
            int64_t y0 = 4 * (ty0 + rt) - pad;
            for (int u = 0; u < 5; u++) {
                int64_t y = y0 + u;
                float *q = rowbuf + (size_t)u * 4 * Q;
                if (y < 0 || y >= H) {
                    memset(q, 0, 4 * Q * sizeof(float));
                    continue;
                }
                const float *xr = xc + y * W;
                for (int k = 0; k < 4; k++) {
                    float *qk = q + k * Q;
#pragma omp simd
                    for (int64_t t = 0; t < Q; t++) {
                        int64_t col = 4 * t + k - pad;
                        qk[t] = (col >= 0 && col < W) ? xr[col] : 0.0f;
                    }
                }
            }
            float *v[25];
            for (int p = 0; p < 25; p++) v[p] = V + ((size_t)p * Ci + ci) * ldv + col0 + rt * tw;
            // patch (u, c) of tile t: rows[u][k][t + c / 4] with k = c % 4
#define PQ(u, k) (rowbuf + ((size_t)(u) * 4 + (k)) * Q)
            const float *a0 = PQ(0, 0), *a1 = PQ(0, 1), *a3 = PQ(0, 3);
            const float *b0 = PQ(1, 0), *b1 = PQ(1, 1), *b2 = PQ(1, 2), *b3 = PQ(1, 3);
            const float *c0 = PQ(2, 0), *c1 = PQ(2, 1), *c2 = PQ(2, 2), *c3 = PQ(2, 3);
            const float *d0 = PQ(3, 0), *d1 = PQ(3, 1), *d2 = PQ(3, 2), *d3 = PQ(3, 3);
            const float *e0 = PQ(4, 0), *e1 = PQ(4, 1), *e3 = PQ(4, 3);
            const float *a2 = PQ(0, 2), *e2 = PQ(4, 2);
#undef PQ
#pragma omp simd
            for (int64_t t = 0; t < tw; t++) {
                v[0][t] = b1[t];
                v[1][t] = b3[t];
                v[2][t] = d1[t];
                v[3][t] = d3[t];
                v[4][t] = b0[t] - b2[t];
                v[5][t] = b2[t];
                v[6][t] = b0[t + 1] - b2[t];
                v[7][t] = d0[t] - d2[t];
                v[8][t] = d2[t];
                v[9][t] = d0[t + 1] - d2[t];
                v[10][t] = a1[t] - c1[t];
                v[11][t] = c1[t];
                v[12][t] = e1[t] - c1[t];
                v[13][t] = a3[t] - c3[t];
                v[14][t] = c3[t];
                v[15][t] = e3[t] - c3[t];
                // B^T d B on d[i][j] = patch (2i, 2j): columns 0, 2, 4 are q0[t], q2[t], q0[t+1]
                float r0[3] = {a0[t] - c0[t], a2[t] - c2[t], a0[t + 1] - c0[t + 1]};
                float r1[3] = {c0[t], c2[t], c0[t + 1]};
                float r2[3] = {e0[t] - c0[t], e2[t] - c2[t], e0[t + 1] - c0[t + 1]};
                v[16][t] = r0[0] - r0[1];
                v[17][t] = r0[1];
                v[18][t] = r0[2] - r0[1];
                v[19][t] = r1[0] - r1[1];
                v[20][t] = r1[1];
                v[21][t] = r1[2] - r1[1];
                v[22][t] = r2[0] - r2[1];
                v[23][t] = r2[1];
                v[24][t] = r2[2] - r2[1];
            }
        }
    }
}

CPU_SIMD_CLONES
static void wino_s2_output(float *out, const float *M, int64_t ldm, int64_t col0, const float *bias, int64_t Co,
                           int64_t co0, int64_t co1, int64_t Ho, int64_t Wo, int64_t ty0, int R, int64_t tw,
                           float *rowbuf) {
    float *y0 = rowbuf, *y1 = rowbuf + 2 * tw;
    for (int64_t co = co0; co < co1; co++) {
        float b = bias ? bias[co] : 0.0f;
        for (int rt = 0; rt < R; rt++) {
            const float *m[25];
            for (int k = 0; k < 25; k++) m[k] = M + ((size_t)k * Co + co) * ldm + col0 + rt * tw;
#pragma omp simd
            for (int64_t t = 0; t < tw; t++) {
                float s0[3], s1[3];  // A^T M for the 2x2 part: rows (0,1) and (1,2) summed
                for (int j = 0; j < 3; j++) {
                    s0[j] = m[16 + j][t] + m[19 + j][t];
                    s1[j] = m[19 + j][t] + m[22 + j][t];
                }
                float h1 = m[5][t], h3 = m[8][t], v1 = m[11][t], v3 = m[14][t];
                y0[2 * t] = m[0][t] + (m[4][t] + h1) + (m[10][t] + v1) + (s0[0] + s0[1]) + b;
                y0[2 * t + 1] = m[1][t] + (h1 + m[6][t]) + (m[13][t] + v3) + (s0[1] + s0[2]) + b;
                y1[2 * t] = m[2][t] + (m[7][t] + h3) + (v1 + m[12][t]) + (s1[0] + s1[1]) + b;
                y1[2 * t + 1] = m[3][t] + (h3 + m[9][t]) + (v3 + m[15][t]) + (s1[1] + s1[2]) + b;
            }
            int64_t oy = 2 * (ty0 + rt);
            float *o = out + co * Ho * Wo;
            memcpy(o + oy * Wo, y0, Wo * sizeof(float));
            if (oy + 1 < Ho) memcpy(o + (oy + 1) * Wo, y1, Wo * sizeof(float));
        }
    }
}

static const WinoScheme wino_s1 = {
    16, {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}, wino_s1_weights, wino_s1_input, wino_s1_output};
static const WinoScheme wino_s2 = {25,
                                   {0, 0, 0, 0, 1, 2, 3, 1, 2, 3, 4, 5, 6, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15},
                                   wino_s2_weights, wino_s2_input, wino_s2_output};

// ---- scheduling ----------------------------------------------------------------------------------
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
static void wino_run(const WinoScheme *sc, float *out, const float *x, const float *w, const float *bias, int64_t N,
                     int64_t Ci, int64_t H, int64_t W, int64_t Co, int64_t Ho, int64_t Wo, int pad, ConvScratch *cs) {
    const int64_t th = (Ho + 1) / 2, tw = (Wo + 1) / 2, rowbuf_n = WINO_ROWBUF(tw), P = sc->npos;
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
        const size_t per_thread = (P * (size_t)(Ci + CB) * T + rowbuf_n + 9 * Ci + 15) & ~(size_t)15;
        float *U = conv_scratch(cs, WINO_NU * (size_t)Co * Ci, 3);
        float *pool = conv_arena(cs, nt * per_thread);
#pragma omp parallel num_threads(nt)
        {
            float *V = pool ? pool + omp_get_thread_num() * per_thread : cpu_scratch(1, per_thread);
            float *M = V + P * (size_t)Ci * T, *rowbuf = M + P * (size_t)CB * T, *tmp = rowbuf + rowbuf_n;
#pragma omp for schedule(static)
            for (int64_t co = 0; co < Co; co++) sc->weights(U + co * Ci, (size_t)Co * Ci, w, Ci, co, co + 1, tmp);
#pragma omp for schedule(dynamic, 1)
            for (int64_t it = 0; it < items; it++) {
                int64_t n = it / nblk, ty0 = (it % nblk) * R;
                int r = (int)(th - ty0 < R ? th - ty0 : R);
                int64_t t = (int64_t)r * tw;
                sc->input(V, t, 0, x + n * Ci * H * W, Ci, 0, Ci, H, W, pad, ty0, r, tw, rowbuf);
                for (int64_t c0 = 0; c0 < Co; c0 += CB) {
                    int64_t cb = Co - c0 < CB ? Co - c0 : CB;
                    for (int k = 0; k < P; k++)
                        cpu_sgemm_serial(0, 0, (int)cb, (int)t, (int)Ci, 1.0f, U + ((size_t)sc->umap[k] * Co + c0) * Ci,
                                         (int)Ci, V + (size_t)k * Ci * t, (int)t, 0.0f, M + (size_t)k * cb * t, (int)t);
                    // M: channels c0 .. c0+cb-1 as rows 0 .. cb-1 of each (cb, t) block.
                    sc->output(out + (n * Co + c0) * Ho * Wo, M, t, 0, bias ? bias + c0 : NULL, cb, 0, cb, Ho, Wo, ty0,
                               r, tw, rowbuf);
                }
            }
        }
    } else {
        const int64_t T = N * th * tw;  // tile (n, ty, tx) is column (n*th + ty)*tw + tx
        // Channel blocks, a multiple of the thread count in number: as few as possible (each
        // block repacks V in its GEMMs) while a block's U and M stay under ~6 MB.
        const int64_t per_ch = WINO_NU * Ci + P * T, max_cb = (1536 * 1024) / per_ch;
        int64_t nb = nt;
        while (nb < Co && (Co + nb - 1) / nb > (max_cb > 16 ? max_cb : 16)) nb += nt;
        const int64_t CB = (Co + nb - 1) / nb, CI_ITEM = 16, nci = (Ci + CI_ITEM - 1) / CI_ITEM;
        nb = (Co + CB - 1) / CB;
        float *V = conv_scratch(cs, P * (size_t)Ci * T, 2);
        const size_t per_thread = ((WINO_NU * Ci + P * T) * (size_t)CB + rowbuf_n + 9 * Ci + 15) & ~(size_t)15;
        float *pool = conv_arena(cs, nt * per_thread);
#pragma omp parallel num_threads(nt)
        {
            float *Ub = pool ? pool + omp_get_thread_num() * per_thread : cpu_scratch(1, per_thread);
            float *M = Ub + WINO_NU * (size_t)CB * Ci, *rowbuf = M + P * (size_t)CB * T, *tmp = rowbuf + rowbuf_n;
#pragma omp for schedule(dynamic, 1)
            for (int64_t it = 0; it < N * nci; it++) {
                int64_t n = it / nci, c0 = (it % nci) * CI_ITEM, c1 = c0 + CI_ITEM < Ci ? c0 + CI_ITEM : Ci;
                sc->input(V, T, n * th * tw, x + n * Ci * H * W, Ci, c0, c1, H, W, pad, 0, (int)th, tw, rowbuf);
            }
#pragma omp for schedule(dynamic, 1)
            for (int64_t b = 0; b < nb; b++) {
                int64_t c0 = b * CB, cb = Co - c0 < CB ? Co - c0 : CB;
                sc->weights(Ub, (size_t)cb * Ci, w, Ci, c0, c0 + cb, tmp);
                for (int k = 0; k < P; k++)
                    cpu_sgemm_serial(0, 0, (int)cb, (int)T, (int)Ci, 1.0f, Ub + (size_t)sc->umap[k] * cb * Ci, (int)Ci,
                                     V + (size_t)k * Ci * T, (int)T, 0.0f, M + (size_t)k * cb * T, (int)T);
                for (int64_t n = 0; n < N; n++)
                    sc->output(out + (n * Co + c0) * Ho * Wo, M, T, n * th * tw, bias ? bias + c0 : NULL, cb, 0, cb, Ho,
                               Wo, 0, (int)th, tw, rowbuf);
            }
        }
    }
    cpu_blas_single_end(prev);
}


void cpu_conv3x3_winograd(float *out, const float *x, const float *w, const float *bias, int64_t N, int64_t Ci,
                          int64_t H, int64_t W, int64_t Co, int64_t Ho, int64_t Wo, int stride, int pad, Arena *ws) {
    ConvScratch cs = {ws, ws ? arena_mark(ws) : 0};
    wino_run(stride == 1 ? &wino_s1 : &wino_s2, out, x, w, bias, N, Ci, H, W, Co, Ho, Wo, pad, &cs);
    if (ws) arena_release(ws, cs.mark);
}

// models/unet_host.c: the UNet's pieces that are not ops: the token layout swap and FreeU's
// Fourier filter.
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cuda_runtime_api.h"
#include "kernels/ops.h"
#include "models/unet.h"
#include "models/unet_internal.h"
#include "runner/check.h"

// ---- (B, M, N) -> (B, N, M) ------------------------------------------------------------------
// The token layout swap (NCHW feature maps <-> (B, HW, C) tokens) is op_transpose; this
// wrapper keeps the UNet's stricter contract (same dtype and device, no aliasing).
void unet_swap_last2(Tensor *out, const Tensor *x) {
    STORY_CHECK(x->ndim == 3 && out->ndim == 3 && out->shape[0] == x->shape[0] &&
                    out->shape[1] == x->shape[2] && out->shape[2] == x->shape[1] &&
                    out->dtype == x->dtype && out->dev == x->dev && out->data != x->data,
                "unet_swap_last2: out must be x (B, M, N) transposed to (B, N, M), not aliased");
    op_transpose(out, x);
}

// ---- FreeU's Fourier filter --------------------------------------------------------------------
// diffusers (utils/torch_utils.py, fourier_filter):
//   X = fftshift(fftn(x, dim=(-2, -1)));  mask = 1, with mask[crow - t : crow + t,
//   ccol - t : ccol + t] = scale (crow = H // 2, ccol = W // 2, Python slices);
//   y = ifftn(ifftshift(X * mask)).real
// fftshift moves frequency 0 to index n // 2, so shifted index i is frequency (i - n // 2)
// mod n. By linearity y = x + (scale - 1) * Re(ifft2(X restricted to the masked set)); the
// set is a product Ky x Kx of at most 2t frequencies per dim (t = 1 in FreeU: {0, -1}), so
// the few coefficients are computed by a direct DFT in double precision: exact up to
// rounding, O(H * W * |Kx|) per plane.

// The unshifted frequencies of a dim of size n that the mask covers.
static int masked_freqs(int n, int t, int *out) {
    const long crow = n / 2;
    long start = crow - t, stop = crow + t;
    if (start < 0) start += n;
    if (start < 0) start = 0;
    if (stop > n) stop = n;
    int k = 0;
    for (long i = start; i < stop; i++) out[k++] = (int)(((i - crow) % n + n) % n);
    return k;
}

// One plane x (H, W), in place. cw/sw: cos/sin(2 pi m / W) for m < W; ch/sh likewise for H.
static void filter_plane(float *x, int H, int W, const int *ky, int nky, const int *kx, int nkx,
                         double factor, const double *ch, const double *sh, const double *cw,
                         const double *sw, double *work) {
    // R[a][h] = sum_w x[h, w] e^{-2 pi i kx_a w / W}, then X[b][a] = sum_h R[a][h] e^{-2 pi i ky_b
    // h / H}
    double *Rr = work, *Ri = Rr + (size_t)nkx * H;
    for (int a = 0; a < nkx; a++)
        for (int h = 0; h < H; h++) {
            double re = 0, im = 0;
            for (int w = 0; w < W; w++) {
                const int p = (int)((int64_t)kx[a] * w % W);
                re += x[h * W + w] * cw[p];
                im -= x[h * W + w] * sw[p];
            }
            Rr[a * H + h] = re, Ri[a * H + h] = im;
        }
    double Xr[2 * 64], Xi[2 * 64];  // nky * nkx <= 128 (t <= 4 in practice; checked by the caller)
    for (int b = 0; b < nky; b++)
        for (int a = 0; a < nkx; a++) {
            double re = 0, im = 0;
            for (int h = 0; h < H; h++) {
                const int p = (int)((int64_t)ky[b] * h % H);
                const double r = Rr[a * H + h], i = Ri[a * H + h];
                re += r * ch[p] + i * sh[p];  // (r + i i)(cos - i sin)
                im += i * ch[p] - r * sh[p];
            }
            Xr[b * nkx + a] = re, Xi[b * nkx + a] = im;
        }
    // y[h, w] = x + factor * Re(sum_a A[a][h] e^{2 pi i kx_a w / W}), A[a][h] = sum_b X[b][a] e^{2
    // pi i ky_b h / H}
    for (int h = 0; h < H; h++) {
        double Ar[64], Ai[64];
        for (int a = 0; a < nkx; a++) {
            double re = 0, im = 0;
            for (int b = 0; b < nky; b++) {
                const int p = (int)((int64_t)ky[b] * h % H);
                const double r = Xr[b * nkx + a], i = Xi[b * nkx + a];
                re += r * ch[p] - i * sh[p];  // (r + i i)(cos + i sin)
                im += r * sh[p] + i * ch[p];
            }
            Ar[a] = re, Ai[a] = im;
        }
        for (int w = 0; w < W; w++) {
            double s = 0;
            for (int a = 0; a < nkx; a++) {
                const int p = (int)((int64_t)kx[a] * w % W);
                s += Ar[a] * cw[p] - Ai[a] * sw[p];
            }
            x[h * W + w] = (float)(x[h * W + w] + factor * s);
        }
    }
}

void unet_fourier_filter(Tensor *x, int threshold, float scale) {
    STORY_CHECK(x->ndim == 4 && threshold >= 1 && threshold <= 32,
                "unet_fourier_filter: x (B, C, H, W), threshold 1..32");
    const int64_t planes = x->shape[0] * x->shape[1], n = tensor_numel(x);
    const int H = (int)x->shape[2], W = (int)x->shape[3];
    if (scale == 1.0f || n == 0) return;
    int *ky = mallocCheck(sizeof(int) * (size_t)(H + W)), *kx = ky + H;
    const int nky = masked_freqs(H, threshold, ky), nkx = masked_freqs(W, threshold, kx);
    if (nky == 0 || nkx == 0) {
        free(ky);
        return;
    }
    STORY_CHECK(nkx <= 64 && nky * nkx <= 128, "unet_fourier_filter: threshold %d too large",
                threshold);
    // x as host f32 (diffusers also filters in f32 whatever the dtype)
    const size_t nb = tensor_nbytes(x);
    void *raw = x->data;
    float *f = x->data;
    if (x->dev != DEV_CPU) {
        raw = mallocCheck(nb);
        story_cuda_memcpy(raw, x->data, nb, 1);
    }
    if (x->dtype != DT_F32) {
        f = mallocCheck((size_t)n * sizeof(float));
        for (int64_t i = 0; i < n; i++)
            f[i] = x->dtype == DT_F16 ? f16_to_f32(((uint16_t *)raw)[i])
                                      : bf16_to_f32(((uint16_t *)raw)[i]);
    } else {
        f = raw;
    }
    double *tab = mallocCheck(sizeof(double) * 2 * (size_t)(H + W));
    double *ch = tab, *sh = ch + H, *cw = sh + H, *sw = cw + W;
    const double two_pi = 6.283185307179586476925286766559;
    for (int i = 0; i < H; i++) ch[i] = cos(two_pi * i / H), sh[i] = sin(two_pi * i / H);
    for (int i = 0; i < W; i++) cw[i] = cos(two_pi * i / W), sw[i] = sin(two_pi * i / W);
    const double factor = ((double)scale - 1.0) / ((double)H * W);
#pragma omp parallel num_threads(cpu_threads())
    {
        double *work = mallocCheck(sizeof(double) * 2 * (size_t)nkx * H);
#pragma omp for schedule(static)
        for (int64_t p = 0; p < planes; p++)
            filter_plane(f + p * H * W, H, W, ky, nky, kx, nkx, factor, ch, sh, cw, sw, work);
        free(work);
    }
    if (x->dtype != DT_F32) {
        for (int64_t i = 0; i < n; i++)
            ((uint16_t *)raw)[i] = x->dtype == DT_F16 ? f32_to_f16(f[i]) : f32_to_bf16(f[i]);
        free(f);
    }
    if (x->dev != DEV_CPU) {
        story_cuda_memcpy(x->data, raw, nb, 0);
        free(raw);
    }
    free(tab);
    free(ky);
}

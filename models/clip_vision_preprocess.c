// models/clip_vision_preprocess.c: CLIPImageProcessor's PIL path, bit for bit (see
// clip_vision.h): RGB conversion, Pillow's bicubic resize, center crop, rescale, normalise.
//
// The resize follows Pillow's libImaging/Resample.c (8 bits per channel): per output index
// a window of input indices and its weights are computed in double, normalised to sum 1,
// turned into 22-bit fixed point (round half away from zero); each pass accumulates
// integer products from 2^21 (rounding) and keeps bits 22..29 clamped to 0..255. The first
// pass's 8-bit result feeds the second. Pillow 13 (the reference environment's) runs the
// horizontal pass first unless the height shrinks by more than twice as many pixels as the
// width; Pillow < 13 always ran it first, so its results differ, by a few levels, for
// downscaled images taller than about 2:1. Doubles must be evaluated as written (no fused
// multiply-add), hence the pragmas below: Pillow's own builds do not fuse either.
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "models/clip_vision.h"
#include "runner/check.h"

#define RESAMPLE_BITS 22  // Pillow's PRECISION_BITS for 8-bit images: 32 - 8 - 2

// Pillow's bicubic kernel, a = -0.5 (support 2).
static double bicubic(double x) {
    const double a = -0.5;
    if (x < 0.0) x = -x;
    if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
    if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
    return 0.0;
}

// Windows of the resampling from `in` samples to `out`: output i reads inputs
// bounds[2i] .. bounds[2i] + bounds[2i+1] - 1 with weights kk[i*ksize ..]. Returns ksize.
static int precompute(int in, int out, int **bounds_out, int32_t **kk_out) {
    double filterscale, scale;
    filterscale = scale = (double)(float)in / out;  // Pillow: (double)(in1 - in0) / outSize, floats
    if (filterscale < 1.0) filterscale = 1.0;       // downscaling widens the kernel: antialiasing
    const double support = 2.0 * filterscale;
    const int ksize = (int)ceil(support) * 2 + 1;
    double *pre = mallocCheck((size_t)out * ksize * sizeof *pre);
    int *bounds = mallocCheck((size_t)out * 2 * sizeof *bounds);
    for (int xx = 0; xx < out; xx++) {
        const double center = 0.0 + (xx + 0.5) * scale;
        const double ss = 1.0 / filterscale;
        double ww = 0.0;
        int xmin = (int)(center - support + 0.5);
        if (xmin < 0) xmin = 0;
        int xmax = (int)(center + support + 0.5);
        if (xmax > in) xmax = in;
        xmax -= xmin;
        double *k = &pre[(size_t)xx * ksize];
        int x;
        for (x = 0; x < xmax; x++) {
            double w = bicubic((x + xmin - center + 0.5) * ss);
            k[x] = w;
            ww += w;
        }
        for (x = 0; x < xmax; x++)
            if (ww != 0.0) k[x] /= ww;
        for (; x < ksize; x++) k[x] = 0;
        bounds[xx * 2] = xmin;
        bounds[xx * 2 + 1] = xmax;
    }
    int32_t *kk = mallocCheck((size_t)out * ksize * sizeof *kk);
    for (size_t i = 0; i < (size_t)out * ksize; i++)
        kk[i] = pre[i] < 0 ? (int32_t)(-0.5 + pre[i] * (1 << RESAMPLE_BITS))
                           : (int32_t)(0.5 + pre[i] * (1 << RESAMPLE_BITS));
    free(pre);
    *bounds_out = bounds;
    *kk_out = kk;
    return ksize;
}

// Pillow's clip8: bits 22.. of the accumulator, clamped to 0..255 (floor for negatives).
static inline uint8_t clip8(int32_t v) {
    if (v < 0) return 0;
    v >>= RESAMPLE_BITS;
    return (uint8_t)(v > 255 ? 255 : v);
}

// Horizontal pass: rows of src (stride bytes apart) resampled to ow pixels each, into dst
// (rows * ow * ch bytes).
static void pass_h(const uint8_t *src, size_t stride, int rows, int ch, uint8_t *dst, int ow,
                   const int *b, const int32_t *kk, int ks) {
#pragma omp parallel for schedule(static)
    for (int yy = 0; yy < rows; yy++) {
        const uint8_t *row = src + (size_t)yy * stride;
        uint8_t *o = dst + (size_t)yy * ow * ch;
        for (int xx = 0; xx < ow; xx++) {
            const int xmin = b[2 * xx], xmax = b[2 * xx + 1];
            const int32_t *k = &kk[(size_t)xx * ks];
            for (int c = 0; c < ch; c++) {
                int32_t ss = 1 << (RESAMPLE_BITS - 1);
                for (int x = 0; x < xmax; x++) ss += row[(size_t)(x + xmin) * ch + c] * k[x];
                o[(size_t)xx * ch + c] = clip8(ss);
            }
        }
    }
}

// Vertical pass: oh output rows of rowbytes bytes, each from the src rows of its window.
static void pass_v(const uint8_t *src, size_t stride, size_t rowbytes, uint8_t *dst, int oh,
                   const int *b, const int32_t *kk, int ks) {
#pragma omp parallel for schedule(static)
    for (int yy = 0; yy < oh; yy++) {
        const int ymin = b[2 * yy], ymax = b[2 * yy + 1];
        const int32_t *k = &kk[(size_t)yy * ks];
        uint8_t *o = dst + (size_t)yy * rowbytes;
        for (size_t xc = 0; xc < rowbytes; xc++) {
            int32_t ss = 1 << (RESAMPLE_BITS - 1);
            for (int y = 0; y < ymax; y++) ss += src[(size_t)(y + ymin) * stride + xc] * k[y];
            o[xc] = clip8(ss);
        }
    }
}

void clip_resize_bicubic(const uint8_t *src, int w, int h, int ch, size_t stride, uint8_t *dst,
                         int ow, int oh) {
    STORY_CHECK(w > 0 && h > 0 && ow > 0 && oh > 0 && ch >= 1 && ch <= 4,
                "resize %dx%d x%d -> %dx%d", w, h, ch, ow, oh);
    const size_t orow = (size_t)ow * ch;
    if (ow == w && oh == h) {  // Pillow returns a copy
        for (int y = 0; y < h; y++) memcpy(dst + (size_t)y * orow, src + (size_t)y * stride, orow);
        return;
    }
    int *bv = NULL, *bh = NULL;
    int32_t *kv = NULL, *kh = NULL;
    const int ksv = oh != h ? precompute(h, oh, &bv, &kv) : 0;
    const int ksh = ow != w ? precompute(w, ow, &bh, &kh) : 0;
    if (ow == w) {
        pass_v(src, stride, orow, dst, oh, bv, kv, ksv);
    } else if (oh == h) {
        pass_h(src, stride, h, ch, dst, ow, bh, kh, ksh);
    } else if (oh < h && h - oh > 2 * (w - ow)) {
        // Pillow >= 13 runs the vertical pass first when the height shrinks, by more than
        // twice as many pixels as the width (python-pillow/Pillow#9549): (w, oh) in between
        uint8_t *tmp = mallocCheck((size_t)oh * w * ch);
        pass_v(src, stride, (size_t)w * ch, tmp, oh, bv, kv, ksv);
        pass_h(tmp, (size_t)w * ch, oh, ch, dst, ow, bh, kh, ksh);
        free(tmp);
    } else {
        // horizontal first, over the input rows y0 .. y1-1 the vertical pass reads
        const int y0 = bv[0], y1 = bv[2 * oh - 2] + bv[2 * oh - 1];
        uint8_t *tmp = mallocCheck((size_t)(y1 - y0) * orow);
        pass_h(src + (size_t)y0 * stride, stride, y1 - y0, ch, tmp, ow, bh, kh, ksh);
        for (int i = 0; i < oh; i++) bv[2 * i] -= y0;
        pass_v(tmp, orow, orow, dst, oh, bv, kv, ksv);
        free(tmp);
    }
    free(bh);
    free(kh);
    free(bv);
    free(kv);
}

// ---- CLIPImageProcessor -----------------------------------------------------------------

void clip_image_processor_default(ClipImageProcessor *p, int image_size) {
    // OPENAI_CLIP_MEAN / OPENAI_CLIP_STD of transformers.image_utils
    *p = (ClipImageProcessor){image_size,
                              image_size,
                              image_size,
                              1.0 / 255.0,
                              {0.48145466, 0.4578275, 0.40821073},
                              {0.26862954, 0.26130258, 0.27577711}};
}

void clip_resize_size(const ClipImageProcessor *p, int w, int h, int *ow, int *oh) {
    // transformers' get_resize_output_image_size(default_to_square=False): the short side
    // becomes shortest_edge, the long one int(shortest_edge * long / short)
    const int s = w <= h ? w : h, l = w <= h ? h : w;
    const int nl = (int)((double)p->shortest_edge * l / s);
    *ow = w <= h ? p->shortest_edge : nl;
    *oh = w <= h ? nl : p->shortest_edge;
}

static int check_processor(const ClipImageProcessor *p, char *err, size_t errlen) {
    if (p->shortest_edge < 1 || p->shortest_edge > IMAGE_MAX_SIDE || p->crop_height < 1 ||
        p->crop_width < 1 || p->crop_height > p->shortest_edge || p->crop_width > p->shortest_edge)
        return snprintf(err, errlen,
                        "clip preprocessing: crop %dx%d with shortest edge %d: expected a crop no "
                        "larger than the "
                        "resized image's short side",
                        p->crop_width, p->crop_height, p->shortest_edge),
               -1;
    return 0;
}

int clip_preprocess_rgb_u8(const ClipImageProcessor *p, const uint8_t *rgb, int w, int h,
                           size_t stride, uint8_t *crop, char *err, size_t errlen) {
    if (w < 1 || h < 1 || w > IMAGE_MAX_SIDE || h > IMAGE_MAX_SIDE || stride < (size_t)w * 3)
        return snprintf(err, errlen,
                        "clip preprocessing: a %dx%d image (row stride %zu bytes) cannot be used",
                        w, h, stride),
               -1;
    if (check_processor(p, err, errlen)) return -1;
    int ow, oh;
    clip_resize_size(p, w, h, &ow, &oh);
    uint8_t *r = mallocCheck((size_t)ow * oh * 3);
    clip_resize_bicubic(rgb, w, h, 3, stride, r, ow, oh);
    const int top = (oh - p->crop_height) / 2, left = (ow - p->crop_width) / 2;  // both >= 0
    for (int y = 0; y < p->crop_height; y++)
        memcpy(crop + (size_t)y * p->crop_width * 3, r + ((size_t)(y + top) * ow + left) * 3,
               (size_t)p->crop_width * 3);
    free(r);
    return 0;
}

static int check_batch(const ClipImageProcessor *p, const Tensor *t, int n, char *err,
                       size_t errlen) {
    char d[96];
    if (check_processor(p, err, errlen)) return -1;
    if (t->dtype != DT_F32 || t->dev != DEV_CPU || t->ndim != 4 || t->shape[1] != 3 ||
        t->shape[2] != p->crop_height || t->shape[3] != p->crop_width || n < 0 || n >= t->shape[0])
        return snprintf(err, errlen,
                        "clip preprocessing: item %d of pixel_values %s: expected (B > %d, 3, %d, "
                        "%d) f32 cpu",
                        n, tensor_desc(t, d, sizeof d), n, p->crop_height, p->crop_width),
               -1;
    return 0;
}

int clip_preprocess_rgb(const ClipImageProcessor *p, const uint8_t *rgb, int w, int h,
                        size_t stride, Tensor *px, int n, char *err, size_t errlen) {
    if (check_batch(p, px, n, err, errlen)) return -1;
    const size_t hw = (size_t)p->crop_height * p->crop_width;
    uint8_t *crop = mallocCheck(hw * 3);
    if (clip_preprocess_rgb_u8(p, rgb, w, h, stride, crop, err, errlen)) return free(crop), -1;
    // rescale in double then to float32 (numpy's astype(float64) * scale, astype(float32));
    // normalise in float32 with float32 mean and std, as numpy does
    float lut[3][256];
    for (int c = 0; c < 3; c++) {
        const float mean = (float)p->mean[c], std = (float)p->std[c];
        for (int v = 0; v < 256; v++) {
            const float r = (float)((double)v * p->rescale_factor);
            const float centered = r - mean;
            lut[c][v] = centered / std;
        }
    }
    float *o = (float *)px->data + (size_t)n * 3 * hw;  // (3, H, W) planes from (H, W, 3)
    for (int c = 0; c < 3; c++)
        for (size_t i = 0; i < hw; i++) o[c * hw + i] = lut[c][crop[i * 3 + c]];
    free(crop);
    return 0;
}

// Pillow's alpha_composite of (v, a) over an opaque white background (integer, 7 extra bits).
static uint8_t over_white(uint32_t v, uint32_t a) {
    if (a == 0) return 255;
    const uint32_t blend = 255 * (255 - a), outa255 = a * 255 + blend;
    const uint32_t coef1 = a * 255 * 255 * 128 / outa255, coef2 = 255 * 128 - coef1;
    const uint32_t t = v * coef1 + 255 * coef2 + (0x80 << 7);
    return (uint8_t)((((t >> 8) + t) >> 8) >> 7);
}

int clip_preprocess_image(const ClipImageProcessor *p, const Image *img, Tensor *px, int n,
                          char *err, size_t errlen) {
    const int w = img->width, h = img->height, ch = img->channels;
    if (!img->pixels || w < 1 || h < 1 || ch < 1 || ch > 4)
        return snprintf(err, errlen, "clip preprocessing: an empty image (%dx%d, %d channels)", w,
                        h, ch),
               -1;
    if (ch == 3)
        return clip_preprocess_rgb(p, img->pixels, w, h, (size_t)w * 3, px, n, err, errlen);
    // do_convert_rgb: gray replicated; alpha composited onto white (Image.alpha_composite)
    uint8_t *rgb = mallocCheck((size_t)w * h * 3);
    for (size_t i = 0; i < (size_t)w * h; i++) {
        const uint8_t *s = img->pixels + i * ch;
        for (int c = 0; c < 3; c++) {
            const uint8_t v = ch <= 2 ? s[0] : s[c];
            rgb[i * 3 + c] = ch == 1 ? v : ch == 2 ? over_white(v, s[1]) : over_white(v, s[3]);
        }
    }
    int rc = clip_preprocess_rgb(p, rgb, w, h, (size_t)w * 3, px, n, err, errlen);
    free(rgb);
    return rc;
}

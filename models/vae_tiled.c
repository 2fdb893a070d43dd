// models/vae_tiled.c: the VAE on host images (see vae.h): diffusers' tiled decoding and
// encoding, sampling the latent distribution, latent scaling, host <-> device copies.
//
// Tiling follows AutoencoderKL.tiled_decode / _tiled_encode exactly. For decoding, with
// tl = tile_latent_min_size, ts = tile_sample_min_size, v = tile_overlap_factor:
//   tiles start every int(tl * (1 - v)) latents in both directions (the last ones cut
//   short by the border); each is decoded alone;
//   blend_extent = int(ts * v), row_limit = ts - blend_extent;
//   in row-major tile order, each decoded tile b is blended in place with the (already
//   blended) tile above a and then with the one to its left:
//     blend_v: for y < e = min(a.h, b.h, blend_extent):
//              b[:, y, :] = a[:, a.h - e + y, :] * (1 - y/e) + b[:, y, :] * (y/e)
//     blend_h: the same along x
//   and its top-left row_limit x row_limit corner goes into the image, tiles side by side.
// Encoding swaps the roles of ts and tl (tiles of ts pixels, blends over latents) and
// blends the raw moments (mean and logvar before the clamp).
// Only the previous row of tiles is kept, so host memory beyond the image is two rows of
// tiles, and the device holds one tile's activations.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cuda_runtime_api.h"
#include "kernels/ops.h"
#include "models/vae_impl.h"
#include "runner/check.h"

// ---- host <-> device --------------------------------------------------------------------

static float *host_f32(const Tensor *t) {
    float *v = malloc((size_t)tensor_numel(t) * sizeof *v + 1);
    if (!v) STORY_FATAL("out of memory");
    tensor_to_host_f32(t, v);
    return v;
}

// ---- sampling and scaling -----------------------------------------------------------------

void vae_sample(Tensor *out, const Tensor *mean, const Tensor *logvar, const Tensor *noise) {
    const int64_t n = tensor_numel(out);
    STORY_CHECK(tensor_numel(mean) == n && tensor_numel(logvar) == n && tensor_numel(noise) == n,
                "vae_sample: mean, logvar, noise and out must have the same size");
    float *m = host_f32(mean), *lv = host_f32(logvar), *z = host_f32(noise);
    for (int64_t i = 0; i < n; i++) {
        float v = lv[i] < -30.0f ? -30.0f : lv[i] > 20.0f ? 20.0f : lv[i];
        z[i] = m[i] + expf(0.5f * v) * z[i];
    }
    tensor_from_host_f32(out, z);
    free(m);
    free(lv);
    free(z);
}

// z = z * a_c + b_c per latent channel c (one op_scale per (item, channel) plane).
static void affine_per_channel(const Vae *m, Tensor *z, const float *a, const float *b) {
    const int64_t B = z->shape[0], C = z->shape[1], P = z->shape[2] * z->shape[3];
    STORY_CHECK(z->ndim == 4 && C == m->cfg.latent_channels, "vae latents must be (B, %d, h, w)",
                m->cfg.latent_channels);
    const size_t es = dtype_size(z->dtype);
    for (int64_t i = 0; i < B * C; i++) {
        Tensor p =
            tensor_view((char *)z->data + (size_t)(i * P) * es, z->dtype, z->dev, 1, SHAPE(P));
        op_scale(&p, &p, a[i % C], b[i % C]);
    }
}

void vae_latents_unscale(const Vae *m, Tensor *z) {
    const VaeConfig *c = &m->cfg;
    float a[VAE_MAX_LATENT], b[VAE_MAX_LATENT];
    for (int i = 0; i < c->latent_channels; i++) {
        a[i] =
            c->has_latents_stats ? c->latents_std[i] / c->scaling_factor : 1.0f / c->scaling_factor;
        b[i] = c->has_latents_stats ? c->latents_mean[i] : c->shift_factor;
    }
    affine_per_channel(m, z, a, b);
}

void vae_latents_scale(const Vae *m, Tensor *z) {
    const VaeConfig *c = &m->cfg;
    float a[VAE_MAX_LATENT], b[VAE_MAX_LATENT];
    for (int i = 0; i < c->latent_channels; i++) {
        float s = c->has_latents_stats ? c->scaling_factor / c->latents_std[i] : c->scaling_factor;
        a[i] = s;
        b[i] = -(c->has_latents_stats ? c->latents_mean[i] : c->shift_factor) * s;
    }
    affine_per_channel(m, z, a, b);
}

// ---- tiling -------------------------------------------------------------------------------

VaeTiling vae_tiling_default(const VaeConfig *cfg) {
    VaeTiling t = {cfg->sample_size, cfg->sample_size / vae_scale_factor(cfg), 0.25};
    return t;
}

int vae_tiling_check(const Vae *m, const VaeTiling *t, char *err, size_t errlen) {
    const int f = vae_scale_factor(&m->cfg), ts = t->tile_sample_min_size,
              tl = t->tile_latent_min_size;
    const double v = t->tile_overlap_factor;
    if (tl < 1 || ts != tl * f || !(v >= 0 && v < 1))
        return snprintf(err, errlen,
                        "vae tiling: tile_sample_min_size %d must be tile_latent_min_size %d times "
                        "%d, and "
                        "tile_overlap_factor %g in [0, 1)",
                        ts, tl, f, v),
               -1;
    // Tiles line up with the image only when the strides and the kept corners agree.
    const int dec_stride = (int)(tl * (1 - v)) * f, dec_keep = ts - (int)(ts * v);
    const int enc_stride = (int)(ts * (1 - v)), enc_keep = (tl - (int)(tl * v)) * f;
    if (dec_stride < f || dec_stride != dec_keep || enc_stride != enc_keep)
        return snprintf(err, errlen,
                        "vae tiling: latent tiles of %d with overlap %g do not line up with pixel "
                        "tiles of %d "
                        "(use a tile_latent_min_size that is a multiple of 4 with overlap 0.25)",
                        tl, v, ts),
               -1;
    return 0;
}

// One decoded (or encoded) tile on the host: C planes of h x w.
typedef struct {
    float *d;
    int h, w;
} Tile;

static void blend_v(const Tile *a, Tile *b, int C, int extent) {
    int e = a->h < b->h ? a->h : b->h;
    e = e < extent ? e : extent;
    for (int c = 0; c < C; c++)
        for (int y = 0; y < e; y++) {
            const float wa = (float)(1.0 - (double)y / e), wb = (float)((double)y / e);
            const float *ra = a->d + ((size_t)c * a->h + (a->h - e + y)) * a->w;
            float *rb = b->d + ((size_t)c * b->h + y) * b->w;
            for (int x = 0; x < b->w; x++) rb[x] = ra[x] * wa + rb[x] * wb;
        }
}

static void blend_h(const Tile *a, Tile *b, int C, int extent) {
    int e = a->w < b->w ? a->w : b->w;
    e = e < extent ? e : extent;
    for (int c = 0; c < C; c++)
        for (int y = 0; y < b->h; y++) {
            const float *ra = a->d + ((size_t)c * a->h + y) * a->w + (a->w - e);
            float *rb = b->d + ((size_t)c * b->h + y) * b->w;
            for (int x = 0; x < e; x++)
                rb[x] = ra[x] * (float)(1.0 - (double)x / e) + rb[x] * (float)((double)x / e);
        }
}

// What one tile pass runs: decode (latents -> pixels) or encode (pixels -> moments).
typedef struct {
    const Vae *m;
    Arena *ws;
    int encode;
    int cin, cout;  // channels in and out of a tile
    char *err;
    size_t errlen;
} TilePass;

// Runs the model on src (cin planes of the full H x W input, host f32) at rows
// [y0, y0+h), cols [x0, x0+w); the result (cout planes, host) goes to tile->d.
static int run_tile(const TilePass *tp, const float *src, int H, int W, int y0, int x0, int h,
                    int w, Tile *tile) {
    const Vae *m = tp->m;
    const int f = vae_scale_factor(&m->cfg);
    const size_t mark = arena_mark(tp->ws);
    int oh = tp->encode ? vae_latent_size(&m->cfg, h) : h * f,
        ow = tp->encode ? vae_latent_size(&m->cfg, w) : w * f;
    if (oh < 1 || ow < 1)
        return snprintf(tp->err, tp->errlen,
                        "vae_encode_image: a tile of %dx%d pixels is too small", w, h),
               -1;
    Tensor in = ARENA_TENSOR(tp->ws, m->dtype, 1, tp->cin, h, w);
    Tensor out = ARENA_TENSOR(tp->ws, m->dtype, 1, tp->cout, oh, ow);
    float *buf = malloc((size_t)tp->cin * h * w * sizeof *buf);
    if (!buf) STORY_FATAL("out of memory");
    for (int c = 0; c < tp->cin; c++)
        for (int y = 0; y < h; y++)
            memcpy(buf + ((size_t)c * h + y) * w, src + ((size_t)c * H + y0 + y) * W + x0,
                   (size_t)w * sizeof *buf);
    tensor_from_host_f32(&in, buf);
    free(buf);
    int rc = tp->encode ? vae_encode_moments(m, &in, &out, tp->ws, tp->err, tp->errlen)
                        : vae_decode(m, &in, &out, tp->ws, tp->err, tp->errlen);
    if (!rc) {
        tile->h = oh, tile->w = ow;
        tile->d = malloc((size_t)tp->cout * oh * ow * sizeof(float));
        if (!tile->d) STORY_FATAL("out of memory");
        tensor_to_host_f32(&out, tile->d);
    }
    arena_release(tp->ws, mark);
    return rc;
}

// One batch item: src (cin, H, W) host -> dst (cout, OH, OW) host, diffusers' tiling.
// tile: input tile size, stride: int(tile * (1 - v)); extent, keep: in output units.
static int tiled_item(const TilePass *tp, const float *src, int H, int W, float *dst, int OH,
                      int OW, int tile, int stride, int extent, int keep) {
    const int ncol = (W + stride - 1) / stride;
    Tile *prev = calloc((size_t)ncol, sizeof *prev), *cur = calloc((size_t)ncol, sizeof *cur);
    if (!prev || !cur) STORY_FATAL("out of memory");
    int rc = 0, oy = 0;
    for (int i = 0; i < H && !rc; i += stride) {
        int ox = 0, kh = 0;
        for (int j = 0, jj = 0; j < W && !rc; j += stride, jj++) {
            const int h = H - i < tile ? H - i : tile, w = W - j < tile ? W - j : tile;
            Tile *t = &cur[jj];
            if ((rc = run_tile(tp, src, H, W, i, j, h, w, t))) break;
            if (i > 0) blend_v(&prev[jj], t, tp->cout, extent);
            if (jj > 0) blend_h(&cur[jj - 1], t, tp->cout, extent);
            const int kw = t->w < keep ? t->w : keep;
            kh = t->h < keep ? t->h : keep;
            if (oy + kh > OH || ox + kw > OW) {
                rc = -1;
                snprintf(tp->err, tp->errlen, "vae tiling: tiles overrun the %dx%d output", OW, OH);
                break;
            }
            for (int c = 0; c < tp->cout; c++)
                for (int y = 0; y < kh; y++)
                    memcpy(dst + ((size_t)c * OH + oy + y) * OW + ox,
                           t->d + ((size_t)c * t->h + y) * t->w, (size_t)kw * sizeof(float));
            ox += kw;
        }
        if (!rc && ox != OW) {
            rc = -1;
            snprintf(tp->err, tp->errlen, "vae tiling: tiles cover %d of %d output columns", ox,
                     OW);
        }
        oy += kh;
        for (int j = 0; j < ncol; j++) {  // this row becomes the previous one
            free(prev[j].d);
            prev[j] = cur[j];
            cur[j].d = NULL;
        }
    }
    if (!rc && oy != OH) {
        rc = -1;
        snprintf(tp->err, tp->errlen, "vae tiling: tiles cover %d of %d output rows", oy, OH);
    }
    for (int j = 0; j < ncol; j++) free(prev[j].d), free(cur[j].d);
    free(prev);
    free(cur);
    return rc;
}

static int check_host(const Tensor *t, const char *fn, const char *what, int64_t d0, int64_t d1,
                      int64_t d2, int64_t d3, char *err, size_t errlen) {
    if (t->ndim == 4 && t->shape[0] == d0 && t->shape[1] == d1 && t->shape[2] == d2 &&
        t->shape[3] == d3 && t->dtype == DT_F32 && t->dev == DEV_CPU && t->data)
        return 0;
    char s[96];
    return snprintf(err, errlen, "%s: %s is %s, expected (%lld, %lld, %lld, %lld) f32 on the host",
                    fn, what, tensor_desc(t, s, sizeof s), (long long)d0, (long long)d1,
                    (long long)d2, (long long)d3),
           -1;
}

int vae_decode_image(const Vae *m, const Tensor *z, Tensor *out, const VaeTiling *tiling, Arena *ws,
                     char *err, size_t errlen) {
    const VaeConfig *c = &m->cfg;
    const int f = vae_scale_factor(c);
    if (!(m->parts & VAE_DECODER))
        return snprintf(err, errlen, "vae_decode: the decoder was not loaded"), -1;
    if (z->ndim != 4 || z->shape[1] != c->latent_channels || z->shape[0] < 1)
        return snprintf(err, errlen, "vae_decode: z must be (B, %d, h, w)", c->latent_channels), -1;
    const int B = (int)z->shape[0], h = (int)z->shape[2], w = (int)z->shape[3],
              lat = c->latent_channels;
    if (check_host(out, "vae_decode", "out", B, c->out_channels, (int64_t)h * f, (int64_t)w * f,
                   err, errlen))
        return -1;
    if (tiling && vae_tiling_check(m, tiling, err, errlen)) return -1;
    float *zh = host_f32(z);
    const size_t zplane = (size_t)lat * h * w, oplane = (size_t)c->out_channels * h * f * w * f;
    TilePass tp = {m, ws, 0, lat, c->out_channels, err, errlen};
    int rc = 0;
    for (int b = 0; b < B && !rc; b++) {
        if (!tiling || (h <= tiling->tile_latent_min_size && w <= tiling->tile_latent_min_size)) {
            Tile t = {0};
            rc = run_tile(&tp, zh + b * zplane, h, w, 0, 0, h, w, &t);
            if (!rc) memcpy((float *)out->data + b * oplane, t.d, oplane * sizeof(float));
            free(t.d);
        } else {
            const int tl = tiling->tile_latent_min_size, ts = tiling->tile_sample_min_size;
            const double v = tiling->tile_overlap_factor;
            const int stride = (int)(tl * (1 - v)), extent = (int)(ts * v);
            rc = tiled_item(&tp, zh + b * zplane, h, w, (float *)out->data + b * oplane, h * f,
                            w * f, tl, stride, extent, ts - extent);
        }
    }
    free(zh);
    return rc;
}

int vae_encode_image(const Vae *m, const Tensor *x, Tensor *mean, Tensor *logvar,
                     const VaeTiling *tiling, Arena *ws, char *err, size_t errlen) {
    const VaeConfig *c = &m->cfg;
    if (!(m->parts & VAE_ENCODER))
        return snprintf(err, errlen, "vae_encode: the encoder was not loaded"), -1;
    if (x->ndim != 4 || x->shape[1] != c->in_channels || x->shape[0] < 1)
        return snprintf(err, errlen, "vae_encode: x must be (B, %d, H, W)", c->in_channels), -1;
    if (tiling && vae_tiling_check(m, tiling, err, errlen)) return -1;
    const int B = (int)x->shape[0], H = (int)x->shape[2], W = (int)x->shape[3],
              lat = c->latent_channels;
    const int tiled =
        tiling && (H > tiling->tile_sample_min_size || W > tiling->tile_sample_min_size);
    const int hl = vae_image_latent_size(m, tiled ? tiling : NULL, H);
    const int wl = vae_image_latent_size(m, tiled ? tiling : NULL, W);
    if (hl < 1 || wl < 1)
        return snprintf(err, errlen, "vae_encode: a %dx%d image is too small for %d downsamplings",
                        W, H, c->nblocks - 1),
               -1;
    if ((mean && check_host(mean, "vae_encode", "mean", B, lat, hl, wl, err, errlen)) ||
        (logvar && check_host(logvar, "vae_encode", "logvar", B, lat, hl, wl, err, errlen)))
        return -1;
    float *xh = host_f32(x), *mo = malloc((size_t)2 * lat * hl * wl * sizeof *mo);
    if (!mo) STORY_FATAL("out of memory");
    const size_t xplane = (size_t)c->in_channels * H * W, half = (size_t)lat * hl * wl;
    TilePass tp = {m, ws, 1, c->in_channels, 2 * lat, err, errlen};
    int rc = 0;
    for (int b = 0; b < B && !rc; b++) {
        if (!tiled) {
            Tile t = {0};
            rc = run_tile(&tp, xh + b * xplane, H, W, 0, 0, H, W, &t);
            if (!rc) memcpy(mo, t.d, 2 * half * sizeof(float));
            free(t.d);
        } else {
            const int tl = tiling->tile_latent_min_size, ts = tiling->tile_sample_min_size;
            const double v = tiling->tile_overlap_factor;
            const int stride = (int)(ts * (1 - v)), extent = (int)(tl * v);
            rc =
                tiled_item(&tp, xh + b * xplane, H, W, mo, hl, wl, ts, stride, extent, tl - extent);
        }
        if (rc) break;
        if (mean) memcpy((float *)mean->data + b * half, mo, half * sizeof(float));
        if (logvar) {
            float *lv = (float *)logvar->data + b * half;
            for (size_t i = 0; i < half; i++) {
                float v = mo[half + i];
                lv[i] = v < -30.0f ? -30.0f : v > 20.0f ? 20.0f : v;
            }
        }
    }
    free(xh);
    free(mo);
    return rc;
}

int vae_image_latent_size(const Vae *m, const VaeTiling *tiling, int n) {
    const int ts = tiling ? tiling->tile_sample_min_size : 0;
    if (!tiling || n <= ts) return vae_latent_size(&m->cfg, n);
    const int stride = (int)(ts * (1 - tiling->tile_overlap_factor));
    const int keep = tiling->tile_latent_min_size -
                     (int)(tiling->tile_latent_min_size * tiling->tile_overlap_factor);
    int sum = 0;
    for (int i = 0; i < n && stride > 0; i += stride) {  // the kept corner of each row of tiles
        int t = vae_latent_size(&m->cfg, n - i < ts ? n - i : ts);
        if (t < 1) return 0;
        sum += t < keep ? t : keep;
    }
    return sum;
}

size_t vae_image_scratch_bytes(const Vae *m, const VaeTiling *tiling, int h, int w) {
    const VaeConfig *c = &m->cfg;
    const int f = vae_scale_factor(c);
    int th = h, tw = w;
    if (tiling) {
        th = h < tiling->tile_latent_min_size ? h : tiling->tile_latent_min_size;
        tw = w < tiling->tile_latent_min_size ? w : tiling->tile_latent_min_size;
    }
    const size_t es = dtype_size(m->dtype);
    size_t n = 0;
    if (m->parts & VAE_DECODER) {
        size_t io =
            ((size_t)c->latent_channels * th * tw + (size_t)c->out_channels * th * f * tw * f) * es;
        size_t d = io + 1024 + vae_decode_scratch_bytes(m, 1, th, tw);
        n = d > n ? d : n;
    }
    if (m->parts & VAE_ENCODER) {
        // the largest image with these latent sizes: f - 1 more pixels than h * f
        const int H = th * f + f - 1, W = tw * f + f - 1;
        size_t io = ((size_t)c->in_channels * H * W + (size_t)2 * c->latent_channels * th * tw) * es;
        size_t e = io + 1024 + vae_encode_moments_scratch_bytes(m, 1, H, W);
        n = e > n ? e : n;
    }
    return n;
}

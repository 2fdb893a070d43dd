// models/vae_forward.c: the encoder and decoder passes of AutoencoderKL (see vae.h) on the
// model's device.
//
// Memory: every block takes its input x at offset o of the scratch arena, with nothing
// live above it, and leaves its output at the same offset o; its temporaries go above x
// at offsets chosen so that each op's output never overlaps a buffer it still reads. The
// arena's top always stays above every live buffer, since the convolutions take their
// workspace from there. The largest point of the SD decoder at 512x512 (the last
// upsample: x (256, 256^2) + upsampled (256, 512^2) + conv output) is 8x its input.
// The same code runs "dry" (no arena, no ops) to measure what a pass needs.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cuda_runtime_api.h"
#include "kernels/ops.h"
#include "models/vae_impl.h"
#include "runner/check.h"

#define VAE_EPS 1e-6f  // every group norm of the VAE (resnet_eps)

int vae_attn_chunked = 0;
size_t vae_attn_score_bytes = VAE_ATTN_SCORE_BYTES;

static size_t al(size_t n) { return (n + 255) & ~(size_t)255; }

// ---- a pass over the scratch arena, real or dry -----------------------------------------

typedef struct {
    const Vae *m;
    Arena *ws;         // NULL: a dry run (no data, no ops) that measures the arena's peak
    size_t top, peak;  // the dry run's arena
} Run;

static int dry(const Run *r) { return r->ws == NULL; }
static size_t r_top(const Run *r) { return r->ws ? r->ws->used : r->top; }
static void r_set_top(Run *r, size_t top) {
    if (r->ws)
        r->ws->used = top;
    else
        r->top = top;
}
static void r_need(Run *r, size_t end) {
    if (r->ws) {
        if (end > r->ws->cap)
            STORY_FATAL(
                "vae: scratch arena full: need %zu bytes, have %zu (size it with "
                "vae_*_scratch_bytes)",
                end, r->ws->cap);
        if (end > r->ws->used) r->ws->used = end;
        if (end > r->ws->peak) r->ws->peak = end;
    } else {
        if (end > r->top) r->top = end;
        if (end > r->peak) r->peak = end;
    }
}

// A tensor at arena offset off (rounded up to 256); the top rises to cover it.
static Tensor r_at(Run *r, size_t off, int ndim, const int64_t *shape) {
    Tensor t = tensor_view(NULL, r->m->dtype, r->m->dev, ndim, shape);
    off = al(off);
    r_need(r, off + tensor_nbytes(&t));
    if (r->ws) t.data = r->ws->base + off;
    return t;
}
#define AT(r, off, ...) r_at((r), (off), NDIM(__VA_ARGS__), SHAPE(__VA_ARGS__))

static size_t nb_(const Tensor *t) { return al(tensor_nbytes(t)); }

// An upper bound of the workspace op_conv2d takes from the arena's top when the arena has
// room: on CUDA the im2col columns of the batch; on the CPU, loosely, the Winograd / im2col
// blocks of kernels/cpu (untouched host arena pages cost no memory, so overestimating is
// harmless there; with less room the CPU kernels use their own buffers, CUDA fewer images).
static size_t conv_ws_bytes(const Run *r, const Tensor *x, const Tensor *w, const Tensor *out) {
    const int64_t N = x->shape[0], Ci = x->shape[1], Co = out->shape[1], k = w->shape[2],
                  P = out->shape[2] * out->shape[3], Wo = out->shape[3];
    if (r->m->dev == DEV_CUDA)
        return k == 1 ? 0 : al((size_t)(N * Ci * k * k * P) * dtype_size(r->m->dtype)) + 256;
    const int64_t nt = cpu_threads(), tw = (Wo + 1) / 2 + 1;
    const int64_t f = 16 * Co * Ci + (2 * nt + 2) * 25 * (Ci + Co + 16) * (256 + tw) +
                      nt * Ci * k * k * (512 + Wo);
    return al((size_t)f * sizeof(float)) + ((size_t)1 << 20);
}

// In a dry run the convolution's workspace counts towards the peak, not the top: the op
// releases it again.
static void r_conv(Run *r, Tensor *out, const Tensor *x, const Tensor *w, const Tensor *b,
                   int stride, int pad) {
    if (dry(r)) {
        const size_t end = al(r->top) + conv_ws_bytes(r, x, w, out);
        if (end > r->peak) r->peak = end;
        return;
    }
    op_conv2d(out, x, w, b, stride, pad, r->ws);
}

static void r_gn(Run *r, Tensor *out, const Tensor *x, const Tensor *g, const Tensor *b, int silu) {
    if (!dry(r)) op_group_norm(out, x, g, b, r->m->cfg.norm_num_groups, VAE_EPS, silu);
}

static void r_add(Run *r, Tensor *out, const Tensor *a, const Tensor *b) {
    if (!dry(r)) op_add(out, a, b);
}

static void dev_copy(Device dev, void *dst, const void *src, size_t n) {
    if (dev == DEV_CPU)
        memcpy(dst, src, n);
    else
        story_cuda_memcpy(dst, src, n, 2);
}

static void dev_zero(Tensor *t) {
    size_t n = tensor_nbytes(t);
    if (t->dev == DEV_CPU) {
        memset(t->data, 0, n);
        return;
    }
    void *z = calloc(1, n ? n : 1);
    if (!z) STORY_FATAL("out of memory");
    story_cuda_memcpy(t->data, z, n, 0);
    free(z);
}

// out (B, N, M) = in (B, M, N)^T (the mid block's attention: (C, h*w) <-> (h*w, C)).
static void r_transpose(Run *r, Tensor *out, const Tensor *in) {
    if (dry(r)) return;
    op_transpose(out, in);
}

// ---- blocks -----------------------------------------------------------------------------
// Each takes x at offset o (nothing live above it) and returns its output at o.

static Tensor resnet(Run *r, const VaeResnet *p, Tensor x, size_t o) {
    const int64_t B = x.shape[0], H = x.shape[2], W = x.shape[3], Ci = p->cin, Co = p->cout;
    const size_t Sx = nb_(&x);
    Tensor probe = tensor_view(NULL, x.dtype, x.dev, 4, SHAPE(B, Co, H, W));
    const size_t So = nb_(&probe);
    Tensor out;
    if (!p->short_w.data) {  // x + conv2(silu(gn2(conv1(silu(gn1(x)))))), the sum in x
        Tensor h = AT(r, o + Sx, B, Ci, H, W), h1 = AT(r, o + 2 * Sx, B, Co, H, W);
        r_gn(r, &h, &x, &p->norm1_w, &p->norm1_b, 1);
        r_conv(r, &h1, &h, &p->conv1_w, &p->conv1_b, 1, 1);
        r_gn(r, &h1, &h1, &p->norm2_w, &p->norm2_b, 1);
        r_conv(r, &h, &h1, &p->conv2_w, &p->conv2_b, 1, 1);
        r_add(r, &x, &x, &h);
        out = x;
    } else if (So <= Sx) {  // channels shrink (decoder): x normalised in place, output over x
        Tensor s = AT(r, o + Sx, B, Co, H, W), h1 = AT(r, o + Sx + So, B, Co, H, W);
        r_conv(r, &s, &x, &p->short_w, &p->short_b, 1, 0);
        r_gn(r, &x, &x, &p->norm1_w, &p->norm1_b, 1);
        r_conv(r, &h1, &x, &p->conv1_w, &p->conv1_b, 1, 1);
        r_gn(r, &h1, &h1, &p->norm2_w, &p->norm2_b, 1);
        out = AT(r, o, B, Co, H, W);
        r_conv(r, &out, &h1, &p->conv2_w, &p->conv2_b, 1, 1);
        r_add(r, &out, &out, &s);
    } else {  // channels grow (encoder): the output covers x and h; h1 and s lie above it
        const size_t o1 = o + (2 * Sx > So ? 2 * Sx : So);
        Tensor h = AT(r, o + Sx, B, Ci, H, W), h1 = AT(r, o1, B, Co, H, W),
               s = AT(r, o1 + So, B, Co, H, W);
        r_gn(r, &h, &x, &p->norm1_w, &p->norm1_b, 1);
        r_conv(r, &h1, &h, &p->conv1_w, &p->conv1_b, 1, 1);
        r_gn(r, &h1, &h1, &p->norm2_w, &p->norm2_b, 1);
        r_conv(r, &s, &x, &p->short_w, &p->short_b, 1, 0);
        out = AT(r, o, B, Co, H, W);
        r_conv(r, &out, &h1, &p->conv2_w, &p->conv2_b, 1, 1);
        r_add(r, &out, &out, &s);
    }
    r_set_top(r, o + nb_(&out));
    return out;
}

// a (B, L, C) = softmax(q k^T / sqrt(C)) v, one head. The CPU's flash kernel takes any
// head width; on CUDA (and with vae_attn_chunked) blocks of queries go through matmul +
// softmax with the scores at offset so.
static void attend(Run *r, Tensor *a, const Tensor *q, const Tensor *k, const Tensor *v,
                   size_t so) {
    const int64_t B = q->shape[0], L = q->shape[1], C = q->shape[2];
    if (r->m->dev == DEV_CPU && !vae_attn_chunked) {
        if (!dry(r)) {
            KVSegment seg = {k, v};
            op_attention(a, q, &seg, 1, 1, 0, 0.0f);
        }
        return;
    }
    const size_t es = dtype_size(r->m->dtype);
    int64_t rows = (int64_t)(vae_attn_score_bytes / ((size_t)L * es));
    rows = rows < 1 ? 1 : rows > L ? L : rows;
    Tensor s = AT(r, so, 1, rows, L);
    if (dry(r)) return;
    const float alpha = 1.0f / sqrtf((float)C);
    for (int64_t b = 0; b < B; b++) {
        Tensor kb = tensor_view((char *)k->data + (size_t)(b * L * C) * es, k->dtype, k->dev, 3,
                                SHAPE(1, L, C));
        Tensor vb = tensor_view((char *)v->data + (size_t)(b * L * C) * es, v->dtype, v->dev, 3,
                                SHAPE(1, L, C));
        for (int64_t i0 = 0; i0 < L; i0 += rows) {
            const int64_t n = L - i0 < rows ? L - i0 : rows;
            const size_t off = (size_t)((b * L + i0) * C) * es;
            Tensor qi = tensor_view((char *)q->data + off, q->dtype, q->dev, 3, SHAPE(1, n, C));
            Tensor ai = tensor_view((char *)a->data + off, a->dtype, a->dev, 3, SHAPE(1, n, C));
            Tensor si = tensor_view(s.data, s.dtype, s.dev, 3, SHAPE(1, n, L));
            op_matmul(&si, &qi, &kb, 1, alpha);
            op_softmax(&si, &si);
            op_matmul(&ai, &si, &vb, 0, 1.0f);
        }
    }
}

// x + to_out(attention(to_q, to_k, to_v of group_norm(x))) over the H*W positions.
static Tensor attention(Run *r, const VaeMid *p, Tensor x, size_t o) {
    const int64_t B = x.shape[0], C = x.shape[1], L = x.shape[2] * x.shape[3];
    const size_t S = nb_(&x);
    Tensor h = AT(r, o + S, B, C, L);
    Tensor x3 = tensor_view(x.data, x.dtype, x.dev, 3, SHAPE(B, C, L));
    r_gn(r, &h, &x3, &p->norm_w, &p->norm_b, 0);
    Tensor t = AT(r, o + 2 * S, B, L, C);
    r_transpose(r, &t, &h);
    Tensor q = AT(r, o + S, B, L, C), k = AT(r, o + 3 * S, B, L, C), v = AT(r, o + 4 * S, B, L, C);
    if (!dry(r)) {
        op_linear(&q, &t, &p->q_w, &p->q_b);
        op_linear(&k, &t, &p->k_w, &p->k_b);
        op_linear(&v, &t, &p->v_w, &p->v_b);
    }
    Tensor a = AT(r, o + 2 * S, B, L, C);
    attend(r, &a, &q, &k, &v, o + 5 * S);
    Tensor pr = AT(r, o + S, B, L, C);
    if (!dry(r)) op_linear(&pr, &a, &p->o_w, &p->o_b);
    Tensor back = AT(r, o + 3 * S, B, C, L);
    r_transpose(r, &back, &pr);
    r_add(r, &x3, &x3, &back);
    r_set_top(r, o + S);
    return x;
}

static Tensor mid_block(Run *r, const VaeMid *p, Tensor x, size_t o) {
    x = resnet(r, &p->res[0], x, o);
    if (p->has_attn) x = attention(r, p, x, o);
    return resnet(r, &p->res[1], x, o);
}

// Upsample2D: nearest 2x into the space 4S above x, then the 3x3 conv back down at o.
static Tensor upsample(Run *r, const Tensor *w, const Tensor *b, Tensor x, size_t o) {
    const int64_t B = x.shape[0], C = x.shape[1], H = x.shape[2], W = x.shape[3];
    Tensor u = AT(r, o + 4 * nb_(&x), B, C, 2 * H, 2 * W);
    if (!dry(r)) op_upsample_nearest2x(&u, &x);
    Tensor y = AT(r, o, B, w->shape[0], 2 * H, 2 * W);
    r_conv(r, &y, &u, w, b, 1, 1);
    r_set_top(r, o + nb_(&y));
    return y;
}

// Downsample2D of the encoder: F.pad(x, (0, 1, 0, 1)), then conv 3x3 stride 2 unpadded.
// The pad is two concatenations with zeros (a column, then a row), so it stays on the device.
static Tensor downsample(Run *r, const Tensor *w, const Tensor *b, Tensor x, size_t o) {
    const int64_t B = x.shape[0], C = x.shape[1], H = x.shape[2], W = x.shape[3];
    const size_t o1 = o + nb_(&x);
    Tensor zc = AT(r, o1, B, C, H, 1);
    const size_t o2 = o1 + nb_(&zc);
    Tensor t1 = AT(r, o2, B, C, H, W + 1);
    const size_t o3 = o2 + nb_(&t1);
    Tensor zr = AT(r, o3, B, C, 1, W + 1);
    Tensor pd = AT(r, o3 + nb_(&zr), B, C, H + 1, W + 1);
    if (!dry(r)) {
        dev_zero(&zc);
        dev_zero(&zr);
        op_concat(&t1, &x, &zc, 3);
        op_concat(&pd, &t1, &zr, 2);
    }
    Tensor y = AT(r, o, B, w->shape[0], (H + 1 - 3) / 2 + 1, (W + 1 - 3) / 2 + 1);
    r_conv(r, &y, &pd, w, b, 2, 0);
    r_set_top(r, o + nb_(&y));
    return y;
}

// ---- passes -----------------------------------------------------------------------------

static void decode_run(Run *r, const Tensor *z, Tensor *out) {
    const Vae *m = r->m;
    const VaeDecoder *d = &m->dec;
    const VaeConfig *c = &m->cfg;
    const int64_t B = z->shape[0], h = z->shape[2], w = z->shape[3], L = c->layers_per_block;
    size_t o = r_top(r);
    Tensor zin = *z;
    if (d->post_quant_w.data) {
        Tensor p = AT(r, o, B, c->latent_channels, h, w);
        r_conv(r, &p, z, &d->post_quant_w, &d->post_quant_b, 1, 0);
        zin = p;
        o = al(o) + nb_(&p);
    }
    Tensor x = AT(r, o, B, c->block_out_channels[c->nblocks - 1], h, w);
    r_conv(r, &x, &zin, &d->conv_in_w, &d->conv_in_b, 1, 1);
    o = al(o);
    x = mid_block(r, &d->mid, x, o);
    for (int i = 0; i < c->nblocks; i++) {
        for (int j = 0; j <= L; j++) x = resnet(r, &d->res[i * (L + 1) + j], x, o);
        if (i + 1 < c->nblocks) x = upsample(r, &d->up_w[i], &d->up_b[i], x, o);
    }
    r_gn(r, &x, &x, &d->norm_out_w, &d->norm_out_b, 1);
    r_conv(r, out, &x, &d->conv_out_w, &d->conv_out_b, 1, 1);
}

static void encode_run(Run *r, const Tensor *x, Tensor *moments) {
    const Vae *m = r->m;
    const VaeEncoder *e = &m->enc;
    const VaeConfig *c = &m->cfg;
    const int64_t B = x->shape[0], L = c->layers_per_block;
    const size_t o = al(r_top(r));
    Tensor h = AT(r, o, B, c->block_out_channels[0], x->shape[2], x->shape[3]);
    r_conv(r, &h, x, &e->conv_in_w, &e->conv_in_b, 1, 1);
    for (int i = 0; i < c->nblocks; i++) {
        for (int j = 0; j < L; j++) h = resnet(r, &e->res[i * L + j], h, o);
        if (i + 1 < c->nblocks) h = downsample(r, &e->down_w[i], &e->down_b[i], h, o);
    }
    h = mid_block(r, &e->mid, h, o);
    r_gn(r, &h, &h, &e->norm_out_w, &e->norm_out_b, 1);
    if (!e->quant_w.data) {
        r_conv(r, moments, &h, &e->conv_out_w, &e->conv_out_b, 1, 1);
        return;
    }
    Tensor q = AT(r, o + nb_(&h), B, moments->shape[1], moments->shape[2], moments->shape[3]);
    r_conv(r, &q, &h, &e->conv_out_w, &e->conv_out_b, 1, 1);
    r_conv(r, moments, &q, &e->quant_w, &e->quant_b, 1, 0);
}

static int check_t(const Vae *m, const Tensor *t, const char *fn, const char *what, int64_t d0,
                   int64_t d1, int64_t d2, int64_t d3, char *err, size_t errlen) {
    if (t->ndim == 4 && t->shape[0] == d0 && t->shape[1] == d1 && t->shape[2] == d2 &&
        t->shape[3] == d3 && t->dtype == m->dtype && t->dev == m->dev && t->data)
        return 0;
    char s[96];
    return snprintf(err, errlen, "%s: %s is %s, expected (%lld, %lld, %lld, %lld) %s on the %s", fn,
                    what, tensor_desc(t, s, sizeof s), (long long)d0, (long long)d1, (long long)d2,
                    (long long)d3, dtype_name(m->dtype), m->dev == DEV_CPU ? "host" : "device"),
           -1;
}

int vae_decode(const Vae *m, const Tensor *z, Tensor *out, Arena *ws, char *err, size_t errlen) {
    const VaeConfig *c = &m->cfg;
    const int f = vae_scale_factor(c);
    if (!(m->parts & VAE_DECODER))
        return snprintf(err, errlen, "vae_decode: the decoder was not loaded"), -1;
    if (z->ndim != 4 || z->shape[0] < 1 || z->shape[2] < 1 || z->shape[3] < 1)
        return snprintf(err, errlen, "vae_decode: z must be (B, %d, h, w)", c->latent_channels), -1;
    const int64_t B = z->shape[0], h = z->shape[2], w = z->shape[3];
    if (check_t(m, z, "vae_decode", "z", B, c->latent_channels, h, w, err, errlen) ||
        check_t(m, out, "vae_decode", "out", B, c->out_channels, h * f, w * f, err, errlen))
        return -1;
    STORY_CHECK(ws->dev == m->dev, "the scratch arena must be on the model's device");
    const size_t mark = arena_mark(ws);
    Run r = {m, ws, 0, 0};
    decode_run(&r, z, out);
    arena_release(ws, mark);
    return 0;
}

size_t vae_decode_scratch_bytes(const Vae *m, int B, int h, int w) {
    const int f = vae_scale_factor(&m->cfg);
    Tensor z = tensor_view(NULL, m->dtype, m->dev, 4, SHAPE(B, m->cfg.latent_channels, h, w));
    Tensor out = tensor_view(NULL, m->dtype, m->dev, 4,
                             SHAPE(B, m->cfg.out_channels, (int64_t)h * f, (int64_t)w * f));
    Run r = {m, NULL, 0, 0};
    decode_run(&r, &z, &out);
    return r.peak + 512;
}

static int encode_check(const Vae *m, const Tensor *x, int64_t *hl, int64_t *wl, char *err,
                        size_t errlen) {
    const VaeConfig *c = &m->cfg;
    if (!(m->parts & VAE_ENCODER))
        return snprintf(err, errlen, "vae_encode: the encoder was not loaded"), -1;
    if (x->ndim != 4 || x->shape[0] < 1)
        return snprintf(err, errlen, "vae_encode: x must be (B, %d, H, W)", c->in_channels), -1;
    *hl = vae_latent_size(c, (int)x->shape[2]);
    *wl = vae_latent_size(c, (int)x->shape[3]);
    if (*hl < 1 || *wl < 1)
        return snprintf(err, errlen,
                        "vae_encode: a %lldx%lld image is too small for %d downsamplings",
                        (long long)x->shape[3], (long long)x->shape[2], c->nblocks - 1),
               -1;
    return check_t(m, x, "vae_encode", "x", x->shape[0], c->in_channels, x->shape[2], x->shape[3],
                   err, errlen);
}

int vae_encode_moments(const Vae *m, const Tensor *x, Tensor *moments, Arena *ws, char *err,
                       size_t errlen) {
    int64_t hl, wl;
    if (encode_check(m, x, &hl, &wl, err, errlen) ||
        check_t(m, moments, "vae_encode", "moments", x->shape[0], 2 * m->cfg.latent_channels, hl,
                wl, err, errlen))
        return -1;
    STORY_CHECK(ws->dev == m->dev, "the scratch arena must be on the model's device");
    const size_t mark = arena_mark(ws);
    Run r = {m, ws, 0, 0};
    encode_run(&r, x, moments);
    arena_release(ws, mark);
    return 0;
}

size_t vae_encode_moments_scratch_bytes(const Vae *m, int B, int H, int W) {
    const VaeConfig *c = &m->cfg;
    Tensor x = tensor_view(NULL, m->dtype, m->dev, 4, SHAPE(B, c->in_channels, H, W));
    Tensor mo =
        tensor_view(NULL, m->dtype, m->dev, 4,
                    SHAPE(B, 2 * c->latent_channels, vae_latent_size(c, H), vae_latent_size(c, W)));
    Run r = {m, NULL, 0, 0};
    encode_run(&r, &x, &mo);
    return r.peak + 512;
}

int vae_encode(const Vae *m, const Tensor *x, Tensor *mean, Tensor *logvar, Arena *ws, char *err,
               size_t errlen) {
    int64_t hl, wl;
    const int64_t B = x->ndim == 4 ? x->shape[0] : 0, lat = m->cfg.latent_channels;
    if (encode_check(m, x, &hl, &wl, err, errlen) ||
        (mean && check_t(m, mean, "vae_encode", "mean", B, lat, hl, wl, err, errlen)) ||
        (logvar && check_t(m, logvar, "vae_encode", "logvar", B, lat, hl, wl, err, errlen)))
        return -1;
    const size_t mark = arena_mark(ws);
    Tensor mo = ARENA_TENSOR(ws, m->dtype, B, 2 * lat, hl, wl);
    if (vae_encode_moments(m, x, &mo, ws, err, errlen)) return arena_release(ws, mark), -1;
    const size_t half = (size_t)(lat * hl * wl) * dtype_size(m->dtype);
    for (int64_t b = 0; b < B; b++) {  // moments[b] = [mean[b]; logvar[b]]
        const char *src = (const char *)mo.data + 2 * b * half;
        if (mean) dev_copy(m->dev, (char *)mean->data + b * half, src, half);
        if (logvar) dev_copy(m->dev, (char *)logvar->data + b * half, src + half, half);
    }
    if (logvar) {  // DiagonalGaussianDistribution: logvar.clamp(-30, 20)
        const int64_t n = tensor_numel(logvar);
        float *v = malloc((size_t)n * sizeof *v);
        if (!v) STORY_FATAL("out of memory");
        tensor_to_host_f32(logvar, v);
        for (int64_t i = 0; i < n; i++) v[i] = v[i] < -30.0f ? -30.0f : v[i] > 20.0f ? 20.0f : v[i];
        tensor_from_host_f32(logvar, v);
        free(v);
    }
    arena_release(ws, mark);
    return 0;
}

size_t vae_encode_scratch_bytes(const Vae *m, int B, int H, int W) {
    const VaeConfig *c = &m->cfg;
    const size_t mo =
        (size_t)B * 2 * c->latent_channels * vae_latent_size(c, H) * vae_latent_size(c, W);
    return al(mo * dtype_size(m->dtype)) + vae_encode_moments_scratch_bytes(m, B, H, W);
}

// models/motion_module.c: AnimateDiff's motion module (see motion_module.h).
//
// Like the UNet's forward, every function here also runs "dry" (same arena allocations, no
// arithmetic) so that motion_module_scratch_bytes is the exact peak.
#include "models/motion_module.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cuda_runtime_api.h"
#include "kernels/ops.h"
#include "models/unet_internal.h"
#include "runner/check.h"

// ---- loading ------------------------------------------------------------------------------------

typedef struct {
    UnetTensorSource src;
    void *ctx;
    Arena *arena;
    DType dt;
    char *err;
    size_t errlen;
    int failed;
} Loader;

#if defined(__GNUC__)
__attribute__((format(printf, 5, 6)))
#endif
static void
ld_tensor(Loader *ld, Tensor *t, int ndim, const int64_t *shape, const char *fmt, ...) {
    if (ld->failed) return;
    char name[320];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    if (ld->src(ld->ctx, name, ndim, shape, ld->arena, ld->dt, t, ld->err, ld->errlen))
        ld->failed = 1;
}

static void ld_linear(Loader *ld, UnetParam *p, int64_t out, int64_t in, int bias, const char *pre,
                      const char *what) {
    ld_tensor(ld, &p->w, 2, SHAPE(out, in), "%s.%s.weight", pre, what);
    if (bias) ld_tensor(ld, &p->b, 1, SHAPE(out), "%s.%s.bias", pre, what);
}

static void ld_norm(Loader *ld, UnetParam *p, int64_t c, const char *pre, const char *what) {
    ld_tensor(ld, &p->w, 1, SHAPE(c), "%s.%s.weight", pre, what);
    ld_tensor(ld, &p->b, 1, SHAPE(c), "%s.%s.bias", pre, what);
}

static void ld_attention(Loader *ld, UnetAttention *a, int c, int heads, const char *pre,
                         const char *what) {
    char p[360];
    snprintf(p, sizeof p, "%s.%s", pre, what);
    a->heads = heads, a->head_dim = c / heads;
    ld_linear(ld, &a->to_q, c, c, 0, p, "to_q");
    ld_linear(ld, &a->to_k, c, c, 0, p, "to_k");
    ld_linear(ld, &a->to_v, c, c, 0, p, "to_v");
    ld_linear(ld, &a->to_out, c, c, 1, p, "to_out.0");
}

int motion_module_load(MotionModule *mm, int channels, int heads, int depth, int groups,
                       int max_frames, UnetTensorSource src, void *ctx, const char *prefix,
                       Arena *arena, DType dt, char *err, size_t errlen) {
    memset(mm, 0, sizeof *mm);
    if (channels < 1 || heads < 1 || channels % heads || groups < 1 || channels % groups ||
        depth < 1 || max_frames < 1)
        return snprintf(err, errlen,
                        "%s: a motion module of %d channels, %d heads, %d groups, depth %d, %d "
                        "frames cannot be built (channels must divide by heads and groups)",
                        prefix, channels, heads, groups, depth, max_frames),
               -1;
    if (arena->dev == DEV_CPU && dt != DT_F32)
        return snprintf(err, errlen, "%s: the CPU back end computes in f32, not %s", prefix,
                        dtype_name(dt)),
               -1;
    mm->channels = channels, mm->heads = heads, mm->depth = depth, mm->groups = groups;
    mm->max_frames = max_frames;
    mm->blocks = calloc((size_t)depth, sizeof *mm->blocks);
    if (!mm->blocks) return snprintf(err, errlen, "%s: out of memory", prefix), -1;
    Loader ld = {src, ctx, arena, dt, err, errlen, 0};
    const int64_t C = channels;
    ld_norm(&ld, &mm->norm, C, prefix, "norm");
    ld_linear(&ld, &mm->proj_in, C, C, 1, prefix, "proj_in");
    for (int k = 0; k < depth; k++) {
        UnetTransformerBlock *b = &mm->blocks[k];
        char p[340];
        snprintf(p, sizeof p, "%s.transformer_blocks.%d", prefix, k);
        ld_norm(&ld, &b->norm1, C, p, "norm1");
        ld_attention(&ld, &b->attn1, channels, heads, p, "attn1");
        ld_norm(&ld, &b->norm2, C, p, "norm2");
        ld_attention(&ld, &b->attn2, channels, heads, p, "attn2");
        ld_norm(&ld, &b->norm3, C, p, "norm3");
        ld_linear(&ld, &b->ff_in, 8 * C, C, 1, p, "ff.net.0.proj");
        ld_linear(&ld, &b->ff_out, C, 4 * C, 1, p, "ff.net.2");
    }
    ld_linear(&ld, &mm->proj_out, C, C, 1, prefix, "proj_out");
    ld_tensor(&ld, &mm->pe, 3, SHAPE(1, max_frames, C), "%s.transformer_blocks.0.pos_embed.pe",
              prefix);
    if (ld.failed) {
        motion_module_free(mm);
        return -1;
    }
    mm->pe = tensor_reshape(&mm->pe, 2, SHAPE(max_frames, C));
    return 0;
}

void motion_module_free(MotionModule *mm) {
    free(mm->blocks);
    mm->blocks = NULL;
}

void motion_pe_fill(float *pe, int max_frames, int channels) {
    // torch computes div_term = exp(arange(0, C, 2) * (-ln(10000) / C)) and sin/cos of
    // position * div_term in f32; double here differs by at most an ulp of the result.
    for (int p = 0; p < max_frames; p++)
        for (int i = 0; 2 * i < channels; i++) {
            const double w = exp(2.0 * i * (-log(10000.0) / channels)), a = p * w;
            pe[(size_t)p * channels + 2 * i] = (float)sin(a);
            if (2 * i + 1 < channels) pe[(size_t)p * channels + 2 * i + 1] = (float)cos(a);
        }
}

int motion_pe_tensor(Arena *arena, DType dt, int ndim, const int64_t *shape, Tensor *out, char *err,
                     size_t errlen) {
    if (ndim != 3 || shape[0] != 1 || shape[1] < 1 || shape[2] < 1)
        return snprintf(err, errlen, "pos_embed.pe: expected a (1, frames, channels) table"), -1;
    const int rows = (int)shape[1], C = (int)shape[2];
    const size_t n = (size_t)rows * C, es = dtype_size(dt);
    float *f = malloc(n * sizeof *f);
    void *host = dt == DT_F32 ? (void *)f : malloc(n * es);
    if (!f || !host) {
        free(f);
        if (host != f) free(host);
        return snprintf(err, errlen, "pos_embed.pe: out of memory"), -1;
    }
    motion_pe_fill(f, rows, C);
    for (size_t i = 0; dt != DT_F32 && i < n; i++)
        ((uint16_t *)host)[i] = dt == DT_F16 ? f32_to_f16(f[i]) : f32_to_bf16(f[i]);
    *out = arena_tensor(arena, dt, 3, shape);
    if (arena->dev == DEV_CUDA)
        story_cuda_memcpy(out->data, host, n * es, 0);
    else
        memcpy(out->data, host, n * es);
    if (host != f) free(host);
    free(f);
    return 0;
}

// ---- forward --------------------------------------------------------------------------------

typedef struct {
    const MotionModule *mm;
    Arena *ws;
    int dry;
    DType dt;
} Run;

#define NEW(r, ...) arena_tensor((r)->ws, (r)->dt, NDIM(__VA_ARGS__), SHAPE(__VA_ARGS__))
#define VIEW(r, data, ...) \
    tensor_view((data), (r)->dt, (r)->ws->dev, NDIM(__VA_ARGS__), SHAPE(__VA_ARGS__))

static const Tensor *bias_of(const UnetParam *p) { return p->b.data ? &p->b : NULL; }

static void linear(Run *r, Tensor *out, const Tensor *x, const UnetParam *p) {
    if (!r->dry) op_linear(out, x, &p->w, bias_of(p));
}
static void lnorm(Run *r, Tensor *out, const Tensor *x, const UnetParam *p) {
    if (!r->dry) op_layer_norm(out, x, &p->w, &p->b, 1e-5f);
}
static void add(Run *r, Tensor *out, const Tensor *a, const Tensor *b) {
    if (!r->dry) op_add(out, a, b);
}
static void transpose(Run *r, Tensor *out, const Tensor *x) {
    if (!r->dry) op_transpose(out, x);
}

#define FF_CHUNK_BYTES ((size_t)24 << 20)  // as the UNet: the GEGLU input in ~24 MiB chunks

// One BasicTransformerBlock on h (N, F, C), N = B*H*W, in place. pe: (F, C) rows of the table.
static void block(Run *r, const UnetTransformerBlock *b, Tensor *h, const Tensor *pe) {
    const int64_t N = h->shape[0], F = h->shape[1], C = h->shape[2], rows = N * F;
    const size_t es = dtype_size(r->dt), mark = arena_mark(r->ws);
    Tensor n = NEW(r, N, F, C), a = NEW(r, N, F, C);
    const UnetAttention *attn[2] = {&b->attn1, &b->attn2};
    const UnetParam *norm[2] = {&b->norm1, &b->norm2};
    for (int i = 0; i < 2; i++) {  // h += attn_i(norm_i(h) + pe): both over the frames
        lnorm(r, &n, h, norm[i]);
        add(r, &n, &n, pe);
        const Tensor *kv[1] = {&n};
        unet_attention_impl(attn[i], &a, &n, kv, 1, r->ws, r->dry);
        add(r, h, h, &a);
    }
    lnorm(r, &n, h, &b->norm3);
    int64_t chunk = (int64_t)(FF_CHUNK_BYTES / ((size_t)12 * C * es));
    if (chunk < 64) chunk = 64;
    if (chunk > rows) chunk = rows;
    Tensor f = NEW(r, chunk, 8 * C), g = NEW(r, chunk, 4 * C);
    for (int64_t r0 = 0; r0 < rows; r0 += chunk) {
        const int64_t nr = rows - r0 < chunk ? rows - r0 : chunk;
        const size_t off = (size_t)(r0 * C) * es;
        Tensor nv = VIEW(r, (char *)n.data + off, nr, C), av = VIEW(r, (char *)a.data + off, nr, C);
        Tensor hv = VIEW(r, (char *)h->data + off, nr, C);
        Tensor fv = VIEW(r, f.data, nr, 8 * C), gv = VIEW(r, g.data, nr, 4 * C);
        linear(r, &fv, &nv, &b->ff_in);
        if (!r->dry) op_geglu(&gv, &fv);
        linear(r, &av, &gv, &b->ff_out);
        add(r, &hv, &hv, &av);
    }
    arena_release(r->ws, mark);
}

static void run(Run *r, Tensor *x, int frames) {
    const MotionModule *mm = r->mm;
    const int64_t BF = x->shape[0], C = x->shape[1], HW = x->shape[2] * x->shape[3];
    const int64_t F = frames, B = BF / F, N = B * HW;
    const size_t mark = arena_mark(r->ws);
    // tokens: x as (B, F*C, HW) -> t (B, HW, F*C) = (B, HW*F, C); its (B, C, HW*F) transpose
    // is the channel-first map whose group norm is the (B, C, F, H, W) one
    Tensor x3 = VIEW(r, x->data, B, F * C, HW);
    Tensor t = NEW(r, B, HW, F * C), tc = NEW(r, B, C, HW * F);
    Tensor t3 = VIEW(r, t.data, B, HW * F, C);
    transpose(r, &t, &x3);
    transpose(r, &tc, &t3);
    if (!r->dry) op_group_norm(&tc, &tc, &mm->norm.w, &mm->norm.b, mm->groups, 1e-6f, 0);
    transpose(r, &t3, &tc);
    Tensor h = NEW(r, N, F, C);
    Tensor tok = VIEW(r, t.data, N, F, C);
    linear(r, &h, &tok, &mm->proj_in);
    Tensor pe = VIEW(r, mm->pe.data, F, C);  // the first F rows of the table
    for (int k = 0; k < mm->depth; k++) block(r, &mm->blocks[k], &h, &pe);
    linear(r, &tok, &h, &mm->proj_out);
    // back: (B, HW, F*C) -> (B, F*C, HW) = (B*F, C, H, W), added to the residual
    Tensor back = VIEW(r, tc.data, B, F * C, HW);
    transpose(r, &back, &t);
    add(r, &x3, &x3, &back);
    arena_release(r->ws, mark);
}

void motion_module_forward(const MotionModule *mm, Tensor *x, int frames, Arena *scratch) {
    STORY_CHECK(x->ndim == 4 && x->shape[1] == mm->channels && frames >= 1 &&
                    frames <= mm->max_frames && x->shape[0] % frames == 0 &&
                    x->dtype == mm->pe.dtype && x->dev == mm->pe.dev && scratch->dev == x->dev,
                "motion_module_forward: x must be (B*F, %d, H, W) with F = %d in 1 .. %d on the "
                "module's dtype and device",
                mm->channels, frames, mm->max_frames);
    Run r = {mm, scratch, 0, x->dtype};
    run(&r, x, frames);
}

size_t motion_module_scratch_bytes(const MotionModule *mm, int rows, int H, int W, int frames) {
    Arena a = unet_counting_arena(mm->pe.dev);
    Tensor x = tensor_view(NULL, mm->pe.dtype, mm->pe.dev, 4, SHAPE(rows, mm->channels, H, W));
    Run r = {mm, &a, 1, mm->pe.dtype};
    run(&r, &x, frames);
    return a.peak;
}

// models/unet_forward.c: the UNet2DConditionModel forward pass (see unet.h).
//
// Every function here also runs "dry" (Run.dry): the same arena allocations in the same
// order with no arithmetic, on a counting arena, which is how unet_scratch_bytes knows the
// exact peak. So every op call goes through the small wrappers below.
#include <stdio.h>
#include <string.h>

#include "kernels/ops.h"
#include "models/unet.h"
#include "models/unet_internal.h"
#include "runner/check.h"

typedef struct {
    const Unet *m;
    Arena *ws;
    int dry;
    DType dt;
    const Tensor *context;  // (B, L, cross_dim)
    Tensor emb;             // silu(time embedding) (B, T): what every resnet's time_emb_proj reads
    UnetSelfAttnFn attn_fn;
    void *attn_ctx;
    UnetCrossAttnFn cross_fn;
    void *cross_ctx;
    UnetLayerFn layer_fn;  // NULL: none
    void *layer_ctx;
    UnetAttnSite site;
    const UnetFreeU *freeu;  // NULL when off
    UnetAttnSite *sites;     // dry runs of unet_self_attn_sites: every site, in order
} Run;

#define NEW(r, ...) arena_tensor((r)->ws, (r)->dt, NDIM(__VA_ARGS__), SHAPE(__VA_ARGS__))

// A tensor over existing memory (another tensor's, an arena block).
static Tensor view(const Run *r, void *data, int ndim, const int64_t *shape) {
    return tensor_view(data, r->dt, r->ws->dev, ndim, shape);
}
#define VIEW(r, data, ...) view((r), (data), NDIM(__VA_ARGS__), SHAPE(__VA_ARGS__))

static const Tensor *bias_of(const UnetParam *p) { return p->b.data ? &p->b : NULL; }

static void conv(Run *r, Tensor *out, const Tensor *x, const UnetParam *p, int stride, int pad) {
    if (!r->dry) op_conv2d(out, x, &p->w, bias_of(p), stride, pad, r->ws);
}
static void linear(Run *r, Tensor *out, const Tensor *x, const UnetParam *p) {
    if (!r->dry) op_linear(out, x, &p->w, bias_of(p));
}
static void gnorm(Run *r, Tensor *out, const Tensor *x, const UnetParam *p, float eps, int silu) {
    if (!r->dry) op_group_norm(out, x, &p->w, &p->b, r->m->cfg.norm_num_groups, eps, silu);
}
static void lnorm(Run *r, Tensor *out, const Tensor *x, const UnetParam *p) {
    if (!r->dry) op_layer_norm(out, x, &p->w, &p->b, 1e-5f);  // BasicTransformerBlock's default eps
}
static void add(Run *r, Tensor *out, const Tensor *a, const Tensor *b) {
    if (!r->dry) op_add(out, a, b);
}
static void swap_last2(Run *r, Tensor *out, const Tensor *x) {
    if (!r->dry) unet_swap_last2(out, x);
}

// ---- attention ------------------------------------------------------------------------------

void unet_attention_impl(const UnetAttention *a, Tensor *out, const Tensor *x,
                         const Tensor *const *kv, int n, Arena *ws, int dry) {
    STORY_CHECK(n >= 1 && n < ATTN_MAX_SEGMENTS,
                "unet_attention: %d key/value token sets (1 .. %d)", n, ATTN_MAX_SEGMENTS - 1);
    const int64_t B = x->shape[0], Lq = x->shape[1], inner = a->to_q.w.shape[0];
    const size_t mark = arena_mark(ws);
    Tensor q = arena_tensor(ws, x->dtype, 3, SHAPE(B, Lq, inner));
    Tensor k[ATTN_MAX_SEGMENTS], v[ATTN_MAX_SEGMENTS];
    KVSegment seg[ATTN_MAX_SEGMENTS];
    if (!dry) op_linear(&q, x, &a->to_q.w, NULL);
    for (int i = 0; i < n; i++) {
        const int64_t Bk = kv[i]->shape[0], Lk = kv[i]->shape[1];
        k[i] = arena_tensor(ws, x->dtype, 3, SHAPE(Bk, Lk, inner));
        v[i] = arena_tensor(ws, x->dtype, 3, SHAPE(Bk, Lk, inner));
        if (!dry) {
            op_linear(&k[i], kv[i], &a->to_k.w, NULL);
            op_linear(&v[i], kv[i], &a->to_v.w, NULL);
        }
        seg[i].k = &k[i];
        seg[i].v = &v[i];
    }
    Tensor o = arena_tensor(ws, x->dtype, 3, SHAPE(B, Lq, inner));
    if (!dry) {
        op_attention(&o, &q, seg, n, a->heads, 0, 0.0f);
        op_linear(out, &o, &a->to_out.w, bias_of(&a->to_out));
    }
    arena_release(ws, mark);
}

void unet_attention(const UnetAttention *a, Tensor *out, const Tensor *x, const Tensor *const *kv,
                    int n, Arena *scratch) {
    unet_attention_impl(a, out, x, kv, n, scratch, 0);
}

void unet_self_attn_default(void *ctx, const UnetAttnSite *site, Tensor *out,
                            const Tensor *x_normed, const UnetAttention *attn, Arena *scratch) {
    (void)ctx, (void)site;
    const Tensor *kv[1] = {x_normed};
    unet_attention_impl(attn, out, x_normed, kv, 1, scratch, 0);
}

void unet_cross_attn_default(void *ctx, const UnetAttnSite *site, Tensor *out,
                             const Tensor *x_normed, const UnetAttention *attn,
                             const Tensor *context, Arena *scratch) {
    (void)ctx, (void)site;
    const Tensor *kv[1] = {context};
    unet_attention_impl(attn, out, x_normed, kv, 1, scratch, 0);
}

// Feed-forward rows per chunk: the GEGLU input (rows, 8C) is the largest activation of a
// transformer block, so it is computed in chunks of about 24 MiB (diffusers' forward
// chunking, always on: the same values, less memory).
#define FF_CHUNK_BYTES ((size_t)24 << 20)

// One BasicTransformerBlock on h (B, L, C), in place.
static void transformer_block(Run *r, const UnetTransformerBlock *b, Tensor *h) {
    const int64_t B = h->shape[0], L = h->shape[1], C = h->shape[2], rows = B * L;
    const size_t es = dtype_size(r->dt), mark = arena_mark(r->ws);
    Tensor n = NEW(r, B, L, C), a = NEW(r, B, L, C);
    // h += attn1(norm1(h)): through the seam
    lnorm(r, &n, h, &b->norm1);
    if (r->dry) {
        if (r->sites) r->sites[r->site.layer] = r->site;
        const Tensor *kv[1] = {&n};
        unet_attention_impl(&b->attn1, &a, &n, kv, 1, r->ws, 1);
    } else {
        const size_t m2 = arena_mark(r->ws);
        r->attn_fn(r->attn_ctx, &r->site, &a, &n, &b->attn1, r->ws);
        arena_release(r->ws, m2);
    }
    add(r, h, h, &a);
    // h += attn2(norm2(h), context): through the cross-attention seam, same site
    lnorm(r, &n, h, &b->norm2);
    if (r->dry) {
        const Tensor *kv[1] = {r->context};
        unet_attention_impl(&b->attn2, &a, &n, kv, 1, r->ws, 1);
    } else {
        const size_t m2 = arena_mark(r->ws);
        r->cross_fn(r->cross_ctx, &r->site, &a, &n, &b->attn2, r->context, r->ws);
        arena_release(r->ws, m2);
    }
    r->site.layer++;
    add(r, h, h, &a);
    // h += ff(norm3(h)) = ff.net.2(geglu(ff.net.0.proj(norm3(h)))), by chunks of rows
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

// Transformer2DModel on x (B, C, H, W), in place: x += proj_out(blocks(proj_in(norm(x)))).
static void transformer(Run *r, const UnetTransformer *t, Tensor *x) {
    const int64_t B = x->shape[0], C = x->shape[1], H = x->shape[2], W = x->shape[3], L = H * W;
    const size_t mark = arena_mark(r->ws);
    Tensor h = NEW(r, B, L, C);  // the tokens, (B, H*W, C)
    const size_t m2 = arena_mark(r->ws);
    Tensor g = NEW(r, B, C, H, W), tok = NEW(r, B, L, C);
    Tensor g3 = VIEW(r, g.data, B, C, L);
    gnorm(r, &g, x, &t->norm, 1e-6f, 0);
    swap_last2(r, &tok, &g3);
    linear(r, &h, &tok, &t->proj_in);
    arena_release(r->ws, m2);
    r->site.height = (int)H, r->site.width = (int)W;
    for (int i = 0; i < t->depth; i++) {
        r->site.transformer = i;
        transformer_block(r, &t->blocks[i], &h);
    }
    Tensor o = NEW(r, B, L, C);
    linear(r, &o, &h, &t->proj_out);
    Tensor oc = VIEW(r, h.data, B, C, H, W);  // h is spent: the channel-first result goes there
    Tensor oc3 = VIEW(r, h.data, B, C, L);
    swap_last2(r, &oc3, &o);
    add(r, x, x, &oc);
    arena_release(r->ws, mark);
}

// ---- resnet, blocks -------------------------------------------------------------------------

// ResnetBlock2D: out (B, cout, H, W) from x (B, cin, H, W); out must not alias x.
static void resnet(Run *r, const UnetResnet *p, Tensor *out, const Tensor *x) {
    const int64_t B = x->shape[0], H = x->shape[2], W = x->shape[3];
    const float eps = r->m->cfg.norm_eps;
    const size_t mark = arena_mark(r->ws);
    Tensor h = NEW(r, B, p->cin, H, W), h2 = NEW(r, B, p->cout, H, W), t = NEW(r, B, p->cout);
    gnorm(r, &h, x, &p->norm1, eps, 1);
    conv(r, &h2, &h, &p->conv1, 1, 1);
    linear(r, &t, &r->emb, &p->time_emb_proj);
    Tensor t4 = VIEW(r, t.data, B, p->cout, 1, 1);
    add(r, &h2, &h2, &t4);
    gnorm(r, &h2, &h2, &p->norm2, eps, 1);
    conv(r, out, &h2, &p->conv2, 1, 1);
    if (p->conv_shortcut.w.data) {
        // h is spent; when it is large enough the shortcut goes there
        Tensor s = p->cin >= p->cout ? VIEW(r, h.data, B, p->cout, H, W) : NEW(r, B, p->cout, H, W);
        conv(r, &s, x, &p->conv_shortcut, 1, 0);
        add(r, out, out, &s);
    } else {
        add(r, out, out, x);
    }
    arena_release(r->ws, mark);
}

static void set_site(Run *r, UnetBlockKind kind, int block, int attention) {
    r->site.kind = kind;
    r->site.block = block;
    r->site.attention = attention;
}

// The layer seam: h (B, C, H, W) after layer `layer` of a block (see unet.h).
static void layer_hook(Run *r, UnetBlockKind kind, int block, int layer, Tensor *h) {
    if (r->dry || !r->layer_fn) return;
    const UnetLayerSite s = {kind, block, layer, r->site.step};
    const size_t mark = arena_mark(r->ws);
    r->layer_fn(r->layer_ctx, &s, h, r->ws);
    arena_release(r->ws, mark);
}

// diffusers' apply_freeu for up block i (0 or 1), before a resnet's concatenation.
static void freeu(Run *r, int i, Tensor *h, Tensor *skip) {
    if (!r->freeu || i > 1 || r->dry) return;
    const float b = i == 0 ? r->freeu->b1 : r->freeu->b2, s = i == 0 ? r->freeu->s1 : r->freeu->s2;
    const int64_t B = h->shape[0], C = h->shape[1], half = C / 2, HW = h->shape[2] * h->shape[3];
    const size_t es = dtype_size(r->dt);
    for (int64_t n = 0; n < B; n++) {  // hidden_states[:, :C/2] *= b
        Tensor v = VIEW(r, (char *)h->data + (size_t)(n * C * HW) * es, half, HW);
        op_scale(&v, &v, b, 0.0f);
    }
    unet_fourier_filter(skip, 1, s);
}

// The forward pass on shapes alone when r->dry (sample/out data unused then).
static void run_forward(Run *r, const UnetInputs *in, const Tensor *sample, Tensor *out) {
    const Unet *m = r->m;
    const UnetConfig *c = &m->cfg;
    const int nb = c->nblocks;
    const int64_t B = sample->shape[0], T = c->time_embed_dim, C0 = c->block_out_channels[0];
    int64_t H = sample->shape[2], W = sample->shape[3];
    const size_t mark0 = arena_mark(r->ws), es = dtype_size(r->dt);

    // emb = time_embedding(timestep_embedding(t)) (+ add_embedding(...)), then silu once
    Tensor tp = NEW(r, B, C0), e1 = NEW(r, B, T), emb = NEW(r, B, T);
    if (!r->dry)
        op_timestep_embedding(&tp, in->timesteps, c->flip_sin_to_cos, c->freq_shift, 10000.0f);
    linear(r, &e1, &tp, &m->time_1);
    if (!r->dry) op_silu(&e1, &e1);
    linear(r, &emb, &e1, &m->time_2);
    if (c->addition_time_embed_dim) {
        // SDXL: add_embedding(concat(text_embeds, timestep_embedding(time_ids).reshape(B, -1)))
        const int64_t td = c->addition_time_embed_dim, P = c->projection_class_embeddings_input_dim;
        Tensor ids = NEW(r, B * 6, td), cat = NEW(r, B, P), a1 = NEW(r, B, T), a2 = NEW(r, B, T);
        Tensor ids2 = VIEW(r, ids.data, B, 6 * td);
        if (!r->dry) {
            op_timestep_embedding(&ids, in->time_ids, c->flip_sin_to_cos, c->freq_shift, 10000.0f);
            op_concat(&cat, in->text_embeds, &ids2, 1);
        }
        linear(r, &a1, &cat, &m->add_1);
        if (!r->dry) op_silu(&a1, &a1);
        linear(r, &a2, &a1, &m->add_2);
        add(r, &emb, &emb, &a2);
    }
    if (!r->dry) op_silu(&emb, &emb);
    r->emb = emb;

    // down: every output is a skip for the up blocks (LIFO, so they live in the arena's stack)
    Tensor skips[1 + UNET_MAX_BLOCKS * UNET_MAX_LAYERS];
    int ns = 0;
    Tensor h = NEW(r, B, C0, H, W);
    if (c->center_input_sample) {
        const size_t m2 = arena_mark(r->ws);
        Tensor s2 = NEW(r, B, c->in_channels, H, W);
        if (!r->dry) op_scale(&s2, sample, 2.0f, -1.0f);
        conv(r, &h, &s2, &m->conv_in, 1, 1);
        arena_release(r->ws, m2);
    } else {
        conv(r, &h, sample, &m->conv_in, 1, 1);
    }
    skips[ns++] = h;
    for (int i = 0; i < nb; i++) {
        const UnetBlock *b = &m->down[i];
        for (int j = 0; j < b->nlayers; j++) {
            Tensor o = NEW(r, B, b->cout, H, W);
            resnet(r, &b->res[j], &o, &h);
            if (b->cross) {
                set_site(r, UNET_DOWN, i, j);
                transformer(r, &b->attn[j], &o);
            }
            layer_hook(r, UNET_DOWN, i, j, &o);
            skips[ns++] = h = o;
        }
        if (b->resample) {
            H /= 2, W /= 2;
            Tensor o = NEW(r, B, b->cout, H, W);
            conv(r, &o, &h, &b->sample_conv, 2, 1);
            skips[ns++] = h = o;
        }
    }

    // mid and up: the backbone alternates between two buffers of the largest size it takes
    const int64_t top = c->block_out_channels[nb - 1];
    size_t big = (size_t)(B * top * H * W);
    for (int i = 0, hh = (int)H, ww = (int)W; i < nb; i++) {
        size_t n = (size_t)(B * m->up[i].cout) * hh * ww;
        if (m->up[i].resample) n *= 4, hh *= 2, ww *= 2;
        if (n > big) big = n;
    }
    char *buf[2] = {arena_alloc(r->ws, big * es), arena_alloc(r->ws, big * es)};
    int cur = 0;
    Tensor o = VIEW(r, buf[cur], B, top, H, W);
    resnet(r, &m->mid_res[0], &o, &h);
    set_site(r, UNET_MID, 0, 0);
    transformer(r, &m->mid_attn, &o);
    layer_hook(r, UNET_MID, 0, 0, &o);
    h = VIEW(r, buf[cur ^= 1], B, top, H, W);
    resnet(r, &m->mid_res[1], &h, &o);

    for (int i = 0; i < nb; i++) {
        const UnetBlock *b = &m->up[i];
        for (int j = 0; j < b->nlayers; j++) {
            Tensor *skip = &skips[--ns];
            freeu(r, i, &h, skip);
            const size_t m2 = arena_mark(r->ws);
            Tensor cat = NEW(r, B, h.shape[1] + skip->shape[1], H, W);
            if (!r->dry) op_concat(&cat, &h, skip, 1);
            o = VIEW(r, buf[cur ^= 1], B, b->cout, H, W);
            resnet(r, &b->res[j], &o, &cat);
            arena_release(r->ws, m2);
            if (b->cross) {
                set_site(r, UNET_UP, i, j);
                transformer(r, &b->attn[j], &o);
            }
            layer_hook(r, UNET_UP, i, j, &o);
            h = o;
        }
        if (b->resample) {  // Upsample2D: nearest 2x, then conv 3x3
            const size_t m2 = arena_mark(r->ws);
            Tensor u = NEW(r, B, b->cout, 2 * H, 2 * W);
            if (!r->dry) op_upsample_nearest2x(&u, &h);
            H *= 2, W *= 2;
            o = VIEW(r, buf[cur ^= 1], B, b->cout, H, W);
            conv(r, &o, &u, &b->sample_conv, 1, 1);
            arena_release(r->ws, m2);
            h = o;
        }
    }
    STORY_CHECK(ns == 0, "unet: %d skip connections left over", ns);

    Tensor g = NEW(r, B, C0, H, W);
    gnorm(r, &g, &h, &m->norm_out, c->norm_eps, 1);
    conv(r, out, &g, &m->conv_out, 1, 1);
    arena_release(r->ws, mark0);
}

// ---- entry points -----------------------------------------------------------------------------

static int downsamplers(const Unet *m) {
    int n = 0;
    for (int i = 0; i < m->cfg.nblocks; i++) n += m->down[i].resample;
    return n;
}

int unet_self_attn_layers(const Unet *m) {
    int n = m->mid_attn.depth;
    for (int i = 0; i < m->cfg.nblocks; i++)
        for (int j = 0; j < UNET_MAX_LAYERS; j++)
            n += m->down[i].attn[j].depth + m->up[i].attn[j].depth;
    return n;
}

static int check_tensor(const Unet *m, const Tensor *t, const char *what, int ndim,
                        const int64_t *shape, char *err, size_t errlen) {
    char d[96];
    int ok = t && t->ndim == ndim && t->dtype == m->dtype && t->dev == m->dev;
    for (int i = 0; ok && i < ndim; i++) ok = shape[i] < 0 || t->shape[i] == shape[i];
    if (ok) return 0;
    int n = snprintf(err, errlen, "unet: %s is %s, expected (", what,
                     t ? tensor_desc(t, d, sizeof d) : "missing");
    for (int i = 0; i < ndim && n < (int)errlen; i++)
        n += shape[i] < 0
                 ? snprintf(err + n, errlen - n, "%s*", i ? ", " : "")
                 : snprintf(err + n, errlen - n, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (n < (int)errlen)
        snprintf(err + n, errlen - n, ") %s %s", dtype_name(m->dtype),
                 m->dev == DEV_CPU ? "cpu" : "cuda");
    return -1;
}

int unet_forward(const Unet *m, const UnetInputs *in, Tensor *out, Arena *ws, char *err,
                 size_t errlen) {
    const UnetConfig *c = &m->cfg;
    const Tensor *s = in->sample;
    if (check_tensor(m, s, "sample", 4, SHAPE(-1, c->in_channels, -1, -1), err, errlen)) return -1;
    const int64_t B = s->shape[0], H = s->shape[2], W = s->shape[3];
    const int f = 1 << downsamplers(m);
    if (B < 1 || H < 1 || W < 1 || H % f || W % f)
        return snprintf(err, errlen,
                        "unet: a %lld x %lld latent does not fit this UNet: height and width must "
                        "be multiples of %d "
                        "(images: multiples of %d pixels)",
                        (long long)H, (long long)W, f, 8 * f),
               -1;
    if (check_tensor(m, in->encoder_hidden_states, "encoder_hidden_states", 3,
                     SHAPE(B, -1, c->cross_dim[0]), err, errlen) ||
        check_tensor(m, out, "out", 4, SHAPE(B, c->out_channels, H, W), err, errlen))
        return -1;
    if (!in->timesteps) return snprintf(err, errlen, "unet: no timesteps"), -1;
    if (c->addition_time_embed_dim) {
        const int64_t P =
            c->projection_class_embeddings_input_dim - 6 * (int64_t)c->addition_time_embed_dim;
        if (check_tensor(m, in->text_embeds, "text_embeds (SDXL pooled prompt embeddings)", 2,
                         SHAPE(B, P), err, errlen))
            return -1;
        if (!in->time_ids)
            return snprintf(err, errlen,
                            "unet: this UNet needs time_ids (SDXL micro-conditioning)"),
                   -1;
    }
    STORY_CHECK(ws && ws->dev == m->dev,
                "unet_forward: the scratch arena must be on the model's device");
    Run r = {0};
    r.m = m, r.ws = ws, r.dt = m->dtype, r.context = in->encoder_hidden_states;
    r.attn_fn = in->self_attn ? in->self_attn : unet_self_attn_default;
    r.attn_ctx = in->self_attn_ctx;
    r.cross_fn = in->cross_attn ? in->cross_attn : unet_cross_attn_default;
    r.cross_ctx = in->cross_attn_ctx;
    r.layer_fn = in->layer_fn, r.layer_ctx = in->layer_ctx;
    r.site.step = in->step;
    // as diffusers' is_freeu_enabled: off unless all four factors are nonzero
    r.freeu = in->freeu && in->freeu->b1 != 0 && in->freeu->b2 != 0 && in->freeu->s1 != 0 &&
                      in->freeu->s2 != 0
                  ? in->freeu
                  : NULL;
    run_forward(&r, in, s, out);
    return 0;
}

int unet_self_attn_sites(const Unet *m, int H, int W, UnetAttnSite *sites) {
    const UnetConfig *c = &m->cfg;
    const int f = 1 << downsamplers(m);
    if (H < 1 || W < 1 || H % f || W % f) return -1;
    Arena a = unet_counting_arena(m->dev);
    Tensor sample = tensor_view(NULL, m->dtype, m->dev, 4, SHAPE(1, c->in_channels, H, W));
    Tensor ctx = tensor_view(NULL, m->dtype, m->dev, 3, SHAPE(1, 77, c->cross_dim[0]));
    Tensor out = tensor_view(NULL, m->dtype, m->dev, 4, SHAPE(1, c->out_channels, H, W));
    UnetInputs in = {0};
    Run r = {0};
    r.m = m, r.ws = &a, r.dry = 1, r.dt = m->dtype, r.context = &ctx, r.sites = sites;
    run_forward(&r, &in, &sample, &out);
    return r.site.layer;
}

size_t unet_scratch_bytes(const Unet *m, int B, int H, int W, int L) {
    const UnetConfig *c = &m->cfg;
    Arena a = unet_counting_arena(m->dev);
    Tensor sample = tensor_view(NULL, m->dtype, m->dev, 4, SHAPE(B, c->in_channels, H, W));
    Tensor ctx = tensor_view(NULL, m->dtype, m->dev, 3, SHAPE(B, L, c->cross_dim[0]));
    Tensor out = tensor_view(NULL, m->dtype, m->dev, 4, SHAPE(B, c->out_channels, H, W));
    UnetInputs in = {0};
    Run r = {0};
    r.m = m, r.ws = &a, r.dry = 1, r.dt = m->dtype, r.context = &ctx;
    run_forward(&r, &in, &sample, &out);
    return a.peak + UNET_CONV_MARGIN;
}

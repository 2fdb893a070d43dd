// models/csa.c: Consistent Self-Attention: plan, random choices, banks, bank mode hooks
// (see csa.h). Window mode is in models/csa_window.c.
#include "models/csa.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kernels/cuda_runtime_api.h"
#include "kernels/ops.h"
#include "models/rng.h"
#include "models/csa_internal.h"
#include "runner/check.h"

double csa_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

// ---- plan ---------------------------------------------------------------------------------

static int site_channels(const Unet *m, const UnetAttnSite *s) {
    if (s->kind == UNET_MID) return m->mid_attn.channels;
    const UnetBlock *b = s->kind == UNET_DOWN ? &m->down[s->block] : &m->up[s->block];
    return b->attn[s->attention].channels;
}

int csa_plan_init(CsaPlan *p, const Unet *m, const CsaSettings *set, uint64_t seed, int steps,
                  int image_w, int image_h, int latent_w, int latent_h, char *err, size_t errlen) {
    memset(p, 0, sizeof *p);
    p->set = *set;
    p->seed = seed;
    p->steps = steps;
    p->image_w = image_w, p->image_h = image_h;
    p->n_layers = unet_self_attn_layers(m);
    p->sites = mallocCheck((size_t)(p->n_layers + 1) * sizeof *p->sites);
    p->csa = mallocCheck((size_t)(3 * p->n_layers + 1) * sizeof(int));
    p->k = p->csa + p->n_layers;
    p->channels = p->k + p->n_layers;
    if (unet_self_attn_sites(m, latent_h, latent_w, p->sites) != p->n_layers) {
        csa_plan_free(p);
        return snprintf(err, errlen, "csa: a %dx%d latent does not fit the UNet", latent_w,
                        latent_h),
               -1;
    }
    for (int l = 0; l < p->n_layers; l++) {
        const UnetAttnSite *s = &p->sites[l];
        p->channels[l] = site_channels(m, s);
        p->csa[l] = set->mode != CSA_MODE_OFF && (set->blocks & (1u << s->kind)) != 0;
        const int L = s->height * s->width;
        const float rate = csa_rate(p, l);
        int k = (int)lroundf(rate * (float)L);
        p->k[l] = p->csa[l] ? (k < 0 ? 0 : k > L ? L : k) : 0;
        p->n_csa += p->csa[l];
    }
    return 0;
}

void csa_plan_free(CsaPlan *p) {
    free(p->sites);
    free(p->csa);
    memset(p, 0, sizeof *p);
}

int csa_active(const CsaPlan *p, int step, int layer) {
    return p->csa[layer] && step >= p->set.warmup_steps;
}

float csa_rate(const CsaPlan *p, int layer) {
    if (p->set.mode == CSA_MODE_WINDOW) return p->set.window_rate;
    const UnetAttnSite *s = &p->sites[layer];
    if (s->height * 32 == p->image_h) return p->set.sa32;
    if (s->height * 16 == p->image_h) return p->set.sa64;
    return p->set.sa_other;
}

// ---- random choices --------------------------------------------------------------------------

int csa_gate(const CsaPlan *p, CsaKind kind, int64_t index, int step, int layer) {
    const float prob = step < p->set.gate_switch ? p->set.gate_early : p->set.gate_late;
    if (prob >= 1.0f) return 1;
    if (prob <= 0.0f) return 0;
    CsaKey k;
    STORY_CHECK(!csa_key(p->seed, kind, index, step, layer, CSA_PURPOSE_GATE, &k),
                "csa: gate key out of range (index %lld, step %d, layer %d)", (long long)index,
                step, layer);
    return rng_philox_uniform(csa_key_seed(&k), csa_key_stream(&k), 0) < prob;
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}
static int cmp_i32(const void *a, const void *b) {
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return x < y ? -1 : x > y;
}

void csa_sample(const CsaPlan *p, CsaKind kind, int64_t index, int step, int grid_h,
                int64_t offset, int L, int K, int32_t *idx) {
    if (K <= 0) return;
    STORY_CHECK(K <= L, "csa_sample: %d of %d tokens", K, L);
    CsaKey key;
    STORY_CHECK(!csa_key(p->seed, kind, index, step, grid_h, CSA_PURPOSE_SAMPLE, &key),
                "csa: sample key out of range (index %lld, step %d, grid %d)", (long long)index,
                step, grid_h);
    const uint64_t ks = csa_key_seed(&key), st = csa_key_stream(&key);
    uint64_t *w = mallocCheck((size_t)L * sizeof *w);
    for (int j = 0; j < L; j++)
        w[j] = (uint64_t)rng_philox_u32(ks, st, (uint64_t)(offset + j)) << 32 | (uint32_t)j;
    qsort(w, (size_t)L, sizeof *w, cmp_u64);
    for (int j = 0; j < K; j++) idx[j] = (int32_t)(w[j] & 0xffffffffu);
    qsort(idx, (size_t)K, sizeof *idx, cmp_i32);
    free(w);
}

// ---- tensor helpers ---------------------------------------------------------------------------

void csa_copy_bytes(void *dst, const void *src, size_t bytes, Device dev) {
    if (!bytes) return;
    if (dev == DEV_CPU)
        memcpy(dst, src, bytes);
    else
        story_cuda_memcpy(dst, src, bytes, 2);
}

Tensor csa_tokens(const Tensor *t, int64_t row, int64_t t0, int64_t n) {
    const int64_t L = t->shape[1], C = t->shape[2];
    Tensor v = tensor_view((char *)t->data + ((size_t)row * L + t0) * C * dtype_size(t->dtype),
                           t->dtype, t->dev, 3, SHAPE(1, n, C));
    return v;
}

// ---- banks ------------------------------------------------------------------------------------

static size_t round256(size_t n) { return (n + 255) & ~(size_t)255; }

size_t csa_bank_bytes(const CsaPlan *p, int n_images, int halves, DType dt) {
    size_t b = 0;
    for (int s = 0; s < p->steps; s++)
        for (int l = 0; l < p->n_layers; l++)
            if (csa_active(p, s, l) && p->k[l] > 0)
                b += round256((size_t)halves * n_images * p->k[l] * p->channels[l] *
                              dtype_size(dt));
    return b;
}

int csa_bank_init(CsaBank *b, const CsaPlan *p, const char *name, int n_images, int halves,
                  DType dt, Device dev, char *err, size_t errlen) {
    memset(b, 0, sizeof *b);
    snprintf(b->name, sizeof b->name, "%s", name);
    b->steps = p->steps, b->n_layers = p->n_layers, b->halves = halves, b->n_images = n_images;
    b->dtype = dt, b->dev = dev;
    b->e = calloc((size_t)p->steps * p->n_layers, sizeof *b->e);
    size_t bytes = csa_bank_bytes(p, n_images, halves, dt), nidx = 0;
    for (int s = 0; s < p->steps; s++)
        for (int l = 0; l < p->n_layers; l++)
            if (csa_active(p, s, l)) nidx += (size_t)n_images * p->k[l];
    b->index_mem = malloc((nidx + 1) * sizeof(int32_t));
    if (!b->e || !b->index_mem || arena_init(&b->mem, dev, bytes + 256)) {
        csa_bank_free(b);
        return snprintf(err, errlen,
                        "cannot allocate %.1f MiB of %s memory for the bank of [%s] (%d id "
                        "images, %d steps)",
                        bytes / 1048576.0, dev == DEV_CPU ? "host" : "device", name, n_images,
                        p->steps),
               -1;
    }
    int32_t *ix = b->index_mem;
    for (int s = 0; s < p->steps; s++)
        for (int l = 0; l < p->n_layers; l++) {
            if (!csa_active(p, s, l) || !p->k[l]) continue;
            CsaBankLayer *e = &b->e[(size_t)s * p->n_layers + l];
            e->n_images = n_images, e->k = p->k[l];
            e->tokens = arena_tensor(&b->mem, dt, 3,
                                     SHAPE(halves, (int64_t)n_images * p->k[l], p->channels[l]));
            e->index = ix;
            ix += (size_t)n_images * p->k[l];
        }
    return 0;
}

void csa_bank_free(CsaBank *b) {
    arena_free(&b->mem);
    free(b->e);
    free(b->index_mem);
    memset(b, 0, sizeof *b);
}

const CsaBankLayer *csa_bank_layer(const CsaBank *b, int step, int layer) {
    if (step < 0 || step >= b->steps || layer < 0 || layer >= b->n_layers) return NULL;
    const CsaBankLayer *e = &b->e[(size_t)step * b->n_layers + layer];
    return e->k ? e : NULL;
}

// ---- bank mode: the id pass ----------------------------------------------------------------

// Gathered samples (n_images, halves, k, C) in pass order -> bank layout (halves, n*k, C).
static void bank_store(CsaBankLayer *e, const void *gathered, int halves, int C, DType dt,
                       Device dev) {
    const size_t blk = (size_t)e->k * C * dtype_size(dt);
    for (int j = 0; j < e->n_images; j++)
        for (int h = 0; h < halves; h++)
            csa_copy_bytes((char *)e->tokens.data + ((size_t)h * e->n_images + j) * blk,
                       (const char *)gathered + ((size_t)j * halves + h) * blk, blk, dev);
}

void csa_id_pass_attn(void *ctx, const UnetAttnSite *site, Tensor *out, const Tensor *x,
                      const UnetAttention *attn, Arena *scratch) {
    CsaIdPass *ip = ctx;
    const CsaPlan *p = ip->plan;
    const int l = site->layer, s = site->step;
    if (!csa_active(p, s, l)) {
        unet_self_attn_default(NULL, site, out, x, attn, scratch);
        return;
    }
    const int halves = ip->halves, nl = ip->n_local, K = p->k[l];
    const int64_t L = x->shape[1], C = x->shape[2];
    STORY_CHECK(x->shape[0] == (int64_t)halves * nl, "csa id pass: %lld rows for %d x %d images",
                (long long)x->shape[0], halves, nl);
    CsaBankLayer *e = (CsaBankLayer *)csa_bank_layer(ip->bank, s, l);
    const int n = ip->bank->n_images;
    if (e) {
        // this rank's samples (nl, halves, K, C), then the pass's, in pass order
        const size_t mark = arena_mark(scratch);
        Tensor send = arena_tensor(scratch, x->dtype, 2, SHAPE((int64_t)nl * halves * K, C));
        Tensor all = arena_tensor(scratch, x->dtype, 2, SHAPE((int64_t)n * halves * K, C));
        for (int i = 0; i < nl; i++) {
            int32_t *idx = e->index + (size_t)(ip->first + i) * K;
            csa_sample(p, CSA_KIND_FRAME, ip->frames[i], s, site->height, 0, (int)L, K, idx);
            for (int h = 0; h < halves; h++) {
                Tensor dst = tensor_rows(&send, ((int64_t)i * halves + h) * K, K);
                Tensor src = tensor_rows(x, (int64_t)h * nl + i, 1);
                op_gather_rows(&dst, &src, idx);
            }
        }
        const size_t bytes = tensor_nbytes(&send);
        double t0 = csa_now();
        if (ip->comm && ip->comm->size > 1)
            comm_all_gather_v(ip->comm, send.data, bytes, all.data, tensor_nbytes(&all), NULL, NULL);
        else
            csa_copy_bytes(all.data, send.data, bytes, x->dev);
        ip->comm_seconds += csa_now() - t0;
        bank_store(e, all.data, halves, (int)C, x->dtype, x->dev);
        arena_release(scratch, mark);
        // the other images' indices: every rank computes them (pure functions)
        // (kept in the bank for the store; the local ones were written above)
    }
    const int gate = e && n > 1 && csa_gate(p, CSA_KIND_CHARACTER, ip->character, s, l);
    for (int i = 0; i < nl; i++) {
        const int gi = ip->first + i;
        for (int h = 0; h < halves; h++) {
            const int64_t row = (int64_t)h * nl + i;
            Tensor xr = tensor_rows(x, row, 1), orow = tensor_rows(out, row, 1);
            Tensor before, after;
            const Tensor *kv[3] = {&xr};
            int nkv = 1;
            if (gate) {
                if (gi > 0) {
                    before = csa_tokens(&e->tokens, h, 0, (int64_t)gi * K);
                    kv[nkv++] = &before;
                }
                if (gi < n - 1) {
                    after = csa_tokens(&e->tokens, h, (int64_t)(gi + 1) * K,
                                       (int64_t)(n - 1 - gi) * K);
                    kv[nkv++] = &after;
                }
            }
            unet_attention(attn, &orow, &xr, kv, nkv, scratch);
        }
    }
}

void csa_id_pass_idle(CsaIdPass *ip) {
    const CsaPlan *p = ip->plan;
    const int n = ip->bank->n_images, halves = ip->halves;
    const size_t es = dtype_size(ip->bank->dtype);
    size_t most = 0;  // one receive buffer for the largest layer, reused by every gather
    for (int l = 0; l < p->n_layers; l++) {
        const size_t b = (size_t)n * halves * p->k[l] * p->channels[l] * es;
        if (b > most) most = b;
    }
    Arena tmp;
    STORY_CHECK(!arena_init(&tmp, ip->bank->dev, most + 256),
                "csa: no memory for %zu bytes of gathered tokens", most);
    void *buf = arena_alloc(&tmp, most + 1);
    for (int s = 0; s < p->steps; s++)
        for (int l = 0; l < p->n_layers; l++) {
            CsaBankLayer *e = (CsaBankLayer *)csa_bank_layer(ip->bank, s, l);
            if (!e) continue;
            const size_t bytes = (size_t)n * halves * e->k * p->channels[l] * es;
            double t0 = csa_now();
            comm_all_gather_v(ip->comm, NULL, 0, buf, bytes, NULL, NULL);
            ip->comm_seconds += csa_now() - t0;
            bank_store(e, buf, halves, p->channels[l], ip->bank->dtype, ip->bank->dev);
        }
    arena_free(&tmp);
}

// Every image's sample indices of the pass, on every rank (the id pass writes only the
// local ones while it runs; the stored bank keeps all).
void csa_id_pass_fill_indices(CsaIdPass *ip, const int *pass_frames) {
    const CsaPlan *p = ip->plan;
    for (int s = 0; s < p->steps; s++)
        for (int l = 0; l < p->n_layers; l++) {
            CsaBankLayer *e = (CsaBankLayer *)csa_bank_layer(ip->bank, s, l);
            if (!e) continue;
            const UnetAttnSite *st = &p->sites[l];
            for (int j = 0; j < e->n_images; j++)
                csa_sample(p, CSA_KIND_FRAME, pass_frames[j], s, st->height, 0,
                           st->height * st->width, e->k, e->index + (size_t)j * e->k);
        }
}

// ---- bank mode: other frames ---------------------------------------------------------------

void csa_frame_attn(void *ctx, const UnetAttnSite *site, Tensor *out, const Tensor *x,
                    const UnetAttention *attn, Arena *scratch) {
    const CsaFrame *fr = ctx;
    const CsaPlan *p = fr->plan;
    const int l = site->layer, s = site->step;
    if (!csa_active(fr->plan, s, l) || !fr->n_banks ||
        !csa_gate(p, CSA_KIND_FRAME, fr->frame, s, l)) {
        unet_self_attn_default(NULL, site, out, x, attn, scratch);
        return;
    }
    // kv = own tokens + each named character's bank at (s, l); rows = halves, and a bank's
    // tokens are (halves, n*k, C): row h reads half h
    const Tensor *kv[ATTN_MAX_SEGMENTS];
    int nkv = 0;
    kv[nkv++] = x;
    Tensor joined;
    const size_t mark = arena_mark(scratch);
    if (fr->n_banks + 1 < ATTN_MAX_SEGMENTS) {
        for (int b = 0; b < fr->n_banks; b++) {
            const CsaBankLayer *e = csa_bank_layer(fr->banks[b], s, l);
            if (e) kv[nkv++] = &e->tokens;
        }
    } else {  // more characters than segments: one joined copy of their banks
        int64_t tot = 0, C = x->shape[2];
        for (int b = 0; b < fr->n_banks; b++) {
            const CsaBankLayer *e = csa_bank_layer(fr->banks[b], s, l);
            if (e) tot += e->tokens.shape[1];
        }
        const int64_t H = x->shape[0];
        joined = arena_tensor(scratch, x->dtype, 3, SHAPE(H, tot, C));
        const size_t es = dtype_size(x->dtype);
        for (int64_t h = 0; h < H; h++) {
            int64_t at = 0;
            for (int b = 0; b < fr->n_banks; b++) {
                const CsaBankLayer *e = csa_bank_layer(fr->banks[b], s, l);
                if (!e) continue;
                const int64_t nt = e->tokens.shape[1];
                csa_copy_bytes((char *)joined.data + ((size_t)h * tot + at) * C * es,
                           (const char *)e->tokens.data + (size_t)h * nt * C * es,
                           (size_t)nt * C * es, x->dev);
                at += nt;
            }
        }
        kv[nkv++] = &joined;
    }
    unet_attention(attn, out, x, kv, nkv, scratch);
    arena_release(scratch, mark);
}

size_t csa_scratch_bytes(const CsaPlan *p, int halves, int n_images, DType dt) {
    size_t best = 0;
    for (int l = 0; l < p->n_layers; l++) {
        if (!p->csa[l]) continue;
        const size_t L = (size_t)p->sites[l].height * p->sites[l].width, C = (size_t)p->channels[l];
        const size_t extra = (size_t)n_images * p->k[l];
        const size_t b = dtype_size(dt) * C * ((size_t)halves * extra * 6 + (size_t)halves * L * 3) +
                         16 * 256;
        if (b > best) best = b;
    }
    return best + 65536;
}

// models/csa_window.c: window mode of Consistent Self-Attention (see csa.h).
//
// Store: for every frame a rank keeps ([lo, hi) = its window plan's need range), the tokens
// (x_normed, all halves) of every CSA layer at one step: (hi - lo) frames x frame_elems
// elements in the model's dtype, host memory; `cur` is being written during step s, `prev`
// holds step s - 1 and is what the window attention reads.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cuda_runtime_api.h"
#include "kernels/ops.h"
#include "models/csa.h"
#include "models/csa_internal.h"
#include "runner/check.h"

int csa_window_init(CsaWindow *w, const CsaPlan *p, const PartWindowPlan *wp, Comm *comm, int rank,
                    int halves, DType dt, Device dev, char *err, size_t errlen) {
    memset(w, 0, sizeof *w);
    w->plan = p, w->wp = wp, w->comm = comm, w->halves = halves, w->dtype = dt, w->dev = dev;
    w->lo = wp->need_lo[rank], w->hi = wp->need_hi[rank];
    w->layer_off = mallocCheck((size_t)(p->n_layers + 1) * sizeof *w->layer_off);
    size_t e = 0;
    for (int l = 0; l < p->n_layers; l++) {
        w->layer_off[l] = e;
        if (p->csa[l])
            e += (size_t)halves * p->sites[l].height * p->sites[l].width * p->channels[l];
    }
    w->frame_elems = e;
    const size_t bytes = (size_t)(w->hi - w->lo) * e * dtype_size(dt);
    w->prev = malloc(bytes + 1);
    w->cur = malloc(bytes + 1);
    if (!w->prev || !w->cur) {
        csa_window_free(w);
        return snprintf(err, errlen,
                        "window mode: cannot allocate 2 x %.1f MiB of host memory for the tokens "
                        "of %d frames (use more ranks or a smaller window)",
                        bytes / 1048576.0, wp->need_hi[rank] - wp->need_lo[rank]),
               -1;
    }
    w->frame = -1;
    return 0;
}

void csa_window_free(CsaWindow *w) {
    free(w->layer_off);
    free(w->prev);
    free(w->cur);
    memset(w, 0, sizeof *w);
}

size_t csa_window_host_bytes(const CsaWindow *w) {
    return 2 * (size_t)(w->hi - w->lo) * w->frame_elems * dtype_size(w->dtype);
}

void csa_window_begin(CsaWindow *w, int frame, int step) {
    STORY_CHECK(frame >= w->lo && frame < w->hi, "csa window: frame %d outside [%d, %d)", frame,
                w->lo, w->hi);
    w->frame = frame, w->step = step;
}

// Frame g's tokens of layer l, half h, in store s: (L, C) elements in the model's dtype.
static char *stored(const CsaWindow *w, float *store, int g, int l, int h) {
    const CsaPlan *p = w->plan;
    const size_t L = (size_t)p->sites[l].height * p->sites[l].width, C = (size_t)p->channels[l];
    const size_t es = dtype_size(w->dtype);
    return (char *)store +
           ((size_t)(g - w->lo) * w->frame_elems + w->layer_off[l] + (size_t)h * L * C) * es;
}

void csa_window_attn(void *ctx, const UnetAttnSite *site, Tensor *out, const Tensor *x,
                     const UnetAttention *attn, Arena *scratch) {
    CsaWindow *w = ctx;
    const CsaPlan *p = w->plan;
    const int l = site->layer, s = site->step, f = w->frame;
    if (!p->csa[l]) {
        unet_self_attn_default(NULL, site, out, x, attn, scratch);
        return;
    }
    const int halves = w->halves;
    const int64_t L = x->shape[1], C = x->shape[2];
    const size_t es = dtype_size(x->dtype), tok = (size_t)C * es;
    STORY_CHECK(x->shape[0] == halves, "csa window: %lld rows, expected %d",
                (long long)x->shape[0], halves);
    // record this step's tokens of f (read by its partners at step s + 1)
    for (int h = 0; h < halves; h++) {
        Tensor xr = tensor_rows(x, h, 1);
        void *dst = stored(w, w->cur, f, l, h);
        if (x->dev == DEV_CPU)
            memcpy(dst, xr.data, (size_t)L * tok);
        else
            story_cuda_memcpy(dst, xr.data, (size_t)L * tok, 1);
    }
    const int F = w->wp->n_frames, W = w->wp->window, K = p->k[l];
    if (!csa_active(p, s, l) || !w->have_prev || W < 2 || K == 0 ||
        !csa_gate(p, CSA_KIND_FRAME, f, s, l)) {
        unet_self_attn_default(NULL, site, out, x, attn, scratch);
        return;
    }
    const int t_lo = f - W + 1 > 0 ? f - W + 1 : 0, t_hi = f < F - W ? f : F - W;
    const int n_win = t_hi - t_lo + 1;
    const int64_t pool = (int64_t)(W - 1) * K;
    const size_t mark = arena_mark(scratch);
    Tensor stage = arena_tensor(scratch, x->dtype, 3, SHAPE(halves, pool, C));
    Tensor o = n_win > 1 ? arena_tensor(scratch, x->dtype, 3, SHAPE(halves, L, C)) : *out;
    char *host = x->dev == DEV_CPU ? NULL : mallocCheck((size_t)halves * pool * tok);
    int32_t *idx = mallocCheck((size_t)K * sizeof *idx);
    for (int t = t_lo; t <= t_hi; t++) {
        // the pool: K sampled tokens of every other frame of window t, step s - 1
        int64_t at = 0;
        for (int g = t; g < t + W; g++) {
            if (g == f) continue;
            csa_sample(p, CSA_KIND_WINDOW, t, s, site->height, (int64_t)(g - t) * L, (int)L, K,
                       idx);
            for (int h = 0; h < halves; h++) {
                const char *src = stored(w, w->prev, g, l, h);
                char *dst = (host ? host : (char *)stage.data) + ((size_t)h * pool + at) * tok;
                for (int j = 0; j < K; j++) memcpy(dst + (size_t)j * tok, src + (size_t)idx[j] * tok, tok);
            }
            at += K;
        }
        if (host) story_cuda_memcpy(stage.data, host, (size_t)halves * pool * tok, 0);
        const Tensor *kv[2] = {x, &stage};
        Tensor *dst = t == t_lo ? out : &o;
        unet_attention(attn, dst, x, kv, 2, scratch);
        if (t > t_lo) op_add(out, out, &o);
    }
    if (n_win > 1) op_scale(out, out, 1.0f / (float)n_win, 0.0f);
    free(idx);
    free(host);
    arena_release(scratch, mark);
}

void csa_window_end_step(CsaWindow *w) {
    const PartWindowPlan *wp = w->wp;
    const size_t fb = w->frame_elems * dtype_size(w->dtype);
    if (w->comm && w->comm->size > 1 && wp->n_shared > 0 && fb > 0) {
        // the shared frames this rank owns, in frame order; every rank receives all of them
        // (owners in rank order = frame order, as blocks are contiguous)
        const int r = w->comm->rank;
        int mine = 0;
        for (int f = wp->own_lo[r]; f < wp->own_hi[r]; f++) mine += wp->frame_shared[f];
        char *send = mallocCheck((size_t)mine * fb + 1), *recv = mallocCheck((size_t)wp->n_shared * fb);
        int k = 0;
        for (int f = wp->own_lo[r]; f < wp->own_hi[r]; f++)
            if (wp->frame_shared[f])
                memcpy(send + (size_t)k++ * fb, (char *)w->cur + (size_t)(f - w->lo) * fb, fb);
        double t0 = csa_now();
        comm_all_gather_v(w->comm, send, (size_t)mine * fb, recv, (size_t)wp->n_shared * fb, NULL,
                          NULL);
        w->comm_seconds += csa_now() - t0;
        k = 0;
        for (int f = 0; f < wp->n_frames; f++) {
            if (!wp->frame_shared[f]) continue;
            const int owned = f >= wp->own_lo[r] && f < wp->own_hi[r];
            if (!owned && f >= w->lo && f < w->hi)
                memcpy((char *)w->cur + (size_t)(f - w->lo) * fb, recv + (size_t)k * fb, fb);
            k++;
        }
        free(send);
        free(recv);
    }
    float *t = w->prev;
    w->prev = w->cur;
    w->cur = t;
    w->have_prev = 1;
}

// jobs/embed.c: `storyrun embed CONFIG [--set k=v ...]`: a video dataset -> CLIP image
// embeddings of sampled clips in a shared HDF5 store (runner/store_embed.h, docs/stores.md).
//
// The plan: every video of the dataset (runner/dataset.h, the same list on every rank) has
// clips.per_video clip slots, so the store's clip count is known before any video is read:
// clip c is slot c % per_video of video c / per_video. A slot is filled with the video's
// planned clip of that number (runner/video.h video_plan_clips); a slot the video has no
// room for, and every slot of a video that cannot be read, stays not done and gets a skip
// reason in clip_meta/skip_reason (logged on the rank that found it; never fatal).
//
// Ranks: the pending clips are split contiguously (partition/shard.h). A rank works through
// its clips in flush rounds of output.flush_every clips; at the end of each round all ranks
// agree (one all-reduce) on whether to stop and write their rows in one collective flush
// (ranks with nothing left join with empty rows). The number of rounds follows from the
// done flags every rank read, so all ranks make the same calls without asking each other.
// SIGTERM/SIGUSR1/SIGINT: the rank finishes the video it is on and its pending encoder
// batch, joins the flush, and the job exits 75 (STORY_EXIT_REQUEUE); re-running the same
// config resumes. STORY_EMBED_STOP_AFTER=N (tests): the rank raises SIGUSR1 on itself once
// it has embedded N clips in this run (checked between videos).
//
// Embeddings do not depend on the rank count: each clip's frames are decoded from the
// start of its video and preprocessed on their own (CLIPImageProcessor), and an encoder
// batch is only ever a set of whole clips whose rows are computed independently.
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <nettle/sha2.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "jobs/jobs.h"
#include "kernels/cuda_runtime_api.h"
#include "kernels/ops.h"
#include "models/clip_vision.h"
#include "partition/shard.h"
#include "runner/check.h"
#include "runner/comm.h"
#include "runner/config.h"
#include "runner/dataset.h"
#include "runner/log.h"
#include "runner/progress.h"
#include "runner/signals.h"
#include "runner/store_embed.h"
#include "runner/video.h"

typedef struct {
    const char *dataset, *dataset_root, *encoder, *store, *logs;
    int probe, L, stride, per_video, spread, exact_count, batch, flush_every, threads;
    int has_tokens, tokens_layer;  // tokens_layer as written (negative: from the end)
    double fps, start, end;
    EmbedDtype dtype;
    Device dev;
} EmbedConfig;

static void usage(FILE *f) {
    fprintf(f,
            "usage: storyrun embed CONFIG [--set key=value ...]\n"
            "  Embeds sampled clips of a video dataset with a CLIP image encoder into an HDF5\n"
            "  store (docs/stores.md); resumes the store when it exists. Run it on N ranks with\n"
            "  mpirun/srun. Keys (configs/embed.yaml has them all):\n"
            "    dataset.path dataset.root dataset.probe encoder\n"
            "    clips.length clips.stride | clips.fps clips.per_video clips.spread clips.start\n"
            "    clips.end clips.exact_count\n"
            "    embed.dtype embed.tokens embed.batch_size embed.device embed.threads\n"
            "    output.store output.flush_every output.logs\n"
            "  Exit: 0 done, 75 stopped by a signal (re-run to resume), 1 error, 2 bad config.\n");
}

// ---- config -------------------------------------------------------------------------------

static const char *const k_top[] = {"dataset", "encoder", "clips", "embed", "output", NULL};
static const char *const k_data[] = {"path", "root", "probe", NULL};
static const char *const k_clips[] = {"length", "stride", "fps",         "per_video", "spread",
                                      "start",  "end",    "exact_count", NULL};
static const char *const k_embed[] = {"dtype", "tokens", "batch_size", "device", "threads", NULL};
static const char *const k_out[] = {"store", "flush_every", "logs", NULL};
static const char *const spreads[] = {"even", "consecutive", NULL};
static const char *const dtypes[] = {"f16", "f32", NULL};
static const char *const devices[] = {"cpu", "cuda", NULL};

// A section: a mapping or absent (then NULL).
static const CfgNode *section(CfgDoc *d, const char *name, const char *const *keys) {
    const CfgNode *n = cfg_get(d->root, name);
    if (cfg_as_map(d, n, name) != 1) return NULL;
    cfg_check_keys(d, n, name, keys);
    return n;
}

static int read_config(CfgDoc *d, EmbedConfig *c) {
    memset(c, 0, sizeof *c);
    c->L = 16, c->stride = 4, c->per_video = 1, c->exact_count = 1, c->batch = 4;
    c->flush_every = 64, c->dtype = EMBED_F16, c->dev = DEV_CPU, c->end = -1;
    if (!d->root || d->root->kind != CFG_MAP)
        return cfg_error(d, d->root,
                         "expected a mapping with keys dataset, encoder, clips, embed, output");
    cfg_check_keys(d, d->root, "", k_top);
    const CfgNode *ds = cfg_get(d->root, "dataset");
    if (ds && ds->kind == CFG_SCALAR) {  // dataset: PATH is short for dataset: {path: PATH}
        cfg_as_string(d, ds, "dataset", &c->dataset);
    } else if ((ds = section(d, "dataset", k_data))) {
        cfg_get_string(d, ds, "path", "dataset.path", &c->dataset);
        cfg_get_string(d, ds, "root", "dataset.root", &c->dataset_root);
        const CfgNode *p = cfg_get(ds, "probe");
        if (p) cfg_as_bool(d, p, "dataset.probe", &c->probe);
    }
    if (!c->dataset)
        cfg_error(d, NULL,
                  "key 'dataset.path': missing; expected a folder of videos or a CSV/TSV manifest");
    if (cfg_get_string(d, d->root, "encoder", "encoder", &c->encoder) == 0)
        cfg_error(d, NULL,
                  "key 'encoder': missing; expected a CLIP vision model (a transformers folder "
                  "such as IP-Adapter's image_encoder/, or a .safetensors file)");
    const CfgNode *cl = section(d, "clips", k_clips);
    long long v;
    if (cl) {
        if (cfg_get_int(d, cl, "length", "clips.length", 1, 4096, &v) == 1) c->L = (int)v;
        int has_stride = cfg_get_int(d, cl, "stride", "clips.stride", 1, 100000, &v) == 1;
        if (has_stride) c->stride = (int)v;
        if (cfg_get_double(d, cl, "fps", "clips.fps", 1e-3, 1000, &c->fps) == 1) {
            if (has_stride)
                cfg_error(d, cfg_get_key(cl, "fps"),
                          "key 'clips.fps': give clips.stride or clips.fps, not both");
            c->stride = 0;
        }
        if (cfg_get_int(d, cl, "per_video", "clips.per_video", 1, 100000, &v) == 1)
            c->per_video = (int)v;
        const CfgNode *sp = cfg_get(cl, "spread");
        if (sp) cfg_as_enum(d, sp, "clips.spread", spreads, &c->spread);
        cfg_get_double(d, cl, "start", "clips.start", 0, INFINITY, &c->start);
        cfg_get_double(d, cl, "end", "clips.end", 0, INFINITY, &c->end);
        const CfgNode *ec = cfg_get(cl, "exact_count");
        if (ec) cfg_as_bool(d, ec, "clips.exact_count", &c->exact_count);
    }
    const CfgNode *em = section(d, "embed", k_embed);
    if (em) {
        int i;
        const CfgNode *n = cfg_get(em, "dtype");
        if (n && cfg_as_enum(d, n, "embed.dtype", dtypes, &i) == 0)
            c->dtype = i ? EMBED_F32 : EMBED_F16;
        n = cfg_get(em, "tokens");
        if (n && !cfg_is_null(n) && !(n->kind == CFG_SCALAR && !strcmp(n->text, "none"))) {
            if (cfg_as_int(d, n, "embed.tokens", -1000, 1000, &v) == 0)
                c->has_tokens = 1, c->tokens_layer = (int)v;
        }
        if (cfg_get_int(d, em, "batch_size", "embed.batch_size", 1, 4096, &v) == 1)
            c->batch = (int)v;
        n = cfg_get(em, "device");
        if (n && cfg_as_enum(d, n, "embed.device", devices, &i) == 0)
            c->dev = i ? DEV_CUDA : DEV_CPU;
        if (cfg_get_int(d, em, "threads", "embed.threads", 1, 4096, &v) == 1) c->threads = (int)v;
    }
    const CfgNode *out = section(d, "output", k_out);
    if (out) {
        cfg_get_string(d, out, "store", "output.store", &c->store);
        if (cfg_get_int(d, out, "flush_every", "output.flush_every", 1, 1 << 24, &v) == 1)
            c->flush_every = (int)v;
        cfg_get_string(d, out, "logs", "output.logs", &c->logs);
    }
    if (!c->store)
        cfg_error(d, NULL,
                  "key 'output.store': missing; expected the path of the HDF5 store to write (or "
                  "resume)");
    if (c->end >= 0 && c->end <= c->start)
        cfg_error(d, cfg_get(cl, "end"), "key 'clips.end': must be after clips.start (%g)",
                  c->start);
    return cfg_errors(d) ? -1 : 0;
}

// ---- hashes -------------------------------------------------------------------------------

static void hash_text(struct sha256_ctx *h, const char *s) {
    sha256_update(h, strlen(s) + 1, (const uint8_t *)s);  // with the NUL: "ab","c" != "a","bc"
}
static void hash_hex(struct sha256_ctx *h, char out[65]) {
    uint8_t dig[SHA256_DIGEST_SIZE];
    sha256_digest(h, sizeof dig, dig);
    for (int i = 0; i < SHA256_DIGEST_SIZE; i++) sprintf(out + 2 * i, "%02x", dig[i]);
}

// The encoder's architecture and preprocessing (what changes its outputs besides weights).
static void encoder_hash(const ClipVisionConfig *m, const ClipImageProcessor *p, char out[65]) {
    char buf[512];
    snprintf(
        buf, sizeof buf,
        "clip_vision hidden %d mlp %d layers %d heads %d image %d patch %d proj %d act %d eps %.9g "
        "| proc edge %d crop %dx%d rescale %.17g mean %.9g %.9g %.9g std %.9g %.9g %.9g",
        m->hidden_size, m->intermediate_size, m->num_hidden_layers, m->num_attention_heads,
        m->image_size, m->patch_size, m->projection_dim, (int)m->act, (double)m->layer_norm_eps,
        p->shortest_edge, p->crop_height, p->crop_width, p->rescale_factor, p->mean[0], p->mean[1],
        p->mean[2], p->std[0], p->std[1], p->std[2]);
    struct sha256_ctx h;
    sha256_init(&h);
    hash_text(&h, buf);
    hash_hex(&h, out);
}

// The dataset listing (names, captions, ranges) and the clip sampling: what fixes the plan.
static void plan_hash(const Dataset *ds, const EmbedConfig *c, char out[65]) {
    struct sha256_ctx h;
    sha256_init(&h);
    char buf[256];
    snprintf(buf, sizeof buf,
             "L %d stride %d fps %.17g per_video %d spread %d start %.17g end %.17g exact %d", c->L,
             c->stride, c->fps, c->per_video, c->spread, c->start, c->end, c->exact_count);
    hash_text(&h, buf);
    for (int i = 0; i < ds->n; i++) {
        const DatasetItem *it = &ds->items[i];
        hash_text(&h, it->id);
        hash_text(&h, it->caption);
        snprintf(buf, sizeof buf, "%.17g %.17g", it->start, it->end);
        hash_text(&h, buf);
    }
    hash_hex(&h, out);
}

// ---- the encoder -------------------------------------------------------------------------

typedef struct {
    ClipVision m;
    ClipImageProcessor proc;
    Arena weights, scratch, outs;
    DType dt;
    int S, T, C, D, hidden_index;  // hidden_index: resolved tokens layer, or -1
    int cap;                       // images per forward (batch clips * L)
    float *pix;                    // (cap, 3, S, S) host
    void *host;                    // device outputs copied back
} Encoder;

static int encoder_load(Encoder *e, const EmbedConfig *c, const ClipVisionConfig *cfg, char *err,
                        size_t n) {
    memset(e, 0, sizeof *e);
    e->dt = c->dev == DEV_CUDA ? DT_F16 : DT_F32;
    e->S = cfg->image_size, e->T = clip_vision_tokens(cfg), e->C = cfg->hidden_size;
    e->D = cfg->projection_dim > 0 ? cfg->projection_dim : cfg->hidden_size;
    e->hidden_index = -1;
    if (c->has_tokens) {
        int L = cfg->num_hidden_layers,
            i = c->tokens_layer < 0 ? L + 1 + c->tokens_layer : c->tokens_layer;
        if (i < 0 || i > L) {
            snprintf(
                err, n,
                "embed.tokens %d: the encoder has hidden states 0..%d (or -1..-%d from the end)",
                c->tokens_layer, L, L + 1);
            return -1;
        }
        e->hidden_index = i;
    }
    e->cap = c->batch * c->L;
    clip_image_processor_default(&e->proc, cfg->image_size);
    size_t es = dtype_size(e->dt),
           per = (size_t)e->D + (e->hidden_index >= 0 ? (size_t)e->T * e->C : 0);
    if (arena_init(&e->weights, c->dev, clip_vision_weight_bytes(cfg, e->dt)) ||
        arena_init(&e->scratch, c->dev, clip_vision_scratch_bytes(cfg, e->dt, e->cap)) ||
        arena_init(&e->outs, c->dev, 4096 + es * per * (size_t)e->cap)) {
        snprintf(err, n, "%s: not enough memory for the encoder at batch_size %d", c->encoder,
                 c->batch);
        return -1;
    }
    if (clip_vision_load(&e->m, c->encoder, &e->weights, e->dt, err, n)) return -1;
    e->pix = mallocCheck((size_t)e->cap * 3 * e->S * e->S * sizeof(float));
    e->host = mallocCheck(es * per * (size_t)e->cap);
    return 0;
}

static void encoder_free(Encoder *e) {
    clip_vision_free(&e->m);
    arena_free(&e->weights);
    arena_free(&e->scratch);
    arena_free(&e->outs);
    free(e->pix);
    free(e->host);
}

// Device or host tensor (n values of dt) -> f32 dst.
static void to_f32(const Tensor *t, int64_t n, void *stage, float *dst) {
    size_t bytes = (size_t)n * dtype_size(t->dtype);
    const void *src = t->data;
    if (t->dev == DEV_CUDA) {
        story_cuda_memcpy(stage, t->data, bytes, 1);  // device -> host
        src = stage;
    }
    if (t->dtype == DT_F32)
        memcpy(dst, src, bytes);
    else
        for (int64_t i = 0; i < n; i++)
            dst[i] = t->dtype == DT_F16 ? f16_to_f32(((const uint16_t *)src)[i])
                                        : bf16_to_f32(((const uint16_t *)src)[i]);
}

// Encodes the first `imgs` images of e->pix; embeddings to emb (imgs, D), tokens to tok
// (imgs, T, C) when asked.
static int encoder_run(Encoder *e, int imgs, float *emb, float *tok, char *err, size_t n) {
    size_t mark = arena_mark(&e->outs);
    Tensor pix = tensor_view(e->pix, DT_F32, DEV_CPU, 4, SHAPE(imgs, 3, e->S, e->S));
    Tensor te = ARENA_TENSOR(&e->outs, e->dt, imgs, e->D), th = {0};
    ClipVisionOutputs o = {NULL, NULL, NULL, NULL, 0};
    if (e->m.cfg.projection_dim > 0)
        o.image_embeds = &te;
    else
        o.pooled = &te;
    if (e->hidden_index >= 0) {
        th = ARENA_TENSOR(&e->outs, e->dt, imgs, e->T, e->C);
        o.hidden_state = &th;
        o.hidden_index = e->hidden_index;
    }
    int rc = clip_vision_forward(&e->m, &pix, &e->scratch, &o, err, n);
    if (rc == 0) {
        to_f32(&te, (int64_t)imgs * e->D, e->host, emb);
        if (tok) to_f32(&th, (int64_t)imgs * e->T * e->C, e->host, tok);
    }
    arena_release(&e->outs, mark);
    return rc;
}

// ---- one flush round ------------------------------------------------------------------------

typedef struct {
    EmbedConfig cfg;
    Comm *comm;
    Dataset ds;
    Encoder enc;
    int64_t n_clips;
    // this round's rows (capacity flush_every)
    int64_t n, *clip, *frames;
    uint8_t *done;
    float *emb, *tok;
    double *fps;
    char **reason;
    // the encoder batch: images of whole clips, in row order
    int batch_clips, batch_rows[4096];
    int64_t embedded, skipped;  // this run, this rank
    int64_t stop_after;
} Job;

static void row_skip(Job *j, int r, const char *why) {
    j->done[r] = 0;
    free(j->reason[r]);
    j->reason[r] = strdup(why);
    j->skipped++;
}

static int flush_batch(Job *j) {
    if (!j->batch_clips) return 0;
    int L = j->cfg.L, imgs = j->batch_clips * L;
    size_t te = (size_t)L * j->enc.T * j->enc.C;
    float *emb = mallocCheck((size_t)imgs * j->enc.D * sizeof(float));
    float *tok = j->tok ? mallocCheck((size_t)imgs * j->enc.T * j->enc.C * sizeof(float)) : NULL;
    char err[1024];
    int rc = encoder_run(&j->enc, imgs, emb, tok, err, sizeof err);
    if (rc) {
        LOG_ERROR("encoder: %s", err);
    } else {
        for (int b = 0; b < j->batch_clips; b++) {
            int r = j->batch_rows[b];
            memcpy(j->emb + (size_t)r * L * j->enc.D, emb + (size_t)b * L * j->enc.D,
                   sizeof(float) * L * j->enc.D);
            if (tok) memcpy(j->tok + (size_t)r * te, tok + (size_t)b * te, sizeof(float) * te);
            j->done[r] = 1;
            j->embedded++;
        }
    }
    free(emb);
    free(tok);
    j->batch_clips = 0;
    return rc;
}

// Rows [r0, r0 + k) are clips of one video (consecutive slots). Decodes, preprocesses and
// queues them for the encoder; rows that cannot be filled get a reason.
static int do_video(Job *j, int64_t video, int r0, int k) {
    const EmbedConfig *c = &j->cfg;
    const DatasetItem *it = &j->ds.items[video];
    char err[1024], why[1200];
    VideoReader *vr = NULL;
    VideoClipPlan plan = {0};
    for (int i = 0; i < k; i++) {
        j->fps[r0 + i] = 0;
        for (int l = 0; l < c->L; l++) j->frames[(size_t)(r0 + i) * c->L + l] = -1;
    }
    if (video_open(it->path, c->exact_count ? VIDEO_EXACT_COUNT : 0, &vr, err, sizeof err)) {
        LOG_WARN("skipping %d clip(s) of video %" PRId64 ": %s", k, video, err);
        for (int i = 0; i < k; i++) row_skip(j, r0 + i, err);
        return 0;
    }
    const VideoInfo *info = video_info(vr);
    VideoClipSpec spec = {c->L,
                          c->stride > 0 ? c->stride : 1,
                          c->fps,
                          c->per_video,
                          (VideoClipSpread)c->spread,
                          it->start >= 0 ? it->start : c->start,
                          it->end >= 0 ? it->end : (c->end > 0 ? c->end : 0)};
    if (video_plan_clips(&spec, info->nframes, info->fps, it->path, &plan, err, sizeof err)) {
        LOG_WARN("skipping %d clip(s) of video %" PRId64 ": %s", k, video, err);
        for (int i = 0; i < k; i++) row_skip(j, r0 + i, err);
        video_close(vr);
        return 0;
    }
    int64_t *idx = mallocCheck((size_t)k * c->L * sizeof *idx);
    int *rows = mallocCheck((size_t)k * sizeof *rows), nr = 0;
    for (int i = 0; i < k; i++) {
        int r = r0 + i, slot = (int)(j->clip[r] % c->per_video);
        j->fps[r] = info->fps;
        if (slot >= plan.nclips) {
            snprintf(why, sizeof why, "%s: room for %d clip(s) of %d frames, this is slot %d of %d",
                     it->path, plan.nclips, c->L, slot + 1, c->per_video);
            LOG_WARN("skipping clip %" PRId64 ": %s", j->clip[r], why);
            row_skip(j, r, why);
            continue;
        }
        memcpy(j->frames + (size_t)r * c->L, plan.frames + (size_t)slot * c->L,
               sizeof(int64_t) * c->L);
        memcpy(idx + (size_t)nr * c->L, plan.frames + (size_t)slot * c->L, sizeof(int64_t) * c->L);
        rows[nr++] = r;
    }
    int rc = 0;
    if (nr) {
        // All clips of this video in one decoding pass: (nr * L, h, w, 3) RGB.
        size_t fb = (size_t)info->width * info->height * 3;
        uint8_t *rgb = malloc(fb * (size_t)nr * c->L);
        if (!rgb)
            snprintf(err, sizeof err, "%s: out of memory for %d frames of %dx%d", it->path,
                     nr * c->L, info->width, info->height);
        if (!rgb || video_read_frames(vr, idx, nr * c->L, 0, 0, rgb, err, sizeof err)) {
            LOG_WARN("skipping %d clip(s) of video %" PRId64 ": %s", nr, video, err);
            for (int i = 0; i < nr; i++) row_skip(j, rows[i], err);
        } else {
            for (int i = 0; i < nr && rc == 0; i++) {
                int base = j->batch_clips * c->L, bad = 0;
                for (int l = 0; l < c->L && !bad; l++) {
                    Tensor pix = tensor_view(j->enc.pix, DT_F32, DEV_CPU, 4,
                                             SHAPE(j->enc.cap, 3, j->enc.S, j->enc.S));
                    bad = clip_preprocess_rgb(&j->enc.proc, rgb + fb * ((size_t)i * c->L + l),
                                              info->width, info->height, (size_t)info->width * 3,
                                              &pix, base + l, err, sizeof err);
                }
                if (bad) {
                    LOG_WARN("skipping clip %" PRId64 ": %s", j->clip[rows[i]], err);
                    row_skip(j, rows[i], err);
                    continue;
                }
                j->batch_rows[j->batch_clips++] = rows[i];
                if (j->batch_clips == c->batch) rc = flush_batch(j);
            }
            LOG_INFO("video %" PRId64 " %s: %d clip(s) decoded (clips %" PRId64 "..%" PRId64 ")",
                     video, it->id, nr, j->clip[rows[0]], j->clip[rows[nr - 1]]);
        }
        free(rgb);
    }
    free(idx);
    free(rows);
    video_clip_plan_free(&plan);
    video_close(vr);
    return rc;
}

// Fills rows for mine[0..count) (one round's slice) until done or a stop is requested.
static int do_round(Job *j, const int64_t *mine, int64_t count) {
    j->n = 0;
    for (int64_t i = 0; i < count;) {
        if (j->stop_after > 0 && j->embedded >= j->stop_after && !signals_requested()) {
            LOG_INFO("STORY_EMBED_STOP_AFTER=%" PRId64 ": %" PRId64
                     " clips embedded; raising SIGUSR1",
                     j->stop_after, j->embedded);
            raise(SIGUSR1);  // the path a Slurm warning signal takes
        }
        if (signals_requested()) break;
        int64_t video = mine[i] / j->cfg.per_video, k = 1;
        while (i + k < count && mine[i + k] / j->cfg.per_video == video) k++;
        for (int64_t q = 0; q < k; q++) {
            j->clip[j->n + q] = mine[i + q];
            j->done[j->n + q] = 0;
            free(j->reason[j->n + q]);
            j->reason[j->n + q] = NULL;
        }
        int r0 = (int)j->n;
        j->n += k;
        if (do_video(j, video, r0, (int)k)) return -1;
        i += k;
    }
    return flush_batch(j);
}

// ---- the job ---------------------------------------------------------------------------------

// CONFIG and its overrides, then this job's keys. Returns 0, or -1 (rank 0 printed why).
static int parse_args(int argc, char **argv, CfgDoc *d, EmbedConfig *c, int rank, char *err,
                      size_t errlen) {
    const char *path = cfg_load_args(d, argc, argv, "embed", NULL, NULL, usage, rank == 0, err, errlen);
    if (!path) return -1;
    int rc = read_config(d, c);
    if (rc && rank == 0) fprintf(stderr, "storyrun embed: %s has problems:\n%s", path, err);
    return rc;
}

// Opens (resume) or creates the store for this plan. Collective.
static int open_store(Job *j, const EmbedStoreSpec *spec, EmbedStore **st, char *err, size_t n) {
    int exists = access(j->cfg.store, F_OK) == 0;
    if (exists) return embed_store_open(j->comm, j->cfg.store, spec, st, err, n);
    int64_t nc = spec->n_clips;
    const char **vp = mallocCheck((size_t)nc * sizeof *vp),
               **cap = mallocCheck((size_t)nc * sizeof *cap);
    int64_t *vi = mallocCheck((size_t)nc * sizeof *vi);
    for (int64_t i = 0; i < nc; i++) {
        const DatasetItem *it = &j->ds.items[i / j->cfg.per_video];
        vp[i] = it->path, cap[i] = it->caption, vi[i] = i / j->cfg.per_video;
    }
    EmbedStorePlanMeta meta = {vp, cap, vi};
    int rc = embed_store_create(j->comm, j->cfg.store, spec, &meta, st, err, n);
    free(vp);
    free(cap);
    free(vi);
    return rc;
}

static int run(Job *j) {
    Comm *comm = j->comm;
    EmbedConfig *c = &j->cfg;
    char err[8192];
    DatasetOptions dopt = {c->dataset_root, c->probe, DATASET_WEBVID_AUTO, NULL};
    int rc = dataset_open(c->dataset, &dopt, &j->ds, err, sizeof err);
    if (comm_any(comm, rc)) {
        if (comm->rank == 0) LOG_ERROR("%s", err);
        return 1;
    }
    if (comm->rank == 0)
        for (int i = 0; i < j->ds.nbad_kept; i++) LOG_WARN("skipped dataset row: %s", j->ds.bad[i]);
    ClipVisionConfig vcfg;
    rc = clip_vision_config(&vcfg, c->encoder, err, sizeof err);
    if (!rc && c->dev == DEV_CUDA && comm->device < 0) {
        snprintf(err, sizeof err,
                 "embed.device cuda: this rank sees no CUDA device (see `storyrun devices`)");
        rc = -1;
    }
    if (!rc) rc = encoder_load(&j->enc, c, &vcfg, err, sizeof err);
    if (comm_any(comm, rc)) {
        if (rc) LOG_ERROR("%s", err);
        return 1;
    }
    char ehash[65], phash[65], pre[512];
    encoder_hash(&vcfg, &j->enc.proc, ehash);
    plan_hash(&j->ds, c, phash);
    const ClipImageProcessor *p = &j->enc.proc;
    snprintf(
        pre, sizeof pre,
        "CLIPImageProcessor: RGB; shortest side -> %d (Pillow bicubic); center crop %dx%d; "
        "rescale 1/255; normalize mean (%.8g, %.8g, %.8g) std (%.8g, %.8g, %.8g); embeds: %s",
        p->shortest_edge, p->crop_height, p->crop_width, p->mean[0], p->mean[1], p->mean[2],
        p->std[0], p->std[1], p->std[2],
        vcfg.projection_dim > 0 ? "image_embeds (visual_projection)" : "pooled (no projection)");
    j->n_clips = (int64_t)j->ds.n * c->per_video;
    EmbedStoreSpec spec = {c->encoder, ehash,        phash,    j->n_clips,
                           j->ds.n,    c->L,         j->enc.D, c->stride,
                           c->fps,     c->per_video, c->dtype, j->enc.hidden_index,
                           j->enc.T,   j->enc.C,     pre,      c->dataset};
    if (c->stride == 0) spec.stride = 0;
    EmbedStore *st = NULL;
    rc = open_store(j, &spec, &st, err, sizeof err);
    if (comm_any(comm, rc)) {
        if (comm->rank == 0 || rc) LOG_ERROR("%s", err);
        if (st) embed_store_close(st, err, sizeof err);
        return 1;
    }
    const uint8_t *done = embed_store_done(st);
    int64_t done0 = j->n_clips - shard_pending_count(done, j->n_clips);
    int64_t n_mine = shard_clips(done, j->n_clips, comm->size, comm->rank, NULL, 0);
    int64_t *mine = mallocCheck((size_t)(n_mine ? n_mine : 1) * sizeof *mine);
    shard_clips(done, j->n_clips, comm->size, comm->rank, mine, n_mine);
    // Every rank computes the same round count from the same done flags.
    int64_t rounds = shard_rounds(shard_max_count(done, j->n_clips, comm->size), c->flush_every);
    LOG_INFO("embed: %s: %" PRId64 " clips (%d videos x %d), %" PRId64
             " done before; this rank: %" PRId64 " clips in %" PRId64 " flush round(s)",
             c->store, j->n_clips, j->ds.n, c->per_video, done0, n_mine, rounds);

    size_t K = (size_t)c->flush_every, te = (size_t)c->L * j->enc.T * j->enc.C;
    j->clip = mallocCheck(K * sizeof *j->clip);
    j->frames = mallocCheck(K * c->L * sizeof *j->frames);
    j->done = mallocCheck(K);
    j->emb = calloc(K * c->L * j->enc.D, sizeof(float));
    j->tok = j->enc.hidden_index >= 0 ? calloc(K * te, sizeof(float)) : NULL;
    j->fps = mallocCheck(K * sizeof *j->fps);
    j->reason = calloc(K, sizeof *j->reason);
    if (!j->emb || !j->reason || (j->enc.hidden_index >= 0 && !j->tok))
        STORY_FATAL("out of memory for %zu rows of flush_every", K);
    Progress *prog = progress_start(&(ProgressOptions){.label = "embed",
                                                       .unit = "clips",
                                                       .step = "clips",
                                                       .total_units = (long)j->n_clips,
                                                       .silent = comm->rank != 0});
    progress_skip(prog, (long)done0, (long)done0);
    int stopped = 0, failed = 0;
    float totals[3] = {0, 0, 0};  // embedded, skipped over all ranks, this run
    for (int64_t q = 0; q < rounds && !stopped; q++) {
        int64_t lo, hi;
        shard_round_slice(n_mine, c->flush_every, q, &lo, &hi);
        int64_t e0 = j->embedded, s0 = j->skipped;
        int bad = do_round(j, mine + lo, hi - lo);
        int want_stop = signals_requested() || j->n < hi - lo;
        float agree[4] = {(float)want_stop, (float)bad, (float)(j->embedded - e0),
                          (float)(j->skipped - s0)};
        comm_all_reduce_f32(comm, agree, 4);
        if (agree[1] > 0) {  // an encoder failure somewhere: nothing sensible to write
            failed = 1;
            break;
        }
        EmbedStoreRows rows = {j->n,   j->clip,   j->done, j->emb,
                               j->tok, j->frames, j->fps,  (const char *const *)j->reason};
        if (embed_store_write(st, &rows, err, sizeof err)) {
            LOG_ERROR("%s", err);
            comm_abort(comm, 1);
        }
        totals[0] += agree[2];
        totals[1] += agree[3];
        progress_steps(prog, (long)(agree[2] + agree[3]));
        progress_units(prog, (long)(agree[2] + agree[3]));  // skipped clips are handled too
        stopped = agree[0] > 0;
    }
    progress_finish(prog);
    rc = embed_store_close(st, err, sizeof err);
    if (rc) LOG_ERROR("%s", err);
    int sig = signals_requested();
    if (comm->rank == 0 && !failed)
        LOG_INFO(
            "embed: this run embedded %.0f clip(s) and skipped %.0f on %d rank(s); %s: %.0f of "
            "%" PRId64 " clips done%s",
            totals[0], totals[1], comm->size, c->store, (double)done0 + totals[0], j->n_clips,
            stopped ? " (stopped early: run the same config again to resume)" : "");
    if (stopped)
        LOG_INFO("embed: stopped on request (%s) after a collective flush; exit %d = resume me",
                 sig ? signals_name(sig) : "another rank's signal", STORY_EXIT_REQUEUE);
    // mpirun ends every rank as soon as one exits non-zero (75 included): no rank leaves
    // before rank 0 has said all of the above.
    comm_barrier(comm);
    for (size_t i = 0; i < K; i++) free(j->reason[i]);
    free(j->reason), free(j->fps), free(j->tok), free(j->emb), free(j->done), free(j->frames),
        free(j->clip);
    free(mine);
    if (failed || rc) return 1;
    return stopped ? STORY_EXIT_REQUEUE : 0;
}

int job_embed(int argc, char **argv) {
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        }
    Comm *comm = comm_init(&argc, &argv);
    Job *j = calloc(1, sizeof *j);
    if (!j) STORY_FATAL("out of memory");
    j->comm = comm;
    CfgDoc doc;
    static char err[16384];
    int rc = parse_args(argc, argv, &doc, &j->cfg, comm->rank, err, sizeof err);
    if (rc) {
        cfg_free(&doc);
        free(j);
        comm_finalize(comm);
        return 2;
    }
    EmbedConfig *c = &j->cfg;
    char logs[4096];
    snprintf(logs, sizeof logs, "%s", c->logs ? c->logs : "");
    if (!c->logs) snprintf(logs, sizeof logs, "%s.logs", c->store);
    log_init(logs, comm->rank);
    if (c->threads) cpu_set_threads(c->threads);
    signals_install();
    const char *sa = getenv("STORY_EMBED_STOP_AFTER");
    j->stop_after = sa ? strtoll(sa, NULL, 10) : 0;
    // The config's strings point into doc: it lives until the job ends.
    rc = run(j);
    encoder_free(&j->enc);
    dataset_free(&j->ds);
    cfg_free(&doc);
    free(j);
    log_close();
    comm_finalize(comm);
    return rc;
}

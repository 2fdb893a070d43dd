// jobs/predict.c: `storyrun predict CONFIG [--set k=v ...]`: frame pairs -> the motion
// predictor's transition embeddings, in an HDF5 transitions store (runner/store_transitions.h,
// docs/stores.md) that `storyrun animate` reads.
//
// Pairs come from a rendered story (the render job's output folder: its manifest.json lists
// the frames; pair i is frames (i, i + 1)) or from a pairs file (TSV: start image, end image,
// optional prompt). For each pair both images go through CLIPImageProcessor and the CLIP
// vision encoder (image_embeds: K_s, K_e, each (D)); the predictor maps the interpolation
// K_1..K_L between them to P_1..P_L (L, D), L being the predictor's frame count.
//
// Ranks: the pairs are split into contiguous blocks (partition part_split); each rank works
// alone, then every rank's rows (L + 2) * D floats per pair are gathered and rank 0 writes
// the store (a temporary name, then rename). Every image is encoded on its own (batch 1)
// and every pair predicted on its own (batch 1), so the values do not depend on the rank
// count or on which pairs a rank holds (tests/predict checks 1 and 2 ranks bitwise).
//
// Everything a user can get wrong (config, missing or damaged frames listed in the manifest,
// checkpoint, encoder, their embedding widths) is checked on every rank before anything is
// written: such a job exits 2 and leaves no store, no temporary file and no logs.
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "jobs/jobs.h"
#include "kernels/ops.h"
#include "models/clip_vision.h"
#include "models/motion_predictor.h"
#include "partition/partition.h"
#include "runner/check.h"
#include "runner/comm.h"
#include "runner/config.h"
#include "runner/image.h"
#include "runner/log.h"
#include "runner/manifest.h"
#include "runner/progress.h"
#include "runner/store_transitions.h"

typedef struct {
    const char *story, *pairs, *encoder, *predictor, *store, *logs;
    int threads;
} PredictConfig;

typedef struct {
    char *start, *end, *prompt;  // image paths as opened; the pair's prompt
    int64_t start_frame, end_frame;
} Pair;

typedef struct {
    ClipVision m;
    ClipImageProcessor proc;
    Arena weights, scratch, outs;
    int S, D;
    float *pix;  // (1, 3, S, S)
} Encoder;

typedef struct {
    Comm *comm;
    PredictConfig cfg;
    Pair *pairs;
    int n;
    Encoder enc;
    int enc_loaded;
    SmpModel smp;
    int smp_loaded;
    char sha[65];
    char preprocess[512];
    char default_store[4096];  // STORY/transitions.h5, where animate looks by default
} Job;

static void usage(FILE *f) {
    fprintf(
        f,
        "usage: storyrun predict CONFIG [--set key=value ...]\n"
        "  For consecutive frame pairs of a rendered story (or the image pairs of a TSV file),\n"
        "  encodes both ends with a CLIP vision encoder and predicts the transition\n"
        "  embeddings with a motion predictor checkpoint, into an HDF5 transitions store\n"
        "  (docs/stores.md). Run it on N ranks with mpirun/srun. Keys\n"
        "  (configs/predict-demo.yaml has them all):\n"
        "    story | pairs    a render output folder, or a TSV of: start image, end image,\n"
        "                     optional prompt (paths relative to the TSV's folder)\n"
        "    encoder predictor threads\n"
        "    output.store     the HDF5 store (default for a story: STORY/transitions.h5)\n"
        "    output.logs      per-rank logs (default: STORE.logs)\n"
        "  Exit: 0 done, 1 error, 2 bad config or inputs (nothing written).\n");
}

// ---- config -------------------------------------------------------------------------------

static const char *const k_top[] = {"story",   "pairs",  "encoder", "predictor",
                                    "threads", "output", NULL};
static const char *const k_out[] = {"store", "logs", NULL};

// map[name] as text; absent, empty and null values leave *out NULL (so `--set story=`
// switches a config's story off).
static void opt_string(CfgDoc *d, const CfgNode *map, const char *name, const char *key,
                       const char **out) {
    const CfgNode *n = cfg_get(map, name);
    if (n && !cfg_is_null(n)) cfg_as_string(d, n, key, out);
}

static int read_config(CfgDoc *d, PredictConfig *c) {
    memset(c, 0, sizeof *c);
    if (!d->root || d->root->kind != CFG_MAP)
        return cfg_error(d, d->root,
                         "expected a mapping with keys story (or pairs), encoder, predictor, "
                         "output");
    cfg_check_keys(d, d->root, "", k_top);
    opt_string(d, d->root, "story", "story", &c->story);
    opt_string(d, d->root, "pairs", "pairs", &c->pairs);
    if (c->story && c->pairs)
        cfg_error(d, cfg_get_key(d->root, "pairs"),
                  "key 'pairs': give story (a rendered story's folder) or pairs (a TSV file), "
                  "not both");
    if (!c->story && !c->pairs)
        cfg_error(d, NULL,
                  "key 'story': missing; expected the output folder of storyrun render (or "
                  "'pairs': a TSV file of start image, end image, prompt)");
    if (cfg_get_string(d, d->root, "encoder", "encoder", &c->encoder) == 0)
        cfg_error(d, NULL,
                  "key 'encoder': missing; expected a CLIP vision model (a transformers folder "
                  "such as IP-Adapter's image_encoder/, or a .safetensors file)");
    if (cfg_get_string(d, d->root, "predictor", "predictor", &c->predictor) == 0)
        cfg_error(d, NULL,
                  "key 'predictor': missing; expected a motion predictor checkpoint "
                  "(.safetensors, from storyrun train)");
    long long v;
    if (cfg_get_int(d, d->root, "threads", "threads", 1, 4096, &v) == 1) c->threads = (int)v;
    const CfgNode *out = cfg_get(d->root, "output");
    if (cfg_as_map(d, out, "output") == 1) {
        cfg_check_keys(d, out, "output", k_out);
        opt_string(d, out, "store", "output.store", &c->store);
        opt_string(d, out, "logs", "output.logs", &c->logs);
    }
    if (!c->store && c->pairs)
        cfg_error(d, NULL,
                  "key 'output.store': missing; expected the path of the HDF5 transitions store "
                  "to write (it defaults to STORY/transitions.h5 only for a story)");
    return cfg_errors(d) ? -1 : 0;
}

// CONFIG and its overrides, then this job's keys. Returns 0, or -1 (rank 0 printed why).
static int parse_args(int argc, char **argv, CfgDoc *d, PredictConfig *c, int rank, char *err,
                      size_t errlen) {
    const char *path = cfg_load_args(d, argc, argv, "predict", NULL, NULL, usage, rank == 0, err, errlen);
    if (!path) return -1;
    int rc = read_config(d, c);
    if (rc && rank == 0) fprintf(stderr, "storyrun predict: %s has problems:\n%s", path, err);
    return rc;
}

// ---- the pairs ----------------------------------------------------------------------------

static char *dup_str(const char *s) {
    char *r = strdup(s ? s : "");
    if (!r) STORY_FATAL("out of memory");
    return r;
}

static char *join_path(const char *dir, const char *rel) {
    size_t n = strlen(dir) + strlen(rel) + 2;
    char *p = mallocCheck(n);
    if (rel[0] == '/' || !dir[0])
        snprintf(p, n, "%s", rel);
    else
        snprintf(p, n, "%s/%s", dir, rel);
    return p;
}

static void pairs_free(Job *j) {
    for (int i = 0; i < j->n; i++)
        free(j->pairs[i].start), free(j->pairs[i].end), free(j->pairs[i].prompt);
    free(j->pairs);
    j->pairs = NULL;
    j->n = 0;
}

// The frames of a rendered story, in frame order: every frame 0..n-1 listed once, on disk
// as the manifest says (size and SHA-256).
static int pairs_from_story(Job *j, const char *dir, char *err, size_t errlen) {
    Manifest m;
    int rc = manifest_load(&m, dir, err, errlen);
    if (rc <= 0) {
        if (rc == 0)
            snprintf(err, errlen,
                     "%s/%s: not found; expected the output folder of storyrun render (key "
                     "'story')",
                     dir, MANIFEST_NAME);
        manifest_free(&m);
        return -1;
    }
    int nf = 0;
    for (int i = 0; i < m.n; i++) nf += !strcmp(m.entries[i].kind, "frame");
    const ManifestEntry **by = calloc((size_t)(nf ? nf : 1), sizeof *by);
    if (!by) STORY_FATAL("out of memory");
    rc = 0;
    for (int i = 0; i < m.n && !rc; i++) {
        const ManifestEntry *e = &m.entries[i];
        if (strcmp(e->kind, "frame")) continue;
        const char *fs = manifest_entry_get(e, "frame");
        char *end = NULL;
        long f = fs ? strtol(fs, &end, 10) : -1;
        if (!fs || *end || end == fs || f < 0 || f >= nf) {
            snprintf(err, errlen,
                     "%s/%s: the entry of %s has frame index '%s'; expected 0..%d (one entry "
                     "per frame)",
                     dir, MANIFEST_NAME, e->path, fs ? fs : "(missing)", nf - 1);
            rc = -1;
        } else if (by[f]) {
            snprintf(err, errlen, "%s/%s: frame %ld is listed twice (%s and %s)", dir,
                     MANIFEST_NAME, f, by[f]->path, e->path);
            rc = -1;
        } else {
            by[f] = e;
        }
    }
    if (!rc && nf < 2) {
        snprintf(err, errlen,
                 "%s/%s: lists %d frame(s); a transition needs at least 2 (is the render "
                 "complete?)",
                 dir, MANIFEST_NAME, nf);
        rc = -1;
    }
    // A frame file that is missing or differs from what render wrote: refuse, naming it.
    for (int f = 0; f < nf && !rc; f++)
        if (manifest_entry_verify(&m, by[f], err, errlen)) {
            size_t u = strlen(err);
            snprintf(err + u, errlen - u,
                     " (frame %d of the story; run storyrun render again to restore it)", f);
            rc = -1;
        }
    if (!rc) {
        j->n = nf - 1;
        j->pairs = calloc((size_t)j->n, sizeof *j->pairs);
        if (!j->pairs) STORY_FATAL("out of memory");
        for (int i = 0; i < j->n; i++) {
            Pair *p = &j->pairs[i];
            p->start = join_path(dir, by[i]->path);
            p->end = join_path(dir, by[i + 1]->path);
            p->prompt = dup_str(manifest_entry_get(by[i + 1], "prompt"));
            p->start_frame = i;
            p->end_frame = i + 1;
        }
    }
    free(by);
    manifest_free(&m);
    return rc;
}

// A TSV file: "start<TAB>end[<TAB>prompt]" per line; empty lines and lines starting with
// '#' are skipped; relative paths are relative to the file's folder.
static int pairs_from_file(Job *j, const char *path, char *err, size_t errlen) {
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "%s: cannot read the pairs file: %s", path, strerror(errno));
        return -1;
    }
    char *dir = dup_str(path), *slash = strrchr(dir, '/');
    if (slash)
        *slash = 0;
    else
        dir[0] = 0;
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int rc = 0, lineno = 0, ncap = 0;
    while (!rc && (len = getline(&line, &cap, f)) >= 0) {
        lineno++;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = 0;
        if (len == 0 || line[0] == '#') continue;
        char *fields[3] = {line, NULL, NULL}, *t = line;
        int nfld = 1;
        while ((t = strchr(t, '\t')) && nfld < 3) *t++ = 0, fields[nfld++] = t;
        if (t || nfld < 2 || !fields[0][0] || !fields[1][0]) {
            snprintf(err, errlen,
                     "%s:%d: expected 'start image<TAB>end image[<TAB>prompt]', got %d "
                     "tab-separated field(s)%s",
                     path, lineno, t ? 4 : nfld,
                     nfld >= 2 && (!fields[0][0] || !fields[1][0]) ? " with an empty path" : "");
            rc = -1;
            break;
        }
        if (j->n == ncap) {
            ncap = ncap ? 2 * ncap : 16;
            j->pairs = realloc(j->pairs, (size_t)ncap * sizeof *j->pairs);
            if (!j->pairs) STORY_FATAL("out of memory");
        }
        Pair *p = &j->pairs[j->n++];
        p->start = join_path(dir, fields[0]);
        p->end = join_path(dir, fields[1]);
        p->prompt = dup_str(fields[2]);
        p->start_frame = p->end_frame = -1;
        for (int k = 0; k < 2 && !rc; k++) {
            const char *img = k ? p->end : p->start;
            if (access(img, R_OK) != 0) {
                snprintf(err, errlen, "%s:%d: %s image %s: %s", path, lineno, k ? "end" : "start",
                         img, strerror(errno));
                rc = -1;
            }
        }
    }
    if (!rc && j->n == 0) {
        snprintf(err, errlen,
                 "%s: no pairs; expected lines 'start image<TAB>end image[<TAB>prompt]'", path);
        rc = -1;
    }
    free(line);
    free(dir);
    fclose(f);
    return rc;
}

// ---- models -------------------------------------------------------------------------------

static int encoder_load(Encoder *e, const char *path, const ClipVisionConfig *cfg, char *err,
                        size_t n) {
    e->S = cfg->image_size;
    e->D = cfg->projection_dim > 0 ? cfg->projection_dim : cfg->hidden_size;
    clip_image_processor_default(&e->proc, cfg->image_size);
    if (arena_init(&e->weights, DEV_CPU, clip_vision_weight_bytes(cfg, DT_F32)) ||
        arena_init(&e->scratch, DEV_CPU, clip_vision_scratch_bytes(cfg, DT_F32, 1)) ||
        arena_init(&e->outs, DEV_CPU, 4096 + sizeof(float) * (size_t)e->D)) {
        snprintf(err, n, "%s: not enough memory for the encoder", path);
        return -1;
    }
    if (clip_vision_load(&e->m, path, &e->weights, DT_F32, err, n)) return -1;
    e->pix = mallocCheck((size_t)3 * e->S * e->S * sizeof(float));
    return 0;
}

static void encoder_free(Encoder *e) {
    clip_vision_free(&e->m);
    arena_free(&e->weights);
    arena_free(&e->scratch);
    arena_free(&e->outs);
    free(e->pix);
}

// One image file -> its embedding emb (D): image_embeds, or pooled for a model without a
// projection (what the embed job stores, so the predictor sees the space it was trained in).
static int encode_image(Encoder *e, const char *path, float *emb, char *err, size_t n) {
    Image img = {0};
    if (image_read_png(path, &img, err, n)) return -1;
    Tensor pix = tensor_view(e->pix, DT_F32, DEV_CPU, 4, SHAPE(1, 3, e->S, e->S));
    int rc = clip_preprocess_image(&e->proc, &img, &pix, 0, err, n);
    image_free(&img);
    if (rc) return -1;
    size_t mark = arena_mark(&e->outs);
    Tensor te = ARENA_TENSOR(&e->outs, DT_F32, 1, e->D);
    ClipVisionOutputs o = {NULL, NULL, NULL, NULL, 0};
    if (e->m.cfg.projection_dim > 0)
        o.image_embeds = &te;
    else
        o.pooled = &te;
    rc = clip_vision_forward(&e->m, &pix, &e->scratch, &o, err, n);
    if (rc == 0) memcpy(emb, te.data, sizeof(float) * (size_t)e->D);
    arena_release(&e->outs, mark);
    return rc;
}

// Checkpoint and encoder: read, checked against each other, loaded.
static int load_models(Job *j, char *err, size_t n) {
    const PredictConfig *c = &j->cfg;
    SmpConfig sc;
    if (file_sha256(c->predictor, j->sha, NULL, err, n) ||
        smp_checkpoint_config(c->predictor, &sc, err, n))
        return -1;
    ClipVisionConfig vc;
    if (clip_vision_config(&vc, c->encoder, err, n)) return -1;
    int D = vc.projection_dim > 0 ? vc.projection_dim : vc.hidden_size;
    if (sc.embed_dim != D) {
        snprintf(err, n,
                 "%s: the motion predictor works on %d-wide embeddings (embed_dim %d) but the "
                 "encoder %s gives %d-wide image embeddings (%s %d); use the encoder whose "
                 "embeddings the predictor was trained on (the embed store's encoder_id)",
                 c->predictor, sc.embed_dim, sc.embed_dim, c->encoder, D,
                 vc.projection_dim > 0 ? "projection_dim" : "hidden_size, no projection", D);
        return -1;
    }
    if (smp_init(&j->smp, &sc, 1, err, n)) {
        size_t u = strlen(err);
        snprintf(err + u, n - u, " (in %s)", c->predictor);
        return -1;
    }
    j->smp_loaded = 1;
    if (smp_checkpoint_load(c->predictor, &j->smp, NULL, NULL, NULL, err, n)) return -1;
    j->enc_loaded = 1;
    if (encoder_load(&j->enc, c->encoder, &vc, err, n)) return -1;
    const ClipImageProcessor *p = &j->enc.proc;
    snprintf(j->preprocess, sizeof j->preprocess,
             "CLIPImageProcessor: RGB; shortest side -> %d (Pillow bicubic); center crop %dx%d; "
             "rescale 1/255; normalize mean (%.8g, %.8g, %.8g) std (%.8g, %.8g, %.8g); embeds: %s",
             p->shortest_edge, p->crop_height, p->crop_width, p->mean[0], p->mean[1], p->mean[2],
             p->std[0], p->std[1], p->std[2],
             vc.projection_dim > 0 ? "image_embeds (visual_projection)" : "pooled (no projection)");
    return 0;
}

// ---- the job --------------------------------------------------------------------------------

// Every check a user's input can fail, on every rank, before anything is written.
static int prepare(Job *j, char *err, size_t n) {
    const PredictConfig *c = &j->cfg;
    int rc =
        c->story ? pairs_from_story(j, c->story, err, n) : pairs_from_file(j, c->pairs, err, n);
    if (!rc) rc = load_models(j, err, n);
    if (!rc && access(c->store, F_OK) == 0 && access(c->store, W_OK) != 0) {
        snprintf(err, n, "%s: exists and cannot be replaced: %s", c->store, strerror(errno));
        rc = -1;
    }
    return rc;
}

// Rows [lo, hi) of the pairs: out holds per pair P (L, D), then K_s (D), then K_e (D).
static int predict_rows(Job *j, int lo, int hi, float *out, char *err, size_t n) {
    const int L = j->smp.cfg.frames, D = j->smp.cfg.embed_dim;
    const size_t row = (size_t)(L + 2) * D;
    Progress *prog = progress_start(&(ProgressOptions){.label = "predict",
                                                       .unit = "pairs (rank 0)",
                                                       .step = "pairs",
                                                       .total_units = hi - lo,
                                                       .silent = j->comm->rank != 0});
    const char *cached = NULL;  // the last end image: the next pair's start in a story
    int rc = 0;
    for (int i = lo; i < hi && !rc; i++) {
        const Pair *p = &j->pairs[i];
        float *P = out + (size_t)(i - lo) * row, *ks = P + (size_t)L * D, *ke = ks + D;
        if (cached && !strcmp(cached, p->start))
            memcpy(ks, ke - row, sizeof(float) * (size_t)D);
        else
            rc = encode_image(&j->enc, p->start, ks, err, n);
        if (!rc) rc = encode_image(&j->enc, p->end, ke, err, n);
        if (rc) {
            size_t u = strlen(err);
            snprintf(err + u, n - u, " (pair %d)", i);
            break;
        }
        cached = p->end;
        smp_forward(&j->smp, ks, ke, NULL, 1, L);  // P (1, L, D) in smp.out
        memcpy(P, j->smp.out, sizeof(float) * (size_t)L * D);
        LOG_INFO("pair %d: %s -> %s", i, p->start, p->end);
        progress_steps(prog, 1);
        progress_units(prog, 1);
    }
    progress_finish(prog);
    return rc;
}

static int run(Job *j) {
    Comm *comm = j->comm;
    const PredictConfig *c = &j->cfg;
    static char err[8192];
    const int L = j->smp.cfg.frames, D = j->smp.cfg.embed_dim, N = j->n;
    const size_t row = (size_t)(L + 2) * D;
    int lo, hi;
    part_split(N, comm->size, comm->rank, &lo, &hi);
    LOG_INFO(
        "predict: %d pair(s) from %s, predictor %s (L %d, D %d, %d layers, width %d); "
        "this rank: pairs %d..%d",
        N, c->story ? c->story : c->pairs, c->predictor, L, D, j->smp.cfg.layers, j->smp.cfg.width,
        lo, hi - 1);
    float *mine = mallocCheck(sizeof(float) * row * (size_t)(hi > lo ? hi - lo : 1));
    int rc = predict_rows(j, lo, hi, mine, err, sizeof err);
    if (rc) LOG_ERROR("%s", err);
    if (comm_any(comm, rc)) {
        free(mine);
        return 1;
    }
    size_t total = sizeof(float) * row * (size_t)N;
    float *all = mallocCheck(total);
    comm_all_gather_v(comm, mine, sizeof(float) * row * (size_t)(hi - lo), all, total, NULL, NULL);
    free(mine);
    int wrc = 0;
    if (comm->rank == 0) {
        float *P = mallocCheck(sizeof(float) * (size_t)N * L * D),
              *ks = mallocCheck(sizeof(float) * (size_t)N * D),
              *ke = mallocCheck(sizeof(float) * (size_t)N * D);
        const char **sp = mallocCheck(sizeof(char *) * (size_t)N),
                   **ep = mallocCheck(sizeof(char *) * (size_t)N),
                   **pr = mallocCheck(sizeof(char *) * (size_t)N);
        int64_t *sf = mallocCheck(sizeof(int64_t) * (size_t)N),
                *ef = mallocCheck(sizeof(int64_t) * (size_t)N);
        for (int i = 0; i < N; i++) {
            const float *r = all + (size_t)i * row;
            memcpy(P + (size_t)i * L * D, r, sizeof(float) * (size_t)L * D);
            memcpy(ks + (size_t)i * D, r + (size_t)L * D, sizeof(float) * (size_t)D);
            memcpy(ke + (size_t)i * D, r + (size_t)(L + 1) * D, sizeof(float) * (size_t)D);
            sp[i] = j->pairs[i].start, ep[i] = j->pairs[i].end, pr[i] = j->pairs[i].prompt;
            sf[i] = j->pairs[i].start_frame, ef[i] = j->pairs[i].end_frame;
        }
        TransitionsSpec spec = {c->predictor,
                                j->sha,
                                j->smp.cfg,
                                c->encoder,
                                j->preprocess,
                                c->story ? "story" : "pairs",
                                c->story ? c->story : c->pairs,
                                N,
                                L,
                                D};
        TransitionsRows rows = {P, ks, ke, sp, ep, pr, sf, ef};
        wrc = transitions_store_write(c->store, &spec, &rows, err, sizeof err);
        if (wrc)
            LOG_ERROR("%s", err);
        else
            LOG_INFO("predict: wrote %s: %d pair(s), %d x %d embeddings each, on %d rank(s)",
                     c->store, N, L, D, comm->size);
        free(P), free(ks), free(ke), free(sp), free(ep), free(pr), free(sf), free(ef);
    }
    free(all);
    comm_broadcast(comm, &wrc, sizeof wrc, 0);
    return wrc ? 1 : 0;
}

int job_predict(int argc, char **argv) {
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
    memset(&doc, 0, sizeof doc);
    static char err[16384];
    int rc = parse_args(argc, argv, &doc, &j->cfg, comm->rank, err, sizeof err);
    if (!rc && !j->cfg.store) {
        snprintf(j->default_store, sizeof j->default_store, "%s/transitions.h5", j->cfg.story);
        j->cfg.store = j->default_store;
    }
    if (!rc) {
        if (j->cfg.threads) cpu_set_threads(j->cfg.threads);
        int bad = prepare(j, err, sizeof err);
        // One copy of the message: rank 0's, or a failing rank's when rank 0 saw none.
        float flags[2] = {bad ? 1.0f : 0.0f, bad && comm->rank == 0 ? 1.0f : 0.0f};
        comm_all_reduce_f32(comm, flags, 2);
        if (bad && (comm->rank == 0 || flags[1] == 0))
            fprintf(stderr, "storyrun predict: %s\n", err);
        rc = flags[0] > 0 ? -1 : 0;
    }
    if (rc == 0) {
        char logs[4096];
        if (j->cfg.logs)
            snprintf(logs, sizeof logs, "%s", j->cfg.logs);
        else
            snprintf(logs, sizeof logs, "%s.logs", j->cfg.store);
        log_init(logs, comm->rank);
        rc = run(j);
        // mpirun ends every rank as soon as one exits non-zero: none leaves before the rest
        // have logged.
        comm_barrier(comm);
        log_close();
    } else {
        rc = 2;
    }
    if (j->enc_loaded) encoder_free(&j->enc);
    if (j->smp_loaded) smp_free(&j->smp);
    pairs_free(j);
    cfg_free(&doc);
    free(j);
    comm_finalize(comm);
    return rc;
}

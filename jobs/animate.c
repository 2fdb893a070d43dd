// jobs/animate.c: `storyrun animate CONFIG [--set k=v ...]`: the transitions store of
// `storyrun predict` -> one video per consecutive pair of story frames, and the whole story
// as one video.
//
// For pair i (story frames i -> i+1) the video UNet (SD1.5 + AnimateDiff motion modules)
// samples F = frames frames whose first and last are anchored to the two rendered frames
// (models/animate.h); frame k is conditioned on the pair's prompt and, through IP-Adapter,
// on P_k from the store. Pair i is drawn with seed + i.
//
// Outputs under OUTPUT (default STORY/animate):
//   transitions/pair_NNN/frame_KK.png   the F frames (PNG, how they were made in text chunks)
//   transitions/pair_NNN.mp4            the pair's video (H.264 when available, else MPEG-4)
//   story.mp4                           every story frame held video.hold frames, with each
//                                       transition's inner frames between them
//   manifest.json                       every file above with its size and SHA-256
//   logs/rank<N>.log
// Ranks: the pairs not done yet are split into contiguous blocks (part_split); a rank works
// through its block alone. At the end the ranks add up which pairs are done (one
// all-reduce) and rank 0 records them, and, once every pair is done, writes story.mp4.
// Resume: pairs whose files are listed in OUTPUT/manifest.json under the same config hash
// (and intact) are skipped. SIGTERM/SIGUSR1: each rank stops after its current pair, the
// finished pairs are recorded, exit 75. A transition depends on its pair, the config and
// the seed only, so 1 and N ranks give the same bytes.
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "jobs/animate.h"
#include "jobs/jobs.h"
#include "kernels/ops.h"
#include "models/animate.h"
#include "models/animate_weights.h"
#include "partition/partition.h"
#include "runner/check.h"
#include "runner/comm.h"
#include "runner/image.h"
#include "runner/log.h"
#include "runner/progress.h"
#include "runner/signals.h"
#include "runner/video_write.h"

#define EXIT_BAD_INPUT 2

static void usage(FILE *f) {
    fprintf(f,
            "usage: storyrun animate CONFIG [--set key=value ...] [--restart] [--cpu]\n"
            "  Transition videos between consecutive frames of a rendered story, from the\n"
            "  transitions store of storyrun predict, and the whole story as one video\n"
            "  (docs/animate.md; configs/animate-demo.yaml). Keys:\n"
            "    model motion_adapter ip_adapter ip_scale story transitions output frames\n"
            "    steps guidance sampler seed negative keep_ends video.fps video.codec\n"
            "    video.crf video.hold\n"
            "  --restart  replace the outputs of another config in OUTPUT\n"
            "  --cpu      run on the CPU even when a GPU is present\n"
            "  Run it on N ranks with mpirun/srun. Exit: 0 done, 2 bad config or inputs,\n"
            "  75 stopped by SIGTERM/SIGUSR1 (re-run to resume), 1 other failures.\n");
}

// ---- the networks ----------------------------------------------------------------------------

typedef struct {
    Weights *w;
    Arena weights;
    Conditioner cond;
    Unet unet;
    Vae vae;
    MotionAdapterFile mf;
    UnetVideo video;
    IpAdapter ip;
    int have_cond, have_unet, have_vae, have_mf, have_video, have_ip;
    AnimateModel m;
} Nets;

static void nets_free(Nets *n) {
    if (n->have_ip) ip_adapter_free(&n->ip);
    if (n->have_video) unet_video_free(&n->video);
    if (n->have_mf) motion_adapter_close(&n->mf);
    if (n->have_vae) vae_free(&n->vae);
    if (n->have_unet) unet_free(&n->unet);
    if (n->have_cond) cond_free(&n->cond);
    arena_free(&n->weights);
    if (n->w) weights_close(n->w);
    memset(n, 0, sizeof *n);
}

// Embedding width of the configured IP-Adapter, without loading the UNet (0: unknown).
static int ip_embed_dim(const AnimateConfig *c, const Weights *w) {
    if (!c->ip_adapter) return animate_ip_adapter_embed_dim(w);
    SafeTensors st;
    char e2[512];
    if (st_open(&st, c->ip_adapter, e2, sizeof e2)) return 0;
    const SafeTensorsEntry *e = st_find(&st, "image_proj.proj.weight");
    const int d = e && e->ndim == 2 ? (int)e->shape[1] : 0;
    st_close(&st);
    return d;
}

static int nets_load(Nets *n, const AnimateConfig *c, Device dev, char *err, size_t errlen) {
    memset(n, 0, sizeof *n);
    if (weights_open(&n->w, c->model, err, errlen)) return -1;
    const DType dt = dev == DEV_CPU ? DT_F32 : DT_F16;
    UnetConfig uc;
    VaeConfig vc;
    size_t cb;
    if (unet_config(&uc, n->w, err, errlen) || vae_config(&vc, n->w, err, errlen) ||
        cond_weight_bytes(n->w, dt, &cb, err, errlen))
        return -1;
    if (weights_family(n->w) != FAMILY_SD1)
        return snprintf(err, errlen,
                        "%s: a %s model; the AnimateDiff motion modules of animate are made for "
                        "SD1.x UNets (use SD1.5 weights or builtin:tiny-animate)",
                        c->model, family_name(weights_family(n->w))),
               -1;
    if (c->motion_adapter) {
        if (motion_adapter_open(&n->mf, c->motion_adapter, err, errlen)) return -1;
    } else if (animate_weights_has(n->w, "motion_adapter")) {
        if (animate_motion_adapter_from_weights(&n->mf, n->w, err, errlen)) return -1;
    } else {
        return snprintf(err, errlen,
                        "%s: key 'motion_adapter': missing, and %s carries none; expected an "
                        "AnimateDiff motion adapter (mm_sd_v15_v2.safetensors or a diffusers "
                        "MotionAdapter folder)",
                        c->path, c->model),
               -1;
    }
    n->have_mf = 1;
    if (!c->ip_adapter && !animate_weights_has(n->w, "ip_adapter"))
        return snprintf(err, errlen,
                        "%s: key 'ip_adapter': missing, and %s carries none; expected an "
                        "IP-Adapter checkpoint (ip-adapter_sd15.safetensors)",
                        c->path, c->model),
               -1;
    const DType vdt = vae_default_dtype(&vc, dev);
    Unet shapes;
    if (unet_load_shapes(&shapes, &uc, dt, dev, err, errlen)) return -1;
    const size_t bytes = cb + unet_weight_bytes(&uc, dt) + vae_weight_bytes(&vc, VAE_BOTH, vdt) +
                         unet_video_weight_bytes(&shapes, &n->mf) +
                         ip_adapter_weight_bytes(&shapes, ip_embed_dim(c, n->w), dt) + (4 << 20);
    unet_free(&shapes);
    if (arena_init(&n->weights, dev, bytes))
        return snprintf(err, errlen, "cannot allocate %.1f MiB for the weights of %s",
                        bytes / 1048576.0, c->model),
               -1;
    if (cond_load(&n->cond, n->w, &n->weights, dt, err, errlen)) return -1;
    n->have_cond = 1;
    if (unet_load(&n->unet, n->w, &n->weights, dt, err, errlen)) return -1;
    n->have_unet = 1;
    if (vae_load(&n->vae, n->w, VAE_BOTH, &n->weights, vdt, err, errlen)) return -1;
    n->have_vae = 1;
    if (unet_video_load(&n->video, &n->unet, &n->mf, &n->weights, err, errlen)) return -1;
    n->have_video = 1;
    const int ipr = c->ip_adapter
                        ? ip_adapter_load(&n->ip, &n->unet, c->ip_adapter, &n->weights, dt, err,
                                          errlen)
                        : animate_ip_adapter_from_weights(&n->ip, &n->unet, n->w, &n->weights, dt,
                                                          err, errlen);
    if (ipr) return -1;
    n->have_ip = 1;
    AnimateModel *m = &n->m;
    m->cond = &n->cond, m->unet = &n->unet, m->vae = &n->vae, m->ip = &n->ip;
    m->ip_scale = (float)c->ip_scale;
    m->video = &n->video;
    m->dev = dev, m->dt = dt;
    return sched_config_from_weights(&m->sched_cfg, n->w, err, errlen);
}

// ---- files -------------------------------------------------------------------------------------

static int mkdirs(const char *dir) {
    char tmp[4300];
    snprintf(tmp, sizeof tmp, "%s", dir);
    for (char *q = tmp + 1; *q; q++)
        if (*q == '/') {
            *q = 0;
            if (mkdir(tmp, 0755) && errno != EEXIST) return -1;
            *q = '/';
        }
    return mkdir(tmp, 0755) && errno != EEXIST ? -1 : 0;
}

static void frame_rel(int pair, int k, char *buf, size_t n) {
    char d[64];
    snprintf(buf, n, "%s/frame_%02d.png", animate_pair_dir(pair, d, sizeof d), k);
}

// A story frame as (3, H, W) f32 in [-1, 1] (VaeImageProcessor.preprocess) and its pixels.
static int read_story_frame(const AnimateJob *j, const char *rel, Image *img, float **chw,
                            char *err, size_t errlen) {
    char path[4400];
    snprintf(path, sizeof path, "%s/%s", j->cfg.story, rel);
    if (image_read_png(path, img, err, errlen)) return -1;
    if (img->channels != 3 || img->width != j->width || img->height != j->height) {
        snprintf(err, errlen, "%s: a %dx%d image of %d channels; expected %dx%d RGB like frame 0",
                 path, img->width, img->height, img->channels, j->width, j->height);
        image_free(img);
        return -1;
    }
    const int64_t hw = (int64_t)img->width * img->height;
    *chw = mallocCheck((size_t)(3 * hw) * sizeof **chw);
    for (int64_t p = 0; p < hw; p++)
        for (int ch = 0; ch < 3; ch++)
            (*chw)[ch * hw + p] = (float)img->pixels[3 * p + ch] / 255.0f * 2.0f - 1.0f;
    return 0;
}

typedef struct {
    Progress *prog;
} StepCtx;

static void on_step(void *ctx, int step, int steps) {
    (void)step, (void)steps;
    progress_steps(((StepCtx *)ctx)->prog, 1);
}

// One pair: sample, write its frames and video. Returns 0, or -1 with a message.
static int run_pair(const AnimateJob *j, Nets *n, int i, StepCtx *sc, char *err, size_t errlen) {
    const AnimateConfig *c = &j->cfg;
    const AnimatePair *p = &j->pairs[i];
    Image ia = {0}, ib = {0};
    float *a = NULL, *b = NULL;
    AnimateOutput out = {0};
    uint8_t *rgb = NULL;
    int rc = -1;
    if (read_story_frame(j, p->start_rel, &ia, &a, err, errlen) ||
        read_story_frame(j, p->end_rel, &ib, &b, err, errlen))
        goto out;
    AnimateRequest q = {.frames = c->frames,
                        .width = j->width,
                        .height = j->height,
                        .start_image = a,
                        .end_image = b,
                        .embeds = p->P,
                        .prompt = p->prompt,
                        .negative = c->negative,
                        .seed = c->seed + (uint64_t)i,
                        .steps = c->steps,
                        .guidance = (float)c->guidance,
                        .sampler = c->sampler,
                        .on_step = on_step,
                        .ctx = sc};
    char e2[2048];
    if (animate_transition(&n->m, &q, &out, e2, sizeof e2)) {
        snprintf(err, errlen, "pair %d (frames %d -> %d): %s", i, i, i + 1, e2);
        goto out;
    }
    const int F = c->frames, W = j->width, H = j->height;
    const size_t fb = (size_t)W * H * 3;
    rgb = mallocCheck((size_t)F * fb);
    char dir[4400], rel[128], path[4600];
    snprintf(dir, sizeof dir, "%s/%s", c->output, animate_pair_dir(i, rel, sizeof rel));
    if (mkdirs(dir)) {
        snprintf(err, errlen, "%s: cannot create: %s", dir, strerror(errno));
        goto out;
    }
    char sp[32], sk[16], si[16], ss[32];
    snprintf(sp, sizeof sp, "%d", i);
    snprintf(ss, sizeof ss, "%llu", (unsigned long long)(c->seed + (uint64_t)i));
    for (int k = 0; k < F; k++) {
        Image img = {0};
        if (c->keep_ends && (k == 0 || k == F - 1)) {
            memcpy(rgb + (size_t)k * fb, (k ? ib : ia).pixels, fb);
        } else {
            if (image_from_tensor(&out.frames, k, &img, err, errlen)) goto out;
            memcpy(rgb + (size_t)k * fb, img.pixels, fb);
            image_free(&img);
        }
        Image fr = {.width = W, .height = H, .channels = 3, .pixels = rgb + (size_t)k * fb};
        snprintf(sk, sizeof sk, "%d", k);
        snprintf(si, sizeof si, "%d", F);
        ImageText t[] = {{"pair", sp},          {"frame", sk},        {"frames", si},
                         {"prompt", p->prompt}, {"seed", ss},         {"model", c->model},
                         {"config_hash", c->hash}, {"software", "storyrun"}};
        frame_rel(i, k, rel, sizeof rel);
        snprintf(path, sizeof path, "%s/%s", c->output, rel);
        if (image_write_png(path, &fr, t, (int)(sizeof t / sizeof *t), err, errlen)) goto out;
    }
    snprintf(path, sizeof path, "%s/%s", c->output, animate_pair_video(i, rel, sizeof rel));
    VideoWriteOptions vo = {.codec = c->codec, .crf = c->crf};
    if (video_write(path, rgb, F, W, H, c->fps, &vo, NULL, 0, err, errlen)) goto out;
    rc = 0;
out:
    animate_output_free(&out);
    image_free(&ia), image_free(&ib);
    free(a), free(b), free(rgb);
    return rc;
}

// ---- the manifest ------------------------------------------------------------------------------

// 1 when every file of pair i is listed and intact.
static int pair_done(const Manifest *m, int i, int F) {
    char rel[128], e2[512];
    const ManifestEntry *e = manifest_find(m, animate_pair_video(i, rel, sizeof rel));
    if (!e || manifest_entry_verify(m, e, e2, sizeof e2)) return 0;
    for (int k = 0; k < F; k++) {
        frame_rel(i, k, rel, sizeof rel);
        e = manifest_find(m, rel);
        if (!e || manifest_entry_verify(m, e, e2, sizeof e2)) return 0;
    }
    return 1;
}

static int record_pair(const AnimateJob *j, Manifest *m, int i, char *err, size_t errlen) {
    char rel[128], sp[16], sk[16], sa[16], sb[16];
    snprintf(sp, sizeof sp, "%d", i);
    snprintf(sa, sizeof sa, "%d", i), snprintf(sb, sizeof sb, "%d", i + 1);
    for (int k = 0; k < j->cfg.frames; k++) {
        frame_rel(i, k, rel, sizeof rel);
        snprintf(sk, sizeof sk, "%d", k);
        const char *info[] = {"pair", sp, "frame", sk};
        if (!manifest_add_file(m, rel, "transition_frame", info, 2, err, errlen)) return -1;
    }
    const char *info[] = {"pair", sp, "from", sa, "to", sb, "prompt", j->pairs[i].prompt};
    return manifest_add_file(m, animate_pair_video(i, rel, sizeof rel), "video", info, 4, err,
                             errlen)
               ? 0
               : -1;
}

// story.mp4: story frame k held `hold` frames, then transition k's inner frames.
static int write_story_video(const AnimateJob *j, Manifest *m, char *err, size_t errlen) {
    const AnimateConfig *c = &j->cfg;
    const int W = j->width, H = j->height, F = c->frames;
    char path[4400], rel[128], p2[4600];
    snprintf(path, sizeof path, "%s/story.mp4", c->output);
    VideoWriter *vw;
    VideoWriteOptions vo = {.codec = c->codec, .crf = c->crf};
    if (video_writer_open(&vw, path, W, H, c->fps, &vo, err, errlen)) return -1;
    int n = 0;
    for (int k = 0; k < j->n_story_frames; k++) {
        Image img = {0};
        snprintf(p2, sizeof p2, "%s/%s", c->story, j->story_rel[k]);
        if (image_read_png(p2, &img, err, errlen)) goto fail;
        if (img.channels != 3 || img.width != W || img.height != H) {
            snprintf(err, errlen, "%s: not a %dx%d RGB image", p2, W, H);
            image_free(&img);
            goto fail;
        }
        for (int h = 0; h < c->hold; h++, n++)
            if (video_writer_add(vw, img.pixels, err, errlen)) {
                image_free(&img);
                goto fail;
            }
        image_free(&img);
        for (int f = 1; k + 1 < j->n_story_frames && f + 1 < F; f++, n++) {
            frame_rel(k, f, rel, sizeof rel);
            snprintf(p2, sizeof p2, "%s/%s", c->output, rel);
            if (image_read_png(p2, &img, err, errlen)) goto fail;
            const int bad = img.channels != 3 || img.width != W || img.height != H;
            if (bad) snprintf(err, errlen, "%s: not a %dx%d RGB image", p2, W, H);
            if (bad || video_writer_add(vw, img.pixels, err, errlen)) {
                image_free(&img);
                goto fail;
            }
            image_free(&img);
        }
    }
    if (video_writer_close(vw, err, errlen)) return -1;
    char sn[16];
    snprintf(sn, sizeof sn, "%d", n);
    const char *info[] = {"story", c->story, "frames", sn};
    return manifest_add_file(m, "story.mp4", "video", info, 2, err, errlen) ? 0 : -1;
fail:
    video_writer_abort(vw);
    return -1;
}

// ---- the job -----------------------------------------------------------------------------------

int job_animate(int argc, char **argv) {
    const char *config = NULL;
    char **sets = mallocCheck((size_t)(argc + 1) * sizeof *sets);
    int n_sets = 0, restart = 0, force_cpu = 0;
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i];
        if (!strcmp(s, "--help") || !strcmp(s, "-h")) {
            usage(stdout);
            free(sets);
            return 0;
        }
        if (!strcmp(s, "--set") && i + 1 < argc) {
            sets[n_sets++] = argv[++i];
        } else if (!strcmp(s, "--restart")) {
            restart = 1;
        } else if (!strcmp(s, "--cpu")) {
            force_cpu = 1;
        } else if (s[0] == '-' || config) {
            fprintf(stderr, "storyrun animate: unexpected argument '%s' (--help lists them)\n", s);
            free(sets);
            return EXIT_BAD_INPUT;
        } else {
            config = s;
        }
    }
    if (!config) {
        usage(stderr);
        free(sets);
        return EXIT_BAD_INPUT;
    }
    Comm *comm = comm_init(&argc, &argv);
    signals_install();
    const int rank = comm->rank;
    static char err[16384];
    AnimateJob j;
    Nets nets;
    memset(&nets, 0, sizeof nets);
    Manifest man;
    memset(&man, 0, sizeof man);
    int rc = 0, bad = 0;
    if (animate_config_load(&j, config, sets, n_sets, err, sizeof err)) {
        if (rank == 0) fprintf(stderr, "storyrun animate: %s\n", err);
        rc = EXIT_BAD_INPUT;
        goto out_cfg;
    }
    const AnimateConfig *c = &j.cfg;
    const Device dev = !force_cpu && comm->device >= 0 && cuda_available() ? DEV_CUDA : DEV_CPU;
    if (nets_load(&nets, c, dev, err, sizeof err) ||
        animate_inputs_open(&j, nets.ip.embed_dim, err, sizeof err))
        bad = 1;
    if (!bad) {  // the frames' size, from frame 0
        Image img = {0};
        char p0[4400];
        snprintf(p0, sizeof p0, "%s/%s", c->story, j.story_rel[0]);
        if (image_read_png(p0, &img, err, sizeof err)) bad = 1;
        j.width = img.width, j.height = img.height;
        image_free(&img);
    }
    // the outputs of this config so far (every rank reads the same manifest)
    int *done = calloc((size_t)(j.n_pairs + 1), sizeof *done);
    if (!bad) {
        const int ml = manifest_load(&man, c->output, err, sizeof err);
        if (ml < 0) {
            bad = 1;
        } else if (ml == 1 && strcmp(man.config_hash, j.cfg.hash) && !restart) {
            snprintf(err, sizeof err,
                     "%s holds the outputs of another config or store (config hash %.12s, now "
                     "%.12s, from %s): re-run with --restart to replace them, or set output",
                     c->output, man.config_hash, j.cfg.hash,
                     man.config_path && *man.config_path ? man.config_path : "?");
            bad = 1;
        } else if (ml == 0 || strcmp(man.config_hash, j.cfg.hash)) {
            manifest_free(&man);
            manifest_init(&man, c->output, c->path, j.cfg.hash);
        }
        for (int i = 0; !bad && i < j.n_pairs; i++) done[i] = pair_done(&man, i, c->frames);
    }
    if (bad && rank == 0) fprintf(stderr, "storyrun animate: %s\n", err);
    if (comm_any(comm, bad)) {
        rc = EXIT_BAD_INPUT;
        goto out_nets;
    }
    char logdir[4200];
    snprintf(logdir, sizeof logdir, "%s/logs", c->output);
    if (rank == 0 && mkdirs(logdir)) {
        fprintf(stderr, "storyrun animate: %s: cannot create: %s\n", logdir, strerror(errno));
        bad = 1;
    }
    if (comm_any(comm, bad) || log_init(logdir, rank)) {
        rc = 1;
        goto out_nets;
    }
    // the pending pairs, split into contiguous blocks
    int n_pending = 0, n_done = 0;
    int *pending = mallocCheck((size_t)(j.n_pairs + 1) * sizeof *pending);
    for (int i = 0; i < j.n_pairs; i++) {
        if (!done[i]) pending[n_pending++] = i;
        n_done += done[i];
    }
    int lo, hi;
    part_split(n_pending, comm->size, rank, &lo, &hi);
    LOG_INFO("animate %s: %d pairs (%d done before), %d frames each, %dx%d, %d steps; this rank: "
             "%d pairs, %s",
             c->path, j.n_pairs, n_done, c->frames, j.width, j.height, c->steps, hi - lo,
             dev == DEV_CUDA ? "GPU" : "CPU");
    StepCtx sc = {progress_start(&(ProgressOptions){.label = "animate",
                                                    .unit = "pairs",
                                                    .step = "steps",
                                                    .total_units = j.n_pairs,
                                                    .total_steps = (long)j.n_pairs * c->steps,
                                                    .silent = rank != 0})};
    progress_skip(sc.prog, n_done, (long)n_done * c->steps);
    const char *stop_env = getenv("STORY_ANIMATE_STOP_AFTER");
    const int stop_after = stop_env ? atoi(stop_env) : 0;
    float *mine = calloc((size_t)(j.n_pairs + 1), sizeof *mine);
    int failed = 0, made = 0;
    for (int k = lo; k < hi; k++) {
        if (signals_requested()) break;
        const int i = pending[k];
        if (run_pair(&j, &nets, i, &sc, err, sizeof err)) {
            LOG_ERROR("storyrun animate: %s", err);
            failed = 1;
            break;
        }
        mine[i] = 1.0f;
        progress_units(sc.prog, 1);
        if (++made == stop_after) raise(SIGUSR1);  // tests: the real stop path
    }
    // the final exchange: which pairs are done, and whether anyone stopped or failed
    float *flags = calloc((size_t)(j.n_pairs + 2), sizeof *flags);
    memcpy(flags, mine, (size_t)j.n_pairs * sizeof *flags);
    flags[j.n_pairs] = failed ? 1.0f : 0.0f;
    flags[j.n_pairs + 1] = signals_requested() ? 1.0f : 0.0f;
    comm_all_reduce_f32(comm, flags, (size_t)j.n_pairs + 2);
    int all = 1;
    if (rank == 0) {
        int e = 0;
        for (int i = 0; i < j.n_pairs && !e; i++)
            if (flags[i] > 0.5f) e = record_pair(&j, &man, i, err, sizeof err);
        for (int i = 0; i < j.n_pairs; i++) all &= done[i] || flags[i] > 0.5f;
        if (!e && all) e = write_story_video(&j, &man, err, sizeof err);
        if (!e) e = manifest_write(&man, err, sizeof err);
        if (e) {
            LOG_ERROR("storyrun animate: %s", err);
            rc = 1;
        }
    }
    int others = 0;  // pairs the other ranks made: the summary counts the whole job
    for (int i = 0; i < j.n_pairs; i++) others += flags[i] > 0.5f && mine[i] < 0.5f;
    progress_units(sc.prog, others);
    progress_finish(sc.prog);
    if (flags[j.n_pairs] > 0.5f) {
        rc = 1;
    } else if (!rc && flags[j.n_pairs + 1] > 0.5f && !all) {
        LOG_WARN("animate: stopped by %s; %s holds every finished pair; run the same command "
                 "again to resume",
                 signals_name(signals_requested() ? signals_requested() : 15), c->output);
        rc = STORY_EXIT_REQUEUE;
    } else if (!rc && rank == 0) {
        LOG_INFO("animate: done: %d pairs made by this run; videos in %s/transitions/, the story "
                 "in %s/story.mp4",
                 j.n_pairs - n_done, c->output, c->output);
    }
    // ranks agree on the exit code (rank 0 alone knows about manifest problems)
    float fr = (float)rc;
    comm_broadcast(comm, &fr, sizeof fr, 0);
    if (!rc) rc = (int)fr;
    free(flags), free(mine), free(pending);
    log_close();
out_nets:
    free(done);
    manifest_free(&man);
    nets_free(&nets);
out_cfg:
    animate_job_free(&j);
    free(sets);
    comm_finalize(comm);
    return rc;
}

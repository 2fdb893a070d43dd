// jobs/train.c: `storyrun train CONFIG [--set k=v ...] [--resume]`: trains the Semantic
// Motion Predictor (models/motion_predictor.h) on the embed job's HDF5 stores,
// data-parallel over MPI ranks (docs/train.md).
//
// One step, on every rank:
//   global batch = G clips (train.batch), picked by (seed, step) alone (jobs/train_data.c);
//   rank r takes the contiguous slice [r G/R, (r+1) G/R) of it and reads those clips;
//   forward + backward give the gradient of the rank's mean loss;
//   one comm_all_reduce_f32 over the flat gradient buffer after backward (sum over ranks),
//   then grads *= 1/R: every rank holds the gradient of the mean over all G clips, which is
//   the 1-rank gradient up to float summation order (each rank's mean has the same count);
//   clipping, then AdamW with the warm-up + cosine lr of the step, identically everywhere.
// The all-reduce is one blocking call after backward, not overlapped through the model's
// grad-ready hook: the comm layer's collectives are synchronous, so issuing them from the
// hook would stall backward just as long, and one large message is cheaper than per-block
// ones on the CPU.
//
// Checkpoints (rank 0, atomic; model + AdamW moments + step) every train.checkpoint_every
// steps, at the end, and when a signal asks to stop (SIGTERM/SIGUSR1/SIGINT: the step in
// flight finishes, the checkpoint is written, exit 75). `--resume` loads it and goes on:
// the data order and the lr follow from the step, so on the CPU the result is bit-identical
// to an uninterrupted run. STORY_TRAIN_STOP_AFTER=N (tests): raise SIGUSR1 once N steps are
// done.
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "jobs/jobs.h"
#include "jobs/train.h"
#include "kernels/ops.h"
#include "models/motion_cuda.h"
#include "models/motion_predictor.h"
#include "runner/check.h"
#include "runner/comm.h"
#include "runner/config.h"
#include "runner/log.h"
#include "runner/progress.h"
#include "runner/signals.h"

typedef struct {
    const char *stores[TRAIN_MAX_STORES];
    int nstores;
    double val_fraction;
    int layers, width, heads, mlp_ratio, frames;  // frames 0: the stores' L
    double endpoint_weight;
    int G;
    long steps, epochs;  // one of them (steps wins when both are 0: epochs = 1)
    double lr, min_lr, warmup_frac;
    long warmup;
    double weight_decay, beta1, beta2, eps, grad_clip;
    uint64_t seed;
    int threads;
    int cuda;  // train.device: cuda (models/motion_cuda.h), else the CPU
    long eval_every, ckpt_every, log_every;
    const char *out, *ckpt, *csv, *plot, *logs;
    char ckpt_buf[4096], csv_buf[4096], plot_buf[4096], logs_buf[4096];
    int has_min_lr;
} TrainConfig;

static void usage(FILE *f) {
    fprintf(f,
            "usage: storyrun train CONFIG [--set key=value ...] [--resume]\n"
            "  Trains the motion predictor on embedding stores made by `storyrun embed`, on 1 or\n"
            "  N MPI ranks (data-parallel). docs/train.md describes every key:\n"
            "    data.store data.val_fraction\n"
            "    model.layers model.width model.heads model.mlp_ratio model.frames\n"
            "    model.endpoint_weight\n"
            "    train.batch train.steps | train.epochs train.lr train.min_lr train.warmup\n"
            "    train.weight_decay train.betas train.eps train.grad_clip train.seed\n"
            "    train.threads train.device train.eval_every train.checkpoint_every\n"
            "    train.log_every\n"
            "    output.dir output.checkpoint output.log_csv output.plot output.logs\n"
            "  --resume  continue from output.checkpoint (a fresh start when there is none)\n"
            "  Exit: 0 done, 75 stopped by a signal (re-run with --resume), 1 error, 2 bad\n"
            "  config.\n");
}

// ---- config ---------------------------------------------------------------------------------

static const char *const k_top[] = {"data", "model", "train", "output", NULL};
static const char *const k_data[] = {"store", "val_fraction", NULL};
static const char *const k_model[] = {"layers", "width",           "heads", "mlp_ratio",
                                      "frames", "endpoint_weight", NULL};
static const char *const k_train[] = {
    "batch",     "steps",  "epochs",    "lr",   "min_lr",  "warmup",     "weight_decay",
    "betas",     "eps",    "grad_clip", "seed", "threads", "eval_every", "checkpoint_every",
    "log_every", "device", NULL};
static const char *const k_out[] = {"dir", "checkpoint", "log_csv", "plot", "logs", NULL};

static const CfgNode *section(CfgDoc *d, const char *name, const char *const *keys) {
    const CfgNode *n = cfg_get(d->root, name);
    if (cfg_as_map(d, n, name) != 1) return NULL;
    cfg_check_keys(d, n, name, keys);
    return n;
}

static void get_i(CfgDoc *d, const CfgNode *m, const char *name, const char *key, long long lo,
                  long long hi, int *out) {
    long long v;
    if (m && cfg_get_int(d, m, name, key, lo, hi, &v) == 1) *out = (int)v;
}
static void get_l(CfgDoc *d, const CfgNode *m, const char *name, const char *key, long long lo,
                  long long hi, long *out) {
    long long v;
    if (m && cfg_get_int(d, m, name, key, lo, hi, &v) == 1) *out = (long)v;
}

static void out_path(char *buf, size_t n, const char *given, const char *dir, const char *name,
                     const char **dst) {
    if (given)
        snprintf(buf, n, "%s", given);
    else
        snprintf(buf, n, "%s/%s", dir, name);
    *dst = buf;
}

static int read_config(CfgDoc *d, TrainConfig *c) {
    memset(c, 0, sizeof *c);
    SmpConfig def;
    smp_config_default(&def, 1, 1);
    c->layers = def.layers, c->width = def.width, c->heads = def.heads;
    c->mlp_ratio = def.mlp_ratio, c->endpoint_weight = def.endpoint_weight;
    c->val_fraction = 0.05, c->G = 8, c->lr = 1e-4, c->weight_decay = 0.01;
    c->beta1 = 0.9, c->beta2 = 0.999, c->eps = 1e-8, c->grad_clip = 1.0;
    c->eval_every = 100, c->ckpt_every = 1000, c->log_every = 10;
    if (!d->root || d->root->kind != CFG_MAP)
        return cfg_error(d, d->root, "expected a mapping with keys data, model, train, output");
    cfg_check_keys(d, d->root, "", k_top);
    const CfgNode *dt = section(d, "data", k_data);
    const CfgNode *st = dt ? cfg_get(dt, "store") : NULL;
    if (st && st->kind == CFG_SEQ) {
        if (st->n > TRAIN_MAX_STORES)
            cfg_error(d, st, "key 'data.store': %d stores; at most %d", st->n, TRAIN_MAX_STORES);
        for (int i = 0; i < st->n && i < TRAIN_MAX_STORES; i++)
            if (cfg_as_string(d, st->items[i], "data.store", &c->stores[c->nstores]) == 0)
                c->nstores++;
    } else if (st && !cfg_is_null(st)) {
        if (cfg_as_string(d, st, "data.store", &c->stores[0]) == 0) c->nstores = 1;
    }
    if (!c->nstores)
        cfg_error(d, NULL,
                  "key 'data.store': missing; expected the path of an embedding store written by "
                  "`storyrun embed` (or a list of them)");
    if (dt) cfg_get_double(d, dt, "val_fraction", "data.val_fraction", 0, 0.9, &c->val_fraction);

    const CfgNode *m = section(d, "model", k_model);
    get_i(d, m, "layers", "model.layers", 1, 256, &c->layers);
    get_i(d, m, "width", "model.width", 1, 65536, &c->width);
    get_i(d, m, "heads", "model.heads", 1, 1024, &c->heads);
    get_i(d, m, "mlp_ratio", "model.mlp_ratio", 1, 64, &c->mlp_ratio);
    get_i(d, m, "frames", "model.frames", 3, 4096, &c->frames);
    if (m)
        cfg_get_double(d, m, "endpoint_weight", "model.endpoint_weight", 0, 1e6,
                       &c->endpoint_weight);
    if (c->width % c->heads)
        cfg_error(d, m ? cfg_get(m, "heads") : NULL,
                  "key 'model.heads': %d does not divide model.width %d", c->heads, c->width);

    const CfgNode *t = section(d, "train", k_train);
    get_i(d, t, "batch", "train.batch", 1, 1 << 20, &c->G);
    get_l(d, t, "steps", "train.steps", 1, 1L << 40, &c->steps);
    get_l(d, t, "epochs", "train.epochs", 1, 1L << 30, &c->epochs);
    if (c->steps && c->epochs)
        cfg_error(d, cfg_get_key(t, "epochs"),
                  "key 'train.epochs': give train.steps or train.epochs, not both");
    if (!c->steps && !c->epochs) c->epochs = 1;
    if (t) {
        cfg_get_double(d, t, "lr", "train.lr", 0, 10, &c->lr);
        c->has_min_lr = cfg_get_double(d, t, "min_lr", "train.min_lr", 0, 10, &c->min_lr) == 1;
        // warmup: a step count, or a fraction of all steps when written below 1 (0.05)
        const CfgNode *w = cfg_get(t, "warmup");
        double wv = 0;
        if (w && cfg_as_double(d, w, "train.warmup", 0, 1e12, &wv) == 0) {
            if (wv < 1)
                c->warmup_frac = wv;
            else if (wv != floor(wv))
                cfg_error(d, w,
                          "key 'train.warmup': expected a step count or a fraction < 1, "
                          "got '%s'",
                          w->text);
            else
                c->warmup = (long)wv;
        }
        cfg_get_double(d, t, "weight_decay", "train.weight_decay", 0, 10, &c->weight_decay);
        const CfgNode *b = cfg_get(t, "betas");
        if (b && cfg_as_seq(d, b, "train.betas") == 1) {
            if (b->n != 2)
                cfg_error(d, b, "key 'train.betas': expected two numbers [beta1, beta2], got %d",
                          b->n);
            else {
                cfg_as_double(d, b->items[0], "train.betas[0]", 0, 0.999999, &c->beta1);
                cfg_as_double(d, b->items[1], "train.betas[1]", 0, 0.999999999, &c->beta2);
            }
        }
        cfg_get_double(d, t, "eps", "train.eps", 1e-30, 1, &c->eps);
        cfg_get_double(d, t, "grad_clip", "train.grad_clip", 0, 1e12, &c->grad_clip);
        const CfgNode *s = cfg_get(t, "seed");
        if (s) cfg_as_u64(d, s, "train.seed", &c->seed);
        get_i(d, t, "threads", "train.threads", 0, 4096, &c->threads);
        const char *dev = NULL;
        if (cfg_get_string(d, t, "device", "train.device", &dev) == 1 && dev) {
            if (!strcmp(dev, "cuda"))
                c->cuda = 1;
            else if (strcmp(dev, "cpu"))
                cfg_error(d, cfg_get(t, "device"), "key 'train.device': '%s'; expected cpu or cuda",
                          dev);
        }
        get_l(d, t, "eval_every", "train.eval_every", 0, 1L << 40, &c->eval_every);
        get_l(d, t, "checkpoint_every", "train.checkpoint_every", 0, 1L << 40, &c->ckpt_every);
        get_l(d, t, "log_every", "train.log_every", 1, 1L << 40, &c->log_every);
    }
    if (!c->has_min_lr) c->min_lr = 0.1 * c->lr;
    if (c->min_lr > c->lr)
        cfg_error(d, cfg_get(t, "min_lr"), "key 'train.min_lr': %g is above train.lr %g", c->min_lr,
                  c->lr);

    const CfgNode *o = section(d, "output", k_out);
    const char *ck = NULL, *csv = NULL, *plot = NULL, *logs = NULL;
    if (o) {
        cfg_get_string(d, o, "dir", "output.dir", &c->out);
        cfg_get_string(d, o, "checkpoint", "output.checkpoint", &ck);
        cfg_get_string(d, o, "log_csv", "output.log_csv", &csv);
        cfg_get_string(d, o, "plot", "output.plot", &plot);
        cfg_get_string(d, o, "logs", "output.logs", &logs);
    }
    if (!c->out)
        cfg_error(d, NULL,
                  "key 'output.dir': missing; expected the folder for the checkpoint, "
                  "log.csv, loss.png and logs/");
    else {
        out_path(c->ckpt_buf, sizeof c->ckpt_buf, ck, c->out, "ckpt.safetensors", &c->ckpt);
        out_path(c->csv_buf, sizeof c->csv_buf, csv, c->out, "log.csv", &c->csv);
        out_path(c->plot_buf, sizeof c->plot_buf, plot, c->out, "loss.png", &c->plot);
        out_path(c->logs_buf, sizeof c->logs_buf, logs, c->out, "logs", &c->logs);
    }
    return cfg_errors(d) ? -1 : 0;
}

// CONFIG, its overrides and --resume, then this job's keys. Returns 0, or -1 (rank 0 printed
// why).
static int parse_args(int argc, char **argv, CfgDoc *d, TrainConfig *c, int *resume, int rank,
                      char *err, size_t errlen) {
    static const char *const flags[] = {"--resume", NULL};
    memset(d, 0, sizeof *d);
    const char *path =
        cfg_load_args(d, argc, argv, "train", flags, resume, usage, rank == 0, err, errlen);
    if (!path) return -1;
    int rc = read_config(d, c);
    if (rc && rank == 0) fprintf(stderr, "storyrun train: %s has problems:\n%s", path, err);
    return rc;
}

// ---- the job --------------------------------------------------------------------------------

typedef struct {
    Comm *comm;
    TrainConfig cfg;
    TrainData data;
    SmpModel model;
    SmpAdamW opt;
    SmpSchedule sched;
    TorchRng rng;
    TrainLog log;
    int B;           // clips per rank per step: G / ranks
    float *clips;    // (B, L, D)
    int64_t *pos;    // (B)
    TrainClip *sel;  // (B)
    SmpCuda *gpu;    // train.device: cuda: the device twin of model (NULL on the CPU)
} Train;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

// ---- train.device: the CPU model or its CUDA twin (models/motion_cuda.h) -------------------
// The same steps on either; on the device the gradient buffer passed to the all-reduce is
// device memory, which the comm layer hands to NCCL. model.out holds P after a forward on
// both. Checkpoints are written from the host model: model_to_host copies weights and
// AdamW moments back first.

static float model_forward(Train *t, int n, int L) {
    return t->gpu ? smp_cuda_forward_clips(t->gpu, t->clips, n, L)
                  : smp_forward_clips(&t->model, t->clips, n, L);
}

static void model_zero_grad(Train *t) {
    if (t->gpu)
        smp_cuda_zero_grad(t->gpu);
    else
        smp_zero_grad(&t->model);
}

static void model_backward(Train *t) {
    if (t->gpu)
        smp_cuda_backward(t->gpu);
    else
        smp_backward(&t->model);
}

// Sum over ranks, then the mean.
static void model_all_reduce(Train *t) {
    Comm *comm = t->comm;
    if (comm->size == 1) return;
    comm_all_reduce_f32(comm, t->gpu ? t->gpu->grads : t->model.grads, t->model.num_params);
    if (t->gpu)
        smp_cuda_scale_grads(t->gpu, 1.0f / (float)comm->size);
    else
        smp_scale_grads(&t->model, 1.0f / (float)comm->size);
}

static double model_update(Train *t, double clip, double lr) {
    if (t->gpu) {
        double norm = smp_cuda_clip_grad_norm(t->gpu, clip);
        smp_cuda_adamw_step(t->gpu, &t->opt, lr);
        return norm;
    }
    double norm = smp_clip_grad_norm(&t->model, clip);
    smp_adamw_step(&t->opt, &t->model, lr);
    return norm;
}

static void model_to_host(Train *t) {
    if (t->gpu) smp_cuda_download(t->gpu, &t->opt);
}

// train.device: cuda: the device model from the host one (after a resume's load). Returns
// 0, or -1 on every rank when any rank has no usable device.
static int model_to_device(Train *t) {
    char err[1024] = "";
    int rc = 0;
#ifndef STORY_HAVE_NCCL
    if (t->comm->size > 1) {
        snprintf(err, sizeof err,
                 "this build has no NCCL, so the device gradients of %d ranks cannot be "
                 "all-reduced",
                 t->comm->size);
        rc = -1;
    }
#endif
    if (!rc) {
        t->gpu = mallocCheck(sizeof *t->gpu);
        rc = smp_cuda_init(t->gpu, &t->model, err, sizeof err);
        if (rc) free(t->gpu), t->gpu = NULL;
    }
    if (!rc) smp_cuda_upload(t->gpu, &t->opt);
    if (rc)
        LOG_ERROR("train.device is cuda, but rank %d cannot use it: %s; set train.device: cpu",
                  t->comm->rank, err);
    return comm_any(t->comm, rc) ? -1 : 0;
}

// Validation over the held-out clips (each rank a contiguous part): the MSE of the model's
// inner frames and of linear interpolation's, over every element of frames 1..L-2 (the end
// frames are given, not predicted). Collective. Returns 0, or -1 (a read failed somewhere).
static int evaluate(Train *t, double *model_mse, double *interp_mse) {
    Comm *comm = t->comm;
    TrainData *d = &t->data;
    int L = d->L, D = d->D;
    int64_t lo = d->n_val * comm->rank / comm->size, hi = d->n_val * (comm->rank + 1) / comm->size;
    double sm = 0, si = 0;
    char err[1024];
    int bad = 0;
    for (int64_t i = lo; i < hi && !bad; i += t->B) {
        int n = (int)(hi - i < t->B ? hi - i : t->B);
        if (train_data_read(d, d->val + i, n, t->clips, err, sizeof err)) {
            LOG_ERROR("%s", err);
            bad = 1;
            break;
        }
        model_forward(t, n, L);
        for (int b = 0; b < n; b++) {
            const float *y = t->clips + (size_t)b * L * D, *p = t->model.out + (size_t)b * L * D;
            for (int j = 1; j < L - 1; j++) {
                float a = (float)j / (float)(L - 1);
                for (int k = 0; k < D; k++) {
                    float s = y[k], e = y[(size_t)(L - 1) * D + k], yv = y[(size_t)j * D + k];
                    double dm = p[(size_t)j * D + k] - yv, di = s + a * (e - s) - yv;
                    sm += dm * dm, si += di * di;
                }
            }
        }
    }
    float r[3] = {(float)sm, (float)si, (float)bad};
    comm_all_reduce_f32(comm, r, 3);
    double count = (double)d->n_val * (L - 2) * D;
    *model_mse = count > 0 ? r[0] / count : NAN;
    *interp_mse = count > 0 ? r[1] / count : NAN;
    return r[2] > 0 ? -1 : 0;
}

// Rank 0 writes the checkpoint and the CSV; every rank learns whether that worked.
static int save(Train *t, long step) {
    char err[4096];
    int rc = 0;
    model_to_host(t);
    if (t->comm->rank == 0) {
        rc = smp_checkpoint_save(t->cfg.ckpt, &t->model, &t->opt, &t->rng, step, err, sizeof err);
        if (!rc) rc = train_log_write(&t->log, t->cfg.csv, err, sizeof err);
        if (rc)
            LOG_ERROR("%s", err);
        else
            LOG_INFO("train: step %ld: checkpoint %s", step, t->cfg.ckpt);
    }
    return comm_any(t->comm, rc) ? -1 : 0;
}

static int run(Train *t, int resume) {
    Comm *comm = t->comm;
    TrainConfig *c = &t->cfg;
    char err[8192];
    int rc = train_data_open(&t->data, c->stores, c->nstores, c->frames, c->val_fraction, err,
                             sizeof err);
    if (comm_any(comm, rc)) {
        if (comm->rank == 0 || rc) LOG_ERROR("%s", err);
        return 1;
    }
    TrainData *d = &t->data;
    int L = d->L;
    long spe = train_steps_per_epoch(d, c->G);
    if (spe < 1) {
        if (comm->rank == 0)
            LOG_ERROR("%s: %" PRId64 " training clips (%" PRId64
                      " held out for validation); "
                      "train.batch %d needs at least that many",
                      c->stores[0], d->n_train, d->n_val, c->G);
        return 1;
    }
    long total = c->steps ? c->steps : c->epochs * spe;
    t->sched = (SmpSchedule){
        c->lr, c->min_lr, c->warmup_frac > 0 ? (long)(c->warmup_frac * total) : c->warmup, total};
    SmpConfig mc;
    smp_config_default(&mc, d->D, L);
    mc.layers = c->layers, mc.width = c->width, mc.heads = c->heads;
    mc.mlp_ratio = c->mlp_ratio, mc.endpoint_weight = (float)c->endpoint_weight;
    t->B = c->G / comm->size;
    rc = smp_init(&t->model, &mc, t->B, err, sizeof err);
    if (!rc) rc = smp_frames_check(&mc, L, err, sizeof err);
    if (rc) {
        if (comm->rank == 0) LOG_ERROR("model: %s", err);
        return 2;
    }
    SmpAdamWConfig oc = {c->beta1, c->beta2, c->eps, c->weight_decay};
    smp_adamw_init(&t->opt, &oc, t->model.num_params);
    smp_init_weights(&t->model, c->seed);
    rng_torch_seed(&t->rng, c->seed);
    long start = 0;
    if (resume && access(c->ckpt, F_OK) == 0) {
        rc = smp_checkpoint_load(c->ckpt, &t->model, &t->opt, &t->rng, &start, err, sizeof err);
        if (!rc && comm->rank == 0) rc = train_log_load(&t->log, c->csv, start, err, sizeof err);
        if (comm_any(comm, rc)) {
            if (rc) LOG_ERROR("--resume: %s", err);
            return 1;
        }
        if (comm->rank == 0) LOG_INFO("train: resumed from %s at step %ld", c->ckpt, start);
    } else if (access(c->ckpt, F_OK) == 0) {
        if (comm->rank == 0)
            LOG_ERROR(
                "%s exists: run with --resume to continue from it, or choose another "
                "output.dir / output.checkpoint (nothing was changed)",
                c->ckpt);
        return 2;
    } else if (resume && comm->rank == 0) {
        LOG_INFO("train: --resume: no checkpoint at %s yet; starting at step 0", c->ckpt);
    }
    if (comm->rank == 0)
        LOG_INFO("train: %d store(s), %" PRId64 " training and %" PRId64
                 " validation clips of "
                 "%d frames x %d; model %d layers, width %d, %d heads, %zu parameters; global "
                 "batch %d = %d rank(s) x %d; %ld steps (%ld per epoch), lr %g -> %g, warm-up %ld",
                 c->nstores, d->n_train, d->n_val, L, d->D, mc.layers, mc.width, mc.heads,
                 t->model.num_params, c->G, comm->size, t->B, total, spe, c->lr, c->min_lr,
                 t->sched.warmup);
    if (c->cuda && model_to_device(t)) return 2;
    if (d->n_val == 0 && comm->rank == 0)
        LOG_WARN("train: no validation clips (data.val_fraction %g of %" PRId64 " clips)",
                 c->val_fraction, d->n_train);
    t->clips = mallocCheck((size_t)t->B * L * d->D * sizeof(float));
    t->pos = mallocCheck((size_t)t->B * sizeof *t->pos);
    t->sel = mallocCheck((size_t)t->B * sizeof *t->sel);
    const char *sa = getenv("STORY_TRAIN_STOP_AFTER");
    long stop_after = sa ? strtol(sa, NULL, 10) : 0;

    Progress *prog = progress_start(&(ProgressOptions){.label = "train",
                                                       .unit = "steps",
                                                       .step = "steps",
                                                       .total_units = total,
                                                       .total_steps = total,
                                                       .no_unit_lines = 1,
                                                       .silent = comm->rank != 0});
    progress_skip(prog, start, start);
    double t_log = now_s(), vm = NAN, vi = NAN;
    long s_log = start;
    int stopped = 0, failed = 0;
    for (long step = start; step < total && !stopped && !failed; step++) {
        // this rank's clips of the global batch
        int lo = comm->rank * t->B;
        train_data_global_batch(d, c->seed, step, c->G, lo, lo + t->B, t->pos);
        for (int i = 0; i < t->B; i++) t->sel[i] = d->train[t->pos[i]];
        int bad = train_data_read(d, t->sel, t->B, t->clips, err, sizeof err);
        if (bad) LOG_ERROR("%s", err);
        float loss = 0;
        model_zero_grad(t);
        if (!bad) {
            loss = model_forward(t, t->B, L);
            model_backward(t);
        }
        model_all_reduce(t);
        if (stop_after > 0 && step + 1 == stop_after && !signals_requested()) {
            LOG_INFO("STORY_TRAIN_STOP_AFTER=%ld: raising SIGUSR1", stop_after);
            raise(SIGUSR1);
        }
        // loss sum, failures and stop requests in one small all-reduce
        float agree[3] = {loss, (float)bad, (float)signals_requested()};
        comm_all_reduce_f32(comm, agree, 3);
        if (agree[1] > 0) {
            failed = 1;
            break;
        }
        double lr = smp_lr_at(&t->sched, step);
        double norm = model_update(t, c->grad_clip, lr);
        long done = step + 1;
        stopped = agree[2] > 0 && done < total;  // a stop at the last step is just the end
        progress_steps(prog, 1);
        progress_units(prog, 1);
        TrainLogRow row = {done, (int)(step / spe), agree[0] / comm->size, lr, norm, NAN, NAN, NAN};
        int last = done == total;
        if (done % c->log_every == 0 || last) {
            double tn = now_s();
            row.frames_per_s = (double)(done - s_log) * c->G * L / (tn - t_log);
            t_log = tn, s_log = done;
        }
        if ((c->eval_every && done % c->eval_every == 0) || last) {
            if (evaluate(t, &vm, &vi)) {
                failed = 1;
                break;
            }
            row.val_mse = vm, row.interp_mse = vi;
        }
        if (comm->rank == 0) {
            train_log_add(&t->log, &row);
            if (isfinite(row.frames_per_s) || isfinite(row.val_mse)) {
                progress_clear(prog);
                char v[96] = "", f[48] = "";
                if (isfinite(row.val_mse))
                    snprintf(v, sizeof v, ", val %.5g (interp %.5g)", row.val_mse, row.interp_mse);
                if (isfinite(row.frames_per_s))
                    snprintf(f, sizeof f, ", %.0f frames/s", row.frames_per_s);
                LOG_INFO("step %ld/%ld epoch %d: loss %.5g, lr %.3g, grad norm %.4g%s%s", done,
                         total, row.epoch, row.loss, lr, norm, f, v);
            }
        }
        if ((c->ckpt_every && done % c->ckpt_every == 0) || last || stopped)
            if (save(t, done)) failed = 1;
    }
    if (start >= total && !failed) {  // nothing left: report the validation figures again
        if (evaluate(t, &vm, &vi)) failed = 1;
    }
    progress_finish(prog);
    if (comm->rank == 0 && !failed) {
        if (t->log.n && train_log_plot(&t->log, c->plot, err, sizeof err))
            LOG_WARN("loss curve: %s", err);
        if (!stopped) {
            if (d->n_val)
                LOG_INFO("validation MSE model %.6g, interpolation %.6g (%" PRId64
                         " held-out "
                         "clips, inner frames)",
                         vm, vi, d->n_val);
            LOG_INFO("train: done: %s, %s, %s", c->ckpt, c->csv, c->plot);
        } else {
            int sig = signals_requested();
            LOG_INFO(
                "train: stopped on request (%s) after a checkpoint; exit %d = resume me "
                "with --resume",
                sig ? signals_name(sig) : "another rank's signal", STORY_EXIT_REQUEUE);
        }
    }
    comm_barrier(comm);  // mpirun ends every rank when one exits non-zero: say it all first
    if (failed) return 1;
    return stopped ? STORY_EXIT_REQUEUE : 0;
}

int job_train(int argc, char **argv) {
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        }
    Comm *comm = comm_init(&argc, &argv);
    Train *t = calloc(1, sizeof *t);
    if (!t) STORY_FATAL("out of memory");
    t->comm = comm;
    CfgDoc doc;
    static char err[16384];
    int resume = 0;
    int rc = parse_args(argc, argv, &doc, &t->cfg, &resume, comm->rank, err, sizeof err);
    TrainConfig *c = &t->cfg;
    if (!rc && c->G % comm->size) {
        if (comm->rank == 0)
            fprintf(stderr,
                    "storyrun train: train.batch %d is the global batch and must divide by the "
                    "rank count %d (each rank takes train.batch / ranks clips a step); use a "
                    "multiple of %d\n",
                    c->G, comm->size, comm->size);
        rc = -1;
    }
    if (rc) {
        cfg_free(&doc);
        free(t);
        comm_finalize(comm);
        return 2;
    }
    log_init(c->logs, comm->rank);
    if (c->threads) cpu_set_threads(c->threads);
    signals_install();
    rc = run(t, resume);
    free(t->clips), free(t->pos), free(t->sel);
    if (t->gpu) smp_cuda_free(t->gpu), free(t->gpu);
    train_log_free(&t->log);
    if (t->model.params) smp_free(&t->model);
    if (t->opt.m) smp_adamw_free(&t->opt);
    train_data_close(&t->data);
    cfg_free(&doc);
    free(t);
    log_close();
    comm_finalize(comm);
    return rc;
}

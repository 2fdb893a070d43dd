// jobs/render.c: `storyrun render CONFIG` and `storyrun check CONFIG`: a story in YAML to
// consistent frames, comic pages, index.html and a manifest, on 1 process or N MPI ranks.
//
//   bank mode:   for each character in order, its id pass (the id frames spread over the
//                ranks, generated together, the bank all-gathered layer by layer; every rank
//                keeps it and rank 0 saves it to OUTPUT/banks/NAME.h5), then every other
//                frame on one rank in rounds (round k: each rank its k-th frame), reading
//                the banks of the characters it names. No communication in the frames phase
//                but the stop check between rounds.
//   window mode: every rank steps its own frames (part_split) one UNet call at a time, the
//                previous step's tokens of frames whose windows cross rank borders are
//                exchanged after each step (models/csa.h).
// Frame f is drawn with seed + f. Resume: frames listed in OUTPUT/manifest.json under the
// same config hash (and intact on disk) are not rendered again; a finished id pass is
// replaced by its saved bank. A SIGTERM/SIGUSR1 stops at the next round boundary with exit
// code 75 (STORY_EXIT_REQUEUE).
#include "jobs/render.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "jobs/jobs.h"
#include "kernels/cuda_runtime_api.h"
#include "kernels/ops.h"
#include "models/csa.h"
#include "partition/partition.h"
#include "runner/check.h"
#include "runner/log.h"
#include "runner/progress.h"
#include "runner/signals.h"
#include "runner/store_bank.h"

#define EXIT_BAD_INPUT 2

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static void usage(FILE *f, const char *verb) {
    fprintf(f,
            "usage: storyrun %s CONFIG [--output DIR] [--seed N] [--set KEY=VALUE]...%s\n"
            "\n"
            "  CONFIG           a story in YAML (docs/config.md; configs/demo.yaml)\n"
            "  --output DIR     where frames, comic pages, index.html and manifest.json go\n"
            "  --seed N         the story's seed (frame f uses N + f)\n"
            "  --set KEY=VALUE  any config key, dotted: --set steps=20 --set csa.sa32=0.3\n",
            verb, strcmp(verb, "render") ? "" : " [--restart] [--cpu]");
    if (!strcmp(verb, "render"))
        fprintf(f,
                "  --restart        replace the outputs of another config in DIR\n"
                "  --cpu            run on the CPU even when a GPU is present\n"
                "\n"
                "Run it under mpirun/srun for N ranks. Exit codes: 0 done, 2 bad input,\n"
                "75 stopped by SIGTERM/SIGUSR1 (re-run to resume), 1 other failures.\n");
}

typedef struct {
    const char *config;
    char **sets;
    int n_sets;
    int restart, force_cpu;
} Args;

static int parse_args(int argc, char **argv, Args *a) {
    memset(a, 0, sizeof *a);
    a->sets = mallocCheck((size_t)(2 * argc + 1) * sizeof *a->sets);
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i];
        const int more = i + 1 < argc;
        if (!strcmp(s, "--help") || !strcmp(s, "-h")) return 1;
        if ((!strcmp(s, "--set") || !strcmp(s, "--output") || !strcmp(s, "--seed")) && !more) {
            fprintf(stderr, "storyrun %s: %s needs a value\n", argv[0], s);
            return -1;
        }
        if (!strcmp(s, "--set")) {
            a->sets[a->n_sets++] = strdup(argv[++i]);
        } else if (!strcmp(s, "--output") || !strcmp(s, "--seed")) {
            char buf[4200];
            snprintf(buf, sizeof buf, "%s=%s", s + 2, argv[++i]);
            a->sets[a->n_sets++] = strdup(buf);
        } else if (!strcmp(s, "--restart")) {
            a->restart = 1;
        } else if (!strcmp(s, "--cpu")) {
            a->force_cpu = 1;
        } else if (s[0] == '-' && s[1]) {
            fprintf(stderr, "storyrun %s: unknown option '%s' (--help lists them)\n", argv[0], s);
            return -1;
        } else if (!a->config) {
            a->config = s;
        } else {
            fprintf(stderr, "storyrun %s: one CONFIG only ('%s' and '%s')\n", argv[0], a->config, s);
            return -1;
        }
    }
    if (!a->config) {
        fprintf(stderr, "storyrun %s: no CONFIG given\n", argv[0]);
        return -1;
    }
    return 0;
}

static void free_args(Args *a) {
    for (int i = 0; i < a->n_sets; i++) free(a->sets[i]);
    free(a->sets);
}

// The story as partition/ sees it. Characters with a stored bank make no id frames.
static void part_story(const RenderConfig *c, PartFrame *pf, PartCharacter *pc, PartStory *st) {
    for (int f = 0; f < c->n_frames; f++) {
        pf[f].chars = c->frames[f].chars;
        pf[f].n_chars = c->frames[f].n_chars;
        pf[f].is_nc = c->frames[f].is_nc;
    }
    for (int i = 0; i < c->n_characters; i++)
        pc[i].id_frames = c->characters[i].bank ? 0 : c->characters[i].id_frames;
    st->frames = pf, st->n_frames = c->n_frames;
    st->characters = pc, st->n_characters = c->n_characters;
}

// ---- progress ------------------------------------------------------------------------------

typedef struct {
    Progress *prog;
    int images;  // images in the current call on this rank
} StepCtx;

static void on_step(void *ctx, int step, int steps, double seconds) {
    (void)step, (void)steps, (void)seconds;
    StepCtx *s = ctx;
    progress_steps(s->prog, s->images);
}

// ---- the run -------------------------------------------------------------------------------

typedef struct {
    Render *r;
    Pipeline p;
    PipelineRequest req;
    CsaPlan plan;
    CsaBank *banks;     // (n_characters); tokens NULL when the character has none
    int *have_bank;     // (n_characters)
    Progress *prog;
    StepCtx sc;
    double comm_seconds;
    int rendered;        // frames rendered by this run (all ranks)
    int stop_after;      // STORY_RENDER_STOP_AFTER (tests): raise SIGUSR1 after this many
    size_t peak_work;    // largest activation arena of one pipeline call on this rank
    size_t peak_state;   // largest latents + conditioning arena (grows with the call's frames)
    size_t csa_host;     // window mode's host store on this rank
} Run;

static void request_defaults(Run *u) {
    const RenderConfig *c = &u->r->cfg;
    PipelineRequest q = {0};
    q.negative = u->r->negative;
    q.steps = c->steps;
    q.width = c->width, q.height = c->height;
    q.guidance = c->guidance;
    q.sampler = u->r->sampler;
    q.on_step = on_step;
    q.ctx = &u->sc;
    u->req = q;
}

static void note_work(Run *u) {
    if (u->p.last_ws_bytes > u->peak_work) u->peak_work = u->p.last_ws_bytes;
    if (u->p.last_io_bytes > u->peak_state) u->peak_state = u->p.last_io_bytes;
}

// Writes the frames of outs (images for story frames fr[0..n)) and marks them in mine[].
static int write_frames(Run *u, const int *fr, int n, PipelineOutput *outs, int *mine, char *err,
                        size_t errlen) {
    for (int i = 0; i < n; i++) {
        if (render_write_frame(u->r, fr[i], &outs[i].image, err, errlen)) return -1;
        mine[fr[i]] = 1;
    }
    return 0;
}

// Sums the per-rank "written" flags on every rank; rank 0 records them in the manifest.
static int sync_done(Run *u, int *mine, char *err, size_t errlen) {
    Render *r = u->r;
    const int F = r->cfg.n_frames;
    float *v = mallocCheck((size_t)F * sizeof *v);
    for (int f = 0; f < F; f++) v[f] = (float)mine[f];
    comm_all_reduce_f32(r->comm, v, (size_t)F);
    int newly = 0, rc = 0;
    for (int f = 0; f < F; f++) {
        mine[f] = v[f] > 0.5f && !r->done[f];
        newly += mine[f];
    }
    free(v);
    u->rendered += newly;
    if (u->stop_after > 0 && u->rendered >= u->stop_after && r->comm->rank == 0) {
        u->stop_after = 0;
        raise(SIGUSR1);  // the real stop path, as Slurm's warning would take it
    }
    if (r->comm->rank == 0 && newly) rc = render_record_frames(r, mine, err, errlen);
    for (int f = 0; f < F; f++)
        if (mine[f]) r->done[f] = 1;
    memset(mine, 0, (size_t)F * sizeof *mine);
    if (newly) progress_units(u->prog, newly);
    return rc;
}

static void bank_meta(const Run *u, BankMeta *m) {
    const RenderConfig *c = &u->r->cfg;
    m->model = c->model, m->width = c->width, m->height = c->height, m->steps = c->steps;
    m->sampler = pipeline_sampler_name(u->r->sampler);
    m->guidance = c->guidance, m->seed = c->seed;
}

static void bank_path(const Run *u, int ch, char *buf, size_t n) {
    snprintf(buf, n, "%s/banks/%s.h5", u->r->cfg.output, u->r->cfg.characters[ch].name);
}

// Bank mode. Returns 0, 1 when stopped by a signal, -2 for a bad bank file named in the
// config, or -1 with a message.
static int run_bank(Run *u, char *err, size_t errlen) {
    Render *r = u->r;
    const RenderConfig *c = &r->cfg;
    const int R = r->comm->size, rank = r->comm->rank, F = c->n_frames;
    PartFrame *pf = calloc((size_t)F, sizeof *pf);
    PartCharacter *pc = calloc((size_t)c->n_characters + 1, sizeof *pc);
    PartStory st;
    part_story(c, pf, pc, &st);
    PartBankPlan bp;
    int rc = -1;
    int *mine = calloc((size_t)F, sizeof *mine);
    if (part_bank_plan(&st, R, &bp, err)) goto out;
    BankMeta meta;
    bank_meta(u, &meta);
    // stored banks named in the config
    for (int ch = 0; ch < c->n_characters; ch++) {
        if (!c->characters[ch].bank) continue;
        char e2[2048], where[256];
        if (store_bank_load(c->characters[ch].bank, &u->plan, &meta, r->halves, u->p.dt, u->p.dev,
                            &u->banks[ch], e2, sizeof e2)) {
            snprintf(err, errlen, "%s: bank of [%s]: %s",
                     render_config_where(c, &c->characters[ch].pos, where, sizeof where),
                     c->characters[ch].name, e2);
            rc = -2;
            goto out;
        }
        u->have_bank[ch] = 1;
        LOG_INFO("[%s]: bank loaded from %s (%d id images)", c->characters[ch].name,
                 c->characters[ch].bank, u->banks[ch].n_images);
    }
    for (int ch = 0; ch < c->n_characters; ch++) {
        const int n = bp.id_start[ch + 1] - bp.id_start[ch];
        if (!n) {
            if (!c->characters[ch].bank && c->characters[ch].id_frames > 0)
                LOG_WARN("[%s]: no frame names [%s] alone, so it has no id frames and no bank: "
                         "its frames are drawn without it (name it alone in a frame, or give a "
                         "bank file)",
                         c->characters[ch].name, c->characters[ch].name);
            continue;
        }
        const int *pass = bp.id_frames + bp.id_start[ch];
        int all_done = 1;
        for (int i = 0; i < n; i++) all_done &= r->done[pass[i]];
        char bpath[4200];
        bank_path(u, ch, bpath, sizeof bpath);
        if (all_done && !access(bpath, R_OK)) {
            char e2[1024];
            if (!store_bank_load(bpath, &u->plan, &meta, r->halves, u->p.dt, u->p.dev,
                                 &u->banks[ch], e2, sizeof e2)) {
                u->have_bank[ch] = 1;
                LOG_INFO("[%s]: id frames done in an earlier run; bank loaded from %s",
                         c->characters[ch].name, bpath);
                continue;
            }
            LOG_WARN("%s; making the id frames again", e2);
        }
        if (csa_bank_init(&u->banks[ch], &u->plan, c->characters[ch].name, n, r->halves, u->p.dt,
                          u->p.dev, err, errlen))
            goto out;
        u->have_bank[ch] = 1;
        const int *local;
        const int nl = part_bank_rank_ids(&bp, ch, rank, &local);
        CsaIdPass ip = {.plan = &u->plan,
                        .comm = r->comm,
                        .character = ch,
                        .bank = &u->banks[ch],
                        .n_local = nl,
                        .first = nl ? (int)(local - pass) : 0,
                        .frames = local,
                        .halves = r->halves};
        LOG_INFO("[%s]: id pass of %d frames (%d on this rank)", c->characters[ch].name, n, nl);
        if (nl) {
            const char **pr = mallocCheck((size_t)nl * sizeof *pr);
            uint64_t *seeds = mallocCheck((size_t)nl * sizeof *seeds);
            for (int i = 0; i < nl; i++)
                pr[i] = r->prompts[local[i]], seeds[i] = c->seed + (uint64_t)local[i];
            PipelineBatch b = {.n = nl,
                               .prompts = pr,
                               .seeds = seeds,
                               .self_attn = csa_id_pass_attn,
                               .self_attn_ctx = &ip,
                               .extra_scratch = csa_scratch_bytes(&u->plan, r->halves, n, u->p.dt)};
            PipelineOutput *outs = calloc((size_t)nl, sizeof *outs);
            u->sc.images = nl;
            int g = pipeline_generate(&u->p, &u->req, &b, outs, err, errlen);
            note_work(u);
            if (!g) g = write_frames(u, local, nl, outs, mine, err, errlen);
            for (int i = 0; i < nl; i++) pipeline_output_free(&outs[i]);
            free(outs), free(pr), free(seeds);
            if (g) {
                // the other ranks wait in the pass's collectives: end the job
                LOG_ERROR("%s", err);
                comm_abort(r->comm, 1);
            }
        } else {
            csa_id_pass_idle(&ip);
        }
        csa_id_pass_fill_indices(&ip, pass);
        u->comm_seconds += ip.comm_seconds;
        if (rank == 0) {
            char dir[4200];
            snprintf(dir, sizeof dir, "%s/banks", c->output);
            mkdir(dir, 0755);
            if (store_bank_save(bpath, &u->banks[ch], &u->plan, &meta, err, errlen)) goto out;
            char rel[300];
            snprintf(rel, sizeof rel, "banks/%s.h5", c->characters[ch].name);
            const char *info[] = {"character", c->characters[ch].name};
            if (!manifest_add_file(&r->man, rel, "bank", info, 1, err, errlen)) goto out;
        }
        if (sync_done(u, mine, err, errlen)) goto out;
        if (signals_agree(r->comm)) {
            rc = 1;
            goto out;
        }
    }
    // frames phase: rounds over each rank's share
    const int *rest;
    const int nr = part_bank_rank_rest(&bp, rank, &rest);
    int rounds = 0;
    for (int q = 0; q < R; q++) {
        const int m = bp.rest_rank_start[q + 1] - bp.rest_rank_start[q];
        if (m > rounds) rounds = m;
    }
    const CsaBank **named = mallocCheck((size_t)(c->n_characters + 1) * sizeof *named);
    for (int k = 0; k < rounds; k++) {
        if (k < nr && !r->done[rest[k]]) {
            const int f = rest[k];
            int nb = 0;
            for (int i = 0; i < c->frames[f].n_chars; i++) {
                const int ch = c->frames[f].chars[i];
                if (u->have_bank[ch]) named[nb++] = &u->banks[ch];
            }
            CsaFrame cf = {.plan = &u->plan, .frame = f, .banks = named, .n_banks = nb};
            const char *pr[1] = {r->prompts[f]};
            uint64_t seeds[1] = {c->seed + (uint64_t)f};
            size_t extra = 0;
            for (int i = 0; i < nb; i++) extra += (size_t)named[i]->n_images;
            PipelineBatch b = {.n = 1,
                               .prompts = pr,
                               .seeds = seeds,
                               .self_attn = nb && !c->frames[f].is_nc ? csa_frame_attn : NULL,
                               .self_attn_ctx = &cf,
                               .extra_scratch = csa_scratch_bytes(&u->plan, r->halves,
                                                                  (int)extra + 1, u->p.dt)};
            PipelineOutput out;
            u->sc.images = 1;
            if (pipeline_generate(&u->p, &u->req, &b, &out, err, errlen)) goto out;
            note_work(u);
            int g = write_frames(u, &f, 1, &out, mine, err, errlen);
            pipeline_output_free(&out);
            if (g) goto out;
        }
        if (sync_done(u, mine, err, errlen)) goto out;
        if (k + 1 < rounds && signals_agree(r->comm)) {
            rc = 1;
            goto out_named;
        }
    }
    rc = 0;
out_named:
    free(named);
out:
    part_bank_plan_free(&bp);
    free(pf), free(pc), free(mine);
    return rc;
}

typedef struct {
    CsaWindow *w;
    int lo;  // first own frame: image i of the batch is frame lo + i
} WinCtx;

static void win_before_image(void *ctx, int image, int step) {
    WinCtx *c = ctx;
    csa_window_begin(c->w, c->lo + image, step);
}
static void win_after_step(void *ctx, int step) {
    (void)step;
    csa_window_end_step(((WinCtx *)ctx)->w);
}
static void win_attn(void *ctx, const UnetAttnSite *site, Tensor *out, const Tensor *x,
                     const UnetAttention *attn, Arena *scratch) {
    csa_window_attn(((WinCtx *)ctx)->w, site, out, x, attn, scratch);
}

// Window mode: the whole story steps together. Returns 0, or -1 with a message.
static int run_window(Run *u, char *err, size_t errlen) {
    Render *r = u->r;
    const RenderConfig *c = &r->cfg;
    const int R = r->comm->size, rank = r->comm->rank, F = c->n_frames;
    int all = 1;
    for (int f = 0; f < F; f++) all &= r->done[f];
    if (all) return 0;
    PartWindowPlan wp;
    if (part_window_plan(F, c->csa.window, R, &wp, err)) return -1;
    CsaWindow w;
    int rc = -1;
    int *mine = calloc((size_t)F, sizeof *mine);
    if (csa_window_init(&w, &u->plan, &wp, r->comm, rank, r->halves, u->p.dt, u->p.dev, err,
                        errlen))
        goto out;
    LOG_INFO("window mode: W %d, frames [%d, %d) on this rank, %d shared frames, %.1f MiB of "
             "host memory for the previous step's tokens",
             wp.window, wp.own_lo[rank], wp.own_hi[rank], wp.n_shared,
             csa_window_host_bytes(&w) / 1048576.0);
    const int lo = wp.own_lo[rank], n = wp.own_hi[rank] - lo;
    WinCtx wc = {&w, lo};
    if (n) {
        const char **pr = mallocCheck((size_t)n * sizeof *pr);
        uint64_t *seeds = mallocCheck((size_t)n * sizeof *seeds);
        int *fr = mallocCheck((size_t)n * sizeof *fr);
        for (int i = 0; i < n; i++)
            fr[i] = lo + i, pr[i] = r->prompts[lo + i], seeds[i] = c->seed + (uint64_t)(lo + i);
        PipelineBatch b = {.n = n,
                           .prompts = pr,
                           .seeds = seeds,
                           .self_attn = win_attn,
                           .self_attn_ctx = &wc,
                           .extra_scratch = csa_scratch_bytes(&u->plan, r->halves,
                                                              wp.window, u->p.dt),
                           .after_step = win_after_step,
                           .per_image = 1,
                           .before_image = win_before_image};
        PipelineOutput *outs = calloc((size_t)n, sizeof *outs);
        u->sc.images = 1;
        int g = pipeline_generate(&u->p, &u->req, &b, outs, err, errlen);
        note_work(u);
        if (!g) g = write_frames(u, fr, n, outs, mine, err, errlen);
        for (int i = 0; i < n; i++) pipeline_output_free(&outs[i]);
        free(outs), free(pr), free(seeds), free(fr);
        if (g) {
            LOG_ERROR("%s", err);
            comm_abort(r->comm, 1);
        }
    } else {
        for (int s = 0; s < c->steps; s++) csa_window_end_step(&w);
    }
    u->comm_seconds += w.comm_seconds;
    u->csa_host = csa_window_host_bytes(&w);
    rc = sync_done(u, mine, err, errlen);
out:
    csa_window_free(&w);
    part_window_plan_free(&wp);
    free(mine);
    return rc;
}

static double bank_mib(const Run *u) {
    double b = 0;
    for (int ch = 0; ch < u->r->cfg.n_characters; ch++)
        if (u->have_bank[ch]) b += (double)u->banks[ch].mem.cap;
    return b / 1048576.0;
}

// ---- set-up shared by render and check --------------------------------------------------------

static const char *mode_name(CsaMode m) {
    return m == CSA_MODE_BANK ? "bank" : m == CSA_MODE_WINDOW ? "window" : "off";
}

// Loads the config on every rank (rank 0 prints the problems). Returns 0, or an exit code.
static int load_config(Render *r, const Args *a, const char *verb) {
    static char err[16384];
    if (render_config_load(a->config, a->sets, a->n_sets, &r->cfg, err, sizeof err)) {
        if (r->comm->rank == 0) fprintf(stderr, "storyrun %s: %s\n", verb, err);
        return EXIT_BAD_INPUT;
    }
    char e2[1024];
    if (pipeline_sampler_parse(r->cfg.sampler, &r->sampler, e2, sizeof e2)) {
        if (r->comm->rank == 0) fprintf(stderr, "storyrun %s: %s: %s\n", verb, a->config, e2);
        return EXIT_BAD_INPUT;
    }
    r->halves = r->cfg.guidance > 1.0f ? 2 : 1;
    r->prompts = mallocCheck((size_t)r->cfg.n_frames * sizeof *r->prompts);
    for (int f = 0; f < r->cfg.n_frames; f++) r->prompts[f] = render_frame_prompt(&r->cfg, f);
    r->negative = render_negative_prompt(&r->cfg);
    r->done = calloc((size_t)r->cfg.n_frames, sizeof *r->done);
    return 0;
}

static void render_free(Render *r) {
    if (r->prompts)
        for (int f = 0; f < r->cfg.n_frames; f++) free(r->prompts[f]);
    free(r->prompts);
    free(r->negative);
    free(r->done);
    manifest_free(&r->man);
    render_config_free(&r->cfg);
}

// Size and precision against the loaded model (the size may default to the model's).
static int check_model(Render *r, Pipeline *p, char *err, size_t errlen) {
    RenderConfig *c = &r->cfg;
    char where[256];
    if (!c->width || !c->height) pipeline_default_size(p, &c->width, &c->height);
    if (c->width % p->align || c->height % p->align)
        return snprintf(err, errlen,
                        "%s: size %dx%d: %s needs multiples of %d pixels (VAE factor %d x UNet "
                        "downsampling)",
                        render_config_where(c, &c->pos_size, where, sizeof where), c->width,
                        c->height, c->model, p->align, p->vae_factor),
               -1;
    const char *pr = c->precision ? c->precision : "auto";
    const int gpu = p->dev == DEV_CUDA;
    if (strcmp(pr, "auto") && strcmp(pr, gpu ? "fp16" : "fp32"))
        return snprintf(err, errlen,
                        "%s: precision %s is not available on the %s yet (it runs %s there); "
                        "use auto",
                        render_config_where(c, &c->pos_precision, where, sizeof where), pr,
                        gpu ? "GPU" : "CPU", gpu ? "fp16" : "fp32"),
               -1;
    return 0;
}

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

// Memory per rank from the model's config alone (no weights read): weights, the largest
// call's activations, the banks, on the device a render would use.
static void print_memory_estimate(Render *r, int R) {
    const RenderConfig *c = &r->cfg;
    Weights *w = NULL;
    char err[1024];
    UnetConfig uc;
    VaeConfig vc;
    Unet m;
    size_t cond = 0;
    const Device dev = r->comm->device >= 0 && cuda_available() ? DEV_CUDA : DEV_CPU;
    const DType dt = dev == DEV_CPU ? DT_F32 : DT_F16;
    if (weights_open(&w, c->model, err, sizeof err) || unet_config(&uc, w, err, sizeof err) ||
        vae_config(&vc, w, err, sizeof err) || cond_weight_bytes(w, dt, &cond, err, sizeof err) ||
        unet_load_shapes(&m, &uc, dt, dev, err, sizeof err)) {
        printf("memory: no estimate (%s)\n", err);
        if (w) weights_close(w);
        return;
    }
    const int f = vae_scale_factor(&vc);
    int W = c->width, H = c->height;
    if (!W || !H) {
        const JsonValue *ss = json_get(weights_config(w, "unet"), "sample_size");
        W = H = ss && ss->type == JSON_NUMBER && ss->is_int ? (int)ss->i * f : 512;
    }
    const size_t wbytes = cond + unet_weight_bytes(&uc, dt) +
                          vae_weight_bytes(&vc, VAE_DECODER, vae_default_dtype(&vc, dev));
    int max_local = 1, n_id_total = 0;
    for (int ch = 0; ch < c->n_characters; ch++) {
        const int n = c->characters[ch].bank ? 0 : c->characters[ch].id_frames;
        const int local = (n + R - 1) / R;
        if (local > max_local) max_local = local;
        n_id_total += n;
    }
    const int rows = (c->guidance > 1.0f ? 2 : 1) * (c->csa.mode == CSA_MODE_BANK ? max_local : 1);
    CsaPlan plan;
    size_t act = unet_scratch_bytes(&m, rows, H / f, W / f, 77), banks = 0;
    if (!csa_plan_init(&plan, &m, &c->csa, c->seed, c->steps, W, H, W / f, H / f, err,
                       sizeof err)) {
        act += csa_scratch_bytes(&plan, c->guidance > 1.0f ? 2 : 1,
                                 c->csa.mode == CSA_MODE_WINDOW ? c->csa.window : n_id_total + 1,
                                 dt);
        if (c->csa.mode == CSA_MODE_BANK)
            for (int ch = 0; ch < c->n_characters; ch++)
                banks += csa_bank_bytes(&plan, c->characters[ch].bank ? 4 : c->characters[ch].id_frames,
                                        c->guidance > 1.0f ? 2 : 1, dt);
        csa_plan_free(&plan);
    }
    printf("memory per rank (%s, %s, %dx%d): weights %.0f MiB, activations %.0f MiB (largest "
           "UNet call, %d rows), character banks %.0f MiB%s; about %.1f GiB in all\n",
           dev == DEV_CUDA ? "GPU" : "CPU", dtype_name(dt), W, H, wbytes / 1048576.0,
           act / 1048576.0, rows, banks / 1048576.0,
           c->csa.mode == CSA_MODE_WINDOW ? " (window mode: plus the previous step's tokens of a "
                                            "rank's frames in host memory)"
                                          : "",
           (wbytes + act + banks) / 1073741824.0);
    unet_free(&m);
    weights_close(w);
}

// ---- storyrun check --------------------------------------------------------------------------

int job_check(int argc, char **argv) {
    Args a;
    int pa = parse_args(argc, argv, &a);
    if (pa) {
        usage(pa > 0 ? stdout : stderr, "check");
        free_args(&a);
        return pa > 0 ? 0 : EXIT_BAD_INPUT;
    }
    Comm *comm = comm_init(&argc, &argv);
    Render r = {0};
    r.comm = comm;
    int rc = load_config(&r, &a, "check");
    if (rc) goto out;
    RenderConfig *c = &r.cfg;
    const int R = comm->size;
    if (comm->rank == 0) {
        printf("config   %s (hash %.16s)\n", c->path, c->hash);
        printf("model    %s\n", c->model);
        printf("story    %d frames, %d characters, %s mode, %d steps of %s, guidance %g\n",
               c->n_frames, c->n_characters, mode_name(c->csa.mode), c->steps, c->sampler,
               (double)c->guidance);
        if (c->width) printf("size     %dx%d\n", c->width, c->height);
        printf("output   %s\n", c->output);
        for (int f = 0; f < c->n_frames; f++)
            printf("  frame %3d: %s%s%s\n", f, r.prompts[f], c->frames[f].caption ? "  # " : "",
                   c->frames[f].caption ? c->frames[f].caption : "");
        PartFrame *pf = calloc((size_t)(c->n_frames > 0 ? c->n_frames : 1), sizeof *pf);
        PartCharacter *pc = calloc((size_t)(c->n_characters > 0 ? c->n_characters : 0) + 1, sizeof *pc);
        PartStory st;
        part_story(c, pf, pc, &st);
        char err[1024];
        if (c->csa.mode == CSA_MODE_WINDOW) {
            PartWindowPlan wp;
            if (!part_window_plan(c->n_frames, c->csa.window, R, &wp, err)) {
                printf("plan on %d rank%s: window W %d, %d windows\n", R, R > 1 ? "s" : "",
                       wp.window, wp.n_windows);
                for (int q = 0; q < R; q++)
                    printf("  rank %d: frames [%d, %d), halo %d\n", q, wp.own_lo[q], wp.own_hi[q],
                           part_window_halo(&wp, q));
                part_window_plan_free(&wp);
            }
        } else {
            PartBankPlan bp;
            if (!part_bank_plan(&st, R, &bp, err)) {
                printf("plan on %d rank%s:\n", R, R > 1 ? "s" : "");
                for (int ch = 0; ch < c->n_characters; ch++) {
                    const int n = bp.id_start[ch + 1] - bp.id_start[ch];
                    printf("  [%s]: ", c->characters[ch].name);
                    if (c->characters[ch].bank)
                        printf("bank from %s\n", c->characters[ch].bank);
                    else if (!n)
                        printf("no frame names it alone: no id frames, no bank\n");
                    else {
                        printf("id pass of %d frame%s:", n, n > 1 ? "s" : "");
                        for (int i = 0; i < n; i++) {
                            const int f = bp.id_frames[bp.id_start[ch] + i];
                            printf(" %d (rank %d)", f, bp.frame_rank[f]);
                        }
                        printf("\n");
                    }
                }
                for (int q = 0; q < R; q++) {
                    const int *rest;
                    int n = part_bank_rank_rest(&bp, q, &rest);
                    printf("  rank %d, frames phase:", q);
                    for (int i = 0; i < n; i++) printf(" %d", rest[i]);
                    printf(n ? "\n" : " (none)\n");
                }
                part_bank_plan_free(&bp);
            } else {
                printf("plan: %s\n", err);
            }
        }
        free(pf), free(pc);
        print_memory_estimate(&r, R);
        printf("ok: %s is valid (weights are checked when the job loads them)\n", c->path);
    }
out:
    render_free(&r);
    free_args(&a);
    comm_finalize(comm);
    return rc;
}

// ---- storyrun render --------------------------------------------------------------------------

int job_render(int argc, char **argv) {
    Args a;
    int pa = parse_args(argc, argv, &a);
    if (pa) {
        usage(pa > 0 ? stdout : stderr, "render");
        free_args(&a);
        return pa > 0 ? 0 : EXIT_BAD_INPUT;
    }
    Comm *comm = comm_init(&argc, &argv);
    signals_install();
    Render r = {0};
    r.comm = comm, r.restart = a.restart, r.force_cpu = a.force_cpu;
    static char err[8192];
    int rc = load_config(&r, &a, "render");
    if (rc) goto out_cfg;
    RenderConfig *c = &r.cfg;
    const double t0 = now_s();
    // output folder, logs, resume state
    char logdir[4200];
    snprintf(logdir, sizeof logdir, "%s/logs", c->output);
    int bad = 0;
    char frames_dir[4200];
    snprintf(frames_dir, sizeof frames_dir, "%s/frames", c->output);
    if (comm->rank == 0 && mkdirs(frames_dir)) {
        fprintf(stderr, "storyrun render: %s: cannot create the output folder: %s\n", c->output,
                strerror(errno));
        bad = 1;
    }
    if (comm_any(comm, bad) || log_init(logdir, comm->rank)) {
        rc = 1;
        goto out_cfg;
    }
    if (comm->rank == 0 && render_resume_state(&r, err, sizeof err)) {
        LOG_ERROR("storyrun render: %s", err);
        bad = 1;
    }
    if (comm_any(comm, bad)) {
        rc = EXIT_BAD_INPUT;
        goto out_log;
    }
    comm_broadcast(comm, r.done, (size_t)c->n_frames * sizeof *r.done, 0);
    int n_done = 0;
    for (int f = 0; f < c->n_frames; f++) n_done += r.done[f];
    // the model
    Run u = {0};
    u.r = &r;
    Weights *w = NULL;
    const Device dev = !r.force_cpu && comm->device >= 0 && cuda_available() ? DEV_CUDA : DEV_CPU;
    if (weights_open(&w, c->model, err, sizeof err) ||
        pipeline_load(&u.p, w, dev, err, sizeof err) || check_model(&r, &u.p, err, sizeof err)) {
        LOG_ERROR("storyrun render: %s", err);
        bad = 1;
    }
    if (comm_any(comm, bad)) {
        rc = EXIT_BAD_INPUT;
        goto out_model;
    }
    const int lh = c->height / u.p.vae_factor, lw = c->width / u.p.vae_factor;
    if (csa_plan_init(&u.plan, &u.p.unet, &c->csa, c->seed, c->steps, c->width, c->height, lw, lh,
                      err, sizeof err)) {
        LOG_ERROR("storyrun render: %s", err);
        rc = EXIT_BAD_INPUT;
        goto out_model;
    }
    request_defaults(&u);
    const char *stop = getenv("STORY_RENDER_STOP_AFTER");
    u.stop_after = stop ? atoi(stop) : 0;
    if (comm->rank == 0 && (rc = render_record_frames(&r, r.done, err, sizeof err)) != 0) {
        LOG_ERROR("storyrun render: %s", err);
        rc = 1;
    }
    if (comm_any(comm, rc)) {
        rc = 1;
        goto out_plan;
    }
    LOG_INFO("render %s: %d frames (%d done before), %s mode, %dx%d, %d steps, %d rank%s, %s",
             c->path, c->n_frames, n_done, mode_name(c->csa.mode), c->width, c->height, c->steps,
             comm->size, comm->size > 1 ? "s" : "", dev == DEV_CUDA ? "GPU" : "CPU");
    u.banks = calloc((size_t)c->n_characters + 1, sizeof *u.banks);
    u.have_bank = calloc((size_t)c->n_characters + 1, sizeof *u.have_bank);
    u.prog = progress_start(&(ProgressOptions){.label = "render",
                                               .unit = "frames",
                                               .step = "steps",
                                               .total_units = c->n_frames,
                                               .total_steps = (long)c->n_frames * c->steps,
                                               .silent = comm->rank != 0});
    progress_skip(u.prog, n_done, (long)n_done * c->steps);
    u.sc.prog = u.prog;
    int run = c->csa.mode == CSA_MODE_WINDOW ? run_window(&u, err, sizeof err)
                                              : run_bank(&u, err, sizeof err);
    if (run < 0) {
        LOG_ERROR("storyrun render: %s", err);
        rc = 1;
    }
    if (run == -2) rc = EXIT_BAD_INPUT;
    if (comm_any(comm, run < 0)) {
        rc = rc ? rc : 1;
        goto out_run;
    }
    int stopped = run == 1;
    if (comm->rank == 0) {
        if (render_finish_outputs(&r, err, sizeof err)) {
            LOG_ERROR("storyrun render: %s", err);
            rc = 1;
        }
    }
    progress_finish(u.prog);
    u.prog = NULL;
    if (!rc && stopped) {
        LOG_WARN("render: stopped by %s; %s holds every frame finished so far; run the same "
                 "command again to resume",
                 signals_name(signals_requested() ? signals_requested() : 15), c->output);
        rc = STORY_EXIT_REQUEUE;
    } else if (!rc && comm->rank == 0) {
        LOG_INFO("render: done in %.1f s: %d frames rendered by this run, %.1f s in CSA token "
                 "exchange on rank 0",
                 now_s() - t0, u.rendered, u.comm_seconds);
        LOG_INFO("render: memory on rank 0: weights %.2f MiB, activations %.2f MiB (peak of one "
                 "call), latents and conditioning %.2f MiB, CSA banks %.2f MiB, window token "
                 "store %.2f MiB (host)",
                 u.p.weights.cap / 1048576.0, u.peak_work / 1048576.0,
                 u.peak_state / 1048576.0, bank_mib(&u), u.csa_host / 1048576.0);
        fprintf(stderr, "comic pages: %s/pages/\nstory page:  %s/index.html\n", c->output,
                c->output);
    }
out_run:
    progress_finish(u.prog);
    for (int ch = 0; ch < c->n_characters; ch++)
        if (u.have_bank[ch]) csa_bank_free(&u.banks[ch]);
    free(u.banks), free(u.have_bank);
out_plan:
    csa_plan_free(&u.plan);
out_model:
    if (u.p.w) pipeline_free(&u.p);
    if (w) weights_close(w);
out_log:
    log_close();
out_cfg:
    render_free(&r);
    free_args(&a);
    comm_finalize(comm);
    return rc;
}

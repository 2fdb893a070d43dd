// tests/motion/test_motion_twin.c: the motion predictor against its PyTorch twin
// (make_golden.py, data/*.safetensors), and its checkpoints.
//
//   test_motion_twin twin DATA_DIR CASE   CASE main: loss, every gradient, 10 AdamW steps
//                                         (losses, grad norms, lrs, final weights);
//                                         CASE ew: loss and gradients (endpoint weight 0.5,
//                                         T < L, start/end apart from the target)
//   test_motion_twin resume DIR           10 straight steps == 5 + save + load + 5, bit for bit
//   test_motion_twin badckpt DATA_DIR DIR  mismatching or foreign files are refused by name
//
// Tolerances (f32 both sides; the twin's own f32-vs-f64 noise is ~4e-8 on the loss and
// ~5e-7 on the gradients, see the files' metadata):
//   loss                        relative 1e-5
//   gradients, per tensor       max |g - g_ref| / max |g_ref| <= 1e-4
//   10-step losses, grad norms  relative 1e-4 (lrs: 1e-12, both compute them in double)
//   weights after 10 steps      max |w - w_ref| / max |w_ref| <= 1e-3 per tensor (observed
//                               ~1e-4: Adam divides each element's gradient by its own
//                               running RMS, so elements whose gradients are ~1e-6 of the
//                               tensor's largest, where the 5e-7 gradient agreement is a
//                               large relative error, take visibly different steps), except
//                               the key biases (zero true gradient): |w - w_ref| <= 2 sum(lr)
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../common/test_check.h"
#include "kernels/ops.h"
#include "models/motion_predictor.h"
#include "models/safetensors.h"
#include "runner/check.h"

static char g_err[4096];

static void die(const char *what) {
    fprintf(stderr, "test_motion_twin: %s: %s\n", what, g_err);
    exit(1);
}

// A float tensor of the golden file as a new buffer (numel checked against want if > 0).
static float *load(const SafeTensors *st, const char *name, size_t want) {
    const SafeTensorsEntry *e = st_find(st, name);
    if (!e) {
        snprintf(g_err, sizeof g_err, "no tensor %s", name);
        die(st->path);
    }
    if (want && (size_t)e->numel != want) {
        snprintf(g_err, sizeof g_err, "%s has %lld elements, expected %zu", name,
                 (long long)e->numel, want);
        die(st->path);
    }
    float *p = malloc((size_t)e->numel * sizeof(float));
    if (st_load_f32(e, p)) die(name);
    return p;
}

static double meta_num(const SafeTensors *st, const char *key) {
    const char *v = st_meta(st, key);
    if (!v) {
        snprintf(g_err, sizeof g_err, "no metadata %s", key);
        die(st->path);
    }
    return strtod(v, NULL);
}

static void config_from(const SafeTensors *st, SmpConfig *c) {
    smp_config_default(c, (int)meta_num(st, "embed_dim"), (int)meta_num(st, "frames"));
    c->layers = (int)meta_num(st, "layers");
    c->width = (int)meta_num(st, "width");
    c->heads = (int)meta_num(st, "heads");
    c->mlp_ratio = (int)meta_num(st, "mlp_ratio");
    c->ln_eps = (float)meta_num(st, "ln_eps");
    c->endpoint_weight = (float)meta_num(st, "endpoint_weight");
}

// max |a - b| / max |b| over n elements
static double rel_max_err(const float *a, const float *b, size_t n) {
    double e = 0.0, mb = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (d > e || isnan(d)) e = isnan(d) ? INFINITY : d;
        if (fabs(b[i]) > mb) mb = fabs(b[i]);
    }
    return mb > 0.0 ? e / mb : e;
}

static double rel(double a, double b) { return fabs(a - b) / fmax(fabs(b), 1e-30); }

// Compares every tensor `prefix + name` of st with the buffer buf (model layout). With
// key_bias_bound > 0, the key third of each attn.qkv.bias is compared against that
// absolute bound instead (see mode_twin).
static double compare_tensors(const SmpModel *m, const SafeTensors *st, const char *prefix,
                              const float *buf, double tol, const char *what,
                              double key_bias_bound) {
    double worst = 0.0, worst_kb = 0.0;
    const char *worst_name = "";
    size_t C = (size_t)m->cfg.width;
    for (int i = 0; i < m->ntensors; i++) {
        const SmpTensorInfo *t = &m->info[i];
        char name[96];
        snprintf(name, sizeof name, "%s%s", prefix, t->name);
        float *ref = load(st, name, t->numel);
        const float *got = buf + t->offset;
        double e;
        if (key_bias_bound > 0 && strstr(t->name, "attn.qkv.bias")) {
            float tmp[3 * 4096];
            STORY_CHECK(t->numel <= sizeof tmp / sizeof tmp[0], "width too large for the test");
            memcpy(tmp, got, t->numel * sizeof(float));
            for (size_t k = C; k < 2 * C; k++) {
                worst_kb = fmax(worst_kb, fabs((double)got[k] - ref[k]));
                tmp[k] = ref[k];
            }
            e = rel_max_err(tmp, ref, t->numel);
        } else {
            e = rel_max_err(got, ref, t->numel);
        }
        CHECK(e <= tol, "%s %s: max err / max |ref| = %.3e > %.0e", what, t->name, e, tol);
        if (e > worst) worst = e, worst_name = t->name;
        free(ref);
    }
    printf("  %s: %d tensors, worst max err / max |ref| %.3e (%s), tolerance %.0e\n", what,
           m->ntensors, worst, worst_name, tol);
    if (key_bias_bound > 0) {
        printf(
            "  key biases (zero gradient, Adam steps on rounding noise): max |w - w_ref| %.3e, "
            "bound %.3e\n",
            worst_kb, key_bias_bound);
        CHECK(worst_kb <= key_bias_bound, "key bias moved %.3e > %.3e", worst_kb, key_bias_bound);
    }
    return worst;
}

// The ew case: start, end and target are separate tensors, kept until backward.
static float forward_ew(SmpModel *m, const SafeTensors *st, int B, int T) {
    size_t D = (size_t)m->cfg.embed_dim;
    static float *start, *end, *target;
    free(start), free(end), free(target);
    start = load(st, "batch.start", (size_t)B * D);
    end = load(st, "batch.end", (size_t)B * D);
    target = load(st, "batch.target", (size_t)B * T * D);
    return smp_forward(m, start, end, target, B, T);
}

static void mode_twin(const char *dir, const char *cs) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s.safetensors", dir, cs);
    SafeTensors st;
    if (st_open(&st, path, g_err, sizeof g_err)) die(path);
    SmpConfig cfg;
    config_from(&st, &cfg);
    int B = (int)meta_num(&st, "batch"), T = (int)meta_num(&st, "T"),
        main_case = !strcmp(cs, "main");
    SmpModel m;
    if (smp_init(&m, &cfg, B, g_err, sizeof g_err)) die("smp_init");
    if (smp_load_weights(&m, path, g_err, sizeof g_err)) die("smp_load_weights");
    printf(
        "twin %s: layers %d width %d heads %d D %d L %d, B %d T %d, endpoint weight %g, %zu "
        "parameters\n",
        cs, cfg.layers, cfg.width, cfg.heads, cfg.embed_dim, cfg.frames, B, T, cfg.endpoint_weight,
        m.num_params);

    float *clips = main_case ? load(&st, "batch.clips", (size_t)B * T * cfg.embed_dim) : NULL;
    float *want = load(&st, "expected.loss", 1);
    float loss = main_case ? smp_forward_clips(&m, clips, B, T) : forward_ew(&m, &st, B, T);
    printf("  loss %.8f, reference %.8f, rel err %.3e (tolerance 1e-5)\n", loss, want[0],
           rel(loss, want[0]));
    CHECK(rel(loss, want[0]) <= 1e-5, "loss %.8f vs %.8f", loss, want[0]);
    smp_zero_grad(&m);
    smp_backward(&m);
    compare_tensors(&m, &st, "grad.", m.grads, 1e-4, "gradients", 0.0);

    if (main_case) {
        SmpAdamWConfig oc;
        oc.beta1 = meta_num(&st, "opt.beta1");
        oc.beta2 = meta_num(&st, "opt.beta2");
        oc.eps = meta_num(&st, "opt.eps");
        oc.weight_decay = meta_num(&st, "opt.weight_decay");
        SmpSchedule sched = {meta_num(&st, "opt.lr"), meta_num(&st, "opt.min_lr"),
                             (long)meta_num(&st, "opt.warmup"), (long)meta_num(&st, "opt.total")};
        double clip = meta_num(&st, "opt.clip");
        int steps = (int)meta_num(&st, "steps");
        float *ref_loss = load(&st, "steps.loss", (size_t)steps),
              *ref_norm = load(&st, "steps.grad_norm", 0);
        float *ref_lr = load(&st, "steps.lr", 0);
        SmpAdamW opt;
        smp_adamw_init(&opt, &oc, m.num_params);
        double wl = 0.0, wn = 0.0;
        for (int s = 0; s < steps; s++) {
            smp_zero_grad(&m);
            float l = smp_forward_clips(&m, clips, B, T);
            smp_backward(&m);
            double norm = smp_clip_grad_norm(&m, clip);
            double lr = smp_lr_at(&sched, s);
            smp_adamw_step(&opt, &m, lr);
            printf("  step %d: loss %.6f (ref %.6f) grad norm %.5f (ref %.5f) lr %.3e\n", s, l,
                   ref_loss[s], norm, ref_norm[s], lr);
            CHECK(rel(l, ref_loss[s]) <= 1e-4, "step %d loss %.7f vs %.7f", s, l, ref_loss[s]);
            CHECK(rel(norm, ref_norm[s]) <= 1e-4, "step %d grad norm %.7f vs %.7f", s, norm,
                  ref_norm[s]);
            CHECK(rel(lr, ref_lr[s]) <= 1e-6, "step %d lr %.9g vs %.9g", s, lr, ref_lr[s]);
            wl = fmax(wl, rel(l, ref_loss[s]));
            wn = fmax(wn, rel(norm, ref_norm[s]));
        }
        printf("  %d steps: worst loss rel err %.3e, grad norm %.3e (tolerance 1e-4)\n", steps, wl,
               wn);
        CHECK(ref_loss[steps - 1] < 0.7f * ref_loss[0],
              "the reference run should learn (%.4f -> %.4f)", ref_loss[0], ref_loss[steps - 1]);
        // The key part of attn.qkv.bias has a zero true gradient (softmax ignores a shift
        // that is the same for every key), so both sides' gradients there are rounding noise
        // (~1e-9) that Adam normalises into steps of up to ~lr in either direction: those
        // elements may differ by up to 2 * sum(lr) and are checked against that bound.
        double lr_sum = 0.0;
        for (int s = 0; s < steps; s++) lr_sum += ref_lr[s];
        compare_tensors(&m, &st, "final.", m.params, 1e-3, "weights after the steps", 2.0 * lr_sum);
        smp_adamw_free(&opt);
        free(ref_loss), free(ref_norm), free(ref_lr);
    }
    free(clips);
    free(want);
    smp_free(&m);
    st_close(&st);
}

// ---- resume ---------------------------------------------------------------------------------

typedef struct {
    SmpModel m;
    SmpAdamW opt;
    TorchRng rng;
    long step;
} Run;

static void tiny_config(SmpConfig *c) {
    smp_config_default(c, 12, 6);
    c->layers = 2;
    c->width = 16;
    c->heads = 2;
    c->endpoint_weight = 0.25f;
}

static const SmpSchedule k_sched = {2e-3, 1e-4, 2, 10};
#define RB 3
#define RT 6

// One training step; the batch is base clips plus noise drawn from the run's generator, so
// a resumed run matches only if the generator state came back too.
static void train_step(Run *r, const float *base) {
    size_t n = (size_t)RB * RT * r->m.cfg.embed_dim;
    float *clips = malloc(n * sizeof(float));
    rng_torch_randn(&r->rng, clips, (int64_t)n);
    for (size_t i = 0; i < n; i++) clips[i] = base[i] + 0.1f * clips[i];
    smp_zero_grad(&r->m);
    smp_forward_clips(&r->m, clips, RB, RT);
    smp_backward(&r->m);
    smp_clip_grad_norm(&r->m, 1.0);
    smp_adamw_step(&r->opt, &r->m, smp_lr_at(&k_sched, r->step));
    r->step++;
    free(clips);
}

static void run_start(Run *r) {
    SmpConfig c;
    tiny_config(&c);
    if (smp_init(&r->m, &c, RB, g_err, sizeof g_err)) die("smp_init");
    smp_init_weights(&r->m, 17);
    SmpAdamWConfig oc;
    smp_adamw_config_default(&oc);
    oc.weight_decay = 0.1;
    smp_adamw_init(&r->opt, &oc, r->m.num_params);
    rng_torch_seed(&r->rng, 5);
    r->step = 0;
}

static void run_free(Run *r) {
    smp_adamw_free(&r->opt);
    smp_free(&r->m);
}

// Files in dir whose name starts with prefix (the checkpoint and any temporary of it).
static int count_files(const char *dir, const char *prefix) {
    DIR *d = opendir(dir);
    if (!d) return -1;
    int n = 0;
    for (struct dirent *e; (e = readdir(d));) n += strncmp(e->d_name, prefix, strlen(prefix)) == 0;
    closedir(d);
    return n;
}

static void mode_resume(const char *dir) {
    char path[1024];
    snprintf(path, sizeof path, "%s/resume.safetensors", dir);
    unlink(path);
    SmpConfig c;
    tiny_config(&c);
    size_t n = (size_t)RB * RT * c.embed_dim;
    float *base = malloc(n * sizeof(float));
    TorchRng g;
    rng_torch_seed(&g, 99);
    rng_torch_randn(&g, base, (int64_t)n);

    Run a, b;
    run_start(&a);
    for (int s = 0; s < 10; s++) train_step(&a, base);

    run_start(&b);
    for (int s = 0; s < 5; s++) train_step(&b, base);
    if (smp_checkpoint_save(path, &b.m, &b.opt, &b.rng, b.step, g_err, sizeof g_err)) die("save");
    CHECK(count_files(dir, "resume.safetensors") == 1,
          "the atomic write left %d files resume.safetensors* in %s (expected only the checkpoint)",
          count_files(dir, "resume.safetensors"), dir);
    run_free(&b);

    // a fresh process would know nothing but the path: config from the file
    SmpConfig fc;
    if (smp_checkpoint_config(path, &fc, g_err, sizeof g_err)) die("smp_checkpoint_config");
    CHECK(memcmp(&fc, &c, sizeof c) == 0, "config read back differs");
    Run r;
    memset(&r, 0, sizeof r);
    if (smp_init(&r.m, &fc, RB, g_err, sizeof g_err)) die("smp_init");
    SmpAdamWConfig oc;
    smp_adamw_config_default(&oc);
    oc.weight_decay = 0.1;
    smp_adamw_init(&r.opt, &oc, r.m.num_params);
    if (smp_checkpoint_load(path, &r.m, &r.opt, &r.rng, &r.step, g_err, sizeof g_err)) die("load");
    CHECK(r.step == 5 && r.opt.step == 5, "step %ld, adamw step %ld after load (expected 5)",
          r.step, r.opt.step);
    for (int s = 0; s < 5; s++) train_step(&r, base);

    size_t P = a.m.num_params;
    size_t diff_w = 0, diff_m = 0, diff_v = 0;
    for (size_t i = 0; i < P; i++) {
        diff_w += memcmp(&a.m.params[i], &r.m.params[i], 4) != 0;
        diff_m += memcmp(&a.opt.m[i], &r.opt.m[i], 4) != 0;
        diff_v += memcmp(&a.opt.v[i], &r.opt.v[i], 4) != 0;
    }
    printf(
        "resume: 10 straight steps vs 5 + save + load + 5, bit for bit: of %zu elements, %zu "
        "weights, %zu "
        "first and %zu second moments differ\n",
        P, diff_w, diff_m, diff_v);
    CHECK(diff_w == 0 && diff_m == 0 && diff_v == 0, "resumed run is not bit-identical");
    CHECK(memcmp(a.rng.state, r.rng.state, sizeof a.rng.state) == 0 && a.rng.left == r.rng.left,
          "generator state differs");
    // and the steps did move the weights (a no-op would also be bit-identical)
    Run z;
    run_start(&z);
    double moved = rel_max_err(a.m.params, z.m.params, P);
    CHECK(moved > 1e-3, "10 steps moved the weights by only %.3e", moved);
    run_free(&z);
    run_free(&a);
    run_free(&r);
    free(base);
}

// ---- refused files ----------------------------------------------------------------------------

static void expect_refused(int rc, const char *want, const char *what) {
    int ok = rc != 0 && strstr(g_err, want) != NULL;
    CHECK(ok, "%s: rc %d, message \"%s\" should contain \"%s\"", what, rc, g_err, want);
    if (ok) printf("  refused %s: %s\n", what, g_err);
}

static void mode_badckpt(const char *data, const char *dir) {
    char path[1024], golden[1024], wpath[1024];
    snprintf(path, sizeof path, "%s/ck.safetensors", dir);
    snprintf(golden, sizeof golden, "%s/main.safetensors", data);
    snprintf(wpath, sizeof wpath, "%s/weights.safetensors", dir);
    Run a;
    run_start(&a);
    if (smp_checkpoint_save(path, &a.m, &a.opt, &a.rng, 0, g_err, sizeof g_err)) die("save");

    // another width
    SmpConfig c;
    tiny_config(&c);
    c.width = 32;
    c.frames = 8;
    SmpModel other;
    if (smp_init(&other, &c, 1, g_err, sizeof g_err)) die("smp_init");
    expect_refused(smp_checkpoint_load(path, &other, NULL, NULL, NULL, g_err, sizeof g_err),
                   "width is 16, the model has 32", "another width");
    CHECK(strstr(g_err, "frames is 6, the model has 8") != NULL, "all mismatches listed: %s",
          g_err);
    smp_free(&other);

    // not a checkpoint (the twin's weights file has no format key)
    expect_refused(smp_checkpoint_load(golden, &a.m, NULL, NULL, NULL, g_err, sizeof g_err),
                   "\"format\"", "a plain weights file as checkpoint");
    // weights with one tensor missing and one of the wrong shape
    StWriteTensor t[64];
    int n = 0;
    int64_t bad_shape[2] = {3, 3};
    for (int i = 0; i < a.m.ntensors && n < 64; i++) {
        const SmpTensorInfo *ti = &a.m.info[i];
        if (!strcmp(ti->name, "blocks.1.mlp.fc.bias")) continue;
        if (!strcmp(ti->name, "pos_emb"))
            t[n++] = (StWriteTensor){ti->name, ST_F32, 2, bad_shape, a.m.params};
        else
            t[n++] =
                (StWriteTensor){ti->name, ST_F32, ti->ndim, ti->shape, a.m.params + ti->offset};
    }
    if (st_write(wpath, t, n, NULL, 0, g_err, sizeof g_err)) die("st_write");
    expect_refused(smp_load_weights(&a.m, wpath, g_err, sizeof g_err),
                   "\"blocks.1.mlp.fc.bias\" is missing", "a missing tensor");
    CHECK(strstr(g_err, "\"pos_emb\" has shape (3, 3); expected (6, 16)") != NULL,
          "shape named: %s", g_err);
    // a checkpoint without optimizer state, loaded with an optimizer
    if (smp_checkpoint_save(path, &a.m, NULL, NULL, 3, g_err, sizeof g_err)) die("save");
    expect_refused(smp_checkpoint_load(path, &a.m, &a.opt, NULL, NULL, g_err, sizeof g_err),
                   "adamw.step", "no optimizer state");
    long step = 0;
    CHECK(smp_checkpoint_load(path, &a.m, NULL, NULL, &step, g_err, sizeof g_err) == 0 && step == 3,
          "weights-only checkpoint loads: %s", g_err);
    // a bad config is refused before anything is built
    tiny_config(&c);
    c.heads = 5;
    expect_refused(smp_init(&other, &c, 1, g_err, sizeof g_err), "not a multiple of heads",
                   "width % heads");
    tiny_config(&c);
    expect_refused(smp_frames_check(&c, 7, g_err, sizeof g_err), "expected 2..6",
                   "too many frames");
    c.endpoint_weight = 0.0f;
    expect_refused(smp_frames_check(&c, 2, g_err, sizeof g_err), "no inner frame",
                   "two frames, weight 0");
    run_free(&a);
}

// ---- schedule and the grad-ready hook --------------------------------------------------------

typedef struct {
    size_t next_end;  // ranges must arrive from the end of the buffer down, without gaps
    int ok, calls;
    const SmpModel *m;
    float *snapshot;
} HookState;

static void on_ready(void *ctx, size_t offset, size_t count) {
    HookState *h = ctx;
    h->ok &= offset + count == h->next_end;
    h->next_end = offset;
    h->calls++;
    memcpy(h->snapshot + offset, h->m->grads + offset, count * sizeof(float));
}

static void mode_misc(void) {
    SmpSchedule s = {1e-3, 1e-5, 4, 20};
    CHECK(fabs(smp_lr_at(&s, 0) - 2.5e-4) < 1e-15, "warm-up step 0");
    CHECK(fabs(smp_lr_at(&s, 3) - 1e-3) < 1e-15, "end of warm-up");
    CHECK(fabs(smp_lr_at(&s, 4) - 1e-3) < 1e-15, "cosine start");
    CHECK(fabs(smp_lr_at(&s, 19) - 1e-5) < 1e-15 && fabs(smp_lr_at(&s, 50) - 1e-5) < 1e-15,
          "cosine end");
    double mid = smp_lr_at(&s, 11);  // ratio (11 - 4) / (20 - 1 - 4)
    double want = 1e-5 + 0.5 * (1 + cos(3.14159265358979323846 * 7.0 / 15.0)) * (1e-3 - 1e-5);
    CHECK(fabs(mid - want) < 1e-15, "cosine middle %.17g vs %.17g", mid, want);

    Run r;
    run_start(&r);
    HookState h = {r.m.num_params, 1, 0, &r.m, calloc(r.m.num_params, sizeof(float))};
    smp_set_grad_ready_hook(&r.m, on_ready, &h);
    size_t n = (size_t)RB * RT * r.m.cfg.embed_dim;
    float *clips = malloc(n * sizeof(float));
    rng_torch_randn(&r.rng, clips, (int64_t)n);
    smp_zero_grad(&r.m);
    smp_forward_clips(&r.m, clips, RB, RT);
    smp_backward(&r.m);
    CHECK(h.ok && h.next_end == 0, "ranges not contiguous from the end down (reached %zu)",
          h.next_end);
    CHECK(h.calls == r.m.cfg.layers + 2, "%d hook calls, expected %d", h.calls, r.m.cfg.layers + 2);
    CHECK(memcmp(h.snapshot, r.m.grads, r.m.num_params * sizeof(float)) == 0,
          "a range reported ready changed afterwards");
    printf("misc: lr schedule checked; grad-ready hook: %d ranges, final when reported\n", h.calls);
    free(clips);
    free(h.snapshot);
    run_free(&r);
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "";
    cpu_set_threads(2);
    if (!strcmp(mode, "twin") && argc == 4) {
        mode_twin(argv[2], argv[3]);
    } else if (!strcmp(mode, "resume") && argc == 3) {
        mode_resume(argv[2]);
    } else if (!strcmp(mode, "badckpt") && argc == 4) {
        mode_badckpt(argv[2], argv[3]);
    } else if (!strcmp(mode, "misc") && argc == 2) {
        mode_misc();
    } else {
        fprintf(stderr,
                "usage: %s twin DATA_DIR main|ew | resume DIR | badckpt DATA_DIR DIR | misc\n",
                argv[0]);
        return 2;
    }
    printf("motion %s: %d checks, %d failure(s)\n", mode, checks, failures);
    return failures ? 1 : 0;
}

// bench/train/bench_train.c: training throughput of the motion predictor on the CPU, in
// frames per second, storyrun (models/motion_predictor.h) vs its PyTorch twin.
//
//   bench_train [--threads N] [--reps R] [--steps S] [--quick] [--python PATH] [--no-torch]
//
// One step is what `storyrun train` does per step on one rank (jobs/train.c): zero_grad,
// forward over B clips of L frames, backward, clipping to norm 1, AdamW; frames per step =
// B * L. The reference (bench/train/torch_ref.py, the twin of tests/motion/make_golden.py)
// runs the same step with torch (forward, loss, backward, clip_grad_norm_, AdamW) in a
// child process that exits before storyrun starts. Both: 2 warm-up steps, then R timed
// runs of S steps; the median and fastest per-step times are kept. Cases (layers, width,
// heads, D, L, B): small 2/64/4/16/8/8 (the demo config), base 4/256/8/512/16/8, paper
// 8/1024/16/1024/16/8 (the reported size; skipped with --quick). Inputs are seeded normal
// numbers on both sides; the weights differ (timing only: tests/motion checks the values).
// Rows: ms per step and frames/s for each side, and the ratio storyrun time / torch time.
//
// --cuda: the same steps on a CUDA device, storyrun's device model (models/motion_cuda.h:
// bf16 matmuls, f32 master weights) vs torch with AMP (autocast bf16, f32 parameters),
// both synchronised before each clock read. Without a device it prints "skipped: no CUDA
// device" and exits 0.
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_common.h"
#include "kernels/cuda_runtime_api.h"
#include "kernels/ops.h"
#include "models/motion_cuda.h"
#include "models/motion_predictor.h"
#include "runner/check.h"

#ifndef STORY_TORCH_REF_SCRIPT
#define STORY_TORCH_REF_SCRIPT "bench/train/torch_ref.py"
#endif

typedef struct {
    const char *name;
    int layers, width, heads, D, L, B;
} Case;

static const Case CASES[] = {
    {"small", 2, 64, 4, 16, 8, 8},
    {"base", 4, 256, 8, 512, 16, 8},
    {"paper", 8, 1024, 16, 1024, 16, 8},
};
enum { N_CASES = sizeof CASES / sizeof CASES[0] };

typedef struct {
    int ok;
    double med_ms, min_ms;
} Timing;

static void run_torch(Timing *t, int ncases, char *banner, size_t blen, const char *python,
                      const char *script, int threads, int reps, int steps, int cuda) {
    char th[16], rp[16], st[16], cases[64] = "";
    snprintf(th, sizeof th, "%d", threads);
    snprintf(rp, sizeof rp, "%d", reps);
    snprintf(st, sizeof st, "%d", steps);
    for (int i = 0; i < ncases; i++)
        snprintf(cases + strlen(cases), sizeof cases - strlen(cases), "%s%s", i ? "," : "",
                 CASES[i].name);
    char *argv[] = {(char *)python,
                    (char *)script,
                    "--threads",
                    th,
                    "--reps",
                    rp,
                    "--steps",
                    st,
                    "--cases",
                    cases,
                    cuda ? "--cuda" : NULL,
                    NULL};
    BenchChild c;
    if (bench_child_start(&c, argv, banner, blen)) return;
    char line[512];
    while (bench_child_read(&c, line, sizeof line) == 0) {
        if (!strncmp(line, "READY ", 6) || !strncmp(line, "NOTORCH ", 8)) {
            snprintf(banner, blen, "%s", line);
        } else if (!strncmp(line, "RESULT ", 7)) {
            char name[32];
            double med, mn;
            if (sscanf(line + 7, "%31s %lf %lf", name, &med, &mn) != 3) continue;
            for (int i = 0; i < ncases; i++)
                if (!strcmp(name, CASES[i].name)) t[i] = (Timing){1, med, mn};
        }
    }
    bench_child_stop(&c);
}

static Timing run_ours(const Case *k, int reps, int steps, int cuda) {
    SmpConfig cfg;
    smp_config_default(&cfg, k->D, k->L);
    cfg.layers = k->layers, cfg.width = k->width, cfg.heads = k->heads;
    SmpModel m;
    char err[512];
    if (smp_init(&m, &cfg, k->B, err, sizeof err)) STORY_FATAL("%s", err);
    smp_init_weights(&m, 0);
    SmpAdamWConfig oc;
    smp_adamw_config_default(&oc);
    SmpAdamW opt;
    smp_adamw_init(&opt, &oc, m.num_params);
    SmpCuda d;
    memset(&d, 0, sizeof d);
    if (cuda && smp_cuda_init(&d, &m, err, sizeof err)) STORY_FATAL("%s", err);
    size_t n = (size_t)k->B * k->L * k->D;
    float *clips = mallocCheck(n * sizeof(float));
    uint64_t s = 1;
    for (size_t i = 0; i < n; i++) clips[i] = bench_uniform(&s) * 1.7f;
    double *t = mallocCheck((size_t)reps * sizeof(double));
    for (int r = -1; r < reps; r++) {
        double t0 = bench_now_ms();
        for (int i = 0; i < (r < 0 ? 2 : steps) && cuda; i++) {
            smp_cuda_zero_grad(&d);
            smp_cuda_forward_clips(&d, clips, k->B, k->L);
            smp_cuda_backward(&d);
            smp_cuda_clip_grad_norm(&d, 1.0);
            smp_cuda_adamw_step(&d, &opt, 1e-4);
        }
        if (cuda) story_cuda_sync();
        for (int i = 0; i < (r < 0 ? 2 : steps) && !cuda; i++) {
            smp_zero_grad(&m);
            smp_forward_clips(&m, clips, k->B, k->L);
            smp_backward(&m);
            smp_clip_grad_norm(&m, 1.0);
            smp_adamw_step(&opt, &m, 1e-4);
        }
        if (r >= 0) t[r] = (bench_now_ms() - t0) / steps;
    }
    double mn = t[0];
    for (int r = 1; r < reps; r++) mn = t[r] < mn ? t[r] : mn;
    Timing out = {1, bench_median(t, reps), mn};
    free(t), free(clips);
    if (cuda) smp_cuda_free(&d);
    smp_adamw_free(&opt);
    smp_free(&m);
    return out;
}

int main(int argc, char **argv) {
    int threads = 2, reps = 5, steps = 5, quick = 0, torch = 1, cuda = 0;
    const char *python = bench_default_python(), *script = STORY_TORCH_REF_SCRIPT;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc)
            reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--steps") && i + 1 < argc)
            steps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--quick"))
            quick = 1;
        else if (!strcmp(argv[i], "--python") && i + 1 < argc)
            python = argv[++i];
        else if (!strcmp(argv[i], "--no-torch"))
            torch = 0;
        else if (!strcmp(argv[i], "--cuda"))
            cuda = 1;
        else {
            fprintf(stderr,
                    "usage: %s [--threads N] [--reps R] [--steps S] [--quick] [--python PATH] "
                    "[--no-torch] [--cuda]\n",
                    argv[0]);
            return 2;
        }
    }
    if (reps < 1 || steps < 1 || threads < 1) {
        fprintf(stderr, "bench_train: --reps, --steps and --threads must be >= 1\n");
        return 2;
    }
    const char *why = NULL;
    if (cuda && (story_cuda_device_count(&why) <= 0 || !cuda_available())) {
        printf("bench_train --cuda: skipped: no CUDA device (%s)\n",
               why && *why ? why : "none found");
        return 0;
    }
    int ncases = quick ? 2 : N_CASES;
    Timing ref[N_CASES] = {{0}}, ours[N_CASES] = {{0}};
    char banner[512] = "reference not run (--no-torch)";
    if (torch)
        run_torch(ref, ncases, banner, sizeof banner, python, script, threads, reps, steps, cuda);
    cpu_set_threads(threads);
    printf("bench_train: motion predictor training steps on %s, %d thread(s), %d x %d steps\n",
           cuda ? "CUDA (bf16 autocast vs torch AMP bf16)" : "the CPU", threads, reps, steps);
    printf("reference: %s\n", banner);
    for (int i = 0; i < ncases; i++) ours[i] = run_ours(&CASES[i], reps, steps, cuda);
    printf("%-7s %-26s %12s %12s %12s %12s %7s %9s\n", "case", "layers/width/heads/D/L/B",
           "storyrun ms", "torch ms", "storyrun f/s", "torch f/s", "ratio", "min ratio");
    for (int i = 0; i < ncases; i++) {
        const Case *k = &CASES[i];
        char shape[64];
        snprintf(shape, sizeof shape, "%d/%d/%d/%d/%d/%d", k->layers, k->width, k->heads, k->D,
                 k->L, k->B);
        double frames = (double)k->B * k->L;
        if (ref[i].ok)
            printf("%-7s %-26s %12.3f %12.3f %12.0f %12.0f %6.2fx %8.2fx\n", k->name, shape,
                   ours[i].med_ms, ref[i].med_ms, frames * 1e3 / ours[i].med_ms,
                   frames * 1e3 / ref[i].med_ms, ours[i].med_ms / ref[i].med_ms,
                   ours[i].min_ms / ref[i].min_ms);
        else
            printf("%-7s %-26s %12.3f %12s %12.0f %12s %7s %9s\n", k->name, shape, ours[i].med_ms,
                   "-", frames * 1e3 / ours[i].med_ms, "-", "-", "-");
    }
    printf("ratio = storyrun time / torch time per step (lower is better); frames = B x L\n");
    return 0;
}

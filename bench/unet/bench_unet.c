// bench/unet/bench_unet.c: one UNet forward of the SD1.5 architecture, storyrun vs diffusers.
//
//   bench_unet [--threads N] [--reps R] [--size S] [--batch B] [--python PATH] [--no-torch]
//
// Both sides build the standard SD1.5 UNet (runwayml/stable-diffusion-v1-5's unet/config.json:
// blocks 320/640/1280/1280, 8 heads, context 768; 859,520,964 weights) with random weights
// of the real size in memory (storyrun: seeded uniform +-1/sqrt(fan_in), torch: its default
// initialisation; no files), then time one forward pass in fp32 on a latent S x S (64: a
// 512 x 512 image) with B rows (2: the two guidance halves in one pass), timestep 999 and a
// 77-token context: one warm-up run, then R timed runs (median and fastest).
// The torch side is bench/unet/torch_ref.py in a child process that runs one forward per
// request: the runs alternate (torch, storyrun, torch, ...), so both sides are timed under
// the same machine load, and one never runs while the other does.
// Memory: "forward peak" is the process's resident-set high-water mark (VmHWM, reset via
// /proc/self/clear_refs just before the warm-up run) minus its resident set at that moment,
// so it counts what the forward passes touch (activations, workspaces, allocator slack) and
// not the weights; "weights" is the resident-set growth while the weights were made; "total"
// is the sum. storyrun's arena peak is printed too (its activations alone).
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_common.h"
#include "kernels/ops.h"
#include "models/unet.h"
#include "runner/check.h"
#include "runner/json.h"

#ifndef STORY_TORCH_REF_SCRIPT
#define STORY_TORCH_REF_SCRIPT "bench/unet/torch_ref.py"
#endif

// runwayml/stable-diffusion-v1-5 unet/config.json (the keys that differ from the defaults
// and the ones that define the architecture).
static const char *SD15_CONFIG =
    "{\"act_fn\": \"silu\", \"attention_head_dim\": 8, \"block_out_channels\": [320, 640, 1280, "
    "1280], "
    "\"center_input_sample\": false, \"cross_attention_dim\": 768, "
    "\"down_block_types\": [\"CrossAttnDownBlock2D\", \"CrossAttnDownBlock2D\", "
    "\"CrossAttnDownBlock2D\", "
    "\"DownBlock2D\"], \"downsample_padding\": 1, \"flip_sin_to_cos\": true, \"freq_shift\": 0, "
    "\"in_channels\": 4, \"layers_per_block\": 2, \"mid_block_scale_factor\": 1, \"norm_eps\": "
    "1e-05, "
    "\"norm_num_groups\": 32, \"out_channels\": 4, \"sample_size\": 64, "
    "\"up_block_types\": [\"UpBlock2D\", \"CrossAttnUpBlock2D\", \"CrossAttnUpBlock2D\", "
    "\"CrossAttnUpBlock2D\"]}";

static const int64_t bias_fan_in = 320;  // SD1.5's narrowest layer

// ---- diffusers: torch_ref.py on two pipes ------------------------------------------------------
typedef struct {
    BenchChild c;
    int up;
    long long weights, params;
    char banner[640];
} Torch;

static int torch_start(Torch *t, const char *python, const char *script, int threads, int size,
                       int batch) {
    char th[16], sz[16], bt[16], line[640];
    snprintf(th, sizeof th, "%d", threads);
    snprintf(sz, sizeof sz, "%d", size);
    snprintf(bt, sizeof bt, "%d", batch);
    char *argv[] = {(char *)python,
                    (char *)script,
                    "--config",
                    (char *)SD15_CONFIG,
                    "--batch",
                    bt,
                    "--size",
                    sz,
                    "--seq",
                    "77",
                    "--threads",
                    th,
                    NULL};
    if (bench_child_start(&t->c, argv, t->banner, sizeof t->banner)) return -1;
    while (bench_child_read(&t->c, line, sizeof line) == 0) {
        if (!strncmp(line, "READY ", 6)) {
            snprintf(t->banner, sizeof t->banner, "%s", line + 6);
        } else if (!strncmp(line, "BUILT ", 6) &&
                   sscanf(line + 6, "%lld %lld", &t->weights, &t->params) == 2) {
            t->up = 1;
            return 0;
        } else {
            snprintf(t->banner, sizeof t->banner, "%s", line);  // NOTORCH <reason> or an error
            break;
        }
    }
    bench_child_stop(&t->c);
    if (!t->banner[0]) snprintf(t->banner, sizeof t->banner, "%s %s did not start", python, script);
    return -1;
}

// One forward pass there; its time in ms (0 if the child failed).
static double torch_run(Torch *t) {
    char line[256];
    double ms = 0;
    bench_child_send(&t->c, "RUN");
    if (bench_child_read(&t->c, line, sizeof line) || sscanf(line, "TIME %lf", &ms) != 1) t->up = 0;
    return ms;
}

static long long torch_peak(Torch *t) {
    char line[256];
    long long b = 0;
    bench_child_send(&t->c, "MEM");
    if (bench_child_read(&t->c, line, sizeof line) || sscanf(line, "MEM %lld", &b) != 1) t->up = 0;
    return b;
}

// ---- storyrun -----------------------------------------------------------------------------------
typedef struct {
    Unet m;
    Arena wa, ws;
    UnetInputs in;
    Tensor x, ctx, y;
    float *t;
    long long weights, rss1;
    int64_t params;
    int runs;
} Story;

static void story_setup(Story *s, int size, int batch) {
    char err[1024];
    JsonError je;
    JsonDoc *doc = json_parse("SD1.5 unet config", SD15_CONFIG, strlen(SD15_CONFIG), NULL, &je);
    if (!doc) STORY_FATAL("%s", je.msg);
    UnetConfig cfg;
    if (unet_config_parse(&cfg, doc, err, sizeof err)) STORY_FATAL("%s", err);
    json_free(doc);
    s->params = unet_param_count(&cfg);
    const long long rss0 = bench_rss_bytes();
    if (arena_init(&s->wa, DEV_CPU, unet_weight_bytes(&cfg, DT_F32)))
        STORY_FATAL("no memory for the weights");
    if (unet_load_source(&s->m, &cfg, bench_random_source, (void *)&bias_fan_in, &s->wa, DT_F32, err, sizeof err))
        STORY_FATAL("%s", err);
    s->weights = bench_rss_bytes() - rss0;

    const int64_t B = batch, L = 77, D = cfg.cross_dim[0];
    s->x = tensor_view(mallocCheck(sizeof(float) * (size_t)(B * 4 * size * size)), DT_F32, DEV_CPU,
                       4, SHAPE(B, 4, size, size));
    s->ctx = tensor_view(mallocCheck(sizeof(float) * (size_t)(B * L * D)), DT_F32, DEV_CPU, 3,
                         SHAPE(B, L, D));
    s->y = tensor_view(mallocCheck(sizeof(float) * (size_t)(B * 4 * size * size)), DT_F32, DEV_CPU,
                       4, SHAPE(B, 4, size, size));
    s->t = mallocCheck(sizeof(float) * (size_t)B);
    uint64_t seed = 1;
    float *x = s->x.data, *c = s->ctx.data;
    for (int64_t i = 0; i < tensor_numel(&s->x); i++)
        x[i] = 1.7f * bench_uniform(&seed);  // about unit variance
    for (int64_t i = 0; i < tensor_numel(&s->ctx); i++) c[i] = 1.7f * bench_uniform(&seed);
    for (int64_t i = 0; i < B; i++) s->t[i] = 999.0f;
    s->in.sample = &s->x, s->in.timesteps = s->t, s->in.encoder_hidden_states = &s->ctx;
    if (arena_init(&s->ws, DEV_CPU, unet_scratch_bytes(&s->m, (int)B, size, size, (int)L)))
        STORY_FATAL("no memory for the activations");
}

static double story_run(Story *s) {
    char err[1024];
    if (s->runs++ == 0) {
        s->rss1 = bench_rss_bytes();
        bench_reset_hwm();
    }
    const double t0 = bench_now_ms();
    if (unet_forward(&s->m, &s->in, &s->y, &s->ws, err, sizeof err)) STORY_FATAL("%s", err);
    return bench_now_ms() - t0;
}

static void story_free(Story *s) {
    double mean = 0;
    const float *y = s->y.data;
    for (int64_t i = 0; i < tensor_numel(&s->y); i++) mean += fabs(y[i]);
    fprintf(stderr, "storyrun noise_pred mean |y| %.4f\n", mean / (double)tensor_numel(&s->y));
    free(s->x.data), free(s->ctx.data), free(s->y.data), free(s->t);
    unet_free(&s->m);
    arena_free(&s->ws);
    arena_free(&s->wa);
}

int main(int argc, char **argv) {
    int threads = 2, reps = 3, size = 64, batch = 2, use_torch = 1;
    const char *python = bench_default_python();
    const char *script = STORY_TORCH_REF_SCRIPT;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc)
            reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--size") && i + 1 < argc)
            size = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--batch") && i + 1 < argc)
            batch = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--python") && i + 1 < argc)
            python = argv[++i];
        else if (!strcmp(argv[i], "--script") && i + 1 < argc)
            script = argv[++i];
        else if (!strcmp(argv[i], "--no-torch"))
            use_torch = 0;
        else {
            fprintf(stderr,
                    "usage: %s [--threads N] [--reps R] [--size S] [--batch B] [--python PATH] "
                    "[--script torch_ref.py] [--no-torch]\n",
                    argv[0]);
            return 2;
        }
    }
    if (threads < 1 || reps < 1 || batch < 1 || size < 8 || size % 8) {
        fprintf(stderr, "bench_unet: --threads, --reps, --batch >= 1; --size a multiple of 8\n");
        return 2;
    }
    cpu_set_threads(threads);
    Torch t = {0};
    const int have = use_torch && torch_start(&t, python, script, threads, size, batch) == 0;
    Story s = {0};
    story_setup(&s, size, batch);
    // warm-up, then timed runs in pairs: torch, then storyrun, under the same load
    double *tt = mallocCheck(sizeof(double) * (size_t)reps),
           *st = mallocCheck(sizeof(double) * (size_t)reps);
    double *tt2 = mallocCheck(sizeof(double) * (size_t)reps),
           *st2 = mallocCheck(sizeof(double) * (size_t)reps);
    if (have) torch_run(&t);
    story_run(&s);
    for (int r = 0; r < reps; r++) {
        tt[r] = have ? torch_run(&t) : 0;
        st[r] = story_run(&s);
        fprintf(stderr, "run %d: storyrun %.1f ms, torch %.1f ms\n", r + 1, st[r], tt[r]);
    }
    memcpy(tt2, tt, sizeof(double) * (size_t)reps);
    memcpy(st2, st, sizeof(double) * (size_t)reps);
    const double t_med = bench_median(tt2, reps), s_med = bench_median(st2, reps);
    const double t_min = tt2[0], s_min = st2[0];
    const long long t_peak = have ? torch_peak(&t) : 0, s_peak = bench_hwm_bytes() - s.rss1;
    const int ok = have && t.up;
    if (have) bench_child_stop(&t.c);
    const size_t arena_peak = s.ws.peak;
    story_free(&s);

    const double MiB = 1048576.0;
    printf(
        "bench_unet: UNet2DConditionModel, SD1.5 architecture (%lld weights), fp32, latent %dx%d, "
        "batch %d, "
        "context 77, %d threads, %d timed runs after 1 warm-up\n",
        (long long)s.params, size, size, batch, threads, reps);
    if (ok)
        printf("torch reference: %s (%lld weights)\n", t.banner, t.params);
    else
        printf("torch reference: unavailable (%s); storyrun only\n",
               use_torch ? t.banner : "--no-torch");
    printf("\n%-34s %12s %12s %8s\n", "", "storyrun", "torch", "ratio");
    bench_ratio_row("forward, median (ms)", s_med, t_med, ok);
    bench_ratio_row("forward, fastest (ms)", s_min, t_min, ok);
    bench_ratio_row("peak memory, forward (MiB)", s_peak / MiB, t_peak / MiB, ok);
    bench_ratio_row("weights resident (MiB)", s.weights / MiB, t.weights / MiB, ok);
    bench_ratio_row("peak memory, total (MiB)", (s.weights + s_peak) / MiB, (t.weights + t_peak) / MiB, ok);
    printf("%-34s %12.1f\n", "storyrun activation arena peak (MiB)", arena_peak / MiB);
    free(tt), free(st), free(tt2), free(st2);
    return 0;
}

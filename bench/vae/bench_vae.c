// bench/vae/bench_vae.c: one AutoencoderKL decode of the SD VAE architecture, storyrun vs
// diffusers.
//
//   bench_vae [--threads N] [--reps R] [--size S] [--tiled] [--python PATH] [--no-torch]
//
// Both sides build the standard Stable Diffusion VAE decoder (the vae/config.json of
// runwayml/stable-diffusion-v1-5 and stabilityai/sd-vae-ft-mse: blocks 128/256/512/512, 2
// layers per block, 32 groups, 4 latent channels; SDXL's VAE has the same architecture)
// with random weights of the real size in memory (storyrun: seeded uniform +-1/sqrt(fan_in),
// norms 1 / 0; torch: its default initialisation; no files), then time the decode of one
// latent (1, 4, S/8, S/8) (S = 512: a 512 x 512 image) in fp32: one warm-up run, then R
// timed runs (median and fastest). --tiled: both sides decode with diffusers' tiling
// (enable_tiling(): 512-pixel tiles, 1/4 overlap), which matters for S > 512.
// The torch side runs first (bench/vae/torch_ref.py in a child process, which then exits),
// so the two never share the cores or the memory.
// Memory: "decode peak" is the process's resident-set high-water mark (VmHWM, reset via
// /proc/self/clear_refs just before the warm-up run) minus its resident set at that moment:
// what the decodes touch (activations, workspaces, allocator slack), not the weights;
// "weights" is the resident-set growth while the decoder was made; "total" is the sum.
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_common.h"
#include "kernels/ops.h"
#include "models/vae.h"
#include "runner/check.h"
#include "runner/json.h"

#ifndef STORY_TORCH_REF_SCRIPT
#define STORY_TORCH_REF_SCRIPT "bench/vae/torch_ref.py"
#endif

// runwayml/stable-diffusion-v1-5 vae/config.json.
static const char *SD_VAE_CONFIG =
    "{\"act_fn\": \"silu\", \"block_out_channels\": [128, 256, 512, 512], "
    "\"down_block_types\": [\"DownEncoderBlock2D\", \"DownEncoderBlock2D\", "
    "\"DownEncoderBlock2D\", "
    "\"DownEncoderBlock2D\"], \"in_channels\": 3, \"latent_channels\": 4, \"layers_per_block\": 2, "
    "\"norm_num_groups\": 32, \"out_channels\": 3, \"sample_size\": 512, \"scaling_factor\": "
    "0.18215, "
    "\"up_block_types\": [\"UpDecoderBlock2D\", \"UpDecoderBlock2D\", \"UpDecoderBlock2D\", "
    "\"UpDecoderBlock2D\"]}";

typedef struct {
    int ok;
    double med_ms, min_ms;
    long long weights, peak, params;
    char banner[640];
} Side;

static void run_torch(Side *t, const char *python, const char *script, int threads, int reps,
                      int size, int tiled) {
    char th[16], rp[16], sz[16];
    snprintf(th, sizeof th, "%d", threads);
    snprintf(rp, sizeof rp, "%d", reps);
    snprintf(sz, sizeof sz, "%d", size);
    char *argv[] = {(char *)python,
                    (char *)script,
                    "--config",
                    (char *)SD_VAE_CONFIG,
                    "--size",
                    sz,
                    "--threads",
                    th,
                    "--reps",
                    rp,
                    tiled ? "--tiled" : NULL,
                    NULL};
    BenchChild c;
    if (bench_child_start(&c, argv, t->banner, sizeof t->banner)) return;
    char line[512];
    while (bench_child_read(&c, line, sizeof line) == 0) {
        if (!strncmp(line, "READY ", 6)) {
            snprintf(t->banner, sizeof t->banner, "%s", line + 6);
        } else if (!strncmp(line, "RESULT ", 7)) {
            t->ok = sscanf(line + 7, "%lf %lf %lld %lld %lld", &t->med_ms, &t->min_ms, &t->weights,
                           &t->peak, &t->params) == 5;
        } else {
            snprintf(t->banner, sizeof t->banner, "%s", line);  // NOTORCH / an error
        }
    }
    if (bench_child_stop(&c) != 0 && !t->ok && !t->banner[0])
        snprintf(t->banner, sizeof t->banner, "%s failed", script);
}

// Scratch a 2048x2048 decode needs: plain, and tiled (which is the same for any size).
static size_t g_plain_2048, g_tiled_2048;

static void run_storyrun(Side *s, int reps, int size, int tiled, size_t *arena_peak) {
    char err[1024];
    JsonError je;
    JsonDoc *doc = json_parse("SD VAE config", SD_VAE_CONFIG, strlen(SD_VAE_CONFIG), NULL, &je);
    if (!doc) STORY_FATAL("%s", je.msg);
    VaeConfig cfg;
    if (vae_config_parse(&cfg, doc, err, sizeof err)) STORY_FATAL("%s", err);
    json_free(doc);
    s->params = vae_param_count(&cfg, VAE_DECODER);

    const long long rss0 = bench_rss_bytes();
    Arena wa, ws;
    Vae m;
    if (arena_init(&wa, DEV_CPU, vae_weight_bytes(&cfg, VAE_DECODER, DT_F32)))
        STORY_FATAL("no memory for the weights");
    if (vae_load_source(&m, &cfg, VAE_DECODER, bench_random_source, NULL, &wa, DT_F32, err, sizeof err))
        STORY_FATAL("%s", err);
    s->weights = bench_rss_bytes() - rss0;

    const int f = vae_scale_factor(&cfg), h = size / f;
    float *z = mallocCheck(sizeof(float) * (size_t)(4 * h * h));
    float *img = mallocCheck(sizeof(float) * (size_t)(3 * size * size));
    uint64_t seed = 1;
    for (int64_t i = 0; i < 4 * h * h; i++) z[i] = 1.7f * bench_uniform(&seed);  // unit variance
    Tensor tz = tensor_view(z, DT_F32, DEV_CPU, 4, SHAPE(1, 4, h, h));
    Tensor ti = tensor_view(img, DT_F32, DEV_CPU, 4, SHAPE(1, 3, size, size));
    VaeTiling tiling = vae_tiling_default(&cfg);
    const VaeTiling *tp = tiled ? &tiling : NULL;
    g_plain_2048 = vae_image_scratch_bytes(&m, NULL, 2048 / f, 2048 / f);
    g_tiled_2048 = vae_image_scratch_bytes(&m, &tiling, 2048 / f, 2048 / f);
    if (arena_init(&ws, DEV_CPU, vae_image_scratch_bytes(&m, tp, h, h)))
        STORY_FATAL("no memory for the activations");

    double *ts = mallocCheck(sizeof(double) * (size_t)reps);
    const long long rss1 = bench_rss_bytes();
    bench_reset_hwm();
    if (vae_decode_image(&m, &tz, &ti, tp, &ws, err, sizeof err))
        STORY_FATAL("%s", err);  // warm-up
    for (int r = 0; r < reps; r++) {
        double t0 = bench_now_ms();
        if (vae_decode_image(&m, &tz, &ti, tp, &ws, err, sizeof err)) STORY_FATAL("%s", err);
        ts[r] = bench_now_ms() - t0;
    }
    s->peak = bench_hwm_bytes() - rss1;
    double mean = 0;
    for (int64_t i = 0; i < 3 * (int64_t)size * size; i++) mean += fabs(img[i]);
    fprintf(stderr, "storyrun image mean |x| %.4f\n", mean / (3.0 * size * size));
    s->med_ms = bench_median(ts, reps);
    s->min_ms = ts[0];
    s->ok = 1;
    *arena_peak = ws.peak;
    free(ts), free(z), free(img);
    vae_free(&m);
    arena_free(&ws);
    arena_free(&wa);
}

int main(int argc, char **argv) {
    int threads = 2, reps = 3, size = 512, tiled = 0, use_torch = 1;
    const char *python = bench_default_python();
    const char *script = STORY_TORCH_REF_SCRIPT;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc)
            reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--size") && i + 1 < argc)
            size = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--tiled"))
            tiled = 1;
        else if (!strcmp(argv[i], "--python") && i + 1 < argc)
            python = argv[++i];
        else if (!strcmp(argv[i], "--script") && i + 1 < argc)
            script = argv[++i];
        else if (!strcmp(argv[i], "--no-torch"))
            use_torch = 0;
        else {
            fprintf(stderr,
                    "usage: %s [--threads N] [--reps R] [--size S] [--tiled] [--python PATH] "
                    "[--script torch_ref.py] [--no-torch]\n",
                    argv[0]);
            return 2;
        }
    }
    if (threads < 1 || reps < 1 || size < 8 || size % 8) {
        fprintf(stderr, "bench_vae: --threads, --reps >= 1; --size a multiple of 8\n");
        return 2;
    }
    cpu_set_threads(threads);
    Side t = {0}, s = {0};
    if (use_torch) run_torch(&t, python, script, threads, reps, size, tiled);
    size_t arena_peak = 0;
    run_storyrun(&s, reps, size, tiled, &arena_peak);

    const double MiB = 1048576.0;
    printf(
        "bench_vae: AutoencoderKL.decode, SD VAE architecture (decoder: %lld weights), fp32, %dx%d "
        "image%s, "
        "%d threads, %d timed runs after 1 warm-up\n",
        s.params, size, size, tiled ? " (tiled: 512-pixel tiles)" : "", threads, reps);
    if (t.ok)
        printf("torch reference: %s (%lld weights)\n", t.banner, t.params);
    else
        printf("torch reference: unavailable (%s); storyrun only\n",
               use_torch ? t.banner : "--no-torch");
    printf("\n%-34s %12s %12s %8s\n", "", "storyrun", "torch", "ratio");
    bench_ratio_row("decode, median (ms)", s.med_ms, t.med_ms, t.ok);
    bench_ratio_row("decode, fastest (ms)", s.min_ms, t.min_ms, t.ok);
    bench_ratio_row("peak memory, decode (MiB)", s.peak / MiB, t.peak / MiB, t.ok);
    bench_ratio_row("weights resident (MiB)", s.weights / MiB, t.weights / MiB, t.ok);
    bench_ratio_row("peak memory, total (MiB)", (s.weights + s.peak) / MiB, (t.weights + t.peak) / MiB, t.ok);
    printf("%-34s %12.1f\n", "storyrun activation arena peak (MiB)", arena_peak / MiB);
    printf(
        "\nstoryrun scratch arena for a 2048x2048 decode: %.0f MiB plain, %.0f MiB tiled "
        "(512-pixel "
        "tiles; the same for any size)\n",
        g_plain_2048 / MiB, g_tiled_2048 / MiB);
    return 0;
}

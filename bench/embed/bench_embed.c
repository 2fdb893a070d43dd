// bench/embed/bench_embed.c: clips per second of the CLIP image encoder on the CPU,
// storyrun (models/clip_vision.h) vs transformers' CLIPVisionModelWithProjection.
//
//   bench_embed [--threads N] [--reps R] [--frames L] [--quick] [--python PATH] [--no-torch]
//
// A clip is L frames (default 8) encoded as one batch (L, 3, S, S) -> image_embeds
// (L, projection_dim). Preprocessing is excluded on both sides: both encode the same
// pixel values (seeded normal, written by the reference). Cases:
//   tiny  tests/clip_vision/data/tiny_quick (hidden 32, 2 layers, image 32, patch 8)
//   vith  ViT-H/14 sized (hidden 1280, 32 layers, 16 heads, MLP 5120, patch 14, image 224,
//         projection 1024, gelu; 632M weights), seeded random weights that torch_ref.py
//         makes and saves as safetensors into a temporary folder both sides load.
//         Skipped with --quick.
// The torch side runs first (bench/embed/torch_ref.py in a child process, which exits
// before storyrun starts), with torch.set_num_threads(N) and torch.no_grad(). Timing: tiny
// runs 1 warm-up, then R reps of 50 clips each (ms per clip); vith runs R reps of one clip
// and no warm-up. Rows give the median (and fastest) ms per clip, clips/s, and the ratio
// storyrun time / torch time; "max |diff|" compares storyrun's image_embeds with torch's.
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench_common.h"
#include "kernels/ops.h"
#include "models/clip_vision.h"
#include "runner/check.h"

#ifndef STORY_TORCH_REF_SCRIPT
#define STORY_TORCH_REF_SCRIPT "bench/embed/torch_ref.py"
#endif
#ifndef STORY_TINY_CLIP_VISION
#define STORY_TINY_CLIP_VISION "tests/clip_vision/data/tiny_quick"
#endif

enum { N_CASES = 2, TINY_INNER = 50 };
static const char *CASE_NAMES[N_CASES] = {"tiny", "vith"};

typedef struct {
    int ok;           // torch timed it
    char path[1024];  // the model both sides load
    double med_ms, min_ms;
} RefCase;

typedef struct {
    int ok;
    double med_ms, min_ms, maxdiff;
    long long params;
} OurCase;

static int case_index(const char *name) {
    for (int i = 0; i < N_CASES; i++)
        if (!strcmp(name, CASE_NAMES[i])) return i;
    return -1;
}

static void run_torch(RefCase *rc, char *banner, size_t blen, const char *python,
                      const char *script, const char *tmp, int threads, int reps, int frames,
                      int quick) {
    char th[16], rp[16], fr[16], in[16];
    snprintf(th, sizeof th, "%d", threads);
    snprintf(rp, sizeof rp, "%d", reps);
    snprintf(fr, sizeof fr, "%d", frames);
    snprintf(in, sizeof in, "%d", TINY_INNER);
    char *argv[] = {(char *)python,
                    (char *)script,
                    "--tiny",
                    STORY_TINY_CLIP_VISION,
                    "--out",
                    (char *)tmp,
                    "--threads",
                    th,
                    "--reps",
                    rp,
                    "--frames",
                    fr,
                    "--inner",
                    in,
                    quick ? "--quick" : NULL,
                    NULL};
    BenchChild c;
    if (bench_child_start(&c, argv, banner, blen)) return;
    char line[1200], name[32];
    while (bench_child_read(&c, line, sizeof line) == 0) {
        if (!strncmp(line, "READY ", 6)) {
            snprintf(banner, blen, "%.600s", line + 6);
        } else if (!strncmp(line, "MODEL ", 6)) {
            char p[1024];
            if (sscanf(line + 6, "%31s %1023s", name, p) == 2 && case_index(name) >= 0)
                snprintf(rc[case_index(name)].path, sizeof rc->path, "%s", p);
        } else if (!strncmp(line, "RESULT ", 7)) {
            double med, mn;
            if (sscanf(line + 7, "%31s %lf %lf", name, &med, &mn) == 3 && case_index(name) >= 0) {
                RefCase *r = &rc[case_index(name)];
                r->med_ms = med, r->min_ms = mn, r->ok = 1;
            }
        } else {
            snprintf(banner, blen, "%.600s", line);  // NOTORCH / an error
        }
    }
    if (bench_child_stop(&c) != 0 && !rc[0].ok) snprintf(banner, blen, "%s failed", script);
}

// Reads n floats of a raw f32 file; 0, or -1 when it is missing or short.
static int read_f32(const char *path, float *dst, size_t n) {
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    size_t got = fread(dst, sizeof(float), n, f);
    fclose(f);
    return got == n ? 0 : -1;
}

// One case: load `path`, encode the pixel values of tmp/<name>_pixels.f32 (seeded uniform
// when the reference did not run), time reps x inner clips of `frames` frames.
static void run_storyrun(OurCase *o, const char *name, const char *path, const char *tmp,
                         int frames, int reps, int inner, int warm) {
    char err[1024], fpath[1200];
    ClipVisionConfig cfg;
    if (clip_vision_config(&cfg, path, err, sizeof err)) STORY_FATAL("%s", err);
    Arena wa, ws;
    ClipVision m;
    if (arena_init(&wa, DEV_CPU, clip_vision_weight_bytes(&cfg, DT_F32)))
        STORY_FATAL("no memory for the weights");
    if (clip_vision_load(&m, path, &wa, DT_F32, err, sizeof err)) STORY_FATAL("%s", err);
    const int64_t C = cfg.hidden_size, I = cfg.intermediate_size, p = cfg.patch_size;
    o->params = C * 3 * p * p + C + (int64_t)clip_vision_tokens(&cfg) * C + 4 * C +
                cfg.num_hidden_layers * (4 * (C * C + C) + 2 * C * I + I + C + 4 * C) +
                (int64_t)cfg.projection_dim * C;
    if (arena_init(&ws, DEV_CPU, clip_vision_scratch_bytes(&cfg, DT_F32, frames)))
        STORY_FATAL("no memory for the activations");

    const int S = cfg.image_size, P = cfg.projection_dim;
    const size_t npx = (size_t)frames * 3 * S * S, nemb = (size_t)frames * P;
    float *px = mallocCheck(sizeof(float) * npx);
    float *emb = mallocCheck(sizeof(float) * nemb);
    float *ref = mallocCheck(sizeof(float) * nemb);
    snprintf(fpath, sizeof fpath, "%s/%s_pixels.f32", tmp, name);
    if (read_f32(fpath, px, npx)) {
        uint64_t seed = 1;
        for (size_t i = 0; i < npx; i++) px[i] = 1.7f * bench_uniform(&seed);
    }
    Tensor tpx = tensor_view(px, DT_F32, DEV_CPU, 4, SHAPE(frames, 3, S, S));
    Tensor temb = tensor_view(emb, DT_F32, DEV_CPU, 2, SHAPE(frames, P));
    ClipVisionOutputs out = {.image_embeds = &temb};
    for (int w = 0; w < warm; w++)
        if (clip_vision_forward(&m, &tpx, &ws, &out, err, sizeof err)) STORY_FATAL("%s", err);
    double *ts = mallocCheck(sizeof(double) * (size_t)reps);
    o->min_ms = INFINITY;
    for (int r = 0; r < reps; r++) {
        double t0 = bench_now_ms();
        for (int k = 0; k < inner; k++)
            if (clip_vision_forward(&m, &tpx, &ws, &out, err, sizeof err)) STORY_FATAL("%s", err);
        ts[r] = (bench_now_ms() - t0) / inner;
        if (ts[r] < o->min_ms) o->min_ms = ts[r];
    }
    o->med_ms = bench_median(ts, reps);
    o->maxdiff = -1;
    snprintf(fpath, sizeof fpath, "%s/%s_embeds.f32", tmp, name);
    if (!read_f32(fpath, ref, nemb)) {
        o->maxdiff = 0;
        for (size_t i = 0; i < nemb; i++) o->maxdiff = fmax(o->maxdiff, fabs(emb[i] - ref[i]));
    }
    o->ok = 1;
    free(ts), free(px), free(emb), free(ref);
    clip_vision_free(&m);
    arena_free(&ws);
    arena_free(&wa);
}

// Removes what torch_ref.py wrote into tmp (its own files and the vith folder), then tmp.
static void remove_tmp(const char *tmp) {
    static const char *files[] = {"tiny_pixels.f32",
                                  "tiny_embeds.f32",
                                  "vith_pixels.f32",
                                  "vith_embeds.f32",
                                  "vith/config.json",
                                  "vith/model.safetensors",
                                  "vith/model.safetensors.index.json"};
    char p[1200];
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        snprintf(p, sizeof p, "%s/%s", tmp, files[i]);
        unlink(p);
    }
    for (int i = 1; i <= 9; i++) {  // shards, if save_pretrained split the file
        snprintf(p, sizeof p, "%s/vith/model-%05d-of-%05d.safetensors", tmp, 1, i);
        for (int k = 1; k <= i; k++) {
            snprintf(p, sizeof p, "%s/vith/model-%05d-of-%05d.safetensors", tmp, k, i);
            unlink(p);
        }
    }
    snprintf(p, sizeof p, "%s/vith", tmp);
    rmdir(p);
    rmdir(tmp);
}

int main(int argc, char **argv) {
    int threads = 2, reps = 3, frames = 8, quick = 0, use_torch = 1;
    const char *python = bench_default_python();
    const char *script = STORY_TORCH_REF_SCRIPT;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc)
            reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--frames") && i + 1 < argc)
            frames = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--quick"))
            quick = 1;
        else if (!strcmp(argv[i], "--python") && i + 1 < argc)
            python = argv[++i];
        else if (!strcmp(argv[i], "--script") && i + 1 < argc)
            script = argv[++i];
        else if (!strcmp(argv[i], "--no-torch"))
            use_torch = 0;
        else {
            fprintf(stderr,
                    "usage: %s [--threads N] [--reps R] [--frames L] [--quick] [--python PATH] "
                    "[--script torch_ref.py] [--no-torch]\n",
                    argv[0]);
            return 2;
        }
    }
    if (threads < 1 || reps < 1 || frames < 1) {
        fprintf(stderr, "bench_embed: --threads, --reps, --frames >= 1\n");
        return 2;
    }
    if (!use_torch && !quick) {
        fprintf(stderr,
                "bench_embed: the ViT-H case needs the reference to make its weights; "
                "--no-torch implies --quick\n");
        quick = 1;
    }
    cpu_set_threads(threads);
    const char *base = getenv("TMPDIR");
    char tmp[512];
    snprintf(tmp, sizeof tmp, "%s/bench_embed.XXXXXX", base && base[0] ? base : "/tmp");
    if (!mkdtemp(tmp)) STORY_FATAL("cannot make a temporary folder %s", tmp);

    RefCase rc[N_CASES] = {{0}};
    char banner[640] = "";
    snprintf(rc[0].path, sizeof rc[0].path, "%s", STORY_TINY_CLIP_VISION);
    if (use_torch)
        run_torch(rc, banner, sizeof banner, python, script, tmp, threads, reps, frames, quick);
    OurCase oc[N_CASES] = {{0}};
    for (int i = 0; i < N_CASES; i++) {
        if (i == 1 && (quick || !rc[1].path[0])) continue;
        run_storyrun(&oc[i], CASE_NAMES[i], rc[i].path, tmp, frames, reps, i == 0 ? TINY_INNER : 1,
                     i == 0);
    }
    remove_tmp(tmp);

    printf(
        "bench_embed: CLIP image encoder (CLIPVisionModelWithProjection), fp32 CPU, one clip = "
        "%d frames in one batch, preprocessing excluded, %d threads, %d reps\n",
        frames, threads, reps);
    if (rc[0].ok)
        printf("torch reference: %s\n", banner);
    else
        printf("torch reference: unavailable (%s); storyrun only\n",
               use_torch ? banner : "--no-torch");
    static const char *DESC[N_CASES] = {"tiny (tiny_quick, 32x2, image 32)",
                                        "ViT-H/14 (1280x32, image 224)"};
    for (int i = 0; i < N_CASES; i++) {
        if (!oc[i].ok) {
            if (i == 1) printf("\n%s: skipped%s\n", DESC[i], quick ? " (--quick)" : "");
            continue;
        }
        printf("\n%s: %lld weights\n", DESC[i], oc[i].params);
        printf("%-34s %12s %12s %8s\n", "", "storyrun", "torch", "ratio");
        bench_ratio_row("ms per clip, median", oc[i].med_ms, rc[i].med_ms, rc[i].ok);
        bench_ratio_row("ms per clip, fastest", oc[i].min_ms, rc[i].min_ms, rc[i].ok);
        printf("%-34s %12.4g %12.4g\n", "clips per second (median)", 1000.0 / oc[i].med_ms,
               rc[i].ok ? 1000.0 / rc[i].med_ms : 0.0);
        if (oc[i].maxdiff >= 0)
            printf("%-34s %12.3g\n", "image_embeds max |diff| vs torch", oc[i].maxdiff);
    }
    return 0;
}

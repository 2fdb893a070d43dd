// tests/eval_video/test_eval_video.c: `storyrun eval-video` (jobs/eval_video.c, models/lpips.c)
// run as a child process and its JSON checked against references.
//
//   test_eval_video direct STORYRUN VIDEODIR ENCODER WORK
//       CLIPSIM of 3 generated videos, a static video and a static PNG folder == the
//       definition computed here (clip_vision_forward one frame at a time, cosine in
//       double): |diff| <= 1e-6; static inputs > 0.99999; the mean row; --frames N
//   test_eval_video golden STORYRUN DATA ENCODER WORK
//       the PNG clips of DATA vs golden.json (make_golden.py): CLIPSIM vs transformers
//       |diff| <= 1e-5; LPIPS vs the lpips package (seeded weights written here as
//       make_golden.py writes them) |diff| <= 1e-7 + 1e-5 * |ref|
//   test_eval_video ranks STORYRUN MPIEXEC NPFLAG VIDEODIR ENCODER WORK
//       6 videos with CLIPSIM and LPIPS on 1, 2 and 3 ranks: byte-identical JSON
//   test_eval_video bad STORYRUN VIDEODIR ENCODER WORK
//       missing / not a video / truncated / empty folder / corrupt PNG / mixed sizes /
//       too small for LPIPS / bad weights / bad arguments: exit 2, the message, no JSON
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "models/clip_vision.h"
#include "models/safetensors.h"
#include "runner/image.h"
#include "runner/json.h"
#include "runner/video.h"
#include "runner/video_write.h"
#include "tests/common/test_check.h"
#include "tests/video/scene.h"

static char g_out[1 << 16];  // the last child's stdout + stderr

// Runs argv (NULL-terminated) with stdout and stderr captured into g_out; the exit code.
static int run(char *const *argv) {
    int fd[2];
    if (pipe(fd)) return perror("pipe"), -1;
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fd[1], 1), dup2(fd[1], 2);
        close(fd[0]), close(fd[1]);
        execv(argv[0], argv);
        perror(argv[0]);
        _exit(127);
    }
    close(fd[1]);
    size_t n = 0;
    ssize_t k;
    char sink[4096];
    while ((k = read(fd[0], n + 1 < sizeof g_out ? g_out + n : sink,
                     n + 1 < sizeof g_out ? sizeof g_out - 1 - n : sizeof sink)) > 0)
        if (n + 1 < sizeof g_out) n += (size_t)k;
    g_out[n] = 0;
    close(fd[0]);
    int st;
    waitpid(pid, &st, 0);
    fprintf(stderr, "$");
    for (int i = 0; argv[i]; i++) fprintf(stderr, " %s", argv[i]);
    fprintf(stderr, "\n%s", g_out);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static int exists(const char *p) {
    struct stat sb;
    return stat(p, &sb) == 0;
}

static JsonDoc *load_json(const char *path) {
    JsonError je;
    JsonDoc *d = json_parse_file(path, NULL, &je);
    CHECK(d != NULL, "%s", je.msg);
    return d;
}

// inputs[i].key of an eval-video JSON (NAN for null or absent).
static double input_value(const JsonDoc *d, int i, const char *key) {
    const JsonValue *v = json_get(json_at(json_get(json_root(d), "inputs"), (size_t)i), key);
    return v && v->type == JSON_NUMBER ? v->d : NAN;
}

// ---- LPIPS weights as make_golden.py seeds them ------------------------------------------------

static uint64_t splitmix64(uint64_t x) {
    uint64_t z = x + 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static void write_lpips(const char *path) {
    static const struct {
        const char *name;
        int ci, co, k;
    } convs[5] = {{"net.slice1.0", 3, 64, 11},
                  {"net.slice2.3", 64, 192, 5},
                  {"net.slice3.6", 192, 384, 3},
                  {"net.slice4.8", 384, 256, 3},
                  {"net.slice5.10", 256, 256, 3}};
    char names[15][64];
    int64_t shapes[15][4];
    int ndims[15];
    StWriteTensor t[15];
    float *data[15];
    for (int j = 0; j < 15; j++) {
        int l = j < 10 ? j / 2 : j - 10, fan = convs[l].ci * convs[l].k * convs[l].k;
        int64_t numel;
        if (j < 10 && j % 2 == 0) {
            snprintf(names[j], 64, "%s.weight", convs[l].name);
            ndims[j] = 4, numel = (int64_t)convs[l].co * fan;
            memcpy(shapes[j], (int64_t[]){convs[l].co, convs[l].ci, convs[l].k, convs[l].k}, 32);
        } else if (j < 10) {
            snprintf(names[j], 64, "%s.bias", convs[l].name);
            ndims[j] = 1, numel = convs[l].co, shapes[j][0] = convs[l].co;
        } else {
            snprintf(names[j], 64, "lin%d.model.1.weight", l);
            ndims[j] = 4, numel = convs[l].co;
            memcpy(shapes[j], (int64_t[]){1, convs[l].co, 1, 1}, 32);
            fan = 0;
        }
        data[j] = malloc((size_t)numel * sizeof(float));
        for (int64_t i = 0; i < numel; i++) {
            double u =
                (double)(splitmix64(((uint64_t)(j + 1) << 32) | (uint64_t)i) >> 11) * 0x1p-53;
            data[j][i] = fan == 0 ? (float)(u * 0.1) : (float)((2 * u - 1) * (1.0 / sqrt(fan)));
        }
        t[j] = (StWriteTensor){names[j], ST_F32, ndims[j], shapes[j], data[j]};
    }
    char err[1024];
    CHECK(st_write(path, t, 15, NULL, 0, err, sizeof err) == 0, "%s", err);
    for (int j = 0; j < 15; j++) free(data[j]);
}

// ---- direct: the definition computed here ----------------------------------------------------

typedef struct {
    ClipVision m;
    ClipImageProcessor p;
    Arena wa, ws, out;
    int D, S;
} Ref;

static void ref_load(Ref *r, const char *path) {
    char err[2048];
    ClipVisionConfig cfg;
    memset(r, 0, sizeof *r);
    CHECK(clip_vision_config(&cfg, path, err, sizeof err) == 0, "%s", err);
    r->D = cfg.projection_dim, r->S = cfg.image_size;
    clip_image_processor_default(&r->p, cfg.image_size);
    CHECK(arena_init(&r->wa, DEV_CPU, clip_vision_weight_bytes(&cfg, DT_F32)) == 0 &&
              arena_init(&r->ws, DEV_CPU, clip_vision_scratch_bytes(&cfg, DT_F32, 1)) == 0 &&
              arena_init(&r->out, DEV_CPU, 4096 + (size_t)r->D * 4) == 0,
          "arenas");
    CHECK(clip_vision_load(&r->m, path, &r->wa, DT_F32, err, sizeof err) == 0, "%s", err);
}

static void ref_free(Ref *r) {
    clip_vision_free(&r->m);
    arena_free(&r->wa), arena_free(&r->ws), arena_free(&r->out);
}

// emb (D) of one RGB frame (or one Image when img != NULL), one frame per forward.
static void ref_embed(Ref *r, const uint8_t *rgb, int w, int h, const Image *img, double *emb) {
    char err[1024];
    float *pix = calloc((size_t)3 * r->S * r->S, sizeof(float));
    Tensor t = tensor_view(pix, DT_F32, DEV_CPU, 4, SHAPE(1, 3, r->S, r->S));
    int rc = img ? clip_preprocess_image(&r->p, img, &t, 0, err, sizeof err)
                 : clip_preprocess_rgb(&r->p, rgb, w, h, (size_t)w * 3, &t, 0, err, sizeof err);
    CHECK(rc == 0, "%s", err);
    size_t mark = arena_mark(&r->out);
    Tensor e = ARENA_TENSOR(&r->out, DT_F32, 1, r->D);
    ClipVisionOutputs o = {&e, NULL, NULL, NULL, 0};
    CHECK(clip_vision_forward(&r->m, &t, &r->ws, &o, err, sizeof err) == 0, "%s", err);
    for (int i = 0; i < r->D; i++) emb[i] = ((const float *)e.data)[i];
    arena_release(&r->out, mark);
    free(pix);
}

static double cosd(const double *a, const double *b, int D) {
    double ab = 0, aa = 0, bb = 0;
    for (int i = 0; i < D; i++) ab += a[i] * b[i], aa += a[i] * a[i], bb += b[i] * b[i];
    return ab / (sqrt(aa) * sqrt(bb));
}

// The two CLIPSIM measures from n embeddings.
static void clipsim(const double *emb, int n, int D, double *first, double *frames) {
    *first = *frames = 0;
    for (int i = 1; i < n; i++) *first += cosd(emb + (size_t)i * D, emb, D);
    for (int i = 0; i + 1 < n; i++)
        *frames += cosd(emb + (size_t)i * D, emb + (size_t)(i + 1) * D, D);
    *first /= n - 1, *frames /= n - 1;
}

static void ref_video(Ref *r, const char *path, int max_frames, double *first, double *frames,
                      int *nframes) {
    char err[2048];
    VideoReader *v;
    CHECK(video_open(path, 0, &v, err, sizeof err) == 0, "%s", err);
    const VideoInfo *in = video_info(v);
    int n = (int)in->nframes, w = in->width, h = in->height;
    if (max_frames && n > max_frames) n = max_frames;
    uint8_t *rgb = malloc((size_t)w * h * 3);
    double *emb = malloc((size_t)n * r->D * sizeof(double));
    for (int i = 0; i < n; i++) {  // one frame per read: independent of the job's reading
        int64_t idx = i;
        CHECK(video_read_frames(v, &idx, 1, 0, 0, rgb, err, sizeof err) == 0, "%s", err);
        ref_embed(r, rgb, w, h, NULL, emb + (size_t)i * r->D);
    }
    clipsim(emb, n, r->D, first, frames);
    *nframes = n;
    free(rgb), free(emb);
    video_close(v);
}

static int test_direct(char *storyrun, const char *vdir, char *encoder, const char *work) {
    char cmd[8][4096], json[4096], stat_mp4[4096], stat_png[4096], err[1024];
    mkdir(work, 0777);
    // A static video (one scene frame 16 times) and a folder of 4 identical PNGs.
    int w = 64, h = 48;
    uint8_t *fr = malloc((size_t)16 * w * h * 3);
    for (int i = 0; i < 16; i++) scene_render(5, 16, w, h, fr + (size_t)i * w * h * 3);
    snprintf(stat_mp4, sizeof stat_mp4, "%s/static.mp4", work);
    CHECK(video_write(stat_mp4, fr, 16, w, h, 8.0, NULL, NULL, 0, err, sizeof err) == 0, "%s", err);
    snprintf(stat_png, sizeof stat_png, "%s/static_png", work);
    mkdir(stat_png, 0777);
    Image im = {w, h, 3, fr, 0, NULL, NULL};
    for (int i = 0; i < 4; i++) {
        char p[4200];
        snprintf(p, sizeof p, "%s/f%d.png", stat_png, i);
        CHECK(image_write_png(p, &im, NULL, 0, err, sizeof err) == 0, "%s", err);
    }
    free(fr);
    const char *vids[3] = {"a_64x48.mp4", "c_128x72.webm", "sub/f_64x48.gif"};
    for (int i = 0; i < 3; i++) snprintf(cmd[i], sizeof cmd[i], "%s/%s", vdir, vids[i]);
    snprintf(json, sizeof json, "%s/direct.json", work);
    char *argv[] = {storyrun,    "eval-video", cmd[0],    cmd[1], cmd[2],   stat_mp4, stat_png,
                    "--encoder", encoder,      "--batch", "5",    "--json", json,     NULL};
    remove(json);
    CHECK(run(argv) == 0, "exit code");
    CHECK(strstr(g_out, "LPIPS-first/LPIPS-frames not computed: LPIPS needs") != NULL,
          "no LPIPS note");
    JsonDoc *d = load_json(json);
    if (!d) return 1;
    Ref r;
    ref_load(&r, encoder);
    double sum[2] = {0, 0};
    for (int i = 0; i < 4; i++) {
        double first, frames;
        int n;
        ref_video(&r, i < 3 ? cmd[i] : stat_mp4, 0, &first, &frames, &n);
        double jf = input_value(d, i, "clipsim_first"), jr = input_value(d, i, "clipsim_frames");
        printf("%-28s frames %2d  CLIPSIM-first %.9f (job %.9f)  CLIPSIM-frames %.9f (job %.9f)\n",
               i < 3 ? vids[i] : "static.mp4", n, first, jf, frames, jr);
        CHECK(fabs(jf - first) <= 1e-6, "%s: CLIPSIM-first %.9g vs %.9g", cmd[i], jf, first);
        CHECK(fabs(jr - frames) <= 1e-6, "%s: CLIPSIM-frames %.9g vs %.9g", cmd[i], jr, frames);
        CHECK(input_value(d, i, "frames") == n, "frames");
        CHECK(isnan(input_value(d, i, "lpips_first")), "lpips_first is not null");
        sum[0] += jf, sum[1] += jr;
    }
    // The static PNG folder, through clip_preprocess_image.
    double sf = input_value(d, 4, "clipsim_first"), sr = input_value(d, 4, "clipsim_frames");
    sum[0] += sf, sum[1] += sr;
    for (int i = 3; i < 5; i++) {
        double a = input_value(d, i, "clipsim_first"), b = input_value(d, i, "clipsim_frames");
        printf("static input %d: CLIPSIM-first %.9f CLIPSIM-frames %.9f\n", i, a, b);
        CHECK(a > 0.99999 && a <= 1 + 1e-6 && b > 0.99999 && b <= 1 + 1e-6,
              "static input %d: %.9g %.9g", i, a, b);
    }
    const JsonValue *mean = json_get(json_root(d), "mean");
    const JsonValue *mf = json_get(mean, "clipsim_first"), *mr = json_get(mean, "clipsim_frames");
    CHECK(mf && mr && fabs(mf->d - sum[0] / 5) <= 1e-12 && fabs(mr->d - sum[1] / 5) <= 1e-12,
          "mean row");
    CHECK(json_get(mean, "lpips_first") && json_get(mean, "lpips_first")->type == JSON_NULL,
          "mean lpips_first is not null");
    json_free(d);

    // --frames 7: the first 7 frames only.
    char *argv2[] = {storyrun,   "eval-video", cmd[1],   "--encoder", encoder,
                     "--frames", "7",          "--json", json,        NULL};
    CHECK(run(argv2) == 0, "exit code");
    d = load_json(json);
    if (d) {
        double first, frames;
        int n;
        ref_video(&r, cmd[1], 7, &first, &frames, &n);
        CHECK(n == 7 && input_value(d, 0, "frames") == 7, "--frames 7");
        CHECK(fabs(input_value(d, 0, "clipsim_first") - first) <= 1e-6, "--frames 7: first");
        CHECK(fabs(input_value(d, 0, "clipsim_frames") - frames) <= 1e-6, "--frames 7: frames");
        json_free(d);
    }
    ref_free(&r);
    return 0;
}

// ---- golden: transformers and the lpips package ------------------------------------------------

static int test_golden(char *storyrun, const char *data, char *encoder, const char *work) {
    char a[4096], b[4096], json[4096], weights[4096], gpath[4096];
    mkdir(work, 0777);
    snprintf(a, sizeof a, "%s/clip_a", data);
    snprintf(b, sizeof b, "%s/clip_b", data);
    snprintf(json, sizeof json, "%s/golden_out.json", work);
    snprintf(weights, sizeof weights, "%s/lpips_seeded.safetensors", work);
    snprintf(gpath, sizeof gpath, "%s/golden.json", data);
    write_lpips(weights);
    char *argv[] = {storyrun,  "eval-video", a,        b,    "--encoder", encoder,
                    "--lpips", weights,      "--json", json, NULL};
    remove(json);
    CHECK(run(argv) == 0, "exit code");
    JsonDoc *d = load_json(json), *g = load_json(gpath);
    if (!d || !g) return 1;
    const char *clips[2] = {"clip_a", "clip_b"};
    const char *keys[4] = {"clipsim_first", "clipsim_frames", "lpips_first", "lpips_frames"};
    for (int i = 0; i < 2; i++)
        for (int k = 0; k < 4; k++) {
            const JsonValue *ref = json_get(json_get(json_root(g), clips[i]), keys[k]);
            double got = input_value(d, i, keys[k]);
            CHECK(ref && ref->type == JSON_NUMBER, "golden %s.%s", clips[i], keys[k]);
            if (!ref) continue;
            double tol = k < 2 ? 1e-5 : 1e-7 + 1e-5 * fabs(ref->d);
            printf("%s %-15s job %.9f  reference %.9f  |diff| %.2e (tolerance %.1e)\n", clips[i],
                   keys[k], got, ref->d, fabs(got - ref->d), tol);
            CHECK(fabs(got - ref->d) <= tol, "%s %s: %.9g vs %.9g", clips[i], keys[k], got, ref->d);
        }
    json_free(d), json_free(g);
    return 0;
}

// ---- ranks: the same JSON on 1, 2 and 3 ranks
// ----------------------------------------------------

static char *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *buf = malloc(1 << 20);
    *n = fread(buf, 1, 1 << 20, f);
    fclose(f);
    return buf;
}

static int test_ranks(char *storyrun, char *mpiexec, char *npflag, const char *vdir, char *encoder,
                      const char *work) {
    char in[SCENE_NVIDEOS][4096], json[3][4096], weights[4096], np[3][4];
    mkdir(work, 0777);
    snprintf(weights, sizeof weights, "%s/lpips_seeded.safetensors", work);
    write_lpips(weights);
    for (int i = 0; i < SCENE_NVIDEOS; i++)
        snprintf(in[i], sizeof in[i], "%s/%s", vdir, scene_videos[i].name);
    char *base = NULL;
    size_t nbase = 0;
    for (int r = 0; r < 3; r++) {
        snprintf(np[r], sizeof np[r], "%d", r + 1);
        snprintf(json[r], sizeof json[r], "%s/np%d.json", work, r + 1);
        remove(json[r]);
        char *argv[32] = {mpiexec,     npflag,   np[r],     storyrun, "eval-video",
                          "--encoder", encoder,  "--lpips", weights,  "--batch",
                          "3",         "--json", json[r]};
        int k = 13;
        for (int i = 0; i < SCENE_NVIDEOS; i++) argv[k++] = in[i];
        argv[k] = NULL;
        CHECK(run(argv) == 0, "exit code on %d rank(s)", r + 1);
        size_t n = 0;
        char *got = slurp(json[r], &n);
        CHECK(got && n > 0, "%s not written", json[r]);
        if (!got) continue;
        if (r == 0) {
            base = got, nbase = n;
            JsonDoc *d = load_json(json[r]);
            for (int i = 0; d && i < SCENE_NVIDEOS; i++)
                CHECK(isfinite(input_value(d, i, "lpips_frames")) &&
                          isfinite(input_value(d, i, "clipsim_frames")),
                      "input %d: values missing", i);
            json_free(d);
        } else {
            CHECK(n == nbase && memcmp(got, base, n) == 0, "%s differs from %s", json[r], json[0]);
            free(got);
        }
    }
    free(base);
    return 0;
}

// ---- bad inputs
// ----------------------------------------------------------------------------------

static void expect_bad(char *const *argv, const char *json, const char *what) {
    remove(json);
    int rc = run(argv);
    CHECK(rc == 2, "exit %d, expected 2", rc);
    CHECK(strstr(g_out, what) != NULL, "message without '%s'", what);
    CHECK(!exists(json), "%s written after an error", json);
}

static int test_bad(char *storyrun, const char *vdir, char *encoder, const char *work) {
    char good[4096], missing[4096], notv[4096], trunc[4096], empty[4096], corrupt[4096],
        sizes[4096], small[4096], json[4096], weights[4096], p[4200], err[1024];
    mkdir(work, 0777);
    snprintf(good, sizeof good, "%s/a_64x48.mp4", vdir);
    snprintf(missing, sizeof missing, "%s/missing.mp4", vdir);
    snprintf(notv, sizeof notv, "%s/%s", vdir, SCENE_NOT_VIDEO);
    snprintf(trunc, sizeof trunc, "%s/%s", vdir, SCENE_TRUNCATED);
    snprintf(json, sizeof json, "%s/bad.json", work);
    snprintf(weights, sizeof weights, "%s/lpips_seeded.safetensors", work);
    write_lpips(weights);
    // folders: empty; a text file named .png; frames of two sizes; frames too small for LPIPS
    snprintf(empty, sizeof empty, "%s/empty", work);
    snprintf(corrupt, sizeof corrupt, "%s/corrupt", work);
    snprintf(sizes, sizeof sizes, "%s/sizes", work);
    snprintf(small, sizeof small, "%s/small", work);
    mkdir(empty, 0777), mkdir(corrupt, 0777), mkdir(sizes, 0777), mkdir(small, 0777);
    snprintf(p, sizeof p, "%s/000.png", corrupt);
    FILE *f = fopen(p, "w");
    if (f) fputs("not a png\n", f), fclose(f);
    Image im;
    for (int i = 0; i < 2; i++) {
        CHECK(image_alloc(&im, 40 + 8 * i, 40, 3, err, sizeof err) == 0, "%s", err);
        snprintf(p, sizeof p, "%s/%03d.png", sizes, i);
        CHECK(image_write_png(p, &im, NULL, 0, err, sizeof err) == 0, "%s", err);
        image_free(&im);
        CHECK(image_alloc(&im, 24, 24, 3, err, sizeof err) == 0, "%s", err);
        im.pixels[i] = 200;
        snprintf(p, sizeof p, "%s/%03d.png", small, i);
        CHECK(image_write_png(p, &im, NULL, 0, err, sizeof err) == 0, "%s", err);
        image_free(&im);
    }
    char *E = "--encoder", *J = "--json";
    expect_bad((char *[]){storyrun, "eval-video", missing, E, encoder, J, json, NULL}, json,
               "missing.mp4: no such file or folder");
    expect_bad((char *[]){storyrun, "eval-video", notv, E, encoder, J, json, NULL}, json,
               "not_a_video.mp4: not a video");
    expect_bad((char *[]){storyrun, "eval-video", trunc, E, encoder, J, json, NULL}, json,
               "truncated");
    expect_bad((char *[]){storyrun, "eval-video", good, missing, E, encoder, J, json, NULL}, json,
               "1 of 2 input(s) could not be evaluated; no JSON written");
    expect_bad((char *[]){storyrun, "eval-video", empty, E, encoder, J, json, NULL}, json,
               "empty: a folder without .png frames");
    expect_bad((char *[]){storyrun, "eval-video", corrupt, E, encoder, J, json, NULL}, json,
               "corrupt/000.png");
    expect_bad((char *[]){storyrun, "eval-video", sizes, E, encoder, J, json, NULL}, json,
               "all frames must have one size");
    expect_bad((char *[]){storyrun, "eval-video", small, "--lpips", weights, J, json, NULL}, json,
               "too small for LPIPS alex (at least 31x31");
    char st_file[4200];  // a safetensors file that is not LPIPS
    snprintf(st_file, sizeof st_file, "%s.safetensors", encoder);
    expect_bad((char *[]){storyrun, "eval-video", good, "--lpips", st_file, J, json, NULL}, json,
               "tiny_quick.safetensors: tensor 'net.slice1.0.weight' is missing");
    expect_bad((char *[]){storyrun, "eval-video", good, "--lpips", encoder, J, json, NULL}, json,
               "tiny_quick: not a regular file");
    expect_bad((char *[]){storyrun, "eval-video", good, E, missing, J, json, NULL}, json,
               "missing.mp4");
    expect_bad((char *[]){storyrun, "eval-video", good, J, json, NULL}, json,
               "nothing to compute: give --encoder PATH");
    expect_bad((char *[]){storyrun, "eval-video", E, encoder, NULL}, json, "no input");
    expect_bad((char *[]){storyrun, "eval-video", good, E, encoder, "--frames", "1", NULL}, json,
               "--frames '1': expected an integer >= 2");
    return 0;
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "";
    int rc = 1;
    if (!strcmp(mode, "direct") && argc == 6)
        rc = test_direct(argv[2], argv[3], argv[4], argv[5]);
    else if (!strcmp(mode, "golden") && argc == 6)
        rc = test_golden(argv[2], argv[3], argv[4], argv[5]);
    else if (!strcmp(mode, "ranks") && argc == 8)
        rc = test_ranks(argv[2], argv[3], argv[4], argv[5], argv[6], argv[7]);
    else if (!strcmp(mode, "bad") && argc == 6)
        rc = test_bad(argv[2], argv[3], argv[4], argv[5]);
    else {
        fprintf(stderr,
                "usage: test_eval_video direct|golden|ranks|bad ... (see the top of the file)\n");
        return 2;
    }
    printf("eval_video %s: %d checks, %d failure(s)\n", mode, checks, failures);
    return rc || failures ? 1 : 0;
}

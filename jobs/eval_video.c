// jobs/eval_video.c: `storyrun eval-video INPUT... [options]`: the paper's video measures
// (DESIGN.md 2.3; docs/eval.md) of videos or folders of PNG frames.
//
// For one input with frames f_0 .. f_{n-1} (n >= 2; every frame, or the first --frames N):
//   CLIPSIM-first  = 1/(n-1) * sum_{i=1..n-1} cos(E(f_i), E(f_0))
//   CLIPSIM-frames = 1/(n-1) * sum_{i=0..n-2} cos(E(f_i), E(f_{i+1}))
//   LPIPS-first    = 1/(n-1) * sum_{i=1..n-1} LPIPS(f_i, f_0)
//   LPIPS-frames   = 1/(n-1) * sum_{i=0..n-2} LPIPS(f_i, f_{i+1})
// E(f) is the CLIP image embedding (models/clip_vision.h: image_embeds, i.e. the visual
// projection of the pooled class token; the pooled token itself for a model without a
// projection) of CLIPImageProcessor's pixel values of f, f32; cosines and means are taken in
// double. LPIPS is the lpips package's LPIPS(net='alex') distance (models/lpips.h) of the
// two frames at their own size, pixels mapped to [-1, 1]; it needs the network's weights
// (--lpips), without them only the CLIP measures are computed. The "mean" row is the
// unweighted mean over the inputs of each input's value.
//
// Ranks: input i is evaluated by rank i % size, alone and in encoder batches of --batch
// frames taken in order from frame 0, so every value is the same for any rank count; the
// per-input results are gathered to every rank and rank 0 prints the table and writes the
// JSON file (atomically). An input that cannot be read (missing, not a video, truncated,
// a folder without PNGs, frames of different sizes, fewer than 2 frames) fails the job with
// exit 2 after every input has been tried, listing each bad one; no JSON is written then.
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "jobs/jobs.h"
#include "kernels/cuda_runtime_api.h"
#include "kernels/ops.h"
#include "models/clip_vision.h"
#include "models/lpips.h"
#include "runner/check.h"
#include "runner/comm.h"
#include "runner/image.h"
#include "runner/manifest.h"  // file_write_atomic
#include "runner/video.h"

enum { M_CLIP_FIRST, M_CLIP_FRAMES, M_LPIPS_FIRST, M_LPIPS_FRAMES, M_COUNT };
static const char *const k_keys[M_COUNT] = {"clipsim_first", "clipsim_frames", "lpips_first",
                                            "lpips_frames"};
static const char *const k_heads[M_COUNT] = {"CLIPSIM-first", "CLIPSIM-frames", "LPIPS-first",
                                             "LPIPS-frames"};

typedef struct {
    const char **inputs;
    int n_inputs;
    const char *encoder, *lpips, *json;
    int batch, max_frames, threads;
    Device dev;
} EvalOptions;

// One input's outcome; fixed size so that ranks can gather them as bytes.
typedef struct {
    int32_t index, ok, nframes, width, height, pad;
    double v[M_COUNT];  // NAN: not computed
    char msg[2048];     // why not ok
} EvalResult;

static void usage(FILE *f) {
    fprintf(f,
            "usage: storyrun eval-video INPUT... [--encoder PATH] [--lpips PATH] [--json PATH]\n"
            "                           [--frames N] [--batch N] [--device cpu|cuda] "
            "[--threads N]\n"
            "  The paper's video measures of each INPUT (a video FFmpeg reads, or a folder of\n"
            "  PNG frames taken in name order), and their mean over the inputs (docs/eval.md):\n"
            "    CLIPSIM-first   mean over frames i >= 1 of cos(CLIP(frame i), CLIP(frame 0))\n"
            "    CLIPSIM-frames  mean over i of cos(CLIP(frame i), CLIP(frame i+1))\n"
            "    LPIPS-first     mean over frames i >= 1 of LPIPS(frame i, frame 0)\n"
            "    LPIPS-frames    mean over i of LPIPS(frame i, frame i+1)\n"
            "  --encoder PATH  CLIP vision model (transformers folder or .safetensors, e.g.\n"
            "                  IP-Adapter's image_encoder/): the CLIPSIM measures\n"
            "  --lpips PATH    LPIPS alex weights (.safetensors in the lpips package's layout):\n"
            "                  the LPIPS measures; without it they are not computed\n"
            "  --json PATH     also write per-input values and the means as JSON\n"
            "  --frames N      use the first N frames of each input (default: all)\n"
            "  --batch N       frames per encoder call (default 8)\n"
            "  Inputs are spread over MPI ranks (mpirun -np N); the values do not depend on N.\n"
            "  Exit: 0 done, 1 the output could not be written, 2 bad arguments or input.\n");
}

// snprintf for messages that may be cut to fit (paths can be long).
#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
static void
msgf(char *dst, size_t n, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(dst, n, fmt, ap);
    va_end(ap);
}

static int parse_int(const char *s, int lo, int hi, int *out) {
    char *end;
    long v = strtol(s, &end, 10);
    if (end == s || *end || v < lo || v > hi) return -1;
    *out = (int)v;
    return 0;
}

// Returns 0, 1 for --help, or -1 with a message.
static int parse_args(int argc, char **argv, EvalOptions *o, char *err, size_t n) {
    memset(o, 0, sizeof *o);
    o->batch = 8, o->dev = DEV_CPU;
    o->inputs = mallocCheck((size_t)(argc > 0 ? argc : 1) * sizeof *o->inputs);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) return 1;
        if (a[0] != '-' || a[1] == 0) {
            o->inputs[o->n_inputs++] = a;
            continue;
        }
        if (i + 1 >= argc) return snprintf(err, n, "%s: expected a value after it", a), -1;
        const char *v = argv[++i];
        if (!strcmp(a, "--encoder")) {
            o->encoder = v;
        } else if (!strcmp(a, "--lpips")) {
            o->lpips = v;
        } else if (!strcmp(a, "--json")) {
            o->json = v;
        } else if (!strcmp(a, "--frames")) {
            if (parse_int(v, 2, 1 << 30, &o->max_frames))
                return snprintf(err, n, "--frames '%s': expected an integer >= 2", v), -1;
        } else if (!strcmp(a, "--batch")) {
            if (parse_int(v, 1, 4096, &o->batch))
                return snprintf(err, n, "--batch '%s': expected an integer in 1..4096", v), -1;
        } else if (!strcmp(a, "--threads")) {
            if (parse_int(v, 1, 4096, &o->threads))
                return snprintf(err, n, "--threads '%s': expected an integer in 1..4096", v), -1;
        } else if (!strcmp(a, "--device")) {
            if (strcmp(v, "cpu") && strcmp(v, "cuda"))
                return snprintf(err, n, "--device '%s': expected cpu or cuda", v), -1;
            o->dev = strcmp(v, "cpu") ? DEV_CUDA : DEV_CPU;
        } else {
            return snprintf(err, n, "unknown option '%s' (--help lists them)", a), -1;
        }
    }
    if (o->n_inputs == 0)
        return snprintf(err, n, "no input: expected one or more videos or folders of PNG frames"),
               -1;
    if (!o->encoder && !o->lpips)
        return snprintf(err, n,
                        "nothing to compute: give --encoder PATH (CLIPSIM) and/or --lpips PATH "
                        "(LPIPS)"),
               -1;
    return 0;
}

// ---- frames ---------------------------------------------------------------------------------

typedef struct {
    int n, w, h;
    uint8_t *rgb;  // a video: (n, h, w, 3)
    Image *imgs;   // a folder: n PNGs of one size, any channel count
} Frames;

static void frames_free(Frames *f) {
    if (f->imgs)
        for (int i = 0; i < f->n; i++) image_free(&f->imgs[i]);
    free(f->imgs);
    free(f->rgb);
    memset(f, 0, sizeof *f);
}

static int has_png_ext(const char *name) {
    size_t l = strlen(name);
    return name[0] != '.' && l > 4 && !strcasecmp(name + l - 4, ".png");
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

// Frame files of a folder: the *.png names (not hidden), sorted bytewise.
static int folder_frames(const char *dir, Frames *f, int max_frames, char *err, size_t n) {
    DIR *d = opendir(dir);
    if (!d) return snprintf(err, n, "%s: cannot read the folder", dir), -1;
    char **names = NULL;
    int count = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!has_png_ext(e->d_name)) continue;
        if (count == cap) {
            cap = cap ? 2 * cap : 64;
            names = realloc(names, (size_t)cap * sizeof *names);
            if (!names) STORY_FATAL("out of memory listing %s", dir);
        }
        names[count] = strdup(e->d_name);
        if (!names[count++]) STORY_FATAL("out of memory listing %s", dir);
    }
    closedir(d);
    int rc = 0;
    if (count == 0) {
        snprintf(err, n,
                 "%s: a folder without .png frames; expected frame images (any names, "
                 "taken in name order)",
                 dir);
        rc = -1;
    } else {
        qsort(names, (size_t)count, sizeof *names, cmp_str);
        f->n = max_frames > 0 && count > max_frames ? max_frames : count;
        f->imgs = calloc((size_t)f->n, sizeof *f->imgs);
        if (!f->imgs) STORY_FATAL("out of memory for %d frames", f->n);
        for (int i = 0; i < f->n && !rc; i++) {
            char path[8192];
            snprintf(path, sizeof path, "%s/%s", dir, names[i]);
            rc = image_read_png(path, &f->imgs[i], err, n);
            if (rc) break;
            if (i == 0) {
                f->w = f->imgs[0].width, f->h = f->imgs[0].height;
            } else if (f->imgs[i].width != f->w || f->imgs[i].height != f->h) {
                msgf(err, n, "%s: %dx%d, but %s is %dx%d; all frames must have one size", path,
                     f->imgs[i].width, f->imgs[i].height, names[0], f->w, f->h);
                rc = -1;
            }
        }
    }
    for (int i = 0; i < count; i++) free(names[i]);
    free(names);
    return rc;
}

static int video_frames(const char *path, Frames *f, int max_frames, char *err, size_t n) {
    VideoReader *v;
    if (video_open(path, 0, &v, err, n)) return -1;
    const VideoInfo *in = video_info(v);
    int64_t count = in->nframes;
    if (max_frames > 0 && count > max_frames) count = max_frames;
    if (count < 2) {
        video_close(v);
        return snprintf(err, n, "%s: %lld frame(s); the measures need at least 2", path,
                        (long long)count),
               -1;
    }
    f->n = (int)(count > (1 << 30) ? 1 << 30 : count), f->w = in->width, f->h = in->height;
    size_t bytes = (size_t)f->n * f->w * f->h * 3;
    int64_t *idx = malloc((size_t)f->n * sizeof *idx);
    f->rgb = malloc(bytes);
    int rc = 0;
    if (!idx || !f->rgb) {
        snprintf(err, n, "%s: not enough memory for %d frames of %dx%d (--frames N uses fewer)",
                 path, f->n, f->w, f->h);
        rc = -1;
    } else {
        for (int i = 0; i < f->n; i++) idx[i] = i;
        rc = video_read_frames(v, idx, f->n, 0, 0, f->rgb, err, n);
    }
    free(idx);
    video_close(v);
    return rc;
}

static int frames_load(const char *path, int max_frames, Frames *f, char *err, size_t n) {
    memset(f, 0, sizeof *f);
    struct stat sb;
    if (stat(path, &sb) != 0)
        return snprintf(err, n,
                        "%s: no such file or folder; expected a video or a folder of "
                        "PNG frames",
                        path),
               -1;
    int rc = S_ISDIR(sb.st_mode) ? folder_frames(path, f, max_frames, err, n)
                                 : video_frames(path, f, max_frames, err, n);
    if (!rc && f->n < 2) {
        snprintf(err, n, "%s: %d frame; the measures need at least 2", path, f->n);
        rc = -1;
    }
    if (rc) frames_free(f);
    return rc;
}

// Frame i as RGB bytes (h, w, 3): a video's frame in place, a PNG converted into tmp
// (gray replicated; alpha over white, rounded; LPIPS only: CLIP reads the Image itself).
static const uint8_t *frame_rgb(const Frames *f, int i, uint8_t *tmp) {
    if (f->rgb) return f->rgb + (size_t)i * f->w * f->h * 3;
    const Image *im = &f->imgs[i];
    if (im->channels == 3) return im->pixels;
    size_t np = (size_t)f->w * f->h;
    for (size_t p = 0; p < np; p++) {
        const uint8_t *s = im->pixels + p * im->channels;
        int a = im->channels == 2 || im->channels == 4 ? s[im->channels - 1] : 255;
        for (int c = 0; c < 3; c++) {
            int v = im->channels <= 2 ? s[0] : s[c];
            tmp[p * 3 + c] = (uint8_t)((v * a + 255 * (255 - a) + 127) / 255);
        }
    }
    return tmp;
}

// ---- the CLIP encoder ------------------------------------------------------------------------

typedef struct {
    ClipVision m;
    ClipImageProcessor proc;
    Arena weights, scratch, outs;
    DType dt;
    int S, D, cap;
    float *pix;  // (cap, 3, S, S) host
    void *host;  // device outputs copied back
} Encoder;

static int encoder_load(Encoder *e, const EvalOptions *o, char *err, size_t n) {
    memset(e, 0, sizeof *e);
    ClipVisionConfig cfg;
    if (clip_vision_config(&cfg, o->encoder, err, n)) return -1;
    e->dt = o->dev == DEV_CUDA ? DT_F16 : DT_F32;
    e->S = cfg.image_size, e->cap = o->batch;
    e->D = cfg.projection_dim > 0 ? cfg.projection_dim : cfg.hidden_size;
    clip_image_processor_default(&e->proc, cfg.image_size);
    size_t es = dtype_size(e->dt);
    if (arena_init(&e->weights, o->dev, clip_vision_weight_bytes(&cfg, e->dt)) ||
        arena_init(&e->scratch, o->dev, clip_vision_scratch_bytes(&cfg, e->dt, e->cap)) ||
        arena_init(&e->outs, o->dev, 4096 + es * e->D * (size_t)e->cap))
        return snprintf(err, n, "%s: not enough memory for the encoder at --batch %d", o->encoder,
                        o->batch),
               -1;
    if (clip_vision_load(&e->m, o->encoder, &e->weights, e->dt, err, n)) return -1;
    e->pix = mallocCheck((size_t)e->cap * 3 * e->S * e->S * sizeof(float));
    e->host = mallocCheck(es * e->D * (size_t)e->cap);
    return 0;
}

static void encoder_free(Encoder *e) {
    clip_vision_free(&e->m);
    arena_free(&e->weights);
    arena_free(&e->scratch);
    arena_free(&e->outs);
    free(e->pix);
    free(e->host);
    memset(e, 0, sizeof *e);
}

// Embeddings of all frames: emb (f->n, D) f32, in batches of cap frames from frame 0.
static int encoder_frames(Encoder *e, const Frames *f, const char *path, float *emb, char *err,
                          size_t n) {
    for (int b0 = 0; b0 < f->n; b0 += e->cap) {
        int imgs = f->n - b0 < e->cap ? f->n - b0 : e->cap;
        Tensor pix = tensor_view(e->pix, DT_F32, DEV_CPU, 4, SHAPE(imgs, 3, e->S, e->S));
        for (int k = 0; k < imgs; k++) {
            int rc =
                f->rgb ? clip_preprocess_rgb(&e->proc, f->rgb + (size_t)(b0 + k) * f->w * f->h * 3,
                                             f->w, f->h, (size_t)f->w * 3, &pix, k, err, n)
                       : clip_preprocess_image(&e->proc, &f->imgs[b0 + k], &pix, k, err, n);
            if (rc) return -1;
        }
        size_t mark = arena_mark(&e->outs);
        Tensor te = ARENA_TENSOR(&e->outs, e->dt, imgs, e->D);
        ClipVisionOutputs o = {NULL, NULL, NULL, NULL, 0};
        if (e->m.cfg.projection_dim > 0)
            o.image_embeds = &te;
        else
            o.pooled = &te;
        char why[1024];
        int rc = clip_vision_forward(&e->m, &pix, &e->scratch, &o, why, sizeof why);
        if (rc == 0) {
            size_t cnt = (size_t)imgs * e->D, bytes = cnt * dtype_size(te.dtype);
            const void *src = te.data;
            if (te.dev == DEV_CUDA) {
                story_cuda_memcpy(e->host, te.data, bytes, 1);  // device -> host
                src = e->host;
            }
            float *dst = emb + (size_t)b0 * e->D;
            if (te.dtype == DT_F32)
                memcpy(dst, src, bytes);
            else
                for (size_t i = 0; i < cnt; i++)
                    dst[i] = te.dtype == DT_F16 ? f16_to_f32(((const uint16_t *)src)[i])
                                                : bf16_to_f32(((const uint16_t *)src)[i]);
        } else {
            snprintf(err, n, "%s: frames %d..%d: %s", path, b0, b0 + imgs - 1, why);
        }
        arena_release(&e->outs, mark);
        if (rc) return -1;
    }
    return 0;
}

// cos(a, b) of two D-vectors, in double.
static double cosine(const float *a, const float *b, int D) {
    double ab = 0, aa = 0, bb = 0;
    for (int i = 0; i < D; i++) {
        ab += (double)a[i] * b[i];
        aa += (double)a[i] * a[i];
        bb += (double)b[i] * b[i];
    }
    return ab / (sqrt(aa) * sqrt(bb));
}

// ---- one input ---------------------------------------------------------------------------------

typedef struct {
    EvalOptions opt;
    Comm *comm;
    Encoder enc;
    int has_enc;
    Lpips *lp;
} Eval;

static void eval_one(Eval *ev, int index, EvalResult *r) {
    const char *path = ev->opt.inputs[index];
    memset(r, 0, sizeof *r);
    r->index = index;
    for (int m = 0; m < M_COUNT; m++) r->v[m] = NAN;
    Frames f;
    if (frames_load(path, ev->opt.max_frames, &f, r->msg, sizeof r->msg)) return;
    r->nframes = f.n, r->width = f.w, r->height = f.h;
    int n = f.n, ok = 1;
    if (ev->has_enc) {
        int D = ev->enc.D;
        float *emb = mallocCheck((size_t)n * D * sizeof(float));
        if (encoder_frames(&ev->enc, &f, path, emb, r->msg, sizeof r->msg) == 0) {
            double first = 0, frames = 0;
            for (int i = 1; i < n; i++) first += cosine(emb + (size_t)i * D, emb, D);
            for (int i = 0; i + 1 < n; i++)
                frames += cosine(emb + (size_t)i * D, emb + (size_t)(i + 1) * D, D);
            r->v[M_CLIP_FIRST] = first / (n - 1);
            r->v[M_CLIP_FRAMES] = frames / (n - 1);
        } else {
            ok = 0;
        }
        free(emb);
    }
    if (ok && ev->lp) {
        // Features of frame 0, the previous and the current frame: each frame's network pass
        // is done once.
        uint8_t *tmp = mallocCheck((size_t)f.w * f.h * 3);
        LpipsFeatures *f0 = NULL, *prev = NULL, *cur = NULL;
        char why[sizeof r->msg];
        double first = 0, frames = 0;
        ok = lpips_features(ev->lp, frame_rgb(&f, 0, tmp), f.w, f.h, &f0, why, sizeof why) == 0;
        prev = f0;
        for (int i = 1; i < n && ok; i++) {
            ok =
                lpips_features(ev->lp, frame_rgb(&f, i, tmp), f.w, f.h, &cur, why, sizeof why) == 0;
            if (!ok) break;
            first += lpips_compare(ev->lp, cur, f0);
            frames += lpips_compare(ev->lp, prev, cur);
            if (prev != f0) lpips_features_free(prev);
            prev = cur;
        }
        if (prev != f0) lpips_features_free(prev);
        lpips_features_free(f0);
        free(tmp);
        if (ok) {
            r->v[M_LPIPS_FIRST] = first / (n - 1);
            r->v[M_LPIPS_FRAMES] = frames / (n - 1);
        } else {
            msgf(r->msg, sizeof r->msg, "%s: LPIPS: %s", path, why);
        }
    }
    r->ok = ok;
    frames_free(&f);
}

// ---- output ------------------------------------------------------------------------------------

static void json_string(FILE *f, const char *s) {
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(f, "\\%c", *p);
        else if (*p < 0x20)
            fprintf(f, "\\u%04x", *p);
        else
            fputc(*p, f);
    }
    fputc('"', f);
}

static void json_number(FILE *f, double v) {
    if (isfinite(v))
        fprintf(f, "%.17g", v);
    else
        fputs("null", f);
}

// The mean over inputs of each measure (NAN where it was not computed).
static void means(const EvalResult *r, int n, double out[M_COUNT]) {
    for (int m = 0; m < M_COUNT; m++) {
        double s = 0;
        for (int i = 0; i < n; i++) s += r[i].v[m];
        out[m] = s / n;
    }
}

static int write_json(const EvalOptions *o, const EvalResult *r, int n, char *err, size_t errlen) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) STORY_FATAL("out of memory");
    fputs("{\n  \"encoder\": ", f);
    if (o->encoder)
        json_string(f, o->encoder);
    else
        fputs("null", f);
    fputs(",\n  \"lpips\": ", f);
    if (o->lpips)
        json_string(f, o->lpips);
    else
        fputs("null", f);
    fputs(",\n  \"inputs\": [", f);
    for (int i = 0; i < n; i++) {
        fprintf(f, "%s\n    {\"path\": ", i ? "," : "");
        json_string(f, o->inputs[i]);
        fprintf(f, ", \"frames\": %d, \"width\": %d, \"height\": %d", r[i].nframes, r[i].width,
                r[i].height);
        for (int m = 0; m < M_COUNT; m++) {
            fprintf(f, ", \"%s\": ", k_keys[m]);
            json_number(f, r[i].v[m]);
        }
        fputc('}', f);
    }
    double mv[M_COUNT];
    means(r, n, mv);
    fprintf(f, "\n  ],\n  \"mean\": {\"count\": %d", n);
    for (int m = 0; m < M_COUNT; m++) {
        fprintf(f, ", \"%s\": ", k_keys[m]);
        json_number(f, mv[m]);
    }
    fputs("}\n}\n", f);
    fclose(f);
    int rc = file_write_atomic(o->json, buf, len, err, errlen);
    free(buf);
    return rc;
}

static void print_cell(double v) {
    if (isfinite(v))
        printf("  %14.6f", v);
    else
        printf("  %14s", "-");
}

static void print_table(const EvalOptions *o, const EvalResult *r, int n) {
    int wp = 5;
    for (int i = 0; i < n; i++) {
        int l = (int)strlen(o->inputs[i]);
        if (l > wp) wp = l;
    }
    printf("%-*s  %6s", wp, "input", "frames");
    for (int m = 0; m < M_COUNT; m++) printf("  %14s", k_heads[m]);
    printf("\n");
    for (int i = 0; i < n; i++) {
        printf("%-*s  %6d", wp, o->inputs[i], r[i].nframes);
        for (int m = 0; m < M_COUNT; m++) print_cell(r[i].v[m]);
        printf("\n");
    }
    double mv[M_COUNT];
    means(r, n, mv);
    char label[64];
    snprintf(label, sizeof label, "mean of %d", n);
    printf("%-*s  %6s", wp, label, "");
    for (int m = 0; m < M_COUNT; m++) print_cell(mv[m]);
    printf("\n");
    fflush(stdout);
}

// ---- the job ------------------------------------------------------------------------------------

static int run(Eval *ev) {
    Comm *comm = ev->comm;
    EvalOptions *o = &ev->opt;
    char err[4096] = "";
    int rc = 0;
    if (o->dev == DEV_CUDA && comm->device < 0) {
        snprintf(err, sizeof err,
                 "--device cuda: this rank sees no CUDA device (see `storyrun devices`)");
        rc = -1;
    }
    if (!rc && o->encoder) {
        rc = encoder_load(&ev->enc, o, err, sizeof err);
        ev->has_enc = rc == 0;
    }
    if (!rc && o->lpips) rc = lpips_load(&ev->lp, o->lpips, err, sizeof err);
    if (comm_any(comm, rc)) {
        if (rc && (comm->rank == 0 || strncmp(err, "--device", 8)))
            fprintf(stderr, "storyrun eval-video: %s\n", err);
        return 2;
    }
    if (comm->rank == 0 && !o->lpips)
        fprintf(stderr,
                "storyrun eval-video: LPIPS-first/LPIPS-frames not computed: LPIPS needs its "
                "network's weights (--lpips PATH, docs/eval.md)\n");
    int mine = 0;
    for (int i = comm->rank; i < o->n_inputs; i += comm->size) mine++;
    EvalResult *rs = calloc((size_t)(mine ? mine : 1), sizeof *rs);
    EvalResult *all = calloc((size_t)o->n_inputs, sizeof *all);
    if (!rs || !all) STORY_FATAL("out of memory for %d results", o->n_inputs);
    for (int i = comm->rank, k = 0; i < o->n_inputs; i += comm->size, k++) eval_one(ev, i, &rs[k]);
    // Gathered in rank order; put back in input order.
    EvalResult *got = calloc((size_t)o->n_inputs, sizeof *got);
    if (!got) STORY_FATAL("out of memory for %d results", o->n_inputs);
    comm_all_gather_v(comm, rs, (size_t)mine * sizeof *rs, got, (size_t)o->n_inputs * sizeof *got,
                      NULL, NULL);
    for (int i = 0; i < o->n_inputs; i++) {
        STORY_CHECK(got[i].index >= 0 && got[i].index < o->n_inputs, "result %d: index %d", i,
                    got[i].index);
        all[got[i].index] = got[i];
    }
    free(got);
    free(rs);
    int bad = 0;
    for (int i = 0; i < o->n_inputs; i++) bad += !all[i].ok;
    rc = 0;
    if (comm->rank == 0) {
        if (bad) {
            for (int i = 0; i < o->n_inputs; i++)
                if (!all[i].ok) fprintf(stderr, "storyrun eval-video: %s\n", all[i].msg);
            fprintf(stderr, "storyrun eval-video: %d of %d input(s) could not be evaluated%s\n",
                    bad, o->n_inputs, o->json ? "; no JSON written" : "");
            rc = 2;
        } else {
            print_table(o, all, o->n_inputs);
            if (o->json && write_json(o, all, o->n_inputs, err, sizeof err)) {
                fprintf(stderr, "storyrun eval-video: %s\n", err);
                rc = 1;
            }
        }
    }
    free(all);
    comm_broadcast(comm, &rc, sizeof rc, 0);
    return rc;
}

int job_eval_video(int argc, char **argv) {
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        }
    Comm *comm = comm_init(&argc, &argv);
    Eval ev;
    memset(&ev, 0, sizeof ev);
    ev.comm = comm;
    char err[1024];
    int rc = parse_args(argc, argv, &ev.opt, err, sizeof err);
    if (rc) {
        if (comm->rank == 0) {
            fprintf(stderr, "storyrun eval-video: %s\n\n", err);
            usage(stderr);
        }
        rc = 2;
    } else {
        if (ev.opt.threads) cpu_set_threads(ev.opt.threads);
        rc = run(&ev);
    }
    if (ev.opt.encoder) encoder_free(&ev.enc);  // also after a failed load
    lpips_free(ev.lp);
    free(ev.opt.inputs);
    comm_finalize(comm);
    return rc;
}

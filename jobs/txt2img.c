// jobs/txt2img.c: `storyrun txt2img`: one prompt -> one PNG, the same image diffusers'
// StableDiffusionPipeline / StableDiffusionXLPipeline makes for the same model, seed,
// sampler and settings (models/pipeline.h). The PNG's text chunks say how it was made.
//
// Every option is checked before any weights are read, with a message that says what is
// wrong and what would be right; a model-dependent check (the size alignment the UNet
// needs) follows as soon as the model's configs are known.
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "jobs/jobs.h"
#include "kernels/ops.h"
#include "models/pipeline.h"
#include "models/tokenizer.h"
#include "models/weights.h"
#include "runner/image.h"
#include "runner/version.h"

// The largest side accepted: activations grow with the pixel count (at 4096 x 4096 an
// SD1.5 UNet pass holds ~10 GB of f32 activations, SDXL more), and the models were
// trained at 512 (SD1.x), 768 (SD2.x) and 1024 (SDXL) pixels: far larger images repeat
// their subject rather than add detail.
#define TXT2IMG_MAX_SIDE 4096

static void usage(FILE *f) {
    fprintf(f,
            "usage: storyrun txt2img --model PATH --prompt TEXT [options]\n"
            "  --model PATH          a diffusers folder, a .safetensors checkpoint, or a built-in\n"
            "                        model: builtin:tiny-sd15, builtin:tiny-sdxl (seeded random\n"
            "                        weights, no download: for demos and tests)\n"
            "  --prompt TEXT         what to draw (CLIP reads 75 tokens; longer prompts are cut)\n"
            "  --negative TEXT       what to avoid (default: none; SDXL then uses zeros)\n"
            "  --seed N              0 .. 2^64-1 (default 0); same seed, same image as diffusers\n"
            "                        with torch.Generator(\"cpu\").manual_seed(N)\n"
            "  --steps N             denoising steps, 1 .. 1000 (default 30)\n"
            "  --size WxH            image size in pixels, multiples of 8 up to %d\n"
            "                        (default: the model's native size)\n"
            "  --guidance G          classifier-free guidance scale (default 7.5; <= 1: off)\n"
            "  --guidance-rescale R  0 .. 1 (default 0), diffusers' guidance_rescale\n"
            "  --sampler NAME        %s (default euler_a)\n"
            "  --freeu b1,b2,s1,s2   FreeU factors (e.g. 1.1,1.2,0.6,0.4 for SDXL); default off\n"
            "  --output PATH         the PNG to write (default txt2img.png)\n"
            "  --device cpu|cuda     where to run (default cpu)\n"
            "  --threads N           CPU threads (default: OpenMP's)\n",
            TXT2IMG_MAX_SIDE, pipeline_sampler_list());
}

typedef struct {
    const char *model, *prompt, *negative, *output, *sampler_name;
    uint64_t seed;
    int steps, width, height, threads;
    float guidance, guidance_rescale;
    bool has_freeu;
    float freeu[4];  // b1, b2, s1, s2
    Device dev;
} Txt2ImgArgs;

#define FAIL(...)                                          \
    do {                                                   \
        fprintf(stderr, "storyrun txt2img: " __VA_ARGS__); \
        fprintf(stderr, "\n");                             \
        return -1;                                         \
    } while (0)

static int parse_u64(const char *opt, const char *s, uint64_t *out) {
    char *end;
    errno = 0;
    if (!*s || *s == '-' || !isdigit((unsigned char)*s))
        FAIL("%s '%s': expected a whole number >= 0", opt, s);
    unsigned long long v = strtoull(s, &end, 10);
    if (*end || errno == ERANGE)
        FAIL("%s '%s': expected a whole number from 0 to 18446744073709551615", opt, s);
    *out = v;
    return 0;
}

static int parse_int(const char *opt, const char *s, long lo, long hi, int *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (!*s || *end || errno == ERANGE || v < lo || v > hi)
        FAIL("%s '%s': expected a whole number from %ld to %ld", opt, s, lo, hi);
    *out = (int)v;
    return 0;
}

static int parse_float(const char *opt, const char *s, double lo, double hi, float *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (!*s || *end || errno == ERANGE || !isfinite(v) || v < lo || v > hi)
        FAIL("%s '%s': expected a number from %g to %g", opt, s, lo, hi);
    *out = (float)v;
    return 0;
}

// "WxH": both multiples of 8, 8 .. TXT2IMG_MAX_SIDE.
static int parse_size(const char *s, int *w, int *h) {
    char *end;
    errno = 0;
    long W = strtol(s, &end, 10);
    if (end == s || (*end != 'x' && *end != 'X'))
        FAIL("--size '%s': expected WIDTHxHEIGHT in pixels, e.g. 512x512 or 1024x768", s);
    const char *hs = end + 1;
    long H = strtol(hs, &end, 10);
    if (end == hs || *end || errno == ERANGE)
        FAIL("--size '%s': expected WIDTHxHEIGHT in pixels, e.g. 512x512 or 1024x768", s);
    if (W <= 0 || H <= 0)
        FAIL("--size %s: width and height must be positive (a zero-sized image has no pixels)", s);
    if (W > TXT2IMG_MAX_SIDE || H > TXT2IMG_MAX_SIDE)
        FAIL(
            "--size %s: at most %d pixels a side: the UNet's activations grow with the pixel "
            "count (at %dx%d an SD1.5 pass holds ~10 GB in f32), and SD models trained at "
            "512-1024 px repeat their subject at far larger sizes",
            s, TXT2IMG_MAX_SIDE, TXT2IMG_MAX_SIDE, TXT2IMG_MAX_SIDE);
    if (W % 8 || H % 8) {
        long w8 = (W + 4) / 8 * 8, h8 = (H + 4) / 8 * 8;
        FAIL(
            "--size %s: width and height must be multiples of 8 (the VAE makes one latent "
            "pixel per 8x8 block); the nearest is %ldx%ld",
            s, w8 ? w8 : 8, h8 ? h8 : 8);
    }
    *w = (int)W;
    *h = (int)H;
    return 0;
}

static int parse_freeu(const char *s, float v[4]) {
    const char *p = s;
    for (int i = 0; i < 4; i++) {
        char *end;
        errno = 0;
        double x = strtod(p, &end);
        if (end == p || errno == ERANGE || !isfinite(x) || (i < 3 ? *end != ',' : *end != '\0'))
            FAIL("--freeu '%s': expected four numbers b1,b2,s1,s2 (e.g. 1.1,1.2,0.6,0.4)", s);
        v[i] = (float)x;
        p = end + 1;
    }
    return 0;
}

static int parse_args(int argc, char **argv, Txt2ImgArgs *a) {
    memset(a, 0, sizeof *a);
    a->steps = 30;
    a->guidance = 7.5f;
    a->output = "txt2img.png";
    a->sampler_name = "euler_a";
    a->dev = DEV_CPU;
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i];
        if (!strcmp(o, "--help") || !strcmp(o, "-h")) {
            usage(stdout);
            exit(0);
        }
        if (strncmp(o, "--", 2))
            FAIL("unexpected argument '%s' (options start with --; quote the prompt)", o);
        if (i + 1 >= argc) FAIL("%s needs a value", o);
        const char *v = argv[++i];
        if (!strcmp(o, "--model"))
            a->model = v;
        else if (!strcmp(o, "--prompt"))
            a->prompt = v;
        else if (!strcmp(o, "--negative"))
            a->negative = v;
        else if (!strcmp(o, "--output"))
            a->output = v;
        else if (!strcmp(o, "--sampler"))
            a->sampler_name = v;
        else if (!strcmp(o, "--seed")) {
            if (parse_u64(o, v, &a->seed)) return -1;
        } else if (!strcmp(o, "--steps")) {
            if (parse_int(o, v, 1, 1000, &a->steps)) return -1;
        } else if (!strcmp(o, "--threads")) {
            if (parse_int(o, v, 1, 4096, &a->threads)) return -1;
        } else if (!strcmp(o, "--size")) {
            if (parse_size(v, &a->width, &a->height)) return -1;
        } else if (!strcmp(o, "--guidance")) {
            if (parse_float(o, v, 0, 1000, &a->guidance)) return -1;
        } else if (!strcmp(o, "--guidance-rescale")) {
            if (parse_float(o, v, 0, 1, &a->guidance_rescale)) return -1;
        } else if (!strcmp(o, "--freeu")) {
            if (parse_freeu(v, a->freeu)) return -1;
            a->has_freeu = true;
        } else if (!strcmp(o, "--device")) {
            if (!strcmp(v, "cpu"))
                a->dev = DEV_CPU;
            else if (!strcmp(v, "cuda"))
                a->dev = DEV_CUDA;
            else
                FAIL("--device '%s': expected cpu or cuda", v);
        } else {
            FAIL("unknown option '%s' (see storyrun txt2img --help)", o);
        }
    }
    if (!a->model)
        FAIL("--model is required: a diffusers folder, a .safetensors file, or builtin:tiny-sd15");
    if (!a->prompt) FAIL("--prompt is required");
    char err[512];
    if (pipeline_sampler_parse(a->sampler_name, NULL, err, sizeof err)) FAIL("%s", err);
    // the output folder, now rather than after the work
    char dir[4096];
    const char *slash = strrchr(a->output, '/');
    snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash == a->output ? 1 : slash - a->output) : 1,
             slash ? a->output : ".");
    struct stat st;
    if (stat(dir, &st) || !S_ISDIR(st.st_mode))
        FAIL("--output %s: the folder %s does not exist", a->output, dir);
    if (access(dir, W_OK))
        FAIL("--output %s: cannot write into %s: %s", a->output, dir, strerror(errno));
    if (a->dev == DEV_CUDA && !cuda_available())
        FAIL("--device cuda: no usable CUDA device (see storyrun devices); use --device cpu");
    return 0;
}

// FNV-1a 64 of every setting that changes the image: the PNG's "config hash".
static uint64_t settings_hash(const Txt2ImgArgs *a) {
    char buf[8192];
    snprintf(buf, sizeof buf,
             "model=%s\nprompt=%s\nnegative=%s%s\nseed=%" PRIu64
             "\nsteps=%d\nsize=%dx%d\nguidance=%.9g\nrescale=%.9g\nsampler=%s\nfreeu=%d:%.9g,%.9g,%"
             ".9g,%.9g\n",
             a->model, a->prompt, a->negative ? "1:" : "0:", a->negative ? a->negative : "",
             a->seed, a->steps, a->width, a->height, a->guidance, a->guidance_rescale,
             a->sampler_name, a->has_freeu, a->freeu[0], a->freeu[1], a->freeu[2], a->freeu[3]);
    uint64_t h = 0xcbf29ce484222325ull;
    for (const char *s = buf; *s; s++) h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
    return h;
}

// Diffusers cuts prompts at the tokenizer's 77 ids (BOS + 75 tokens + EOS); say so, and
// where, before the work starts. Both SDXL tokenizers split text the same way.
static void warn_long_prompt(Pipeline *p, const char *text, const char *what) {
    Tokenizer *tok = &p->cond.tok[0];
    int max = tok->model_max_length > 2 ? tok->model_max_length : 77;
    int *ids = malloc((size_t)max * sizeof *ids), n = 0;
    if (!ids) return;
    tok_encode(tok, text, ids, max, &n);
    if (n > max) {
        int all = n + 8;
        int *full = malloc((size_t)all * sizeof *full);
        char cut[160] = "";
        if (full) {  // the first dropped words, as the tokenizer spells them
            int got = tok_tokenize(tok, text, full, all);
            size_t o = 0;
            for (int i = max - 2; i < got && i < max + 8 && o + 1 < sizeof cut; i++) {
                char piece[64];
                if (tok_piece_text(tok, full[i], piece, sizeof piece) < 0) continue;
                o += (size_t)snprintf(cut + o, sizeof cut - o, "%s", piece);
            }
            free(full);
        }
        fprintf(
            stderr,
            "storyrun txt2img: warning: the %s has %d tokens; the text encoder reads %d (%d with "
            "BOS and EOS), the rest is ignored, from \"%s...\"\n",
            what, n - 2, max - 2, max, cut);
    }
    free(ids);
}

static void on_step(void *ctx, int step, int steps, double seconds) {
    (void)ctx;
    fprintf(stderr, "step %d/%d  %.2f s/step\n", step, steps, seconds);
}

int job_txt2img(int argc, char **argv) {
    Txt2ImgArgs a;
    if (parse_args(argc, argv, &a)) return 2;
    if (a.threads) cpu_set_threads(a.threads);
    char err[2048];
    Weights *w;
    if (weights_open(&w, a.model, err, sizeof err)) {
        fprintf(stderr, "storyrun txt2img: %s\n", err);
        return 1;
    }
    Pipeline p;
    if (pipeline_load(&p, w, a.dev, err, sizeof err)) {
        fprintf(stderr, "storyrun txt2img: %s\n", err);
        weights_close(w);
        return 1;
    }
    if (!a.width) pipeline_default_size(&p, &a.width, &a.height);
    int rc = 1;
    PipelineRequest req = {
        .prompt = a.prompt,
        .negative = a.negative,
        .seed = a.seed,
        .steps = a.steps,
        .width = a.width,
        .height = a.height,
        .guidance = a.guidance,
        .guidance_rescale = a.guidance_rescale,
        .on_step = on_step,
    };
    pipeline_sampler_parse(a.sampler_name, &req.sampler, err, sizeof err);
    UnetFreeU freeu = {a.freeu[0], a.freeu[1], a.freeu[2], a.freeu[3]};
    if (a.has_freeu) req.freeu = &freeu;
    PipelineOutput out = {0};
    Image img = {0};
    if (pipeline_check(&p, &req, err, sizeof err)) {
        fprintf(stderr, "storyrun txt2img: %s\n", err);
        goto done;
    }
    fprintf(stderr,
            "storyrun txt2img: %s (%s), %dx%d, %d step%s of %s, guidance %g, seed %" PRIu64 "\n",
            weights_path(w), family_name(weights_family(w)), a.width, a.height, a.steps,
            a.steps == 1 ? "" : "s", a.sampler_name, a.guidance, a.seed);
    warn_long_prompt(&p, a.prompt, "prompt");
    if (a.negative) warn_long_prompt(&p, a.negative, "negative prompt");
    if (pipeline_txt2img(&p, &req, &out, err, sizeof err)) {
        fprintf(stderr, "storyrun txt2img: %s\n", err);
        goto done;
    }
    if (image_from_tensor(&out.image, 0, &img, err, sizeof err)) {
        fprintf(stderr, "storyrun txt2img: %s\n", err);
        goto done;
    }
    char seed[32], steps[16], guidance[64], size[32], version[96], hash[32], rescale[32];
    snprintf(seed, sizeof seed, "%" PRIu64, a.seed);
    snprintf(steps, sizeof steps, "%d", a.steps);
    snprintf(guidance, sizeof guidance, "%g", a.guidance);
    snprintf(rescale, sizeof rescale, "%g", a.guidance_rescale);
    snprintf(size, sizeof size, "%dx%d", a.width, a.height);
    snprintf(version, sizeof version, "storyrun %s (commit %s)", story_version(),
             story_git_commit());
    snprintf(hash, sizeof hash, "%016" PRIx64, settings_hash(&a));
    char freeu_text[128] = "off";
    if (a.has_freeu)
        snprintf(freeu_text, sizeof freeu_text, "b1 %g, b2 %g, s1 %g, s2 %g", a.freeu[0],
                 a.freeu[1], a.freeu[2], a.freeu[3]);
    ImageText text[] = {
        {"prompt", a.prompt},
        {"negative prompt", a.negative ? a.negative : ""},
        {"seed", seed},
        {"model", a.model},
        {"sampler", a.sampler_name},
        {"steps", steps},
        {"guidance", guidance},
        {"guidance rescale", rescale},
        {"freeu", freeu_text},
        {"size", size},
        {"storyrun version", version},
        {"config hash", hash},
    };
    if (image_write_png(a.output, &img, text, (int)(sizeof text / sizeof *text), err, sizeof err)) {
        fprintf(stderr, "storyrun txt2img: %s\n", err);
        goto done;
    }
    fprintf(stderr, "storyrun txt2img: wrote %s (%dx%d) in %.1f s\n", a.output, a.width, a.height,
            out.seconds);
    rc = 0;
done:
    image_free(&img);
    pipeline_output_free(&out);
    pipeline_free(&p);
    weights_close(w);
    return rc;
}

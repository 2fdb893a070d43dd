// tests/clip_vision/test_clip_vision.c: the CLIP image encoder and its preprocessing
// (models/clip_vision.h) against transformers' CLIPVisionModelWithProjection and
// CLIPImageProcessor (tests/clip_vision/make_golden.py wrote DATA).
//
//   test_clip_vision DATA          CPU f32: encoder goldens (folder, sharded folder, single
//                                  file), config errors, preprocessing of the test images,
//                                  processor + encoder end to end
//   test_clip_vision --cuda DATA   CUDA f16 and bf16 against the same goldens (exit 77
//                                  without a device)
//
// Tolerance, CPU f32: max |got - want| <= 1e-4 * max(1, max |want|) per tensor. Both sides
// compute in f32 with the same formulas; they differ in summation order and exp/erf
// approximations (~1e-6 here); a wrong norm, token or activation moves values by 1e-2 and
// more. The folder and the single file hold the same f32 tensors: bit-identical outputs.
// Tolerance, CUDA: the same measure with 2e-2 for f16 and 1e-1 for bf16.
// Preprocessing: exact. The 8-bit crop must equal the processor's in every byte and the f32
// pixel values must equal its pixel_values bit for bit (both counted and printed).
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/test_check.h"
#include "kernels/cuda_runtime_api.h"
#include "kernels/ops.h"
#include "models/clip_vision.h"
#include "models/safetensors.h"
#include "runner/image.h"

static SafeTensors g_st;
static char g_err[2048];
static const char *g_data;

static void die(const char *what, const char *msg) {
    fprintf(stderr, "test_clip_vision: %s: %s\n", what, msg);
    exit(1);
}

static float *golden(const char *name, int64_t *n) {
    const SafeTensorsEntry *e = st_find(&g_st, name);
    if (!e) die(name, "not in golden.safetensors (rerun tests/clip_vision/make_golden.py)");
    float *v = malloc((size_t)e->numel * sizeof *v);
    if (!v || st_load_f32(e, v)) die(name, "cannot read");
    if (n) *n = e->numel;
    return v;
}

static const char *data_path(const char *name) {
    static char buf[4][1024];
    static int i;
    i = (i + 1) % 4;
    snprintf(buf[i], sizeof buf[i], "%s/%s", g_data, name);
    return buf[i];
}

// t (any dtype, any device) as host f32, malloc'd.
static float *to_host(const Tensor *t) {
    int64_t n = tensor_numel(t);
    size_t nb = tensor_nbytes(t);
    char *raw = malloc(nb);
    float *f = malloc((size_t)n * sizeof *f);
    if (t->dev == DEV_CPU)
        memcpy(raw, t->data, nb);
    else
        story_cuda_memcpy(raw, t->data, nb, 1);
    for (int64_t i = 0; i < n; i++)
        f[i] = t->dtype == DT_F32   ? ((float *)raw)[i]
               : t->dtype == DT_F16 ? f16_to_f32(((uint16_t *)raw)[i])
                                    : bf16_to_f32(((uint16_t *)raw)[i]);
    free(raw);
    return f;
}

// max |got - want| <= tol * max(1, max |want|); prints the achieved relative error.
static void compare(const char *what, const Tensor *t, const char *gname, double tol) {
    int64_t n;
    float *want = golden(gname, &n), *got = to_host(t);
    CHECK(n == tensor_numel(t), "%s: %lld values, golden %s has %lld", what,
          (long long)tensor_numel(t), gname, (long long)n);
    double err = 0, mx = 0;
    for (int64_t i = 0; i < n && n == tensor_numel(t); i++) {
        double d = fabs((double)got[i] - want[i]);
        if (!(d <= err)) err = d;  // NaN propagates
        if (fabs(want[i]) > mx) mx = fabs(want[i]);
    }
    double rel = err / (mx > 1 ? mx : 1);
    printf("  %-4s %-44s max err %.3g (%.3g of max %.3g, tol %.0e)\n", rel <= tol ? "ok" : "FAIL",
           what, err, rel, mx, tol);
    CHECK(rel <= tol, "%s: relative error %g > %g", what, rel, tol);
    free(want);
    free(got);
}

// Runs model m on golden <name>.pixel_values with every output and compares them.
static void run_model(const ClipVision *m, Arena *ws, const char *name, double tol) {
    const ClipVisionConfig *c = &m->cfg;
    char g[128], what[160];
    snprintf(g, sizeof g, "%s.pixel_values", name);
    int64_t n;
    float *px = golden(g, &n);
    const int B = 2, S = c->image_size, T = clip_vision_tokens(c), C = c->hidden_size;
    CHECK(n == (int64_t)B * 3 * S * S, "%s: %lld pixel values", name, (long long)n);
    Tensor pix = tensor_view(px, DT_F32, DEV_CPU, 4, SHAPE(B, 3, S, S));
    Arena out;
    size_t es = dtype_size(m->dtype);
    if (arena_init(&out, m->dev,
                   8 * 256 + es * (size_t)B * (c->projection_dim + C + 3 * (size_t)T * C)))
        die(name, "arena");
    Tensor emb = ARENA_TENSOR(&out, m->dtype, B, c->projection_dim),
           pooled = ARENA_TENSOR(&out, m->dtype, B, C);
    Tensor last = ARENA_TENSOR(&out, m->dtype, B, T, C), h1 = ARENA_TENSOR(&out, m->dtype, B, T, C);
    Tensor h0 = ARENA_TENSOR(&out, m->dtype, B, T, C);
    ClipVisionOutputs o = {&emb, &pooled, &last, &h1, 1};
    int rc = clip_vision_forward(m, &pix, ws, &o, g_err, sizeof g_err);
    CHECK(rc == 0, "%s: forward: %s", name, g_err);
    CHECK(ws->used == 0, "%s: scratch not released (%zu bytes)", name, ws->used);
    static const char *outs[][2] = {{"image_embeds", "image_embeds"},
                                    {"pooled", "pooled"},
                                    {"last_hidden_state", "last_hidden_state"},
                                    {"hidden_states[1]", "hidden_states_1"}};
    const Tensor *ts[] = {&emb, &pooled, &last, &h1};
    for (int i = 0; i < 4; i++) {
        snprintf(what, sizeof what, "%s %s", name, outs[i][0]);
        snprintf(g, sizeof g, "%s.%s", name, outs[i][1]);
        compare(what, ts[i], g, tol);
    }
    // hidden_states[0] alone (no layer runs) and hidden_states[1] as index -(layers): the
    // same values as in the full run
    ClipVisionOutputs o0 = {NULL, NULL, NULL, &h0, 0};
    CHECK(clip_vision_forward(m, &pix, ws, &o0, g_err, sizeof g_err) == 0, "%s: %s", name, g_err);
    snprintf(what, sizeof what, "%s hidden_states[0] (pre_layrnorm)", name);
    snprintf(g, sizeof g, "%s.hidden_states_0", name);
    compare(what, &h0, g, tol);
    ClipVisionOutputs om = {NULL, NULL, NULL, &h0, 1 - c->num_hidden_layers - 1};
    CHECK(clip_vision_forward(m, &pix, ws, &om, g_err, sizeof g_err) == 0, "%s: %s", name, g_err);
    float *a = to_host(&h0), *b = to_host(&h1);
    CHECK(!memcmp(a, b, tensor_numel(&h0) * sizeof *a),
          "%s: hidden_states[%d] alone differs from the full run", name, om.hidden_index);
    free(a);
    free(b);
    arena_free(&out);
    free(px);
}

// Loads `path` on dev in dt with arenas of exactly the computed sizes (an arena that is too
// small aborts), runs the goldens of `name`.
static void model_case(const char *path, const char *name, Device dev, DType dt, double tol,
                       ClipVisionConfig *cfg_out) {
    ClipVisionConfig cfg;
    CHECK(clip_vision_config(&cfg, path, g_err, sizeof g_err) == 0, "%s: config: %s", path, g_err);
    Arena wa, ws;
    if (arena_init(&wa, dev, clip_vision_weight_bytes(&cfg, dt))) die(path, "weights arena");
    if (arena_init(&ws, dev, clip_vision_scratch_bytes(&cfg, dt, 2))) die(path, "scratch arena");
    ClipVision m;
    int rc = clip_vision_load(&m, path, &wa, dt, g_err, sizeof g_err);
    CHECK(rc == 0, "%s: load: %s", path, g_err);
    if (rc == 0) {
        CHECK(!memcmp(&cfg, &m.cfg, sizeof cfg),
              "%s: the loaded config differs from clip_vision_config's", path);
        run_model(&m, &ws, name, tol);
        clip_vision_free(&m);
    }
    if (cfg_out) *cfg_out = cfg;
    arena_free(&wa);
    arena_free(&ws);
}

static int contains(const char *s, const char *sub) { return strstr(s, sub) != NULL; }

static void errors_case(void) {
    ClipVisionConfig cfg;
    int rc = clip_vision_config(&cfg, data_path("tiny_noconfig.safetensors"), g_err, sizeof g_err);
    CHECK(rc == -1 && contains(g_err, "storyrun.config.image_encoder") &&
              contains(g_err, "hidden size 32"),
          "no-config single file: rc %d: %s", rc, g_err);
    printf("  ok   refused: %s\n", g_err);
    rc = clip_vision_config(&cfg, data_path("images"), g_err, sizeof g_err);
    CHECK(rc == -1 && contains(g_err, "no config.json"), "a folder without config: rc %d: %s", rc,
          g_err);
    rc = clip_vision_config(&cfg, data_path("absent.safetensors"), g_err, sizeof g_err);
    CHECK(rc == -1 && contains(g_err, "absent.safetensors"), "absent file: rc %d: %s", rc, g_err);

    // bad pixel_values and a hidden index past the last layer: errors, not aborts
    const char *path = data_path("tiny_quick");
    CHECK(clip_vision_config(&cfg, path, g_err, sizeof g_err) == 0, "%s", g_err);
    Arena wa, ws;
    if (arena_init(&wa, DEV_CPU, clip_vision_weight_bytes(&cfg, DT_F32)) ||
        arena_init(&ws, DEV_CPU, clip_vision_scratch_bytes(&cfg, DT_F32, 1)))
        die(path, "arena");
    ClipVision m;
    CHECK(clip_vision_load(&m, path, &wa, DT_F32, g_err, sizeof g_err) == 0, "%s", g_err);
    float *px = calloc(3 * 224 * 224, sizeof *px), emb[16];
    Tensor big = tensor_view(px, DT_F32, DEV_CPU, 4, SHAPE(1, 3, 224, 224));
    Tensor e = tensor_view(emb, DT_F32, DEV_CPU, 2, SHAPE(1, 16));
    ClipVisionOutputs o = {&e, NULL, NULL, NULL, 0};
    rc = clip_vision_forward(&m, &big, &ws, &o, g_err, sizeof g_err);
    CHECK(rc == -1 && contains(g_err, "(B, 3, 32, 32)"), "224x224 into a 32x32 model: rc %d: %s",
          rc, g_err);
    Tensor ok = tensor_view(px, DT_F32, DEV_CPU, 4, SHAPE(1, 3, 32, 32));
    Tensor hs = tensor_view(px, DT_F32, DEV_CPU, 3, SHAPE(1, 17, 32));
    ClipVisionOutputs o3 = {NULL, NULL, NULL, &hs, 3};
    rc = clip_vision_forward(&m, &ok, &ws, &o3, g_err, sizeof g_err);
    CHECK(rc == -1 && contains(g_err, "hidden_states[3]"),
          "hidden_states[3] of 2 layers: rc %d: %s", rc, g_err);
    free(px);
    clip_vision_free(&m);
    arena_free(&wa);
    arena_free(&ws);
}

// The test images through clip_preprocess_image against the processor's pixel values
// (rebuilt exactly from the stored 8-bit crop and the per-level LUT: see make_golden.py).
static void preprocess_case(void) {
    static const char *names[] = {"img_317x211", "img_640x480", "img_200x300",
                                  "img_250x600", "gray_150x97", "rgba_333x250"};
    float *lut = golden("proc.lut", NULL);
    ClipImageProcessor p;
    clip_image_processor_default(&p, 224);
    float *px = malloc(3 * 224 * 224 * sizeof *px);
    uint8_t *crop = malloc(224 * 224 * 3);
    Tensor t = tensor_view(px, DT_F32, DEV_CPU, 4, SHAPE(1, 3, 224, 224));
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        char f[256];
        Image img = {0}, want = {0};
        snprintf(f, sizeof f, "images/%s.png", names[i]);
        if (image_read_png(data_path(f), &img, g_err, sizeof g_err)) die(f, g_err);
        snprintf(f, sizeof f, "images/%s.crop.png", names[i]);
        if (image_read_png(data_path(f), &want, g_err, sizeof g_err)) die(f, g_err);
        CHECK(want.width == 224 && want.height == 224 && want.channels == 3, "%s: crop", f);
        int rc = clip_preprocess_image(&p, &img, &t, 0, g_err, sizeof g_err);
        CHECK(rc == 0, "%s: %s", names[i], g_err);
        int64_t bad = 0, bad8 = 0, maxd = 0;
        for (int c = 0; c < 3; c++)
            for (int k = 0; k < 224 * 224; k++) {
                float ref = lut[c * 256 + want.pixels[k * 3 + c]];
                bad += memcmp(&px[c * 224 * 224 + k], &ref, sizeof ref) != 0;
            }
        if (img.channels == 3) {  // the 8-bit crop itself, from the raw-frame entry point
            CHECK(clip_preprocess_rgb_u8(&p, img.pixels, img.width, img.height,
                                         (size_t)img.width * 3, crop, g_err, sizeof g_err) == 0,
                  "%s: %s", names[i], g_err);
            for (int k = 0; k < 224 * 224 * 3; k++) {
                int d = abs((int)crop[k] - want.pixels[k]);
                bad8 += d != 0;
                if (d > maxd) maxd = d;
            }
        }
        printf("  %-4s preprocess %-14s %4dx%-4d %d ch: %lld of %d pixel values differ%s",
               bad || bad8 ? "FAIL" : "ok", names[i], img.width, img.height, img.channels,
               (long long)bad, 3 * 224 * 224, img.channels == 3 ? "" : "\n");
        if (img.channels == 3)
            printf(", %lld crop bytes differ (max %lld)\n", (long long)bad8, (long long)maxd);
        CHECK(bad == 0 && bad8 == 0, "%s: %lld values, %lld crop bytes differ", names[i],
              (long long)bad, (long long)bad8);
        image_free(&img);
        image_free(&want);
    }
    // a crop larger than the resized short side is refused
    p.crop_width = 225;
    Image one = {0};
    if (image_alloc(&one, 4, 4, 3, g_err, sizeof g_err)) die("image_alloc", g_err);
    CHECK(clip_preprocess_image(&p, &one, &t, 0, g_err, sizeof g_err) == -1 &&
              contains(g_err, "crop"),
          "crop 225 of 224: %s", g_err);
    image_free(&one);
    free(px);
    free(crop);
    free(lut);
}

// CLIPImageProcessor at 32 then tiny_quick: pixel values exact, embeddings to tolerance.
static void end_to_end_case(void) {
    Image img = {0};
    if (image_read_png(data_path("images/img_317x211.png"), &img, g_err, sizeof g_err))
        die("e2e", g_err);
    ClipImageProcessor p;
    clip_image_processor_default(&p, 32);
    float px[3 * 32 * 32];
    Tensor t = tensor_view(px, DT_F32, DEV_CPU, 4, SHAPE(1, 3, 32, 32));
    CHECK(clip_preprocess_image(&p, &img, &t, 0, g_err, sizeof g_err) == 0, "%s", g_err);
    float *want = golden("e2e.pixel_values", NULL);
    int bad = 0;
    for (int i = 0; i < 3 * 32 * 32; i++) bad += memcmp(&px[i], &want[i], sizeof *px) != 0;
    printf("  %-4s e2e pixel values at 32: %d of %d differ\n", bad ? "FAIL" : "ok", bad,
           3 * 32 * 32);
    CHECK(bad == 0, "e2e: %d pixel values differ", bad);
    ClipVisionConfig cfg;
    const char *path = data_path("tiny_quick");
    CHECK(clip_vision_config(&cfg, path, g_err, sizeof g_err) == 0, "%s", g_err);
    Arena wa, ws;
    if (arena_init(&wa, DEV_CPU, clip_vision_weight_bytes(&cfg, DT_F32)) ||
        arena_init(&ws, DEV_CPU, clip_vision_scratch_bytes(&cfg, DT_F32, 1)))
        die(path, "arena");
    ClipVision m;
    CHECK(clip_vision_load(&m, path, &wa, DT_F32, g_err, sizeof g_err) == 0, "%s", g_err);
    float emb[16];
    Tensor e = tensor_view(emb, DT_F32, DEV_CPU, 2, SHAPE(1, 16));
    ClipVisionOutputs o = {&e, NULL, NULL, NULL, 0};
    CHECK(clip_vision_forward(&m, &t, &ws, &o, g_err, sizeof g_err) == 0, "%s", g_err);
    compare("e2e image_embeds", &e, "e2e.image_embeds", 1e-4);
    clip_vision_free(&m);
    arena_free(&wa);
    arena_free(&ws);
    image_free(&img);
    free(want);
}

static void open_golden(void) {
    if (st_open(&g_st, data_path("golden.safetensors"), g_err, sizeof g_err)) die("golden", g_err);
}

int main(int argc, char **argv) {
    const int cuda = argc == 3 && !strcmp(argv[1], "--cuda");
    if (argc != 2 && !cuda) {
        fprintf(stderr, "usage: test_clip_vision [--cuda] DATA\n");
        return 2;
    }
    g_data = argv[argc - 1];
    if (cuda) {
        if (!cuda_available()) {
            printf("clip_vision cuda: skipped: no CUDA device\n");
            return 77;
        }
        open_golden();
        static const struct {
            DType dt;
            double tol;
        } kinds[] = {{DT_F16, 2e-2}, {DT_BF16, 1e-1}};
        for (int k = 0; k < 2; k++) {
            printf("%s:\n", dtype_name(kinds[k].dt));
            model_case(data_path("tiny_quick"), "tiny_quick", DEV_CUDA, kinds[k].dt, kinds[k].tol,
                       NULL);
            model_case(data_path("tiny_gelu"), "tiny_gelu", DEV_CUDA, kinds[k].dt, kinds[k].tol,
                       NULL);
        }
        printf("clip_vision cuda: %d checks, %d failure(s)\n", checks, failures);
        return failures != 0;
    }
    open_golden();
    ClipVisionConfig a, b;
    printf("tiny_quick (folder, quick_gelu):\n");
    model_case(data_path("tiny_quick"), "tiny_quick", DEV_CPU, DT_F32, 1e-4, &a);
    CHECK(a.hidden_size == 32 && a.num_hidden_layers == 2 && a.num_attention_heads == 4 &&
              a.image_size == 32 && a.patch_size == 8 && a.projection_dim == 16 &&
              a.intermediate_size == 64 && a.act == CLIP_ACT_QUICK_GELU,
          "tiny_quick config");
    printf("tiny_quick.safetensors (single file, config from shapes + metadata):\n");
    model_case(data_path("tiny_quick.safetensors"), "tiny_quick", DEV_CPU, DT_F32, 1e-4, &b);
    CHECK(!memcmp(&a, &b, sizeof a), "the single file's derived config differs from config.json's");
    printf("tiny_gelu (sharded folder, gelu, patch 14):\n");
    model_case(data_path("tiny_gelu"), "tiny_gelu", DEV_CPU, DT_F32, 1e-4, &a);
    CHECK(a.act == CLIP_ACT_GELU && a.num_hidden_layers == 3 && a.patch_size == 14 &&
              a.image_size == 28,
          "tiny_gelu config");
    printf("errors:\n");
    errors_case();
    printf("preprocessing (CLIPImageProcessor, PIL backend):\n");
    preprocess_case();
    end_to_end_case();
    printf("clip_vision golden: %d checks, %d failure(s)\n", checks, failures);
    return failures != 0;
}

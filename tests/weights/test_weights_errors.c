// tests/weights/test_weights_errors.c: every way a model on disk can be wrong gives -1 and
// a message naming the file and the component or tensor (never a crash or an exit):
// a missing component, a missing tensor, a shape mismatch, a .ckpt pickle, a truncated
// file, an unknown layout, broken shards, a config that disagrees with the tensors.
// Broken folders are built in WORK_DIR from the tiny models (links, edited copies).
//
//   test_weights_errors MODELS_DIR WORK_DIR
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "models/safetensors.h"
#include "models/weights.h"

static int failures = 0, checks = 0;
static char models[PATH_MAX], work[PATH_MAX];

#define CHECK(cond, ...)                                           \
    do {                                                           \
        checks++;                                                  \
        if (!(cond)) {                                             \
            failures++;                                            \
            printf("FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond); \
            printf(__VA_ARGS__);                                   \
            printf("\n");                                          \
        }                                                          \
    } while (0)

static const char *at(const char *base, const char *rel) {
    static char buf[4][PATH_MAX + 256];
    static int i;
    i = (i + 1) % 4;
    snprintf(buf[i], sizeof buf[i], "%s/%s", base, rel);
    return buf[i];
}

static void put(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, n, f) != n) {
        printf("FAIL: cannot write %s\n", path);
        exit(1);
    }
    fclose(f);
}

static char *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        printf("FAIL: cannot read %s\n", path);
        exit(1);
    }
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)len + 1);
    if (fread(buf, 1, (size_t)len, f) != (size_t)len) exit(1);
    buf[len] = '\0';
    fclose(f);
    *n = (size_t)len;
    return buf;
}

static void copy(const char *from, const char *to) {
    size_t n;
    char *b = slurp(from, &n);
    put(to, b, n);
    free(b);
}

// A fresh folder WORK/name holding links to the given entries of MODELS/src.
static const char *folder(const char *name, const char *src, const char *const *links) {
    static char dir[PATH_MAX + 64];
    snprintf(dir, sizeof dir, "%s/%s", work, name);
    char cmd[3 * PATH_MAX];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd)) exit(1);
    mkdir(dir, 0755);
    for (int i = 0; links && links[i]; i++) {
        char target[PATH_MAX + 256];
        snprintf(target, sizeof target, "%s/%s/%s", models, src, links[i]);
        if (symlink(target, at(dir, links[i]))) {
            printf("FAIL: symlink %s\n", target);
            exit(1);
        }
    }
    return dir;
}

// weights_open must fail with every fragment in the message.
static void open_fails(const char *what, const char *path, const char *want1, const char *want2) {
    Weights *w = (Weights *)1;
    char err[4096] = "";
    int rc = weights_open(&w, path, err, sizeof err);
    bool ok = rc == -1 && w == NULL && strstr(err, want1) && (!want2 || strstr(err, want2));
    CHECK(ok, "%s: rc %d, message: %s (wanted \"%s\"%s%s)", what, rc, err, want1,
          want2 ? " and " : "", want2 ? want2 : "");
    printf("%s %-26s %.300s\n", ok ? "ok  " : "FAIL", what, err);
    if (rc == 0) weights_close(w);
    // no room for a message must not crash either
    if (weights_open(&w, path, NULL, 0) == 0) weights_close(w);
}

// The model opens, and weights_check reports a problem of `sev` containing `want`.
static void check_reports(const char *what, const char *path, WeightsSeverity sev,
                          const char *want) {
    Weights *w = NULL;
    char err[4096] = "";
    int rc = weights_open(&w, path, err, sizeof err);
    CHECK(rc == 0, "%s: %s", what, err);
    if (rc) return;
    WeightsProblem p[64];
    int n = weights_check(w, p, 64), found = 0;
    for (int i = 0; i < n && i < 64; i++)
        if (p[i].severity == sev && strstr(p[i].msg, want)) {
            found++;
            printf("ok   %-26s %s\n", what, p[i].msg);
        }
    CHECK(found, "%s: no problem \"%s\" among %d", what, want, n);
    weights_close(w);
}

static void write_st(const char *path, const char *const *names, int n) {
    static const float data[4] = {1, 2, 3, 4};
    static const int64_t shape[1] = {4};
    StWriteTensor t[16];
    for (int i = 0; i < n; i++) t[i] = (StWriteTensor){names[i], ST_F32, 1, shape, data};
    char err[1024];
    if (st_write(path, t, n, NULL, 0, err, sizeof err)) {
        printf("FAIL: %s\n", err);
        exit(1);
    }
}

static void test_folders(void) {
    const char *sd15[] = {"model_index.json", "unet", "vae", "tokenizer", "scheduler", NULL};
    // listed in model_index.json but absent
    open_fails("component listed, absent", folder("no_te", "tiny_sd15", sd15), "text_encoder",
               "is missing");
    // not listed at all: without a text encoder the family cannot be told
    const char *dir = folder("unlisted_te", "tiny_sd15", sd15 + 1);
    const char *index =
        "{\"_class_name\": \"StableDiffusionPipeline\", \"unet\": [\"diffusers\", "
        "\"UNet2DConditionModel\"], \"vae\": [\"diffusers\", \"AutoencoderKL\"], "
        "\"text_encoder\": [null, null], \"scheduler\": [\"diffusers\", \"PNDMScheduler\"], "
        "\"tokenizer\": [\"transformers\", \"CLIPTokenizer\"]}";
    put(at(dir, "model_index.json"), index, strlen(index));
    open_fails("no text encoder config", dir, "unknown model layout", "hidden_act unknown");
    // no VAE: the family is known (SD1.x), the model opens, the check says it is unusable
    const char *novae[] = {"unet", "text_encoder", "tokenizer", "scheduler", NULL};
    dir = folder("no_vae", "tiny_sd15", novae);
    index =
        "{\"unet\": [\"diffusers\", \"UNet2DConditionModel\"], \"text_encoder\": "
        "[\"transformers\", "
        "\"CLIPTextModel\"], \"scheduler\": [\"diffusers\", \"PNDMScheduler\"], \"tokenizer\": "
        "[\"transformers\", \"CLIPTokenizer\"]}";
    put(at(dir, "model_index.json"), index, strlen(index));
    check_reports("component missing", dir, WP_ERROR, "vae: missing (a SD1.x model needs it)");
    // a component storyrun does not run, unreadable (a pickle), and a listed tokenizer
    // folder that is gone: the model still opens; the check notes the first, warns of the
    // second (storyrun's own CLIP vocabulary stands in)
    const char *extra[] = {"unet", "vae", "text_encoder", "scheduler", NULL};
    dir = folder("skipped_parts", "tiny_sd15", extra);
    index =
        "{\"unet\": [\"diffusers\", \"UNet2DConditionModel\"], \"vae\": [\"diffusers\", "
        "\"AutoencoderKL\"], \"text_encoder\": [\"transformers\", \"CLIPTextModel\"], "
        "\"scheduler\": [\"diffusers\", \"PNDMScheduler\"], \"tokenizer\": [\"transformers\", "
        "\"CLIPTokenizer\"], \"safety_checker\": [\"stable_diffusion\", "
        "\"StableDiffusionSafetyChecker\"], \"requires_safety_checker\": true}";
    put(at(dir, "model_index.json"), index, strlen(index));
    mkdir(at(dir, "safety_checker"), 0755);
    put(at(dir, "safety_checker/config.json"), "{}", 2);
    put(at(dir, "safety_checker/pytorch_model.bin"), "PK\3\4", 4);
    check_reports("unused part skipped", dir, WP_NOTE, "safety_checker: skipped: ");
    check_reports("tokenizer folder gone", dir, WP_WARNING,
                  "tokenizer: the folder has no vocab.json");
    // a component folder instead of the pipeline folder
    open_fails("component folder", at(models, "tiny_sd15/unet"), "single diffusers component",
               "model_index.json");
    open_fails("not a model", at(models, "tiny_sdxl/tokenizer"), "not a diffusers folder", NULL);
    open_fails("no such path", at(work, "nowhere"), "nowhere", "No such file");
    // a component with only a PyTorch pickle
    const char *te[] = {"model_index.json", "unet", "vae", "tokenizer", "scheduler", NULL};
    dir = folder("bin_te", "tiny_sd15", te);
    mkdir(at(dir, "text_encoder"), 0755);
    copy(at(models, "tiny_sd15/text_encoder/config.json"), at(dir, "text_encoder/config.json"));
    put(at(dir, "text_encoder/pytorch_model.bin"), "PK\3\4", 4);
    open_fails("pickle component", dir, "text_encoder: only pytorch_model.bin", "safetensors");
    remove(at(dir, "text_encoder/pytorch_model.bin"));
    open_fails("no weights file", dir, "text_encoder: no weights", "model.safetensors");
    // a config that disagrees with the tensors
    const char *cfg =
        "{\"_class_name\": \"CLIPTextModel\", \"hidden_size\": 32, "
        "\"num_hidden_layers\": 3, \"num_attention_heads\": 4, \"hidden_act\": "
        "\"quick_gelu\", \"vocab_size\": 49408, \"intermediate_size\": 37, "
        "\"max_position_embeddings\": 77}";
    put(at(dir, "text_encoder/config.json"), cfg, strlen(cfg));
    if (symlink(at(models, "tiny_sd15/text_encoder/model.fp16.safetensors"),
                at(dir, "text_encoder/model.fp16.safetensors")))
        exit(1);
    check_reports("config vs tensors", dir, WP_ERROR, "num_hidden_layers = 3, the tensors say 2");
    check_reports("config's missing layer", dir, WP_ERROR,
                  "text_model.encoder.layers.2.layer_norm1.weight");
    // a tokenizer folder without its vocabulary: the shipped one, with a warning
    const char *notok[] = {"model_index.json", "unet", "vae", "text_encoder", "scheduler", NULL};
    dir = folder("tok_no_vocab", "tiny_sd15", notok);
    mkdir(at(dir, "tokenizer"), 0755);
    check_reports("tokenizer without vocab", dir, WP_WARNING, "has no vocab.json");
    // shards: an index naming a missing shard, then one naming a tensor its shard lacks
    const char *xl[] = {"model_index.json", "vae",         "text_encoder", "text_encoder_2",
                        "tokenizer",        "tokenizer_2", "scheduler",    NULL};
    dir = folder("bad_shards", "tiny_sdxl", xl);
    mkdir(at(dir, "unet"), 0755);
    copy(at(models, "tiny_sdxl/unet/config.json"), at(dir, "unet/config.json"));
    const char *idx =
        "{\"weight_map\": {\"conv_in.weight\": "
        "\"diffusion_pytorch_model-00001-of-00002.safetensors\", "
        "\"conv_out.weight\": \"gone.safetensors\"}}";
    put(at(dir, "unet/diffusion_pytorch_model.safetensors.index.json"), idx, strlen(idx));
    if (symlink(at(models, "tiny_sdxl/unet/diffusion_pytorch_model-00001-of-00002.safetensors"),
                at(dir, "unet/diffusion_pytorch_model-00001-of-00002.safetensors")))
        exit(1);
    open_fails("missing shard", dir, "unet/gone.safetensors", NULL);
    // (the shards split the sorted names: up_blocks.* are in the second)
    idx =
        "{\"weight_map\": {\"up_blocks.1.resnets.2.conv2.weight\": "
        "\"diffusion_pytorch_model-00001-of-00002.safetensors\"}}";
    put(at(dir, "unet/diffusion_pytorch_model.safetensors.index.json"), idx, strlen(idx));
    open_fails("tensor not in its shard", dir,
               "tensor up_blocks.1.resnets.2.conv2.weight is not in shard", "index.json: line 1");
    idx = "{\"weight_map\": {\"conv_out.weight\": \"../unet/x.safetensors\"}}";
    put(at(dir, "unet/diffusion_pytorch_model.safetensors.index.json"), idx, strlen(idx));
    open_fails("shard outside the folder", dir, "must be a file name", NULL);
}

static void test_single_files(void) {
    char sd15[PATH_MAX + 64], xl[PATH_MAX + 64];  // (at() reuses 4 buffers)
    snprintf(sd15, sizeof sd15, "%s/tiny_sd15.safetensors", models);
    snprintf(xl, sizeof xl, "%s/tiny_sdxl.safetensors", models);
    // pickles, by name and by content
    const char *ckpt = at(work, "model.ckpt");
    put(ckpt, "PK\3\4rest of a zip", 17);
    open_fails(".ckpt", ckpt, "PyTorch pickle", "Convert it");
    const char *fake = at(work, "pickle.safetensors");
    put(fake, "\x80\x02}q\x00", 5);
    open_fails("pickle named .safetensors", fake, "only .safetensors", "OUT.safetensors");
    // a safetensors file whose header length starts like a pickle (0x80 0x03 = 896 bytes) is
    // read as safetensors: here an unknown layout, not a pickle
    const char *odd1[] = {"foo.weight"};
    StWriteTensor one = {odd1[0], ST_F32, 1, (const int64_t[]){1}, (const float[]){1}};
    const char *look = at(work, "like_pickle.safetensors");
    char pad[1024], e2[1024];
    bool made = false;
    for (int k = 0; k < 900 && !made; k++) {
        memset(pad, 'x', (size_t)k);
        pad[k] = '\0';
        const char *kv[] = {"pad", pad};
        if (st_write(look, &one, 1, kv, 1, e2, sizeof e2)) break;
        unsigned char h[2];
        FILE *f = fopen(look, "rb");
        made = f && fread(h, 1, 2, f) == 2 && h[0] == 0x80 && h[1] == 3;
        if (f) fclose(f);
    }
    CHECK(made, "could not make a header of 896 bytes");
    open_fails("header length like pickle", look, "unknown model layout", "Found: foo.* (1)");
    // truncated files
    size_t n;
    char *bytes = slurp(sd15, &n);
    const char *cut = at(work, "truncated.safetensors");
    put(cut, bytes, n / 2);
    open_fails("truncated (half)", cut, "truncated.safetensors", NULL);
    put(cut, bytes, 6);
    open_fails("truncated (6 bytes)", cut, "truncated.safetensors", NULL);
    free(bytes);
    // unknown layouts
    const char *odd[] = {"foo.bar.weight", "model.diffusion_model.x"};
    const char *p = at(work, "odd.safetensors");
    write_st(p, odd, 2);
    open_fails("unknown layout", p, "unknown model layout",
               "Found: foo.bar.* (1), model.diffusion_model.* (1)");
    const char *comp[] = {"down_blocks.0.resnets.0.conv1.weight", "conv_in.weight"};
    write_st(p, comp, 2);
    open_fails("a diffusers component file", p, "one component of a diffusers folder", NULL);
    const char *refiner[] = {"conditioner.embedders.0.model.ln_final.weight",
                             "model.diffusion_model.x"};
    write_st(p, refiner, 2);
    open_fails("SDXL refiner", p, "SDXL refiner", NULL);
    const char *no_unet[] = {"cond_stage_model.transformer.text_model.final_layer_norm.weight"};
    write_st(p, no_unet, 1);
    open_fails("no UNet", p, "no UNet", NULL);
    write_st(p, NULL, 0);
    open_fails("no tensors", p, "no tensors", NULL);
    const char *badhint[] = {"cond_stage_model.transformer.text_model.final_layer_norm.weight",
                             "model.diffusion_model.conv.weight"};
    StWriteTensor t[2];
    static const float data[4] = {1, 2, 3, 4};
    static const int64_t shape[1] = {4};
    for (int i = 0; i < 2; i++) t[i] = (StWriteTensor){badhint[i], ST_F32, 1, shape, data};
    const char *meta[] = {"storyrun.config.text_encoder", "{\"num_attention_heads\": }"};
    char err[4096];
    if (st_write(p, t, 2, meta, 1, err, sizeof err)) printf("FAIL: %s\n", err);
    open_fails("bad config hint", p, "metadata storyrun.config.text_encoder", "line 1");

    // a tensor missing from a real file: it opens, the check names it, loading it fails
    SafeTensors st;
    if (st_open(&st, sd15, err, sizeof err)) printf("FAIL: %s\n", err);
    StWriteTensor *all = calloc((size_t)st_count(&st), sizeof *all);
    int m = 0;
    for (int i = 0; i < st_count(&st); i++) {
        const SafeTensorsEntry *e = st_entry(&st, i);
        if (!strcmp(e->name, "model.diffusion_model.out.2.weight")) continue;
        all[m++] = (StWriteTensor){e->name, e->dtype, e->ndim, e->shape, e->data};
    }
    char missing[PATH_MAX + 64];
    snprintf(missing, sizeof missing, "%s/missing_tensor.safetensors", work);
    if (st_write(missing, all, m, NULL, 0, err, sizeof err)) printf("FAIL: %s\n", err);
    free(all);
    st_close(&st);
    check_reports("missing tensor (check)", missing, WP_ERROR, "unet: 1 of the");
    check_reports("missing tensor (name)", missing, WP_ERROR, "conv_out.weight");
    Weights *w = NULL;
    Arena a;
    arena_init(&a, DEV_CPU, 1 << 20);
    Tensor out;
    if (weights_open(&w, missing, err, sizeof err) == 0) {
        int rc = weights_load(w, "unet", "conv_out.weight", 4, (int64_t[]){4, 16, 3, 3}, &a, DT_F32,
                              &out, err, sizeof err);
        CHECK(rc == -1 && strstr(err, "unet: missing tensor conv_out.weight") &&
                  strstr(err, "missing_tensor.safetensors"),
              "missing tensor load: %s", err);
        printf("ok   %-26s %s\n", "missing tensor (load)", err);
        rc = weights_load(w, "text_encoder_2", "x", 1, (int64_t[]){1}, &a, DT_F32, &out, err,
                          sizeof err);
        CHECK(rc == -1 && strstr(err, "no text_encoder_2 component"), "missing component: %s", err);
        weights_close(w);
    }
    // shape mismatches name both shapes and where the tensor is stored
    if (weights_open(&w, xl, err, sizeof err) == 0) {
        const char *q = "text_model.encoder.layers.0.self_attn.q_proj.weight";
        int rc = weights_load(w, "text_encoder_2", q, 2, (int64_t[]){16, 32}, &a, DT_F32, &out, err,
                              sizeof err);
        CHECK(
            rc == -1 && strstr(err, "expected shape (16, 32), found (16, 16)") &&
                strstr(err,
                       "stored as "
                       "conditioner.embedders.1.model.transformer.resblocks.0.attn.in_proj_weight"),
            "shape mismatch: %s", err);
        printf("ok   %-26s %s\n", "shape mismatch", err);
        rc = weights_load(w, "text_encoder_2", "text_projection.weight", 1, (int64_t[]){24}, &a,
                          DT_F32, &out, err, sizeof err);
        CHECK(rc == -1 && strstr(err, "expected shape (24,), found (24, 16)"), "ndim mismatch: %s",
              err);
        printf("ok   %-26s %s\n", "dims mismatch", err);
        weights_close(w);
    } else {
        CHECK(0, "%s", err);
    }
    arena_free(&a);
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s MODELS_DIR WORK_DIR\n", argv[0]);
        return 2;
    }
    if (!realpath(argv[1], models)) {
        printf("FAIL: %s not found\n", argv[1]);
        return 1;
    }
    mkdir(argv[2], 0755);
    if (!realpath(argv[2], work)) return 1;
    test_folders();
    test_single_files();
    if (failures) {
        printf("weights_errors: %d of %d checks FAILED\n", failures, checks);
        return 1;
    }
    printf("weights_errors: all %d checks passed\n", checks);
    return 0;
}

// tests/weights/test_weights_layouts.c: the two layouts of each tiny model
// (tests/golden/make_tiny_models.py: a diffusers folder with F32 / fp16-variant / sharded
// files, and one F16 single file with the LDM names) load to the same tensors, bit for
// bit in f32, and equal to what diffusers held (the manifest's crc32 of every tensor's
// f32 values); the same family; equal config values for every key both configs have;
// no problem of severity error; the same token ids. Plus an SD2.x single file made from
// the SDXL one's OpenCLIP tower (last block and projection dropped, as diffusers does).
//
//   test_weights_layouts MODELS_DIR WORK_DIR
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "models/safetensors.h"
#include "models/tokenizer.h"
#include "models/weights.h"

static int failures = 0, checks = 0;

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

typedef struct {
    char comp[32], name[200];
    int ndim;
    int64_t shape[4];
    uint32_t crc;
} Entry;

static Entry *read_manifest(const char *path, int *n) {
    FILE *f = fopen(path, "r");
    if (!f) {
        printf("FAIL: cannot open %s\n", path);
        exit(1);
    }
    Entry *e = calloc(2048, sizeof *e);
    char line[512], shape[64];
    *n = 0;
    while (fgets(line, sizeof line, f) && *n < 2048) {
        if (line[0] == '#') continue;
        Entry *x = &e[*n];
        if (sscanf(line, "%31s %199s %63s %x", x->comp, x->name, shape, &x->crc) != 4) continue;
        char *s = shape;
        x->ndim = 0;
        while (*s && strcmp(s, "scalar") && x->ndim < 4) {
            x->shape[x->ndim++] = strtoll(s, &s, 10);
            if (*s == 'x') s++;
        }
        (*n)++;
    }
    fclose(f);
    return e;
}

// Every manifest tensor: present with its shape, and its f32 values' crc32 matches.
static void check_tensors(const Weights *w, const Entry *m, int n, Arena *a) {
    for (int i = 0; i < n; i++) {
        WeightInfo info;
        bool found = weights_find(w, m[i].comp, m[i].name, &info) == 0;
        CHECK(found, "%s: %s/%s missing", weights_path(w), m[i].comp, m[i].name);
        if (!found) continue;
        bool same = info.ndim == m[i].ndim;
        for (int k = 0; same && k < m[i].ndim; k++) same = info.shape[k] == m[i].shape[k];
        CHECK(same, "%s: %s/%s shape differs", weights_path(w), m[i].comp, m[i].name);
        if (!same) continue;
        size_t mark = arena_mark(a);
        Tensor t, h, b;
        char err[1024];
        int rc = weights_load(w, m[i].comp, m[i].name, m[i].ndim, m[i].shape, a, DT_F32, &t, err,
                              sizeof err);
        CHECK(rc == 0, "%s", err);
        if (rc) continue;
        uint32_t crc = (uint32_t)crc32(0, t.data, (uInt)tensor_nbytes(&t));
        CHECK(crc == m[i].crc, "%s: %s/%s: crc %08x, diffusers had %08x", weights_path(w),
              m[i].comp, m[i].name, crc, m[i].crc);
        // f16 and bf16 loads: the f32 values rounded (the tiny weights are f16-exact)
        rc = weights_load(w, m[i].comp, m[i].name, m[i].ndim, m[i].shape, a, DT_F16, &h, err,
                          sizeof err);
        rc |= weights_load(w, m[i].comp, m[i].name, m[i].ndim, m[i].shape, a, DT_BF16, &b, err,
                           sizeof err);
        CHECK(rc == 0, "%s", err);
        int64_t bad = 0, numel = tensor_numel(&t);
        for (int64_t k = 0; !rc && k < numel; k++) {
            float v = ((float *)t.data)[k];
            bad += ((uint16_t *)h.data)[k] != f32_to_f16(v) ||
                   f16_to_f32(((uint16_t *)h.data)[k]) != v;
            bad += ((uint16_t *)b.data)[k] != f32_to_bf16(v);
        }
        CHECK(bad == 0, "%s/%s: %lld f16/bf16 values differ", m[i].comp, m[i].name, (long long)bad);
        arena_release(a, mark);
    }
}

// Equal numbers compare as numbers (1e-05 == 1e-5); an int equals a list repeating it.
static bool json_same(const JsonValue *a, const JsonValue *b) {
    if (a->type == JSON_NUMBER && b->type == JSON_ARRAY) return json_same(b, a);
    if (a->type == JSON_ARRAY && b->type == JSON_NUMBER) {
        for (size_t i = 0; i < a->len; i++)
            if (!json_same(&a->items[i], b)) return false;
        return a->len > 0;
    }
    if (a->type != b->type) return false;
    switch (a->type) {
    case JSON_NULL: return true;
    case JSON_BOOL: return a->boolean == b->boolean;
    case JSON_NUMBER: return a->d == b->d;
    case JSON_STRING: return !strcmp(a->str, b->str);
    case JSON_ARRAY:
        if (a->len != b->len) return false;
        for (size_t i = 0; i < a->len; i++)
            if (!json_same(&a->items[i], &b->items[i])) return false;
        return true;
    default: return false;
    }
}

static void check_configs(const Weights *f, const Weights *s) {
    for (int c = 0; c < weights_component_count(f); c++) {
        const char *comp = weights_component(f, c);
        const JsonValue *a = weights_config(f, comp), *b = weights_config(s, comp);
        if (!a) continue;
        CHECK(b != NULL, "%s: no %s config", weights_path(s), comp);
        if (!b) continue;
        int compared = 0;
        for (size_t i = 0; i < a->len; i++) {
            const JsonMember *m = &a->members[i];
            const JsonValue *v = json_get(b, m->key);
            if (!v || !strcmp(m->key, "_diffusers_version") ||
                !strcmp(m->key, "transformers_version"))
                continue;
            compared++;
            CHECK(json_same(&m->value, v), "%s config key %s differs between the layouts", comp,
                  m->key);
        }
        int want = !strcmp(comp, "unet") ? 25 : !strcmp(comp, "scheduler") ? 8 : 12;
        CHECK(compared >= want, "%s: only %d config keys in common (want >= %d)", comp, compared,
              want);
        printf("  %-15s %d config values equal\n", comp, compared);
    }
}

static void check_usable(const Weights *w) {
    WeightsProblem p[64];
    int n = weights_check(w, p, 64);
    for (int i = 0; i < n && i < 64; i++)
        CHECK(p[i].severity != WP_ERROR, "%s: %s", weights_path(w), p[i].msg);
}

static void encode(const Weights *w, const char *which, int *ids, int *pad) {
    Tokenizer tok;
    char err[1024];
    int rc = weights_tokenizer_load(w, which, &tok, err, sizeof err);
    CHECK(rc == 0, "%s", err);
    if (rc) return;
    tok_encode(&tok, "a photo of Bob, a man in a black suit, reading a newspaper", ids, 77, NULL);
    *pad = tok.pad_id;
    tok_free(&tok);
}

static void check_model(const char *dir, const char *name, ModelFamily fam, Arena *a) {
    char folder[4096], single[4200], manifest[4200];
    snprintf(folder, sizeof folder, "%s/%s", dir, name);
    snprintf(single, sizeof single, "%s.safetensors", folder);
    snprintf(manifest, sizeof manifest, "%s.manifest.txt", folder);
    int n;
    Entry *m = read_manifest(manifest, &n);
    CHECK(n > 400, "%s: %d manifest entries", manifest, n);
    Weights *f = NULL, *s = NULL;
    char err[2048];
    int rc = weights_open(&f, folder, err, sizeof err);
    CHECK(rc == 0, "%s", err);
    rc |= weights_open(&s, single, err, sizeof err);
    CHECK(rc == 0, "%s", err);
    if (rc) goto done;
    CHECK(weights_family(f) == fam && weights_family(s) == fam, "families %s, %s",
          family_name(weights_family(f)), family_name(weights_family(s)));
    CHECK(weights_layout(f) == LAYOUT_DIFFUSERS && weights_layout(s) == LAYOUT_SINGLE_FILE,
          "layouts");
    CHECK(weights_component_count(f) == weights_component_count(s), "component counts %d, %d",
          weights_component_count(f), weights_component_count(s));
    for (int c = 0; c < weights_component_count(f); c++) {
        const char *comp = weights_component(f, c);
        CHECK(!strcmp(comp, weights_component(s, c)), "component %d: %s vs %s", c, comp,
              weights_component(s, c));
        int want = 0;
        for (int i = 0; i < n; i++) want += !strcmp(m[i].comp, comp);
        // the SD1.5 single file also has text_model.embeddings.position_ids (a buffer)
        int extra = fam == FAMILY_SD1 && !strcmp(comp, "text_encoder");
        CHECK(weights_tensor_count(f, comp) == want, "%s: folder has %d tensors, diffusers %d",
              comp, weights_tensor_count(f, comp), want);
        CHECK(weights_tensor_count(s, comp) == want + extra,
              "%s: single file has %d tensors, want %d", comp, weights_tensor_count(s, comp),
              want + extra);
    }
    check_tensors(f, m, n, a);
    check_tensors(s, m, n, a);
    check_configs(f, s);
    check_usable(f);
    check_usable(s);
    for (int t = 0; t < (fam == FAMILY_SDXL ? 2 : 1); t++) {
        const char *which = t ? "tokenizer_2" : "tokenizer";
        int x[77] = {0}, y[77] = {1}, px = -1, py = -2;
        encode(f, which, x, &px);
        encode(s, which, y, &py);
        CHECK(!memcmp(x, y, sizeof x) && px == py, "%s: the layouts' ids differ", which);
        CHECK(px == (t ? 0 : 49407), "%s pads with %d", which, px);
        CHECK(x[0] == 49406 && x[1] == 320 && x[2] == 1125, "%s: ids %d %d %d", which, x[0], x[1],
              x[2]);
    }
    printf("%s: %d tensors in both layouts identical to diffusers'\n", name, n);
done:
    weights_close(f);
    weights_close(s);
    free(m);
}

// SD2.x: the SDXL file's OpenCLIP tower renamed to cond_stage_model.model.*, the UNet
// without label_emb. Its text encoder must be the tower minus its last block, without
// the projection, each tensor equal to text_encoder_2's.
static void check_sd2(const char *dir, const char *work, Arena *a) {
    char src[4096], dst[4200], err[2048];
    snprintf(src, sizeof src, "%s/tiny_sdxl.safetensors", dir);
    snprintf(dst, sizeof dst, "%s/tiny_sd2.safetensors", work);
    SafeTensors st;
    int rc = st_open(&st, src, err, sizeof err);
    CHECK(rc == 0, "%s", err);
    if (rc) return;
    StWriteTensor *t = calloc((size_t)st_count(&st), sizeof *t);
    char(*names)[200] = calloc((size_t)st_count(&st), sizeof *names);
    int n = 0;
    for (int i = 0; i < st_count(&st); i++) {
        const SafeTensorsEntry *e = st_entry(&st, i);
        const char *p = "conditioner.embedders.1.model.";
        if (strstr(e->name, "conditioner.embedders.0.") || strstr(e->name, "label_emb.")) continue;
        if (!strncmp(e->name, p, strlen(p)))
            snprintf(names[n], sizeof names[n], "cond_stage_model.model.%s", e->name + strlen(p));
        else
            snprintf(names[n], sizeof names[n], "%s", e->name);
        t[n] = (StWriteTensor){names[n], e->dtype, e->ndim, e->shape, e->data};
        n++;
    }
    rc = st_write(dst, t, n, NULL, 0, err, sizeof err);
    CHECK(rc == 0, "%s", err);
    st_close(&st);
    free(t);
    free(names);
    Weights *w = NULL;
    rc = rc ? rc : weights_open(&w, dst, err, sizeof err);
    CHECK(rc == 0, "%s", err);
    if (rc) return;
    CHECK(weights_family(w) == FAMILY_SD2, "family %s", family_name(weights_family(w)));
    CHECK(!weights_has(w, "text_encoder_2"), "an SD2 model has one text encoder");
    CHECK(weights_find(w, "text_encoder", "text_projection.weight", NULL) != 0,
          "SD2: no projection");
    CHECK(weights_find(w, "text_encoder", "text_model.encoder.layers.1.mlp.fc1.weight", NULL) != 0,
          "SD2 drops the last block");
    const JsonValue *cfg = weights_config(w, "text_encoder");
    const JsonValue *layers = json_get(cfg, "num_hidden_layers"),
                    *act = json_get(cfg, "hidden_act");
    CHECK(layers && layers->i == 1 && act && !strcmp(act->str, "gelu"), "SD2 text config");
    const char *tok = weights_tokenizer_dir(w, "tokenizer");
    CHECK(tok && strstr(tok, "sdxl_2"), "SD2 pads with \"!\": %s", tok ? tok : "(none)");
    // the shared tensors equal the SDXL text_encoder_2's (from the manifest)
    char manifest[4200];
    snprintf(manifest, sizeof manifest, "%s/tiny_sdxl.manifest.txt", dir);
    int nm, compared = 0;
    Entry *m = read_manifest(manifest, &nm);
    for (int i = 0; i < nm; i++) {
        if (strcmp(m[i].comp, "text_encoder_2") || strstr(m[i].name, "layers.1.") ||
            strstr(m[i].name, "text_projection"))
            continue;
        strcpy(m[i].comp, "text_encoder");
        check_tensors(w, &m[i], 1, a);
        compared++;
    }
    CHECK(compared == 20, "SD2: %d text tensors compared", compared);
    // the tiny UNet's context (48) is not this text encoder's width (16): reported
    WeightsProblem p[64];
    int np = weights_check(w, p, 64), found = 0;
    for (int i = 0; i < np && i < 64; i++)
        found += p[i].severity == WP_ERROR && strstr(p[i].msg, "cross_attention_dim 48") != NULL;
    CHECK(found == 1, "SD2: the context mismatch is reported");
    printf("tiny_sd2 (from the SDXL OpenCLIP tower): %d text tensors identical\n", compared);
    free(m);
    weights_close(w);
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s MODELS_DIR WORK_DIR\n", argv[0]);
        return 2;
    }
    mkdir(argv[2], 0755);
    Arena a;
    if (arena_init(&a, DEV_CPU, 64u << 20)) return 1;
    check_model(argv[1], "tiny_sd15", FAMILY_SD1, &a);
    check_model(argv[1], "tiny_sdxl", FAMILY_SDXL, &a);
    check_sd2(argv[1], argv[2], &a);
    arena_free(&a);
    if (failures) {
        printf("weights_layouts: %d of %d checks FAILED\n", failures, checks);
        return 1;
    }
    printf("weights_layouts: all %d checks passed\n", checks);
    return 0;
}

// tests/predict/test_predict.c: helpers and checks for `storyrun predict` (run.sh drives them).
//
//   test_predict ckpt OUT SEED D L
//       a seeded motion predictor checkpoint (2 layers, width 32, 4 heads: smp_init +
//       smp_init_weights(SEED) + smp_checkpoint_save), so the tests need no training run.
//   test_predict check STORE ENCODER CKPT story DIR | pairs TSV
//       recomputes every pair directly (PNG -> CLIPImageProcessor -> encoder image_embeds,
//       batch 1; smp_forward on the two embeddings, batch 1) and compares the store's rows
//       (read with the transitions reader) bit for bit, and its metadata and attributes.
//   test_predict reader STORE WORKDIR
//       damaged and mismatched copies of a good store, each refused by transitions_store_open
//       or _read_pair with a message naming the file and the problem; the good store
//       is left as it was.
// Closing line: "predict NAME: N checks, F failure(s)".
#define _POSIX_C_SOURCE 200809L
#include <hdf5.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../common/test_check.h"
#include "models/clip_vision.h"
#include "models/motion_predictor.h"
#include "runner/image.h"
#include "runner/manifest.h"
#include "runner/store_transitions.h"

static char g_err[16384];

static void die(const char *what) {
    fprintf(stderr, "FAIL %s: %s\n", what, g_err);
    exit(1);
}

static int make_ckpt(const char *out, int seed, int D, int L) {
    SmpConfig c;
    smp_config_default(&c, D, L);
    c.layers = 2, c.width = 32, c.heads = 4;
    SmpModel m;
    if (smp_init(&m, &c, 1, g_err, sizeof g_err)) die("smp_init");
    smp_init_weights(&m, (uint64_t)seed);
    if (smp_checkpoint_save(out, &m, NULL, NULL, 0, g_err, sizeof g_err)) die("save");
    smp_free(&m);
    printf("wrote %s: seed %d, D %d, L %d\n", out, seed, D, L);
    return 0;
}

// ---- check -----------------------------------------------------------------------------------

typedef struct {
    char *start, *end, *prompt;
    int64_t sf, ef;
} RefPair;

// The frames of a story in frame order, from its manifest.
static int ref_story(const char *dir, RefPair **out) {
    Manifest m;
    if (manifest_load(&m, dir, g_err, sizeof g_err) != 1) die("manifest");
    int nf = 0;
    for (int i = 0; i < m.n; i++) nf += !strcmp(m.entries[i].kind, "frame");
    RefPair *p = calloc((size_t)nf, sizeof *p);
    char **path = calloc((size_t)nf, sizeof *path), **prompt = calloc((size_t)nf, sizeof *prompt);
    for (int i = 0; i < m.n; i++) {
        const ManifestEntry *e = &m.entries[i];
        if (strcmp(e->kind, "frame")) continue;
        int f = atoi(manifest_entry_get(e, "frame"));
        path[f] = malloc(strlen(dir) + strlen(e->path) + 2);
        sprintf(path[f], "%s/%s", dir, e->path);
        prompt[f] = strdup(manifest_entry_get(e, "prompt"));
    }
    for (int i = 0; i + 1 < nf; i++)
        p[i] = (RefPair){strdup(path[i]), strdup(path[i + 1]), strdup(prompt[i + 1]), i, i + 1};
    for (int i = 0; i < nf; i++) free(path[i]), free(prompt[i]);
    free(path), free(prompt);
    manifest_free(&m);
    *out = p;
    return nf - 1;
}

// A TSV of "start<TAB>end[<TAB>prompt]" (paths relative to its folder).
static int ref_pairs(const char *tsv, RefPair **out) {
    FILE *f = fopen(tsv, "r");
    if (!f) die(tsv);
    char dir[4096], line[8192];
    snprintf(dir, sizeof dir, "%s", tsv);
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = 0;
    else
        dir[0] = 0;
    RefPair *p = calloc(256, sizeof *p);
    int n = 0;
    while (fgets(line, sizeof line, f) && n < 256) {
        line[strcspn(line, "\r\n")] = 0;
        if (!line[0] || line[0] == '#') continue;
        char *a = strtok(line, "\t"), *b = strtok(NULL, "\t"), *c = strtok(NULL, "\t");
        char buf[8192];
        snprintf(buf, sizeof buf, a[0] == '/' || !dir[0] ? "%s%s" : "%s/%s", a[0] == '/' ? "" : dir,
                 a);
        p[n].start = strdup(buf);
        snprintf(buf, sizeof buf, b[0] == '/' || !dir[0] ? "%s%s" : "%s/%s", b[0] == '/' ? "" : dir,
                 b);
        p[n].end = strdup(buf);
        p[n].prompt = strdup(c ? c : "");
        p[n].sf = p[n].ef = -1;
        n++;
    }
    fclose(f);
    *out = p;
    return n;
}

static void encode(const ClipVision *m, Arena *ws, const char *png, float *emb) {
    Image img = {0};
    if (image_read_png(png, &img, g_err, sizeof g_err)) die(png);
    const int S = m->cfg.image_size, D = m->cfg.projection_dim;
    ClipImageProcessor proc;
    clip_image_processor_default(&proc, S);
    float *pix = malloc(sizeof(float) * 3 * S * S);
    Tensor px = tensor_view(pix, DT_F32, DEV_CPU, 4, SHAPE(1, 3, S, S));
    if (clip_preprocess_image(&proc, &img, &px, 0, g_err, sizeof g_err)) die("preprocess");
    Tensor out = tensor_view(emb, DT_F32, DEV_CPU, 2, SHAPE(1, D));
    ClipVisionOutputs o = {&out, NULL, NULL, NULL, 0};
    if (clip_vision_forward(m, &px, ws, &o, g_err, sizeof g_err)) die("encode");
    free(pix);
    image_free(&img);
}

static int check(const char *store, const char *encoder, const char *ckpt, const char *kind,
                 const char *src) {
    RefPair *ref = NULL;
    int n = !strcmp(kind, "story") ? ref_story(src, &ref) : ref_pairs(src, &ref);
    ClipVisionConfig vc;
    if (clip_vision_config(&vc, encoder, g_err, sizeof g_err)) die("encoder config");
    Arena wa, ws;
    arena_init(&wa, DEV_CPU, clip_vision_weight_bytes(&vc, DT_F32));
    arena_init(&ws, DEV_CPU, clip_vision_scratch_bytes(&vc, DT_F32, 1));
    ClipVision enc;
    if (clip_vision_load(&enc, encoder, &wa, DT_F32, g_err, sizeof g_err)) die("encoder");
    SmpConfig sc;
    SmpModel m;
    if (smp_checkpoint_config(ckpt, &sc, g_err, sizeof g_err) ||
        smp_init(&m, &sc, 1, g_err, sizeof g_err) ||
        smp_checkpoint_load(ckpt, &m, NULL, NULL, NULL, g_err, sizeof g_err))
        die("predictor");
    const int L = sc.frames, D = sc.embed_dim;
    char sha[65];
    if (file_sha256(ckpt, sha, NULL, g_err, sizeof g_err)) die("sha");

    TransitionsStore *s;
    TransitionsExpect want = {L, D, sha};
    int rc = transitions_store_open(store, &want, &s, g_err, sizeof g_err);
    CHECK(rc == 0, "open %s: %s", store, g_err);
    if (rc) return 1;
    const TransitionsInfo *in = transitions_store_info(s);
    CHECK(in->n_pairs == n, "n_pairs %" PRId64 ", expected %d", in->n_pairs, n);
    CHECK(in->L == L && in->D == D, "L %d D %d, expected %d %d", in->L, in->D, L, D);
    CHECK(!strcmp(in->predictor_path, ckpt), "predictor_path %s", in->predictor_path);
    CHECK(!strcmp(in->encoder_id, encoder), "encoder_id %s", in->encoder_id);
    CHECK(!strcmp(in->source_kind, kind) && !strcmp(in->source, src), "source %s %s",
          in->source_kind, in->source);
    CHECK(in->predictor.layers == sc.layers && in->predictor.width == sc.width &&
              in->predictor.heads == sc.heads && in->predictor.ln_eps == sc.ln_eps,
          "predictor config differs");
    float *P = malloc(sizeof(float) * L * D), *ks = malloc(sizeof(float) * D),
          *ke = malloc(sizeof(float) * D), *rs = malloc(sizeof(float) * D),
          *re = malloc(sizeof(float) * D);
    for (int i = 0; i < n && i < in->n_pairs; i++) {
        TransitionsPairMeta meta;
        rc = transitions_store_read_pair(s, i, P, ks, ke, &meta, g_err, sizeof g_err);
        CHECK(rc == 0, "read pair %d: %s", i, g_err);
        if (rc) continue;
        CHECK(!strcmp(meta.start_path, ref[i].start) && !strcmp(meta.end_path, ref[i].end),
              "pair %d paths %s %s, expected %s %s", i, meta.start_path, meta.end_path,
              ref[i].start, ref[i].end);
        CHECK(meta.start_frame == ref[i].sf && meta.end_frame == ref[i].ef,
              "pair %d frames %" PRId64 " %" PRId64, i, meta.start_frame, meta.end_frame);
        CHECK(!strcmp(meta.prompt, ref[i].prompt), "pair %d prompt '%s', expected '%s'", i,
              meta.prompt, ref[i].prompt);
        encode(&enc, &ws, ref[i].start, rs);
        encode(&enc, &ws, ref[i].end, re);
        CHECK(!memcmp(rs, ks, sizeof(float) * D), "pair %d: start_embed differs", i);
        CHECK(!memcmp(re, ke, sizeof(float) * D), "pair %d: end_embed differs", i);
        smp_forward(&m, rs, re, NULL, 1, L);
        int diff = 0;
        for (int k = 0; k < L * D; k++) diff += memcmp(&m.out[k], &P[k], sizeof(float)) != 0;
        CHECK(diff == 0, "pair %d: %d of %d values of P differ (first %g vs %g)", i, diff, L * D,
              (double)m.out[0], (double)P[0]);
        // Not a trivial path: the ends differ, and P is not constant over the frames.
        float spread = 0;
        for (int k = 0; k < D; k++) spread += fabsf(P[k] - P[(size_t)(L - 1) * D + k]);
        CHECK(spread > 0, "pair %d: P_1 == P_L", i);
    }
    transitions_store_close(s);
    free(P), free(ks), free(ke), free(rs), free(re);
    for (int i = 0; i < n; i++) free(ref[i].start), free(ref[i].end), free(ref[i].prompt);
    free(ref);
    smp_free(&m);
    clip_vision_free(&enc);
    arena_free(&wa);
    arena_free(&ws);
    printf("checked %d pair(s) of %s bitwise\n", n, store);
    return 0;
}

// ---- reader refusals ------------------------------------------------------------------------

static void copy_file(const char *from, const char *to, long keep) {
    FILE *a = fopen(from, "rb"), *b = fopen(to, "wb");
    if (!a || !b) die(to);
    char buf[65536];
    size_t n;
    long total = 0;
    while ((n = fread(buf, 1, sizeof buf, a)) > 0) {
        if (keep >= 0 && total + (long)n > keep) n = (size_t)(keep - total);
        fwrite(buf, 1, n, b);
        total += (long)n;
        if (keep >= 0 && total >= keep) break;
    }
    fclose(a);
    fclose(b);
}

typedef enum { M_NONE, M_DEL_KIND, M_D8, M_NAN, M_DEL_PROMPT, M_FORMAT2, M_SHA } Mutation;

static void mutate(const char *path, Mutation what) {
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    if (f < 0) die(path);
    int64_t v;
    switch (what) {
    case M_DEL_KIND: H5Adelete(f, "kind"); break;
    case M_D8:
        v = 8;
        H5Adelete(f, "D");
        H5Adelete(f, "predictor_embed_dim");
        {
            hid_t sp = H5Screate(H5S_SCALAR);
            hid_t a = H5Acreate2(f, "D", H5T_STD_I64LE, sp, H5P_DEFAULT, H5P_DEFAULT);
            H5Awrite(a, H5T_NATIVE_INT64, &v);
            H5Aclose(a);
            a = H5Acreate2(f, "predictor_embed_dim", H5T_STD_I64LE, sp, H5P_DEFAULT, H5P_DEFAULT);
            H5Awrite(a, H5T_NATIVE_INT64, &v);
            H5Aclose(a);
            H5Sclose(sp);
        }
        break;
    case M_NAN: {
        hid_t d = H5Dopen2(f, "pairs", H5P_DEFAULT);
        hid_t fs = H5Dget_space(d);
        hsize_t at[3] = {1, 2, 3}, one = 1;
        H5Sselect_elements(fs, H5S_SELECT_SET, 1, at);
        hid_t ms = H5Screate_simple(1, &one, NULL);
        float nan = NAN;
        H5Dwrite(d, H5T_NATIVE_FLOAT, ms, fs, H5P_DEFAULT, &nan);
        H5Sclose(ms), H5Sclose(fs), H5Dclose(d);
        break;
    }
    case M_DEL_PROMPT: H5Ldelete(f, "pair_meta/prompt", H5P_DEFAULT); break;
    case M_FORMAT2: {
        v = 2;
        hid_t a = H5Aopen(f, "format_version", H5P_DEFAULT);
        H5Awrite(a, H5T_NATIVE_INT64, &v);
        H5Aclose(a);
        break;
    }
    default: break;
    }
    H5Fclose(f);
}

// Opens path (and reads pair 1): expects a refusal whose message holds path and `want`.
static void refused(const char *path, const TransitionsExpect *ex, const char *want) {
    TransitionsStore *s = NULL;
    int rc = transitions_store_open(path, ex, &s, g_err, sizeof g_err);
    if (rc == 0) {
        float *P = malloc(sizeof(float) * 4096 * 16);
        rc = transitions_store_read_pair(s, 1, P, NULL, NULL, NULL, g_err, sizeof g_err);
        free(P);
        transitions_store_close(s);
    }
    CHECK(rc != 0, "%s: accepted; expected a refusal with '%s'", path, want);
    CHECK(strstr(g_err, path) && strstr(g_err, want), "%s: message '%s' lacks '%s'", path, g_err,
          want);
    printf("refused %s: %s\n", path, g_err);
}

static int reader(const char *good, const char *dir) {
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    struct stat st0, st1;
    stat(good, &st0);
    char p[4096];
    TransitionsStore *s;
    CHECK(transitions_store_open(good, NULL, &s, g_err, sizeof g_err) == 0, "good: %s", g_err);
    if (s) transitions_store_close(s);

    snprintf(p, sizeof p, "%s/missing.h5", dir);
    remove(p);
    refused(p, NULL, "cannot read the transitions store");
    snprintf(p, sizeof p, "%s/text.h5", dir);
    FILE *f = fopen(p, "w");
    fputs("not a store\n", f);
    fclose(f);
    refused(p, NULL, "not an HDF5 file");
    snprintf(p, sizeof p, "%s/cut.h5", dir);
    copy_file(good, p, (long)st0.st_size / 2);
    refused(p, NULL, "HDF5 cannot open it");

    const struct {
        const char *name;
        Mutation m;
        const char *want;
    } cases[] = {
        {"nokind", M_DEL_KIND, "not a transitions store"},
        {"d8", M_D8, "dataset pairs has shape [6, 8, 16]; expected [6, 8, 8]"},
        {"nan", M_NAN, "pair 1: pairs holds a non-finite value"},
        {"noprompt", M_DEL_PROMPT, "dataset pair_meta/prompt is missing"},
        {"format2", M_FORMAT2, "format_version 2; this storyrun reads format 1"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        snprintf(p, sizeof p, "%s/%s.h5", dir, cases[i].name);
        copy_file(good, p, -1);
        mutate(p, cases[i].m);
        refused(p, NULL, cases[i].want);
    }
    TransitionsExpect ex = {0, 32, NULL};
    refused(good, &ex, "D (the embedding width) is 16 in the store but 32 is needed");
    TransitionsExpect ex2 = {0, 0,
                             "0000000000000000000000000000000000000000000000000000000000000000"};
    refused(good, &ex2, "it was made with predictor sha256");
    stat(good, &st1);
    CHECK(st0.st_size == st1.st_size && st0.st_mtime == st1.st_mtime, "the good store changed");
    return 0;
}

int main(int argc, char **argv) {
    const char *name = argc > 1 ? argv[1] : "";
    if (!strcmp(name, "ckpt") && argc == 6)
        return make_ckpt(argv[2], atoi(argv[3]), atoi(argv[4]), atoi(argv[5]));
    if (!strcmp(name, "check") && argc == 7)
        check(argv[2], argv[3], argv[4], argv[5], argv[6]);
    else if (!strcmp(name, "reader") && argc == 4)
        reader(argv[2], argv[3]);
    else {
        fprintf(
            stderr,
            "usage: test_predict ckpt OUT SEED D L | check STORE ENCODER CKPT story|pairs SRC | "
            "reader STORE DIR\n");
        return 2;
    }
    printf("predict %s: %d checks, %d failure(s)\n", name, checks, failures);
    return failures ? 1 : 0;
}

// tests/clip/test_clip_golden.c: the CLIP text encoders and the prompt conditioning against
// transformers / diffusers (tests/golden/make_text_golden.py wrote golden.safetensors from
// the tiny models of tests/golden/models).
//
//   test_clip_golden GOLDEN_DIR SD15 SDXL              CPU, f32, against the goldens
//   test_clip_golden --layouts SD15_A SD15_B SDXL_A SDXL_B
//                                                      the same model in two layouts gives
//                                                      bit-identical conditioning
//   test_clip_golden --cuda GOLDEN_DIR SD15 SDXL       CUDA, f16 and bf16, against the same
//                                                      goldens (exit 77 without a device)
// SD15 / SDXL: a diffusers folder or a single-file checkpoint.
//
// Tolerance, CPU f32: max abs error <= 1e-4 on every value. Both sides compute in f32 with
// the same formulas; they differ only in summation order and in exp/erf approximations
// (relative error ~2e-7), which over 2 layers of width <= 37 and values of magnitude <= 4
// stays near 1e-6. A real defect (a wrong mask, row, norm or activation) moves values by
// 1e-2 and more. Token ids must be identical; time ids exact.
// Tolerance, CUDA: max abs error <= TOL * max(1, max |reference|) with TOL 2e-2 for f16
// (10-bit mantissa; errors grow through the residual stream) and 1e-1 for bf16 (7-bit).
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cuda_runtime_api.h"
#include "kernels/ops.h"
#include "models/clip_text.h"
#include "models/conditioning.h"
#include "models/safetensors.h"
#include "models/weights.h"
#include "runner/json.h"

#define TOL_F32 1e-4

static int g_checks, g_fail;
static SafeTensors g_st;
static char g_err[2048];

static void die(const char *what, const char *msg) {
    fprintf(stderr, "test_clip_golden: %s: %s\n", what, msg);
    exit(1);
}

// A golden tensor as f32 (ids converted too); *n gets its element count.
static float *golden(const char *name, int64_t *n) {
    const SafeTensorsEntry *e = st_find(&g_st, name);
    if (!e) die(name, "not in golden.safetensors (rerun tests/golden/make_text_golden.py)");
    float *v = malloc((size_t)e->numel * sizeof *v);
    if (!v || st_load_f32(e, v)) die(name, "cannot read");
    if (n) *n = e->numel;
    return v;
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
    for (int64_t i = 0; i < n; i++) {
        if (t->dtype == DT_F32)
            f[i] = ((float *)raw)[i];
        else if (t->dtype == DT_F16)
            f[i] = f16_to_f32(((uint16_t *)raw)[i]);
        else
            f[i] = bf16_to_f32(((uint16_t *)raw)[i]);
    }
    free(raw);
    return f;
}

// max |got - want| <= tol * scale, where scale is 1 or (relative) max(1, max |want|).
static void compare(const char *what, const float *got, const float *want, int64_t n, double tol,
                    int relative) {
    double err = 0, mx = 0;
    int64_t at = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - want[i]);
        if (!(d <= err)) err = d, at = i;  // NaN counts as the worst
        if (fabs(want[i]) > mx) mx = fabs(want[i]);
    }
    double lim = tol * (relative && mx > 1 ? mx : 1);
    g_checks++;
    int ok = err <= lim;
    if (!ok) g_fail++;
    printf("  %-4s %-44s max abs err %.3g (limit %.3g, max |ref| %.3g)\n", ok ? "ok" : "FAIL", what,
           err, lim, mx);
    if (!ok) printf("       first worst at %lld: got %.7g want %.7g\n", (long long)at, got[at], want[at]);
}

static void compare_tensor(const char *what, const Tensor *t, const char *gname, double tol, int rel) {
    int64_t n;
    float *want = golden(gname, &n);
    if (tensor_numel(t) != n) {
        printf("  FAIL %s: %lld values, golden %s has %lld\n", what, (long long)tensor_numel(t), gname,
               (long long)n);
        g_fail++, g_checks++;
    } else {
        float *got = to_host(t);
        compare(what, got, want, n, tol, rel);
        free(got);
    }
    free(want);
}

// ---- metadata -----------------------------------------------------------------------------

static JsonDoc *meta_json(const char *key) {
    const char *text = st_meta(&g_st, key);
    if (!text) die(key, "missing from golden.safetensors' metadata");
    JsonError je;
    JsonDoc *d = json_parse(key, text, strlen(text), NULL, &je);
    if (!d) die(key, je.msg);
    return d;
}

// A JSON array of strings (or null) as a NULL-terminated C array (strings owned by the doc).
static const char **strings(const JsonValue *v) {
    if (!v || v->type == JSON_NULL) return NULL;
    const char **s = calloc(json_count(v) + 1, sizeof *s);
    for (size_t i = 0; i < json_count(v); i++) s[i] = json_at(v, i)->str;
    return s;
}

static int json_int(const JsonValue *obj, const char *key, int def) {
    const JsonValue *v = json_get(obj, key);
    return v && v->type == JSON_NUMBER ? (int)v->d : def;
}

static void json_pair(const JsonValue *obj, const char *key, int out[2]) {
    const JsonValue *v = json_get(obj, key);
    if (v && json_count(v) == 2) out[0] = (int)json_at(v, 0)->d, out[1] = (int)json_at(v, 1)->d;
}

// ---- setup --------------------------------------------------------------------------------

typedef struct {
    Weights *w;
    Conditioner c;
    Arena weights, ws, out;
} Model;

static void model_open(Model *m, const char *path, Device dev, DType dt) {
    memset(m, 0, sizeof *m);
    if (weights_open(&m->w, path, g_err, sizeof g_err)) die(path, g_err);
    size_t wb;
    if (cond_weight_bytes(m->w, dt, &wb, g_err, sizeof g_err)) die(path, g_err);
    if (arena_init(&m->weights, dev, wb)) die(path, "no memory for the weights");
    if (cond_load(&m->c, m->w, &m->weights, dt, g_err, sizeof g_err)) die(path, g_err);
    if (m->weights.used > wb) die(path, "clip_text_weight_bytes is too small");
    const int B = 8;  // the largest batch of this test (7 prompts, 4 eos rows, 2x2 cases)
    size_t sb = cond_scratch_bytes(&m->c, B) + 2 * cond_output_bytes(&m->c, B, 1);
    if (arena_init(&m->ws, dev, sb) || arena_init(&m->out, dev, 2 * cond_output_bytes(&m->c, B, 1)))
        die(path, "no memory for activations");
}

static void model_close(Model *m) {
    cond_free(&m->c);
    arena_free(&m->weights);
    arena_free(&m->ws);
    arena_free(&m->out);
    weights_close(m->w);
}

// ---- encoders -----------------------------------------------------------------------------

// Golden prompts through encoder e of m; tag names the golden tensors ("sd15_te").
static void check_encoder(Model *m, int e, const char *tag, double tol, int rel) {
    JsonDoc *pd = meta_json("prompts");
    const JsonValue *prompts = json_root(pd);
    const int N = (int)json_count(prompts), L = 77;
    const ClipText *enc = &m->c.enc[e];
    const int64_t C = enc->cfg.hidden_size;
    char name[128], what[160];
    printf("%s (%s, %d layers, width %lld):\n", tag, e ? "text_encoder_2" : "text_encoder",
           enc->cfg.num_hidden_layers, (long long)C);

    // token ids: identical to transformers' CLIPTokenizer, and the untruncated lengths
    int *ids = malloc((size_t)N * L * sizeof *ids);
    snprintf(name, sizeof name, "%s.ids", tag);
    float *want_ids = golden(name, NULL);
    snprintf(name, sizeof name, "%s.n_untruncated", tag);
    float *want_n = golden(name, NULL);
    int bad = 0;
    for (int i = 0; i < N; i++) {
        int untr = 0;
        tok_encode(&m->c.tok[e], json_at(prompts, i)->str, ids + i * L, L, &untr);
        for (int j = 0; j < L; j++) bad += ids[i * L + j] != (int)want_ids[i * L + j];
        bad += untr != (int)want_n[i];
    }
    g_checks++;
    if (bad) g_fail++;
    printf("  %-4s %d prompts: token ids and untruncated lengths %s\n", bad ? "FAIL" : "ok", N,
           bad ? "differ" : "identical");
    free(want_ids);
    free(want_n);

    Tensor last = ARENA_TENSOR(&m->out, enc->dtype, N, L, C), hs = last, hs0 = last, pooled, te = {0};
    hs = ARENA_TENSOR(&m->out, enc->dtype, N, L, C);
    hs0 = ARENA_TENSOR(&m->out, enc->dtype, N, L, C);
    pooled = ARENA_TENSOR(&m->out, enc->dtype, N, C);
    if (enc->cfg.projection_dim) te = ARENA_TENSOR(&m->out, enc->dtype, N, enc->cfg.projection_dim);
    ClipTextOutputs o = {.last_hidden_state = &last, .hidden_state = &hs, .hidden_index = -2,
                         .pooled = &pooled, .text_embeds = te.data ? &te : NULL};
    if (clip_text_forward(enc, ids, N, L, &m->ws, &o, g_err, sizeof g_err)) die(tag, g_err);
    ClipTextOutputs o0 = {.hidden_state = &hs0, .hidden_index = 0};  // embeddings alone
    if (clip_text_forward(enc, ids, N, L, &m->ws, &o0, g_err, sizeof g_err)) die(tag, g_err);
    const char *names[] = {"last_hidden_state", "hidden_states_m2", "hidden_states_0", "pooled", "text_embeds"};
    const Tensor *ts[] = {&last, &hs, &hs0, &pooled, &te};
    for (int i = 0; i < 5; i++) {
        if (!ts[i]->data) continue;
        snprintf(name, sizeof name, "%s.%s", tag, names[i]);
        snprintf(what, sizeof what, "%s", names[i]);
        compare_tensor(what, ts[i], name, tol, rel);
    }

    // the comparison must see an error just past the tolerance
    if (enc->dev == DEV_CPU) {
        float *got = to_host(&last);
        snprintf(name, sizeof name, "%s.last_hidden_state", tag);
        int64_t n;
        float *want = golden(name, &n);
        got[n / 3] += (float)(2.5 * tol);
        double worst = 0;
        for (int64_t i = 0; i < n; i++) worst = fmax(worst, fabs((double)got[i] - want[i]));
        g_checks++;
        if (!(worst > tol)) g_fail++;
        printf("  %-4s one value moved by 2.5 x tolerance is detected (max abs err %.3g)\n",
               worst > tol ? "ok" : "FAIL", worst);
        free(got);
        free(want);
    }
    m->out.used = 0;
    free(ids);
    json_free(pd);
}

// Pooling rules on raw ids: legacy argmax (eos_token_id 2) and first position of an id.
static void check_eos(Model *m, double tol, int rel) {
    ClipText enc = m->c.enc[0];  // a copy whose config may change
    int64_t n;
    float *fids = golden("eos.ids", &n);
    const int L = 77, N = (int)(n / L);
    int *ids = malloc((size_t)n * sizeof *ids);
    for (int64_t i = 0; i < n; i++) ids[i] = (int)fids[i];
    const char *eos = st_meta(&g_st, "eos_id");
    printf("pooling rules (%d sequences of raw ids):\n", N);
    Tensor pooled = ARENA_TENSOR(&m->out, enc.dtype, N, enc.cfg.hidden_size);
    ClipTextOutputs o = {.pooled = &pooled};
    for (int rule = 0; rule < 2; rule++) {
        enc.cfg.eos_token_id = rule == 0 ? 2 : atoi(eos);
        if (clip_text_forward(&enc, ids, N, L, &m->ws, &o, g_err, sizeof g_err)) die("eos", g_err);
        compare_tensor(rule == 0 ? "pooled, eos_token_id 2: argmax(ids)" : "pooled, first position of eos_token_id",
                       &pooled, rule == 0 ? "eos.pooled_argmax" : "eos.pooled_first", tol, rel);
    }
    m->out.used = 0;
    free(ids);
    free(fids);
}

// ---- conditioning -------------------------------------------------------------------------

// The lengths cond_encode reports against transformers' (golden <tag>.n_untruncated of
// the same prompt text).
static void check_untruncated(const Model *m, const char *fam, const CondRequest *r, const int *untr) {
    JsonDoc *pd = meta_json("prompts");
    const JsonValue *prompts = json_root(pd);
    int bad = 0, cut = 0;
    for (int e = 0; e < m->c.n_enc; e++) {
        char name[64];
        snprintf(name, sizeof name, "%s.n_untruncated", !strcmp(fam, "sd15") ? "sd15_te" : e ? "sdxl_te2" : "sdxl_te");
        float *want = golden(name, NULL);
        for (int b = 0; b < r->B; b++) {
            const char *text = e && r->prompts_2 ? r->prompts_2[b] : r->prompts[b];
            for (size_t i = 0; i < json_count(prompts); i++)
                if (!strcmp(json_at(prompts, i)->str, text)) {
                    bad += untr[b * m->c.n_enc + e] != (int)want[i];
                    cut += untr[b * m->c.n_enc + e] > 77;
                }
        }
        free(want);
    }
    g_checks++;
    if (bad) g_fail++;
    printf("  %-4s untruncated token counts as transformers' (%d over 77)\n", bad ? "FAIL" : "ok", cut);
    json_free(pd);
}

// Bad requests are errors with a message, not crashes.
static void check_errors(Model *m) {
    printf("errors:\n");
    int ids[77];
    for (int i = 0; i < 77; i++) ids[i] = i == 0 ? 49406 : 49407;
    ids[5] = m->c.enc[0].cfg.vocab_size;
    Tensor pooled = ARENA_TENSOR(&m->out, m->c.enc[0].dtype, 1, m->c.enc[0].cfg.hidden_size);
    ClipTextOutputs o = {.pooled = &pooled};
    struct {
        const char *what, *expect;
        int rc;
    } cases[3];
    g_err[0] = 0;
    cases[0].rc = clip_text_forward(&m->c.enc[0], ids, 1, 77, &m->ws, &o, g_err, sizeof g_err);
    cases[0].what = "an id past the vocabulary", cases[0].expect = "outside the vocabulary";
    char e0[2048];
    snprintf(e0, sizeof e0, "%s", g_err);
    cases[1].rc = clip_text_forward(&m->c.enc[0], ids, 1, 78, &m->ws, &o, g_err, sizeof g_err);
    cases[1].what = "78 tokens", cases[1].expect = "at most 77";
    char e1[2048];
    snprintf(e1, sizeof e1, "%s", g_err);
    const char *p[1] = {"a cat"};
    CondRequest r = {.B = 1, .prompts = p, .do_cfg = 1, .clip_skip = 9};
    CondOutput out;
    cases[2].rc = cond_encode(&m->c, &r, &m->out, &m->ws, &out, g_err, sizeof g_err);
    cases[2].what = "clip_skip 9", cases[2].expect = "clip_skip 9";
    const char *msgs[3] = {e0, e1, g_err};
    for (int i = 0; i < 3; i++) {
        int ok = cases[i].rc == -1 && strstr(msgs[i], cases[i].expect);
        g_checks++;
        if (!ok) g_fail++;
        printf("  %-4s %s: %s\n", ok ? "ok" : "FAIL", cases[i].what, msgs[i]);
    }
    m->out.used = 0;
}

static void request_of(const JsonValue *cs, CondRequest *r, int height, int width) {
    memset(r, 0, sizeof *r);
    r->prompts = strings(json_get(cs, "prompts"));
    r->B = (int)json_count(json_get(cs, "prompts"));
    r->prompts_2 = strings(json_get(cs, "prompts_2"));
    r->negative = strings(json_get(cs, "negative"));
    r->negative_2 = strings(json_get(cs, "negative_2"));
    const JsonValue *g = json_get(cs, "guidance");
    r->do_cfg = !g || g->d > 1.0;  // diffusers: guidance_scale > 1
    r->clip_skip = json_int(cs, "clip_skip", 0);
    r->height = height, r->width = width;
    json_pair(cs, "original_size", r->original_size);
    json_pair(cs, "crops", r->crops_top_left);
    json_pair(cs, "target_size", r->target_size);
    if (json_get(cs, "negative_original_size") && json_get(cs, "negative_target_size")) {
        r->has_negative_sizes = 1;
        json_pair(cs, "negative_original_size", r->negative_original_size);
        json_pair(cs, "negative_crops", r->negative_crops_top_left);
        json_pair(cs, "negative_target_size", r->negative_target_size);
    }
}

static void free_request(CondRequest *r) {
    free((void *)r->prompts);
    free((void *)r->prompts_2);
    free((void *)r->negative);
    free((void *)r->negative_2);
}

// Runs the cases of family `fam` ("sd15", "sdxl"); outs (optional) keeps host copies of
// context and pooled per case for the layout comparison.
static int run_cases(Model *m, const char *fam, double tol, int rel, float **outs, int64_t *outn) {
    char key[64], name[160];
    snprintf(key, sizeof key, "%s_cases", fam);
    JsonDoc *cd = meta_json(key), *sd = meta_json("size");
    const int H = (int)json_at(json_root(sd), 0)->d, W = (int)json_at(json_root(sd), 1)->d;
    const JsonValue *cases = json_root(cd);
    int k = 0;
    int saved_zeros = m->c.force_zeros_for_empty_prompt;
    for (size_t i = 0; i < json_count(cases); i++) {
        const JsonValue *cs = json_at(cases, i);
        const char *cname = json_get(cs, "name")->str;
        CondRequest r;
        request_of(cs, &r, H, W);
        const JsonValue *fz = json_get(cs, "force_zeros");
        m->c.force_zeros_for_empty_prompt = fz ? fz->boolean : saved_zeros;
        int untr[16];
        r.n_untruncated = untr;
        CondOutput o;
        if (cond_encode(&m->c, &r, &m->out, &m->ws, &o, g_err, sizeof g_err)) die(cname, g_err);
        printf("%s case %s (B %d, cfg %d, clip_skip %d):\n", fam, cname, r.B, r.do_cfg, r.clip_skip);
        if (!outs) check_untruncated(m, fam, &r, untr);
        if (!outs) {
            snprintf(name, sizeof name, "%s.%s.context", fam, cname);
            compare_tensor("context (encoder_hidden_states)", &o.context, name, tol, rel);
        } else {
            outs[k] = to_host(&o.context), outn[k++] = tensor_numel(&o.context);
        }
        if (m->c.n_enc == 2) {
            if (!outs) {
                snprintf(name, sizeof name, "%s.%s.text_embeds", fam, cname);
                compare_tensor("pooled (text_embeds)", &o.pooled, name, tol, rel);
                snprintf(name, sizeof name, "%s.%s.time_ids", fam, cname);
                int64_t n;
                float *want = golden(name, &n);
                float *got = malloc((size_t)n * sizeof *got);
                for (int row = 0; row < o.rows; row++) cond_time_ids_row(&o, row, got + row * 6);
                int ok = n == (int64_t)o.rows * 6 && !memcmp(got, want, (size_t)n * sizeof *got);
                g_checks++;
                if (!ok) g_fail++;
                printf("  %-4s time_ids (%d x 6) exact\n", ok ? "ok" : "FAIL", o.rows);
                free(got);
                free(want);
            } else {
                outs[k] = to_host(&o.pooled), outn[k++] = tensor_numel(&o.pooled);
            }
        }
        m->out.used = 0;
        free_request(&r);
    }
    m->c.force_zeros_for_empty_prompt = saved_zeros;
    json_free(cd);
    json_free(sd);
    return k;
}

static void open_golden(const char *dir) {
    char path[4096];
    snprintf(path, sizeof path, "%s/golden.safetensors", dir);
    if (st_open(&g_st, path, g_err, sizeof g_err)) die(path, g_err);
}

static int run_golden(const char *sd15, const char *sdxl, Device dev, DType dt) {
    const double tol = dt == DT_F32 ? TOL_F32 : dt == DT_F16 ? 2e-2 : 1e-1;
    const int rel = dt != DT_F32;
    Model m;
    model_open(&m, sd15, dev, dt);
    g_checks++;
    if (weights_family(m.w) != FAMILY_SD1 || m.c.n_enc != 1) g_fail++, printf("FAIL %s: not SD1.x\n", sd15);
    check_encoder(&m, 0, "sd15_te", tol, rel);
    check_eos(&m, tol, rel);
    if (dev == DEV_CPU) check_errors(&m);
    run_cases(&m, "sd15", tol, rel, NULL, NULL);
    model_close(&m);
    model_open(&m, sdxl, dev, dt);
    g_checks++;
    if (weights_family(m.w) != FAMILY_SDXL || m.c.n_enc != 2 || !m.c.force_zeros_for_empty_prompt)
        g_fail++, printf("FAIL %s: not SDXL with force_zeros_for_empty_prompt\n", sdxl);
    check_encoder(&m, 0, "sdxl_te", tol, rel);
    check_encoder(&m, 1, "sdxl_te2", tol, rel);
    run_cases(&m, "sdxl", tol, rel, NULL, NULL);
    model_close(&m);
    return 0;
}

// Both layouts of each model: every conditioning output bit-identical.
static void run_layouts(const char *a, const char *b, const char *fam) {
    float *oa[32], *ob[32];
    int64_t na[32], nb[32];
    Model m;
    model_open(&m, a, DEV_CPU, DT_F32);
    int ka = run_cases(&m, fam, 0, 0, oa, na);
    model_close(&m);
    model_open(&m, b, DEV_CPU, DT_F32);
    int kb = run_cases(&m, fam, 0, 0, ob, nb);
    model_close(&m);
    int diff = ka != kb;
    for (int i = 0; i < ka && i < kb; i++) {
        diff += na[i] != nb[i] || memcmp(oa[i], ob[i], (size_t)na[i] * sizeof(float));
        free(oa[i]);
        free(ob[i]);
    }
    g_checks++;
    if (diff) g_fail++;
    printf("%s: %d outputs of %s and %s: %s\n", diff ? "FAIL" : "ok", ka, a, b,
           diff ? "differ" : "bit-identical");
}

int main(int argc, char **argv) {
    cpu_set_threads(2);
    const char *mode = "golden";
    if (argc > 1 && !strncmp(argv[1], "--", 2)) mode = argv[1] + 2, argv++, argc--;
    if (!strcmp(mode, "layouts") && argc == 6) {
        open_golden(argv[1]);
        run_layouts(argv[2], argv[3], "sd15");
        run_layouts(argv[4], argv[5], "sdxl");
    } else if (!strcmp(mode, "golden") && argc == 4) {
        open_golden(argv[1]);
        run_golden(argv[2], argv[3], DEV_CPU, DT_F32);
    } else if (!strcmp(mode, "cuda") && argc == 4) {
        if (!cuda_available()) {
            printf("clip_golden cuda: skipped: no CUDA device\n");
            return 77;
        }
        open_golden(argv[1]);
        run_golden(argv[2], argv[3], DEV_CUDA, DT_F16);
        run_golden(argv[2], argv[3], DEV_CUDA, DT_BF16);
    } else {
        fprintf(stderr,
                "usage: test_clip_golden [--cuda] GOLDEN_DIR SD15 SDXL\n"
                "       test_clip_golden --layouts GOLDEN_DIR SD15_A SD15_B SDXL_A SDXL_B\n");
        return 2;
    }
    st_close(&g_st);
    printf("clip_golden %s: %d checks, %d failure(s)\n", mode, g_checks, g_fail);
    return g_fail ? 1 : 0;
}

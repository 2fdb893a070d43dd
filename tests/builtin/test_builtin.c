// tests/builtin/test_builtin.c: the built-in models (models/weights_builtin.c).
//   - every tensor of the tiny models of tests/golden/models (tiny_*.manifest.txt, written
//     by make_tiny_models.py from diffusers' and transformers' own module trees) exists in
//     builtin:tiny-sd15 / builtin:tiny-sdxl with the same shape, and nothing else does
//   - weights_check finds no error; family, layout and configs as expected
//   - values: norms 1 / 0; conv and linear weights within +-1/sqrt(fan_in) with the
//     uniform's mean and standard deviation (bound / sqrt(3)), 5-sigma tolerances
//   - deterministic: two opens load bit-identical tensors, and a fixed tensor's first
//     values are the ones pinned below (the generator must not drift between versions)
//   - the tokenizers load and encode a prompt
// Usage: test_builtin MANIFEST_DIR
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "models/tokenizer.h"
#include "models/weights.h"

#include "tests/common/test_check.h"

static void manifest(const Weights *w, const char *path) {
    FILE *f = fopen(path, "r");
    CHECK(f != NULL, "cannot open %s", path);
    if (!f) return;
    char line[1024];
    int n = 0, per_comp[8] = {0};
    const char *comps[8] = {"unet", "vae", "text_encoder", "text_encoder_2"};
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '#') continue;
        char comp[64], name[512], shape[128], crc[16];
        if (sscanf(line, "%63s %511s %127s %15s", comp, name, shape, crc) != 4) continue;
        n++;
        for (int c = 0; c < 4; c++)
            if (!strcmp(comp, comps[c])) per_comp[c]++;
        WeightInfo info;
        if (weights_find(w, comp, name, &info)) {
            CHECK(0, "%s: %s/%s missing from %s", path, comp, name, weights_path(w));
            continue;
        }
        char got[128] = "";
        size_t o = 0;
        for (int k = 0; k < info.ndim; k++)
            o += (size_t)snprintf(got + o, sizeof got - o, "%s%lld", k ? "x" : "",
                                  (long long)info.shape[k]);
        if (!info.ndim) snprintf(got, sizeof got, "scalar");
        CHECK(!strcmp(got, shape), "%s/%s: shape %s, the tiny model has %s", comp, name, got,
              shape);
    }
    fclose(f);
    for (int c = 0; c < 4; c++)
        CHECK(weights_tensor_count(w, comps[c]) == per_comp[c],
              "%s: %d tensors, the tiny model has %d", comps[c], weights_tensor_count(w, comps[c]),
              per_comp[c]);
    printf("%s: %d tensors of %s match by name and shape\n", weights_path(w), n, path);
}

static float *load(const Weights *w, const char *comp, const char *name, int64_t *numel) {
    WeightInfo info;
    if (weights_find(w, comp, name, &info)) return NULL;
    Arena a;
    int64_t n = 1;
    for (int k = 0; k < info.ndim; k++) n *= info.shape[k];
    arena_init(&a, DEV_CPU, (size_t)n * 4 + 1024);
    Tensor t;
    char err[512];
    int rc = weights_load(w, comp, name, info.ndim, info.shape, &a, DT_F32, &t, err, sizeof err);
    CHECK(!rc, "%s", err);
    float *v = malloc((size_t)n * 4);
    memcpy(v, t.data, (size_t)n * 4);
    arena_free(&a);
    *numel = n;
    return v;
}

// Every tensor of every component: norms exact, others within their bound with the
// uniform's moments.
static void values(const Weights *w) {
    const char *comps[] = {"unet", "vae", "text_encoder", "text_encoder_2"};
    int tensors = 0;
    for (int c = 0; c < 4; c++) {
        for (int i = 0; i < weights_tensor_count(w, comps[c]); i++) {
            WeightInfo info;
            weights_tensor_info(w, comps[c], i, &info);
            int64_t n;
            float *v = load(w, comps[c], info.name, &n);
            if (!v) continue;
            tensors++;
            bool is_norm = strstr(info.name, "norm") && info.ndim == 1;
            bool bias = !strcmp(info.name + strlen(info.name) - 5, ".bias");
            if (is_norm) {
                float want = bias ? 0.0f : 1.0f;
                int bad = 0;
                for (int64_t k = 0; k < n; k++) bad += v[k] != want;
                CHECK(bad == 0, "%s/%s: %d values != %g", comps[c], info.name, bad, want);
            } else if (strstr(info.name, "token_embedding") ||
                       strstr(info.name, "position_embedding")) {
                double b = 0.02 * sqrt(3.0), m = 0, s = 0, mx = 0;
                for (int64_t k = 0; k < n; k++) {
                    m += v[k];
                    s += (double)v[k] * v[k];
                    mx = fmax(mx, fabs(v[k]));
                }
                m /= (double)n;
                s = sqrt(s / (double)n);
                CHECK(
                    mx < b && fabs(m) < 5 * 0.02 / sqrt((double)n) && fabs(s - 0.02) < 0.02 * 0.05,
                    "%s/%s: max %g mean %g std %g (want std 0.02)", comps[c], info.name, mx, m, s);
            } else if (!bias) {  // conv / linear weight: fan_in = numel / out
                double fan = (double)n / (double)info.shape[0], b = 1.0 / sqrt(fan);
                double m = 0, s = 0, mx = 0;
                for (int64_t k = 0; k < n; k++) {
                    m += v[k];
                    s += (double)v[k] * v[k];
                    mx = fmax(mx, fabs(v[k]));
                }
                m /= (double)n;
                s = sqrt(s / (double)n);
                double sd = b / sqrt(3.0);
                // std of the sample second moment of U(-b, b): sd^2 * sqrt(0.8 / n)
                CHECK(mx < b && fabs(m) < 5 * sd / sqrt((double)n) &&
                          fabs(s * s - sd * sd) < 5 * sd * sd * sqrt(0.8 / (double)n) + 1e-12,
                      "%s/%s: max %g (bound %g) mean %g std %g (want %g)", comps[c], info.name, mx,
                      b, m, s, sd);
            } else {
                // bias: bounded by its layer's 1/sqrt(fan_in), which is at most 1
                double mx = 0;
                for (int64_t k = 0; k < n; k++) mx = fmax(mx, fabs(v[k]));
                CHECK(mx < 1.0 && mx > 0, "%s/%s: max %g", comps[c], info.name, mx);
            }
            free(v);
        }
    }
    printf("%s: values of %d tensors as initialized\n", weights_path(w), tensors);
}

static void deterministic(const char *path) {
    Weights *a, *b;
    char err[1024];
    CHECK(!weights_open(&a, path, err, sizeof err), "%s", err);
    CHECK(!weights_open(&b, path, err, sizeof err), "%s", err);
    const char *comps[] = {"unet", "vae", "text_encoder"};
    int differ = 0;
    for (int c = 0; c < 3; c++)
        for (int i = 0; i < weights_tensor_count(a, comps[c]); i++) {
            WeightInfo info;
            weights_tensor_info(a, comps[c], i, &info);
            int64_t n1, n2;
            float *x = load(a, comps[c], info.name, &n1), *y = load(b, comps[c], info.name, &n2);
            differ += n1 != n2 || memcmp(x, y, (size_t)n1 * 4);
            free(x);
            free(y);
        }
    CHECK(differ == 0, "%d tensors differ between two opens of %s", differ, path);
    weights_close(a);
    weights_close(b);
}

// The generator's first values, pinned: a change of the built-in weights must be deliberate
// (goldens and demo outputs made with them would change).
static void pinned(const Weights *w, const float *want, const char *comp, const char *name) {
    int64_t n;
    float *v = load(w, comp, name, &n);
    CHECK(v != NULL, "%s/%s missing", comp, name);
    if (!v) return;
    for (int k = 0; k < 4; k++)
        CHECK(v[k] == want[k], "%s %s/%s[%d] = %.9g, pinned %.9g", weights_path(w), comp, name, k,
              v[k], want[k]);
    if (getenv("BUILTIN_PRINT_PINNED"))
        printf("pinned %s %s/%s: %.9g %.9g %.9g %.9g\n", weights_path(w), comp, name, v[0], v[1],
               v[2], v[3]);
    free(v);
}

static void model(const char *path, const char *manifest_path, ModelFamily family,
                  const float *pin_unet) {
    Weights *w;
    char err[1024];
    int rc = weights_open(&w, path, err, sizeof err);
    CHECK(!rc, "%s", err);
    if (rc) return;
    CHECK(weights_family(w) == family, "%s: family %s", path, family_name(weights_family(w)));
    CHECK(weights_layout(w) == LAYOUT_BUILTIN, "layout %d", weights_layout(w));
    manifest(w, manifest_path);
    WeightsProblem probs[64];
    int np = weights_check(w, probs, 64), errors = 0;
    for (int i = 0; i < np && i < 64; i++)
        if (probs[i].severity != WP_NOTE) {
            errors++;
            fprintf(stderr, "%s: %s\n", path, probs[i].msg);
        }
    CHECK(errors == 0, "%s: %d warnings/errors from weights_check", path, errors);
    values(w);
    pinned(w, pin_unet, "unet", "conv_in.weight");
    const char *toks[] = {"tokenizer", "tokenizer_2"};
    for (int k = 0; k < (family == FAMILY_SDXL ? 2 : 1); k++) {
        Tokenizer tok;
        rc = weights_tokenizer_load(w, toks[k], &tok, err, sizeof err);
        CHECK(!rc, "%s", err);
        if (rc) continue;
        int ids[77], nu;
        tok_encode(&tok, "a photo of a cat", ids, 77, &nu);
        CHECK(nu == 7 && ids[0] == 49406 && ids[1] == 320 && ids[2] == 1125 && ids[5] == 2368 &&
                  ids[6] == 49407,
              "%s %s: 'a photo of a cat' -> %d tokens %d %d %d", path, toks[k], nu, ids[0], ids[1],
              ids[2]);
        tok_free(&tok);
    }
    const JsonValue *sf = json_get(weights_config(w, "vae"), "scaling_factor");
    CHECK(sf && fabs(sf->d - (family == FAMILY_SDXL ? 0.13025 : 0.18215)) < 1e-9, "scaling_factor");
    CHECK(weights_config(w, "scheduler") != NULL, "no scheduler config");
    weights_close(w);
    deterministic(path);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: test_builtin MANIFEST_DIR\n");
        return 2;
    }
    char m15[4096], mxl[4096];
    snprintf(m15, sizeof m15, "%s/tiny_sd15.manifest.txt", argv[1]);
    snprintf(mxl, sizeof mxl, "%s/tiny_sdxl.manifest.txt", argv[1]);
    static const float pin15[4] = {0.0411449671f, 0.0589252934f, 0.101823293f, -0.111583933f};
    static const float pinxl[4] = {0.138716459f, 0.138191342f, 0.0461840257f, 0.0482730083f};
    model("builtin:tiny-sd15", m15, FAMILY_SD1, pin15);
    model("builtin:tiny-sdxl", mxl, FAMILY_SDXL, pinxl);
    Weights *w;
    char err[512];
    CHECK(weights_open(&w, "builtin:tiny-sd3", err, sizeof err) == -1 &&
              strstr(err, "builtin:tiny-sd3") && strstr(err, "builtin:tiny-sd15"),
          "%s", err);
    printf("builtin: %d checks, %d failure(s)\n", checks, failures);
    return failures ? 1 : 0;
}

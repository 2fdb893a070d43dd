// tests/sched/test_rng.c: models/rng.c against torch (tests/golden/make_sched_golden.py
// wrote tests/golden/sched/rng.safetensors) and Philox-4x32-10 against Random123's
// known-answer vectors.
//
//   test_rng torch GOLDEN_DIR     torch.randn for many seeds and sizes, both of torch's
//                                 CPU paths, dtypes float32, float16 and bfloat16,
//                                 sequences from one generator, seeds past 2^32, the
//                                 unseeded generator: every bit must match
//   test_rng philox               Philox KATs, stream addressing, uniform/normal sanity
//
// Tolerance: none. rng_torch_randn must be bit-identical to torch.randn (compared as
// uint32 bit patterns), otherwise a seed would not reproduce a diffusers image.
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "models/rng.h"
#include "models/safetensors.h"
#include "runner/json.h"

static int g_checks, g_fail;
static SafeTensors g_st;

static void die(const char *what, const char *msg) {
    fprintf(stderr, "test_rng: %s: %s\n", what, msg);
    exit(1);
}

// Counts a check; prints the formatted message when it fails.
#define CHECK(ok, ...)           \
    do {                         \
        g_checks++;              \
        if (!(ok)) {             \
            g_fail++;            \
            printf("  FAIL ");   \
            printf(__VA_ARGS__); \
            printf("\n");        \
        }                        \
    } while (0)

static float *golden(const char *name, int64_t *n) {
    const SafeTensorsEntry *e = st_find(&g_st, name);
    if (!e) die(name, "not in rng.safetensors (rerun tests/golden/make_sched_golden.py)");
    float *v = malloc((size_t)e->numel * sizeof *v);
    if (!v || st_load_f32(e, v)) die(name, "cannot read");
    *n = e->numel;
    return v;
}

// Bit-exact comparison of got[off .. off + n) with the golden's values.
static void same_bits(const char *what, const float *got, const float *want, int64_t n) {
    int64_t bad = 0, first = -1;
    for (int64_t i = 0; i < n; i++) {
        uint32_t a, b;
        memcpy(&a, got + i, 4);
        memcpy(&b, want + i, 4);
        if (a != b) {
            if (first < 0) first = i;
            bad++;
        }
    }
    g_checks++;
    if (bad) {
        g_fail++;
        printf("  FAIL %-40s %lld of %lld values differ (first at %lld: %.9g vs %.9g)\n", what,
               (long long)bad, (long long)n, (long long)first, got[first], want[first]);
    }
}

static uint64_t fnv1a64(const void *p, size_t n) {
    const unsigned char *b = p;
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 0x100000001b3ULL;
    return h;
}

static JsonDoc *meta_json(const char *key) {
    const char *text = st_meta(&g_st, key);
    if (!text) die(key, "missing from rng.safetensors' metadata");
    JsonError je;
    JsonDoc *d = json_parse(key, text, strlen(text), NULL, &je);
    if (!d) die(key, je.msg);
    return d;
}

// randn(seed, n, dtype dt) on `path` against the golden `prefix`.<seed>.<n> (whole, or
// head/tail/hash). 16-bit draws are compared widened to f32 (exact).
static void check_randn(const char *prefix, const char *seed_s, int64_t n, RngTorchPath path,
                        DType dt, const JsonValue *hashes) {
    char key[128], what[160];
    snprintf(key, sizeof key, "%s.%s.%lld", prefix, seed_s, (long long)n);
    TorchRng g;
    uint64_t seed = strtoull(seed_s, NULL, 10);
    rng_torch_seed(&g, seed);
    CHECK(rng_torch_initial_seed(&g) == seed, "%s: initial_seed %llu, seeded with %llu", key,
          (unsigned long long)rng_torch_initial_seed(&g), (unsigned long long)seed);
    float *got = malloc((size_t)n * sizeof *got);
    if (dt == DT_F32) {
        rng_torch_randn_path(&g, got, n, path);
    } else {
        uint16_t *h = malloc((size_t)n * sizeof *h);
        rng_torch_randn_half(&g, h, n, dt, path);
        for (int64_t i = 0; i < n; i++)
            got[i] = dt == DT_F16 ? f16_to_f32(h[i]) : bf16_to_f32(h[i]);
        free(h);
    }
    int64_t m;
    if (n <= 1024) {
        float *want = golden(key, &m);
        if (m != n) die(key, "size differs from its name");
        same_bits(key, got, want, n);
        free(want);
    } else {
        snprintf(what, sizeof what, "%s.head", key);
        float *want = golden(what, &m);
        same_bits(what, got, want, m);
        free(want);
        snprintf(what, sizeof what, "%s.tail", key);
        want = golden(what, &m);
        same_bits(what, got + n - m, want, m);
        free(want);
        const JsonValue *h = json_get(hashes, key);
        if (!h || h->type != JSON_STRING) die(key, "no hash in the metadata");
        char mine[17];
        snprintf(mine, sizeof mine, "%016llx", (unsigned long long)fnv1a64(got, (size_t)n * 4));
        g_checks++;
        if (strcmp(mine, h->str)) {
            g_fail++;
            printf("  FAIL %-40s hash of all %lld values %s, torch %s\n", key, (long long)n, mine,
                   h->str);
        }
    }
    free(got);
}

static void run_torch(const char *dir) {
    char path[4096], err[512];
    snprintf(path, sizeof path, "%s/rng.safetensors", dir);
    if (st_open(&g_st, path, err, sizeof err)) die(path, err);
    JsonDoc *doc = meta_json("rng");
    const JsonValue *r = json_root(doc), *hashes = json_get(r, "fnv1a64");
    const JsonValue *seeds = json_get(r, "seeds"), *sizes = json_get(r, "sizes");
    int before = g_checks;
    for (size_t i = 0; i < json_count(seeds); i++)
        for (size_t j = 0; j < json_count(sizes); j++)
            check_randn("randn", json_at(seeds, i)->str, json_at(sizes, j)->i, RNG_TORCH_AVX2,
                        DT_F32, hashes);
    printf("  randn, torch's AVX2 path: %zu seeds x %zu sizes, %d checks\n", json_count(seeds),
           json_count(sizes), g_checks - before);
    seeds = json_get(r, "scalar_seeds"), sizes = json_get(r, "scalar_sizes");
    before = g_checks;
    for (size_t i = 0; i < json_count(seeds); i++)
        for (size_t j = 0; j < json_count(sizes); j++)
            check_randn("randn_scalar", json_at(seeds, i)->str, json_at(sizes, j)->i,
                        RNG_TORCH_SCALAR, DT_F32, hashes);
    printf("  randn, torch's DEFAULT (scalar) path: %d checks\n", g_checks - before);
    // dtype=float16 / bfloat16, both paths
    before = g_checks;
    static const char *const hnames[2] = {"float16", "bfloat16"};
    for (int d = 0; d < 2; d++) {
        char pre[64];
        DType dt = d ? DT_BF16 : DT_F16;
        const JsonValue *hs = json_get(r, "half_seeds"), *hz = json_get(r, "half_sizes");
        snprintf(pre, sizeof pre, "randn16.%s", hnames[d]);
        for (size_t i = 0; i < json_count(hs); i++)
            for (size_t j = 0; j < json_count(hz); j++)
                check_randn(pre, json_at(hs, i)->str, json_at(hz, j)->i, RNG_TORCH_AVX2, dt,
                            hashes);
        snprintf(pre, sizeof pre, "randn16_scalar.%s", hnames[d]);
        for (size_t i = 0; i < json_count(seeds); i++)
            for (size_t j = 0; j < json_count(sizes); j++)
                check_randn(pre, json_at(seeds, i)->str, json_at(sizes, j)->i, RNG_TORCH_SCALAR, dt,
                            hashes);
    }
    printf("  randn, dtype float16 and bfloat16, both paths: %d checks\n", g_checks - before);

    // one generator, several draws in turn (latents, then each step's noise)
    seeds = json_get(r, "seeds");
    const JsonValue *seq = json_get(r, "seq_sizes");
    before = g_checks;
    for (size_t i = 0; i < json_count(seeds); i++) {
        char key[128];
        snprintf(key, sizeof key, "seq.%s", json_at(seeds, i)->str);
        int64_t m;
        float *want = golden(key, &m), *got = malloc((size_t)m * sizeof *got);
        TorchRng g;
        rng_torch_seed(&g, strtoull(json_at(seeds, i)->str, NULL, 10));
        int64_t off = 0;
        for (size_t k = 0; k < json_count(seq); k++) {
            int64_t n = json_at(seq, k)->i;
            if (off + n > m) die(key, "shorter than the sizes");
            rng_torch_randn(&g, got + off, n);
            off += n;
        }
        same_bits(key, got, want, off);
        free(want);
        free(got);
    }
    printf("  sequences of draws from one generator: %d checks\n", g_checks - before);

    // a generator never seeded
    TorchRng g, h2;
    rng_torch_seed(&g, RNG_TORCH_DEFAULT_SEED);
    const JsonValue *ds = json_get(r, "default_seed");
    CHECK(ds && strtoull(ds->str, NULL, 10) == RNG_TORCH_DEFAULT_SEED,
          "torch.Generator()'s default seed %s, storyrun's %llu", ds ? ds->str : "(absent)",
          (unsigned long long)RNG_TORCH_DEFAULT_SEED);
    float got[100];
    rng_torch_randn(&g, got, 100);
    int64_t m;
    float *want = golden("default.100", &m);
    same_bits("default.100", got, want, 100);
    free(want);

    // the tensor forms: f32 draws into a bf16 tensor, f16 draws into an f16 and an f32 tensor
    {
        float *w32 = golden("randn.0.100", &m), *w16 = golden("randn16.float16.0.100", &m);
        uint16_t h[100];
        float f[100];
        Tensor th = tensor_view(h, DT_BF16, DEV_CPU, 1, (const int64_t[]){100});
        rng_torch_seed(&g, 0);
        int rc = rng_torch_randn_tensor(&g, &th);
        int same = !rc;
        for (int i = 0; i < 100; i++) same &= h[i] == f32_to_bf16(w32[i]);
        CHECK(same, "rng_torch_randn_tensor into bf16: not torch.randn(float32).to(bfloat16)");
        th.dtype = DT_F16;
        rng_torch_seed(&g, 0);
        rc = rng_torch_randn_tensor_as(&g, &th, DT_F16);
        Tensor tf = tensor_view(f, DT_F32, DEV_CPU, 1, (const int64_t[]){100});
        rng_torch_seed(&h2, 0);
        rc |= rng_torch_randn_tensor_as(&h2, &tf, DT_F16);
        same = !rc;
        for (int i = 0; i < 100; i++) same &= f16_to_f32(h[i]) == w16[i] && f[i] == w16[i];
        CHECK(same, "rng_torch_randn_tensor_as(float16): not torch.randn(dtype=float16)");
        free(w32);
        free(w16);
    }

    // torch.rand: the uniforms below normal_fill
    rng_torch_seed(&g, 0);
    float u[4];
    rng_torch_rand(&g, u, 4);
    TorchRng h;
    rng_torch_seed(&h, 0);
    for (int i = 0; i < 4; i++)
        CHECK(u[i] == (float)(rng_torch_u32(&h) & 0xffffff) / 16777216.0f, "rand: value %d", i);
    json_free(doc);
    st_close(&g_st);
}

// ---- Philox ------------------------------------------------------------------------------

static void run_philox(void) {
    // Random123's kat_vectors for philox4x32_10 (counter, key -> output)
    static const uint32_t kat[3][10] = {
        {0, 0, 0, 0, 0, 0, 0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8},
        {0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0x408f276d,
         0x41c83b0e, 0xa20bc7c6, 0x6d5451fd},
        {0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344, 0xa4093822, 0x299f31d0, 0xd16cfe09,
         0x94fdcceb, 0x5001e420, 0x24126ea1},
    };
    for (int v = 0; v < 3; v++) {
        uint32_t out[4];
        rng_philox4x32(kat[v], kat[v] + 4, out);
        for (int k = 0; k < 4; k++)
            CHECK(out[k] == kat[v][6 + k], "philox4x32_10 KAT %d: word %d = %08x, expected %08x", v,
                  k, (unsigned)out[k], (unsigned)kat[v][6 + k]);
    }
    // stream addressing: element i is word i % 4 of block i / 4 of (key, stream)
    uint64_t key = 0x0123456789abcdefULL, stream = 0xfedcba9876543210ULL;
    for (uint64_t i = 0; i < 64; i += 5) {
        uint32_t ctr[4] = {(uint32_t)(i / 4), 0, (uint32_t)stream, (uint32_t)(stream >> 32)};
        uint32_t k2[2] = {(uint32_t)key, (uint32_t)(key >> 32)}, out[4];
        rng_philox4x32(ctr, k2, out);
        CHECK(rng_philox_u32(key, stream, i) == out[i % 4], "philox stream: element %llu",
              (unsigned long long)i);
    }
    // normals: the fill equals the single-value form; moments of 1M values
    enum { N = 1 << 20 };
    float *x = malloc(N * sizeof *x);
    rng_philox_normal_fill(key, 7, 3, x, N);
    int same = 1;
    for (int i = 0; i < 4096; i++) same &= x[i] == rng_philox_normal(key, 7, 3 + (uint64_t)i);
    CHECK(same, "philox normal: the fill differs from single values");
    double s1 = 0, s2 = 0, s4 = 0, us = 0;
    for (int i = 0; i < N; i++) {
        s1 += x[i];
        s2 += (double)x[i] * x[i];
        s4 += (double)x[i] * x[i] * x[i] * x[i];
        us += rng_philox_uniform(key, 9, (uint64_t)i);
    }
    double mean = s1 / N, var = s2 / N - mean * mean, kurt = s4 / N, umean = us / N;
    // 5-sigma bounds for N = 2^20: mean 0.0049, variance 0.0069, E[x^4] = 3 +- 0.046
    int ok = fabs(mean) < 0.005 && fabs(var - 1) < 0.007 && fabs(kurt - 3) < 0.05 &&
             fabs(umean - 0.5) < 0.0015;
    g_checks++;
    if (!ok) g_fail++;
    printf("  %s philox moments: mean %.5f var %.5f E[x^4] %.4f uniform mean %.5f\n",
           ok ? "ok  " : "FAIL", mean, var, kurt, umean);
    free(x);
}

int main(int argc, char **argv) {
    if (argc == 3 && !strcmp(argv[1], "torch")) {
        run_torch(argv[2]);
    } else if (argc == 2 && !strcmp(argv[1], "philox")) {
        run_philox();
    } else {
        fprintf(stderr, "usage: test_rng torch GOLDEN_DIR | test_rng philox\n");
        return 2;
    }
    printf("rng %s: %d checks, %d failure(s)\n", argv[1], g_checks, g_fail);
    return g_fail ? 1 : 0;
}

// tests/unit/test_cpu_ops.c: the CPU ops against direct computations.
//   1. the `storyrun selfcheck` comparisons (every op, jobs/selfcheck.c)
//   2. attention edge cases that exercise the tiling: Lq != Lk, several segments with a
//      Bk = 1 one, causal across tile borders, key counts that are not a multiple of the
//      key tile, a single key, wide and odd heads, large logits; the same bits on 1 and 2
//      threads; both implementations (AVX-512 kernels and OpenBLAS tiles)
//   3. in-place use (out == x) of the ops that allow it, and the CPU-only extensions
//      (matmul with b shared by the batch, negative concat dim)
//   4. the vectorised exp against libm over the whole float range
// Tolerances: fp32 results within 2e-5 * max(1, max |ref|) of a double-precision reference.
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jobs/selfcheck.h"
#include "kernels/cpu/cpu_internal.h"
#include "kernels/ops.h"

static int g_failures;

#define EXPECT(cond, ...)                                          \
    do {                                                           \
        if (!(cond)) {                                             \
            g_failures++;                                          \
            printf("FAIL %s:%d: ", __FILE__, __LINE__);            \
            printf(__VA_ARGS__);                                   \
            printf("\n");                                          \
        }                                                          \
    } while (0)

static uint64_t g_seed = 77;

static Tensor rnd(float amp, int ndim, const int64_t *shape) {
    Tensor t = tensor_view(NULL, DT_F32, DEV_CPU, ndim, shape);
    t.data = malloc(tensor_nbytes(&t));
    float *d = t.data;
    for (int64_t i = 0; i < tensor_numel(&t); i++) {
        g_seed = g_seed * 6364136223846793005ull + 1442695040888963407ull;
        d[i] = amp * ((float)(g_seed >> 40) / 8388608.0f - 1.0f);
    }
    return t;
}
#define RND(amp, ...) rnd((amp), NDIM(__VA_ARGS__), SHAPE(__VA_ARGS__))

#define F(t) ((float *)(t).data)

static double max_err(const float *a, const float *b, int64_t n, double *mag) {
    double e = 0, m = 1;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (!(d <= e)) e = d;
        if (fabs(b[i]) > m) m = fabs(b[i]);
    }
    if (mag) *mag = m;
    return e;
}

// ---- attention edge cases ----------------------------------------------------------------------
typedef struct {
    const char *name;
    int64_t B, Lq, heads, D;
    int nsegs;
    int64_t bk[4], lk[4];
    int causal;
    float scale, amp;
} AttnCase;

static void attention_case(const AttnCase *c, const char *path) {
    Tensor q = RND(c->amp, c->B, c->Lq, c->heads * c->D);
    Tensor k[4], v[4];
    KVSegment segs[4];
    for (int s = 0; s < c->nsegs; s++) {
        k[s] = RND(c->amp, c->bk[s], c->lk[s], c->heads * c->D);
        v[s] = RND(1.0f, c->bk[s], c->lk[s], c->heads * c->D);
        segs[s] = (KVSegment){&k[s], &v[s]};
    }
    Tensor out = RND(0.0f, c->B, c->Lq, c->heads * c->D), out1 = out;
    out1.data = malloc(tensor_nbytes(&out));
    float *ref = malloc(tensor_nbytes(&out));
    selfcheck_attention_ref(ref, &q, segs, c->nsegs, (int)c->heads, c->causal, c->scale);

    int nt = cpu_threads();
    cpu_set_threads(2);
    cpu_attention(&out, &q, segs, c->nsegs, (int)c->heads, c->causal, c->scale);
    cpu_set_threads(1);
    cpu_attention(&out1, &q, segs, c->nsegs, (int)c->heads, c->causal, c->scale);
    cpu_set_threads(nt);

    double mag, err = max_err(out.data, ref, tensor_numel(&out), &mag);
    int same = !memcmp(out.data, out1.data, tensor_nbytes(&out));
    printf("attention %-5s %-40s max abs err %.2e  %s\n", path, c->name, err,
           same ? "1 and 2 threads bitwise equal" : "");
    EXPECT(err <= 2e-5 * mag, "attention (%s) %s: max abs err %.3e", path, c->name, err);
    EXPECT(same, "attention (%s) %s: results differ between 1 and 2 threads", path, c->name);
    free(q.data), free(out.data), free(out1.data), free(ref);
    for (int s = 0; s < c->nsegs; s++) free(k[s].data), free(v[s].data);
}

static void test_attention(void) {
    static const AttnCase cases[] = {
        {"Lq != Lk (300 queries, 700 keys)", 2, 300, 2, 16, 1, {2}, {700}, 0, 0.0f, 1.0f},
        {"3 segments, one with Bk=1", 2, 70, 2, 8, 3, {2, 1, 2}, {100, 513, 1}, 0, 0.0f, 1.0f},
        {"4 segments all Bk=1, B=3", 3, 33, 4, 8, 4, {1, 1, 1, 1}, {5, 256, 257, 2}, 0, 0.25f, 1.0f},
        {"causal, 600 tokens (tile borders)", 1, 600, 2, 8, 1, {1}, {600}, 1, 0.0f, 1.0f},
        {"causal, B=2, 77 tokens", 2, 77, 3, 16, 1, {2}, {77}, 1, 0.0f, 1.0f},
        {"causal, one token", 2, 1, 2, 8, 1, {2}, {1}, 1, 0.0f, 1.0f},
        {"Lk = 257 (not a tile multiple)", 1, 40, 2, 40, 1, {1}, {257}, 0, 0.0f, 1.0f},
        {"single key", 2, 65, 2, 8, 1, {2}, {1}, 0, 0.0f, 1.0f},
        {"wide heads (D = 160), 77 keys", 2, 64, 2, 160, 1, {2}, {77}, 0, 0.0f, 1.0f},
        {"large logits (scale 2, |q|,|k| <= 2)", 1, 50, 1, 32, 2, {1, 1}, {300, 40}, 0, 2.0f, 2.0f},
        {"causal, 200 tokens in 128-query items", 2, 200, 8, 8, 1, {2}, {200}, 1, 0.0f, 1.0f},
        {"odd head dim (D = 7), 3 segments", 2, 130, 3, 7, 3, {1, 2, 1}, {3, 260, 70}, 0, 0.0f, 1.0f},
    };
    // Both implementations: the AVX-512 kernels (where the CPU has them) and OpenBLAS tiles.
    for (int blas = 0; blas < 2; blas++) {
        if (!blas && !cpu_attn_avx512_available()) {
            printf("attention avx512: skipped (this build or CPU has no AVX-512 path)\n");
            continue;
        }
        cpu_attention_force_blas = blas;
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) attention_case(&cases[i], blas ? "blas" : "avx512");
    }
    cpu_attention_force_blas = 0;
}

// ---- in-place use --------------------------------------------------------------------------------
static void test_in_place(void) {
    Tensor x = RND(3.0f, 2, 64, 9, 5), g = RND(1.0f, 64), b = RND(1.0f, 64), ref = RND(0.0f, 2, 64, 9, 5);
    size_t nb = tensor_nbytes(&x);
    Tensor y = x;
    y.data = malloc(nb);

    memcpy(y.data, x.data, nb);
    cpu_group_norm(&ref, &x, &g, &b, 32, 1e-5f, 1);
    cpu_group_norm(&y, &y, &g, &b, 32, 1e-5f, 1);
    EXPECT(!memcmp(y.data, ref.data, nb), "group_norm in place differs");

    Tensor x2 = tensor_reshape(&x, 2, SHAPE(2 * 64 * 9, 5)), y2 = tensor_reshape(&y, 2, SHAPE(2 * 64 * 9, 5));
    Tensor r2 = tensor_reshape(&ref, 2, SHAPE(2 * 64 * 9, 5));
    memcpy(y.data, x.data, nb);
    cpu_softmax(&r2, &x2);
    cpu_softmax(&y2, &y2);
    EXPECT(!memcmp(y.data, ref.data, nb), "softmax in place differs");

    memcpy(y.data, x.data, nb);
    cpu_layer_norm(&r2, &x2, NULL, NULL, 1e-5f);
    cpu_layer_norm(&y2, &y2, NULL, NULL, 1e-5f);
    EXPECT(!memcmp(y.data, ref.data, nb), "layer_norm in place differs");

    Tensor bc = RND(1.0f, 2, 64, 1, 1);
    memcpy(y.data, x.data, nb);
    cpu_add(&ref, &x, &bc);
    cpu_add(&y, &y, &bc);
    EXPECT(!memcmp(y.data, ref.data, nb), "add in place differs");

    memcpy(y.data, x.data, nb);
    cpu_silu(&ref, &x);
    cpu_silu(&y, &y);
    EXPECT(!memcmp(y.data, ref.data, nb), "silu in place differs");

    memcpy(y.data, x.data, nb);
    cpu_scale(&ref, &x, 0.5f, 1.0f);
    cpu_scale(&y, &y, 0.5f, 1.0f);
    EXPECT(!memcmp(y.data, ref.data, nb), "scale in place differs");
    printf("in-place group_norm, softmax, layer_norm, add, silu, scale: checked\n");
    free(x.data), free(y.data), free(g.data), free(b.data), free(ref.data), free(bc.data);
}

// ---- CPU extensions beyond ops.h: matmul with b shared by the batch, concat dim -1 ----------
static void test_extensions(void) {
    Tensor a = RND(1.0f, 3, 5, 7), b = RND(1.0f, 1, 7, 4), o = RND(0.0f, 3, 5, 4);
    cpu_matmul(&o, &a, &b, 0, 2.0f);
    double err = 0;
    for (int i = 0; i < 3; i++)
        for (int m = 0; m < 5; m++)
            for (int n = 0; n < 4; n++) {
                double s = 0;
                for (int k = 0; k < 7; k++) s += (double)F(a)[(i * 5 + m) * 7 + k] * F(b)[k * 4 + n];
                err = fmax(err, fabs(2.0 * s - F(o)[(i * 5 + m) * 4 + n]));
            }
    EXPECT(err < 1e-5, "matmul with a shared b: max abs err %.3e", err);
    Tensor c1 = RND(1.0f, 2, 3), c2 = RND(1.0f, 2, 2), co = RND(0.0f, 2, 5);
    cpu_concat(&co, &c1, &c2, -1);
    int ok = 1;
    for (int r = 0; r < 2; r++)
        for (int j = 0; j < 5; j++) ok &= F(co)[r * 5 + j] == (j < 3 ? F(c1)[r * 3 + j] : F(c2)[r * 2 + j - 3]);
    EXPECT(ok, "concat along dim -1 differs");
    printf("matmul with shared b (max abs err %.2e), concat dim -1: checked\n", err);
    free(a.data), free(b.data), free(o.data), free(c1.data), free(c2.data), free(co.data);
}

// ---- exp -------------------------------------------------------------------------------------------
static void test_exp(void) {
    double e1 = 0, e2 = 0;
    for (double x = -87.3; x < 88.7; x += 1.37e-3) {
        float xf = (float)x;
        double r = exp((double)xf), g = cpu_expf(xf);
        if (fabs(g - r) / r > e1) e1 = fabs(g - r) / r;
    }
    for (double x = -126; x < 127; x += 1.37e-3) {
        float xf = (float)x;
        double r = exp2((double)xf), g = cpu_exp2f(xf);
        if (fabs(g - r) / r > e2) e2 = fabs(g - r) / r;
    }
    printf("cpu_expf max rel err %.2e, cpu_exp2f max rel err %.2e\n", e1, e2);
    EXPECT(e1 < 2e-7 && e2 < 2e-7, "exp relative error too large: %.3e %.3e", e1, e2);
    EXPECT(cpu_expf(-INFINITY) == 0.0f && cpu_expf(-100.0f) == 0.0f && cpu_exp2f(-INFINITY) == 0.0f,
           "exp of very negative arguments must be 0");
    EXPECT(isinf(cpu_expf(100.0f)) && isinf(cpu_expf(INFINITY)), "exp overflow must give +inf");
    EXPECT(isfinite(cpu_expf(88.72f)), "exp(88.72) is finite in float");
    EXPECT(cpu_expf(0.0f) == 1.0f && cpu_exp2f(0.0f) == 1.0f, "exp(0) must be exactly 1");
}

int main(void) {
    int failed = selfcheck_cpu(stdout);
    EXPECT(failed == 0, "%d selfcheck comparisons failed", failed);
    test_attention();
    test_in_place();
    test_extensions();
    test_exp();
    if (g_failures) {
        printf("%d FAILED\n", g_failures);
        return 1;
    }
    printf("all passed\n");
    return 0;
}

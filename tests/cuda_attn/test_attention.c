// tests/cuda_attn/test_attention.c: cuda_attention (kernels/cuda/attention.cu) against
// cpu_attention and a naive double-precision reference written here.
//
// Built twice from this file: cuda_emu_attention links the emulated kernels (story_emu:
// device memory is host memory, kernels run on CPU fibers), so it runs everywhere;
// cuda_attention (STORY_TEST_REAL_GPU) links story_cuda and skips without a device.
//
// Inputs are uniform in [-1, 1] (q scaled by 3 so the softmax is peaked, not flat) and
// rounded to the storage dtype before every reference sees them, so only the kernel's
// own error is measured. Outputs are convex combinations of v rows, |out| <= 1, so the
// tolerances are absolute, about twice the worst case of the two roundings the kernel
// adds (P to the storage type, half an ulp relative; the output, half an ulp of < 1):
//   f32  1e-5   fp32 everywhere (exp2f, fp32 sums over <= 300 keys); seen ~3e-7
//   f16  1e-3   2 * 2^-12 = 4.9e-4;                                  seen ~3.5e-4
//   bf16 8e-3   2 * 2^-9  = 3.9e-3;                                  seen ~2.6e-3
// cpu_attention must match the naive reference to 1e-5 (it is the fp32 reference).
// The output buffer starts as all-ones bits (NaN in every dtype): an element the
// kernel forgets to write fails the comparison.
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cuda_runtime_api.h"
#include "kernels/ops.h"
#include "runner/check.h"

#define MAX_SEG 3

typedef struct {
    const char *name;
    int B, Lq, H, D;
    int nseg;
    int lk[MAX_SEG];
    int shared[MAX_SEG];  // 1: this segment's k, v have batch 1 (shared by all items)
    int causal;
    float scale;  // <= 0: 1/sqrt(D)
} Case;

static const Case k_cases[] = {
    {"self D=40", 1, 300, 2, 40, 1, {300}, {0}, 0, 0.0f},
    {"self D=64", 2, 100, 2, 64, 1, {100}, {0}, 0, 0.0f},
    {"self D=80", 1, 70, 2, 80, 1, {70}, {0}, 0, 0.0f},
    {"self D=96", 1, 70, 1, 96, 1, {70}, {0}, 0, 0.0f},
    {"self D=128", 1, 70, 1, 128, 1, {70}, {0}, 0, 0.0f},
    {"self D=160", 1, 70, 2, 160, 1, {70}, {0}, 0, 0.0f},
    {"self D=20 (unaligned rows)", 1, 40, 3, 20, 1, {40}, {0}, 0, 0.0f},
    {"cross 77 keys", 2, 130, 2, 64, 1, {77}, {0}, 0, 0.0f},
    {"3 segments, 2nd Bk=1", 2, 90, 2, 40, 3, {50, 20, 33}, {0, 1, 0}, 0, 0.0f},
    {"causal D=64", 1, 150, 2, 64, 1, {150}, {0}, 1, 0.0f},
    {"causal D=40", 2, 70, 2, 40, 1, {70}, {0}, 1, 0.0f},
    {"Lq=1", 2, 1, 2, 64, 1, {77}, {0}, 0, 0.0f},
    {"Lk=1", 2, 50, 2, 40, 1, {1}, {0}, 0, 0.0f},
    {"Bk=1 only, scale 0.05", 2, 33, 3, 40, 1, {45}, {1}, 0, 0.05f},
};

static const DType k_dtypes[] = {DT_F32, DT_F16, DT_BF16};

static float tolerance(DType dt) { return dt == DT_F32 ? 1e-5f : dt == DT_F16 ? 1e-3f : 8e-3f; }

static uint64_t g_rng = 0x9e3779b97f4a7c15ull;
static float rand_uniform(void) {  // [-1, 1)
    g_rng = g_rng * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((g_rng >> 40) * (1.0 / 8388608.0)) - 1.0f;
}

static float round_to(DType dt, float x) {
    if (dt == DT_F16) return f16_to_f32(f32_to_f16(x));
    if (dt == DT_BF16) return bf16_to_f32(f32_to_bf16(x));
    return x;
}

static float *random_array(size_t n, float mul, DType dt) {
    float *a = mallocCheck(n * sizeof(float));
    for (size_t i = 0; i < n; i++) a[i] = round_to(dt, mul * rand_uniform());
    return a;
}

// Device copy of host floats a (n) in storage type dt.
static void *upload(const float *a, size_t n, DType dt) {
    size_t es = dtype_size(dt);
    unsigned char *h = mallocCheck(n * es);
    for (size_t i = 0; i < n; i++) {
        if (dt == DT_F32)
            memcpy(h + 4 * i, &a[i], 4);
        else {
            uint16_t u = dt == DT_F16 ? f32_to_f16(a[i]) : f32_to_bf16(a[i]);
            memcpy(h + 2 * i, &u, 2);
        }
    }
    void *d = story_cuda_malloc(n * es);
    if (!d) STORY_FATAL("story_cuda_malloc(%zu) failed", n * es);
    story_cuda_memcpy(d, h, n * es, 0);
    free(h);
    return d;
}

static void download(float *a, const void *d, size_t n, DType dt) {
    size_t es = dtype_size(dt);
    unsigned char *h = mallocCheck(n * es);
    story_cuda_memcpy(h, d, n * es, 1);
    for (size_t i = 0; i < n; i++) {
        if (dt == DT_F32)
            memcpy(&a[i], h + 4 * i, 4);
        else {
            uint16_t u;
            memcpy(&u, h + 2 * i, 2);
            a[i] = dt == DT_F16 ? f16_to_f32(u) : bf16_to_f32(u);
        }
    }
    free(h);
}

// Naive attention in double: scores of one query row against every key, softmax, sum.
static void naive_attention(float *out, const float *q, float *const *k, float *const *v,
                            const Case *c) {
    const int C = c->H * c->D;
    int lk_total = 0;
    for (int s = 0; s < c->nseg; s++) lk_total += c->lk[s];
    double *p = mallocCheck((size_t)(lk_total > 0 ? lk_total : 1) * sizeof(double));
    const double scale = c->scale > 0.0f ? c->scale : 1.0 / sqrt((double)c->D);
    for (int b = 0; b < c->B; b++)
        for (int h = 0; h < c->H; h++)
            for (int i = 0; i < c->Lq; i++) {
                const float *qr = q + ((size_t)b * c->Lq + i) * C + h * c->D;
                double mx = -INFINITY;
                int j = 0;
                for (int s = 0; s < c->nseg; s++) {
                    const int kb = c->shared[s] ? 0 : b;
                    for (int t = 0; t < c->lk[s]; t++, j++) {
                        const float *kr = k[s] + ((size_t)kb * c->lk[s] + t) * C + h * c->D;
                        double dot = 0.0;
                        for (int d = 0; d < c->D; d++) dot += (double)qr[d] * kr[d];
                        p[j] = (c->causal && j > i) ? -INFINITY : dot * scale;
                        if (p[j] > mx) mx = p[j];
                    }
                }
                double sum = 0.0;
                for (j = 0; j < lk_total; j++) sum += (p[j] = exp(p[j] - mx));
                float *orow = out + ((size_t)b * c->Lq + i) * C + h * c->D;
                for (int d = 0; d < c->D; d++) {
                    double acc = 0.0;
                    j = 0;
                    for (int s = 0; s < c->nseg; s++) {
                        const int kb = c->shared[s] ? 0 : b;
                        for (int t = 0; t < c->lk[s]; t++, j++)
                            acc += p[j] * v[s][((size_t)kb * c->lk[s] + t) * C + h * c->D + d];
                    }
                    orow[d] = (float)(acc / sum);
                }
            }
    free(p);
}

// Largest |a - b|; NaN anywhere counts as infinitely wrong.
static double max_abs_diff(const float *a, const float *b, size_t n) {
    double worst = 0.0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)a[i] - (double)b[i]);
        if (!(e <= worst)) worst = isnan(e) ? INFINITY : e;
    }
    return worst;
}

static int run_case(const Case *c, DType dt) {
    const int C = c->H * c->D;
    const size_t nq = (size_t)c->B * c->Lq * C;
    float *q = random_array(nq, 3.0f, dt);
    float *k[MAX_SEG], *v[MAX_SEG];
    size_t nk[MAX_SEG];
    for (int s = 0; s < c->nseg; s++) {
        nk[s] = (size_t)(c->shared[s] ? 1 : c->B) * c->lk[s] * C;
        k[s] = random_array(nk[s], 1.0f, dt);
        v[s] = random_array(nk[s], 1.0f, dt);
    }

    float *ref = mallocCheck(nq * sizeof(float));
    naive_attention(ref, q, k, v, c);

    // cpu_attention on the same rounded inputs
    float *cpu_out = mallocCheck(nq * sizeof(float));
    Tensor cq = tensor_view(q, DT_F32, DEV_CPU, 3, SHAPE(c->B, c->Lq, C));
    Tensor co = tensor_view(cpu_out, DT_F32, DEV_CPU, 3, SHAPE(c->B, c->Lq, C));
    Tensor ck[MAX_SEG], cv[MAX_SEG];
    KVSegment cseg[MAX_SEG];
    for (int s = 0; s < c->nseg; s++) {
        const int64_t *shp = SHAPE(c->shared[s] ? 1 : c->B, c->lk[s], C);
        ck[s] = tensor_view(k[s], DT_F32, DEV_CPU, 3, shp);
        cv[s] = tensor_view(v[s], DT_F32, DEV_CPU, 3, shp);
        cseg[s] = (KVSegment){&ck[s], &cv[s]};
    }
    cpu_attention(&co, &cq, cseg, c->nseg, c->H, c->causal, c->scale);

    // the kernel on device copies
    void *dq = upload(q, nq, dt);
    void *dout = story_cuda_malloc(nq * dtype_size(dt));
    if (!dout) STORY_FATAL("story_cuda_malloc failed");
    unsigned char *nan_fill = mallocCheck(nq * dtype_size(dt));
    memset(nan_fill, 0xff, nq * dtype_size(dt));
    story_cuda_memcpy(dout, nan_fill, nq * dtype_size(dt), 0);
    free(nan_fill);
    void *dk[MAX_SEG], *dv[MAX_SEG];
    Tensor gk[MAX_SEG], gv[MAX_SEG];
    KVSegment gseg[MAX_SEG];
    for (int s = 0; s < c->nseg; s++) {
        const int64_t *shp = SHAPE(c->shared[s] ? 1 : c->B, c->lk[s], C);
        dk[s] = upload(k[s], nk[s], dt);
        dv[s] = upload(v[s], nk[s], dt);
        gk[s] = tensor_view(dk[s], dt, DEV_CUDA, 3, shp);
        gv[s] = tensor_view(dv[s], dt, DEV_CUDA, 3, shp);
        gseg[s] = (KVSegment){&gk[s], &gv[s]};
    }
    Tensor gq = tensor_view(dq, dt, DEV_CUDA, 3, SHAPE(c->B, c->Lq, C));
    Tensor go = tensor_view(dout, dt, DEV_CUDA, 3, SHAPE(c->B, c->Lq, C));
    cuda_attention(&go, &gq, gseg, c->nseg, c->H, c->causal, c->scale);
    story_cuda_sync();
    float *got = mallocCheck(nq * sizeof(float));
    download(got, dout, nq, dt);

    const double tol = tolerance(dt);
    const double e_ref = max_abs_diff(got, ref, nq);
    const double e_cpu = max_abs_diff(got, cpu_out, nq);
    const double e_cpu_ref = max_abs_diff(cpu_out, ref, nq);
    const int ok = e_ref <= tol && e_cpu <= tol + 1e-5 && e_cpu_ref <= 1e-5;
    printf(
        "%-4s %-28s B=%d Lq=%-3d H=%d D=%-3d: |cuda-naive| %.2e  |cuda-cpu| %.2e  "
        "|cpu-naive| %.2e  tol %.1e  %s\n",
        dtype_name(dt), c->name, c->B, c->Lq, c->H, c->D, e_ref, e_cpu, e_cpu_ref, tol,
        ok ? "ok" : "FAIL");

    for (int s = 0; s < c->nseg; s++) {
        story_cuda_free(dk[s]);
        story_cuda_free(dv[s]);
        free(k[s]);
        free(v[s]);
    }
    story_cuda_free(dq);
    story_cuda_free(dout);
    free(q);
    free(ref);
    free(cpu_out);
    free(got);
    return ok;
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);  // one line per check, even when piped
#ifdef STORY_TEST_REAL_GPU
    const char *why = NULL;
    if (story_cuda_device_count(&why) < 1) {
        printf("skipped: no CUDA device (%s)\n", why ? why : "unknown");
        return 77;
    }
#endif
    int failed = 0, total = 0;
    for (size_t d = 0; d < sizeof k_dtypes / sizeof k_dtypes[0]; d++)
        for (size_t i = 0; i < sizeof k_cases / sizeof k_cases[0]; i++) {
            total++;
            failed += !run_case(&k_cases[i], k_dtypes[d]);
        }
    printf("%d of %d attention checks passed\n", total - failed, total);
    return failed ? 1 : 0;
}

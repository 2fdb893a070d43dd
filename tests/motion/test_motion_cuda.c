// tests/motion/test_motion_cuda.c: the motion predictor's CUDA kernels
// (kernels/cuda/motion.cu) against its CPU ops (models/motion_ops.c), f32.
// Built twice: test_motion_emu links the emulation runtime (no GPU, runs in CI) and
// test_motion_gpu the real CUDA build (exit 77, skipped, without a device).
//
// Tolerance: max |cuda - cpu| / max |cpu| <= 1e-5 per output. Both compute the same
// formulas in f32 and differ in summation order (block reductions vs serial loops;
// LayerNorm statistics in float vs double on the CPU): ~1e-7 relative.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/test_check.h"
#include "kernels/cuda/motion_kernels.h"
#include "kernels/cuda_runtime_api.h"
#include "kernels/ops.h"
#include "models/motion_ops.h"
#include "models/rng.h"
#include "runner/check.h"

#define TOL 1e-5
#ifndef MOTION_TEST_EMU
#define MOTION_TEST_EMU 0  // 1: the emulation build, which always runs
#endif

static TorchRng g_rng;

static float *host_randn(size_t n, float scale, float shift) {
    float *p = malloc(n * sizeof(float));
    rng_torch_randn(&g_rng, p, (int64_t)n);
    for (size_t i = 0; i < n; i++) p[i] = p[i] * scale + shift;
    return p;
}

static float *to_dev(const float *h, size_t n) {
    float *d = story_cuda_malloc(n * sizeof(float));
    STORY_CHECK(d != NULL, "device allocation of %zu floats", n);
    story_cuda_memcpy(d, h, n * sizeof(float), 0);
    return d;
}

// Copies device d (n) back and compares with the CPU result ref.
static void compare(const char *what, const float *d, const float *ref, size_t n) {
    float *h = malloc(n * sizeof(float));
    story_cuda_sync();
    story_cuda_memcpy(h, d, n * sizeof(float), 1);
    double e = 0.0, m = 0.0;
    for (size_t i = 0; i < n; i++) {
        double diff = fabs((double)h[i] - ref[i]);
        e = isnan(diff) || diff > e ? (isnan(diff) ? INFINITY : diff) : e;
        m = fmax(m, fabs(ref[i]));
    }
    double r = m > 0 ? e / m : e;
    printf("  %-26s %6zu values: max err / max |ref| = %.2e (tolerance %.0e)\n", what, n, r, TOL);
    CHECK(r <= TOL && m > 0, "%s: %.3e", what, r);
    free(h);
}

static void test_layernorm(int N, int C) {
    size_t nc = (size_t)N * C;
    float *x = host_randn(nc, 2.0f, 0.5f), *w = host_randn(C, 0.3f, 1.0f),
          *b = host_randn(C, 0.3f, 0.0f);
    float *dout = host_randn(nc, 1.0f, 0.0f), *dx0 = host_randn(nc, 1.0f, 0.0f);
    float *dw0 = host_randn(C, 1.0f, 0.0f), *db0 = host_randn(C, 1.0f, 0.0f);
    float *out = malloc(nc * 4), *mean = malloc(N * 4), *rstd = malloc(N * 4);
    float *dx = malloc(nc * 4), *dw = malloc(C * 4), *db = malloc(C * 4);
    memcpy(dx, dx0, nc * 4), memcpy(dw, dw0, C * 4), memcpy(db, db0, C * 4);
    smp_layernorm_forward(out, mean, rstd, x, w, b, N, C, 1e-5f);
    smp_layernorm_backward(dx, dw, db, dout, x, w, mean, rstd, N, C);

    float *d_x = to_dev(x, nc), *d_w = to_dev(w, C), *d_b = to_dev(b, C),
          *d_dout = to_dev(dout, nc);
    float *d_out = to_dev(out, nc), *d_mean = to_dev(mean, N), *d_rstd = to_dev(rstd, N);
    float *d_dx = to_dev(dx0, nc), *d_dw = to_dev(dw0, C), *d_db = to_dev(db0, C);
    cuda_smp_layernorm_forward(d_out, d_mean, d_rstd, d_x, d_w, d_b, N, C, 1e-5f);
    printf("layernorm N %d C %d\n", N, C);
    compare("forward out", d_out, out, nc);
    compare("forward rstd", d_rstd, rstd, N);
    // backward from the CPU's statistics, so it is tested on its own
    story_cuda_memcpy(d_mean, mean, N * 4, 0);
    story_cuda_memcpy(d_rstd, rstd, N * 4, 0);
    cuda_smp_layernorm_backward(d_dx, d_dw, d_db, d_dout, d_x, d_w, d_mean, d_rstd, N, C);
    compare("backward dx (accumulated)", d_dx, dx, nc);
    compare("backward dw (accumulated)", d_dw, dw, C);
    compare("backward db (accumulated)", d_db, db, C);
    float *all[] = {d_x, d_w, d_b, d_dout, d_out, d_mean, d_rstd, d_dx, d_dw, d_db};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) story_cuda_free(all[i]);
    float *hall[] = {x, w, b, dout, dx0, dw0, db0, out, mean, rstd, dx, dw, db};
    for (size_t i = 0; i < sizeof hall / sizeof hall[0]; i++) free(hall[i]);
}

static void test_gelu(size_t n) {
    float *x = host_randn(n, 2.5f, 0.0f), *dout = host_randn(n, 1.0f, 0.0f);
    float *out = malloc(n * 4), *dx = malloc(n * 4);
    smp_gelu_forward(out, x, n);
    smp_gelu_backward(dx, dout, x, n);
    float *d_x = to_dev(x, n), *d_dout = to_dev(dout, n), *d_out = to_dev(out, n),
          *d_dx = to_dev(out, n);
    cuda_smp_gelu_forward(d_out, d_x, (int64_t)n);
    cuda_smp_gelu_backward(d_dx, d_dout, d_x, (int64_t)n);
    printf("gelu n %zu\n", n);
    compare("forward", d_out, out, n);
    compare("backward dx", d_dx, dx, n);
    story_cuda_free(d_x), story_cuda_free(d_dout), story_cuda_free(d_out), story_cuda_free(d_dx);
    free(x), free(dout), free(out), free(dx);
}

static void test_attention(int B, int T, int C, int H) {
    size_t nq = (size_t)B * T * 3 * C, no = (size_t)B * T * C, na = (size_t)B * H * T * T;
    float *qkv = host_randn(nq, 1.0f, 0.0f), *dout = host_randn(no, 1.0f, 0.0f);
    float *out = malloc(no * 4), *att = malloc(na * 4), *dqkv = malloc(nq * 4),
          *datt = malloc(na * 4);
    smp_attention_forward(out, att, qkv, B, T, C, H);
    smp_attention_backward(dqkv, datt, dout, qkv, att, B, T, C, H);
    float *d_qkv = to_dev(qkv, nq), *d_dout = to_dev(dout, no), *d_out = to_dev(out, no),
          *d_att = to_dev(att, na);
    float *d_dqkv = to_dev(qkv, nq), *d_datt = to_dev(att, na);  // filled with junk first
    cuda_smp_attention_forward(d_out, d_att, d_qkv, B, T, C, H);
    printf("attention B %d T %d C %d H %d\n", B, T, C, H);
    compare("forward out", d_out, out, no);
    compare("forward att", d_att, att, na);
    story_cuda_memcpy(d_att, att, na * 4, 0);
    cuda_smp_attention_backward(d_dqkv, d_datt, d_dout, d_qkv, d_att, B, T, C, H);
    compare("backward dqkv", d_dqkv, dqkv, nq);
    float *all[] = {d_qkv, d_dout, d_out, d_att, d_dqkv, d_datt};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) story_cuda_free(all[i]);
    free(qkv), free(dout), free(out), free(att), free(dqkv), free(datt);
}

int main(void) {
    const char *why = NULL;
    if (!MOTION_TEST_EMU && story_cuda_device_count(&why) == 0) {
        printf("motion cuda: skipped: no CUDA device (%s)\n", why && *why ? why : "none");
        return 77;
    }
    cpu_set_threads(2);
    rng_torch_seed(&g_rng, 77);
    test_layernorm(37, 100);  // C not a multiple of the block or of 32
    test_layernorm(5, 1024);  // the default width
    test_gelu(1000);
    test_attention(3, 7, 24, 3);
    test_attention(2, 16, 128, 2);  // head dim 64, 16 frames
    printf("motion cuda: %d checks, %d failure(s)\n", checks, failures);
    return failures ? 1 : 0;
}

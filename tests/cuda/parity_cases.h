// tests/cuda/parity_cases.h: parity cases for every hand-written CUDA op, shared by the
// emulated test (cuda_emu_parity: PARITY_OP(x) is cuda_x) and the real-GPU test
// (cuda_gpu_parity: PARITY_OP(x) is op_x, so dispatch is tested too). Each case makes
// seeded random inputs rounded to the storage dtype, runs the CPU reference on them in
// f32 and the CUDA op in that dtype, and compares with the tolerances of parity_util.h.
// Shapes include odd sizes (not multiples of a block or a 16-byte pack), misaligned
// pointers (scalar paths) and in-place calls.
#pragma once
#include <stdarg.h>

#include "kernels/cuda/kernels.h"
#include "parity_util.h"

#ifndef PARITY_OP
#error "define PARITY_OP(name) before including parity_cases.h"
#endif

#define PC_SHAPE(...) NDIM(__VA_ARGS__), SHAPE(__VA_ARGS__)

// "(2, 3, 1, 1)" into buf.
static const char *pc_shape(const Tensor *t, char *buf, size_t n) {
    size_t off = (size_t)snprintf(buf, n, "(");
    for (int i = 0; i < t->ndim && off < n; i++)
        off += (size_t)snprintf(buf + off, n - off, i ? ", %lld" : "%lld", (long long)t->shape[i]);
    if (off < n) snprintf(buf + off, n - off, ")");
    return buf;
}

static const char *pc_label(char *buf, size_t n, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, n, fmt, ap);
    va_end(ap);
    return buf;
}

// ---- unary activations and scale --------------------------------------------------------
enum { PC_SILU, PC_GELU, PC_GELU_TANH, PC_QUICK_GELU, PC_SCALE };
static const char *const pc_unary_names[] = {"silu", "gelu", "gelu_tanh", "quick_gelu", "scale"};

static void pc_unary_call(int op, Tensor *out, const Tensor *x, int dev) {
    switch (op) {
    case PC_SILU: dev ? PARITY_OP(silu)(out, x) : cpu_silu(out, x); break;
    case PC_GELU: dev ? PARITY_OP(gelu)(out, x, 0) : cpu_gelu(out, x, 0); break;
    case PC_GELU_TANH: dev ? PARITY_OP(gelu)(out, x, 1) : cpu_gelu(out, x, 1); break;
    case PC_QUICK_GELU: dev ? PARITY_OP(quick_gelu)(out, x) : cpu_quick_gelu(out, x); break;
    default:
        dev ? PARITY_OP(scale)(out, x, -0.37f, 1.25f) : cpu_scale(out, x, -0.37f, 1.25f);
        break;
    }
}

static void pc_unary(DType dt, PuRng *r, int op, int nd, const int64_t *shape, int misalign,
                     int inplace) {
    char label[128];
    Tensor x = pu_host_rand(nd, shape, r, 0.0f, 2.5f, dt), ref = pu_host(nd, shape);
    pc_unary_call(op, &ref, &x, 0);
    Tensor dx = pu_to_dev(&x, dt, misalign);
    Tensor dout = inplace ? dx : pu_dev_empty(nd, shape, dt, misalign);
    pc_unary_call(op, &dout, &dx, 1);
    pu_compare(pc_label(label, sizeof label, "%s misalign %d%s", pc_unary_names[op], misalign,
                        inplace ? " in-place" : ""),
               &dout, (const float *)ref.data, pu_tol(dt));
}

static void pc_geglu(DType dt, PuRng *r, int nd, const int64_t *xshape, int misalign) {
    int64_t oshape[4];
    memcpy(oshape, xshape, sizeof(int64_t) * nd);
    oshape[nd - 1] /= 2;
    Tensor x = pu_host_rand(nd, xshape, r, 0.0f, 2.0f, dt), ref = pu_host(nd, oshape);
    cpu_geglu(&ref, &x);
    Tensor dx = pu_to_dev(&x, dt, misalign), dout = pu_dev_empty(nd, oshape, dt, misalign);
    PARITY_OP(geglu)(&dout, &dx);
    char label[128];
    pu_compare(pc_label(label, sizeof label, "geglu misalign %d", misalign), &dout,
               (const float *)ref.data, pu_tol(dt));
}

// ---- add / mul / lerp -------------------------------------------------------------------
static void pc_binary(DType dt, PuRng *r, int mul, int na, const int64_t *ashape, int nb,
                      const int64_t *bshape, int misalign) {
    Tensor a = pu_host_rand(na, ashape, r, 0.0f, 1.5f, dt),
           b = pu_host_rand(nb, bshape, r, 0.5f, 1.0f, dt);
    Tensor ref = pu_host(na, ashape);
    mul ? cpu_mul(&ref, &a, &b) : cpu_add(&ref, &a, &b);
    Tensor da = pu_to_dev(&a, dt, misalign), db = pu_to_dev(&b, dt, 0),
           dout = pu_dev_empty(na, ashape, dt, misalign);
    mul ? PARITY_OP(mul)(&dout, &da, &db) : PARITY_OP(add)(&dout, &da, &db);
    char label[128], bd[64];
    pu_compare(pc_label(label, sizeof label, "%s b %s misalign %d", mul ? "mul" : "add",
                        pc_shape(&b, bd, sizeof bd), misalign),
               &dout, (const float *)ref.data, pu_tol(dt));
}

static void pc_lerp(DType dt, PuRng *r, int nd, const int64_t *shape, float t, int misalign) {
    Tensor a = pu_host_rand(nd, shape, r, 0.0f, 1.0f, dt),
           b = pu_host_rand(nd, shape, r, 1.0f, 1.0f, dt);
    Tensor ref = pu_host(nd, shape);
    cpu_lerp(&ref, &a, &b, t);
    Tensor da = pu_to_dev(&a, dt, misalign), db = pu_to_dev(&b, dt, misalign),
           dout = pu_dev_empty(nd, shape, dt, misalign);
    PARITY_OP(lerp)(&dout, &da, &db, t);
    char label[128];
    pu_compare(pc_label(label, sizeof label, "lerp t %.2f misalign %d", (double)t, misalign), &dout,
               (const float *)ref.data, pu_tol(dt));
}

// ---- concat / upsample ------------------------------------------------------------------
static void pc_concat(DType dt, PuRng *r, int nd, const int64_t *ashape, const int64_t *bshape,
                      int dim, int misalign) {
    int64_t oshape[4];
    const int d = dim < 0 ? dim + nd : dim;
    for (int i = 0; i < nd; i++) oshape[i] = i == d ? ashape[i] + bshape[i] : ashape[i];
    Tensor a = pu_host_rand(nd, ashape, r, 0.0f, 1.0f, dt),
           b = pu_host_rand(nd, bshape, r, 0.0f, 1.0f, dt);
    Tensor ref = pu_host(nd, oshape);
    cpu_concat(&ref, &a, &b, dim);
    Tensor da = pu_to_dev(&a, dt, misalign), db = pu_to_dev(&b, dt, 0),
           dout = pu_dev_empty(nd, oshape, dt, 0);
    PARITY_OP(concat)(&dout, &da, &db, dim);
    char label[128];
    pu_compare(pc_label(label, sizeof label, "concat dim %d misalign %d", dim, misalign), &dout,
               (const float *)ref.data, (PuTol){0.0f, 0.0f});  // a copy: exact
}

static void pc_upsample(DType dt, PuRng *r, int64_t N, int64_t C, int64_t H, int64_t W,
                        int misalign) {
    Tensor x = pu_host_rand(PC_SHAPE(N, C, H, W), r, 0.0f, 1.0f, dt),
           ref = pu_host(PC_SHAPE(N, C, 2 * H, 2 * W));
    cpu_upsample_nearest2x(&ref, &x);
    Tensor dx = pu_to_dev(&x, dt, misalign),
           dout = pu_dev_empty(PC_SHAPE(N, C, 2 * H, 2 * W), dt, misalign);
    PARITY_OP(upsample_nearest2x)(&dout, &dx);
    char label[128];
    pu_compare(pc_label(label, sizeof label, "upsample_nearest2x misalign %d", misalign), &dout,
               (const float *)ref.data, (PuTol){0.0f, 0.0f});
}

static void pc_transpose(DType dt, PuRng *r, int64_t B, int64_t M, int64_t N, int misalign) {
    Tensor x = pu_host_rand(PC_SHAPE(B, M, N), r, 0.0f, 1.0f, dt), ref = pu_host(PC_SHAPE(B, N, M));
    cpu_transpose(&ref, &x);
    Tensor dx = pu_to_dev(&x, dt, misalign), dout = pu_dev_empty(PC_SHAPE(B, N, M), dt, misalign);
    PARITY_OP(transpose)(&dout, &dx);
    char label[128];
    pu_compare(pc_label(label, sizeof label, "transpose (%lld, %lld, %lld) misalign %d",
                        (long long)B, (long long)M, (long long)N, misalign),
               &dout, (const float *)ref.data, (PuTol){0.0f, 0.0f});  // a copy: exact
}

// rows of x (xrows, C) picked by n seeded indices (repeats likely when n > xrows); the
// output has leading dims (2, n/2) when n is even, to cover out with leading dims too.
static void pc_gather_rows(DType dt, PuRng *r, int64_t xrows, int64_t C, int64_t n,
                           int misalign) {
    Tensor x = pu_host_rand(PC_SHAPE(2, xrows / 2, C), r, 0.0f, 1.0f, dt);
    const int64_t M = 2 * (xrows / 2);
    int32_t *idx = (int32_t *)mallocCheck((size_t)(n ? n : 1) * sizeof(int32_t));
    for (int64_t i = 0; i < n; i++) idx[i] = (int32_t)(pu_next(r) % (uint64_t)M);
    if (n > 2) idx[n - 1] = idx[0], idx[1] = (int32_t)(M - 1);  // a repeat and the last row
    const int split = n % 2 == 0 && n > 0;
    Tensor ref = split ? pu_host(PC_SHAPE(2, n / 2, C)) : pu_host(PC_SHAPE(n, C));
    cpu_gather_rows(&ref, &x, idx);
    Tensor dx = pu_to_dev(&x, dt, misalign);
    Tensor dout = split ? pu_dev_empty(PC_SHAPE(2, n / 2, C), dt, misalign)
                        : pu_dev_empty(PC_SHAPE(n, C), dt, misalign);
    PARITY_OP(gather_rows)(&dout, &dx, idx);
    char label[128];
    pu_compare(pc_label(label, sizeof label, "gather_rows M %lld C %lld N %lld misalign %d",
                        (long long)M, (long long)C, (long long)n, misalign),
               &dout, (const float *)ref.data, (PuTol){0.0f, 0.0f});  // a copy: exact
    free(idx);
}

// ---- norms and softmax ------------------------------------------------------------------
// gamma/beta: 0 absent, 1 present in x's dtype, 2 present in f32.
static void pc_group_norm(DType dt, PuRng *r, int nd, const int64_t *shape, int groups,
                          int fuse_silu, int params, float mean, int inplace) {
    const int64_t C = shape[1];
    const DType pdt = params == 2 ? DT_F32 : dt;
    Tensor x = pu_host_rand(nd, shape, r, mean, 1.5f, dt), ref = pu_host(nd, shape);
    Tensor g = pu_host_rand(PC_SHAPE(C), r, 1.0f, 0.5f, pdt),
           b = pu_host_rand(PC_SHAPE(C), r, 0.0f, 0.5f, pdt);
    cpu_group_norm(&ref, &x, params ? &g : NULL, params ? &b : NULL, groups, 1e-5f, fuse_silu);
    Tensor dx = pu_to_dev(&x, dt, 0), dg = pu_to_dev(&g, pdt, 0), db = pu_to_dev(&b, pdt, 0);
    Tensor dout = inplace ? dx : pu_dev_empty(nd, shape, dt, 0);
    PARITY_OP(group_norm)
    (&dout, &dx, params ? &dg : NULL, params ? &db : NULL, groups, 1e-5f, fuse_silu);
    char label[128];
    pu_compare(pc_label(label, sizeof label, "group_norm G %d silu %d params %d mean %g%s", groups,
                        fuse_silu, params, (double)mean, inplace ? " in-place" : ""),
               &dout, (const float *)ref.data, pu_tol(dt));
}

static void pc_layer_norm(DType dt, PuRng *r, int nd, const int64_t *shape, int params, float mean,
                          int misalign, int inplace) {
    const int64_t C = shape[nd - 1];
    const DType pdt = params == 2 ? DT_F32 : dt;
    Tensor x = pu_host_rand(nd, shape, r, mean, 2.0f, dt), ref = pu_host(nd, shape);
    Tensor g = pu_host_rand(PC_SHAPE(C), r, 1.0f, 0.5f, pdt),
           b = pu_host_rand(PC_SHAPE(C), r, 0.0f, 0.5f, pdt);
    cpu_layer_norm(&ref, &x, params ? &g : NULL, params ? &b : NULL, 1e-5f);
    Tensor dx = pu_to_dev(&x, dt, misalign), dg = pu_to_dev(&g, pdt, 0), db = pu_to_dev(&b, pdt, 0);
    Tensor dout = inplace ? dx : pu_dev_empty(nd, shape, dt, misalign);
    PARITY_OP(layer_norm)(&dout, &dx, params ? &dg : NULL, params ? &db : NULL, 1e-5f);
    char label[128];
    pu_compare(pc_label(label, sizeof label, "layer_norm params %d mean %g misalign %d%s", params,
                        (double)mean, misalign, inplace ? " in-place" : ""),
               &dout, (const float *)ref.data, pu_tol(dt));
}

static void pc_softmax(DType dt, PuRng *r, int nd, const int64_t *shape, float std, int misalign,
                       int inplace) {
    Tensor x = pu_host_rand(nd, shape, r, 0.0f, std, dt), ref = pu_host(nd, shape);
    cpu_softmax(&ref, &x);
    Tensor dx = pu_to_dev(&x, dt, misalign);
    Tensor dout = inplace ? dx : pu_dev_empty(nd, shape, dt, misalign);
    PARITY_OP(softmax)(&dout, &dx);
    char label[128];
    pu_compare(pc_label(label, sizeof label, "softmax std %g misalign %d%s", (double)std, misalign,
                        inplace ? " in-place" : ""),
               &dout, (const float *)ref.data, pu_tol(dt));
}

// ---- timestep embedding -----------------------------------------------------------------
static void pc_timestep(DType dt, PuRng *r, int64_t N, int64_t dim, int flip, float shift) {
    float *t = (float *)mallocCheck((size_t)N * sizeof(float));
    for (int64_t i = 0; i < N; i++)
        t[i] = i == 0 ? 999.0f : (float)(int)pu_uniform(r, 0.0f, 1000.0f);
    Tensor ref = pu_host(PC_SHAPE(N, dim));
    cpu_timestep_embedding(&ref, t, flip, shift, 10000.0f);
    Tensor dout = pu_dev_empty(PC_SHAPE(N, dim), dt, 0);
    PARITY_OP(timestep_embedding)(&dout, t, flip, shift, 10000.0f);
    // sin/cos of t * f at arguments up to 1e3: one fp32 ulp of the argument (6e-5) is
    // what a 1-ulp difference in exp() or sin() between libraries can move the result.
    PuTol tol = pu_tol(dt);
    if (tol.atol < 1e-4f) tol.atol = 1e-4f;
    char label[128];
    pu_compare(
        pc_label(label, sizeof label, "timestep_embedding flip %d shift %g", flip, (double)shift),
        &dout, (const float *)ref.data, tol);
    free(t);
}

// ---- im2col and bias add (the pieces lib_gemm.cu builds on) -------------------------------
static void pc_im2col(DType dt, PuRng *r, int64_t N, int64_t Ci, int64_t H, int64_t W, int k,
                      int stride, int pad) {
    const int64_t Ho = (H + 2 * pad - k) / stride + 1, Wo = (W + 2 * pad - k) / stride + 1,
                  K = Ci * k * k;
    Tensor x = pu_host_rand(PC_SHAPE(N, Ci, H, W), r, 0.0f, 1.0f, dt),
           ref = pu_host(PC_SHAPE(N, K, Ho * Wo));
    const float *xd = (const float *)x.data;
    float *rd = (float *)ref.data;
    for (int64_t n = 0; n < N; n++)
        for (int64_t row = 0; row < K; row++)
            for (int64_t oy = 0; oy < Ho; oy++)
                for (int64_t ox = 0; ox < Wo; ox++) {
                    const int64_t ci = row / (k * k), ky = row / k % k, kx = row % k;
                    const int64_t iy = oy * stride - pad + ky, ix = ox * stride - pad + kx;
                    const int in = iy >= 0 && iy < H && ix >= 0 && ix < W;
                    rd[(n * K + row) * Ho * Wo + oy * Wo + ox] =
                        in ? xd[((n * Ci + ci) * H + iy) * W + ix] : 0.0f;
                }
    Tensor dx = pu_to_dev(&x, dt, 0), dcol = pu_dev_empty(PC_SHAPE(N, K, Ho * Wo), dt, 0);
    cuda_im2col(&dcol, &dx, k, stride, pad);
    char label[128];
    pu_compare(pc_label(label, sizeof label, "im2col k %d stride %d pad %d", k, stride, pad), &dcol,
               (const float *)ref.data, (PuTol){0.0f, 0.0f});
}

// out (outer, C, inner) += b (C); checked against cpu_add with b shaped (C, 1) or (C).
static void pc_bias_add(DType dt, PuRng *r, int64_t outer, int64_t C, int64_t inner, int misalign) {
    Tensor x = pu_host_rand(PC_SHAPE(outer, C, inner), r, 0.0f, 1.0f, dt),
           ref = pu_host(PC_SHAPE(outer, C, inner));
    Tensor b = pu_host_rand(PC_SHAPE(C, 1), r, 0.0f, 1.0f, dt);
    cpu_add(&ref, &x, &b);
    Tensor dx = pu_to_dev(&x, dt, misalign), db = pu_to_dev(&b, dt, 0);
    cuda_bias_add(&dx, &db, inner);
    char label[128];
    pu_compare(pc_label(label, sizeof label, "bias_add inner %lld misalign %d", (long long)inner,
                        misalign),
               &dx, (const float *)ref.data, pu_tol(dt));
}

// ---- all of the above for one dtype --------------------------------------------------------
static void pc_run_all(DType dt, uint64_t seed) {
    PuRng r = {seed};
    for (int op = PC_SILU; op <= PC_SCALE; op++) {
        pc_unary(dt, &r, op, PC_SHAPE(7), 0, 0);
        pc_unary(dt, &r, op, PC_SHAPE(2, 5, 129), 0, 0);
        pc_unary(dt, &r, op, PC_SHAPE(4, 256), 0, 0);
        pc_unary(dt, &r, op, PC_SHAPE(3, 33), 1, 0);
        pc_unary(dt, &r, op, PC_SHAPE(2, 40), 0, 1);
    }
    pc_geglu(dt, &r, PC_SHAPE(3, 10), 0);
    pc_geglu(dt, &r, PC_SHAPE(4, 32), 0);
    pc_geglu(dt, &r, PC_SHAPE(2, 7, 80), 0);
    pc_geglu(dt, &r, PC_SHAPE(2, 7, 80), 1);

    for (int mul = 0; mul <= 1; mul++) {
        pc_binary(dt, &r, mul, PC_SHAPE(2, 3, 5, 7), PC_SHAPE(2, 3, 5, 7), 0);  // same shape
        pc_binary(dt, &r, mul, PC_SHAPE(4, 64), PC_SHAPE(4, 64), 1);  // same shape, unaligned
        pc_binary(dt, &r, mul, PC_SHAPE(2, 3, 5, 7), PC_SHAPE(3, 1, 1), 0);  // per channel
        pc_binary(dt, &r, mul, PC_SHAPE(2, 16, 4, 4), PC_SHAPE(2, 16, 1, 1),
                  0);                                                     // per (n, c), packed
        pc_binary(dt, &r, mul, PC_SHAPE(2, 3, 5, 7), PC_SHAPE(7), 0);     // per feature
        pc_binary(dt, &r, mul, PC_SHAPE(5, 64), PC_SHAPE(64), 0);         // per feature, packed b
        pc_binary(dt, &r, mul, PC_SHAPE(4, 6), PC_SHAPE(1), 0);           // scalar
        pc_binary(dt, &r, mul, PC_SHAPE(2, 3, 5, 7), PC_SHAPE(5, 1), 0);  // middle dim
        pc_binary(dt, &r, mul, PC_SHAPE(2, 3, 5, 7), PC_SHAPE(3, 1, 7), 0);  // general
        pc_binary(dt, &r, mul, PC_SHAPE(2, 3, 5, 8), PC_SHAPE(2, 1, 5, 1),
                  1);  // general, unaligned
    }
    pc_lerp(dt, &r, PC_SHAPE(5, 7), 0.3f, 0);
    pc_lerp(dt, &r, PC_SHAPE(4, 64), 0.75f, 0);
    pc_lerp(dt, &r, PC_SHAPE(3, 21), 1.0f, 1);

    pc_concat(dt, &r, PC_SHAPE(2, 3, 4, 8), SHAPE(2, 5, 4, 8), 1, 0);
    pc_concat(dt, &r, PC_SHAPE(3, 5), SHAPE(3, 7), -1, 0);
    pc_concat(dt, &r, PC_SHAPE(2, 8), SHAPE(3, 8), 0, 1);
    pc_concat(dt, &r, PC_SHAPE(2, 3, 4, 8), SHAPE(2, 3, 4, 16), 3, 0);
    pc_upsample(dt, &r, 2, 3, 5, 7, 0);
    pc_upsample(dt, &r, 1, 2, 4, 8, 0);
    pc_upsample(dt, &r, 1, 3, 3, 16, 1);
    pc_transpose(dt, &r, 1, 33, 47, 0);  // partial tiles both ways, B = 1
    pc_transpose(dt, &r, 2, 64, 96, 0);  // whole tiles
    pc_transpose(dt, &r, 3, 5, 7, 1);    // less than a tile, unaligned
    pc_transpose(dt, &r, 2, 1, 70, 0);   // a row into a column
    pc_gather_rows(dt, &r, 10, 64, 7, 0);     // 16-byte packs in every dtype, odd N
    pc_gather_rows(dt, &r, 9, 13, 12, 0);     // odd C: 2- or 4-byte words, repeats (N > M)
    pc_gather_rows(dt, &r, 40, 24, 1100, 0);  // N > 512 indices per launch: three launches
    pc_gather_rows(dt, &r, 6, 40, 5, 1);      // unaligned rows
    pc_gather_rows(dt, &r, 4, 8, 0, 0);       // nothing to gather

    pc_group_norm(dt, &r, PC_SHAPE(2, 32, 8, 8), 8, 0, 1, 0.0f, 0);
    pc_group_norm(dt, &r, PC_SHAPE(1, 6, 5, 7), 3, 1, 1, 3.0f, 0);
    pc_group_norm(dt, &r, PC_SHAPE(2, 12, 10), 4, 0, 2, 0.0f, 0);
    pc_group_norm(dt, &r, PC_SHAPE(2, 64, 6, 6), 32, 1, 0, 0.0f, 0);
    pc_group_norm(dt, &r, PC_SHAPE(1, 32, 48, 48), 4, 1, 1, 2.0f, 0);  // 18K per group: split stats
    pc_group_norm(dt, &r, PC_SHAPE(1, 4, 96, 96), 2, 0, 1, 1.0f, 0);   // several blocks per channel
    pc_group_norm(dt, &r, PC_SHAPE(1, 8, 9, 9), 2, 1, 1, 0.0f, 1);
    pc_layer_norm(dt, &r, PC_SHAPE(3, 7), 1, 0.0f, 0, 0);
    pc_layer_norm(dt, &r, PC_SHAPE(2, 5, 320), 1, 4.0f, 0, 0);
    pc_layer_norm(dt, &r, PC_SHAPE(4, 1024), 2, 0.0f, 0, 0);
    pc_layer_norm(dt, &r, PC_SHAPE(3, 72), 0, 0.0f, 1, 0);
    pc_layer_norm(dt, &r, PC_SHAPE(2, 13000), 1, 1.0f, 0,
                  0);  // longer than the shared-memory cache
    pc_layer_norm(dt, &r, PC_SHAPE(5, 48), 1, 0.0f, 0, 1);
    pc_softmax(dt, &r, PC_SHAPE(3, 7), 1.0f, 0, 0);
    pc_softmax(dt, &r, PC_SHAPE(4, 77), 3.0f, 0, 0);
    pc_softmax(dt, &r, PC_SHAPE(2, 3, 1000), 8.0f, 0, 0);
    pc_softmax(dt, &r, PC_SHAPE(2, 13000), 2.0f, 0, 0);
    pc_softmax(dt, &r, PC_SHAPE(3, 64), 1.0f, 1, 0);
    pc_softmax(dt, &r, PC_SHAPE(3, 64), 1.0f, 0, 1);

    pc_timestep(dt, &r, 3, 320, 1, 0.0f);
    pc_timestep(dt, &r, 70, 7, 0, 1.0f);

    pc_im2col(dt, &r, 2, 3, 5, 7, 3, 1, 1);
    pc_im2col(dt, &r, 1, 4, 9, 8, 3, 2, 1);
    pc_im2col(dt, &r, 2, 5, 6, 6, 1, 2, 0);
    pc_im2col(dt, &r, 1, 2, 4, 4, 3, 1, 0);
    pc_im2col(dt, &r, 1, 2, 40, 41, 3, 1, 1);  // several blocks per col row
    pc_bias_add(dt, &r, 2, 5, 9, 0);
    pc_bias_add(dt, &r, 2, 8, 16, 0);
    pc_bias_add(dt, &r, 4, 16, 1, 0);
    pc_bias_add(dt, &r, 3, 24, 1, 1);
    pu_free_all();
}

// tests/motion_cuda/test_motion_cuda_train.c: the motion predictor's device training path
// (models/motion_cuda.c, kernels/cuda/motion_train.cu) against the CPU model.
// Built twice:
//   test_motion_train_emu  (emulation runtime, runs in CI without a GPU)
//     kernels  every hand-written kernel of motion_train.cu against the CPU code it
//              replaces, f32 (tolerances below, per kernel)
//     model    the whole device model on tests/motion/data/main.safetensors with a plain
//              bf16 x bf16 -> f32 product standing in for the cuBLAS call (cuBLAS is not
//              emulated): loss, gradients and 10 AdamW steps vs the CPU model
//   test_motion_train_gpu  (real CUDA build; exit 77 "skipped: no CUDA device" without one)
//     model    the same checks with cuBLAS GemmEx doing the bf16 matmuls
//
// Tolerances of the model checks (bf16 autocast vs f32; bf16 keeps 8 significant bits, a
// relative rounding of 2^-9 = 2e-3 per operand):
//   loss                       relative 1e-2
//   gradients, per tensor      max |g - g_cpu| / max |g_cpu| <= 2e-2 (the key third of
//                              attn.qkv.bias is left out: its true gradient is 0, both sides
//                              hold rounding noise there)
//   10 AdamW steps' losses     relative 5e-2
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/test_check.h"
#include "kernels/cuda/motion_train.h"
#include "kernels/cuda_runtime_api.h"
#include "kernels/ops.h"
#include "kernels/tensor.h"
#include "models/motion_cuda.h"
#include "models/motion_internal.h"
#include "models/motion_predictor.h"
#include "models/rng.h"
#include "models/safetensors.h"
#include "runner/check.h"

#ifndef MOTION_TEST_EMU
#define MOTION_TEST_EMU 0
#endif

static TorchRng g_rng;
static char g_err[4096];

#if MOTION_TEST_EMU
// The emulated device's memory is host memory: the cuBLAS call of lib_motion.cu, done by
// hand with the same operand types (bf16) and f32 accumulation, for the model checks.
void cuda_smp_matmul_bf16(float *out, const uint16_t *a, const uint16_t *b, int M, int N, int K,
                          int trans_a, int trans_b, float beta) {
#pragma omp parallel for schedule(static)
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            float s = 0.0f;
            for (int k = 0; k < K; k++) {
                float x = bf16_to_f32(trans_a ? a[(size_t)k * M + i] : a[(size_t)i * K + k]);
                float y = bf16_to_f32(trans_b ? b[(size_t)j * K + k] : b[(size_t)k * N + j]);
                s += x * y;
            }
            float *o = out + (size_t)i * N + j;
            *o = beta == 0.0f ? s : beta * *o + s;
        }
}
#endif

static void randn(float *p, size_t n, float scale) {
    rng_torch_randn(&g_rng, p, (int64_t)n);
    for (size_t i = 0; i < n; i++) p[i] *= scale;
}

static void *to_dev(const void *h, size_t bytes) {
    void *d = story_cuda_malloc(bytes);
    STORY_CHECK(d != NULL, "device allocation of %zu bytes", bytes);
    story_cuda_memcpy(d, h, bytes, 0);
    return d;
}

static void *from_dev(const void *d, size_t bytes) {
    void *h = malloc(bytes);
    story_cuda_sync();
    story_cuda_memcpy(h, d, bytes, 1);
    return h;
}

// max |a - b| / max |b|
static double rel_max_err(const float *a, const float *b, size_t n) {
    double e = 0.0, mb = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (d > e || isnan(d)) e = isnan(d) ? INFINITY : d;
        if (fabs(b[i]) > mb) mb = fabs(b[i]);
    }
    return mb > 0.0 ? e / mb : e;
}

static double rel(double a, double b) { return fabs(a - b) / fmax(fabs(b), 1e-30); }

// device d (n floats) against ref with a tolerance on max err / max |ref|
static void expect(const char *what, const float *d, const float *ref, size_t n, double tol) {
    float *h = from_dev(d, n * sizeof(float));
    double r = rel_max_err(h, ref, n);
    printf("  %-34s %7zu values: max err / max |ref| %.2e (tolerance %.0e)\n", what, n, r, tol);
    CHECK(r <= tol, "%s: %.3e > %.0e", what, r, tol);
    free(h);
}

// A small model with random weights, for the kernel checks.
static void tiny_model(SmpModel *m, int B) {
    SmpConfig c;
    smp_config_default(&c, 24, 6);
    c.layers = 2, c.width = 32, c.heads = 4, c.endpoint_weight = 0.25f;
    if (smp_init(m, &c, B, g_err, sizeof g_err)) STORY_FATAL("smp_init: %s", g_err);
    smp_init_weights(m, 5);
}

// ---- kernels ----------------------------------------------------------------------------

static void test_kernels(void) {
    SmpModel m;
    int B = 3, T = 6;
    tiny_model(&m, B);
    int N = B * T, C = m.cfg.width, D = m.cfg.embed_dim;
    size_t nc = (size_t)N * C, nd = (size_t)N * D, n = m.num_params;
    float *clips = malloc(nd * sizeof(float));
    randn(clips, nd, 1.0f);
    float loss = smp_forward_clips(&m, clips, B, T);

    printf("interp, loss (B %d T %d D %d, endpoint weight %g)\n", B, T, D, m.cfg.endpoint_weight);
    float *d_clips = to_dev(clips, nd * 4), *d_K = to_dev(clips, nd * 4);
    cuda_smp_interp(d_K, d_clips, B, T, D);
    expect("interp K (vs smp_forward)", d_K, m.K, nd, 1e-6);  // FMA contraction on the GPU
    // the loss kernel on the CPU model's P and target
    float *d_P = to_dev(m.out, nd * 4), *d_dP = to_dev(clips, nd * 4);
    double *d_rows = story_cuda_malloc((size_t)N * sizeof(double));
    double wsum = 2 * m.cfg.endpoint_weight + (T - 2), norm = 2.0 / ((double)B * D * wsum);
    cuda_smp_mse(d_rows, d_dP, d_P, d_clips, N, T, D, m.cfg.endpoint_weight,
                 (float)(norm * m.cfg.endpoint_weight), (float)norm);
    double *rows = from_dev(d_rows, (size_t)N * sizeof(double)), sum = 0.0;
    for (int i = 0; i < N; i++) sum += rows[i];
    float dloss = (float)(sum / ((double)B * D * wsum));
    printf("  loss %.9g, CPU %.9g, rel err %.2e (tolerance 1e-6)\n", dloss, loss, rel(dloss, loss));
    CHECK(rel(dloss, loss) <= 1e-6, "loss %.9g vs %.9g", dloss, loss);
    float *dout = malloc(nd * 4);
    smp_loss_backward(&m, dout);
    expect("loss gradient dP (vs smp_loss_backward)", d_dP, dout, nd, 1e-7);

    printf("adds and their gradients (N %d C %d)\n", N, C);
    float *x = malloc(nc * 4), *y = malloc(nc * 4), *ref = malloc(nc * 4);
    randn(x, nc, 1.0f), randn(y, nc, 1.0f);
    float *d_x = to_dev(x, nc * 4), *d_y = to_dev(y, nc * 4);
    for (int period = 1; period <= T; period += T - 1) {  // a bias, then pos_emb
        const float *v = period == 1 ? m.p.in_b : m.p.pos;
        float *d_v = to_dev(v, (size_t)period * C * 4);
        story_cuda_memcpy(d_x, x, nc * 4, 0);
        cuda_smp_add_rows(d_x, d_v, N, C, period);
        for (size_t i = 0; i < nc; i++) ref[i] = x[i] + v[(i / C % period) * C + i % C];
        expect(period == 1 ? "add_rows (bias)" : "add_rows (pos_emb, period T)", d_x, ref, nc, 0.0);
        // column sums over rows in order, added to what is there (as smp_backward's loops)
        float *acc = malloc((size_t)period * C * 4);
        randn(acc, (size_t)period * C, 1.0f);
        float *d_acc = to_dev(acc, (size_t)period * C * 4);
        cuda_smp_col_sum(d_acc, d_y, N, C, period);
        for (int r = 0; r < period; r++)
            for (int c = 0; c < C; c++) {
                float s = 0.0f;
                for (int i = r; i < N; i += period) s += y[(size_t)i * C + c];
                acc[r * C + c] += s;
            }
        expect(period == 1 ? "col_sum (bias grad)" : "col_sum (pos_emb grad)", d_acc, acc,
               (size_t)period * C, 1e-6);
        story_cuda_free(d_v), story_cuda_free(d_acc), free(acc);
    }
    story_cuda_memcpy(d_x, x, nc * 4, 0);
    cuda_smp_add(d_x, d_y, (int64_t)nc);
    for (size_t i = 0; i < nc; i++) ref[i] = x[i] + y[i];
    expect("add (residual)", d_x, ref, nc, 0.0);

    printf("bf16 cast (round to nearest even)\n");
    float big[7] = {1.0f, 1.00390625f, 1.01171875f, -3.14159265f, 65504.0f, 1e-30f, -0.0f};
    memcpy(x, big, sizeof big);
    story_cuda_memcpy(d_x, x, nc * 4, 0);
    uint16_t *d_h = story_cuda_malloc(nc * 2);
    cuda_smp_to_bf16(d_h, d_x, (int64_t)nc);
    uint16_t *h = from_dev(d_h, nc * 2);
    size_t bad = 0;
    for (size_t i = 0; i < nc; i++) bad += h[i] != f32_to_bf16(x[i]);
    printf("  %zu values, %zu differ from tensor.c's f32_to_bf16 (tolerance 0)\n", nc, bad);
    CHECK(bad == 0, "%zu bf16 casts differ", bad);
    free(h);

    printf("grad norm and clipping, AdamW (%zu parameters)\n", n);
    float *g = malloc(n * 4);
    randn(g, n, 0.1f);
    for (size_t i = 0; i < n; i += 7) g[i] *= 30.0f;  // uneven magnitudes
    SmpAdamWConfig oc;
    smp_adamw_config_default(&oc);
    oc.weight_decay = 0.1;
    SmpAdamW opt;
    smp_adamw_init(&opt, &oc, n);
    float *d_p = to_dev(m.params, n * 4), *d_g = to_dev(g, n * 4);
    float *d_m = to_dev(opt.m, n * 4), *d_v = to_dev(opt.v, n * 4);
    uint16_t *d_pbf = story_cuda_malloc(n * 2);
    size_t nparts = (n + 16383) / 16384;
    double *d_part = story_cuda_malloc(nparts * sizeof(double));
    // small chunks too, so several partial sums are added
    for (int pass = 0; pass < 3; pass++) {
        double lr = 1e-2 * (pass + 1);
        memcpy(m.grads, g, n * 4);
        story_cuda_memcpy(d_g, g, n * 4, 0);
        double cpu = smp_clip_grad_norm(&m, 0.5);
        int64_t chunk = pass == 0 ? 16384 : 1000;
        double *d_parts = pass == 0 ? d_part : story_cuda_malloc(((n + 999) / 1000) * 8);
        size_t np = (n + chunk - 1) / chunk;
        cuda_smp_sumsq(d_parts, d_g, (int64_t)n, chunk);
        double *parts = from_dev(d_parts, np * 8), tot = 0.0;
        for (size_t i = 0; i < np; i++) tot += parts[i];
        double dn = sqrt(tot);
        printf("  pass %d: chunk %lld: norm %.12g, CPU %.12g, rel err %.2e (tolerance 1e-12)\n",
               pass, (long long)chunk, dn, cpu, rel(dn, cpu));
        CHECK(rel(dn, cpu) <= 1e-12, "norm %.15g vs %.15g", dn, cpu);
        cuda_smp_scale(d_g, (float)(0.5 / (dn + 1e-6)), (int64_t)n);
        expect("clipped grads", d_g, m.grads, n, 1e-7);
        free(parts);
        if (pass) story_cuda_free(d_parts);
        // AdamW: the same scalars as smp_adamw_step, one launch per tensor
        smp_adamw_step(&opt, &m, lr);
        double t = (double)opt.step, bc1 = 1.0 - pow(oc.beta1, t), bc2 = 1.0 - pow(oc.beta2, t);
        for (int i = 0; i < m.ntensors; i++) {
            const SmpTensorInfo *info = &m.info[i];
            size_t o = info->offset;
            cuda_smp_adamw(d_p + o, d_pbf + o, d_g + o, d_m + o, d_v + o, (int64_t)info->numel,
                           info->decay ? (float)(1.0 - lr * oc.weight_decay) : 1.0f,
                           (float)(1.0 - oc.beta1), (float)oc.beta2, (float)(1.0 - oc.beta2),
                           (float)(-(lr / bc1)), (float)sqrt(bc2), (float)oc.eps);
        }
        expect("AdamW params", d_p, m.params, n, 1e-6);
        expect("AdamW exp_avg", d_m, opt.m, n, 1e-6);
        expect("AdamW exp_avg_sq", d_v, opt.v, n, 1e-6);
        float *p = from_dev(d_p, n * 4);
        uint16_t *pb = from_dev(d_pbf, n * 2);
        size_t nb = 0;
        for (size_t i = 0; i < n; i++) nb += pb[i] != f32_to_bf16(p[i]);
        CHECK(nb == 0, "%zu bf16 weight copies differ from the f32 weights", nb);
        free(p), free(pb);
        story_cuda_memcpy(d_p, m.params, n * 4, 0);  // each pass starts from the CPU's state
        story_cuda_memcpy(d_m, opt.m, n * 4, 0);
        story_cuda_memcpy(d_v, opt.v, n * 4, 0);
    }
    void *dev[] = {d_clips, d_K, d_P, d_dP, d_rows, d_x,   d_y,
                   d_h,     d_p, d_g, d_m,  d_v,    d_pbf, d_part};
    for (size_t i = 0; i < sizeof dev / sizeof dev[0]; i++) story_cuda_free(dev[i]);
    free(clips), free(rows), free(dout), free(x), free(y), free(ref), free(g);
    smp_adamw_free(&opt);
    smp_free(&m);
}

// ---- the whole model --------------------------------------------------------------------

static double meta_num(const SafeTensors *st, const char *key) {
    const char *v = st_meta(st, key);
    if (!v) STORY_FATAL("%s: no metadata %s", st->path, key);
    return strtod(v, NULL);
}

static void test_model(const char *path) {
    SafeTensors st;
    if (st_open(&st, path, g_err, sizeof g_err)) STORY_FATAL("%s", g_err);
    SmpConfig cfg;
    smp_config_default(&cfg, (int)meta_num(&st, "embed_dim"), (int)meta_num(&st, "frames"));
    cfg.layers = (int)meta_num(&st, "layers"), cfg.width = (int)meta_num(&st, "width");
    cfg.heads = (int)meta_num(&st, "heads"), cfg.mlp_ratio = (int)meta_num(&st, "mlp_ratio");
    cfg.ln_eps = (float)meta_num(&st, "ln_eps");
    cfg.endpoint_weight = (float)meta_num(&st, "endpoint_weight");
    int B = (int)meta_num(&st, "batch"), T = (int)meta_num(&st, "T");
    SmpModel cpu, gm;
    if (smp_init(&cpu, &cfg, B, g_err, sizeof g_err) || smp_init(&gm, &cfg, B, g_err, sizeof g_err))
        STORY_FATAL("smp_init: %s", g_err);
    if (smp_load_weights(&cpu, path, g_err, sizeof g_err) ||
        smp_load_weights(&gm, path, g_err, sizeof g_err))
        STORY_FATAL("smp_load_weights: %s", g_err);
    const SafeTensorsEntry *e = st_find(&st, "batch.clips");
    STORY_CHECK(e && (size_t)e->numel == (size_t)B * T * cfg.embed_dim, "batch.clips");
    float *clips = malloc((size_t)e->numel * sizeof(float));
    if (st_load_f32(e, clips)) STORY_FATAL("batch.clips");
    SmpCuda d;
    if (smp_cuda_init(&d, &gm, g_err, sizeof g_err)) STORY_FATAL("%s", g_err);
    printf("model %s: layers %d width %d heads %d D %d, B %d T %d, %zu parameters\n", path,
           cfg.layers, cfg.width, cfg.heads, cfg.embed_dim, B, T, cpu.num_params);

    smp_zero_grad(&cpu);
    float lc = smp_forward_clips(&cpu, clips, B, T);
    smp_backward(&cpu);
    smp_cuda_zero_grad(&d);
    float ld = smp_cuda_forward_clips(&d, clips, B, T);
    smp_cuda_backward(&d);
    smp_cuda_download(&d, NULL);
    printf("  loss %.7f, CPU %.7f, rel err %.2e (tolerance 1e-2)\n", ld, lc, rel(ld, lc));
    CHECK(rel(ld, lc) <= 1e-2, "loss %.7f vs %.7f", ld, lc);
    printf("  P: max err / max |P_cpu| %.2e (tolerance 1e-2)\n",
           rel_max_err(gm.out, cpu.out, (size_t)B * T * cfg.embed_dim));
    CHECK(rel_max_err(gm.out, cpu.out, (size_t)B * T * cfg.embed_dim) <= 1e-2, "P differs");
    double worst = 0.0;
    const char *wname = "";
    for (int i = 0; i < cpu.ntensors; i++) {
        const SmpTensorInfo *t = &cpu.info[i];
        float *a = gm.grads + t->offset, *b = cpu.grads + t->offset;
        size_t nn = t->numel;
        double r;
        if (strstr(t->name, "attn.qkv.bias")) {  // q and v thirds; the key third is noise
            size_t C = (size_t)cfg.width;
            r = fmax(rel_max_err(a, b, C), rel_max_err(a + 2 * C, b + 2 * C, C));
        } else {
            r = rel_max_err(a, b, nn);
        }
        CHECK(r <= 2e-2, "gradient %s: %.3e > 2e-2", t->name, r);
        if (r > worst) worst = r, wname = t->name;
    }
    printf("  gradients: %d tensors, worst max err / max |g_cpu| %.2e (%s), tolerance 2e-2\n",
           cpu.ntensors, worst, wname);

    SmpAdamWConfig oc = {meta_num(&st, "opt.beta1"), meta_num(&st, "opt.beta2"),
                         meta_num(&st, "opt.eps"), meta_num(&st, "opt.weight_decay")};
    SmpSchedule sched = {meta_num(&st, "opt.lr"), meta_num(&st, "opt.min_lr"),
                         (long)meta_num(&st, "opt.warmup"), (long)meta_num(&st, "opt.total")};
    double clip = meta_num(&st, "opt.clip");
    SmpAdamW oa, ob;
    smp_adamw_init(&oa, &oc, cpu.num_params);
    smp_adamw_init(&ob, &oc, cpu.num_params);
    double wl = 0.0;
    for (int s = 0; s < 10; s++) {
        double lr = smp_lr_at(&sched, s);
        smp_zero_grad(&cpu);
        lc = smp_forward_clips(&cpu, clips, B, T);
        smp_backward(&cpu);
        double nc = smp_clip_grad_norm(&cpu, clip);
        smp_adamw_step(&oa, &cpu, lr);
        smp_cuda_zero_grad(&d);
        ld = smp_cuda_forward_clips(&d, clips, B, T);
        smp_cuda_backward(&d);
        double nd = smp_cuda_clip_grad_norm(&d, clip);
        smp_cuda_adamw_step(&d, &ob, lr);
        printf("  step %d: loss %.6f (CPU %.6f) grad norm %.5f (CPU %.5f)\n", s, ld, lc, nd, nc);
        CHECK(rel(ld, lc) <= 5e-2, "step %d loss %.6f vs %.6f", s, ld, lc);
        wl = fmax(wl, rel(ld, lc));
    }
    printf("  10 AdamW steps: worst loss rel err %.2e (tolerance 5e-2)\n", wl);
    CHECK(oa.step == ob.step, "step counts %ld vs %ld", oa.step, ob.step);
    smp_cuda_download(&d, &ob);
    double wr = rel_max_err(gm.params, cpu.params, cpu.num_params);
    printf("  weights after the steps: max err / max |w_cpu| %.2e (tolerance 2e-2)\n", wr);
    CHECK(wr <= 2e-2, "weights differ by %.3e", wr);
    smp_adamw_free(&oa), smp_adamw_free(&ob);
    smp_cuda_free(&d);
    smp_free(&cpu), smp_free(&gm);
    free(clips);
    st_close(&st);
}

int main(int argc, char **argv) {
    if (argc < 2 || (strcmp(argv[1], "kernels") && (strcmp(argv[1], "model") || argc < 3))) {
        fprintf(stderr, "usage: %s kernels | model MAIN.safetensors\n", argv[0]);
        return 2;
    }
    const char *why = NULL;
    if (!MOTION_TEST_EMU && story_cuda_device_count(&why) == 0) {
        printf("motion cuda %s: skipped: no CUDA device (%s)\n", argv[1],
               why && *why ? why : "none");
        return 77;
    }
    cpu_set_threads(2);
    rng_torch_seed(&g_rng, 2024);
    if (!strcmp(argv[1], "kernels"))
        test_kernels();
    else
        test_model(argv[2]);
    printf("motion cuda %s: %d checks, %d failure(s)\n", argv[1], checks, failures);
    return failures ? 1 : 0;
}

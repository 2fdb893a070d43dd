// tests/cuda/cuda_gpu_parity.c: every op through op_* on real CUDA tensors vs the CPU
// reference, in f32, f16 and bf16: the hand-written kernels (parity_cases.h), the cuBLAS
// ops (linear, matmul, conv2d) and attention. Without a usable device it prints
// "skipped: no CUDA device" and exits 77, which ctest reports as skipped.
#define PARITY_OP(name) op_##name
#include "parity_cases.h"

// GEMM results are sums of K products: besides the output rounding, fp32 accumulation
// in a different order (cuBLAS vs OpenBLAS) moves a result by ~sqrt(K) ulp of the
// largest partial sums, so atol is relative to the largest |ref| of the tensor:
//   f32 rtol 1e-5, atol 1e-5 * max|ref|;  f16 1e-3, 1e-3 * max;  bf16 1e-2, 1e-2 * max.
static PuTol pg_gemm_tol(DType dt, const Tensor *ref) {
    float mx = 0.0f;
    const float *p = (const float *)ref->data;
    for (int64_t i = 0; i < tensor_numel(ref); i++) mx = fabsf(p[i]) > mx ? fabsf(p[i]) : mx;
    const float rel = dt == DT_F32 ? 1e-5f : dt == DT_F16 ? 1e-3f : 1e-2f;
    return (PuTol){rel, rel * (mx > 1.0f ? mx : 1.0f)};
}

static void pg_linear(DType dt, PuRng *r, int64_t M0, int64_t M1, int64_t K, int64_t N, int bias) {
    Tensor x = pu_host_rand(PC_SHAPE(M0, M1, K), r, 0.0f, 1.0f, dt);
    Tensor w = pu_host_rand(PC_SHAPE(N, K), r, 0.0f, 1.0f / sqrtf((float)K), dt);
    Tensor b = pu_host_rand(PC_SHAPE(N), r, 0.0f, 1.0f, dt), ref = pu_host(PC_SHAPE(M0, M1, N));
    cpu_linear(&ref, &x, &w, bias ? &b : NULL);
    Tensor dx = pu_to_dev(&x, dt, 0), dw = pu_to_dev(&w, dt, 0), db = pu_to_dev(&b, dt, 0);
    Tensor dout = pu_dev_empty(PC_SHAPE(M0, M1, N), dt, 0);
    op_linear(&dout, &dx, &dw, bias ? &db : NULL);
    char label[128];
    pu_compare(pc_label(label, sizeof label, "linear K %lld N %lld bias %d", (long long)K,
                        (long long)N, bias),
               &dout, (const float *)ref.data, pg_gemm_tol(dt, &ref));
}

static void pg_matmul(DType dt, PuRng *r, int64_t B, int64_t Bb, int64_t M, int64_t K, int64_t N,
                      int trans_b, float alpha) {
    Tensor a = pu_host_rand(PC_SHAPE(B, M, K), r, 0.0f, 1.0f, dt);
    Tensor b = trans_b ? pu_host_rand(PC_SHAPE(Bb, N, K), r, 0.0f, 1.0f, dt)
                       : pu_host_rand(PC_SHAPE(Bb, K, N), r, 0.0f, 1.0f, dt);
    Tensor ref = pu_host(PC_SHAPE(B, M, N));
    cpu_matmul(&ref, &a, &b, trans_b, alpha);
    Tensor da = pu_to_dev(&a, dt, 0), db = pu_to_dev(&b, dt, 0),
           dout = pu_dev_empty(PC_SHAPE(B, M, N), dt, 0);
    op_matmul(&dout, &da, &db, trans_b, alpha);
    char label[128];
    pu_compare(
        pc_label(label, sizeof label, "matmul B %lld/%lld (%lld,%lld,%lld) trans_b %d",
                 (long long)B, (long long)Bb, (long long)M, (long long)K, (long long)N, trans_b),
        &dout, (const float *)ref.data, pg_gemm_tol(dt, &ref));
}

// ws_bytes: device workspace arena for im2col (0: none, the op allocates itself).
static void pg_conv2d(DType dt, PuRng *r, int64_t N, int64_t Ci, int64_t H, int64_t W, int64_t Co,
                      int k, int stride, int pad, int bias, size_t ws_bytes) {
    const int64_t Ho = (H + 2 * pad - k) / stride + 1, Wo = (W + 2 * pad - k) / stride + 1;
    Tensor x = pu_host_rand(PC_SHAPE(N, Ci, H, W), r, 0.0f, 1.0f, dt);
    Tensor w = pu_host_rand(PC_SHAPE(Co, Ci, k, k), r, 0.0f, 1.0f / sqrtf((float)(Ci * k * k)), dt);
    Tensor b = pu_host_rand(PC_SHAPE(Co), r, 0.0f, 1.0f, dt),
           ref = pu_host(PC_SHAPE(N, Co, Ho, Wo));
    cpu_conv2d(&ref, &x, &w, bias ? &b : NULL, stride, pad, NULL);
    Tensor dx = pu_to_dev(&x, dt, 0), dw = pu_to_dev(&w, dt, 0), db = pu_to_dev(&b, dt, 0);
    Tensor dout = pu_dev_empty(PC_SHAPE(N, Co, Ho, Wo), dt, 0);
    Arena ws;
    if (ws_bytes) STORY_CHECK(arena_init(&ws, DEV_CUDA, ws_bytes) == 0, "device arena");
    op_conv2d(&dout, &dx, &dw, bias ? &db : NULL, stride, pad, ws_bytes ? &ws : NULL);
    if (ws_bytes) {
        STORY_CHECK(ws.used == 0, "conv2d must release its workspace");
        arena_free(&ws);
    }
    char label[128];
    pu_compare(pc_label(label, sizeof label, "conv2d Ci %lld Co %lld k %d s %d p %d bias %d ws %zu",
                        (long long)Ci, (long long)Co, k, stride, pad, bias, ws_bytes),
               &dout, (const float *)ref.data, pg_gemm_tol(dt, &ref));
}

// Attention: q (B, Lq, H*D), segments of (Bk, Lk_i, H*D). Outputs are convex
// combinations of v rows: f32 1e-4 (exp and the online rescaling reassociate), f16
// 5e-3 and bf16 3e-2 (probabilities may be rounded to the storage type before the P V
// product, as flash-attention kernels do).
static void pg_attention(DType dt, PuRng *r, int64_t B, int64_t Lq, int heads, int64_t D, int nsegs,
                         const int64_t *Lk, const int64_t *Bk, int causal) {
    const int64_t HD = heads * D;
    Tensor q = pu_host_rand(PC_SHAPE(B, Lq, HD), r, 0.0f, 1.0f, dt),
           ref = pu_host(PC_SHAPE(B, Lq, HD));
    Tensor hk[ATTN_MAX_SEGMENTS], hv[ATTN_MAX_SEGMENTS], dk[ATTN_MAX_SEGMENTS],
        dv[ATTN_MAX_SEGMENTS];
    KVSegment hs[ATTN_MAX_SEGMENTS], ds[ATTN_MAX_SEGMENTS];
    for (int s = 0; s < nsegs; s++) {
        hk[s] = pu_host_rand(PC_SHAPE(Bk[s], Lk[s], HD), r, 0.0f, 1.0f, dt);
        hv[s] = pu_host_rand(PC_SHAPE(Bk[s], Lk[s], HD), r, 0.0f, 1.0f, dt);
        dk[s] = pu_to_dev(&hk[s], dt, 0);
        dv[s] = pu_to_dev(&hv[s], dt, 0);
        hs[s] = (KVSegment){&hk[s], &hv[s]};
        ds[s] = (KVSegment){&dk[s], &dv[s]};
    }
    cpu_attention(&ref, &q, hs, nsegs, heads, causal, 0.0f);
    Tensor dq = pu_to_dev(&q, dt, 0), dout = pu_dev_empty(PC_SHAPE(B, Lq, HD), dt, 0);
    op_attention(&dout, &dq, ds, nsegs, heads, causal, 0.0f);
    const PuTol tol = dt == DT_F32   ? (PuTol){1e-4f, 1e-4f}
                      : dt == DT_F16 ? (PuTol){5e-3f, 5e-3f}
                                     : (PuTol){3e-2f, 3e-2f};
    char label[128];
    pu_compare(pc_label(label, sizeof label, "attention Lq %lld D %lld segs %d causal %d",
                        (long long)Lq, (long long)D, nsegs, causal),
               &dout, (const float *)ref.data, tol);
}

static void pg_run_gemm_attention(DType dt, uint64_t seed) {
    PuRng r = {seed};
    pg_linear(dt, &r, 2, 7, 33, 17, 1);
    pg_linear(dt, &r, 1, 64, 320, 320, 1);
    pg_linear(dt, &r, 2, 77, 768, 320, 0);
    pg_matmul(dt, &r, 3, 3, 5, 7, 9, 0, 1.0f);
    pg_matmul(dt, &r, 4, 4, 33, 40, 47, 1, 0.125f);
    pg_matmul(dt, &r, 4, 1, 16, 64, 24, 0, 1.0f);
    pg_matmul(dt, &r, 1, 1, 64, 32, 48, 1, 2.0f);
    pg_conv2d(dt, &r, 2, 4, 9, 7, 8, 3, 1, 1, 1, 0);            // im2col, own allocation
    pg_conv2d(dt, &r, 2, 32, 16, 16, 32, 3, 1, 1, 1, 1 << 20);  // im2col in the arena
    pg_conv2d(dt, &r, 3, 16, 15, 15, 24, 3, 2, 1, 1, 40000);    // arena holds one image at a time
    pg_conv2d(dt, &r, 2, 16, 8, 8, 24, 1, 1, 0, 1, 0);          // 1x1: GEMM directly
    pg_conv2d(dt, &r, 2, 16, 8, 8, 24, 1, 2, 0, 0, 0);          // 1x1 stride 2: im2col
    {
        const int64_t Lk[2] = {47, 33}, Bk[2] = {2, 1};
        pg_attention(dt, &r, 2, 33, 2, 64, 1, Lk, Bk, 0);
        pg_attention(dt, &r, 2, 65, 8, 40, 2, Lk, Bk,
                     0);  // D 40 (SD1.5), bank segment shared by the batch
    }
    {
        const int64_t Lk[1] = {77}, Bk[1] = {2};
        pg_attention(dt, &r, 2, 77, 4, 64, 1, Lk, Bk, 1);  // CLIP text: causal
    }
    pu_free_all();
}

int main(void) {
    const char *why = NULL;
    if (story_cuda_device_count(&why) == 0 || !cuda_available()) {
        printf("skipped: no CUDA device (%s)\n", why && *why ? why : "cuda_available() is 0");
        return 77;
    }
    StoryDeviceInfo info;
    if (story_cuda_device_info(0, &info) == 0)
        printf("device 0: %s, sm_%d%d, %d SMs\n", info.name, info.cc_major, info.cc_minor,
               info.sm_count);
    const DType dts[3] = {DT_F32, DT_F16, DT_BF16};
    for (int i = 0; i < 3; i++) {
        printf("== %s\n", dtype_name(dts[i]));
        pc_run_all(dts[i], 1000 + (uint64_t)i);
        pg_run_gemm_attention(dts[i], 2000 + (uint64_t)i);
    }
    printf("%d of %d checks passed\n", pu_checks - pu_failures, pu_checks);
    return pu_failures ? 1 : 0;
}

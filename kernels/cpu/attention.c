// kernels/cpu/attention.c: multi-head attention over key/value segments, tiled with an
// online softmax (flash-attention style), fp32.
//
// q (B, Lq, H*D), each segment's k, v (Bk, Lk_i, H*D) with Bk in {B, 1}, out (B, Lq, H*D).
// Head h is channels h*D .. h*D+D-1 of every token, so a head's (L, D) matrix is a strided
// view with leading dimension H*D: BLAS reads it in place, nothing is transposed or copied.
//
// Work item = (batch, head, query tile of TQ rows). Per item, for each key tile of TK keys:
//   S = (scale * log2 e) * Q K^T          (TQ, TK)  sgemm into per-thread scratch
//   m' = max(m, rowmax S); P = 2^(S - m'); l = l * 2^(m - m') + rowsum P
//   O = O * 2^(m - m') + P V               (TQ, D)   sgemm accumulating in `out` itself
// and O /= l at the end. The (Lq, Lk) score matrix never exists; scratch is TQ * TK floats
// per thread. Folding log2 e into the GEMM's alpha lets the softmax use 2^x directly.
//
// Two implementations of that loop: with AVX-512 (detected at run time) the work item runs
// register-blocked kernels (attention_avx512.c: ~25% faster than the GEMM calls, which spend
// their time packing P and the thin Q, K tiles); elsewhere, or with
// cpu_attention_force_blas set, the OpenBLAS tiles below. Both give results that do not
// depend on the thread count (each item is computed whole by one thread).
#include <omp.h>

#include "cpu_internal.h"

#define ATTN_TK CPU_ATTN_TK

int cpu_attention_force_blas = 0;

// 2^x for x <= 0, the softmax's inner loop: 2^-127 and below give 0, -inf gives 0.
// Cheaper than cpu_exp2f: adding 1.5 * 2^23 + 127 rounds x to an integer n and leaves
// n + 127 in the low mantissa bits, so one shift makes the bits of 2^n; degree-5
// polynomial for 2^f, f in [-0.5, 0.5] (relative error 2.3e-7, like torch's exp_u20).
static inline float attn_exp2_neg(float x) {
    x = x < -127.0f ? -127.0f : x;
    float t = x + 12583039.0f;  // 1.5 * 2^23 + 127
    float n = t - 12583039.0f, f = x - n;
    uint32_t bits;
    memcpy(&bits, &t, 4);
    bits <<= 23;  // (n + 127) << 23: the exponent field of 2^n
    float scale;
    memcpy(&scale, &bits, 4);
    float p = 1.3312093e-3f;
    p = p * f + 9.6730720e-3f;
    p = p * f + 5.5505827e-2f;
    p = p * f + 2.4022163e-1f;
    p = p * f + 6.9314706e-1f;
    p = p * f + 1.0000001f;
    return p * scale;
}

// One key tile of the online softmax, rows r in [0, rows): S (rows, n) with leading dim
// lds holds log2-scaled scores on entry and P on exit. m, l: running max and sum;
// corr[r] receives the factor the output row must be multiplied by.
CPU_SIMD_CLONES
static void attn_tile_softmax(float *S, int rows, int n, int lds, float *m, float *l, float *corr) {
    for (int r = 0; r < rows; r++) {
        float *s = S + (size_t)r * lds;
        float mx = -INFINITY;
#pragma omp simd reduction(max : mx)
        for (int c = 0; c < n; c++) mx = s[c] > mx ? s[c] : mx;
        float mn = m[r] > mx ? m[r] : mx;
        float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
        for (int c = 0; c < n; c++) {
            float p = attn_exp2_neg(s[c] - mn);
            s[c] = p;
            sum += p;
        }
        float cr = cpu_exp2f(m[r] - mn);  // m = -inf on the first tile: 0
        corr[r] = cr;
        l[r] = l[r] * cr + sum;
        m[r] = mn;
    }
}

// O rows (rows, D) with leading dim ldo: O[r] *= f[r].
CPU_SIMD_CLONES
static void attn_scale_rows(float *O, int rows, int D, int ldo, const float *f) {
    for (int r = 0; r < rows; r++) {
        float *o = O + (size_t)r * ldo, c = f[r];
        if (c == 1.0f) continue;
#pragma omp simd
        for (int d = 0; d < D; d++) o[d] *= c;
    }
}

// Causal mask on a tile: query row i0 + r sees key j0 + c only when j0 + c <= i0 + r.
static void attn_mask_causal(float *S, int rows, int n, int lds, int64_t i0, int64_t j0) {
    for (int r = 0; r < rows; r++) {
        int64_t first_masked = i0 + r + 1 - j0;  // columns >= this are in the future
        if (first_masked < 0) first_masked = 0;
        for (int64_t c = first_masked; c < n; c++) S[(size_t)r * lds + c] = -INFINITY;
    }
}

static void attn_check(const Tensor *out, const Tensor *q, const KVSegment *segs, int nsegs, int heads,
                       int causal, int64_t *Lk_total) {
    CPU_CHECK_F32("attention", out);
    CPU_CHECK_F32("attention", q);
    CPU_CHECK(heads >= 1, "attention: heads must be >= 1, got %d", heads);
    CPU_CHECK(nsegs >= 1 && nsegs <= ATTN_MAX_SEGMENTS, "attention: %d segments (1..%d allowed)", nsegs,
                ATTN_MAX_SEGMENTS);
    CPU_CHECK_SHAPES("attention", q->ndim == 3 && q->shape[2] % heads == 0, q, q,
                     "q must be (B, Lq, H*D) with H*D divisible by heads");
    CPU_CHECK_SHAPES("attention", cpu_same_shape(out, q), out, q, "out must have q's shape");
    CPU_CHECK(out->data != q->data, "attention: out must not alias q");
    int64_t total = 0;
    for (int s = 0; s < nsegs; s++) {
        const Tensor *k = segs[s].k, *v = segs[s].v;
        CPU_CHECK_F32("attention", k);
        CPU_CHECK_F32("attention", v);
        CPU_CHECK_SHAPES("attention", cpu_same_shape(k, v), k, v, "a segment's k and v must have one shape");
        CPU_CHECK_SHAPES("attention",
                         k->ndim == 3 && (k->shape[0] == q->shape[0] || k->shape[0] == 1) &&
                             k->shape[2] == q->shape[2],
                         k, q, "k must be (B or 1, Lk, H*D) with q's channels");
        total += k->shape[1];
    }
    CPU_CHECK(total > 0, "attention: no keys (every segment is empty)");
    if (causal)
        CPU_CHECK_SHAPES("attention", nsegs == 1 && segs[0].k->shape[1] == q->shape[1], q, segs[0].k,
                         "causal attention needs one segment with Lk == Lq");
    *Lk_total = total;
}

void cpu_attention(Tensor *out, const Tensor *q, const KVSegment *segs, int nsegs, int heads, int causal,
                   float scale) {
    int64_t Lk_total;
    attn_check(out, q, segs, nsegs, heads, causal, &Lk_total);
    const int64_t B = q->shape[0], Lq = q->shape[1], HD = q->shape[2], D = HD / heads;
    if (scale <= 0.0f) scale = 1.0f / sqrtf((float)D);
    const float alpha = scale * 1.4426950408889634f;  // scores in log2 units

    int nt = cpu_threads();
    if (!cpu_attention_force_blas && cpu_attn_avx512_available()) {
        // 128 queries per item (64 where that leaves too few items to balance threads).
        int64_t TQ = 128;
        if (B * heads * ((Lq + TQ - 1) / TQ) < 4 * nt) TQ = 64;
        const int64_t nqt = (Lq + TQ - 1) / TQ, items = B * heads * nqt;
#pragma omp parallel
        {
            float *scratch = cpu_scratch(0, cpu_attn_avx512_scratch((int)D));
#pragma omp for schedule(dynamic, 1)
            for (int64_t it = 0; it < items; it++) {
                int64_t b = it / (heads * nqt), h = (it / nqt) % heads, i0 = (it % nqt) * TQ;
                int rows = (int)(Lq - i0 < TQ ? Lq - i0 : TQ);
                cpu_attn_avx512_item(out->data, q->data, segs, nsegs, b, h, Lq, HD, (int)D, i0, rows, causal, alpha,
                                     scratch);
            }
        }
        return;
    }

    // BLAS path. Query tile: 256 rows keeps the GEMMs efficient; smaller when that leaves
    // too few work items to balance the threads.
    int64_t TQ = 256;
    while (TQ > 32 && B * heads * ((Lq + TQ - 1) / TQ) < 4 * nt) TQ /= 2;
    const int64_t nqt = (Lq + TQ - 1) / TQ, items = B * heads * nqt;
    const int TK = ATTN_TK;
    const float *qd = q->data;
    float *od = out->data;

    int prev = cpu_blas_single_begin();
#pragma omp parallel
    {
        float *S = cpu_scratch(0, (size_t)TQ * TK + 3 * (size_t)TQ);
        float *m = S + (size_t)TQ * TK, *l = m + TQ, *corr = l + TQ;
#pragma omp for schedule(dynamic, 1)
        for (int64_t it = 0; it < items; it++) {
            int64_t b = it / (heads * nqt), h = (it / nqt) % heads, i0 = (it % nqt) * TQ;
            int rows = (int)(Lq - i0 < TQ ? Lq - i0 : TQ);
            const float *Q = qd + (b * Lq + i0) * HD + h * D;
            float *O = od + (b * Lq + i0) * HD + h * D;
            for (int r = 0; r < rows; r++) m[r] = -INFINITY, l[r] = 0.0f;
            int first = 1;
            for (int s = 0; s < nsegs; s++) {
                const Tensor *kt = segs[s].k;
                int64_t Lk = kt->shape[1], kb = kt->shape[0] == 1 ? 0 : b;
                int64_t jend = causal ? i0 + rows : Lk;  // causal: keys beyond the tile's last row are unseen
                if (jend > Lk) jend = Lk;
                const float *K = (const float *)kt->data + kb * Lk * HD + h * D;
                const float *V = (const float *)segs[s].v->data + kb * Lk * HD + h * D;
                for (int64_t j0 = 0; j0 < jend; j0 += TK) {
                    int n = (int)(jend - j0 < TK ? jend - j0 : TK);
                    cpu_sgemm_serial(0, 1, rows, n, (int)D, alpha, Q, (int)HD, K + j0 * HD, (int)HD, 0.0f, S, n);
                    if (causal && j0 + n - 1 > i0) attn_mask_causal(S, rows, n, n, i0, j0);
                    attn_tile_softmax(S, rows, n, n, m, l, corr);
                    if (!first) attn_scale_rows(O, rows, (int)D, (int)HD, corr);
                    cpu_sgemm_serial(0, 0, rows, (int)D, n, 1.0f, S, n, V + j0 * HD, (int)HD, first ? 0.0f : 1.0f, O,
                                     (int)HD);
                    first = 0;
                }
            }
            for (int r = 0; r < rows; r++) corr[r] = 1.0f / l[r];
            attn_scale_rows(O, rows, (int)D, (int)HD, corr);
        }
    }
    cpu_blas_single_end(prev);
}

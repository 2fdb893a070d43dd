// kernels/cpu/attention_avx512.c: the attention work item (batch, head, up to 128 queries)
// with AVX-512 register-blocked kernels, used by attention.c when the CPU has AVX-512.
//
// Same online softmax as the BLAS path, computed transposed so that every vector runs
// across 16 queries: St = K Q^T (keys x queries), a column softmax, Ot += V^T P^T
// (head dim x queries). Nothing is masked or padded per head dim (D = 40 fills vectors
// as well as D = 64), Q is transposed once per item, K and V are read in place (rows
// of the (L, H*D) tensors, broadcast one float at a time), and no GEMM packs P.
// Built with a target attribute, so the rest of the library stays baseline x86-64.
#include "cpu_internal.h"

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#include <immintrin.h>

#define AVX512 __attribute__((target("avx512f")))
#define AVX512_INLINE __attribute__((target("avx512f"), always_inline)) static inline
#define QW 64  // queries per block: four vectors

int cpu_attn_avx512_available(void) {
    static int cached = -1;
    if (cached < 0) {
        __builtin_cpu_init();
        cached = __builtin_cpu_supports("avx512f") ? 1 : 0;
    }
    return cached;
}

// St[j][:] = alpha * sum_d K[j][d] Qt[d][:] for keys j0 .. j0+RB-1: RB x 4 accumulators.
AVX512_INLINE void qk_rows(float *St, const float *Qt, const float *K, int64_t ldk, int j0, int D, __m512 va,
                           const int RB) {
    __m512 acc[6][4];
    for (int r = 0; r < RB; r++)
        for (int k = 0; k < 4; k++) acc[r][k] = _mm512_setzero_ps();
    for (int d = 0; d < D; d++) {
        __m512 q0 = _mm512_load_ps(Qt + d * QW), q1 = _mm512_load_ps(Qt + d * QW + 16);
        __m512 q2 = _mm512_load_ps(Qt + d * QW + 32), q3 = _mm512_load_ps(Qt + d * QW + 48);
        for (int r = 0; r < RB; r++) {
            __m512 kb = _mm512_set1_ps(K[(int64_t)(j0 + r) * ldk + d]);
            acc[r][0] = _mm512_fmadd_ps(kb, q0, acc[r][0]);
            acc[r][1] = _mm512_fmadd_ps(kb, q1, acc[r][1]);
            acc[r][2] = _mm512_fmadd_ps(kb, q2, acc[r][2]);
            acc[r][3] = _mm512_fmadd_ps(kb, q3, acc[r][3]);
        }
    }
    for (int r = 0; r < RB; r++)
        for (int k = 0; k < 4; k++) _mm512_store_ps(St + (j0 + r) * QW + 16 * k, _mm512_mul_ps(acc[r][k], va));
}

// St (n, QW) = alpha * K[0..n) Qt, K rows with leading dim ldk.
AVX512 static void qk_tile(float *St, const float *Qt, const float *K, int64_t ldk, int n, int D, float alpha) {
    __m512 va = _mm512_set1_ps(alpha);
    int j = 0;
    for (; j + 6 <= n; j += 6) qk_rows(St, Qt, K, ldk, j, D, va, 6);
    for (; j + 2 <= n; j += 2) qk_rows(St, Qt, K, ldk, j, D, va, 2);
    for (; j < n; j++) qk_rows(St, Qt, K, ldk, j, D, va, 1);
}

// 2^x for x <= 0 (as attn_exp2_neg in attention.c, 16 lanes).
AVX512_INLINE __m512 exp2_neg16(__m512 x) {
    x = _mm512_max_ps(x, _mm512_set1_ps(-127.0f));
    const __m512 magic = _mm512_set1_ps(12583039.0f);  // 1.5 * 2^23 + 127
    __m512 t = _mm512_add_ps(x, magic);
    __m512 f = _mm512_sub_ps(x, _mm512_sub_ps(t, magic));
    __m512 scale = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_castps_si512(t), 23));
    __m512 p = _mm512_set1_ps(1.3312093e-3f);
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(9.6730720e-3f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(5.5505827e-2f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(2.4022163e-1f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(6.9314706e-1f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.0000001f));
    return _mm512_mul_ps(p, scale);
}

// Online softmax over the n rows (keys) of St, per column (query): m, l running max and
// sum, corr the factor for Ot's columns; St becomes P.
AVX512 static void col_softmax(float *St, int n, float *m, float *l, float *corr) {
    for (int k = 0; k < 4; k++) {
        __m512 mx = _mm512_set1_ps(-INFINITY);
        for (int j = 0; j < n; j++) mx = _mm512_max_ps(mx, _mm512_load_ps(St + j * QW + 16 * k));
        __m512 mo = _mm512_load_ps(m + 16 * k), mn = _mm512_max_ps(mo, mx);
        __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
        int j = 0;
        for (; j + 2 <= n; j += 2) {  // two chains: the adds do not wait on each other
            __m512 p0 = exp2_neg16(_mm512_sub_ps(_mm512_load_ps(St + j * QW + 16 * k), mn));
            __m512 p1 = exp2_neg16(_mm512_sub_ps(_mm512_load_ps(St + (j + 1) * QW + 16 * k), mn));
            _mm512_store_ps(St + j * QW + 16 * k, p0);
            _mm512_store_ps(St + (j + 1) * QW + 16 * k, p1);
            s0 = _mm512_add_ps(s0, p0);
            s1 = _mm512_add_ps(s1, p1);
        }
        for (; j < n; j++) {
            __m512 p0 = exp2_neg16(_mm512_sub_ps(_mm512_load_ps(St + j * QW + 16 * k), mn));
            _mm512_store_ps(St + j * QW + 16 * k, p0);
            s0 = _mm512_add_ps(s0, p0);
        }
        __m512 c = exp2_neg16(_mm512_sub_ps(mo, mn));  // m = -inf on the first tile: 0
        _mm512_store_ps(corr + 16 * k, c);
        _mm512_store_ps(l + 16 * k, _mm512_fmadd_ps(_mm512_load_ps(l + 16 * k), c, _mm512_add_ps(s0, s1)));
        _mm512_store_ps(m + 16 * k, mn);
    }
}

// Ot rows d0 .. d0+RD-1 (RD x 4 accumulators) = Ot * corr (or 0 on the first tile)
// + sum_j V[j][d] P[j][:].
AVX512_INLINE void pv_rows(float *Ot, const float *Pt, const float *V, int64_t ldv, int n, int d0,
                           const float *corr, int first, const int RD) {
    __m512 acc[6][4];
    for (int k = 0; k < 4; k++) {
        __m512 c = first ? _mm512_setzero_ps() : _mm512_load_ps(corr + 16 * k);
        for (int r = 0; r < RD; r++)
            acc[r][k] = first ? c : _mm512_mul_ps(_mm512_load_ps(Ot + (d0 + r) * QW + 16 * k), c);
    }
    for (int j = 0; j < n; j++) {
        __m512 p0 = _mm512_load_ps(Pt + j * QW), p1 = _mm512_load_ps(Pt + j * QW + 16);
        __m512 p2 = _mm512_load_ps(Pt + j * QW + 32), p3 = _mm512_load_ps(Pt + j * QW + 48);
        for (int r = 0; r < RD; r++) {
            __m512 vb = _mm512_set1_ps(V[(int64_t)j * ldv + d0 + r]);
            acc[r][0] = _mm512_fmadd_ps(vb, p0, acc[r][0]);
            acc[r][1] = _mm512_fmadd_ps(vb, p1, acc[r][1]);
            acc[r][2] = _mm512_fmadd_ps(vb, p2, acc[r][2]);
            acc[r][3] = _mm512_fmadd_ps(vb, p3, acc[r][3]);
        }
    }
    for (int r = 0; r < RD; r++)
        for (int k = 0; k < 4; k++) _mm512_store_ps(Ot + (d0 + r) * QW + 16 * k, acc[r][k]);
}

AVX512 static void pv_tile(float *Ot, const float *Pt, const float *V, int64_t ldv, int n, int D,
                           const float *corr, int first) {
    int d = 0;
    for (; d + 6 <= D; d += 6) pv_rows(Ot, Pt, V, ldv, n, d, corr, first, 6);
    for (; d + 2 <= D; d += 2) pv_rows(Ot, Pt, V, ldv, n, d, corr, first, 2);
    for (; d < D; d++) pv_rows(Ot, Pt, V, ldv, n, d, corr, first, 1);
}

size_t cpu_attn_avx512_scratch(int D) {
    // Qt, Ot (D x QW) and m, l, corr per block of 2, plus St (TK x QW); 64-byte units.
    return 2 * (2 * (size_t)D * QW + 3 * QW) + (size_t)CPU_ATTN_TK * QW + 16;
}

// One work item: queries i0 .. i0+rows-1 (rows <= 2*QW) of batch b, head h.
AVX512 void cpu_attn_avx512_item(float *out, const float *q, const KVSegment *segs, int nsegs, int64_t b, int64_t h,
                                 int64_t Lq, int64_t HD, int D, int64_t i0, int rows, int causal, float alpha,
                                 float *scratch) {
    const int nb = (rows + QW - 1) / QW;
    float *base = (float *)(((uintptr_t)scratch + 63) & ~(uintptr_t)63);
    float *St = base;
    float *Qt[2], *Ot[2], *m[2], *l[2], *corr[2];
    float *p = St + (size_t)CPU_ATTN_TK * QW;
    for (int ib = 0; ib < 2; ib++) {
        Qt[ib] = p, p += (size_t)D * QW;
        Ot[ib] = p, p += (size_t)D * QW;
        m[ib] = p, p += QW;
        l[ib] = p, p += QW;
        corr[ib] = p, p += QW;
    }
    for (int ib = 0; ib < nb; ib++) {  // Qt[d][i] = q[i][d], zero past the last query
        int r0 = ib * QW, nr = rows - r0 < QW ? rows - r0 : QW;
        const float *Q = q + (b * Lq + i0 + r0) * HD + h * D;
        for (int d = 0; d < D; d++)
            for (int i = 0; i < QW; i++) Qt[ib][d * QW + i] = i < nr ? Q[(int64_t)i * HD + d] : 0.0f;
        for (int i = 0; i < QW; i++) m[ib][i] = -INFINITY, l[ib][i] = 0.0f;
    }
    int first = 1;
    for (int s = 0; s < nsegs; s++) {
        const Tensor *kt = segs[s].k;
        int64_t Lk = kt->shape[1], kb = kt->shape[0] == 1 ? 0 : b;
        int64_t jend = causal ? i0 + rows : Lk;
        if (jend > Lk) jend = Lk;
        const float *K = (const float *)kt->data + kb * Lk * HD + h * D;
        const float *V = (const float *)segs[s].v->data + kb * Lk * HD + h * D;
        for (int64_t j0 = 0; j0 < jend; j0 += CPU_ATTN_TK) {
            int n = (int)(jend - j0 < CPU_ATTN_TK ? jend - j0 : CPU_ATTN_TK);
            for (int ib = 0; ib < nb; ib++) {
                int64_t q0 = i0 + ib * QW;
                if (causal && j0 > q0 + QW - 1) continue;  // every key of the tile is in this block's future
                qk_tile(St, Qt[ib], K + j0 * HD, HD, n, D, alpha);
                if (causal && j0 + n - 1 > q0)
                    for (int j = 0; j < n; j++)
                        for (int i = 0; i < QW; i++)
                            if (j0 + j > q0 + i) St[j * QW + i] = -INFINITY;
                col_softmax(St, n, m[ib], l[ib], corr[ib]);
                pv_tile(Ot[ib], St, V + j0 * HD, HD, n, D, corr[ib], first);
            }
            first = 0;
        }
    }
    for (int ib = 0; ib < nb; ib++) {  // out[i][d] = Ot[d][i] / l[i]
        int r0 = ib * QW, nr = rows - r0 < QW ? rows - r0 : QW;
        float *O = out + (b * Lq + i0 + r0) * HD + h * D;
        for (int i = 0; i < nr; i++) {
            float inv = 1.0f / l[ib][i];
            for (int d = 0; d < D; d++) O[(int64_t)i * HD + d] = Ot[ib][d * QW + i] * inv;
        }
    }
}

#else  // not x86-64 GCC: the BLAS path only

int cpu_attn_avx512_available(void) { return 0; }
size_t cpu_attn_avx512_scratch(int D) { return (void)D, 0; }
void cpu_attn_avx512_item(float *out, const float *q, const KVSegment *segs, int nsegs, int64_t b, int64_t h,
                          int64_t Lq, int64_t HD, int D, int64_t i0, int rows, int causal, float alpha,
                          float *scratch) {
    (void)out, (void)q, (void)segs, (void)nsegs, (void)b, (void)h, (void)Lq, (void)HD, (void)D, (void)i0;
    (void)rows, (void)causal, (void)alpha, (void)scratch;
    STORY_FATAL("attention: the AVX-512 path is not built on this platform");
}

#endif

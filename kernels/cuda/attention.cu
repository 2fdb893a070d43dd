// kernels/cuda/attention.cu: multi-head attention over key/value segments, flash style.
//
// q (B, Lq, H*D), segment i: k, v (Bk_i, Lk_i, H*D) with Bk_i in {B, 1}, out (B, Lq, H*D);
// head h owns channels [h*D, (h+1)*D). The keys of all segments form one sequence in
// segment order (global key index = offset of the segment + index inside it); causal
// masks key j for query i when j > i (ops.h promises it for one segment with Lq == Lk;
// the kernel applies the same rule to any layout). The segments are never concatenated and the
// (Lq, Lk) score matrix is never materialised: each CTA walks the key tiles of every
// segment with an online softmax (running max m and sum l per query row, fp32).
//
// f16/bf16 (attn_flash_kernel): one CTA = 4 warps = 64 query rows of one (batch, head);
// warp w owns rows [16w, 16w+16). D is padded with zeros to DP, one template instance
// each for DP in {32, 48, 64, 80, 96, 128, 160} (SD1.5: 40, 80, 160; SDXL/CLIP: 64);
// D > 160 aborts. Per key tile of BN keys (BN = 64 for DP <= 96, else 32):
//   S_w (16, BN)  = Q_w (16, DP) K^T          WMMA 16x16x16, fp32 accumulators
//   softmax on S_w through shared memory, P_w (16, BN) rounded to the storage type
//   O_w (16, DP) = O_w * exp(m_old - m_new) + P_w V   WMMA, folded into fp32 registers
// Shared memory (bytes): Q 64*(DP+8)*2 + K-or-V BN*(DP+8)*2 + S 64*(BN+4)*4, at most
// 44032 (DP = 96), so no opt-in above 48 KiB is needed. K and V take turns in one
// buffer. P is written over the front of its own score row (after a __syncwarp) and
// the 16x16 P V result is staged behind it, so S, P and the staging share one buffer.
// The lanes never assume the WMMA fragment layout (port.cuh rules): everything
// row-wise goes through shared memory, and lane L owns row L/2, columns (L%2)*8..+8
// of every 16-column block of O.
//
// f32 (attn_f32_kernel): a plain fp32 path without tensor cores, one thread per query
// row, 64 rows per CTA, key/value tiles in shared memory; it accumulates O in `out`
// itself (so out must not alias q there).
#include <math.h>

#include "kernels/cuda/kernels.h"
#include "kernels/cuda/port.cuh"
#include "kernels/ops.h"
#include "runner/check.h"

#if STORY_EMU
#define ATTN_LAUNCH_CHECK() ((void)0)
#else  // lib_runtime.cu: aborts with the CUDA error if the launch failed
#define ATTN_LAUNCH_CHECK() story_cuda_check_launch("cuda_attention", __FILE__, __LINE__)
#endif

namespace {

constexpr int ATTN_BM = 64;        // query rows per CTA (flash and f32 paths)
constexpr int ATTN_THREADS = 128;  // flash path: 4 warps x 16 rows
constexpr int ATTN_F32_THREADS = ATTN_BM;
constexpr float ATTN_LOG2E = 1.4426950408889634f;

// Segment table passed by value: base pointers (already offset by nothing), lengths
// and batch strides in elements (0 for a segment shared by every batch item, Bk == 1).
template <typename T>
struct AttnSegs {
    const T *k[ATTN_MAX_SEGMENTS];
    const T *v[ATTN_MAX_SEGMENTS];
    int64_t bstride[ATTN_MAX_SEGMENTS];
    int len[ATTN_MAX_SEGMENTS];
    int n;
};

template <int DP>
struct AttnTile {
    static constexpr int BN = DP <= 96 ? 64 : 32;  // keys per tile
    static constexpr int LDK = DP + 8;             // elements per Q/K/V smem row
    static constexpr int LDS = BN + 4;             // floats per score row
    static constexpr int Q_ELEMS = ATTN_BM * LDK;
    static constexpr int KV_ELEMS = BN * LDK;
    static constexpr size_t SMEM = (size_t)(Q_ELEMS + KV_ELEMS) * 2 + (size_t)ATTN_BM * LDS * 4;
    static_assert(DP % 16 == 0 && DP <= 160, "DP: multiple of 16, at most 160");
    static_assert(SMEM <= 48 * 1024, "stay under the default 48 KiB dynamic smem limit");
    // the 16x16 P V staging sits behind the BN/2 floats that hold a row's P
    static_assert(BN / 2 + 16 <= LDS, "staging must fit in a score row");
};

// 16 bytes moved at once when rows are 16-byte aligned (D % 8 == 0).
#if STORY_EMU  // host C++: the copies go through this type, so it may alias any other
struct __attribute__((may_alias, aligned(16))) AttnVec {
    uint32_t w[4];
};
#else
struct alignas(16) AttnVec {
    uint32_t w[4];
};
#endif

// dst (ROWS, LD) in shared memory <- rows [0, nrows) x cols [0, D) of src (row stride
// `stride` elements); the rest of the (ROWS, DP) tile becomes zero, so padded rows and
// columns add nothing to Q K^T and P V (and no stale NaN can leak in through 0 * x).
template <typename T, int ROWS, int DP, int LD>
__device__ void attn_load_tile(T *dst, const T *src, int64_t stride, int nrows, int D, int vec,
                               int tid) {
    if (vec) {
        constexpr int VPR = DP / 8;
        for (int e = tid; e < ROWS * VPR; e += ATTN_THREADS) {
            const int row = e / VPR, col = (e % VPR) * 8;
            AttnVec val = {{0u, 0u, 0u, 0u}};
            if (row < nrows && col < D)
                val = *reinterpret_cast<const AttnVec *>(src + row * stride + col);
            *reinterpret_cast<AttnVec *>(dst + row * LD + col) = val;
        }
    } else {
        const T zero = from_f32<T>(0.0f);
        for (int e = tid; e < ROWS * DP; e += ATTN_THREADS) {
            const int row = e / DP, col = e % DP;
            dst[row * LD + col] = (row < nrows && col < D) ? src[row * stride + col] : zero;
        }
    }
}

template <typename T, int DP>
__device__ void attn_flash_body(T *out, const T *q, const AttnSegs<T> &segs, int Lq, int C, int D,
                                int causal, float scale_log2, int vec) {
    using Tile = AttnTile<DP>;
    constexpr int BN = Tile::BN, LDK = Tile::LDK, LDS = Tile::LDS;
    DYNAMIC_SHARED(float, smem);
    T *qs = reinterpret_cast<T *>(smem);                          // (64, LDK)
    T *kvs = qs + Tile::Q_ELEMS;                                  // (BN, LDK): K, then V
    float *ss = reinterpret_cast<float *>(kvs + Tile::KV_ELEMS);  // (64, LDS)

    const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
    const int q0 = blockIdx.x * ATTN_BM, h = blockIdx.y, b = blockIdx.z;
    const int q_last = (q0 + ATTN_BM < Lq ? q0 + ATTN_BM : Lq) - 1;
    attn_load_tile<T, ATTN_BM, DP, LDK>(qs, q + ((int64_t)b * Lq + q0) * C + (int64_t)h * D, C,
                                        q_last - q0 + 1, D, vec, tid);

    float *sw = ss + warp * 16 * LDS;        // this warp's 16 score rows
    T *pw = reinterpret_cast<T *>(sw);       // its probabilities: row stride 2*LDS elements
    float *stage = sw + BN / 2;              // 16x16 fp32 P V result, row stride LDS
    const int r = lane >> 1, hc = lane & 1;  // lane owns row r, column half hc
    const int qrow = q0 + warp * 16 + r;

    float o[DP / 16][8];
    for (int db = 0; db < DP / 16; ++db)
        for (int i = 0; i < 8; ++i) o[db][i] = 0.0f;
    float m = -INFINITY, l = 0.0f;

    int kbase = 0;  // global index of the current segment's first key
    for (int s = 0; s < segs.n; ++s) {
        const int len = segs.len[s];
        const int64_t off = (int64_t)b * segs.bstride[s] + (int64_t)h * D;
        const T *kp = segs.k[s] + off, *vp = segs.v[s] + off;
        for (int t0 = 0; t0 < len; t0 += BN) {
            // Causal: keys past the CTA's last query are masked for every row; later
            // segments start even further right, so they break at once too.
            if (causal && kbase + t0 > q_last) break;
            const int n = len - t0 < BN ? len - t0 : BN;

            __syncthreads();  // previous P V done with kvs
            attn_load_tile<T, BN, DP, LDK>(kvs, kp + (int64_t)t0 * C, C, n, D, vec, tid);
            __syncthreads();

            {  // S_w = Q_w K^T: K (BN, LDK) row-major is K^T col-major
                wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc[BN / 16];
                for (int nb = 0; nb < BN / 16; ++nb) wmma::fill_fragment(acc[nb], 0.0f);
                for (int kb = 0; kb < DP / 16; ++kb) {
                    wmma::fragment<wmma::matrix_a, 16, 16, 16, T, wmma::row_major> a;
                    wmma::load_matrix_sync(a, qs + warp * 16 * LDK + kb * 16, LDK);
                    for (int nb = 0; nb < BN / 16; ++nb) {
                        wmma::fragment<wmma::matrix_b, 16, 16, 16, T, wmma::col_major> kf;
                        wmma::load_matrix_sync(kf, kvs + nb * 16 * LDK + kb * 16, LDK);
                        wmma::mma_sync(acc[nb], a, kf, acc[nb]);
                    }
                }
                for (int nb = 0; nb < BN / 16; ++nb)
                    wmma::store_matrix_sync(sw + nb * 16, acc[nb], LDS, wmma::mem_row_major);
            }
            __syncwarp();

            // Online softmax, base 2: lanes 2r and 2r+1 share row r, BN/2 columns each.
            float p[BN / 2];
            float mx = -INFINITY;
            for (int i = 0; i < BN / 2; ++i) {
                const int c = hc * (BN / 2) + i;
                float x = sw[r * LDS + c] * scale_log2;
                if (c >= n || (causal && kbase + t0 + c > qrow)) x = -INFINITY;
                p[i] = x;
                mx = fmaxf(mx, x);
            }
            mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
            const float m_new = fmaxf(m, mx);
            const float m_use = m_new == -INFINITY ? 0.0f : m_new;  // all masked so far
            const float alpha = exp2f(m - m_use);
            float sum = 0.0f;
            for (int i = 0; i < BN / 2; ++i) {
                p[i] = exp2f(p[i] - m_use);
                sum += p[i];
            }
            sum += __shfl_xor_sync(0xffffffffu, sum, 1);
            l = l * alpha + sum;
            m = m_new;
            __syncwarp();  // every score read before P overwrites the row fronts
            for (int i = 0; i < BN / 2; ++i)
                pw[r * 2 * LDS + hc * (BN / 2) + i] = from_f32<T>(p[i]);

            __syncthreads();  // all warps done with K
            attn_load_tile<T, BN, DP, LDK>(kvs, vp + (int64_t)t0 * C, C, n, D, vec, tid);
            __syncthreads();

            {  // O_w = O_w * alpha + P_w V, one 16-column block of O at a time
                wmma::fragment<wmma::matrix_a, 16, 16, 16, T, wmma::row_major> pf[BN / 16];
                for (int kb = 0; kb < BN / 16; ++kb)
                    wmma::load_matrix_sync(pf[kb], pw + kb * 16, 2 * LDS);
                for (int db = 0; db < DP / 16; ++db) {
                    wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc;
                    wmma::fill_fragment(acc, 0.0f);
                    for (int kb = 0; kb < BN / 16; ++kb) {
                        wmma::fragment<wmma::matrix_b, 16, 16, 16, T, wmma::row_major> vf;
                        wmma::load_matrix_sync(vf, kvs + kb * 16 * LDK + db * 16, LDK);
                        wmma::mma_sync(acc, pf[kb], vf, acc);
                    }
                    wmma::store_matrix_sync(stage, acc, LDS, wmma::mem_row_major);
                    __syncwarp();
                    for (int i = 0; i < 8; ++i)
                        o[db][i] = o[db][i] * alpha + stage[r * LDS + hc * 8 + i];
                    __syncwarp();  // staging read before the next block overwrites it
                }
            }
        }
        kbase += len;
    }

    if (qrow >= Lq) return;
    const float inv_l = l > 0.0f ? 1.0f / l : 0.0f;  // no keys at all: zeros
    T *orow = out + ((int64_t)b * Lq + qrow) * C + (int64_t)h * D;
    for (int db = 0; db < DP / 16; ++db)
        for (int i = 0; i < 8; ++i) {
            const int c = db * 16 + hc * 8 + i;
            if (c < D) orow[c] = from_f32<T>(o[db][i] * inv_l);
        }
}

#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 800
template <typename T>
struct AttnIsBf16 {
    static constexpr bool value = false;
};
template <>
struct AttnIsBf16<bf16_t> {
    static constexpr bool value = true;
};
#endif

// grid (ceil(Lq / 64), H, B), block 128, dynamic smem AttnTile<DP>::SMEM.
template <typename T, int DP>
__global__ void attn_flash_kernel(T *out, const T *q, AttnSegs<T> segs, int Lq, int C, int D,
                                  int causal, float scale_log2, int vec) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 800
    // bf16 WMMA needs sm_80; an sm_75 build keeps f16 and traps on bf16.
    if constexpr (AttnIsBf16<T>::value) {
        __trap();
    } else
#endif
    {
        attn_flash_body<T, DP>(out, q, segs, Lq, C, D, causal, scale_log2, vec);
    }
}

// grid (ceil(Lq / 64), H, B), block 64, dynamic smem 2 * BNF * D floats (K and V tiles).
// Thread t owns query row q0 + t and accumulates its output row in `out` (fp32).
template <int BNF>
__global__ void attn_f32_kernel(float *out, const float *q, AttnSegs<float> segs, int Lq, int C,
                                int D, int causal, float scale_log2) {
    DYNAMIC_SHARED(float, smem);
    float *ks = smem, *vs = smem + BNF * D;  // (BNF, D) each
    const int tid = threadIdx.x;
    const int q0 = blockIdx.x * ATTN_BM, h = blockIdx.y, b = blockIdx.z;
    const int qi = q0 + tid;
    const int valid = qi < Lq;
    const int q_last = (q0 + ATTN_BM < Lq ? q0 + ATTN_BM : Lq) - 1;
    const int64_t row_off = ((int64_t)b * Lq + (valid ? qi : q_last)) * C + (int64_t)h * D;
    const float *qr = q + row_off;
    float *orow = out + row_off;
    if (valid)
        for (int d = 0; d < D; ++d) orow[d] = 0.0f;
    float m = -INFINITY, l = 0.0f;

    int kbase = 0;
    for (int s = 0; s < segs.n; ++s) {
        const int len = segs.len[s];
        const int64_t off = (int64_t)b * segs.bstride[s] + (int64_t)h * D;
        const float *kp = segs.k[s] + off, *vp = segs.v[s] + off;
        for (int t0 = 0; t0 < len; t0 += BNF) {
            if (causal && kbase + t0 > q_last) break;
            const int n = len - t0 < BNF ? len - t0 : BNF;
            __syncthreads();  // previous tile fully used
            for (int e = tid; e < BNF * D; e += ATTN_F32_THREADS) {
                const int j = e / D, d = e % D;
                const int64_t g = (int64_t)(t0 + j) * C + d;
                ks[e] = j < n ? kp[g] : 0.0f;
                vs[e] = j < n ? vp[g] : 0.0f;
            }
            __syncthreads();
            if (!valid) continue;

            float sc[BNF];
            for (int j = 0; j < BNF; ++j) sc[j] = 0.0f;
            for (int d = 0; d < D; ++d) {
                const float qd = qr[d];
                for (int j = 0; j < BNF; ++j) sc[j] += qd * ks[j * D + d];
            }
            float mx = -INFINITY;
            for (int j = 0; j < BNF; ++j) {
                const int masked = j >= n || (causal && kbase + t0 + j > qi);
                sc[j] = masked ? -INFINITY : sc[j] * scale_log2;
                mx = fmaxf(mx, sc[j]);
            }
            const float m_new = fmaxf(m, mx);
            const float m_use = m_new == -INFINITY ? 0.0f : m_new;
            const float alpha = exp2f(m - m_use);
            float sum = 0.0f;
            for (int j = 0; j < BNF; ++j) {
                sc[j] = exp2f(sc[j] - m_use);
                sum += sc[j];
            }
            l = l * alpha + sum;
            m = m_new;
            for (int d = 0; d < D; ++d) {
                float acc = orow[d] * alpha;
                for (int j = 0; j < BNF; ++j) acc += sc[j] * vs[j * D + d];
                orow[d] = acc;
            }
        }
        kbase += len;
    }
    if (!valid) return;
    const float inv_l = l > 0.0f ? 1.0f / l : 0.0f;
    for (int d = 0; d < D; ++d) orow[d] *= inv_l;
}

template <typename T, int DP>
void attn_launch_flash(T *out, const T *q, const AttnSegs<T> &segs, int B, int Lq, int H, int C,
                       int D, int causal, float scale_log2, int vec) {
    auto kernel = attn_flash_kernel<T, DP>;
    const dim3 grid((Lq + ATTN_BM - 1) / ATTN_BM, H, B);
    KERNEL_LAUNCH(kernel, grid, dim3(ATTN_THREADS), AttnTile<DP>::SMEM, 0, out, q, segs, Lq, C, D,
                  causal, scale_log2, vec);
    ATTN_LAUNCH_CHECK();
}

template <typename T>
void attn_dispatch_flash(Tensor *out, const Tensor *q, const KVSegment *segs, int nsegs, int B,
                         int Lq, int H, int C, int D, int causal, float scale_log2, int vec) {
    AttnSegs<T> table;
    table.n = 0;
    for (int i = 0; i < nsegs; ++i) {
        const int64_t len = segs[i].k->shape[1];
        if (len == 0) continue;
        table.k[table.n] = static_cast<const T *>(segs[i].k->data);
        table.v[table.n] = static_cast<const T *>(segs[i].v->data);
        table.len[table.n] = (int)len;
        table.bstride[table.n] = segs[i].k->shape[0] == 1 ? 0 : len * C;
        table.n++;
    }
    T *o = static_cast<T *>(out->data);
    const T *qp = static_cast<const T *>(q->data);
    // smallest instantiated padded width that holds D
    if (D <= 32)
        attn_launch_flash<T, 32>(o, qp, table, B, Lq, H, C, D, causal, scale_log2, vec);
    else if (D <= 48)
        attn_launch_flash<T, 48>(o, qp, table, B, Lq, H, C, D, causal, scale_log2, vec);
    else if (D <= 64)
        attn_launch_flash<T, 64>(o, qp, table, B, Lq, H, C, D, causal, scale_log2, vec);
    else if (D <= 80)
        attn_launch_flash<T, 80>(o, qp, table, B, Lq, H, C, D, causal, scale_log2, vec);
    else if (D <= 96)
        attn_launch_flash<T, 96>(o, qp, table, B, Lq, H, C, D, causal, scale_log2, vec);
    else if (D <= 128)
        attn_launch_flash<T, 128>(o, qp, table, B, Lq, H, C, D, causal, scale_log2, vec);
    else if (D <= 160)
        attn_launch_flash<T, 160>(o, qp, table, B, Lq, H, C, D, causal, scale_log2, vec);
    else
        STORY_FATAL("cuda_attention: head dim %d > 160 is not supported for %s", D,
                    dtype_name(out->dtype));
}

void attn_dispatch_f32(Tensor *out, const Tensor *q, const KVSegment *segs, int nsegs, int B,
                       int Lq, int H, int C, int D, int causal, float scale_log2) {
    AttnSegs<float> table;
    table.n = 0;
    for (int i = 0; i < nsegs; ++i) {
        const int64_t len = segs[i].k->shape[1];
        if (len == 0) continue;
        table.k[table.n] = static_cast<const float *>(segs[i].k->data);
        table.v[table.n] = static_cast<const float *>(segs[i].v->data);
        table.len[table.n] = (int)len;
        table.bstride[table.n] = segs[i].k->shape[0] == 1 ? 0 : len * C;
        table.n++;
    }
    float *o = static_cast<float *>(out->data);
    const float *qp = static_cast<const float *>(q->data);
    const dim3 grid((Lq + ATTN_BM - 1) / ATTN_BM, H, B);
    // K and V tiles: 2 * BNF * D floats, kept <= 40 KiB
    if (D <= 160) {
        auto kernel = attn_f32_kernel<32>;
        KERNEL_LAUNCH(kernel, grid, dim3(ATTN_F32_THREADS), (size_t)2 * 32 * D * sizeof(float), 0,
                      o, qp, table, Lq, C, D, causal, scale_log2);
    } else if (D <= 1280) {
        auto kernel = attn_f32_kernel<4>;
        KERNEL_LAUNCH(kernel, grid, dim3(ATTN_F32_THREADS), (size_t)2 * 4 * D * sizeof(float), 0, o,
                      qp, table, Lq, C, D, causal, scale_log2);
    } else {
        STORY_FATAL("cuda_attention: head dim %d > 1280 is not supported for f32", D);
    }
    ATTN_LAUNCH_CHECK();
}

int attn_aligned16(const void *p) { return ((uintptr_t)p & 15u) == 0; }

}  // namespace

void cuda_attention(Tensor *out, const Tensor *q, const KVSegment *segs, int nsegs, int heads,
                    int causal, float scale) {
    char b1[96], b2[96];
    if (q->ndim != 3 || out->ndim != 3 || q->shape[0] != out->shape[0] ||
        q->shape[1] != out->shape[1] || q->shape[2] != out->shape[2] || q->dtype != out->dtype)
        STORY_FATAL("cuda_attention: q %s and out %s must be the same (B, Lq, H*D)",
                    tensor_desc(q, b1, sizeof b1), tensor_desc(out, b2, sizeof b2));
    if (q->dev != DEV_CUDA || out->dev != DEV_CUDA)
        STORY_FATAL("cuda_attention: tensors must be on the device");
    if (heads <= 0 || q->shape[2] % heads != 0)
        STORY_FATAL("cuda_attention: %d heads do not divide %lld channels", heads,
                    (long long)q->shape[2]);
    if (nsegs < 0 || nsegs > ATTN_MAX_SEGMENTS || (nsegs > 0 && !segs))
        STORY_FATAL("cuda_attention: %d segments (at most %d)", nsegs, ATTN_MAX_SEGMENTS);
    const int64_t B = q->shape[0], Lq = q->shape[1], C = q->shape[2];
    const int D = (int)(C / heads);
    int vec = D % 8 == 0 && C % 8 == 0 && attn_aligned16(q->data) && attn_aligned16(out->data);
    for (int i = 0; i < nsegs; ++i) {
        const Tensor *k = segs[i].k, *v = segs[i].v;
        if (!k || !v || k->ndim != 3 || v->ndim != 3 || k->dtype != q->dtype ||
            v->dtype != q->dtype || k->dev != DEV_CUDA || v->dev != DEV_CUDA)
            STORY_FATAL("cuda_attention: segment %d: k and v must be 3-d %s device tensors", i,
                        dtype_name(q->dtype));
        if (k->shape[0] != v->shape[0] || k->shape[1] != v->shape[1] ||
            k->shape[2] != v->shape[2] || (k->shape[0] != B && k->shape[0] != 1) ||
            k->shape[2] != C || k->shape[1] > INT32_MAX)
            STORY_FATAL("cuda_attention: segment %d: k %s, v %s; expected (%lld or 1, Lk, %lld)", i,
                        tensor_desc(k, b1, sizeof b1), tensor_desc(v, b2, sizeof b2), (long long)B,
                        (long long)C);
        vec = vec && attn_aligned16(k->data) && attn_aligned16(v->data);
    }
    if (B == 0 || Lq == 0) return;
    if (B > 65535 || heads > 65535 || Lq > INT32_MAX)
        STORY_FATAL("cuda_attention: grid too large (B %lld, heads %d)", (long long)B, heads);
    const float scale_log2 = (scale > 0.0f ? scale : 1.0f / sqrtf((float)D)) * ATTN_LOG2E;

    switch (q->dtype) {
    case DT_F32:
        if (out->data == q->data)
            STORY_FATAL("cuda_attention: f32 out must not alias q (it accumulates in out)");
        attn_dispatch_f32(out, q, segs, nsegs, (int)B, (int)Lq, heads, (int)C, D, causal,
                          scale_log2);
        break;
    case DT_F16:
        attn_dispatch_flash<half_t>(out, q, segs, nsegs, (int)B, (int)Lq, heads, (int)C, D, causal,
                                    scale_log2, vec);
        break;
    case DT_BF16:
        attn_dispatch_flash<bf16_t>(out, q, segs, nsegs, (int)B, (int)Lq, heads, (int)C, D, causal,
                                    scale_log2, vec);
        break;
    }
}

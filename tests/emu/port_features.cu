// tests/emu/port_features.cu: kernels that use every feature kernels/cuda/port.cuh offers,
// plus host wrappers that launch them. Built two ways: included by test_emu_runtime.cpp
// (emulation, where the results are checked) and compiled by nvcc in the ctest
// emu_port_nvcc_compiles, so the emulated API cannot drift from CUDA's.
// All pointers passed to the wrappers are device pointers (host memory when emulated).
#include "kernels/cuda/port.cuh"

// ---- block reduction: shared memory + __syncthreads in a loop -------------------------------
// Grid-stride sum over x (n), then a tree in shared memory: log2(blockDim.x) barriers.
// blockDim.x: a power of two <= 1024. block_sums[blockIdx.x] and *total (atomicAdd).
__global__ void pf_block_sum_kernel(const float *__restrict__ x, float *block_sums, float *total,
                                    int n) {
    __shared__ float buf[1024];
    const int tid = threadIdx.x;
    float v = 0.0f;
    for (int i = blockIdx.x * blockDim.x + tid; i < n; i += gridDim.x * blockDim.x) v += x[i];
    buf[tid] = v;
    __syncthreads();
    for (int s = blockDim.x / 2; s > 0; s >>= 1) {
        if (tid < s) buf[tid] += buf[tid + s];
        __syncthreads();
    }
    if (tid == 0) {
        block_sums[blockIdx.x] = buf[0];
        atomicAdd(total, buf[0]);
    }
}
void pf_block_sum(const float *x, float *block_sums, float *total, int n, int blocks, int threads) {
    KERNEL_LAUNCH(pf_block_sum_kernel, blocks, threads, 0, 0, x, block_sums, total, n);
}

// ---- warp reductions -----------------------------------------------------------------------
// Per warp of 32 consecutive x: out_xor[i] = warp sum seen by every lane (butterfly);
// out_down[warp] = the sum lane 0 ends with (shift down). n: a multiple of 32.
__device__ __forceinline__ float pf_warp_sum_xor(float v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}
__global__ void pf_warp_reduce_kernel(const float *x, float *out_xor, float *out_down, int n) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;  // whole warps only: n is a multiple of 32
    const float v = x[i];
    out_xor[i] = pf_warp_sum_xor(v);
    float d = v;
    for (int o = warpSize / 2; o > 0; o /= 2) d += __shfl_down_sync(0xffffffffu, d, o);
    if ((threadIdx.x & 31) == 0) out_down[i / 32] = d;
}
void pf_warp_reduce(const float *x, float *out_xor, float *out_down, int n) {
    KERNEL_LAUNCH(pf_warp_reduce_kernel, (n + 127) / 128, 128, 0, 0, x, out_xor, out_down, n);
}

// ---- shuffle variants, widths, ballots --------------------------------------------------------
// One block of 64 threads (2 warps). in[t] = value of thread t; out[t * PF_SHFL_OUT + k].
#define PF_SHFL_OUT 20
__global__ void pf_shfl_kernel(const int *in, const float *fin, int *out) {
    const int t = threadIdx.x, lane = t & 31;
    const int v = in[t];
    int *o = out + t * PF_SHFL_OUT;
    o[0] = __shfl_sync(0xffffffffu, v, 5);
    o[1] = __shfl_sync(0xffffffffu, v, 5, 16);
    o[2] = __shfl_sync(0xffffffffu, v, 37);  // srcLane modulo width
    o[3] = __shfl_up_sync(0xffffffffu, v, 3, 16);
    o[4] = __shfl_down_sync(0xffffffffu, v, 3, 16);
    o[5] = __shfl_xor_sync(0xffffffffu, v, 1, 16);
    o[6] = __shfl_down_sync(0xffffffffu, v, 1);
    o[7] = __shfl_up_sync(0xffffffffu, v, 1);
    o[8] = (int)__ballot_sync(0xffffffffu, lane % 3 == 0);
    o[9] = __any_sync(0xffffffffu, lane == 7);
    o[10] = __all_sync(0xffffffffu, v > -1000000);
    o[11] = __all_sync(0xffffffffu, lane != 5);
    const unsigned u = __shfl_xor_sync(0xffffffffu, (unsigned)v, 2, 8);
    o[12] = (int)u;
    // half and bf16 travel bit-exactly; floats and doubles too
    const half_t h = __shfl_sync(0xffffffffu, from_f32<half_t>(fin[t]), 31 - lane);
    const bf16_t b = __shfl_down_sync(0xffffffffu, from_f32<bf16_t>(fin[t]), 2);
    o[13] = __float_as_int(to_f32(h));
    o[14] = __float_as_int(to_f32(b));
    const double dd = __shfl_xor_sync(0xffffffffu, (double)fin[t] * 3.0, 4);
    o[15] = (int)(dd * 1000.0);
    __syncwarp();
    // a subset of lanes: only the lower half-warp takes part
    o[16] = -1;
    o[17] = -1;
    if (lane < 16) {
        o[16] = (int)__ballot_sync(0x0000ffffu, lane & 1);
        o[17] = __shfl_sync(0x0000ffffu, v, 15 - lane);
        __syncwarp(0x0000ffffu);
    }
    o[18] = __float2int_rn(__shfl_sync(0xffffffffu, fin[t], lane ^ 3));
    o[19] = __syncthreads_count(lane < 10) * 1000 + __syncthreads_and(t < 64) * 10 +
            __syncthreads_or(t == 63);
}
void pf_shfl(const int *in, const float *fin, int *out) {
    KERNEL_LAUNCH(pf_shfl_kernel, 1, 64, 0, 0, in, fin, out);
}

// ---- dynamic shared memory ----------------------------------------------------------------
// y = x reversed within each block's chunk, through dynamic shared memory. first[i]: what
// thread i read from its slot before anyone wrote it (garbage-filled by the emulation).
__global__ void pf_reverse_kernel(const float *x, float *y, unsigned *first, int n) {
    DYNAMIC_SHARED(float, buf);
    const int t = threadIdx.x, i = blockIdx.x * blockDim.x + t;
    first[i] = __float_as_uint(buf[t]);
    buf[t] = i < n ? x[i] : 0.0f;
    __syncthreads();
    const int j = blockIdx.x * blockDim.x + (blockDim.x - 1 - t);
    if (j < n) y[j] = buf[t];
}
void pf_reverse(const float *x, float *y, unsigned *first, int n, int threads) {
    KERNEL_LAUNCH(pf_reverse_kernel, (n + threads - 1) / threads, threads, threads * sizeof(float),
                  0, x, y, first, n);
}

// Dynamic shared memory above 48 KiB: the launch needs the function attribute, as in CUDA.
__global__ void pf_big_smem_kernel(float *out, int words) {
    DYNAMIC_SHARED(float, buf);
    for (int i = threadIdx.x; i < words; i += blockDim.x) buf[i] = (float)i;
    __syncthreads();
    float s = 0.0f;
    for (int i = threadIdx.x; i < words; i += blockDim.x) s += buf[words - 1 - i];
    atomicAdd(out, s);
}
int pf_big_smem(float *out, int words) {
    const size_t bytes = (size_t)words * sizeof(float);
    if (cudaFuncSetAttribute(pf_big_smem_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                             (int)bytes) != cudaSuccess)
        return -1;
    KERNEL_LAUNCH(pf_big_smem_kernel, 2, 256, bytes, 0, out, words);
    return cudaGetLastError() == cudaSuccess ? 0 : -1;
}

// ---- atomics from many blocks ----------------------------------------------------------------
struct PfCounters {
    int iadd;
    unsigned uadd;
    unsigned long long ulladd;
    float fadd;
    int imax;
    int cas;
    int exch;
    int imin;
};
__global__ void pf_atomics_kernel(PfCounters *c) {
    const int g = blockIdx.x * blockDim.x + threadIdx.x;
    atomicAdd(&c->iadd, 1);
    atomicAdd(&c->uadd, 2u);
    atomicAdd(&c->ulladd, (unsigned long long)g);
    atomicAdd(&c->fadd, 0.5f);
    atomicMax(&c->imax, (g * 7919) % 100003);
    atomicMin(&c->imin, 1000 - g);
    int old = c->cas, assumed;
    do {  // a read-modify-write built from CAS: += 3
        assumed = old;
        old = atomicCAS(&c->cas, assumed, assumed + 3);
    } while (old != assumed);
    atomicExch(&c->exch, g);
    __threadfence();
}
void pf_atomics(PfCounters *c, int blocks, int threads) {
    KERNEL_LAUNCH(pf_atomics_kernel, blocks, threads, 0, 0, c);
}

// ---- 2-D and 3-D grids and blocks ----------------------------------------------------------
// out[(block_linear * threads + thread_linear) * 2 + {0, 1}] = packed blockIdx, threadIdx;
// bad[0] counts threads that saw the wrong gridDim/blockDim.
__global__ void pf_grid_ids_kernel(unsigned *out, int *bad, dim3 g, dim3 b) {
    if (gridDim.x != g.x || gridDim.y != g.y || gridDim.z != g.z || blockDim.x != b.x ||
        blockDim.y != b.y || blockDim.z != b.z)
        atomicAdd(bad, 1);
    const unsigned bl = blockIdx.x + gridDim.x * (blockIdx.y + gridDim.y * blockIdx.z);
    const unsigned tl = threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z);
    const unsigned k = (bl * blockDim.x * blockDim.y * blockDim.z + tl) * 2;
    out[k] = blockIdx.x | blockIdx.y << 10 | blockIdx.z << 20;
    out[k + 1] = threadIdx.x | threadIdx.y << 10 | threadIdx.z << 20;
}
void pf_grid_ids(unsigned *out, int *bad, dim3 grid, dim3 block) {
    KERNEL_LAUNCH(pf_grid_ids_kernel, grid, block, 0, 0, out, bad, grid, block);
}

// ---- threads that return before a barrier ------------------------------------------------
// Threads t >= active return at once; the rest meet at barriers (exited threads count
// as arrived). out[t] = sum of x[0..active) - x[t] for t < active; counts[0] =
// __syncthreads_count over the active threads.
__global__ void pf_early_exit_kernel(const float *x, float *out, int *counts, int active) {
    __shared__ float vals[256];
    __shared__ float total;
    const int t = threadIdx.x;
    if (t >= active) return;
    vals[t] = x[t];
    __syncthreads();
    if (t == 0) {
        float s = 0.0f;
        for (int i = 0; i < active; i++) s += vals[i];
        total = s;
    }
    __syncthreads();
    out[t] = total - vals[t];
    const int c = __syncthreads_count(1);
    if (t == 0) counts[0] = c;
}
void pf_early_exit(const float *x, float *out, int *counts, int active) {
    KERNEL_LAUNCH(pf_early_exit_kernel, 1, 256, 0, 0, x, out, counts, active);
}

// ---- WMMA -------------------------------------------------------------------------------
// One warp: d (16, 16) = 2 * (a (16, 16) row-major @ b (16, 16) + c), b stored column-major
// (element (k, j) at b[j * 16 + k]); float accumulator, then a half accumulator version
// (dh) and a bf16 one (db, row-major b2). The factor 2 is an element-wise op on x[].
__global__ void pf_wmma_kernel(const half_t *a, const half_t *b, const float *c, float *d,
                               half_t *dh, const bf16_t *a2, const bf16_t *b2, float *db) {
    wmma::fragment<wmma::matrix_a, 16, 16, 16, half_t, wmma::row_major> fa;
    wmma::fragment<wmma::matrix_b, 16, 16, 16, half_t, wmma::col_major> fb;
    wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc;
    wmma::load_matrix_sync(fa, a, 16);
    wmma::load_matrix_sync(fb, b, 16);
    wmma::load_matrix_sync(acc, c, 16, wmma::mem_row_major);
    wmma::mma_sync(acc, fa, fb, acc);
    for (int i = 0; i < acc.num_elements; i++) acc.x[i] *= 2.0f;
    wmma::store_matrix_sync(d, acc, 16, wmma::mem_row_major);

    wmma::fragment<wmma::accumulator, 16, 16, 16, half_t> acch;
    wmma::fill_fragment(acch, from_f32<half_t>(0.0f));
    wmma::mma_sync(acch, fa, fb, acch);
    wmma::store_matrix_sync(dh, acch, 16, wmma::mem_col_major);

    wmma::fragment<wmma::matrix_a, 16, 16, 16, bf16_t, wmma::row_major> ga;
    wmma::fragment<wmma::matrix_b, 16, 16, 16, bf16_t, wmma::row_major> gb;
    wmma::fragment<wmma::accumulator, 16, 16, 16, float> gacc;
    wmma::fill_fragment(gacc, 0.0f);
    wmma::load_matrix_sync(ga, a2, 16);
    wmma::load_matrix_sync(gb, b2, 16);
    wmma::mma_sync(gacc, ga, gb, gacc);
    wmma::store_matrix_sync(db, gacc, 16, wmma::mem_row_major);
}
void pf_wmma(const half_t *a, const half_t *b, const float *c, float *d, half_t *dh,
             const bf16_t *a2, const bf16_t *b2, float *db) {
    KERNEL_LAUNCH(pf_wmma_kernel, 1, 32, 0, 0, a, b, c, d, dh, a2, b2, db);
}

// Tiled GEMM: c (M, N) f32 = a (M, K) @ b (K, N), half row-major; block = 4 warps on a
// 32x32 tile of c, warp w on the 16x16 sub-tile (w / 2, w % 2). M, N multiples of 32, K of 16.
// The K panel of a and b goes through shared memory (wmma loads from __shared__).
__global__ void __launch_bounds__(128)
    pf_gemm_kernel(const half_t *a, const half_t *b, float *c, int M, int N, int K) {
    __shared__ __align__(32) half_t as[32 * 16];
    __shared__ __align__(32) half_t bs[16 * 32];
    const int warp = threadIdx.x / 32, row0 = blockIdx.y * 32, col0 = blockIdx.x * 32;
    if (row0 >= M || col0 >= N) return;  // the whole block leaves together
    wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc;
    wmma::fill_fragment(acc, 0.0f);
    for (int k0 = 0; k0 < K; k0 += 16) {
        for (int i = threadIdx.x; i < 32 * 16; i += blockDim.x) {
            as[i] = a[(size_t)(row0 + i / 16) * K + k0 + i % 16];
            bs[i] = b[(size_t)(k0 + i / 32) * N + col0 + i % 32];
        }
        __syncthreads();
        wmma::fragment<wmma::matrix_a, 16, 16, 16, half_t, wmma::row_major> fa;
        wmma::fragment<wmma::matrix_b, 16, 16, 16, half_t, wmma::row_major> fb;
        wmma::load_matrix_sync(fa, as + (warp / 2) * 16 * 16, 16);
        wmma::load_matrix_sync(fb, bs + (warp % 2) * 16, 32);
        wmma::mma_sync(acc, fa, fb, acc);
        __syncthreads();
    }
    float *cp = c + (size_t)(row0 + (warp / 2) * 16) * N + col0 + (warp % 2) * 16;
    wmma::store_matrix_sync(cp, acc, N, wmma::mem_row_major);
}
void pf_gemm(const half_t *a, const half_t *b, float *c, int M, int N, int K) {
    KERNEL_LAUNCH(pf_gemm_kernel, dim3(N / 32, M / 32), 128, 0, 0, a, b, c, M, N, K);
}

// ---- conversions and math on the device -----------------------------------------------------
// h/b: x rounded to half / bf16; hf/bf: back to float; m[i*4 + {0..3}]: math intrinsics.
template <typename T>
__global__ void pf_convert_kernel(const float *x, T *y, float *back, int n) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) {
        y[i] = from_f32<T>(x[i]);
        back[i] = to_f32(y[i]);
    }
}
void pf_convert(const float *x, half_t *h, bf16_t *b, float *hf, float *bf, int n) {
    auto kh = pf_convert_kernel<half_t>;
    auto kb = pf_convert_kernel<bf16_t>;
    KERNEL_LAUNCH(kh, (n + 255) / 256, 256, 0, 0, x, h, hf, n);
    KERNEL_LAUNCH(kb, (n + 255) / 256, 256, 0, 0, x, b, bf, n);
}
__global__ void pf_math_kernel(const float *x, float *m, int n) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    const float v = x[i];
    m[i * 8 + 0] = rsqrtf(fabsf(v) + 1.0f);
    m[i * 8 + 1] = __expf(v) + __logf(fabsf(v) + 1.0f);
    m[i * 8 + 2] = __fdividef(v, 3.0f) + __frcp_rn(v + 10.0f);
    m[i * 8 + 3] = __saturatef(v);
    m[i * 8 + 4] = fmaxf(v, 0.0f) + fminf(v, 0.0f) + erff(v) + tanhf(v) + expf(-v * v);
    m[i * 8 + 5] = (float)__float2int_rn(v * 4.0f);
    m[i * 8 + 6] = (float)(min(i, 3) + max(i, 3)) + min(v, 0.5f) + max(v, -0.5f);
    m[i * 8 + 7] = (float)__popc(__ballot_sync(0xffffffffu, v > 0.0f) & 1u);
}
void pf_math(const float *x, float *m, int n) {
    KERNEL_LAUNCH(pf_math_kernel, (n + 31) / 32, 32, 0, 0, x, m, n);
}

// ---- everything else: vector types, constants, intrinsics, more atomics, other wmma shapes ----
__constant__ float pf_const[4] = {1.0f, 2.0f, 3.0f, 4.0f};
__device__ float pf_scale = 2.0f;
__host__ __device__ inline float pf_square(float v) { return v * v; }

// One block of 64 threads. x: 256 floats (16-byte aligned); out[t * 8 + k]; ctr[0..6]
// atomics targets (ctr[2] starts at ~0u, the rest at 0); tile: 8 x 32 floats.
__global__ void __launch_bounds__(64, 2)
    pf_misc_kernel(const float *x, float *out, unsigned *ctr, float *tile) {
    const int t = threadIdx.x;
    float *o = out + t * 8;
    const float4 v = reinterpret_cast<const float4 *>(x)[t];
    const float4 w = make_float4(v.x, v.y, v.z, v.w);
    o[0] = w.x + w.y + w.z + w.w;
    o[1] = __ldg(x + t) + pf_const[t & 3] * pf_scale;
    o[2] = __fmaf_rn(x[t], 2.0f, 1.0f) + __fsqrt_rn(4.0f) + (float)__float2int_rz(-2.7f);
    o[3] = pf_square(x[t]);
    o[4] = __half2float(__float2half_rn(x[t])) + __bfloat162float(__float2bfloat16_rn(x[t])) +
           to_f32(__ushort_as_half(__half_as_ushort(from_f32<half_t>(1.0f)))) +
           to_f32(__ushort_as_bfloat16(__bfloat16_as_ushort(from_f32<bf16_t>(1.0f))));
    o[5] = (float)(__clz(1 << (t & 15)) + __ffs(1 << (t & 15)) + __popcll(0xffull << (t % 8)));
    o[6] = __int_as_float(__float_as_int(x[t])) + __uint_as_float(__float_as_uint(1.0f));
    float sn, cs;
    __sincosf(x[t], &sn, &cs);
    o[7] = __sinf(x[t]) * sn + __cosf(x[t]) * cs + __powf(2.0f, 3.0f) + __log2f(8.0f) +
           __logf(1.0f) + __exp10f(0.0f) - __tanf(0.0f);
    atomicSub((int *)&ctr[0], 1);
    atomicOr(&ctr[1], 1u << (t % 32));
    atomicAnd(&ctr[2], ~(1u << (t % 32)));
    atomicXor(&ctr[3], 1u);
    atomicInc(&ctr[4], 9u);
    if (t == 0) atomicExch(&ctr[5], __brev(1u));
    atomicMax(&ctr[6], (unsigned)t);
    __threadfence_block();
    wmma::fragment<wmma::matrix_a, 8, 32, 16, half_t, wmma::col_major> a;
    wmma::fragment<wmma::matrix_b, 8, 32, 16, half_t, wmma::row_major> b;
    wmma::fragment<wmma::accumulator, 8, 32, 16, float> c;
    wmma::fill_fragment(a, from_f32<half_t>(1.0f));
    wmma::fill_fragment(b, from_f32<half_t>(0.5f));
    wmma::fill_fragment(c, 1.0f);
    wmma::mma_sync(c, a, b, c);
    wmma::store_matrix_sync(tile, c, 32, wmma::mem_row_major);
}
void pf_misc(const float *x, float *out, unsigned *ctr, float *tile) {
    cudaMemsetAsync(ctr, 0, 7 * sizeof(unsigned), 0);
    cudaMemsetAsync(ctr + 2, 0xff, sizeof(unsigned), 0);
    KERNEL_LAUNCH(pf_misc_kernel, 1, 64, 0, 0, x, out, ctr, tile);
    cudaStreamSynchronize(0);
    cudaDeviceSynchronize();
}

// ---- the timing kernel: y = a * x + b ---------------------------------------------------------
__global__ void pf_axpb_kernel(const float *__restrict__ x, float *__restrict__ y, float a, float b,
                               int n) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) y[i] = a * x[i] + b;
}
void pf_axpb(const float *x, float *y, float a, float b, int n) {
    KERNEL_LAUNCH(pf_axpb_kernel, (n + 255) / 256, 256, 0, 0, x, y, a, b, n);
}

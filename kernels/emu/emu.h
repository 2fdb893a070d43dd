// kernels/emu/emu.h: the CUDA emulation runtime, included by kernels/cuda/port.cuh when
// a .cu file is compiled as plain C++17 (no __CUDACC__). It gives the device side of
// CUDA that port.cuh allows, so the same kernels run on the CPU in CI:
//  - KERNEL_LAUNCH runs every block of the grid; blocks are spread over OpenMP threads
//    (dynamic schedule), one block at a time per OS thread. A block's threads are
//    fibers on that OS thread, scheduled cooperatively: a fiber runs until it finishes
//    or waits in __syncthreads / __syncwarp / a warp shuffle, then the next one runs
//    (odd-numbered blocks start from their last thread, so a missing barrier shows).
//    The launch returns when the grid is done; streams are ignored.
//  - __shared__ is `static thread_local`: the blocks of one OS thread run one after
//    another and all fibers of a block share the thread, so each block sees one copy.
//    Static shared memory keeps the previous block's values (zero before the first
//    block of an OS thread). Dynamic shared memory (DYNAMIC_SHARED) is filled with 0xFF
//    bytes (NaN as float, half and bf16; -1 as int) before every block, so a kernel that
//    reads it before writing fails its parity test, and it ends at an unmapped page.
//  - warp shuffles, ballots and __syncwarp meet at a per-warp barrier; the last lane to
//    arrive computes every lane's result (PTX shfl.sync semantics, width included).
//  - wmma: every lane holds the WHOLE tile (num_elements = M*K, K*N or M*N) and does the
//    whole load/store/mma itself, so no lane talks to another (mma_sync reuses the
//    product when a lane's inputs are bitwise those of the warp's previous mma).
//    Kernels must not assume which (row, col) fragment.x[i] holds (on the GPU a lane
//    holds 8 or 16 scattered elements): only loop over num_elements applying the same
//    operation to each.
//  - half_t / bf16_t are 2-byte structs with round-to-nearest-even conversion (as
//    __float2half_rn / __float2bfloat16_rn) and no arithmetic or implicit conversion:
//    kernels convert with to_f32 / from_f32 (port.cuh's rule).
// It is deliberately no looser than CUDA where that is cheap to check: launch limits,
// the 48 KiB dynamic shared memory default, warp masks naming exited or missing lanes,
// shuffle widths, wmma pointer alignment and ldm are checked and abort with a message,
// and a block whose threads wait for each other forever is reported as a deadlock.
// Not emulated: kernels that spin-wait on another thread of the same block (fibers are
// cooperative), spin-waits between blocks, default kernel arguments, __activemask and
// cooperative groups. Fiber stacks are 256 KiB (env STORY_EMU_STACK_KIB to change).
#pragma once
#include <float.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmath>
#include <tuple>
#include <type_traits>
#include <utility>

// ---- qualifiers -------------------------------------------------------------------------
#define __global__
#define __device__
#define __host__
#define __constant__
#define __forceinline__ __inline__ __attribute__((always_inline))
#define __restrict__ __restrict
#define __launch_bounds__(...)
#define __align__(n) __attribute__((aligned(n)))
#define __shared__ static thread_local

// ---- vector and index types (layout and alignment as in CUDA's vector_types.h) ----------
struct uint3 {
    unsigned int x, y, z;
};
struct dim3 {
    unsigned int x, y, z;
    constexpr dim3(unsigned int vx = 1, unsigned int vy = 1, unsigned int vz = 1)
        : x(vx), y(vy), z(vz) {}
    constexpr dim3(uint3 v) : x(v.x), y(v.y), z(v.z) {}
    constexpr operator uint3() const { return uint3{x, y, z}; }
};
// clang-format off
struct __align__(8) float2 { float x, y; };
struct __align__(16) float4 { float x, y, z, w; };
struct __align__(8) int2 { int x, y; };
struct __align__(16) int4 { int x, y, z, w; };
struct __align__(8) uint2 { unsigned int x, y; };
struct __align__(16) uint4 { unsigned int x, y, z, w; };
// clang-format on
static inline uint3 make_uint3(unsigned int x, unsigned int y, unsigned int z) {
    return uint3{x, y, z};
}
static inline float2 make_float2(float x, float y) { return float2{x, y}; }
static inline float4 make_float4(float x, float y, float z, float w) { return float4{x, y, z, w}; }
static inline int2 make_int2(int x, int y) { return int2{x, y}; }
static inline int4 make_int4(int x, int y, int z, int w) { return int4{x, y, z, w}; }
static inline uint2 make_uint2(unsigned int x, unsigned int y) { return uint2{x, y}; }
static inline uint4 make_uint4(unsigned int x, unsigned int y, unsigned int z, unsigned int w) {
    return uint4{x, y, z, w};
}

// ---- half and bfloat16 ------------------------------------------------------------------
namespace story_emu {
struct Bits16;
}
// IEEE binary16. Trivial (usable in __shared__ arrays and packed loads); no conversions
// or operators, as port.cuh asks kernels to use to_f32 / from_f32.
struct half_t {
    half_t() = default;

private:
    uint16_t bits_;
    friend struct story_emu::Bits16;
};
// bfloat16: the top 16 bits of a float.
struct bf16_t {
    bf16_t() = default;

private:
    uint16_t bits_;
    friend struct story_emu::Bits16;
};
static_assert(sizeof(half_t) == 2 && sizeof(bf16_t) == 2, "half_t/bf16_t must be 2 bytes");

namespace story_emu {
struct Bits16 {
    static uint16_t get(half_t h) { return h.bits_; }
    static uint16_t get(bf16_t h) { return h.bits_; }
    static half_t half(uint16_t b) {
        half_t h;
        h.bits_ = b;
        return h;
    }
    static bf16_t bf16(uint16_t b) {
        bf16_t h;
        h.bits_ = b;
        return h;
    }
};

static inline uint32_t f32_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}
static inline float bits_f32(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

// float -> binary16, round to nearest even. NaN stays NaN (quiet, sign kept).
static inline uint16_t f32_to_half_bits(float f) {
    const uint32_t u = f32_bits(f), sign = (u >> 16) & 0x8000u, a = u & 0x7fffffffu;
    if (a > 0x7f800000u) return (uint16_t)(sign | 0x7e00u);
    if (a >= 0x477ff000u) return (uint16_t)(sign | 0x7c00u);  // >= 65520 rounds to inf
    if (a >= 0x38800000u) {                                   // normal half (>= 2^-14)
        const uint32_t r = a + 0x0fffu + ((a >> 13) & 1u);    // round at bit 13
        return (uint16_t)(sign | ((r - 0x38000000u) >> 13));
    }
    if (a <= 0x33000000u) return (uint16_t)sign;  // <= 2^-25 (the tie) rounds to zero
    // subnormal half: mantissa = round(|f| / 2^-24); e in [102, 112]
    const uint32_t e = a >> 23, m = (a & 0x7fffffu) | 0x800000u, shift = 126 - e;
    uint32_t q = m >> shift;
    const uint32_t rest = m << (32 - shift);  // dropped bits, left-aligned
    q += (rest > 0x80000000u) || (rest == 0x80000000u && (q & 1u));
    return (uint16_t)(sign | q);
}
static inline float half_bits_to_f32(uint16_t h) {
    const uint32_t sign = (uint32_t)(h & 0x8000u) << 16, e = (h >> 10) & 0x1fu, m = h & 0x3ffu;
    if (e == 0) {  // zero or subnormal: m * 2^-24 is exact in float
        const float v = (float)m * 0x1p-24f;
        return sign ? -v : v;
    }
    if (e == 31) return bits_f32(sign | 0x7f800000u | (m << 13));
    return bits_f32(sign | ((e + 112) << 23) | (m << 13));
}
// float -> bfloat16, round to nearest even; NaN stays a quiet NaN.
static inline uint16_t f32_to_bf16_bits(float f) {
    const uint32_t u = f32_bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40u);
    return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}
static inline float bf16_bits_to_f32(uint16_t h) { return bits_f32((uint32_t)h << 16); }
}  // namespace story_emu

static inline float __half2float(half_t h) {
    return story_emu::half_bits_to_f32(story_emu::Bits16::get(h));
}
static inline half_t __float2half_rn(float f) {
    return story_emu::Bits16::half(story_emu::f32_to_half_bits(f));
}
static inline half_t __float2half(float f) { return __float2half_rn(f); }
static inline float __bfloat162float(bf16_t h) {
    return story_emu::bf16_bits_to_f32(story_emu::Bits16::get(h));
}
static inline bf16_t __float2bfloat16_rn(float f) {
    return story_emu::Bits16::bf16(story_emu::f32_to_bf16_bits(f));
}
static inline bf16_t __float2bfloat16(float f) { return __float2bfloat16_rn(f); }
static inline unsigned short __half_as_ushort(half_t h) { return story_emu::Bits16::get(h); }
static inline half_t __ushort_as_half(unsigned short u) { return story_emu::Bits16::half(u); }
static inline unsigned short __bfloat16_as_ushort(bf16_t h) { return story_emu::Bits16::get(h); }
static inline bf16_t __ushort_as_bfloat16(unsigned short u) { return story_emu::Bits16::bf16(u); }

static inline float to_f32(float x) { return x; }
static inline float to_f32(half_t x) { return __half2float(x); }
static inline float to_f32(bf16_t x) { return __bfloat162float(x); }
template <typename T>
T from_f32(float f);
template <>
inline float from_f32<float>(float f) {
    return f;
}
template <>
inline half_t from_f32<half_t>(float f) {
    return __float2half_rn(f);
}
template <>
inline bf16_t from_f32<bf16_t>(float f) {
    return __float2bfloat16_rn(f);
}

// ---- host runtime subset ----------------------------------------------------------------
typedef struct story_emu_stream *cudaStream_t;
typedef enum cudaError {
    cudaSuccess = 0,
    cudaErrorInvalidValue = 1,
} cudaError_t;
typedef enum cudaMemcpyKind {
    cudaMemcpyHostToHost = 0,
    cudaMemcpyHostToDevice = 1,
    cudaMemcpyDeviceToHost = 2,
    cudaMemcpyDeviceToDevice = 3,
    cudaMemcpyDefault = 4,
} cudaMemcpyKind;
enum cudaFuncAttribute { cudaFuncAttributeMaxDynamicSharedMemorySize = 8 };

static inline cudaError_t cudaGetLastError(void) { return cudaSuccess; }
static inline cudaError_t cudaPeekAtLastError(void) { return cudaSuccess; }
static inline const char *cudaGetErrorString(cudaError_t e) {
    return e == cudaSuccess ? "no error" : "invalid argument";
}
static inline cudaError_t cudaDeviceSynchronize(void) { return cudaSuccess; }
static inline cudaError_t cudaStreamSynchronize(cudaStream_t) { return cudaSuccess; }
static inline cudaError_t cudaMemsetAsync(void *p, int v, size_t n, cudaStream_t = 0) {
    memset(p, v, n);
    return cudaSuccess;
}
static inline cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t n, cudaMemcpyKind,
                                          cudaStream_t = 0) {
    memmove(dst, src, n);
    return cudaSuccess;
}

namespace story_emu {
// Launches need the attribute above 48 KiB of dynamic shared memory, as in CUDA.
cudaError_t set_max_dynamic_smem(const void *fn, int bytes);
}  // namespace story_emu
template <typename F>
cudaError_t cudaFuncSetAttribute(F *fn, cudaFuncAttribute attr, int value) {
    if (attr != cudaFuncAttributeMaxDynamicSharedMemorySize) return cudaErrorInvalidValue;
    return story_emu::set_max_dynamic_smem(reinterpret_cast<const void *>(fn), value);
}

// ---- the current thread and block --------------------------------------------------------
namespace story_emu {
// What device code reads directly; the scheduler's full state lives in emu.cpp.
struct ThreadState {
    uint3 tid;
    unsigned lane, warp;
};
struct BlockState {
    uint3 bid;
    dim3 bdim, gdim;
    unsigned char *dyn_smem;
};
extern __thread ThreadState *t_thread;  // the running fiber, NULL outside kernels
extern __thread BlockState *t_block;
[[noreturn]] void outside_kernel(const char *what);
[[noreturn]] void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static inline ThreadState *cur_thread(const char *what) {
    ThreadState *t = t_thread;
    if (__builtin_expect(t == nullptr, 0)) outside_kernel(what);
    return t;
}
static inline const uint3 &thread_idx() { return cur_thread("threadIdx")->tid; }
static inline const uint3 &block_idx() {
    (void)cur_thread("blockIdx");
    return t_block->bid;
}
static inline const dim3 &block_dim() {
    (void)cur_thread("blockDim");
    return t_block->bdim;
}
static inline const dim3 &grid_dim() {
    (void)cur_thread("gridDim");
    return t_block->gdim;
}
static inline int warp_size() { return 32; }  // a value, not a constant expression (as in CUDA)
static inline unsigned char *dynamic_shared() {
    (void)cur_thread("DYNAMIC_SHARED");
    return t_block->dyn_smem;
}
}  // namespace story_emu

#define threadIdx (::story_emu::thread_idx())
#define blockIdx (::story_emu::block_idx())
#define blockDim (::story_emu::block_dim())
#define gridDim (::story_emu::grid_dim())
#define warpSize (::story_emu::warp_size())
// The current block's dynamic shared memory (size: the launch's smem argument), 128-byte
// aligned and followed by an unmapped page: running past its end faults.
#define DYNAMIC_SHARED(T, name) T *name = reinterpret_cast<T *>(::story_emu::dynamic_shared())

// ---- launch ------------------------------------------------------------------------------
namespace story_emu {
struct LaunchCfg {
    const char *name;  // the kernel expression, for messages
    const void *fn;
    dim3 grid, block;
    size_t smem;
    void (*invoke)(const void *ctx);  // calls the kernel with the captured arguments
    const void *ctx;
};
// Validates like CUDA (aborts with a message otherwise) and runs the grid to completion.
void launch(const LaunchCfg &cfg);

template <typename... P>
class Launcher {
public:
    Launcher(const char *name, void (*fn)(P...), dim3 grid, dim3 block, size_t smem)
        : name_(name), fn_(fn), grid_(grid), block_(block), smem_(smem) {}
    // Called like the kernel itself (so NULL or 0 converts to a pointer parameter); the
    // arguments are evaluated once and copied, as CUDA does.
    void operator()(P... args) const {
        struct Ctx {
            void (*fn)(P...);
            std::tuple<std::decay_t<P>...> args;
        };
        const Ctx ctx{fn_, std::tuple<std::decay_t<P>...>(args...)};
        LaunchCfg cfg;
        cfg.name = name_;
        cfg.fn = reinterpret_cast<const void *>(fn_);
        cfg.grid = grid_;
        cfg.block = block_;
        cfg.smem = smem_;
        cfg.invoke = [](const void *p) {
            const Ctx *c = static_cast<const Ctx *>(p);
            std::apply(c->fn, c->args);
        };
        cfg.ctx = &ctx;
        launch(cfg);
    }

private:
    const char *name_;
    void (*fn_)(P...);
    dim3 grid_, block_;
    size_t smem_;
};
template <typename... P>
Launcher<P...> make_launcher(const char *name, void (*fn)(P...), dim3 grid, dim3 block, size_t smem,
                             cudaStream_t) {
    return Launcher<P...>(name, fn, grid, block, smem);
}
}  // namespace story_emu

// Synchronous: when it returns, the kernel has finished. The stream is ignored.
#define KERNEL_LAUNCH(kernel, grid, block, smem, stream, ...) \
    ::story_emu::make_launcher(#kernel, kernel, (grid), (block), (smem), (stream))(__VA_ARGS__)

// ---- barriers and warp operations --------------------------------------------------------
namespace story_emu {
enum WarpOp { WOP_SYNC = 0, WOP_SHFL = 1, WOP_BALLOT = 2 };
// Meets the lanes of mask: stores value (and the lane to read, for WOP_SHFL), waits until
// every lane of mask has arrived, returns this lane's result.
uint64_t warp_exchange(unsigned mask, int op, uint64_t value, int src_lane, const char *what);
int block_barrier(int pred);  // returns how many arrived threads had pred != 0
int block_arrivals();         // threads that took part in the last barrier of this fiber

template <typename T>
struct ShflType : std::false_type {};
#define STORY_EMU_SHFL_TYPE(T) \
    template <>                \
    struct ShflType<T> : std::true_type {};
STORY_EMU_SHFL_TYPE(int)
STORY_EMU_SHFL_TYPE(unsigned int)
STORY_EMU_SHFL_TYPE(long)
STORY_EMU_SHFL_TYPE(unsigned long)
STORY_EMU_SHFL_TYPE(long long)
STORY_EMU_SHFL_TYPE(unsigned long long)
STORY_EMU_SHFL_TYPE(float)
STORY_EMU_SHFL_TYPE(double)
STORY_EMU_SHFL_TYPE(half_t)
STORY_EMU_SHFL_TYPE(bf16_t)
#undef STORY_EMU_SHFL_TYPE

static inline int shfl_segmask(int width, const char *what) {
    if (width < 1 || width > 32 || (width & (width - 1)))
        fail("%s: width %d is not a power of two in [1, 32]", what, width);
    return 32 - width;
}
template <typename T>
static inline T shfl_via(unsigned mask, T v, int src, const char *what) {
    static_assert(ShflType<T>::value, "warp shuffle of a type CUDA does not shuffle");
    uint64_t b = 0;
    memcpy(&b, (const void *)&v, sizeof(T));
    b = warp_exchange(mask, WOP_SHFL, b, src, what);
    T r;
    memcpy((void *)&r, &b, sizeof(T));
    return r;
}
}  // namespace story_emu

static inline void __syncthreads() { story_emu::block_barrier(0); }
static inline int __syncthreads_count(int pred) { return story_emu::block_barrier(pred); }
static inline int __syncthreads_and(int pred) {
    const int n = story_emu::block_barrier(pred);
    return n == story_emu::block_arrivals();
}
static inline int __syncthreads_or(int pred) { return story_emu::block_barrier(pred) != 0; }
static inline void __syncwarp(unsigned mask = 0xffffffffu) {
    story_emu::warp_exchange(mask, story_emu::WOP_SYNC, 0, 0, "__syncwarp");
}
static inline void __threadfence() { __atomic_thread_fence(__ATOMIC_SEQ_CST); }
static inline void __threadfence_block() { __atomic_thread_fence(__ATOMIC_SEQ_CST); }
[[noreturn]] void __trap();

// Source lanes follow PTX shfl.sync: segmask = 32 - width; a lane outside the allowed
// range reads its own value.
template <typename T>
static inline T __shfl_sync(unsigned mask, T var, int srcLane, int width = 32) {
    const int seg = story_emu::shfl_segmask(width, "__shfl_sync");
    const int lane = (int)story_emu::cur_thread("__shfl_sync")->lane;
    const int j = (lane & seg) | (srcLane & ~seg & 31);
    return story_emu::shfl_via(mask, var, j, "__shfl_sync");
}
template <typename T>
static inline T __shfl_up_sync(unsigned mask, T var, unsigned delta, int width = 32) {
    const int seg = story_emu::shfl_segmask(width, "__shfl_up_sync");
    const int lane = (int)story_emu::cur_thread("__shfl_up_sync")->lane;
    const int j = lane - (int)(delta & 31);
    return story_emu::shfl_via(mask, var, j >= (lane & seg) ? j : lane, "__shfl_up_sync");
}
template <typename T>
static inline T __shfl_down_sync(unsigned mask, T var, unsigned delta, int width = 32) {
    const int seg = story_emu::shfl_segmask(width, "__shfl_down_sync");
    const int lane = (int)story_emu::cur_thread("__shfl_down_sync")->lane;
    const int j = lane + (int)(delta & 31), max_lane = (lane & seg) | (31 & ~seg);
    return story_emu::shfl_via(mask, var, j <= max_lane ? j : lane, "__shfl_down_sync");
}
template <typename T>
static inline T __shfl_xor_sync(unsigned mask, T var, int laneMask, int width = 32) {
    const int seg = story_emu::shfl_segmask(width, "__shfl_xor_sync");
    const int lane = (int)story_emu::cur_thread("__shfl_xor_sync")->lane;
    const int j = lane ^ (laneMask & 31), max_lane = (lane & seg) | (31 & ~seg);
    return story_emu::shfl_via(mask, var, j <= max_lane ? j : lane, "__shfl_xor_sync");
}
static inline unsigned __ballot_sync(unsigned mask, int pred) {
    return (unsigned)story_emu::warp_exchange(mask, story_emu::WOP_BALLOT, pred != 0, 0,
                                              "__ballot_sync");
}
static inline int __any_sync(unsigned mask, int pred) {
    return story_emu::warp_exchange(mask, story_emu::WOP_BALLOT, pred != 0, 0, "__any_sync") != 0;
}
static inline int __all_sync(unsigned mask, int pred) {
    return story_emu::warp_exchange(mask, story_emu::WOP_BALLOT, pred != 0, 0, "__all_sync") ==
           mask;
}

// ---- atomics (relaxed, as on the GPU; real atomics: blocks run on several OS threads) -----
namespace story_emu {
// Read-modify-write through compare-and-swap on the value's bits (float, double, min/max).
template <typename T, typename U, typename F>
static inline T atomic_rmw(T *addr, F f) {
    static_assert(sizeof(T) == sizeof(U), "atomic_rmw: size mismatch");
    U *p = reinterpret_cast<U *>(addr);
    U old = __atomic_load_n(p, __ATOMIC_RELAXED), upd;
    T o, n;
    do {
        memcpy(&o, &old, sizeof o);
        n = f(o);
        memcpy(&upd, &n, sizeof n);
    } while (!__atomic_compare_exchange_n(p, &old, upd, true, __ATOMIC_RELAXED, __ATOMIC_RELAXED));
    return o;
}
}  // namespace story_emu

#define STORY_EMU_ATOMIC_INT(T)                                                                   \
    static inline T atomicAdd(T *a, T v) { return __atomic_fetch_add(a, v, __ATOMIC_RELAXED); }   \
    static inline T atomicAnd(T *a, T v) { return __atomic_fetch_and(a, v, __ATOMIC_RELAXED); }   \
    static inline T atomicOr(T *a, T v) { return __atomic_fetch_or(a, v, __ATOMIC_RELAXED); }     \
    static inline T atomicXor(T *a, T v) { return __atomic_fetch_xor(a, v, __ATOMIC_RELAXED); }   \
    static inline T atomicExch(T *a, T v) { return __atomic_exchange_n(a, v, __ATOMIC_RELAXED); } \
    static inline T atomicCAS(T *a, T cmp, T v) {                                                 \
        __atomic_compare_exchange_n(a, &cmp, v, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED);       \
        return cmp;                                                                               \
    }                                                                                             \
    static inline T atomicMax(T *a, T v) {                                                        \
        return story_emu::atomic_rmw<T, T>(a, [v](T o) { return o > v ? o : v; });                \
    }                                                                                             \
    static inline T atomicMin(T *a, T v) {                                                        \
        return story_emu::atomic_rmw<T, T>(a, [v](T o) { return o < v ? o : v; });                \
    }
STORY_EMU_ATOMIC_INT(int)
STORY_EMU_ATOMIC_INT(unsigned int)
STORY_EMU_ATOMIC_INT(unsigned long long)
#undef STORY_EMU_ATOMIC_INT
static inline int atomicSub(int *a, int v) { return __atomic_fetch_sub(a, v, __ATOMIC_RELAXED); }
static inline unsigned atomicSub(unsigned *a, unsigned v) {
    return __atomic_fetch_sub(a, v, __ATOMIC_RELAXED);
}
static inline long long atomicMax(long long *a, long long v) {
    return story_emu::atomic_rmw<long long, long long>(a,
                                                       [v](long long o) { return o > v ? o : v; });
}
static inline long long atomicMin(long long *a, long long v) {
    return story_emu::atomic_rmw<long long, long long>(a,
                                                       [v](long long o) { return o < v ? o : v; });
}
static inline unsigned short atomicCAS(unsigned short *a, unsigned short cmp, unsigned short v) {
    __atomic_compare_exchange_n(a, &cmp, v, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED);
    return cmp;
}
static inline unsigned atomicInc(unsigned *a, unsigned v) {
    return story_emu::atomic_rmw<unsigned, unsigned>(
        a, [v](unsigned o) { return o >= v ? 0u : o + 1; });
}
static inline unsigned atomicDec(unsigned *a, unsigned v) {
    return story_emu::atomic_rmw<unsigned, unsigned>(
        a, [v](unsigned o) { return (o == 0 || o > v) ? v : o - 1; });
}
static inline float atomicAdd(float *a, float v) {
    return story_emu::atomic_rmw<float, uint32_t>(a, [v](float o) { return o + v; });
}
static inline double atomicAdd(double *a, double v) {
    return story_emu::atomic_rmw<double, uint64_t>(a, [v](double o) { return o + v; });
}
static inline float atomicExch(float *a, float v) {
    return story_emu::atomic_rmw<float, uint32_t>(a, [v](float) { return v; });
}

// ---- math and bit intrinsics --------------------------------------------------------------
// The fast-math intrinsics are the exact functions here; tolerances must cover the GPU's.
static inline float rsqrtf(float x) { return 1.0f / sqrtf(x); }
static inline float __frsqrt_rn(float x) { return 1.0f / sqrtf(x); }
// glibc declares __expf, __sinf, ... as its own internal names, hence macros.
#define __expf(x) expf(x)
#define __exp10f(x) powf(10.0f, (x))
#define __logf(x) logf(x)
#define __log2f(x) log2f(x)
#define __log10f(x) log10f(x)
#define __powf(x, y) powf((x), (y))
#define __sinf(x) sinf(x)
#define __cosf(x) cosf(x)
#define __tanf(x) tanf(x)
#define __sincosf(x, s, c) sincosf((x), (s), (c))
static inline float __fdividef(float a, float b) { return a / b; }
static inline float __frcp_rn(float x) { return 1.0f / x; }
static inline float __fsqrt_rn(float x) { return sqrtf(x); }
static inline float __fadd_rn(float a, float b) { return a + b; }
static inline float __fsub_rn(float a, float b) { return a - b; }
static inline float __fmul_rn(float a, float b) { return a * b; }
static inline float __fmaf_rn(float a, float b, float c) { return fmaf(a, b, c); }
static inline float __saturatef(float x) {
    return x > 0.0f ? (x < 1.0f ? x : 1.0f) : 0.0f;
}  // NaN -> 0
// cvt.rni.s32.f32 / cvt.rzi: NaN -> 0, out of range saturates.
static inline int __float2int_rn(float x) {
    if (x != x) return 0;
    if (x >= 2147483648.0f) return INT32_MAX;
    if (x <= -2147483648.0f) return INT32_MIN;
    return (int)nearbyintf(x);
}
static inline int __float2int_rz(float x) {
    if (x != x) return 0;
    if (x >= 2147483648.0f) return INT32_MAX;
    if (x <= -2147483648.0f) return INT32_MIN;
    return (int)x;
}
static inline float __int2float_rn(int i) { return (float)i; }
static inline int __float_as_int(float f) {
    int i;
    memcpy(&i, &f, 4);
    return i;
}
static inline float __int_as_float(int i) {
    float f;
    memcpy(&f, &i, 4);
    return f;
}
static inline unsigned __float_as_uint(float f) { return story_emu::f32_bits(f); }
static inline float __uint_as_float(unsigned u) { return story_emu::bits_f32(u); }
static inline int __popc(unsigned x) { return __builtin_popcount(x); }
static inline int __popcll(unsigned long long x) { return __builtin_popcountll(x); }
static inline int __clz(int x) { return x ? __builtin_clz((unsigned)x) : 32; }
static inline int __clzll(long long x) { return x ? __builtin_clzll((unsigned long long)x) : 64; }
static inline int __ffs(int x) { return __builtin_ffs(x); }
static inline int __ffsll(long long x) { return __builtin_ffsll(x); }
static inline unsigned __brev(unsigned x) {
    x = ((x >> 1) & 0x55555555u) | ((x & 0x55555555u) << 1);
    x = ((x >> 2) & 0x33333333u) | ((x & 0x33333333u) << 2);
    x = ((x >> 4) & 0x0f0f0f0fu) | ((x & 0x0f0f0f0fu) << 4);
    x = ((x >> 8) & 0x00ff00ffu) | ((x & 0x00ff00ffu) << 8);
    return (x >> 16) | (x << 16);
}
template <typename T>
static inline T __ldg(const T *p) {
    return *p;
}

// min/max: the overload set of CUDA's math_functions.hpp (same results, same ambiguities).
#define STORY_EMU_MINMAX(R, A, B)                                                   \
    static inline R min(const A a, const B b) { return (R)a < (R)b ? (R)a : (R)b; } \
    static inline R max(const A a, const B b) { return (R)a > (R)b ? (R)a : (R)b; }
STORY_EMU_MINMAX(int, int, int)
STORY_EMU_MINMAX(unsigned int, unsigned int, unsigned int)
STORY_EMU_MINMAX(unsigned int, int, unsigned int)
STORY_EMU_MINMAX(unsigned int, unsigned int, int)
STORY_EMU_MINMAX(long int, long int, long int)
STORY_EMU_MINMAX(unsigned long int, unsigned long int, unsigned long int)
STORY_EMU_MINMAX(unsigned long int, long int, unsigned long int)
STORY_EMU_MINMAX(unsigned long int, unsigned long int, long int)
STORY_EMU_MINMAX(long long int, long long int, long long int)
STORY_EMU_MINMAX(unsigned long long int, unsigned long long int, unsigned long long int)
STORY_EMU_MINMAX(unsigned long long int, long long int, unsigned long long int)
STORY_EMU_MINMAX(unsigned long long int, unsigned long long int, long long int)
#undef STORY_EMU_MINMAX
static inline float min(const float a, const float b) { return fminf(a, b); }
static inline float max(const float a, const float b) { return fmaxf(a, b); }
static inline double min(const double a, const double b) { return fmin(a, b); }
static inline double max(const double a, const double b) { return fmax(a, b); }
static inline double min(const float a, const double b) { return fmin(a, b); }
static inline double max(const float a, const double b) { return fmax(a, b); }
static inline double min(const double a, const float b) { return fmin(a, b); }
static inline double max(const double a, const float b) { return fmax(a, b); }

// ---- wmma (nvcuda::wmma subset: m16n16k16, m32n8k16, m8n32k16) ----------------------------
// Every lane holds the whole tile (see the top of this file), in row-major order inside x.
// Kernels must treat x as an unordered bag of elements: the GPU's mapping differs.
namespace wmma {
struct matrix_a {};
struct matrix_b {};
struct accumulator {};
struct row_major {};
struct col_major {};
enum layout_t { mem_row_major, mem_col_major };

namespace detail {
template <int M, int N, int K>
struct ShapeOk {
    static constexpr bool value = (M == 16 && N == 16 && K == 16) ||
                                  (M == 32 && N == 8 && K == 16) || (M == 8 && N == 32 && K == 16);
};
template <typename Use, int M, int N, int K>
struct Dims;
template <int M, int N, int K>
struct Dims<matrix_a, M, N, K> {
    static constexpr int rows = M, cols = K;
};
template <int M, int N, int K>
struct Dims<matrix_b, M, N, K> {
    static constexpr int rows = K, cols = N;
};
template <int M, int N, int K>
struct Dims<accumulator, M, N, K> {
    static constexpr int rows = M, cols = N;
};
template <typename T>
struct IsInput : std::integral_constant<bool, std::is_same<T, half_t>::value ||
                                                  std::is_same<T, bf16_t>::value> {};
template <typename L>
struct IsLayout : std::integral_constant<bool, std::is_same<L, row_major>::value ||
                                                   std::is_same<L, col_major>::value> {};
template <typename Use, typename T, typename L>
struct TypeOk {
    static constexpr bool value =
        std::is_same<Use, accumulator>::value
            ? (std::is_same<T, float>::value || std::is_same<T, half_t>::value) &&
                  std::is_same<L, void>::value
            : IsInput<T>::value && IsLayout<L>::value;
};
template <typename T>
struct Identity {
    typedef T type;
};
// CUDA's preconditions: a 256-bit aligned pointer, ldm a multiple of 16 bytes.
void check_mem(const void *p, unsigned ldm, size_t elem_size, const char *what);
}  // namespace detail

template <typename Use, int M, int N, int K, typename T, typename Layout = void>
class fragment {
    static_assert(detail::ShapeOk<M, N, K>::value,
                  "wmma: shape must be 16x16x16, 32x8x16 or 8x32x16");
    static_assert(
        detail::TypeOk<Use, T, Layout>::value,
        "wmma: no such fragment in CUDA (matrix_a/matrix_b: half_t or bf16_t with row_major or "
        "col_major; accumulator: float or half_t without a layout)");

public:
    enum {
        num_elements = detail::Dims<Use, M, N, K>::rows * detail::Dims<Use, M, N, K>::cols,
        num_storage_elements = num_elements
    };
    typedef T element_type;
    typedef T storage_element_type;
    T x[num_elements];
};

template <typename Use, int M, int N, int K, typename T, typename L>
inline void fill_fragment(fragment<Use, M, N, K, T, L> &f,
                          const typename detail::Identity<T>::type &v) {
    for (int i = 0; i < f.num_elements; i++) f.x[i] = v;
}

template <typename Use, int M, int N, int K, typename T, typename L>
inline void load_matrix_sync(fragment<Use, M, N, K, T, L> &f, const T *p, unsigned ldm) {
    static_assert(!std::is_same<Use, accumulator>::value,
                  "wmma::load_matrix_sync: an accumulator fragment takes a layout_t argument");
    detail::check_mem(p, ldm, sizeof(T), "wmma::load_matrix_sync");
    constexpr int R = detail::Dims<Use, M, N, K>::rows, C = detail::Dims<Use, M, N, K>::cols;
    const bool col = std::is_same<L, col_major>::value;
    for (int r = 0; r < R; r++)
        for (int c = 0; c < C; c++)
            f.x[r * C + c] = col ? p[(size_t)c * ldm + r] : p[(size_t)r * ldm + c];
}
template <int M, int N, int K, typename T>
inline void load_matrix_sync(fragment<accumulator, M, N, K, T> &f, const T *p, unsigned ldm,
                             layout_t layout) {
    detail::check_mem(p, ldm, sizeof(T), "wmma::load_matrix_sync");
    for (int r = 0; r < M; r++)
        for (int c = 0; c < N; c++)
            f.x[r * N + c] =
                layout == mem_col_major ? p[(size_t)c * ldm + r] : p[(size_t)r * ldm + c];
}
template <int M, int N, int K, typename T>
inline void store_matrix_sync(T *p, const fragment<accumulator, M, N, K, T> &f, unsigned ldm,
                              layout_t layout) {
    detail::check_mem(p, ldm, sizeof(T), "wmma::store_matrix_sync");
    for (int r = 0; r < M; r++)
        for (int c = 0; c < N; c++) {
            T *q = layout == mem_col_major ? p + (size_t)c * ldm + r : p + (size_t)r * ldm + c;
            *q = f.x[r * N + c];
        }
}

namespace detail {
// The 32 lanes of a warp all compute the same product. The last inputs and result per warp
// slot (per OS thread) let lanes 1..31 copy lane 0's answer after a bitwise compare of the
// inputs, so a hit is exact whatever the kernel does.
template <typename D, typename A, typename B, typename C>
struct MmaMemo {
    A a;
    B b;
    C c;
    D d;
    bool valid;
};
template <typename F>
inline bool same_frag(const F &x, const F &y) {
    return memcmp(x.x, y.x, sizeof x.x) == 0;
}
}  // namespace detail

// d = a @ b + c with fp32 accumulation, rounded once to d's type. d may be c.
template <int M, int N, int K, typename TD, typename TAB, typename LA, typename LB, typename TC>
inline void mma_sync(fragment<accumulator, M, N, K, TD> &d,
                     const fragment<matrix_a, M, N, K, TAB, LA> &a,
                     const fragment<matrix_b, M, N, K, TAB, LB> &b,
                     const fragment<accumulator, M, N, K, TC> &c) {
    static_assert(std::is_same<TAB, half_t>::value ||
                      (std::is_same<TD, float>::value && std::is_same<TC, float>::value),
                  "wmma::mma_sync: bf16 inputs need float accumulators (as in CUDA)");
    typedef detail::MmaMemo<
        fragment<accumulator, M, N, K, TD>, fragment<matrix_a, M, N, K, TAB, LA>,
        fragment<matrix_b, M, N, K, TAB, LB>, fragment<accumulator, M, N, K, TC>>
        Memo;
    static thread_local Memo memo[32];
    Memo &m = memo[story_emu::cur_thread("wmma::mma_sync")->warp];
    if (m.valid && detail::same_frag(m.a, a) && detail::same_frag(m.b, b) &&
        detail::same_frag(m.c, c)) {
        d = m.d;
        return;
    }
    m.a = a;
    m.b = b;
    m.c = c;
    float af[M * K], bf[K * N], acc[M * N];
    for (int i = 0; i < M * K; i++) af[i] = to_f32(a.x[i]);
    for (int i = 0; i < K * N; i++) bf[i] = to_f32(b.x[i]);
    for (int i = 0; i < M * N; i++) acc[i] = to_f32(c.x[i]);
    for (int i = 0; i < M; i++)
        for (int k = 0; k < K; k++) {
            const float aik = af[i * K + k];
            for (int j = 0; j < N; j++) acc[i * N + j] += aik * bf[k * N + j];
        }
    for (int i = 0; i < M * N; i++) m.d.x[i] = from_f32<TD>(acc[i]);
    m.valid = true;
    d = m.d;
}
}  // namespace wmma

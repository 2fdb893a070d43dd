// kernels/cuda/port.cuh: the portability layer every hand-written .cu kernel is
// written against. Under nvcc it maps to CUDA itself; compiled as plain C++ (no
// __CUDACC__) it maps to the emulation runtime in kernels/emu/, where grid blocks run
// on CPU threads and a block's threads run as fibers, so __syncthreads, __shared__,
// warp shuffles and WMMA fragments behave as on the GPU. CI has no GPU: the parity
// tests (ctest label cuda-emu) run every kernel through the emulation.
//
// Rules for kernels (so both builds mean the same thing):
//  - launch with KERNEL_LAUNCH(kernel, grid, block, smem_bytes, stream, args...);
//    a template kernel with several parameters: take `auto k = name<A, B>;` first.
//  - dynamic shared memory: DYNAMIC_SHARED(T, name); static: __shared__ as usual.
//  - element types: half_t, bf16_t, float; convert with to_f32(x) / from_f32<T>(f).
//  - warp ops: __shfl_xor_sync, __shfl_down_sync, __shfl_sync, __syncwarp; warp = 32.
//  - WMMA: use the `wmma::` namespace (fragment, load/store_matrix_sync, mma_sync,
//    fill_fragment). Element-wise access to fragment.x[i] must not assume which
//    (row, col) an element is: loop over num_elements and apply the same operation.
//  - no cuBLAS/cuDNN/NCCL inside files meant for the emulation (they are not emulated).
#pragma once
#include <stdint.h>

#if defined(__CUDACC__)

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <mma.h>

#define STORY_EMU 0
typedef __half half_t;
typedef __nv_bfloat16 bf16_t;
namespace wmma = nvcuda::wmma;

#define KERNEL_LAUNCH(kernel, grid, block, smem, stream, ...) \
    kernel<<<(grid), (block), (smem), (stream)>>>(__VA_ARGS__)
#define DYNAMIC_SHARED(T, name)                                   \
    extern __shared__ __align__(16) unsigned char name##_raw_[]; \
    T *name = reinterpret_cast<T *>(name##_raw_)

__device__ __forceinline__ float to_f32(float x) { return x; }
__device__ __forceinline__ float to_f32(half_t x) { return __half2float(x); }
__device__ __forceinline__ float to_f32(bf16_t x) { return __bfloat162float(x); }
template <typename T> __device__ __forceinline__ T from_f32(float f);
template <> __device__ __forceinline__ float from_f32<float>(float f) { return f; }
template <> __device__ __forceinline__ half_t from_f32<half_t>(float f) { return __float2half_rn(f); }
template <> __device__ __forceinline__ bf16_t from_f32<bf16_t>(float f) { return __float2bfloat16_rn(f); }

#else  // emulation: plain C++ on the host

#include "../emu/emu.h"
#define STORY_EMU 1

#endif

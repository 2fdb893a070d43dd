// kernels/cuda/lib_cuda.cuh: error checks and the shared cuBLAS handle for the lib_*.cu
// files, the only ones that call the CUDA runtime and cuBLAS (never emulated).
#pragma once
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include "../../runner/check.h"

// Abort with file, line and the library's own message; these failures are bugs or a
// broken device, not bad user input.
#define CUDA_CHECK(call)                                                                         \
    do {                                                                                         \
        cudaError_t err_ = (call);                                                               \
        if (err_ != cudaSuccess)                                                                 \
            STORY_FATAL("CUDA error %d (%s) in %s", (int)err_, cudaGetErrorString(err_), #call); \
    } while (0)

#define CUBLAS_CHECK(call)                                                                  \
    do {                                                                                    \
        cublasStatus_t st_ = (call);                                                        \
        if (st_ != CUBLAS_STATUS_SUCCESS)                                                   \
            STORY_FATAL("cuBLAS error %d (%s) in %s", (int)st_, cublasGetStatusString(st_), \
                        #call);                                                             \
    } while (0)

// The cuBLAS handle of the current device, created on first use (lib_runtime.cu).
cublasHandle_t story_cublas_handle(void);

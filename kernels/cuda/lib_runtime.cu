// kernels/cuda/lib_runtime.cu: device discovery and memory (kernels/cuda_runtime_api.h),
// cuda_available(), the launch-error hook of kernels.h and the shared cuBLAS handle.
// Runtime API only: the driver API (-lcuda) is never linked, so the binary starts on
// machines without a driver and reports why there is no device.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../cuda_runtime_api.h"
#include "../ops.h"
#include "kernels.h"
#include "lib_cuda.cuh"

int story_cuda_device_count(const char **why) {
    static char reason[512];
    int n = 0;  // left untouched by cudaGetDeviceCount when it fails
    const cudaError_t err = cudaGetDeviceCount(&n);
    if (err != cudaSuccess) {
        (void)cudaGetLastError();  // clear it so later calls do not report it again
        const char *hint;
        switch (err) {
        case cudaErrorInsufficientDriver:
            hint =
                "no NVIDIA driver is loaded, or it is older than the CUDA runtime storyrun was "
                "built with";
            break;
        case cudaErrorNoDevice:
            hint = "no CUDA device is visible (check CUDA_VISIBLE_DEVICES)";
            break;
        default: hint = "the CUDA runtime could not be initialised"; break;
        }
        snprintf(reason, sizeof reason, "%s (CUDA error %d: %s)", hint, (int)err,
                 cudaGetErrorString(err));
        if (why) *why = reason;
        return 0;
    }
    if (n <= 0) {
        if (why) *why = "the CUDA driver reports no devices";
        return 0;
    }
    if (why) *why = "";
    return n;
}

int story_cuda_device_info(int index, StoryDeviceInfo *info) {
    cudaDeviceProp p;
    if (!info || cudaGetDeviceProperties(&p, index) != cudaSuccess) {
        (void)cudaGetLastError();
        return -1;
    }
    memset(info, 0, sizeof *info);
    info->index = index;
    snprintf(info->name, sizeof info->name, "%s", p.name);
    info->total_mem = p.totalGlobalMem;
    info->cc_major = p.major;
    info->cc_minor = p.minor;
    info->sm_count = p.multiProcessorCount;
    return 0;
}

int story_cuda_set_device(int index) {
    if (cudaSetDevice(index) != cudaSuccess) {
        (void)cudaGetLastError();
        return -1;
    }
    return 0;
}

void *story_cuda_malloc(size_t bytes) {
    void *p = NULL;
    if (cudaMalloc(&p, bytes ? bytes : 256) != cudaSuccess) {
        (void)cudaGetLastError();
        return NULL;
    }
    return p;
}

void story_cuda_free(void *p) {
    if (p) CUDA_CHECK(cudaFree(p));
}

void story_cuda_memcpy(void *dst, const void *src, size_t bytes, int kind) {
    static const cudaMemcpyKind kinds[3] = {cudaMemcpyHostToDevice, cudaMemcpyDeviceToHost,
                                            cudaMemcpyDeviceToDevice};
    STORY_CHECK(kind >= 0 && kind < 3, "story_cuda_memcpy: kind must be 0, 1 or 2");
    if (bytes == 0) return;
    CUDA_CHECK(cudaMemcpy(dst, src, bytes, kinds[kind]));
}

void story_cuda_sync(void) { CUDA_CHECK(cudaDeviceSynchronize()); }

int cuda_available(void) {
    static int avail = -1;
    if (avail < 0) avail = story_cuda_device_count(NULL) > 0;
    return avail;
}

void story_cuda_check_launch(const char *what, const char *file, int line) {
    static int sync_each = -1;
    if (sync_each < 0) {
        const char *e = getenv("STORY_CUDA_SYNC");
        sync_each = e && *e && strcmp(e, "0") != 0;
    }
    cudaError_t err = cudaGetLastError();
    if (err == cudaSuccess && sync_each) err = cudaDeviceSynchronize();
    if (err != cudaSuccess) {
        fprintf(stderr, "storyrun: fatal at %s:%d: CUDA kernel %s failed: error %d (%s)%s\n", file,
                line, what, (int)err, cudaGetErrorString(err),
                sync_each
                    ? ""
                    : "; set STORY_CUDA_SYNC=1 to report faults at the launch that caused them");
        abort();
    }
}

// One handle per device, made on first use on that device. Handles live for the
// process: destroying them at exit would race the driver's own teardown.
#define STORY_MAX_DEVICES 64
cublasHandle_t story_cublas_handle(void) {
    static cublasHandle_t handles[STORY_MAX_DEVICES];
    int dev = 0;
    CUDA_CHECK(cudaGetDevice(&dev));
    STORY_CHECK(dev >= 0 && dev < STORY_MAX_DEVICES, "device index beyond STORY_MAX_DEVICES");
    if (!handles[dev]) CUBLAS_CHECK(cublasCreate(&handles[dev]));
    return handles[dev];
}

// kernels/cuda_runtime_api.h: the few device-memory calls host C code needs, so that
// nothing outside kernels/cuda includes CUDA headers. Without CUDA they fail cleanly.
#pragma once
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    int index;
    char name[256];
    size_t total_mem;
    int cc_major, cc_minor;
    int sm_count;
} StoryDeviceInfo;

// Number of usable CUDA devices; 0 with a reason in *why when there are none.
int story_cuda_device_count(const char **why);
int story_cuda_device_info(int index, StoryDeviceInfo *info);
int story_cuda_set_device(int index);
void *story_cuda_malloc(size_t bytes);  // NULL on failure
void story_cuda_free(void *p);
// kind: 0 host->device, 1 device->host, 2 device->device
void story_cuda_memcpy(void *dst, const void *src, size_t bytes, int kind);
void story_cuda_sync(void);

#ifdef __cplusplus
}
#endif

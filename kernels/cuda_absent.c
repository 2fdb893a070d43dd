// kernels/cuda_absent.c: the device-memory API in a build without CUDA. Every call
// reports that there is no CUDA back end; nothing here pretends to be a device.
#include "cuda_runtime_api.h"

#include "../runner/check.h"

int story_cuda_device_count(const char **why) {
    if (why) *why = "this build of storyrun has no CUDA back end (configured with STORY_CUDA=OFF or no nvcc found)";
    return 0;
}
int story_cuda_device_info(int index, StoryDeviceInfo *info) {
    (void)index;
    (void)info;
    return -1;
}
int story_cuda_set_device(int index) {
    (void)index;
    return -1;
}
void *story_cuda_malloc(size_t bytes) {
    (void)bytes;
    return NULL;
}
void story_cuda_free(void *p) { (void)p; }
void story_cuda_memcpy(void *dst, const void *src, size_t bytes, int kind) {
    (void)dst, (void)src, (void)bytes, (void)kind;
    STORY_FATAL("device copy requested, but this build has no CUDA back end");
}
void story_cuda_sync(void) {}
int cuda_available(void) { return 0; }

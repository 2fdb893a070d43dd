// kernels/arena.c: one allocation per arena, bump-pointer tensors. Host arenas use
// aligned_alloc; device arenas go through story_cuda_malloc (the CUDA back end, the
// emulation runtime, or cuda_absent.c, whichever this binary links). Also the copies of
// tensors between dtypes and devices (tensor.h), which need the same device API.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../runner/check.h"
#include "cuda_runtime_api.h"
#include "tensor.h"

int arena_init(Arena *a, Device dev, size_t bytes) {
    memset(a, 0, sizeof *a);
    a->dev = dev;
    a->cap = bytes;
    a->owns = 1;
    if (dev == DEV_CPU) {
        a->base = aligned_alloc(256, (bytes + 255) & ~(size_t)255);
    } else {
        a->base = story_cuda_malloc(bytes);
    }
    if (!a->base) {
        fprintf(stderr, "storyrun: cannot allocate a %.1f MiB %s arena\n", bytes / 1048576.0,
                dev == DEV_CPU ? "host" : "device");
        return -1;
    }
    return 0;
}

void arena_free(Arena *a) {
    if (a->owns && a->base) {
        if (a->dev == DEV_CPU)
            free(a->base);
        else
            story_cuda_free(a->base);
    }
    memset(a, 0, sizeof *a);
}

void *arena_alloc(Arena *a, size_t bytes) {
    size_t off = (a->used + 255) & ~(size_t)255;
    if (off + bytes > a->cap)
        STORY_FATAL("arena full: need %zu bytes more, %zu of %zu used (raise the arena size)", bytes,
                    a->used, a->cap);
    a->used = off + bytes;
    if (a->used > a->peak) a->peak = a->used;
    return a->base + off;
}

Tensor arena_tensor(Arena *a, DType dt, int ndim, const int64_t *shape) {
    Tensor t = tensor_view(NULL, dt, a->dev, ndim, shape);
    t.data = arena_alloc(a, tensor_nbytes(&t));
    return t;
}

// ---- copies between dtypes and devices ------------------------------------------------------

void tensor_to_host_f32(const Tensor *t, float *dst) {
    const int64_t n = tensor_numel(t);
    const size_t bytes = tensor_nbytes(t);
    if (t->dtype == DT_F32) {
        if (t->dev == DEV_CPU)
            memmove(dst, t->data, bytes);
        else
            story_cuda_memcpy(dst, t->data, bytes, 1);
        return;
    }
    uint16_t *h = t->dev == DEV_CPU ? t->data : mallocCheck(bytes ? bytes : 1);
    if (t->dev != DEV_CPU) story_cuda_memcpy(h, t->data, bytes, 1);
    for (int64_t i = 0; i < n; i++)
        dst[i] = t->dtype == DT_F16 ? f16_to_f32(h[i]) : bf16_to_f32(h[i]);
    if (t->dev != DEV_CPU) free(h);
}

void tensor_from_host_f32(Tensor *t, const float *src) {
    const int64_t n = tensor_numel(t);
    const size_t bytes = tensor_nbytes(t);
    if (t->dtype == DT_F32) {
        if (t->dev == DEV_CPU)
            memmove(t->data, src, bytes);
        else
            story_cuda_memcpy(t->data, src, bytes, 0);
        return;
    }
    uint16_t *h = mallocCheck(bytes ? bytes : 1);  // src may be t's own memory
    for (int64_t i = 0; i < n; i++)
        h[i] = t->dtype == DT_F16 ? f32_to_f16(src[i]) : f32_to_bf16(src[i]);
    if (t->dev == DEV_CPU)
        memcpy(t->data, h, bytes);
    else
        story_cuda_memcpy(t->data, h, bytes, 0);
    free(h);
}

void tensor_copy_convert(Tensor *dst, const Tensor *src) {
    STORY_CHECK(tensor_numel(dst) == tensor_numel(src), "copy of %lld into %lld elements",
                (long long)tensor_numel(src), (long long)tensor_numel(dst));
    if (dst->dtype == src->dtype && dst->dev == src->dev) {
        if (dst->data == src->data) return;
        if (dst->dev == DEV_CPU)
            memcpy(dst->data, src->data, tensor_nbytes(dst));
        else
            story_cuda_memcpy(dst->data, src->data, tensor_nbytes(dst), 2);
        return;
    }
    float *tmp = mallocCheck((size_t)tensor_numel(src) * sizeof(float) + 1);
    tensor_to_host_f32(src, tmp);
    tensor_from_host_f32(dst, tmp);
    free(tmp);
}

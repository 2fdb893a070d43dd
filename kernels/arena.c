// kernels/arena.c: one allocation per arena, bump-pointer tensors. Host arenas use
// aligned_alloc; device arenas go through story_cuda_malloc (the CUDA back end, the
// emulation runtime, or cuda_absent.c, whichever this binary links).
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

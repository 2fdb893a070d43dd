// kernels/tensor.h: the one tensor type every op and model uses, and the arena that
// backs it so a forward pass allocates once, not per op.
#pragma once
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { DT_F32 = 0, DT_F16 = 1, DT_BF16 = 2 } DType;
typedef enum { DEV_CPU = 0, DEV_CUDA = 1 } Device;

#define TENSOR_MAX_DIMS 4

// Row-major, contiguous. Images are NCHW, token sequences (B, L, C), weights as the
// reference checkpoints store them (linear: (out, in); conv: (Co, Ci, kh, kw)).
typedef struct {
    void *data;
    int ndim;
    int64_t shape[TENSOR_MAX_DIMS];
    DType dtype;
    Device dev;
} Tensor;

size_t dtype_size(DType dt);
const char *dtype_name(DType dt);
int64_t tensor_numel(const Tensor *t);
size_t tensor_nbytes(const Tensor *t);
// Wraps existing memory; ndim entries of shape are read.
Tensor tensor_view(void *data, DType dt, Device dev, int ndim, const int64_t *shape);
// Same data, new shape (numel must match).
Tensor tensor_reshape(const Tensor *t, int ndim, const int64_t *shape);
// "(2, 77, 768) f16 cuda" into buf.
const char *tensor_desc(const Tensor *t, char *buf, size_t n);

// f16/bf16 <-> f32 conversion on the host (round to nearest even).
// Between dtypes and devices (kernels/arena.c; device copies go through a host buffer):
// host f32 copy of t (any dtype, host or device) into dst (numel floats);
void tensor_to_host_f32(const Tensor *t, float *dst);
// t (any dtype and device) = src (numel host floats; may be t's own data when t is host f32);
void tensor_from_host_f32(Tensor *t, const float *src);
// dst = src where the element counts match; dtypes and devices may differ.
void tensor_copy_convert(Tensor *dst, const Tensor *src);
// Rows [r0, r0 + n) of t along dim 0, as a view.
Tensor tensor_rows(const Tensor *t, int64_t r0, int64_t n);

uint16_t f32_to_f16(float f);
float f16_to_f32(uint16_t h);
uint16_t f32_to_bf16(float f);
float bf16_to_f32(uint16_t h);

// Arena: one allocation, bump-pointer tensors, mark/release for scratch reuse.
typedef struct {
    char *base;
    size_t cap, used, peak;
    Device dev;
    int owns;
} Arena;

// Returns 0 on success, -1 if the memory cannot be had (message on stderr).
int arena_init(Arena *a, Device dev, size_t bytes);
void arena_free(Arena *a);
void *arena_alloc(Arena *a, size_t bytes);   // 256-byte aligned; fatal when full
Tensor arena_tensor(Arena *a, DType dt, int ndim, const int64_t *shape);
static inline size_t arena_mark(const Arena *a) { return a->used; }
static inline void arena_release(Arena *a, size_t mark) { a->used = mark; }

// Shorthand for shapes: T4(a, b, c, d) etc. build an int64_t array literal.
#define SHAPE(...) ((const int64_t[]){__VA_ARGS__})
#define NDIM(...) ((int)(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t)))
#define ARENA_TENSOR(a, dt, ...) arena_tensor((a), (dt), NDIM(__VA_ARGS__), SHAPE(__VA_ARGS__))

#ifdef __cplusplus
}
#endif

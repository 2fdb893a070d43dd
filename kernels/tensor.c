// kernels/tensor.c: tensor helpers and host fp16/bf16 conversion (the arena is arena.c).
#include "tensor.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../runner/check.h"

size_t dtype_size(DType dt) { return dt == DT_F32 ? 4 : 2; }

const char *dtype_name(DType dt) {
    switch (dt) {
    case DT_F32: return "f32";
    case DT_F16: return "f16";
    case DT_BF16: return "bf16";
    }
    return "?";
}

int64_t tensor_numel(const Tensor *t) {
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++) n *= t->shape[i];
    return n;
}

size_t tensor_nbytes(const Tensor *t) { return (size_t)tensor_numel(t) * dtype_size(t->dtype); }

Tensor tensor_view(void *data, DType dt, Device dev, int ndim, const int64_t *shape) {
    STORY_CHECK(ndim >= 1 && ndim <= TENSOR_MAX_DIMS, "tensor rank must be 1..4");
    Tensor t = {.data = data, .ndim = ndim, .dtype = dt, .dev = dev};
    for (int i = 0; i < ndim; i++) t.shape[i] = shape[i];
    return t;
}

Tensor tensor_reshape(const Tensor *t, int ndim, const int64_t *shape) {
    Tensor r = tensor_view(t->data, t->dtype, t->dev, ndim, shape);
    STORY_CHECK(tensor_numel(&r) == tensor_numel(t), "reshape must keep the element count");
    return r;
}

const char *tensor_desc(const Tensor *t, char *buf, size_t n) {
    size_t off = (size_t)snprintf(buf, n, "(");
    for (int i = 0; i < t->ndim && off < n; i++)
        off += (size_t)snprintf(buf + off, n - off, i ? ", %lld" : "%lld", (long long)t->shape[i]);
    if (off < n) snprintf(buf + off, n - off, ") %s %s", dtype_name(t->dtype), t->dev == DEV_CPU ? "cpu" : "cuda");
    return buf;
}

// IEEE half: 1 sign, 5 exponent, 10 mantissa bits; round to nearest even.
uint16_t f32_to_f16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000u;
    uint32_t absx = x & 0x7fffffffu;
    if (absx >= 0x7f800000u) return (uint16_t)(sign | 0x7c00u | (absx > 0x7f800000u ? 0x200u : 0));
    if (absx >= 0x477ff000u) return (uint16_t)(sign | 0x7c00u);  // overflows to inf after rounding
    if (absx < 0x38800000u) {                                     // subnormal or zero in half
        if (absx < 0x33000000u) return (uint16_t)sign;
        uint32_t e = absx >> 23, m = (absx & 0x7fffffu) | 0x800000u;
        uint32_t shift = 126 - e;  // 14 + (113 - e)
        uint32_t r = m >> shift, rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (r & 1))) r++;
        return (uint16_t)(sign | r);
    }
    uint32_t r = absx + 0xfffu + ((absx >> 13) & 1u);
    return (uint16_t)(sign | ((r - 0x38000000u) >> 13));
}

float f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16, e = (h >> 10) & 0x1f, m = h & 0x3ffu, x;
    if (e == 0) {
        if (m == 0) {
            x = sign;
        } else {  // subnormal: normalise
            e = 113;
            while (!(m & 0x400u)) { m <<= 1; e--; }
            x = sign | (e << 23) | ((m & 0x3ffu) << 13);
        }
    } else if (e == 31) {
        x = sign | 0x7f800000u | (m << 13);
    } else {
        x = sign | ((e + 112) << 23) | (m << 13);
    }
    float f;
    memcpy(&f, &x, 4);
    return f;
}

uint16_t f32_to_bf16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((x >> 16) | 0x40u);  // quiet NaN
    x += 0x7fffu + ((x >> 16) & 1u);
    return (uint16_t)(x >> 16);
}

float bf16_to_f32(uint16_t h) {
    uint32_t x = (uint32_t)h << 16;
    float f;
    memcpy(&f, &x, 4);
    return f;
}


Tensor tensor_rows(const Tensor *t, int64_t r0, int64_t n) {
    Tensor v = *t;
    const size_t row = t->shape[0] ? tensor_nbytes(t) / (size_t)t->shape[0] : 0;
    v.data = (char *)t->data + (size_t)r0 * row;
    v.shape[0] = n;
    return v;
}

// models/safetensors.h: reading and writing .safetensors files (weights, golden data,
// trained checkpoints).
//
// File layout: 8-byte little-endian header length N, N bytes of JSON header, then the
// data area. The header is an object of tensor name -> {"dtype", "shape",
// "data_offsets": [begin, end]} (offsets relative to the data area) plus an optional
// "__metadata__" object of string -> string. Everything in the header is validated
// before any pointer into the data is handed out; a bad file is reported through the
// return value and a message naming the file, the tensor or header byte, and what was
// expected (user input, so never fatal).
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "../kernels/tensor.h"

struct JsonDoc;

#ifdef __cplusplus
extern "C" {
#endif

// The element types of the format (names as they appear in the header).
typedef enum {
    ST_BOOL,
    ST_U8,
    ST_I8,
    ST_U16,
    ST_I16,
    ST_F16,
    ST_BF16,
    ST_U32,
    ST_I32,
    ST_F32,
    ST_U64,
    ST_I64,
    ST_F64,
    ST_F8_E4M3,
    ST_F8_E5M2,
    ST_NDTYPES
} StDType;

#define ST_MAX_DIMS 8

size_t st_dtype_size(StDType dt);
const char *st_dtype_name(StDType dt);  // "F32", "BF16", ...

typedef struct {
    const char *name;
    StDType dtype;
    int ndim;  // 0 for a scalar
    int64_t shape[ST_MAX_DIMS];
    int64_t numel;
    const void *data;  // into the mapping; may be unaligned (use st_load_* or memcpy)
    size_t nbytes;
    uint64_t begin, end;  // data_offsets, relative to the data area
} SafeTensorsEntry;

// An open file. Fields are read-only for users; go through the functions below.
typedef struct {
    char *path;
    void *map;
    size_t map_size;
    const uint8_t *data;  // the data area
    size_t data_size;
    SafeTensorsEntry *entries;  // sorted by data offset (file order)
    int count;
    int *by_name;       // indices into entries, sorted by name (for st_find)
    const char **meta;  // 2 * nmeta strings: key, value, key, value, ... sorted by key
    int nmeta;
    struct JsonDoc *header;  // the parsed header (runner/json.h): owns names, keys, values
} SafeTensors;

// Maps and validates `path`. Returns 0, or -1 with a message in err (st is then empty
// and st_close on it is harmless).
int st_open(SafeTensors *st, const char *path, char *err, size_t errlen);
// The same for a whole file image already in memory (builtin weights, fuzzing): bytes
// must outlive st; name stands for the path in messages.
int st_open_memory(SafeTensors *st, const void *bytes, size_t size, const char *name, char *err,
                   size_t errlen);
void st_close(SafeTensors *st);

const SafeTensorsEntry *st_find(const SafeTensors *st, const char *name);  // NULL: absent
int st_count(const SafeTensors *st);
const SafeTensorsEntry *st_entry(const SafeTensors *st, int i);  // 0 <= i < st_count
const char *st_meta(const SafeTensors *st, const char *key);     // NULL: absent
int st_meta_count(const SafeTensors *st);
// i-th metadata pair (sorted by key); returns the key and sets *value.
const char *st_meta_at(const SafeTensors *st, int i, const char **value);

// Converts an entry's elements to f32 into dst (numel floats, host memory). Floating
// types and integers/bool convert; F8 types are refused. Returns 0, or -1.
int st_load_f32(const SafeTensorsEntry *e, float *dst);
// The same into f32, f16 or bf16 host memory (f16 -> f16 and bf16 -> bf16 copy bits).
int st_load_as(const SafeTensorsEntry *e, DType dt, void *dst);

// One tensor to write: ndim entries of shape are read; data holds numel * dtype size
// bytes in the dtype's little-endian layout.
typedef struct {
    const char *name;
    StDType dtype;
    int ndim;
    const int64_t *shape;
    const void *data;
} StWriteTensor;

// Writes tensors (in the given order, contiguous) and metadata pairs meta_kv[2i] ->
// meta_kv[2i + 1] to `path` atomically: a temporary file in the same folder, flushed,
// then renamed, so `path` is either the old file or the complete new one. The header
// is padded with spaces to a multiple of 8 bytes. Returns 0, or -1 with a message.
int st_write(const char *path, const StWriteTensor *tensors, int n, const char *const *meta_kv,
             int nmeta, char *err, size_t errlen);

#ifdef __cplusplus
}
#endif

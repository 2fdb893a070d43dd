// models/safetensors.c: mmap-based .safetensors reader with a strict header check (the
// JSON itself is read by runner/json.c), and an atomic writer. See safetensors.h for the
// format and the error conventions.
#define _POSIX_C_SOURCE 200809L
#include "safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runner/json.h"

#if defined(__GNUC__)
#define ST_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#else
#define ST_PRINTF(fmt, args)
#endif

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors.c reads little-endian data in place: big-endian hosts are not supported"
#endif

// A header larger than this is refused before parsing (the reference implementation
// uses the same limit); real checkpoints have headers of a few hundred KB.
#define ST_MAX_HEADER 100000000ull

static const struct {
    const char *name;
    size_t size;
} st_types[ST_NDTYPES] = {
    [ST_BOOL] = {"BOOL", 1}, [ST_U8] = {"U8", 1},           [ST_I8] = {"I8", 1},
    [ST_U16] = {"U16", 2},   [ST_I16] = {"I16", 2},         [ST_F16] = {"F16", 2},
    [ST_BF16] = {"BF16", 2}, [ST_U32] = {"U32", 4},         [ST_I32] = {"I32", 4},
    [ST_F32] = {"F32", 4},   [ST_U64] = {"U64", 8},         [ST_I64] = {"I64", 8},
    [ST_F64] = {"F64", 8},   [ST_F8_E4M3] = {"F8_E4M3", 1}, [ST_F8_E5M2] = {"F8_E5M2", 1},
};

size_t st_dtype_size(StDType dt) { return (unsigned)dt < ST_NDTYPES ? st_types[dt].size : 0; }
const char *st_dtype_name(StDType dt) {
    return (unsigned)dt < ST_NDTYPES ? st_types[dt].name : "?";
}

static void st_msg(char *err, size_t errlen, const char *fmt, ...) {
    if (!err || !errlen) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

// ---- header ---------------------------------------------------------------------------
// The header is parsed by runner/json.c (strict JSON), then held to exactly the grammar of
// a safetensors header: anything else (other value types, unknown or repeated fields) is
// an error naming the tensor and the header byte.

// Reports a problem at header byte pos. Returns -1 for `return st_herr(...)`.
ST_PRINTF(5, 6)
static int st_herr(const SafeTensors *st, size_t pos, char *err, size_t errlen, const char *fmt,
                   ...) {
    char what[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    st_msg(err, errlen, "%s: bad safetensors header at header byte %zu (file offset %zu): %s",
           st->path, pos, pos + 8, what);
    return -1;
}

// A JSON syntax error, phrased for a header: the tensor and field it lies in (from the
// error's JSON Pointer), and "header ends" when the text stops early.
static int st_syntax(const SafeTensors *st, const JsonError *je, char *err, size_t errlen) {
    char name[128], field[16], ctx[200] = "";
    if (json_pointer_part(je->path, 0, name, sizeof name) >= 0) {
        if (!strcmp(name, "__metadata__")) {
            snprintf(ctx, sizeof ctx, "in __metadata__ (an object of string -> string): ");
        } else {
            if (json_pointer_part(je->path, 1, field, sizeof field) < 0) field[0] = '\0';
            bool list = !strcmp(field, "shape") || !strcmp(field, "data_offsets");
            snprintf(ctx, sizeof ctx, "tensor '%s'%s%s%s: ", name, list ? ": " : "",
                     list ? field : "", list ? " (a list of non-negative integers)" : "");
        }
    }
    if (je->eof && je->expected)
        return st_herr(st, je->pos, err, errlen, "%sheader ends where %s was expected", ctx,
                       je->expected);
    return st_herr(st, je->pos, err, errlen, "%s%s", ctx, je->what);
}

static bool st_key_is(const JsonMember *m, const char *s) {
    return m->key_len == strlen(s) && !memcmp(m->key, s, m->key_len);
}

// shape or data_offsets: a list of at most maxn non-negative integers.
static int st_uints(const SafeTensors *st, const JsonMember *m, const char *name, uint64_t *vals,
                    int maxn, int *count, char *err, size_t errlen) {
    const JsonValue *v = &m->value;
    if (v->type != JSON_ARRAY)
        return st_herr(st, v->pos, err, errlen,
                       "tensor '%s': %s: expected a list of non-negative integers, found %s", name,
                       m->key, json_type_name(v->type));
    if (v->len > (size_t)maxn)
        return st_herr(st, v->items[maxn].pos, err, errlen, "tensor '%s': %s: more than %d values",
                       name, m->key, maxn);
    for (size_t i = 0; i < v->len; i++) {
        const JsonValue *x = &v->items[i];
        if (x->type != JSON_NUMBER || !x->is_int || x->i < 0)
            return st_herr(st, x->pos, err, errlen,
                           "tensor '%s': %s: expected a non-negative integer (below 2^63), "
                           "found %.40s",
                           name, m->key, x->type == JSON_NUMBER ? x->str : json_type_name(x->type));
        vals[i] = (uint64_t)x->i;
    }
    *count = (int)v->len;
    return 0;
}

// {"dtype": "F32", "shape": [..], "data_offsets": [b, e]} in any order, each once.
static int st_tensor_info(const SafeTensors *st, const JsonValue *info, SafeTensorsEntry *e,
                          char *err, size_t errlen) {
    const char *name = e->name;
    if (info->type != JSON_OBJECT)
        return st_herr(st, info->pos, err, errlen,
                       "expected '{' in the entry of tensor '%.100s', found %s", name,
                       json_type_name(info->type));
    if (info->len == 0)
        return st_herr(st, info->pos, err, errlen,
                       "tensor '%s' has no dtype, shape or data_offsets", name);
    int have_dtype = 0, have_shape = 0, have_off = 0;
    for (size_t i = 0; i < info->len; i++) {
        const JsonMember *m = &info->members[i];
        const JsonValue *v = &m->value;
        if (st_key_is(m, "dtype")) {
            if (have_dtype++)
                return st_herr(st, m->key_pos, err, errlen, "tensor '%s': dtype given twice", name);
            if (v->type != JSON_STRING)
                return st_herr(st, v->pos, err, errlen,
                               "tensor '%s': dtype: expected a string such as \"F32\", found %s",
                               name, json_type_name(v->type));
            int found = -1;
            for (int t = 0; t < ST_NDTYPES; t++)
                if (!strcmp(v->str, st_types[t].name) && strlen(v->str) == v->len) found = t;
            if (found < 0)
                return st_herr(
                    st, v->pos, err, errlen,
                    "tensor '%s': unknown dtype '%.40s' (expected one of F32, F16, BF16, F64, "
                    "I64, I32, I16, I8, U64, U32, U16, U8, BOOL, F8_E4M3, F8_E5M2)",
                    name, v->str);
            e->dtype = (StDType)found;
        } else if (st_key_is(m, "shape")) {
            if (have_shape++)
                return st_herr(st, m->key_pos, err, errlen, "tensor '%s': shape given twice", name);
            uint64_t dims[ST_MAX_DIMS];
            if (st_uints(st, m, name, dims, ST_MAX_DIMS, &e->ndim, err, errlen)) return -1;
            for (int d = 0; d < e->ndim; d++) e->shape[d] = (int64_t)dims[d];
        } else if (st_key_is(m, "data_offsets")) {
            if (have_off++)
                return st_herr(st, m->key_pos, err, errlen, "tensor '%s': data_offsets given twice",
                               name);
            uint64_t off[2];
            int n = 0;
            if (st_uints(st, m, name, off, 2, &n, err, errlen)) return -1;
            if (n != 2)
                return st_herr(st, v->pos, err, errlen,
                               "tensor '%s': data_offsets must be [begin, end], got %d values",
                               name, n);
            e->begin = off[0];
            e->end = off[1];
        } else {
            return st_herr(
                st, m->key_pos, err, errlen,
                "tensor '%s': unknown field '%.40s' (expected dtype, shape, data_offsets)", name,
                m->key);
        }
    }
    if (!have_dtype || !have_shape || !have_off)
        return st_herr(st, info->pos, err, errlen, "tensor '%s' lacks %s", name,
                       !have_dtype   ? "dtype"
                       : !have_shape ? "shape"
                                     : "data_offsets");
    return 0;
}

static int st_metadata(SafeTensors *st, const JsonValue *v, char *err, size_t errlen) {
    const char *ctx = "in __metadata__ (an object of string -> string)";
    if (v->type != JSON_OBJECT)
        return st_herr(st, v->pos, err, errlen, "expected '{' %s, found %s", ctx,
                       json_type_name(v->type));
    st->meta = malloc(sizeof(char *) * 2 * (v->len ? v->len : 1));
    if (!st->meta) return st_herr(st, v->pos, err, errlen, "out of memory");
    for (size_t i = 0; i < v->len; i++) {
        const JsonMember *m = &v->members[i];
        if (strlen(m->key) != m->key_len)
            return st_herr(st, m->key_pos, err, errlen,
                           "\\u0000 is not allowed in names or metadata");
        if (m->value.type != JSON_STRING)
            return st_herr(st, m->value.pos, err, errlen,
                           "__metadata__ key '%s': expected a string value, found %s", m->key,
                           json_type_name(m->value.type));
        if (strlen(m->value.str) != m->value.len)
            return st_herr(st, m->value.pos, err, errlen,
                           "\\u0000 is not allowed in names or metadata");
        st->meta[2 * st->nmeta] = m->key;
        st->meta[2 * st->nmeta + 1] = m->value.str;
        st->nmeta++;
    }
    return 0;
}

// Parses the n-byte header text into st->header, st->entries and st->meta.
static int st_header(SafeTensors *st, const char *text, size_t n, char *err, size_t errlen) {
    JsonError je;
    st->header = json_parse(st->path, text, n, NULL, &je);
    if (!st->header) return st_syntax(st, &je, err, errlen);
    const JsonValue *root = json_root(st->header);
    if (root->type != JSON_OBJECT)
        return st_herr(st, root->pos, err, errlen,
                       "expected '{' at the start of the header, found %s",
                       json_type_name(root->type));
    st->entries = malloc(sizeof *st->entries * (root->len ? root->len : 1));
    if (!st->entries) return st_herr(st, 0, err, errlen, "out of memory");
    int have_meta = 0;
    for (size_t i = 0; i < root->len; i++) {
        const JsonMember *m = &root->members[i];
        if (strlen(m->key) != m->key_len)
            return st_herr(st, m->key_pos, err, errlen,
                           "\\u0000 is not allowed in names or metadata");
        if (!strcmp(m->key, "__metadata__")) {
            if (have_meta++)
                return st_herr(st, m->key_pos, err, errlen, "__metadata__ given twice");
            if (st_metadata(st, &m->value, err, errlen)) return -1;
            continue;
        }
        SafeTensorsEntry *e = &st->entries[st->count++];
        memset(e, 0, sizeof *e);
        e->name = m->key;
        if (st_tensor_info(st, &m->value, e, err, errlen)) return -1;
    }
    return 0;
}

// ---- validation ---------------------------------------------------------------------

typedef struct {
    const char *key;
    int idx;
} StKey;

static int st_cmp_key(const void *a, const void *b) {
    const StKey *x = a, *y = b;
    int c = strcmp(x->key, y->key);
    return c ? c : (x->idx > y->idx) - (x->idx < y->idx);
}

static int st_cmp_offset(const void *a, const void *b) {
    const SafeTensorsEntry *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return strcmp(x->name, y->name);
}

static const char *st_shape_str(const SafeTensorsEntry *e, char *buf, size_t n) {
    size_t off = (size_t)snprintf(buf, n, "[");
    for (int i = 0; i < e->ndim && off < n; i++)
        off += (size_t)snprintf(buf + off, n - off, i ? ", %lld" : "%lld", (long long)e->shape[i]);
    if (off < n) snprintf(buf + off, n - off, "]");
    return buf;
}

static int st_validate(SafeTensors *st, char *err, size_t errlen) {
    const char *path = st->path;
    for (int i = 0; i < st->count; i++) {
        SafeTensorsEntry *e = &st->entries[i];
        char sh[160];
        if (e->begin > e->end) {
            st_msg(err, errlen, "%s: tensor '%s': data_offsets [%llu, %llu] end before they begin",
                   path, e->name, (unsigned long long)e->begin, (unsigned long long)e->end);
            return -1;
        }
        if (e->end > st->data_size) {
            st_msg(err, errlen,
                   "%s: tensor '%s': data_offsets [%llu, %llu] reach beyond the data area of %zu "
                   "bytes "
                   "(file truncated?)",
                   path, e->name, (unsigned long long)e->begin, (unsigned long long)e->end,
                   st->data_size);
            return -1;
        }
        // numel * size must equal end - begin; products are checked for overflow.
        uint64_t numel = 1;
        for (int d = 0; d < e->ndim; d++) {
            uint64_t s = (uint64_t)e->shape[d];
            if (s && numel > UINT64_MAX / 16 / s) {
                st_msg(err, errlen, "%s: tensor '%s': shape %s is too large", path, e->name,
                       st_shape_str(e, sh, sizeof sh));
                return -1;
            }
            numel *= s;
        }
        uint64_t need = numel * st_dtype_size(e->dtype);
        if (need != e->end - e->begin) {
            st_msg(err, errlen,
                   "%s: tensor '%s': shape %s of %s needs %llu bytes, but data_offsets [%llu, "
                   "%llu] hold %llu",
                   path, e->name, st_shape_str(e, sh, sizeof sh), st_dtype_name(e->dtype),
                   (unsigned long long)need, (unsigned long long)e->begin,
                   (unsigned long long)e->end, (unsigned long long)(e->end - e->begin));
            return -1;
        }
        e->numel = (int64_t)numel;
        e->nbytes = (size_t)need;
        e->data = st->data + e->begin;
    }
    // File order; then no two non-empty ranges may share a byte.
    if (st->count > 1) qsort(st->entries, (size_t)st->count, sizeof *st->entries, st_cmp_offset);
    const SafeTensorsEntry *prev = NULL;
    for (int i = 0; i < st->count; i++) {
        const SafeTensorsEntry *e = &st->entries[i];
        if (e->begin == e->end) continue;
        if (prev && e->begin < prev->end) {
            st_msg(err, errlen,
                   "%s: tensors '%s' [%llu, %llu] and '%s' [%llu, %llu] overlap in the data area",
                   path, prev->name, (unsigned long long)prev->begin, (unsigned long long)prev->end,
                   e->name, (unsigned long long)e->begin, (unsigned long long)e->end);
            return -1;
        }
        prev = e;
    }
    // Name index; duplicates (a JSON object with a repeated key) are refused.
    StKey *keys = malloc(sizeof *keys * (size_t)(st->count ? st->count : 1));
    st->by_name = malloc(sizeof(int) * (size_t)(st->count ? st->count : 1));
    if (!keys || !st->by_name) {
        free(keys);
        st_msg(err, errlen, "%s: out of memory indexing %d tensors", path, st->count);
        return -1;
    }
    for (int i = 0; i < st->count; i++) keys[i] = (StKey){st->entries[i].name, i};
    if (st->count > 1) qsort(keys, (size_t)st->count, sizeof *keys, st_cmp_key);
    for (int i = 0; i < st->count; i++) {
        if (i && !strcmp(keys[i].key, keys[i - 1].key)) {
            st_msg(err, errlen, "%s: tensor name '%s' appears more than once in the header", path,
                   keys[i].key);
            free(keys);
            return -1;
        }
        st->by_name[i] = keys[i].idx;
    }
    free(keys);
    // Metadata sorted by key, duplicates refused.
    if (st->nmeta) {
        StKey *mk = malloc(sizeof *mk * (size_t)st->nmeta);
        const char **sorted = malloc(sizeof(char *) * 2 * (size_t)st->nmeta);
        if (!mk || !sorted) {
            free(mk);
            free(sorted);
            st_msg(err, errlen, "%s: out of memory", path);
            return -1;
        }
        for (int i = 0; i < st->nmeta; i++) mk[i] = (StKey){st->meta[2 * i], i};
        qsort(mk, (size_t)st->nmeta, sizeof *mk, st_cmp_key);
        int dup = -1;
        for (int i = 0; i < st->nmeta; i++) {
            if (i && !strcmp(mk[i].key, mk[i - 1].key)) dup = i;
            sorted[2 * i] = st->meta[2 * mk[i].idx];
            sorted[2 * i + 1] = st->meta[2 * mk[i].idx + 1];
        }
        free(st->meta);
        st->meta = sorted;
        if (dup >= 0) {
            st_msg(err, errlen, "%s: __metadata__ key '%s' appears more than once", path,
                   mk[dup].key);
            free(mk);
            return -1;
        }
        free(mk);
    }
    return 0;
}

// ---- open / close / lookup ----------------------------------------------------------

// Validates the whole file image (size bytes) into st, whose path is set.
static int st_load(SafeTensors *st, const uint8_t *bytes, size_t size, char *err, size_t errlen) {
    const char *path = st->path;
    if (size < 8) {
        st_msg(err, errlen,
               "%s: file is %zu bytes, shorter than the 8-byte header length (truncated?)", path,
               size);
        return -1;
    }
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = (hlen << 8) | bytes[i];
    if (hlen > size - 8) {
        st_msg(err, errlen,
               "%s: header length %llu (bytes 0-7) reaches beyond the end of the %zu-byte file "
               "(truncated, or not a safetensors file?)",
               path, (unsigned long long)hlen, size);
        return -1;
    }
    if (hlen > ST_MAX_HEADER) {
        st_msg(err, errlen, "%s: header length %llu (bytes 0-7) exceeds the %llu-byte limit", path,
               (unsigned long long)hlen, ST_MAX_HEADER);
        return -1;
    }
    st->data = bytes + 8 + hlen;
    st->data_size = size - 8 - (size_t)hlen;
    if (st_header(st, (const char *)bytes + 8, (size_t)hlen, err, errlen)) return -1;
    return st_validate(st, err, errlen);
}

int st_open(SafeTensors *st, const char *path, char *err, size_t errlen) {
    memset(st, 0, sizeof *st);
    if (err && errlen) err[0] = '\0';
    int fd = open(path, O_RDONLY);
    if (fd < 0) {
        st_msg(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        st_msg(err, errlen, "%s: not a regular file", path);
        close(fd);
        return -1;
    }
    size_t size = (size_t)sb.st_size;
    void *map = size >= 8 ? mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0) : NULL;
    int map_errno = errno;
    close(fd);  // the mapping keeps the file alive
    if (map == MAP_FAILED) {
        st_msg(err, errlen, "%s: cannot map %zu bytes: %s", path, size, strerror(map_errno));
        return -1;
    }
    st->map = map;
    st->map_size = size;
    st->path = strdup(path);
    if (!st->path) {
        st_close(st);
        st_msg(err, errlen, "%s: out of memory", path);
        return -1;
    }
    if (st_load(st, map, size, err, errlen)) {
        st_close(st);
        return -1;
    }
    return 0;
}

int st_open_memory(SafeTensors *st, const void *bytes, size_t size, const char *name, char *err,
                   size_t errlen) {
    memset(st, 0, sizeof *st);
    if (err && errlen) err[0] = '\0';
    st->path = strdup(name);
    if (!st->path) {
        st_msg(err, errlen, "%s: out of memory", name);
        return -1;
    }
    if (st_load(st, bytes, size, err, errlen)) {
        st_close(st);
        return -1;
    }
    return 0;
}

void st_close(SafeTensors *st) {
    if (st->map) munmap(st->map, st->map_size);
    free(st->path);
    free(st->entries);
    free(st->by_name);
    free(st->meta);
    json_free(st->header);
    memset(st, 0, sizeof *st);
}

const SafeTensorsEntry *st_find(const SafeTensors *st, const char *name) {
    int lo = 0, hi = st->count - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;
        const SafeTensorsEntry *e = &st->entries[st->by_name[mid]];
        int c = strcmp(name, e->name);
        if (c == 0) return e;
        if (c < 0)
            hi = mid - 1;
        else
            lo = mid + 1;
    }
    return NULL;
}

int st_count(const SafeTensors *st) { return st->count; }

const SafeTensorsEntry *st_entry(const SafeTensors *st, int i) {
    return i >= 0 && i < st->count ? &st->entries[i] : NULL;
}

const char *st_meta(const SafeTensors *st, const char *key) {
    int lo = 0, hi = st->nmeta - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;
        int c = strcmp(key, st->meta[2 * mid]);
        if (c == 0) return st->meta[2 * mid + 1];
        if (c < 0)
            hi = mid - 1;
        else
            lo = mid + 1;
    }
    return NULL;
}

int st_meta_count(const SafeTensors *st) { return st->nmeta; }

const char *st_meta_at(const SafeTensors *st, int i, const char **value) {
    if (i < 0 || i >= st->nmeta) return NULL;
    if (value) *value = st->meta[2 * i + 1];
    return st->meta[2 * i];
}

// ---- conversion ---------------------------------------------------------------------

// Elements [i0, i0 + n) of e as f32 into out. The data may be unaligned: memcpy per item.
static int st_range_f32(const SafeTensorsEntry *e, int64_t i0, int64_t n, float *out) {
    const uint8_t *src = (const uint8_t *)e->data + (size_t)i0 * st_dtype_size(e->dtype);
#define ST_CONV(T, expr)                                  \
    for (int64_t i = 0; i < n; i++) {                     \
        T v;                                              \
        memcpy(&v, src + (size_t)i * sizeof v, sizeof v); \
        out[i] = (float)(expr);                           \
    }                                                     \
    return 0;
    switch (e->dtype) {
    case ST_F32: memcpy(out, src, (size_t)n * 4); return 0;
    case ST_F16: ST_CONV(uint16_t, f16_to_f32(v))
    case ST_BF16: ST_CONV(uint16_t, bf16_to_f32(v))
    case ST_F64: ST_CONV(double, v)
    case ST_BOOL: ST_CONV(uint8_t, v != 0)
    case ST_U8: ST_CONV(uint8_t, v)
    case ST_I8: ST_CONV(int8_t, v)
    case ST_U16: ST_CONV(uint16_t, v)
    case ST_I16: ST_CONV(int16_t, v)
    case ST_U32: ST_CONV(uint32_t, v)
    case ST_I32: ST_CONV(int32_t, v)
    case ST_U64: ST_CONV(uint64_t, v)
    case ST_I64: ST_CONV(int64_t, v)
    default: return -1;
    }
#undef ST_CONV
}

int st_load_f32(const SafeTensorsEntry *e, float *dst) { return st_range_f32(e, 0, e->numel, dst); }

int st_load_as(const SafeTensorsEntry *e, DType dt, void *dst) {
    if (dt == DT_F32) return st_load_f32(e, dst);
    if ((dt == DT_F16 && e->dtype == ST_F16) || (dt == DT_BF16 && e->dtype == ST_BF16)) {
        memcpy(dst, e->data, e->nbytes);
        return 0;
    }
    uint16_t *out = dst;
    float buf[1024];
    for (int64_t i0 = 0; i0 < e->numel; i0 += 1024) {
        int64_t n = e->numel - i0 < 1024 ? e->numel - i0 : 1024;
        if (st_range_f32(e, i0, n, buf)) return -1;
        for (int64_t i = 0; i < n; i++)
            out[i0 + i] = dt == DT_F16 ? f32_to_f16(buf[i]) : f32_to_bf16(buf[i]);
    }
    return 0;
}

// ---- writer -------------------------------------------------------------------------

typedef struct {
    char *s;
    size_t n, cap;
    int oom;
} StBuf;

static void sb_put(StBuf *b, const char *s, size_t n) {
    if (b->oom) return;
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (b->n + n + 1 > cap) cap *= 2;
        char *p = realloc(b->s, cap);
        if (!p) {
            b->oom = 1;
            return;
        }
        b->s = p;
        b->cap = cap;
    }
    memcpy(b->s + b->n, s, n);
    b->n += n;
    b->s[b->n] = '\0';
}

static void sb_printf(StBuf *b, const char *fmt, ...) {
    char tmp[128];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    sb_put(b, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

static void sb_json_string(StBuf *b, const char *s) {
    sb_put(b, "\"", 1);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            char esc[2] = {'\\', (char)c};
            sb_put(b, esc, 2);
        } else if (c < 0x20) {
            sb_printf(b, "\\u%04x", c);
        } else {
            sb_put(b, (const char *)&c, 1);
        }
    }
    sb_put(b, "\"", 1);
}

static int st_write_all(int fd, const void *buf, size_t n) {
    const char *p = buf;
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int st_write(const char *path, const StWriteTensor *t, int n, const char *const *meta_kv, int nmeta,
             char *err, size_t errlen) {
    StBuf h = {0};
    uint64_t offset = 0;
    sb_put(&h, "{", 1);
    if (nmeta > 0) {
        sb_put(&h, "\"__metadata__\":{", 16);
        for (int i = 0; i < nmeta; i++) {
            if (i) sb_put(&h, ",", 1);
            sb_json_string(&h, meta_kv[2 * i]);
            sb_put(&h, ":", 1);
            sb_json_string(&h, meta_kv[2 * i + 1]);
        }
        sb_put(&h, "}", 1);
    }
    for (int i = 0; i < n; i++) {
        if (!t[i].name || !t[i].name[0] || !strcmp(t[i].name, "__metadata__") ||
            (unsigned)t[i].dtype >= ST_NDTYPES || t[i].ndim < 0 || t[i].ndim > ST_MAX_DIMS) {
            st_msg(err, errlen, "%s: cannot write tensor %d ('%s'): bad name, dtype or rank", path,
                   i, t[i].name ? t[i].name : "(null)");
            free(h.s);
            return -1;
        }
        for (int j = 0; j < i; j++)
            if (!strcmp(t[i].name, t[j].name)) {
                st_msg(err, errlen, "%s: cannot write: tensor name '%s' given twice", path,
                       t[i].name);
                free(h.s);
                return -1;
            }
        uint64_t bytes = st_dtype_size(t[i].dtype);
        if (nmeta > 0 || i) sb_put(&h, ",", 1);
        sb_json_string(&h, t[i].name);
        sb_printf(&h, ":{\"dtype\":\"%s\",\"shape\":[", st_dtype_name(t[i].dtype));
        for (int d = 0; d < t[i].ndim; d++) {
            if (t[i].shape[d] < 0) {
                st_msg(err, errlen, "%s: cannot write tensor '%s': negative dimension", path,
                       t[i].name);
                free(h.s);
                return -1;
            }
            sb_printf(&h, d ? ",%lld" : "%lld", (long long)t[i].shape[d]);
            bytes *= (uint64_t)t[i].shape[d];
        }
        sb_printf(&h, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)offset,
                  (unsigned long long)(offset + bytes));
        offset += bytes;
    }
    sb_put(&h, "}", 1);
    while ((8 + h.n) % 8) sb_put(&h, " ", 1);  // keeps the data area 8-byte aligned
    if (h.oom) {
        st_msg(err, errlen, "%s: out of memory building the header", path);
        free(h.s);
        return -1;
    }

    size_t tlen = strlen(path) + 32;
    char *tmp = malloc(tlen);
    if (!tmp) {
        free(h.s);
        st_msg(err, errlen, "%s: out of memory", path);
        return -1;
    }
    snprintf(tmp, tlen, "%s.tmp.%ld", path, (long)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) {
        st_msg(err, errlen, "%s: cannot create %s: %s", path, tmp, strerror(errno));
        free(tmp);
        free(h.s);
        return -1;
    }
    uint8_t len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (uint8_t)((uint64_t)h.n >> (8 * i));
    int bad = st_write_all(fd, len8, 8) || st_write_all(fd, h.s, h.n);
    for (int i = 0; i < n && !bad; i++) {
        uint64_t bytes = st_dtype_size(t[i].dtype);
        for (int d = 0; d < t[i].ndim; d++) bytes *= (uint64_t)t[i].shape[d];
        if (bytes) bad = st_write_all(fd, t[i].data, (size_t)bytes);
    }
    int saved = errno;
    if (!bad && fsync(fd) != 0) bad = 1, saved = errno;
    if (close(fd) != 0 && !bad) bad = 1, saved = errno;
    if (!bad && rename(tmp, path) != 0) bad = 1, saved = errno;
    if (bad) {
        st_msg(err, errlen, "%s: write failed (%s); the previous file, if any, is unchanged", path,
               strerror(saved));
        unlink(tmp);
    }
    free(tmp);
    free(h.s);
    return bad ? -1 : 0;
}

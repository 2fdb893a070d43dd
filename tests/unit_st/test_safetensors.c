// tests/unit_st/test_safetensors.c: models/safetensors.c on valid files (written both by
// st_write and byte by byte here) and on every kind of corruption: each bad file must be
// refused (non-zero return) with a message naming the file and the offending tensor.
//
// usage: test_safetensors <case> <work dir>    (cases: see the table at the bottom)
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "models/safetensors.h"

static int g_fail = 0;
static const char *g_dir = ".";

#define CHECK(cond, ...)                                                    \
    do {                                                                    \
        if (!(cond)) {                                                      \
            fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                   \
            fprintf(stderr, "\n");                                          \
            g_fail++;                                                       \
        }                                                                   \
    } while (0)

static void path_in_dir(char *buf, size_t n, const char *name) {
    snprintf(buf, n, "%s/%s", g_dir, name);
}

// Writes a file byte by byte: 8-byte length (hlen_override >= 0 replaces the true
// length), the header text, then ndata bytes. Independent of st_write on purpose.
static void write_raw(const char *path, const char *header, const void *data, size_t ndata,
                      long long hlen_override) {
    FILE *f = fopen(path, "wb");
    if (!f) {
        perror(path);
        exit(2);
    }
    unsigned long long hlen =
        hlen_override >= 0 ? (unsigned long long)hlen_override : strlen(header);
    unsigned char len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (unsigned char)(hlen >> (8 * i));
    fwrite(len8, 1, 8, f);
    fwrite(header, 1, strlen(header), f);
    if (ndata) fwrite(data, 1, ndata, f);
    fclose(f);
}

// Opens a file that must be refused; the message must contain each of the given strings.
static void expect_refused(const char *what, const char *path, const char *must1,
                           const char *must2) {
    SafeTensors st;
    char err[1024] = "";
    int rc = st_open(&st, path, err, sizeof err);
    printf("  %-28s -> rc %d: %s\n", what, rc, err);
    CHECK(rc != 0, "%s: file was accepted", what);
    CHECK(strstr(err, path) != NULL, "%s: message lacks the file name: %s", what, err);
    if (must1) CHECK(strstr(err, must1) != NULL, "%s: message lacks '%s': %s", what, must1, err);
    if (must2) CHECK(strstr(err, must2) != NULL, "%s: message lacks '%s': %s", what, must2, err);
    CHECK(st.map == NULL && st.count == 0, "%s: refused file left state behind", what);
    st_close(&st);
}

static void expect_refused_raw(const char *what, const char *header, size_t ndata,
                               const char *must1, const char *must2) {
    char path[512];
    char fname[128];
    snprintf(fname, sizeof fname, "bad_%s.safetensors", what);
    path_in_dir(path, sizeof path, fname);
    static unsigned char zeros[4096];
    write_raw(path, header, zeros, ndata, -1);
    expect_refused(what, path, must1, must2);
}

// ---- valid files ----------------------------------------------------------------------

static void case_roundtrip(void) {
    char path[512];
    path_in_dir(path, sizeof path, "roundtrip.safetensors");
    float a[6] = {1.5f, -2.25f, 3.0f, 0.0f, -0.0f, 1e-30f};
    uint16_t h[4] = {f32_to_f16(0.5f), f32_to_f16(-3.0f), f32_to_f16(65504.0f),
                     f32_to_f16(1.0f / 1024)};
    uint16_t bf[3] = {f32_to_bf16(1.0f), f32_to_bf16(-256.0f), f32_to_bf16(0.15625f)};
    double d[4] = {0.1, -1e10, 3.0, 2.5};
    int64_t ids[3] = {0, -7, 1LL << 40};
    float scalar = 42.0f;
    StWriteTensor t[] = {
        {"a.weight", ST_F32, 2, (int64_t[]){2, 3}, a},
        {"half", ST_F16, 1, (int64_t[]){4}, h},
        {"brain", ST_BF16, 3, (int64_t[]){1, 3, 1}, bf},
        {"dbl", ST_F64, 2, (int64_t[]){2, 2}, d},
        {"ids", ST_I64, 1, (int64_t[]){3}, ids},
        {"empty", ST_F32, 2, (int64_t[]){0, 5}, NULL},
        {"scalar", ST_F32, 0, NULL, &scalar},
        {"odd \"name\"\\\n\xc3\xa9", ST_U8, 1, (int64_t[]){1}, "\x07"},
    };
    const int n = (int)(sizeof t / sizeof t[0]);
    const char *meta[] = {"format", "pt", "note", "quote \" backslash \\ tab \t caf\xc3\xa9"};
    char err[512] = "";
    CHECK(st_write(path, t, n, meta, 2, err, sizeof err) == 0, "st_write: %s", err);

    SafeTensors st;
    CHECK(st_open(&st, path, err, sizeof err) == 0, "st_open: %s", err);
    if (g_fail) return;
    CHECK(st_count(&st) == n, "count %d", st_count(&st));
    // entries come in file order, which st_write keeps
    for (int i = 0; i < n; i++) {
        const SafeTensorsEntry *e = st_entry(&st, i);
        CHECK(!strcmp(e->name, t[i].name) || (e->begin == e->end), "entry %d is '%s', want '%s'", i,
              e->name, t[i].name);
        const SafeTensorsEntry *f = st_find(&st, t[i].name);
        CHECK(f != NULL, "st_find('%s') failed", t[i].name);
        if (!f) continue;
        CHECK(f->dtype == t[i].dtype && f->ndim == t[i].ndim, "'%s' dtype/ndim", t[i].name);
        for (int k = 0; k < t[i].ndim; k++)
            CHECK(f->shape[k] == t[i].shape[k], "'%s' dim %d", t[i].name, k);
        if (f->nbytes)
            CHECK(!memcmp(f->data, t[i].data, f->nbytes), "'%s' bytes differ", t[i].name);
    }
    CHECK(st_find(&st, "absent") == NULL, "found a tensor that is not there");
    CHECK(st_entry(&st, n) == NULL && st_entry(&st, -1) == NULL, "st_entry out of range");
    CHECK(st_meta(&st, "format") && !strcmp(st_meta(&st, "format"), "pt"), "meta format");
    CHECK(st_meta(&st, "note") && !strcmp(st_meta(&st, "note"), meta[3]), "meta with escapes: '%s'",
          st_meta(&st, "note") ? st_meta(&st, "note") : "(null)");
    CHECK(st_meta(&st, "nope") == NULL && st_meta_count(&st) == 2, "meta count");

    // conversions are exact for these values
    float out[8];
    CHECK(st_load_f32(st_find(&st, "a.weight"), out) == 0 && !memcmp(out, a, sizeof a), "f32 load");
    const float want_h[4] = {0.5f, -3.0f, 65504.0f, 1.0f / 1024};
    CHECK(st_load_f32(st_find(&st, "half"), out) == 0 && !memcmp(out, want_h, sizeof want_h),
          "f16 load");
    const float want_bf[3] = {1.0f, -256.0f, 0.15625f};
    CHECK(st_load_f32(st_find(&st, "brain"), out) == 0 && !memcmp(out, want_bf, sizeof want_bf),
          "bf16 load");
    CHECK(st_load_f32(st_find(&st, "dbl"), out) == 0, "f64 load");
    for (int i = 0; i < 4; i++) CHECK(out[i] == (float)d[i], "f64 [%d] %g", i, out[i]);
    CHECK(st_load_f32(st_find(&st, "ids"), out) == 0 && out[1] == -7.0f &&
              out[2] == (float)(1LL << 40),
          "i64 load");
    CHECK(st_load_f32(st_find(&st, "scalar"), out) == 0 && out[0] == 42.0f, "scalar load");
    CHECK(st_find(&st, "scalar")->numel == 1 && st_find(&st, "empty")->numel == 0, "numel");
    uint16_t h16[8], b16[8];
    CHECK(st_load_as(st_find(&st, "half"), DT_F16, h16) == 0 && !memcmp(h16, h, sizeof h),
          "f16 -> f16 copy");
    CHECK(st_load_as(st_find(&st, "a.weight"), DT_BF16, b16) == 0 && b16[0] == f32_to_bf16(1.5f) &&
              b16[1] == f32_to_bf16(-2.25f),
          "f32 -> bf16");
    CHECK(st_load_as(st_find(&st, "brain"), DT_F16, h16) == 0 && h16[1] == f32_to_f16(-256.0f),
          "bf16 -> f16");
    st_close(&st);

    // st_write refuses duplicate names and leaves no file behind
    char p2[512];
    path_in_dir(p2, sizeof p2, "dup_write.safetensors");
    unlink(p2);
    StWriteTensor dup[] = {{"w", ST_F32, 1, (int64_t[]){1}, a},
                           {"w", ST_F32, 1, (int64_t[]){1}, a}};
    CHECK(st_write(p2, dup, 2, NULL, 0, err, sizeof err) != 0 && strstr(err, "'w'"),
          "dup write: %s", err);
    CHECK(access(p2, F_OK) != 0, "a refused write created the file");
}

// A header written by hand: odd whitespace, fields in any order, \u escapes, gaps in the
// data area, an unaligned data area (header length 8k + 3) and trailing padding.
static void case_raw_valid(void) {
    char path[512];
    path_in_dir(path, sizeof path, "raw_valid.safetensors");
    const char *header =
        " {\n\t\"__metadata__\" : {\"k\":\"v\\u00e9\\ud83d\\ude00\"} ,"
        "\"b\\u00e9ta\": {\"shape\":[ 2 ],\"data_offsets\":[12,20], \"dtype\":\"F32\"},"
        "\"alpha\":{\"dtype\":\"BF16\",\"data_offsets\":[0,4],\"shape\":[2]},"
        "\"flag\":{\"dtype\":\"BOOL\",\"shape\":[],\"data_offsets\":[20,21]}}   ";
    unsigned char data[24] = {0};
    uint16_t a0 = f32_to_bf16(2.0f), a1 = f32_to_bf16(-0.5f);
    memcpy(data + 0, &a0, 2);
    memcpy(data + 2, &a1, 2);
    float b[2] = {7.0f, -1.0f};
    memcpy(data + 12, b, 8);  // bytes 4..11 are a gap nobody owns
    data[20] = 1;
    write_raw(path, header, data, 24, -1);
    SafeTensors st;
    char err[512] = "";
    CHECK(st_open(&st, path, err, sizeof err) == 0, "st_open: %s", err);
    if (g_fail) return;
    CHECK(st_count(&st) == 3, "count");
    CHECK(
        !strcmp(st_entry(&st, 0)->name, "alpha") && !strcmp(st_entry(&st, 1)->name, "b\xc3\xa9ta"),
        "entries in data order");
    float out[2];
    CHECK(st_load_f32(st_find(&st, "b\xc3\xa9ta"), out) == 0 && out[0] == 7.0f && out[1] == -1.0f,
          "f32 data");
    CHECK(st_load_f32(st_find(&st, "alpha"), out) == 0 && out[0] == 2.0f && out[1] == -0.5f,
          "bf16 data");
    CHECK(st_load_f32(st_find(&st, "flag"), out) == 0 && out[0] == 1.0f &&
              st_find(&st, "flag")->ndim == 0,
          "bool scalar");
    CHECK(st_meta(&st, "k") && !strcmp(st_meta(&st, "k"), "v\xc3\xa9\xf0\x9f\x98\x80"),
          "unicode metadata");
    st_close(&st);
    st_close(&st);  // closing twice is harmless

    // an empty header object is a valid (empty) file
    path_in_dir(path, sizeof path, "empty.safetensors");
    write_raw(path, "{}      ", NULL, 0, -1);
    CHECK(st_open(&st, path, err, sizeof err) == 0 && st_count(&st) == 0, "empty file: %s", err);
    st_close(&st);
}

// ---- corruptions ----------------------------------------------------------------------

static const char *k_two =
    "{\"first\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]},"
    "\"second\":{\"dtype\":\"F16\",\"shape\":[4],\"data_offsets\":[16,24]}}";

static void case_truncated(void) {
    char path[512];
    path_in_dir(path, sizeof path, "truncated.safetensors");
    static unsigned char data[24];
    write_raw(path, k_two, data, 24, -1);
    SafeTensors st;
    char err[512];
    CHECK(st_open(&st, path, err, sizeof err) == 0, "the intact file must open: %s", err);
    st_close(&st);
    // lose the last 3 bytes: 'second' now reaches beyond the data area
    CHECK(truncate(path, (off_t)(8 + strlen(k_two) + 21)) == 0, "truncate");
    expect_refused("truncated data", path, "'second'", "beyond the data area");
    // lose most of the header: the length field now points past the end
    CHECK(truncate(path, 40) == 0, "truncate");
    expect_refused("truncated header", path, "header length", "40-byte file");
    CHECK(truncate(path, 5) == 0, "truncate");
    expect_refused("shorter than 8 bytes", path, "5 bytes", NULL);
    CHECK(truncate(path, 0) == 0, "truncate");
    expect_refused("empty file", path, "0 bytes", NULL);
}

static void case_header_len(void) {
    char path[512];
    path_in_dir(path, sizeof path, "header_len.safetensors");
    static unsigned char data[24];
    write_raw(path, k_two, data, 24, 1LL << 40);
    expect_refused("length 2^40", path, "header length 1099511627776", NULL);
    write_raw(path, k_two, data, 24, (long long)strlen(k_two) + 25);
    expect_refused("length one past the end", path, "reaches beyond", NULL);
    // a shorter length cuts the JSON: a syntax error at the cut
    write_raw(path, k_two, data, 24, 20);
    expect_refused("length inside the header", path, "header byte", NULL);
    expect_refused("missing file", "/nonexistent/dir/x.safetensors", "cannot open", NULL);
}

static void case_bad_json(void) {
    const char *ok = "\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]";
    char h[512];
    // the byte offset is reported exactly: here the '}' after a trailing comma
    snprintf(h, sizeof h, "{\"w\":{%s},}", ok);
    char at[64];
    snprintf(at, sizeof at, "header byte %zu ", strlen(h) - 1);
    expect_refused_raw("trailing_comma", h, 4, at, "expected a string");
    snprintf(h, sizeof h, "{\"w\":{%s}", ok);
    expect_refused_raw("unclosed_object", h, 4, "header byte", "header ends");
    snprintf(h, sizeof h, "{\"w\":{%s}} x", ok);
    expect_refused_raw("trailing_garbage", h, 4, "header byte", "after the end");
    expect_refused_raw("not_an_object", "[1, 2]", 0, "header byte 0 ", "'{'");
    expect_refused_raw("single_quotes", "{'w':{}}", 0, "header byte 1 ", "expected a string");
    expect_refused_raw("fraction_in_shape",
                       "{\"w\":{\"dtype\":\"F32\",\"shape\":[1.0],\"data_offsets\":[0,4]}}", 4,
                       "'w'", "non-negative integer");
    expect_refused_raw("negative_offset",
                       "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[-4,0]}}", 4,
                       "'w'", "non-negative integer");
    expect_refused_raw("leading_zero",
                       "{\"w\":{\"dtype\":\"F32\",\"shape\":[01],\"data_offsets\":[0,4]}}", 4,
                       "'w'", "non-negative integer");
    expect_refused_raw("three_offsets",
                       "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4,8]}}", 4,
                       "'w'", "more than 2 values");
    expect_refused_raw(
        "unknown_field",
        "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],\"extra\":1}}", 4, "'w'",
        "unknown field 'extra'");
    expect_refused_raw("missing_offsets", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4, "'w'",
                       "data_offsets");
    expect_refused_raw("dtype_not_string",
                       "{\"w\":{\"dtype\":4,\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "'w'",
                       "expected a string");
    expect_refused_raw(
        "nine_dims",
        "{\"w\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}", 4,
        "'w'", "more than 8 values");
    expect_refused_raw("meta_not_string", "{\"__metadata__\":{\"k\":1}}", 0, "__metadata__",
                       "expected a string");
    expect_refused_raw("meta_twice", "{\"__metadata__\":{},\"__metadata__\":{}}", 0, "__metadata__",
                       "twice");
    expect_refused_raw("meta_dup_key", "{\"__metadata__\":{\"k\":\"a\",\"k\":\"b\"}}", 0, "'k'",
                       "more than once");
    expect_refused_raw("control_char", "{\"a\nb\":{}}", 0, "header byte 3 ", "control character");
    expect_refused_raw("bad_escape", "{\"a\\qb\":{}}", 0, "header byte", "escape");
    expect_refused_raw("lone_surrogate", "{\"a\\ud800\":{}}", 0, "header byte", "surrogate");
    expect_refused_raw("nul_escape", "{\"a\\u0000\":{}}", 0, "header byte", "\\u0000");
    expect_refused_raw("unterminated_string", "{\"abc", 0, "header byte", "unterminated");
    expect_refused_raw("empty_header", "", 0, "header byte 0 ", NULL);
}

static void case_unknown_dtype(void) {
    expect_refused_raw("unknown_dtype",
                       "{\"weights.0\":{\"dtype\":\"F33\",\"shape\":[1],\"data_offsets\":[0,4]}}",
                       4, "'weights.0'", "unknown dtype 'F33'");
    expect_refused_raw("lowercase_dtype",
                       "{\"w\":{\"dtype\":\"f32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "'w'",
                       "unknown dtype 'f32'");
}

static void case_shape_mismatch(void) {
    expect_refused_raw(
        "shape_mismatch",
        "{\"proj.weight\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,20]}}", 20,
        "'proj.weight'", "needs 24 bytes");
    expect_refused_raw("dtype_size_mismatch",
                       "{\"h\":{\"dtype\":\"F16\",\"shape\":[4],\"data_offsets\":[0,16]}}", 16,
                       "'h'", "needs 8 bytes");
    expect_refused_raw("end_before_begin",
                       "{\"r\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[8,4]}}", 8, "'r'",
                       "end before");
    expect_refused_raw(
        "huge_shape",
        "{\"big\":{\"dtype\":\"F64\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,8]}}", 8,
        "'big'", "too large");
}

static void case_overlap(void) {
    expect_refused_raw("overlap",
                       "{\"aa\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
                       "\"bb\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[8,24]}}",
                       24, "'aa'", "'bb'");
    expect_refused_raw("same_range",
                       "{\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                       "\"y\":{\"dtype\":\"I32\",\"shape\":[2],\"data_offsets\":[0,8]}}",
                       8, "'x'", "overlap");
    // empty tensors own no bytes, so they overlap nothing
    char path[512];
    path_in_dir(path, sizeof path, "empty_overlap.safetensors");
    write_raw(path,
              "{\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
              "\"e\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[4,4]}}",
              "01234567", 8, -1);
    SafeTensors st;
    char err[512];
    CHECK(st_open(&st, path, err, sizeof err) == 0, "empty tensor inside another's range: %s", err);
    st_close(&st);
}

static void case_out_of_range(void) {
    expect_refused_raw("out_of_range",
                       "{\"ok\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                       "\"far\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4096,4100]}}",
                       8, "'far'", "beyond the data area of 8 bytes");
}

static void case_duplicate(void) {
    expect_refused_raw("duplicate",
                       "{\"dup.weight\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                       "\"dup.weight\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
                       8, "'dup.weight'", "more than once");
}

// st_write replaces a file atomically and, when it cannot, leaves what was there.
static void case_atomic_write(void) {
    char path[512], err[512];
    path_in_dir(path, sizeof path, "atomic.safetensors");
    float v1 = 1.0f, v2 = 2.0f;
    StWriteTensor t1 = {"v", ST_F32, 1, (int64_t[]){1}, &v1},
                  t2 = {"v", ST_F32, 1, (int64_t[]){1}, &v2};
    CHECK(st_write(path, &t1, 1, NULL, 0, err, sizeof err) == 0, "first write: %s", err);
    CHECK(st_write(path, &t2, 1, NULL, 0, err, sizeof err) == 0, "overwrite: %s", err);
    SafeTensors st;
    float out = 0;
    CHECK(st_open(&st, path, err, sizeof err) == 0 && st_load_f32(st_find(&st, "v"), &out) == 0 &&
              out == 2.0f,
          "overwritten value %g: %s", out, err);
    struct stat sb;
    CHECK(stat(path, &sb) == 0 && sb.st_size % 8 == 4,
          "header padded: 4 data bytes after a multiple of 8");
    st_close(&st);
    char tmp[600];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    CHECK(access(tmp, F_OK) != 0, "temporary file left behind");

    // target is a non-empty directory: rename fails, the directory and its file survive
    char dir[512], inner[600];
    path_in_dir(dir, sizeof dir, "atomic_dir.safetensors");
    mkdir(dir, 0755);
    snprintf(inner, sizeof inner, "%s/keep", dir);
    FILE *f = fopen(inner, "w");
    if (f) fclose(f);
    err[0] = '\0';
    CHECK(st_write(dir, &t1, 1, NULL, 0, err, sizeof err) != 0, "write over a directory succeeded");
    CHECK(strstr(err, dir) != NULL, "message lacks the path: %s", err);
    CHECK(access(inner, F_OK) == 0, "existing content damaged");
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", dir, (long)getpid());
    CHECK(access(tmp, F_OK) != 0, "temporary file left behind after a failed write");
    printf("  write over a directory -> %s\n", err);
    CHECK(st_write("/nonexistent/dir/x.safetensors", &t1, 1, NULL, 0, err, sizeof err) != 0 &&
              strstr(err, "/nonexistent/dir/x.safetensors"),
          "write into a missing folder: %s", err);
}

static const struct {
    const char *name;
    void (*fn)(void);
} k_cases[] = {
    {"roundtrip", case_roundtrip},
    {"raw_valid", case_raw_valid},
    {"truncated", case_truncated},
    {"header_len", case_header_len},
    {"bad_json", case_bad_json},
    {"unknown_dtype", case_unknown_dtype},
    {"shape_mismatch", case_shape_mismatch},
    {"overlap", case_overlap},
    {"out_of_range", case_out_of_range},
    {"duplicate", case_duplicate},
    {"atomic_write", case_atomic_write},
};

int main(int argc, char **argv) {
    const char *which = argc > 1 ? argv[1] : "all";
    g_dir = argc > 2 ? argv[2] : ".";
    int ran = 0;
    for (size_t i = 0; i < sizeof k_cases / sizeof k_cases[0]; i++) {
        if (strcmp(which, "all") && strcmp(which, k_cases[i].name)) continue;
        printf("st_%s\n", k_cases[i].name);
        k_cases[i].fn();
        ran++;
    }
    if (!ran) {
        fprintf(stderr, "unknown case '%s'\n", which);
        return 2;
    }
    printf("%s: %d case(s), %d failure(s)\n", which, ran, g_fail);
    return g_fail ? 1 : 0;
}

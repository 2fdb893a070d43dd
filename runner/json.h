// runner/json.h: the one JSON reader of storyrun. Safetensors headers, the tokenizer's
// vocab.json and configs, diffusers' config.json / model_index.json / scheduler configs
// all go through it.
//
//   JsonError je;
//   JsonDoc *doc = json_parse_file("unet/config.json", NULL, &je);
//   if (!doc) return snprintf(err, errlen, "%s", je.msg), -1;  // file, line, column
//   int64_t in_channels = 4;                                 // the default when absent
//   if (json_get_int(doc, json_root(doc), "in_channels", 1, 64, &in_channels, err,
//                    errlen) < 0)
//       ...                                                  // err names file, line, key
//   json_free(doc);
//
// Strict RFC 8259: one value (any type) surrounded by whitespace; no comments, trailing
// commas, single quotes, NaN/Infinity, leading zeros or byte-order mark; strings must be
// valid UTF-8 without raw control characters. The text is parsed into a tree (DOM) that
// owns everything it points to, so the text may be freed right after parsing. Objects keep
// their members in source order, duplicates included (json_get takes the last one, as
// Python's json does; json_duplicate or JsonOptions.reject_duplicates find them).
// Every problem is returned with the file name, line, column and byte offset and what
// was expected there; nothing here exits, and out of memory is reported too.
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define JSON_DEFAULT_DEPTH 256  // nesting limit when JsonOptions.max_depth is 0
#define JSON_MAX_DEPTH 1024     // the largest limit accepted (the parser recurses per level)

typedef enum { JSON_NULL, JSON_BOOL, JSON_NUMBER, JSON_STRING, JSON_ARRAY, JSON_OBJECT } JsonType;

typedef struct JsonValue JsonValue;
typedef struct JsonMember JsonMember;
typedef struct JsonDoc JsonDoc;  // the parsed text: owns every value, string and key

struct JsonValue {
    JsonType type;
    bool boolean;  // JSON_BOOL
    bool is_int;   // JSON_NUMBER written as an integer (no '.', no exponent) in int64 range
    size_t pos;    // byte offset of the value's first character (json_where: line, column)
    // JSON_STRING: the decoded UTF-8 bytes; JSON_NUMBER: its source text. NUL-terminated
    // either way; a string may also hold NULs ("\u0000"): len is its length in bytes.
    const char *str;
    size_t len;  // bytes of str, or the count of items (JSON_ARRAY) or members (JSON_OBJECT)
    union {
        struct {
            double d;   // JSON_NUMBER: nearest double (+-HUGE_VAL past the double range)
            int64_t i;  // JSON_NUMBER: the exact value when is_int
        };
        JsonValue *items;     // JSON_ARRAY: len items
        JsonMember *members;  // JSON_OBJECT: len members in source order
    };
};

struct JsonMember {
    const char *key;  // decoded, NUL-terminated (may hold NULs: key_len)
    size_t key_len;
    size_t key_pos;  // byte offset of the key's opening quote
    JsonValue value;
};

typedef struct JsonOptions {
    int max_depth;           // nesting limit; 0: JSON_DEFAULT_DEPTH, at most JSON_MAX_DEPTH
    bool reject_duplicates;  // a key repeated in one object is an error
    bool lone_surrogates;    // an unpaired \uD800-\uDFFF escape reads as U+FFFD (else an error)
    bool nonfinite;          // NaN, Infinity, -Infinity read as numbers (Python's json.dump
                             // writes them: diffusers' scheduler configs hold -Infinity)
} JsonOptions;

// Why parsing failed. msg is the whole message for users; the parts are for callers that
// phrase their own (a safetensors header names header and file offsets instead).
typedef struct JsonError {
    size_t pos;            // byte offset of the problem
    int line, col;         // 1-based (col counts bytes); 0 when the file could not be read
    bool eof;              // the text ended where `expected` was due
    const char *expected;  // what would have been valid at pos ("':'", "a value"), or NULL
    char what[224];        // "expected ':' after the key \"b\", found '1'"
    char path[224];        // JSON Pointer of the place ("/unet/sample_size"); "" at the top
    char msg[1024];        // "FILE: line L, column C (byte B): WHAT (at PATH)"
} JsonError;

// Parses len bytes of text; file names it in messages. opt may be NULL (defaults); err
// may be NULL. Returns the tree, or NULL with err filled in.
JsonDoc *json_parse(const char *file, const char *text, size_t len, const JsonOptions *opt,
                    JsonError *err);
// Reads and parses a whole file ("PATH: cannot open: ..." when it cannot be read).
JsonDoc *json_parse_file(const char *path, const JsonOptions *opt, JsonError *err);
void json_free(JsonDoc *doc);  // NULL is fine
const JsonValue *json_root(const JsonDoc *doc);
const char *json_file(const JsonDoc *doc);

// ---- lookups: NULL when v has the wrong type or the key / index is absent -------------
const JsonValue *json_get(const JsonValue *obj, const char *key);  // last of duplicates
const JsonValue *json_at(const JsonValue *arr, size_t i);
size_t json_count(const JsonValue *v);  // items or members; 0 for other types
// The first member whose key repeats an earlier member's key, or NULL.
const JsonMember *json_duplicate(const JsonValue *obj);
const char *json_type_name(JsonType t);  // "a string", "an object", ... for messages

// ---- messages --------------------------------------------------------------------------
// Line and column (1-based, bytes) of a byte offset of the parsed text.
void json_where(const JsonDoc *doc, size_t pos, int *line, int *col);
// Writes "FILE: line L, column C (byte POS): " + the formatted text into err (may be
// NULL) and returns -1, for `return json_errat(...)`.
#if defined(__GNUC__)
__attribute__((format(printf, 5, 6)))
#endif
int json_errat(const JsonDoc *doc, size_t pos, char *err, size_t errlen, const char *fmt, ...);

// ---- typed access ----------------------------------------------------------------------
// v as a given type; what names it in the message ("\"in_channels\"", "shape[2]").
// Return 0, or -1 with "FILE: line L, column C (byte B): WHAT: expected an integer in
// [1, 64], found 1.5" in err.
int json_as_int(const JsonDoc *doc, const JsonValue *v, const char *what, int64_t lo, int64_t hi,
                int64_t *out, char *err, size_t errlen);
int json_as_number(const JsonDoc *doc, const JsonValue *v, const char *what, double *out, char *err,
                   size_t errlen);  // finite numbers only
int json_as_bool(const JsonDoc *doc, const JsonValue *v, const char *what, bool *out, char *err,
                 size_t errlen);
// A string without NULs (usable as a C string).
int json_as_string(const JsonDoc *doc, const JsonValue *v, const char *what, const char **out,
                   char *err, size_t errlen);

// obj[key] as a given type: 1 when present and valid (*out set), 0 when absent (*out, the
// default, untouched), -1 with a message when obj is not an object or the value is wrong.
int json_get_int(const JsonDoc *doc, const JsonValue *obj, const char *key, int64_t lo, int64_t hi,
                 int64_t *out, char *err, size_t errlen);
int json_get_number(const JsonDoc *doc, const JsonValue *obj, const char *key, double *out,
                    char *err, size_t errlen);
int json_get_bool(const JsonDoc *doc, const JsonValue *obj, const char *key, bool *out, char *err,
                  size_t errlen);
int json_get_string(const JsonDoc *doc, const JsonValue *obj, const char *key, const char **out,
                    char *err, size_t errlen);

// ---- helpers ---------------------------------------------------------------------------
// Writes code point cp (< 0x110000) as 1-4 bytes of UTF-8 at o; returns the end.
char *json_put_utf8(char *o, uint32_t cp);
// Part i (0-based) of a JSON Pointer ("/a~1b/0": "a/b", then "0"), unescaped into out
// (cut to cap - 1 bytes, NUL-terminated). Returns its full length, or -1 past the end.
int json_pointer_part(const char *pointer, int i, char *out, size_t cap);

#ifdef __cplusplus
}
#endif

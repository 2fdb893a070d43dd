// tests/fuzz/fuzz_json.c: libFuzzer target for runner/json.c. Any input: the parser must
// answer without crashing, and its answer must hold together:
// - refused: the error's byte offset lies in the text and its line and column match a
//   recount; the stricter options refuse too;
// - accepted: every value's position points at its first character, strings and keys
//   are well-formed UTF-8, integers agree with strtoll, json_get finds the last of
//   duplicate keys, json_duplicate agrees with a brute-force search; written back as JSON
//   the tree parses to the same tree; reject_duplicates refuses exactly when some object
//   repeats a key.
#include <math.h>
#include <string.h>

#include "fuzz.h"
#include "runner/json.h"

int fuzz_accepted;

typedef struct {
    char *s;
    size_t n, cap;
} Buf;

static void put(Buf *b, const char *p, size_t n) {
    if (b->n + n > b->cap) {
        b->cap = 2 * (b->n + n) + 64;
        b->s = realloc(b->s, b->cap);
        FUZZ_ASSERT(b->s != NULL);
    }
    memcpy(b->s + b->n, p, n);
    b->n += n;
}

static void put_string(Buf *b, const char *s, size_t n) {
    put(b, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        char esc[8];
        if (c == '"' || c == '\\' || c < 0x20) {
            snprintf(esc, sizeof esc, c < 0x20 ? "\\u%04x" : "\\%c", c);
            put(b, esc, strlen(esc));
        } else {
            put(b, (const char *)&c, 1);
        }
    }
    put(b, "\"", 1);
}

static void put_value(Buf *b, const JsonValue *v) {
    switch (v->type) {
    case JSON_NULL: put(b, "null", 4); break;
    case JSON_BOOL: put(b, v->boolean ? "true" : "false", v->boolean ? 4 : 5); break;
    case JSON_NUMBER: put(b, v->str, v->len); break;
    case JSON_STRING: put_string(b, v->str, v->len); break;
    case JSON_ARRAY:
        put(b, "[", 1);
        for (size_t i = 0; i < v->len; i++) {
            if (i) put(b, ",", 1);
            put_value(b, &v->items[i]);
        }
        put(b, "]", 1);
        break;
    case JSON_OBJECT:
        put(b, "{", 1);
        for (size_t i = 0; i < v->len; i++) {
            if (i) put(b, ",", 1);
            put_string(b, v->members[i].key, v->members[i].key_len);
            put(b, ":", 1);
            put_value(b, &v->members[i].value);
        }
        put(b, "}", 1);
        break;
    }
}

static bool same(const JsonValue *a, const JsonValue *b) {
    if (a->type != b->type || a->boolean != b->boolean || a->len != b->len) return false;
    if (a->type == JSON_STRING || a->type == JSON_NUMBER) {
        if (memcmp(a->str, b->str, a->len)) return false;
        if (a->type == JSON_NUMBER &&
            (a->is_int != b->is_int || a->i != b->i || memcmp(&a->d, &b->d, sizeof a->d)))
            return false;
    }
    for (size_t i = 0; a->type == JSON_ARRAY && i < a->len; i++)
        if (!same(&a->items[i], &b->items[i])) return false;
    for (size_t i = 0; a->type == JSON_OBJECT && i < a->len; i++) {
        const JsonMember *x = &a->members[i], *y = &b->members[i];
        if (x->key_len != y->key_len || memcmp(x->key, y->key, x->key_len) ||
            !same(&x->value, &y->value))
            return false;
    }
    return true;
}

static bool utf8_ok(const char *s, size_t n) {  // independent of the parser's own check
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)s[i];
        size_t len = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : 4;
        if (c >= 0xF8 || (c >= 0x80 && c < 0xC0) || i + len > n) return false;
        uint32_t cp = len == 1 ? c : c & (0x7Fu >> len);
        for (size_t k = 1; k < len; k++) {
            if (((unsigned char)s[i + k] & 0xC0) != 0x80) return false;
            cp = cp << 6 | ((unsigned char)s[i + k] & 0x3F);
        }
        static const uint32_t min[5] = {0, 0, 0x80, 0x800, 0x10000};
        if ((len > 1 && cp < min[len]) || cp > 0x10FFFF || (cp >= 0xD800 && cp < 0xE000))
            return false;
        i += len;
    }
    return true;
}

// Checks one tree; returns whether some object in it repeats a key.
static bool check(const JsonValue *v, const uint8_t *text, size_t size, int depth) {
    FUZZ_ASSERT(v->pos < size && depth <= JSON_DEFAULT_DEPTH);
    static const char first[] = {'n', 't', '-', '"', '[', '{'};  // by JsonType
    unsigned char c = text[v->pos];
    FUZZ_ASSERT(c == first[v->type] || (v->type == JSON_BOOL && c == 'f') ||
                (v->type == JSON_NUMBER && c >= '0' && c <= '9'));
    if (v->type == JSON_STRING || v->type == JSON_NUMBER)
        FUZZ_ASSERT(v->str[v->len] == 0 && utf8_ok(v->str, v->len));
    if (v->type == JSON_NUMBER) {
        FUZZ_ASSERT(!v->is_int || v->i == strtoll(v->str, NULL, 10));
        FUZZ_ASSERT(v->d == strtod(v->str, NULL));
    }
    bool dup = false;
    for (size_t i = 0; v->type == JSON_ARRAY && i < v->len; i++)
        dup |= check(&v->items[i], text, size, depth + 1);
    if (v->type != JSON_OBJECT) return dup;
    const JsonMember *first_repeat = NULL;
    bool brute = v->len <= 256;  // keeps the quadratic search cheap
    for (size_t i = 0; i < v->len; i++) {
        const JsonMember *m = &v->members[i];
        FUZZ_ASSERT(m->key[m->key_len] == 0 && utf8_ok(m->key, m->key_len));
        FUZZ_ASSERT(m->key_pos < m->value.pos && text[m->key_pos] == '"');
        dup |= check(&m->value, text, size, depth + 1);
        size_t last = i;
        for (size_t j = 0; brute && j < v->len; j++) {
            bool eq = v->members[j].key_len == m->key_len &&
                      !memcmp(v->members[j].key, m->key, m->key_len);
            if (eq && j < i && !first_repeat) first_repeat = m;
            if (eq) last = j;
        }
        if (brute && strlen(m->key) == m->key_len)
            FUZZ_ASSERT(json_get(v, m->key) == &v->members[last].value);
    }
    if (brute) FUZZ_ASSERT(json_duplicate(v) == first_repeat);
    return dup || json_duplicate(v) != NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    JsonError e;
    JsonDoc *doc = json_parse("fuzz.json", (const char *)data, size, NULL, &e);
    fuzz_accepted = doc != NULL;
    if (!doc) {
        int line = 1, col = 1;
        for (size_t i = 0; i < e.pos && i < size; i++) {
            line += data[i] == '\n';
            col = data[i] == '\n' ? 1 : col + 1;
        }
        FUZZ_ASSERT(e.pos <= size && e.line == line && e.col == col && e.what[0]);
        FUZZ_ASSERT(!strncmp(e.msg, "fuzz.json: line ", 16));
        JsonOptions strict = {.reject_duplicates = true, .max_depth = 16};
        FUZZ_ASSERT(json_parse("fuzz.json", (const char *)data, size, &strict, NULL) == NULL);
        return 0;
    }
    const JsonValue *root = json_root(doc);
    bool dup = check(root, data, size, 0);

    Buf b = {0};
    put_value(&b, root);
    JsonDoc *again = json_parse("again.json", b.s, b.n, NULL, &e);
    FUZZ_ASSERT(again != NULL && same(root, json_root(again)));
    json_free(again);
    free(b.s);

    JsonOptions strict = {.reject_duplicates = true}, lenient = {.lone_surrogates = true};
    JsonDoc *d2 = json_parse("fuzz.json", (const char *)data, size, &strict, &e);
    FUZZ_ASSERT((d2 == NULL) == dup && (d2 || strstr(e.what, "duplicate key")));
    json_free(d2);
    JsonDoc *d3 = json_parse("fuzz.json", (const char *)data, size, &lenient, NULL);
    FUZZ_ASSERT(d3 && same(root, json_root(d3)));
    json_free(d3);
    json_free(doc);
    return 0;
}

// runner/json.c: strict recursive-descent JSON parser into an arena-allocated tree, plus
// lookups and typed getters. See json.h for the accepted language and the conventions.
#include "runner/json.h"

#include <errno.h>
#include <stdarg.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__GNUC__)
#define JSON_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#else
#define JSON_PRINTF(fmt, args)
#endif

// ---- the document: an arena of blocks plus the line index ---------------------------

typedef struct JsonBlock {
    struct JsonBlock *next;
    size_t used, cap;
    _Alignas(16) unsigned char data[];
} JsonBlock;

struct JsonDoc {
    JsonValue root;
    char *file;
    size_t *nl;  // byte offsets just past each '\n' of the text, increasing
    size_t n_nl, nl_cap;
    JsonBlock *blocks;  // newest first
};

// n bytes, 16-aligned, owned by doc; NULL when out of memory.
static void *arena_get(JsonDoc *doc, size_t n) {
    n = (n + 15) & ~(size_t)15;
    JsonBlock *b = doc->blocks;
    if (!b || b->cap - b->used < n) {
        size_t cap = b ? b->cap * 2 : 4096;
        if (cap > ((size_t)1 << 24)) cap = (size_t)1 << 24;
        if (cap < n) cap = n;
        b = malloc(sizeof *b + cap);
        if (!b) return NULL;
        b->next = doc->blocks;
        b->used = 0;
        b->cap = cap;
        doc->blocks = b;
    }
    void *p = b->data + b->used;
    b->used += n;
    return p;
}

void json_free(JsonDoc *doc) {
    if (!doc) return;
    for (JsonBlock *b = doc->blocks, *next; b; b = next) {
        next = b->next;
        free(b);
    }
    free(doc->nl);
    free(doc);
}

const JsonValue *json_root(const JsonDoc *doc) { return &doc->root; }
const char *json_file(const JsonDoc *doc) { return doc->file; }

void json_where(const JsonDoc *doc, size_t pos, int *line, int *col) {
    size_t lo = 0, hi = doc->n_nl;  // count the newlines that end before pos
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (doc->nl[mid] <= pos)
            lo = mid + 1;
        else
            hi = mid;
    }
    *line = (int)lo + 1;
    *col = (int)(pos - (lo ? doc->nl[lo - 1] : 0)) + 1;
}

// ---- the parser ---------------------------------------------------------------------

// One open array or object, innermost first: the path to the value being read.
typedef struct Frame {
    const struct Frame *up;
    bool is_obj;
    bool in_value;  // the key (or index) names the value being read (else: between members)
    const char *key;
    size_t key_len, index;
} Frame;

typedef struct Parser {
    const unsigned char *s;
    size_t n, pos;
    JsonDoc *doc;
    JsonOptions opt;
    int depth;
    const Frame *frame;
    JsonMember *stack;  // the children of every open container, innermost last
    size_t sp, stack_cap;
    char *buf;  // the string being decoded
    size_t buf_cap;
    JsonError *err;
    bool failed;
} Parser;

static void put_key(char *out, size_t cap, const char *key, size_t len) {
    snprintf(out, cap, "\"%.*s%s\"", (int)(len > 40 ? 40 : len), key, len > 40 ? "..." : "");
}

// The JSON Pointer of the place being read, from the chain of open containers; keys
// longer than the buffer end in "...".
static void render_path(const Parser *p, char *out, size_t cap) {
    const Frame *chain[JSON_MAX_DEPTH];
    int n = 0;
    for (const Frame *f = p->frame; f && n < JSON_MAX_DEPTH; f = f->up) chain[n++] = f;
    size_t o = 0, room = cap - 4;  // keeps space for "..." and the NUL
    bool cut = false;
    for (int k = n - 1; k >= 0 && chain[k]->in_value && !cut; k--) {
        const Frame *f = chain[k];
        char num[24];
        const char *part = num;
        size_t len = f->key_len;
        if (f->is_obj)
            part = f->key;
        else
            len = (size_t)snprintf(num, sizeof num, "%zu", f->index);
        cut = o >= room;
        if (!cut) out[o++] = '/';
        for (size_t i = 0; i < len && !cut; i++) {
            bool esc = f->is_obj && (part[i] == '~' || part[i] == '/');
            cut = o + 1 + esc > room;
            if (cut) break;
            if (esc) out[o++] = '~';
            out[o++] = esc ? (part[i] == '~' ? '0' : '1') : part[i];
        }
    }
    if (cut) memcpy(out + o, "...", 3), o += 3;
    out[o] = 0;
}

// Records the first failure (at byte pos) and returns false. expected: what would have
// been valid there, when the failure is of that kind.
JSON_PRINTF(5, 6)
static bool fail(Parser *p, size_t pos, const char *expected, bool eof, const char *fmt, ...) {
    if (p->failed) return false;
    p->failed = true;
    JsonError *e = p->err;
    if (!e) return false;
    memset(e, 0, sizeof *e);
    e->pos = pos;
    e->eof = eof;
    e->expected = expected;
    json_where(p->doc, pos, &e->line, &e->col);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->what, sizeof e->what, fmt, ap);
    va_end(ap);
    render_path(p, e->path, sizeof e->path);
    snprintf(e->msg, sizeof e->msg, "%s: line %d, column %d (byte %zu): %s%s%s%s", p->doc->file,
             e->line, e->col, pos, e->what, e->path[0] ? " (at " : "", e->path,
             e->path[0] ? ")" : "");
    return false;
}

static const char *describe(const Parser *p, size_t pos, char *buf, size_t cap) {
    unsigned char c = p->s[pos];
    snprintf(buf, cap, c >= 0x20 && c < 0x7F ? "'%c'" : "byte 0x%02x", c);
    return buf;
}

// "expected X[ context], found F", or at the end of the text "unexpected end of file
// where X was expected[ context]".
static bool fail_expected(Parser *p, const char *expected, const char *context) {
    const char *sep = context[0] ? " " : "";
    if (p->pos >= p->n)
        return fail(p, p->pos, expected, true, "unexpected end of file where %s was expected%s%s",
                    expected, sep, context);
    char found[24];
    bool quote = p->s[p->pos] == '\'';
    return fail(p, p->pos, expected, false, "expected %s%s%s, found %s%s", expected, sep, context,
                describe(p, p->pos, found, sizeof found),
                quote ? " (JSON strings take double quotes)" : "");
}

static bool oom(Parser *p) { return fail(p, p->pos, NULL, false, "out of memory"); }

static bool skip_ws(Parser *p) {
    while (p->pos < p->n) {
        unsigned char c = p->s[p->pos];
        if (c == '\n') {
            // Newlines occur only here (strings may not hold them raw), so this sees all.
            JsonDoc *d = p->doc;
            if (d->n_nl == d->nl_cap) {
                size_t cap = d->nl_cap ? 2 * d->nl_cap : 64;
                size_t *nl = realloc(d->nl, cap * sizeof *nl);
                if (!nl) return oom(p);
                d->nl = nl;
                d->nl_cap = cap;
            }
            d->nl[d->n_nl++] = p->pos + 1;
        } else if (c != ' ' && c != '\t' && c != '\r') {
            break;
        }
        p->pos++;
    }
    return true;
}

static int peek(const Parser *p) { return p->pos < p->n ? p->s[p->pos] : -1; }

char *json_put_utf8(char *o, uint32_t c) {
    if (c < 0x80) {
        *o = (char)c;
        return o + 1;
    }
    int n = c < 0x800 ? 2 : c < 0x10000 ? 3 : 4;
    for (int i = n - 1; i > 0; i--, c >>= 6) o[i] = (char)(0x80 | (c & 0x3F));
    o[0] = (char)(((0xF00u >> n) | c) & 0xFF);  // n one-bits, then the top bits of c
    return o + n;
}

// Length of the well-formed UTF-8 sequence at s (n bytes available), 0 if ill-formed:
// no overlong forms, no UTF-16 surrogates, nothing past U+10FFFF (Unicode table 3-7).
static size_t utf8_len(const unsigned char *s, size_t n) {
    unsigned c = s[0];
    size_t len;
    unsigned lo = 0x80, hi = 0xBF;  // the allowed range of the second byte
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        if (c == 0xE0) lo = 0xA0;
        if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        if (c == 0xF0) lo = 0x90;
        if (c == 0xF4) hi = 0x8F;
    } else {
        return 0;
    }
    if (n < len || s[1] < lo || s[1] > hi) return 0;
    for (size_t i = 2; i < len; i++)
        if ((s[i] & 0xC0) != 0x80) return 0;
    return len;
}

static int hex4(const Parser *p, size_t at) {
    if (at + 4 > p->n) return -1;
    int v = 0;
    for (int i = 0; i < 4; i++) {
        unsigned char c = p->s[at + i];
        int d = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                       : -1;
        if (d < 0) return -1;
        v = v * 16 + d;
    }
    return v;
}

static bool unterminated(Parser *p, size_t start) {
    return fail(p, start, "'\"'", false, "unterminated string: no closing '\"' before the end");
}

// At the opening quote: decodes the string into the arena.
static bool parse_string(Parser *p, const char **out, size_t *out_len) {
    size_t start = p->pos++, o = 0;
    for (;;) {
        if (p->buf_cap - o < 8) {  // room for the longest piece written below (4 bytes)
            size_t cap = p->buf_cap ? 2 * p->buf_cap : 256;
            char *b = realloc(p->buf, cap);
            if (!b) return oom(p);
            p->buf = b;
            p->buf_cap = cap;
        }
        if (p->pos >= p->n) return unterminated(p, start);
        unsigned char c = p->s[p->pos];
        if (c == '"') break;
        if (c < 0x20)
            return fail(p, p->pos, NULL, false,
                        "control character 0x%02x inside a string (escape it, e.g. \\n)", c);
        if (c >= 0x80) {
            size_t len = utf8_len(p->s + p->pos, p->n - p->pos);
            if (!len)
                return fail(p, p->pos, NULL, false, "invalid UTF-8 (byte 0x%02x) in a string", c);
            memcpy(p->buf + o, p->s + p->pos, len);
            o += len;
            p->pos += len;
            continue;
        }
        if (c != '\\') {
            p->buf[o++] = (char)c;
            p->pos++;
            continue;
        }
        if (p->pos + 1 >= p->n) return unterminated(p, start);
        char e = (char)p->s[p->pos + 1];
        const char *simple = strchr("\"\\/bfnrt", e);
        if (e && simple) {
            p->buf[o++] = "\"\\/\b\f\n\r\t"[simple - "\"\\/bfnrt"];
            p->pos += 2;
            continue;
        }
        if (e != 'u') {
            if (e > 0x20 && e < 0x7F)
                return fail(p, p->pos, NULL, false,
                            "unknown escape '\\%c' in a string (valid: \\\" \\\\ \\/ \\b "
                            "\\f \\n \\r \\t \\uXXXX)",
                            e);
            return fail(p, p->pos, NULL, false, "unknown escape: '\\' then byte 0x%02x in a string",
                        (unsigned char)e);
        }
        int u = hex4(p, p->pos + 2);
        if (u < 0) return fail(p, p->pos, "4 hex digits", false, "expected 4 hex digits after \\u");
        size_t esc = p->pos;
        p->pos += 6;
        if (u >= 0xD800 && u < 0xDC00) {  // a high surrogate: its low half must follow
            int lo = p->pos + 1 < p->n && p->s[p->pos] == '\\' && p->s[p->pos + 1] == 'u'
                         ? hex4(p, p->pos + 2)
                         : -1;
            if (lo >= 0xDC00 && lo < 0xE000) {
                u = 0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00);
                p->pos += 6;
            }
        }
        if (u >= 0xD800 && u < 0xE000) {
            if (!p->opt.lone_surrogates)
                return fail(p, esc, NULL, false,
                            "unpaired UTF-16 surrogate \\u%04X in \\u escape (not a character)",
                            (unsigned)u);
            u = 0xFFFD;
        }
        o = (size_t)(json_put_utf8(p->buf + o, (uint32_t)u) - p->buf);
    }
    p->pos++;
    char *s = arena_get(p->doc, o + 1);
    if (!s) return oom(p);
    memcpy(s, p->buf, o);
    s[o] = 0;
    *out = s;
    *out_len = o;
    return true;
}

static bool no_digit(Parser *p, size_t at, const char *context) {
    p->pos = at;
    return fail_expected(p, "a digit", context);
}

// -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?: keeps the text, a double, and the exact
// value when it is an integer literal within int64.
static bool parse_number(Parser *p, JsonValue *v) {
    const unsigned char *s = p->s;
    size_t i = p->pos, start = p->pos;
    bool neg = i < p->n && s[i] == '-', is_int = true;
    uint64_t mag = 0, limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    if (neg) i++;
    if (i >= p->n || s[i] < '0' || s[i] > '9') return no_digit(p, i, "after '-'");
    if (s[i] == '0' && i + 1 < p->n && s[i + 1] >= '0' && s[i + 1] <= '9')
        return fail(p, i, NULL, false, "numbers cannot have leading zeros");
    for (; i < p->n && s[i] >= '0' && s[i] <= '9'; i++) {
        unsigned d = s[i] - '0';
        if (mag > (limit - d) / 10) is_int = false;  // beyond int64: the double only
        mag = mag * 10 + d;
    }
    if (i < p->n && s[i] == '.') {
        is_int = false;
        size_t f0 = ++i;
        while (i < p->n && s[i] >= '0' && s[i] <= '9') i++;
        if (i == f0) return no_digit(p, i, "after '.'");
    }
    if (i < p->n && (s[i] == 'e' || s[i] == 'E')) {
        is_int = false;
        i++;
        if (i < p->n && (s[i] == '+' || s[i] == '-')) i++;
        size_t e0 = i;
        while (i < p->n && s[i] >= '0' && s[i] <= '9') i++;
        if (i == e0) return no_digit(p, i, "in the exponent");
    }
    char *text = arena_get(p->doc, i - start + 1);
    if (!text) return oom(p);
    memcpy(text, s + start, i - start);
    text[i - start] = 0;
    v->type = JSON_NUMBER;
    v->str = text;
    v->len = i - start;
    v->is_int = is_int;
    // strtod reads '.' as the decimal point: storyrun never changes LC_NUMERIC from "C".
    v->d = strtod(text, NULL);
    v->i = !is_int ? 0 : neg ? (int64_t)(0 - mag) : (int64_t)mag;
    p->pos = i;
    return true;
}

static bool parse_value(Parser *p, JsonValue *v);

static int key_cmp(const JsonMember *a, const JsonMember *b) {
    size_t n = a->key_len < b->key_len ? a->key_len : b->key_len;
    int c = memcmp(a->key, b->key, n);
    return c ? c : (a->key_len > b->key_len) - (a->key_len < b->key_len);
}

static bool push_member(Parser *p, const JsonMember *m) {
    if (p->sp == p->stack_cap) {
        size_t cap = p->stack_cap ? 2 * p->stack_cap : 64;
        JsonMember *st = realloc(p->stack, cap * sizeof *st);
        if (!st) return oom(p);
        p->stack = st;
        p->stack_cap = cap;
    }
    p->stack[p->sp++] = *m;
    return true;
}

// At '[' or '{'. Children are gathered on the shared stack, then copied into one arena
// array when the container closes.
static bool parse_container(Parser *p, JsonValue *v) {
    bool obj = p->s[p->pos] == '{';
    char close = obj ? '}' : ']';
    if (p->depth >= p->opt.max_depth)
        return fail(p, p->pos, NULL, false, "nested deeper than %d levels", p->opt.max_depth);
    p->depth++;
    Frame f = {.up = p->frame, .is_obj = obj};
    p->frame = &f;
    size_t base = p->sp;
    bool comma = false;
    char after[80];
    p->pos++;
    if (!skip_ws(p)) return false;
    if (peek(p) == close) {
        p->pos++;
    } else {
        for (;;) {
            JsonMember m = {0};
            if (!skip_ws(p)) return false;
            if (comma && peek(p) == close)
                return fail(p, p->pos, obj ? "a string key" : "a value", false,
                            "expected %s after ',', found '%c' (trailing commas are not allowed)",
                            obj ? "a string key" : "a value", close);
            if (obj) {
                if (peek(p) != '"') return fail_expected(p, "a string key", "");
                m.key_pos = p->pos;
                if (!parse_string(p, &m.key, &m.key_len)) return false;
                f.key = m.key;
                f.key_len = m.key_len;
                f.in_value = true;
                put_key(after, sizeof after, m.key, m.key_len);
                if (!skip_ws(p)) return false;
                if (peek(p) != ':') {
                    char ctx[96];
                    snprintf(ctx, sizeof ctx, "after the key %s", after);
                    return fail_expected(p, "':'", ctx);
                }
                p->pos++;
            } else {
                f.index = p->sp - base;
                f.in_value = true;
            }
            if (!parse_value(p, &m.value) || !push_member(p, &m)) return false;
            f.in_value = false;
            if (!skip_ws(p)) return false;
            int c = peek(p);
            if (c == ',') {
                p->pos++;
                comma = true;
                continue;
            }
            if (c == close) {
                p->pos++;
                break;
            }
            char ctx[112];
            if (obj)
                snprintf(ctx, sizeof ctx, "after the member %s", after);
            else
                snprintf(ctx, sizeof ctx, "after item %zu", f.index);
            return fail_expected(p, obj ? "',' or '}'" : "',' or ']'", ctx);
        }
    }
    size_t n = p->sp - base;
    v->type = obj ? JSON_OBJECT : JSON_ARRAY;
    v->len = n;
    if (obj) {
        JsonMember *m = n ? arena_get(p->doc, n * sizeof *m) : NULL;
        if (n && !m) return oom(p);
        if (n) memcpy(m, p->stack + base, n * sizeof *m);
        v->members = m;
        const JsonMember *dup = p->opt.reject_duplicates ? json_duplicate(v) : NULL;
        if (dup) {
            size_t first = 0;
            while (key_cmp(&m[first], dup)) first++;
            int line, col;
            json_where(p->doc, m[first].key_pos, &line, &col);
            put_key(after, sizeof after, dup->key, dup->key_len);
            return fail(p, dup->key_pos, NULL, false,
                        "duplicate key %s (first at line %d, column %d)", after, line, col);
        }
    } else {
        JsonValue *items = n ? arena_get(p->doc, n * sizeof *items) : NULL;
        if (n && !items) return oom(p);
        for (size_t i = 0; i < n; i++) items[i] = p->stack[base + i].value;
        v->items = items;
    }
    p->sp = base;
    p->depth--;
    p->frame = f.up;
    return true;
}

static bool parse_value(Parser *p, JsonValue *v) {
    if (!skip_ws(p)) return false;
    memset(v, 0, sizeof *v);
    v->pos = p->pos;
    int c = peek(p);
    if (c == '{' || c == '[') return parse_container(p, v);
    if (c == '"') {
        v->type = JSON_STRING;
        return parse_string(p, &v->str, &v->len);
    }
    if (p->opt.nonfinite) {
        static const char *const nf[] = {"NaN", "Infinity", "-Infinity"};
        for (int w = 0; w < 3; w++) {
            size_t n = strlen(nf[w]);
            if (p->n - p->pos >= n && memcmp(p->s + p->pos, nf[w], n) == 0) {
                v->type = JSON_NUMBER;
                v->str = nf[w];
                v->len = n;
                v->d = w == 0 ? NAN : w == 1 ? HUGE_VAL : -HUGE_VAL;
                p->pos += n;
                return true;
            }
        }
    }
    if (c == '-' || (c >= '0' && c <= '9')) return parse_number(p, v);
    static const char *const words[] = {"null", "false", "true"};
    for (int w = 0; w < 3; w++) {
        size_t n = strlen(words[w]);
        if (p->n - p->pos >= n && memcmp(p->s + p->pos, words[w], n) == 0) {
            v->type = w ? JSON_BOOL : JSON_NULL;
            v->boolean = w == 2;
            p->pos += n;
            return true;
        }
    }
    return fail_expected(p, "a value", "");
}

// A problem with the file as a whole (no position): "FILE: WHAT". Returns NULL.
static JsonDoc *whole_file_error(JsonError *err, const char *file, const char *what) {
    if (err) {
        memset(err, 0, sizeof *err);
        snprintf(err->what, sizeof err->what, "%s", what);
        snprintf(err->msg, sizeof err->msg, "%s: %s", file, what);
    }
    return NULL;
}

JsonDoc *json_parse(const char *file, const char *text, size_t len, const JsonOptions *opt,
                    JsonError *err) {
    if (!file) file = "(json)";
    size_t file_len = strlen(file) + 1;
    JsonDoc *doc = calloc(1, sizeof *doc + file_len);  // the file name follows the struct
    if (!doc) return whole_file_error(err, file, "out of memory");
    doc->file = memcpy(doc + 1, file, file_len);
    Parser p = {.s = (const unsigned char *)text, .n = len, .doc = doc, .err = err};
    if (opt) p.opt = *opt;
    if (p.opt.max_depth <= 0) p.opt.max_depth = JSON_DEFAULT_DEPTH;
    if (p.opt.max_depth > JSON_MAX_DEPTH) p.opt.max_depth = JSON_MAX_DEPTH;
    if (len >= 3 && !memcmp(text, "\xEF\xBB\xBF", 3)) {
        fail(&p, 0, "a value", false,
             "the file starts with a UTF-8 byte-order mark, which JSON does not allow");
    } else if (parse_value(&p, &doc->root) && skip_ws(&p) && p.pos < p.n) {
        char found[24];
        fail(&p, p.pos, NULL, false, "unexpected %s after the end of the JSON value",
             describe(&p, p.pos, found, sizeof found));
    }
    free(p.stack);
    free(p.buf);
    if (p.failed) {
        json_free(doc);
        return NULL;
    }
    return doc;
}

JsonDoc *json_parse_file(const char *path, const JsonOptions *opt, JsonError *err) {
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t n = 0, cap = 0, got = 0;
    int e = f ? 0 : errno;
    while (f) {
        if (cap - n < 65536) {
            char *b = realloc(buf, cap = 2 * cap + 65536);
            if (!b) {
                e = ENOMEM;
                break;
            }
            buf = b;
        }
        got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0) {
            if (ferror(f)) e = errno ? errno : EIO;
            break;
        }
    }
    if (f) fclose(f);
    if (e) {
        free(buf);
        char what[160];
        snprintf(what, sizeof what, "cannot %s: %s", f ? "read" : "open", strerror(e));
        return whole_file_error(err, path, what);
    }
    JsonDoc *doc = json_parse(path, buf ? buf : "", n, opt, err);
    free(buf);
    return doc;
}

// ---- lookups ------------------------------------------------------------------------

const JsonValue *json_get(const JsonValue *obj, const char *key) {
    if (!obj || obj->type != JSON_OBJECT) return NULL;
    size_t n = strlen(key);
    for (size_t i = obj->len; i-- > 0;)  // from the end: the last of duplicates wins
        if (obj->members[i].key_len == n && !memcmp(obj->members[i].key, key, n))
            return &obj->members[i].value;
    return NULL;
}

const JsonValue *json_at(const JsonValue *arr, size_t i) {
    return arr && arr->type == JSON_ARRAY && i < arr->len ? &arr->items[i] : NULL;
}

size_t json_count(const JsonValue *v) {
    return v && (v->type == JSON_ARRAY || v->type == JSON_OBJECT) ? v->len : 0;
}

static int idx_cmp(const void *x, const void *y) {
    const JsonMember *a = *(const JsonMember *const *)x, *b = *(const JsonMember *const *)y;
    int c = key_cmp(a, b);
    return c ? c : (a > b) - (a < b);
}

const JsonMember *json_duplicate(const JsonValue *obj) {
    size_t n = json_count(obj);
    if (!obj || obj->type != JSON_OBJECT || n < 2) return NULL;
    const JsonMember **idx = n > 16 ? malloc(n * sizeof *idx) : NULL;
    const JsonMember *best = NULL;
    if (!idx) {  // few members (or no memory for the index): compare every pair
        for (size_t i = 1; i < n && !best; i++)
            for (size_t j = 0; j < i && !best; j++)
                if (!key_cmp(&obj->members[i], &obj->members[j])) best = &obj->members[i];
        return best;
    }
    for (size_t i = 0; i < n; i++) idx[i] = &obj->members[i];
    qsort(idx, n, sizeof *idx, idx_cmp);  // equal keys end up adjacent, in source order
    for (size_t i = 1; i < n; i++)        // the second member of each run of equal keys
        if (!key_cmp(idx[i], idx[i - 1]) && (i == 1 || key_cmp(idx[i - 1], idx[i - 2])))
            if (!best || idx[i] < best) best = idx[i];
    free((void *)idx);
    return best;
}

const char *json_type_name(JsonType t) {
    switch (t) {
    case JSON_NULL: return "null";
    case JSON_BOOL: return "a boolean";
    case JSON_NUMBER: return "a number";
    case JSON_STRING: return "a string";
    case JSON_ARRAY: return "an array";
    case JSON_OBJECT: return "an object";
    }
    return "?";
}

int json_pointer_part(const char *ptr, int i, char *out, size_t cap) {
    for (int k = 0; ptr && *ptr == '/'; k++) {
        ptr++;
        size_t len = 0;
        for (; *ptr && *ptr != '/'; ptr++) {
            char c = *ptr;
            if (c == '~' && (ptr[1] == '0' || ptr[1] == '1')) c = *++ptr == '0' ? '~' : '/';
            if (k == i && len + 1 < cap) out[len] = c;
            len++;
        }
        if (k == i) {
            if (cap) out[len < cap ? len : cap - 1] = 0;
            return (int)len;
        }
    }
    return -1;
}

// ---- messages and typed access ------------------------------------------------------

int json_errat(const JsonDoc *doc, size_t pos, char *err, size_t errlen, const char *fmt, ...) {
    if (!err || !errlen) return -1;
    int line, col;
    json_where(doc, pos, &line, &col);
    int n = snprintf(err, errlen, "%s: line %d, column %d (byte %zu): ", doc->file, line, col, pos);
    if (n >= 0 && (size_t)n < errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return -1;
}

// "1.5", "\"text\"" or "an array": what a value is, for "found ..." in messages.
static const char *found_str(const JsonValue *v, char *buf, size_t cap) {
    if (v->type == JSON_NUMBER)
        snprintf(buf, cap, "%.40s%s", v->str, v->len > 40 ? "..." : "");
    else if (v->type == JSON_STRING)
        snprintf(buf, cap, "\"%.40s%s\"", v->str, v->len > 40 ? "..." : "");
    else if (v->type == JSON_BOOL)
        snprintf(buf, cap, "%s", v->boolean ? "true" : "false");
    else
        snprintf(buf, cap, "%s", json_type_name(v->type));
    return buf;
}

int json_as_int(const JsonDoc *doc, const JsonValue *v, const char *what, int64_t lo, int64_t hi,
                int64_t *out, char *err, size_t errlen) {
    if (v->type == JSON_NUMBER && v->is_int && v->i >= lo && v->i <= hi) {
        *out = v->i;
        return 0;
    }
    char found[64];
    return json_errat(doc, v->pos, err, errlen, "%s: expected an integer in [%lld, %lld], found %s",
                      what, (long long)lo, (long long)hi, found_str(v, found, sizeof found));
}

int json_as_number(const JsonDoc *doc, const JsonValue *v, const char *what, double *out, char *err,
                   size_t errlen) {
    if (v->type == JSON_NUMBER && v->d - v->d == 0) {  // finite
        *out = v->d;
        return 0;
    }
    char found[64];
    return json_errat(doc, v->pos, err, errlen, "%s: expected a finite number, found %s", what,
                      found_str(v, found, sizeof found));
}

int json_as_bool(const JsonDoc *doc, const JsonValue *v, const char *what, bool *out, char *err,
                 size_t errlen) {
    if (v->type == JSON_BOOL) {
        *out = v->boolean;
        return 0;
    }
    char found[64];
    return json_errat(doc, v->pos, err, errlen, "%s: expected true or false, found %s", what,
                      found_str(v, found, sizeof found));
}

int json_as_string(const JsonDoc *doc, const JsonValue *v, const char *what, const char **out,
                   char *err, size_t errlen) {
    if (v->type == JSON_STRING && strlen(v->str) == v->len) {
        *out = v->str;
        return 0;
    }
    char found[64];
    if (v->type == JSON_STRING)
        return json_errat(doc, v->pos, err, errlen, "%s: \\u0000 is not allowed in this string",
                          what);
    return json_errat(doc, v->pos, err, errlen, "%s: expected a string, found %s", what,
                      found_str(v, found, sizeof found));
}

// obj[key] for json_get_*: the value, or NULL with *rc 0 (absent) or -1 (obj is no object).
static const JsonValue *lookup(const JsonDoc *doc, const JsonValue *obj, const char *key,
                               char *what, size_t cap, int *rc, char *err, size_t errlen) {
    snprintf(what, cap, "\"%s\"", key);
    *rc = 0;
    if (obj->type != JSON_OBJECT)
        *rc = json_errat(doc, obj->pos, err, errlen, "expected an object holding %s, found %s",
                         what, json_type_name(obj->type));
    return *rc ? NULL : json_get(obj, key);
}

int json_get_int(const JsonDoc *doc, const JsonValue *obj, const char *key, int64_t lo, int64_t hi,
                 int64_t *out, char *err, size_t errlen) {
    char what[128];
    int rc;
    const JsonValue *v = lookup(doc, obj, key, what, sizeof what, &rc, err, errlen);
    return v ? (json_as_int(doc, v, what, lo, hi, out, err, errlen) ? -1 : 1) : rc;
}

int json_get_number(const JsonDoc *doc, const JsonValue *obj, const char *key, double *out,
                    char *err, size_t errlen) {
    char what[128];
    int rc;
    const JsonValue *v = lookup(doc, obj, key, what, sizeof what, &rc, err, errlen);
    return v ? (json_as_number(doc, v, what, out, err, errlen) ? -1 : 1) : rc;
}

int json_get_bool(const JsonDoc *doc, const JsonValue *obj, const char *key, bool *out, char *err,
                  size_t errlen) {
    char what[128];
    int rc;
    const JsonValue *v = lookup(doc, obj, key, what, sizeof what, &rc, err, errlen);
    return v ? (json_as_bool(doc, v, what, out, err, errlen) ? -1 : 1) : rc;
}

int json_get_string(const JsonDoc *doc, const JsonValue *obj, const char *key, const char **out,
                    char *err, size_t errlen) {
    char what[128];
    int rc;
    const JsonValue *v = lookup(doc, obj, key, what, sizeof what, &rc, err, errlen);
    return v ? (json_as_string(doc, v, what, out, err, errlen) ? -1 : 1) : rc;
}

// tests/unit_json/test_json.c: runner/json.c on valid documents (values decoded exactly,
// key order, positions), on every class of syntax error (message, line, column and byte
// offset checked against hand-counted positions), duplicate keys, the nesting limit,
// numbers beyond int64 and double, ill-formed UTF-8, the typed getters, and randomly
// damaged documents (the parser must answer, and answer consistently).
//
// usage: test_json <case> <work dir>    (cases: see the table at the bottom)
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "runner/json.h"

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

static JsonDoc *parse(const char *text, const JsonOptions *opt, JsonError *e) {
    return json_parse("t.json", text, strlen(text), opt, e);
}

static bool str_is(const JsonValue *v, const char *bytes, size_t len) {
    return v && v->type == JSON_STRING && v->len == len && !memcmp(v->str, bytes, len) &&
           v->str[len] == 0;
}

// ---- valid documents ------------------------------------------------------------------

static void case_valid(void) {
    const char *text =
        "{\n"
        "  \"name\": \"unet\", \"empty_obj\": {}, \"empty_arr\": [ ],\n"
        "\t\"esc\": \"q\\\" b\\\\ s\\/ \\b\\f\\n\\r\\t\",\r\n"
        "  \"uni\": \"\\u00e9\\u20AC\\ud83d\\ude00 raw \xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\",\n"
        "  \"nul\": \"a\\u0000b\",\n"
        "  \"list\": [1, -2.5, true, false, null, [\"x\"], {\"k\": 3}],\n"
        "  \"zebra\": 0, \"alpha\": 1\n"
        "}\n";
    JsonError e;
    JsonDoc *doc = parse(text, NULL, &e);
    CHECK(doc != NULL, "%s", e.msg);
    if (!doc) return;
    const JsonValue *r = json_root(doc);
    CHECK(r->type == JSON_OBJECT && json_count(r) == 9, "root: type %d, %zu members", r->type,
          json_count(r));
    // members keep their source order
    const char *order[] = {"name", "empty_obj", "empty_arr", "esc", "uni", "nul", "list", "zebra"};
    for (int i = 0; i < 8; i++)
        CHECK(!strcmp(r->members[i].key, order[i]), "member %d is %s", i, r->members[i].key);
    CHECK(str_is(json_get(r, "name"), "unet", 4), "name");
    CHECK(
        json_get(r, "empty_obj")->type == JSON_OBJECT && json_count(json_get(r, "empty_obj")) == 0,
        "empty object");
    CHECK(json_get(r, "empty_arr")->type == JSON_ARRAY && json_count(json_get(r, "empty_arr")) == 0,
          "empty array");
    CHECK(str_is(json_get(r, "esc"), "q\" b\\ s/ \b\f\n\r\t", 14), "escapes: %s",
          json_get(r, "esc")->str);
    const char uni[] =
        "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80 raw \xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80";
    CHECK(str_is(json_get(r, "uni"), uni, sizeof uni - 1), "\\u escapes and raw UTF-8");
    CHECK(str_is(json_get(r, "nul"), "a\0b", 3), "\\u0000 kept, len 3");
    const JsonValue *list = json_get(r, "list");
    CHECK(json_count(list) == 7, "list count %zu", json_count(list));
    CHECK(json_at(list, 0)->type == JSON_NUMBER && json_at(list, 0)->is_int &&
              json_at(list, 0)->i == 1,
          "list[0]");
    CHECK(json_at(list, 1)->d == -2.5 && !json_at(list, 1)->is_int &&
              !strcmp(json_at(list, 1)->str, "-2.5"),
          "list[1]");
    CHECK(json_at(list, 2)->type == JSON_BOOL && json_at(list, 2)->boolean, "true");
    CHECK(json_at(list, 3)->type == JSON_BOOL && !json_at(list, 3)->boolean, "false");
    CHECK(json_at(list, 4)->type == JSON_NULL, "null");
    CHECK(str_is(json_at(json_at(list, 5), 0), "x", 1), "nested array");
    CHECK(json_get(json_at(list, 6), "k")->i == 3, "nested object");
    CHECK(json_at(list, 7) == NULL && json_at(r, 0) == NULL, "json_at out of range / on object");
    CHECK(json_get(r, "absent") == NULL && json_get(list, "k") == NULL, "json_get misses");
    CHECK(json_count(json_get(r, "name")) == 0, "count of a string");
    // positions: "k" of list[6] is on line 6; its value 3 at column 53
    int line, col;
    const JsonValue *k = json_get(json_at(list, 6), "k");
    json_where(doc, k->pos, &line, &col);
    CHECK(line == 6 && col == 53 && text[k->pos] == '3', "position of 3: line %d col %d", line,
          col);
    json_where(doc, json_get(r, "uni")->pos, &line, &col);  // after a CRLF line
    CHECK(line == 4 && col == 10, "position of uni: line %d col %d", line, col);
    CHECK(!strcmp(json_file(doc), "t.json"), "file name");
    json_free(doc);

    // any value at the top, surrounded by whitespace
    const char *tops[] = {"42", " \"s\" ", "null", "\n\ttrue\r\n", "[]", "-0.5e1"};
    const JsonType types[] = {JSON_NUMBER, JSON_STRING, JSON_NULL,
                              JSON_BOOL,   JSON_ARRAY,  JSON_NUMBER};
    for (int i = 0; i < 6; i++) {
        doc = parse(tops[i], NULL, &e);
        CHECK(doc && json_root(doc)->type == types[i], "top-level '%s': %s", tops[i],
              doc ? "wrong type" : e.msg);
        json_free(doc);
    }
    // the text need not be NUL-terminated: only len bytes are read
    doc = json_parse("t.json", "[1, 2]garbage", 6, NULL, &e);
    CHECK(doc && json_count(json_root(doc)) == 2, "length-limited parse");
    json_free(doc);
    json_free(NULL);
}

// ---- syntax errors --------------------------------------------------------------------

typedef struct {
    const char *text;
    size_t len;  // 0: strlen(text)
    int line, col;
    size_t byte;
    bool eof;
    const char *what;  // a fragment of the message
} BadCase;

static const BadCase k_bad[] = {
    {"", 0, 1, 1, 0, true, "unexpected end of file where a value was expected"},
    {"  \n ", 0, 2, 2, 4, true, "unexpected end of file where a value was expected"},
    {"{", 0, 1, 2, 1, true, "where a string key was expected"},
    {"{\"a\"", 0, 1, 5, 4, true, "where ':' was expected after the key \"a\""},
    {"{\"a\":", 0, 1, 6, 5, true, "where a value was expected"},
    {"{\"a\":1", 0, 1, 7, 6, true, "where ',' or '}' was expected after the member \"a\""},
    {"[1,2", 0, 1, 5, 4, true, "where ',' or ']' was expected after item 1"},
    {"[1,]", 0, 1, 4, 3, false, "expected a value after ',', found ']' (trailing commas"},
    {"{\"a\":1,}", 0, 1, 8, 7, false, "expected a string key after ',', found '}'"},
    {"{a:1}", 0, 1, 2, 1, false, "expected a string key, found 'a'"},
    {"{'a':1}", 0, 1, 2, 1, false, "found ''' (JSON strings take double quotes)"},
    {"{\"a\" 1}", 0, 1, 6, 5, false, "expected ':' after the key \"a\", found '1'"},
    {"[1 2]", 0, 1, 4, 3, false, "expected ',' or ']' after item 0, found '2'"},
    {"{\"a\":1 \"b\":2}", 0, 1, 8, 7, false, "expected ',' or '}' after the member \"a\""},
    {"[tru]", 0, 1, 2, 1, false, "expected a value, found 't'"},
    {"[nul", 0, 1, 2, 1, false, "expected a value, found 'n'"},
    {"[01]", 0, 1, 2, 1, false, "leading zeros"},
    {"[-01]", 0, 1, 3, 2, false, "leading zeros"},
    {"[-]", 0, 1, 3, 2, false, "expected a digit after '-', found ']'"},
    {"-", 0, 1, 2, 1, true, "where a digit was expected after '-'"},
    {"[1.]", 0, 1, 4, 3, false, "expected a digit after '.'"},
    {"[1.e5]", 0, 1, 4, 3, false, "expected a digit after '.'"},
    {"[1e]", 0, 1, 4, 3, false, "expected a digit in the exponent"},
    {"[1e+]", 0, 1, 5, 4, false, "expected a digit in the exponent"},
    {"[.5]", 0, 1, 2, 1, false, "expected a value, found '.'"},
    {"[+1]", 0, 1, 2, 1, false, "expected a value, found '+'"},
    {"[NaN]", 0, 1, 2, 1, false, "expected a value, found 'N'"},
    {"[Infinity]", 0, 1, 2, 1, false, "expected a value, found 'I'"},
    {"[0x10]", 0, 1, 3, 2, false, "expected ',' or ']' after item 0, found 'x'"},
    {"\"abc", 0, 1, 1, 0, false, "unterminated string"},
    {"[\"abc\\", 0, 1, 2, 1, false, "unterminated string"},
    {"\"a\\qb\"", 0, 1, 3, 2, false, "unknown escape '\\q'"},
    {"\"a\\\x01\"", 0, 1, 3, 2, false, "unknown escape: '\\' then byte 0x01"},
    {"\"\\u12G4\"", 0, 1, 2, 1, false, "expected 4 hex digits after \\u"},
    {"\"\\u12\"", 0, 1, 2, 1, false, "expected 4 hex digits after \\u"},
    {"\"a\tb\"", 0, 1, 3, 2, false, "control character 0x09 inside a string"},
    {"\"a\nb\"", 0, 1, 3, 2, false, "control character 0x0a"},
    {"\"\\ud800\"", 0, 1, 2, 1, false, "unpaired UTF-16 surrogate \\uD800"},
    {"\"\\udc00\\ud800\"", 0, 1, 2, 1, false, "unpaired UTF-16 surrogate \\uDC00"},
    {"\"\\ud800\\u0041\"", 0, 1, 2, 1, false, "unpaired UTF-16 surrogate \\uD800"},
    {"{} x", 0, 1, 4, 3, false, "unexpected 'x' after the end of the JSON value"},
    {"[1]]", 0, 1, 4, 3, false, "unexpected ']' after the end"},
    {"{}\0", 3, 1, 3, 2, false, "unexpected byte 0x00 after the end"},
    {"\xef\xbb\xbf{}", 0, 1, 1, 0, false, "byte-order mark"},
    {"[\x01]", 0, 1, 2, 1, false, "expected a value, found byte 0x01"},
    {"[1,\n 2,,\n 3]", 0, 2, 4, 7, false, "expected a value, found ','"},
    // a multi-line document: line 3 is `  "b": [1, 2,, 3]`, the second ',' is its 14th byte
    {"{\n  \"a\": 1,\n  \"b\": [1, 2,, 3]\n}", 0, 3, 14, 25, false, "expected a value, found ','"},
    {"{\r\n\"a\":\r\n x}", 0, 3, 2, 10, false, "expected a value, found 'x'"},
};

static void case_syntax(void) {
    for (size_t i = 0; i < sizeof k_bad / sizeof k_bad[0]; i++) {
        const BadCase *c = &k_bad[i];
        size_t len = c->len ? c->len : strlen(c->text);
        JsonError e;
        memset(&e, 0x55, sizeof e);
        JsonDoc *doc = json_parse("bad.json", c->text, len, NULL, &e);
        char shown[64];  // the text with control and non-ASCII bytes escaped
        size_t o = 0;
        for (size_t k = 0; k < len && o < 40; k++) {
            unsigned char ch = (unsigned char)c->text[k];
            o += (size_t)snprintf(shown + o, sizeof shown - o,
                                  ch >= 0x20 && ch < 0x7F ? "%c" : "\\x%02x", ch);
        }
        printf("  %-26s -> %s\n", shown, doc ? "(accepted)" : e.msg);
        CHECK(doc == NULL, "case %zu was accepted", i);
        json_free(doc);
        if (doc) continue;
        CHECK(e.line == c->line && e.col == c->col && e.pos == c->byte && e.eof == c->eof,
              "case %zu: line %d col %d byte %zu eof %d, want %d %d %zu %d", i, e.line, e.col,
              e.pos, e.eof, c->line, c->col, c->byte, c->eof);
        CHECK(strstr(e.what, c->what) != NULL, "case %zu: '%s' lacks '%s'", i, e.what, c->what);
        char head[128];
        snprintf(head, sizeof head, "bad.json: line %d, column %d (byte %zu): ", c->line, c->col,
                 c->byte);
        CHECK(!strncmp(e.msg, head, strlen(head)), "case %zu: message '%s' does not start '%s'", i,
              e.msg, head);
    }
    // the JSON Pointer of the place, and what callers can build from it
    JsonError e;
    CHECK(!parse("{\"a/b\": {\"c~d\": [0, {\"e\": [1, 2 3]}]}}", NULL, &e), "nested error");
    CHECK(!strcmp(e.path, "/a~1b/c~0d/1/e"), "path %s", e.path);  // between items of "e"
    CHECK(strstr(e.msg, "after item 1, found '3' (at /a~1b/c~0d/1/e)") != NULL, "%s", e.msg);
    CHECK(!parse("{\"a\": [0, {\"b\": tru}]}", NULL, &e) && !strcmp(e.path, "/a/1/b"), "path %s",
          e.path);
    char part[16];
    const char *ptr = "/a~1b/c~0d/1/e";
    CHECK(json_pointer_part(ptr, 0, part, sizeof part) == 3 && !strcmp(part, "a/b"), "part 0");
    CHECK(json_pointer_part(ptr, 1, part, sizeof part) == 3 && !strcmp(part, "c~d"), "part 1");
    CHECK(json_pointer_part(ptr, 3, part, sizeof part) == 1 && !strcmp(part, "e"), "part 3");
    CHECK(json_pointer_part(ptr, 4, part, sizeof part) == -1, "past the end");
    CHECK(json_pointer_part("/abcdefgh", 0, part, 4) == 8 && !strcmp(part, "abc"), "cut");
    CHECK(!parse("{\"a\": 1, \"b\" 2}", NULL, &e) && !strcmp(e.path, "/b"), "path %s", e.path);
    CHECK(!parse("{\"a\": 1,, }", NULL, &e) && !strcmp(e.path, ""), "between members: %s", e.path);
    CHECK(json_parse("x", "[", 1, NULL, NULL) == NULL, "err may be NULL");
}

// ---- duplicate keys -------------------------------------------------------------------

static void case_duplicates(void) {
    JsonError e;
    JsonDoc *doc = parse("{\"a\": 1, \"b\": 2, \"a\": 3}", NULL, &e);
    CHECK(doc != NULL, "%s", e.msg);
    if (!doc) return;
    const JsonValue *r = json_root(doc);
    CHECK(json_count(r) == 3 && json_get(r, "a")->i == 3, "duplicates kept, the last one wins");
    CHECK(json_duplicate(r) == &r->members[2], "json_duplicate finds the second 'a'");
    json_free(doc);

    // 40 members (the sorted path): k5 repeats at 30 and 35, k17 at 25: the first repeat is 25
    char text[2048];
    size_t o = (size_t)snprintf(text, sizeof text, "{");
    for (int i = 0; i < 40; i++) {
        int k = i == 25 ? 17 : i == 30 || i == 35 ? 5 : i;
        o += (size_t)snprintf(text + o, sizeof text - o, "%s\"k%d\": %d", i ? ", " : "", k, i);
    }
    snprintf(text + o, sizeof text - o, "}");
    doc = parse(text, NULL, &e);
    r = doc ? json_root(doc) : NULL;
    CHECK(r && json_duplicate(r) == &r->members[25], "first repeat of 40");
    CHECK(r && json_get(r, "k5")->i == 35 && json_get(r, "k17")->i == 25, "last wins");
    json_free(doc);
    doc = parse("{\"a\\u0000b\": 1, \"a\\u0000c\": 2, \"a\": 3}", NULL, &e);
    CHECK(doc && json_duplicate(json_root(doc)) == NULL, "keys differing after a NUL");
    json_free(doc);
    doc = parse("{\"x\": [{\"a\": 1}, {\"a\": 2}]}", NULL, &e);
    CHECK(doc && json_duplicate(json_root(doc)) == NULL, "same key in sibling objects");
    json_free(doc);

    // reject_duplicates: the error points at the repeat and names the first
    JsonOptions strict = {.reject_duplicates = true};
    CHECK(!parse("{\"a\": 1,\n \"b\": {\"c\": 1, \"a\": 2},\n \"a\": 3}", &strict, &e),
          "duplicate accepted");
    printf("  %s\n", e.msg);
    CHECK(e.line == 3 && e.col == 2 && e.pos == 34, "at line %d col %d byte %zu", e.line, e.col,
          e.pos);
    CHECK(strstr(e.what, "duplicate key \"a\" (first at line 1, column 2)") != NULL, "%s", e.what);
    CHECK(!parse(text, &strict, &e) && strstr(e.what, "duplicate key \"k17\""), "%s", e.what);
    doc = parse("{\"a\": {\"a\": {\"a\": 1}}}", &strict, &e);
    CHECK(doc != NULL, "nested same keys are no duplicates: %s", e.msg);
    json_free(doc);
}

// ---- nesting ----------------------------------------------------------------------------

// n arrays deep, closed when closed is set (else the text simply stops).
static char *nested(int n, bool closed, const char *open, const char *close) {
    size_t lo = strlen(open), lc = strlen(close);
    char *s = malloc((size_t)n * (lo + lc) + 2);
    size_t o = 0;
    for (int i = 0; i < n; i++, o += lo) memcpy(s + o, open, lo);
    s[o++] = '1';
    for (int i = 0; closed && i < n; i++, o += lc) memcpy(s + o, close, lc);
    s[o] = 0;
    return s;
}

static void case_depth(void) {
    JsonError e;
    char *s = nested(JSON_DEFAULT_DEPTH, true, "[", "]");
    JsonDoc *doc = parse(s, NULL, &e);
    CHECK(doc != NULL, "256 levels: %s", e.msg);
    const JsonValue *v = doc ? json_root(doc) : NULL;
    for (int i = 0; v && i < JSON_DEFAULT_DEPTH; i++) v = json_at(v, 0);
    CHECK(v && v->type == JSON_NUMBER && v->i == 1, "innermost value");
    json_free(doc);
    free(s);
    s = nested(JSON_DEFAULT_DEPTH + 1, true, "[", "]");
    CHECK(!parse(s, NULL, &e) && e.pos == 256 && strstr(e.what, "nested deeper than 256 levels"),
          "257 levels: %s", e.msg);
    free(s);
    // a million levels, never closed: refused at level 257, no stack overflow
    s = nested(1000000, false, "{\"a\":[", "");
    CHECK(!parse(s, NULL, &e) && strstr(e.what, "deeper than 256") && e.pos == 128 * 6,
          "a million levels: byte %zu: %s", e.pos, e.what);
    free(s);
    JsonOptions three = {.max_depth = 3}, huge = {.max_depth = 1 << 30};
    doc = parse("[[{\"a\": 1}]]", &three, &e);
    CHECK(doc != NULL, "3 levels with max_depth 3: %s", e.msg);
    json_free(doc);
    CHECK(!parse("[[[[1]]]]", &three, &e) && strstr(e.what, "deeper than 3 levels"), "%s", e.msg);
    s = nested(JSON_MAX_DEPTH, true, "[", "]");
    doc = parse(s, &huge, &e);
    CHECK(doc != NULL, "JSON_MAX_DEPTH levels: %s", e.msg);
    json_free(doc);
    free(s);
    s = nested(JSON_MAX_DEPTH + 1, true, "[", "]");
    CHECK(!parse(s, &huge, &e) && strstr(e.what, "deeper than 1024"),
          "max_depth is capped at JSON_MAX_DEPTH: %s", e.msg);
    free(s);
}

// ---- numbers ----------------------------------------------------------------------------

static void case_numbers(void) {
    static const struct {
        const char *text;
        bool is_int;
        int64_t i;
        double d;
    } k[] = {
        {"0", true, 0, 0.0},
        {"-0", true, 0, -0.0},
        {"7", true, 7, 7.0},
        {"1.5", false, 0, 1.5},
        {"2.0", false, 0, 2.0},
        {"1E3", false, 0, 1000.0},
        {"1e+2", false, 0, 100.0},
        {"-1e-2", false, 0, -0.01},
        {"0.1", false, 0, 0.1},
        {"9223372036854775807", true, INT64_MAX, 9223372036854775807.0},
        {"-9223372036854775808", true, INT64_MIN, -9223372036854775808.0},
        {"9223372036854775808", false, 0, 9223372036854775808.0},
        {"-9223372036854775809", false, 0, -9223372036854775809.0},
        {"18446744073709551616", false, 0, 18446744073709551616.0},
        {"123456789012345678901234567890", false, 0, 123456789012345678901234567890.0},
        {"4.9406564584124654e-324", false, 0, 4.9406564584124654e-324},
        {"1.7976931348623157e308", false, 0, 1.7976931348623157e308},
        {"1e400", false, 0, HUGE_VAL},
        {"-1e400", false, 0, -HUGE_VAL},
        {"1e-400", false, 0, 0.0},
    };
    for (size_t n = 0; n < sizeof k / sizeof k[0]; n++) {
        JsonError e;
        JsonDoc *doc = parse(k[n].text, NULL, &e);
        CHECK(doc != NULL, "%s: %s", k[n].text, e.msg);
        if (!doc) continue;
        const JsonValue *v = json_root(doc);
        CHECK(v->type == JSON_NUMBER && v->is_int == k[n].is_int && (!v->is_int || v->i == k[n].i),
              "%s: is_int %d i %lld", k[n].text, v->is_int, (long long)v->i);
        CHECK(v->d == k[n].d && !signbit(v->d) == !signbit(k[n].d), "%s: d %.17g want %.17g",
              k[n].text, v->d, k[n].d);
        CHECK(!strcmp(v->str, k[n].text) && v->len == strlen(k[n].text), "%s: text '%s'", k[n].text,
              v->str);
        json_free(doc);
    }
    // a thousand digits: the text is kept whole, the double saturates
    char big[1003] = "[";
    memset(big + 1, '9', 1000);
    strcpy(big + 1001, "]");
    JsonError e;
    JsonDoc *doc = parse(big, NULL, &e);
    CHECK(doc && json_at(json_root(doc), 0)->len == 1000 && !json_at(json_root(doc), 0)->is_int &&
              isinf(json_at(json_root(doc), 0)->d),
          "1000 digits");
    json_free(doc);
    // NaN / Infinity / -Infinity: refused by default, numbers with JsonOptions.nonfinite
    const char *nf = "{\"a\": -Infinity, \"b\": Infinity, \"c\": NaN}";
    doc = parse(nf, NULL, &e);
    CHECK(doc == NULL, "non-finite numbers accepted without the option");
    json_free(doc);
    const JsonOptions opt = {.nonfinite = true};
    doc = parse(nf, &opt, &e);
    CHECK(doc != NULL, "non-finite numbers with the option: %s", e.msg);
    if (doc) {
        const JsonValue *r = json_root(doc);
        CHECK(r->members[0].value.type == JSON_NUMBER && isinf(r->members[0].value.d) &&
                  r->members[0].value.d < 0 && !r->members[0].value.is_int,
              "-Infinity");
        CHECK(isinf(r->members[1].value.d) && r->members[1].value.d > 0, "Infinity");
        CHECK(isnan(r->members[2].value.d), "NaN");
        json_free(doc);
    }
}

// ---- UTF-8 ------------------------------------------------------------------------------

static void case_utf8(void) {
    static const struct {
        const char *text;
        size_t byte;
        unsigned bad;
    } bad[] = {
        {"\"\x80\"", 1, 0x80},              // a continuation byte alone
        {"\"ab\xbf\"", 3, 0xbf},            //
        {"\"\xc0\xaf\"", 1, 0xc0},          // overlong '/'
        {"\"\xc1\xbf\"", 1, 0xc1},          // overlong
        {"\"\xe0\x80\xaf\"", 1, 0xe0},      // overlong, 3 bytes
        {"\"\xf0\x80\x80\xaf\"", 1, 0xf0},  // overlong, 4 bytes
        {"\"\xed\xa0\x80\"", 1, 0xed},      // an encoded UTF-16 surrogate
        {"\"\xf4\x90\x80\x80\"", 1, 0xf4},  // past U+10FFFF
        {"\"\xf5\x80\x80\x80\"", 1, 0xf5},  //
        {"\"\xff\"", 1, 0xff},              //
        {"\"\xe2\x82\"", 1, 0xe2},          // cut short by the quote
        {"\"x\xc3", 2, 0xc3},               // cut short by the end
        {"\"\xc3\xa9\xc3\x28\"", 3, 0xc3},  // the second character is bad
        {"{\"\xc3\x28\": 1}", 2, 0xc3},     // in a key
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        JsonError e;
        CHECK(!parse(bad[i].text, NULL, &e), "case %zu accepted", i);
        char want[64];
        snprintf(want, sizeof want, "invalid UTF-8 (byte 0x%02x) in a string", bad[i].bad);
        CHECK(e.pos == bad[i].byte && strstr(e.what, want), "case %zu: byte %zu: %s", i, e.pos,
              e.what);
    }
    // every well-formed boundary case passes through unchanged
    const char good[] =
        "\x7f\xc2\x80\xdf\xbf\xe0\xa0\x80\xed\x9f\xbf\xee\x80\x80\xef\xbf\xbf\xf0\x90\x80\x80"
        "\xf4\x8f\xbf\xbf";
    char text[64];
    snprintf(text, sizeof text, "\"%s\"", good);
    JsonError e;
    JsonDoc *doc = parse(text, NULL, &e);
    CHECK(doc && str_is(json_root(doc), good, sizeof good - 1), "boundaries: %s", e.msg);
    json_free(doc);
    CHECK(!parse("[\xc3\xa9]", NULL, &e) && strstr(e.what, "found byte 0xc3"), "outside strings");
    // lone surrogates: an error by default, U+FFFD on request
    JsonOptions lenient = {.lone_surrogates = true};
    doc = parse("\"\\ud800x\\udfff\\ud83d\"", &lenient, &e);
    CHECK(doc && str_is(json_root(doc), "\xef\xbf\xbdx\xef\xbf\xbd\xef\xbf\xbd", 10),
          "lenient surrogates: %s", e.msg);
    json_free(doc);
    // json_put_utf8 at the length boundaries
    const uint32_t cps[] = {0, 0x7f, 0x80, 0x7ff, 0x800, 0xffff, 0x10000, 0x10ffff};
    const char *enc[] = {"\0",           "\x7f",         "\xc2\x80",         "\xdf\xbf",
                         "\xe0\xa0\x80", "\xef\xbf\xbf", "\xf0\x90\x80\x80", "\xf4\x8f\xbf\xbf"};
    const int lens[] = {1, 1, 2, 2, 3, 3, 4, 4};
    for (int i = 0; i < 8; i++) {
        char out[4];
        char *end = json_put_utf8(out, cps[i]);
        CHECK(end - out == lens[i] && !memcmp(out, enc[i], (size_t)lens[i]), "U+%04X", cps[i]);
    }
}

// ---- typed getters and messages ---------------------------------------------------------

static void case_getters(void) {
    const char *text =
        "{\"i\": 42, \"big\": 1e3, \"f\": 1.5, \"b\": true, \"s\": \"x\", \"n\": null,\n"
        " \"z\": \"a\\u0000b\", \"arr\": [1, \"two\"], \"inf\": 1e999, \"neg\": -3}";
    JsonError je;
    JsonDoc *doc = parse(text, NULL, &je);
    CHECK(doc != NULL, "%s", je.msg);
    if (!doc) return;
    const JsonValue *r = json_root(doc);
    char err[256];
    int64_t i = -1;
    double d = -1;
    bool b = false;
    const char *s = NULL;
    CHECK(json_get_int(doc, r, "i", 0, 100, &i, err, sizeof err) == 1 && i == 42, "int");
    CHECK(json_get_int(doc, r, "neg", -5, 5, &i, err, sizeof err) == 1 && i == -3, "negative");
    i = 7;
    CHECK(json_get_int(doc, r, "absent", 0, 100, &i, err, sizeof err) == 0 && i == 7,
          "absent keeps the default");
    CHECK(json_get_int(doc, r, "i", 0, 10, &i, err, sizeof err) == -1 && i == 7, "range");
    CHECK(!strcmp(err,
                  "t.json: line 1, column 7 (byte 6): \"i\": expected an integer in [0, 10], "
                  "found 42"),
          "message: %s", err);
    CHECK(json_get_int(doc, r, "f", 0, 10, &i, err, sizeof err) == -1 && strstr(err, "found 1.5"),
          "fraction: %s", err);
    CHECK(json_get_int(doc, r, "big", 0, 10000, &i, err, sizeof err) == -1 &&
              strstr(err, "found 1e3"),
          "1e3 is written as a float: %s", err);
    CHECK(json_get_int(doc, r, "s", 0, 10, &i, err, sizeof err) == -1 && strstr(err, "found \"x\""),
          "string: %s", err);
    CHECK(json_get_number(doc, r, "big", &d, err, sizeof err) == 1 && d == 1000.0, "number");
    CHECK(json_get_number(doc, r, "i", &d, err, sizeof err) == 1 && d == 42.0, "int as number");
    CHECK(json_get_number(doc, r, "inf", &d, err, sizeof err) == -1 &&
              strstr(err,
                     "line 2, column 45 (byte 108): \"inf\": expected a finite number, "
                     "found 1e999"),
          "infinite: %s", err);
    CHECK(json_get_number(doc, r, "n", &d, err, sizeof err) == -1 && strstr(err, "found null"),
          "null: %s", err);
    CHECK(json_get_bool(doc, r, "b", &b, err, sizeof err) == 1 && b, "bool");
    CHECK(json_get_bool(doc, r, "i", &b, err, sizeof err) == -1 &&
              strstr(err, "\"i\": expected true or false, found 42"),
          "bool: %s", err);
    CHECK(json_get_string(doc, r, "s", &s, err, sizeof err) == 1 && !strcmp(s, "x"), "string");
    CHECK(json_get_string(doc, r, "z", &s, err, sizeof err) == -1 && strstr(err, "\\u0000"),
          "NUL inside: %s", err);
    CHECK(json_get_string(doc, r, "arr", &s, err, sizeof err) == -1 &&
              strstr(err, "expected a string, found an array"),
          "array: %s", err);
    const JsonValue *arr = json_get(r, "arr");
    CHECK(json_get_int(doc, arr, "x", 0, 1, &i, err, sizeof err) == -1 &&
              strstr(err, "expected an object holding \"x\", found an array"),
          "not an object: %s", err);
    CHECK(json_as_int(doc, json_at(arr, 0), "arr[0]", 0, 5, &i, err, sizeof err) == 0 && i == 1,
          "json_as_int");
    CHECK(json_as_string(doc, json_at(arr, 1), "arr[1]", &s, err, sizeof err) == 0 &&
              !strcmp(s, "two"),
          "json_as_string");
    CHECK(json_errat(doc, json_at(arr, 1)->pos, err, sizeof err, "custom %d", 5) == -1 &&
              !strcmp(err, "t.json: line 2, column 30 (byte 93): custom 5"),
          "json_errat: %s", err);
    CHECK(json_errat(doc, 0, NULL, 0, "x") == -1, "json_errat without a buffer");
    char small[24];
    json_errat(doc, 0, small, sizeof small, "a long message that is cut");
    CHECK(strlen(small) == sizeof small - 1, "cut message: %s", small);
    CHECK(!strcmp(json_type_name(JSON_OBJECT), "an object") &&
              !strcmp(json_type_name(JSON_NULL), "null"),
          "type names");
    json_free(doc);
}

static void case_file(void) {
    char path[512];
    snprintf(path, sizeof path, "%s/config.json", g_dir);
    FILE *f = fopen(path, "wb");
    if (!f) {
        perror(path);
        exit(2);
    }
    fputs(
        "{\n  \"_class_name\": \"UNet2DConditionModel\",\n  \"sample_size\": 128,\n"
        "  \"block_out_channels\": [320, 640, 1280]\n}\n",
        f);
    fclose(f);
    JsonError e;
    JsonDoc *doc = json_parse_file(path, NULL, &e);
    CHECK(doc != NULL, "%s", e.msg);
    if (doc) {
        const JsonValue *r = json_root(doc);
        CHECK(str_is(json_get(r, "_class_name"), "UNet2DConditionModel", 20), "class name");
        CHECK(json_at(json_get(r, "block_out_channels"), 2)->i == 1280, "list");
        char err[512];
        int64_t v;
        CHECK(json_get_int(doc, r, "sample_size", 1, 64, &v, err, sizeof err) == -1 &&
                  strstr(err, path) && strstr(err, "line 3, column 18"),
              "message names the file: %s", err);
        json_free(doc);
    }
    f = fopen(path, "wb");
    fputs("{\"a\": [1, 2}\n", f);
    fclose(f);
    CHECK(!json_parse_file(path, NULL, &e) && strstr(e.msg, path) && e.line == 1 && e.col == 12,
          "bad file: %s", e.msg);
    CHECK(!json_parse_file("/nonexistent/x.json", NULL, &e) &&
              !strcmp(e.msg, "/nonexistent/x.json: cannot open: No such file or directory") &&
              e.line == 0,
          "missing file: %s", e.msg);
    CHECK(!json_parse_file(g_dir, NULL, &e) && strstr(e.msg, "cannot read"), "a directory: %s",
          e.msg);
}

// ---- damaged documents ------------------------------------------------------------------

static uint64_t g_rng = 0x9E3779B97F4A7C15ull;
static uint32_t rnd(uint32_t n) {  // xorshift64*, deterministic
    g_rng ^= g_rng >> 12, g_rng ^= g_rng << 25, g_rng ^= g_rng >> 27;
    return (uint32_t)((g_rng * 2685821657736338717ull) >> 33) % n;
}

static bool utf8_ok(const char *s, size_t n) {  // a second, independent check
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)s[i];
        size_t len = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : 4;
        if (i + len > n) return false;
        uint32_t cp = len == 1 ? c : c & (0x7F >> len);
        for (size_t k = 1; k < len; k++) {
            if (((unsigned char)s[i + k] & 0xC0) != 0x80) return false;
            cp = cp << 6 | ((unsigned char)s[i + k] & 0x3F);
        }
        static const uint32_t min[5] = {0, 0, 0x80, 0x800, 0x10000};
        if (c >= 0xF8 || (len > 1 && cp < min[len]) || cp > 0x10FFFF ||
            (cp >= 0xD800 && cp < 0xE000))
            return false;
        i += len;
    }
    return true;
}

// Every string and key of a parsed tree is well-formed UTF-8 and NUL-terminated.
static int check_tree(const JsonValue *v, const char *text, size_t len) {
    int bad = v->pos >= len;
    if (v->type == JSON_STRING || v->type == JSON_NUMBER)
        bad += v->str[v->len] != 0 || !utf8_ok(v->str, v->len);
    if (v->type == JSON_NUMBER) bad += v->is_int && v->i != strtoll(v->str, NULL, 10);
    for (size_t i = 0; v->type == JSON_ARRAY && i < v->len; i++)
        bad += check_tree(&v->items[i], text, len);
    for (size_t i = 0; v->type == JSON_OBJECT && i < v->len; i++) {
        const JsonMember *m = &v->members[i];
        bad += m->key[m->key_len] != 0 || !utf8_ok(m->key, m->key_len) || text[m->key_pos] != '"';
        bad += check_tree(&m->value, text, len);
    }
    return bad;
}

static void case_mutations(void) {
    static const char *seeds[] = {
        "{\"_class_name\": \"EulerDiscreteScheduler\", \"beta_start\": 0.00085,\n"
        " \"trained_betas\": null, \"steps_offset\": 1, \"clip_sample\": false,\n"
        " \"timestep_spacing\": \"leading\", \"betas\": [1e-4, 2.5E-2, -0]}",
        "[\"caf\\u00e9 \xc3\xa9\", {\"k\\n\": [[], {}]}, \"\\ud83d\\ude00\", 9223372036854775807]",
    };
    char buf[512];
    int accepted = 0, rejected = 0;
    for (int iter = 0; iter < 20000; iter++) {
        const char *seed = seeds[iter % 2];
        size_t n = strlen(seed);
        memcpy(buf, seed, n);
        for (int k = 1 + (int)rnd(3); k > 0 && n > 1; k--) {  // 1-3 damages
            size_t at = rnd((uint32_t)n);
            switch (rnd(4)) {
            case 0: buf[at] = (char)rnd(256); break;                          // replace a byte
            case 1: buf[at] = "{}[]\",:\\ 0e-.u"[rnd(15)]; break;             // a JSON character
            case 2: memmove(buf + at, buf + at + 1, n - at - 1), n--; break;  // delete
            case 3: n = at + 1; break;                                        // truncate
            }
        }
        JsonError e;
        JsonDoc *doc = json_parse("m.json", buf, n, NULL, &e);
        if (doc) {
            accepted++;
            int bad = check_tree(json_root(doc), buf, n);
            CHECK(bad == 0, "iteration %d: %d inconsistencies in the tree", iter, bad);
            json_free(doc);
            continue;
        }
        rejected++;
        int line = 1, col = 1;  // recount the position by hand
        for (size_t i = 0; i < e.pos && i < n; i++) {
            col = buf[i] == '\n' ? 1 : col + 1;
            line += buf[i] == '\n';
        }
        CHECK(e.pos <= n && e.line == line && e.col == col && e.what[0] &&
                  !strncmp(e.msg, "m.json: line ", 13),
              "iteration %d: byte %zu of %zu, line %d col %d (want %d %d): %s", iter, e.pos, n,
              e.line, e.col, line, col, e.msg);
        if (g_fail > 10) return;
    }
    printf("  20000 damaged documents: %d accepted, %d rejected\n", accepted, rejected);
    CHECK(accepted > 100 && rejected > 10000, "the damage mix is off");
}

static const struct {
    const char *name;
    void (*fn)(void);
} k_cases[] = {
    {"valid", case_valid},     {"syntax", case_syntax},   {"duplicates", case_duplicates},
    {"depth", case_depth},     {"numbers", case_numbers}, {"utf8", case_utf8},
    {"getters", case_getters}, {"file", case_file},       {"mutations", case_mutations},
};

int main(int argc, char **argv) {
    const char *which = argc > 1 ? argv[1] : "all";
    g_dir = argc > 2 ? argv[2] : ".";
    int ran = 0;
    for (size_t i = 0; i < sizeof k_cases / sizeof k_cases[0]; i++) {
        if (strcmp(which, "all") && strcmp(which, k_cases[i].name)) continue;
        printf("json_%s\n", k_cases[i].name);
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

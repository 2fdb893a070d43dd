// tests/config/test_cfg.c: runner/config (the YAML layer of every job's config): node
// positions, key order, duplicates, syntax errors with libyaml's positions, anchors and
// aliases, command-line overrides, did-you-mean, the typed accessors' messages and the
// problem list's truncation.
//   test_cfg positions|duplicates|syntax|aliases|overrides|suggest|access|errors
// Each mode ends with "cfg MODE: N checks, 0 failure(s)".
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runner/config.h"
#include "tests/common/test_check.h"

static char err[8192];

static int load(CfgDoc *d, const char *text) {
    return cfg_load_string(d, "t.yaml", text, strlen(text), err, sizeof err);
}

#define HAS(s, sub) (strstr((s), (sub)) != NULL)

static void test_positions(void) {
    CfgDoc d;
    const char *text =
        "# a comment\n"
        "model: builtin:tiny-sdxl\n"
        "steps:   30\n"
        "negative: \"bad hands\"\n"
        "csa:\n"
        "  sa32: 0.5\n"
        "  blocks: [up, mid]\n"
        "frames:\n"
        "  - \"[Bob] at home # home\"\n"
        "  - plain line\n"
        "zeta: 1\n"
        "alpha: 2\n";
    CHECK(load(&d, text) == 0, "load: %s", err);
    const CfgNode *r = d.root;
    CHECK(r && r->kind == CFG_MAP && r->n == 7, "root map of 7, got %d", r ? r->n : -1);
    const char *order[] = {"model", "steps", "negative", "csa", "frames", "zeta", "alpha"};
    for (int i = 0; i < 7 && r && i < r->n; i++)
        CHECK(!strcmp(r->keys[i]->text, order[i]), "key %d is %s, expected %s (file order)", i,
              r->keys[i]->text, order[i]);
    const CfgNode *k = cfg_get_key(r, "steps"), *v = cfg_get(r, "steps");
    CHECK(k && k->line == 3 && k->col == 1, "steps key at 3:1, got %d:%d", k->line, k->col);
    CHECK(v && v->line == 3 && v->col == 10 && !strcmp(v->text, "30") && !v->quoted,
          "steps value at 3:10, got %d:%d", v->line, v->col);
    v = cfg_get(r, "negative");
    CHECK(v->line == 4 && v->col == 11 && v->quoted && !strcmp(v->text, "bad hands"),
          "negative at 4:11 quoted, got %d:%d", v->line, v->col);
    const CfgNode *csa = cfg_get(r, "csa");
    CHECK(csa->kind == CFG_MAP && csa->line == 6 && csa->col == 3,
          "csa map starts at 6:3, got %d:%d", csa->line, csa->col);
    const CfgNode *bl = cfg_get(csa, "blocks");
    CHECK(bl->kind == CFG_SEQ && bl->n == 2 && bl->line == 7 && bl->col == 11,
          "blocks flow list at 7:11, got %d:%d", bl->line, bl->col);
    CHECK(bl->items[1]->line == 7 && bl->items[1]->col == 16 && !strcmp(bl->items[1]->text, "mid"),
          "'mid' at 7:16, got %d:%d", bl->items[1]->line, bl->items[1]->col);
    const CfgNode *fr = cfg_get(r, "frames");
    CHECK(fr->kind == CFG_SEQ && fr->n == 2, "frames list of 2");
    const CfgNode *f0 = fr->items[0];
    CHECK(f0->line == 9 && f0->col == 5 && f0->quoted, "frame 0 at 9:5, got %d:%d", f0->line,
          f0->col);
    // a byte inside a quoted one-line value: the column of that character
    int l, c;
    cfg_text_pos(f0, 14, &l, &c);  // '#' of "[Bob] at home # home"
    CHECK(l == 9 && c == 5 + 1 + 14, "offset 14 of frame 0 at 9:20, got %d:%d", l, c);
    cfg_text_pos(fr->items[1], 6, &l, &c);  // plain: "plain line", 'l' of line
    CHECK(l == 10 && c == 11, "offset 6 of the plain frame at 10:11, got %d:%d", l, c);
    char w[128];
    CHECK(!strcmp(cfg_where(&d, f0, w, sizeof w), "t.yaml:9:5"), "where: %s", w);
    CHECK(!strcmp(cfg_where(&d, NULL, w, sizeof w), "t.yaml"), "where NULL: %s", w);
    cfg_free(&d);

    // escapes and multi-line values: columns fall back to the value's start
    CHECK(load(&d, "a: \"x\\ty [Q]\"\nb: >\n  folded [Q]\n  text\n") == 0, "load: %s", err);
    cfg_text_pos(cfg_get(d.root, "a"), 4, &l, &c);
    CHECK(l == 1 && c == 4, "escaped value: start 1:4, got %d:%d", l, c);
    cfg_text_pos(cfg_get(d.root, "b"), 8, &l, &c);
    CHECK(l == 2 && c == 4, "folded block: start 2:4, got %d:%d", l, c);
    cfg_free(&d);

    // UTF-8: columns count characters, as libyaml's marks do
    CHECK(load(&d, "t: \"h\xc3\xa9 [X] y\"\nn: 1\n") == 0, "load: %s", err);
    cfg_text_pos(cfg_get(d.root, "t"), 4, &l, &c);  // '[' is byte 4, character 3
    CHECK(c == 4 + 1 + 3, "UTF-8 column: expected 8, got %d", c);
    cfg_free(&d);

    // empty document and a document of one scalar
    CHECK(load(&d, "# nothing\n") == 0 && d.root == NULL, "empty document: root NULL");
    cfg_free(&d);
    CHECK(load(&d, "just text\n") == 0 && d.root && d.root->kind == CFG_SCALAR, "scalar root");
    cfg_free(&d);
}

static void test_duplicates(void) {
    CfgDoc d;
    CHECK(load(&d, "steps: 1\nseed: 2\nsteps: 3\n") == -1, "duplicate key refused");
    CHECK(HAS(err, "t.yaml:3:1: duplicate key 'steps' (first at line 1, column 1)"), "got: %s",
          err);
    CHECK(cfg_errors(&d) == 1, "one problem, got %d", cfg_errors(&d));
    cfg_free(&d);
    // nested, and every duplicate reported
    CHECK(load(&d, "csa:\n  sa32: 1\n  sa32: 2\nx: {a: 1, a: 2}\n") == -1, "nested duplicates");
    CHECK(HAS(err, "t.yaml:3:3: duplicate key 'sa32' (first at line 2, column 3)") &&
              HAS(err, "t.yaml:4:11: duplicate key 'a' (first at line 4, column 5)") &&
              cfg_errors(&d) == 2,
          "got: %s", err);
    cfg_free(&d);
    // a key written as a flow list (an unquoted "[Bob]: ...")
    CHECK(load(&d, "characters:\n  - [Bob]: a man\n") == -1, "flow-list key refused");
    CHECK(HAS(err, "t.yaml:2:5: a mapping key must be text, got a list") && HAS(err, "quoted"),
          "got: %s", err);
    cfg_free(&d);
    CHECK(load(&d, "a: 1\n---\nb: 2\n") == -1, "two documents refused");
    CHECK(HAS(err, "t.yaml:2:1: a second YAML document"), "got: %s", err);
    cfg_free(&d);
}

static void test_syntax(void) {
    CfgDoc d;
    static const struct {
        const char *text, *expect;
    } cases[] = {
        {"a: [1, 2\nb: 3\n",
         "t.yaml:2:2: YAML syntax error: did not find expected ',' or ']' (while parsing a flow "
         "sequence at line 1, column 4)"},
        {"a: 1\n  b: 2\n",
         "t.yaml:2:4: YAML syntax error: mapping values are not allowed in this context"},
        {"a: \"x\n",
         "t.yaml:2:1: YAML syntax error: found unexpected end of stream (while scanning "
         "a quoted scalar at line 1, column 4)"},
        {"a:\n\t- 1\n",
         "t.yaml:2:1: YAML syntax error: found character that cannot start any token"},
        {"a: 1\nb: *x\nc: 3\n", "t.yaml:2:4: alias *x names no anchor (&x) above it\n"},
        {"a: &x [*x]\n", "t.yaml:1:8: alias *x refers to a node that contains it\n"},
        {"a: \xff\xfe\n",
         "t.yaml: not readable as YAML text: invalid leading UTF-8 octet at byte 3"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        int rc = load(&d, cases[i].text);
        CHECK(rc == -1 && d.root == NULL, "case %zu: refused", i);
        CHECK(HAS(err, cases[i].expect), "case %zu: expected\n  %s\ngot\n  %s", i, cases[i].expect,
              err);
        CHECK(cfg_errors(&d) == 1, "case %zu: one problem, got %d: %s", i, cfg_errors(&d), err);
        cfg_free(&d);
    }
    // a missing file
    CHECK(cfg_load_file(&d, "/nonexistent/story.yaml", err, sizeof err) == -1, "missing file");
    CHECK(HAS(err, "/nonexistent/story.yaml: cannot open: No such file"), "got: %s", err);
    cfg_free(&d);
}

static void test_aliases(void) {
    CfgDoc d;
    CHECK(load(&d, "base: &b {sa32: 0.3, blocks: [up]}\ncsa: *b\nname: &n Bob\nwho: *n\n") == 0,
          "aliases load: %s", err);
    const CfgNode *csa = cfg_get(d.root, "csa"), *base = cfg_get(d.root, "base");
    CHECK(csa && csa->kind == CFG_MAP && csa != base && csa->n == 2, "alias is a copy of the map");
    CHECK(!strcmp(cfg_get(csa, "sa32")->text, "0.3") && cfg_get(csa, "sa32")->line == 1 &&
              cfg_get(csa, "sa32")->col == 17,
          "the copy keeps the anchor's positions (1:17), got %d:%d", cfg_get(csa, "sa32")->line,
          cfg_get(csa, "sa32")->col);
    CHECK(!strcmp(cfg_get(d.root, "who")->text, "Bob"), "scalar alias");
    cfg_free(&d);
    // a billion laughs stops at the node limit, quickly
    const char *bomb =
        "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
        "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
        "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
        "d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
        "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\n"
        "f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\n"
        "g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]\n"
        "h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g, *g]\n";
    CHECK(load(&d, bomb) == -1, "alias bomb refused");
    CHECK(HAS(err, "aliases expand to more than"), "got: %s", err);
    cfg_free(&d);
}

static void test_overrides(void) {
    CfgDoc d;
    const char *text = "steps: abc\ncsa:\n  sa32: 0.5\nframes:\n  - one\n  - two\nnegative:\n";
    CHECK(load(&d, text) == 0, "load: %s", err);
    CHECK(cfg_override(&d, "steps=20", NULL) == 0, "steps=20: %s", err);
    const CfgNode *v = cfg_get(d.root, "steps");
    CHECK(
        v && !strcmp(v->text, "20") && v->set && !strcmp(v->set, "--set steps=20") && v->line == 0,
        "steps replaced and marked");
    CHECK(cfg_get_key(d.root, "steps")->line == 1, "the key keeps its place in the file");
    CHECK(cfg_override(&d, "csa.sa64=0.25", NULL) == 0, "a new key in an existing map");
    const CfgNode *csa = cfg_get(d.root, "csa");
    CHECK(csa->n == 2 && !strcmp(csa->keys[1]->text, "sa64") &&
              !strcmp(cfg_get(csa, "sa64")->text, "0.25"),
          "csa.sa64 appended");
    CHECK(cfg_override(&d, "csa.blocks=[up, mid]", NULL) == 0, "flow value: %s", err);
    v = cfg_get(csa, "blocks");
    CHECK(v && v->kind == CFG_SEQ && v->n == 2 && !strcmp(v->items[1]->text, "mid") &&
              v->items[1]->set && !strcmp(v->items[1]->set, "--set csa.blocks=[up, mid]"),
          "flow list parsed, items marked");
    CHECK(cfg_override(&d, "comic.layout=four-panel", NULL) == 0, "a new nested map");
    CHECK(!strcmp(cfg_get(cfg_get(d.root, "comic"), "layout")->text, "four-panel"), "comic.layout");
    CHECK(cfg_override(&d, "negative.x=1", NULL) == 0, "an empty value becomes a map");
    CHECK(cfg_get(d.root, "negative")->kind == CFG_MAP, "negative is now a map");
    CHECK(cfg_override(&d, "frames.1=[Bob] waves: hello # hi", NULL) == 0, "list index: %s", err);
    CHECK(!strcmp(cfg_get(d.root, "frames")->items[1]->text, "[Bob] waves: hello # hi"),
          "the text is taken as written, got '%s'", cfg_get(d.root, "frames")->items[1]->text);
    CHECK(cfg_override(&d, "output = \"out dir\" ", NULL) == 0, "quoted value");
    CHECK(!strcmp(cfg_get(d.root, "output")->text, "out dir") && cfg_get(d.root, "output")->quoted,
          "quoted value read as YAML");
    CHECK(cfg_override(&d, "seed=7", "--seed 7") == 0, "own label");
    char w[128];
    CHECK(!strcmp(cfg_where(&d, cfg_get(d.root, "seed"), w, sizeof w), "--seed 7"), "label: %s", w);
    CHECK(cfg_errors(&d) == 0, "no problems so far: %s", err);
    // errors
    CHECK(cfg_override(&d, "frames.2=x", NULL) == -1, "index past the end");
    CHECK(HAS(err, "--set frames.2=x: 'frames' is a list of 2: expected an index 0..1, got '2'"),
          "got: %s", err);
    CHECK(cfg_override(&d, "steps.x=1", NULL) == -1, "through a scalar");
    CHECK(HAS(err, "--set steps.x=1: 'steps' is a text value (--set steps=20), not a mapping"),
          "got: %s", err);
    CHECK(cfg_override(&d, "steps", NULL) == -1 && HAS(err, "--set steps: expected key=value"),
          "no '='");
    CHECK(cfg_override(&d, "=3", NULL) == -1, "no key");
    CHECK(cfg_override(&d, "csa..x=3", NULL) == -1 &&
              HAS(err, "--set csa..x=3: empty part in the key"),
          "empty part: %s", err);
    // not one whole YAML node: the text as written (the validator says what it expected)
    CHECK(cfg_override(&d, "csa.blocks=[up", NULL) == 0 &&
              !strcmp(cfg_get(csa, "blocks")->text, "[up"),
          "a broken flow value is text");
    CHECK(cfg_override(&d, "negative='a' b", NULL) == 0 &&
              !strcmp(cfg_get(d.root, "negative")->text, "'a' b"),
          "quotes then more: text");
    CHECK(cfg_errors(&d) == 5, "5 problems, got %d", cfg_errors(&d));
    cfg_free(&d);
    // overrides on an empty document
    CHECK(load(&d, "") == 0, "empty");
    CHECK(cfg_override(&d, "a.b=1", NULL) == 0 &&
              !strcmp(cfg_get(cfg_get(d.root, "a"), "b")->text, "1"),
          "an empty document gets a map");
    cfg_free(&d);
}

static void test_suggest(void) {
    CHECK(cfg_edit_distance("kitten", "sitting") == 3, "kitten/sitting");
    CHECK(cfg_edit_distance("Steps", "steps") == 0, "case-insensitive");
    CHECK(cfg_edit_distance("", "abc") == 3, "empty");
    static const char *const keys[] = {"model", "steps", "seed", "sampler", "sa32", "sa64", NULL};
    const char *s = cfg_suggest("stesp", keys, -1);
    CHECK(s && !strcmp(s, "steps"), "stesp -> steps, got %s", s ? s : "NULL");
    s = cfg_suggest("sa23", keys, -1);
    CHECK(s && !strcmp(s, "sa32"), "sa23 -> sa32, got %s", s ? s : "NULL");
    s = cfg_suggest("smapler", keys, 6);
    CHECK(s && !strcmp(s, "sampler"), "smapler -> sampler");
    CHECK(cfg_suggest("resolution", keys, -1) == NULL, "nothing close: NULL");
    CfgDoc d;
    CHECK(load(&d, "model: x\nstesp: 3\ncsa: {sa23: 1, qqqqqq: 2}\n") == 0, "load");
    CHECK(cfg_check_keys(&d, d.root, "", (const char *const[]){"model", "steps", "csa", NULL}) == 1,
          "one unknown key at the top");
    CHECK(HAS(err,
              "t.yaml:2:1: unknown key 'stesp' (did you mean 'steps'?); expected one of: model, "
              "steps, csa"),
          "got: %s", err);
    CHECK(cfg_check_keys(&d, cfg_get(d.root, "csa"), "csa",
                         (const char *const[]){"sa32", "sa64", NULL}) == 2,
          "two unknown keys in csa");
    CHECK(HAS(err,
              "t.yaml:3:7: unknown key 'sa23' in csa (did you mean 'sa32'?); expected one of: "
              "sa32, sa64"),
          "got: %s", err);
    CHECK(HAS(err, "t.yaml:3:16: unknown key 'qqqqqq' in csa; expected one of: sa32, sa64"),
          "got: %s", err);
    cfg_free(&d);
}

static void test_access(void) {
    CfgDoc d;
    const char *text =
        "i: 42\nneg: -3\nbig: 99999999999999999999\nf: 1.5\nw: abc\ne:\nm: {a: 1}\nl: [1]\n"
        "u: 18446744073709551615\nu2: 18446744073709551616\nnan: .nan\nhex: 0x10\ninf: 1e999\n"
        "b1: Yes\nb2: off\nq: \"20\"\np: fp166\n";
    CHECK(load(&d, text) == 0, "load: %s", err);
    const CfgNode *r = d.root;
    long long i = -1;
    CHECK(cfg_as_int(&d, cfg_get(r, "i"), "i", 1, 100, &i) == 0 && i == 42, "int 42");
    CHECK(cfg_as_int(&d, cfg_get(r, "q"), "q", 1, 100, &i) == 0 && i == 20,
          "a quoted integer reads too");
    CHECK(cfg_as_int(&d, cfg_get(r, "neg"), "neg", 0, 10, &i) == -1 &&
              HAS(err, "t.yaml:2:6: key 'neg': expected an integer 0..10, got '-3'"),
          "range: %s", err);
    CHECK(cfg_as_int(&d, cfg_get(r, "big"), "big", 0, 10, &i) == -1, "overflow");
    CHECK(cfg_as_int(&d, cfg_get(r, "f"), "f", 0, 10, &i) == -1 &&
              HAS(err, "key 'f': expected an integer 0..10, got '1.5'"),
          "float for int");
    CHECK(cfg_as_int(&d, cfg_get(r, "e"), "e", 0, 10, &i) == -1 &&
              HAS(err, "t.yaml:6:3: key 'e': expected an integer 0..10, got an empty value"),
          "empty: %s", err);
    CHECK(cfg_as_int(&d, cfg_get(r, "m"), "m", 0, 10, &i) == -1 &&
              HAS(err, "key 'm': expected an integer 0..10, got a mapping"),
          "map for int");
    CHECK(cfg_get_int(&d, r, "absent", "absent", 0, 1, &i) == 0, "absent: 0");
    CHECK(cfg_get_int(&d, r, "i", "i", 0, 100, &i) == 1, "present: 1");
    uint64_t u = 0;
    CHECK(cfg_as_u64(&d, cfg_get(r, "u"), "u", &u) == 0 && u == UINT64_MAX, "u64 max");
    CHECK(cfg_as_u64(&d, cfg_get(r, "u2"), "u2", &u) == -1 &&
              HAS(err,
                  "key 'u2': expected an integer 0..18446744073709551615, got "
                  "'18446744073709551616'"),
          "u64 overflow");
    CHECK(cfg_as_u64(&d, cfg_get(r, "neg"), "neg", &u) == -1, "u64 negative");
    double x = 0;
    CHECK(cfg_as_double(&d, cfg_get(r, "f"), "f", 0, 1, &x) == -1 &&
              HAS(err, "t.yaml:4:4: key 'f': expected a number in [0, 1], got '1.5'"),
          "double range");
    CHECK(cfg_as_double(&d, cfg_get(r, "i"), "i", 0, INFINITY, &x) == 0 && x == 42,
          "int as double");
    CHECK(cfg_as_double(&d, cfg_get(r, "neg"), "neg", 0, INFINITY, &x) == -1 &&
              HAS(err, "key 'neg': expected a finite number >= 0, got '-3'"),
          "double >= 0");
    CHECK(cfg_as_double(&d, cfg_get(r, "nan"), "nan", -INFINITY, INFINITY, &x) == -1 &&
              HAS(err, "key 'nan': expected a finite number, got '.nan'"),
          "nan refused");
    CHECK(cfg_as_double(&d, cfg_get(r, "hex"), "hex", -INFINITY, INFINITY, &x) == -1,
          "hex refused");
    CHECK(cfg_as_double(&d, cfg_get(r, "inf"), "inf", -INFINITY, INFINITY, &x) == -1,
          "1e999 refused");
    int b = -1;
    CHECK(cfg_as_bool(&d, cfg_get(r, "b1"), "b1", &b) == 0 && b == 1, "Yes");
    CHECK(cfg_as_bool(&d, cfg_get(r, "b2"), "b2", &b) == 0 && b == 0, "off");
    CHECK(cfg_as_bool(&d, cfg_get(r, "i"), "i", &b) == -1 &&
              HAS(err, "key 'i': expected true or false, got '42'"),
          "bool");
    const char *s = NULL;
    CHECK(cfg_as_string(&d, cfg_get(r, "w"), "w", &s) == 0 && !strcmp(s, "abc"), "string");
    CHECK(cfg_as_string(&d, cfg_get(r, "l"), "l", &s) == -1 &&
              HAS(err, "t.yaml:8:4: key 'l': expected a text value, got a list"),
          "string: %s", err);
    static const char *const prec[] = {"auto", "fp32", "fp16", "bf16", NULL};
    int k = -1;
    CHECK(cfg_as_enum(&d, cfg_get(r, "p"), "precision", prec, &k) == -1 &&
              HAS(err,
                  "t.yaml:17:4: key 'precision': expected one of auto, fp32, fp16, bf16, got "
                  "'fp166' (did you mean fp16?)"),
          "enum: %s", err);
    CHECK(cfg_as_enum(&d, cfg_get(r, "w"), "precision", prec, &k) == -1 &&
              HAS(err, "key 'precision': expected one of auto, fp32, fp16, bf16, got 'abc'\n"),
          "enum, no suggestion");
    CfgNode tmp = {0};
    tmp.kind = CFG_SCALAR, tmp.text = "FP16", tmp.len = 4;
    CHECK(cfg_as_enum(&d, &tmp, "precision", prec, &k) == 0 && k == 2, "enum case-insensitive");
    CHECK(cfg_as_map(&d, cfg_get(r, "m"), "m") == 1 && cfg_as_map(&d, cfg_get(r, "e"), "e") == 0 &&
              cfg_as_map(&d, NULL, "x") == 0,
          "map / null / absent");
    CHECK(cfg_as_seq(&d, cfg_get(r, "m"), "m") == -1 &&
              HAS(err,
                  "t.yaml:7:4: key 'm': expected a list (lines starting with '- '), got a mapping"),
          "seq: %s", err);
    CHECK(cfg_as_seq(&d, cfg_get(r, "l"), "l") == 1, "seq");
    cfg_free(&d);
}

static void test_errors(void) {
    // every problem one line; past errlen a last line says how many more
    CfgDoc d;
    char small[300];
    const char *text = "a: 1\n";
    CHECK(cfg_load_string(&d, "t.yaml", text, strlen(text), small, sizeof small) == 0, "load");
    for (int i = 0; i < 20; i++) cfg_error(&d, d.root, "problem number %d of twenty", i);
    CHECK(cfg_errors(&d) == 20, "20 counted, got %d", cfg_errors(&d));
    CHECK(strlen(small) < sizeof small, "within errlen");
    CHECK(HAS(small,
              "t.yaml:1:1: problem number 0 of twenty\nt.yaml:1:1: problem number 1 of twenty\n"),
          "lines in order: %s", small);
    int shown = 0;
    for (const char *p = small; (p = strstr(p, "problem number")); p++) shown++;
    char tail[64];
    snprintf(tail, sizeof tail, "(and %d more problems)\n", 20 - shown);
    CHECK(shown >= 3 && shown < 20 && HAS(small, tail), "%d shown, then '%s': %s", shown, tail,
          small);
    cfg_free(&d);
    // no buffer at all: still counted
    CHECK(cfg_load_string(&d, "t.yaml", "a: [", 4, NULL, 0) == -1 && cfg_errors(&d) == 1,
          "NULL err");
    cfg_free(&d);
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "";
    static const struct {
        const char *name;
        void (*fn)(void);
    } modes[] = {{"positions", test_positions}, {"duplicates", test_duplicates},
                 {"syntax", test_syntax},       {"aliases", test_aliases},
                 {"overrides", test_overrides}, {"suggest", test_suggest},
                 {"access", test_access},       {"errors", test_errors}};
    for (size_t i = 0; i < sizeof modes / sizeof *modes; i++)
        if (!strcmp(mode, modes[i].name)) {
            modes[i].fn();
            printf("cfg %s: %d checks, %d failure(s)\n", mode, checks, failures);
            return failures ? 1 : 0;
        }
    fprintf(
        stderr,
        "usage: test_cfg positions|duplicates|syntax|aliases|overrides|suggest|access|errors\n");
    return 2;
}

// runner/config.c: YAML -> CfgNode tree (libyaml's event parser), the problem list, and
// command-line overrides. The typed accessors are in runner/config_get.c.
#include "runner/config.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "runner/check.h"

#define CFG_MAX_DEPTH 256        // nesting levels (the tree code recurses per level)
#define CFG_MAX_NODES (1 << 20)  // nodes per document, aliases expanded (alias bombs)
#define CFG_TRAILER 80           // bytes of err kept for "(and N more problems)"

static char *cfg_strndup(const char *s, size_t n) {
    char *r = mallocCheck(n + 1);
    memcpy(r, s, n);
    r[n] = '\0';
    return r;
}

// ---- the problem list ----------------------------------------------------------------------

int cfg_errors(const CfgDoc *d) { return d->n_errors; }

int cfg_verror(CfgDoc *d, const char *where, const char *fmt, va_list ap) {
    d->n_errors++;
    if (!d->err || d->errlen == 0) return -1;
    char msg[1024];
    int k = snprintf(msg, sizeof msg, "%s: ", where);
    if (k < 0 || k >= (int)sizeof msg) k = 0;
    vsnprintf(msg + k, sizeof msg - (size_t)k, fmt, ap);
    size_t m = strlen(msg);
    size_t room = d->errlen > CFG_TRAILER ? d->errlen - CFG_TRAILER : 0;
    if (!d->dropped && d->used + m + 2 <= room) {
        memcpy(d->err + d->used, msg, m);
        d->used += m;
        d->err[d->used++] = '\n';
        d->err[d->used] = '\0';
        return -1;
    }
    if (!d->dropped && d->used == 0) {  // a buffer too small for even one: cut it
        snprintf(d->err, d->errlen, "%s", msg);
        d->used = strlen(d->err);
        d->dropped = -1;  // (-1: cut, not counted)
        return -1;
    }
    if (d->dropped < 0) return -1;
    d->dropped++;
    snprintf(d->err + d->used, d->errlen - d->used, "(and %d more problem%s)\n", d->dropped,
             d->dropped == 1 ? "" : "s");
    return -1;
}

const char *cfg_where(const CfgDoc *d, const CfgNode *at, char *buf, size_t n) {
    if (at && at->set)
        snprintf(buf, n, "%s", at->set);
    else if (at && at->line > 0)
        snprintf(buf, n, "%s:%d:%d", d->file ? d->file : "?", at->line, at->col);
    else
        snprintf(buf, n, "%s", d->file ? d->file : "?");
    return buf;
}

int cfg_error(CfgDoc *d, const CfgNode *at, const char *fmt, ...) {
    char where[512];
    va_list ap;
    va_start(ap, fmt);
    cfg_verror(d, cfg_where(d, at, where, sizeof where), fmt, ap);
    va_end(ap);
    return -1;
}

static size_t utf8_chars(const char *s, size_t n) {
    size_t c = 0;
    for (size_t i = 0; i < n; i++) c += ((unsigned char)s[i] & 0xC0) != 0x80;
    return c;
}

void cfg_text_pos(const CfgNode *s, size_t offset, int *line, int *col) {
    *line = s->line, *col = s->col;
    if (s->kind != CFG_SCALAR || s->line <= 0 || s->end_line != s->line) return;
    int q = s->quoted ? 1 : 0;
    // exact only when the source is the text itself (no escapes, no folding)
    if ((size_t)(s->end_col - s->col - 2 * q) != utf8_chars(s->text, s->len)) return;
    if (offset > s->len) offset = s->len;
    *col = s->col + q + (int)utf8_chars(s->text, offset);
}

int cfg_error_in(CfgDoc *d, const CfgNode *s, size_t offset, const char *fmt, ...) {
    char where[512];
    if (s && !s->set && s->line > 0) {
        int l, c;
        cfg_text_pos(s, offset, &l, &c);
        snprintf(where, sizeof where, "%s:%d:%d", d->file, l, c);
    } else {
        cfg_where(d, s, where, sizeof where);
    }
    va_list ap;
    va_start(ap, fmt);
    cfg_verror(d, where, fmt, ap);
    va_end(ap);
    return -1;
}

const char *cfg_kind_name(const CfgNode *n) {
    if (!n) return "nothing";
    if (n->kind == CFG_MAP) return "a mapping";
    if (n->kind == CFG_SEQ) return "a list";
    return cfg_is_null(n) ? "an empty value" : "a text value";
}

// ---- nodes -----------------------------------------------------------------------------

static CfgNode *node_new(CfgDoc *d, CfgKind kind) {
    CfgNode *n = mallocCheck(sizeof *n);
    memset(n, 0, sizeof *n);
    n->kind = kind;
    d->n_nodes++;
    return n;
}

static void node_free(CfgNode *n) {
    if (!n) return;
    for (int i = 0; i < n->n; i++) {
        if (n->keys) node_free(n->keys[i]);
        node_free(n->items[i]);
    }
    free(n->keys);
    free(n->items);
    free(n->text);
    free(n);
}

// Appends (key, value) to a mapping (key != NULL) or value to a list.
static void node_append(CfgNode *p, CfgNode *key, CfgNode *value) {
    if (p->n == p->cap) {
        p->cap = p->cap ? 2 * p->cap : 4;
        CfgNode **items = realloc(p->items, (size_t)p->cap * sizeof *items);
        STORY_CHECK(items, "out of memory");
        p->items = items;
        if (p->kind == CFG_MAP) {
            CfgNode **keys = realloc(p->keys, (size_t)p->cap * sizeof *keys);
            STORY_CHECK(keys, "out of memory");
            p->keys = keys;
        }
    }
    if (p->kind == CFG_MAP) p->keys[p->n] = key;
    p->items[p->n++] = value;
}

// A deep copy (an alias of an anchored node); NULL past CFG_MAX_NODES.
static CfgNode *node_copy(CfgDoc *d, const CfgNode *s) {
    if (d->n_nodes >= CFG_MAX_NODES) return NULL;
    CfgNode *n = node_new(d, s->kind);
    *n = *s;
    n->keys = NULL, n->items = NULL, n->n = 0, n->cap = 0;
    n->text = s->text ? cfg_strndup(s->text, s->len) : NULL;
    for (int i = 0; i < s->n; i++) {
        CfgNode *k = s->kind == CFG_MAP ? node_copy(d, s->keys[i]) : NULL;
        CfgNode *v = node_copy(d, s->items[i]);
        if (!v || (s->kind == CFG_MAP && !k)) {
            node_free(k), node_free(v), node_free(n);
            return NULL;
        }
        node_append(n, k, v);
    }
    return n;
}

static void node_mark_set(CfgNode *n, const char *set) {
    n->set = set;
    n->line = n->col = n->end_line = n->end_col = 0;
    for (int i = 0; i < n->n; i++) {
        if (n->kind == CFG_MAP) node_mark_set(n->keys[i], set);
        node_mark_set(n->items[i], set);
    }
}

// ---- parsing -----------------------------------------------------------------------------

typedef struct {
    CfgNode *node;
    CfgNode *key;  // a mapping's key waiting for its value
    int skip;      // the next value belongs to a refused key: drop it
} Level;

typedef struct {
    char *name;
    CfgNode *node;
    int open;  // still being built (an alias to it would be recursive)
} Anchor;

typedef struct {
    CfgDoc *d;
    const char *label;  // override label (nodes get set = label), or NULL: a file
    Level stack[CFG_MAX_DEPTH];
    int depth;
    Anchor *anchors;
    int n_anchors, cap_anchors;
    CfgNode *root;
    size_t root_start, root_end;  // where the top node starts and ends (characters)
    int root_plain;               // the top node is a block collection or a plain scalar
    int bad, stop;                // a problem was found / parsing cannot go on
    int quiet;                    // record nothing (trying whether a value is YAML)
} Builder;

// m == NULL: the file as a whole
static int b_error(Builder *b, const yaml_mark_t *m, const char *fmt, ...) {
    b->bad = 1;
    if (b->quiet) return -1;
    char where[512];
    if (b->label)
        snprintf(where, sizeof where, "%s", b->label);
    else if (!m)
        snprintf(where, sizeof where, "%s", b->d->file);
    else
        snprintf(where, sizeof where, "%s:%zu:%zu", b->d->file, m->line + 1, m->column + 1);
    va_list ap;
    va_start(ap, fmt);
    cfg_verror(b->d, where, fmt, ap);
    va_end(ap);
    return -1;
}

static void b_anchor(Builder *b, const yaml_char_t *name, CfgNode *n) {
    if (!name) return;
    if (b->n_anchors == b->cap_anchors) {
        b->cap_anchors = b->cap_anchors ? 2 * b->cap_anchors : 8;
        Anchor *a = realloc(b->anchors, (size_t)b->cap_anchors * sizeof *a);
        STORY_CHECK(a, "out of memory");
        b->anchors = a;
    }
    Anchor *a = &b->anchors[b->n_anchors++];
    a->name = cfg_strndup((const char *)name, strlen((const char *)name));
    a->node = n;
    a->open = n->kind != CFG_SCALAR;
}

static void b_close_anchor(Builder *b, const CfgNode *n) {
    for (int i = 0; i < b->n_anchors; i++)
        if (b->anchors[i].node == n) b->anchors[i].open = 0;
}

static void set_pos(Builder *b, CfgNode *n, const yaml_mark_t *start, const yaml_mark_t *end) {
    if (b->label) {
        n->set = b->label;
        return;
    }
    if (start) n->line = (int)start->line + 1, n->col = (int)start->column + 1;
    if (end) n->end_line = (int)end->line + 1, n->end_col = (int)end->column + 1;
}

// A finished node goes into its parent (or becomes the root).
static void b_attach(Builder *b, CfgNode *n, const yaml_mark_t *end) {
    if (b->depth == 0) {
        b->root = n;
        b->root_end = end->index;
        return;
    }
    Level *p = &b->stack[b->depth - 1];
    if (p->node->kind == CFG_SEQ) {
        node_append(p->node, NULL, n);
        return;
    }
    if (p->skip) {  // the value of a refused key
        p->skip = 0;
        node_free(n);
        return;
    }
    if (p->key) {
        node_append(p->node, p->key, n);
        p->key = NULL;
        return;
    }
    yaml_mark_t m = {0, n->line > 0 ? (size_t)n->line - 1 : 0, n->col > 0 ? (size_t)n->col - 1 : 0};
    if (n->kind != CFG_SCALAR) {
        b_error(b, &m,
                "a mapping key must be text, got %s (a line starting with '[' must be quoted: "
                "- \"[Bob]: a man in a suit\")",
                cfg_kind_name(n));
        node_free(n);
        p->skip = 1;
        return;
    }
    const CfgNode *first = cfg_get_key(p->node, n->text);
    if (first) {
        b_error(b, &m, "duplicate key '%s' (first at line %d, column %d); a key may appear once",
                n->text, first->line, first->col);
        node_free(n);
        p->skip = 1;
        return;
    }
    p->key = n;
}

static void b_free(Builder *b) {
    for (int i = 0; i < b->depth; i++) {
        node_free(b->stack[i].key);
        node_free(b->stack[i].node);
    }
    b->depth = 0;
    for (int i = 0; i < b->n_anchors; i++) free(b->anchors[i].name);
    free(b->anchors);
    b->anchors = NULL;
}

// Parses text into a tree. Returns the root (NULL for an empty document or on error; bad
// tells which). Syntax errors end parsing; a refused key or alias does not, so that every
// one of them is reported. Quiet (b_in->quiet): nothing is recorded, and b_in tells where
// the top node started and ended.
static CfgNode *parse_text(CfgDoc *d, const char *text, size_t len, const char *label, int *bad,
                           Builder *b_in) {
    Builder b;
    memset(&b, 0, sizeof b);
    b.d = d, b.label = label, b.quiet = b_in ? b_in->quiet : 0;
    yaml_parser_t p;
    STORY_CHECK(yaml_parser_initialize(&p), "libyaml: out of memory");
    yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
    int docs = 0, done = 0;
    while (!done && !b.stop) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&p, &ev)) {
            char ctx[256] = "";
            if (p.context)
                snprintf(ctx, sizeof ctx, " (%s at line %zu, column %zu)", p.context,
                         p.context_mark.line + 1, p.context_mark.column + 1);
            b.stop = 1;
            if (p.error == YAML_READER_ERROR) {
                b_error(&b, NULL, "not readable as YAML text: %s at byte %zu", p.problem,
                        p.problem_offset);
            } else {
                b_error(&b, &p.problem_mark, "YAML syntax error: %s%s",
                        p.problem ? p.problem : "unknown problem", ctx);
            }
            break;
        }
        CfgNode *n = NULL;
        switch (ev.type) {
        case YAML_STREAM_END_EVENT: done = 1; break;
        case YAML_DOCUMENT_START_EVENT:
            if (++docs > 1)
                b_error(&b, &ev.start_mark,
                        "a second YAML document ('---'); a config is one document"),
                    b.stop = 1;
            break;
        case YAML_SCALAR_EVENT:
            n = node_new(d, CFG_SCALAR);
            n->text = cfg_strndup((const char *)ev.data.scalar.value, ev.data.scalar.length);
            n->len = ev.data.scalar.length;
            n->quoted = ev.data.scalar.style != YAML_PLAIN_SCALAR_STYLE;
            set_pos(&b, n, &ev.start_mark, &ev.end_mark);
            if (b.depth == 0) b.root_start = ev.start_mark.index, b.root_plain = !n->quoted;
            if (strlen(n->text) != n->len)  // kept (cut at the NUL) so the structure holds
                b_error(&b, &ev.start_mark, "a NUL character in a text value"),
                    n->len = strlen(n->text);
            b_anchor(&b, ev.data.scalar.anchor, n);
            b_attach(&b, n, &ev.end_mark);
            break;
        case YAML_SEQUENCE_START_EVENT:
        case YAML_MAPPING_START_EVENT:
            if (b.depth == CFG_MAX_DEPTH) {
                b_error(&b, &ev.start_mark, "nested more than %d levels deep", CFG_MAX_DEPTH);
                b.stop = 1;
                break;
            }
            if (b.depth == 0)
                b.root_start = ev.start_mark.index,
                b.root_plain = ev.type == YAML_SEQUENCE_START_EVENT
                                   ? ev.data.sequence_start.style != YAML_FLOW_SEQUENCE_STYLE
                                   : ev.data.mapping_start.style != YAML_FLOW_MAPPING_STYLE;
            n = node_new(d, ev.type == YAML_SEQUENCE_START_EVENT ? CFG_SEQ : CFG_MAP);
            set_pos(&b, n, &ev.start_mark, NULL);
            b_anchor(&b,
                     ev.type == YAML_SEQUENCE_START_EVENT ? ev.data.sequence_start.anchor
                                                          : ev.data.mapping_start.anchor,
                     n);
            b.stack[b.depth++] = (Level){n, NULL, 0};
            break;
        case YAML_SEQUENCE_END_EVENT:
        case YAML_MAPPING_END_EVENT:
            n = b.stack[--b.depth].node;
            node_free(b.stack[b.depth].key);  // a key whose value was refused (a bad alias)
            if (!b.label)
                n->end_line = (int)ev.end_mark.line + 1, n->end_col = (int)ev.end_mark.column + 1;
            b_close_anchor(&b, n);
            b_attach(&b, n, &ev.end_mark);
            break;
        case YAML_ALIAS_EVENT: {
            const char *name = (const char *)ev.data.alias.anchor;
            const Anchor *a = NULL;
            for (int i = b.n_anchors - 1; i >= 0 && !a; i--)
                if (!strcmp(b.anchors[i].name, name)) a = &b.anchors[i];
            if (!a) {
                b_error(&b, &ev.start_mark, "alias *%s names no anchor (&%s) above it", name, name);
            } else if (a->open) {
                b_error(&b, &ev.start_mark, "alias *%s refers to a node that contains it", name);
            } else if (!(n = node_copy(d, a->node))) {
                b_error(&b, &ev.start_mark,
                        "aliases expand to more than %d nodes; expected a config, not a "
                        "billion laughs",
                        CFG_MAX_NODES);
                b.stop = 1;
            }
            if (!n) {  // an empty value in its place, so that the mapping stays in step
                n = node_new(d, CFG_SCALAR);
                n->text = cfg_strndup("", 0);
                set_pos(&b, n, &ev.start_mark, &ev.end_mark);
            }
            if (b.depth == 0) b.root_start = ev.start_mark.index, b.root_plain = 1;
            b_attach(&b, n, &ev.end_mark);
            break;
        }
        default: break;
        }
        yaml_event_delete(&ev);
    }
    yaml_parser_delete(&p);
    b_free(&b);
    *bad = b.bad;
    if (b_in) {
        b_in->root_start = b.root_start, b_in->root_end = b.root_end;
        b_in->root_plain = b.root_plain;
    }
    if (b.bad) {
        node_free(b.root);
        return NULL;
    }
    return b.root;
}

static void doc_init(CfgDoc *d, const char *name, char *err, size_t errlen) {
    memset(d, 0, sizeof *d);
    d->file = cfg_strndup(name, strlen(name));
    d->err = err, d->errlen = errlen;
    if (err && errlen) err[0] = '\0';
}

int cfg_load_string(CfgDoc *d, const char *name, const char *text, size_t len, char *err,
                    size_t errlen) {
    doc_init(d, name, err, errlen);
    int bad;
    d->root = parse_text(d, text, len, NULL, &bad, NULL);
    return bad ? -1 : 0;
}

int cfg_load_file(CfgDoc *d, const char *path, char *err, size_t errlen) {
    doc_init(d, path, err, errlen);
    FILE *f = fopen(path, "rb");
    if (!f) return cfg_error(d, NULL, "cannot open: %s", strerror(errno));
    size_t cap = 1 << 16, n = 0;
    char *text = mallocCheck(cap);
    for (;;) {
        if (n == cap) {
            if (cap >= ((size_t)64 << 20)) {
                fclose(f), free(text);
                return cfg_error(d, NULL, "larger than 64 MiB; expected a config file");
            }
            char *t = realloc(text, cap *= 2);
            STORY_CHECK(t, "out of memory");
            text = t;
        }
        size_t k = fread(text + n, 1, cap - n, f);
        n += k;
        if (k == 0) break;
    }
    int rerr = ferror(f);
    fclose(f);
    if (rerr) {
        free(text);
        return cfg_error(d, NULL, "cannot read: %s", strerror(errno));
    }
    int bad;
    d->root = parse_text(d, text, n, NULL, &bad, NULL);
    free(text);
    return bad ? -1 : 0;
}

void cfg_free(CfgDoc *d) {
    node_free(d->root);
    for (int i = 0; i < d->n_sets; i++) free(d->sets[i]);
    free(d->sets);
    free(d->file);
    memset(d, 0, sizeof *d);
}

// ---- overrides ---------------------------------------------------------------------------

static int is_index(const char *s, size_t n) {
    if (n == 0 || n > 9) return 0;
    for (size_t i = 0; i < n; i++)
        if (!isdigit((unsigned char)s[i])) return 0;
    return 1;
}

int cfg_override(CfgDoc *d, const char *assignment, const char *label) {
    // the label lives as long as the document: nodes point to it
    size_t ll = strlen(assignment) + 8;
    char *lab = mallocCheck(label ? strlen(label) + 1 : ll);
    if (label)
        strcpy(lab, label);
    else
        snprintf(lab, ll, "--set %s", assignment);
    char **sets = realloc(d->sets, (size_t)(d->n_sets + 1) * sizeof *sets);
    STORY_CHECK(sets, "out of memory");
    d->sets = sets;
    d->sets[d->n_sets++] = lab;
    CfgNode at = {0};
    at.set = lab;

    const char *eq = strchr(assignment, '=');
    if (!eq || eq == assignment)
        return cfg_error(d, &at, "expected key=value (a dotted key: steps=20, csa.sa32=0.3)");
    const char *path = assignment, *pend = eq;
    while (pend > path && isspace((unsigned char)pend[-1])) pend--;
    while (path < pend && isspace((unsigned char)*path)) path++;
    const char *v = eq + 1;
    while (*v && isspace((unsigned char)*v)) v++;
    size_t vl = strlen(v);
    while (vl && isspace((unsigned char)v[vl - 1])) vl--;

    // the new value: a YAML flow node or quoted text when the whole value reads as one
    // ("[up, mid]", "{sa32: 0.3}", "'a # b'"), else the text as written ("[Bob] waves")
    CfgNode *value = NULL;
    if (vl && strchr("[{\"'", v[0])) {
        int bad;
        Builder info = {0};
        info.quiet = 1;
        value = parse_text(d, v, vl, lab, &bad, &info);
        size_t chars = 0;
        for (size_t i = 0; i < vl; i++) chars += ((unsigned char)v[i] & 0xC0) != 0x80;
        if (value && (bad || info.root_plain || info.root_start != 0 || info.root_end != chars))
            node_free(value), value = NULL;
    }
    if (value) {
        node_mark_set(value, lab);
    } else {
        value = node_new(d, CFG_SCALAR);
        value->text = cfg_strndup(v, vl);
        value->len = vl;
        value->set = lab;
    }

    if (!d->root || cfg_is_null(d->root)) {
        node_free(d->root);
        d->root = node_new(d, CFG_MAP);
        node_mark_set(d->root, lab);
    }
    CfgNode *cur = d->root;
    char seen[512] = "";
    for (const char *s = path;;) {
        const char *dot = memchr(s, '.', (size_t)(pend - s));
        const char *e = dot ? dot : pend;
        size_t sl = (size_t)(e - s);
        if (sl == 0) {
            node_free(value);
            return cfg_error(d, &at, "empty part in the key '%.*s'", (int)(pend - path), path);
        }
        CfgNode **slot = NULL;
        if (cur->kind == CFG_MAP) {
            for (int i = 0; i < cur->n && !slot; i++)
                if (strlen(cur->keys[i]->text) == sl && !memcmp(cur->keys[i]->text, s, sl))
                    slot = &cur->items[i];
            if (!slot) {
                CfgNode *k = node_new(d, CFG_SCALAR);
                k->text = cfg_strndup(s, sl), k->len = sl, k->set = lab;
                CfgNode *nv = dot ? node_new(d, CFG_MAP) : NULL;
                if (nv) nv->set = lab;
                node_append(cur, k, nv);
                slot = &cur->items[cur->n - 1];
            }
        } else if (cur->kind == CFG_SEQ) {
            if (!is_index(s, sl) || atoi(s) >= cur->n) {
                node_free(value);
                return cfg_error(d, &at,
                                 "'%s' is a list of %d: expected an index 0..%d, got '%.*s'",
                                 seen[0] ? seen : "the config", cur->n, cur->n - 1, (int)sl, s);
            }
            slot = &cur->items[atoi(s)];
        } else {
            node_free(value);
            char w[512];
            return cfg_error(d, &at, "'%s' is %s (%s), not a mapping: cannot set '%.*s' in it",
                             seen, cfg_kind_name(cur), cfg_where(d, cur, w, sizeof w), (int)sl, s);
        }
        snprintf(seen + strlen(seen), sizeof seen - strlen(seen), "%s%.*s", seen[0] ? "." : "",
                 (int)sl, s);
        if (!dot) {
            node_free(*slot);
            *slot = value;
            return 0;
        }
        if (cfg_is_null(*slot)) {  // "csa:" left empty, or a key just made
            node_free(*slot);
            *slot = node_new(d, CFG_MAP);
            (*slot)->set = lab;
        }
        cur = *slot;
        s = dot + 1;
    }
}

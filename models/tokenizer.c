// models/tokenizer.c: loading a CLIP tokenizer folder (vocab.json, merges.txt and the
// transformers config files) into hash tables. Encoding is in tokenizer_encode.c; JSON
// is read with runner/json.c.
//
// Every problem in a file is returned as "FILE: line L, column C (byte B): what" or
// "FILE: line L: what" (merges.txt); nothing here exits. Out of memory aborts, as
// everywhere in storyrun.
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "models/tokenizer_impl.h"
#include "runner/check.h"
#include "runner/json.h"

void *tok_xrealloc(void *p, size_t n) {
    void *q = realloc(p, n ? n : 1);
    if (!q) STORY_FATAL("out of memory reallocating %zu bytes", n);
    return q;
}

int tok_errf(char *err, size_t errlen, const char *fmt, ...) {
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

// The tokenizer's JSON files: shallow (64 levels are plenty), and a lone surrogate escape
// is read as U+FFFD, not refused (Python's json, which transformers uses, accepts it).
static JsonDoc *parse_json(const char *file, const char *src, size_t len, char *err,
                           size_t errlen) {
    static const JsonOptions opt = {.max_depth = 64, .lone_surrogates = true};
    JsonError je;
    JsonDoc *doc = json_parse(file, src, len, &opt, &je);
    if (!doc) tok_errf(err, errlen, "%s", je.msg);
    return doc;
}

static char *str_dup(const char *s) {
    size_t n = strlen(s) + 1;
    return memcpy(mallocCheck(n), s, n);
}

// ---- hash tables ---------------------------------------------------------------------

static uint64_t hash_bytes(const char *s, size_t n) {
    uint64_t h = 1469598103934665603ull;  // FNV-1a
    for (size_t i = 0; i < n; i++) h = (h ^ (uint8_t)s[i]) * 1099511628211ull;
    return h ^ (h >> 29);
}

static TokMapSlot *map_slot(const TokMap *m, const char *key, size_t len) {
    uint32_t i = (uint32_t)hash_bytes(key, len) & (m->cap - 1);
    for (;;) {
        TokMapSlot *s = &m->slots[i];
        if (s->val < 0 || (s->len == len && memcmp(m->pool + s->off, key, len) == 0)) return s;
        i = (i + 1) & (m->cap - 1);
    }
}

int tok_map_get(const TokMap *m, const char *key, size_t len) {
    return m->cap ? map_slot(m, key, len)->val : -1;
}

static void map_grow(TokMap *m) {
    TokMap old = *m;
    m->cap = old.cap ? old.cap * 2 : 64;
    m->slots = mallocCheck(m->cap * sizeof(TokMapSlot));
    for (uint32_t i = 0; i < m->cap; i++) m->slots[i].val = -1;
    for (uint32_t i = 0; i < old.cap; i++) {
        if (old.slots[i].val < 0) continue;
        *map_slot(m, m->pool + old.slots[i].off, old.slots[i].len) = old.slots[i];
    }
    free(old.slots);
}

uint32_t tok_map_put(TokMap *m, const char *key, size_t len, int32_t val) {
    if ((m->n + 1) * 2 > m->cap) map_grow(m);
    TokMapSlot *s = map_slot(m, key, len);
    if (s->val >= 0) {
        s->val = val;
        return s->off;
    }
    if (m->pool_len + len + 1 > m->pool_cap) {
        m->pool_cap = (m->pool_len + len + 1) * 2;
        m->pool = tok_xrealloc(m->pool, m->pool_cap);
    }
    s->off = (uint32_t)m->pool_len;
    s->len = (uint32_t)len;
    s->val = val;
    memcpy(m->pool + m->pool_len, key, len);
    m->pool[m->pool_len + len] = 0;
    m->pool_len += len + 1;
    m->n++;
    return s->off;
}

void tok_map_free(TokMap *m) {
    free(m->slots);
    free(m->pool);
    memset(m, 0, sizeof(*m));
}

// ---- vocab, merges, byte tables ------------------------------------------------------

// GPT-2's reversible byte -> printable character map (CLIP's bytes_to_unicode):
// printable Latin-1 bytes stand for themselves, the other 68 map to U+0100.. in order.
static bool byte_printable(int b) {
    return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
}

static int byte_to_cp(int b) {
    if (byte_printable(b)) return b;
    int n = 0;
    for (int x = 0; x < b; x++) n += !byte_printable(x);
    return 256 + n;
}

static int cp_to_byte(int cp) {
    if (cp < 256) return byte_printable(cp) ? cp : -1;
    for (int b = 0, n = 256; b < 256; b++)
        if (!byte_printable(b) && n++ == cp) return b;
    return -1;
}

static int load_vocab(TokImpl *im, const char *file, const char *src, size_t len, char *err,
                      size_t errlen) {
    JsonDoc *doc = parse_json(file, src, len, err, errlen);
    if (!doc) return -1;
    const JsonValue *root = json_root(doc);
    int rc = 0;
    if (root->type != JSON_OBJECT)
        rc = json_errat(doc, root->pos, err, errlen, "expected an object {\"piece\": id, ...}");
    for (size_t i = 0; i < json_count(root) && !rc; i++) {
        const JsonMember *m = &root->members[i];
        const JsonValue *v = &m->value;
        if (v->type != JSON_NUMBER || !v->is_int || v->i < 0 || v->i >= (1 << 24)) {
            rc = json_errat(doc, v->pos, err, errlen, "expected an integer id in [0, 16777216)");
            break;
        }
        tok_map_put(&im->vocab, m->key, m->key_len, (int32_t)v->i);
        if ((int)v->i >= im->vocab_ids) im->vocab_ids = (int)v->i + 1;
    }
    if (!rc && im->vocab.n == 0) rc = json_errat(doc, root->pos, err, errlen, "the vocab is empty");
    json_free(doc);
    if (rc) return rc;
    im->piece_off = mallocCheck((size_t)im->vocab_ids * sizeof(int32_t));
    for (int i = 0; i < im->vocab_ids; i++) im->piece_off[i] = -1;
    for (uint32_t s = 0; s < im->vocab.cap; s++)  // a duplicate id keeps one of its pieces
        if (im->vocab.slots[s].val >= 0)
            im->piece_off[im->vocab.slots[s].val] = (int32_t)im->vocab.slots[s].off;
    for (int b = 0; b < 256; b++) {
        char piece[8];
        char *e = json_put_utf8(piece, (uint32_t)byte_to_cp(b));
        im->byte_id[b] = tok_map_get(&im->vocab, piece, (size_t)(e - piece));
        memcpy(e, "</w>", 4);
        im->byte_eow_id[b] = tok_map_get(&im->vocab, piece, (size_t)(e - piece) + 4);
    }
    return 0;
}

// merges.txt as `tokenizers` reads it: lines starting with "#version" are skipped, every
// other line is "LEFT RIGHT" (one space), its rank is its index among those lines. LEFT,
// RIGHT and LEFTRIGHT must be vocab pieces.
static int load_merges(TokImpl *im, const char *file, const char *src, size_t len, char *err,
                       size_t errlen) {
    size_t n_lines = 1;
    for (size_t i = 0; i < len; i++) n_lines += src[i] == '\n';
    im->merges_cap = 64;
    while (im->merges_cap < 2 * n_lines) im->merges_cap *= 2;
    im->merges = mallocCheck(im->merges_cap * sizeof(TokPairSlot));
    for (uint32_t i = 0; i < im->merges_cap; i++) im->merges[i].rank = -1;
    char *joined = NULL;
    size_t joined_cap = 0;
    int rank = 0, line = 0, rc = 0;
    for (size_t pos = 0; pos < len && !rc;) {
        const char *l = src + pos;
        const char *nl = memchr(l, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - l) : len - pos;
        pos += n + (nl != NULL);
        line++;
        if (n && l[n - 1] == '\r') n--;
        if (n >= 8 && memcmp(l, "#version", 8) == 0) continue;
        const char *sp = memchr(l, ' ', n);
        if (!sp || sp == l || sp == l + n - 1 || memchr(sp + 1, ' ', (size_t)(l + n - sp - 1))) {
            rc = tok_errf(err, errlen, "%s: line %d: expected two tokens separated by one space",
                          file, line);
            break;
        }
        size_t na = (size_t)(sp - l), nb = n - na - 1;
        int a = tok_map_get(&im->vocab, l, na), b = tok_map_get(&im->vocab, sp + 1, nb);
        if (na + nb > joined_cap) joined = tok_xrealloc(joined, joined_cap = 2 * (na + nb));
        memcpy(joined, l, na);
        memcpy(joined + na, sp + 1, nb);
        int ab = tok_map_get(&im->vocab, joined, na + nb);
        if (a < 0 || b < 0 || ab < 0) {
            const char *what = a < 0 ? l : b < 0 ? sp + 1 : joined;
            int wn = (int)(a < 0 ? na : b < 0 ? nb : na + nb);
            rc = tok_errf(err, errlen, "%s: line %d: \"%.*s\" is not in the vocab", file, line, wn,
                          what);
            break;
        }
        // a repeated pair keeps its last rank, as in `tokenizers`
        TokPairSlot *s = tok_pair_slot(im->merges, im->merges_cap, tok_pair_key(a, b));
        s->key = tok_pair_key(a, b);
        s->rank = rank++;
        s->id = ab;
    }
    free(joined);
    return rc;
}

// ---- special and added tokens (tokenizer_config.json, special_tokens_map.json) -------

typedef struct Spec {
    const char *content;
    bool normalized, lstrip, rstrip, single_word, special;
} Spec;

// An added-token description: a plain string (no flags set) or an object.
static int read_spec(const JsonDoc *doc, const JsonValue *v, bool normalized_default, Spec *out,
                     char *err, size_t errlen) {
    memset(out, 0, sizeof(*out));
    out->special = true;
    if (v->type == JSON_STRING) {
        out->content = v->str;
        return 0;
    }
    const JsonValue *c = json_get(v, "content");
    if (v->type != JSON_OBJECT || !c || c->type != JSON_STRING)
        return json_errat(doc, v->pos, err, errlen,
                          "expected a token: a string or {\"content\": ...}");
    out->content = c->str;
    out->normalized = normalized_default;
    static const char *flags[] = {"normalized", "lstrip", "rstrip", "single_word", "special"};
    bool *dst[] = {&out->normalized, &out->lstrip, &out->rstrip, &out->single_word, &out->special};
    for (int i = 0; i < 5; i++) {
        const JsonValue *f = json_get(v, flags[i]);
        if (f && f->type == JSON_BOOL) *dst[i] = f->boolean;
    }
    if (out->single_word)
        return json_errat(doc, v->pos, err, errlen, "single_word added tokens are not supported");
    return 0;
}

int tok_token_id(const Tokenizer *tok, const char *piece) {
    const TokImpl *im = tok->impl;
    if (!im) return -1;
    for (int i = im->n_added - 1; i >= 0; i--)
        if (strcmp(im->added[i].content, piece) == 0) return im->added[i].id;
    return tok_map_get(&im->vocab, piece, strlen(piece));
}

// Adds (or updates: the last description of a content wins, as in `tokenizers`) an
// added token. Its id is the vocab's if the piece is there, else want_id, else a new one.
static void add_token(Tokenizer *tok, const Spec *s, int want_id) {
    TokImpl *im = tok->impl;
    if (!s->content[0]) return;
    TokAdded *a = NULL;
    for (int i = 0; i < im->n_added; i++)
        if (strcmp(im->added[i].content, s->content) == 0) a = &im->added[i];
    if (!a) {
        int id = tok_map_get(&im->vocab, s->content, strlen(s->content));
        if (id < 0) id = want_id >= 0 ? want_id : tok->n_ids;
        im->added = tok_xrealloc(im->added, (size_t)(im->n_added + 1) * sizeof(TokAdded));
        a = &im->added[im->n_added++];
        memset(a, 0, sizeof(*a));
        a->content = str_dup(s->content);
        a->id = id;
        if (id >= tok->n_ids) tok->n_ids = id + 1;
    }
    a->normalized = s->normalized;
    a->lstrip = s->lstrip;
    a->rstrip = s->rstrip;
    a->special = s->special;
}

// The rules of transformers 5 (PreTrainedTokenizerBase.from_pretrained + _post_init):
// - tokenizer_config.json "added_tokens_decoder" {id: {content, flags}} is added first;
// - then bos/eos/unk/sep/pad/cls/mask in that order: a string naming a decoder entry takes
//   its flags, another string is special with normalized=false; an object gives its flags
//   (normalized defaults to true in tokenizer_config.json, false in special_tokens_map.json);
// - special_tokens_map.json overrides tokenizer_config.json, but is read only when there
//   is no added_tokens_decoder; added_tokens.json too (normalized = not special);
// - without any of them CLIPTokenizer's defaults: <|startoftext|>, and <|endoftext|> for
//   eos, unk and pad.
typedef struct TokText {
    const char *name, *src;
    size_t len;
} TokText;

static int load_specials(Tokenizer *tok, const TokText *cfg, const TokText *map,
                         const TokText *added, char *err, size_t errlen) {
    static const char *keys[] = {"bos_token", "eos_token", "unk_token", "sep_token",
                                 "pad_token", "cls_token", "mask_token"};
    static const char *defaults[] = {
        "<|startoftext|>", "<|endoftext|>", "<|endoftext|>", NULL, "<|endoftext|>", NULL, NULL};
    JsonDoc *docs[3] = {NULL, NULL, NULL};
    const JsonValue *root[3] = {NULL, NULL, NULL};  // NULL: the file is absent
    const TokText *texts[3] = {cfg, map, added};
    const char *named[7] = {NULL};
    int rc = 0;
    for (int f = 0; f < 3 && !rc; f++) {
        if (!texts[f]->src) continue;
        docs[f] = parse_json(texts[f]->name, texts[f]->src, texts[f]->len, err, errlen);
        if (!docs[f]) {
            rc = -1;
            break;
        }
        root[f] = json_root(docs[f]);
        if (root[f]->type != JSON_OBJECT)
            rc = json_errat(docs[f], root[f]->pos, err, errlen, "expected an object");
    }
    const JsonValue *decoder = rc ? NULL : json_get(root[0], "added_tokens_decoder");
    if (decoder && decoder->type != JSON_OBJECT)
        rc = json_errat(docs[0], decoder->pos, err, errlen,
                        "added_tokens_decoder: expected an object");
    // decoder entries by increasing id
    for (long done = -1; decoder && !rc;) {
        const JsonMember *best = NULL;
        long best_id = 0;
        for (size_t i = 0; i < decoder->len && !rc; i++) {
            const JsonMember *m = &decoder->members[i];
            char *end;
            long id = strtol(m->key, &end, 10);
            if (*end || end == m->key || id < 0 || id >= (1 << 24))
                rc = json_errat(docs[0], m->value.pos, err, errlen,
                                "added_tokens_decoder: the key of this entry is not an id");
            else if (id > done && (!best || id < best_id)) {
                best = m;
                best_id = id;
            }
        }
        if (!best || rc) break;
        Spec s;
        rc = read_spec(docs[0], &best->value, true, &s, err, errlen);
        if (!rc) add_token(tok, &s, (int)best_id);
        done = best_id;
    }
    Spec spec[7];
    for (int k = 0; k < 7 && !rc; k++) {
        const JsonValue *v = decoder ? NULL : json_get(root[1], keys[k]);
        const JsonDoc *from = docs[1];
        if (!v || v->type == JSON_NULL) {
            v = json_get(root[0], keys[k]);
            from = docs[0];
        }
        if (!v || v->type == JSON_NULL) {
            memset(&spec[k], 0, sizeof(Spec));
            spec[k].content = defaults[k];
            spec[k].special = true;
        } else {
            rc = read_spec(from, v, from == docs[0], &spec[k], err, errlen);
        }
        named[k] = spec[k].content;
        for (size_t i = 0; decoder && spec[k].content && !rc && i < decoder->len; i++) {
            Spec d;
            if (read_spec(docs[0], &decoder->members[i].value, true, &d, NULL, 0) == 0 &&
                strcmp(d.content, spec[k].content) == 0)
                spec[k] = d;
        }
    }
    if (!rc && !decoder && root[2]) {
        for (size_t i = 0; i < root[2]->len && !rc; i++) {
            const JsonValue *v = &root[2]->members[i].value;
            if (v->type != JSON_NUMBER || !v->is_int || v->i < 0 || v->i >= (1 << 24)) {
                rc = json_errat(docs[2], v->pos, err, errlen, "expected an integer id");
                break;
            }
            Spec s = {.content = root[2]->members[i].key};
            for (int k = 0; k < 7; k++) s.special |= named[k] && strcmp(named[k], s.content) == 0;
            s.normalized = !s.special;
            add_token(tok, &s, (int)v->i);
        }
    }
    for (int k = 0; k < 7 && !rc; k++)
        if (spec[k].content) add_token(tok, &spec[k], -1);
    const JsonValue *mml = rc ? NULL : json_get(root[0], "model_max_length");
    tok->model_max_length = TOK_CONTEXT_LEN;  // absent or "unlimited" (1e30): CLIP's 77
    if (mml && mml->type == JSON_NUMBER && mml->d >= 2 && mml->d < 1e6)
        tok->model_max_length = (int)mml->d;
    int *ids[4] = {&tok->bos_id, &tok->eos_id, &tok->unk_id, &tok->pad_id};
    const int which[4] = {0, 1, 2, 4};
    for (int i = 0; i < 4 && !rc; i++) {
        const char *c = spec[which[i]].content;
        *ids[i] = c ? tok_token_id(tok, c) : -1;
        if (*ids[i] < 0 && i != 2)
            rc = tok_errf(err, errlen, "%s: %s \"%s\" is neither in the vocab nor an added token",
                          cfg->src ? cfg->name : map->name, keys[which[i]], c ? c : "(none)");
    }
    for (int f = 0; f < 3; f++) json_free(docs[f]);
    return rc;
}

// ---- API -----------------------------------------------------------------------------

static int build(Tokenizer *tok, const TokText *t, char *err, size_t errlen) {
    memset(tok, 0, sizeof(*tok));
    TokImpl *im = tok->impl = calloc(1, sizeof(TokImpl));
    if (!im) STORY_FATAL("out of memory");
    int rc = load_vocab(im, t[0].name, t[0].src, t[0].len, err, errlen);
    if (!rc) rc = load_merges(im, t[1].name, t[1].src, t[1].len, err, errlen);
    tok->n_ids = im->vocab_ids;
    if (!rc) rc = load_specials(tok, &t[2], &t[3], &t[4], err, errlen);
    for (int i = 0; i < im->n_added && !rc; i++) {
        TokAdded *a = &im->added[i];
        if (a->normalized) {
            a->pattern = tok_normalize(a->content, strlen(a->content), &a->pattern_len);
        } else {
            a->pattern = str_dup(a->content);
            a->pattern_len = strlen(a->content);
        }
    }
    if (rc) tok_free(tok);
    return rc;
}

int tok_load_memory(Tokenizer *tok, const TokFiles *f, char *err, size_t errlen) {
    static const char *names[5] = {"vocab.json", "merges.txt", "tokenizer_config.json",
                                   "special_tokens_map.json", "added_tokens.json"};
    const char *src[5] = {f->vocab_json, f->merges_txt, f->config_json, f->special_map_json,
                          f->added_json};
    size_t len[5] = {f->vocab_len, f->merges_len, f->config_len, f->special_map_len, f->added_len};
    char label[5][512];
    TokText t[5];
    for (int i = 0; i < 5; i++) {
        snprintf(label[i], sizeof(label[i]), "%s/%s", f->name ? f->name : "tokenizer", names[i]);
        t[i] = (TokText){label[i], src[i], len[i]};
    }
    if (!src[0] || !src[1]) {
        memset(tok, 0, sizeof(*tok));
        return tok_errf(err, errlen, "%s: missing", src[0] ? label[1] : label[0]);
    }
    return build(tok, t, err, errlen);
}

static char *read_file(const char *path, size_t *len, bool optional, int *rc, char *err,
                       size_t errlen) {
    FILE *fp = fopen(path, "rb");
    *rc = 0;
    if (!fp) {
        if (!(optional && errno == ENOENT))
            *rc = tok_errf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    char *buf = NULL;
    size_t n = 0, cap = 0, got;
    do {
        if (n + 65536 > cap) buf = tok_xrealloc(buf, cap = (n + 65536) * 2);
        got = fread(buf + n, 1, cap - n - 1, fp);
        n += got;
    } while (got > 0);
    if (ferror(fp)) *rc = tok_errf(err, errlen, "%s: read error", path);
    fclose(fp);
    buf[n] = 0;
    *len = n;
    if (*rc) {
        free(buf);
        return NULL;
    }
    return buf;
}

int tok_load(Tokenizer *tok, const char *dir, char *err, size_t errlen) {
    static const char *names[5] = {"vocab.json", "merges.txt", "tokenizer_config.json",
                                   "special_tokens_map.json", "added_tokens.json"};
    char path[5][4096];
    char *data[5] = {NULL};
    TokText t[5];
    int rc = 0;
    memset(tok, 0, sizeof(*tok));
    for (int i = 0; i < 5 && !rc; i++) {
        size_t len = 0;
        snprintf(path[i], sizeof(path[i]), "%s/%s", dir, names[i]);
        data[i] = read_file(path[i], &len, i >= 2, &rc, err, errlen);
        t[i] = (TokText){path[i], data[i], len};
    }
    if (!rc) rc = build(tok, t, err, errlen);
    for (int i = 0; i < 5; i++) free(data[i]);
    return rc;
}

void tok_free(Tokenizer *tok) {
    TokImpl *im = tok->impl;
    if (im) {
        tok_map_free(&im->vocab);
        tok_map_free(&im->cache);
        for (int i = 0; i < im->n_added; i++) {
            free(im->added[i].content);
            free(im->added[i].pattern);
        }
        free(im->added);
        free(im->piece_off);
        free(im->merges);
        free(im->cache_ids.v);
        free(im->out.v);
        free(im->sym);
        free(im->rank);
        free(im->merged);
        free(im->text);
        free(im);
    }
    memset(tok, 0, sizeof(*tok));
}

const char *tok_decode_piece(const Tokenizer *tok, int id) {
    const TokImpl *im = tok->impl;
    if (!im || id < 0 || id >= tok->n_ids) return NULL;
    if (id < im->vocab_ids && im->piece_off[id] >= 0) return im->vocab.pool + im->piece_off[id];
    for (int i = 0; i < im->n_added; i++)  // added tokens past or between the vocab's ids
        if (im->added[i].id == id) return im->added[i].content;
    return NULL;
}

int tok_piece_text(const Tokenizer *tok, int id, char *buf, size_t cap) {
    const char *piece = tok_decode_piece(tok, id);
    if (!piece) return -1;
    bool is_added = false;
    for (int i = 0; i < tok->impl->n_added; i++) is_added |= tok->impl->added[i].id == id;
    size_t n = strlen(piece), o = 0;
    bool eow = !is_added && n >= 4 && memcmp(piece + n - 4, "</w>", 4) == 0;
    if (eow) n -= 4;
    for (size_t i = 0; i < n;) {
        // byte-level pieces: each character stands for one byte (U+0100.. for the
        // unprintable ones); added tokens are written as they are
        int c = (unsigned char)piece[i], len = 1;
        if (!is_added && c >= 0xC0 && c < 0xE0 && i + 1 < n) {
            int b = cp_to_byte(((c & 0x1F) << 6) | (piece[i + 1] & 0x3F));
            if (b >= 0) {
                c = b;
                len = 2;
            }
        }
        if (o + 1 < cap) buf[o] = (char)c;
        o++;
        i += (size_t)len;
    }
    if (eow) {
        if (o + 1 < cap) buf[o] = ' ';
        o++;
    }
    if (cap) buf[o < cap ? o : cap - 1] = 0;
    return (int)o;
}

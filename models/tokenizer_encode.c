// models/tokenizer_encode.c: text -> CLIP token ids, step for step as transformers 5's
// CLIPTokenizer (the `tokenizers` pipeline it builds):
//   1. added tokens with normalized=false are cut out of the raw text;
//   2. each remaining part is normalized: NFC, every run of White_Space -> " ", then
//      each character lowercased on its own (no final-sigma rule; U+0130 -> "i\u0307");
//   3. added tokens with normalized=true are cut out of the normalized parts;
//   4. the CLIP pattern splits the rest into words, dropping whitespace:
//        <\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+
//      then the byte-level pre-tokenizer's GPT-2 pattern, which leaves those words
//      whole except "<|startoftext|>" / "<|endoftext|>" -> "<|", "startoftext", "|>";
//   5. each word's UTF-8 bytes become byte-level symbols, the last one with "</w>", and
//      merges apply lowest rank first (leftmost on ties) until none applies.
// transformers 4's Python CLIPTokenizer differed (ftfy or BERT's BasicTokenizer cleanup,
// CJK characters split apart, control characters dropped, Python's str.lower); diffusers
// with transformers 5 gets the behaviour above, which is what storyrun matches.
//
// Unicode data comes from utf8proc (Debian 12: 2.8, Unicode 15.0). Checked against
// tokenizers 0.23.3 over every code point: letter/number classes differ only for 5004
// code points new in Unicode 16, lowercase for 55 of those (U+0130 is handled here), and
// NFC only around 108 combining marks newer than tokenizers' own normalization tables.
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "models/tokenizer_impl.h"
#include "runner/check.h"

void tok_ids_push(TokIds *b, int id) {
    if (b->n == b->cap) {
        b->cap = b->cap ? b->cap * 2 : 256;
        b->v = tok_xrealloc(b->v, (size_t)b->cap * sizeof(int));
    }
    b->v[b->n++] = id;
}

// White_Space: what `\s` matches in the Oniguruma patterns and char::is_whitespace.
static bool is_space(int32_t c) {
    if (c < 0x80) return c == ' ' || (c >= 0x09 && c <= 0x0D);
    return c == 0x85 || c == 0xA0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 ||
           c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

enum { CL_SPACE, CL_LETTER, CL_NUMBER, CL_OTHER };

static int char_class(int32_t c) {
    if (c < 0x80) {
        if ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') return CL_LETTER;
        if (c >= '0' && c <= '9') return CL_NUMBER;
        return is_space(c) ? CL_SPACE : CL_OTHER;
    }
    if (is_space(c)) return CL_SPACE;
    utf8proc_category_t cat = utf8proc_category(c);
    if (cat >= UTF8PROC_CATEGORY_LU && cat <= UTF8PROC_CATEGORY_LO) return CL_LETTER;
    if (cat >= UTF8PROC_CATEGORY_ND && cat <= UTF8PROC_CATEGORY_NO) return CL_NUMBER;
    return CL_OTHER;
}

// Next code point of valid UTF-8 (the text was made valid on entry).
static int32_t next_cp(const char *s, size_t n, size_t *i) {
    int32_t c;
    utf8proc_ssize_t k =
        utf8proc_iterate((const utf8proc_uint8_t *)s + *i, (utf8proc_ssize_t)(n - *i), &c);
    *i += k > 0 ? (size_t)k : 1;
    return k > 0 ? c : 0xFFFD;
}

char *tok_normalize(const char *s, size_t n, size_t *out_len) {
    utf8proc_uint8_t *nfc = NULL;
    utf8proc_ssize_t m = n ? utf8proc_map((const utf8proc_uint8_t *)s, (utf8proc_ssize_t)n, &nfc,
                                          UTF8PROC_STABLE | UTF8PROC_COMPOSE)
                           : 0;
    const char *src = m >= 0 && nfc ? (const char *)nfc : s;
    size_t len = m >= 0 && nfc ? (size_t)m : n;
    // lowercase grows UTF-8 by at most 3/2; a bad byte (only in config files' tokens: the
    // text is made valid first) becomes a 3-byte U+FFFD
    char *out = mallocCheck(len * 3 + 8);
    size_t o = 0;
    for (size_t i = 0; i < len;) {
        int32_t c = next_cp(src, len, &i);
        if (is_space(c)) {
            out[o++] = ' ';  // a whole run becomes one space
            while (i < len) {
                size_t j = i;
                if (!is_space(next_cp(src, len, &j))) break;
                i = j;
            }
            continue;
        }
        if (c == 0x130) {  // the one unconditional multi-character lowercase mapping
            memcpy(out + o, "i\xCC\x87", 3);
            o += 3;
            continue;
        }
        o += (size_t)utf8proc_encode_char(utf8proc_tolower(c), (utf8proc_uint8_t *)out + o);
    }
    out[o] = 0;
    free(nfc);
    *out_len = o;
    return out;
}

// ---- BPE -----------------------------------------------------------------------------

static void pair_lookup(const TokImpl *im, int a, int b, int *rank, int *merged) {
    const TokPairSlot *s = tok_pair_slot(im->merges, im->merges_cap, tok_pair_key(a, b));
    *rank = s->rank;  // -1: no such merge
    *merged = s->id;
}

// One word (its UTF-8 bytes) -> ids appended to im->out, through the cache.
static void bpe_word(Tokenizer *tok, const char *w, size_t n) {
    TokImpl *im = tok->impl;
    int hit = tok_map_get(&im->cache, w, n);
    if (hit >= 0) {
        for (int k = 0; k < im->cache_ids.v[hit]; k++)
            tok_ids_push(&im->out, im->cache_ids.v[hit + 1 + k]);
        return;
    }
    if (n > im->sym_cap) {
        im->sym_cap = n * 2;
        im->sym = tok_xrealloc(im->sym, im->sym_cap * sizeof(int));
        im->rank = tok_xrealloc(im->rank, im->sym_cap * sizeof(int));
        im->merged = tok_xrealloc(im->merged, im->sym_cap * sizeof(int));
    }
    int *sym = im->sym, *rank = im->rank, *merged = im->merged, m = 0;
    for (size_t k = 0; k < n; k++) {
        uint8_t b = (uint8_t)w[k];
        int id = k + 1 == n ? im->byte_eow_id[b] : im->byte_id[b];
        if (id < 0) id = tok->unk_id;  // a vocab without this byte (never CLIP's)
        if (id >= 0) sym[m++] = id;
    }
    for (int i = 0; i + 1 < m; i++) pair_lookup(im, sym[i], sym[i + 1], &rank[i], &merged[i]);
    for (;;) {
        int best = -1;
        for (int i = 0; i + 1 < m; i++)
            if (rank[i] >= 0 && (best < 0 || rank[i] < rank[best])) best = i;
        if (best < 0) break;
        // symbols best, best + 1 -> one; pairs after it shift down by one
        sym[best] = merged[best];
        memmove(sym + best + 1, sym + best + 2, (size_t)(m - best - 2) * sizeof(int));
        int tail = m - best - 3 > 0 ? m - best - 3 : 0;
        memmove(rank + best + 1, rank + best + 2, (size_t)tail * sizeof(int));
        memmove(merged + best + 1, merged + best + 2, (size_t)tail * sizeof(int));
        m--;
        if (best + 1 < m) pair_lookup(im, sym[best], sym[best + 1], &rank[best], &merged[best]);
        if (best > 0) pair_lookup(im, sym[best - 1], sym[best], &rank[best - 1], &merged[best - 1]);
    }
    for (int i = 0; i < m; i++) tok_ids_push(&im->out, sym[i]);
    if (im->cache.n < TOK_CACHE_MAX) {
        tok_map_put(&im->cache, w, n, im->cache_ids.n);
        tok_ids_push(&im->cache_ids, m);
        for (int i = 0; i < m; i++) tok_ids_push(&im->cache_ids, sym[i]);
    }
}

// ---- pre-tokenization ----------------------------------------------------------------

static bool starts_with(const char *s, size_t n, const char *lit) {
    size_t k = strlen(lit);
    return n >= k && memcmp(s, lit, k) == 0;
}

// Step 4 on one normalized part.
static void split_words(Tokenizer *tok, const char *s, size_t n) {
    static const char *specials[2] = {"startoftext", "endoftext"};
    static const char *contractions[7] = {"'s", "'t", "'re", "'ve", "'m", "'ll", "'d"};
    for (size_t i = 0; i < n;) {
        bool done = false;
        for (int k = 0; k < 2 && !done; k++) {
            size_t len = strlen(specials[k]);
            if (starts_with(s + i, n - i, "<|") && starts_with(s + i + 2, n - i - 2, specials[k]) &&
                starts_with(s + i + 2 + len, n - i - 2 - len, "|>")) {
                bpe_word(tok, s + i, 2);
                bpe_word(tok, s + i + 2, len);
                bpe_word(tok, s + i + 2 + len, 2);
                i += len + 4;
                done = true;
            }
        }
        for (int k = 0; k < 7 && !done && s[i] == '\''; k++) {
            if (starts_with(s + i, n - i, contractions[k])) {
                bpe_word(tok, s + i, strlen(contractions[k]));
                i += strlen(contractions[k]);
                done = true;
            }
        }
        if (done) continue;
        size_t start = i;
        int cls = char_class(next_cp(s, n, &i));
        if (cls == CL_SPACE) continue;
        if (cls == CL_LETTER || cls == CL_OTHER) {  // a run of the same class
            for (size_t j = i; j < n; i = j) {
                if (char_class(next_cp(s, n, &j)) != cls) break;
            }
        }
        bpe_word(tok, s + start, i - start);
    }
}

// Leftmost, then longest, match of an added token searched in raw (normalized = false)
// or normalized text, from `from` on; lstrip/rstrip widen it over White_Space.
static int find_added(const TokImpl *im, bool normalized, const char *s, size_t n, size_t from,
                      size_t *ms, size_t *me) {
    for (size_t i = from; i < n; i++) {
        int best = -1;
        for (int k = 0; k < im->n_added; k++) {
            const TokAdded *a = &im->added[k];
            if (a->normalized != normalized || !a->pattern_len || a->pattern_len > n - i) continue;
            if (a->pattern[0] != s[i] || memcmp(a->pattern, s + i, a->pattern_len) != 0) continue;
            if (best < 0 || a->pattern_len > im->added[best].pattern_len) best = k;
        }
        if (best < 0) continue;
        const TokAdded *a = &im->added[best];
        *ms = i;
        *me = i + a->pattern_len;
        while (a->lstrip && *ms > from) {
            size_t j = *ms - 1;
            while (j > from && ((unsigned char)s[j] & 0xC0) == 0x80) j--;  // start of previous char
            size_t k = j;
            if (!is_space(next_cp(s, n, &k))) break;
            *ms = j;
        }
        while (a->rstrip && *me < n) {
            size_t j = *me;
            if (!is_space(next_cp(s, n, &j))) break;
            *me = j;
        }
        return a->id;
    }
    return -1;
}

// Steps 2-5 on a part of the raw text between raw-matched added tokens.
static void encode_part(Tokenizer *tok, const char *s, size_t n) {
    TokImpl *im = tok->impl;
    size_t len;
    char *norm = tok_normalize(s, n, &len);
    size_t pos = 0, ms, me;
    int id;
    while ((id = find_added(im, true, norm, len, pos, &ms, &me)) >= 0) {
        split_words(tok, norm + pos, ms - pos);
        tok_ids_push(&im->out, id);
        pos = me;
    }
    split_words(tok, norm + pos, len - pos);
    free(norm);
}

// Copies text as valid UTF-8 into im->text: each byte of a bad sequence becomes U+FFFD.
static size_t make_valid(TokImpl *im, const char *text) {
    size_t n = strlen(text), o = 0;
    if (n * 3 + 1 > im->text_cap) im->text = tok_xrealloc(im->text, im->text_cap = n * 3 + 1);
    for (size_t i = 0; i < n;) {
        int32_t c;
        utf8proc_ssize_t k =
            utf8proc_iterate((const utf8proc_uint8_t *)text + i, (utf8proc_ssize_t)(n - i), &c);
        if (k > 0) {
            memcpy(im->text + o, text + i, (size_t)k);
            o += (size_t)k;
            i += (size_t)k;
        } else {
            memcpy(im->text + o, "\xEF\xBF\xBD", 3);
            o += 3;
            i++;
        }
    }
    im->text[o] = 0;
    return o;
}

// All ids of text (no BOS/EOS) into im->out.
static void tokenize_all(Tokenizer *tok, const char *text) {
    TokImpl *im = tok->impl;
    im->out.n = 0;
    size_t n = make_valid(im, text ? text : "");
    const char *s = im->text;
    size_t pos = 0, ms, me;
    int id;
    while ((id = find_added(im, false, s, n, pos, &ms, &me)) >= 0) {
        if (ms > pos) encode_part(tok, s + pos, ms - pos);
        tok_ids_push(&im->out, id);
        pos = me;
    }
    if (n > pos) encode_part(tok, s + pos, n - pos);
}

int tok_tokenize(Tokenizer *tok, const char *text, int *ids, int cap) {
    if (!tok->impl) return -1;
    tokenize_all(tok, text);
    int n = tok->impl->out.n;
    if (ids && cap > 0 && n > 0)
        memcpy(ids, tok->impl->out.v, (size_t)(n < cap ? n : cap) * sizeof(int));
    return n;
}

int tok_encode(Tokenizer *tok, const char *text, int *ids, int max_len, int *n_untruncated) {
    if (!tok->impl) return -1;
    if (max_len <= 0) max_len = tok->model_max_length;
    if (max_len < 2) return -1;
    tokenize_all(tok, text);
    const TokIds *out = &tok->impl->out;
    int keep = out->n < max_len - 2 ? out->n : max_len - 2;
    ids[0] = tok->bos_id;
    if (keep > 0) memcpy(ids + 1, out->v, (size_t)keep * sizeof(int));
    ids[keep + 1] = tok->eos_id;
    for (int i = keep + 2; i < max_len; i++) ids[i] = tok->pad_id;
    if (n_untruncated) *n_untruncated = out->n + 2;
    return keep + 2;
}

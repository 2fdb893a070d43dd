// models/tokenizer_impl.h: internals shared by tokenizer.c (loading) and
// tokenizer_encode.c (text -> ids). Not part of the API; include models/tokenizer.h.
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "models/tokenizer.h"

// String -> non-negative int, open addressing. Keys live NUL-terminated in `pool`, so a
// slot's key can be handed out as a C string (tok_decode_piece).
typedef struct TokMapSlot {
    uint32_t off, len;
    int32_t val;  // -1: empty slot
} TokMapSlot;

typedef struct TokMap {
    TokMapSlot *slots;
    uint32_t cap, n;  // cap: 0 or a power of two, kept >= 2 n
    char *pool;
    size_t pool_len, pool_cap;
} TokMap;

int tok_map_get(const TokMap *m, const char *key, size_t len);  // -1 if absent
// Inserts or overwrites; returns the key's offset in pool.
uint32_t tok_map_put(TokMap *m, const char *key, size_t len, int32_t val);
void tok_map_free(TokMap *m);

// (left id, right id) -> (rank, merged id): one merges.txt line.
typedef struct TokPairSlot {
    uint64_t key;
    int32_t rank;  // -1: empty slot
    int32_t id;
} TokPairSlot;

static inline uint64_t tok_pair_key(int a, int b) {
    return (uint64_t)(uint32_t)a << 32 | (uint32_t)b;
}

// The slot of key in an open-addressing table of cap (a power of two) slots.
static inline TokPairSlot *tok_pair_slot(TokPairSlot *t, uint32_t cap, uint64_t key) {
    uint32_t i = (uint32_t)((key * 0x9E3779B97F4A7C15ull) >> 32) & (cap - 1);
    while (t[i].rank >= 0 && t[i].key != key) i = (i + 1) & (cap - 1);
    return &t[i];
}

// A token matched in the text before BPE (special tokens, textual-inversion tokens).
typedef struct TokAdded {
    char *content;  // as the config writes it
    char *pattern;  // what is searched: content, or its normalized form when normalized
    size_t pattern_len;
    int id;
    bool normalized;  // searched in the normalized text (else in the raw text)
    bool lstrip, rstrip, special;
} TokAdded;

typedef struct TokIds {
    int *v;
    int n, cap;
} TokIds;

#define TOK_CACHE_MAX 16384  // words whose BPE result is kept (tokenizers keeps 10000)

struct TokImpl {
    TokMap vocab;        // vocab.json: piece -> id
    int32_t *piece_off;  // id -> offset of its piece in vocab.pool or -1; vocab_ids entries
    TokPairSlot *merges;
    uint32_t merges_cap;
    int byte_id[256];      // id of the byte-level character of a byte, -1 if absent
    int byte_eow_id[256];  // the same with the "</w>" suffix (last byte of a word)
    TokAdded *added;
    int n_added;
    int vocab_ids;  // ids below come from vocab.json (holes possible)
    // encoding state: cache of words and scratch buffers
    TokMap cache;  // word bytes -> offset in cache_ids: count, then ids
    TokIds cache_ids;
    TokIds out;
    int *sym, *rank, *merged;
    size_t sym_cap;
    char *text;
    size_t text_cap;
};

// "FILE: ..." messages: writes the formatted text into err (may be NULL), returns -1.
int tok_errf(char *err, size_t errlen, const char *fmt, ...);

void tok_ids_push(TokIds *b, int id);
// NFC, whitespace runs -> one space, lowercase: the normalizer of transformers'
// CLIPTokenizer. Returns a malloc'ed NUL-terminated string, its length in *out_len.
char *tok_normalize(const char *s, size_t n, size_t *out_len);
void *tok_xrealloc(void *p, size_t n);

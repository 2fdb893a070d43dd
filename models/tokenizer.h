// models/tokenizer.h: the CLIP BPE tokenizer of Stable Diffusion's text encoders.
//
// Reads a diffusers tokenizer folder (tokenizer/ or tokenizer_2/: vocab.json + merges.txt,
// and when present tokenizer_config.json, special_tokens_map.json, added_tokens.json) and
// turns a prompt into the ids diffusers' pipelines feed the text encoder:
//   tokenizer(text, padding="max_length", max_length=77, truncation=True).input_ids
// with transformers' CLIPTokenizer (5.x, backed by the `tokenizers` library):
//   added-token split -> NFC, whitespace runs -> " ", lowercase -> CLIP split pattern
//   -> byte-level symbols -> BPE with "</w>" word ends -> BOS ... EOS, truncated, padded.
// The pad token comes from the config files: SD1.5's tokenizer pads with "<|endoftext|>"
// (49407), SDXL's tokenizer_2 with "!" (id 0), which is then also a special token.
// tests/tokenizer checks the ids against transformers on a few hundred prompts.
#pragma once
#include <stddef.h>

#define TOK_CONTEXT_LEN 77  // CLIP's context length; model_max_length when no config says

typedef struct TokImpl TokImpl;

typedef struct Tokenizer {
    int bos_id, eos_id, pad_id, unk_id;  // unk_id is -1 when the vocab has no unk token
    int model_max_length;                // tokenizer_config.json, TOK_CONTEXT_LEN if absent
    int n_ids;                           // ids are in [0, n_ids)
    TokImpl *impl;
} Tokenizer;

// The files of a tokenizer folder, already in memory (builtin models, tests). vocab and
// merges are required; a NULL config text means the file is absent. `name` prefixes the
// file names in error messages ("NAME/vocab.json: ...").
typedef struct TokFiles {
    const char *name;
    const char *vocab_json;
    size_t vocab_len;
    const char *merges_txt;
    size_t merges_len;
    const char *config_json;  // tokenizer_config.json
    size_t config_len;
    const char *special_map_json;  // special_tokens_map.json
    size_t special_map_len;
    const char *added_json;  // added_tokens.json (legacy textual-inversion tokens)
    size_t added_len;
} TokFiles;

// Loading returns 0, or -1 with a message in err naming the file and the line or byte
// ("DIR/merges.txt: line 7: expected two tokens separated by one space"); *tok is then
// empty and tok_free is optional. Nothing here exits the program.
int tok_load(Tokenizer *tok, const char *dir, char *err, size_t errlen);
int tok_load_memory(Tokenizer *tok, const TokFiles *files, char *err, size_t errlen);
void tok_free(Tokenizer *tok);

// ids[0..max_len) = BOS, the prompt's tokens cut to max_len - 2, EOS, then pad_id.
// max_len <= 0 means model_max_length. Returns the count before padding (BOS..EOS) or -1
// when max_len < 2. *n_untruncated (may be NULL) gets the length with BOS and EOS but
// without the cut: larger than max_len means the prompt was cut. Bytes of text that are
// not valid UTF-8 are read as U+FFFD each.
// Not thread-safe: encoding fills a per-tokenizer cache of words (use one per thread).
int tok_encode(Tokenizer *tok, const char *text, int *ids, int max_len, int *n_untruncated);

// The prompt's tokens alone: no BOS/EOS, no cut, no padding (for 75-token chunking).
// Writes min(count, cap) ids and returns the count.
int tok_tokenize(Tokenizer *tok, const char *text, int *ids, int cap);

// The vocab entry of id as written in vocab.json ("hello</w>", byte-level characters:
// "Ġ" stands for the byte 0x20 and so on); NULL for an unknown id.
const char *tok_decode_piece(const Tokenizer *tok, int id);

// The bytes that id stands for, "</w>" written as one space, NUL-terminated in buf
// (cut to cap - 1 bytes). A piece may hold part of a multi-byte character. Returns the
// full length, -1 for an unknown id.
int tok_piece_text(const Tokenizer *tok, int id, char *buf, size_t cap);

// Id of a vocab entry or added token, -1 if absent.
int tok_token_id(const Tokenizer *tok, const char *piece);

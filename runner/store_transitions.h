// runner/store_transitions.h: the HDF5 transitions store of `storyrun predict` (schema:
// docs/stores.md, "Transitions store"), which `storyrun animate` reads: for each of N frame
// pairs, the motion predictor's path P_1..P_L through the CLIP image-embedding space
// between the pair's start and end frame.
//
//   pairs                 f32 (N, L, D)  P_1..P_L as the predictor outputs them
//   start_embed           f32 (N, D)     the encoder's image embedding of the start frame (K_1)
//   end_embed             f32 (N, D)     ... of the end frame (K_L)
//   pair_meta/start_path  string (N)     the image files, as the job read them
//   pair_meta/end_path    string (N)
//   pair_meta/start_frame i64 (N)        story frame indices (-1 for pairs from a pairs file)
//   pair_meta/end_frame   i64 (N)
//   pair_meta/prompt      string (N)     the end frame's prompt (story), or the pair's prompt
//   root attributes       format_version, kind = "transitions", storyrun_version, n_pairs,
//                         L, D, predictor_path, predictor_sha256, predictor_{layers, width,
//                         heads, mlp_ratio, embed_dim, frames, ln_eps, token_inputs},
//                         encoder_id, preprocess, source_kind ("story" | "pairs"), source,
//                         created
//
// The store is small (N * (L + 2) * D floats) and written once, by one process: the job
// gathers every rank's rows on rank 0, which builds the file under PATH.partial (serial
// HDF5), fsyncs it and renames it to PATH. An existing store at PATH is replaced only by a
// complete new one.
//
// Reading (any number of processes, read-only, serial HDF5):
//   TransitionsStore *s;
//   TransitionsExpect want = {.D = 1024};                 // 0: anything
//   if (transitions_store_open("out/story/transitions.h5", &want, &s, err, n)) ...;
//   const TransitionsInfo *info = transitions_store_info(s);
//   float *P = malloc(sizeof(float) * info->L * info->D), *ks = ..., *ke = ...;
//   TransitionsPairMeta meta;
//   transitions_store_read_pair(s, i, P, ks, ke, &meta, err, n);
//   transitions_store_close(s);
// open refuses a file that is not a transitions store, a newer format, missing or
// misshapen datasets, attributes that disagree with the datasets or with `expect`; a pair
// whose values are not finite is refused by read_pair. Every message names the file and
// what is wrong.
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "models/motion_predictor.h"

#ifdef __cplusplus
extern "C" {
#endif

#define TRANSITIONS_STORE_FORMAT_VERSION 1
#define TRANSITIONS_STORE_KIND "transitions"

// What the store was made with (root attributes).
typedef struct {
    const char *predictor_path;    // the checkpoint as the config named it
    const char *predictor_sha256;  // of the checkpoint file (hex)
    SmpConfig predictor;           // its config (frames = L, embed_dim = D)
    const char *encoder_id;        // the CLIP vision encoder as the config named it
    const char *preprocess;        // the preprocessing, in words
    const char *source_kind;       // "story" or "pairs"
    const char *source;            // the story folder or the pairs file
    int64_t n_pairs;               // N >= 1
    int L, D;                      // frames per transition, embedding width
} TransitionsSpec;

// All N rows, in pair order.
typedef struct {
    const float *pairs;                                               // (N, L, D)
    const float *start_embed;                                         // (N, D)
    const float *end_embed;                                           // (N, D)
    const char *const *start_path, *const *end_path, *const *prompt;  // (N) each
    const int64_t *start_frame, *end_frame;                           // (N) each
} TransitionsRows;

// Writes PATH atomically (see the top). One process. Returns 0, or -1 with a message naming
// the file (nothing is then left under PATH or PATH.partial, and an old PATH is untouched).
int transitions_store_write(const char *path, const TransitionsSpec *spec,
                            const TransitionsRows *rows, char *err, size_t errlen);

// ---- reading ----------------------------------------------------------------------------------

// What the reader requires beyond a well-formed store; 0 / NULL: no requirement.
typedef struct {
    int L, D;
    const char *predictor_sha256;
} TransitionsExpect;

typedef struct {
    int format_version;
    int64_t n_pairs;
    int L, D;
    char predictor_path[1024];
    char predictor_sha256[65];
    SmpConfig predictor;
    char encoder_id[1024];
    char source_kind[16];
    char source[1024];
    char storyrun_version[128];
} TransitionsInfo;

typedef struct {
    char start_path[4096], end_path[4096];
    int64_t start_frame, end_frame;
    char prompt[4096];
} TransitionsPairMeta;

typedef struct TransitionsStore TransitionsStore;

// Opens and checks a store (see the top). expect may be NULL. Returns 0, or -1 with
// "PATH: what is wrong; what was expected".
int transitions_store_open(const char *path, const TransitionsExpect *expect,
                           TransitionsStore **out, char *err, size_t errlen);
const TransitionsInfo *transitions_store_info(const TransitionsStore *s);
// Pair i (0 <= i < n_pairs): P (L, D), start/end (D) and meta; each may be NULL. Returns 0,
// or -1 with a message (unreadable rows, NaN/Inf values).
int transitions_store_read_pair(TransitionsStore *s, int64_t i, float *P, float *start, float *end,
                                TransitionsPairMeta *meta, char *err, size_t errlen);
void transitions_store_close(TransitionsStore *s);

#ifdef __cplusplus
}
#endif

// runner/store_embed.h: the HDF5 embedding store of `storyrun embed` (schema:
// docs/stores.md), written collectively by every rank with parallel HDF5 (MPI-IO).
//
// Life of a store:
//   embed_store_create   all ranks; the clip plan (count, videos, captions) is known up
//                        front and identical on every rank. The file is built under
//                        PATH.partial and renamed to PATH once its datasets, attributes and
//                        static metadata are in place: nothing half-made has the final name.
//   embed_store_open     all ranks; an existing store for resume. Its identity attributes
//                        (encoder, L, stride/fps, clips per video, dtype, tokens, plan) must
//                        equal the job's; otherwise it is refused with a message naming each
//                        attribute, the store's value and the config's value.
//   embed_store_write    all ranks, once per flush point, each with its own rows (0 rows is
//                        fine: the rank joins with an empty selection). Every rank must make
//                        the same number of calls: chunked + deflated datasets can only be
//                        written with collective transfers (H5FD_MPIO_COLLECTIVE).
//   embed_store_close    all ranks.
//
// A flush writes the rows' data and metadata, flushes the file (H5Fflush), and only then
// sets their done flags and flushes again: a done flag on disk always has its data behind it.
// A process killed outside a flush leaves a store that resumes; HDF5 1.10 cannot promise a
// readable file when a process dies inside H5Fflush.
//
// Functions return 0, or -1 with a message "PATH: what; what was expected" in err. On a
// failed collective write the job should abort every rank (the ranks' views may differ).
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "runner/comm.h"

#ifdef __cplusplus
extern "C" {
#endif

#define EMBED_STORE_FORMAT_VERSION 1
#define EMBED_STORE_REASON_LEN 200  // bytes of clip_meta/skip_reason (longer reasons are cut)

typedef enum { EMBED_F32 = 0, EMBED_F16 = 1 } EmbedDtype;

// What a store is: compared attribute by attribute when a job resumes (see embed_store_open).
typedef struct {
    const char *encoder_id;    // the encoder (its path or builtin name)
    const char *encoder_hash;  // hash of the encoder's config + weights header (hex)
    const char *plan_hash;     // hash of the clip plan (dataset listing + sampling), hex
    int64_t n_clips;           // >= 1
    int64_t n_videos;          // videos in the dataset listing
    int L;                     // frames per clip, >= 1
    int D;                     // embedding width, >= 1
    int stride;                // frames between a clip's samples (> 0), or 0 with sample_fps
    double sample_fps;         // samples per second (> 0), or 0 with stride
    int clips_per_video;       // >= 1
    EmbedDtype dtype;          // of embeds and tokens
    int tokens_layer;          // hidden-state layer stored in `tokens`, or -1: no tokens
    int T, Dt;                 // tokens per frame and their width (when tokens_layer >= 0)
    // Informational (written at creation, not compared):
    const char *preprocess;  // how frames were preprocessed, in words
    const char *source;      // the dataset (folder or manifest)
} EmbedStoreSpec;

// Per-clip metadata known from the plan, written once at creation (rank 0 writes it; every
// rank passes the same arrays or NULLs: only rank 0's are read).
typedef struct {
    const char *const *video_path;  // (n_clips) the clip's video
    const char *const *caption;     // (n_clips) its caption ("" when none)
    const int64_t *video_index;     // (n_clips) the video's position in the listing
} EmbedStorePlanMeta;

// One rank's rows of one flush. Rows are embedded clips (done[i] = 1: embeds, tokens,
// frames and fps are written) or skipped ones (done[i] = 0: frames, fps and skip_reason
// are written, the embedding rows are left as they are).
typedef struct {
    int64_t n;                       // rows (>= 0)
    const int64_t *clip;             // (n) clip indices, strictly ascending
    const uint8_t *done;             // (n) 1 embedded, 0 skipped
    const float *embeds;             // (n, L, D); rows of skipped clips are not read
    const float *tokens;             // (n, L, T, Dt) or NULL; required when the store has tokens
    const int64_t *frames;           // (n, L) frame indices in the video (-1 where unknown)
    const double *fps;               // (n) the video's frame rate (0 where unknown)
    const char *const *skip_reason;  // (n) why a clip was skipped; NULL or "" for done rows
} EmbedStoreRows;

typedef struct EmbedStore EmbedStore;

// Creates PATH (which must not exist; PATH.partial from an earlier crash is replaced).
// Collective. spec and meta must be identical on every rank (meta arrays: rank 0's are used).
int embed_store_create(Comm *comm, const char *path, const EmbedStoreSpec *spec,
                       const EmbedStorePlanMeta *meta, EmbedStore **out, char *err, size_t errlen);

// Opens an existing store for appending, after checking its attributes against `expect`
// (preprocess and source are not compared). Collective. Reads the done flags.
int embed_store_open(Comm *comm, const char *path, const EmbedStoreSpec *expect, EmbedStore **out,
                     char *err, size_t errlen);

// Collective flush of every rank's rows (see the top of this file). The root attribute
// `updated` gets rank 0's clock.
int embed_store_write(EmbedStore *s, const EmbedStoreRows *rows, char *err, size_t errlen);

// The done flags (n_clips) as read at open (all 0 after create); rows written since are
// not reflected.
const uint8_t *embed_store_done(const EmbedStore *s);
int64_t embed_store_n_clips(const EmbedStore *s);

// Collective. Returns 0, or -1 with a message when closing failed (the file may be short).
int embed_store_close(EmbedStore *s, char *err, size_t errlen);

// "f16" / "f32"; parse returns -1 for anything else.
const char *embed_dtype_name(EmbedDtype d);
int embed_dtype_parse(const char *s, EmbedDtype *out);

#ifdef __cplusplus
}
#endif

// partition/partition.h: who does what in a render job. Pure functions: no I/O, no MPI,
// no global state; the same inputs give the same plan on every rank.
//
//   bank mode   (DESIGN 2.1, 4): one id pass per character, in character order; the
//               character's id frames are spread over the ranks as contiguous slices. Then
//               every other frame ([NC] frames included) is rendered once, on one rank,
//               with no further communication.
//   window mode: frames in contiguous blocks per rank; window starts t = 0..F-W; each rank
//               runs the windows that touch its frames and needs the tokens of the frames
//               of those windows that other ranks own (its halo).
//   csa_key:    packs (seed, kind, index, step, layer, purpose) into a Philox-4x32 key and
//               counter, so every random draw of CSA is addressed by what it is for and
//               never by the rank that makes it.
//
// Balanced split used everywhere ("part_split"): n items over r ranks in contiguous blocks
// in order; rank k gets n / r items, and the first n % r ranks get one more. Sizes differ
// by at most 1; ranks past n get nothing when r > n.
//
// Plans are allocated in one block; free them with the matching *_free. Functions that a
// user's story can reach return 0, or -1 with a message in err (may be NULL).
#pragma once
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define PART_ERR_LEN 256

// ---- story model --------------------------------------------------------------------------

// One frame line of the story. Its index is its position in PartStory.frames.
typedef struct {
    const int *chars;  // the characters it names ([Name] tags), each in [0, n_characters)
    int n_chars;       // 0 for [NC] and for frames that name nobody; repeats are allowed
    int is_nc;         // [NC]: plain self-attention; must then name no character
} PartFrame;

// One character. Its index is its position in PartStory.characters.
typedef struct {
    int id_frames;  // identity frames requested (>= 0)
} PartCharacter;

typedef struct {
    const PartFrame *frames;
    int n_frames;  // >= 1
    const PartCharacter *characters;
    int n_characters;  // >= 0
} PartStory;

// Balanced contiguous split: items [*lo, *hi) of n go to rank `rank` of n_ranks.
void part_split(int n, int n_ranks, int rank, int *lo, int *hi);

// The character a frame names alone (every tag is that one character), or -1 (no tag,
// [NC], or two different characters). Only such frames can be identity frames.
int part_frame_sole_character(const PartFrame *f);

// ---- bank mode ------------------------------------------------------------------------------

typedef enum {
    PART_ROLE_ID = 0,     // rendered in its character's id pass
    PART_ROLE_BANK = 1,   // rendered afterwards, reading the banks of the characters it names
    PART_ROLE_PLAIN = 2,  // rendered afterwards with plain self-attention ([NC], or no name)
} PartRole;

typedef struct {
    int n_frames, n_ranks, n_characters;

    // Identity frames, per character c in character order (c's id pass):
    //   id_frames[id_start[c] .. id_start[c+1]) in story order; the first `id_frames`
    //   frames that name c alone (fewer when the story has fewer).
    int *id_frames;     // (total id frames)
    int *id_start;      // (n_characters + 1)
    int *id_requested;  // (n_characters) copied from the story
    int *id_shortfall;  // (n_characters) requested - found, >= 0; the job warns when > 0
    int n_short;        // characters with a shortfall
    int n_no_id;        // characters that requested id frames and got none: this job
                        // makes no bank for them (the job reports it, or loads a stored one)
    // Rank r's slice of pass c: id_frames[id_start[c] + id_rank_start[c*(R+1) + r] ..
    // id_start[c] + id_rank_start[c*(R+1) + r + 1]). part_split over the pass's frames,
    // so a pass with fewer id frames than ranks leaves the last ranks idle.
    int *id_rank_start;  // (n_characters * (n_ranks + 1))

    // Frames phase: every non-id frame in story order, contiguous balanced blocks:
    // rank r renders rest_frames[rest_rank_start[r] .. rest_rank_start[r+1]).
    // Contiguous rather than round-robin: a rank's outputs are a run of the story (its log
    // reads in order) and the split is the same rule as the id passes; balance is the same
    // (within 1 frame) since every frames-phase frame costs the same.
    int *rest_frames;  // (n_rest)
    int n_rest;
    int *rest_rank_start;  // (n_ranks + 1)

    // Per frame f: who renders it and how.
    int *frame_rank;  // (n_frames) the rank that renders f
    int *frame_role;  // (n_frames) PartRole
    int *frame_pass;  // (n_frames) the character whose id pass renders f, or -1
} PartBankPlan;

// Plans bank mode for n_ranks >= 1. Errors: no frames, bad character index, [NC] frame
// naming a character, negative id_frames, n_ranks < 1.
int part_bank_plan(const PartStory *story, int n_ranks, PartBankPlan *plan, char *err);
void part_bank_plan_free(PartBankPlan *plan);

// Rank r's id frames in pass c: *first points at them, returns their count (may be 0).
int part_bank_rank_ids(const PartBankPlan *plan, int c, int r, const int **first);
// Rank r's frames-phase frames: *first points at them, returns their count (may be 0).
int part_bank_rank_rest(const PartBankPlan *plan, int r, const int **first);

// ---- window mode -----------------------------------------------------------------------------

typedef struct {
    int n_frames, n_ranks;
    int window;     // W after clamping to n_frames (requested W > n_frames -> n_frames)
    int n_windows;  // n_frames - window + 1; window t covers frames [t, t + window)

    // Per rank r (all arrays (n_ranks)); empty ranges have lo == hi:
    int *own_lo, *own_hi;    // frames r owns: part_split(n_frames, n_ranks, r)
    int *win_lo, *win_hi;    // window starts [win_lo, win_hi) that touch r's frames
    int *need_lo, *need_hi;  // frames in those windows: [need_lo, need_hi) ⊇ own range
    // r's halo = [need_lo, own_lo) ∪ [own_hi, need_hi): frames owned by other ranks whose
    // sampled tokens r needs each layer.

    // Per frame f: 1 when some rank other than its owner needs it (its window crosses a
    // rank border), i.e. f's sampled tokens go into the per-layer all-gather.
    int *frame_shared;  // (n_frames)
    int *frame_rank;    // (n_frames) owner
    int n_shared;
} PartWindowPlan;

// Plans window mode for window >= 1 (clamped to n_frames) and n_ranks >= 1.
int part_window_plan(int n_frames, int window, int n_ranks, PartWindowPlan *plan, char *err);
void part_window_plan_free(PartWindowPlan *plan);

// Number of windows that contain frame f (>= 1): f's output is the mean over them.
int part_window_count(int n_frames, int window, int f);
// Halo size of rank r (frames it needs but does not own).
int part_window_halo(const PartWindowPlan *plan, int r);

// ---- Philox keys for CSA sampling
// -----------------------------------------------------------------

// What a draw belongs to: the whole story, one character (its id pass), one frame, or one
// window start (window mode).
typedef enum {
    CSA_KIND_STORY = 0,
    CSA_KIND_CHARACTER = 1,
    CSA_KIND_FRAME = 2,
    CSA_KIND_WINDOW = 3,
} CsaKind;

// What a draw is for.
typedef enum {
    CSA_PURPOSE_GATE = 0,    // the CSA-or-plain draw of a (step, layer)
    CSA_PURPOSE_SAMPLE = 1,  // which tokens an image contributes (its sampled token set)
    CSA_PURPOSE_NOISE = 2,   // noise drawn by CSA-related code (reserved)
} CsaPurpose;

// Field widths of the 64-bit stream word (counter words 2 and 3), low bit first:
//   purpose 8 bits | kind 4 bits | layer 12 bits | step 16 bits | index 24 bits
#define CSA_KEY_PURPOSE_MAX 255
#define CSA_KEY_KIND_MAX 15
#define CSA_KEY_LAYER_MAX 4095
#define CSA_KEY_STEP_MAX 65535
#define CSA_KEY_INDEX_MAX 16777215

// A Philox-4x32 key and starting counter:
//   key[0], key[1]         = seed low, high 32 bits
//   counter[0], counter[1] = 0: the block number within the stream, advanced by the user
//                            (element i of the stream is word i % 4 of block i / 4)
//   counter[2], counter[3] = the packed stream word, low, high 32 bits
// This is exactly models/rng.h's addressing: rng_philox_u32(csa_key_seed(k),
// csa_key_stream(k), i) is element i, and rng_philox4x32(k.counter, k.key, out) is
// block 0. Layer-independent draws (a sampled set shared by all layers of a step, the
// reference default) pass layer 0.
typedef struct {
    uint32_t key[2];
    uint32_t counter[4];
} CsaKey;

// Returns 0, or -1 when a field is outside its width (*out is then zeroed). Distinct
// in-range tuples give distinct (key, counter) pairs: the packing is injective.
int csa_key(uint64_t seed, CsaKind kind, int64_t index, int step, int layer, CsaPurpose purpose,
            CsaKey *out);
uint64_t csa_key_seed(const CsaKey *k);    // key as one 64-bit word
uint64_t csa_key_stream(const CsaKey *k);  // counter words 2, 3 as one 64-bit word

#ifdef __cplusplus
}
#endif

// jobs/train.h: what the parts of `storyrun train` share (jobs/train.c: config and the
// training loop; jobs/train_data.c: clips from the embedding stores, the validation split
// and the batch order; jobs/train_log.c: the CSV log and the loss-curve PNG).
#pragma once
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TRAIN_MAX_STORES 64

// ---- data (jobs/train_data.c) --------------------------------------------------------------

// A clip of the training data: store index and clip row in that store.
typedef struct {
    int store;
    int64_t clip;
} TrainClip;

typedef struct TrainStoreFile TrainStoreFile;

// The done clips of one or more embedding stores, split into training and validation clips.
// Every rank opens the stores read-only and reads only the clips it needs.
typedef struct {
    int nstores;
    TrainStoreFile **files;
    int D;  // embedding width (equal in every store)
    int L;  // frames per training clip (<= every store's L)
    int64_t n_train, n_val;
    TrainClip *train;  // (n_train) in store order, then clip order
    TrainClip *val;    // (n_val)
    // the shuffled order of the epoch last asked for (train_data_global_batch)
    long perm_epoch;
    int64_t *perm;  // (n_train) indices into train
    float *row;     // (store L_max, D) read buffer
} TrainData;

// 1 when clip `clip` (its row in the store) of store `store` is held out for validation:
// a hash of (store, clip) below frac, so the split depends on neither seed nor rank count.
int train_is_val(int store, int64_t clip, double frac);

// Opens the stores (read-only) and lists their done clips. L: frames per training clip,
// taken from each stored clip at evenly spaced positions from its first to its last frame
// (0: the smallest L of the stores).
// Returns 0, or -1 with "PATH: what; what was expected".
int train_data_open(TrainData *d, const char *const *paths, int nstores, int L, double val_frac,
                    char *err, size_t errlen);
void train_data_close(TrainData *d);

// Steps per epoch for a global batch of G clips: n_train / G (the last partial batch of an
// epoch is dropped, so every step has G clips).
long train_steps_per_epoch(const TrainData *d, int G);
// Positions [lo, hi) of the global batch of 0-based step `step` (indices into d->train):
// epoch e = step / steps_per_epoch is a permutation of the training clips drawn from
// (seed, e); step k of the epoch takes its clips k*G .. k*G + G - 1. Depends on the seed,
// the step and G only, never on the rank count.
void train_data_global_batch(TrainData *d, uint64_t seed, long step, int G, int lo, int hi,
                             int64_t *out);

// Reads clips (n) into out (n, L, D) f32. Returns 0, or -1 with a message.
int train_data_read(TrainData *d, const TrainClip *clips, int n, float *out, char *err,
                    size_t errlen);

// The store frame that training frame j (of L) of a clip of Ls stored frames comes from.
int train_frame_index(int j, int L, int Ls);

// ---- log (jobs/train_log.c) ------------------------------------------------------------------

// One row of the CSV log; val_* are NaN on steps without an evaluation.
typedef struct {
    long step;  // 1-based: the row of the step that made `step` updates
    int epoch;
    double loss, lr, grad_norm, frames_per_s;
    double val_mse, interp_mse;
} TrainLogRow;

typedef struct {
    TrainLogRow *rows;
    size_t n, cap;
} TrainLog;

void train_log_add(TrainLog *l, const TrainLogRow *r);
void train_log_free(TrainLog *l);
// Reads an earlier run's CSV, keeping the rows with step <= max_step (a resumed run goes
// on from its checkpoint; rows written after it are dropped). A missing file is an empty
// log. Returns 0, or -1 with a message.
int train_log_load(TrainLog *l, const char *path, long max_step, char *err, size_t errlen);
// Writes the whole log atomically (temp file + fsync + rename). Returns 0, or -1.
int train_log_write(const TrainLog *l, const char *path, char *err, size_t errlen);
// The loss curve: training loss and validation MSE vs step on a log-scale y axis, with the
// interpolation baseline as a dashed line, axes and tick labels. Atomic. Returns 0, or -1.
int train_log_plot(const TrainLog *l, const char *path, char *err, size_t errlen);

#ifdef __cplusplus
}
#endif

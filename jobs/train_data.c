// jobs/train_data.c: training clips from the embed job's HDF5 stores (docs/stores.md),
// the validation split and the order of the global batches.
//
// Every rank opens every store read-only with the default (POSIX) driver and reads only
// the clips of its own slice of each batch: `embeds` is chunked one clip per chunk, so one
// clip is one chunk read (f16 stores are converted to f32 by HDF5 on read).
//
// Split: clip c of store s is a validation clip when splitmix64(hash(s, c)) / 2^64 < frac.
// It looks at the clip's identity only, so every rank and every rank count (and every
// seed) agrees on it, and adding clips to a store does not move the others.
//
// Order: epoch e is a Fisher-Yates permutation of the training clips driven by splitmix64
// seeded from (seed, e); step s of the whole run is batch s % spe of epoch s / spe (spe =
// steps per epoch). The position in the data follows from the step alone, so a resumed run
// continues the order exactly, on any rank count.
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <hdf5.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "jobs/train.h"
#include "runner/check.h"

struct TrainStoreFile {
    char *path;
    hid_t file, embeds, space;
    int Ls;  // the store's L
};

static uint64_t splitmix64(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

int train_is_val(int store, int64_t clip, double frac) {
    if (frac <= 0) return 0;
    uint64_t s = ((uint64_t)(uint32_t)store << 48) ^ (uint64_t)clip ^ 0x5EED5A17ull;
    double u = (double)(splitmix64(&s) >> 11) * (1.0 / 9007199254740992.0);  // [0, 1)
    return u < frac;
}

int train_frame_index(int j, int L, int Ls) {
    if (L <= 1) return 0;
    // round(j * (Ls - 1) / (L - 1)) in integers: exact, so every rank picks the same frames
    return (int)(((int64_t)2 * j * (Ls - 1) + (L - 1)) / (2 * (int64_t)(L - 1)));
}

static int fail(char *err, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t n, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, n, fmt, ap);
    va_end(ap);
    return -1;
}

static int64_t attr_i64(hid_t loc, const char *name, int64_t dflt) {
    if (H5Aexists(loc, name) <= 0) return dflt;
    int64_t v = dflt;
    hid_t a = H5Aopen(loc, name, H5P_DEFAULT);
    if (a < 0) return dflt;
    if (H5Aread(a, H5T_NATIVE_INT64, &v) < 0) v = dflt;
    H5Aclose(a);
    return v;
}

static void store_close(TrainStoreFile *f) {
    if (!f) return;
    if (f->space >= 0) H5Sclose(f->space);
    if (f->embeds >= 0) H5Dclose(f->embeds);
    if (f->file >= 0) H5Fclose(f->file);
    free(f->path);
    free(f);
}

// Opens one store; *done (n_clips flags) and its shape on success.
static int store_open(const char *path, TrainStoreFile **out, uint8_t **done, int64_t *n_clips,
                      int *D, char *err, size_t n) {
    struct stat sb;
    if (stat(path, &sb) != 0)
        return fail(err, n, "%s: %s; expected an embedding store written by `storyrun embed`", path,
                    strerror(errno));
    if (H5Fis_hdf5(path) <= 0)
        return fail(err, n,
                    "%s: not an HDF5 file; expected an embedding store written by "
                    "`storyrun embed`",
                    path);
    TrainStoreFile *f = calloc(1, sizeof *f);
    if (!f) STORY_FATAL("out of memory");
    f->embeds = f->space = -1;
    f->path = strdup(path);
    f->file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f->file < 0) {
        store_close(f);
        return fail(err, n, "%s: HDF5 cannot open it (damaged, or still being written?)", path);
    }
    int64_t Ls = attr_i64(f->file, "L", -1), Dd = attr_i64(f->file, "D", -1);
    if (H5Lexists(f->file, "embeds", H5P_DEFAULT) <= 0 ||
        H5Lexists(f->file, "done", H5P_DEFAULT) <= 0 || Ls < 1 || Dd < 1) {
        store_close(f);
        return fail(err, n,
                    "%s: not an embedding store: expected datasets 'embeds' and 'done' "
                    "and root attributes L and D (docs/stores.md)",
                    path);
    }
    f->embeds = H5Dopen2(f->file, "embeds", H5P_DEFAULT);
    f->space = f->embeds >= 0 ? H5Dget_space(f->embeds) : -1;
    hsize_t dims[4] = {0};
    int nd = f->space >= 0 ? H5Sget_simple_extent_ndims(f->space) : -1;
    if (nd == 3) H5Sget_simple_extent_dims(f->space, dims, NULL);
    if (nd != 3 || (int64_t)dims[1] != Ls || (int64_t)dims[2] != Dd) {
        store_close(f);
        return fail(err, n, "%s: dataset 'embeds' is not [clips, L=%" PRId64 ", D=%" PRId64 "]",
                    path, Ls, Dd);
    }
    *n_clips = (int64_t)dims[0];
    *done = mallocCheck((size_t)(*n_clips ? *n_clips : 1));
    hid_t dd = H5Dopen2(f->file, "done", H5P_DEFAULT);
    hid_t ds = dd >= 0 ? H5Dget_space(dd) : -1;
    hsize_t dn = 0;
    int ok = ds >= 0 && H5Sget_simple_extent_ndims(ds) == 1 &&
             H5Sget_simple_extent_dims(ds, &dn, NULL) == 1 && (int64_t)dn == *n_clips &&
             (dn == 0 || H5Dread(dd, H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, *done) >= 0);
    if (ds >= 0) H5Sclose(ds);
    if (dd >= 0) H5Dclose(dd);
    if (!ok) {
        free(*done);
        *done = NULL;
        store_close(f);
        return fail(err, n, "%s: dataset 'done' is not [clips] u8 with one flag per embeds row",
                    path);
    }
    f->Ls = (int)Ls;
    *D = (int)Dd;
    *out = f;
    return 0;
}

int train_data_open(TrainData *d, const char *const *paths, int nstores, int L, double val_frac,
                    char *err, size_t errlen) {
    memset(d, 0, sizeof *d);
    d->perm_epoch = -1;
    d->L = L;
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);  // our messages say what went wrong
    d->files = calloc((size_t)nstores, sizeof *d->files);
    if (!d->files) STORY_FATAL("out of memory");
    int64_t cap_t = 0, cap_v = 0;
    int Lmax = 0, Lmin = 1 << 30;
    for (int s = 0; s < nstores; s++) {
        uint8_t *done = NULL;
        int64_t nc = 0;
        int D = 0;
        if (store_open(paths[s], &d->files[s], &done, &nc, &D, err, errlen)) {
            train_data_close(d);
            return -1;
        }
        d->nstores = s + 1;
        TrainStoreFile *f = d->files[s];
        if (s > 0 && D != d->D) {
            free(done);
            train_data_close(d);
            return fail(err, errlen,
                        "%s: embeddings are %d wide but %s's are %d; every store "
                        "of one training run must come from the same encoder",
                        paths[s], D, paths[0], d->D);
        }
        d->D = D;
        if (L > 0 && L > f->Ls) {
            free(done);
            train_data_close(d);
            return fail(err, errlen,
                        "%s: clips have L=%d frames; model.frames %d must be at "
                        "most that (a training clip is taken from one stored clip)",
                        paths[s], f->Ls, L);
        }
        if (f->Ls > Lmax) Lmax = f->Ls;
        if (f->Ls < Lmin) Lmin = f->Ls;
        for (int64_t c = 0; c < nc; c++) {
            if (!done[c]) continue;
            int v = train_is_val(s, c, val_frac);
            TrainClip **list = v ? &d->val : &d->train;
            int64_t *cnt = v ? &d->n_val : &d->n_train, *cap = v ? &cap_v : &cap_t;
            if (*cnt == *cap) {
                *cap = *cap ? 2 * *cap : 256;
                *list = realloc(*list, (size_t)*cap * sizeof **list);
                if (!*list) STORY_FATAL("out of memory for %" PRId64 " clips", *cap);
            }
            (*list)[(*cnt)++] = (TrainClip){s, c};
        }
        free(done);
    }
    if (L == 0) d->L = Lmin;
    d->row = mallocCheck((size_t)Lmax * d->D * sizeof(float));
    d->perm = mallocCheck((size_t)(d->n_train ? d->n_train : 1) * sizeof *d->perm);
    return 0;
}

void train_data_close(TrainData *d) {
    for (int s = 0; s < d->nstores; s++) store_close(d->files[s]);
    free(d->files);
    free(d->train);
    free(d->val);
    free(d->perm);
    free(d->row);
    memset(d, 0, sizeof *d);
}

long train_steps_per_epoch(const TrainData *d, int G) { return G > 0 ? (long)(d->n_train / G) : 0; }

void train_data_global_batch(TrainData *d, uint64_t seed, long step, int G, int lo, int hi,
                             int64_t *out) {
    long spe = train_steps_per_epoch(d, G);
    STORY_CHECK(spe > 0 && lo >= 0 && hi <= G && lo <= hi, "batch slice %d..%d of %d, %ld/epoch",
                lo, hi, G, spe);
    long epoch = step / spe, k = step % spe;
    if (epoch != d->perm_epoch) {
        uint64_t s = seed ^ 0xD1B54A32D192ED03ull;
        uint64_t key = splitmix64(&s) ^ (uint64_t)epoch * 0x9E3779B97F4A7C15ull;
        for (int64_t i = 0; i < d->n_train; i++) d->perm[i] = i;
        for (int64_t i = d->n_train - 1; i > 0; i--) {  // Fisher-Yates
            // multiply-shift: unbiased enough for any realistic clip count (< 2^32)
            int64_t j = (int64_t)(((splitmix64(&key) >> 32) * (uint64_t)(i + 1)) >> 32);
            int64_t t = d->perm[i];
            d->perm[i] = d->perm[j];
            d->perm[j] = t;
        }
        d->perm_epoch = epoch;
    }
    for (int i = lo; i < hi; i++) out[i - lo] = d->perm[k * G + i];
}

int train_data_read(TrainData *d, const TrainClip *clips, int n, float *out, char *err,
                    size_t errlen) {
    int L = d->L, D = d->D;
    for (int i = 0; i < n; i++) {
        TrainStoreFile *f = d->files[clips[i].store];
        hsize_t start[3] = {(hsize_t)clips[i].clip, 0, 0},
                count[3] = {1, (hsize_t)f->Ls, (hsize_t)D};
        hid_t mem = H5Screate_simple(3, count, NULL);
        int rc = H5Sselect_hyperslab(f->space, H5S_SELECT_SET, start, NULL, count, NULL) < 0 ||
                 H5Dread(f->embeds, H5T_NATIVE_FLOAT, mem, f->space, H5P_DEFAULT, d->row) < 0;
        H5Sclose(mem);
        if (rc)
            return fail(err, errlen, "%s: cannot read embeds row %" PRId64 " (damaged file?)",
                        f->path, clips[i].clip);
        float *o = out + (size_t)i * L * D;
        for (int j = 0; j < L; j++)
            memcpy(o + (size_t)j * D, d->row + (size_t)train_frame_index(j, L, f->Ls) * D,
                   (size_t)D * sizeof(float));
    }
    return 0;
}

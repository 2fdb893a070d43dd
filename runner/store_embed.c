// runner/store_embed.c: the embedding store over parallel HDF5 (see store_embed.h and
// docs/stores.md). Every HDF5 call that touches the file's structure or chunked data is
// made by all ranks in the same order; the row selections are what differ between ranks.
#define _POSIX_C_SOURCE 200809L
#include "runner/store_embed.h"

#include <errno.h>
#include <hdf5.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "kernels/tensor.h"
#include "runner/check.h"
#include "runner/h5attr.h"
#include "runner/version.h"

// Rows of the per-clip metadata datasets in one chunk (embeds/tokens: one clip per chunk).
#define META_CHUNK 4096
#define DEFLATE_LEVEL 4

struct EmbedStore {
    Comm *comm;
    char *path;
    hid_t file, dxpl;
    hid_t d_embeds, d_tokens, d_done, d_frames, d_fps, d_skip;
    hid_t t_value;  // file type of embeds/tokens (IEEE f32 or f16)
    int64_t n_clips;
    int L, D, T, Dt, has_tokens;
    EmbedDtype dtype;
    uint8_t *done;  // (n_clips) as read at open
};

static void set_err(char *err, size_t errlen, const char *fmt, ...) {
    if (!err || !errlen) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

// HDF5's innermost message of the current error stack (what actually went wrong).
static herr_t walk_cb(unsigned n, const H5E_error2_t *e, void *data) {
    if (n == 0) snprintf((char *)data, 256, "%s", e->desc ? e->desc : "unknown HDF5 error");
    return 0;
}
static const char *h5_why(char *buf) {
    snprintf(buf, 256, "unknown HDF5 error");
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, walk_cb, buf);
    return buf;
}

// HDF5 prints its error stacks to stderr by default; this module reports its own messages.
static void h5_quiet(void) { H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }

const char *embed_dtype_name(EmbedDtype d) { return d == EMBED_F16 ? "f16" : "f32"; }

int embed_dtype_parse(const char *s, EmbedDtype *out) {
    if (!strcmp(s, "f16") || !strcmp(s, "float16"))
        *out = EMBED_F16;
    else if (!strcmp(s, "f32") || !strcmp(s, "float32"))
        *out = EMBED_F32;
    else
        return -1;
    return 0;
}

// IEEE binary16, little-endian: HDF5 1.10 has no predefined half type; h5py reads this
// layout as numpy float16.
static hid_t make_f16_type(void) {
    hid_t t = H5Tcopy(H5T_IEEE_F32LE);
    H5Tset_fields(t, 15, 10, 5, 0, 10);
    H5Tset_size(t, 2);
    H5Tset_precision(t, 16);
    H5Tset_ebias(t, 15);
    return t;
}

static void utc_now(char *buf, size_t n) {
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

// ---- attributes --------------------------------------------------------------------------

static int write_spec_attrs(hid_t f, const EmbedStoreSpec *s) {
    char ver[128], now[32];
    snprintf(ver, sizeof ver, "%s (commit %s)", story_version(), story_git_commit());
    utc_now(now, sizeof now);
    int rc = 0;
    rc |= h5_attr_put_i64(f, "format_version", EMBED_STORE_FORMAT_VERSION);
    rc |= h5_attr_put_str(f, "storyrun_version", ver);
    rc |= h5_attr_put_str(f, "encoder_id", s->encoder_id);
    rc |= h5_attr_put_str(f, "encoder_hash", s->encoder_hash);
    rc |= h5_attr_put_str(f, "plan_hash", s->plan_hash);
    rc |= h5_attr_put_i64(f, "n_videos", s->n_videos);
    rc |= h5_attr_put_i64(f, "L", s->L);
    rc |= h5_attr_put_i64(f, "D", s->D);
    rc |= h5_attr_put_i64(f, "stride", s->stride);
    rc |= h5_attr_put_f64(f, "sample_fps", s->sample_fps);
    rc |= h5_attr_put_i64(f, "clips_per_video", s->clips_per_video);
    rc |= h5_attr_put_str(f, "dtype", embed_dtype_name(s->dtype));
    rc |= h5_attr_put_i64(f, "tokens_layer", s->tokens_layer);
    rc |= h5_attr_put_str(f, "preprocess", s->preprocess);
    rc |= h5_attr_put_str(f, "source", s->source);
    rc |= h5_attr_put_str(f, "created", now);
    rc |= h5_attr_put_str(f, "updated", now);
    return rc ? -1 : 0;
}

// ---- datasets ------------------------------------------------------------------------------

// fill (of type `type`, may be NULL for zeros): what rows never written read as.
static hid_t create_ds_fill(hid_t loc, const char *name, hid_t type, int rank, const hsize_t *dims,
                            const hsize_t *chunk, const void *fill) {
    hid_t sp = H5Screate_simple(rank, dims, NULL);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_chunk(dcpl, rank, chunk);
    if (fill) H5Pset_fill_value(dcpl, type, fill);
    // shuffle groups the bytes of each value, which deflate then compresses far better
    H5Pset_shuffle(dcpl);
    H5Pset_deflate(dcpl, DEFLATE_LEVEL);
    hid_t d = H5Dcreate2(loc, name, type, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    H5Pclose(dcpl);
    H5Sclose(sp);
    return d;
}
static hid_t create_ds(hid_t loc, const char *name, hid_t type, int rank, const hsize_t *dims,
                       const hsize_t *chunk) {
    return create_ds_fill(loc, name, type, rank, dims, chunk, NULL);
}

static hid_t fixed_str_type(size_t len) {
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, len ? len : 1);
    H5Tset_strpad(t, H5T_STR_NULLPAD);
    H5Tset_cset(t, H5T_CSET_UTF8);
    return t;
}

// File selection of the given clip rows (ascending) of a dataset, runs of consecutive rows
// merged into one hyperslab each; an empty list selects nothing.
static hid_t select_rows(hid_t d, const int64_t *rows, int64_t n) {
    hid_t fs = H5Dget_space(d);
    int nd = H5Sget_simple_extent_ndims(fs);
    hsize_t dims[8], start[8] = {0}, count[8];
    H5Sget_simple_extent_dims(fs, dims, NULL);
    H5Sselect_none(fs);
    for (int k = 1; k < nd; k++) count[k] = dims[k];
    for (int64_t i = 0; i < n;) {
        int64_t j = i + 1;
        while (j < n && rows[j] == rows[j - 1] + 1) j++;
        start[0] = (hsize_t)rows[i];
        count[0] = (hsize_t)(j - i);
        H5Sselect_hyperslab(fs, H5S_SELECT_OR, start, NULL, count, NULL);
        i = j;
    }
    return fs;
}

// Memory space for n packed rows of a dataset whose rows hold `per_row` values.
static hid_t mem_rows(int64_t n, hsize_t per_row) {
    hsize_t dims[1] = {(hsize_t)(n > 0 ? n : 1) * per_row};
    hid_t ms = H5Screate_simple(1, dims, NULL);
    if (n == 0) H5Sselect_none(ms);
    return ms;
}

// Collective write of n packed rows (buf) to the given clip rows of d.
static int write_rows(EmbedStore *s, hid_t d, hid_t mtype, const int64_t *rows, int64_t n,
                      hsize_t per_row, const void *buf) {
    hid_t fs = select_rows(d, rows, n);
    hid_t ms = mem_rows(n, per_row);
    static const char dummy[64];
    herr_t rc = H5Dwrite(d, mtype, ms, fs, s->dxpl, n ? buf : dummy);
    H5Sclose(ms);
    H5Sclose(fs);
    return rc < 0 ? -1 : 0;
}

static hid_t open_fapl(Comm *comm) {
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    H5Pset_fapl_mpio(fapl, comm->world, MPI_INFO_NULL);
    return fapl;
}

static EmbedStore *store_new(Comm *comm, const char *path, const EmbedStoreSpec *spec) {
    EmbedStore *s = calloc(1, sizeof *s);
    if (!s) STORY_FATAL("out of memory");
    s->comm = comm;
    s->path = strdup(path);
    s->file = s->d_embeds = s->d_tokens = s->d_done = s->d_frames = s->d_fps = s->d_skip = -1;
    s->t_value = -1;
    s->n_clips = spec->n_clips;
    s->L = spec->L;
    s->D = spec->D;
    s->has_tokens = spec->tokens_layer >= 0;
    s->T = s->has_tokens ? spec->T : 0;
    s->Dt = s->has_tokens ? spec->Dt : 0;
    s->dtype = spec->dtype;
    s->t_value = spec->dtype == EMBED_F16 ? make_f16_type() : H5Tcopy(H5T_IEEE_F32LE);
    s->dxpl = H5Pcreate(H5P_DATASET_XFER);
    H5Pset_dxpl_mpio(s->dxpl, H5FD_MPIO_COLLECTIVE);
    s->done = calloc((size_t)spec->n_clips, 1);
    if (!s->done || !s->path) STORY_FATAL("out of memory");
    return s;
}

static void store_free(EmbedStore *s) {
    if (!s) return;
    hid_t ds[] = {s->d_embeds, s->d_tokens, s->d_done, s->d_frames, s->d_fps, s->d_skip};
    for (size_t i = 0; i < sizeof ds / sizeof ds[0]; i++)
        if (ds[i] >= 0) H5Dclose(ds[i]);
    if (s->t_value >= 0) H5Tclose(s->t_value);
    if (s->dxpl >= 0) H5Pclose(s->dxpl);
    if (s->file >= 0) H5Fclose(s->file);
    free(s->done);
    free(s->path);
    free(s);
}

static int spec_check(const char *path, const EmbedStoreSpec *s, char *err, size_t errlen) {
    const char *bad = NULL;
    if (s->n_clips < 1)
        bad = "n_clips must be >= 1 (the plan has no clips)";
    else if (s->L < 1)
        bad = "L must be >= 1";
    else if (s->D < 1)
        bad = "D must be >= 1";
    else if (s->clips_per_video < 1)
        bad = "clips_per_video must be >= 1";
    else if ((s->stride > 0) == (s->sample_fps > 0))
        bad = "exactly one of stride and sample_fps must be > 0";
    else if (s->tokens_layer >= 0 && (s->T < 1 || s->Dt < 1))
        bad = "tokens need T >= 1 and Dt >= 1";
    else if (!s->encoder_id || !s->encoder_hash || !s->plan_hash)
        bad = "encoder_id, encoder_hash and plan_hash are required";
    if (!bad) return 0;
    set_err(err, errlen, "%s: cannot make an embedding store: %s", path, bad);
    return -1;
}

// ---- create ------------------------------------------------------------------------------

// Rank 0's static per-clip metadata (video index, path, caption), collectively.
static int write_plan_meta(EmbedStore *s, hid_t g, const EmbedStorePlanMeta *meta) {
    Comm *c = s->comm;
    int64_t n = s->n_clips;
    // Fixed-length strings (parallel HDF5 1.10 cannot write variable-length data): the
    // widths are the longest path / caption, agreed on through rank 0.
    int64_t len[2] = {1, 1};
    if (c->rank == 0 && meta && meta->video_path)
        for (int64_t i = 0; i < n; i++) {
            size_t a = strlen(meta->video_path[i]),
                   b = meta->caption ? strlen(meta->caption[i]) : 0;
            if ((int64_t)a > len[0]) len[0] = (int64_t)a;
            if ((int64_t)b > len[1]) len[1] = (int64_t)b;
        }
    comm_broadcast(c, len, sizeof len, 0);
    hsize_t dims[1] = {(hsize_t)n}, chunk[1] = {(hsize_t)(n < META_CHUNK ? n : META_CHUNK)};
    hid_t tp = fixed_str_type((size_t)len[0]), tc = fixed_str_type((size_t)len[1]);
    hid_t d_vi = create_ds(g, "video_index", H5T_STD_I64LE, 1, dims, chunk);
    hid_t d_p = create_ds(g, "video_path", tp, 1, dims, chunk);
    hid_t d_c = create_ds(g, "caption", tc, 1, dims, chunk);
    int rc = d_vi < 0 || d_p < 0 || d_c < 0 ? -1 : 0;
    int have = c->rank == 0 && meta && meta->video_path;
    int64_t rows_n = have ? n : 0;
    int64_t *rows = NULL;
    char *bp = NULL, *bc = NULL;
    int64_t *vi = NULL;
    if (rows_n) {
        rows = mallocCheck((size_t)n * sizeof *rows);
        vi = mallocCheck((size_t)n * sizeof *vi);
        bp = calloc((size_t)n, (size_t)len[0]);
        bc = calloc((size_t)n, (size_t)len[1]);
        if (!bp || !bc) STORY_FATAL("out of memory");
        for (int64_t i = 0; i < n; i++) {
            rows[i] = i;
            vi[i] = meta->video_index ? meta->video_index[i] : -1;
            memcpy(bp + i * len[0], meta->video_path[i], strlen(meta->video_path[i]));
            if (meta->caption) memcpy(bc + i * len[1], meta->caption[i], strlen(meta->caption[i]));
        }
    }
    if (rc == 0) {
        rc |= write_rows(s, d_vi, H5T_NATIVE_INT64, rows, rows_n, 1, vi);
        rc |= write_rows(s, d_p, tp, rows, rows_n, 1, bp);
        rc |= write_rows(s, d_c, tc, rows, rows_n, 1, bc);
    }
    free(rows);
    free(vi);
    free(bp);
    free(bc);
    if (d_vi >= 0) H5Dclose(d_vi);
    if (d_p >= 0) H5Dclose(d_p);
    if (d_c >= 0) H5Dclose(d_c);
    H5Tclose(tp);
    H5Tclose(tc);
    return rc;
}

int embed_store_create(Comm *comm, const char *path, const EmbedStoreSpec *spec,
                       const EmbedStorePlanMeta *meta, EmbedStore **out, char *err, size_t errlen) {
    *out = NULL;
    if (spec_check(path, spec, err, errlen)) return -1;
    h5_quiet();
    // Every rank looks, so every rank takes the same branch.
    if (access(path, F_OK) == 0) {
        set_err(err, errlen,
                "%s: already exists; a new store needs a new path (or resume this one)", path);
        return -1;
    }
    size_t plen = strlen(path) + 16;
    char *tmp = mallocCheck(plen);
    snprintf(tmp, plen, "%s.partial", path);
    EmbedStore *s = store_new(comm, path, spec);
    char why[256];
    hid_t fapl = open_fapl(comm);
    s->file = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    H5Pclose(fapl);
    if (s->file < 0) {
        set_err(err, errlen, "%s: cannot create the store (%s): %s", tmp, h5_why(why),
                errno ? strerror(errno) : "is the folder there and writable?");
        store_free(s);
        free(tmp);
        return -1;
    }
    hsize_t n = (hsize_t)spec->n_clips;
    hsize_t d_e[3] = {n, (hsize_t)spec->L, (hsize_t)spec->D}, c_e[3] = {1, d_e[1], d_e[2]};
    hsize_t d_1[1] = {n}, c_1[1] = {n < META_CHUNK ? n : META_CHUNK};
    hsize_t d_f[2] = {n, (hsize_t)spec->L}, c_f[2] = {c_1[0], d_f[1]};
    int rc = write_spec_attrs(s->file, spec);
    s->d_embeds = create_ds(s->file, "embeds", s->t_value, 3, d_e, c_e);
    if (s->has_tokens) {
        hsize_t d_t[4] = {n, (hsize_t)spec->L, (hsize_t)spec->T, (hsize_t)spec->Dt};
        hsize_t c_t[4] = {1, d_t[1], d_t[2], d_t[3]};
        s->d_tokens = create_ds(s->file, "tokens", s->t_value, 4, d_t, c_t);
        if (s->d_tokens >= 0) rc |= h5_attr_put_i64(s->d_tokens, "layer", spec->tokens_layer);
        rc |= s->d_tokens < 0;
    }
    s->d_done = create_ds(s->file, "done", H5T_STD_U8LE, 1, d_1, c_1);
    hid_t g = H5Gcreate2(s->file, "clip_meta", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (g >= 0) {
        const int64_t unknown = -1;  // frames of clips never processed read as -1, not 0
        s->d_frames = create_ds_fill(g, "frames", H5T_STD_I64LE, 2, d_f, c_f, &unknown);
        s->d_fps = create_ds(g, "fps", H5T_IEEE_F64LE, 1, d_1, c_1);
        hid_t tr = fixed_str_type(EMBED_STORE_REASON_LEN);
        s->d_skip = create_ds(g, "skip_reason", tr, 1, d_1, c_1);
        H5Tclose(tr);
        if (s->d_frames >= 0 && s->d_skip >= 0 && s->d_fps >= 0) rc |= write_plan_meta(s, g, meta);
        H5Gclose(g);
    }
    rc |= g < 0 || s->d_embeds < 0 || s->d_done < 0 || s->d_frames < 0 || s->d_fps < 0 ||
          s->d_skip < 0;
    if (rc == 0 && H5Fflush(s->file, H5F_SCOPE_GLOBAL) < 0) rc = -1;
    if (rc) {
        set_err(err, errlen, "%s: cannot lay out the store: %s", tmp, h5_why(why));
        store_free(s);
        if (comm->rank == 0) unlink(tmp);
        free(tmp);
        return -1;
    }
    // Complete: give it its final name. The open handles follow the rename.
    comm_barrier(comm);
    int ren = 0;
    if (comm->rank == 0) ren = rename(tmp, path) == 0 ? 0 : errno;
    comm_broadcast(comm, &ren, sizeof ren, 0);
    if (ren) {
        set_err(err, errlen, "%s: cannot rename %s to it: %s", path, tmp, strerror(ren));
        store_free(s);
        if (comm->rank == 0) unlink(tmp);
        free(tmp);
        return -1;
    }
    free(tmp);
    *out = s;
    return 0;
}

// ---- open (resume) ---------------------------------------------------------------------------

// Appends "; NAME is X in the store but Y in the config" to msg.
static void mismatch(char *msg, size_t n, const char *name, const char *store, const char *want) {
    size_t used = strlen(msg);
    snprintf(msg + used, n - used, "%s%s is %s in the store but %s in the config", used ? "; " : "",
             name, store, want);
}

// label: how the message names the attribute (NULL: its name).
static void check_str(hid_t f, char *msg, size_t n, const char *name, const char *want,
                      const char *label) {
    char have[1024], a[1100], b[1100];
    if (h5_attr_get_str(f, name, have, sizeof have)) snprintf(have, sizeof have, "(missing)");
    if (!strcmp(have, want ? want : "")) return;
    snprintf(a, sizeof a, "'%s'", have);
    snprintf(b, sizeof b, "'%s'", want ? want : "");
    mismatch(msg, n, label ? label : name, a, b);
}

static void check_i64(hid_t f, char *msg, size_t n, const char *name, int64_t want) {
    int64_t have = 0;
    char a[32] = "(missing)", b[32];
    if (h5_attr_get_i64(f, name, &have) == 0) {
        if (have == want) return;
        snprintf(a, sizeof a, "%lld", (long long)have);
    }
    snprintf(b, sizeof b, "%lld", (long long)want);
    mismatch(msg, n, name, a, b);
}

static void check_f64(hid_t f, char *msg, size_t n, const char *name, double want) {
    double have = 0;
    char a[32] = "(missing)", b[32];
    if (h5_attr_get_f64(f, name, &have) == 0) {
        if (have == want) return;
        snprintf(a, sizeof a, "%g", have);
    }
    snprintf(b, sizeof b, "%g", want);
    mismatch(msg, n, name, a, b);
}

// Opens dataset `name` and checks its shape; on a mismatch appends to msg and returns -1.
static hid_t open_ds(hid_t f, const char *name, int rank, const hsize_t *want, char *msg,
                     size_t n) {
    hid_t d = H5Lexists(f, name, H5P_DEFAULT) > 0 ? H5Dopen2(f, name, H5P_DEFAULT) : -1;
    char have_s[128] = "(missing)", want_s[128] = "";
    int ok = 0;
    if (d >= 0) {
        hid_t sp = H5Dget_space(d);
        hsize_t dims[8] = {0};
        int nd = H5Sget_simple_extent_ndims(sp);
        H5Sget_simple_extent_dims(sp, dims, NULL);
        H5Sclose(sp);
        ok = nd == rank;
        for (int k = 0; ok && k < rank; k++) ok = dims[k] == want[k];
        size_t u = 0;
        for (int k = 0; k < nd && k < 8; k++)
            u += (size_t)snprintf(have_s + u, sizeof have_s - u, "%s%llu", k ? ", " : "[",
                                  (unsigned long long)dims[k]);
        snprintf(have_s + u, sizeof have_s - u, "]");
    }
    if (ok) return d;
    size_t u = 0;
    for (int k = 0; k < rank; k++)
        u += (size_t)snprintf(want_s + u, sizeof want_s - u, "%s%llu", k ? ", " : "[",
                              (unsigned long long)want[k]);
    snprintf(want_s + u, sizeof want_s - u, "]");
    char what[160];
    snprintf(what, sizeof what, "dataset %s's shape", name);
    mismatch(msg, n, what, have_s, want_s);
    if (d >= 0) H5Dclose(d);
    return -1;
}

int embed_store_open(Comm *comm, const char *path, const EmbedStoreSpec *expect, EmbedStore **out,
                     char *err, size_t errlen) {
    *out = NULL;
    if (spec_check(path, expect, err, errlen)) return -1;
    h5_quiet();
    if (access(path, R_OK | W_OK) != 0) {
        set_err(err, errlen, "%s: cannot open the store for resuming: %s", path, strerror(errno));
        return -1;
    }
    char why[256];
    if (H5Fis_hdf5(path) <= 0) {
        set_err(err, errlen,
                "%s: not an HDF5 file; expected an embedding store made by storyrun embed", path);
        return -1;
    }
    EmbedStore *s = store_new(comm, path, expect);
    hid_t fapl = open_fapl(comm);
    s->file = H5Fopen(path, H5F_ACC_RDWR, fapl);
    H5Pclose(fapl);
    if (s->file < 0) {
        set_err(err, errlen, "%s: cannot open the store: %s", path, h5_why(why));
        store_free(s);
        return -1;
    }
    char msg[4096] = "";
    int64_t fv = 0;
    if (h5_attr_get_i64(s->file, "format_version", &fv) != 0) {
        set_err(err, errlen,
                "%s: no format_version attribute; expected an embedding store made by "
                "storyrun embed",
                path);
        store_free(s);
        return -1;
    }
    check_i64(s->file, msg, sizeof msg, "format_version", EMBED_STORE_FORMAT_VERSION);
    check_str(s->file, msg, sizeof msg, "encoder_id", expect->encoder_id, NULL);
    check_str(s->file, msg, sizeof msg, "encoder_hash", expect->encoder_hash, NULL);
    check_i64(s->file, msg, sizeof msg, "L", expect->L);
    check_i64(s->file, msg, sizeof msg, "D", expect->D);
    check_i64(s->file, msg, sizeof msg, "stride", expect->stride);
    check_f64(s->file, msg, sizeof msg, "sample_fps", expect->sample_fps);
    check_i64(s->file, msg, sizeof msg, "clips_per_video", expect->clips_per_video);
    check_str(s->file, msg, sizeof msg, "dtype", embed_dtype_name(expect->dtype), NULL);
    check_i64(s->file, msg, sizeof msg, "tokens_layer", expect->tokens_layer);
    check_str(s->file, msg, sizeof msg, "plan_hash", expect->plan_hash,
              "plan_hash (the dataset listing and clip sampling)");
    if (!msg[0]) {
        hsize_t n = (hsize_t)expect->n_clips, L = (hsize_t)expect->L;
        hsize_t d_e[3] = {n, L, (hsize_t)expect->D}, d_1[1] = {n}, d_f[2] = {n, L};
        s->d_embeds = open_ds(s->file, "embeds", 3, d_e, msg, sizeof msg);
        if (s->has_tokens) {
            hsize_t d_t[4] = {n, L, (hsize_t)expect->T, (hsize_t)expect->Dt};
            s->d_tokens = open_ds(s->file, "tokens", 4, d_t, msg, sizeof msg);
        }
        s->d_done = open_ds(s->file, "done", 1, d_1, msg, sizeof msg);
        s->d_frames = open_ds(s->file, "clip_meta/frames", 2, d_f, msg, sizeof msg);
        s->d_fps = open_ds(s->file, "clip_meta/fps", 1, d_1, msg, sizeof msg);
        s->d_skip = open_ds(s->file, "clip_meta/skip_reason", 1, d_1, msg, sizeof msg);
    }
    if (msg[0]) {
        set_err(err, errlen,
                "%s: this store was made with other settings and cannot be resumed by this job: %s "
                "(write to a new output path, or run with the settings the store was made with)",
                path, msg);
        store_free(s);
        return -1;
    }
    if (H5Dread(s->d_done, H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, s->dxpl, s->done) < 0) {
        set_err(err, errlen, "%s: cannot read the done flags: %s", path, h5_why(why));
        store_free(s);
        return -1;
    }
    *out = s;
    return 0;
}

// ---- write -----------------------------------------------------------------------------------

// The `n` rows of src (row_len values each) whose keep[i] is set, packed, as the file's
// value type (f32 as is, or f16 rounded to nearest even).
static void *pack_values(const float *src, const uint8_t *keep, int64_t n, size_t row_len,
                         EmbedDtype dt, int64_t *kept) {
    size_t vs = dt == EMBED_F16 ? 2 : 4;
    int64_t k = 0;
    for (int64_t i = 0; i < n; i++) k += keep[i] != 0;
    char *buf = mallocCheck((size_t)(k ? k : 1) * row_len * vs);
    int64_t j = 0;
    for (int64_t i = 0; i < n; i++) {
        if (!keep[i]) continue;
        const float *row = src + (size_t)i * row_len;
        if (dt == EMBED_F16) {
            uint16_t *o = (uint16_t *)buf + (size_t)j * row_len;
            for (size_t e = 0; e < row_len; e++) o[e] = f32_to_f16(row[e]);
        } else {
            memcpy(buf + (size_t)j * row_len * 4, row, row_len * 4);
        }
        j++;
    }
    *kept = k;
    return buf;
}

int embed_store_write(EmbedStore *s, const EmbedStoreRows *r, char *err, size_t errlen) {
    int64_t n = r->n;
    for (int64_t i = 1; i < n; i++)
        STORY_CHECK(r->clip[i] > r->clip[i - 1], "rows must be strictly ascending");
    for (int64_t i = 0; i < n; i++)
        STORY_CHECK(r->clip[i] >= 0 && r->clip[i] < s->n_clips, "clip %lld outside the store",
                    (long long)r->clip[i]);
    STORY_CHECK(!s->has_tokens || n == 0 || r->tokens, "this store keeps tokens: rows need them");
    char why[256];
    int64_t *done_rows = mallocCheck((size_t)(n ? n : 1) * sizeof *done_rows);
    int64_t nd = 0;
    for (int64_t i = 0; i < n; i++)
        if (r->done[i]) done_rows[nd++] = r->clip[i];
    size_t row_e = (size_t)s->L * (size_t)s->D, row_t = (size_t)s->L * s->T * s->Dt;

    // Skip reasons as fixed-width strings (done rows get "").
    char *reasons = calloc((size_t)(n ? n : 1), EMBED_STORE_REASON_LEN);
    if (!reasons) STORY_FATAL("out of memory");
    for (int64_t i = 0; i < n; i++) {
        const char *why_skip = r->skip_reason ? r->skip_reason[i] : NULL;
        if (!why_skip || r->done[i]) continue;
        size_t len = strlen(why_skip);
        if (len > EMBED_STORE_REASON_LEN) len = EMBED_STORE_REASON_LEN;
        memcpy(reasons + (size_t)i * EMBED_STORE_REASON_LEN, why_skip, len);
    }
    hid_t tr = fixed_str_type(EMBED_STORE_REASON_LEN);
    int64_t kept = 0;
    void *emb = pack_values(r->embeds, r->done, n, row_e, s->dtype, &kept);
    int rc = 0;
    rc |= write_rows(s, s->d_embeds, s->t_value, done_rows, nd, row_e, emb);
    free(emb);
    if (s->has_tokens) {
        void *tok = pack_values(r->tokens, r->done, n, row_t, s->dtype, &kept);
        rc |= write_rows(s, s->d_tokens, s->t_value, done_rows, nd, row_t, tok);
        free(tok);
    }
    rc |= write_rows(s, s->d_frames, H5T_NATIVE_INT64, r->clip, n, (hsize_t)s->L, r->frames);
    rc |= write_rows(s, s->d_fps, H5T_NATIVE_DOUBLE, r->clip, n, 1, r->fps);
    rc |= write_rows(s, s->d_skip, tr, r->clip, n, 1, reasons);
    H5Tclose(tr);
    free(reasons);
    // Data first, on disk; then the flags that say it is there.
    if (rc == 0 && H5Fflush(s->file, H5F_SCOPE_GLOBAL) < 0) rc = -1;
    if (rc == 0) {
        uint8_t *ones = mallocCheck((size_t)(nd ? nd : 1));
        memset(ones, 1, (size_t)(nd ? nd : 1));
        rc |= write_rows(s, s->d_done, H5T_NATIVE_UINT8, done_rows, nd, 1, ones);
        free(ones);
        char now[32];
        utc_now(now, sizeof now);
        comm_broadcast(s->comm, now, sizeof now, 0);  // attribute values must agree on all ranks
        rc |= h5_attr_put_str(s->file, "updated", now);
    }
    if (rc == 0 && H5Fflush(s->file, H5F_SCOPE_GLOBAL) < 0) rc = -1;
    free(done_rows);
    if (rc) {
        set_err(err, errlen, "%s: writing %lld rows failed: %s", s->path, (long long)n,
                h5_why(why));
        return -1;
    }
    return 0;
}

const uint8_t *embed_store_done(const EmbedStore *s) { return s->done; }
int64_t embed_store_n_clips(const EmbedStore *s) { return s->n_clips; }

int embed_store_close(EmbedStore *s, char *err, size_t errlen) {
    if (!s) return 0;
    hid_t ds[] = {s->d_embeds, s->d_tokens, s->d_done, s->d_frames, s->d_fps, s->d_skip};
    for (size_t i = 0; i < sizeof ds / sizeof ds[0]; i++)
        if (ds[i] >= 0) H5Dclose(ds[i]);
    s->d_embeds = s->d_tokens = s->d_done = s->d_frames = s->d_fps = s->d_skip = -1;
    int rc = 0;
    char why[256];
    if (s->file >= 0 && H5Fclose(s->file) < 0) {
        set_err(err, errlen, "%s: closing the store failed: %s", s->path, h5_why(why));
        rc = -1;
    }
    s->file = -1;
    store_free(s);
    return rc;
}

// runner/store_transitions.c: the transitions store (see store_transitions.h and
// docs/stores.md). One process writes it (serial HDF5 under PATH.partial, then rename);
// readers open it read-only.
#define _POSIX_C_SOURCE 200809L
#include "runner/store_transitions.h"

#include <errno.h>
#include <fcntl.h>
#include <hdf5.h>
#include <inttypes.h>
#include <libgen.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "runner/check.h"
#include "runner/h5attr.h"
#include "runner/version.h"

static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_err(char *err, size_t errlen, const char *fmt, ...) {
    if (!err || !errlen) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

// HDF5's innermost message of the current error stack.
static herr_t walk_cb(unsigned n, const H5E_error2_t *e, void *data) {
    if (n == 0) snprintf((char *)data, 256, "%s", e->desc ? e->desc : "unknown HDF5 error");
    return 0;
}
static const char *h5_why(char *buf) {
    snprintf(buf, 256, "unknown HDF5 error");
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, walk_cb, buf);
    return buf;
}

// ---- attributes ----------------------------------------------------------------------------

// ---- writing -------------------------------------------------------------------------------

static hid_t fixed_str_type(size_t len) {
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, len ? len : 1);
    H5Tset_strpad(t, H5T_STR_NULLPAD);
    H5Tset_cset(t, H5T_CSET_UTF8);
    return t;
}

static int put_ds(hid_t loc, const char *name, hid_t ftype, hid_t mtype, int rank,
                  const hsize_t *dims, const void *data) {
    hid_t sp = H5Screate_simple(rank, dims, NULL);
    hid_t d = H5Dcreate2(loc, name, ftype, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    int rc = d < 0 || H5Dwrite(d, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0 ? -1 : 0;
    if (d >= 0) H5Dclose(d);
    H5Sclose(sp);
    return rc;
}

// n strings as one fixed-length dataset (width: the longest + 1, NUL-padded), the layout the
// embedding store uses too (h5py returns bytes).
static int put_strings(hid_t loc, const char *name, const char *const *s, int64_t n) {
    size_t w = 1;
    for (int64_t i = 0; i < n; i++) {
        size_t l = strlen(s[i] ? s[i] : "") + 1;
        if (l > w) w = l;
    }
    char *buf = calloc((size_t)n, w);
    if (!buf) STORY_FATAL("out of memory for %" PRId64 " strings of %zu bytes", n, w);
    for (int64_t i = 0; i < n; i++)
        if (s[i]) memcpy(buf + (size_t)i * w, s[i], strlen(s[i]));
    hid_t t = fixed_str_type(w);
    hsize_t d = (hsize_t)n;
    int rc = put_ds(loc, name, t, t, 1, &d, buf);
    H5Tclose(t);
    free(buf);
    return rc;
}

static int write_attrs(hid_t f, const TransitionsSpec *s) {
    char ver[128], now[32];
    snprintf(ver, sizeof ver, "%s (commit %s)", story_version(), story_git_commit());
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(now, sizeof now, "%Y-%m-%dT%H:%M:%SZ", &tm);
    const SmpConfig *p = &s->predictor;
    int rc = 0;
    rc |= h5_attr_put_i64(f, "format_version", TRANSITIONS_STORE_FORMAT_VERSION);
    rc |= h5_attr_put_str(f, "kind", TRANSITIONS_STORE_KIND);
    rc |= h5_attr_put_str(f, "storyrun_version", ver);
    rc |= h5_attr_put_i64(f, "n_pairs", s->n_pairs);
    rc |= h5_attr_put_i64(f, "L", s->L);
    rc |= h5_attr_put_i64(f, "D", s->D);
    rc |= h5_attr_put_str(f, "predictor_path", s->predictor_path);
    rc |= h5_attr_put_str(f, "predictor_sha256", s->predictor_sha256);
    rc |= h5_attr_put_i64(f, "predictor_layers", p->layers);
    rc |= h5_attr_put_i64(f, "predictor_width", p->width);
    rc |= h5_attr_put_i64(f, "predictor_heads", p->heads);
    rc |= h5_attr_put_i64(f, "predictor_mlp_ratio", p->mlp_ratio);
    rc |= h5_attr_put_i64(f, "predictor_embed_dim", p->embed_dim);
    rc |= h5_attr_put_i64(f, "predictor_frames", p->frames);
    rc |= h5_attr_put_f64(f, "predictor_ln_eps", (double)p->ln_eps);
    rc |= h5_attr_put_i64(f, "predictor_token_inputs", p->token_inputs);
    rc |= h5_attr_put_str(f, "encoder_id", s->encoder_id);
    rc |= h5_attr_put_str(f, "preprocess", s->preprocess);
    rc |= h5_attr_put_str(f, "source_kind", s->source_kind);
    rc |= h5_attr_put_str(f, "source", s->source);
    rc |= h5_attr_put_str(f, "created", now);
    return rc ? -1 : 0;
}

static int fill_file(hid_t f, const TransitionsSpec *s, const TransitionsRows *r) {
    hsize_t n = (hsize_t)s->n_pairs;
    hsize_t dp[3] = {n, (hsize_t)s->L, (hsize_t)s->D}, de[2] = {n, (hsize_t)s->D};
    int rc = write_attrs(f, s);
    rc |= put_ds(f, "pairs", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 3, dp, r->pairs);
    rc |= put_ds(f, "start_embed", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 2, de, r->start_embed);
    rc |= put_ds(f, "end_embed", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 2, de, r->end_embed);
    hid_t g = H5Gcreate2(f, "pair_meta", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (g < 0) return -1;
    rc |= put_strings(g, "start_path", r->start_path, s->n_pairs);
    rc |= put_strings(g, "end_path", r->end_path, s->n_pairs);
    rc |= put_ds(g, "start_frame", H5T_STD_I64LE, H5T_NATIVE_INT64, 1, &n, r->start_frame);
    rc |= put_ds(g, "end_frame", H5T_STD_I64LE, H5T_NATIVE_INT64, 1, &n, r->end_frame);
    rc |= put_strings(g, "prompt", r->prompt, s->n_pairs);
    H5Gclose(g);
    return rc ? -1 : 0;
}

// fsync of a file, then of the folder holding it (so a rename into it survives a crash).
static int fsync_path(const char *path) {
    int fd = open(path, O_RDONLY);
    if (fd < 0) return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}
static void fsync_dir_of(const char *path) {
    char *copy = strdup(path);
    if (!copy) return;
    int fd = open(dirname(copy), O_RDONLY);
    if (fd >= 0) {
        (void)fsync(fd);  // best effort: some file systems refuse fsync on folders
        close(fd);
    }
    free(copy);
}

int transitions_store_write(const char *path, const TransitionsSpec *spec,
                            const TransitionsRows *rows, char *err, size_t errlen) {
    STORY_CHECK(spec->n_pairs >= 1 && spec->L >= 2 && spec->D >= 1, "bad transitions spec");
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);  // this module reports its own messages
    size_t plen = strlen(path) + 16;
    char *tmp = mallocCheck(plen), why[256];
    snprintf(tmp, plen, "%s.partial", path);
    errno = 0;
    hid_t f = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (f < 0) {
        int e = errno;
        set_err(err, errlen, "%s: cannot create the store (%s): %s", tmp, h5_why(why),
                e ? strerror(e) : "is the folder there and writable?");
        free(tmp);
        return -1;
    }
    int rc = fill_file(f, spec, rows);
    if (rc) h5_why(why);
    if (H5Fclose(f) < 0 && !rc) rc = -1, h5_why(why);
    if (rc) {
        set_err(err, errlen, "%s: writing the store failed: %s", tmp, why);
    } else if (fsync_path(tmp) != 0) {
        set_err(err, errlen, "%s: cannot flush it to disk: %s", tmp, strerror(errno));
        rc = -1;
    } else if (rename(tmp, path) != 0) {
        set_err(err, errlen, "%s: cannot rename %s to it: %s", path, tmp, strerror(errno));
        rc = -1;
    }
    if (rc)
        unlink(tmp);
    else
        fsync_dir_of(path);
    free(tmp);
    return rc;
}

// ---- reading -------------------------------------------------------------------------------

struct TransitionsStore {
    char *path;
    hid_t file, d_pairs, d_start, d_end, d_sp, d_ep, d_sf, d_ef, d_prompt;
    TransitionsInfo info;
};

static void append(char *msg, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void append(char *msg, size_t n, const char *fmt, ...) {
    size_t u = strlen(msg);
    if (u + 4 >= n) return;
    if (u) u += (size_t)snprintf(msg + u, n - u, "; ");
    va_list ap;
    va_start(ap, fmt);
    if (u < n) vsnprintf(msg + u, n - u, fmt, ap);
    va_end(ap);
}

static void dims_str(int nd, const hsize_t *d, char *buf, size_t n) {
    size_t u = (size_t)snprintf(buf, n, "[");
    for (int k = 0; k < nd && u < n; k++)
        u += (size_t)snprintf(buf + u, n - u, "%s%llu", k ? ", " : "", (unsigned long long)d[k]);
    if (u < n) snprintf(buf + u, n - u, "]");
}

// Opens dataset `name`, which must have class `cls` and shape `want` (rank dims); on a
// problem appends it to msg and returns -1.
static hid_t open_ds(hid_t f, const char *name, H5T_class_t cls, int rank, const hsize_t *want,
                     char *msg, size_t n) {
    char ws[96], hs[96];
    dims_str(rank, want, ws, sizeof ws);
    const char *slash = strchr(name, '/');
    if (slash) {
        char grp[64];
        snprintf(grp, sizeof grp, "%.*s", (int)(slash - name), name);
        if (H5Lexists(f, grp, H5P_DEFAULT) <= 0) {
            append(msg, n, "dataset %s is missing (expected %s)", name, ws);
            return -1;
        }
    }
    hid_t d = H5Lexists(f, name, H5P_DEFAULT) > 0 ? H5Dopen2(f, name, H5P_DEFAULT) : -1;
    if (d < 0) {
        append(msg, n, "dataset %s is missing (expected %s)", name, ws);
        return -1;
    }
    hid_t sp = H5Dget_space(d), t = H5Dget_type(d);
    hsize_t dims[8] = {0};
    int nd = H5Sget_simple_extent_ndims(sp);
    if (nd > 0 && nd <= 8) H5Sget_simple_extent_dims(sp, dims, NULL);
    int ok = nd == rank;
    for (int k = 0; ok && k < rank; k++) ok = dims[k] == want[k];
    H5T_class_t have = H5Tget_class(t);
    H5Sclose(sp);
    H5Tclose(t);
    if (!ok) {
        dims_str(nd > 0 && nd <= 8 ? nd : 0, dims, hs, sizeof hs);
        append(msg, n, "dataset %s has shape %s; expected %s (from the attributes)", name, hs, ws);
    } else if (have != cls) {
        append(msg, n, "dataset %s holds %s; expected %s", name,
               have == H5T_STRING  ? "strings"
               : have == H5T_FLOAT ? "floats"
                                   : "other values",
               cls == H5T_STRING  ? "strings"
               : cls == H5T_FLOAT ? "floats"
                                  : "integers");
        ok = 0;
    }
    if (ok) return d;
    H5Dclose(d);
    return -1;
}

static void store_close_handles(TransitionsStore *s) {
    hid_t *ds[] = {&s->d_pairs, &s->d_start, &s->d_end, &s->d_sp,
                   &s->d_ep,    &s->d_sf,    &s->d_ef,  &s->d_prompt};
    for (size_t i = 0; i < sizeof ds / sizeof *ds; i++) {
        if (*ds[i] >= 0) H5Dclose(*ds[i]);
        *ds[i] = -1;
    }
    if (s->file >= 0) H5Fclose(s->file);
    s->file = -1;
}

void transitions_store_close(TransitionsStore *s) {
    if (!s) return;
    store_close_handles(s);
    free(s->path);
    free(s);
}

// Reads the identity attributes into s->info; problems go to msg.
static void read_attrs(TransitionsStore *s, char *msg, size_t n) {
    TransitionsInfo *in = &s->info;
    hid_t f = s->file;
    int64_t v;
    struct {
        const char *name;
        int64_t lo, hi;
        int64_t *dst64;
        int *dst;
    } ints[] = {{"n_pairs", 1, INT64_MAX, &in->n_pairs, NULL},
                {"L", 2, 4096, NULL, &in->L},
                {"D", 1, 65536, NULL, &in->D},
                {"predictor_layers", 1, 256, NULL, &in->predictor.layers},
                {"predictor_width", 1, 65536, NULL, &in->predictor.width},
                {"predictor_heads", 1, 4096, NULL, &in->predictor.heads},
                {"predictor_mlp_ratio", 1, 64, NULL, &in->predictor.mlp_ratio},
                {"predictor_embed_dim", 1, 65536, NULL, &in->predictor.embed_dim},
                {"predictor_frames", 2, 4096, NULL, &in->predictor.frames},
                {"predictor_token_inputs", 0, 1, NULL, &in->predictor.token_inputs}};
    for (size_t i = 0; i < sizeof ints / sizeof *ints; i++) {
        if (h5_attr_get_num(f, ints[i].name, H5T_NATIVE_INT64, &v)) {
            append(msg, n, "attribute %s is missing", ints[i].name);
            continue;
        }
        if (v < ints[i].lo || v > ints[i].hi) {
            append(msg, n, "attribute %s is %" PRId64 "; expected %" PRId64 "..%" PRId64,
                   ints[i].name, v, ints[i].lo, ints[i].hi);
            continue;
        }
        if (ints[i].dst64) *ints[i].dst64 = v;
        if (ints[i].dst) *ints[i].dst = (int)v;
    }
    double eps = 0;
    if (h5_attr_get_num(f, "predictor_ln_eps", H5T_NATIVE_DOUBLE, &eps))
        append(msg, n, "attribute predictor_ln_eps is missing");
    in->predictor.ln_eps = (float)eps;
    struct {
        const char *name;
        char *dst;
        size_t len;
    } strs[] = {{"predictor_path", in->predictor_path, sizeof in->predictor_path},
                {"predictor_sha256", in->predictor_sha256, sizeof in->predictor_sha256},
                {"encoder_id", in->encoder_id, sizeof in->encoder_id},
                {"source_kind", in->source_kind, sizeof in->source_kind},
                {"source", in->source, sizeof in->source},
                {"storyrun_version", in->storyrun_version, sizeof in->storyrun_version}};
    for (size_t i = 0; i < sizeof strs / sizeof *strs; i++)
        if (h5_attr_get_str(f, strs[i].name, strs[i].dst, strs[i].len))
            append(msg, n, "attribute %s is missing", strs[i].name);
    if (!msg[0] && (in->predictor.frames != in->L || in->predictor.embed_dim != in->D))
        append(msg, n,
               "the predictor's frames/embed_dim (%d, %d) disagree with the store's L/D (%d, %d)",
               in->predictor.frames, in->predictor.embed_dim, in->L, in->D);
    if (!msg[0] && strlen(in->predictor_sha256) != 64)
        append(msg, n, "attribute predictor_sha256 is '%s'; expected 64 hex digits",
               in->predictor_sha256);
}

int transitions_store_open(const char *path, const TransitionsExpect *expect,
                           TransitionsStore **out, char *err, size_t errlen) {
    *out = NULL;
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    if (access(path, R_OK) != 0) {
        set_err(err, errlen, "%s: cannot read the transitions store: %s", path, strerror(errno));
        return -1;
    }
    if (H5Fis_hdf5(path) <= 0) {
        set_err(err, errlen,
                "%s: not an HDF5 file (damaged or cut short?); expected a transitions store "
                "written by storyrun predict",
                path);
        return -1;
    }
    TransitionsStore *s = calloc(1, sizeof *s);
    if (!s) STORY_FATAL("out of memory");
    s->path = strdup(path);
    s->d_pairs = s->d_start = s->d_end = s->d_sp = s->d_ep = s->d_sf = s->d_ef = s->d_prompt = -1;
    char why[256], msg[4096] = "", kind[64] = "";
    s->file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (s->file < 0) {
        set_err(err, errlen, "%s: HDF5 cannot open it (damaged or cut short?): %s", path,
                h5_why(why));
        transitions_store_close(s);
        return -1;
    }
    int64_t fv = 0;
    if (h5_attr_get_str(s->file, "kind", kind, sizeof kind) || strcmp(kind, TRANSITIONS_STORE_KIND) ||
        h5_attr_get_num(s->file, "format_version", H5T_NATIVE_INT64, &fv)) {
        set_err(err, errlen,
                "%s: not a transitions store (root attribute kind is %s%s%s, expected '%s' with "
                "a format_version); expected a store written by storyrun predict",
                path, kind[0] ? "'" : "", kind[0] ? kind : "missing", kind[0] ? "'" : "",
                TRANSITIONS_STORE_KIND);
        transitions_store_close(s);
        return -1;
    }
    s->info.format_version = (int)fv;
    if (fv != TRANSITIONS_STORE_FORMAT_VERSION) {
        set_err(err, errlen,
                "%s: transitions store format_version %" PRId64
                "; this storyrun reads format %d (%s)",
                path, fv, TRANSITIONS_STORE_FORMAT_VERSION,
                fv > TRANSITIONS_STORE_FORMAT_VERSION ? "made by a newer storyrun"
                                                      : "run storyrun predict again");
        transitions_store_close(s);
        return -1;
    }
    read_attrs(s, msg, sizeof msg);
    if (!msg[0]) {
        const TransitionsInfo *in = &s->info;
        hsize_t n = (hsize_t)in->n_pairs, dp[3] = {n, (hsize_t)in->L, (hsize_t)in->D},
                de[2] = {n, (hsize_t)in->D};
        s->d_pairs = open_ds(s->file, "pairs", H5T_FLOAT, 3, dp, msg, sizeof msg);
        s->d_start = open_ds(s->file, "start_embed", H5T_FLOAT, 2, de, msg, sizeof msg);
        s->d_end = open_ds(s->file, "end_embed", H5T_FLOAT, 2, de, msg, sizeof msg);
        s->d_sp = open_ds(s->file, "pair_meta/start_path", H5T_STRING, 1, &n, msg, sizeof msg);
        s->d_ep = open_ds(s->file, "pair_meta/end_path", H5T_STRING, 1, &n, msg, sizeof msg);
        s->d_sf = open_ds(s->file, "pair_meta/start_frame", H5T_INTEGER, 1, &n, msg, sizeof msg);
        s->d_ef = open_ds(s->file, "pair_meta/end_frame", H5T_INTEGER, 1, &n, msg, sizeof msg);
        s->d_prompt = open_ds(s->file, "pair_meta/prompt", H5T_STRING, 1, &n, msg, sizeof msg);
    }
    if (msg[0]) {
        set_err(err, errlen, "%s: damaged transitions store: %s", path, msg);
        transitions_store_close(s);
        return -1;
    }
    const TransitionsInfo *in = &s->info;
    if (expect) {
        if (expect->L > 0 && expect->L != in->L)
            append(msg, sizeof msg, "L is %d in the store but %d is needed", in->L, expect->L);
        if (expect->D > 0 && expect->D != in->D)
            append(msg, sizeof msg,
                   "D (the embedding width) is %d in the store but %d is needed (another CLIP "
                   "image encoder?)",
                   in->D, expect->D);
        if (expect->predictor_sha256 && strcmp(expect->predictor_sha256, in->predictor_sha256))
            append(msg, sizeof msg, "it was made with predictor sha256 %s, not %s",
                   in->predictor_sha256, expect->predictor_sha256);
    }
    if (msg[0]) {
        set_err(err, errlen, "%s: this transitions store does not fit: %s", path, msg);
        transitions_store_close(s);
        return -1;
    }
    *out = s;
    return 0;
}

const TransitionsInfo *transitions_store_info(const TransitionsStore *s) { return &s->info; }

// Row i of a dataset whose rows hold `per_row` values of memory type mt.
static int read_row(hid_t d, int64_t i, hid_t mt, hsize_t per_row, void *buf) {
    hid_t fs = H5Dget_space(d);
    int nd = H5Sget_simple_extent_ndims(fs);
    hsize_t dims[8] = {0}, start[8] = {0}, count[8];
    H5Sget_simple_extent_dims(fs, dims, NULL);
    start[0] = (hsize_t)i;
    count[0] = 1;
    for (int k = 1; k < nd; k++) count[k] = dims[k];
    H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, count, NULL);
    hid_t ms = H5Screate_simple(1, &per_row, NULL);
    int rc = H5Dread(d, mt, ms, fs, H5P_DEFAULT, buf) < 0 ? -1 : 0;
    H5Sclose(ms);
    H5Sclose(fs);
    return rc;
}

// String i of a 1-D string dataset (fixed or variable length) into buf.
static int read_string(hid_t d, int64_t i, char *buf, size_t n) {
    hid_t ft = H5Dget_type(d);
    int rc = -1;
    buf[0] = 0;
    if (H5Tis_variable_str(ft) > 0) {
        hid_t t = H5Tcopy(H5T_C_S1);
        H5Tset_size(t, H5T_VARIABLE);
        H5Tset_cset(t, H5Tget_cset(ft));
        char *v = NULL;
        if (read_row(d, i, t, 1, &v) == 0) {
            snprintf(buf, n, "%s", v ? v : "");
            hid_t ms = H5Screate(H5S_SCALAR);
            H5Dvlen_reclaim(t, ms, H5P_DEFAULT, &v);
            H5Sclose(ms);
            rc = 0;
        }
        H5Tclose(t);
    } else {
        size_t w = H5Tget_size(ft);
        char *tmp = calloc(1, w + 1);
        if (tmp && read_row(d, i, ft, 1, tmp) == 0) {
            snprintf(buf, n, "%s", tmp);
            rc = 0;
        }
        free(tmp);
    }
    H5Tclose(ft);
    return rc;
}

static int check_finite(const TransitionsStore *s, int64_t i, const char *name, const float *v,
                        size_t n, char *err, size_t errlen) {
    for (size_t k = 0; k < n; k++)
        if (!isfinite(v[k])) {
            set_err(err, errlen,
                    "%s: pair %" PRId64
                    ": %s holds a non-finite value (%g at flat index %zu); "
                    "the store is damaged: run storyrun predict again",
                    s->path, i, name, (double)v[k], k);
            return -1;
        }
    return 0;
}

int transitions_store_read_pair(TransitionsStore *s, int64_t i, float *P, float *start, float *end,
                                TransitionsPairMeta *meta, char *err, size_t errlen) {
    const TransitionsInfo *in = &s->info;
    if (i < 0 || i >= in->n_pairs) {
        set_err(err, errlen, "%s: pair %" PRId64 " does not exist (the store has %" PRId64 ")",
                s->path, i, in->n_pairs);
        return -1;
    }
    char why[256];
    hsize_t LD = (hsize_t)in->L * (hsize_t)in->D, D = (hsize_t)in->D;
    int rc = 0;
    if (P) rc |= read_row(s->d_pairs, i, H5T_NATIVE_FLOAT, LD, P);
    if (start) rc |= read_row(s->d_start, i, H5T_NATIVE_FLOAT, D, start);
    if (end) rc |= read_row(s->d_end, i, H5T_NATIVE_FLOAT, D, end);
    if (meta) {
        rc |= read_string(s->d_sp, i, meta->start_path, sizeof meta->start_path);
        rc |= read_string(s->d_ep, i, meta->end_path, sizeof meta->end_path);
        rc |= read_string(s->d_prompt, i, meta->prompt, sizeof meta->prompt);
        rc |= read_row(s->d_sf, i, H5T_NATIVE_INT64, 1, &meta->start_frame);
        rc |= read_row(s->d_ef, i, H5T_NATIVE_INT64, 1, &meta->end_frame);
    }
    if (rc) {
        set_err(err, errlen, "%s: pair %" PRId64 " cannot be read (damaged file?): %s", s->path, i,
                h5_why(why));
        return -1;
    }
    if ((P && check_finite(s, i, "pairs", P, LD, err, errlen)) ||
        (start && check_finite(s, i, "start_embed", start, D, err, errlen)) ||
        (end && check_finite(s, i, "end_embed", end, D, err, errlen)))
        return -1;
    return 0;
}

// jobs/store.c: `storyrun store info STORE` and `storyrun store verify STORE` for the HDF5
// stores storyrun writes (docs/stores.md). One process, serial HDF5, read-only.
//
// info:   file size, format, clip count and done fraction (embedding stores), every root
//         attribute, every dataset with its shape, type and chunking, skipped clips.
// verify: an embedding store's shapes against its attributes, the done rows' values (no
//         NaN/Inf; an all-zero embedding is suspicious: an encoder never outputs exact
//         zeros), the done flags (0 or 1), the done rows' metadata (frames ascending and
//         >= 0, fps > 0, no skip reason). Rows not done are not checked: a resumed job
//         rewrites them. A transitions store (root attribute kind = "transitions", from
//         storyrun predict) gets the transitions reader's checks and every pair read back.
//         Exit 0 when clean, 1 with the list of problems, 2 when the file cannot be read as
//         a store at all.
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

#include "jobs/jobs.h"
#include "runner/check.h"
#include "runner/store_embed.h"
#include "runner/store_transitions.h"

// Problems listed per kind before "... and N more".
#define VERIFY_LIST_MAX 20

static void usage(FILE *f) {
    fprintf(
        f,
        "usage: storyrun store info STORE     size, clips, done fraction, attributes, datasets\n"
        "       storyrun store verify STORE   check shapes, values and done flags; exit 1 on\n"
        "                                     problems, with the list\n");
}

static void human_size(double b, char *buf, size_t n) {
    const char *u[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    int k = 0;
    while (b >= 1024 && k < 4) b /= 1024, k++;
    snprintf(buf, n, k ? "%.1f %s" : "%.0f %s", b, u[k]);
}

static int64_t attr_i64(hid_t loc, const char *name, int64_t dflt) {
    if (H5Aexists(loc, name) <= 0) return dflt;
    int64_t v = dflt;
    hid_t a = H5Aopen(loc, name, H5P_DEFAULT);
    if (H5Aread(a, H5T_NATIVE_INT64, &v) < 0) v = dflt;
    H5Aclose(a);
    return v;
}

// Prints a scalar or small 1-D attribute's value (numbers and strings).
static herr_t print_attr(hid_t loc, const char *name, const H5A_info_t *info, void *data) {
    (void)info;
    FILE *f = data;
    hid_t a = H5Aopen(loc, name, H5P_DEFAULT);
    hid_t t = H5Aget_type(a), sp = H5Aget_space(a);
    hssize_t n = H5Sget_simple_extent_npoints(sp);
    fprintf(f, "  %-18s ", name);
    H5T_class_t cls = H5Tget_class(t);
    if (cls == H5T_STRING && n == 1) {
        if (H5Tis_variable_str(t) > 0) {
            char *v = NULL;
            hid_t mt = H5Tcopy(H5T_C_S1);
            H5Tset_size(mt, H5T_VARIABLE);
            H5Tset_cset(mt, H5Tget_cset(t));
            if (H5Aread(a, mt, &v) >= 0) fprintf(f, "%s", v ? v : "");
            H5Dvlen_reclaim(mt, sp, H5P_DEFAULT, &v);
            H5Tclose(mt);
        } else {
            size_t sz = H5Tget_size(t);
            char *v = calloc(1, sz + 1);
            if (v && H5Aread(a, t, v) >= 0) fprintf(f, "%s", v);
            free(v);
        }
    } else if ((cls == H5T_INTEGER || cls == H5T_FLOAT) && n >= 1 && n <= 16) {
        double v[16];
        H5Aread(a, H5T_NATIVE_DOUBLE, v);
        for (hssize_t i = 0; i < n; i++) fprintf(f, "%s%.10g", i ? ", " : "", v[i]);
    } else {
        fprintf(f, "(%lld values)", (long long)n);
    }
    fprintf(f, "\n");
    H5Sclose(sp);
    H5Tclose(t);
    H5Aclose(a);
    return 0;
}

static const char *type_name(hid_t t, char *buf, size_t n) {
    size_t sz = H5Tget_size(t);
    switch (H5Tget_class(t)) {
    case H5T_FLOAT: snprintf(buf, n, "f%zu", sz * 8); break;
    case H5T_INTEGER:
        snprintf(buf, n, "%s%zu", H5Tget_sign(t) == H5T_SGN_NONE ? "u" : "i", sz * 8);
        break;
    case H5T_STRING:
        if (H5Tis_variable_str(t) > 0)
            snprintf(buf, n, "string");
        else
            snprintf(buf, n, "string[%zu]", sz);
        break;
    case H5T_COMPOUND: snprintf(buf, n, "compound"); break;
    default: snprintf(buf, n, "other"); break;
    }
    return buf;
}

static void dims_str(int nd, const hsize_t *d, char *buf, size_t n) {
    size_t u = (size_t)snprintf(buf, n, "[");
    for (int k = 0; k < nd && u < n; k++)
        u += (size_t)snprintf(buf + u, n - u, "%s%llu", k ? ", " : "", (unsigned long long)d[k]);
    if (u < n) snprintf(buf + u, n - u, "]");
}

static herr_t print_dataset(hid_t g, const char *name, const H5L_info_t *info, void *data) {
    (void)info;
    FILE *f = data;
    hid_t o = H5Oopen(g, name, H5P_DEFAULT);
    if (o < 0) return 0;
    if (H5Iget_type(o) != H5I_DATASET) {
        H5Oclose(o);
        return 0;
    }
    hid_t sp = H5Dget_space(o), t = H5Dget_type(o), pl = H5Dget_create_plist(o);
    hsize_t d[8] = {0}, c[8] = {0};
    int nd = H5Sget_simple_extent_ndims(sp);
    H5Sget_simple_extent_dims(sp, d, NULL);
    char shape[128], chunk[128] = "", tn[32], stored[32];
    dims_str(nd, d, shape, sizeof shape);
    if (H5Pget_layout(pl) == H5D_CHUNKED) {
        int cn = H5Pget_chunk(pl, 8, c);
        char cs[96];
        dims_str(cn, c, cs, sizeof cs);
        snprintf(chunk, sizeof chunk, "chunks %s", cs);
        for (int k = 0; k < H5Pget_nfilters(pl); k++) {
            unsigned flags, cd[8];
            size_t ncd = 8;
            char fname[32];
            H5Z_filter_t fid =
                H5Pget_filter2(pl, (unsigned)k, &flags, &ncd, cd, sizeof fname, fname, NULL);
            size_t u = strlen(chunk);
            if (fid == H5Z_FILTER_DEFLATE)
                snprintf(chunk + u, sizeof chunk - u, " deflate %u", ncd ? cd[0] : 0);
            else if (fid == H5Z_FILTER_SHUFFLE)
                snprintf(chunk + u, sizeof chunk - u, " shuffle");
            else
                snprintf(chunk + u, sizeof chunk - u, " filter %d", (int)fid);
        }
    }
    human_size((double)H5Dget_storage_size(o), stored, sizeof stored);
    fprintf(f, "  %-22s %-18s %-12s %s, %s on disk\n", name, shape, type_name(t, tn, sizeof tn),
            chunk, stored);
    H5Pclose(pl);
    H5Tclose(t);
    H5Sclose(sp);
    H5Oclose(o);
    return 0;
}

static hid_t open_store(const char *path) {
    struct stat st;
    if (stat(path, &st) != 0) {
        fprintf(stderr, "storyrun store: %s: %s\n", path, strerror(errno));
        return -1;
    }
    if (H5Fis_hdf5(path) <= 0) {
        fprintf(stderr,
                "storyrun store: %s: not an HDF5 file; expected a store written by storyrun\n",
                path);
        return -1;
    }
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0)
        fprintf(stderr, "storyrun store: %s: HDF5 cannot open it (damaged or incomplete?)\n", path);
    return f;
}

// Reads a 1-D dataset of n entries as the given memory type; -1 when missing or shaped
// differently.
static int read_1d(hid_t f, const char *name, hid_t mtype, int64_t n, void *buf) {
    if (H5Lexists(f, name, H5P_DEFAULT) <= 0) return -1;
    hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
    hid_t sp = H5Dget_space(d);
    hsize_t dims[8] = {0};
    int nd = H5Sget_simple_extent_ndims(sp);
    H5Sget_simple_extent_dims(sp, dims, NULL);
    int rc = nd == 1 && (int64_t)dims[0] == n &&
                     H5Dread(d, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) >= 0
                 ? 0
                 : -1;
    H5Sclose(sp);
    H5Dclose(d);
    return rc;
}

// Fixed-length strings of a 1-D dataset: *width bytes each (n * width, not terminated).
static char *read_strings(hid_t f, const char *name, int64_t n, size_t *width) {
    if (H5Lexists(f, "clip_meta", H5P_DEFAULT) <= 0 || H5Lexists(f, name, H5P_DEFAULT) <= 0)
        return NULL;
    hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
    hid_t t = H5Dget_type(d);
    char *buf = NULL;
    if (H5Tget_class(t) == H5T_STRING && H5Tis_variable_str(t) <= 0) {
        *width = H5Tget_size(t);
        buf = calloc((size_t)(n ? n : 1), *width);
        if (buf && read_1d(f, name, t, n, buf) != 0) {
            free(buf);
            buf = NULL;
        }
    }
    H5Tclose(t);
    H5Dclose(d);
    return buf;
}

static int64_t n_rows(hid_t f, const char *name) {
    if (H5Lexists(f, name, H5P_DEFAULT) <= 0) return -1;
    hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
    hid_t sp = H5Dget_space(d);
    hsize_t dims[8] = {0};
    H5Sget_simple_extent_dims(sp, dims, NULL);
    H5Sclose(sp);
    H5Dclose(d);
    return (int64_t)dims[0];
}

static int store_info(const char *path) {
    hid_t f = open_store(path);
    if (f < 0) return 2;
    struct stat st;
    stat(path, &st);
    char size[32];
    human_size((double)st.st_size, size, sizeof size);
    printf("%s: %s\n", path, size);
    int64_t n = n_rows(f, "done");
    if (n >= 0) {
        uint8_t *done = calloc((size_t)(n ? n : 1), 1);
        if (!done) STORY_FATAL("out of memory");
        int64_t nd = 0, ns = 0;
        size_t w = 0;
        char *why = read_strings(f, "clip_meta/skip_reason", n, &w);
        char *vp = NULL;
        size_t vw = 0;
        if (read_1d(f, "done", H5T_NATIVE_UINT8, n, done) == 0) {
            for (int64_t i = 0; i < n; i++) {
                nd += done[i] != 0;
                ns += !done[i] && why && why[(size_t)i * w];
            }
            printf("clips: %" PRId64 ", done %" PRId64 " (%.1f%%), skipped %" PRId64
                   ", pending %" PRId64 "\n",
                   n, nd, n ? 100.0 * (double)nd / (double)n : 0.0, ns, n - nd - ns);
        }
        printf("attributes:\n");
        H5Aiterate2(f, H5_INDEX_NAME, H5_ITER_INC, NULL, print_attr, stdout);
        printf("datasets:\n");
        H5Lvisit(f, H5_INDEX_NAME, H5_ITER_INC, print_dataset, stdout);
        if (ns) {
            vp = read_strings(f, "clip_meta/video_path", n, &vw);
            printf("skipped clips (not done, with the reason; a resumed job tries them again):\n");
            for (int64_t i = 0; i < n; i++) {
                if (done[i] || !why || !why[(size_t)i * w]) continue;
                printf("  clip %" PRId64 " %.*s: %.*s\n", i,
                       vp ? (int)strnlen(vp + (size_t)i * vw, vw) : 0,
                       vp ? vp + (size_t)i * vw : "", (int)strnlen(why + (size_t)i * w, w),
                       why + (size_t)i * w);
            }
        }
        free(vp);
        free(why);
        free(done);
    } else {
        printf("attributes:\n");
        H5Aiterate2(f, H5_INDEX_NAME, H5_ITER_INC, NULL, print_attr, stdout);
        printf("datasets:\n");
        H5Lvisit(f, H5_INDEX_NAME, H5_ITER_INC, print_dataset, stdout);
    }
    H5Fclose(f);
    return 0;
}

// ---- verify --------------------------------------------------------------------------------

typedef struct {
    const char *path;
    int problems;
    int listed[8];  // per kind
} Verify;

enum { K_SHAPE, K_NAN, K_ZERO, K_FLAG, K_META, K_TOKEN };

#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
static void
problem(Verify *v, int kind, const char *fmt, ...) {
    v->problems++;
    if (v->listed[kind]++ >= VERIFY_LIST_MAX) return;
    va_list ap;
    va_start(ap, fmt);
    printf("  %s: ", v->path);
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
}

// Shape of dataset `name` must be want (nd dims); reports and returns -1 otherwise.
static int want_shape(Verify *v, hid_t f, const char *name, int nd, const hsize_t *want) {
    char ws[128], hs[128] = "missing";
    dims_str(nd, want, ws, sizeof ws);
    if (H5Lexists(f, "clip_meta", H5P_DEFAULT) <= 0 && !strncmp(name, "clip_meta/", 10)) {
        problem(v, K_SHAPE, "dataset %s is missing; expected %s", name, ws);
        return -1;
    }
    if (H5Lexists(f, name, H5P_DEFAULT) <= 0) {
        problem(v, K_SHAPE, "dataset %s is missing; expected %s", name, ws);
        return -1;
    }
    hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
    hid_t sp = H5Dget_space(d);
    hsize_t dims[8] = {0};
    int hn = H5Sget_simple_extent_ndims(sp);
    H5Sget_simple_extent_dims(sp, dims, NULL);
    H5Sclose(sp);
    H5Dclose(d);
    int ok = hn == nd;
    for (int k = 0; ok && k < nd; k++) ok = dims[k] == want[k];
    if (ok) return 0;
    dims_str(hn, dims, hs, sizeof hs);
    problem(v, K_SHAPE, "dataset %s has shape %s; expected %s (from the attributes)", name, hs, ws);
    return -1;
}

// Checks the done rows of a [n, row] float dataset, reading `block` clips at a time.
static void check_values(Verify *v, hid_t f, const char *name, int64_t n, size_t row,
                         const uint8_t *done, int zero_is_bad) {
    hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
    hid_t fs = H5Dget_space(d);
    int nd = H5Sget_simple_extent_ndims(fs);
    hsize_t dims[8];
    H5Sget_simple_extent_dims(fs, dims, NULL);
    int64_t block = (int64_t)((64u << 20) / (row * sizeof(float) + 1));
    if (block < 1) block = 1;
    float *buf = mallocCheck((size_t)block * row * sizeof(float));
    for (int64_t c0 = 0; c0 < n; c0 += block) {
        int64_t cn = n - c0 < block ? n - c0 : block, any = 0;
        for (int64_t i = 0; i < cn; i++) any += done[c0 + i] != 0;
        if (!any) continue;
        hsize_t start[8] = {(hsize_t)c0}, count[8];
        count[0] = (hsize_t)cn;
        for (int k = 1; k < nd; k++) count[k] = dims[k];
        H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, count, NULL);
        hsize_t m = (hsize_t)cn * row;
        hid_t ms = H5Screate_simple(1, &m, NULL);
        if (H5Dread(d, H5T_NATIVE_FLOAT, ms, fs, H5P_DEFAULT, buf) < 0) {
            problem(v, K_SHAPE,
                    "%s: rows %" PRId64 "..%" PRId64 " cannot be read (damaged chunks?)", name, c0,
                    c0 + cn - 1);
            H5Sclose(ms);
            continue;
        }
        H5Sclose(ms);
        for (int64_t i = 0; i < cn; i++) {
            if (!done[c0 + i]) continue;
            const float *r = buf + (size_t)i * row;
            size_t bad = 0, first = 0, nonzero = 0;
            for (size_t e = 0; e < row; e++) {
                if (!isfinite(r[e]) && bad++ == 0) first = e;
                nonzero += r[e] != 0.0f;
            }
            if (bad) {
                char at[96];  // first bad value's index within the row, e.g. [1, 2]
                size_t rest = first, u = 0, idx[8] = {0};
                for (int k = nd - 1; k >= 1; k--) idx[k] = rest % dims[k], rest /= dims[k];
                for (int k = 1; k < nd; k++)
                    u += (size_t)snprintf(at + u, sizeof at - u, "%s%zu", k > 1 ? ", " : "[",
                                          idx[k]);
                snprintf(at + u, sizeof at - u, "]");
                problem(v, K_NAN,
                        "clip %" PRId64
                        " is done but %s has %zu NaN/Inf value(s) (first: %g "
                        "at %s)",
                        c0 + i, name, bad, (double)r[first], at);
            }
            if (zero_is_bad && nonzero == 0)
                problem(v, K_ZERO,
                        "clip %" PRId64
                        " is done but its %s row is all zeros (suspicious: "
                        "was it ever written?)",
                        c0 + i, name);
        }
    }
    free(buf);
    H5Sclose(fs);
    H5Dclose(d);
}

// A transitions store (storyrun predict): the reader's checks (attributes, shapes) and every
// pair read back (finite values).
static int verify_transitions(const char *path) {
    static char err[8192];
    TransitionsStore *s;
    if (transitions_store_open(path, NULL, &s, err, sizeof err)) {
        printf("  %s\n%s: 1 problem(s)\n", err, path);
        return 1;
    }
    const TransitionsInfo *in = transitions_store_info(s);
    size_t LD = (size_t)in->L * (size_t)in->D;
    float *P = mallocCheck(LD * sizeof(float)), *ks = mallocCheck((size_t)in->D * sizeof(float)),
          *ke = mallocCheck((size_t)in->D * sizeof(float));
    int problems = 0;
    for (int64_t i = 0; i < in->n_pairs; i++)
        if (transitions_store_read_pair(s, i, P, ks, ke, NULL, err, sizeof err) &&
            problems++ < VERIFY_LIST_MAX)
            printf("  %s\n", err);
    free(P), free(ks), free(ke);
    transitions_store_close(s);
    if (problems)
        printf("%s: %d problem(s) in %" PRId64 " pairs\n", path, problems, in->n_pairs);
    else
        printf("%s: ok: transitions store, %" PRId64 " pairs of %d x %d, all checked\n", path,
               in->n_pairs, in->L, in->D);
    return problems ? 1 : 0;
}

static int store_verify(const char *path) {
    hid_t f = open_store(path);
    if (f < 0) return 2;
    if (H5Aexists(f, "kind") > 0) {  // only transitions stores have a `kind` attribute
        H5Fclose(f);
        return verify_transitions(path);
    }
    Verify v = {path, 0, {0}};
    int64_t fv = attr_i64(f, "format_version", -1), L = attr_i64(f, "L", -1),
            D = attr_i64(f, "D", -1);
    int64_t tl = attr_i64(f, "tokens_layer", -1), n = n_rows(f, "done");
    if (fv < 0 || n < 0 || L < 1 || D < 1) {
        fprintf(stderr,
                "storyrun store verify: %s: not an embedding store (no format_version, L, D "
                "attributes or no done dataset); expected a store written by storyrun embed\n",
                path);
        H5Fclose(f);
        return 2;
    }
    printf("%s: embedding store format %" PRId64 ", %" PRId64 " clips, L %" PRId64 ", D %" PRId64
           "\n",
           path, fv, n, L, D);
    if (fv > EMBED_STORE_FORMAT_VERSION)
        problem(&v, K_SHAPE, "format_version %" PRId64 " is newer than this storyrun reads (%d)",
                fv, EMBED_STORE_FORMAT_VERSION);
    hsize_t hn = (hsize_t)n, hl = (hsize_t)L;
    hsize_t s_e[3] = {hn, hl, (hsize_t)D}, s_1[1] = {hn}, s_f[2] = {hn, hl};
    int ok_e = want_shape(&v, f, "embeds", 3, s_e) == 0;
    int ok_f = want_shape(&v, f, "clip_meta/frames", 2, s_f) == 0;
    int ok_fps = want_shape(&v, f, "clip_meta/fps", 1, s_1) == 0;
    int ok_r = want_shape(&v, f, "clip_meta/skip_reason", 1, s_1) == 0;
    want_shape(&v, f, "clip_meta/video_index", 1, s_1);
    want_shape(&v, f, "clip_meta/video_path", 1, s_1);
    want_shape(&v, f, "clip_meta/caption", 1, s_1);
    int ok_t = 0;
    int64_t T = 0, Dt = 0;
    if (tl >= 0) {
        if (H5Lexists(f, "tokens", H5P_DEFAULT) > 0) {
            hid_t d = H5Dopen2(f, "tokens", H5P_DEFAULT);
            hid_t sp = H5Dget_space(d);
            hsize_t dims[8] = {0};
            if (H5Sget_simple_extent_ndims(sp) == 4) {
                H5Sget_simple_extent_dims(sp, dims, NULL);
                T = (int64_t)dims[2];
                Dt = (int64_t)dims[3];
            }
            H5Sclose(sp);
            H5Dclose(d);
        }
        hsize_t s_t[4] = {hn, hl, (hsize_t)(T > 0 ? T : 1), (hsize_t)(Dt > 0 ? Dt : 1)};
        ok_t = want_shape(&v, f, "tokens", 4, s_t) == 0;
    }
    uint8_t *done = calloc((size_t)(n ? n : 1), 1);
    if (!done) STORY_FATAL("out of memory");
    int64_t nd = 0;
    if (read_1d(f, "done", H5T_NATIVE_UINT8, n, done) != 0) {
        problem(&v, K_SHAPE, "the done flags cannot be read");
        memset(done, 0, (size_t)n);
    }
    for (int64_t i = 0; i < n; i++) {
        if (done[i] > 1) {
            problem(&v, K_FLAG, "done[%" PRId64 "] is %d; expected 0 or 1", i, done[i]);
            done[i] = 1;
        }
        nd += done[i];
    }
    if (ok_e) check_values(&v, f, "embeds", n, (size_t)(L * D), done, 1);
    if (ok_t) check_values(&v, f, "tokens", n, (size_t)(L * T * Dt), done, 0);
    if (ok_f && ok_fps && ok_r) {
        int64_t *fr = mallocCheck((size_t)(n ? n : 1) * (size_t)L * sizeof *fr);
        double *fps = mallocCheck((size_t)(n ? n : 1) * sizeof *fps);
        size_t w = 0;
        char *why = read_strings(f, "clip_meta/skip_reason", n, &w);
        hid_t d = H5Dopen2(f, "clip_meta/frames", H5P_DEFAULT);
        int rf = H5Dread(d, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, fr) >= 0;
        H5Dclose(d);
        int rfps = read_1d(f, "clip_meta/fps", H5T_NATIVE_DOUBLE, n, fps) == 0;
        for (int64_t i = 0; rf && rfps && i < n; i++) {
            if (!done[i]) continue;
            const int64_t *r = fr + i * L;
            int good = r[0] >= 0;
            for (int64_t l = 1; l < L; l++) good &= r[l] >= r[l - 1];
            if (!good)
                problem(&v, K_META,
                        "clip %" PRId64
                        " is done but clip_meta/frames is not ascending "
                        "frame indices >= 0 (%" PRId64 ", %" PRId64 ", ...)",
                        i, r[0], L > 1 ? r[1] : r[0]);
            if (!(fps[i] > 0) || !isfinite(fps[i]))
                problem(&v, K_META,
                        "clip %" PRId64 " is done but clip_meta/fps is %g; expected > 0", i,
                        fps[i]);
            if (why && why[(size_t)i * w])
                problem(&v, K_META, "clip %" PRId64 " is done but has a skip reason '%.*s'", i,
                        (int)strnlen(why + (size_t)i * w, w), why + (size_t)i * w);
        }
        if (!rf || !rfps || !why) problem(&v, K_META, "clip_meta cannot be read");
        free(why);
        free(fps);
        free(fr);
    }
    for (int k = 0; k < 8; k++)
        if (v.listed[k] > VERIFY_LIST_MAX)
            printf("  ... and %d more of this kind\n", v.listed[k] - VERIFY_LIST_MAX);
    if (v.problems)
        printf("%s: %d problem(s) in %" PRId64 " done of %" PRId64 " clips\n", path, v.problems, nd,
               n);
    else
        printf("%s: ok: %" PRId64 " of %" PRId64 " clips done, all checked\n", path, nd, n);
    free(done);
    H5Fclose(f);
    return v.problems ? 1 : 0;
}

int job_store(int argc, char **argv) {
    if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        usage(stdout);
        return 0;
    }
    if (argc != 3 || (strcmp(argv[1], "info") && strcmp(argv[1], "verify"))) {
        usage(stderr);
        return 2;
    }
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);  // our messages, not HDF5's error stacks
    return !strcmp(argv[1], "info") ? store_info(argv[2]) : store_verify(argv[2]);
}

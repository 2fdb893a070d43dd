// runner/dataset.c: dataset descriptions, a folder of videos or a CSV/TSV manifest (see
// dataset.h). Manifests are read as a stream, one record at a time, so a multi-GB WebVid
// CSV costs memory only for the rows it keeps.
#include "runner/dataset.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include <libavformat/avformat.h>

#include "runner/check.h"
#include "runner/video.h"

#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
static int
fail(char *err, size_t errlen, const char *fmt, ...) {
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

static char *dup_str(const char *s) {
    size_t n = strlen(s) + 1;
    return memcpy(mallocCheck(n), s, n);
}

static void *grow(void *p, size_t n, size_t size) {
    void *q = realloc(p, n * size);
    STORY_CHECK(q, "out of memory growing a list to %zu entries", n);
    return q;
}

// "dir/name" (or name when dir is empty).
static char *join_path(const char *dir, const char *name) {
    if (!dir[0] || name[0] == '/') return dup_str(name);
    size_t a = strlen(dir), b = strlen(name);
    char *s = mallocCheck(a + b + 2);
    memcpy(s, dir, a);
    size_t k = a;
    if (dir[a - 1] != '/') s[k++] = '/';
    memcpy(s + k, name, b + 1);
    return s;
}

static void add_item(Dataset *ds, int *cap, char *path, char *id, const char *caption, double start,
                     double end, int line) {
    if (ds->n == *cap) {
        *cap = *cap ? 2 * *cap : 64;
        ds->items = grow(ds->items, (size_t)*cap, sizeof *ds->items);
    }
    ds->items[ds->n++] = (DatasetItem){path, id, dup_str(caption), start, end, line};
}

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static void
add_bad(Dataset *ds, const char *fmt, ...) {
    ds->nbad++;
    if (ds->nbad_kept >= DATASET_MAX_BAD_KEPT) return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    ds->bad = grow(ds->bad, (size_t)ds->nbad_kept + 1, sizeof *ds->bad);
    ds->bad[ds->nbad_kept++] = dup_str(msg);
}

void dataset_free(Dataset *ds) {
    if (!ds) return;
    for (int i = 0; i < ds->n; i++) {
        free(ds->items[i].path);
        free(ds->items[i].id);
        free(ds->items[i].caption);
    }
    for (int i = 0; i < ds->nbad_kept; i++) free(ds->bad[i]);
    free(ds->items);
    free(ds->bad);
    memset(ds, 0, sizeof *ds);
}

// ---- folders ------------------------------------------------------------------------------

static const char *const video_exts[] = {"mp4", "webm", "mkv", "avi", "mov", "m4v", "gif"};

static int has_video_ext(const char *name) {
    const char *dot = strrchr(name, '.');
    if (!dot) return 0;
    for (size_t i = 0; i < sizeof video_exts / sizeof *video_exts; i++)
        if (!strcasecmp(dot + 1, video_exts[i])) return 1;
    return 0;
}

// Whether FFmpeg opens the file as a video (a video stream that is not a still image).
static int probes_as_video(const char *path) {
    video_log_init();  // FFmpeg's complaints about non-videos are expected here: keep them quiet
    AVFormatContext *fmt = NULL;
    AVDictionary *o = NULL;
    av_dict_set(&o, "protocol_whitelist", "file", 0);
    int ok = avformat_open_input(&fmt, path, NULL, &o) == 0;
    av_dict_free(&o);
    if (!ok) return 0;
    const char *name = fmt->iformat->name;
    ok = strcmp(name, "image2") && !strstr(name, "_pipe") && strcmp(name, "tty") &&
         avformat_find_stream_info(fmt, NULL) >= 0;
    int s = ok ? av_find_best_stream(fmt, AVMEDIA_TYPE_VIDEO, -1, -1, NULL, 0) : -1;
    ok = s >= 0 && !(fmt->streams[s]->disposition & AV_DISPOSITION_ATTACHED_PIC);
    avformat_close_input(&fmt);
    return ok;
}

typedef struct {
    char **rel;
    int n, cap;
} NameList;

// Collects the video files below root/rel (rel "" at the top), as paths relative to root.
static int walk(const char *root, const char *rel, int depth, int probe, NameList *out, char *err,
                size_t errlen) {
    if (depth > 64) return fail(err, errlen, "%s/%s: folders nested more than 64 deep", root, rel);
    char *dirpath = join_path(root, rel);
    DIR *d = opendir(dirpath);
    if (!d) {
        int e = errno;
        fail(err, errlen, "%s: cannot list: %s", dirpath, strerror(e));
        free(dirpath);
        return -1;
    }
    int rc = 0;
    struct dirent *de;
    while (!rc && (de = readdir(d))) {
        if (de->d_name[0] == '.') continue;  // ., .., hidden files and temporary files
        char *r = join_path(rel, de->d_name);
        char *full = join_path(root, r);
        struct stat sb;
        if (stat(full, &sb) != 0) {  // a dangling link: not a video
            free(full);
            free(r);
            continue;
        }
        if (S_ISDIR(sb.st_mode)) {
            rc = walk(root, r, depth + 1, probe, out, err, errlen);
            free(r);
        } else if (S_ISREG(sb.st_mode) &&
                   (has_video_ext(de->d_name) || (probe && probes_as_video(full)))) {
            if (out->n == out->cap) {
                out->cap = out->cap ? 2 * out->cap : 64;
                out->rel = grow(out->rel, (size_t)out->cap, sizeof *out->rel);
            }
            out->rel[out->n++] = r;
        } else {
            free(r);
        }
        free(full);
    }
    closedir(d);
    free(dirpath);
    return rc;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int open_folder(const char *path, const DatasetOptions *opt, Dataset *ds, char *err,
                       size_t errlen) {
    NameList names = {0};
    int rc = walk(path, "", 0, opt->probe, &names, err, errlen);
    if (!rc && names.n == 0)
        rc = fail(err, errlen,
                  "%s: no videos in this folder (looked for .mp4 .webm .mkv .avi .mov .m4v .gif%s)",
                  path, opt->probe ? " and any file FFmpeg reads as video" : "");
    if (!rc) {
        qsort(names.rel, (size_t)names.n, sizeof *names.rel, cmp_str);
        int cap = 0;
        for (int i = 0; i < names.n; i++)
            add_item(ds, &cap, join_path(path, names.rel[i]), dup_str(names.rel[i]), "", -1, -1, 0);
    }
    for (int i = 0; i < names.n; i++) free(names.rel[i]);
    free(names.rel);
    return rc;
}

// ---- CSV / TSV records ----------------------------------------------------------------------

typedef struct {
    FILE *f;
    char sep;
    int quoting;  // CSV: fields may be quoted; TSV: literal
    int line;     // physical line of the next character (1-based)
    char *buf;    // field bytes, each field NUL-terminated
    size_t len, cap;
    size_t *starts;  // offset of each field in buf
    int nfields, capfields;
    char problem[160];  // why the last record is bad ("" if it is fine)
} CsvReader;

static void put_byte(CsvReader *r, char c) {
    if (r->len == r->cap) {
        r->cap = r->cap ? 2 * r->cap : 1024;
        r->buf = grow(r->buf, r->cap, 1);
    }
    r->buf[r->len++] = c;
}

static void start_field(CsvReader *r) {
    if (r->nfields == r->capfields) {
        r->capfields = r->capfields ? 2 * r->capfields : 16;
        r->starts = grow(r->starts, (size_t)r->capfields, sizeof *r->starts);
    }
    r->starts[r->nfields++] = r->len;
}

static const char *field(const CsvReader *r, int i) { return r->buf + r->starts[i]; }

// Ends a line that ended with '\r' (CRLF) or '\n'.
static void end_line(CsvReader *r, int c) {
    if (c == '\r') {
        int d = getc_unlocked(r->f);
        if (d != '\n' && d != EOF) ungetc(d, r->f);
    }
    r->line++;
}

// Reads one record. Returns 1 (a record; r->problem set if it is bad), 0 at the end.
static int csv_next(CsvReader *r, int *record_line) {
    r->len = 0;
    r->nfields = 0;
    r->problem[0] = 0;
    int c;
    // skip blank lines
    while ((c = getc_unlocked(r->f)) == '\n' || c == '\r') end_line(r, c);
    if (c == EOF) return 0;
    *record_line = r->line;
    start_field(r);
    enum { UNQUOTED, QUOTED, AFTER_QUOTE } state = UNQUOTED;
    int at_field_start = 1;
    for (;; c = getc_unlocked(r->f)) {
        if (c == EOF) {
            if (state == QUOTED)
                snprintf(r->problem, sizeof r->problem,
                         "a quoted field opened on this line is never closed");
            put_byte(r, 0);
            return 1;
        }
        if (state == QUOTED) {
            if (c == '"') {
                int d = getc_unlocked(r->f);
                if (d == '"') {
                    put_byte(r, '"');
                } else {
                    if (d != EOF) ungetc(d, r->f);
                    state = AFTER_QUOTE;
                }
            } else {
                if (c == '\n') r->line++;
                put_byte(r, (char)c);
            }
            continue;
        }
        if (c == r->sep) {
            put_byte(r, 0);
            start_field(r);
            state = UNQUOTED;
            at_field_start = 1;
            continue;
        }
        if (c == '\n' || c == '\r') {
            end_line(r, c);
            put_byte(r, 0);
            return 1;
        }
        if (state == AFTER_QUOTE) {
            if (!r->problem[0])
                snprintf(r->problem, sizeof r->problem,
                         "text after the closing quote of field %d (a quote inside a quoted "
                         "field is written \"\")",
                         r->nfields);
            continue;
        }
        if (at_field_start && c == '"' && r->quoting) {
            state = QUOTED;
            at_field_start = 0;
            continue;
        }
        at_field_start = 0;
        put_byte(r, (char)c);
    }
}

// ---- manifests ------------------------------------------------------------------------------

// Index of the first header name in `names` (a "|"-separated list), or -1.
static int find_column(char **header, int n, const char *names) {
    char buf[128];
    snprintf(buf, sizeof buf, "%s", names);
    for (char *save = NULL, *tok = strtok_r(buf, "|", &save); tok; tok = strtok_r(NULL, "|", &save))
        for (int i = 0; i < n; i++)
            if (!strcasecmp(header[i], tok)) return i;
    return -1;
}

static char *trim(char *s) {
    while (isspace((unsigned char)*s)) s++;
    size_t n = strlen(s);
    while (n && isspace((unsigned char)s[n - 1])) s[--n] = 0;
    return s;
}

// Parses an optional time in seconds: "" gives -1. Returns 0, or -1 when not a number >= 0.
static int parse_seconds(const char *s, double *out) {
    while (isspace((unsigned char)*s)) s++;
    if (!*s) {
        *out = -1;
        return 0;
    }
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    while (isspace((unsigned char)*end)) end++;
    if (errno || *end || !isfinite(v) || v < 0) return -1;
    *out = v;
    return 0;
}

static int file_exists(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}

static int open_manifest(const char *path, const DatasetOptions *opt, Dataset *ds, char *err,
                         size_t errlen) {
    FILE *f = fopen(path, "rb");
    if (!f) return fail(err, errlen, "%s: cannot open: %s", path, strerror(errno));
    CsvReader r = {.f = f, .line = 1};
    // Byte order mark, then the separator: by extension, else sniffed from the header line.
    unsigned char bom[3];
    size_t got = fread(bom, 1, 3, f);
    if (!(got == 3 && bom[0] == 0xEF && bom[1] == 0xBB && bom[2] == 0xBF)) rewind(f);
    long body = ftell(f);
    const char *dot = strrchr(path, '.');
    if (dot && !strcasecmp(dot, ".tsv")) {
        r.sep = '\t';
    } else if (dot && !strcasecmp(dot, ".csv")) {
        r.sep = ',';
    } else {
        int c, tabs = 0, commas = 0;
        while ((c = getc(f)) != EOF && c != '\n') tabs += c == '\t', commas += c == ',';
        r.sep = tabs && !commas ? '\t' : ',';
        fseek(f, body, SEEK_SET);
    }
    r.quoting = r.sep == ',';

    int rc = 0, hline = 0;
    int nh = 0;
    char **header = NULL;
    if (!csv_next(&r, &hline)) {
        rc = fail(err, errlen,
                  "%s: empty manifest (expected a header line such as \"path,caption\")", path);
    } else if (r.problem[0]) {
        rc = fail(err, errlen, "%s:%d: header: %s", path, hline, r.problem);
    } else {
        nh = r.nfields;
        header = mallocCheck((size_t)nh * sizeof *header);
        for (int i = 0; i < nh; i++) header[i] = dup_str(trim((char *)field(&r, i)));
    }
    int c_path = -1, c_vid = -1, c_page = -1, c_cap = -1, c_start = -1, c_end = -1;
    if (!rc) {
        c_path = find_column(header, nh, "path|video|video_path|filepath|file|filename|file_name");
        c_vid = find_column(header, nh, "videoid|video_id");
        c_page = find_column(header, nh, "page_dir");
        c_cap = find_column(header, nh, "caption|name|text|title|prompt|description");
        c_start = find_column(header, nh, "start|start_sec|start_time");
        c_end = find_column(header, nh, "end|end_sec|end_time");
        if (c_path < 0 && c_vid < 0)
            rc = fail(err, errlen,
                      "%s:%d: no column names the videos: expected one of path, video, "
                      "video_path, filepath, file, filename, file_name, or WebVid's videoid "
                      "(+ page_dir)",
                      path, hline);
    }
    // Folder for relative paths: the option, else the manifest's own folder.
    char *base = NULL;
    if (opt->root) {
        base = dup_str(opt->root);
    } else {
        const char *slash = strrchr(path, '/');
        base = mallocCheck(slash ? (size_t)(slash - path) + 2 : 1);
        if (slash) {
            size_t n = slash == path ? 1 : (size_t)(slash - path);
            memcpy(base, path, n);
            base[n] = 0;
        } else {
            base[0] = 0;
        }
    }
    const char *ext = opt->webvid_ext ? opt->webvid_ext : ".mp4";
    DatasetWebvidLayout layout = opt->webvid_layout;
    int cap = 0, line = 0;
    while (!rc && csv_next(&r, &line)) {
        if (r.problem[0]) {
            add_bad(ds, "%s:%d: %s", path, line, r.problem);
            continue;
        }
        if (r.nfields != nh) {
            add_bad(ds, "%s:%d: %d field%s, the header has %d", path, line, r.nfields,
                    r.nfields == 1 ? "" : "s", nh);
            continue;
        }
        double start, end;
        if (c_start >= 0 ? parse_seconds(field(&r, c_start), &start) : (start = -1, 0)) {
            add_bad(ds, "%s:%d: start \"%s\": expected seconds >= 0 or nothing", path, line,
                    field(&r, c_start));
            continue;
        }
        if (c_end >= 0 ? parse_seconds(field(&r, c_end), &end) : (end = -1, 0)) {
            add_bad(ds, "%s:%d: end \"%s\": expected seconds >= 0 or nothing", path, line,
                    field(&r, c_end));
            continue;
        }
        if (end >= 0 && end <= (start > 0 ? start : 0)) {
            add_bad(ds, "%s:%d: end %g s is not after start %g s", path, line, end,
                    start > 0 ? start : 0);
            continue;
        }
        char *id, *rel;
        if (c_path >= 0) {
            id = dup_str(trim((char *)field(&r, c_path)));
            rel = dup_str(id);
        } else {
            id = dup_str(trim((char *)field(&r, c_vid)));
            const char *page = c_page >= 0 ? trim((char *)field(&r, c_page)) : "";
            char *flat = mallocCheck(strlen(id) + strlen(ext) + 1);
            strcat(strcpy(flat, id), ext);
            char *nested = join_path(page, flat);
            if (layout == DATASET_WEBVID_AUTO && id[0]) {
                char *a = join_path(base, nested), *b = join_path(base, flat);
                layout = c_page >= 0 && !file_exists(a) && file_exists(b) ? DATASET_WEBVID_FLAT
                                                                          : DATASET_WEBVID_NESTED;
                free(a);
                free(b);
            }
            rel = layout == DATASET_WEBVID_FLAT ? flat : nested;
            free(layout == DATASET_WEBVID_FLAT ? nested : flat);
        }
        if (!id[0]) {
            add_bad(ds, "%s:%d: empty %s", path, line,
                    c_path >= 0 ? header[c_path] : header[c_vid]);
            free(id);
            free(rel);
            continue;
        }
        const char *caption = c_cap >= 0 ? field(&r, c_cap) : "";
        add_item(ds, &cap, join_path(base, rel), id, caption, start, end, line);
        free(rel);
    }
    if (!rc && ferror(f)) rc = fail(err, errlen, "%s: read error: %s", path, strerror(errno));
    if (!rc && ds->n == 0) {
        if (ds->nbad)
            rc = fail(err, errlen, "%s: no usable rows: %d bad, the first: %s", path, ds->nbad,
                      ds->bad[0]);
        else
            rc = fail(err, errlen, "%s: no rows after the header", path);
    }
    for (int i = 0; i < nh; i++) free(header[i]);
    free(header);
    free(base);
    free(r.buf);
    free(r.starts);
    fclose(f);
    return rc;
}

int dataset_open(const char *path, const DatasetOptions *opt, Dataset *ds, char *err,
                 size_t errlen) {
    memset(ds, 0, sizeof *ds);
    DatasetOptions none = {0};
    if (!opt) opt = &none;
    struct stat sb;
    if (stat(path, &sb) != 0)
        return fail(err, errlen, "%s: cannot open: %s", path, strerror(errno));
    int rc;
    if (S_ISDIR(sb.st_mode)) {
        rc = open_folder(path, opt, ds, err, errlen);
    } else {
        ds->is_manifest = 1;
        rc = open_manifest(path, opt, ds, err, errlen);
    }
    if (rc) dataset_free(ds);
    return rc;
}

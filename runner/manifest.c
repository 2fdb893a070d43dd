// runner/manifest.c: DIR/manifest.json (see manifest.h), SHA-256 of files (nettle) and
// atomic file replacement.
#include "runner/manifest.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nettle/sha2.h>

#include "runner/check.h"
#include "runner/json.h"
#include "runner/version.h"

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
    size_t n = strlen(s ? s : "") + 1;
    return memcpy(mallocCheck(n), s ? s : "", n);
}

// ---- growing text buffer -----------------------------------------------------------------

typedef struct {
    char *s;
    size_t n, cap;
} Buf;

static void buf_put(Buf *b, const char *s, size_t n) {
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->n + n + 1) cap *= 2;
        char *p = realloc(b->s, cap);
        if (!p) STORY_FATAL("out of memory growing a %zu-byte text", cap);
        b->s = p;
        b->cap = cap;
    }
    memcpy(b->s + b->n, s, n);
    b->n += n;
    b->s[b->n] = 0;
}

static void buf_str(Buf *b, const char *s) { buf_put(b, s, strlen(s)); }

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static void
buf_printf(Buf *b, const char *fmt, ...) {
    char tmp[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    STORY_CHECK(n >= 0 && (size_t)n < sizeof tmp, "buf_printf: %d bytes", n);
    buf_put(b, tmp, (size_t)n);
}

// Length of the valid UTF-8 sequence at s (n bytes left), or 0 when malformed (overlong,
// surrogate, past U+10FFFF, cut short): the JSON reader refuses those, so they are
// written as U+FFFD to keep the manifest readable.
static int utf8_valid_len(const unsigned char *s, size_t n) {
    unsigned c = s[0];
    int k = c < 0x80 ? 0 : c < 0xC2 ? -1 : c < 0xE0 ? 1 : c < 0xF0 ? 2 : c < 0xF5 ? 3 : -1;
    if (k < 0 || (size_t)k >= n) return 0;
    uint32_t v = c & (0x7F >> k);
    for (int i = 1; i <= k; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        v = v << 6 | (s[i] & 0x3F);
    }
    if ((k == 2 && (v < 0x800 || (v >= 0xD800 && v <= 0xDFFF))) ||
        (k == 3 && (v < 0x10000 || v > 0x10FFFF)))
        return 0;
    return k + 1;
}

// s as a JSON string literal: quotes, backslashes and control characters escaped.
static void buf_json(Buf *b, const char *str) {
    const unsigned char *s = (const unsigned char *)str;
    size_t n = strlen(str);
    buf_str(b, "\"");
    for (size_t i = 0; i < n;) {
        unsigned c = s[i];
        if (c == '"' || c == '\\') {
            char e[2] = {'\\', (char)c};
            buf_put(b, e, 2);
        } else if (c == '\n') {
            buf_str(b, "\\n");
        } else if (c == '\t') {
            buf_str(b, "\\t");
        } else if (c == '\r') {
            buf_str(b, "\\r");
        } else if (c < 0x20 || c == 0x7F) {
            buf_printf(b, "\\u%04x", c);
        } else if (c >= 0x80) {
            int k = utf8_valid_len(s + i, n - i);
            if (k == 0) {
                buf_str(b, "\xEF\xBF\xBD");  // U+FFFD, as a re-save writes it
                i++;
                continue;
            }
            buf_put(b, (const char *)s + i, (size_t)k);
            i += (size_t)k;
            continue;
        } else {
            buf_put(b, (const char *)s + i, 1);
        }
        i++;
    }
    buf_str(b, "\"");
}

// ---- files -------------------------------------------------------------------------------

static void to_hex(const uint8_t *d, size_t n, char *hex) {
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        hex[2 * i] = digits[d[i] >> 4];
        hex[2 * i + 1] = digits[d[i] & 15];
    }
    hex[2 * n] = 0;
}

void sha256_hex(const void *data, size_t n, char hex[65]) {
    struct sha256_ctx ctx;
    uint8_t d[SHA256_DIGEST_SIZE];
    sha256_init(&ctx);
    sha256_update(&ctx, n, data);
    sha256_digest(&ctx, sizeof d, d);
    to_hex(d, sizeof d, hex);
}

int file_sha256(const char *path, char hex[65], uint64_t *bytes, char *err, size_t errlen) {
    FILE *f = fopen(path, "rb");
    if (!f) return fail(err, errlen, "%s: cannot read: %s", path, strerror(errno));
    struct sha256_ctx ctx;
    sha256_init(&ctx);
    enum { CHUNK = 1 << 16 };
    uint8_t *buf = mallocCheck(CHUNK);
    uint64_t total = 0;
    size_t got;
    while ((got = fread(buf, 1, CHUNK, f)) > 0) {
        sha256_update(&ctx, got, buf);
        total += got;
    }
    int bad = ferror(f), e = errno;
    fclose(f);
    free(buf);
    if (bad) return fail(err, errlen, "%s: cannot read: %s", path, strerror(e));
    uint8_t d[SHA256_DIGEST_SIZE];
    sha256_digest(&ctx, sizeof d, d);
    to_hex(d, sizeof d, hex);
    if (bytes) *bytes = total;
    return 0;
}

// fsync of the folder holding `path`, so that a rename into it survives a crash.
static void sync_dir_of(const char *path) {
    const char *slash = strrchr(path, '/');
    char dir[PATH_MAX];
    if (!slash)
        snprintf(dir, sizeof dir, ".");
    else
        snprintf(dir, sizeof dir, "%.*s", (int)(slash == path ? 1 : slash - path), path);
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        (void)fsync(fd);  // best effort: some file systems refuse fsync on folders
        close(fd);
    }
}

int file_write_atomic(const char *path, const void *data, size_t n, char *err, size_t errlen) {
    // ".NAME.tmp-PID-K" next to path: same folder, so the rename is atomic
    const char *slash = strrchr(path, '/');
    int dirlen = slash ? (int)(slash - path + 1) : 0;
    static unsigned counter;
    char tmp[PATH_MAX];
    int fd = -1;
    for (int attempt = 0; attempt < 100 && fd < 0; attempt++) {
        unsigned k = __atomic_fetch_add(&counter, 1, __ATOMIC_RELAXED);
        int w = snprintf(tmp, sizeof tmp, "%.*s.%s.tmp-%ld-%u", dirlen, path,
                         slash ? slash + 1 : path, (long)getpid(), k);
        if (w < 0 || (size_t)w >= sizeof tmp)
            return fail(err, errlen, "%s: cannot create a file there: the name is too long", path);
        fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (fd < 0 && errno != EEXIST) break;
    }
    if (fd < 0)
        return fail(err, errlen, "%s: cannot create a file there: %s", path, strerror(errno));
    const char *p = data;
    size_t left = n;
    int e = 0;
    while (left > 0) {
        ssize_t w = write(fd, p, left);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            e = w < 0 ? errno : EIO;
            break;
        }
        p += w;
        left -= (size_t)w;
    }
    if (!e && fsync(fd) != 0) e = errno;
    if (close(fd) != 0 && !e) e = errno;
    if (!e && rename(tmp, path) != 0) {
        e = errno;
        unlink(tmp);
        return fail(err, errlen, "%s: cannot rename %s to it: %s", path, tmp, strerror(e));
    }
    if (e) {
        unlink(tmp);
        return fail(err, errlen, "%s: cannot write: %s", path, strerror(e));
    }
    sync_dir_of(path);
    return 0;
}

// ---- entries -----------------------------------------------------------------------------

void manifest_init(Manifest *m, const char *dir, const char *config_path, const char *config_hash) {
    memset(m, 0, sizeof *m);
    m->dir = dup_str(dir);
    m->format = MANIFEST_FORMAT;
    m->storyrun_version = dup_str(story_version());
    m->config_path = dup_str(config_path);
    m->config_hash = dup_str(config_hash);
}

static void entry_free(ManifestEntry *e) {
    free(e->path);
    free(e->kind);
    for (int i = 0; i < e->n_fields; i++) {
        free(e->fields[i].key);
        free(e->fields[i].value);
    }
    free(e->fields);
    memset(e, 0, sizeof *e);
}

void manifest_free(Manifest *m) {
    if (!m) return;
    for (int i = 0; i < m->n; i++) entry_free(&m->entries[i]);
    free(m->entries);
    free(m->dir);
    free(m->storyrun_version);
    free(m->config_path);
    free(m->config_hash);
    memset(m, 0, sizeof *m);
}

// A relative path inside the output folder: non-empty parts separated by '/', none of
// them "." or "..", no control characters.
static bool path_ok(const char *p) {
    if (!*p || *p == '/') return false;
    for (const char *s = p; *s; s++)
        if ((unsigned char)*s < 0x20) return false;
    for (const char *s = p;;) {
        const char *e = strchr(s, '/');
        size_t n = e ? (size_t)(e - s) : strlen(s);
        if (n == 0 || (n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.'))
            return false;
        if (!e) return true;
        s = e + 1;
    }
}

static bool hex64_ok(const char *h) {
    for (int i = 0; i < 64; i++)
        if (!((h[i] >= '0' && h[i] <= '9') || (h[i] >= 'a' && h[i] <= 'f'))) return false;
    return h[64] == 0;
}

ManifestEntry *manifest_find(const Manifest *m, const char *relpath) {
    for (int i = 0; i < m->n; i++)
        if (!strcmp(m->entries[i].path, relpath)) return &m->entries[i];
    return NULL;
}

int manifest_remove(Manifest *m, const char *relpath) {
    ManifestEntry *e = manifest_find(m, relpath);
    if (!e) return 0;
    entry_free(e);
    int i = (int)(e - m->entries);
    memmove(e, e + 1, (size_t)(m->n - i - 1) * sizeof *e);
    m->n--;
    return 1;
}

ManifestEntry *manifest_add(Manifest *m, const char *relpath, const char *kind, uint64_t bytes,
                            const char *sha256_hex_, char *err, size_t errlen) {
    if (!relpath || !path_ok(relpath)) {
        fail(err, errlen,
             "%s/%s: not a path inside the output folder; expected a relative path without "
             "\".\" or \"..\" parts",
             m->dir, relpath ? relpath : "(null)");
        return NULL;
    }
    if (!sha256_hex_ || strlen(sha256_hex_) != 64 || !hex64_ok(sha256_hex_)) {
        fail(err, errlen, "%s/%s: checksum \"%s\" is not 64 lowercase hex digits", m->dir, relpath,
             sha256_hex_ ? sha256_hex_ : "(null)");
        return NULL;
    }
    ManifestEntry *e = manifest_find(m, relpath);
    if (e) {
        entry_free(e);
    } else {
        if (m->n == m->cap) {
            int cap = m->cap ? 2 * m->cap : 16;
            ManifestEntry *p = realloc(m->entries, (size_t)cap * sizeof *p);
            if (!p) STORY_FATAL("out of memory for %d manifest entries", cap);
            m->entries = p;
            m->cap = cap;
        }
        e = &m->entries[m->n++];
    }
    memset(e, 0, sizeof *e);
    e->path = dup_str(relpath);
    e->kind = dup_str(kind);
    e->bytes = bytes;
    memcpy(e->sha256, sha256_hex_, 65);
    return e;
}

static char *join(const char *dir, const char *rel) {
    size_t n = strlen(dir) + strlen(rel) + 2;
    char *p = mallocCheck(n);
    snprintf(p, n, "%s/%s", dir, rel);
    return p;
}

ManifestEntry *manifest_add_file(Manifest *m, const char *relpath, const char *kind,
                                 const char *const *info, int n_info, char *err, size_t errlen) {
    if (!relpath || !path_ok(relpath)) return manifest_add(m, relpath, kind, 0, "", err, errlen);
    char *full = join(m->dir, relpath);
    char hex[65];
    uint64_t bytes = 0;
    int rc = file_sha256(full, hex, &bytes, err, errlen);
    free(full);
    if (rc) return NULL;
    ManifestEntry *e = manifest_add(m, relpath, kind, bytes, hex, err, errlen);
    for (int i = 0; e && i < n_info; i++) manifest_entry_set(e, info[2 * i], info[2 * i + 1]);
    return e;
}

void manifest_entry_set(ManifestEntry *e, const char *key, const char *value) {
    for (int i = 0; i < e->n_fields; i++)
        if (!strcmp(e->fields[i].key, key)) {
            free(e->fields[i].value);
            e->fields[i].value = dup_str(value);
            return;
        }
    ManifestField *f = realloc(e->fields, (size_t)(e->n_fields + 1) * sizeof *f);
    if (!f) STORY_FATAL("out of memory for a manifest field");
    e->fields = f;
    f[e->n_fields].key = dup_str(key);
    f[e->n_fields].value = dup_str(value);
    e->n_fields++;
}

const char *manifest_entry_get(const ManifestEntry *e, const char *key) {
    for (int i = 0; i < e->n_fields; i++)
        if (!strcmp(e->fields[i].key, key)) return e->fields[i].value;
    return NULL;
}

// ---- writing -----------------------------------------------------------------------------

static int by_path(const void *a, const void *b) {
    const ManifestEntry *x = *(const ManifestEntry *const *)a,
                        *y = *(const ManifestEntry *const *)b;
    return strcmp(x->path, y->path);
}

int manifest_write(const Manifest *m, char *err, size_t errlen) {
    Buf b = {0};
    buf_printf(&b, "{\n  \"format\": %d,\n  \"storyrun\": ", MANIFEST_FORMAT);
    buf_json(&b, m->storyrun_version);
    buf_str(&b, ",\n  \"config\": ");
    buf_json(&b, m->config_path);
    buf_str(&b, ",\n  \"config_hash\": ");
    buf_json(&b, m->config_hash);
    buf_str(&b, ",\n  \"outputs\": [");
    const ManifestEntry **order = mallocCheck((size_t)(m->n + 1) * sizeof *order);
    for (int i = 0; i < m->n; i++) order[i] = &m->entries[i];
    qsort(order, (size_t)m->n, sizeof *order, by_path);
    for (int i = 0; i < m->n; i++) {
        const ManifestEntry *e = order[i];
        buf_str(&b, i ? ",\n    {\"path\": " : "\n    {\"path\": ");
        buf_json(&b, e->path);
        buf_str(&b, ", \"kind\": ");
        buf_json(&b, e->kind);
        buf_printf(&b, ", \"bytes\": %llu, \"sha256\": \"%s\"", (unsigned long long)e->bytes,
                   e->sha256);
        if (e->n_fields) {
            buf_str(&b, ",\n     \"info\": {");
            for (int k = 0; k < e->n_fields; k++) {
                if (k) buf_str(&b, ", ");
                buf_json(&b, e->fields[k].key);
                buf_str(&b, ": ");
                buf_json(&b, e->fields[k].value);
            }
            buf_str(&b, "}");
        }
        buf_str(&b, "}");
    }
    buf_str(&b, m->n ? "\n  ]\n}\n" : "]\n}\n");
    free(order);
    char *path = join(m->dir, MANIFEST_NAME);
    int rc = file_write_atomic(path, b.s, b.n, err, errlen);
    free(path);
    free(b.s);
    return rc;
}

// ---- reading -----------------------------------------------------------------------------

static int get_required_string(const JsonDoc *doc, const JsonValue *obj, const char *key,
                               const char *what, const char **out, char *err, size_t errlen) {
    int rc = json_get_string(doc, obj, key, out, err, errlen);
    if (rc < 0) return -1;
    if (rc == 0)
        return json_errat(doc, obj->pos, err, errlen, "%s has no \"%s\"; expected a string there",
                          what, key);
    return 0;
}

static int load_entry(Manifest *m, const JsonDoc *doc, const JsonValue *v, size_t i, char *err,
                      size_t errlen) {
    char what[48];
    snprintf(what, sizeof what, "output %zu", i);
    if (v->type != JSON_OBJECT)
        return json_errat(doc, v->pos, err, errlen, "%s: expected an object, found %s", what,
                          json_type_name(v->type));
    const char *path, *kind, *sha;
    int64_t bytes = 0;
    if (get_required_string(doc, v, "path", what, &path, err, errlen) ||
        get_required_string(doc, v, "kind", what, &kind, err, errlen) ||
        get_required_string(doc, v, "sha256", what, &sha, err, errlen))
        return -1;
    int rc = json_get_int(doc, v, "bytes", 0, INT64_MAX, &bytes, err, errlen);
    if (rc < 0) return -1;
    if (rc == 0)
        return json_errat(doc, v->pos, err, errlen,
                          "%s has no \"bytes\"; expected the file size there", what);
    const JsonValue *pv = json_get(v, "path");
    if (!path_ok(path))
        return json_errat(doc, pv->pos, err, errlen,
                          "%s: path \"%s\" is not inside the output folder; expected a relative "
                          "path without \".\" or \"..\" parts",
                          what, path);
    if (manifest_find(m, path))
        return json_errat(doc, pv->pos, err, errlen, "%s: \"%s\" is listed twice", what, path);
    if (strlen(sha) != 64 || !hex64_ok(sha))
        return json_errat(doc, json_get(v, "sha256")->pos, err, errlen,
                          "%s: sha256 \"%s\": expected 64 lowercase hex digits", what, sha);
    ManifestEntry *e = manifest_add(m, path, kind, (uint64_t)bytes, sha, err, errlen);
    STORY_CHECK(e, "manifest_add after validation: %s", err);
    const JsonValue *info = json_get(v, "info");
    if (!info) return 0;
    if (info->type != JSON_OBJECT)
        return json_errat(doc, info->pos, err, errlen, "%s: \"info\": expected an object, found %s",
                          what, json_type_name(info->type));
    for (size_t k = 0; k < info->len; k++) {
        const JsonMember *mem = &info->members[k];
        const char *val;
        if (strlen(mem->key) != mem->key_len)
            return json_errat(doc, mem->key_pos, err, errlen, "%s: an info key holds a NUL", what);
        if (json_as_string(doc, &mem->value, mem->key, &val, err, errlen)) return -1;
        manifest_entry_set(e, mem->key, val);
    }
    return 0;
}

int manifest_load(Manifest *m, const char *dir, char *err, size_t errlen) {
    manifest_init(m, dir, NULL, NULL);
    char *path = join(dir, MANIFEST_NAME);
    struct stat st;
    if (stat(path, &st) != 0 && errno == ENOENT) {
        fail(err, errlen, "%s: not found", path);
        free(path);
        return 0;
    }
    JsonError je;
    JsonDoc *doc = json_parse_file(path, NULL, &je);
    free(path);
    if (!doc) {
        fail(err, errlen, "%s; expected a storyrun manifest (delete it to start over)", je.msg);
        return -1;
    }
    const JsonValue *root = json_root(doc);
    int rc = -1;
    int64_t format = 0;
    const char *ver, *cpath, *chash;
    if (root->type != JSON_OBJECT) {
        json_errat(doc, root->pos, err, errlen, "expected a manifest object, found %s",
                   json_type_name(root->type));
        goto done;
    }
    int got = json_get_int(doc, root, "format", 1, INT32_MAX, &format, err, errlen);
    if (got < 0) goto done;
    if (got == 0) {
        json_errat(doc, root->pos, err, errlen, "no \"format\"; expected a storyrun manifest");
        goto done;
    }
    if (format != MANIFEST_FORMAT) {
        json_errat(doc, json_get(root, "format")->pos, err, errlen,
                   "manifest format %lld; this storyrun (%s) reads format %d", (long long)format,
                   story_version(), MANIFEST_FORMAT);
        goto done;
    }
    if (get_required_string(doc, root, "storyrun", "the manifest", &ver, err, errlen) ||
        get_required_string(doc, root, "config", "the manifest", &cpath, err, errlen) ||
        get_required_string(doc, root, "config_hash", "the manifest", &chash, err, errlen))
        goto done;
    free(m->storyrun_version);
    free(m->config_path);
    free(m->config_hash);
    m->storyrun_version = dup_str(ver);
    m->config_path = dup_str(cpath);
    m->config_hash = dup_str(chash);
    const JsonValue *outs = json_get(root, "outputs");
    if (!outs || outs->type != JSON_ARRAY) {
        json_errat(doc, outs ? outs->pos : root->pos, err, errlen,
                   "\"outputs\": expected an array of files, found %s",
                   outs ? json_type_name(outs->type) : "nothing");
        goto done;
    }
    for (size_t i = 0; i < outs->len; i++)
        if (load_entry(m, doc, &outs->items[i], i, err, errlen)) goto done;
    rc = 1;
done:
    json_free(doc);
    if (rc < 0) {
        manifest_free(m);
        manifest_init(m, dir, NULL, NULL);
    }
    return rc;
}

// ---- verification ------------------------------------------------------------------------

int manifest_entry_verify(const Manifest *m, const ManifestEntry *e, char *err, size_t errlen) {
    char *full = join(m->dir, e->path);
    struct stat st;
    int rc = 0;
    char hex[65];
    uint64_t bytes = 0;
    if (stat(full, &st) != 0) {
        rc = fail(err, errlen, "%s: listed in %s/" MANIFEST_NAME " but %s", full, m->dir,
                  errno == ENOENT ? "missing" : strerror(errno));
    } else if (!S_ISREG(st.st_mode)) {
        rc = fail(err, errlen, "%s: listed in %s/" MANIFEST_NAME " but not a regular file", full,
                  m->dir);
    } else if ((uint64_t)st.st_size != e->bytes) {
        rc = fail(err, errlen, "%s: %llu bytes, but %s/" MANIFEST_NAME " lists %llu", full,
                  (unsigned long long)st.st_size, m->dir, (unsigned long long)e->bytes);
    } else if (file_sha256(full, hex, &bytes, err, errlen)) {
        rc = -1;
    } else if (strcmp(hex, e->sha256) != 0) {
        rc =
            fail(err, errlen,
                 "%s: SHA-256 %s, but %s/" MANIFEST_NAME " lists %s (changed after it was written)",
                 full, hex, m->dir, e->sha256);
    }
    free(full);
    return rc;
}

int manifest_verify(const char *dir, char *err, size_t errlen) {
    Manifest m;
    int rc = manifest_load(&m, dir, err, errlen);
    if (rc <= 0) {
        manifest_free(&m);
        return -1;  // err: not found, or where it is broken
    }
    int bad = 0;
    size_t used = 0;
    if (err && errlen) err[0] = 0;
    for (int i = 0; i < m.n; i++) {
        char one[PATH_MAX + 256];
        if (!manifest_entry_verify(&m, &m.entries[i], one, sizeof one)) continue;
        bad++;
        if (err && used + 1 < errlen) {
            int w = snprintf(err + used, errlen - used, "%s%s", used ? "\n" : "", one);
            if (w > 0) used = used + (size_t)w < errlen ? used + (size_t)w : errlen - 1;
        }
    }
    int n = m.n;
    manifest_free(&m);
    return bad ? -1 : n;
}

// tests/outputs/test_manifest.c: the output manifest, checksums, atomic writes and
// index.html (runner/manifest.c, runner/html.c). Usage: test_manifest MODE WORKDIR
//   sha        SHA-256 of memory and files equals the FIPS 180-2 test vectors
//   roundtrip  write, load, verify; the same entries in another order give the same bytes;
//              strings with quotes, newlines, non-ASCII and invalid UTF-8 survive
//   tamper     a changed, truncated or deleted file fails verification, each named
//   corrupt    a broken, foreign or hostile manifest is refused with the file and place
//   atomic     file_write_atomic leaves no temporary files and never a half file
//   html       escaping, every frame and page listed, settings, no scripts or network
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runner/html.h"
#include "runner/manifest.h"
#include "runner/version.h"
#include "tests/common/test_check.h"

static const char *workdir;

static void put_file(const char *dir, const char *rel, const char *text) {
    char path[2048];
    snprintf(path, sizeof path, "%s/%s", dir, rel);
    FILE *f = fopen(path, "wb");
    if (!f) {
        perror(path);
        exit(2);
    }
    fputs(text, f);
    fclose(f);
}

static char *slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    size_t got = fread(s, 1, (size_t)n, f);
    s[got] = 0;
    fclose(f);
    return s;
}

// A fresh folder WORKDIR/name (its files from an earlier run removed).
static void fresh_dir(char *out, size_t n, const char *name) {
    snprintf(out, n, "%s/%s", workdir, name);
    mkdir(out, 0777);
    DIR *d = opendir(out);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (e->d_name[0] == '.' && (!e->d_name[1] || (e->d_name[1] == '.' && !e->d_name[2])))
            continue;
        char p[2048];
        snprintf(p, sizeof p, "%s/%s", out, e->d_name);
        if (unlink(p) != 0) {  // a sub-folder: one level is all the tests make
            DIR *s = opendir(p);
            struct dirent *f;
            while (s && (f = readdir(s))) {
                char q[3072];
                snprintf(q, sizeof q, "%s/%s", p, f->d_name);
                if (f->d_name[0] != '.') unlink(q);
            }
            if (s) closedir(s);
            rmdir(p);
        }
    }
    if (d) closedir(d);
}

static int test_sha(void) {
    char hex[65], err[512];
    static const struct {
        const char *in, *out;
    } v[] = {
        {"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
        {"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
        {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
         "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
    };
    char dir[1024];
    fresh_dir(dir, sizeof dir, "sha");
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        sha256_hex(v[i].in, strlen(v[i].in), hex);
        CHECK(!strcmp(hex, v[i].out), "sha256(\"%s\") = %s", v[i].in, hex);
        put_file(dir, "v.txt", v[i].in);
        char path[2048];
        snprintf(path, sizeof path, "%s/v.txt", dir);
        uint64_t bytes = 99;
        CHECK(file_sha256(path, hex, &bytes, err, sizeof err) == 0, "%s", err);
        CHECK(!strcmp(hex, v[i].out) && bytes == strlen(v[i].in), "file: %s, %llu bytes", hex,
              (unsigned long long)bytes);
    }
    // one million 'a' (FIPS 180-2 appendix B.3): many read chunks
    size_t n = 1000000;
    char *a = malloc(n + 1);
    memset(a, 'a', n);
    a[n] = 0;
    const char *want = "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0";
    sha256_hex(a, n, hex);
    CHECK(!strcmp(hex, want), "million a: %s", hex);
    put_file(dir, "a.txt", a);
    char path[2048];
    snprintf(path, sizeof path, "%s/a.txt", dir);
    uint64_t bytes = 0;
    CHECK(file_sha256(path, hex, &bytes, err, sizeof err) == 0 && !strcmp(hex, want) && bytes == n,
          "million a file: %s %s", hex, err);
    free(a);
    snprintf(path, sizeof path, "%s/none.txt", dir);
    CHECK(file_sha256(path, hex, NULL, err, sizeof err) < 0 && strstr(err, path) &&
              strstr(err, "No such file"),
          "missing: %s", err);
    return 0;
}

static const char *tricky =
    "a \"quoted\" <prompt>\\ with\nnewline, tab\t, café 日本 \x01 "
    "and bad \xff\xc3 bytes";

static void make_outputs(const char *dir) {
    char sub[2048];
    snprintf(sub, sizeof sub, "%s/frames", dir);
    mkdir(sub, 0777);
    put_file(dir, "frames/frame_000.png", "first frame bytes");
    put_file(dir, "frames/frame_001.png", "second frame, longer bytes");
    put_file(dir, "comic_page_1.png", "a page");
    put_file(dir, "index.html", "<html></html>");
}

static int test_roundtrip(void) {
    char dir[1024], err[2048];
    fresh_dir(dir, sizeof dir, "roundtrip");
    make_outputs(dir);
    Manifest m;
    CHECK(manifest_load(&m, dir, err, sizeof err) == 0 && strstr(err, "manifest.json") &&
              strstr(err, "not found") && m.n == 0,
          "no manifest yet: %s", err);
    manifest_free(&m);
    const char *hash = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    manifest_init(&m, dir, "configs/demo.yaml", hash);
    const char *info0[] = {"frame", "0", "seed", "2047", "prompt", tricky};
    CHECK(manifest_add_file(&m, "frames/frame_001.png", "frame", NULL, 0, err, sizeof err), "%s",
          err);
    CHECK(manifest_add_file(&m, "frames/frame_000.png", "frame", info0, 3, err, sizeof err), "%s",
          err);
    CHECK(manifest_add_file(&m, "comic_page_1.png", "page", NULL, 0, err, sizeof err), "%s", err);
    CHECK(manifest_add_file(&m, "index.html", "index", NULL, 0, err, sizeof err), "%s", err);
    // adding a path again replaces its entry
    const char *info1[] = {"frame", "1", "seed", "2048"};
    CHECK(manifest_add_file(&m, "frames/frame_001.png", "frame", info1, 2, err, sizeof err), "%s",
          err);
    CHECK(m.n == 4, "%d entries", m.n);
    CHECK(manifest_write(&m, err, sizeof err) == 0, "%s", err);
    char mpath[2048];
    snprintf(mpath, sizeof mpath, "%s/manifest.json", dir);
    char *first = slurp(mpath);
    CHECK(first && strstr(first, "\"format\": 1") && strstr(first, story_version()),
          "manifest text:\n%s", first);
    manifest_free(&m);

    Manifest r;
    CHECK(manifest_load(&r, dir, err, sizeof err) == 1, "%s", err);
    CHECK(r.n == 4 && r.format == MANIFEST_FORMAT && !strcmp(r.config_hash, hash) &&
              !strcmp(r.config_path, "configs/demo.yaml") &&
              !strcmp(r.storyrun_version, story_version()),
          "header: %d entries, hash %s", r.n, r.config_hash);
    // written sorted by path
    CHECK(r.n == 4 && !strcmp(r.entries[0].path, "comic_page_1.png") &&
              !strcmp(r.entries[1].path, "frames/frame_000.png") &&
              !strcmp(r.entries[3].path, "index.html"),
          "order");
    ManifestEntry *e0 = manifest_find(&r, "frames/frame_000.png");
    ManifestEntry *e1 = manifest_find(&r, "frames/frame_001.png");
    char want[65];
    sha256_hex("first frame bytes", 17, want);
    CHECK(e0 && !strcmp(e0->kind, "frame") && e0->bytes == 17 && !strcmp(e0->sha256, want),
          "frame 0 entry");
    // invalid UTF-8 is stored as U+FFFD, the rest exactly
    const char *p = e0 ? manifest_entry_get(e0, "prompt") : NULL;
    CHECK(p && !strncmp(p, tricky, strlen(tricky) - 15) && strstr(p, "\xef\xbf\xbd"), "prompt: %s",
          p ? p : "(none)");
    CHECK(e0 && !strcmp(manifest_entry_get(e0, "seed"), "2047") && e0->n_fields == 3,
          "frame 0 fields");
    CHECK(e1 && !strcmp(manifest_entry_get(e1, "seed"), "2048") &&
              manifest_entry_get(e1, "prompt") == NULL,
          "frame 1 fields");
    CHECK(manifest_verify(dir, err, sizeof err) == 4, "verify: %s", err);
    CHECK(manifest_entry_verify(&r, e0, err, sizeof err) == 0, "%s", err);

    // the same entries added in another order give the same bytes; re-saving a loaded
    // manifest too
    CHECK(manifest_write(&r, err, sizeof err) == 0, "%s", err);
    char *second = slurp(mpath);
    CHECK(first && second && !strcmp(first, second), "re-saved manifest differs");
    manifest_free(&r);
    manifest_init(&m, dir, "configs/demo.yaml", hash);
    manifest_add_file(&m, "index.html", "index", NULL, 0, err, sizeof err);
    manifest_add_file(&m, "frames/frame_001.png", "frame", info1, 2, err, sizeof err);
    manifest_add_file(&m, "comic_page_1.png", "page", NULL, 0, err, sizeof err);
    manifest_add_file(&m, "frames/frame_000.png", "frame", info0, 3, err, sizeof err);
    CHECK(manifest_write(&m, err, sizeof err) == 0, "%s", err);
    char *third = slurp(mpath);
    CHECK(first && third && !strcmp(first, third), "order changed the bytes");
    // removal
    CHECK(manifest_remove(&m, "index.html") == 1 && manifest_remove(&m, "index.html") == 0 &&
              m.n == 3,
          "remove");
    // paths outside the folder are refused
    CHECK(!manifest_add_file(&m, "../etc/passwd", "frame", NULL, 0, err, sizeof err) &&
              strstr(err, "../etc/passwd"),
          "dot-dot: %s", err);
    CHECK(!manifest_add_file(&m, "/etc/passwd", "frame", NULL, 0, err, sizeof err), "absolute");
    CHECK(!manifest_add_file(&m, "frames//x.png", "frame", NULL, 0, err, sizeof err), "empty part");
    CHECK(!manifest_add_file(&m, "frames/none.png", "frame", NULL, 0, err, sizeof err) &&
              strstr(err, "frames/none.png"),
          "missing file: %s", err);
    // an empty manifest round-trips too
    manifest_free(&m);
    char empty[1024];
    fresh_dir(empty, sizeof empty, "roundtrip_empty");
    manifest_init(&m, empty, NULL, NULL);
    CHECK(manifest_write(&m, err, sizeof err) == 0, "%s", err);
    manifest_free(&m);
    CHECK(manifest_load(&m, empty, err, sizeof err) == 1 && m.n == 0 && !strcmp(m.config_hash, ""),
          "empty: %s", err);
    CHECK(manifest_verify(empty, err, sizeof err) == 0, "empty verify: %s", err);
    manifest_free(&m);
    free(first);
    free(second);
    free(third);
    return 0;
}

static int test_tamper(void) {
    char dir[1024], err[4096];
    fresh_dir(dir, sizeof dir, "tamper");
    make_outputs(dir);
    Manifest m;
    manifest_init(&m, dir, "c.yaml", "");
    const char *files[] = {"frames/frame_000.png", "frames/frame_001.png", "comic_page_1.png",
                           "index.html"};
    for (int i = 0; i < 4; i++)
        CHECK(manifest_add_file(&m, files[i], "frame", NULL, 0, err, sizeof err), "%s", err);
    CHECK(manifest_write(&m, err, sizeof err) == 0, "%s", err);
    manifest_free(&m);
    CHECK(manifest_verify(dir, err, sizeof err) == 4, "%s", err);
    // same size, one byte changed
    put_file(dir, "frames/frame_000.png", "first frame bytez");
    CHECK(manifest_verify(dir, err, sizeof err) < 0 && strstr(err, "frames/frame_000.png") &&
              strstr(err, "SHA-256") && !strstr(err, "frame_001"),
          "changed byte: %s", err);
    // plus a truncated file and a deleted one: all three reported, one per line
    put_file(dir, "comic_page_1.png", "a pag");
    char path[2048];
    snprintf(path, sizeof path, "%s/index.html", dir);
    unlink(path);
    CHECK(manifest_verify(dir, err, sizeof err) < 0, "three problems");
    CHECK(strstr(err, "frames/frame_000.png") && strstr(err, "comic_page_1.png: 5 bytes") &&
              strstr(err, "index.html: listed in") && strstr(err, "missing"),
          "messages:\n%s", err);
    int lines = 1;
    for (const char *s = err; *s; s++) lines += *s == '\n';
    CHECK(lines == 3, "%d lines:\n%s", lines, err);
    // a short message buffer is cut, not overrun
    char small[40];
    memset(small, 'x', sizeof small);
    CHECK(manifest_verify(dir, small, 20) < 0 && strlen(small) < 20 && small[21] == 'x',
          "short buffer");
    return 0;
}

// Writes text as DIR/manifest.json and loads it; returns manifest_load's result.
static int load_text(const char *dir, const char *text, char *err, size_t errlen) {
    put_file(dir, "manifest.json", text);
    Manifest m;
    int rc = manifest_load(&m, dir, err, errlen);
    CHECK(m.n == 0 || rc == 1, "a failed load leaves entries");
    manifest_free(&m);
    return rc;
}

static int test_corrupt(void) {
    char dir[1024], err[2048], mpath[2048];
    fresh_dir(dir, sizeof dir, "corrupt");
    snprintf(mpath, sizeof mpath, "%s/manifest.json", dir);
    const char *zeros = "0000000000000000000000000000000000000000000000000000000000000000";
    char good[1024];
    snprintf(good, sizeof good,
             "{\"format\": 1, \"storyrun\": \"0.1.0\", \"config\": \"c.yaml\", \"config_hash\": "
             "\"\", \"outputs\": [{\"path\": \"a.png\", \"kind\": \"frame\", \"bytes\": 3, "
             "\"sha256\": \"%s\"}]}",
             zeros);
    CHECK(load_text(dir, good, err, sizeof err) == 1, "good: %s", err);
    static const struct {
        const char *text, *want;  // want: a substring of the message
    } bad[] = {
        {"{\"format\": 1, \"storyrun\": ", "line 1"},
        {"", "expected a storyrun manifest"},
        {"[1, 2]", "expected a manifest object"},
        {"{\"storyrun\": \"x\"}", "no \"format\""},
        {"{\"format\": 99, \"storyrun\": \"9\", \"config\": \"\", \"config_hash\": \"\", "
         "\"outputs\": []}",
         "format 99"},
        {"{\"format\": 1, \"config\": \"\", \"config_hash\": \"\", \"outputs\": []}",
         "no \"storyrun\""},
        {"{\"format\": 1, \"storyrun\": \"0\", \"config\": \"\", \"config_hash\": \"\"}",
         "\"outputs\": expected an array"},
        {"{\"format\": 1, \"storyrun\": \"0\", \"config\": \"\", \"config_hash\": \"\",\n"
         " \"outputs\": [{\"path\": \"a.png\", \"kind\": \"frame\", \"bytes\": 3}]}",
         "output 0 has no \"sha256\""},
        {"{\"format\": 1, \"storyrun\": \"0\", \"config\": \"\", \"config_hash\": \"\",\n"
         " \"outputs\": [{\"path\": \"../a.png\", \"kind\": \"f\", \"bytes\": 3, \"sha256\": "
         "\"0000000000000000000000000000000000000000000000000000000000000000\"}]}",
         "line 2"},
        {"{\"format\": 1, \"storyrun\": \"0\", \"config\": \"\", \"config_hash\": \"\",\n"
         " \"outputs\": [{\"path\": \"a.png\", \"kind\": \"f\", \"bytes\": -3, \"sha256\": "
         "\"0000000000000000000000000000000000000000000000000000000000000000\"}]}",
         "bytes"},
        {"{\"format\": 1, \"storyrun\": \"0\", \"config\": \"\", \"config_hash\": \"\",\n"
         " \"outputs\": [{\"path\": \"a.png\", \"kind\": \"f\", \"bytes\": 3, \"sha256\": "
         "\"00\"}]}",
         "64 lowercase hex"},
        {"{\"format\": 1, \"storyrun\": \"0\", \"config\": \"\", \"config_hash\": \"\",\n"
         " \"outputs\": [{\"path\": \"a.png\", \"kind\": \"f\", \"bytes\": 3, \"sha256\": "
         "\"0000000000000000000000000000000000000000000000000000000000000000\", \"info\": "
         "{\"seed\": 5}}]}",
         "seed"},
        {"{\"format\": 1, \"storyrun\": \"0\", \"config\": \"\", \"config_hash\": \"\",\n"
         " \"outputs\": [{\"path\": \"a.png\", \"kind\": \"f\", \"bytes\": 3, \"sha256\": "
         "\"0000000000000000000000000000000000000000000000000000000000000000\"},\n"
         " {\"path\": \"a.png\", \"kind\": \"f\", \"bytes\": 3, \"sha256\": "
         "\"0000000000000000000000000000000000000000000000000000000000000000\"}]}",
         "listed twice"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = load_text(dir, bad[i].text, err, sizeof err);
        CHECK(rc == -1 && strstr(err, mpath) && strstr(err, bad[i].want),
              "case %zu: rc %d, message \"%s\" lacks \"%s\"", i, rc, err, bad[i].want);
    }
    // verify reports a broken manifest by name
    put_file(dir, "manifest.json", "{not json");
    CHECK(manifest_verify(dir, err, sizeof err) < 0 && strstr(err, mpath), "verify: %s", err);
    // and a folder without one
    char none[1024];
    fresh_dir(none, sizeof none, "corrupt_none");
    CHECK(manifest_verify(none, err, sizeof err) < 0 && strstr(err, "not found"), "none: %s", err);
    return 0;
}

static int count_temps(const char *dir) {
    int n = 0;
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d))) n += strstr(e->d_name, ".tmp-") != NULL;
    if (d) closedir(d);
    return n;
}

static int test_atomic(void) {
    char dir[1024], err[2048], path[2048];
    fresh_dir(dir, sizeof dir, "atomic");
    snprintf(path, sizeof path, "%s/out.txt", dir);
    CHECK(file_write_atomic(path, "old", 3, err, sizeof err) == 0, "%s", err);
    CHECK(file_write_atomic(path, "new text", 8, err, sizeof err) == 0, "%s", err);
    char *s = slurp(path);
    CHECK(s && !strcmp(s, "new text"), "content %s", s ? s : "(none)");
    free(s);
    CHECK(count_temps(dir) == 0, "temporary files left");
    snprintf(path, sizeof path, "%s/no/such/dir/out.txt", dir);
    CHECK(file_write_atomic(path, "x", 1, err, sizeof err) < 0 && strstr(err, path),
          "missing folder: %s", err);
    // a manifest into a missing folder fails with its name; nothing is created
    Manifest m;
    char gone[2048];
    snprintf(gone, sizeof gone, "%s/gone", dir);
    manifest_init(&m, gone, NULL, NULL);
    CHECK(manifest_write(&m, err, sizeof err) < 0 && strstr(err, "gone/manifest.json"), "%s", err);
    manifest_free(&m);
    struct stat st;
    CHECK(stat(gone, &st) != 0, "folder created");
    return 0;
}

static int count(const char *hay, const char *needle) {
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle)) n++;
    return n;
}

static int test_html(void) {
    char *e = html_escape("<a href=\"x\">Tom & 'Jerry'</a>");
    CHECK(!strcmp(e, "&lt;a href=&quot;x&quot;&gt;Tom &amp; &#39;Jerry&#39;&lt;/a&gt;"), "%s", e);
    free(e);
    e = html_escape("");
    CHECK(e && !*e, "empty");
    free(e);
    char *u = html_url_path("my frames/a b#1?&\"<.png");
    CHECK(!strcmp(u, "my%20frames/a%20b%231%3F%26%22%3C.png"), "%s", u);
    free(u);

    HtmlFrame fr[3] = {
        {"frames/frame_000.png", "Bob <wakes> up", "a man & his <script>alert(1)</script>", 7},
        {"frames/frame_001.png", NULL, "prompt \"two\" — café", 8},
        {NULL, "lost", "a frame that failed", 9},
    };
    const char *pages[2] = {"comic/page_1.png", "comic/page 2.png"};
    HtmlSetting extra[1] = {{"CSA sa32", "0.5"}};
    HtmlStory s = {.title = "demo <story>",
                   .frames = fr,
                   .n_frames = 3,
                   .pages = pages,
                   .n_pages = 2,
                   .model = "builtin:tiny-sdxl",
                   .sampler = "euler",
                   .csa_mode = "bank",
                   .style = "Comic book",
                   .negative = "bad & ugly",
                   .precision = "fp32",
                   .config_path = "configs/demo.yaml",
                   .config_hash = "abc123",
                   .seed = 2047,
                   .steps = 20,
                   .width = 64,
                   .height = 48,
                   .guidance = 5.0,
                   .extra = extra,
                   .n_extra = 1};
    char *doc = html_render(&s);
    CHECK(!strstr(doc, "<script") && !strstr(doc, "http://") && !strstr(doc, "https://") &&
              !strstr(doc, "javascript:"),
          "scripts or network references");
    CHECK(strstr(doc, "a man &amp; his &lt;script&gt;alert(1)&lt;/script&gt;") != NULL,
          "prompt 0 not escaped");
    CHECK(strstr(doc, "Bob &lt;wakes&gt; up") && strstr(doc, "prompt &quot;two&quot; — café"),
          "caption/prompt 1");
    CHECK(strstr(doc, "<title>demo &lt;story&gt;</title>") != NULL, "title");
    CHECK(count(doc, "src=\"frames/frame_000.png\"") == 1 &&
              count(doc, "src=\"frames/frame_001.png\"") == 1,
          "frame images");
    CHECK(count(doc, "<figure") == 3 && strstr(doc, "not rendered") &&
              strstr(doc, "a frame that failed"),
          "every frame listed");
    CHECK(strstr(doc, "src=\"comic/page_1.png\"") && strstr(doc, "src=\"comic/page%202.png\""),
          "pages");
    CHECK(strstr(doc, "<th>model</th><td>builtin:tiny-sdxl</td>") &&
              strstr(doc, "<th>seed</th><td>2047</td>") &&
              strstr(doc, "<th>steps</th><td>20</td>") &&
              strstr(doc, "<th>sampler</th><td>euler</td>") &&
              strstr(doc, "<th>size</th><td>64x48</td>") &&
              strstr(doc, "<th>CSA mode</th><td>bank</td>") &&
              strstr(doc, "<th>guidance</th><td>5</td>") &&
              strstr(doc, "<th>negative prompt</th><td>bad &amp; ugly</td>") &&
              strstr(doc, "<th>CSA sa32</th><td>0.5</td>"),
          "settings table:\n%s", doc);
    CHECK(strstr(doc, "seed 7") && strstr(doc, "seed 9"), "per-frame seeds");
    // no stray markup from user text: every '<' starts a tag storyrun wrote
    int opens = count(doc, "<"), closes = count(doc, ">");
    CHECK(opens == closes, "%d '<' vs %d '>'", opens, closes);

    char dir[1024], err[1024], path[2048];
    fresh_dir(dir, sizeof dir, "html");
    snprintf(path, sizeof path, "%s/index.html", dir);
    CHECK(html_write_index(path, &s, err, sizeof err) == 0, "%s", err);
    char *back = slurp(path);
    CHECK(back && !strcmp(back, doc), "written file differs from the rendering");
    CHECK(count_temps(dir) == 0, "temporary files left");
    free(back);
    free(doc);
    snprintf(path, sizeof path, "%s/missing/index.html", dir);
    CHECK(html_write_index(path, &s, err, sizeof err) < 0 && strstr(err, path), "%s", err);
    return 0;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s sha|roundtrip|tamper|corrupt|atomic|html WORKDIR\n", argv[0]);
        return 2;
    }
    workdir = argv[2];
    if (mkdir(workdir, 0777) != 0 && errno != EEXIST) {
        perror(workdir);
        return 2;
    }
    const char *mode = argv[1];
    int rc = !strcmp(mode, "sha")         ? test_sha()
             : !strcmp(mode, "roundtrip") ? test_roundtrip()
             : !strcmp(mode, "tamper")    ? test_tamper()
             : !strcmp(mode, "corrupt")   ? test_corrupt()
             : !strcmp(mode, "atomic")    ? test_atomic()
             : !strcmp(mode, "html")      ? test_html()
                                          : (fprintf(stderr, "unknown mode %s\n", mode), 2);
    printf("outputs_%s: %d checks, %d failure(s)\n", mode, checks, failures);
    return rc || failures ? 1 : 0;
}

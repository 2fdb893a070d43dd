// tests/image/test_image.c: runner/image.c. One executable, one mode per ctest:
//   roundtrip   RGB, RGBA, gray and gray+alpha images written and read back bit-exactly;
//               palette / 16-bit / 1-bit PNGs (written here with libpng) read as 8-bit
//   text        tEXt (ASCII) and iTXt (UTF-8) chunks read back with libpng; bad keywords
//   atomic      no temporary file is left after writes, an existing file is replaced whole,
//               a failed write leaves the old file untouched and no temporary file
//   errors      unwritable / missing folder, not-a-PNG, truncated PNG, missing file: -1 with
//               a message naming the file
//   tensor      (N, 3, H, W) in [-1, 1] -> pixels exactly as diffusers' image processor
//               (values computed here with the same float32 steps, round half to even)
// Usage: test_image MODE WORKDIR
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <png.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runner/image.h"

#include "tests/common/test_check.h"

static const char *work;

static const char *wpath(const char *name) {
    static char buf[8][4096];
    static int k;
    char *p = buf[k++ % 8];
    snprintf(p, 4096, "%s/%s", work, name);
    return p;
}

// Files in the work folder whose names contain ".tmp".
static int temp_files(void) {
    DIR *d = opendir(work);
    if (!d) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strstr(e->d_name, ".tmp")) n++;
    closedir(d);
    return n;
}

static void fill(Image *img, unsigned seed) {
    size_t n = (size_t)img->width * img->height * img->channels;
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        img->pixels[i] = (uint8_t)(seed >> 24);
    }
}

static void roundtrip(void) {
    const int sizes[][2] = {{1, 1}, {17, 5}, {64, 48}};
    for (int s = 0; s < 3; s++)
        for (int ch = 1; ch <= 4; ch++) {
            Image a, b;
            char err[512];
            CHECK(!image_alloc(&a, sizes[s][0], sizes[s][1], ch, err, sizeof err), "%s", err);
            fill(&a, (unsigned)(s * 10 + ch));
            const char *p = wpath("rt.png");
            CHECK(!image_write_png(p, &a, NULL, 0, err, sizeof err), "%s", err);
            int rc = image_read_png(p, &b, err, sizeof err);
            CHECK(!rc, "%s", err);
            if (!rc) {
                CHECK(b.width == a.width && b.height == a.height && b.channels == ch,
                      "%dx%dx%d read back as %dx%dx%d", a.width, a.height, ch, b.width, b.height,
                      b.channels);
                CHECK(!memcmp(a.pixels, b.pixels, (size_t)a.width * a.height * ch),
                      "pixels differ (%dx%dx%d)", a.width, a.height, ch);
                CHECK(b.ntext == 0, "%d text chunks", b.ntext);
            }
            image_free(&a);
            image_free(&b);
        }
    // bad sizes
    Image z;
    char err[512];
    CHECK(image_alloc(&z, 0, 4, 3, err, sizeof err) == -1 && strstr(err, "1..32768"), "%s", err);
    CHECK(image_alloc(&z, 4, 4, 5, err, sizeof err) == -1, "5 channels accepted");
}

// A PNG in a format image_write_png never makes, written with libpng directly.
static void write_raw_png(const char *path, int w, int h, int depth, int color,
                          const uint8_t *rows_data, size_t stride, const png_color *pal, int npal,
                          const uint8_t *trns, int ntrns) {
    FILE *f = fopen(path, "wb");
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    if (setjmp(png_jmpbuf(png))) {
        fprintf(stderr, "libpng failed writing %s\n", path);
        exit(1);
    }
    png_init_io(png, f);
    png_set_IHDR(png, info, w, h, depth, color, PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
                 PNG_FILTER_TYPE_DEFAULT);
    if (pal) png_set_PLTE(png, info, pal, npal);
    if (trns) png_set_tRNS(png, info, trns, ntrns, NULL);
    png_write_info(png, info);
    for (int y = 0; y < h; y++) png_write_row(png, rows_data + (size_t)y * stride);
    png_write_end(png, info);
    png_destroy_write_struct(&png, &info);
    fclose(f);
}

static void other_formats(void) {
    char err[512];
    Image b;
    // palette 2x2 with a transparent entry -> RGBA
    png_color pal[3] = {{255, 0, 0}, {0, 255, 0}, {0, 0, 255}};
    uint8_t trns[3] = {255, 128, 0};
    uint8_t idx[4] = {0, 1, 2, 1};
    write_raw_png(wpath("pal.png"), 2, 2, 8, PNG_COLOR_TYPE_PALETTE, idx, 2, pal, 3, trns, 3);
    int rc = image_read_png(wpath("pal.png"), &b, err, sizeof err);
    CHECK(!rc, "%s", err);
    if (!rc) {
        const uint8_t want[16] = {255, 0, 0, 255, 0, 255, 0, 128, 0, 0, 255, 0, 0, 255, 0, 128};
        CHECK(b.channels == 4 && !memcmp(b.pixels, want, 16), "palette+tRNS -> RGBA (%d ch)",
              b.channels);
    }
    image_free(&b);
    // 16-bit RGB: the high byte of each sample (libpng strips to the top 8 bits)
    uint8_t rgb16[2 * 6] = {0x12, 0x34, 0xab, 0xcd, 0xff, 0xff, 0x00, 0x01, 0x80, 0x00, 0x7f, 0xff};
    write_raw_png(wpath("rgb16.png"), 2, 1, 16, PNG_COLOR_TYPE_RGB, rgb16, 12, NULL, 0, NULL, 0);
    rc = image_read_png(wpath("rgb16.png"), &b, err, sizeof err);
    CHECK(!rc, "%s", err);
    if (!rc) {
        const uint8_t want[6] = {0x12, 0xab, 0xff, 0x00, 0x80, 0x7f};
        CHECK(b.channels == 3 && !memcmp(b.pixels, want, 6), "16-bit RGB -> 8-bit");
    }
    image_free(&b);
    // 1-bit gray: 0 -> 0, 1 -> 255
    uint8_t bits[1] = {0xa0};  // 1 0 1 0
    write_raw_png(wpath("g1.png"), 4, 1, 1, PNG_COLOR_TYPE_GRAY, bits, 1, NULL, 0, NULL, 0);
    rc = image_read_png(wpath("g1.png"), &b, err, sizeof err);
    CHECK(!rc, "%s", err);
    if (!rc) {
        const uint8_t want[4] = {255, 0, 255, 0};
        CHECK(b.channels == 1 && !memcmp(b.pixels, want, 4), "1-bit gray -> 8-bit");
    }
    image_free(&b);
}

// Text chunks, read back with libpng itself (not image_read_png): key, text, and which
// chunk type carries it.
static void text(void) {
    Image a;
    char err[512];
    image_alloc(&a, 8, 8, 3, err, sizeof err);
    fill(&a, 7);
    const char *utf8 = "a caf\xc3\xa9 in Z\xc3\xbcrich, \xe2\x98\x95";
    const ImageText t[] = {
        {"prompt", utf8}, {"negative prompt", "blurry, low quality"},
        {"seed", "42"},   {"model", "builtin:tiny-sd15"},
        {"empty", ""},
    };
    const char *p = wpath("text.png");
    CHECK(!image_write_png(p, &a, t, 5, err, sizeof err), "%s", err);
    FILE *f = fopen(p, "rb");
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    if (setjmp(png_jmpbuf(png))) {
        CHECK(0, "libpng could not read %s", p);
        return;
    }
    png_init_io(png, f);
    png_read_png(png, info, PNG_TRANSFORM_IDENTITY, NULL);
    png_textp tx;
    int n = 0;
    png_get_text(png, info, &tx, &n);
    CHECK(n == 5, "%d text chunks", n);
    for (int i = 0; i < n && i < 5; i++) {
        CHECK(!strcmp(tx[i].key, t[i].key), "key %d: %s", i, tx[i].key);
        size_t len =
            tx[i].compression >= PNG_ITXT_COMPRESSION_NONE ? tx[i].itxt_length : tx[i].text_length;
        CHECK(len == strlen(t[i].value) && !memcmp(tx[i].text, t[i].value, len), "value of %s",
              t[i].key);
        bool itxt = tx[i].compression >= PNG_ITXT_COMPRESSION_NONE;
        CHECK(itxt == (i == 0), "%s: %s chunk", t[i].key, itxt ? "iTXt" : "tEXt");
    }
    png_destroy_read_struct(&png, &info, NULL);
    fclose(f);
    // and through image_read_png
    Image b;
    CHECK(!image_read_png(p, &b, err, sizeof err), "%s", err);
    CHECK(b.ntext == 5 && image_text(&b, "prompt") && !strcmp(image_text(&b, "prompt"), utf8),
          "image_text(prompt)");
    CHECK(image_text(&b, "seed") && !strcmp(image_text(&b, "seed"), "42"), "seed");
    CHECK(image_text(&b, "empty") && !strcmp(image_text(&b, "empty"), ""), "empty value");
    CHECK(!image_text(&b, "nope"), "absent key");
    image_free(&b);
    // bad keywords: refused before anything is written
    const char *bad[] = {
        "",
        " lead",
        "trail ",
        "two  spaces",
        "tab\there",
        "a-keyword-that-is-much-too-long-for-png-because-it-has-more-than-seventy-nine-characters"};
    for (int i = 0; i < 6; i++) {
        ImageText bt = {bad[i], "v"};
        const char *q = wpath("badkey.png");
        int rc = image_write_png(q, &a, &bt, 1, err, sizeof err);
        CHECK(rc == -1 && strstr(err, "keyword") && strstr(err, q), "keyword \"%s\": %s", bad[i],
              err);
        CHECK(access(q, F_OK) != 0, "%s exists after a refused write", q);
    }
    CHECK(temp_files() == 0, "%d temporary files left", temp_files());
    image_free(&a);
}

static long file_size(const char *p) {
    struct stat s;
    return stat(p, &s) ? -1 : (long)s.st_size;
}

static void atomic(void) {
    char err[512];
    Image a, b, r;
    image_alloc(&a, 32, 32, 3, err, sizeof err);
    image_alloc(&b, 16, 16, 4, err, sizeof err);
    fill(&a, 1);
    fill(&b, 2);
    const char *p = wpath("atomic.png");
    for (int i = 0; i < 5; i++) {
        CHECK(!image_write_png(p, i % 2 ? &b : &a, NULL, 0, err, sizeof err), "%s", err);
        CHECK(temp_files() == 0, "write %d left %d temporary files", i, temp_files());
    }
    // the last write (a) replaced the file whole
    CHECK(!image_read_png(p, &r, err, sizeof err) && r.width == 32 && r.channels == 3 &&
              !memcmp(r.pixels, a.pixels, 32 * 32 * 3),
          "replaced file is not the last image");
    image_free(&r);
    // the file mode follows the umask like any new file (not mkstemp's 0600)
    struct stat s;
    mode_t um = umask(022);
    umask(um);
    CHECK(!stat(p, &s) && (s.st_mode & 0777) == (0666 & ~um), "mode %o",
          (unsigned)(s.st_mode & 0777));
    // a refused write (an empty image) leaves the existing file as it was
    long before = file_size(p);
    Image bad = a;
    bad.width = 0;
    CHECK(image_write_png(p, &bad, NULL, 0, err, sizeof err) == -1, "empty image written");
    CHECK(file_size(p) == before, "failed write changed %s", p);
    // a path whose folder is a file: cannot create the temporary file
    const char *q = wpath("atomic.png/x.png");
    CHECK(image_write_png(q, &a, NULL, 0, err, sizeof err) == -1 && strstr(err, q), "%s", err);
    CHECK(file_size(p) == before && temp_files() == 0, "after a failed write");
    // writing over a folder: the rename fails, the temporary file is removed
    mkdir(wpath("adir.png"), 0755);
    q = wpath("adir.png");
    int rc = image_write_png(q, &a, NULL, 0, err, sizeof err);
    CHECK(rc == -1 && strstr(err, "rename") && strstr(err, q), "rename over a folder: %s",
          rc ? err : "ok");
    CHECK(temp_files() == 0, "rename failure left %d temporary files", temp_files());
    rmdir(q);
    image_free(&a);
    image_free(&b);
}

static void errors(void) {
    char err[512];
    Image a, r;
    image_alloc(&a, 4, 4, 3, err, sizeof err);
    // missing folder
    const char *p = wpath("no/such/dir/x.png");
    CHECK(image_write_png(p, &a, NULL, 0, err, sizeof err) == -1 && strstr(err, p) &&
              strstr(err, "No such file"),
          "%s", err);
    // unwritable folder: a read-only one; root may write anywhere, but not into sysfs
    const char *ro = wpath("readonly");
    mkdir(ro, 0755);
    chmod(ro, 0555);
    p = geteuid() != 0 ? wpath("readonly/x.png") : "/sys/storyrun-test.png";
    CHECK(image_write_png(p, &a, NULL, 0, err, sizeof err) == -1 && strstr(err, p) &&
              strstr(err, "Permission denied"),
          "%s", err);
    chmod(ro, 0755);
    // reading: missing, not a PNG, truncated
    p = wpath("missing.png");
    CHECK(image_read_png(p, &r, err, sizeof err) == -1 && strstr(err, p), "%s", err);
    p = wpath("notpng.png");
    FILE *f = fopen(p, "wb");
    fputs("GIF89a not a png at all", f);
    fclose(f);
    CHECK(
        image_read_png(p, &r, err, sizeof err) == -1 && strstr(err, p) && strstr(err, "not a PNG"),
        "%s", err);
    fill(&a, 3);
    p = wpath("trunc.png");
    image_write_png(p, &a, NULL, 0, err, sizeof err);
    long n = file_size(p);
    CHECK(truncate(p, n - 20) == 0, "truncate");
    CHECK(image_read_png(p, &r, err, sizeof err) == -1 && strstr(err, p) && strstr(err, "bad PNG"),
          "%s", err);
    CHECK(r.pixels == NULL, "pixels left after a failed read");
    image_free(&a);
}

// diffusers: (x * 0.5 + 0.5).clamp(0, 1) in float32, then (v * 255).round() in float32
// (numpy rounds half to even), astype(uint8).
static void tensor(void) {
    enum { N = 2, H = 3, W = 5 };
    float x[N * 3 * H * W];
    // values around every rounding boundary k + 0.5 of v * 255, plus out-of-range ones
    for (int i = 0; i < N * 3 * H * W; i++) x[i] = -1.2f + 2.4f * (float)i / (N * 3 * H * W - 1);
    x[0] = -1.0f;
    x[1] = 1.0f;
    x[2] = 0.0f;                     // v = 0.5, 127.5 -> 128 (half to even)
    x[3] = (1.5f / 255.0f) * 2 - 1;  // v*255 near 1.5
    x[4] = (2.5f / 255.0f) * 2 - 1;  // near 2.5
    x[5] = NAN;
    Tensor t = tensor_view(x, DT_F32, DEV_CPU, 4, (const int64_t[]){N, 3, H, W});
    char err[256];
    for (int n = 0; n < N; n++) {
        Image img;
        CHECK(!image_from_tensor(&t, n, &img, err, sizeof err), "%s", err);
        int bad = 0;
        for (int c = 0; c < 3; c++)
            for (int i = 0; i < H * W; i++) {
                float v = x[((n * 3) + c) * H * W + i];
                float u = v * 0.5f + 0.5f;
                u = u < 0 ? 0 : u > 1 ? 1 : u;
                float s = u * 255.0f;
                double fl = floor((double)s), fr = (double)s - fl;
                double r = fr > 0.5 ? fl + 1 : fr < 0.5 ? fl : (fmod(fl, 2) == 0 ? fl : fl + 1);
                uint8_t want = isnan(v) ? 0 : (uint8_t)r;
                if (img.pixels[i * 3 + c] != want) bad++;
            }
        CHECK(bad == 0, "image %d: %d pixels differ from diffusers' rounding", n, bad);
        if (n == 0)
            CHECK(img.pixels[0] == 0 && img.pixels[3] == 255 && img.pixels[6] == 128,
                  "-1 -> 0, 1 -> 255, 0 -> 128: %d %d %d", img.pixels[0], img.pixels[3],
                  img.pixels[6]);
        image_free(&img);
    }
    Image img;
    Tensor bad = tensor_view(x, DT_F32, DEV_CPU, 4, (const int64_t[]){N, 4, H, W / 2});
    CHECK(image_from_tensor(&bad, 0, &img, err, sizeof err) == -1 && strstr(err, "(N, 3, H, W)"),
          "%s", err);
    CHECK(image_from_tensor(&t, N, &img, err, sizeof err) == -1, "index out of range accepted");
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: test_image roundtrip|text|atomic|errors|tensor WORKDIR\n");
        return 2;
    }
    work = argv[2];
    mkdir(work, 0755);
    DIR *d = opendir(work);  // leftovers of an earlier run
    for (struct dirent *e; d && (e = readdir(d));)
        if (e->d_name[0] != '.' || strstr(e->d_name, ".tmp")) {
            char p[4096];
            snprintf(p, sizeof p, "%s/%s", work, e->d_name);
            if (unlink(p)) rmdir(p);
        }
    if (d) closedir(d);
    const char *mode = argv[1];
    if (!strcmp(mode, "roundtrip")) {
        roundtrip();
        other_formats();
    } else if (!strcmp(mode, "text"))
        text();
    else if (!strcmp(mode, "atomic"))
        atomic();
    else if (!strcmp(mode, "errors"))
        errors();
    else if (!strcmp(mode, "tensor"))
        tensor();
    else {
        fprintf(stderr, "unknown mode %s\n", mode);
        return 2;
    }
    printf("image_%s: %d checks, %d failure(s)\n", mode, checks, failures);
    return failures ? 1 : 0;
}

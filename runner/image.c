// runner/image.c: PNG files with libpng, written atomically (see image.h).
#include "runner/image.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <png.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "runner/check.h"

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

int image_alloc(Image *img, int width, int height, int channels, char *err, size_t errlen) {
    memset(img, 0, sizeof *img);
    if (width < 1 || height < 1 || width > IMAGE_MAX_SIDE || height > IMAGE_MAX_SIDE)
        return fail(err, errlen, "image size %dx%d: each side must be 1..%d", width, height,
                    IMAGE_MAX_SIDE);
    if (channels < 1 || channels > 4)
        return fail(err, errlen, "image with %d channels: expected 1 to 4", channels);
    img->width = width;
    img->height = height;
    img->channels = channels;
    img->pixels = calloc((size_t)width * (size_t)height * (size_t)channels, 1);
    if (!img->pixels) return fail(err, errlen, "out of memory for a %dx%d image", width, height);
    return 0;
}

void image_free(Image *img) {
    if (!img) return;
    for (int i = 0; i < img->ntext; i++) {
        free(img->text_keys[i]);
        free(img->text_values[i]);
    }
    free(img->text_keys);
    free(img->text_values);
    free(img->pixels);
    memset(img, 0, sizeof *img);
}

const char *image_text(const Image *img, const char *key) {
    for (int i = 0; i < img->ntext; i++)
        if (!strcmp(img->text_keys[i], key)) return img->text_values[i];
    return NULL;
}

// ---- libpng glue ----------------------------------------------------------------------

// libpng reports errors through a callback that must not return: keep the message, jump.
typedef struct {
    jmp_buf jmp;
    char msg[256];
} PngCtx;

static void png_on_error(png_structp png, png_const_charp msg) {
    PngCtx *c = png_get_error_ptr(png);
    snprintf(c->msg, sizeof c->msg, "%s", msg);
    longjmp(c->jmp, 1);
}

static void png_on_warning(png_structp png, png_const_charp msg) {
    (void)png;
    (void)msg;  // benign (e.g. an unknown chunk); a real problem is an error
}

// A PNG keyword: 1-79 printable Latin-1 bytes, no leading, trailing or double spaces.
static bool valid_keyword(const char *k) {
    size_t n = strlen(k);
    if (n < 1 || n > 79 || k[0] == ' ' || k[n - 1] == ' ') return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)k[i];
        if (c < 32 || (c > 126 && c < 161)) return false;
        if (c == ' ' && k[i + 1] == ' ') return false;
    }
    return true;
}

static bool is_ascii(const char *s) {
    for (; *s; s++)
        if ((unsigned char)*s > 126 || ((unsigned char)*s < 32 && *s != '\n' && *s != '\t'))
            return false;
    return true;
}

static const int png_color_of[5] = {0, PNG_COLOR_TYPE_GRAY, PNG_COLOR_TYPE_GRAY_ALPHA,
                                    PNG_COLOR_TYPE_RGB, PNG_COLOR_TYPE_RGB_ALPHA};

// Encodes img into the open stream f. Returns 0, or -1 with the libpng message in c->msg.
static int png_encode(FILE *f, const Image *img, const ImageText *text, int ntext, PngCtx *c) {
    png_structp png =
        png_create_write_struct(PNG_LIBPNG_VER_STRING, c, png_on_error, png_on_warning);
    if (!png) return snprintf(c->msg, sizeof c->msg, "out of memory"), -1;
    png_infop info = png_create_info_struct(png);
    png_textp chunks = ntext > 0 ? calloc((size_t)ntext, sizeof *chunks) : NULL;
    png_bytepp rows = malloc((size_t)img->height * sizeof *rows);
    if (!info || (ntext > 0 && !chunks) || !rows) {
        png_destroy_write_struct(&png, info ? &info : NULL);
        free(chunks);
        free(rows);
        return snprintf(c->msg, sizeof c->msg, "out of memory"), -1;
    }
    if (setjmp(c->jmp)) {
        png_destroy_write_struct(&png, &info);
        free(chunks);
        free(rows);
        return -1;
    }
    png_init_io(png, f);
    png_set_IHDR(png, info, (png_uint_32)img->width, (png_uint_32)img->height, 8,
                 png_color_of[img->channels], PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
                 PNG_FILTER_TYPE_DEFAULT);
    for (int i = 0; i < ntext; i++) {
        chunks[i].key = (png_charp)text[i].key;
        chunks[i].text = (png_charp)text[i].value;
        if (is_ascii(text[i].value)) {
            chunks[i].compression = PNG_TEXT_COMPRESSION_NONE;
            chunks[i].text_length = strlen(text[i].value);
        } else {  // UTF-8: iTXt (tEXt is Latin-1)
            chunks[i].compression = PNG_ITXT_COMPRESSION_NONE;
            chunks[i].lang = (png_charp) "";
            chunks[i].lang_key = (png_charp) "";
            chunks[i].itxt_length = strlen(text[i].value);
        }
    }
    if (ntext > 0) png_set_text(png, info, chunks, ntext);
    size_t stride = (size_t)img->width * (size_t)img->channels;
    for (int y = 0; y < img->height; y++) rows[y] = img->pixels + (size_t)y * stride;
    png_set_rows(png, info, rows);
    png_write_png(png, info, PNG_TRANSFORM_IDENTITY, NULL);
    png_destroy_write_struct(&png, &info);
    free(chunks);
    free(rows);
    return 0;
}

// ---- writing --------------------------------------------------------------------------

// Creates a new file next to `path` (same folder, so rename is atomic) with a unique name:
// ".NAME.tmp-PID-N". Mode 0666 minus the umask, as a plain fopen would give.
static int open_temp(const char *path, char *tmp, size_t n) {
    const char *slash = strrchr(path, '/');
    int dirlen = slash ? (int)(slash - path + 1) : 0;
    static unsigned counter;
    for (int attempt = 0; attempt < 100; attempt++) {
        unsigned k = __atomic_fetch_add(&counter, 1, __ATOMIC_RELAXED);
        int w = snprintf(tmp, n, "%.*s.%s.tmp-%ld-%u", dirlen, path, slash ? slash + 1 : path,
                         (long)getpid(), k);
        if (w < 0 || (size_t)w >= n) {
            errno = ENAMETOOLONG;
            return -1;
        }
        int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (fd >= 0 || errno != EEXIST) return fd;
    }
    return -1;
}

// fsync of the folder holding `path`, so that the rename itself survives a crash.
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

int image_write_png(const char *path, const Image *img, const ImageText *text, int ntext, char *err,
                    size_t errlen) {
    if (!img || !img->pixels || img->width < 1 || img->height < 1 || img->channels < 1 ||
        img->channels > 4)
        return fail(err, errlen, "%s: nothing to write (an empty image)", path);
    for (int i = 0; i < ntext; i++) {
        if (!text[i].key || !valid_keyword(text[i].key))
            return fail(err, errlen,
                        "%s: text chunk keyword \"%s\" is not a PNG keyword (1-79 printable "
                        "Latin-1 characters, no leading, trailing or double spaces)",
                        path, text[i].key ? text[i].key : "(null)");
        if (!text[i].value)
            return fail(err, errlen, "%s: text chunk \"%s\" has no value", path, text[i].key);
    }
    char tmp[PATH_MAX];
    int fd = open_temp(path, tmp, sizeof tmp);
    if (fd < 0)
        return fail(err, errlen, "%s: cannot create a file there: %s", path, strerror(errno));
    FILE *f = fdopen(fd, "wb");
    if (!f) {
        int e = errno;
        close(fd);
        unlink(tmp);
        return fail(err, errlen, "%s: %s", tmp, strerror(e));
    }
    PngCtx c = {.msg = ""};
    int rc = png_encode(f, img, text, ntext, &c);
    int e = 0;
    if (rc) {
        fail(err, errlen, "%s: cannot write the PNG: %s", path, c.msg);
    } else if (fflush(f) != 0 || ferror(f) || fsync(fileno(f)) != 0) {
        e = errno;
        rc = fail(err, errlen, "%s: cannot write: %s", path, strerror(e));
    }
    if (fclose(f) != 0 && !rc) {
        e = errno;
        rc = fail(err, errlen, "%s: cannot write: %s", path, strerror(e));
    }
    if (!rc && rename(tmp, path) != 0) {
        e = errno;
        rc = fail(err, errlen, "%s: cannot rename %s to it: %s", path, tmp, strerror(e));
    }
    if (rc) {
        unlink(tmp);
        return -1;
    }
    sync_dir_of(path);
    return 0;
}

// ---- reading --------------------------------------------------------------------------

static void copy_text(Image *img, png_structp png, png_infop info) {
    png_textp t = NULL;
    int n = 0;
    png_get_text(png, info, &t, &n);
    if (n <= 0) return;
    img->text_keys = mallocCheck((size_t)n * sizeof *img->text_keys);
    img->text_values = mallocCheck((size_t)n * sizeof *img->text_values);
    for (int i = 0; i < n; i++) {
        img->text_keys[i] = dup_str(t[i].key);
        size_t len =
            t[i].compression >= PNG_ITXT_COMPRESSION_NONE ? t[i].itxt_length : t[i].text_length;
        char *v = mallocCheck(len + 1);
        if (len) memcpy(v, t[i].text, len);
        v[len] = '\0';
        img->text_values[i] = v;
    }
    img->ntext = n;
}

int image_read_png(const char *path, Image *img, char *err, size_t errlen) {
    memset(img, 0, sizeof *img);
    FILE *f = fopen(path, "rb");
    if (!f) return fail(err, errlen, "%s: cannot open: %s", path, strerror(errno));
    unsigned char sig[8];
    if (fread(sig, 1, 8, f) != 8 || png_sig_cmp(sig, 0, 8)) {
        fclose(f);
        return fail(err, errlen, "%s: not a PNG file (no PNG signature)", path);
    }
    PngCtx c = {.msg = ""};
    png_structp png =
        png_create_read_struct(PNG_LIBPNG_VER_STRING, &c, png_on_error, png_on_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!info) {
        png_destroy_read_struct(&png, NULL, NULL);
        fclose(f);
        return fail(err, errlen, "%s: out of memory", path);
    }
    png_bytepp volatile rows = NULL;
    if (setjmp(c.jmp)) {
        png_destroy_read_struct(&png, &info, NULL);
        free(rows);
        image_free(img);
        fclose(f);
        return fail(err, errlen, "%s: bad PNG: %s", path, c.msg);
    }
    png_init_io(png, f);
    png_set_sig_bytes(png, 8);
    png_set_user_limits(png, IMAGE_MAX_SIDE, IMAGE_MAX_SIDE);
    png_read_info(png, info);
    png_uint_32 w = png_get_image_width(png, info), h = png_get_image_height(png, info);
    int depth = png_get_bit_depth(png, info), color = png_get_color_type(png, info);
    // to 8-bit gray / gray+alpha / RGB / RGBA
    if (color == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
    if (color == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(png);
    if (png_get_valid(png, info, PNG_INFO_tRNS)) png_set_tRNS_to_alpha(png);
    if (depth == 16) png_set_strip_16(png);
    if (png_get_interlace_type(png, info) != PNG_INTERLACE_NONE) png_set_interlace_handling(png);
    png_read_update_info(png, info);
    int ch = png_get_channels(png, info);
    if (png_get_bit_depth(png, info) != 8 || ch < 1 || ch > 4)
        png_error(png, "unsupported pixel format after conversion to 8 bits");
    char why[200];
    if (image_alloc(img, (int)w, (int)h, ch, why, sizeof why)) png_error(png, why);
    rows = mallocCheck((size_t)h * sizeof *rows);
    size_t stride = (size_t)w * (size_t)ch;
    if (png_get_rowbytes(png, info) != stride) png_error(png, "unexpected row size");
    for (png_uint_32 y = 0; y < h; y++) rows[y] = img->pixels + (size_t)y * stride;
    png_read_image(png, rows);
    png_read_end(png, info);  // text chunks after the image data
    copy_text(img, png, info);
    png_destroy_read_struct(&png, &info, NULL);
    free(rows);
    fclose(f);
    return 0;
}

// ---- tensors --------------------------------------------------------------------------

int image_from_tensor(const Tensor *x, int n, Image *img, char *err, size_t errlen) {
    memset(img, 0, sizeof *img);
    char d[96];
    if (x->ndim != 4 || x->shape[1] != 3 || x->dtype != DT_F32 || x->dev != DEV_CPU)
        return fail(err, errlen, "image from tensor %s: expected (N, 3, H, W) f32 cpu",
                    tensor_desc(x, d, sizeof d));
    if (n < 0 || n >= x->shape[0])
        return fail(err, errlen, "image %d of a batch of %lld", n, (long long)x->shape[0]);
    if (x->shape[2] > IMAGE_MAX_SIDE || x->shape[3] > IMAGE_MAX_SIDE)
        return fail(err, errlen, "image from tensor %s: larger than %d pixels a side",
                    tensor_desc(x, d, sizeof d), IMAGE_MAX_SIDE);
    int H = (int)x->shape[2], W = (int)x->shape[3];
    if (image_alloc(img, W, H, 3, err, errlen)) return -1;
    size_t plane = (size_t)H * (size_t)W;
    const float *src = (const float *)x->data + (size_t)n * 3 * plane;
    for (int c = 0; c < 3; c++)
        for (size_t i = 0; i < plane; i++) {
            float v = src[c * plane + i] * 0.5f + 0.5f;
            v = v < 0.0f ? 0.0f : v > 1.0f ? 1.0f : v;  // NaN stays NaN: below it goes to 0
            float p = rintf(v * 255.0f);                // round half to even, as numpy
            img->pixels[i * 3 + (size_t)c] = p >= 0.0f && p <= 255.0f ? (uint8_t)p : 0;
        }
    return 0;
}

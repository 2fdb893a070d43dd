// runner/comic.c: comic pages (see comic.h). Layout is pure arithmetic (comic_plan);
// drawing resamples each frame into its cell with a box filter and renders captions with
// FreeType.
#include "runner/comic.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ft2build.h>
#include FT_FREETYPE_H

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

static int imin(int a, int b) { return a < b ? a : b; }
static int imax(int a, int b) { return a > b ? a : b; }

// ---- layout ----------------------------------------------------------------------------

int comic_border(int w, int h) { return imax(2, (imin(w, h) + 50) / 100); }

// The border of a cell scaled by s from a full panel, kept small enough to leave at least
// one pixel of picture.
static int cell_border(int b, double s, int w, int h) {
    int bs = imax(1, (int)lround(b * s));
    int most = (imin(w, h) - 1) / 2;
    return imax(0, imin(bs, most));
}

static void put_slot(ComicPlan *p, int page, int frame, int x, int y, int w, int h, int border,
                     int frame_h) {
    ComicSlot *s = &p->slots[p->n_slots++];
    s->page = page;
    s->frame = frame;
    s->x = x;
    s->y = y;
    s->w = w;
    s->h = h;
    s->border = border;
    s->scale = (double)(h - 2 * border) / frame_h;
}

// A row of the classic layout: `size` panels (4 or 6) of which the first `frames` are
// frames starting at `first`, the rest fillers.
typedef struct {
    int size, first, frames;
} ClassicRow;

// Column kinds of a classic row, 0: one full panel, 1: two half panels stacked. The
// arrangement of row r is fixed by r (the reference shuffles [1,1,2] or [1,1,2,2] at
// random): a multiplicative hash picks one of the 3 (row of 4) or 6 (row of 6) orders.
static int classic_columns(int size, int r, int *kind) {
    uint32_t h = (uint32_t)(r + 1) * 0x9E3779B1u;
    h ^= h >> 15;
    if (size == 4) {
        int p = (int)(h % 3u);
        for (int c = 0; c < 3; c++) kind[c] = c == p;
        return 3;
    }
    static const int pairs[6][2] = {{0, 1}, {0, 2}, {0, 3}, {1, 2}, {1, 3}, {2, 3}};
    const int *q = pairs[h % 6u];
    for (int c = 0; c < 4; c++) kind[c] = c == q[0] || c == q[1];
    return 4;
}

static int too_large(const ComicPlan *p, const char *layout, int fw, int fh, char *err,
                     size_t errlen) {
    for (int pg = 0; pg < p->n_pages; pg++)
        if (p->page_h[pg] > IMAGE_MAX_SIDE || p->page_w[pg] > IMAGE_MAX_SIDE)
            return fail(err, errlen,
                        "frames of %dx%d make %s comic pages of %dx%d, larger than %d pixels a "
                        "side; use smaller frames, a smaller comic page width, or comic layout "
                        "none",
                        fw, fh, layout, p->page_w[pg], p->page_h[pg], IMAGE_MAX_SIDE);
    return 0;
}

static int plan_classic(int n, int fw, int fh, int page_w, ComicPlan *p, char *err, size_t errlen) {
    int b = p->border, pw = fw + 2 * b, ph = fh + 2 * b, hw = pw / 2;
    // rows of 4 (and 6 when the story has more than 8 frames), as the reference groups
    // them: a last row short of 4 frames is a row of 4, else it keeps its size.
    ClassicRow *rows = mallocCheck((size_t)(n / 4 + 1) * sizeof *rows);
    int nr = 0;
    for (int done = 0; done < n; nr++) {
        int size = (n <= 8 || nr % 2 == 0) ? 4 : 6;
        int left = n - done;
        if (left < size && left < 4) size = 4;
        rows[nr] = (ClassicRow){size, done, imin(left, size)};
        done += rows[nr].frames;
    }
    p->n_pages = (nr + COMIC_ROWS_PER_PAGE - 1) / COMIC_ROWS_PER_PAGE;
    p->page_w = mallocCheck((size_t)p->n_pages * sizeof *p->page_w);
    p->page_h = mallocCheck((size_t)p->n_pages * sizeof *p->page_h);
    p->slots = mallocCheck((size_t)nr * 6 * sizeof *p->slots);
    if (page_w == 0) page_w = 2 * pw + hw;  // a row of 4 at 1:1
    for (int pg = 0; pg < p->n_pages; pg++) {
        p->page_w[pg] = page_w;
        p->page_h[pg] = 0;
    }
    for (int r = 0; r < nr; r++) {
        int pg = r / COMIC_ROWS_PER_PAGE, y0 = p->page_h[pg];
        int kind[4], nc = classic_columns(rows[r].size, r, kind);
        int natural = 0;  // the row's width with full panels at 1:1
        for (int c = 0; c < nc; c++) natural += kind[c] ? hw : pw;
        // the row's scale: 1 for a row of 4 at the natural page width, about 5/6 for a
        // row of 6; cell edges are rounded from the scaled natural edges, so cells tile
        double s = (double)page_w / natural;
        int rh = (int)lround(ph * s), ys = (int)lround((ph / 2) * s);
        int cum = 0, k = 0;
        for (int c = 0; c < nc; c++) {
            int x0 = (int)lround(cum * s);
            cum += kind[c] ? hw : pw;
            int x1 = c == nc - 1 ? page_w : (int)lround(cum * s);
            int parts = kind[c] ? 2 : 1;
            for (int part = 0; part < parts; part++, k++) {
                int cy0 = y0 + (kind[c] && part ? ys : 0);
                int cy1 = kind[c] && !part ? y0 + ys : y0 + rh;
                int frame = k < rows[r].frames ? rows[r].first + k : -1;
                int bd = cell_border(b, kind[c] ? s * 0.5 : s, x1 - x0, cy1 - cy0);
                put_slot(p, pg, frame, x0, cy0, x1 - x0, cy1 - cy0, bd, fh);
            }
        }
        p->page_h[pg] += rh;
    }
    free(rows);
    return too_large(p, "classic", fw, fh, err, errlen);
}

static int plan_four(int n, int fw, int fh, int page_w, ComicPlan *p, char *err, size_t errlen) {
    int b = p->border, pw = fw + 2 * b, ph = fh + 2 * b;
    if (page_w == 0) page_w = 2 * pw;  // panels at 1:1
    double s = (double)page_w / (2 * pw);
    int xs[3] = {0, (int)lround(pw * s), page_w};
    int ys[3] = {0, (int)lround(ph * s), (int)lround(2 * ph * s)};
    p->n_pages = (n + 3) / 4;
    p->page_w = mallocCheck((size_t)p->n_pages * sizeof *p->page_w);
    p->page_h = mallocCheck((size_t)p->n_pages * sizeof *p->page_h);
    p->slots = mallocCheck((size_t)p->n_pages * 4 * sizeof *p->slots);
    for (int pg = 0; pg < p->n_pages; pg++) {
        p->page_w[pg] = page_w;
        p->page_h[pg] = ys[2];
        for (int k = 0; k < 4; k++) {
            int f = pg * 4 + k, cx = k % 2, cy = k / 2;
            int w = xs[cx + 1] - xs[cx], h = ys[cy + 1] - ys[cy];
            put_slot(p, pg, f < n ? f : -1, xs[cx], ys[cy], w, h, cell_border(b, s, w, h), fh);
        }
    }
    return too_large(p, "four-panel", fw, fh, err, errlen);
}

int comic_plan(int n, ComicLayout layout, int frame_w, int frame_h, int page_width, ComicPlan *plan,
               char *err, size_t errlen) {
    memset(plan, 0, sizeof *plan);
    if (layout != COMIC_NONE && layout != COMIC_CLASSIC && layout != COMIC_FOUR_PANEL)
        return fail(err, errlen, "comic layout %d: expected none, classic or four-panel",
                    (int)layout);
    if (n < 0) return fail(err, errlen, "comic of %d frames: expected 0 or more", n);
    if (frame_w < 1 || frame_h < 1 || frame_w > IMAGE_MAX_SIDE || frame_h > IMAGE_MAX_SIDE)
        return fail(err, errlen, "comic frames of %dx%d: each side must be 1..%d", frame_w, frame_h,
                    IMAGE_MAX_SIDE);
    if (page_width != 0 && (page_width < COMIC_MIN_PAGE_WIDTH || page_width > IMAGE_MAX_SIDE))
        return fail(err, errlen, "comic page width %d: expected 0 (auto) or %d..%d pixels",
                    page_width, COMIC_MIN_PAGE_WIDTH, IMAGE_MAX_SIDE);
    plan->border = comic_border(frame_w, frame_h);
    if (layout == COMIC_NONE || n == 0) return 0;
    int rc = layout == COMIC_CLASSIC
                 ? plan_classic(n, frame_w, frame_h, page_width, plan, err, errlen)
                 : plan_four(n, frame_w, frame_h, page_width, plan, err, errlen);
    if (rc) comic_plan_free(plan);
    return rc;
}

void comic_plan_free(ComicPlan *plan) {
    if (!plan) return;
    free(plan->page_w);
    free(plan->page_h);
    free(plan->slots);
    memset(plan, 0, sizeof *plan);
}

// ---- resampling --------------------------------------------------------------------------

// Pixel (x, y) of any 1-4 channel image as RGB (gray is replicated, alpha ignored).
static void rgb_at(const Image *im, int x, int y, float out[3]) {
    const uint8_t *p = im->pixels + ((size_t)y * im->width + x) * im->channels;
    if (im->channels >= 3) {
        out[0] = p[0], out[1] = p[1], out[2] = p[2];
    } else {
        out[0] = out[1] = out[2] = p[0];
    }
}

// Weights taking n source samples to m. Shrinking (m <= n): a box filter, output i covers
// the source span [i n/m, (i+1) n/m) and weights each sample by its overlap. Growing:
// linear interpolation between the two samples around the output's centre. Weights sum
// to 1, so a solid colour stays exactly that colour.
typedef struct {
    int first, count;  // source samples [first, first + count)
    int woff;          // offset of its weights in the weight array
} Span;

static float *box_weights(int n, int m, Span *sp) {
    // each span touches at most ceil(n/m) + 2 samples
    size_t per = (size_t)(n / m + 3);
    float *w = mallocCheck((size_t)m * per * sizeof *w);
    double r = (double)n / m;
    for (int i = 0; m > n && i < m; i++) {
        double c = (i + 0.5) * r - 0.5;
        int lo = (int)floor(c);
        double f = c - lo;
        if (lo < 0) lo = 0, f = 0;
        if (lo >= n - 1) lo = n - 1, f = 0;
        sp[i] = (Span){lo, f > 0 ? 2 : 1, (int)(i * per)};
        w[sp[i].woff] = (float)(1 - f);
        if (f > 0) w[sp[i].woff + 1] = (float)f;
    }
    for (int i = 0; m <= n && i < m; i++) {
        double a = i * r, b = (i + 1) * r;
        int lo = (int)floor(a), hi = imin(n, (int)ceil(b));
        if (hi <= lo) hi = lo + 1;
        sp[i].first = lo;
        sp[i].count = hi - lo;
        sp[i].woff = (int)(i * per);
        double sum = 0;
        for (int j = lo; j < hi; j++) {
            double ov = fmin(b, j + 1.0) - fmax(a, (double)j);
            w[sp[i].woff + j - lo] = (float)(ov > 0 ? ov : 0);
            sum += ov > 0 ? ov : 0;
        }
        for (int j = 0; j < sp[i].count; j++)
            w[sp[i].woff + j] = sum > 0 ? (float)(w[sp[i].woff + j] / sum) : 1.0f / sp[i].count;
    }
    return w;
}

// Draws src scaled to dw x dh at (dx, dy) of dst (RGB).
static void blit_scaled(const Image *src, Image *dst, int dx, int dy, int dw, int dh) {
    int sw = src->width, sh = src->height;
    if (dw < 1 || dh < 1) return;
    if (dw == sw && dh == sh) {  // 1:1, the common case
        for (int y = 0; y < sh; y++)
            for (int x = 0; x < sw; x++) {
                float c[3];
                rgb_at(src, x, y, c);
                uint8_t *o = dst->pixels + ((size_t)(dy + y) * dst->width + dx + x) * 3;
                o[0] = (uint8_t)c[0], o[1] = (uint8_t)c[1], o[2] = (uint8_t)c[2];
            }
        return;
    }
    Span *hx = mallocCheck((size_t)dw * sizeof *hx), *vy = mallocCheck((size_t)dh * sizeof *vy);
    float *wx = box_weights(sw, dw, hx), *wy = box_weights(sh, dh, vy);
    float *tmp = mallocCheck((size_t)sh * dw * 3 * sizeof *tmp);  // (sh, dw, 3)
    for (int y = 0; y < sh; y++)
        for (int x = 0; x < dw; x++) {
            float acc[3] = {0, 0, 0};
            for (int j = 0; j < hx[x].count; j++) {
                float c[3], w = wx[hx[x].woff + j];
                rgb_at(src, hx[x].first + j, y, c);
                acc[0] += w * c[0], acc[1] += w * c[1], acc[2] += w * c[2];
            }
            memcpy(tmp + ((size_t)y * dw + x) * 3, acc, sizeof acc);
        }
    for (int y = 0; y < dh; y++)
        for (int x = 0; x < dw; x++) {
            float acc[3] = {0, 0, 0};
            for (int j = 0; j < vy[y].count; j++) {
                const float *c = tmp + ((size_t)(vy[y].first + j) * dw + x) * 3;
                float w = wy[vy[y].woff + j];
                acc[0] += w * c[0], acc[1] += w * c[1], acc[2] += w * c[2];
            }
            uint8_t *o = dst->pixels + ((size_t)(dy + y) * dst->width + dx + x) * 3;
            for (int k = 0; k < 3; k++) {
                float v = acc[k] + 0.5f;
                o[k] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
            }
        }
    free(tmp);
    free(wx);
    free(wy);
    free(hx);
    free(vy);
}

// ---- fonts and text ----------------------------------------------------------------------

struct ComicFont {
    FT_Library lib;
    FT_Face face;
    int px;
    int ascii_adv[128];  // advance (26.6) of ASCII glyphs at px, -1 until measured
    char path[512];
};

// Next code point of UTF-8 text at s (n bytes left, n >= 1); *len gets its byte count.
// Malformed or overlong sequences and surrogates read as U+FFFD, one byte at a time.
static uint32_t utf8_next(const unsigned char *s, size_t n, int *len) {
    uint32_t c = s[0];
    *len = 1;
    if (c < 0x80) return c;
    int k = c >= 0xF0 && c < 0xF5 ? 3 : c >= 0xE0 ? (c < 0xF0 ? 2 : -1) : c >= 0xC2 ? 1 : -1;
    if (k < 0 || (size_t)k >= n) return 0xFFFD;
    uint32_t v = c & (0x3F >> k);
    for (int i = 1; i <= k; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0xFFFD;
        v = v << 6 | (s[i] & 0x3F);
    }
    if ((k == 2 && v < 0x800) || (k == 3 && (v < 0x10000 || v > 0x10FFFF)) ||
        (v >= 0xD800 && v <= 0xDFFF))
        return 0xFFFD;
    *len = k + 1;
    return v;
}

// Blanks and control characters draw as a space.
static uint32_t drawn_cp(uint32_t c) { return c < 0x20 || c == 0x7F ? ' ' : c; }

ComicFont *comic_font_open(const char *path, int px, char *err, size_t errlen) {
    if (!path) path = COMIC_DEFAULT_FONT;
    FILE *probe = fopen(path, "rb");  // FreeType's own errors do not say why a file is unreadable
    if (!probe) {
        fail(err, errlen, "%s: cannot open the caption font: %s", path, strerror(errno));
        return NULL;
    }
    fclose(probe);
    ComicFont *f = calloc(1, sizeof *f);
    if (!f) {
        fail(err, errlen, "%s: out of memory", path);
        return NULL;
    }
    snprintf(f->path, sizeof f->path, "%s", path);
    FT_Error e = FT_Init_FreeType(&f->lib);
    if (e) {
        fail(err, errlen, "%s: cannot start FreeType (error 0x%02x)", path, (unsigned)e);
        free(f);
        return NULL;
    }
    e = FT_New_Face(f->lib, path, 0, &f->face);
    if (e) {
        fail(err, errlen,
             "%s: not a font FreeType can read (error 0x%02x); expected a TrueType or "
             "OpenType file such as " COMIC_DEFAULT_FONT,
             path, (unsigned)e);
        f->face = NULL;
        comic_font_close(f);
        return NULL;
    }
    if (comic_font_set_size(f, px, err, errlen)) {
        comic_font_close(f);
        return NULL;
    }
    return f;
}

void comic_font_close(ComicFont *f) {
    if (!f) return;
    if (f->face) FT_Done_Face(f->face);
    FT_Done_FreeType(f->lib);
    free(f);
}

int comic_font_set_size(ComicFont *f, int px, char *err, size_t errlen) {
    if (px == f->px) return 0;
    if (px < 1 || px > 4096)
        return fail(err, errlen, "%s: font size %d px: expected 1..4096", f->path, px);
    FT_Error e = FT_Set_Pixel_Sizes(f->face, 0, (FT_UInt)px);
    if (e)
        return fail(err, errlen, "%s: cannot be drawn at %d px (FreeType error 0x%02x)", f->path,
                    px, (unsigned)e);
    f->px = px;
    for (int i = 0; i < 128; i++) f->ascii_adv[i] = -1;
    return 0;
}

int comic_font_line_height(const ComicFont *f) {
    int h = (int)((f->face->size->metrics.height + 63) >> 6);
    return imax(h, f->px);
}

int comic_font_ascender(const ComicFont *f) {
    return (int)((f->face->size->metrics.ascender + 63) >> 6);
}

// Advance of code point c in 26.6 pixels, and its glyph index.
static long glyph_advance(ComicFont *f, uint32_t c, FT_UInt *gi) {
    c = drawn_cp(c);
    *gi = FT_Get_Char_Index(f->face, c);
    if (c < 128 && f->ascii_adv[c] >= 0) return f->ascii_adv[c];
    long adv = 0;
    if (!FT_Load_Glyph(f->face, *gi, FT_LOAD_DEFAULT)) adv = f->face->glyph->advance.x;
    if (c < 128) f->ascii_adv[c] = (int)adv;
    return adv;
}

static long kerning(ComicFont *f, FT_UInt prev, FT_UInt gi) {
    if (!prev || !gi || !FT_HAS_KERNING(f->face)) return 0;
    FT_Vector d;
    if (FT_Get_Kerning(f->face, prev, gi, FT_KERNING_DEFAULT, &d)) return 0;
    return d.x;
}

int comic_text_width(ComicFont *f, const char *text, size_t len) {
    const unsigned char *s = (const unsigned char *)text;
    long w = 0;
    FT_UInt prev = 0;
    for (size_t i = 0; i < len;) {
        int k;
        uint32_t c = utf8_next(s + i, len - i, &k);
        FT_UInt gi;
        long adv = glyph_advance(f, c, &gi);
        w += kerning(f, prev, gi) + adv;
        prev = gi;
        i += (size_t)k;
    }
    return (int)((w + 63) >> 6);
}

static int is_blank(uint32_t c) { return c == ' ' || c == '\t' || c == '\r'; }

int comic_wrap(ComicFont *f, const char *text, int max_width, ComicLine *lines, int max_lines) {
    const unsigned char *s = (const unsigned char *)text;
    size_t len = strlen(text);
    // per code point: byte offset, the code point, and prefix sums of advance + kerning
    // with the previous glyph (26.6), so a range's width is a subtraction.
    size_t cap = len + 1;
    int *off = mallocCheck(cap * sizeof *off);
    uint32_t *cp = mallocCheck(cap * sizeof *cp);
    long *pre = mallocCheck((cap + 1) * sizeof *pre), *kern = mallocCheck(cap * sizeof *kern);
    int n = 0;
    FT_UInt prev = 0;
    pre[0] = 0;
    for (size_t i = 0; i < len; n++) {
        int k;
        cp[n] = utf8_next(s + i, len - i, &k);
        off[n] = (int)i;
        FT_UInt gi;
        long adv = glyph_advance(f, cp[n], &gi);
        kern[n] = kerning(f, prev, gi);
        pre[n + 1] = pre[n] + adv + kern[n];
        prev = gi;
        i += (size_t)k;
    }
    off[n] = (int)len;
    long maxw = (long)max_width << 6;
#define WIDTH(a, b) (pre[b] - pre[a] - kern[a])
    int nl = 0, i = 0;
    while (i < n) {
        int start = -1, end = -1;  // the line's code points [start, end)
        for (;;) {
            while (i < n && is_blank(cp[i])) i++;
            if (i >= n || cp[i] == '\n') break;
            int ws = i, we = i;
            while (we < n && !is_blank(cp[we]) && cp[we] != '\n') we++;
            if (start < 0) {
                start = ws;
                if (WIDTH(ws, we) <= maxw) {
                    end = i = we;
                    continue;
                }
                int e = ws + 1;  // a word wider than the line: as many characters as fit
                while (e < we && WIDTH(ws, e + 1) <= maxw) e++;
                end = i = e;
                break;
            }
            if (WIDTH(start, we) > maxw) break;  // the word starts the next line
            end = i = we;
        }
        if (start >= 0) {
            if (nl < max_lines) lines[nl] = (ComicLine){off[start], off[end] - off[start]};
            nl++;
        }
        if (i < n && cp[i] == '\n') i++;
    }
#undef WIDTH
    free(off);
    free(cp);
    free(pre);
    free(kern);
    return nl;
}

// Draws len bytes of text in white with its baseline at y, starting at pen x, clipped to
// the rectangle (cx, cy, cw, ch) of img (RGB).
static void draw_text(Image *img, int x, int y, ComicFont *f, const char *text, size_t len, int cx,
                      int cy, int cw, int ch) {
    const unsigned char *s = (const unsigned char *)text;
    int x0 = imax(cx, 0), y0 = imax(cy, 0);
    int x1 = imin(cx + cw, img->width), y1 = imin(cy + ch, img->height);
    long pen = (long)x << 6;
    FT_UInt prev = 0;
    for (size_t i = 0; i < len;) {
        int k;
        uint32_t c = drawn_cp(utf8_next(s + i, len - i, &k));
        i += (size_t)k;
        FT_UInt gi = FT_Get_Char_Index(f->face, c);
        pen += kerning(f, prev, gi);
        prev = gi;
        if (FT_Load_Glyph(f->face, gi, FT_LOAD_DEFAULT)) continue;
        FT_GlyphSlot g = f->face->glyph;
        long adv = g->advance.x;
        if (c != ' ' && !FT_Render_Glyph(g, FT_RENDER_MODE_NORMAL) &&
            g->bitmap.pixel_mode == FT_PIXEL_MODE_GRAY) {
            int gx = (int)(pen >> 6) + g->bitmap_left, gy = y - g->bitmap_top;
            for (int r = 0; r < (int)g->bitmap.rows; r++) {
                int py = gy + r;
                if (py < y0 || py >= y1) continue;
                const uint8_t *row = g->bitmap.buffer + (ptrdiff_t)r * g->bitmap.pitch;
                for (int q = 0; q < (int)g->bitmap.width; q++) {
                    int px = gx + q, a = row[q];
                    if (px < x0 || px >= x1 || !a) continue;
                    uint8_t *o = img->pixels + ((size_t)py * img->width + px) * 3;
                    for (int j = 0; j < 3; j++)
                        o[j] = (uint8_t)(o[j] + ((255 - o[j]) * a + 127) / 255);
                }
            }
        }
        pen += adv;
    }
}

int comic_draw_caption(Image *img, int x, int y, int w, int h, ComicFont *f, const char *text) {
    if (!text || !*text || img->channels != 3) return 0;
    int m = imax(2, f->px / 3), line_h = comic_font_line_height(f);
    int avail = w - 2 * m;
    if (avail < 1) return 0;
    int max_lines = (h / 2 - 2 * m) / line_h;
    if (max_lines < 1) max_lines = h - 2 * m >= line_h ? 1 : 0;
    if (max_lines < 1) return 0;
    ComicLine *lines = mallocCheck((size_t)max_lines * sizeof *lines);
    int need = comic_wrap(f, text, avail, lines, max_lines);
    int shown = imin(need, max_lines);
    if (shown < 1) {
        free(lines);
        return 0;
    }
    int box_h = shown * line_h + 2 * m, by = y + h - box_h;
    for (int py = imax(by, 0); py < imin(y + h, img->height); py++)
        for (int px = imax(x, 0); px < imin(x + w, img->width); px++) {
            uint8_t *o = img->pixels + ((size_t)py * img->width + px) * 3;
            for (int j = 0; j < 3; j++)
                o[j] = (uint8_t)((o[j] * (255 - COMIC_BOX_ALPHA) + 127) / 255);
        }
    int asc = comic_font_ascender(f);
    for (int i = 0; i < shown; i++) {
        const char *t = text + lines[i].start;
        size_t n = (size_t)lines[i].len;
        char *cut = NULL;
        if (i == shown - 1 && need > shown) {  // more text than room: end in an ellipsis
            cut = mallocCheck(n + 4);
            memcpy(cut, t, n);
            for (;;) {
                while (n > 0 && cut[n - 1] == ' ') n--;
                memcpy(cut + n, "\xE2\x80\xA6", 3);
                if (n == 0 || comic_text_width(f, cut, n + 3) <= avail) break;
                do n--;  // drop the last code point
                while (n > 0 && ((unsigned char)cut[n] & 0xC0) == 0x80);
            }
            t = cut;
            n += 3;
        }
        int lw = comic_text_width(f, t, n);
        draw_text(img, x + (w - lw) / 2, by + m + i * line_h + asc, f, t, n, x, by, w, box_h);
        free(cut);
    }
    free(lines);
    return box_h;
}

// ---- pages -------------------------------------------------------------------------------

static const char *panel_name(const ComicPanel *p, int i, char *buf, size_t n) {
    if (p->name) return p->name;
    snprintf(buf, n, "frame %d", i);
    return buf;
}

int comic_pages(const ComicPanel *panels, int n, ComicLayout layout, const char *font_path,
                int font_size, Image **pages, int *n_pages, char *err, size_t errlen) {
    return comic_pages_width(panels, n, layout, font_path, font_size, 0, pages, n_pages, err,
                             errlen);
}

int comic_pages_width(const ComicPanel *panels, int n, ComicLayout layout, const char *font_path,
                      int font_size, int page_width, Image **pages, int *n_pages, char *err,
                      size_t errlen) {
    *pages = NULL;
    *n_pages = 0;
    if (layout == COMIC_NONE || n == 0) return 0;
    if (n < 0 || !panels) return fail(err, errlen, "comic of %d frames: expected a list", n);
    char na[32], nb[32];
    const Image *first = panels[0].image;
    bool any_caption = false;
    for (int i = 0; i < n; i++) {
        const Image *im = panels[i].image;
        if (!im || !im->pixels || im->width < 1 || im->height < 1 || im->channels < 1 ||
            im->channels > 4)
            return fail(err, errlen, "%s: no picture for the comic page",
                        panel_name(&panels[i], i, na, sizeof na));
        if (im->width != first->width || im->height != first->height)
            return fail(err, errlen,
                        "%s: %dx%d, but %s is %dx%d; a comic page needs frames of one size",
                        panel_name(&panels[i], i, na, sizeof na), im->width, im->height,
                        panel_name(&panels[0], 0, nb, sizeof nb), first->width, first->height);
        if (panels[i].caption && *panels[i].caption) any_caption = true;
    }
    if (font_size < 0 || font_size > 4096)
        return fail(err, errlen, "caption font size %d: expected 1..4096 pixels, or 0 (auto)",
                    font_size);
    ComicPlan plan;
    if (comic_plan(n, layout, first->width, first->height, page_width, &plan, err, errlen))
        return -1;
    ComicFont *font = NULL;
    if (any_caption) {
        font = comic_font_open(font_path, 12, err, errlen);
        if (!font) {
            comic_plan_free(&plan);
            return -1;
        }
    }
    Image *out = calloc((size_t)plan.n_pages, sizeof *out);
    int rc = out ? 0 : fail(err, errlen, "out of memory for %d comic pages", plan.n_pages);
    for (int pg = 0; pg < plan.n_pages && !rc; pg++) {
        rc = image_alloc(&out[pg], plan.page_w[pg], plan.page_h[pg], 3, err, errlen);
        if (!rc) memset(out[pg].pixels, 255, (size_t)plan.page_w[pg] * plan.page_h[pg] * 3);
    }
    for (int k = 0; k < plan.n_slots && !rc; k++) {
        const ComicSlot *s = &plan.slots[k];
        if (s->frame < 0) continue;
        int ix = s->x + s->border, iy = s->y + s->border;
        int iw = s->w - 2 * s->border, ih = s->h - 2 * s->border;
        blit_scaled(panels[s->frame].image, &out[s->page], ix, iy, iw, ih);
        const char *cap = panels[s->frame].caption;
        if (!cap || !*cap) continue;
        int px = font_size > 0 ? imax(6, (int)lround(font_size * s->scale))
                               : imax(9, (int)lround(ih / 28.0));
        rc = comic_font_set_size(font, px, err, errlen);
        if (!rc) comic_draw_caption(&out[s->page], ix, iy, iw, ih, font, cap);
    }
    comic_font_close(font);
    if (rc) {
        comic_pages_free(out, out ? plan.n_pages : 0);
        comic_plan_free(&plan);
        return -1;
    }
    *pages = out;
    *n_pages = plan.n_pages;
    comic_plan_free(&plan);
    return 0;
}

void comic_pages_free(Image *pages, int n_pages) {
    if (!pages) return;
    for (int i = 0; i < n_pages; i++) image_free(&pages[i]);
    free(pages);
}

// jobs/train_log.c: the training log of `storyrun train`: rows in memory, the CSV file
// (rewritten atomically whenever the job saves), and the loss-curve PNG drawn at the end
// (runner/image.h for the pixels, FreeType with the comic caption font for tick labels;
// without the font the plot is drawn without text).
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <ft2build.h>
#include FT_FREETYPE_H
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jobs/train.h"
#include "runner/check.h"
#include "runner/comic.h"
#include "runner/image.h"
#include "runner/manifest.h"

static const char k_header[] = "step,epoch,loss,lr,grad_norm,frames_per_s,val_mse,interp_mse";

void train_log_add(TrainLog *l, const TrainLogRow *r) {
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 256;
        l->rows = realloc(l->rows, l->cap * sizeof *l->rows);
        if (!l->rows) STORY_FATAL("out of memory for %zu log rows", l->cap);
    }
    l->rows[l->n++] = *r;
}

void train_log_free(TrainLog *l) {
    free(l->rows);
    memset(l, 0, sizeof *l);
}

static double field(char **p) {
    char *s = *p, *e = strchr(s, ',');
    if (e) *e = 0;
    *p = e ? e + 1 : s + strlen(s);
    while (*s == ' ') s++;
    return *s && *s != '\n' && *s != '\r' ? strtod(s, NULL) : NAN;
}

int train_log_load(TrainLog *l, const char *path, long max_step, char *err, size_t errlen) {
    FILE *f = fopen(path, "r");
    if (!f) {
        if (errno == ENOENT) return 0;
        snprintf(err, errlen, "%s: cannot read the training log: %s", path, strerror(errno));
        return -1;
    }
    char line[1024];
    int first = 1;
    while (fgets(line, sizeof line, f)) {
        if (first) {
            first = 0;
            if (strncmp(line, k_header, strlen(k_header))) {
                fclose(f);
                snprintf(err, errlen, "%s: not a storyrun training log (first line should be '%s')",
                         path, k_header);
                return -1;
            }
            continue;
        }
        char *p = line;
        TrainLogRow r;
        double st = field(&p);
        if (!isfinite(st)) continue;
        r.step = (long)st;
        r.epoch = (int)field(&p);
        r.loss = field(&p), r.lr = field(&p), r.grad_norm = field(&p);
        r.frames_per_s = field(&p), r.val_mse = field(&p), r.interp_mse = field(&p);
        if (r.step <= max_step) train_log_add(l, &r);
    }
    fclose(f);
    return 0;
}

static void put_num(char **p, char *end, double v, const char *fmt) {
    if (isfinite(v)) *p += snprintf(*p, (size_t)(end - *p), fmt, v);
    if (*p < end - 1) *(*p)++ = ',';
}

int train_log_write(const TrainLog *l, const char *path, char *err, size_t errlen) {
    size_t cap = 128 + l->n * 200;
    char *buf = mallocCheck(cap), *p = buf, *end = buf + cap;
    p += snprintf(p, (size_t)(end - p), "%s\n", k_header);
    for (size_t i = 0; i < l->n; i++) {
        const TrainLogRow *r = &l->rows[i];
        p += snprintf(p, (size_t)(end - p), "%ld,%d,", r->step, r->epoch);
        put_num(&p, end, r->loss, "%.8g");
        put_num(&p, end, r->lr, "%.8g");
        put_num(&p, end, r->grad_norm, "%.8g");
        put_num(&p, end, r->frames_per_s, "%.1f");
        put_num(&p, end, r->val_mse, "%.8g");
        put_num(&p, end, r->interp_mse, "%.8g");
        p[-1] = '\n';  // the last comma
    }
    int rc = file_write_atomic(path, buf, (size_t)(p - buf), err, errlen);
    free(buf);
    return rc;
}

// ---- the plot ------------------------------------------------------------------------------

enum { W = 800, H = 500, ML = 78, MR = 24, MT = 34, MB = 52 };

typedef struct {
    Image img;
    FT_Library lib;
    FT_Face face;             // NULL: no labels
    double x0, x1, ly0, ly1;  // data ranges (y as log10)
} Plot;

static void px(Plot *p, int x, int y, const uint8_t c[3]) {
    if (x < 0 || y < 0 || x >= W || y >= H) return;
    memcpy(p->img.pixels + ((size_t)y * W + x) * 3, c, 3);
}

// A line of width 2 from (x0, y0) to (x1, y1); dash > 0 draws `dash` pixels on, dash off.
static void line(Plot *p, double x0, double y0, double x1, double y1, const uint8_t c[3],
                 int dash) {
    double dx = x1 - x0, dy = y1 - y0, len = fmax(fabs(dx), fabs(dy));
    int n = (int)ceil(len);
    for (int i = 0; i <= n; i++) {
        if (dash > 0 && (i / dash) % 2) continue;
        double t = n ? (double)i / n : 0;
        int x = (int)lround(x0 + t * dx), y = (int)lround(y0 + t * dy);
        px(p, x, y, c), px(p, x + 1, y, c), px(p, x, y + 1, c), px(p, x + 1, y + 1, c);
    }
}

static double sx(const Plot *p, double x) {
    return ML + (x - p->x0) / (p->x1 - p->x0) * (W - ML - MR);
}
static double sy(const Plot *p, double v) {
    return H - MB - (log10(v) - p->ly0) / (p->ly1 - p->ly0) * (H - MT - MB);
}

// Text with its baseline at y; align 0 left, 1 centre, 2 right of x.
static void text(Plot *p, int x, int y, int align, const uint8_t c[3], const char *fmt, ...) {
    if (!p->face) return;
    char s[128];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s, sizeof s, fmt, ap);
    va_end(ap);
    long w = 0;
    for (const char *q = s; *q; q++)
        if (!FT_Load_Char(p->face, (unsigned char)*q, FT_LOAD_DEFAULT))
            w += p->face->glyph->advance.x;
    long pen = ((long)x << 6) - (align == 1 ? w / 2 : align == 2 ? w : 0);
    for (const char *q = s; *q; q++) {
        if (FT_Load_Char(p->face, (unsigned char)*q, FT_LOAD_RENDER)) continue;
        FT_GlyphSlot g = p->face->glyph;
        int gx = (int)(pen >> 6) + g->bitmap_left, gy = y - g->bitmap_top;
        for (int r = 0; r < (int)g->bitmap.rows; r++)
            for (int k = 0; k < (int)g->bitmap.width; k++) {
                int a = g->bitmap.buffer[r * g->bitmap.pitch + k], X = gx + k, Y = gy + r;
                if (!a || X < 0 || Y < 0 || X >= W || Y >= H) continue;
                uint8_t *o = p->img.pixels + ((size_t)Y * W + X) * 3;
                for (int j = 0; j < 3; j++) o[j] = (uint8_t)((o[j] * (255 - a) + c[j] * a) / 255);
            }
        pen += g->advance.x;
    }
}

// 1, 2 or 5 times a power of ten near span / target.
static double nice_step(double span, int target) {
    double raw = span / target, e = pow(10, floor(log10(raw))), f = raw / e;
    return (f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10) * e;
}

// Polyline through the finite, positive values of one column (offset of the double in a row).
static void series(Plot *p, const TrainLog *l, size_t off, const uint8_t c[3], int dash, int dots) {
    double lx = NAN, ly = NAN;
    for (size_t i = 0; i < l->n; i++) {
        double v = *(const double *)((const char *)&l->rows[i] + off);
        if (!(v > 0) || !isfinite(v)) continue;
        double x = sx(p, (double)l->rows[i].step), y = sy(p, v);
        if (isfinite(lx)) line(p, lx, ly, x, y, c, dash);
        if (dots)
            for (int a = -2; a <= 2; a++)
                for (int b = -2; b <= 2; b++) px(p, (int)lround(x) + a, (int)lround(y) + b, c);
        lx = x, ly = y;
    }
}

int train_log_plot(const TrainLog *l, const char *path, char *err, size_t errlen) {
    Plot p;
    memset(&p, 0, sizeof p);
    if (image_alloc(&p.img, W, H, 3, err, errlen)) return -1;
    memset(p.img.pixels, 255, (size_t)W * H * 3);
    double lo = INFINITY, hi = -INFINITY;
    long smax = 1;
    for (size_t i = 0; i < l->n; i++) {
        const TrainLogRow *r = &l->rows[i];
        double v[3] = {r->loss, r->val_mse, r->interp_mse};
        for (int k = 0; k < 3; k++)
            if (v[k] > 0 && isfinite(v[k])) lo = fmin(lo, v[k]), hi = fmax(hi, v[k]);
        if (r->step > smax) smax = r->step;
    }
    if (!(lo <= hi)) lo = 0.1, hi = 1;
    p.x0 = 0, p.x1 = (double)smax;
    p.ly0 = floor(log10(lo) * 4) / 4, p.ly1 = ceil(log10(hi) * 4) / 4;
    if (p.ly1 - p.ly0 < 0.5) p.ly0 -= 0.25, p.ly1 += 0.25;
    if (!FT_Init_FreeType(&p.lib)) {
        if (FT_New_Face(p.lib, COMIC_DEFAULT_FONT, 0, &p.face) || FT_Set_Pixel_Sizes(p.face, 0, 13))
            p.face = NULL;  // no font: a plot without labels
    }
    static const uint8_t black[3] = {0, 0, 0}, grid[3] = {225, 225, 225}, blue[3] = {31, 119, 180},
                         orange[3] = {230, 110, 20}, gray[3] = {120, 120, 120};
    // grid and ticks: x at a 1-2-5 step, y at 1-2-5 times each power of ten
    double xs = nice_step(p.x1 - p.x0, 8);
    for (double x = 0; x <= p.x1 + 1e-9; x += xs) {
        double X = sx(&p, x);
        line(&p, X, MT, X, H - MB, grid, 0);
        text(&p, (int)X, H - MB + 18, 1, black, "%.0f", x);
    }
    for (int e = (int)floor(p.ly0); e <= (int)ceil(p.ly1); e++)
        for (int m = 1; m <= 5; m += m == 1 ? 1 : 3) {
            double v = m * pow(10, e), lv = log10(v);
            if (lv < p.ly0 - 1e-9 || lv > p.ly1 + 1e-9) continue;
            double Y = sy(&p, v);
            line(&p, ML, Y, W - MR, Y, grid, 0);
            text(&p, ML - 6, (int)Y + 5, 2, black, "%.3g", v);
        }
    line(&p, ML, H - MB, W - MR, H - MB, black, 0);  // axes
    line(&p, ML, MT, ML, H - MB, black, 0);
    series(&p, l, offsetof(TrainLogRow, interp_mse), gray, 6, 0);
    series(&p, l, offsetof(TrainLogRow, loss), blue, 0, 0);
    series(&p, l, offsetof(TrainLogRow, val_mse), orange, 0, 1);
    text(&p, (ML + W - MR) / 2, H - 12, 1, black, "step");
    text(&p, ML, MT - 12, 0, black, "loss (log scale)");
    int lx = W - MR - 250;
    line(&p, lx, MT - 16, lx + 24, MT - 16, blue, 0);
    text(&p, lx + 30, MT - 11, 0, black, "train");
    line(&p, lx + 80, MT - 16, lx + 104, MT - 16, orange, 0);
    text(&p, lx + 110, MT - 11, 0, black, "val");
    line(&p, lx + 150, MT - 16, lx + 174, MT - 16, gray, 6);
    text(&p, lx + 180, MT - 11, 0, black, "interp.");
    if (p.face) FT_Done_Face(p.face);
    if (p.lib) FT_Done_FreeType(p.lib);
    ImageText meta[1] = {{"Software", "storyrun train"}};
    int rc = image_write_png(path, &p.img, meta, 1, err, errlen);
    image_free(&p.img);
    return rc;
}

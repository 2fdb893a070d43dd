// tests/outputs/test_comic.c: comic pages (runner/comic.c). Usage: test_comic MODE WORKDIR
//   plan     page counts and panel geometry of both layouts (tables + invariants)
//   pixels   solid-colour frames land in their cells: centres keep the colour, borders
//            and blank fillers are white
//   caption  the caption box darkens the picture by exactly COMIC_BOX_ALPHA and holds
//            white text pixels; the rows above it are untouched
//   wrap     word wrap: lines within the width, greedy, words kept in order, long words
//            broken between characters, '\n' breaks
//   unicode  non-ASCII, missing glyphs and invalid UTF-8 wrap and draw without harm
//   errors   missing font, a file that is not a font, frames of two sizes: messages name
//            the file
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "runner/comic.h"
#include "tests/common/test_check.h"

static const char *workdir;

// A w x h RGB frame of one colour.
static Image solid(int w, int h, int r, int g, int b) {
    Image im;
    char err[256];
    if (image_alloc(&im, w, h, 3, err, sizeof err)) {
        fprintf(stderr, "%s\n", err);
        exit(2);
    }
    for (size_t i = 0; i < (size_t)w * h; i++) {
        im.pixels[3 * i] = (uint8_t)r;
        im.pixels[3 * i + 1] = (uint8_t)g;
        im.pixels[3 * i + 2] = (uint8_t)b;
    }
    return im;
}

static const uint8_t *px(const Image *im, int x, int y) {
    return im->pixels + ((size_t)y * im->width + x) * 3;
}

static int is_rgb(const uint8_t *p, int r, int g, int b) {
    return p[0] == r && p[1] == g && p[2] == b;
}

// Checks that the cells of every page tile it exactly (each pixel covered once), that every
// frame appears once and in order, and returns the number of slots.
static void check_tiling(const ComicPlan *p, int n, const char *what) {
    int next = 0;
    for (int pg = 0; pg < p->n_pages; pg++) {
        int W = p->page_w[pg], H = p->page_h[pg];
        unsigned char *cov = calloc((size_t)W * H, 1);
        for (int k = 0; k < p->n_slots; k++) {
            const ComicSlot *s = &p->slots[k];
            if (s->page != pg) continue;
            CHECK(s->x >= 0 && s->y >= 0 && s->x + s->w <= W && s->y + s->h <= H,
                  "%s: slot %d (%d,%d %dx%d) outside page %d (%dx%d)", what, k, s->x, s->y, s->w,
                  s->h, pg, W, H);
            CHECK(s->w - 2 * s->border >= 1 && s->h - 2 * s->border >= 1,
                  "%s: slot %d leaves no picture", what, k);
            for (int y = s->y; y < s->y + s->h && y < H; y++)
                for (int x = s->x; x < s->x + s->w && x < W; x++) cov[(size_t)y * W + x]++;
            if (s->frame >= 0) {
                CHECK(s->frame == next, "%s: slot %d holds frame %d, expected %d", what, k,
                      s->frame, next);
                next = s->frame + 1;
            }
        }
        size_t bad = 0;
        for (size_t i = 0; i < (size_t)W * H; i++) bad += cov[i] != 1;
        CHECK(bad == 0, "%s: page %d: %zu pixels not covered exactly once", what, pg, bad);
        free(cov);
    }
    CHECK(next == n, "%s: %d frames placed, expected %d", what, next, n);
}

static int test_plan(void) {
    char err[512];
    ComicPlan p;
    // four-panel: ceil(n / 4) pages of 2x2 cells of frame + border at 1:1
    for (int n = 1; n <= 13; n++) {
        CHECK(comic_plan(n, COMIC_FOUR_PANEL, 100, 80, 0, &p, err, sizeof err) == 0, "%s", err);
        int b = comic_border(100, 80);
        CHECK(b == 2, "border %d, expected 2", b);
        CHECK(p.n_pages == (n + 3) / 4, "four-panel n=%d: %d pages", n, p.n_pages);
        CHECK(p.n_slots == 4 * p.n_pages, "four-panel n=%d: %d slots", n, p.n_slots);
        for (int k = 0; k < p.n_slots; k++) {
            const ComicSlot *s = &p.slots[k];
            CHECK(s->page == k / 4 && s->x == (k % 2) * 104 && s->y == (k % 4 / 2) * 84 &&
                      s->w == 104 && s->h == 84 && s->border == 2 && s->scale == 1.0,
                  "four-panel n=%d slot %d: page %d at (%d,%d) %dx%d border %d", n, k, s->page,
                  s->x, s->y, s->w, s->h, s->border);
            CHECK(s->frame == (k < n ? k : -1), "slot %d frame %d", k, s->frame);
        }
        for (int pg = 0; pg < p.n_pages; pg++)
            CHECK(p.page_w[pg] == 208 && p.page_h[pg] == 168, "page %dx%d", p.page_w[pg],
                  p.page_h[pg]);
        check_tiling(&p, n, "four-panel");
        comic_plan_free(&p);
    }
    CHECK(comic_border(1024, 1024) == 10, "border at 1024: %d", comic_border(1024, 1024));
    // classic: rows of 4 (and 6 past 8 frames), 3 rows a page. n -> rows, pages.
    static const struct {
        int n, rows, pages, slots;
    } t[] = {{1, 1, 1, 4},   {4, 1, 1, 4},   {5, 2, 1, 8},   {8, 2, 1, 8},
             {9, 2, 1, 10},  {10, 2, 1, 10}, {11, 3, 1, 14}, {13, 3, 1, 14},
             {14, 3, 1, 14}, {15, 4, 2, 18}, {20, 4, 2, 20}, {100, 20, 7, 100}};
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        int n = t[i].n;
        CHECK(comic_plan(n, COMIC_CLASSIC, 100, 80, 0, &p, err, sizeof err) == 0, "%s", err);
        CHECK(p.n_pages == t[i].pages, "classic n=%d: %d pages, expected %d", n, p.n_pages,
              t[i].pages);
        CHECK(p.n_slots == t[i].slots, "classic n=%d: %d slots, expected %d", n, p.n_slots,
              t[i].slots);
        // page width: a row of 4 at 1:1 = 2 full cells (104) + a column of halves (52)
        for (int pg = 0; pg < p.n_pages; pg++)
            CHECK(p.page_w[pg] == 260, "classic n=%d page %d width %d", n, pg, p.page_w[pg]);
        // full cells of rows of 4 are 104 x 84 at 1:1; stacked halves 52 wide and 42 tall;
        // rows of 6 are scaled by 260 / 312 (full cells 87 x 70)
        int full = 0, half = 0, scaled = 0;
        for (int k = 0; k < p.n_slots; k++) {
            const ComicSlot *s = &p.slots[k];
            if (s->w == 104 && s->h == 84 && s->border == 2 && s->scale == 1.0)
                full++;
            else if (s->w == 52 && s->h == 42 && s->border == 1)
                half++;
            else if (s->w >= 86 && s->w <= 88 && s->h == 70)
                scaled++;
        }
        int rows4 = 0, rows6 = 0;
        for (int r = 0, left = n; r < t[i].rows; r++) {
            int size = (n <= 8 || r % 2 == 0) ? 4 : 6;
            if (left < size && left < 4) size = 4;
            rows4 += size == 4, rows6 += size == 6;
            left -= size;
        }
        CHECK(full == 2 * rows4, "classic n=%d: %d full cells, expected %d", n, full, 2 * rows4);
        CHECK(half == 2 * rows4, "classic n=%d: %d half cells, expected %d", n, half, 2 * rows4);
        CHECK(scaled == 2 * rows6, "classic n=%d: %d scaled full cells, expected %d", n, scaled,
              2 * rows6);
        // page heights: 84 per row of 4, 70 per row of 6
        int total = 0;
        for (int pg = 0; pg < p.n_pages; pg++) total += p.page_h[pg];
        CHECK(total == 84 * rows4 + 70 * rows6,
              "classic n=%d: pages %d px tall in all, "
              "expected %d",
              n, total, 84 * rows4 + 70 * rows6);
        check_tiling(&p, n, "classic");
        comic_plan_free(&p);
    }
    // invariants over many counts, an odd frame size and chosen page widths
    static const int widths[] = {0, 64, 333, 500, 1234};
    for (int wi = 0; wi < 5; wi++)
        for (int n = 1; n <= 41; n++)
            for (int li = 0; li < 2; li++) {
                ComicLayout lay = li ? COMIC_CLASSIC : COMIC_FOUR_PANEL;
                CHECK(comic_plan(n, lay, 77, 53, widths[wi], &p, err, sizeof err) == 0, "%s", err);
                check_tiling(&p, n, li ? "classic 77x53" : "four-panel 77x53");
                for (int pg = 0; widths[wi] && pg < p.n_pages; pg++)
                    CHECK(p.page_w[pg] == widths[wi], "page width %d, asked %d", p.page_w[pg],
                          widths[wi]);
                comic_plan_free(&p);
            }
    // four-panel at twice the natural width: cells, borders and pages double
    CHECK(comic_plan(4, COMIC_FOUR_PANEL, 100, 80, 416, &p, err, sizeof err) == 0, "%s", err);
    CHECK(p.page_w[0] == 416 && p.page_h[0] == 336 && p.slots[3].x == 208 && p.slots[3].y == 168 &&
              p.slots[3].w == 208 && p.slots[3].h == 168 && p.slots[3].border == 4 &&
              p.slots[3].scale == 2.0,
          "doubled four-panel: %dx%d, slot 3 at (%d,%d) %dx%d border %d", p.page_w[0], p.page_h[0],
          p.slots[3].x, p.slots[3].y, p.slots[3].w, p.slots[3].h, p.slots[3].border);
    comic_plan_free(&p);
    CHECK(comic_plan(4, COMIC_FOUR_PANEL, 100, 80, 10, &p, err, sizeof err) < 0 &&
              strstr(err, "page width 10"),
          "tiny page: %s", err);
    CHECK(comic_plan(0, COMIC_CLASSIC, 64, 64, 0, &p, err, sizeof err) == 0 && p.n_pages == 0,
          "no frames: %d pages", p.n_pages);
    CHECK(comic_plan(5, COMIC_NONE, 64, 64, 0, &p, err, sizeof err) == 0 && p.n_pages == 0,
          "layout none: %d pages", p.n_pages);
    CHECK(comic_plan(5, COMIC_CLASSIC, 0, 64, 0, &p, err, sizeof err) < 0 && strstr(err, "0x64"),
          "bad size: %s", err);
    CHECK(comic_plan(5, COMIC_CLASSIC, 30000, 64, 0, &p, err, sizeof err) < 0 &&
              strstr(err, "larger than"),
          "huge page: %s", err);
    return 0;
}

static int test_pixels(void) {
    char err[512];
    enum { N = 9, W = 60, H = 40 };
    Image fr[N];
    ComicPanel pan[N];
    for (int i = 0; i < N; i++) {
        fr[i] = solid(W, H, 20 + 20 * i, 200 - 15 * i, (40 * i) % 256);
        pan[i] = (ComicPanel){&fr[i], NULL, NULL};
    }
    // natural width (1:1 full panels), then shrunk and grown pages: resampling keeps
    // solid colours exact
    ComicLayout layouts[6] = {COMIC_FOUR_PANEL, COMIC_CLASSIC,    COMIC_FOUR_PANEL,
                              COMIC_CLASSIC,    COMIC_FOUR_PANEL, COMIC_CLASSIC};
    const int pw[6] = {0, 0, 97, 101, 301, 407};
    for (int li = 0; li < 6; li++) {
        Image *pages;
        int np;
        ComicPlan p;
        CHECK(comic_plan(N, layouts[li], W, H, pw[li], &p, err, sizeof err) == 0, "%s", err);
        CHECK(comic_pages_width(pan, N, layouts[li], NULL, 0, pw[li], &pages, &np, err,
                                sizeof err) == 0,
              "%s", err);
        CHECK(np == p.n_pages, "layout %d: %d pages, plan says %d", li, np, p.n_pages);
        CHECK(np == (layouts[li] == COMIC_FOUR_PANEL ? 3 : 1), "layout %d: %d pages", li, np);
        for (int pg = 0; pg < np; pg++)
            CHECK(pages[pg].width == p.page_w[pg] && pages[pg].height == p.page_h[pg] &&
                      pages[pg].channels == 3,
                  "page %d is %dx%dx%d", pg, pages[pg].width, pages[pg].height, pages[pg].channels);
        for (int k = 0; k < p.n_slots; k++) {
            const ComicSlot *s = &p.slots[k];
            const Image *pg = &pages[s->page];
            int cx = s->x + s->w / 2, cy = s->y + s->h / 2;
            // the border: the cell's corner and the middle of its top edge are white
            CHECK(is_rgb(px(pg, s->x, s->y), 255, 255, 255) &&
                      is_rgb(px(pg, cx, s->y + s->border - 1), 255, 255, 255),
                  "layout %d slot %d: border not white", li, k);
            if (s->frame < 0) {
                CHECK(is_rgb(px(pg, cx, cy), 255, 255, 255), "filler slot %d not white", k);
                continue;
            }
            const uint8_t *c = fr[s->frame].pixels;
            // the whole picture area is the frame's colour (a box filter keeps solid colours)
            int off = 0;
            for (int y = s->y + s->border; y < s->y + s->h - s->border; y++)
                for (int x = s->x + s->border; x < s->x + s->w - s->border; x++)
                    off += !is_rgb(px(pg, x, y), c[0], c[1], c[2]);
            CHECK(off == 0, "layout %d slot %d (frame %d): %d picture pixels off colour", li, k,
                  s->frame, off);
        }
        if (li == 5) {
            char path[1024], e2[256];
            snprintf(path, sizeof path, "%s/classic.png", workdir);
            CHECK(image_write_png(path, &pages[0], NULL, 0, e2, sizeof e2) == 0, "%s", e2);
        }
        comic_pages_free(pages, np);
        comic_plan_free(&p);
    }
    // COMIC_NONE: no pages and no error
    Image *pages = (Image *)1;
    int np = -1;
    CHECK(comic_pages(pan, N, COMIC_NONE, NULL, 0, &pages, &np, err, sizeof err) == 0 &&
              pages == NULL && np == 0,
          "none: %d pages", np);
    for (int i = 0; i < N; i++) image_free(&fr[i]);
    return 0;
}

static int test_caption(void) {
    char err[512];
    const int R = 200, G = 120, B = 60, FS = 24;
    Image fr = solid(256, 192, R, G, B);
    ComicPanel pan = {&fr, "Hello world", "frame_000.png"};
    Image *pages;
    int np;
    CHECK(comic_pages(&pan, 1, COMIC_FOUR_PANEL, NULL, FS, &pages, &np, err, sizeof err) == 0, "%s",
          err);
    if (np != 1) return 1;
    char path[1024];
    snprintf(path, sizeof path, "%s/caption.png", workdir);
    CHECK(image_write_png(path, &pages[0], NULL, 0, err, sizeof err) == 0, "%s", err);
    ComicFont *f = comic_font_open(NULL, FS, err, sizeof err);
    CHECK(f != NULL, "%s", err);
    if (!f) return 1;
    int b = comic_border(256, 192), ix = b, iy = b, iw = 256, ih = 192;
    int m = FS / 3, lh = comic_font_line_height(f);
    int box_h = lh + 2 * m, top = iy + ih - box_h;  // one line: "Hello world" fits easily
    CHECK(comic_text_width(f, "Hello world", 11) < iw - 2 * m, "caption too wide");
    const Image *pg = &pages[0];
    int dr = (R * (255 - COMIC_BOX_ALPHA) + 127) / 255,
        dg = (G * (255 - COMIC_BOX_ALPHA) + 127) / 255,
        db = (B * (255 - COMIC_BOX_ALPHA) + 127) / 255;
    // box edges: darkened at the left and right ends of its top and bottom rows
    CHECK(is_rgb(px(pg, ix, top), dr, dg, db) && is_rgb(px(pg, ix + iw - 1, top), dr, dg, db) &&
              is_rgb(px(pg, ix, iy + ih - 1), dr, dg, db),
          "box corners are (%d,%d,%d), expected (%d,%d,%d)", px(pg, ix, top)[0], px(pg, ix, top)[1],
          px(pg, ix, top)[2], dr, dg, db);
    // the row above the box and the panel's middle are untouched
    int above = 0;
    for (int x = ix; x < ix + iw; x++) above += !is_rgb(px(pg, x, top - 1), R, G, B);
    CHECK(above == 0, "%d pixels changed just above the box", above);
    CHECK(is_rgb(px(pg, ix + iw / 2, iy + ih / 3), R, G, B), "middle of the picture changed");
    // inside: darkened pixels, white text pixels, and nothing brighter than the picture
    // except text (which blends towards white: every channel >= the darkened value)
    int white = 0, other = 0;
    for (int y = top; y < iy + ih; y++)
        for (int x = ix; x < ix + iw; x++) {
            const uint8_t *q = px(pg, x, y);
            if (q[0] >= 250 && q[1] >= 250 && q[2] >= 250) white++;
            if (q[0] < dr || q[1] < dg || q[2] < db) other++;
        }
    CHECK(white >= 30, "only %d white text pixels in the box", white);
    CHECK(other == 0, "%d box pixels darker than the box", other);
    // the text is centred: white pixels on both halves of the box, none in the margins
    int left = 0, right = 0, margin = 0;
    for (int y = top; y < iy + ih; y++)
        for (int x = ix; x < ix + iw; x++) {
            const uint8_t *q = px(pg, x, y);
            if (q[0] < 250) continue;
            if (x < ix + iw / 2)
                left++;
            else
                right++;
            if (x < ix + m || x >= ix + iw - m) margin++;
        }
    CHECK(left > 5 && right > 5 && margin == 0,
          "text not centred: %d left, %d right, %d in "
          "the margins",
          left, right, margin);
    // no other panel was touched: the page's three fillers are white
    CHECK(is_rgb(px(pg, 256 + 2 * b + 10, 10), 255, 255, 255), "filler not white");
    comic_font_close(f);
    comic_pages_free(pages, np);

    // a caption too long for half the picture ends in an ellipsis and stays in the lower half
    Image small = solid(128, 96, R, G, B);
    char longtext[2048] = "";
    for (int i = 0; i < 60; i++) strcat(longtext, "word ");
    ComicPanel lp = {&small, longtext, NULL};
    CHECK(comic_pages(&lp, 1, COMIC_FOUR_PANEL, NULL, 12, &pages, &np, err, sizeof err) == 0, "%s",
          err);
    int bb = comic_border(128, 96);
    int changed_top = 0;
    for (int y = bb; y < bb + 96 / 2 - 1; y++)
        for (int x = bb; x < bb + 128; x++) changed_top += !is_rgb(px(&pages[0], x, y), R, G, B);
    CHECK(changed_top == 0, "long caption reaches the upper half (%d pixels)", changed_top);
    comic_pages_free(pages, np);
    image_free(&small);
    image_free(&fr);
    return 0;
}

// Splits text into words (runs without blanks or newlines), joined by single spaces.
static void words_of(const char *s, size_t n, char *out) {
    size_t o = strlen(out);
    for (size_t i = 0; i < n;) {
        while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n')) i++;
        if (i >= n) break;
        if (o) out[o++] = ' ';
        while (i < n && s[i] != ' ' && s[i] != '\t' && s[i] != '\n') out[o++] = s[i++];
    }
    out[o] = 0;
}

static int test_wrap(void) {
    char err[512];
    ComicFont *f = comic_font_open(NULL, 20, err, sizeof err);
    CHECK(f != NULL, "%s", err);
    if (!f) return 1;
    const char *text =
        "The quick brown fox jumps over the lazy dog and keeps running through the dark "
        "forest until night falls";
    ComicLine ln[64];
    const int maxw = 150;
    int n = comic_wrap(f, text, maxw, ln, 64);
    CHECK(n >= 4 && n <= 64, "%d lines", n);
    CHECK(comic_text_width(f, text, strlen(text)) > 3 * maxw, "the text is short");
    char joined[1024] = "", want[1024] = "";
    for (int i = 0; i < n && i < 64; i++) {
        const char *l = text + ln[i].start;
        int w = comic_text_width(f, l, (size_t)ln[i].len);
        CHECK(w <= maxw, "line %d \"%.*s\" is %d px, wider than %d", i, ln[i].len, l, w, maxw);
        CHECK(ln[i].len > 0 && l[0] != ' ' && l[ln[i].len - 1] != ' ',
              "line %d has blanks at "
              "an end: \"%.*s\"",
              i, ln[i].len, l);
        if (i + 1 < n) {  // greedy: the next line's first word would not have fit
            const char *nx = text + ln[i + 1].start;
            size_t wl = strcspn(nx, " ");
            int with = comic_text_width(f, l, (size_t)(nx - l) + wl);
            CHECK(with > maxw, "line %d could have taken the next word (%d px)", i, with);
        }
        words_of(l, (size_t)ln[i].len, joined);
    }
    words_of(text, strlen(text), want);
    CHECK(!strcmp(joined, want), "words lost or reordered:\n%s\n%s", joined, want);
    CHECK(comic_wrap(f, text, maxw, ln, 2) == n, "count with a short line array");
    CHECK(comic_wrap(f, text, 100000, ln, 64) == 1 && ln[0].start == 0 &&
              ln[0].len == (int)strlen(text),
          "a wide line holds everything");
    CHECK(comic_wrap(f, "", 100, ln, 64) == 0 && comic_wrap(f, "   ", 100, ln, 64) == 0,
          "blank text has no lines");
    // a word wider than the line is broken between characters, nothing lost
    const char *word = "Supercalifragilisticexpialidocious";
    n = comic_wrap(f, word, 60, ln, 64);
    CHECK(n >= 3, "long word: %d lines", n);
    char cat[256] = "";
    for (int i = 0; i < n && i < 64; i++) {
        CHECK(comic_text_width(f, word + ln[i].start, (size_t)ln[i].len) <= 60 || ln[i].len == 1,
              "piece %d too wide", i);
        strncat(cat, word + ln[i].start, (size_t)ln[i].len);
    }
    CHECK(!strcmp(cat, word), "pieces \"%s\"", cat);
    // newlines break; blank lines vanish
    n = comic_wrap(f, "one\ntwo\n\nthree", 1000, ln, 64);
    CHECK(n == 3 && ln[1].start == 4 && ln[1].len == 3 && ln[2].start == 9, "newlines: %d lines",
          n);
    // widths: additive over words, larger for a larger size
    int w1 = comic_text_width(f, "Hello", 5);
    CHECK(w1 > 20 && w1 < 100, "\"Hello\" at 20 px is %d px wide", w1);
    CHECK(comic_font_set_size(f, 40, err, sizeof err) == 0, "%s", err);
    int w2 = comic_text_width(f, "Hello", 5);
    CHECK(w2 >= 2 * w1 - 4 && w2 <= 2 * w1 + 4, "\"Hello\" at 40 px is %d, at 20 px %d", w2, w1);
    CHECK(comic_font_line_height(f) >= 40, "line height %d at 40 px", comic_font_line_height(f));
    comic_font_close(f);
    return 0;
}

static int test_unicode(void) {
    char err[512];
    const char *text =
        "Ünïcödé café — naïve “quotes” 日本語のキャプション 😀🎉 Ωμέγα \xff\xfe\xc0\x80 broken "
        "\xe2\x82 tail";
    ComicFont *f = comic_font_open(NULL, 16, err, sizeof err);
    CHECK(f != NULL, "%s", err);
    if (!f) return 1;
    ComicLine ln[64];
    int n = comic_wrap(f, text, 90, ln, 64);
    CHECK(n >= 3, "%d lines", n);
    for (int i = 0; i < n && i < 64; i++) {
        unsigned char c0 = (unsigned char)text[ln[i].start];
        CHECK((c0 & 0xC0) != 0x80 || c0 == 0x80, "line %d starts inside a character", i);
        CHECK(ln[i].start + ln[i].len <= (int)strlen(text), "line %d past the end", i);
    }
    comic_font_close(f);
    Image fr[2] = {solid(96, 64, 30, 60, 90), solid(96, 64, 90, 60, 30)};
    ComicPanel pan[2] = {{&fr[0], text, NULL}, {&fr[1], "Ωμέγα", NULL}};
    Image *pages;
    int np;
    CHECK(comic_pages(pan, 2, COMIC_CLASSIC, NULL, 0, &pages, &np, err, sizeof err) == 0, "%s",
          err);
    CHECK(np == 1, "%d pages", np);
    int white = 0;
    for (int y = 0; np == 1 && y < pages[0].height; y++)
        for (int x = 0; x < pages[0].width; x++) {
            const uint8_t *q = px(&pages[0], x, y);
            // white text on the dark box: bright pixels whose neighbours are the dark box
            if (q[0] >= 250 && q[1] >= 250 && q[2] >= 250 && x > 0 &&
                px(&pages[0], x - 1, y)[0] < 100)
                white++;
        }
    CHECK(white > 0, "no caption text drawn");
    comic_pages_free(pages, np);
    image_free(&fr[0]);
    image_free(&fr[1]);
    return 0;
}

static int test_errors(void) {
    char err[1024];
    Image a = solid(64, 64, 10, 10, 10), b = solid(64, 48, 10, 10, 10);
    Image *pages;
    int np;
    ComicPanel pan[2] = {{&a, "one", "frames/frame_000.png"}, {&b, "two", "frames/frame_001.png"}};
    CHECK(comic_pages(pan, 2, COMIC_CLASSIC, NULL, 0, &pages, &np, err, sizeof err) < 0 &&
              strstr(err, "frames/frame_001.png") && strstr(err, "64x48") &&
              strstr(err, "frames/frame_000.png") && strstr(err, "64x64"),
          "mismatch: %s", err);
    pan[1].image = &a;
    char missing[1024];
    snprintf(missing, sizeof missing, "%s/no-such-font.ttf", workdir);
    CHECK(comic_pages(pan, 2, COMIC_CLASSIC, missing, 0, &pages, &np, err, sizeof err) < 0 &&
              strstr(err, missing) && strstr(err, "No such file"),
          "missing font: %s", err);
    char notfont[1024];
    snprintf(notfont, sizeof notfont, "%s/notafont.ttf", workdir);
    FILE *fp = fopen(notfont, "w");
    fputs("this is not a font\n", fp);
    fclose(fp);
    CHECK(comic_pages(pan, 2, COMIC_FOUR_PANEL, notfont, 0, &pages, &np, err, sizeof err) < 0 &&
              strstr(err, notfont) && strstr(err, "not a font"),
          "not a font: %s", err);
    CHECK(comic_font_open(workdir, 12, err, sizeof err) == NULL && strstr(err, workdir),
          "a folder as font: %s", err);
    // without captions no font is needed
    pan[0].caption = pan[1].caption = NULL;
    CHECK(comic_pages(pan, 2, COMIC_FOUR_PANEL, missing, 0, &pages, &np, err, sizeof err) == 0 &&
              np == 1,
          "no captions: %s", err);
    comic_pages_free(pages, np);
    ComicPanel nopic = {NULL, "x", "frames/frame_007.png"};
    CHECK(comic_pages(&nopic, 1, COMIC_CLASSIC, NULL, 0, &pages, &np, err, sizeof err) < 0 &&
              strstr(err, "frames/frame_007.png"),
          "no picture: %s", err);
    image_free(&a);
    image_free(&b);
    return 0;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s plan|pixels|caption|wrap|unicode|errors WORKDIR\n", argv[0]);
        return 2;
    }
    workdir = argv[2];
    if (mkdir(workdir, 0777) != 0 && errno != EEXIST) {
        perror(workdir);
        return 2;
    }
    const char *mode = argv[1];
    int rc = !strcmp(mode, "plan")      ? test_plan()
             : !strcmp(mode, "pixels")  ? test_pixels()
             : !strcmp(mode, "caption") ? test_caption()
             : !strcmp(mode, "wrap")    ? test_wrap()
             : !strcmp(mode, "unicode") ? test_unicode()
             : !strcmp(mode, "errors")  ? test_errors()
                                        : (fprintf(stderr, "unknown mode %s\n", mode), 2);
    printf("outputs_comic_%s: %d checks, %d failure(s)\n", mode, checks, failures);
    return rc || failures ? 1 : 0;
}

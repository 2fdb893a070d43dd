// runner/comic.h: comic pages from a story's frames and captions (DESIGN.md 2.2).
//
// Every frame becomes a panel: the frame, a white border around it, and its caption
// word-wrapped (by measured glyph advances, UTF-8) in white on a translucent dark box at
// the bottom of the picture. Two layouts:
//   four-panel  2x2 panels per page, in reading order; the last page is filled with blank
//               panels. Panels are the frames at 1:1, so a page is (2 PW) x (2 PH) where
//               PW x PH = frame + border.
//   classic     rows of 4 or 6 panels, as in the StoryDiffusion reference: a row of 4 has
//               two full panels and one column of two half-size panels stacked; a row of 6
//               has two full panels and two such columns. Stories of up to 8 frames use
//               rows of 4 only; longer ones alternate 4, 6, 4, ... The last row is filled
//               with blank panels. Rows are scaled to one page width (that of a row of 4,
//               2 PW + PW/2, whose full panels stay 1:1) and stacked, up to
//               COMIC_ROWS_PER_PAGE rows a page. Where the reference shuffles the columns
//               of a row at random, storyrun picks the arrangement from the row's index,
//               so a re-run draws byte-identical pages.
// Blank panels are left white. comic_pages_width draws the same layout at a chosen page
// width (config key comic.page_width), scaling cells, borders and captions alike.
// Pages are RGB Image values; the caller writes them (image_write_png is atomic).
//
//   ComicPanel p[8] = {{&frame0, "Bob wakes up", "frame_000.png"}, ...};
//   Image *pages; int n_pages;
//   if (comic_pages(p, 8, COMIC_CLASSIC, NULL, 0, &pages, &n_pages, err, sizeof err))
//       ...;  // err: ".../DejaVuSans.ttf: cannot open the caption font: No such file ..."
//   for (int i = 0; i < n_pages; i++) image_write_png(path_i, &pages[i], NULL, 0, ...);
//   comic_pages_free(pages, n_pages);
#pragma once
#include <stddef.h>

#include "jobs/render_config.h"  // ComicLayout (COMIC_NONE, COMIC_CLASSIC, COMIC_FOUR_PANEL)
#include "runner/image.h"

#ifdef __cplusplus
extern "C" {
#endif

#define COMIC_DEFAULT_FONT "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
#define COMIC_ROWS_PER_PAGE 3  // classic: rows stacked on one page

typedef struct {
    const Image *image;   // the frame: 1-4 channels (alpha is ignored); all of one size
    const char *caption;  // UTF-8, or NULL / "" for none
    const char *name;     // the frame's file, for messages ("frames/frame_003.png"); may be NULL
} ComicPanel;

// Where a panel goes: the cell (x, y, w, h) on page `page`, a white border of `border`
// pixels inside it, the picture in the rest. frame: index into the panels, or -1 for a
// blank filler. scale: picture height / frame height (1 for full panels at 1:1).
typedef struct {
    int page, frame;
    int x, y, w, h;
    int border;
    double scale;
} ComicSlot;

typedef struct {
    int n_pages;
    int *page_w, *page_h;  // [n_pages]
    int n_slots;           // every panel and every blank filler, in reading order
    ComicSlot *slots;
    int border;  // border of a full-size panel
} ComicPlan;

// The white border of a full panel for frames of w x h: min(w, h) / 100 rounded, >= 2
// (10 px at 1024, as the reference draws it).
int comic_border(int w, int h);

// Lays out n frames of frame_w x frame_h on pages page_width pixels wide (0: the natural
// width, at which full panels of four-panel pages and of classic rows of 4 are 1:1; any
// other width scales every cell, its border and its caption by the same factor). Returns
// 0 (COMIC_NONE or n == 0: no pages), or -1 with a message (a bad size, too large a
// page). Free with comic_plan_free.
#define COMIC_MIN_PAGE_WIDTH 64
int comic_plan(int n, ComicLayout layout, int frame_w, int frame_h, int page_width, ComicPlan *plan,
               char *err, size_t errlen);
void comic_plan_free(ComicPlan *plan);

// Draws the pages at their natural width. font_path NULL: COMIC_DEFAULT_FONT. font_size:
// caption pixels on a panel drawn at the frame's own size (smaller or larger panels scale
// it, at least 6), 0: derived from each picture's height on the page (h / 28, at least 9). Returns
// 0 with *pages (malloc'ed array of *n_pages images; none for COMIC_NONE), or -1 with a message
// naming the font or the frame at fault.
int comic_pages(const ComicPanel *panels, int n, ComicLayout layout, const char *font_path,
                int font_size, Image **pages, int *n_pages, char *err, size_t errlen);
// The same on pages page_width pixels wide (0: natural; see comic_plan).
int comic_pages_width(const ComicPanel *panels, int n, ComicLayout layout, const char *font_path,
                      int font_size, int page_width, Image **pages, int *n_pages, char *err,
                      size_t errlen);
void comic_pages_free(Image *pages, int n_pages);

// ---- text ------------------------------------------------------------------------------
// A FreeType face at one pixel size; captions are measured and drawn with it.
typedef struct ComicFont ComicFont;

// Opens a TrueType/OpenType font (NULL: COMIC_DEFAULT_FONT) at px pixels. Returns NULL
// with "PATH: cannot open: REASON" or "PATH: not a font FreeType can read (...)".
ComicFont *comic_font_open(const char *path, int px, char *err, size_t errlen);
void comic_font_close(ComicFont *f);
int comic_font_set_size(ComicFont *f, int px, char *err, size_t errlen);
int comic_font_line_height(const ComicFont *f);  // pixels between baselines
int comic_font_ascender(const ComicFont *f);     // pixels from the top of a line to its baseline

// Width in pixels of len bytes of UTF-8 text (glyph advances plus kerning; invalid bytes
// count as U+FFFD).
int comic_text_width(ComicFont *f, const char *text, size_t len);

// One wrapped line: bytes [start, start + len) of the text.
typedef struct {
    int start, len;
} ComicLine;

// Greedy word wrap of UTF-8 text into lines of at most max_width pixels: words split at
// spaces and tabs, '\n' forces a break, a word wider than a line is broken between
// characters. Lines carry no leading or trailing blanks. Writes up to max_lines lines and
// returns how many the whole text needs.
int comic_wrap(ComicFont *f, const char *text, int max_width, ComicLine *lines, int max_lines);

// Draws a caption at the bottom of the rectangle (x, y, w, h) of img (RGB): a dark box
// (alpha COMIC_BOX_ALPHA / 255 over the picture) as wide as the rectangle and as tall as
// the wrapped lines plus a margin, lines centred in white. When the text needs more than
// half the rectangle's height, the last line that fits ends in "…". Returns the box's
// height (0: nothing drawn).
#define COMIC_BOX_ALPHA 160
int comic_draw_caption(Image *img, int x, int y, int w, int h, ComicFont *f, const char *text);

#ifdef __cplusplus
}
#endif

// runner/html.h: index.html, the story as one page that opens from disk: every frame with
// its caption and full prompt, the comic pages, and the settings it was made with.
// Relative links only, inline CSS, no JavaScript, nothing fetched from the network.
//
//   HtmlFrame fr[] = {{"frames/frame_000.png", "Bob wakes up", "a man ... in bed", 2047}};
//   HtmlStory s = {.title = "demo", .frames = fr, .n_frames = 1, .model = "builtin:tiny-sdxl",
//                  .seed = 2047, .steps = 20, ...};
//   html_write_index("out/story/index.html", &s, err, sizeof err);
#pragma once
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    const char *image;    // path relative to index.html, or NULL when the frame is missing
    const char *caption;  // may be NULL
    const char *prompt;   // the full prompt (style applied)
    uint64_t seed;        // the frame's seed
} HtmlFrame;

typedef struct {
    const char *key, *value;
} HtmlSetting;

typedef struct {
    const char *title;  // the story's name (e.g. the config's file name)
    const HtmlFrame *frames;
    int n_frames;
    const char *const *pages;  // comic pages, paths relative to index.html
    int n_pages;
    // generation settings (NULL strings and 0 numbers are left out)
    const char *model, *sampler, *csa_mode, *style, *negative, *precision;
    const char *config_path, *config_hash;
    uint64_t seed;
    int steps, width, height;
    double guidance;
    const HtmlSetting *extra;  // more rows for the settings table (CSA knobs, ...)
    int n_extra;
} HtmlStory;

// s with & < > " ' replaced by entities; malloc'ed.
char *html_escape(const char *s);
// A relative path as a URL reference: bytes other than letters, digits, '/', '-', '_',
// '.', '~' percent-encoded (a space is %20); malloc'ed. Not HTML-escaped (no need: the
// result holds none of & < > " ').
char *html_url_path(const char *path);

// The whole document, malloc'ed (NUL-terminated).
char *html_render(const HtmlStory *s);
// Renders and writes it to path atomically. Returns 0, or -1 with a message naming path.
int html_write_index(const char *path, const HtmlStory *s, char *err, size_t errlen);

#ifdef __cplusplus
}
#endif

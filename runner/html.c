// runner/html.c: the story's index.html (see html.h).
#include "runner/html.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runner/check.h"
#include "runner/manifest.h"  // file_write_atomic

typedef struct {
    char *s;
    size_t n, cap;
} Buf;

static void buf_put(Buf *b, const char *s, size_t n) {
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 8192;
        while (cap < b->n + n + 1) cap *= 2;
        char *p = realloc(b->s, cap);
        if (!p) STORY_FATAL("out of memory growing a %zu-byte page", cap);
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
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    STORY_CHECK(n >= 0 && (size_t)n < sizeof tmp, "buf_printf: %d bytes", n);
    buf_put(b, tmp, (size_t)n);
}

// Text content or attribute value, escaped.
static void buf_esc(Buf *b, const char *s) {
    for (; s && *s; s++) {
        switch (*s) {
        case '&': buf_str(b, "&amp;"); break;
        case '<': buf_str(b, "&lt;"); break;
        case '>': buf_str(b, "&gt;"); break;
        case '"': buf_str(b, "&quot;"); break;
        case '\'': buf_str(b, "&#39;"); break;
        default: buf_put(b, s, 1);
        }
    }
}

char *html_escape(const char *s) {
    Buf b = {0};
    buf_put(&b, "", 0);
    buf_esc(&b, s);
    return b.s;
}

static void buf_url(Buf *b, const char *path) {
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)path; p && *p; p++) {
        unsigned c = *p;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            c == '/' || c == '-' || c == '_' || c == '.' || c == '~') {
            char ch = (char)c;
            buf_put(b, &ch, 1);
        } else {
            char e[3] = {'%', hex[c >> 4], hex[c & 15]};
            buf_put(b, e, 3);
        }
    }
}

char *html_url_path(const char *path) {
    Buf b = {0};
    buf_put(&b, "", 0);
    buf_url(&b, path);
    return b.s;
}

static void setting(Buf *b, const char *key, const char *value) {
    if (!value || !*value) return;
    buf_str(b, "<tr><th>");
    buf_esc(b, key);
    buf_str(b, "</th><td>");
    buf_esc(b, value);
    buf_str(b, "</td></tr>\n");
}

static const char *style_sheet =
    "body{font-family:sans-serif;margin:2em auto;max-width:1200px;padding:0 1em;"
    "color:#222;background:#fafafa}\n"
    "h1{margin-bottom:0.2em}\n"
    ".frames{display:grid;grid-template-columns:repeat(auto-fill,minmax(280px,1fr));gap:1.2em}\n"
    "figure{margin:0;background:#fff;border:1px solid #ddd;padding:0.6em}\n"
    "figure img{width:100%;height:auto;display:block}\n"
    "figcaption .caption{font-weight:bold;margin:0.4em 0 0.2em}\n"
    "figcaption .prompt{font-size:0.85em;color:#555;white-space:pre-wrap;word-wrap:break-word}\n"
    "figcaption .meta{font-size:0.8em;color:#888}\n"
    ".missing{padding:3em 0;text-align:center;color:#999;background:#eee}\n"
    ".pages img{max-width:100%;height:auto;display:block;margin:0 0 1em;border:1px solid #ddd}\n"
    "table{border-collapse:collapse}\n"
    "th,td{text-align:left;padding:0.25em 0.8em;border-bottom:1px solid #ddd;"
    "vertical-align:top}\n"
    "td{word-break:break-all}\n";

char *html_render(const HtmlStory *s) {
    Buf b = {0};
    const char *title = s->title && *s->title ? s->title : "storyrun story";
    buf_str(&b,
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
            "<meta name=\"generator\" content=\"storyrun\">\n<title>");
    buf_esc(&b, title);
    buf_str(&b, "</title>\n<style>\n");
    buf_str(&b, style_sheet);
    buf_str(&b, "</style>\n</head>\n<body>\n<h1>");
    buf_esc(&b, title);
    buf_printf(&b, "</h1>\n<p>%d frame%s", s->n_frames, s->n_frames == 1 ? "" : "s");
    if (s->n_pages) buf_printf(&b, ", %d comic page%s", s->n_pages, s->n_pages == 1 ? "" : "s");
    buf_str(&b, ".</p>\n");

    buf_str(&b, "<h2 id=\"frames\">Frames</h2>\n<div class=\"frames\">\n");
    for (int i = 0; i < s->n_frames; i++) {
        const HtmlFrame *f = &s->frames[i];
        buf_printf(&b, "<figure id=\"frame-%d\">\n", i);
        if (f->image) {
            buf_str(&b, "<a href=\"");
            buf_url(&b, f->image);
            buf_str(&b, "\"><img src=\"");
            buf_url(&b, f->image);
            buf_printf(&b, "\" alt=\"frame %d\" loading=\"lazy\"></a>\n", i);
        } else {
            buf_str(&b, "<div class=\"missing\">not rendered</div>\n");
        }
        buf_str(&b, "<figcaption>\n");
        if (f->caption && *f->caption) {
            buf_str(&b, "<div class=\"caption\">");
            buf_esc(&b, f->caption);
            buf_str(&b, "</div>\n");
        }
        buf_str(&b, "<div class=\"prompt\">");
        buf_esc(&b, f->prompt);
        buf_printf(&b, "</div>\n<div class=\"meta\">frame %d &middot; seed %llu</div>\n", i,
                   (unsigned long long)f->seed);
        buf_str(&b, "</figcaption>\n</figure>\n");
    }
    buf_str(&b, "</div>\n");

    if (s->n_pages) {
        buf_str(&b, "<h2 id=\"comic\">Comic</h2>\n<div class=\"pages\">\n");
        for (int i = 0; i < s->n_pages; i++) {
            buf_str(&b, "<a href=\"");
            buf_url(&b, s->pages[i]);
            buf_str(&b, "\"><img src=\"");
            buf_url(&b, s->pages[i]);
            buf_printf(&b, "\" alt=\"comic page %d\"></a>\n", i + 1);
        }
        buf_str(&b, "</div>\n");
    }

    buf_str(&b, "<h2 id=\"settings\">Settings</h2>\n<table>\n");
    char num[64];
    setting(&b, "model", s->model);
    snprintf(num, sizeof num, "%llu", (unsigned long long)s->seed);
    setting(&b, "seed", num);
    if (s->steps > 0) {
        snprintf(num, sizeof num, "%d", s->steps);
        setting(&b, "steps", num);
    }
    setting(&b, "sampler", s->sampler);
    if (s->guidance > 0) {
        snprintf(num, sizeof num, "%g", s->guidance);
        setting(&b, "guidance", num);
    }
    if (s->width > 0 && s->height > 0) {
        snprintf(num, sizeof num, "%dx%d", s->width, s->height);
        setting(&b, "size", num);
    }
    setting(&b, "precision", s->precision);
    setting(&b, "style", s->style);
    setting(&b, "negative prompt", s->negative);
    setting(&b, "CSA mode", s->csa_mode);
    for (int i = 0; i < s->n_extra; i++) setting(&b, s->extra[i].key, s->extra[i].value);
    setting(&b, "config", s->config_path);
    setting(&b, "config hash", s->config_hash);
    buf_str(&b, "</table>\n<p class=\"meta\">Made with storyrun.</p>\n</body>\n</html>\n");
    return b.s;
}

int html_write_index(const char *path, const HtmlStory *s, char *err, size_t errlen) {
    char *doc = html_render(s);
    int rc = file_write_atomic(path, doc, strlen(doc), err, errlen);
    free(doc);
    return rc;
}

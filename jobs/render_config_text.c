// jobs/render_config_text.c: the style templates, the prompts a frame turns into, the
// config hash and freeing (jobs/render_config.h); loading is in jobs/render_config.c.
#include <ctype.h>
#include <nettle/sha2.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jobs/render_config.h"
#include "runner/check.h"
#include "runner/config.h"

// The style templates of the public StoryDiffusion code (utils/style_template.py), as
// data: "{prompt}" is replaced by the frame's prompt; the negative goes before the user's.
static RenderStyle styles[] = {
    {"(No style)", "{prompt}", ""},
    {"Japanese Anime",
     "anime artwork illustrating {prompt}. created by japanese anime studio. highly emotional. "
     "best quality, high resolution, (Anime Style, Manga Style:1.3), Low detail, sketch, concept "
     "art, line art, webtoon, manhua, hand drawn, defined lines, simple shades, minimalistic, High "
     "contrast, Linear compositions, Scalable artwork, Digital art, High Contrast Shadows",
     "lowres, bad anatomy, bad hands, text, error, missing fingers, extra digit, fewer digits, "
     "cropped, worst quality, low quality, normal quality, jpeg artifacts, signature, watermark, "
     "username, blurry"},
    {"Digital/Oil Painting",
     "{prompt} . (Extremely Detailed Oil Painting:1.2), glow effects, godrays, Hand drawn, render, "
     "8k, octane render, cinema 4d, blender, dark, atmospheric 4k ultra detailed, cinematic "
     "sensual, Sharp focus, humorous illustration, big depth of field",
     "anime, cartoon, graphic, text, painting, crayon, graphite, abstract, glitch, deformed, "
     "mutated, ugly, disfigured, lowres, bad anatomy, bad hands, text, error, missing fingers, "
     "extra digit, fewer digits, cropped, worst quality, low quality, normal quality, jpeg "
     "artifacts, signature, watermark, username, blurry"},
    {"Pixar/Disney Character",
     "Create a Disney Pixar 3D style illustration on {prompt} . The scene is vibrant, "
     "motivational, filled with vivid colors and a sense of wonder.",
     "lowres, bad anatomy, bad hands, text, bad eyes, bad arms, bad legs, error, missing fingers, "
     "extra digit, fewer digits, cropped, worst quality, low quality, normal quality, jpeg "
     "artifacts, signature, watermark, blurry, grayscale, noisy, sloppy, messy, grainy, highly "
     "detailed, ultra textured, photo"},
    {"Photographic",
     "cinematic photo {prompt} . Hyperrealistic, Hyperdetailed, detailed skin, matte skin, soft "
     "lighting, realistic, best quality, ultra realistic, 8k, golden ratio, Intricate, High "
     "Detail, film photography, soft focus",
     "drawing, painting, crayon, sketch, graphite, impressionist, noisy, blurry, soft, deformed, "
     "ugly, lowres, bad anatomy, bad hands, text, error, missing fingers, extra digit, fewer "
     "digits, cropped, worst quality, low quality, normal quality, jpeg artifacts, signature, "
     "watermark, username, blurry"},
    {"Comic book",
     "comic {prompt} . graphic illustration, comic art, graphic novel art, vibrant, highly "
     "detailed",
     "photograph, deformed, glitch, noisy, realistic, stock photo, lowres, bad anatomy, bad hands, "
     "text, error, missing fingers, extra digit, fewer digits, cropped, worst quality, low "
     "quality, normal quality, jpeg artifacts, signature, watermark, username, blurry"},
    {"Line art",
     "line art drawing {prompt} . professional, sleek, modern, minimalist, graphic, line art, "
     "vector graphics",
     "anime, photorealistic, 35mm film, deformed, glitch, blurry, noisy, off-center, deformed, "
     "cross-eyed, closed eyes, bad anatomy, ugly, disfigured, mutated, realism, realistic, "
     "impressionism, expressionism, oil, acrylic, lowres, bad anatomy, bad hands, text, error, "
     "missing fingers, extra digit, fewer digits, cropped, worst quality, low quality, normal "
     "quality, jpeg artifacts, signature, watermark, username, blurry"},
    {"Black and White Film Noir",
     "{prompt} . (b&w, Monochromatic, Film Photography:1.3), film noir, analog style, soft "
     "lighting, subsurface scattering, realistic, heavy shadow, masterpiece, best quality, ultra "
     "realistic, 8k",
     "anime, photorealistic, 35mm film, deformed, glitch, blurry, noisy, off-center, deformed, "
     "cross-eyed, closed eyes, bad anatomy, ugly, disfigured, mutated, realism, realistic, "
     "impressionism, expressionism, oil, acrylic, lowres, bad anatomy, bad hands, text, error, "
     "missing fingers, extra digit, fewer digits, cropped, worst quality, low quality, normal "
     "quality, jpeg artifacts, signature, watermark, username, blurry"},
    {"Isometric Rooms",
     "Tiny cute isometric {prompt} . in a cutaway box, soft smooth lighting, soft colors, 100mm "
     "lens, 3d blender render",
     "anime, photorealistic, 35mm film, deformed, glitch, blurry, noisy, off-center, deformed, "
     "cross-eyed, closed eyes, bad anatomy, ugly, disfigured, mutated, realism, realistic, "
     "impressionism, expressionism, oil, acrylic, lowres, bad anatomy, bad hands, text, error, "
     "missing fingers, extra digit, fewer digits, cropped, worst quality, low quality, normal "
     "quality, jpeg artifacts, signature, watermark, username, blurry"},
};
enum { N_STYLES = sizeof styles / sizeof *styles };

// Names a config may use (normalised: lower case, single spaces), each with its template.
// The reference has one template for digital art and oil painting.
static const struct {
    const char *name;
    int style;
} style_names[] = {
    {"no style", 0},     {"none", 0},
    {"(no style)", 0},   {"japanese anime", 1},
    {"anime", 1},        {"digital art", 2},
    {"oil painting", 2}, {"digital/oil painting", 2},
    {"digital", 2},      {"oil", 2},
    {"pixar/disney", 3}, {"pixar", 3},
    {"disney", 3},       {"pixar/disney character", 3},
    {"photographic", 4}, {"photo", 4},
    {"comic book", 5},   {"comic", 5},
    {"line art", 6},     {"film noir", 7},
    {"noir", 7},         {"black and white film noir", 7},
    {"isometric", 8},    {"isometric rooms", 8},
};
enum { N_STYLE_NAMES = sizeof style_names / sizeof *style_names };
#define STYLE_LIST                                                                      \
    "no style, Japanese anime, digital art, oil painting, Pixar/Disney, photographic, " \
    "comic book, line art, film noir, isometric"

const RenderStyle *render_styles(int *n) {
    if (n) *n = N_STYLES;
    return styles;
}

int render_style_find(const char *name, char *err, size_t errlen) {
    char norm[128];
    size_t o = 0;
    for (const char *c = name ? name : ""; *c && o + 1 < sizeof norm; c++) {
        char ch = (char)tolower((unsigned char)*c);
        if (ch == '_' || ch == '-' || isspace((unsigned char)ch)) ch = ' ';
        if (ch == ' ' && (o == 0 || norm[o - 1] == ' ')) continue;
        norm[o++] = ch;
    }
    while (o && norm[o - 1] == ' ') o--;
    norm[o] = '\0';
    const char *cands[N_STYLE_NAMES];
    for (int i = 0; i < N_STYLE_NAMES; i++) {
        if (!strcmp(norm, style_names[i].name)) return style_names[i].style;
        cands[i] = style_names[i].name;
    }
    const char *s = cfg_suggest(norm, cands, N_STYLE_NAMES);
    if (s)
        snprintf(err, errlen, "unknown style '%s' (did you mean '%s'?); the styles are: %s",
                 name ? name : "", s, STYLE_LIST);
    else
        snprintf(err, errlen, "unknown style '%s'; the styles are: %s", name ? name : "",
                 STYLE_LIST);
    return -1;
}

// ---- prompts -----------------------------------------------------------------------------

typedef struct {
    char *s;
    size_t n, cap;
} Buf;

static void buf_add(Buf *b, const char *s, size_t n) {
    if (b->n + n + 1 > b->cap) {
        b->cap = (b->n + n + 1) * 2;
        char *t = realloc(b->s, b->cap);
        STORY_CHECK(t, "out of memory");
        b->s = t;
    }
    memcpy(b->s + b->n, s, n);
    b->n += n;
    b->s[b->n] = '\0';
}

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static void
buf_printf(Buf *b, const char *fmt, ...) {
    char tmp[256];
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    STORY_CHECK(k >= 0 && k < (int)sizeof tmp, "canonical line too long");
    buf_add(b, tmp, (size_t)k);
}

char *render_frame_prompt(const RenderConfig *c, int f) {
    STORY_CHECK(f >= 0 && f < c->n_frames, "frame %d of %d", f, c->n_frames);
    const char *t = c->style.prompt ? c->style.prompt : "{prompt}", *text = c->frames[f].text;
    Buf b = {0};
    buf_add(&b, "", 0);
    for (const char *p; (p = strstr(t, "{prompt}")); t = p + 8) {
        buf_add(&b, t, (size_t)(p - t));
        buf_add(&b, text, strlen(text));
    }
    buf_add(&b, t, strlen(t));
    return b.s;
}

char *render_negative_prompt(const RenderConfig *c) {
    // the reference joins them with a space: style negative + " " + the user's
    const char *a = c->style.negative ? c->style.negative : "", *u = c->negative ? c->negative : "";
    Buf b = {0};
    buf_add(&b, a, strlen(a));
    if (*a && *u) buf_add(&b, " ", 1);
    buf_add(&b, u, strlen(u));
    return b.s;
}

// ---- the config hash -------------------------------------------------------------------

static void canon_str(Buf *b, const char *key, const char *v) {
    if (!v) v = "";
    buf_printf(b, "%s=%zu:", key, strlen(v));
    buf_add(b, v, strlen(v));
    buf_add(b, "\n", 1);
}

char *render_config_canonical(const RenderConfig *c) {
    Buf b = {0};
    // a format version: bump when the meaning of a setting changes
    canon_str(&b, "format", "storyrun-render-1");
    canon_str(&b, "model", c->model);
    buf_printf(&b, "seed=%llu\nsteps=%d\nguidance=%.9g\n", (unsigned long long)c->seed, c->steps,
               (double)c->guidance);
    canon_str(&b, "sampler", c->sampler);
    buf_printf(&b, "size=%dx%d\n", c->width, c->height);
    canon_str(&b, "precision", c->precision);
    canon_str(&b, "style", c->style.name);
    canon_str(&b, "style.prompt", c->style.prompt);
    canon_str(&b, "style.negative", c->style.negative);
    canon_str(&b, "negative", c->negative);
    buf_printf(&b, "characters=%d\n", c->n_characters);
    for (int i = 0; i < c->n_characters; i++) {
        const RenderCharacter *ch = &c->characters[i];
        canon_str(&b, "character.name", ch->name);
        canon_str(&b, "character.description", ch->description);
        buf_printf(&b, "character.id_frames=%d\n", ch->id_frames);
        canon_str(&b, "character.bank", ch->bank);
    }
    buf_printf(&b, "frames=%d\n", c->n_frames);
    for (int f = 0; f < c->n_frames; f++) {
        const RenderFrame *fr = &c->frames[f];
        canon_str(&b, "frame.text", fr->text);
        buf_printf(&b, "frame.nc=%d\nframe.chars=", fr->is_nc);
        for (int k = 0; k < fr->n_chars; k++) buf_printf(&b, "%s%d", k ? "," : "", fr->chars[k]);
        buf_add(&b, "\n", 1);
    }
    const CsaSettings *s = &c->csa;
    buf_printf(&b, "csa.mode=%d\ncsa.blocks=%u\ncsa.sa32=%.9g\ncsa.sa64=%.9g\ncsa.sa_other=%.9g\n",
               (int)s->mode, s->blocks, (double)s->sa32, (double)s->sa64, (double)s->sa_other);
    buf_printf(&b, "csa.warmup_steps=%d\ncsa.gate=%.9g,%.9g\ncsa.gate_switch=%d\n", s->warmup_steps,
               (double)s->gate_early, (double)s->gate_late, s->gate_switch);
    buf_printf(&b, "csa.window=%d\ncsa.window_rate=%.9g\n", s->window, (double)s->window_rate);
    return b.s;
}

void render_config_rehash(RenderConfig *c) {
    char *text = render_config_canonical(c);
    struct sha256_ctx ctx;
    uint8_t dig[SHA256_DIGEST_SIZE];
    sha256_init(&ctx);
    sha256_update(&ctx, strlen(text), (const uint8_t *)text);
    sha256_digest(&ctx, SHA256_DIGEST_SIZE, dig);
    for (int i = 0; i < SHA256_DIGEST_SIZE; i++) snprintf(c->hash + 2 * i, 3, "%02x", dig[i]);
    free(text);
}

// ---- where, free -------------------------------------------------------------------------

const char *render_config_where(const RenderConfig *c, const RenderPos *pos, char *buf, size_t n) {
    const char *path = c->path ? c->path : "config";
    if (pos && pos->set)
        snprintf(buf, n, "%s", pos->set);
    else if (pos && pos->line > 0)
        snprintf(buf, n, "%s:%d:%d", path, pos->line, pos->col);
    else
        snprintf(buf, n, "%s (default)", path);
    return buf;
}

void render_config_free(RenderConfig *c) {
    if (!c) return;
    free(c->path), free(c->model), free(c->sampler), free(c->precision);
    free(c->style.name), free(c->style.prompt), free(c->style.negative);
    free(c->negative), free(c->output), free(c->font);
    for (int i = 0; i < c->n_characters; i++) {
        free(c->characters[i].name), free(c->characters[i].description);
        free(c->characters[i].bank);
    }
    free(c->characters);
    for (int f = 0; f < c->n_frames; f++) {
        free(c->frames[f].line), free(c->frames[f].text), free(c->frames[f].caption);
        free(c->frames[f].chars);
    }
    free(c->frames);
    for (int i = 0; i < c->n_overrides; i++) free(c->overrides[i]);
    free(c->overrides);
    memset(c, 0, sizeof *c);
}

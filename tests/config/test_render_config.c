// tests/config/test_render_config.c: jobs/render_config (the render job's YAML config).
//   test_render_config good|overrides|hash|styles DIR   (DIR: a scratch folder)
//   test_render_config broken DIR      (run from tests/config: reads broken/cases.tsv)
//   test_render_config print FILE [key=value ...]      (shows what a config loads to)
// Each test mode ends with "render_config MODE: N checks, 0 failure(s)".
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "jobs/render_config.h"
#include "tests/common/test_check.h"

#define DEFAULT_FONT "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
#define HAS(s, sub) (strstr((s), (sub)) != NULL)

static char err[16384];
static const char *dir;

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    if (!f) {
        perror(path);
        exit(2);
    }
    fputs(text, f);
    fclose(f);
}

// DIR/name with text, where every "@" is replaced by DIR
static char *write_config(const char *name, const char *text) {
    static char path[1024];
    char body[8192];
    size_t o = 0;
    for (const char *p = text; *p && o + strlen(dir) + 2 < sizeof body; p++)
        if (*p == '@')
            o += (size_t)snprintf(body + o, sizeof body - o, "%s", dir);
        else
            body[o++] = *p;
    body[o] = '\0';
    snprintf(path, sizeof path, "%s/%s", dir, name);
    write_file(path, body);
    return path;
}

static const char *good_text =
    "# a story for the tests\n"
    "model: builtin:tiny-sdxl\n"
    "seed: 2047\n"
    "steps: 20\n"
    "guidance: 6.5\n"
    "sampler: dpmpp_2m_karras\n"
    "size: 512x384\n"
    "precision: FP32\n"
    "style: Comic Book\n"
    "negative: \"bad anatomy\"\n"
    "output: out/good\n"
    "characters:\n"
    "  - \"[Bob]: a man with a black suit\"\n"
    "  - name: Alice\n"
    "    description: a woman   in a red dress\n"
    "    id_frames: 2\n"
    "  - name: \"[Carl]\"\n"
    "    description: an old man\n"
    "    bank: @/carl.h5\n"
    "frames:\n"
    "  - \"[Bob] at home, reading the paper # Bob reads the news\"\n"
    "  - \"[Alice] and [Bob] walk in the park; [Alice] laughs #  A walk  \"\n"
    "  - \"[NC] a quiet street at night # Meanwhile... # 2\"\n"
    "  - \"[Carl] waves\"\n"
    "  - a plain frame without tags\n"
    "csa: {mode: window, blocks: [up, mid], sa32: 0.25, gate: [0.5, 1.0], window: 3}\n"
    "comic: {layout: four-panel, font: @/font.ttf, font_size: 24, page_width: 1200}\n";

static char *good_path(void) {
    char p[1024];
    snprintf(p, sizeof p, "%s/carl.h5", dir);
    write_file(p, "not really a bank: only its presence is checked here\n");
    snprintf(p, sizeof p, "%s/font.ttf", dir);
    write_file(p, "not really a font\n");
    return write_config("good.yaml", good_text);
}

static int streq(const char *a, const char *b) { return a && b && !strcmp(a, b); }

static void test_good(void) {
    RenderConfig c;
    char *path = good_path();
    int rc = render_config_load(path, NULL, 0, &c, err, sizeof err);
    CHECK(rc == 0, "good config loads: %s", err);
    if (rc) return;
    CHECK(streq(c.path, path) && streq(c.model, "builtin:tiny-sdxl"), "path, model");
    CHECK(c.seed == 2047 && c.steps == 20 && c.guidance == 6.5f, "seed, steps, guidance");
    CHECK(streq(c.sampler, "dpmpp_2m_karras"), "sampler %s", c.sampler);
    CHECK(c.width == 512 && c.height == 384, "size %dx%d", c.width, c.height);
    CHECK(streq(c.precision, "fp32"), "precision %s (lower case)", c.precision);
    CHECK(streq(c.style.name, "Comic book") && HAS(c.style.prompt, "comic {prompt} ."), "style %s",
          c.style.name);
    CHECK(streq(c.negative, "bad anatomy") && streq(c.output, "out/good"), "negative, output");
    CHECK(c.n_characters == 3, "3 characters");
    if (c.n_characters == 3) {
        const RenderCharacter *ch = c.characters;
        CHECK(streq(ch[0].name, "Bob") && streq(ch[0].description, "a man with a black suit") &&
                  ch[0].id_frames == 3 && !ch[0].bank && ch[0].pos.line == 13 && ch[0].pos.col == 5,
              "Bob (short form, default id_frames 3) at 13:5, got %d:%d", ch[0].pos.line,
              ch[0].pos.col);
        CHECK(streq(ch[1].name, "Alice") && streq(ch[1].description, "a woman in a red dress") &&
                  ch[1].id_frames == 2 && !ch[1].bank && ch[1].pos.line == 14,
              "Alice (long form, spaces squeezed): '%s'", ch[1].description);
        char bank[1024];
        snprintf(bank, sizeof bank, "%s/carl.h5", dir);
        CHECK(streq(ch[2].name, "Carl") && ch[2].id_frames == 0 && streq(ch[2].bank, bank),
              "Carl (name in brackets, from a bank: no id frames)");
    }
    CHECK(c.n_frames == 5, "5 frames");
    if (c.n_frames == 5) {
        const RenderFrame *f = c.frames;
        CHECK(streq(f[0].line, "[Bob] at home, reading the paper # Bob reads the news"),
              "line as written");
        CHECK(streq(f[0].text, "a man with a black suit at home, reading the paper"),
              "f0 text '%s'", f[0].text);
        CHECK(streq(f[0].caption, "Bob reads the news") && f[0].n_chars == 1 &&
                  f[0].chars[0] == 0 && !f[0].is_nc,
              "f0 caption, chars");
        CHECK(f[0].pos.line == 21 && f[0].pos.col == 5 && !f[0].pos.set, "f0 at 21:5, got %d:%d",
              f[0].pos.line, f[0].pos.col);
        CHECK(streq(f[1].text,
                    "a woman in a red dress and a man with a black suit walk in the park; "
                    "a woman in a red dress laughs"),
              "f1 text '%s'", f[1].text);
        CHECK(streq(f[1].caption, "A walk") && f[1].n_chars == 2 && f[1].chars[0] == 1 &&
                  f[1].chars[1] == 0,
              "f1: caption trimmed, characters in order of appearance without repeats");
        CHECK(streq(f[2].text, "a quiet street at night # Meanwhile...") &&
                  streq(f[2].caption, "2") && f[2].is_nc && f[2].n_chars == 0,
              "f2: [NC] removed, the caption is after the LAST '#': '%s' / '%s'", f[2].text,
              f[2].caption);
        CHECK(streq(f[3].text, "an old man waves") && !f[3].caption && f[3].n_chars == 1 &&
                  f[3].chars[0] == 2,
              "f3: no caption");
        CHECK(streq(f[4].text, "a plain frame without tags") && f[4].n_chars == 0 && !f[4].is_nc,
              "f4");
    }
    CHECK(c.csa.mode == CSA_MODE_WINDOW && c.csa.blocks == (CSA_BLOCKS_UP | CSA_BLOCKS_MID),
          "csa mode, blocks");
    CsaSettings dflt = csa_settings_default();
    CHECK(c.csa.sa32 == 0.25f && c.csa.sa64 == dflt.sa64 && c.csa.sa_other == dflt.sa_other &&
              c.csa.gate_early == 0.5f && c.csa.gate_late == 1.0f &&
              c.csa.gate_switch == dflt.gate_switch && c.csa.window == 3 &&
              c.csa.window_rate == dflt.window_rate && c.csa.warmup_steps == dflt.warmup_steps,
          "csa values, the rest from csa_settings_default");
    char font[1024];
    snprintf(font, sizeof font, "%s/font.ttf", dir);
    CHECK(c.comic_layout == COMIC_FOUR_PANEL && streq(c.font, font) && c.font_size == 24 &&
              c.page_width == 1200,
          "comic");
    CHECK(c.pos_model.line == 2 && c.pos_model.col == 8 && c.pos_steps.line == 4 &&
              c.pos_size.line == 7 && c.pos_sampler.line == 6 && c.pos_precision.line == 8 &&
              c.pos_csa.line == 26 && c.pos_csa.col == 6,
          "top-level positions");
    char w[1200], want[1200];
    snprintf(want, sizeof want, "%s:7:7", path);
    CHECK(streq(render_config_where(&c, &c.pos_size, w, sizeof w), want), "where: %s", w);
    RenderPos none = {0, 0, NULL};
    snprintf(want, sizeof want, "%s (default)", path);
    CHECK(streq(render_config_where(&c, &none, w, sizeof w), want), "where default: %s", w);
    // prompts
    char *p = render_frame_prompt(&c, 3);
    CHECK(streq(p,
                "comic an old man waves . graphic illustration, comic art, graphic novel art, "
                "vibrant, highly detailed"),
          "styled prompt '%s'", p);
    free(p);
    p = render_negative_prompt(&c);
    CHECK(streq(p,
                "photograph, deformed, glitch, noisy, realistic, stock photo, lowres, bad anatomy, "
                "bad hands, text, error, missing fingers, extra digit, fewer digits, cropped, "
                "worst quality, low quality, normal quality, jpeg artifacts, signature, "
                "watermark, username, blurry bad anatomy"),
          "negative '%s'", p);
    free(p);
    CHECK(strlen(c.hash) == 64 && strspn(c.hash, "0123456789abcdef") == 64, "hash is 64 hex: %s",
          c.hash);
    render_config_free(&c);

    // the defaults
    path = write_config("minimal.yaml", "model: builtin:tiny-sd15\nframes:\n  - a cat on a mat\n");
    char fo[1100];
    snprintf(fo, sizeof fo, "comic.font=%s", font);
    char *ov[] = {fo};
    rc = render_config_load(path, ov, 1, &c, err, sizeof err);
    CHECK(rc == 0, "minimal config: %s", err);
    if (rc) return;
    CHECK(c.seed == 0 && c.steps == 30 && c.guidance == 5.0f && streq(c.sampler, "euler") &&
              c.width == 0 && c.height == 0 && streq(c.precision, "auto"),
          "defaults: seed 0, steps 30, guidance 5, euler, native size, auto");
    CHECK(streq(c.style.name, "(No style)") && streq(c.style.prompt, "{prompt}") &&
              streq(c.negative, ""),
          "no style, no negative");
    CHECK(streq(c.output, "out/minimal"), "output defaults to out/<config name>: %s", c.output);
    CHECK(!memcmp(&c.csa, &dflt, sizeof dflt), "csa = csa_settings_default()");
    CHECK(c.comic_layout == COMIC_CLASSIC && c.font_size == 0 && c.page_width == 0,
          "comic defaults");
    CHECK(c.n_characters == 0 && c.n_frames == 1 && streq(c.frames[0].text, "a cat on a mat") &&
              !c.frames[0].caption,
          "one frame");
    p = render_frame_prompt(&c, 0);
    CHECK(streq(p, "a cat on a mat"), "no style: the text itself");
    free(p);
    p = render_negative_prompt(&c);
    CHECK(streq(p, ""), "no negatives: empty");
    free(p);
    CHECK(c.pos_steps.line == 0 && !c.pos_steps.set, "a default has no position");
    render_config_free(&c);
}

static void test_overrides(void) {
    RenderConfig c;
    char *path = good_path();
    char *ov[] = {"steps=12",
                  "csa.blocks=[down]",
                  "comic.layout=none",
                  "output=elsewhere",
                  "seed=7",
                  "size=640x448",
                  "style=film noir",
                  "frames.0=[Alice] alone # solo",
                  "characters.1.id_frames=4",
                  "csa.gate=1"};
    int rc = render_config_load(path, ov, 10, &c, err, sizeof err);
    CHECK(rc == 0, "overrides load: %s", err);
    if (rc) return;
    CHECK(c.steps == 12 && c.seed == 7 && c.width == 640 && c.height == 448, "steps, seed, size");
    CHECK(c.csa.blocks == CSA_BLOCKS_DOWN && c.comic_layout == COMIC_NONE &&
              streq(c.output, "elsewhere"),
          "blocks, layout, output");
    CHECK(streq(c.style.name, "Black and White Film Noir"), "style %s", c.style.name);
    CHECK(streq(c.frames[0].text, "a woman in a red dress alone") &&
              streq(c.frames[0].caption, "solo") && c.frames[0].chars[0] == 1,
          "frame 0 replaced: '%s'", c.frames[0].text);
    CHECK(c.characters[1].id_frames == 4, "characters.1.id_frames");
    CHECK(c.csa.gate_early == 1.0f && c.csa.gate_late == 1.0f, "csa.gate=1: gating off");
    CHECK(c.n_overrides == 10 && streq(c.overrides[0], "--set steps=12"), "override labels kept");
    CHECK(c.pos_steps.line == 0 && streq(c.pos_steps.set, "--set steps=12"),
          "pos_steps names the override");
    CHECK(c.frames[0].pos.set == c.overrides[7], "frame 0's position is the override");
    char w[256];
    CHECK(streq(render_config_where(&c, &c.pos_size, w, sizeof w), "--set size=640x448"),
          "where: %s", w);
    render_config_free(&c);

    // an override fixes a broken value in the file (overrides are applied before checking)
    path = write_config("fixme.yaml",
                        "model: builtin:tiny-sd15\nsteps: abc\ncomic: {layout: none}\n"
                        "frames: [\"a cat\"]\n");
    char *fix[] = {"steps=25"};
    CHECK(render_config_load(path, fix, 1, &c, err, sizeof err) == 0 && c.steps == 25, "fixed: %s",
          err);
    render_config_free(&c);
    CHECK(render_config_load(path, NULL, 0, &c, err, sizeof err) == -1 &&
              HAS(err, "fixme.yaml:2:8: key 'steps': expected an integer 1..1000, got 'abc'"),
          "not fixed: %s", err);
    render_config_free(&c);

    // bad overrides name themselves; every problem is reported, one per line
    char *bad[] = {"steps=abc", "stesp=3", "csa.sa32=2", "frames.9=x",
                   "comic.font=/nonexistent.ttf"};
    rc = render_config_load(path, bad, 5, &c, err, sizeof err);
    CHECK(rc == -1, "bad overrides refused");
    CHECK(HAS(err, "--set steps=abc: key 'steps': expected an integer 1..1000, got 'abc'\n"),
          "got: %s", err);
    CHECK(HAS(err, "--set stesp=3: unknown key 'stesp' (did you mean 'steps'?)"), "got: %s", err);
    CHECK(HAS(err, "--set csa.sa32=2: key 'csa.sa32': expected a number in [0, 1], got '2'\n"),
          "got: %s", err);
    CHECK(HAS(err, "--set frames.9=x: 'frames' is a list of 1: expected an index 0..0, got '9'\n"),
          "got: %s", err);
    int lines = 0;
    for (const char *q = err; *q; q++) lines += *q == '\n';
    // comic.font is only checked when there is a comic (layout none in the file)
    CHECK(lines == 4, "4 problems, one per line, got %d:\n%s", lines, err);
    render_config_free(&c);
}

// the hash of the good config with overrides
static void hash_of(char *const *ov, int n, char out[65]) {
    RenderConfig c;
    out[0] = '\0';
    if (render_config_load(good_path(), ov, n, &c, err, sizeof err)) {
        CHECK(0, "load with %s: %s", n ? ov[0] : "nothing", err);
        return;
    }
    memcpy(out, c.hash, 65);
    render_config_free(&c);
}

static void test_hash(void) {
    char base[65], again[65], h[65];
    hash_of(NULL, 0, base);
    hash_of(NULL, 0, again);
    CHECK(strlen(base) == 64 && !strcmp(base, again), "the same config, the same hash");
    // pixel-affecting changes (a second override where the first needs one)
    static const char *changes[][2] = {
        {"seed=2048", NULL},
        {"steps=21", NULL},
        {"guidance=6.25", NULL},
        {"sampler=ddim", NULL},
        {"size=512x512", NULL},
        {"precision=fp16", NULL},
        {"style=anime", NULL},
        {"negative=blurry", NULL},
        {"csa.sa32=0.3", NULL},
        {"csa.sa64=0.3", NULL},
        {"csa.sa_other=0.3", NULL},
        {"csa.mode=bank", NULL},
        {"csa.blocks=[up]", NULL},
        {"csa.warmup_steps=2", NULL},
        {"csa.gate=[0.7, 0.9]", NULL},
        {"csa.gate_switch=10", NULL},
        {"csa.window=4", NULL},
        {"csa.window_rate=0.25", NULL},
        {"model=builtin:tiny-sd15", NULL},
        {"characters.0=[Bob]: a tall man", NULL},
        {"characters.1.id_frames=3", NULL},
        {"characters.1.name=Alicia",
         "frames.1=[Alicia] and [Bob] walk in the park; [Alicia] laughs"},
        {"frames.4=a plain frame, changed", NULL},
        {"frames.2=[Carl] a quiet street at night # Meanwhile... # 2", NULL},
    };
    for (size_t i = 0; i < sizeof changes / sizeof *changes; i++) {
        char *ov[2] = {(char *)changes[i][0], (char *)changes[i][1]};
        hash_of(ov, ov[1] ? 2 : 1, h);
        CHECK(h[0] && strcmp(h, base), "%s changes the hash", changes[i][0]);
    }
    static const char *same[] = {
        "output=other/dir",
        "comic.layout=classic",
        "comic.layout=none",
        "comic.font_size=40",
        "comic.page_width=800",
        "frames.0=[Bob] at home, reading the paper # another caption",
        "frames.0=[Bob]   at home,  reading the paper",
        "steps=20",
        "style=comic",
        "guidance=6.50",
        "seed=+2047",
        "precision=fp32",
        "size=512X384",
    };
    for (size_t i = 0; i < sizeof same / sizeof *same; i++) {
        char *ov[1] = {(char *)same[i]};
        hash_of(ov, 1, h);
        CHECK(h[0] && !strcmp(h, base), "%s leaves the hash alone", same[i]);
    }
    // the canonical text, and its SHA-256 pinned (sha256sum of that text)
    char *path = write_config("pinned.yaml",
                              "model: builtin:tiny-sd15\nseed: 5\n"
                              "characters: [\"[Bob]: a man\"]\n"
                              "frames: [\"[Bob] waves # hi\", \"[NC] a street\"]\n"
                              "comic: {layout: none}\n");
    RenderConfig c;
    if (render_config_load(path, NULL, 0, &c, err, sizeof err)) {
        CHECK(0, "pinned: %s", err);
        return;
    }
    char *text = render_config_canonical(&c);
    const char *want_text =
        "format=17:storyrun-render-1\nmodel=17:builtin:tiny-sd15\nseed=5\nsteps=30\nguidance=5\n"
        "sampler=5:euler\nsize=0x0\nprecision=4:auto\nstyle=10:(No "
        "style)\nstyle.prompt=8:{prompt}\n"
        "style.negative=0:\nnegative=0:\ncharacters=1\ncharacter.name=3:Bob\n"
        "character.description=5:a man\ncharacter.id_frames=3\ncharacter.bank=0:\nframes=2\n"
        "frame.text=11:a man waves\nframe.nc=0\nframe.chars=0\nframe.text=8:a street\nframe.nc=1\n"
        "frame.chars=\ncsa.mode=1\ncsa.blocks=4\ncsa.sa32=0.5\ncsa.sa64=0.5\ncsa.sa_other=0.5\n"
        "csa.warmup_steps=1\ncsa.gate=0.699999988,0.899999976\ncsa.gate_switch=20\ncsa.window=4\n"
        "csa.window_rate=0.5\n";
    CHECK(streq(text, want_text), "canonical text:\n%s", text);
    // python3 -c "import hashlib;
    // print(hashlib.sha256(open('canonical.txt','rb').read()).hexdigest())"
    CHECK(streq(c.hash, "07e2fa2336cc38a8fb4ceec674699402a52ef708cf774bab9840c4be13e79b53"),
          "pinned hash, got %s", c.hash);
    free(text);
    render_config_free(&c);
}

static void test_styles(void) {
    int n = 0;
    const RenderStyle *s = render_styles(&n);
    CHECK(n == 9, "9 templates (the reference's; digital art and oil painting share one)");
    static const char *names[] = {"(No style)",
                                  "Japanese Anime",
                                  "Digital/Oil Painting",
                                  "Pixar/Disney Character",
                                  "Photographic",
                                  "Comic book",
                                  "Line art",
                                  "Black and White Film Noir",
                                  "Isometric Rooms"};
    for (int i = 0; i < n && i < 9; i++) {
        CHECK(streq(s[i].name, names[i]), "style %d: %s", i, s[i].name);
        const char *p = strstr(s[i].prompt, "{prompt}");
        CHECK(p && !strstr(p + 1, "{prompt}"), "%s: one {prompt}", s[i].name);
        CHECK(i == 0 ? !*s[i].negative : strlen(s[i].negative) > 100, "%s: negative", s[i].name);
        char e[512];
        CHECK(render_style_find(names[i], e, sizeof e) == i, "%s finds itself", names[i]);
    }
    static const struct {
        const char *alias;
        int style;
    } al[] = {
        {"none", 0},         {"No Style", 0},       {"anime", 1},         {"Japanese anime", 1},
        {"digital art", 2},  {"oil painting", 2},   {"Oil-Painting", 2},  {"pixar", 3},
        {"Pixar/Disney", 3}, {"disney", 3},         {"photographic", 4},  {"photo", 4},
        {"comic book", 5},   {"comic_book", 5},     {"COMIC", 5},         {"line art", 6},
        {"line-art", 6},     {"film noir", 7},      {" Film   Noir ", 7}, {"noir", 7},
        {"isometric", 8},    {"Isometric rooms", 8}};
    for (size_t i = 0; i < sizeof al / sizeof *al; i++) {
        char e[512];
        int k = render_style_find(al[i].alias, e, sizeof e);
        CHECK(k == al[i].style, "'%s' -> %d, got %d", al[i].alias, al[i].style, k);
    }
    char e[512];
    CHECK(render_style_find("anmie", e, sizeof e) == -1 &&
              HAS(e,
                  "unknown style 'anmie' (did you mean 'anime'?); the styles are: no style, "
                  "Japanese anime, digital art, oil painting, Pixar/Disney, photographic, comic "
                  "book, line art, film noir, isometric"),
          "suggestion: %s", e);
    CHECK(render_style_find("watercolour", e, sizeof e) == -1 && !HAS(e, "did you mean"),
          "no suggestion: %s", e);
    // the template is applied as the reference does: "{prompt}" replaced by the text
    RenderConfig c;
    char *path = write_config("styled.yaml",
                              "model: builtin:tiny-sd15\nstyle: photographic\n"
                              "negative: \"  ugly   hands \"\ncomic: {layout: none}\n"
                              "frames: [\"a cat\"]\n");
    if (render_config_load(path, NULL, 0, &c, err, sizeof err)) {
        CHECK(0, "styled: %s", err);
        return;
    }
    char *p = render_frame_prompt(&c, 0);
    CHECK(streq(p,
                "cinematic photo a cat . Hyperrealistic, Hyperdetailed, detailed skin, matte skin, "
                "soft lighting, realistic, best quality, ultra realistic, 8k, golden ratio, "
                "Intricate, High Detail, film photography, soft focus"),
          "photographic: %s", p);
    free(p);
    p = render_negative_prompt(&c);
    CHECK(HAS(p, "drawing, painting, crayon,") && HAS(p, "username, blurry ugly hands") &&
              p[strlen(p) - 1] == 's',
          "style negative, a space, the user's (squeezed): %s", p);
    free(p);
    render_config_free(&c);
}

// broken/cases.tsv: FILE <tab> LINE:COL or - <tab> PROBLEMS <tab> MESSAGE (a substring of
// the line that names FILE:LINE:COL)
static void test_broken(void) {
    FILE *f = fopen("broken/cases.tsv", "r");
    if (!f) {
        CHECK(0, "cannot open broken/cases.tsv (run from tests/config)");
        return;
    }
    struct stat st;
    int no_font = stat(DEFAULT_FONT, &st) != 0;  // then configs without comic.font say so too
    char row[2048];
    int cases = 0;
    while (fgets(row, sizeof row, f)) {
        if (row[0] == '#' || row[0] == '\n') continue;
        row[strcspn(row, "\r\n")] = '\0';
        char *file = strtok(row, "\t"), *where = strtok(NULL, "\t"), *nprob = strtok(NULL, "\t"),
             *msg = strtok(NULL, "\t");
        if (!file || !where || !nprob || !msg) {
            CHECK(0, "malformed row in cases.tsv: %s", row);
            continue;
        }
        cases++;
        char path[512], prefix[600];
        snprintf(path, sizeof path, "broken/%s", file);
        if (!strcmp(where, "-"))
            snprintf(prefix, sizeof prefix, "%s: ", path);
        else
            snprintf(prefix, sizeof prefix, "%s:%s: ", path, where);
        RenderConfig c;
        int rc = render_config_load(path, NULL, 0, &c, err, sizeof err);
        CHECK(rc == -1, "%s: refused", file);
        int found = 0, lines = 0;
        for (char *line = err; *line;) {
            char *nl = strchr(line, '\n');
            size_t len = nl ? (size_t)(nl - line) : strlen(line);
            char one[2048];
            snprintf(one, sizeof one, "%.*s", (int)len, line);
            if (!strncmp(one, prefix, strlen(prefix)) && HAS(one, msg)) found = 1;
            lines++;
            line += len + (nl ? 1 : 0);
        }
        CHECK(found, "%s: expected a line starting '%s' containing '%s'; got:\n%s", file, prefix,
              msg, err);
        int want = atoi(nprob);
        CHECK(lines == want || (no_font && lines == want + 1),
              "%s: %d problem(s) expected, got %d:\n%s", file, want, lines, err);
        render_config_free(&c);
    }
    fclose(f);
    CHECK(cases >= 20, "at least 20 broken configs, got %d", cases);
    printf("%d broken configs\n", cases);
}

static int print_config(const char *path, char **ov, int n) {
    RenderConfig c;
    if (render_config_load(path, ov, n, &c, err, sizeof err)) {
        printf("%s", err);
        render_config_free(&c);
        return 1;
    }
    char *text = render_config_canonical(&c);
    printf("%shash %s\n", text, c.hash);
    for (int f = 0; f < c.n_frames; f++) {
        char *p = render_frame_prompt(&c, f);
        printf("frame %d: %s | caption %s\n", f, p,
               c.frames[f].caption ? c.frames[f].caption : "-");
        free(p);
    }
    free(text);
    render_config_free(&c);
    return 0;
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "";
    if (!strcmp(mode, "print") && argc > 2) return print_config(argv[2], argv + 3, argc - 3);
    dir = argc > 2 ? argv[2] : ".";
    static const struct {
        const char *name;
        void (*fn)(void);
    } modes[] = {{"good", test_good},
                 {"overrides", test_overrides},
                 {"hash", test_hash},
                 {"styles", test_styles},
                 {"broken", test_broken}};
    for (size_t i = 0; i < sizeof modes / sizeof *modes; i++)
        if (!strcmp(mode, modes[i].name)) {
            modes[i].fn();
            printf("render_config %s: %d checks, %d failure(s)\n", mode, checks, failures);
            return failures ? 1 : 0;
        }
    fprintf(
        stderr,
        "usage: test_render_config good|overrides|hash|styles|broken DIR | print FILE [k=v ...]\n");
    return 2;
}

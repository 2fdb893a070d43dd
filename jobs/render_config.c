// jobs/render_config.c: loading and validating the render job's YAML config
// (jobs/render_config.h; docs/config.md for users). Every problem is collected through
// runner/config.h, so one run of `storyrun check` lists all of them; nothing is done
// until the whole file is valid.
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "jobs/render_config.h"
#include "models/pipeline.h"
#include "models/weights_impl.h"  // wbuiltin_names: the built-in models
#include "runner/check.h"
#include "runner/config.h"

#define RENDER_DEFAULT_FONT "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
#define RENDER_MAX_SIDE 16384
#define RENDER_MAX_NAME 64

static char *xstrdup(const char *s) {
    size_t n = strlen(s);
    char *r = mallocCheck(n + 1);
    memcpy(r, s, n + 1);
    return r;
}

static char *xstrndup(const char *s, size_t n) {
    char *r = mallocCheck(n + 1);
    memcpy(r, s, n);
    r[n] = '\0';
    return r;
}

typedef struct {
    CfgDoc d;
    RenderConfig *c;
} Ctx;

// A node's position for the struct; the override label is the config's own copy.
static RenderPos pos_of(const Ctx *x, const CfgNode *n) {
    RenderPos p = {0, 0, NULL};
    if (!n) return p;
    p.line = n->line, p.col = n->col;
    for (int i = 0; n->set && i < x->d.n_sets && i < x->c->n_overrides; i++)
        if (n->set == x->d.sets[i]) p.set = x->c->overrides[i];
    return p;
}

static int is_file(const char *path, int want_dir_ok) {
    struct stat st;
    if (stat(path, &st)) return 0;
    return S_ISREG(st.st_mode) || (want_dir_ok && S_ISDIR(st.st_mode));
}

// text as it will be used: trimmed, runs of whitespace as one space
static char *squeeze(const char *s, size_t n) {
    char *r = mallocCheck(n + 1);
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (isspace((unsigned char)s[i])) {
            if (o && r[o - 1] != ' ') r[o++] = ' ';
        } else {
            r[o++] = s[i];
        }
    }
    while (o && r[o - 1] == ' ') o--;
    r[o] = '\0';
    return r;
}

// ---- scalar settings -------------------------------------------------------------------

static void read_model(Ctx *x, const CfgNode *n) {
    const char *m;
    if (!n) {
        cfg_error(&x->d, x->d.root,
                  "missing key 'model': expected a diffusers folder, a .safetensors checkpoint "
                  "or one of %s",
                  wbuiltin_names());
        return;
    }
    if (cfg_as_string(&x->d, n, "model", &m)) return;
    x->c->pos_model = pos_of(x, n);
    if (!*m) {
        cfg_error(&x->d, n, "key 'model': expected a model path or one of %s, got an empty value",
                  wbuiltin_names());
        return;
    }
    x->c->model = xstrdup(m);
    if (!strncmp(m, "builtin:", 8)) {
        // the names, from "builtin:tiny-sd15, builtin:tiny-sdxl"
        char list[256], *save = NULL;
        snprintf(list, sizeof list, "%s", wbuiltin_names());
        const char *names[16];
        int k = 0;
        for (char *t = strtok_r(list, ", ", &save); t && k < 16; t = strtok_r(NULL, ", ", &save))
            names[k++] = t;
        for (int i = 0; i < k; i++)
            if (!strcmp(names[i], m)) return;
        const char *s = cfg_suggest(m, names, k);
        char dym[96] = "";
        if (s) snprintf(dym, sizeof dym, " (did you mean %s?)", s);
        cfg_error(&x->d, n, "key 'model': no built-in model '%s'%s; the built-in models are %s", m,
                  dym, wbuiltin_names());
    } else if (!is_file(m, 1)) {
        cfg_error(&x->d, n,
                  "key 'model': no such file or folder '%s'; expected a diffusers folder, a "
                  ".safetensors checkpoint or one of %s",
                  m, wbuiltin_names());
    }
}

static void read_size(Ctx *x, const CfgNode *root) {
    const CfgNode *size = cfg_get(root, "size"), *w = cfg_get(root, "width"),
                  *h = cfg_get(root, "height");
    RenderConfig *c = x->c;
    if (size && (w || h)) {
        char at[512];
        cfg_error(&x->d, w ? w : h,
                  "key '%s': the size is given twice (size: at %s); "
                  "expected either size: WxH or width: and height:",
                  w ? "width" : "height", cfg_where(&x->d, size, at, sizeof at));
        return;
    }
    if (size) {
        c->pos_size = pos_of(x, size);
        int W = 0, H = 0, used = 0;
        const char *t = size->kind == CFG_SCALAR ? size->text : "";
        if (sscanf(t, "%d %*[xX] %d%n", &W, &H, &used) != 2 || t[used] || W <= 0 || H <= 0 ||
            W % 8 || H % 8 || W > RENDER_MAX_SIDE || H > RENDER_MAX_SIDE) {
            char v[96];
            snprintf(v, sizeof v, size->kind == CFG_SCALAR ? "'%.80s'" : "%s",
                     size->kind == CFG_SCALAR ? size->text : cfg_kind_name(size));
            cfg_error(&x->d, size,
                      "key 'size': expected WxH with W and H multiples of 8 in 8..%d (e.g. "
                      "768x768), got %s",
                      RENDER_MAX_SIDE, v);
            return;
        }
        c->width = W, c->height = H;
        return;
    }
    if (!w && !h) return;
    if (!w || !h) {
        cfg_error(&x->d, w ? w : h, "key '%s' without '%s': expected both, or size: WxH",
                  w ? "width" : "height", w ? "height" : "width");
        return;
    }
    c->pos_size = pos_of(x, w);
    long long v[2];
    const CfgNode *nodes[2] = {w, h};
    const char *names[2] = {"width", "height"};
    for (int i = 0; i < 2; i++) {
        if (cfg_as_int(&x->d, nodes[i], names[i], 8, RENDER_MAX_SIDE, &v[i])) return;
        if (v[i] % 8) {
            cfg_error(&x->d, nodes[i], "key '%s': expected a multiple of 8, got '%lld'", names[i],
                      v[i]);
            return;
        }
    }
    c->width = (int)v[0], c->height = (int)v[1];
}

static void read_csa(Ctx *x, const CfgNode *n) {
    CsaSettings *s = &x->c->csa;
    x->c->pos_csa = pos_of(x, n);
    if (cfg_as_map(&x->d, n, "csa") <= 0) return;
    static const char *const keys[] = {"mode",     "blocks",       "sa32", "sa64",
                                       "sa_other", "warmup_steps", "gate", "gate_switch",
                                       "window",   "window_rate",  NULL};
    cfg_check_keys(&x->d, n, "csa", keys);
    static const char *const modes[] = {"off", "bank", "window", NULL};  // = CsaMode
    const CfgNode *v;
    int mode;
    if ((v = cfg_get(n, "mode")) && !cfg_as_enum(&x->d, v, "csa.mode", modes, &mode))
        s->mode = (CsaMode)mode;
    if ((v = cfg_get(n, "blocks"))) {
        static const char *const kinds[] = {"down", "mid", "up", NULL};
        static const unsigned bits[] = {CSA_BLOCKS_DOWN, CSA_BLOCKS_MID, CSA_BLOCKS_UP};
        unsigned b = 0;
        int k, ok = 1;
        if (v->kind == CFG_SCALAR && !cfg_is_null(v)) {
            if ((ok = !cfg_as_enum(&x->d, v, "csa.blocks", kinds, &k))) b = bits[k];
        } else if (v->kind == CFG_SEQ && v->n > 0) {
            for (int i = 0; i < v->n; i++)
                if (!cfg_as_enum(&x->d, v->items[i], "csa.blocks", kinds, &k))
                    b |= bits[k];
                else
                    ok = 0;
        } else {
            ok = 0;
            cfg_error(&x->d, v,
                      "key 'csa.blocks': expected a non-empty list of down, mid, up "
                      "(e.g. [up]), got %s",
                      cfg_kind_name(v));
        }
        if (ok) s->blocks = b;
    }
    double d;
    if (cfg_get_double(&x->d, n, "sa32", "csa.sa32", 0, 1, &d) > 0) s->sa32 = (float)d;
    if (cfg_get_double(&x->d, n, "sa64", "csa.sa64", 0, 1, &d) > 0) s->sa64 = (float)d;
    if (cfg_get_double(&x->d, n, "sa_other", "csa.sa_other", 0, 1, &d) > 0) s->sa_other = (float)d;
    if (cfg_get_double(&x->d, n, "window_rate", "csa.window_rate", 0, 1, &d) > 0)
        s->window_rate = (float)d;
    long long i;
    if (cfg_get_int(&x->d, n, "warmup_steps", "csa.warmup_steps", 0, 1000, &i) > 0)
        s->warmup_steps = (int)i;
    if (cfg_get_int(&x->d, n, "gate_switch", "csa.gate_switch", 0, 1000, &i) > 0)
        s->gate_switch = (int)i;
    if (cfg_get_int(&x->d, n, "window", "csa.window", 1, 1000, &i) > 0) s->window = (int)i;
    if ((v = cfg_get(n, "gate"))) {
        double g0, g1;
        if (v->kind == CFG_SEQ && v->n == 2) {
            int bad = cfg_as_double(&x->d, v->items[0], "csa.gate[0]", 0, 1, &g0);
            bad |= cfg_as_double(&x->d, v->items[1], "csa.gate[1]", 0, 1, &g1);
            if (!bad) s->gate_early = (float)g0, s->gate_late = (float)g1;
        } else if (v->kind == CFG_SCALAR) {
            if (!cfg_as_double(&x->d, v, "csa.gate", 0, 1, &g0))
                s->gate_early = s->gate_late = (float)g0;
        } else {
            cfg_error(&x->d, v,
                      "key 'csa.gate': expected [early, late], two probabilities in "
                      "[0, 1] (e.g. [0.7, 0.9]), or one for both, got %s with %d items",
                      cfg_kind_name(v), v->n);
        }
    }
}

static void read_comic(Ctx *x, const CfgNode *n) {
    RenderConfig *c = x->c;
    if (n && cfg_as_map(&x->d, n, "comic") > 0) {
        static const char *const keys[] = {"layout", "font", "font_size", "page_width", NULL};
        cfg_check_keys(&x->d, n, "comic", keys);
        static const char *const layouts[] = {"none", "classic", "four-panel",
                                              NULL};  // ComicLayout
        const CfgNode *v;
        int k;
        if ((v = cfg_get(n, "layout")) && !cfg_as_enum(&x->d, v, "comic.layout", layouts, &k))
            c->comic_layout = (ComicLayout)k;
        const char *f;
        if (cfg_get_string(&x->d, n, "font", "comic.font", &f) > 0) {
            free(c->font);
            c->font = xstrdup(f);
        }
        long long i;
        if (cfg_get_int(&x->d, n, "font_size", "comic.font_size", 0, 1000, &i) > 0)
            c->font_size = (int)i;
        if (cfg_get_int(&x->d, n, "page_width", "comic.page_width", 0, 65536, &i) > 0)
            c->page_width = (int)i;
    }
    if (c->comic_layout != COMIC_NONE && !is_file(c->font, 0)) {
        const CfgNode *fn = cfg_get(n, "font");
        if (fn)
            cfg_error(&x->d, fn,
                      "key 'comic.font': no such file '%s'; expected a TrueType font "
                      "file (or comic: {layout: none})",
                      c->font);
        else
            cfg_error(&x->d, n ? n : x->d.root,
                      "the default caption font %s is missing: install fonts-dejavu-core, set "
                      "comic.font to a TrueType font, or comic.layout to none",
                      c->font);
    }
}

// ---- characters ------------------------------------------------------------------------

static int check_name(Ctx *x, const CfgNode *at, const char *name) {
    size_t n = strlen(name);
    if (!n || n > RENDER_MAX_NAME || strpbrk(name, "[]#\n\t") || isspace((unsigned char)name[0]) ||
        isspace((unsigned char)name[n - 1]))
        return cfg_error(&x->d, at,
                         "character name '%s': expected 1..%d characters without "
                         "[ ] # or spaces at either end",
                         name, RENDER_MAX_NAME);
    if (!strcmp(name, "NC"))
        return cfg_error(&x->d, at,
                         "character name 'NC' is reserved: [NC] marks a frame with no "
                         "character");
    return 0;
}

static void read_character(Ctx *x, const CfgNode *it, int i, RenderCharacter *ch) {
    char key[64];
    snprintf(key, sizeof key, "characters[%d]", i);
    ch->id_frames = 3;
    if (it->kind == CFG_SCALAR) {
        // "[Bob]: a man in a black suit" (the colon may be left out, as the reference does)
        const char *t = it->text, *s = t;
        while (isspace((unsigned char)*s)) s++;
        const char *e = *s == '[' ? strchr(s, ']') : NULL;
        if (!e) {
            cfg_error(&x->d, it,
                      "%s: expected \"[Name]: description\" or a mapping with name: "
                      "and description:, got '%.80s'",
                      key, t);
            return;
        }
        ch->name = xstrndup(s + 1, (size_t)(e - s - 1));
        const char *dsc = e + 1;
        while (isspace((unsigned char)*dsc)) dsc++;
        if (*dsc == ':') dsc++;
        ch->description = squeeze(dsc, strlen(dsc));
        if (check_name(x, it, ch->name)) return;
        if (!*ch->description)
            cfg_error(&x->d, it,
                      "%s: character [%s] has no description; expected \"[%s]: a "
                      "man in a black suit\"",
                      key, ch->name, ch->name);
        return;
    }
    if (it->kind != CFG_MAP) {
        cfg_error(&x->d, it, "%s: expected \"[Name]: description\" or a mapping, got %s", key,
                  cfg_kind_name(it));
        return;
    }
    static const char *const keys[] = {"name", "description", "id_frames", "bank", NULL};
    cfg_check_keys(&x->d, it, key, keys);
    const CfgNode *nn = cfg_get(it, "name"), *dn = cfg_get(it, "description");
    char k2[96];
    const char *s;
    snprintf(k2, sizeof k2, "%s.name", key);
    if (!nn) {
        cfg_error(&x->d, it,
                  "%s: missing key 'name' (write a character as \"[Bob]: "
                  "description\" or with name: and description:)",
                  key);
    } else if (!cfg_as_string(&x->d, nn, k2, &s)) {
        size_t l = strlen(s);
        if (l >= 2 && s[0] == '[' && s[l - 1] == ']') s++, l -= 2;  // "[Bob]" is fine too
        ch->name = xstrndup(s, l);
        check_name(x, nn, ch->name);
    }
    snprintf(k2, sizeof k2, "%s.description", key);
    if (!dn)
        cfg_error(&x->d, it, "%s: missing key 'description' (what [%s] stands for in a frame)", key,
                  ch->name ? ch->name : "Name");
    else if (!cfg_as_string(&x->d, dn, k2, &s)) {
        ch->description = squeeze(s, strlen(s));
        if (!*ch->description)
            cfg_error(&x->d, dn,
                      "key '%s': expected a description, got an "
                      "empty value",
                      k2);
    }
    snprintf(k2, sizeof k2, "%s.id_frames", key);
    long long idf = 3;
    int has_id = cfg_get_int(&x->d, it, "id_frames", k2, 0, 64, &idf);
    ch->id_frames = (int)idf;
    snprintf(k2, sizeof k2, "%s.bank", key);
    const CfgNode *bn = cfg_get(it, "bank");
    if (bn && !cfg_is_null(bn) && !cfg_as_string(&x->d, bn, k2, &s)) {
        ch->bank = xstrdup(s);
        ch->id_frames = 0;
        if (!is_file(s, 0))
            cfg_error(&x->d, bn,
                      "key '%s': no such file '%s'; expected a character bank store "
                      "(.h5) written by an earlier render",
                      k2, s);
        if (has_id > 0 && idf > 0)
            cfg_error(&x->d, cfg_get(it, "id_frames"),
                      "key '%s.id_frames': a character read "
                      "from a bank has no id frames; expected 0 or no id_frames with bank:",
                      key);
    }
}

static void read_characters(Ctx *x, const CfgNode *n) {
    RenderConfig *c = x->c;
    if (cfg_as_seq(&x->d, n, "characters") <= 0) return;
    c->characters = mallocCheck((size_t)n->n * sizeof *c->characters);
    memset(c->characters, 0, (size_t)n->n * sizeof *c->characters);
    c->n_characters = n->n;
    for (int i = 0; i < n->n; i++) {
        RenderCharacter *ch = &c->characters[i];
        ch->pos = pos_of(x, n->items[i]);
        read_character(x, n->items[i], i, ch);
        for (int j = 0; j < i && ch->name; j++)
            if (c->characters[j].name && !strcmp(c->characters[j].name, ch->name)) {
                cfg_error(&x->d, n->items[i],
                          "character [%s] is defined twice (first at line "
                          "%d); expected each name once",
                          ch->name, n->items[j]->line);
                break;
            }
    }
}

// ---- frames ------------------------------------------------------------------------------

// The character called name, or -1.
static int find_char(const RenderConfig *c, const char *name, size_t n) {
    for (int i = 0; i < c->n_characters; i++)
        if (c->characters[i].name && strlen(c->characters[i].name) == n &&
            !memcmp(c->characters[i].name, name, n))
            return i;
    return -1;
}

static void unknown_tag(Ctx *x, const CfgNode *it, int f, size_t off, const char *tag, size_t tl) {
    const RenderConfig *c = x->c;
    char word[80], list[512] = "";
    snprintf(word, sizeof word, "%.*s", (int)(tl < 70 ? tl : 70), tag);
    const char *cands[65];
    int k = 0;
    for (int i = 0; i < c->n_characters && k < 64; i++) {
        int seen = !c->characters[i].name;
        for (int j = 0; j < k && !seen; j++) seen = !strcmp(cands[j], c->characters[i].name);
        if (!seen) cands[k++] = c->characters[i].name;
    }
    cands[k++] = "NC";
    for (int i = 0; i < k; i++)
        snprintf(list + strlen(list), sizeof list - strlen(list), "%s[%s]", i ? ", " : "",
                 cands[i]);
    const char *s = cfg_suggest(word, cands, k);
    char dym[96] = "";
    if (s) snprintf(dym, sizeof dym, " (did you mean [%s]?)", s);
    cfg_error_in(&x->d, it, off, "frames[%d]: unknown character [%s]%s; expected one of %s", f,
                 word, dym, list);
}

static void read_frame(Ctx *x, const CfgNode *it, int f, RenderFrame *fr) {
    RenderConfig *c = x->c;
    const char *t;
    char key[64];
    snprintf(key, sizeof key, "frames[%d]", f);
    if (it->kind != CFG_SCALAR) {
        cfg_error(&x->d, it, "%s: expected a frame line (\"[Bob] at home # caption\"), got %s", key,
                  cfg_kind_name(it));
        return;
    }
    t = it->text;
    fr->line = xstrdup(t);
    const char *hash = strrchr(t, '#');
    size_t head = hash ? (size_t)(hash - t) : strlen(t);
    if (hash) {
        char *cap = squeeze(hash + 1, strlen(hash + 1));
        if (*cap)
            fr->caption = cap;
        else
            free(cap);
    }
    // tags: [Name] -> the description, [NC] -> nothing
    size_t ntags = 0, longest = 0, o = 0;
    for (size_t i = 0; i < head; i++) ntags += t[i] == '[';
    for (int i = 0; i < c->n_characters; i++)
        if (c->characters[i].description && strlen(c->characters[i].description) > longest)
            longest = strlen(c->characters[i].description);
    size_t cap = head + 1 + ntags * (longest + 2);  // each tag becomes " description "
    char *out = mallocCheck(cap);
    fr->chars = mallocCheck((ntags + 1) * sizeof *fr->chars);
    size_t nc_at = 0;
    int bad = 0;
    for (size_t i = 0; i < head;) {
        if (t[i] == ']') {
            cfg_error_in(&x->d, it, i, "%s: a ']' without its '['; expected [Name] tags", key);
            bad = 1, i++;
            continue;
        }
        if (t[i] != '[') {
            out[o++] = t[i++];
            continue;
        }
        const char *e = memchr(t + i + 1, ']', head - i - 1);
        const char *b2 = memchr(t + i + 1, '[', head - i - 1);
        if (!e || (b2 && b2 < e)) {
            cfg_error_in(&x->d, it, i, "%s: a '[' without its ']'; expected [Name] tags", key);
            bad = 1, i++;
            continue;
        }
        const char *tag = t + i + 1;
        size_t tl = (size_t)(e - tag);
        if (tl == 2 && !memcmp(tag, "NC", 2)) {
            if (!fr->is_nc) nc_at = i;
            fr->is_nc = 1;
            out[o++] = ' ';
        } else {
            int ci = find_char(c, tag, tl);
            if (ci < 0) {
                unknown_tag(x, it, f, i, tag, tl);
                bad = 1;
            } else {
                int seen = 0;
                for (int k = 0; k < fr->n_chars; k++) seen |= fr->chars[k] == ci;
                if (!seen) fr->chars[fr->n_chars++] = ci;
                const char *dsc =
                    c->characters[ci].description ? c->characters[ci].description : "";
                out[o++] = ' ';
                memcpy(out + o, dsc, strlen(dsc));
                o += strlen(dsc);
                out[o++] = ' ';
            }
        }
        i = (size_t)(e - t) + 1;
    }
    STORY_CHECK(o < cap, "frame text buffer");
    fr->text = squeeze(out, o);
    free(out);
    if (bad) return;
    if (fr->is_nc && fr->n_chars)
        cfg_error_in(&x->d, it, nc_at,
                     "%s: [NC] marks a frame with no character, but the line "
                     "also names [%s]; expected one or the other",
                     key, c->characters[fr->chars[0]].name);
    else if (!*fr->text) {
        int blank = 1;
        for (const char *p = t; *p; p++) blank &= isspace((unsigned char)*p) != 0;
        if (blank)
            cfg_error(&x->d, it,
                      "%s: an empty frame line; expected a prompt such as \"[Bob] at "
                      "home # a caption\"",
                      key);
        else
            cfg_error(&x->d, it,
                      "%s: no prompt text before the caption; expected a prompt such "
                      "as \"[NC] a street at night # %s\"",
                      key, fr->caption ? fr->caption : "");
    }
}

static void read_frames(Ctx *x, const CfgNode *n) {
    RenderConfig *c = x->c;
    if (!n) {
        cfg_error(&x->d, x->d.root,
                  "missing key 'frames': expected a list of frame lines "
                  "(\"- [Bob] at home # a caption\")");
        return;
    }
    int k = cfg_as_seq(&x->d, n, "frames");
    if (k < 0) return;
    if (k == 0 || n->n == 0) {
        cfg_error(&x->d, n, "key 'frames': no frames; expected at least one frame line");
        return;
    }
    c->frames = mallocCheck((size_t)n->n * sizeof *c->frames);
    memset(c->frames, 0, (size_t)n->n * sizeof *c->frames);
    c->n_frames = n->n;
    for (int f = 0; f < n->n; f++) {
        c->frames[f].pos = pos_of(x, n->items[f]);
        read_frame(x, n->items[f], f, &c->frames[f]);
    }
}

// ---- the whole file ------------------------------------------------------------------------

static void read_root(Ctx *x) {
    RenderConfig *c = x->c;
    const CfgNode *r = x->d.root;
    if (!r) {
        cfg_error(&x->d, NULL,
                  "the config is empty; expected a mapping with at least model: "
                  "and frames:");
        return;
    }
    if (r->kind != CFG_MAP) {
        cfg_error(&x->d, r, "expected a mapping (key: value lines) at the top, got %s",
                  cfg_kind_name(r));
        return;
    }
    static const char *const keys[] = {"model",    "seed",   "steps",      "guidance",  "sampler",
                                       "size",     "width",  "height",     "precision", "style",
                                       "negative", "output", "characters", "frames",    "csa",
                                       "comic",    NULL};
    cfg_check_keys(&x->d, r, "", keys);
    read_model(x, cfg_get(r, "model"));
    const CfgNode *v;
    if ((v = cfg_get(r, "seed"))) cfg_as_u64(&x->d, v, "seed", &c->seed);
    long long i;
    if (cfg_get_int(&x->d, r, "steps", "steps", 1, 1000, &i) > 0) c->steps = (int)i;
    c->pos_steps = pos_of(x, cfg_get(r, "steps"));
    double g;
    if (cfg_get_double(&x->d, r, "guidance", "guidance", 0, INFINITY, &g) > 0)
        c->guidance = (float)g;
    const char *s;
    if ((v = cfg_get(r, "sampler")) && !cfg_as_string(&x->d, v, "sampler", &s)) {
        char e[512];
        PipelineSampler ps;
        c->pos_sampler = pos_of(x, v);
        if (pipeline_sampler_parse(s, &ps, e, sizeof e))
            cfg_error(&x->d, v, "key 'sampler': %s", e);
        else
            free(c->sampler), c->sampler = xstrdup(pipeline_sampler_name(ps));
    }
    read_size(x, r);
    static const char *const precisions[] = {"auto", "fp32", "fp16", "bf16", NULL};
    int k;
    if ((v = cfg_get(r, "precision")) && !cfg_as_enum(&x->d, v, "precision", precisions, &k)) {
        c->pos_precision = pos_of(x, v);
        free(c->precision), c->precision = xstrdup(precisions[k]);
    }
    int style = 0;
    if ((v = cfg_get(r, "style")) && !cfg_is_null(v) && !cfg_as_string(&x->d, v, "style", &s)) {
        char e[512];
        if ((style = render_style_find(s, e, sizeof e)) < 0)
            cfg_error(&x->d, v, "key 'style': %s", e), style = 0;
    }
    const RenderStyle *st = &render_styles(NULL)[style];
    c->style.name = xstrdup(st->name), c->style.prompt = xstrdup(st->prompt);
    c->style.negative = xstrdup(st->negative);
    if ((v = cfg_get(r, "negative")) && !cfg_is_null(v) && !cfg_as_string(&x->d, v, "negative", &s))
        free(c->negative), c->negative = squeeze(s, strlen(s));
    if ((v = cfg_get(r, "output")) && !cfg_as_string(&x->d, v, "output", &s)) {
        if (!*s)
            cfg_error(&x->d, v, "key 'output': expected a directory, got an empty value");
        else
            free(c->output), c->output = xstrdup(s);
    }
    read_csa(x, cfg_get(r, "csa"));
    read_comic(x, cfg_get(r, "comic"));
    read_characters(x, cfg_get(r, "characters"));
    read_frames(x, cfg_get(r, "frames"));
}

static void set_defaults(RenderConfig *c, const char *path) {
    c->path = xstrdup(path);
    c->seed = 0;
    c->steps = 30;
    c->guidance = 5.0f;
    c->sampler = xstrdup("euler");
    c->precision = xstrdup("auto");
    c->negative = xstrdup("");
    c->csa = csa_settings_default();
    c->comic_layout = COMIC_CLASSIC;
    c->font = xstrdup(RENDER_DEFAULT_FONT);
    // out/<the config's name without folder and extension>
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    size_t n = strlen(base);
    const char *dot = strrchr(base, '.');
    if (dot && dot != base) n = (size_t)(dot - base);
    c->output = mallocCheck(n + 5);
    snprintf(c->output, n + 5, n ? "out/%.*s" : "out", (int)n, base);
}

int render_config_load(const char *path, char *const *overrides, int n_overrides, RenderConfig *out,
                       char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    set_defaults(out, path);
    Ctx x;
    x.c = out;
    int rc = cfg_load_file(&x.d, path, err, errlen);
    if (n_overrides > 0) {
        out->overrides = mallocCheck((size_t)n_overrides * sizeof *out->overrides);
        out->n_overrides = n_overrides;
        for (int i = 0; i < n_overrides; i++) {
            size_t l = strlen(overrides[i]) + 8;
            out->overrides[i] = mallocCheck(l);
            snprintf(out->overrides[i], l, "--set %s", overrides[i]);
        }
    }
    if (!rc) {
        for (int i = 0; i < n_overrides; i++) cfg_override(&x.d, overrides[i], NULL);
        read_root(&x);
    }
    rc = cfg_errors(&x.d) ? -1 : 0;
    cfg_free(&x.d);
    if (!rc) render_config_rehash(out);
    return rc;
}

// jobs/render_config.h: the render job's YAML config (docs/config.md is the reference for
// users). Loading validates everything that can be checked without the model: a bad key,
// value, file or frame line is reported as "FILE:LINE:COL: what is wrong; what was
// expected" before any work starts.
//
//   model: builtin:tiny-sdxl        # a diffusers folder, a single-file checkpoint, builtin:...
//   seed: 2047                      # frame f is drawn with seed + f
//   steps: 30
//   guidance: 5.0
//   sampler: euler                  # ddim euler euler_a dpmpp_2m dpmpp_2m_karras
//   size: 768x768                   # WxH (or width: / height:); default: the model's native size
//   precision: auto                 # auto (fp16 on a GPU, fp32 on the CPU) | fp32 | fp16 | bf16
//   style: comic book               # a style template (case-insensitive), default "no style"
//   negative: "bad anatomy"
//   output: out/story
//   characters:
//     - "[Bob]: a man with a black suit"      # short form
//     - name: Alice                           # long form
//       description: a woman in a red dress
//       id_frames: 3                          # default 3
//       bank: banks/alice.h5                  # reuse a stored bank (no id frames made)
//   frames:
//     - "[Bob] at home, reading the paper # Bob reads the news"
//     - "[NC] a quiet street at night # Meanwhile..."
//   csa: {mode: bank, blocks: [up], sa32: 0.5, sa64: 0.5, sa_other: 0.5, warmup_steps: 1,
//         gate: [0.7, 0.9], gate_switch: 20, window: 4, window_rate: 0.5}
//   comic: {layout: classic, font: /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf,
//           font_size: 0 (auto), page_width: 0 (auto)}
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "models/csa_settings.h"

#ifdef __cplusplus
extern "C" {
#endif

// Where something was written in the config: file, 1-based line and column (0: absent,
// e.g. a default or a --set override, then `set` is the override's text).
typedef struct {
    int line, col;
    const char *set;  // "--set steps=20" when the value came from the command line
} RenderPos;

typedef struct {
    char *name;         // without brackets, e.g. "Bob"
    char *description;  // what [Name] expands to
    int id_frames;      // identity frames to make (>= 0); 0 when bank is given
    char *bank;         // path of a character bank store to reuse, or NULL
    RenderPos pos;      // the entry
} RenderCharacter;

typedef struct {
    char *line;      // as written
    char *text;      // the prompt part: tags expanded, caption cut off, no style yet
    char *caption;   // text after the last '#', trimmed; NULL when none
    int *chars;      // characters it names, in order of appearance (indices; repeats removed)
    int n_chars;
    int is_nc;       // the line carries [NC]
    RenderPos pos;
} RenderFrame;

typedef struct {
    char *name;      // canonical name, e.g. "Comic book"
    char *prompt;    // template with one "{prompt}"
    char *negative;  // the style's negative prompt ("" for none)
} RenderStyle;

typedef enum { COMIC_NONE = 0, COMIC_CLASSIC = 1, COMIC_FOUR_PANEL = 2 } ComicLayout;

typedef struct {
    char *path;   // the config file as given
    char *model;  // "builtin:tiny-sdxl" or a path (checked to exist)
    uint64_t seed;
    int steps;
    float guidance;
    char *sampler;             // a name pipeline_sampler_parse accepts (checked)
    int width, height;         // 0: the model's native size (known after loading it)
    char *precision;           // "auto", "fp32", "fp16", "bf16"
    RenderStyle style;         // the chosen template
    char *negative;            // the user's negative prompt ("" when none)
    char *output;              // output directory
    RenderCharacter *characters;
    int n_characters;
    RenderFrame *frames;
    int n_frames;
    CsaSettings csa;
    ComicLayout comic_layout;  // default COMIC_CLASSIC
    char *font;                // TrueType font for captions (checked to exist)
    int font_size;             // pixels; 0: derived from the panel size
    // SHA-256 (hex) over every setting that changes the frames' pixels (model, seed, steps,
    // guidance, sampler, size, precision, style, negative, characters, frames' prompts,
    // CSA) in a canonical form; output, comic and font settings do not enter it.
    char hash[65];
    // positions of the top-level keys, for errors found later (after the model is loaded)
    RenderPos pos_model, pos_size, pos_steps, pos_sampler, pos_precision, pos_csa;
    // ---- additions ----
    int page_width;    // comic page width in pixels; 0: derived from the panels
    // the overrides applied, as messages name them ("--set steps=20"); RenderPos.set
    // points into these
    char **overrides;
    int n_overrides;
} RenderConfig;

// Loads and validates path, then applies overrides in order: each "key=value" with a dotted
// key ("steps=20", "csa.sa32=0.3", "comic.layout=four-panel", "output=DIR", "seed=7"); the
// value is read as a YAML scalar or flow node ("csa.blocks=[up, mid]"). Returns 0, or -1
// with "FILE:LINE:COL: message" in err (every problem found, one per line, up to errlen).
int render_config_load(const char *path, char *const *overrides, int n_overrides,
                       RenderConfig *out, char *err, size_t errlen);
void render_config_free(RenderConfig *c);

// "story.yaml:7:7" or "--set size=512x512" or "story.yaml (default)", for messages.
const char *render_config_where(const RenderConfig *c, const RenderPos *pos, char *buf, size_t n);

// The full prompt of frame f: the style template applied to frames[f].text.
// Returns a malloc'ed string.
char *render_frame_prompt(const RenderConfig *c, int f);
// The full negative prompt: style negative + the user's (either may be empty); malloc'ed.
char *render_negative_prompt(const RenderConfig *c);

// The style templates (name, prompt template, negative) and their number.
const RenderStyle *render_styles(int *n);

// ---- additions ------------------------------------------------------------------------

// The style named `name`: a template's name or a short alias ("anime", "pixar", "film
// noir", "digital art", "oil painting", "isometric", "none", ...), case-insensitively,
// '-' and '_' read as spaces. Returns its index into render_styles, or -1 with a message
// that lists the styles and suggests the closest.
int render_style_find(const char *name, char *err, size_t errlen);
// The text the config hash is taken over (one "key=LEN:VALUE" line per pixel-affecting
// setting, in a fixed order); malloc'ed. render_config_load fills c->hash from it.
char *render_config_canonical(const RenderConfig *c);
// Recomputes c->hash (after a caller changed a setting).
void render_config_rehash(RenderConfig *c);

#ifdef __cplusplus
}
#endif

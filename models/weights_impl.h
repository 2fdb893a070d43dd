// models/weights_impl.h: what models/weights*.c share behind models/weights.h.
//
//   weights.c         open/close, diffusers folders, lookups, loading, tokenizer folders
//   weights_ldm.c     single-file checkpoints: family detection and the LDM -> diffusers
//                     name map (UNet, VAE, CLIP, OpenCLIP), as diffusers' single-file
//                     conversion does it
//   weights_config.c  configs derived from the tensors' names and shapes (diffusers' keys)
//   weights_check.c   the tensors a family needs, for `storyrun inspect`
//   weights_tokenizer.c  tokenizer folders (the model's, or storyrun's CLIP vocabulary)
//   weights_builtin.c builtin:NAME models: configs built in, seeded weights made in memory
#pragma once
#include <stdarg.h>
#include <stdbool.h>

#include "models/safetensors.h"
#include "models/weights.h"

// One tensor as the model sees it. A single-file tensor may be a slice of rows of the
// stored one (OpenCLIP's fused in_proj -> q, k, v), its transpose (text_projection), or a
// reshape of it (the VAE's conv 1x1 attention weights (C, C, 1, 1) -> linear (C, C)).
typedef struct {
    char *name;  // diffusers name within the component (owned)
    int file;    // index into Weights.files
    const SafeTensorsEntry *e;
    int64_t row0, rows;  // rows [row0, row0 + rows) of dim 0; rows < 0: the whole tensor
    bool transpose;      // 2-D transpose of the (sliced) tensor
    int ndim;            // the model's view (after slicing, transposing, reshaping)
    int64_t shape[TENSOR_MAX_DIMS];
} WTensor;

#define W_MAX_COMPONENTS 16
#define W_MAX_SKIPPED 4

typedef struct {
    char name[48];
    char *dir;        // the component's folder (diffusers layout), NULL for a single file
    JsonDoc *config;  // config.json, or derived from the tensors (owned)
    bool derived;     // config made by weights_config.c
    WTensor *t;       // sorted by name after weights_open
    int n, cap;
    char *tok_dir;  // tokenizer components: the folder to read (owned)
} WComponent;

struct Weights {
    char *path;
    ModelFamily family;
    WeightsLayout layout;
    SafeTensors *files;  // every weights file opened (shards included)
    int nfiles, files_cap;
    WComponent comp[W_MAX_COMPONENTS];
    int ncomp;
    int unused;  // single file: tensors no component uses (EMA copies, schedules)
    char unused_example[160];
    char skipped[W_MAX_SKIPPED][400];  // folder components left out (unreadable, unused)
    int nskipped;
    void *mem[W_MAX_COMPONENTS];  // built-in models: the safetensors images files[] read (owned)
    int nmem;
};

// err helpers: write a formatted message, return -1.
#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
int w_err(char *err, size_t errlen, const char *fmt, ...);

char *w_path_join(const char *a, const char *b);  // "a/b", malloc'd
bool w_is_file(const char *path);
bool w_file_in(const char *dir, const char *name);

WComponent *w_component(Weights *w, const char *name, bool create);
const WComponent *w_component_c(const Weights *w, const char *name);
// Adds a tensor to a component (name copied). Returns it for the caller to fill in.
WTensor *w_add(WComponent *c, const char *name, int file, const SafeTensorsEntry *e);
const WTensor *w_lookup(const WComponent *c, const char *name);
void w_sort(WComponent *c);
// Sets t's view from its entry (rows, transpose, and an optional reshape: ndim > 0).
int w_set_view(WTensor *t, int ndim, const int64_t *shape);

// Adds a safetensors image in memory as a file (`bytes` is malloc'd; w owns it from now on,
// even on failure). Returns its index into w->files, or -1 with a message.
int w_add_memory(Weights *w, void *bytes, size_t size, const char *name, char *err, size_t errlen);

// weights_builtin.c: opens built-in model `name` ("tiny-sd15", the part after "builtin:")
// into an empty w. Returns 0, or -1 with a message listing the built-in models.
int wbuiltin_open(Weights *w, const char *name, char *err, size_t errlen);
const char *wbuiltin_names(void);  // "builtin:tiny-sd15, builtin:tiny-sdxl"

// weights_ldm.c: detects the family of an open single file (0, or -1 with a message
// listing what was found) and maps its tensors into components.
int ldm_detect(const SafeTensors *st, ModelFamily *family, char *err, size_t errlen);
int ldm_map(Weights *w, int file, char *err, size_t errlen);

// weights_config.c: a component's config derived from its tensors, the family's known
// values, and hints ("storyrun.config.<component>" metadata, a JSON object, may be NULL).
JsonDoc *wcfg_derive(const Weights *w, const WComponent *c, const char *hints, char *err,
                     size_t errlen);
// The scheduler's config for a single file (the family's training schedule).
JsonDoc *wcfg_scheduler(ModelFamily f);

// A growable string for JSON text.
typedef struct {
    char *s;
    size_t n, cap;
} WBuf;
#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
void wb_printf(WBuf *b, const char *fmt, ...);
void wb_json_string(WBuf *b, const char *s);
// Appends v as JSON text (numbers as written in the source).
void wb_json_value(WBuf *b, const JsonValue *v);

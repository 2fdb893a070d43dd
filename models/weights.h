// models/weights.h: one view of a model's weights, whatever the layout on disk.
//
// A model is either a diffusers folder (model_index.json; unet/ vae/ text_encoder/
// text_encoder_2/ tokenizer/ tokenizer_2/ scheduler/, each weights file a
// .safetensors, possibly sharded with an *.index.json) or one single-file checkpoint
// with the original LDM key names (SD1.x, SD2.x, SDXL base and its fine-tunes).
// Models ask for tensors by component and diffusers name ("text_encoder",
// "text_model.encoder.layers.0.self_attn.q_proj.weight"); for a single-file checkpoint
// the name is mapped to the LDM key, including the cases where the original stores it
// differently (OpenCLIP's fused in_proj_weight -> rows of q/k/v; text_projection
// transposed). Loading checks the shape and converts the dtype.
//
// Diffusers folders: each component's weights are <sub>/diffusion_pytorch_model.safetensors
// or <sub>/model.safetensors, else the sharded *.safetensors.index.json, else the fp16
// variant (*.fp16.safetensors or its index). Text encoders are named "text_model.*" (+
// "text_projection.weight") whether or not the file has the "text_model." prefix (newer
// transformers write CLIPTextModel without it). A single-file checkpoint may carry
// safetensors metadata "storyrun.config.<component>" = a JSON object merged over the
// config derived from its shapes (for values no shape tells, e.g. tiny test models' heads).
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "kernels/tensor.h"
#include "runner/json.h"

struct Tokenizer;

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    FAMILY_UNKNOWN = 0,
    FAMILY_SD1,   // SD1.x: CLIP ViT-L/14 text encoder, UNet context 768
    FAMILY_SD2,   // SD2.x: OpenCLIP ViT-H/14 text encoder, UNet context 1024
    FAMILY_SDXL,  // SDXL base: CLIP-L + OpenCLIP bigG, UNet context 2048 + add_embedding
} ModelFamily;

const char *family_name(ModelFamily f);  // "SD1.x", "SD2.x", "SDXL", "unknown"

// LAYOUT_BUILTIN: "builtin:tiny-sd15" / "builtin:tiny-sdxl", tiny models of the real
// architectures with seeded random weights made in memory (models/weights_builtin.c).
typedef enum { LAYOUT_DIFFUSERS = 0, LAYOUT_SINGLE_FILE = 1, LAYOUT_BUILTIN = 2 } WeightsLayout;

typedef struct Weights Weights;

// One tensor as a model sees it: its diffusers name and shape, where it comes from.
typedef struct {
    const char *name;    // diffusers-style name within the component
    const char *source;  // the key in the file ("model.diffusion_model.input_blocks...")
    const char *file;    // the file that holds it
    int ndim;
    int64_t shape[TENSOR_MAX_DIMS];  // the shape the model sees (after slicing/transposing)
    const char *dtype;               // "F32", "F16", "BF16", ... as stored
} WeightInfo;

// Opens a diffusers folder or a single-file checkpoint; detects the family from the
// tensors' names and shapes. A path "builtin:NAME" opens a built-in model (no files).
// Returns 0, or -1 with a message naming the path and problem.
int weights_open(Weights **w, const char *path, char *err, size_t errlen);
void weights_close(Weights *w);

ModelFamily weights_family(const Weights *w);
WeightsLayout weights_layout(const Weights *w);
const char *weights_path(const Weights *w);

// Components present: "unet", "vae", "text_encoder", "text_encoder_2", ...
int weights_component_count(const Weights *w);
const char *weights_component(const Weights *w, int i);
int weights_has(const Weights *w, const char *component);

// Tensors of a component, in the diffusers names (for inspect and for loops).
int weights_tensor_count(const Weights *w, const char *component);
int weights_tensor_info(const Weights *w, const char *component, int i, WeightInfo *info);
int weights_find(const Weights *w, const char *component, const char *name, WeightInfo *info);

// The component's config: diffusers' <component>/config.json when the folder has one;
// for a single file, a config derived from the tensor shapes and the family's known
// values (the same keys and meanings as diffusers' config.json). NULL if absent.
const JsonValue *weights_config(const Weights *w, const char *component);

// Loads component/name into a tensor from arena `a` (host or device per a->dev) with
// dtype dt, checking that it has exactly `ndim` dims of `shape`. A missing tensor or a
// shape mismatch is an error naming the file, the tensor and both shapes.
int weights_load(const Weights *w, const char *component, const char *name, int ndim,
                 const int64_t *shape, Arena *a, DType dt, Tensor *out, char *err, size_t errlen);

// The tokenizer folder for "tokenizer" or "tokenizer_2": the model's own when it has
// one, else the CLIP vocabulary shipped with storyrun (single-file checkpoints carry
// none). NULL when neither exists. Its vocab.json and merges.txt may be gzipped
// (vocab.json.gz): load it with weights_tokenizer_load, which reads both forms.
const char *weights_tokenizer_dir(const Weights *w, const char *which);

// ---- additions ------------------------------------------------------------------------

// The component's config as a document, for json_get_int & co (which name the file and
// line in messages). NULL if absent.
const JsonDoc *weights_config_doc(const Weights *w, const char *component);

// Loads the tokenizer "tokenizer" / "tokenizer_2" (models/tokenizer.h) from
// weights_tokenizer_dir, reading .gz files too. Returns 0, or -1 with a message.
int weights_tokenizer_load(const Weights *w, const char *which, struct Tokenizer *tok, char *err,
                           size_t errlen);

// The CLIP tokenizer folders shipped with storyrun: DIR/sd15 (pads with <|endoftext|>: SD1.x
// and SDXL's first tokenizer) and DIR/sdxl_2 (pads with "!": SD2.x, SDXL's second). Looked
// up in $STORYRUN_CLIP_DIR, next to the executable (PREFIX/bin/../share/storyrun/clip, or
// the build tree's share/storyrun/clip), then the build and install paths compiled in.
// NULL when none has them.
const char *weights_clip_data_dir(void);

// Single file: how many tensors no component uses (EMA copies, schedule buffers, ...)
// and one of their names (may be NULL).
int weights_unused(const Weights *w, const char **example);

// Problems `storyrun inspect` reports: a tensor or component the family needs is
// missing, a config disagrees with the shapes, dtypes are mixed, ...
typedef enum { WP_NOTE = 0, WP_WARNING = 1, WP_ERROR = 2 } WeightsSeverity;  // ERROR: unusable
typedef struct {
    WeightsSeverity severity;
    char msg[400];
} WeightsProblem;
// Fills up to cap problems; returns how many were found (may exceed cap).
int weights_check(const Weights *w, WeightsProblem *out, int cap);

#ifdef __cplusplus
}
#endif

// models/conditioning.h: prompts -> the conditioning tensors a UNet step reads, exactly as
// diffusers 0.42's pipelines build them.
//
// SD1.x / SD2.x (StableDiffusionPipeline.encode_prompt):
//   prompt_embeds = text_encoder(ids).last_hidden_state                  (B, 77, C)
//     with clip_skip k > 0: final_layer_norm(hidden_states[-(k + 1)])
//   negative_prompt_embeds = last_hidden_state of the negative prompts    (B, 77, C)
//     (no negative prompt: ""; clip_skip is not applied to negatives, as in diffusers)
// SDXL (StableDiffusionXLPipeline.encode_prompt and __call__):
//   prompt_embeds = concat(text_encoder(ids).hidden_states[-2],
//                          text_encoder_2(ids_2).hidden_states[-2])       (B, 77, C1 + C2)
//     (clip_skip k > 0: hidden_states[-(k + 2)] of both; negatives always use [-2])
//   pooled_prompt_embeds = text_encoder_2(ids_2).text_embeds              (B, P)
//   negatives: negative == NULL and force_zeros_for_empty_prompt (model_index.json, true
//     for SDXL base) -> zeros for both; else the encoded negative prompts (NULL -> "";
//     negative_2 NULL -> negative; prompts_2 NULL -> prompts). Note that it is a missing
//     negative prompt, not an empty string, that diffusers turns into zeros.
//   add_time_ids = [original_size (h, w), crops_coords_top_left (y, x), target_size (h, w)]
// With classifier-free guidance the batch the UNet sees is [negative; positive] (2B rows).
//
// Prompts longer than the tokenizer's 77 tokens are cut (as in diffusers); the untruncated
// lengths are returned so that callers can warn. Long-prompt chunking (75-token windows
// concatenated along the sequence) is not supported yet, nor num_images_per_prompt > 1
// (callers repeat rows themselves) or textual-inversion multi-vector tokens.
#pragma once
#include <stddef.h>

#include "kernels/tensor.h"
#include "models/clip_text.h"
#include "models/tokenizer.h"
#include "models/weights.h"

#ifdef __cplusplus
extern "C" {
#endif

#define COND_MAX_ENCODERS 2

// The text side of a model: one encoder (SD1.x, SD2.x) or two (SDXL).
typedef struct {
    ModelFamily family;
    int n_enc;
    Tokenizer tok[COND_MAX_ENCODERS];  // tokenizer, tokenizer_2
    ClipText enc[COND_MAX_ENCODERS];   // text_encoder (CLIPTextModel), text_encoder_2 (with projection)
    int force_zeros_for_empty_prompt;  // SDXL pipeline config
} Conditioner;

// Loads the tokenizer(s) (weights_tokenizer_load) and text encoder(s) of w into `arena` in
// dtype dt, and reads force_zeros_for_empty_prompt from a diffusers folder's
// model_index.json (absent: true, diffusers' default). Returns 0, or -1 with a message.
// A Conditioner may also be filled by hand (tokenizers from memory, encoders loaded with
// clip_text_load): set family, n_enc, tok, enc and force_zeros_for_empty_prompt.
int cond_load(Conditioner *c, const Weights *w, Arena *arena, DType dt, char *err, size_t errlen);
void cond_free(Conditioner *c);  // tokenizers and encoders' host parts

// Bytes that clip_text_load will take from the weights arena for all encoders of w.
int cond_weight_bytes(const Weights *w, DType dt, size_t *bytes, char *err, size_t errlen);

typedef struct {
    int B;                            // prompts in the batch
    const char *const *prompts;       // B prompts
    const char *const *prompts_2;     // SDXL: B prompts for the second encoder; NULL: prompts
    const char *const *negative;      // B negative prompts, or NULL (diffusers' None)
    const char *const *negative_2;    // SDXL: B negative prompts for encoder 2; NULL: negative
    int do_cfg;                       // classifier-free guidance: output [negative; positive]
    int clip_skip;                    // 0: none (diffusers' clip_skip=None)
    // SDXL micro-conditioning, as (h, w) and (y, x); zeros: (height, width), (0, 0), (height, width)
    int height, width;                // the image size, for the defaults
    int original_size[2], crops_top_left[2], target_size[2];
    // diffusers uses negative sizes only when both negative sizes are given
    int has_negative_sizes;
    int negative_original_size[2], negative_crops_top_left[2], negative_target_size[2];
    int *n_untruncated;  // optional out, B * n_enc: prompt b, encoder e at [b * n_enc + e]:
                         // its token count with BOS/EOS before the cut (> 77: it was cut)
} CondRequest;

typedef struct {
    int rows;       // B, or 2B with guidance
    Tensor context;  // (rows, 77, C): encoder_hidden_states; negatives first with guidance
    Tensor pooled;   // SDXL: (rows, P), added_cond_kwargs["text_embeds"]; data NULL otherwise
    // SDXL add_time_ids: [0] the negative row, [1] the positive row (host, f32).
    float time_ids[2][6];
    int do_cfg;
} CondOutput;

// Bytes of `out_arena` and of `ws` that cond_encode needs for a request of B prompts.
size_t cond_output_bytes(const Conditioner *c, int B, int do_cfg);
size_t cond_scratch_bytes(const Conditioner *c, int B);

// Encodes a request: output tensors from out_arena (on the encoders' device and dtype),
// activations from ws (released before returning). Not thread-safe (the tokenizers keep
// a cache). Returns 0, or -1 with a message.
int cond_encode(Conditioner *c, const CondRequest *req, Arena *out_arena, Arena *ws, CondOutput *out,
                char *err, size_t errlen);

// Row `row` of diffusers' add_time_ids tensor (rows x 6). diffusers builds it as
// cat([negative, positive]).repeat(B, 1), i.e. rows alternate negative, positive, ... while
// the context rows are [negative x B; positive x B]: for B > 1 with negative sizes that
// differ from the positive ones, the rows pair up as diffusers pairs them, which is what
// this returns (with equal sizes, the usual case, every row is the same).
void cond_time_ids_row(const CondOutput *out, int row, float ids[6]);

#ifdef __cplusplus
}
#endif

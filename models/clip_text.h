// models/clip_text.h: the CLIP text encoders of Stable Diffusion.
//
//   CLIPTextModel                (SD1.x "text_encoder": OpenAI CLIP ViT-L/14's text tower;
//                                 SDXL's first encoder; SD2.x's OpenCLIP ViT-H/14)
//   CLIPTextModelWithProjection  (SDXL's "text_encoder_2": OpenCLIP ViT-bigG/14)
// as transformers computes them:
//   x = token_embedding[ids] + position_embedding[0..L)                hidden_states[0]
//   per layer: x += out_proj(attn_causal(q, k, v of layer_norm1(x)))
//              x += fc2(act(fc1(layer_norm2(x))))                     hidden_states[i]
//   last_hidden_state = final_layer_norm(x)
//   pooled = last_hidden_state at the EOS position of each sequence
//   text_embeds = text_projection(pooled)                             (projection model)
// The EOS position follows transformers exactly: with eos_token_id == 2 in the config (the
// legacy value every published SD text encoder config still has) it is argmax(ids) (first
// occurrence of the largest id); otherwise the first position whose id is eos_token_id.
//
// Tensors are asked for by their diffusers names through models/weights.h, so a diffusers
// folder and a single-file checkpoint load the same way. Both key styles of diffusers
// folders work: "text_model.encoder..." (the published repositories) and the flattened
// "encoder..." that transformers >= 5 writes for a CLIPTextModel.
#pragma once
#include <stddef.h>

#include "kernels/tensor.h"
#include "models/weights.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { CLIP_ACT_QUICK_GELU = 0, CLIP_ACT_GELU = 1, CLIP_ACT_GELU_TANH = 2 } ClipAct;

// The keys of transformers' CLIPTextConfig (a component's config.json).
typedef struct {
    int hidden_size;           // C: 768 (CLIP-L), 1024 (OpenCLIP-H), 1280 (bigG)
    int intermediate_size;     // MLP width
    int num_hidden_layers;
    int num_attention_heads;   // heads are interleaved in channels: head h = h*D .. h*D+D-1
    int max_position_embeddings;  // 77
    int vocab_size;            // 49408
    int projection_dim;        // text_projection's outputs; 0 for a model without one
    int eos_token_id;          // 2 (legacy: argmax pooling) or the EOS id (49407)
    ClipAct act;               // hidden_act: quick_gelu | gelu | gelu_new/gelu_pytorch_tanh
    float layer_norm_eps;
} ClipTextConfig;

// Reads w's config for `component` ("text_encoder", "text_encoder_2"); projection_dim is
// kept only when with_projection is set (CLIPTextModel configs also carry the key).
// Returns 0, or -1 with a message naming the config and key.
int clip_text_config(ClipTextConfig *cfg, const Weights *w, const char *component, int with_projection,
                     char *err, size_t errlen);

typedef struct {
    Tensor ln1_w, ln1_b, q_w, q_b, k_w, k_b, v_w, v_b, o_w, o_b;  // attention (C, C), (C)
    Tensor ln2_w, ln2_b, fc1_w, fc1_b, fc2_w, fc2_b;              // MLP (I, C), (C, I)
} ClipTextLayer;

typedef struct {
    ClipTextConfig cfg;
    DType dtype;  // of weights and activations: f32 on the CPU; f16/bf16 (or f32) on CUDA
    Device dev;
    Tensor tok_emb;        // (vocab, C)
    Tensor pos_emb;        // (max_pos, C)
    ClipTextLayer *layers; // num_hidden_layers (host array; the tensors live in the arena)
    Tensor final_ln_w, final_ln_b;  // (C)
    Tensor proj_w;         // (projection_dim, C), no bias; data NULL without a projection
} ClipText;

// Bytes of weights_arena that clip_text_load takes for cfg in dtype dt (alignment included).
size_t clip_text_weight_bytes(const ClipTextConfig *cfg, DType dt);

// Loads component of w (its config first) into `arena` (host or device per arena->dev) in
// dtype dt. with_projection: CLIPTextModelWithProjection (needs text_projection.weight).
// Returns 0, or -1 with a message naming the file, the tensor and the shapes.
int clip_text_load(ClipText *m, const Weights *w, const char *component, int with_projection,
                   Arena *arena, DType dt, char *err, size_t errlen);
void clip_text_free(ClipText *m);  // the host array; the tensors go with their arena

// What a forward pass writes. Every output may be NULL; each given one must be
// preallocated by the caller in the model's dtype and device.
typedef struct {
    Tensor *last_hidden_state;  // (B, L, C): final layer norm applied
    Tensor *hidden_state;       // (B, L, C): hidden_states[hidden_index], no final norm
    int hidden_index;           // transformers' numbering: 0 = embeddings, i = after layer i;
                                // negative counts from the end (-1 = after the last layer,
                                // -2 = the penultimate, SDXL's choice)
    Tensor *pooled;             // (B, C): last_hidden_state at each sequence's EOS position
    Tensor *text_embeds;        // (B, projection_dim): text_projection(pooled)
} ClipTextOutputs;

// Runs B sequences of L ids (host, row-major (B, L); L <= max_position_embeddings).
// Activations come from `ws` (released again before returning). Layers past what the
// requested outputs need are skipped (hidden_states[-2] alone runs all but the last).
// Returns 0, or -1 with a message when an id is outside the vocabulary.
int clip_text_forward(const ClipText *m, const int *ids, int B, int L, Arena *ws,
                      const ClipTextOutputs *out, char *err, size_t errlen);

// Bytes of `ws` a forward pass of B sequences of L tokens needs (alignment included).
size_t clip_text_scratch_bytes(const ClipTextConfig *cfg, DType dt, int B, int L);

// The position pooled output reads in one sequence of L ids (see the top of this file).
int clip_text_eos_position(const ClipTextConfig *cfg, const int *ids, int L);

#ifdef __cplusplus
}
#endif

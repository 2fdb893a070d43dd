// models/clip_vision.h: the CLIP image encoder (transformers' CLIPVisionModelWithProjection)
// and its preprocessing (CLIPImageProcessor), for image embeddings of frames and videos.
//
// Models: OpenAI CLIP ViT-L/14 (hidden 1024, 24 layers, quick_gelu, projection 768) and
// OpenCLIP ViT-H/14 as IP-Adapter ships it in image_encoder/ (hidden 1280, 32 layers, 16
// heads, gelu, projection 1024), or any other CLIPVisionConfig. Computed as transformers
// 5.24 computes it (S = image_size, p = patch_size, G = S / p, T = 1 + G*G, C = hidden):
//   patches  = conv(pixel_values (B, 3, S, S), patch_embedding (C, 3, p, p), stride p, no
//              bias), here a linear map of each p x p patch flattened as (c, ky, kx)
//   x        = [class_embedding; patches] + position_embedding        (B, T, C)
//   x        = pre_layrnorm(x)                                         hidden_states[0]
//   per layer: x += out_proj(attention(q, k, v of layer_norm1(x)))    (no mask; heads
//              x += fc2(act(fc1(layer_norm2(x))))                      interleaved in C)
//                                                                      hidden_states[i]
//   last_hidden_state = hidden_states[num_hidden_layers] (no norm: post_layernorm is only
//                       applied to the pooled token)
//   pooled       = post_layernorm(last_hidden_state[:, 0])             (B, C)
//   image_embeds = visual_projection(pooled), no bias                  (B, projection_dim)
// act is the config's hidden_act: quick_gelu (OpenAI) or gelu (erf form; OpenCLIP).
//
// Weights (clip_vision_config / clip_vision_load take a path):
//   - a transformers folder: config.json (a CLIPVisionConfig, or a CLIPConfig whose
//     "vision_config" is used with its top-level "projection_dim") and model.safetensors,
//     a sharded model.safetensors.index.json, or model.fp16.safetensors. IP-Adapter's
//     image_encoder/ and save_pretrained of CLIPVisionModelWithProjection are this.
//   - one .safetensors with the same keys. The config is derived from the shapes (hidden,
//     MLP width, layers, patch and image size, projection); what no shape tells comes from
//     the safetensors metadata "storyrun.config.image_encoder" (a JSON object with
//     CLIPVisionConfig keys: num_attention_heads, hidden_act, layer_norm_eps) or, absent
//     that, from the known widths: 768 -> 12 heads quick_gelu (ViT-B), 1024 -> 16 heads
//     quick_gelu (OpenAI ViT-L), 1280 -> 16 heads gelu (OpenCLIP ViT-H), 1664 -> 16 heads
//     gelu (OpenCLIP ViT-bigG). Another width without metadata is refused.
//   Keys are "vision_model.<name>" + "visual_projection.weight"; "<name>" without the
//   prefix is read too. Tensors other models add (a CLIPModel's text tower) are ignored.
//   A model without visual_projection.weight (CLIPVisionModel) loads with
//   projection_dim 0 and gives everything but image_embeds.
//
// Preprocessing (clip_preprocess_*): exactly CLIPImageProcessor's PIL path
// (CLIPImageProcessorPil; transformers 5.24's CLIPImageProcessor is that when torchvision is
// not installed, its torchvision backend otherwise, which is not matched here), with the defaults
// of openai/clip-vit-large-patch14 and IP-Adapter's image encoder:
//   do_convert_rgb   gray -> RGB (replicated); an alpha channel is composited onto white
//                    with Pillow's integer alpha_composite
//   do_resize        shortest side -> shortest_edge (224), the other int(224 * long /
//                    short), Pillow's BICUBIC (a = -0.5, support scaled by the downscale
//                    factor so it antialiases; two passes with 22-bit fixed-point
//                    coefficients and rounding to 8 bits in between, horizontal first
//                    unless the height shrinks by more than twice as many pixels as the
//                    width, as Pillow 13 orders them; Pillow < 13 always went horizontal
//                    first, which differs by a few levels on downscaled images taller
//                    than about 2:1)
//   do_center_crop   crop_size (224 x 224) at ((H - h) // 2, (W - w) // 2)
//   do_rescale       float32(v * (1/255)) computed in double, as numpy does
//   do_normalize     (x - mean) / std in float32, OPENAI_CLIP_MEAN / OPENAI_CLIP_STD
// The output equals the processor's pixel_values bit for bit (tests/clip_vision; Pillow
// 13.0, numpy 2.4, transformers 5.24).
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "kernels/tensor.h"
#include "models/clip_text.h"  // ClipAct
#include "runner/image.h"

#ifdef __cplusplus
extern "C" {
#endif

// The keys of transformers' CLIPVisionConfig.
typedef struct {
    int hidden_size;        // C: 1024 (ViT-L), 1280 (ViT-H)
    int intermediate_size;  // MLP width
    int num_hidden_layers;
    int num_attention_heads;  // head h owns channels h*D .. h*D+D-1
    int image_size;           // S: 224
    int patch_size;           // p: 14
    int projection_dim;       // visual_projection's outputs; 0: the model has none
    ClipAct act;              // hidden_act
    float layer_norm_eps;
} ClipVisionConfig;

// Tokens per image: 1 + (image_size / patch_size)^2 (257 for ViT-L/14 and ViT-H/14 at 224).
int clip_vision_tokens(const ClipVisionConfig *cfg);

// Reads the config of the weights at `path` (see the top of this file). Returns 0, or -1
// with a message naming the file and the key or tensor.
int clip_vision_config(ClipVisionConfig *cfg, const char *path, char *err, size_t errlen);

typedef struct {
    Tensor ln1_w, ln1_b, q_w, q_b, k_w, k_b, v_w, v_b, o_w, o_b;  // attention (C, C), (C)
    Tensor ln2_w, ln2_b, fc1_w, fc1_b, fc2_w, fc2_b;              // MLP (I, C), (C, I)
} ClipVisionLayer;

typedef struct {
    ClipVisionConfig cfg;
    DType dtype;  // of weights and activations: f32 on the CPU; f16/bf16 (or f32) on CUDA
    Device dev;
    Tensor patch_w;               // (C, 3*p*p): the conv weight (C, 3, p, p) flattened
    Tensor class_emb;             // (C)
    Tensor pos_emb;               // (T, C)
    Tensor pre_ln_w, pre_ln_b;    // (C)
    ClipVisionLayer *layers;      // num_hidden_layers (host array; tensors in the arena)
    Tensor post_ln_w, post_ln_b;  // (C)
    Tensor proj_w;                // (projection_dim, C); data NULL without a projection
} ClipVision;

// Bytes of the weights arena clip_vision_load takes for cfg in dtype dt (alignment included).
size_t clip_vision_weight_bytes(const ClipVisionConfig *cfg, DType dt);

// Loads the weights at `path` into `arena` (host or device per arena->dev) in dtype dt
// (f32 on the CPU). Shapes are checked against the config. Returns 0, or -1 with a message
// naming the file, the tensor and both shapes.
int clip_vision_load(ClipVision *m, const char *path, Arena *arena, DType dt, char *err,
                     size_t errlen);
void clip_vision_free(ClipVision *m);  // the host array; the tensors go with their arena

// What a forward pass writes. Every output may be NULL; each given one must be
// preallocated by the caller in the model's dtype and on its device.
typedef struct {
    Tensor *image_embeds;       // (B, projection_dim)
    Tensor *pooled;             // (B, C): post_layernorm(last_hidden_state[:, 0])
    Tensor *last_hidden_state;  // (B, T, C)
    Tensor *hidden_state;       // (B, T, C): hidden_states[hidden_index]
    int hidden_index;           // transformers' numbering: 0 = after pre_layrnorm, i = after
                                // layer i; negative counts from the end (-2 = penultimate,
                                // IP-Adapter Plus's choice)
} ClipVisionOutputs;

// Encodes pixel_values (B, 3, S, S), f32 in host memory (what clip_preprocess_* write),
// whatever the model's device. Activations come from `ws` (on the model's device; released
// before returning); layers past what the outputs need are skipped. Returns 0, or -1 with a
// message when the input's shape does not fit the model.
int clip_vision_forward(const ClipVision *m, const Tensor *pixel_values, Arena *ws,
                        const ClipVisionOutputs *out, char *err, size_t errlen);

// Bytes of `ws` a forward pass of B images needs (alignment included).
size_t clip_vision_scratch_bytes(const ClipVisionConfig *cfg, DType dt, int B);

// ---- preprocessing ---------------------------------------------------------------------

// CLIPImageProcessor's settings (the defaults: clip_image_processor_default).
typedef struct {
    int shortest_edge;            // size {"shortest_edge": 224}
    int crop_height, crop_width;  // crop_size; at most shortest_edge (else refused)
    double rescale_factor;        // 1/255
    double mean[3], std[3];       // used as float32, as numpy does
} ClipImageProcessor;

// The defaults of openai/clip-vit-large-patch14 with shortest edge and crop = image_size
// (224 for every published CLIP; another value for tiny test models).
void clip_image_processor_default(ClipImageProcessor *p, int image_size);

// Pillow's Image.resize((ow, oh), Image.BICUBIC) of 8-bit interleaved pixels, each channel
// on its own: src has h rows of stride bytes (w * channels used), dst ow * oh * channels.
void clip_resize_bicubic(const uint8_t *src, int w, int h, int channels, size_t stride,
                         uint8_t *dst, int ow, int oh);

// The size the resize step gives a w x h image: *ow x *oh.
void clip_resize_size(const ClipImageProcessor *p, int w, int h, int *ow, int *oh);

// One RGB frame (h rows of `stride` bytes, 3 bytes per pixel, e.g. a decoded video frame)
// through resize and center crop: crop gets crop_height x crop_width x 3 bytes. Returns 0,
// or -1 with a message (an empty image, a crop larger than the resized image).
int clip_preprocess_rgb_u8(const ClipImageProcessor *p, const uint8_t *rgb, int w, int h,
                           size_t stride, uint8_t *crop, char *err, size_t errlen);

// The same frame all the way to batch item n of pixel_values (B, 3, crop_height,
// crop_width), f32 host.
int clip_preprocess_rgb(const ClipImageProcessor *p, const uint8_t *rgb, int w, int h,
                        size_t stride, Tensor *pixel_values, int n, char *err, size_t errlen);

// An Image of any channel count (gray, gray+alpha, RGB, RGBA) into batch item n, converted
// to RGB first as do_convert_rgb does.
int clip_preprocess_image(const ClipImageProcessor *p, const Image *img, Tensor *pixel_values,
                          int n, char *err, size_t errlen);

#ifdef __cplusplus
}
#endif

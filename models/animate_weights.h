// models/animate_weights.h: where the animate job's extra networks come from.
//
// builtin:tiny-animate (models/weights_builtin.c) is builtin:tiny-sd15's architecture (its
// UNet, VAE and text encoder, with their own seed) plus two more components made in memory
// by models/weights_builtin_animate.c:
//   motion_adapter   a diffusers MotionAdapter for that UNet (motion modules after every
//                    layer of every block and in the mid block, 4 heads, 1 transformer block
//                    each, max 32 frames), the diffusers key layout (models/unet_video.h)
//   ip_adapter       a plain IP-Adapter for that UNet (models/ip_adapter.h) taking 16-wide
//                    image embeddings: the width of the tiny CLIP vision encoder the demo's
//                    predict stage uses (tests/clip_vision/data/tiny_quick)
// filled like every built-in weight: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for linear
// weights and biases, 1 / 0 for norms, the sinusoidal table for pos_embed.pe, from a
// counter-based stream keyed by (seed, tensor name).
//
// Real weights come as files: an AnimateDiff motion adapter (mm_sd_v15_v2.safetensors or a
// diffusers MotionAdapter folder) and an IP-Adapter checkpoint (ip-adapter_sd15.safetensors);
// the job opens them with motion_adapter_open / ip_adapter_load. The functions below give
// the same objects for a built-in model's components.
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "models/ip_adapter.h"
#include "models/safetensors.h"
#include "models/unet_video.h"
#include "models/weights.h"
#include "runner/json.h"

#ifdef __cplusplus
extern "C" {
#endif

// The built-in image of component "motion_adapter" or "ip_adapter" (F32 safetensors,
// malloc'd into *image, *size bytes) for the UNet whose config is unet_cfg; cfg is the
// component's own config (its keys: see weights_builtin.c). Returns 0, or -1 for an unknown
// component.
int wbuiltin_animate_image(const char *component, const JsonDoc *cfg, const JsonDoc *unet_cfg,
                           uint64_t seed, uint8_t **image, size_t *size);

// 1 when w has the component (built-in models only carry them).
int animate_weights_has(const Weights *w, const char *component);

// The motion adapter of w's "motion_adapter" component as an open MotionAdapterFile (its
// own view of the in-memory image; close it with motion_adapter_close; w must stay open).
// Returns 0, or -1 with a message.
int animate_motion_adapter_from_weights(MotionAdapterFile *f, const Weights *w, char *err,
                                        size_t errlen);

// Loads w's "ip_adapter" component for unet (ip_adapter_load_st). Returns 0, or -1.
int animate_ip_adapter_from_weights(IpAdapter *ip, const Unet *unet, const Weights *w,
                                    Arena *arena, DType dt, char *err, size_t errlen);
// The image embedding width of w's "ip_adapter" component (0 when absent).
int animate_ip_adapter_embed_dim(const Weights *w);

#ifdef __cplusplus
}
#endif

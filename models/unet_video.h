// models/unet_video.h: the AnimateDiff video UNet for SD1.5: diffusers 0.42's UNetMotionModel
// (UNetMotionModel.from_unet2d(unet, motion_adapter)) = a loaded Unet (models/unet.h) plus
// one motion module (models/motion_module.h) after every layer of every down and up block
// (after the resnet, and the transformer in cross-attention blocks, before the output
// becomes a skip and before any down/upsampler), and after the mid block's transformer when
// the adapter has a mid-block module (v2 adapters; v1/v3 have none). Frames are folded into
// the batch: every UNet op sees B*F independent rows; only the motion modules mix frames.
// It runs through the UNet's layer seam (UnetInputs.layer_fn), so the UNet code is shared.
//
// ---- one denoising step over F frames -------------------------------------------------------
//   Weights *w;  weights_open(&w, "sd15 folder or file", ...);
//   Unet unet;   unet_load(&unet, w, &weights_arena, dt, ...);
//   MotionAdapterFile mf;  motion_adapter_open(&mf, "mm_sd_v15_v2.safetensors", ...);
//                           (or a diffusers MotionAdapter folder)
//   UnetVideo v;  arena of unet_video_weight_bytes(&unet, &mf, dt);
//                 unet_video_load(&v, &unet, &mf, &mm_arena, dt, ...);  motion_adapter_close(&mf);
//   scratch ws of unet_video_scratch_bytes(&v, B, F, H, W, L) (+ the hooks' own needs, e.g.
//   ip_adapter_scratch_bytes(&ip, &unet, B*F, H, W, Bt, T) for IP-Adapter)
//   UnetInputs in = {0};
//   in.sample = &x;                  (B*F, 4, H, W): row b*F + f is frame f of video b
//                                    (diffusers' (B, 4, F, H, W) latents permuted to
//                                    (B, F, 4, H, W) and flattened)
//   in.timesteps = ts;               host, B*F values: video b's timestep repeated F times
//   in.encoder_hidden_states = &c;   (B*F, L, 768): AnimateDiffPipeline repeats the prompt per
//                                    frame; rows may differ (per-frame prompts)
//   in.cross_attn / cross_attn_ctx   optional: extra cross-attention inputs per row, e.g.
//                                    ip_adapter_bind(&run, &ip, &tokens (B*F or 1, T, 768),
//                                    scale, &in) for per-frame image tokens (IP-Adapter);
//                                    site->layer numbers attn2 layers as in the plain UNet
//   in.self_attn, in.freeu, in.step  as for unet_forward
//   unet_video_forward(&v, &in, F, &noise_pred (B*F, 4, H, W), &ws, err, errlen);
// Classifier-free guidance stacks [uncond videos; cond videos] as B = 2 * videos: rows stay
// grouped per video (b*F + f), which is what the motion modules need. in.layer_fn must be
// NULL (the motion modules take the layer seam).
//
// ---- weights ------------------------------------------------------------------------------------
// (a) diffusers MotionAdapter: a folder with config.json and diffusion_pytorch_model.safetensors
//     (or a .safetensors file of those names alone). Names, per UNet layer:
//       down_blocks.N.motion_modules.M.{norm, proj_in, proj_out}.{weight, bias}
//       down_blocks.N.motion_modules.M.transformer_blocks.K.{norm1, norm2, norm3}.*,
//         .attn1/.attn2.{to_q, to_k, to_v}.weight, .to_out.0.{weight, bias},
//         .ff.net.0.proj.*, .ff.net.2.*, .pos_embed.pe
//       up_blocks.N.motion_modules.M (M < layers + 1), mid_block.motion_modules.0
// (b) the original AnimateDiff file (mm_sd_v15_v2.safetensors and its v1/v3 siblings): the
//     same blocks with these differences (diffusers' convert_animatediff_checkpoint_to_
//     diffusers, read as a mapping from the diffusers name):
//       X.motion_modules.M.Y            is  X.motion_modules.M.temporal_transformer.Y
//       transformer_blocks.K.attn1      is  transformer_blocks.K.attention_blocks.0
//       transformer_blocks.K.attn2      is  transformer_blocks.K.attention_blocks.1
//       norm1, norm2, norm3             are norms.0, norms.1, ff_norm
//       pos_embed.pe                    is  attention_blocks.{0,1}.pos_encoder.pe (both equal)
//     (norm, proj_in, proj_out, ff.net.* and to_q/to_k/to_v/to_out.0 keep their names).
// The structure (blocks, channels, layers per block, transformer blocks per module, whether
// there is a mid-block module, the positional table's length) is read from the names and
// shapes. The head count is config.json's motion_num_attention_heads, else the safetensors
// metadata "storyrun.config.motion_adapter" = {"motion_num_attention_heads": n}, else 8 (every
// public SD1.5 adapter). max frames: config.json's motion_max_seq_length, else the length of
// the stored pe tables, else 32. The tables themselves are computed (motion_module.h). The
// group norm takes the UNet's norm_num_groups, as UNetMotionModel builds its motion modules.
// Adapters with conv_in (PIA) or other attention types are refused.
#pragma once
#include <stddef.h>

#include "kernels/tensor.h"
#include "models/motion_module.h"
#include "models/safetensors.h"
#include "models/unet.h"
#include "runner/json.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    int nblocks;
    int channels[UNET_MAX_BLOCKS];  // per down block (up block i: nblocks - 1 - i)
    int layers[UNET_MAX_BLOCKS];    // motion modules per down block; up blocks have one more
    int down_depth[UNET_MAX_BLOCKS][UNET_MAX_LAYERS];  // transformer blocks per module
    int up_depth[UNET_MAX_BLOCKS][UNET_MAX_LAYERS];    // per up block i, layer j
    int heads[UNET_MAX_BLOCKS];                        // per down block; up block i: reversed
    int mid, mid_depth;                                // mid-block module: 1 / its depth
    int max_frames;
} MotionAdapterConfig;

typedef struct {
    SafeTensors st;
    int original;  // 1: the original AnimateDiff key layout
    MotionAdapterConfig cfg;
    char path[1024];  // the weights file (for messages)
} MotionAdapterFile;

// Opens either layout (a folder, or a .safetensors file) and derives its config. Returns 0,
// or -1 with a message naming the file and what was expected.
int motion_adapter_open(MotionAdapterFile *f, const char *path, char *err, size_t errlen);
// The same over a safetensors image in memory (bytes must outlive f), with an optional
// diffusers config.json document (NULL: none); name stands for the file in messages.
int motion_adapter_open_memory(MotionAdapterFile *f, const void *bytes, size_t size,
                               const char *name, const JsonDoc *config, char *err, size_t errlen);
void motion_adapter_close(MotionAdapterFile *f);
// A UnetTensorSource over f (ctx: the MotionAdapterFile) taking diffusers names; pos_embed.pe
// names get the computed table.
int motion_adapter_source(void *ctx, const char *name, int ndim, const int64_t *shape, Arena *arena,
                          DType dt, Tensor *out, char *err, size_t errlen);

typedef struct {
    const Unet *unet;
    MotionAdapterConfig cfg;
    MotionModule down[UNET_MAX_BLOCKS][UNET_MAX_LAYERS], up[UNET_MAX_BLOCKS][UNET_MAX_LAYERS];
    MotionModule mid;  // when cfg.mid
} UnetVideo;

// Loads f's motion modules for `unet` (which must stay loaded) into arena in unet's dtype
// and device. The adapter must match the UNet (blocks, channels, layers per block). Returns
// 0, or -1 with a message.
int unet_video_load(UnetVideo *v, const Unet *unet, const MotionAdapterFile *f, Arena *arena,
                    char *err, size_t errlen);
// Bytes of arena unet_video_load takes.
size_t unet_video_weight_bytes(const Unet *unet, const MotionAdapterFile *f);
void unet_video_free(UnetVideo *v);

// One noise prediction over F = frames frames (see the top of this file). Returns 0, or -1
// with a message when the inputs do not fit (frames beyond the adapter's max, rows not a
// multiple of frames, shapes).
int unet_video_forward(const UnetVideo *v, const UnetInputs *in, int frames, Tensor *out, Arena *ws,
                       char *err, size_t errlen);
// Bytes of ws for B videos of F frames, H x W latents, L context tokens (an upper bound: the
// UNet's peak plus the largest motion module's).
size_t unet_video_scratch_bytes(const UnetVideo *v, int B, int frames, int H, int W, int L);

#ifdef __cplusplus
}
#endif

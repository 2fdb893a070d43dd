// models/motion_module.h: AnimateDiff's motion module, as diffusers 0.42 computes it
// (AnimateDiffTransformer3D: the temporal transformer MotionAdapter builds per UNet layer),
// from the ops of kernels/ops.h, on the CPU (f32) or CUDA (f16/bf16).
//
// Input x (B*F, C, H, W): F frames of B videos folded into the batch, row b*F + f. Attention
// runs over the F frames at each pixel: the tokens are (B*H*W, F, C).
//   r = x
//   g = GroupNorm(groups, C, eps 1e-6) of x seen as (B, C, F, H, W)   statistics per video
//   h = proj_in(g as (B*H*W, F, C))                                    Linear C -> C + bias
//   per transformer block (BasicTransformerBlock, double_self_attention, no cross dim):
//     h += attn1(norm1(h) + pe[:F])     self-attention over frames; pe sinusoidal
//     h += attn2(norm2(h) + pe[:F])     a second self-attention ("Temporal_Self" twice)
//     h += ff(norm3(h))                 GEGLU feed-forward (4x), as in the UNet
//   x = r + proj_out(h) back in (B*F, C, H, W)
// pe (max_frames, C): pe[p, 2i] = sin(p * w_i), pe[p, 2i + 1] = cos(p * w_i),
// w_i = exp(-2i * ln(10000) / C) (diffusers' SinusoidalPositionalEmbedding, identical to the
// original AnimateDiff PositionalEncoding whose buffers the checkpoints carry); it is
// computed, not read (the stored copies of an F16 file are rounded).
// Attention layers have no q/k/v bias and a to_out.0 bias; LayerNorm eps 1e-5.
//
// The layout change (B, F*C, HW) -> (B, HW*F, C) is one op_transpose per direction; the
// group norm runs on a (B, C, HW*F) transposed copy (same statistics, channel-first for
// op_group_norm). Scratch comes from an arena; motion_module_scratch_bytes replays the
// forward dry for its exact peak.
#pragma once
#include <stddef.h>

#include "kernels/tensor.h"
#include "models/unet.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    int channels, heads, depth, groups;
    int max_frames;                // rows of pe: the adapter's motion_max_seq_length
    UnetParam norm;                // GroupNorm weight/bias (C)
    UnetParam proj_in, proj_out;   // Linear (C, C) + bias (C)
    UnetTransformerBlock *blocks;  // depth (host array); attn1 and attn2 both (C, C)
    Tensor pe;                     // (max_frames, C) in the model's dtype and device
} MotionModule;

// Loads the module named `prefix` (diffusers names: PREFIX.norm.weight,
// PREFIX.transformer_blocks.K.attn1.to_q.weight, ...) from src into arena in dt. The
// positional table is asked of src as PREFIX.transformer_blocks.0.pos_embed.pe with shape
// (1, max_frames, C); motion_pe_source / the adapter sources compute it. Returns 0, or -1
// with a message.
int motion_module_load(MotionModule *mm, int channels, int heads, int depth, int groups,
                       int max_frames, UnetTensorSource src, void *ctx, const char *prefix,
                       Arena *arena, DType dt, char *err, size_t errlen);
void motion_module_free(MotionModule *mm);  // host array; tensors go with their arena

// The sinusoidal table into pe (max_frames * C floats, row-major).
void motion_pe_fill(float *pe, int max_frames, int channels);
// Fills *out (from arena, dtype dt, on arena's device) with the (1, max_frames, C) table: what
// a source returns for a ".pos_embed.pe" name. shape must be (1, rows, C).
int motion_pe_tensor(Arena *arena, DType dt, int ndim, const int64_t *shape, Tensor *out, char *err,
                     size_t errlen);

// x (B*F, C, H, W) in place, F = frames (1 .. max_frames, B*F = x->shape[0]). Temporaries
// come from scratch (released before returning).
void motion_module_forward(const MotionModule *mm, Tensor *x, int frames, Arena *scratch);
// Exact bytes of scratch motion_module_forward takes for rows = B*F of an H x W map.
size_t motion_module_scratch_bytes(const MotionModule *mm, int rows, int H, int W, int frames);

#ifdef __cplusplus
}
#endif

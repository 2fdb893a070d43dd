// models/unet.h: UNet2DConditionModel of Stable Diffusion 1.x, 2.x and SDXL base, as diffusers
// 0.42 computes it, built from the ops of kernels/ops.h.
//
//   emb = time_embedding(timestep_embedding(t))            linear_1, silu, linear_2; (B, 4*C0)
//       (+ add_embedding(concat(text_embeds, timestep_embedding(time_ids))) for SDXL)
//   h = conv_in(sample)                                    skips = [h]
//   down_blocks[i]: per layer j: h = resnet(h, emb); [h = transformer(h, context)]; skips += h
//                   then h = downsample(h) (conv 3x3 stride 2), skips += h (not the last block)
//   mid_block: resnet, transformer, resnet
//   up_blocks[i]: per layer j: h = resnet(concat(h, skips.pop()), emb); [transformer]
//                 then nearest 2x upsampling + conv 3x3 (not the last block)
//   noise_pred = conv_out(silu(conv_norm_out(h)))
// resnet (ResnetBlock2D): x + conv2(silu(norm2(conv1(silu(norm1(x))) + time_emb_proj(silu(emb)))))
//   with a 1x1 conv_shortcut on x when the channel count changes.
// transformer (Transformer2DModel): x + proj_out(blocks(proj_in(group_norm(x)))) where the
//   tokens are x's pixels (B, H*W, C) and each BasicTransformerBlock does
//     h += attn1(norm1(h))              self-attention: THE SEAM below
//     h += attn2(norm2(h), context)     cross-attention with encoder_hidden_states
//     h += ff(norm3(h))                 GEGLU feed-forward (4x), computed in row chunks
//   proj_in/proj_out are linear layers (use_linear_projection) or 1x1 convolutions; a 1x1
//   convolution is applied as the same linear map on the tokens (identical mathematics).
//
// Config: diffusers' unet/config.json keys from weights_config(w, "unet") (a single-file
// checkpoint gets a derived one). Quirk kept from diffusers: "attention_head_dim" is really
// the number of heads per block (SD1.x: 8 everywhere; SD2.x/SDXL: channels / 64);
// "num_attention_heads", when set, wins. Lists run over down blocks; up blocks use them
// reversed, the mid block uses the last entry.
//
// ---- THE SEAM: self-attention ---------------------------------------------------------
// Every attn1 call of every BasicTransformerBlock goes through one function pointer,
// UnetInputs.self_attn (NULL: plain self-attention). It receives
//   site      where it is: down/mid/up block, block / attention / transformer index, the
//             running layer index (0 .. unet_self_attn_layers() - 1, forward order), the
//             token grid H x W and the caller's step index;
//   x_normed  (B, H*W, C): the layer's input after norm1 (LayerNorm), before any projection
//             (the tokens Consistent Self-Attention samples and banks);
//   attn      the layer's weights (to_q/to_k/to_v without bias, to_out.0 with bias, heads);
//   out       (B, H*W, C): where to write attn1's output (after to_out.0); the caller adds
//             it to the residual stream;
//   scratch   an arena for temporaries on the model's device; whatever the hook allocates
//             there is released when it returns (keep banks in memory of your own).
// The B rows are the caller's batch as given to unet_forward (with guidance: the rows the
// caller stacked, e.g. [uncond images; cond images]); the hook fills all of them. Rows are
// contiguous, so a hook that treats rows differently works on (1, L, C) views of them.
// unet_attention() is the building block a hook calls: queries from x_normed, keys/values
// from any list of token sets (x_normed itself, bank tokens, other images' tokens), each
// projected with the layer's own to_k/to_v, in the order given; the plain attn1 is
// unet_attention(attn, out, x_normed, {x_normed}, 1, scratch).
//
// FreeU (UnetInputs.freeu): diffusers' apply_freeu in up blocks 0 and 1, before each
// resnet's concatenation: the first half of the backbone channels scaled by b1 (block 0) /
// b2 (block 1), the skip features passed through diffusers' fourier_filter(threshold 1,
// scale s1 / s2). As in diffusers it is on only when b1, b2, s1 and s2 are all nonzero.
// The Fourier filter is exact (not an approximation): only the 2 x 2 masked frequencies
// differ from the identity, so y = x + (s - 1) * Re(ifft2(mask_set * fft2(x))) is computed
// with a direct DFT of those frequencies in double precision (O(H*W) per channel).
//
// Memory: weights in one arena (unet_weight_bytes), activations in a scratch arena sized by
// unet_scratch_bytes (an exact replay of the forward's allocations, plus room for the
// convolutions' workspace); the skips are the only long-lived activations.
//
// Limits: latent H and W must be multiples of 2^(number of downsamplers) (diffusers then
// forwards upsample sizes; storyrun refuses such sizes with a message). The token layout
// change (B, C, H, W) <-> (B, H*W, C) is op_transpose, on the tensors' own device.
#pragma once
#include <stddef.h>

#include "kernels/tensor.h"
#include "models/weights.h"

#ifdef __cplusplus
extern "C" {
#endif

#define UNET_MAX_BLOCKS 6
#define UNET_MAX_LAYERS 4  // resnets per block (up blocks have layers_per_block + 1)

typedef struct {
    int in_channels, out_channels;  // 4, 4
    int center_input_sample;        // sample = 2 * sample - 1 first
    int nblocks;                    // len(block_out_channels)
    int block_out_channels[UNET_MAX_BLOCKS];
    // per down block i (up block i uses index nblocks - 1 - i unless stated)
    int down_cross[UNET_MAX_BLOCKS];  // CrossAttnDownBlock2D (1) or DownBlock2D (0)
    int up_cross[UNET_MAX_BLOCKS];    // per up block: CrossAttnUpBlock2D (1) or UpBlock2D (0)
    int layers[UNET_MAX_BLOCKS];      // layers_per_block
    int heads[UNET_MAX_BLOCKS];       // num_attention_heads or attention_head_dim
    int depth[UNET_MAX_BLOCKS];       // transformer_layers_per_block
    int up_depth[UNET_MAX_BLOCKS];    // per up block: reverse_transformer_layers_per_block
    int cross_dim[UNET_MAX_BLOCKS];   // cross_attention_dim
    int use_linear_projection;
    int norm_num_groups;
    float norm_eps;
    int flip_sin_to_cos;
    float freq_shift;
    int time_embed_dim;                         // 4 * block_out_channels[0]
    int addition_time_embed_dim;                // SDXL "text_time": 256; 0 without an add_embedding
    int projection_class_embeddings_input_dim;  // SDXL: pooled width + 6 * addition_time_embed_dim
} UnetConfig;

// Reads and checks a config (diffusers' config.json keys); anything storyrun cannot compute
// (other block types, class embeddings, other time embeddings, ...) is an error naming the
// file, line and key. Returns 0, or -1 with a message.
int unet_config_parse(UnetConfig *cfg, const JsonDoc *doc, char *err, size_t errlen);
// The same for w's "unet" component.
int unet_config(UnetConfig *cfg, const Weights *w, char *err, size_t errlen);

typedef struct {
    Tensor w, b;  // b.data NULL when absent; conv weights (Co, Ci, k, k), linear (out, in)
} UnetParam;

// diffusers' Attention as the UNet uses it.
typedef struct {
    UnetParam to_q, to_k, to_v;  // (inner, C) and (inner, C_kv); no bias
    UnetParam to_out;            // to_out.0: (C, inner) + bias
    int heads, head_dim;         // inner = heads * head_dim = C
} UnetAttention;

typedef struct {
    UnetParam norm1, norm2, norm3;  // LayerNorm (C), eps 1e-5
    UnetAttention attn1, attn2;
    UnetParam ff_in, ff_out;  // ff.net.0.proj (8C, C) GEGLU, ff.net.2 (C, 4C)
} UnetTransformerBlock;

typedef struct {
    int channels, heads, depth;
    UnetParam norm;                // GroupNorm(norm_num_groups, C, eps 1e-6)
    UnetParam proj_in, proj_out;   // (C, C) views (1x1 conv weights reshaped)
    UnetTransformerBlock *blocks;  // depth (host array)
} UnetTransformer;

typedef struct {
    int cin, cout;
    UnetParam norm1, conv1, time_emb_proj, norm2, conv2,
        conv_shortcut;  // shortcut: w.data NULL if none
} UnetResnet;

typedef struct {
    int nlayers, cross, resample;  // resample: a downsampler / upsampler follows
    int cout;
    UnetResnet res[UNET_MAX_LAYERS];
    UnetTransformer attn[UNET_MAX_LAYERS];  // when cross
    UnetParam sample_conv;                  // downsamplers.0.conv / upsamplers.0.conv
} UnetBlock;

typedef struct {
    UnetConfig cfg;
    DType dtype;
    Device dev;
    UnetParam conv_in, time_1, time_2, add_1, add_2, norm_out, conv_out;
    UnetBlock down[UNET_MAX_BLOCKS], up[UNET_MAX_BLOCKS];
    UnetResnet mid_res[2];
    UnetTransformer mid_attn;
} Unet;

// Where a weight comes from: fills *out (allocated from arena, dtype dt) with the tensor
// named `name` (diffusers name within the unet) of exactly `ndim` dims `shape`. Returns 0,
// or -1 with a message.
typedef int (*UnetTensorSource)(void *ctx, const char *name, int ndim, const int64_t *shape,
                                Arena *arena, DType dt, Tensor *out, char *err, size_t errlen);

// Loads every weight of cfg's architecture from src into `arena` (host or device) in dt (the
// CPU computes in f32 only). Returns 0, or -1 with a message (the first failing tensor).
int unet_load_source(Unet *m, const UnetConfig *cfg, UnetTensorSource src, void *ctx, Arena *arena,
                     DType dt, char *err, size_t errlen);
// unet_config + unet_load_source from w's "unet" component.
int unet_load(Unet *m, const Weights *w, Arena *arena, DType dt, char *err, size_t errlen);
void unet_free(Unet *m);  // host arrays; the tensors go with their arena
// The model's structure with no weights behind it (tensors point nowhere): enough for
// unet_scratch_bytes and unet_self_attn_sites, e.g. to estimate memory before loading.
int unet_load_shapes(Unet *m, const UnetConfig *cfg, DType dt, Device dev, char *err,
                     size_t errlen);
// Bytes of weights arena unet_load takes (alignment included).
size_t unet_weight_bytes(const UnetConfig *cfg, DType dt);
// Number of weights (parameters) of cfg's architecture.
int64_t unet_param_count(const UnetConfig *cfg);

// ---- the self-attention seam ----------------------------------------------------------
typedef enum { UNET_DOWN = 0, UNET_MID = 1, UNET_UP = 2 } UnetBlockKind;

typedef struct {
    UnetBlockKind kind;
    int block;          // index in down_blocks / up_blocks (0 in the mid block)
    int attention;      // index in the block's attentions
    int transformer;    // index in that Transformer2DModel's transformer_blocks
    int layer;          // running index over all attn1 layers in forward order
    int height, width;  // token grid: L = height * width
    int step;           // UnetInputs.step
} UnetAttnSite;

typedef void (*UnetSelfAttnFn)(void *ctx, const UnetAttnSite *site, Tensor *out,
                               const Tensor *x_normed, const UnetAttention *attn, Arena *scratch);

// out (B, Lq, C) = to_out(attention(to_q(x), keys/values)) where the keys and values are
// to_k / to_v of kv[0], ..., kv[n-1] taken as one sequence in that order; kv[i] is
// (Bk, Lk_i, C_kv) with Bk == B or 1 (1: the same tokens for every batch row). n <= 15.
void unet_attention(const UnetAttention *a, Tensor *out, const Tensor *x, const Tensor *const *kv,
                    int n, Arena *scratch);
// The plain attn1: unet_attention with kv = {x_normed}.
void unet_self_attn_default(void *ctx, const UnetAttnSite *site, Tensor *out,
                            const Tensor *x_normed, const UnetAttention *attn, Arena *scratch);

// ---- the cross-attention seam -----------------------------------------------------------
// Every attn2 call goes through UnetInputs.cross_attn (NULL: plain cross-attention). It gets
// the same site as the block's attn1 (site->layer is the transformer block's running index),
// x_normed (B, H*W, C) after norm2, the layer's attn2 weights, the UNet's context (B, L,
// cross_attention_dim) and writes attn2's output (after to_out.0) to out (B, H*W, C); scratch
// as for self_attn. IP-Adapter's decoupled image cross-attention (models/ip_adapter.h) is one.
typedef void (*UnetCrossAttnFn)(void *ctx, const UnetAttnSite *site, Tensor *out,
                                const Tensor *x_normed, const UnetAttention *attn,
                                const Tensor *context, Arena *scratch);
// The plain attn2: unet_attention with kv = {context}.
void unet_cross_attn_default(void *ctx, const UnetAttnSite *site, Tensor *out,
                             const Tensor *x_normed, const UnetAttention *attn,
                             const Tensor *context, Arena *scratch);

// ---- the layer seam ----------------------------------------------------------------------
// UnetInputs.layer_fn (NULL: none) is called on the backbone features h (B, C, H, W), in
// place, after every layer of every block: in down and up blocks after layer j's resnet (and
// its transformer in cross-attention blocks), before the output becomes a skip and before
// any down/upsampler; in the mid block after its transformer, before resnets.1. These are
// the places where AnimateDiff's UNetMotionModel runs its motion modules (models/unet_video.h).
// scratch as for self_attn. Dry runs (unet_scratch_bytes) do not call it.
typedef struct {
    UnetBlockKind kind;
    int block;  // index in down_blocks / up_blocks (0 in the mid block)
    int layer;  // the layer (resnet) index within the block (0 in the mid block)
    int step;   // UnetInputs.step
} UnetLayerSite;
typedef void (*UnetLayerFn)(void *ctx, const UnetLayerSite *site, Tensor *h, Arena *scratch);

// Number of attn1 layers (sites) of a forward pass.
int unet_self_attn_layers(const Unet *m);
// Every site of a forward pass over an H x W latent, in forward order, into sites
// (unet_self_attn_layers entries; step 0). Returns their number, or -1 when H x W does
// not fit the UNet. Nothing is computed.
int unet_self_attn_sites(const Unet *m, int H, int W, UnetAttnSite *sites);

// ---- forward --------------------------------------------------------------------------
typedef struct {
    // diffusers' FreeU guide: SD1.5 b1 1.2, b2 1.4, s1 0.9, s2 0.2; SD2.1 1.1, 1.2, 0.9, 0.2;
    // SDXL 1.1, 1.2, 0.6, 0.4
    float b1, b2, s1, s2;
} UnetFreeU;

typedef struct {
    const Tensor *sample;                 // (B, in_channels, H, W); both guidance halves in one B
    const float *timesteps;               // host, B values
    const Tensor *encoder_hidden_states;  // (B, L, cross_attention_dim)
    const Tensor *text_embeds;            // SDXL: (B, projection_dim - 6 * addition_time_embed_dim)
    const float *time_ids;                // SDXL: host (B, 6)
    const UnetFreeU *freeu;               // NULL: off
    UnetSelfAttnFn self_attn;             // NULL: unet_self_attn_default
    void *self_attn_ctx;
    UnetCrossAttnFn cross_attn;           // NULL: unet_cross_attn_default
    void *cross_attn_ctx;
    UnetLayerFn layer_fn;  // NULL: none (see the layer seam)
    void *layer_ctx;
    int step;  // handed to self_attn in the site
} UnetInputs;

// Runs the UNet: out (B, out_channels, H, W), preallocated in the model's dtype and device.
// Activations come from ws (released before returning). Returns 0, or -1 with a message
// when the inputs do not fit the model (shapes, sizes).
int unet_forward(const Unet *m, const UnetInputs *in, Tensor *out, Arena *ws, char *err,
                 size_t errlen);
// Bytes of ws that unet_forward needs for B rows of an H x W latent and a context of L tokens
// (the default self-attention; a hook adds its own needs).
size_t unet_scratch_bytes(const Unet *m, int B, int H, int W, int L);

// diffusers' fourier_filter(x, threshold, scale) on x (B, C, H, W), in place (any dtype and
// device; computed on the host in f32/f64).
void unet_fourier_filter(Tensor *x, int threshold, float scale);

#ifdef __cplusplus
}
#endif

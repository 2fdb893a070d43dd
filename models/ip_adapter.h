// models/ip_adapter.h: IP-Adapter (plain, "ip-adapter_sd15" / "ip-adapter_sdxl" layout) as
// diffusers 0.42 computes it: an image embedding becomes extra context tokens that every
// cross-attention (attn2) of the UNet attends to with its own keys and values, next to the
// text ("decoupled cross-attention").
//
//   image projection (ImageProjection):  image_embeds (N, D)
//       tokens = LayerNorm(reshape(proj(image_embeds), (N, 4, cross_dim)))   eps 1e-5
//   attn2 of every transformer block (IPAdapterAttnProcessor2_0, one adapter, no mask):
//       q = to_q(x)
//       h = attention(q, to_k(context), to_v(context))          the text, as before
//       h = h + scale * attention(q, to_k_ip(tokens), to_v_ip(tokens))
//       out = to_out.0(h)                                        to_out applies to the sum
//   scale == 0 skips the image branch (as diffusers does): the plain UNet, bit for bit.
//
// Checkpoint: one .safetensors file with the public keys
//   image_proj.proj.weight (4 * cross_dim, D), image_proj.proj.bias (4 * cross_dim),
//   image_proj.norm.weight / .bias (cross_dim),
//   ip_adapter.N.to_k_ip.weight, ip_adapter.N.to_v_ip.weight (C_layer, cross_dim)
// where N = 2k + 1 for the k-th attn2 in the order of diffusers' unet.attn_processors:
// all down blocks, then all up blocks, then the mid block (each block's attentions and
// transformer blocks in order). storyrun's forward order is down, mid, up; the loader maps
// one onto the other, so ip->to_k_ip[site->layer] is the layer's weight. Every other key is
// refused by name (IP-Adapter Plus' Resampler, FaceID's LoRA weights, full-face MLP: other
// architectures that this file does not compute). The number of tokens is 4, as diffusers
// fixes it for this projection.
//
// Use (the animate job, frames folded into the batch):
//   arena wa of ip_adapter_weight_bytes(&unet, D, dt)   D: the image embeddings' width
//   IpAdapter ip;  ip_adapter_load(&ip, &unet, "ip-adapter_sd15.safetensors", &wa, dt, ...);
//   Tensor tok = (B, 4, cross_dim) in the model's dtype and device;
//   ip_adapter_project(&ip, &tok, &image_embeds);      image_embeds (B, D): row b's embedding
//   IpAdapterRun run;
//   ip_adapter_bind(&run, &ip, &tok, 0.6f, &inputs);   sets inputs.cross_attn(_ctx)
//   ws sized unet_scratch_bytes(...) + ip_adapter_scratch_bytes(&ip, &unet, B, H, W, Bt, 4);
//   unet_forward(&unet, &inputs, &noise_pred, &ws, ...);
// Row b of the UNet's batch attends to row b of tok (or to row 0 for every b when tok has
// one row). With classifier-free guidance the caller stacks [uncond; cond] rows as for the
// text; diffusers' pipelines give the uncond rows the projection of a zero embedding
// (ip_adapter_project of zeros: the LayerNorm of proj.bias), not zero tokens. Several images
// per row (diffusers' num_images) are their token sets concatenated: (B, 4 * n, cross_dim).
// The hook composes with a self-attention hook (CSA) and touches nothing but attn2.
#pragma once
#include <stddef.h>

#include "kernels/tensor.h"
#include "models/safetensors.h"
#include "models/unet.h"

#ifdef __cplusplus
extern "C" {
#endif

#define IP_ADAPTER_TOKENS 4  // tokens per image of the plain ImageProjection

typedef struct {
    int num_tokens;  // IP_ADAPTER_TOKENS
    int embed_dim;   // D: the image encoder's projection width (1024 for ViT-H/14)
    int cross_dim;   // the UNet's cross_attention_dim
    int nlayers;     // attn2 layers = unet_self_attn_layers(unet)
    DType dtype;
    Device dev;
    UnetParam proj;  // image_proj.proj: (num_tokens * cross_dim, D) + bias
    UnetParam norm;  // image_proj.norm: LayerNorm (cross_dim)
    // per layer in storyrun's forward order (UnetAttnSite.layer): (C_layer, cross_dim), no bias
    UnetParam *to_k_ip, *to_v_ip;  // host arrays of nlayers
    int *file_index;               // per layer: the N of its ip_adapter.N keys
} IpAdapter;

// diffusers' key number N of the attn2 layers of `unet`, per forward-order layer, into
// index (unet_self_attn_layers entries). Returns the number of layers.
int ip_adapter_layer_numbers(const Unet *unet, int *index);

// Loads an IP-Adapter checkpoint for `unet` into arena (host or device) in dt. Every
// shape is checked against the UNet (cross_attention_dim, each layer's channels, the
// number of layers). Returns 0, or -1 with a message naming the file, the key and what
// was expected.
int ip_adapter_load(IpAdapter *ip, const Unet *unet, const char *path, Arena *arena, DType dt,
                    char *err, size_t errlen);
// The same from an open file (name: the path used in messages).
int ip_adapter_load_st(IpAdapter *ip, const Unet *unet, const SafeTensors *st, Arena *arena,
                       DType dt, char *err, size_t errlen);
// Bytes of arena ip_adapter_load takes for `unet` and image embedding width D.
size_t ip_adapter_weight_bytes(const Unet *unet, int embed_dim, DType dt);
void ip_adapter_free(IpAdapter *ip);  // host arrays; the tensors go with their arena

// tokens (N, num_tokens, cross_dim) = ImageProjection(image_embeds (N, D)); both in the
// adapter's dtype and device.
void ip_adapter_project(const IpAdapter *ip, Tensor *tokens, const Tensor *image_embeds);

// The attn2 hook's context: the adapter, the image tokens (Bt, T, cross_dim) with Bt == B
// (the UNet's batch) or 1, and the scale.
typedef struct {
    const IpAdapter *ip;
    const Tensor *tokens;
    float scale;
} IpAdapterRun;

// The UnetCrossAttnFn of IP-Adapter (ctx: an IpAdapterRun).
void ip_adapter_cross_attn(void *ctx, const UnetAttnSite *site, Tensor *out, const Tensor *x_normed,
                           const UnetAttention *attn, const Tensor *context, Arena *scratch);
// Fills run and points in->cross_attn / cross_attn_ctx at it.
void ip_adapter_bind(IpAdapterRun *run, const IpAdapter *ip, const Tensor *tokens, float scale,
                     UnetInputs *in);
// Bytes of scratch the hook needs on top of unet_scratch_bytes(unet, B, H, W, L), for
// token batches of Bt rows (1 or B) of T tokens each.
size_t ip_adapter_scratch_bytes(const IpAdapter *ip, const Unet *unet, int B, int H, int W, int Bt,
                                int T);

#ifdef __cplusplus
}
#endif

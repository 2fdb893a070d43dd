// models/weights_builtin.c: models built into storyrun, with seeded random weights made in
// memory, so that demos and tests need no downloads:
//
//   builtin:tiny-sd15   SD1.x architecture: UNet2DConditionModel (CrossAttnDownBlock2D +
//                       DownBlock2D, conv projections, 8 heads), AutoencoderKL, CLIPTextModel
//   builtin:tiny-animate  tiny-sd15's architecture (own seed) + an AnimateDiff motion adapter
//                       and an IP-Adapter (models/weights_builtin_animate.c)
//   builtin:tiny-sdxl   SDXL architecture: the UNet with linear projections, transformer
//                       depth (1, 2), text_time add_embedding; two text encoders (CLIP +
//                       OpenCLIP-style with projection)
//
// The configs are those of tests/golden/make_tiny_models.py's tiny models (widths 16/32,
// 8 groups, real CLIP vocabulary of 49408 ids so that real prompts tokenize), the
// tokenizers storyrun's shipped CLIP vocabulary. Every tensor a component's config implies
// is enumerated from the config with its shape (the diffusers / transformers module trees),
// then filled from a counter-based generator keyed by (model seed, tensor name):
//   conv and linear weights and biases  U(-1/sqrt(fan_in), 1/sqrt(fan_in)), PyTorch's
//                                       default (kaiming_uniform with a = sqrt(5))
//   norm weights / biases               1 / 0
//   token and position embeddings       uniform with std 0.02 (CLIP's initializer range)
// Only integer arithmetic and one sqrt per tensor: the same bytes on every machine.
// Each component is one in-memory safetensors image (F32) opened with st_open_memory.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "models/animate_weights.h"
#include "models/weights_impl.h"
#include "runner/check.h"

// builtin:tiny-animate's motion adapter and IP-Adapter come from
// models/weights_builtin_animate.c, which needs the video models; programs linked without
// them (the weights tests) see no definition here and those two components are unknown.
#pragma weak wbuiltin_animate_image

// ---- configs (diffusers / transformers config.json keys) ------------------------------

#define UNET_COMMON                                                                             \
    "\"_class_name\":\"UNet2DConditionModel\",\"act_fn\":\"silu\",\"addition_embed_type_num_"   \
    "heads\":64,\"attention_type\":\"default\",\"block_out_channels\":[16,32],\"center_input_"  \
    "sample\":false,\"class_embed_type\":null,\"class_embeddings_concat\":false,\"conv_in_"     \
    "kernel\":3,\"conv_out_kernel\":3,\"cross_attention_norm\":null,\"downsample_padding\":1,"  \
    "\"dropout\":0.0,\"dual_cross_attention\":false,\"encoder_hid_dim\":null,\"encoder_hid_"    \
    "dim_type\":null,\"flip_sin_to_cos\":true,\"freq_shift\":0,\"in_channels\":4,\"layers_per_" \
    "block\":2,\"mid_block_only_cross_attention\":null,\"mid_block_scale_factor\":1,\"mid_"     \
    "block_type\":\"UNetMidBlock2DCrossAttn\",\"norm_eps\":1e-05,\"norm_num_groups\":8,\"num_"  \
    "attention_heads\":null,\"num_class_embeds\":null,\"only_cross_attention\":false,\"out_"    \
    "channels\":4,\"resnet_out_scale_factor\":1.0,\"resnet_skip_time_act\":false,\"resnet_"     \
    "time_scale_shift\":\"default\",\"reverse_transformer_layers_per_block\":null,\"time_"      \
    "cond_proj_dim\":null,\"time_embedding_act_fn\":null,\"time_embedding_dim\":null,\"time_"   \
    "embedding_type\":\"positional\",\"timestep_post_act\":null,\"upcast_attention\":false"

static const char unet_sd15[] =
    "{" UNET_COMMON
    ",\"addition_embed_type\":null,\"addition_time_embed_dim\":null,\"attention_head_dim\":8,"
    "\"cross_attention_dim\":32,\"down_block_types\":[\"CrossAttnDownBlock2D\",\"DownBlock2D\"],"
    "\"projection_class_embeddings_input_dim\":null,\"sample_size\":64,"
    "\"transformer_layers_per_block\":1,\"up_block_types\":[\"UpBlock2D\",\"CrossAttnUpBlock2D\"],"
    "\"use_linear_projection\":false}";

// context 48 = text_encoder 32 + text_encoder_2 16; add_embedding input = 6 * 8 + pooled 24
static const char unet_sdxl[] =
    "{" UNET_COMMON
    ",\"addition_embed_type\":\"text_time\",\"addition_time_embed_dim\":8,"
    "\"attention_head_dim\":[2,4],\"cross_attention_dim\":48,"
    "\"down_block_types\":[\"DownBlock2D\",\"CrossAttnDownBlock2D\"],"
    "\"projection_class_embeddings_input_dim\":72,\"sample_size\":128,"
    "\"transformer_layers_per_block\":[1,2],\"up_block_types\":[\"CrossAttnUpBlock2D\","
    "\"UpBlock2D\"],\"use_linear_projection\":true}";

#define VAE_CONFIG(sample, scaling)                                                            \
    "{\"_class_name\":\"AutoencoderKL\",\"act_fn\":\"silu\",\"block_out_channels\":[16,32],"   \
    "\"down_block_types\":[\"DownEncoderBlock2D\",\"DownEncoderBlock2D\"],\"force_upcast\":"   \
    "true,\"in_channels\":3,\"latent_channels\":4,\"latents_mean\":null,\"latents_std\":null," \
    "\"layers_per_block\":1,\"mid_block_add_attention\":true,\"norm_num_groups\":8,\"out_"     \
    "channels\":3,\"sample_size\":" sample ",\"scaling_factor\":" scaling                      \
    ",\"shift_factor\":null,\"up_block_types\":[\"UpDecoderBlock2D\",\"UpDecoderBlock2D\"],"   \
    "\"use_post_quant_conv\":true,\"use_quant_conv\":true}"

// bos/eos/pad ids as the published SD text encoder configs have them
#define CLIP_CONFIG(arch, act, hidden, inter, heads, proj)                                  \
    "{\"architectures\":[\"" arch                                                           \
    "\"],\"attention_dropout\":0.0,\"bos_token_id\":0,\"eos_"                               \
    "token_id\":2,\"hidden_act\":\"" act "\",\"hidden_size\":" hidden                       \
    ",\"initializer_factor\":"                                                              \
    "1.0,\"initializer_range\":0.02,\"intermediate_size\":" inter                           \
    ",\"layer_norm_eps\":1e-05,"                                                            \
    "\"max_position_embeddings\":77,\"model_type\":\"clip_text_model\",\"num_attention_"    \
    "heads\":" heads ",\"num_hidden_layers\":2,\"pad_token_id\":1,\"projection_dim\":" proj \
    ",\"vocab_size\":49408}"

typedef struct {
    const char *component, *config;
} BuiltinPart;

typedef struct {
    const char *name;
    ModelFamily family;
    uint64_t seed;
    BuiltinPart parts[6];
} BuiltinModel;

// builtin:tiny-animate's extra components (models/animate_weights.h)
static const char motion_tiny[] =
    "{\"_class_name\":\"MotionAdapter\",\"block_out_channels\":[16,32],\"conv_in_channels\":"
    "null,\"motion_layers_per_block\":2,\"motion_max_seq_length\":32,\"motion_mid_block_"
    "layers_per_block\":1,\"motion_norm_num_groups\":8,\"motion_num_attention_heads\":4,"
    "\"motion_transformer_layers_per_block\":1,\"use_motion_mid_block\":true}";
static const char ip_tiny[] = "{\"image_embed_dim\":16,\"num_tokens\":4}";

static const BuiltinModel builtin_models[] = {
    {"tiny-sd15",
     FAMILY_SD1,
     1501,
     {{"unet", unet_sd15},
      {"vae", VAE_CONFIG("512", "0.18215")},
      {"text_encoder", CLIP_CONFIG("CLIPTextModel", "quick_gelu", "32", "37", "4", "32")}}},
    {"tiny-animate",
     FAMILY_SD1,
     3001,
     {{"unet", unet_sd15},
      {"vae", VAE_CONFIG("512", "0.18215")},
      {"text_encoder", CLIP_CONFIG("CLIPTextModel", "quick_gelu", "32", "37", "4", "32")},
      {"motion_adapter", motion_tiny},
      {"ip_adapter", ip_tiny}}},
    {"tiny-sdxl",
     FAMILY_SDXL,
     2001,
     {{"unet", unet_sdxl},
      {"vae", VAE_CONFIG("1024", "0.13025")},
      {"text_encoder", CLIP_CONFIG("CLIPTextModel", "quick_gelu", "32", "37", "4", "32")},
      {"text_encoder_2",
       CLIP_CONFIG("CLIPTextModelWithProjection", "gelu", "16", "23", "2", "24")}}},
};
enum { N_BUILTIN = sizeof builtin_models / sizeof *builtin_models };

// ---- the tensor list ----------------------------------------------------------------

typedef enum { P_LINEAR, P_BIAS, P_ONES, P_ZEROS, P_EMBED } ParamKind;

typedef struct {
    char name[160];
    int ndim;
    int64_t shape[4];
    ParamKind kind;
    int64_t fan_in;  // P_LINEAR / P_BIAS: the layer's input count
} Param;

typedef struct {
    Param *p;
    int n, cap;
} Params;

// Tensor names (fatal when one does not fit: the names here are short and fixed).
#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
static void
namef(char *buf, size_t n, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(buf, n, fmt, ap);
    va_end(ap);
    if (k < 0 || (size_t)k >= n) STORY_FATAL("built-in tensor name too long: %s...", buf);
}
#define PREFIX(buf, ...) namef((buf), sizeof(buf), __VA_ARGS__)

static void add(Params *ps, ParamKind kind, int64_t fan_in, const char *prefix, const char *suffix,
                int ndim, int64_t d0, int64_t d1, int64_t d2, int64_t d3) {
    if (ps->n == ps->cap) {
        ps->cap = ps->cap ? 2 * ps->cap : 256;
        ps->p = realloc(ps->p, (size_t)ps->cap * sizeof *ps->p);
        if (!ps->p) STORY_FATAL("out of memory");
    }
    Param *p = &ps->p[ps->n++];
    memset(p, 0, sizeof *p);
    namef(p->name, sizeof p->name, "%s%s", prefix, suffix);
    p->kind = kind;
    p->fan_in = fan_in;
    p->ndim = ndim;
    const int64_t d[4] = {d0, d1, d2, d3};
    for (int i = 0; i < ndim; i++) p->shape[i] = d[i];
}

// nn.Linear(in, out): weight (out, in), bias (out)
static void linear(Params *ps, const char *p, int64_t out, int64_t in, bool bias) {
    add(ps, P_LINEAR, in, p, ".weight", 2, out, in, 0, 0);
    if (bias) add(ps, P_BIAS, in, p, ".bias", 1, out, 0, 0, 0);
}

// nn.Conv2d(in, out, k): weight (out, in, k, k), bias (out)
static void conv(Params *ps, const char *p, int64_t out, int64_t in, int64_t k) {
    add(ps, P_LINEAR, in * k * k, p, ".weight", 4, out, in, k, k);
    add(ps, P_BIAS, in * k * k, p, ".bias", 1, out, 0, 0, 0);
}

// GroupNorm / LayerNorm with an affine (c) weight and bias
static void norm(Params *ps, const char *p, int64_t c) {
    add(ps, P_ONES, 0, p, ".weight", 1, c, 0, 0, 0);
    add(ps, P_ZEROS, 0, p, ".bias", 1, c, 0, 0, 0);
}

// ---- config values --------------------------------------------------------------------

enum { MAXB = 8 };

static const JsonValue *cfg_get(const JsonDoc *d, const char *key) {
    return json_get(json_root(d), key);
}

static int64_t cfg_int(const JsonDoc *d, const char *key, int64_t dflt) {
    const JsonValue *v = cfg_get(d, key);
    return v && v->type == JSON_NUMBER && v->is_int ? v->i : dflt;
}

// An int or a list of ints, as nb values per block (a single value repeats).
static void cfg_per_block(const JsonDoc *d, const char *key, int64_t dflt, int64_t *out, int nb) {
    const JsonValue *v = cfg_get(d, key);
    for (int i = 0; i < nb; i++) {
        const JsonValue *x = v && v->type == JSON_ARRAY ? json_at(v, (size_t)i) : v;
        out[i] = x && x->type == JSON_NUMBER && x->is_int ? x->i : dflt;
    }
}

static bool cfg_true(const JsonDoc *d, const char *key) {
    const JsonValue *v = cfg_get(d, key);
    return v && v->type == JSON_BOOL && v->boolean;
}

static bool block_has_attn(const JsonDoc *d, const char *key, int i) {
    const JsonValue *t = json_at(cfg_get(d, key), (size_t)i);
    return t && t->type == JSON_STRING && strstr(t->str, "CrossAttn");
}

// ---- module trees -----------------------------------------------------------------------

// diffusers ResnetBlock2D (temb > 0: with time_emb_proj)
static void resnet(Params *ps, const char *p, int64_t in, int64_t out, int64_t temb) {
    char q[160];
    PREFIX(q, "%s.norm1", p), norm(ps, q, in);
    PREFIX(q, "%s.conv1", p), conv(ps, q, out, in, 3);
    if (temb) PREFIX(q, "%s.time_emb_proj", p), linear(ps, q, out, temb, true);
    PREFIX(q, "%s.norm2", p), norm(ps, q, out);
    PREFIX(q, "%s.conv2", p), conv(ps, q, out, out, 3);
    if (in != out) PREFIX(q, "%s.conv_shortcut", p), conv(ps, q, out, in, 1);
}

// diffusers Transformer2DModel: GroupNorm, proj_in, `depth` BasicTransformerBlocks
// (self-attention, cross-attention to ctx, GEGLU feed-forward 4c), proj_out.
static void transformer(Params *ps, const char *p, int64_t c, int64_t depth, int64_t ctx,
                        bool linear_proj) {
    char q[200];
    PREFIX(q, "%s.norm", p), norm(ps, q, c);
    for (int io = 0; io < 2; io++) {
        PREFIX(q, "%s.%s", p, io ? "proj_out" : "proj_in");
        if (linear_proj)
            linear(ps, q, c, c, true);
        else
            conv(ps, q, c, c, 1);
    }
    for (int64_t t = 0; t < depth; t++) {
        char b[160];
        PREFIX(b, "%s.transformer_blocks.%lld", p, (long long)t);
        for (int a = 1; a <= 2; a++) {
            int64_t kv = a == 1 ? c : ctx;
            PREFIX(q, "%s.norm%d", b, a), norm(ps, q, c);
            PREFIX(q, "%s.attn%d.to_q", b, a), linear(ps, q, c, c, false);
            PREFIX(q, "%s.attn%d.to_k", b, a), linear(ps, q, c, kv, false);
            PREFIX(q, "%s.attn%d.to_v", b, a), linear(ps, q, c, kv, false);
            PREFIX(q, "%s.attn%d.to_out.0", b, a), linear(ps, q, c, c, true);
        }
        PREFIX(q, "%s.norm3", b), norm(ps, q, c);
        PREFIX(q, "%s.ff.net.0.proj", b), linear(ps, q, 8 * c, c, true);
        PREFIX(q, "%s.ff.net.2", b), linear(ps, q, c, 4 * c, true);
    }
}

// diffusers UNet2DConditionModel
static void unet_params(Params *ps, const JsonDoc *d) {
    int64_t ch[MAXB], depth[MAXB], up_depth[MAXB];
    const JsonValue *bo = cfg_get(d, "block_out_channels");
    int nb = (int)json_count(bo);
    if (nb > MAXB) nb = MAXB;
    cfg_per_block(d, "block_out_channels", 0, ch, nb);
    cfg_per_block(d, "transformer_layers_per_block", 1, depth, nb);
    for (int i = 0; i < nb; i++) up_depth[i] = depth[nb - 1 - i];
    if (cfg_get(d, "reverse_transformer_layers_per_block") &&
        cfg_get(d, "reverse_transformer_layers_per_block")->type == JSON_ARRAY)
        cfg_per_block(d, "reverse_transformer_layers_per_block", 1, up_depth, nb);
    int64_t L = cfg_int(d, "layers_per_block", 2), in_ch = cfg_int(d, "in_channels", 4);
    int64_t out_ch = cfg_int(d, "out_channels", 4), ctx = cfg_int(d, "cross_attention_dim", 768);
    int64_t temb = ch[0] * 4;
    bool lin = cfg_true(d, "use_linear_projection");
    char p[160];
    conv(ps, "conv_in", ch[0], in_ch, cfg_int(d, "conv_in_kernel", 3));
    linear(ps, "time_embedding.linear_1", temb, ch[0], true);
    linear(ps, "time_embedding.linear_2", temb, temb, true);
    const JsonValue *add_type = cfg_get(d, "addition_embed_type");
    if (add_type && add_type->type == JSON_STRING && !strcmp(add_type->str, "text_time")) {
        linear(ps, "add_embedding.linear_1", temb,
               cfg_int(d, "projection_class_embeddings_input_dim", 0), true);
        linear(ps, "add_embedding.linear_2", temb, temb, true);
    }
    for (int i = 0; i < nb; i++) {
        bool attn = block_has_attn(d, "down_block_types", i);
        for (int64_t j = 0; j < L; j++) {
            int64_t in = j ? ch[i] : i ? ch[i - 1] : ch[0];
            PREFIX(p, "down_blocks.%d.resnets.%lld", i, (long long)j),
                resnet(ps, p, in, ch[i], temb);
            if (attn)
                PREFIX(p, "down_blocks.%d.attentions.%lld", i, (long long)j),
                    transformer(ps, p, ch[i], depth[i], ctx, lin);
        }
        if (i + 1 < nb)
            PREFIX(p, "down_blocks.%d.downsamplers.0.conv", i), conv(ps, p, ch[i], ch[i], 3);
    }
    int64_t top = ch[nb - 1];
    resnet(ps, "mid_block.resnets.0", top, top, temb);
    transformer(ps, "mid_block.attentions.0", top, depth[nb - 1], ctx, lin);
    resnet(ps, "mid_block.resnets.1", top, top, temb);
    for (int i = 0; i < nb; i++) {  // from the lowest resolution up
        int64_t out = ch[nb - 1 - i], prev = ch[nb - 1 - (i ? i - 1 : 0)];
        int64_t skip_in = ch[nb - 1 - (i + 1 < nb ? i + 1 : nb - 1)];
        bool attn = block_has_attn(d, "up_block_types", i);
        for (int64_t j = 0; j <= L; j++) {
            int64_t res_in = j ? out : prev, skip = j == L ? skip_in : out;
            PREFIX(p, "up_blocks.%d.resnets.%lld", i, (long long)j),
                resnet(ps, p, res_in + skip, out, temb);
            if (attn)
                PREFIX(p, "up_blocks.%d.attentions.%lld", i, (long long)j),
                    transformer(ps, p, out, up_depth[i], ctx, lin);
        }
        if (i + 1 < nb) PREFIX(p, "up_blocks.%d.upsamplers.0.conv", i), conv(ps, p, out, out, 3);
    }
    norm(ps, "conv_norm_out", ch[0]);
    conv(ps, "conv_out", out_ch, ch[0], cfg_int(d, "conv_out_kernel", 3));
}

// diffusers UNetMidBlock2D of the VAE: resnet, single-head attention (biased q/k/v), resnet
static void vae_mid(Params *ps, const char *part, int64_t c) {
    char p[160];
    PREFIX(p, "%s.mid_block.resnets.0", part), resnet(ps, p, c, c, 0);
    PREFIX(p, "%s.mid_block.attentions.0.group_norm", part), norm(ps, p, c);
    static const char *proj[] = {"to_q", "to_k", "to_v", "to_out.0"};
    for (int k = 0; k < 4; k++)
        PREFIX(p, "%s.mid_block.attentions.0.%s", part, proj[k]), linear(ps, p, c, c, true);
    PREFIX(p, "%s.mid_block.resnets.1", part), resnet(ps, p, c, c, 0);
}

// diffusers AutoencoderKL
static void vae_params(Params *ps, const JsonDoc *d) {
    int64_t ch[MAXB];
    int nb = (int)json_count(cfg_get(d, "block_out_channels"));
    if (nb > MAXB) nb = MAXB;
    cfg_per_block(d, "block_out_channels", 0, ch, nb);
    int64_t L = cfg_int(d, "layers_per_block", 1), lat = cfg_int(d, "latent_channels", 4);
    int64_t in_ch = cfg_int(d, "in_channels", 3), out_ch = cfg_int(d, "out_channels", 3);
    char p[160];
    conv(ps, "encoder.conv_in", ch[0], in_ch, 3);
    for (int i = 0; i < nb; i++) {
        for (int64_t j = 0; j < L; j++) {
            int64_t in = j ? ch[i] : i ? ch[i - 1] : ch[0];
            PREFIX(p, "encoder.down_blocks.%d.resnets.%lld", i, (long long)j),
                resnet(ps, p, in, ch[i], 0);
        }
        if (i + 1 < nb)
            PREFIX(p, "encoder.down_blocks.%d.downsamplers.0.conv", i),
                conv(ps, p, ch[i], ch[i], 3);
    }
    vae_mid(ps, "encoder", ch[nb - 1]);
    norm(ps, "encoder.conv_norm_out", ch[nb - 1]);
    conv(ps, "encoder.conv_out", 2 * lat, ch[nb - 1], 3);
    conv(ps, "quant_conv", 2 * lat, 2 * lat, 1);
    conv(ps, "post_quant_conv", lat, lat, 1);
    conv(ps, "decoder.conv_in", ch[nb - 1], lat, 3);
    vae_mid(ps, "decoder", ch[nb - 1]);
    for (int i = 0; i < nb; i++) {
        int64_t out = ch[nb - 1 - i], prev = ch[nb - 1 - (i ? i - 1 : 0)];
        for (int64_t j = 0; j <= L; j++)
            PREFIX(p, "decoder.up_blocks.%d.resnets.%lld", i, (long long)j),
                resnet(ps, p, j ? out : prev, out, 0);
        if (i + 1 < nb)
            PREFIX(p, "decoder.up_blocks.%d.upsamplers.0.conv", i), conv(ps, p, out, out, 3);
    }
    norm(ps, "decoder.conv_norm_out", ch[0]);
    conv(ps, "decoder.conv_out", out_ch, ch[0], 3);
}

// transformers CLIPTextModel / CLIPTextModelWithProjection
static void clip_params(Params *ps, const JsonDoc *d, bool projection) {
    int64_t C = cfg_int(d, "hidden_size", 768), I = cfg_int(d, "intermediate_size", 3072);
    int64_t V = cfg_int(d, "vocab_size", 49408), P = cfg_int(d, "max_position_embeddings", 77);
    int64_t layers = cfg_int(d, "num_hidden_layers", 12);
    add(ps, P_EMBED, 0, "text_model.embeddings.token_embedding", ".weight", 2, V, C, 0, 0);
    add(ps, P_EMBED, 0, "text_model.embeddings.position_embedding", ".weight", 2, P, C, 0, 0);
    char p[160];
    for (int64_t l = 0; l < layers; l++) {
        static const char *proj[] = {"q_proj", "k_proj", "v_proj", "out_proj"};
        for (int k = 0; k < 4; k++)
            PREFIX(p, "text_model.encoder.layers.%lld.self_attn.%s", (long long)l, proj[k]),
                linear(ps, p, C, C, true);
        PREFIX(p, "text_model.encoder.layers.%lld.layer_norm1", (long long)l), norm(ps, p, C);
        PREFIX(p, "text_model.encoder.layers.%lld.mlp.fc1", (long long)l),
            linear(ps, p, I, C, true);
        PREFIX(p, "text_model.encoder.layers.%lld.mlp.fc2", (long long)l),
            linear(ps, p, C, I, true);
        PREFIX(p, "text_model.encoder.layers.%lld.layer_norm2", (long long)l), norm(ps, p, C);
    }
    norm(ps, "text_model.final_layer_norm", C);
    if (projection) linear(ps, "text_projection", cfg_int(d, "projection_dim", 768), C, false);
}

// ---- values -------------------------------------------------------------------------------

static uint64_t splitmix64(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t fnv1a(const char *s) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
    return h;
}

// Fills p's values: uniform in (-bound, bound) from the stream keyed by (seed, name).
static void fill(const Param *p, uint64_t seed, float *dst, int64_t n) {
    if (p->kind == P_ONES || p->kind == P_ZEROS) {
        for (int64_t i = 0; i < n; i++) dst[i] = p->kind == P_ONES ? 1.0f : 0.0f;
        return;
    }
    // embeddings: std 0.02 = bound / sqrt(3)
    float bound = p->kind == P_EMBED ? 0.02f * sqrtf(3.0f) : 1.0f / sqrtf((float)p->fan_in);
    uint64_t s = seed ^ fnv1a(p->name);
    for (int64_t i = 0; i < n; i++) {
        float u = (float)(splitmix64(&s) >> 40) * (1.0f / 16777216.0f);  // [0, 1), 24 bits
        dst[i] = (2.0f * u - 1.0f) * bound;
    }
}

// A safetensors image (F32, sorted by name) of the params; *size its bytes.
static uint8_t *build_image(const Params *ps, uint64_t seed, size_t *size) {
    WBuf h = {0};
    uint64_t off = 0;
    wb_printf(&h, "{\"__metadata__\":{\"format\":\"pt\",\"storyrun.builtin.seed\":\"%llu\"}",
              (unsigned long long)seed);
    for (int i = 0; i < ps->n; i++) {
        const Param *p = &ps->p[i];
        int64_t n = 1;
        wb_printf(&h, ",");
        wb_json_string(&h, p->name);
        wb_printf(&h, ":{\"dtype\":\"F32\",\"shape\":[");
        for (int k = 0; k < p->ndim; k++) {
            wb_printf(&h, "%s%lld", k ? "," : "", (long long)p->shape[k]);
            n *= p->shape[k];
        }
        wb_printf(&h, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)off,
                  (unsigned long long)(off + 4 * (uint64_t)n));
        off += 4 * (uint64_t)n;
    }
    wb_printf(&h, "}");
    while ((8 + h.n) % 8) wb_printf(&h, " ");
    *size = 8 + h.n + off;
    uint8_t *img = mallocCheck(*size);
    uint64_t len = h.n;
    for (int k = 0; k < 8; k++) img[k] = (uint8_t)(len >> (8 * k));  // little-endian
    memcpy(img + 8, h.s, h.n);
    float *data = (float *)(img + 8 + h.n);  // 8 + h.n is a multiple of 8
    for (int i = 0; i < ps->n; i++) {
        const Param *p = &ps->p[i];
        int64_t n = 1;
        for (int k = 0; k < p->ndim; k++) n *= p->shape[k];
        fill(p, seed, data, n);
        data += n;
    }
    free(h.s);
    return img;
}

// ---- opening ----------------------------------------------------------------------------

static int open_part(Weights *w, const BuiltinModel *m, const BuiltinPart *part, char *err,
                     size_t errlen) {
    WComponent *c = w_component(w, part->component, true);
    char file[128];
    snprintf(file, sizeof file, "builtin:%s/%s/config.json", m->name, part->component);
    JsonError je;
    c->config = json_parse(file, part->config, strlen(part->config), NULL, &je);
    if (!c->config) STORY_FATAL("built-in config %s does not parse: %s", file, je.msg);
    // one stream per component: its own tensor names key the values
    uint64_t seed = m->seed * 0x100000001b3ull ^ fnv1a(part->component);
    size_t size;
    uint8_t *image = NULL;
    const WComponent *uc = w_component_c(w, "unet");
    if (uc && wbuiltin_animate_image &&
        !wbuiltin_animate_image(part->component, c->config, uc->config, seed, &image, &size))
        goto add;
    Params ps = {0};
    if (!strcmp(part->component, "unet"))
        unet_params(&ps, c->config);
    else if (!strcmp(part->component, "vae"))
        vae_params(&ps, c->config);
    else
        clip_params(&ps, c->config, !strcmp(part->component, "text_encoder_2"));
    image = build_image(&ps, seed, &size);
    free(ps.p);
add:
    snprintf(file, sizeof file, "builtin:%s/%s", m->name, part->component);
    int f = w_add_memory(w, image, size, file, err, errlen);
    if (f < 0) return -1;
    const SafeTensors *st = &w->files[f];
    for (int i = 0; i < st_count(st); i++) {
        WTensor *t = w_add(c, st_entry(st, i)->name, f, st_entry(st, i));
        if (w_set_view(t, 0, NULL)) STORY_FATAL("built-in tensor %s: bad shape", t->name);
    }
    w_sort(c);
    return 0;
}

const char *wbuiltin_names(void) {
    return "builtin:tiny-sd15, builtin:tiny-animate, builtin:tiny-sdxl";
}

int wbuiltin_open(Weights *w, const char *name, char *err, size_t errlen) {
    const BuiltinModel *m = NULL;
    for (int i = 0; i < N_BUILTIN && !m; i++)
        if (!strcmp(name, builtin_models[i].name)) m = &builtin_models[i];
    if (!m)
        return w_err(err, errlen, "builtin:%s: no such built-in model (there are %s)", name,
                     wbuiltin_names());
    w->family = m->family;
    w->layout = LAYOUT_BUILTIN;
    for (int i = 0; i < 6 && m->parts[i].component; i++)
        if (open_part(w, m, &m->parts[i], err, errlen)) return -1;
    const char *clip = weights_clip_data_dir();
    WComponent *c = w_component(w, "tokenizer", true);
    if (clip) c->tok_dir = w_path_join(clip, "sd15");
    if (m->family == FAMILY_SDXL) {
        c = w_component(w, "tokenizer_2", true);
        if (clip) c->tok_dir = w_path_join(clip, "sdxl_2");
    }
    c = w_component(w, "scheduler", true);
    c->config = wcfg_scheduler(m->family);
    return 0;
}

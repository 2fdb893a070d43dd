// models/pipeline.h: text to image, in exactly the order of operations of diffusers 0.42's
// StableDiffusionPipeline (SD1.x, SD2.x) and StableDiffusionXLPipeline (SDXL) __call__:
//
//   1. conditioning (models/conditioning.h): context (rows, 77, C) = [negative; positive]
//      when guidance > 1 (do_classifier_free_guidance), else the positives; SDXL also
//      pooled text_embeds (rows, P) and add_time_ids (rows, 6)
//   2. scheduler.set_timesteps(steps) (models/scheduler.h)
//   3. latents (B, 4, H/f, W/f) = torch.randn(generator) * init_noise_sigma, the generator
//      torch.Generator("cpu").manual_seed(seed) (models/rng.h); f = the VAE's scale factor
//   4. per step i: x = cat([latents] * 2) with guidance, else latents;
//      x = scale_model_input(x, t_i); eps = unet(x, t_i, context[, text_embeds, time_ids])
//      in ONE pass over both guidance halves; eps = uncond + g (cond - uncond), then
//      rescale_noise_cfg when guidance_rescale > 0; ancestral noise (euler_a) drawn from
//      the same generator; latents = scheduler.step(eps, t_i, latents)
//   5. image = vae.decode(latents / scaling_factor) (SDXL: latents_mean/std when the VAE
//      config has them); the caller turns it into pixels (runner/image.h does it as
//      diffusers' image processor)
//
// Devices: on the CPU everything is f32. With dev == DEV_CUDA the text encoders and the
// UNet hold f16 weights and activations, the VAE the dtype vae_default_dtype picks (f32 for
// SD1.x/SD2.x/SDXL, whose VAEs overflow f16); the latents stay f32 (diffusers upcasts
// them in every scheduler step) and are converted at the UNet's input and output.
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "kernels/tensor.h"
#include "models/conditioning.h"
#include "models/scheduler.h"
#include "models/unet.h"
#include "models/vae.h"
#include "models/weights.h"

#ifdef __cplusplus
extern "C" {
#endif

// A sampler as the command line names it: a scheduler kind, with Karras sigmas or not.
typedef struct {
    SchedKind kind;
    int karras;
} PipelineSampler;

// "ddim, euler, euler_a, dpmpp_2m, dpmpp_2m_karras".
const char *pipeline_sampler_list(void);
// One of the names above (diffusers' class names are accepted too) into *out (may be
// NULL: only check). Returns 0, or -1 with a message listing the valid names and the
// closest one ("did you mean euler_a?").
int pipeline_sampler_parse(const char *name, PipelineSampler *out, char *err, size_t errlen);
// "euler_a", "dpmpp_2m_karras", ...
const char *pipeline_sampler_name(PipelineSampler s);

typedef struct {
    const Weights *w;
    ModelFamily family;
    Device dev;
    DType dt;      // text encoders and UNet
    DType vae_dt;  // VAE
    Conditioner cond;
    Unet unet;
    Vae vae;
    UnetConfig ucfg;
    SchedConfig sched_cfg;  // the model's scheduler config (sched_config_from_weights)
    int vae_factor;         // pixels per latent pixel (8 for the real models)
    int align;              // image sides must be multiples of this (VAE x UNet downsampling)
    int sample_size;        // the UNet config's sample_size (latent pixels), 0 if absent
    Arena weights;          // every weight, on dev
    size_t last_io_bytes, last_ws_bytes;  // the last call's working arenas (for reports)
} Pipeline;

// Loads the text encoders, the UNet and the VAE decoder of w onto dev. w must stay open
// while the pipeline is used. Returns 0, or -1 with a message.
int pipeline_load(Pipeline *p, const Weights *w, Device dev, char *err, size_t errlen);
void pipeline_free(Pipeline *p);
// The model's native image size (sample_size x the VAE factor; 512 when unknown).
void pipeline_default_size(const Pipeline *p, int *width, int *height);

typedef struct {
    const char *prompt;
    const char *negative;  // NULL: none given (SDXL then uses zeros, as diffusers does)
    uint64_t seed;         // torch.Generator("cpu").manual_seed(seed)
    int steps;             // num_inference_steps
    int width, height;     // pixels
    float guidance;        // guidance_scale; <= 1: no classifier-free guidance
    float guidance_rescale;
    PipelineSampler sampler;
    // Scheduler config keys that win over the model's (set fields only, as
    // sched_config_unset leaves the rest); NULL: none.
    const SchedConfig *sched_overrides;
    const UnetFreeU *freeu;  // NULL: off
    int tiled_vae;           // decode with diffusers' enable_tiling() tiles
    // Progress after each step: 1-based step, total, seconds this step took. May be NULL.
    void (*on_step)(void *ctx, int step, int steps, double seconds);
    void *ctx;
    // Optional: latents after each step i (B, 4, h, w), host f32, for tests. May be NULL.
    void (*on_latents)(void *ctx, int step, const Tensor *latents);
} PipelineRequest;

typedef struct {
    Tensor latents;       // (1, 4, h, w) host f32: the final latents (before the VAE's scaling)
    Tensor image;         // (1, 3, H, W) host f32: the decoded image, nominally in [-1, 1]
    Tensor init_latents;  // (1, 4, h, w) host f32: randn * init_noise_sigma
    int n_encoders;
    int prompt_tokens[COND_MAX_ENCODERS];  // the prompt's tokens per encoder, BOS/EOS included
    int max_tokens;                        // what the encoders read (77)
    double seconds;                        // the whole call
} PipelineOutput;

// Checks a request against the model (size alignment, steps, guidance) without running
// it. Returns 0, or -1 with a message that says what would be valid.
int pipeline_check(const Pipeline *p, const PipelineRequest *req, char *err, size_t errlen);
// Runs text to image. Returns 0 (out filled; free with pipeline_output_free), or -1 with
// a message.
int pipeline_txt2img(Pipeline *p, const PipelineRequest *req, PipelineOutput *out, char *err,
                     size_t errlen);
void pipeline_output_free(PipelineOutput *out);

// Several images in one call: B = n images denoised together (one UNet call per step over
// all of them, both guidance halves: rows [uncond 0..n-1; cond 0..n-1]). Each image has its
// own prompt and its own generator (torch.Generator seeded with seeds[i]) for its initial
// noise and ancestral noise, so image i equals pipeline_txt2img with prompt i and seed i when
// the self-attention is plain. req gives everything else (its prompt and seed are ignored).
typedef struct {
    int n;
    const char *const *prompts;  // (n)
    const uint64_t *seeds;       // (n)
    UnetSelfAttnFn self_attn;    // NULL: plain self-attention
    void *self_attn_ctx;
    size_t extra_scratch;  // bytes the hook takes from the scratch arena beyond plain attention
    void (*before_step)(void *self_attn_ctx, int step);  // may be NULL
    void (*after_step)(void *self_attn_ctx, int step);   // after the step's UNet call(s)
    // 1: one UNet call per image within each step (window mode: memory for one image's
    // activations however many images), before_image(ctx, image, step) before each.
    int per_image;
    void (*before_image)(void *self_attn_ctx, int image, int step);
} PipelineBatch;

// outs: n outputs. Returns 0, or -1 with a message (outs then hold nothing).
int pipeline_generate(Pipeline *p, const PipelineRequest *req, const PipelineBatch *b,
                      PipelineOutput *outs, char *err, size_t errlen);

#ifdef __cplusplus
}
#endif

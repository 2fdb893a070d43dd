// models/animate.h: one transition video between two story frames, with its ends anchored.
//
// A transition of F frames from image A to image B (both (3, H, W) in [-1, 1]):
//   1. z_A, z_B = vae.encode(A / B).latent_dist.mean * scaling_factor     (4, h, w) each
//   2. the text context of the pair's prompt, one row per frame: rows [negative x F;
//      prompt x F] with guidance (frames folded into the batch as diffusers'
//      UNetMotionModel folds them: row = half * F + frame)
//   3. IP-Adapter image tokens per frame (optional): frame i's cond row is the projection
//      of P_i (the transitions store's prediction for frame i); the uncond rows the
//      projection of a zero embedding, as diffusers' pipelines do
//   4. latents (F, 4, h, w) from torch.randn of shape (1, 4, F, h, w) (AnimateDiffPipeline's
//      layout: channels before frames) * init_noise_sigma
//   5. per step i: frames 0 and F-1 are replaced by add_noise(z_A / z_B, n, t_i), n the
//      initial noise of those frames, with the scheduler's own add_noise:
//        ddim      sqrt(acp[t_i]) z + sqrt(1 - acp[t_i]) n
//        euler(_a) z + sigma_i n
//        dpmpp_2m  alpha z + sigma_i alpha n, alpha = 1 / sqrt(sigma_i^2 + 1)
//      then one UNet call over all rows (unet_video_forward: the motion modules and the
//      IP-Adapter's attn2 hook see every frame of the call), guidance, scheduler step;
//      after the last step frames 0 and F-1 are exactly z_A and z_B (the latent
//      replacement of diffusers' StableDiffusionInpaintPipeline, with the two end frames
//      as the known region)
//   6. every frame decoded on its own: vae.decode(latents / scaling_factor)
// Frames therefore start and end on the VAE's reconstruction of A and B; the job puts
// the rendered pixels themselves at the ends when asked to (animate.keep_ends).
//
// Everything is drawn from one torch.Generator seeded with req->seed, in a fixed order, so
// a transition depends on (weights, images, embeddings, prompt, settings, seed) only.
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "kernels/tensor.h"
#include "models/conditioning.h"
#include "models/ip_adapter.h"
#include "models/pipeline.h"
#include "models/scheduler.h"
#include "models/unet.h"
#include "models/unet_video.h"
#include "models/vae.h"

#ifdef __cplusplus
extern "C" {
#endif

// The networks of a transition; the caller loads them (all on dev, the UNet and encoders
// in dt, the VAE in its own dtype with both the encoder and decoder).
typedef struct {
    Conditioner *cond;
    const Unet *unet;
    const Vae *vae;         // VAE_BOTH
    const IpAdapter *ip;    // NULL: text only
    float ip_scale;         // IP-Adapter scale (diffusers' set_ip_adapter_scale)
    // The motion modules (models/unet_video.h) over m->unet; NULL: the plain image UNet
    // (frames then only meet through the anchors and P_i).
    const UnetVideo *video;
    SchedConfig sched_cfg;  // the model's scheduler config
    Device dev;
    DType dt;
} AnimateModel;

typedef struct {
    int frames;                // F >= 2
    int width, height;         // pixels of A and B (multiples of the model's alignment)
    const float *start_image;  // (3, H, W) host f32 in [-1, 1]
    const float *end_image;
    const float *embeds;       // (F, D) host f32: P_1..P_F; NULL when model->ip is NULL
    const char *prompt;
    const char *negative;      // NULL: none
    uint64_t seed;
    int steps;
    float guidance;            // > 1: classifier-free guidance
    PipelineSampler sampler;
    void (*on_step)(void *ctx, int step, int steps);  // may be NULL
    void *ctx;
} AnimateRequest;

typedef struct {
    Tensor frames;   // (F, 3, H, W) host f32: the decoded frames, nominally in [-1, 1]
    Tensor latents;  // (F, 4, h, w) host f32: the final latents (scaled, as the UNet sees them)
    Tensor z_ends;   // (2, 4, h, w) host f32: z_A, z_B (scaled)
} AnimateOutput;

// Samples one transition. Returns 0 (out filled; free with animate_output_free), or -1
// with a message (sizes that do not fit the model, an embedding width other than the
// IP-Adapter's, memory).
int animate_transition(const AnimateModel *m, const AnimateRequest *req, AnimateOutput *out,
                       char *err, size_t errlen);
void animate_output_free(AnimateOutput *out);

// The add_noise coefficients of scheduler s at step i (x_i = a * x0 + b * noise), as above.
void animate_add_noise_coefs(const Scheduler *s, int i, double *a, double *b);

#ifdef __cplusplus
}
#endif

// models/scheduler.h: the samplers, as diffusers computes them.
//
//   ddim      DDIMScheduler
//   euler     EulerDiscreteScheduler
//   euler_a   EulerAncestralDiscreteScheduler
//   dpmpp_2m  DPMSolverMultistepScheduler (algorithm_type dpmsolver++, solver_order 2:
//             "DPM++ 2M"; use_karras_sigmas for "DPM++ 2M Karras")
//
// A sampler is plain data (timesteps, sigmas, the training schedule) plus three functions
// over tensors; a pipeline's denoising loop is
//
//   Scheduler s;  sched_init(&s, SCHED_EULER, &cfg, steps, err, errlen);
//   sched_state_alloc(&s, arena, &latents);                 // DPM++'s history, if any
//   rng_torch_randn_tensor(&gen, &latents);                 // models/rng.h
//   sched_scale_noise(&s, &latents, &latents);              // * init_noise_sigma
//   for (int i = 0; i < s.num_steps; i++) {
//       sched_scale_model_input(&s, i, &x_in, &latents);    // UNet input at s.timesteps[i]
//       ... eps = unet(x_in), sched_cfg(&eps, &uncond, &cond, g, rescale) ...
//       if (sched_needs_noise(&s)) rng_torch_randn_tensor(&gen, &noise);
//       sched_step(&s, i, &eps, &latents, &noise, &latents, ws);
//   }
//
// Config semantics are diffusers' from_config: a key given in the model's
// scheduler/scheduler_config.json wins; a key not given takes the chosen class's own
// default (e.g. SD1.5's config has no timestep_spacing, so Euler from it spaces
// "linspace" and DDIM "leading"). Models without a scheduler config use their family's
// published one (sched_config_family).
//
// Numerics: the schedule (betas, alphas_cumprod, sigmas, timesteps) follows diffusers'
// torch/numpy arithmetic operation by operation (f32 where torch computes in f32, double
// where numpy does), so integer timesteps are identical and sigmas agree to an ulp or so.
// Each step is a linear combination of sample, model output, noise (and DPM++'s previous
// x0) whose coefficients are computed in double from the f32 schedule, applied with
// op_scale/op_add on the tensors' device: host f32 and device f32/f16/bf16 alike (keep
// latents f32: diffusers upcasts the sample to f32 in every step).
#pragma once
#include <stddef.h>

#include "kernels/tensor.h"
#include "models/weights.h"
#include "runner/json.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    SCHED_DDIM = 0,
    SCHED_EULER,
    SCHED_EULER_A,
    SCHED_DPMPP_2M,
    SCHED_KIND_COUNT
} SchedKind;

// "ddim", "euler", "euler_a", "dpmpp_2m".
const char *sched_kind_name(SchedKind k);
// Accepts the names above, "dpmpp_2m_karras" (sets *karras to 1; karras may be NULL for
// no such option) and diffusers' class names. Returns 0, or -1 for an unknown name.
int sched_kind_parse(const char *name, SchedKind *k, int *karras);
// The kind of a diffusers "_class_name", or -1 (PNDMScheduler, LMS, ...).
int sched_kind_from_class(const char *class_name);

typedef enum {
    SCHED_BETA_LINEAR = 0,
    SCHED_BETA_SCALED_LINEAR,
    SCHED_BETA_SQUAREDCOS
} SchedBetaSchedule;
typedef enum { SCHED_PRED_EPSILON = 0, SCHED_PRED_V, SCHED_PRED_SAMPLE } SchedPrediction;
typedef enum {
    SCHED_SPACING_LEADING = 0,
    SCHED_SPACING_TRAILING,
    SCHED_SPACING_LINSPACE
} SchedSpacing;
typedef enum { SCHED_INTERP_LINEAR = 0, SCHED_INTERP_LOG_LINEAR } SchedInterpolation;
typedef enum { SCHED_FINAL_ZERO = 0, SCHED_FINAL_SIGMA_MIN } SchedFinalSigmas;
typedef enum { SCHED_SOLVER_MIDPOINT = 0, SCHED_SOLVER_HEUN } SchedSolverType;

// diffusers' scheduler config keys. Integers -1 and doubles NAN mean "not given": the
// scheduler class's default applies (sched_init resolves them). Booleans are 0/1/-1.
typedef struct {
    int num_train_timesteps;
    double beta_start, beta_end;
    int beta_schedule;     // SchedBetaSchedule
    int prediction_type;   // SchedPrediction
    int timestep_spacing;  // SchedSpacing
    int steps_offset;
    int rescale_betas_zero_snr;
    // DDIM
    int set_alpha_to_one;
    int clip_sample;  // true is treated as false, as diffusers' SD pipelines force it
    // Euler
    int interpolation_type;       // SchedInterpolation
    double sigma_min, sigma_max;  // bounds of the Karras sigmas (NAN: the schedule's own)
    // Euler, DPM++
    int use_karras_sigmas;
    int final_sigmas_type;  // SchedFinalSigmas
    // DPM++
    int solver_order;  // 1 or 2
    int solver_type;   // SchedSolverType
    int lower_order_final;
    int euler_at_final;
    double lambda_min_clipped;  // -inf by default
} SchedConfig;

// Every key "not given".
void sched_config_unset(SchedConfig *c);
// The scheduler config the family's published diffusers repository ships (SD1.x:
// stable-diffusion-v1-5's PNDM config; SD2.x: stable-diffusion-2-1's DDIM v-prediction
// config; SDXL: stable-diffusion-xl-base-1.0's Euler config); unset for an unknown family.
void sched_config_family(SchedConfig *c, ModelFamily f);
// Overlays the keys present in obj (a scheduler_config.json object) onto c. Unknown keys
// are ignored (as from_config does); a known key with a bad value, or an option storyrun
// does not implement set to a non-default value (thresholding, trained_betas,
// use_exponential_sigmas, ...), is an error naming the file, line and key.
int sched_config_from_json(SchedConfig *c, const JsonDoc *doc, const JsonValue *obj, char *err,
                           size_t errlen);
// A model's scheduler config: its scheduler/scheduler_config.json (or the config
// weights.h derives for a single file) over an unset config, else the family's.
int sched_config_from_weights(SchedConfig *c, const Weights *w, char *err, size_t errlen);

typedef struct {
    SchedKind kind;
    SchedConfig cfg;  // resolved: every key set
    int num_steps;
    float *timesteps;  // (num_steps): the UNet's timestep of step i (integers for ddim/dpmpp_2m)
    float *sigmas;     // (num_sigmas): sigma of step i and the next one (NULL for ddim)
    int num_sigmas;  // num_steps + 1 (euler with interpolation_type log_linear: + 2, as diffusers)
    float init_noise_sigma;  // initial latents = randn * init_noise_sigma
    int num_train;
    float *alphas_cumprod;      // (num_train) f32, as torch.cumprod(1 - betas)
    float final_alpha_cumprod;  // ddim: alpha of "t = -1"
    float eta;  // ddim's eta (a pipeline argument, not config): 0 unless set after init
    // DPM++ multistep state
    Tensor prev_x0;  // x0 of the previous step (sched_state_alloc)
    int have_state;
    int lower_order_nums;
    int next_step;  // dpmpp_2m: steps must run in order (i == 0 restarts)
} Scheduler;

// Resolves cfg for `kind` (NULL: all class defaults) and computes the schedule for
// num_inference_steps (1 .. num_train_timesteps). Returns 0, or -1 with a message.
int sched_init(Scheduler *s, SchedKind kind, const SchedConfig *cfg, int num_inference_steps,
               char *err, size_t errlen);
void sched_free(Scheduler *s);

// Persistent state the steps keep between calls (DPM++: the previous x0, like `like`),
// from an arena that outlives the loop. 0 bytes for the other kinds.
size_t sched_state_bytes(const Scheduler *s, const Tensor *like);
void sched_state_alloc(Scheduler *s, Arena *a, const Tensor *like);

// 1 when sched_step needs a standard normal `noise` tensor (euler_a; ddim with eta > 0),
// drawn by the caller from the pipeline's generator right before the step.
int sched_needs_noise(const Scheduler *s);

// out = noise * init_noise_sigma (out may be noise).
void sched_scale_noise(const Scheduler *s, Tensor *out, const Tensor *noise);
// The UNet's input at step i: sample / sqrt(sigma_i^2 + 1) for euler / euler_a, the
// sample itself otherwise (copied when out != sample). out may be sample.
void sched_scale_model_input(const Scheduler *s, int i, Tensor *out, const Tensor *sample);
// One denoising step: out = x_{i+1} from sample x_i and the guided model output at
// s->timesteps[i]. noise: as sched_needs_noise says (else ignored, may be NULL). out may
// alias sample or model_output. ws: scratch for two sample-sized tensors (released).
void sched_step(Scheduler *s, int i, const Tensor *model_output, const Tensor *sample,
                const Tensor *noise, Tensor *out, Arena *ws);

// Classifier-free guidance: out = uncond + g * (cond - uncond); then, when
// guidance_rescale > 0, diffusers' rescale_noise_cfg: out *= gr * std(cond) / std(out) +
// (1 - gr), the (unbiased) std taken per batch item over all other dims. Tensors (B, ...)
// on any device; out may alias either input. The std pass reads the data on the host
// (latent-sized, a copy for device tensors).
void sched_cfg(Tensor *out, const Tensor *uncond, const Tensor *cond, float guidance_scale,
               float guidance_rescale);

#ifdef __cplusplus
}
#endif

// models/pipeline.c: text to image as diffusers' Stable Diffusion pipelines run it (see
// pipeline.h for the order of operations).
#include "models/pipeline.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kernels/cuda_runtime_api.h"
#include "kernels/ops.h"
#include "models/rng.h"
#include "runner/check.h"

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static size_t round256(size_t n) { return (n + 255) & ~(size_t)255; }

// ---- samplers -------------------------------------------------------------------------------

static const char *const sampler_names[] = {"ddim", "euler", "euler_a", "dpmpp_2m",
                                            "dpmpp_2m_karras"};
enum { N_SAMPLERS = sizeof sampler_names / sizeof *sampler_names };

const char *pipeline_sampler_list(void) {
    return "ddim, euler, euler_a, dpmpp_2m, dpmpp_2m_karras";
}

const char *pipeline_sampler_name(PipelineSampler s) {
    if (s.karras && s.kind == SCHED_DPMPP_2M) return "dpmpp_2m_karras";
    return sched_kind_name(s.kind);
}

// Edit distance (insert, delete, substitute), case-insensitive, for "did you mean".
static int edit_distance(const char *a, const char *b) {
    int n = (int)strlen(a), m = (int)strlen(b);
    if (n > 63 || m > 63) return 99;
    int d[64][64];
    for (int i = 0; i <= n; i++) d[i][0] = i;
    for (int j = 0; j <= m; j++) d[0][j] = j;
    for (int i = 1; i <= n; i++)
        for (int j = 1; j <= m; j++) {
            int sub = tolower((unsigned char)a[i - 1]) != tolower((unsigned char)b[j - 1]);
            int x = d[i - 1][j - 1] + sub, y = d[i - 1][j] + 1, z = d[i][j - 1] + 1;
            d[i][j] = x < y ? (x < z ? x : z) : (y < z ? y : z);
        }
    return d[n][m];
}

int pipeline_sampler_parse(const char *name, PipelineSampler *out, char *err, size_t errlen) {
    PipelineSampler s = {0};
    if (name && !sched_kind_parse(name, &s.kind, &s.karras)) {
        if (out) *out = s;
        return 0;
    }
    // a spelling people use ("DPM++ 2M Karras", "euler-a"): normalise, then suggest
    char norm[64] = "";
    size_t o = 0;
    for (const char *c = name ? name : ""; *c && o + 2 < sizeof norm; c++) {
        if (*c == '+')
            norm[o++] = 'p';
        else if (*c == '-' || *c == ' ')
            norm[o++] = '_';
        else
            norm[o++] = (char)tolower((unsigned char)*c);
        norm[o] = '\0';
    }
    int best = -1, bd = 99;
    for (int i = 0; i < N_SAMPLERS; i++) {
        int d = edit_distance(norm, sampler_names[i]);
        if (d < bd) bd = d, best = i;
    }
    int len = (int)strlen(norm);
    if (best >= 0 && bd <= (len < 6 ? 2 : len / 3))
        snprintf(err, errlen, "unknown sampler '%s' (did you mean %s?); the samplers are %s",
                 name ? name : "", sampler_names[best], pipeline_sampler_list());
    else
        snprintf(err, errlen, "unknown sampler '%s'; the samplers are %s", name ? name : "",
                 pipeline_sampler_list());
    return -1;
}

// ---- loading --------------------------------------------------------------------------------

int pipeline_load(Pipeline *p, const Weights *w, Device dev, char *err, size_t errlen) {
    memset(p, 0, sizeof *p);
    p->w = w;
    p->family = weights_family(w);
    p->dev = dev;
    if (dev == DEV_CUDA && !cuda_available())
        return snprintf(err, errlen, "no usable CUDA device (see storyrun devices)"), -1;
    p->dt = dev == DEV_CPU ? DT_F32 : DT_F16;
    VaeConfig vcfg;
    if (unet_config(&p->ucfg, w, err, errlen) || vae_config(&vcfg, w, err, errlen) ||
        sched_config_from_weights(&p->sched_cfg, w, err, errlen))
        return -1;
    p->vae_dt = vae_default_dtype(&vcfg, dev);
    p->vae_factor = vae_scale_factor(&vcfg);
    p->align = p->vae_factor << (p->ucfg.nblocks - 1);
    const JsonValue *ss = json_get(weights_config(w, "unet"), "sample_size");
    p->sample_size =
        ss && ss->type == JSON_NUMBER && ss->is_int && ss->i > 0 && ss->i < 65536 ? (int)ss->i : 0;
    size_t cb;
    if (cond_weight_bytes(w, p->dt, &cb, err, errlen)) return -1;
    size_t bytes = cb + unet_weight_bytes(&p->ucfg, p->dt) +
                   vae_weight_bytes(&vcfg, VAE_DECODER, p->vae_dt) + (1 << 20);
    if (arena_init(&p->weights, dev, bytes))
        return snprintf(err, errlen, "cannot allocate %.1f MiB for the weights of %s",
                        bytes / 1048576.0, weights_path(w)),
               -1;
    if (cond_load(&p->cond, w, &p->weights, p->dt, err, errlen) ||
        unet_load(&p->unet, w, &p->weights, p->dt, err, errlen) ||
        vae_load(&p->vae, w, VAE_DECODER, &p->weights, p->vae_dt, err, errlen)) {
        pipeline_free(p);
        return -1;
    }
    return 0;
}

void pipeline_free(Pipeline *p) {
    cond_free(&p->cond);
    unet_free(&p->unet);
    vae_free(&p->vae);
    arena_free(&p->weights);
    memset(p, 0, sizeof *p);
}

void pipeline_default_size(const Pipeline *p, int *width, int *height) {
    int s = p->sample_size ? p->sample_size * p->vae_factor : 512;
    *width = *height = s;
}

int pipeline_check(const Pipeline *p, const PipelineRequest *req, char *err, size_t errlen) {
    int a = p->align;
    if (req->width <= 0 || req->height <= 0)
        return snprintf(err, errlen, "image size %dx%d: width and height must be positive",
                        req->width, req->height),
               -1;
    if (req->width % a || req->height % a) {
        int w = (req->width + a / 2) / a * a, h = (req->height + a / 2) / a * a;
        return snprintf(err, errlen,
                        "image size %dx%d: %s needs multiples of %d (the VAE maps %d pixels to one "
                        "latent "
                        "pixel and the UNet halves the latent %d times); the nearest is %dx%d",
                        req->width, req->height, weights_path(p->w), a, p->vae_factor,
                        p->ucfg.nblocks - 1, w ? w : a, h ? h : a),
               -1;
    }
    if (req->steps < 1 || req->steps > 1000)
        return snprintf(err, errlen, "%d steps: expected 1 to 1000", req->steps), -1;
    if (!isfinite(req->guidance) || req->guidance < 0)
        return snprintf(err, errlen, "guidance %g: expected a finite number >= 0", req->guidance),
               -1;
    if (!(req->guidance_rescale >= 0 && req->guidance_rescale <= 1))
        return snprintf(err, errlen, "guidance rescale %g: expected 0 to 1", req->guidance_rescale),
               -1;
    if (!req->prompt) return snprintf(err, errlen, "no prompt"), -1;
    return 0;
}

// ---- tensors across dtypes and devices ------------------------------------------------------

// Host f32 copy of t (any dtype and device) into dst (numel floats).
static void to_host_f32(const Tensor *t, float *dst) {
    int64_t n = tensor_numel(t);
    size_t bytes = tensor_nbytes(t);
    const void *src = t->data;
    void *stage = NULL;
    if (t->dev != DEV_CPU) {
        stage = mallocCheck(bytes);
        story_cuda_memcpy(stage, t->data, bytes, 1);
        src = stage;
    }
    if (t->dtype == DT_F32)
        memcpy(dst, src, (size_t)n * sizeof(float));
    else
        for (int64_t i = 0; i < n; i++) {
            uint16_t h = ((const uint16_t *)src)[i];
            dst[i] = t->dtype == DT_F16 ? f16_to_f32(h) : bf16_to_f32(h);
        }
    free(stage);
}

// t (any dtype and device) = src (host f32, numel floats).
static void from_host_f32(Tensor *t, const float *src) {
    int64_t n = tensor_numel(t);
    size_t bytes = tensor_nbytes(t);
    void *stage = t->dev == DEV_CPU ? t->data : mallocCheck(bytes);
    if (t->dtype == DT_F32)
        memcpy(stage, src, bytes);
    else
        for (int64_t i = 0; i < n; i++)
            ((uint16_t *)stage)[i] = t->dtype == DT_F16 ? f32_to_f16(src[i]) : f32_to_bf16(src[i]);
    if (t->dev != DEV_CPU) {
        story_cuda_memcpy(t->data, stage, bytes, 0);
        free(stage);
    }
}

// dst = src where shapes match in numel; dtypes and devices may differ.
static void copy_convert(Tensor *dst, const Tensor *src) {
    STORY_CHECK(tensor_numel(dst) == tensor_numel(src), "copy of %lld into %lld elements",
                (long long)tensor_numel(src), (long long)tensor_numel(dst));
    if (dst->dtype == src->dtype && dst->dev == src->dev) {
        if (dst->data == src->data) return;
        if (dst->dev == DEV_CPU)
            memcpy(dst->data, src->data, tensor_nbytes(dst));
        else
            story_cuda_memcpy(dst->data, src->data, tensor_nbytes(dst), 2);
        return;
    }
    float *tmp = mallocCheck((size_t)tensor_numel(src) * sizeof(float));
    to_host_f32(src, tmp);
    from_host_f32(dst, tmp);
    free(tmp);
}

// Rows [r0, r0 + n) of t along dim 0, as a view.
static Tensor rows_of(const Tensor *t, int64_t r0, int64_t n) {
    Tensor v = *t;
    size_t row = tensor_nbytes(t) / (size_t)t->shape[0];
    v.data = (char *)t->data + (size_t)r0 * row;
    v.shape[0] = n;
    return v;
}

static Tensor host_tensor(int ndim, const int64_t *shape) {
    Tensor t = tensor_view(NULL, DT_F32, DEV_CPU, ndim, shape);
    t.data = mallocCheck(tensor_nbytes(&t));
    return t;
}

void pipeline_output_free(PipelineOutput *out) {
    free(out->latents.data);
    free(out->image.data);
    free(out->init_latents.data);
    memset(out, 0, sizeof *out);
}

// Fields of o that are set win over c.
static void sched_overlay(SchedConfig *c, const SchedConfig *o) {
    const int *oi[] = {&o->num_train_timesteps, &o->beta_schedule,     &o->prediction_type,
                       &o->timestep_spacing,    &o->steps_offset,      &o->rescale_betas_zero_snr,
                       &o->set_alpha_to_one,    &o->clip_sample,       &o->interpolation_type,
                       &o->use_karras_sigmas,   &o->final_sigmas_type, &o->solver_order,
                       &o->solver_type,         &o->lower_order_final, &o->euler_at_final};
    int *ci[] = {&c->num_train_timesteps, &c->beta_schedule,     &c->prediction_type,
                 &c->timestep_spacing,    &c->steps_offset,      &c->rescale_betas_zero_snr,
                 &c->set_alpha_to_one,    &c->clip_sample,       &c->interpolation_type,
                 &c->use_karras_sigmas,   &c->final_sigmas_type, &c->solver_order,
                 &c->solver_type,         &c->lower_order_final, &c->euler_at_final};
    for (size_t k = 0; k < sizeof oi / sizeof *oi; k++)
        if (*oi[k] != -1) *ci[k] = *oi[k];
    const double *od[] = {&o->beta_start, &o->beta_end, &o->sigma_min, &o->sigma_max,
                          &o->lambda_min_clipped};
    double *cd[] = {&c->beta_start, &c->beta_end, &c->sigma_min, &c->sigma_max,
                    &c->lambda_min_clipped};
    for (size_t k = 0; k < sizeof od / sizeof *od; k++)
        if (!isnan(*od[k])) *cd[k] = *od[k];
}

// ---- text to image --------------------------------------------------------------------------

int pipeline_txt2img(Pipeline *p, const PipelineRequest *req, PipelineOutput *out, char *err,
                     size_t errlen) {
    memset(out, 0, sizeof *out);
    if (pipeline_check(p, req, err, errlen)) return -1;
    double t_start = now_s();
    const int B = 1;
    // diffusers: do_classifier_free_guidance = guidance_scale > 1 (no time_cond_proj_dim:
    // unet_config refuses models with one)
    const int cfg = req->guidance > 1.0f;
    const int rows = cfg ? 2 * B : B;
    const int h = req->height / p->vae_factor, w = req->width / p->vae_factor;
    const int C = p->ucfg.in_channels;
    const bool sdxl = p->family == FAMILY_SDXL;

    SchedConfig sc = p->sched_cfg;
    if (req->sched_overrides) sched_overlay(&sc, req->sched_overrides);
    if (req->sampler.karras) sc.use_karras_sigmas = 1;
    Scheduler s;
    if (sched_init(&s, req->sampler.kind, &sc, req->steps, err, errlen)) return -1;

    // io: conditioning outputs and the loop's tensors; ws: scratch of each stage in turn
    int64_t lat_n = (int64_t)B * C * h * w;
    const Tensor like = tensor_view(NULL, DT_F32, p->dev, 4, (const int64_t[]){B, C, h, w});
    size_t io_bytes = cond_output_bytes(&p->cond, B, cfg) + sched_state_bytes(&s, &like) +
                      3 * round256((size_t)lat_n * 4)           // latents, noise, z
                      + 2 * round256((size_t)lat_n * rows * 4)  // x32, eps32
                      + 2 * round256((size_t)lat_n * rows * dtype_size(p->dt)) + 4096;
    size_t ws_bytes = cond_scratch_bytes(&p->cond, B);
    size_t u = unet_scratch_bytes(&p->unet, rows, h, w, 77);
    size_t st = 2 * round256((size_t)lat_n * 4) + 4096;
    VaeTiling tiling = vae_tiling_default(&p->vae.cfg);
    size_t v = vae_image_scratch_bytes(&p->vae, req->tiled_vae ? &tiling : NULL, h, w);
    if (u > ws_bytes) ws_bytes = u;
    if (st > ws_bytes) ws_bytes = st;
    if (v > ws_bytes) ws_bytes = v;
    Arena io = {0}, ws = {0};
    int rc = -1;
    if (arena_init(&io, p->dev, io_bytes) || arena_init(&ws, p->dev, ws_bytes)) {
        snprintf(err, errlen, "cannot allocate %.1f MiB of %s memory for a %dx%d image",
                 (io_bytes + ws_bytes) / 1048576.0, p->dev == DEV_CPU ? "host" : "device",
                 req->width, req->height);
        goto done;
    }

    // 1. conditioning
    CondOutput co;
    int untrunc[COND_MAX_ENCODERS] = {0};
    const char *prompts[1] = {req->prompt}, *negs[1] = {req->negative};
    CondRequest cr = {.B = B,
                      .prompts = prompts,
                      .negative = req->negative ? negs : NULL,
                      .do_cfg = cfg,
                      .height = req->height,
                      .width = req->width,
                      .n_untruncated = untrunc};
    if (cond_encode(&p->cond, &cr, &io, &ws, &co, err, errlen)) goto done;
    out->n_encoders = p->cond.n_enc;
    out->max_tokens = (int)co.context.shape[1];
    for (int e = 0; e < p->cond.n_enc; e++) out->prompt_tokens[e] = untrunc[e];
    float *time_ids = NULL;
    if (sdxl) {
        time_ids = mallocCheck((size_t)rows * 6 * sizeof(float));
        for (int r = 0; r < rows; r++) cond_time_ids_row(&co, r, time_ids + 6 * r);
    }

    // 3. initial latents from the pipeline's generator
    TorchRng gen;
    rng_torch_seed(&gen, req->seed);
    Tensor lat = ARENA_TENSOR(&io, DT_F32, B, C, h, w);
    Tensor noise = ARENA_TENSOR(&io, DT_F32, B, C, h, w);
    Tensor x32 = ARENA_TENSOR(&io, DT_F32, rows, C, h, w);
    Tensor eps32 = ARENA_TENSOR(&io, DT_F32, rows, C, h, w);
    Tensor x_in = p->dt == DT_F32 ? x32 : ARENA_TENSOR(&io, p->dt, rows, C, h, w);
    Tensor pred = p->dt == DT_F32 ? eps32 : ARENA_TENSOR(&io, p->dt, rows, C, h, w);
    sched_state_alloc(&s, &io, &lat);
    if (rng_torch_randn_tensor(&gen, &lat)) {
        snprintf(err, errlen, "out of host memory drawing the initial noise");
        goto done_ids;
    }
    sched_scale_noise(&s, &lat, &lat);
    const int64_t lshape[4] = {B, C, h, w};
    out->init_latents = host_tensor(4, lshape);
    to_host_f32(&lat, out->init_latents.data);

    // 4. the denoising loop
    float *tsteps = mallocCheck((size_t)rows * sizeof(float));
    for (int i = 0; i < s.num_steps; i++) {
        double t0 = now_s();
        for (int r = 0; r < rows; r += B) {  // cat([latents] * 2)
            Tensor half = rows_of(&x32, r, B);
            copy_convert(&half, &lat);
        }
        sched_scale_model_input(&s, i, &x32, &x32);
        if (x_in.data != x32.data) copy_convert(&x_in, &x32);
        for (int r = 0; r < rows; r++) tsteps[r] = s.timesteps[i];
        UnetInputs in = {.sample = &x_in,
                         .timesteps = tsteps,
                         .encoder_hidden_states = &co.context,
                         .text_embeds = sdxl ? &co.pooled : NULL,
                         .time_ids = time_ids,
                         .freeu = req->freeu,
                         .step = i};
        if (unet_forward(&p->unet, &in, &pred, &ws, err, errlen)) goto done_steps;
        if (pred.data != eps32.data) copy_convert(&eps32, &pred);
        Tensor eps = eps32;
        if (cfg) {  // uncond rows first, then cond (the context's order)
            Tensor un = rows_of(&eps32, 0, B), co_rows = rows_of(&eps32, B, B);
            sched_cfg(&un, &un, &co_rows, req->guidance, req->guidance_rescale);
            eps = un;
        }
        if (sched_needs_noise(&s) && rng_torch_randn_tensor(&gen, &noise)) {
            snprintf(err, errlen, "out of host memory drawing step %d's noise", i + 1);
            goto done_steps;
        }
        sched_step(&s, i, &eps, &lat, &noise, &lat, &ws);
        if (p->dev != DEV_CPU) story_cuda_sync();
        if (req->on_latents) {
            if (lat.dev == DEV_CPU) {
                req->on_latents(req->ctx, i, &lat);
            } else {
                Tensor hl = host_tensor(4, lshape);
                to_host_f32(&lat, hl.data);
                req->on_latents(req->ctx, i, &hl);
                free(hl.data);
            }
        }
        if (req->on_step) req->on_step(req->ctx, i + 1, s.num_steps, now_s() - t0);
    }
    out->latents = host_tensor(4, lshape);
    to_host_f32(&lat, out->latents.data);

    // 5. decode: latents / scaling_factor (or the VAE's latents_mean/std), then the VAE
    {
        Tensor z = arena_tensor(&io, p->vae_dt, 4, lshape);
        copy_convert(&z, &lat);
        vae_latents_unscale(&p->vae, &z);
        out->image =
            host_tensor(4, (const int64_t[]){B, p->vae.cfg.out_channels, req->height, req->width});
        if (vae_decode_image(&p->vae, &z, &out->image, req->tiled_vae ? &tiling : NULL, &ws, err,
                             errlen))
            goto done_steps;
    }
    out->seconds = now_s() - t_start;
    rc = 0;
done_steps:
    free(tsteps);
done_ids:
    free(time_ids);
done:
    arena_free(&io);
    arena_free(&ws);
    sched_free(&s);
    if (rc) pipeline_output_free(out);
    return rc;
}

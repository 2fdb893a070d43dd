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
    const char *prompts[1] = {req->prompt};
    const uint64_t seeds[1] = {req->seed};
    PipelineBatch b = {.n = 1, .prompts = prompts, .seeds = seeds};
    return pipeline_generate(p, req, &b, out, err, errlen);
}

// One UNet call per image (rows b and B + b with guidance), through a scratch copy of its
// rows of every input: memory for one image's activations however many images there are.
static int unet_per_image(Pipeline *p, const UnetInputs *all, Tensor *pred, int B, int cfg,
                          const PipelineBatch *bt, int step, Arena *ws, char *err,
                          size_t errlen) {
    const int halves = cfg ? 2 : 1;
    const Tensor *x = all->sample, *ctx = all->encoder_hidden_states, *pool = all->text_embeds;
    for (int b = 0; b < B; b++) {
        const size_t mark = arena_mark(ws);
        Tensor xb = arena_tensor(ws, x->dtype, 4, SHAPE(halves, x->shape[1], x->shape[2], x->shape[3]));
        Tensor cb = arena_tensor(ws, ctx->dtype, 3, SHAPE(halves, ctx->shape[1], ctx->shape[2]));
        Tensor pb = pool ? arena_tensor(ws, pool->dtype, 2, SHAPE(halves, pool->shape[1])) : xb;
        Tensor ob = arena_tensor(ws, pred->dtype, 4, SHAPE(halves, x->shape[1], x->shape[2], x->shape[3]));
        float tids[12], ts[2];
        for (int h = 0; h < halves; h++) {
            const int r = h * B + b;
            Tensor d = tensor_rows(&xb, h, 1), sx = tensor_rows(x, r, 1);
            tensor_copy_convert(&d, &sx);
            d = tensor_rows(&cb, h, 1), sx = tensor_rows(ctx, r, 1);
            tensor_copy_convert(&d, &sx);
            if (pool) d = tensor_rows(&pb, h, 1), sx = tensor_rows(pool, r, 1), tensor_copy_convert(&d, &sx);
            if (all->time_ids) memcpy(tids + 6 * h, all->time_ids + 6 * r, 6 * sizeof(float));
            ts[h] = all->timesteps[r];
        }
        UnetInputs in = *all;
        in.sample = &xb, in.encoder_hidden_states = &cb, in.text_embeds = pool ? &pb : NULL;
        in.time_ids = all->time_ids ? tids : NULL, in.timesteps = ts;
        if (bt->before_image) bt->before_image(bt->self_attn_ctx, b, step);
        // the scratch above stays below the UNet's own allocations
        if (unet_forward(&p->unet, &in, &ob, ws, err, errlen)) return -1;
        for (int h = 0; h < halves; h++) {
            Tensor d = tensor_rows(pred, h * B + b, 1), so = tensor_rows(&ob, h, 1);
            tensor_copy_convert(&d, &so);
        }
        arena_release(ws, mark);
    }
    return 0;
}

int pipeline_generate(Pipeline *p, const PipelineRequest *req, const PipelineBatch *bt,
                      PipelineOutput *outs, char *err, size_t errlen) {
    const int B = bt->n;
    STORY_CHECK(B >= 1 && bt->prompts && bt->seeds, "pipeline_generate: %d images", B);
    for (int b = 0; b < B; b++) memset(&outs[b], 0, sizeof outs[b]);
    PipelineRequest chk = *req;
    chk.prompt = bt->prompts[0];
    if (pipeline_check(p, &chk, err, errlen)) return -1;
    double t_start = now_s();
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
    int64_t lat_n = (int64_t)B * C * h * w, img_n = (int64_t)C * h * w;
    const Tensor like = tensor_view(NULL, DT_F32, p->dev, 4, (const int64_t[]){B, C, h, w});
    size_t io_bytes = cond_output_bytes(&p->cond, B, cfg) + 2 * cond_output_bytes(&p->cond, 1, cfg) +
                      sched_state_bytes(&s, &like) +
                      2 * round256((size_t)lat_n * 4) + round256((size_t)img_n * 4)  // latents, noise, z
                      + 2 * round256((size_t)lat_n * 2 * 4)  // x32, eps32
                      + 2 * round256((size_t)lat_n * 2 * dtype_size(p->dt)) + 4096;
    size_t ws_bytes = cond_scratch_bytes(&p->cond, bt->per_image ? 1 : B);
    size_t u = bt->per_image ? unet_scratch_bytes(&p->unet, cfg ? 2 : 1, h, w, 77) +
                                   4 * round256((size_t)img_n * 2 * 4) +
                                   round256((size_t)2 * 77 * 2048 * 4) + 8192
                             : unet_scratch_bytes(&p->unet, rows, h, w, 77);
    u += bt->extra_scratch;
    size_t st = 2 * round256((size_t)lat_n * 4) + 4096;
    VaeTiling tiling = vae_tiling_default(&p->vae.cfg);
    size_t v = vae_image_scratch_bytes(&p->vae, req->tiled_vae ? &tiling : NULL, h, w);
    if (u > ws_bytes) ws_bytes = u;
    if (st > ws_bytes) ws_bytes = st;
    if (v > ws_bytes) ws_bytes = v;
    Arena io = {0}, ws = {0};
    int rc = -1;
    TorchRng *gen = mallocCheck((size_t)B * sizeof *gen);
    if (arena_init(&io, p->dev, io_bytes) || arena_init(&ws, p->dev, ws_bytes)) {
        snprintf(err, errlen, "cannot allocate %.1f MiB of %s memory for %d %dx%d image%s",
                 (io_bytes + ws_bytes) / 1048576.0, p->dev == DEV_CPU ? "host" : "device", B,
                 req->width, req->height, B > 1 ? "s" : "");
        goto done;
    }
    p->last_io_bytes = io_bytes, p->last_ws_bytes = ws_bytes;

    // 1. conditioning
    CondOutput co;
    int untrunc[COND_MAX_ENCODERS] = {0};
    const char **negs = mallocCheck((size_t)B * sizeof *negs);
    for (int b = 0; b < B; b++) negs[b] = req->negative;
    CondRequest cr = {.B = B,
                      .prompts = bt->prompts,
                      .negative = req->negative ? negs : NULL,
                      .do_cfg = cfg,
                      .height = req->height,
                      .width = req->width,
                      .n_untruncated = untrunc};
    int crc;
    if (!bt->per_image || B == 1) {
        crc = cond_encode(&p->cond, &cr, &io, &ws, &co, err, errlen);
    } else {
        // one prompt at a time (the text encoders' scratch then does not grow with B),
        // gathered into the rows [uncond 0..B-1; cond 0..B-1]
        const int halves = cfg ? 2 : 1;
        cr.B = 1;
        cr.prompts = bt->prompts;
        crc = cond_encode(&p->cond, &cr, &io, &ws, &co, err, errlen);
        CondOutput one = co;
        if (!crc) {
            co.rows = rows;
            co.context = arena_tensor(&io, one.context.dtype, 3,
                                      SHAPE(rows, one.context.shape[1], one.context.shape[2]));
            if (one.pooled.data)
                co.pooled = arena_tensor(&io, one.pooled.dtype, 2, SHAPE(rows, one.pooled.shape[1]));
        }
        for (int b = 0; b < B && !crc; b++) {
            const size_t mark = arena_mark(&io);
            if (b > 0) {
                cr.prompts = bt->prompts + b;
                crc = cond_encode(&p->cond, &cr, &io, &ws, &one, err, errlen);
                if (crc) break;
            }
            for (int h = 0; h < halves; h++) {
                Tensor d = tensor_rows(&co.context, (int64_t)h * B + b, 1), s1 = tensor_rows(&one.context, h, 1);
                tensor_copy_convert(&d, &s1);
                if (one.pooled.data) {
                    d = tensor_rows(&co.pooled, (int64_t)h * B + b, 1), s1 = tensor_rows(&one.pooled, h, 1);
                    tensor_copy_convert(&d, &s1);
                }
            }
            if (b > 0) arena_release(&io, mark);
        }
    }
    free(negs);
    if (crc) goto done;
    for (int b = 0; b < B; b++) {
        outs[b].n_encoders = p->cond.n_enc;
        outs[b].max_tokens = (int)co.context.shape[1];
        for (int e = 0; e < p->cond.n_enc; e++) outs[b].prompt_tokens[e] = untrunc[e];
    }
    float *time_ids = NULL;
    if (sdxl) {
        time_ids = mallocCheck((size_t)rows * 6 * sizeof(float));
        for (int r = 0; r < rows; r++) cond_time_ids_row(&co, r, time_ids + 6 * r);
    }

    // 3. initial latents: each image from its own generator (torch.Generator seeded with
    // its seed), so an image does not depend on what it is batched with
    Tensor lat = ARENA_TENSOR(&io, DT_F32, B, C, h, w);
    Tensor noise = ARENA_TENSOR(&io, DT_F32, B, C, h, w);
    Tensor x32 = ARENA_TENSOR(&io, DT_F32, rows, C, h, w);
    Tensor eps32 = ARENA_TENSOR(&io, DT_F32, rows, C, h, w);
    Tensor x_in = p->dt == DT_F32 ? x32 : ARENA_TENSOR(&io, p->dt, rows, C, h, w);
    Tensor pred = p->dt == DT_F32 ? eps32 : ARENA_TENSOR(&io, p->dt, rows, C, h, w);
    sched_state_alloc(&s, &io, &lat);
    const int64_t lshape[4] = {1, C, h, w};
    for (int b = 0; b < B; b++) {
        rng_torch_seed(&gen[b], bt->seeds[b]);
        Tensor lb = tensor_rows(&lat, b, 1);
        if (rng_torch_randn_tensor(&gen[b], &lb)) {
            snprintf(err, errlen, "out of host memory drawing the initial noise");
            goto done_ids;
        }
    }
    sched_scale_noise(&s, &lat, &lat);
    for (int b = 0; b < B; b++) {
        Tensor lb = tensor_rows(&lat, b, 1);
        outs[b].init_latents = host_tensor(4, lshape);
        tensor_to_host_f32(&lb, outs[b].init_latents.data);
    }

    // 4. the denoising loop
    float *tsteps = mallocCheck((size_t)rows * sizeof(float));
    for (int i = 0; i < s.num_steps; i++) {
        double t0 = now_s();
        for (int r = 0; r < rows; r += B) {  // cat([latents] * 2)
            Tensor half = tensor_rows(&x32, r, B);
            tensor_copy_convert(&half, &lat);
        }
        sched_scale_model_input(&s, i, &x32, &x32);
        if (x_in.data != x32.data) tensor_copy_convert(&x_in, &x32);
        for (int r = 0; r < rows; r++) tsteps[r] = s.timesteps[i];
        if (bt->before_step) bt->before_step(bt->self_attn_ctx, i);
        UnetInputs in = {.sample = &x_in,
                         .timesteps = tsteps,
                         .encoder_hidden_states = &co.context,
                         .text_embeds = sdxl ? &co.pooled : NULL,
                         .time_ids = time_ids,
                         .freeu = req->freeu,
                         .self_attn = bt->self_attn,
                         .self_attn_ctx = bt->self_attn_ctx,
                         .step = i};
        if (!bt->per_image || B == 1) {
            if (unet_forward(&p->unet, &in, &pred, &ws, err, errlen)) goto done_steps;
        } else if (unet_per_image(p, &in, &pred, B, cfg, bt, i, &ws, err, errlen)) {
            goto done_steps;
        }
        if (bt->after_step) bt->after_step(bt->self_attn_ctx, i);
        if (pred.data != eps32.data) tensor_copy_convert(&eps32, &pred);
        Tensor eps = eps32;
        if (cfg) {  // uncond rows first, then cond (the context's order)
            Tensor un = tensor_rows(&eps32, 0, B), co_rows = tensor_rows(&eps32, B, B);
            sched_cfg(&un, &un, &co_rows, req->guidance, req->guidance_rescale);
            eps = un;
        }
        if (sched_needs_noise(&s))
            for (int b = 0; b < B; b++) {
                Tensor nb = tensor_rows(&noise, b, 1);
                if (rng_torch_randn_tensor(&gen[b], &nb)) {
                    snprintf(err, errlen, "out of host memory drawing step %d's noise", i + 1);
                    goto done_steps;
                }
            }
        sched_step(&s, i, &eps, &lat, &noise, &lat, &ws);
        if (p->dev != DEV_CPU) story_cuda_sync();
        if (req->on_latents) {
            if (lat.dev == DEV_CPU) {
                req->on_latents(req->ctx, i, &lat);
            } else {
                Tensor hl = host_tensor(4, (const int64_t[]){B, C, h, w});
                tensor_to_host_f32(&lat, hl.data);
                req->on_latents(req->ctx, i, &hl);
                free(hl.data);
            }
        }
        if (req->on_step) req->on_step(req->ctx, i + 1, s.num_steps, now_s() - t0);
    }

    // 5. decode each image: latents / scaling_factor (or the VAE's latents_mean/std), then
    // the VAE
    for (int b = 0; b < B; b++) {
        Tensor lb = tensor_rows(&lat, b, 1);
        outs[b].latents = host_tensor(4, lshape);
        tensor_to_host_f32(&lb, outs[b].latents.data);
        const size_t mark = arena_mark(&io);
        Tensor z = arena_tensor(&io, p->vae_dt, 4, lshape);
        tensor_copy_convert(&z, &lb);
        vae_latents_unscale(&p->vae, &z);
        outs[b].image =
            host_tensor(4, (const int64_t[]){1, p->vae.cfg.out_channels, req->height, req->width});
        int vrc = vae_decode_image(&p->vae, &z, &outs[b].image, req->tiled_vae ? &tiling : NULL,
                                   &ws, err, errlen);
        arena_release(&io, mark);
        if (vrc) goto done_steps;
    }
    for (int b = 0; b < B; b++) outs[b].seconds = now_s() - t_start;
    rc = 0;
done_steps:
    free(tsteps);
done_ids:
    free(time_ids);
done:
    free(gen);
    arena_free(&io);
    arena_free(&ws);
    sched_free(&s);
    if (rc)
        for (int b = 0; b < B; b++) pipeline_output_free(&outs[b]);
    return rc;
}

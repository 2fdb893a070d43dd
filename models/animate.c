// models/animate.c: one anchored transition (see models/animate.h for the order of
// operations).
#include "models/animate.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cuda_runtime_api.h"
#include "kernels/ops.h"
#include "models/rng.h"
#include "runner/check.h"

static size_t round256(size_t n) { return (n + 255) & ~(size_t)255; }

// ---- tensors across dtypes and devices ---------------------------------------------------------

static Tensor host_tensor(int ndim, const int64_t *shape) {
    Tensor t = tensor_view(NULL, DT_F32, DEV_CPU, ndim, shape);
    t.data = calloc(1, tensor_nbytes(&t));
    if (!t.data) STORY_FATAL("out of host memory (%zu bytes)", tensor_nbytes(&t));
    return t;
}

void animate_output_free(AnimateOutput *out) {
    free(out->frames.data);
    free(out->latents.data);
    free(out->z_ends.data);
    memset(out, 0, sizeof *out);
}

// ---- the anchors -------------------------------------------------------------------------------

void animate_add_noise_coefs(const Scheduler *s, int i, double *a, double *b) {
    if (s->kind == SCHED_DDIM) {
        const double acp = s->alphas_cumprod[(int)s->timesteps[i]];
        *a = sqrt(acp), *b = sqrt(1.0 - acp);
    } else if (s->kind == SCHED_DPMPP_2M) {
        const double sg = s->sigmas[i], al = 1.0 / sqrt(sg * sg + 1.0);
        *a = al, *b = sg * al;
    } else {  // Euler, Euler ancestral: VE scaling, x = x0 + sigma * noise
        *a = 1.0, *b = s->sigmas[i];
    }
}

// Frames 0 and F-1 of lat (F, C, h, w) = a * z_end + b * noise_end (host values, n each).
static void anchor(Tensor *lat, int F, const float *z, const float *noise, int64_t n, double a,
                   double b) {
    float *v = mallocCheck((size_t)n * sizeof(float));
    for (int e = 0; e < 2; e++) {
        for (int64_t k = 0; k < n; k++)
            v[k] = (float)(a * (double)z[e * n + k] + b * (double)noise[e * n + k]);
        Tensor row = tensor_rows(lat, e ? F - 1 : 0, 1);
        tensor_from_host_f32(&row, v);
    }
    free(v);
}

// ---- the transition ----------------------------------------------------------------------------

static int check_request(const AnimateModel *m, const AnimateRequest *q, int align, char *err,
                         size_t errlen) {
    if (q->frames < 2)
        return snprintf(err, errlen, "a transition needs at least 2 frames, got %d", q->frames),
               -1;
    if (q->width <= 0 || q->height <= 0 || q->width % align || q->height % align)
        return snprintf(err, errlen,
                        "frame size %dx%d: the animation model needs multiples of %d pixels",
                        q->width, q->height, align),
               -1;
    if (q->steps < 1 || q->steps > 1000)
        return snprintf(err, errlen, "%d steps: expected 1 to 1000", q->steps), -1;
    if (!isfinite(q->guidance) || q->guidance < 0)
        return snprintf(err, errlen, "guidance %g: expected a finite number >= 0",
                        (double)q->guidance),
               -1;
    if (m->ip && !q->embeds)
        return snprintf(err, errlen, "the IP-Adapter needs one image embedding per frame"), -1;
    if (!q->start_image || !q->end_image || !q->prompt)
        return snprintf(err, errlen, "a transition needs both end images and a prompt"), -1;
    return 0;
}

int animate_transition(const AnimateModel *m, const AnimateRequest *q, AnimateOutput *out,
                       char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    const Vae *vae = m->vae;
    const int f = vae_scale_factor(&vae->cfg);
    const int align = f << (m->unet->cfg.nblocks - 1);
    if (check_request(m, q, align, err, errlen)) return -1;
    if (!(vae->parts & VAE_ENCODER) || !(vae->parts & VAE_DECODER))
        return snprintf(err, errlen, "the VAE needs its encoder and decoder loaded"), -1;
    const int F = q->frames, H = q->height, W = q->width, h = H / f, w = W / f;
    const int C = m->unet->cfg.in_channels, cfg = q->guidance > 1.0f, rows = (cfg ? 2 : 1) * F;
    const int64_t n1 = (int64_t)C * h * w;
    SchedConfig sc = m->sched_cfg;
    if (q->sampler.karras) sc.use_karras_sigmas = 1;
    Scheduler s;
    if (sched_init(&s, q->sampler.kind, &sc, q->steps, err, errlen)) return -1;

    // io: everything that lives through the loop; ws: each stage's scratch in turn
    const int T = m->ip ? m->ip->num_tokens : 0, D = m->ip ? m->ip->embed_dim : 0;
    const size_t ds = dtype_size(m->dt);
    const Tensor like = tensor_view(NULL, DT_F32, m->dev, 4, SHAPE(F, C, h, w));
    size_t io_bytes = 2 * cond_output_bytes(m->cond, 1, cfg) + sched_state_bytes(&s, &like) +
                      round256((size_t)rows * 77 * 4096 * ds)  // the folded context
                      + round256((size_t)F * n1 * 4)           // latents
                      + 2 * round256((size_t)rows * n1 * 4)    // x32, eps32
                      + 2 * round256((size_t)rows * n1 * ds)   // UNet input and output
                      + round256((size_t)rows * (D + 1) * ds) +
                      round256((size_t)rows * (T + 1) * m->unet->cfg.cross_dim[0] * ds) +
                      round256((size_t)n1 * 4 * 2) + 8192;
    size_t ws_bytes = m->video ? unet_video_scratch_bytes(m->video, rows / F, F, h, w, 77)
                               : unet_scratch_bytes(m->unet, rows, h, w, 77);
    if (m->ip) ws_bytes += ip_adapter_scratch_bytes(m->ip, m->unet, rows, h, w, rows, T);
    const size_t v = vae_image_scratch_bytes(vae, NULL, h, w) + round256((size_t)3 * H * W * 4);
    const size_t c = cond_scratch_bytes(m->cond, 1);
    const size_t st = 2 * round256((size_t)F * n1 * 4) + 4096;
    if (v > ws_bytes) ws_bytes = v;
    if (c > ws_bytes) ws_bytes = c;
    if (st > ws_bytes) ws_bytes = st;
    Arena io = {0}, ws = {0};
    int rc = -1;
    float *noise0 = NULL, *zh = NULL, *tsteps = NULL, *emb = NULL;
    if (arena_init(&io, m->dev, io_bytes) || arena_init(&ws, m->dev, ws_bytes)) {
        snprintf(err, errlen, "cannot allocate %.1f MiB of %s memory for a %d-frame %dx%d "
                 "transition",
                 (io_bytes + ws_bytes) / 1048576.0, m->dev == DEV_CPU ? "host" : "device", F, W,
                 H);
        goto done;
    }

    // 1. the end latents: mean of the latent distribution, scaled
    out->z_ends = host_tensor(4, SHAPE(2, C, h, w));
    for (int e = 0; e < 2; e++) {
        Tensor x = tensor_view((void *)(e ? q->end_image : q->start_image), DT_F32, DEV_CPU, 4,
                               SHAPE(1, vae->cfg.in_channels, H, W));
        Tensor mean = tensor_rows(&out->z_ends, e, 1);
        if (vae_encode_image(vae, &x, &mean, NULL, NULL, &ws, err, errlen)) goto done;
        vae_latents_scale(vae, &mean);
    }
    zh = out->z_ends.data;

    // 2. text: [negative; prompt] for one item, each row repeated over the frames
    CondOutput co;
    const char *negs[1] = {q->negative};
    CondRequest cr = {.B = 1,
                      .prompts = &q->prompt,
                      .negative = q->negative ? negs : NULL,
                      .do_cfg = cfg,
                      .height = H,
                      .width = W};
    if (cond_encode(m->cond, &cr, &io, &ws, &co, err, errlen)) goto done;
    Tensor ctx = arena_tensor(&io, co.context.dtype, 3,
                              SHAPE(rows, co.context.shape[1], co.context.shape[2]));
    for (int r = 0; r < rows; r++) {
        Tensor d = tensor_rows(&ctx, r, 1), sr = tensor_rows(&co.context, r / F, 1);
        tensor_copy_convert(&d, &sr);
    }

    // 3. image tokens: uncond rows from a zero embedding, cond row F + i from P_i
    Tensor tokens = {0};
    IpAdapterRun ipr;
    if (m->ip) {
        Tensor e = arena_tensor(&io, m->ip->dtype, 2, SHAPE(rows, D));
        emb = calloc((size_t)rows * (size_t)D, sizeof *emb);
        if (!emb) STORY_FATAL("out of host memory");
        memcpy(emb + (size_t)(rows - F) * D, q->embeds, (size_t)F * D * sizeof *emb);
        tensor_from_host_f32(&e, emb);
        tokens = arena_tensor(&io, m->ip->dtype, 3, SHAPE(rows, T, m->ip->cross_dim));
        ip_adapter_project(m->ip, &tokens, &e);
    }

    // 4. initial latents: torch.randn((1, C, F, h, w)) from the request's generator, to
    // (F, C, h, w), times init_noise_sigma
    TorchRng gen;
    rng_torch_seed(&gen, q->seed);
    const int64_t nall = (int64_t)F * n1;
    noise0 = mallocCheck((size_t)nall * sizeof *noise0);
    float *perm = mallocCheck((size_t)nall * sizeof *perm);
    rng_torch_randn(&gen, perm, nall);
    const int64_t hw = (int64_t)h * w;
    for (int fr = 0; fr < F; fr++)
        for (int ch = 0; ch < C; ch++)
            memcpy(noise0 + ((int64_t)fr * C + ch) * hw, perm + ((int64_t)ch * F + fr) * hw,
                   (size_t)hw * sizeof(float));
    free(perm);
    // the ends' noise: frames 0 and F-1 of the initial draw
    float *nend = mallocCheck((size_t)2 * n1 * sizeof *nend);
    memcpy(nend, noise0, (size_t)n1 * sizeof *nend);
    memcpy(nend + n1, noise0 + (int64_t)(F - 1) * n1, (size_t)n1 * sizeof *nend);
    Tensor lat = ARENA_TENSOR(&io, DT_F32, F, C, h, w);
    tensor_from_host_f32(&lat, noise0);
    sched_scale_noise(&s, &lat, &lat);
    Tensor x32 = ARENA_TENSOR(&io, DT_F32, rows, C, h, w);
    Tensor eps32 = ARENA_TENSOR(&io, DT_F32, rows, C, h, w);
    Tensor x_in = m->dt == DT_F32 ? x32 : ARENA_TENSOR(&io, m->dt, rows, C, h, w);
    Tensor pred = m->dt == DT_F32 ? eps32 : ARENA_TENSOR(&io, m->dt, rows, C, h, w);
    Tensor noise = ARENA_TENSOR(&io, DT_F32, F, C, h, w);
    sched_state_alloc(&s, &io, &lat);

    // 5. the loop
    tsteps = mallocCheck((size_t)rows * sizeof *tsteps);
    for (int i = 0; i < s.num_steps; i++) {
        double a, b;
        animate_add_noise_coefs(&s, i, &a, &b);
        anchor(&lat, F, zh, nend, n1, a, b);
        for (int r = 0; r < rows; r += F) {
            Tensor half = tensor_rows(&x32, r, F);
            tensor_copy_convert(&half, &lat);
        }
        sched_scale_model_input(&s, i, &x32, &x32);
        if (x_in.data != x32.data) tensor_copy_convert(&x_in, &x32);
        for (int r = 0; r < rows; r++) tsteps[r] = s.timesteps[i];
        UnetInputs in = {.sample = &x_in,
                         .timesteps = tsteps,
                         .encoder_hidden_states = &ctx,
                         .step = i};
        if (m->ip) ip_adapter_bind(&ipr, m->ip, &tokens, m->ip_scale, &in);
        const int u = m->video ? unet_video_forward(m->video, &in, F, &pred, &ws, err, errlen)
                               : unet_forward(m->unet, &in, &pred, &ws, err, errlen);
        if (u) goto done_nend;
        if (pred.data != eps32.data) tensor_copy_convert(&eps32, &pred);
        Tensor eps = eps32;
        if (cfg) {
            Tensor un = tensor_rows(&eps32, 0, F), cond_rows = tensor_rows(&eps32, F, F);
            sched_cfg(&un, &un, &cond_rows, q->guidance, 0.0f);
            eps = un;
        }
        if (sched_needs_noise(&s) && rng_torch_randn_tensor(&gen, &noise)) {
            snprintf(err, errlen, "out of host memory drawing step %d's noise", i + 1);
            goto done_nend;
        }
        sched_step(&s, i, &eps, &lat, &noise, &lat, &ws);
        if (m->dev != DEV_CPU) story_cuda_sync();
        if (q->on_step) q->on_step(q->ctx, i + 1, s.num_steps);
    }
    anchor(&lat, F, zh, nend, n1, 1.0, 0.0);  // exactly z_A, z_B

    // 6. decode every frame on its own
    out->latents = host_tensor(4, SHAPE(F, C, h, w));
    tensor_to_host_f32(&lat, out->latents.data);
    out->frames = host_tensor(4, SHAPE(F, vae->cfg.out_channels, H, W));
    for (int fr = 0; fr < F; fr++) {
        const size_t mark = arena_mark(&io);
        Tensor lb = tensor_rows(&lat, fr, 1);
        Tensor z = arena_tensor(&io, vae->dtype, 4, SHAPE(1, C, h, w));
        tensor_copy_convert(&z, &lb);
        vae_latents_unscale(vae, &z);
        Tensor img = tensor_rows(&out->frames, fr, 1);
        const int vrc = vae_decode_image(vae, &z, &img, NULL, &ws, err, errlen);
        arena_release(&io, mark);
        if (vrc) goto done_nend;
    }
    rc = 0;
done_nend:
    free(nend);
done:
    free(noise0), free(tsteps), free(emb);
    arena_free(&io);
    arena_free(&ws);
    sched_free(&s);
    if (rc) animate_output_free(out);
    return rc;
}

// tests/motion_module/test_motion_module.c: the AnimateDiff motion module and video UNet
// (models/motion_module.c, models/unet_video.c) against diffusers' AnimateDiffTransformer3D
// and UNetMotionModel, with the goldens of data/ (make_golden.py) and the tiny SD1.5 UNet of
// tests/golden/models/tiny_sd15.
//
//   test_motion_module module DATA             (a) one motion module, CPU f32; scratch sizing
//   test_motion_module video  DATA SD15 ADAPTER (b) the video UNet's noise prediction, CPU f32;
//                                              ADAPTER: a diffusers folder or mm_tiny.safetensors
//   test_motion_module layouts DATA SD15       both adapter layouts: same config, bit-identical
//   test_motion_module e2e    DATA SD15 ADAPTER (c) AnimateDiffPipeline's denoising loop (DDIM,
//                                              guidance, 3 steps): the final latents
//   test_motion_module refuse DATA SD15        bad inputs and mismatched adapters are refused
//   test_motion_module cuda   DATA SD15        (a) and (b) on CUDA in f16 (exit 77 without one)
//
// Tolerance (f32 on the CPU): max abs error <= 1e-4 * max(1, max |reference|), as for the UNet:
// both sides compute the same formulas in f32 and differ only in summation order; observed
// errors are ~1e-6 relative. A wrong frame order, head split, group norm or missing positional
// table moves the outputs by 1e-2 and more (the "refuse" mode checks that leaving the motion
// modules out moves the noise prediction by far more than the tolerance). CUDA f16: 3e-2.
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cuda_runtime_api.h"
#include "kernels/ops.h"
#include "models/motion_module.h"
#include "models/safetensors.h"
#include "models/scheduler.h"
#include "models/unet.h"
#include "models/unet_video.h"
#include "models/weights.h"
#include "runner/json.h"

#define TOL 1e-4
#define TOL_F16 3e-2

static int g_checks, g_fail;
static SafeTensors g_st;
static char g_err[2048];
static const char *g_mode = "";

static void die(const char *what, const char *msg) {
    fprintf(stderr, "test_motion_module: %s: %s\n", what, msg);
    exit(1);
}

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static void
check(int ok, const char *fmt, ...) {
    g_checks++;
    if (!ok) g_fail++;
    printf("  %-4s ", ok ? "ok" : "FAIL");
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
}

static float *golden(const char *name, int64_t *shape) {
    const SafeTensorsEntry *e = st_find(&g_st, name);
    if (!e) die(name, "not in golden.safetensors (rerun make_golden.py)");
    float *v = malloc((size_t)e->numel * sizeof *v);
    if (!v || st_load_f32(e, v)) die(name, "cannot read");
    if (shape)
        for (int i = 0; i < e->ndim; i++) shape[i] = e->shape[i];
    return v;
}

// max |got - want| <= tol * max(1, max |want|); returns the error relative to that scale.
static double compare(const char *what, const float *got, const float *want, int64_t n,
                      double tol) {
    double err = 0, mx = 0;
    for (int64_t i = 0; i < n; i++) {
        const double d = fabs((double)got[i] - want[i]);
        if (!(d <= err)) err = d;
        if (fabs(want[i]) > mx) mx = fabs(want[i]);
    }
    const double scale = mx > 1 ? mx : 1;
    check(err <= tol * scale, "%-36s max abs err %.3g = %.3g relative (limit %.0e, max |ref| %.3g)",
          what, err, err / scale, tol, mx);
    return err / scale;
}

static void open_golden(const char *dir) {
    char path[1024];
    snprintf(path, sizeof path, "%s/golden.safetensors", dir);
    if (st_open(&g_st, path, g_err, sizeof g_err)) die(path, g_err);
}

// ---- host/device helpers ------------------------------------------------------------------------

static Tensor upload(Arena *a, DType dt, const float *src, int ndim, const int64_t *shape) {
    Tensor t = arena_tensor(a, dt, ndim, shape);
    const int64_t n = tensor_numel(&t);
    if (a->dev == DEV_CPU) {
        memcpy(t.data, src, (size_t)n * sizeof(float));
        return t;
    }
    void *h = malloc(tensor_nbytes(&t));
    for (int64_t i = 0; i < n; i++) {
        if (dt == DT_F32)
            ((float *)h)[i] = src[i];
        else
            ((uint16_t *)h)[i] = dt == DT_F16 ? f32_to_f16(src[i]) : f32_to_bf16(src[i]);
    }
    story_cuda_memcpy(t.data, h, tensor_nbytes(&t), 0);
    free(h);
    return t;
}

static float *download(const Tensor *t) {
    const int64_t n = tensor_numel(t);
    float *f = malloc((size_t)n * sizeof *f);
    if (t->dev == DEV_CPU) return memcpy(f, t->data, (size_t)n * sizeof *f);
    void *h = malloc(tensor_nbytes(t));
    story_cuda_memcpy(h, t->data, tensor_nbytes(t), 1);
    for (int64_t i = 0; i < n; i++)
        f[i] = t->dtype == DT_F32   ? ((float *)h)[i]
               : t->dtype == DT_F16 ? f16_to_f32(((uint16_t *)h)[i])
                                    : bf16_to_f32(((uint16_t *)h)[i]);
    free(h);
    return f;
}

// ---- (a) one motion module --------------------------------------------------------------------

#define FRAMES 4

static void module_case(const char *dir, Device dev, DType dt, double tol) {
    char path[1024];
    snprintf(path, sizeof path, "%s/adapter", dir);
    MotionAdapterFile f;
    if (motion_adapter_open(&f, path, g_err, sizeof g_err)) die(path, g_err);
    const MotionAdapterConfig *c = &f.cfg;
    MotionModule mm;
    Arena wa, io;
    if (arena_init(&wa, dev, (size_t)4 << 20) || arena_init(&io, dev, (size_t)4 << 20))
        die(path, "no memory");
    // down_blocks.1.motion_modules.0: 32 channels, 2 transformer blocks; 8 norm groups
    if (motion_module_load(&mm, c->channels[1], c->heads[1], c->down_depth[1][0], 8, c->max_frames,
                           motion_adapter_source, &f, "down_blocks.1.motion_modules.0", &wa, dt,
                           g_err, sizeof g_err))
        die(path, g_err);
    check(mm.depth == 2 && mm.heads == 2 && mm.max_frames == 16 && mm.channels == 32,
          "module: depth %d heads %d max frames %d channels %d (want 2, 2, 16, 32)", mm.depth,
          mm.heads, mm.max_frames, mm.channels);
    int64_t shape[4];
    float *x = golden("tt.x", shape), *want = golden("tt.y", NULL);
    Tensor tx = upload(&io, dt, x, 4, shape);
    const size_t need =
        motion_module_scratch_bytes(&mm, (int)shape[0], (int)shape[2], (int)shape[3], FRAMES);
    Arena ws;
    if (arena_init(&ws, dev, need)) die(path, "no memory");
    motion_module_forward(&mm, &tx, FRAMES, &ws);
    if (dev == DEV_CUDA) story_cuda_sync();
    check(ws.peak == need && ws.used == 0, "module scratch: peak %zu == dry run %zu, all released",
          ws.peak, need);
    float *got = download(&tx);
    compare(dev == DEV_CPU ? "module (B*F 8, 32, 4, 4), F 4" : "module cuda f16", got, want,
            tensor_numel(&tx), tol);
    free(got), free(x), free(want);
    motion_module_free(&mm);
    arena_free(&ws), arena_free(&io), arena_free(&wa);
    motion_adapter_close(&f);
}

// ---- (b) the video UNet
// --------------------------------------------------------------------------

typedef struct {
    Weights *w;
    Unet u;
    MotionAdapterFile f;
    UnetVideo v;
    Arena wa, ma;
} Video;

static void video_open(Video *m, const char *sd15, const char *adapter, Device dev, DType dt) {
    memset(m, 0, sizeof *m);
    UnetConfig cfg;
    if (weights_open(&m->w, sd15, g_err, sizeof g_err)) die(sd15, g_err);
    if (unet_config(&cfg, m->w, g_err, sizeof g_err)) die(sd15, g_err);
    if (arena_init(&m->wa, dev, unet_weight_bytes(&cfg, dt))) die(sd15, "no memory");
    if (unet_load(&m->u, m->w, &m->wa, dt, g_err, sizeof g_err)) die(sd15, g_err);
    if (motion_adapter_open(&m->f, adapter, g_err, sizeof g_err)) die(adapter, g_err);
    const size_t bytes = unet_video_weight_bytes(&m->u, &m->f);
    if (arena_init(&m->ma, dev, bytes)) die(adapter, "no memory");
    if (unet_video_load(&m->v, &m->u, &m->f, &m->ma, g_err, sizeof g_err)) die(adapter, g_err);
    if (m->ma.used > m->ma.cap) die(adapter, "unet_video_weight_bytes too small");
}

static void video_close(Video *m) {
    unet_video_free(&m->v);
    motion_adapter_close(&m->f);
    unet_free(&m->u);
    arena_free(&m->ma), arena_free(&m->wa);
    weights_close(m->w);
}

// The golden case on m: a malloc'd (B*F, 4, H, W) noise prediction. plain: no motion modules.
static float *video_run(const Video *m, int plain, int64_t *n) {
    const Device dev = m->u.dev;
    const DType dt = m->u.dtype;
    int64_t ss[4], cs[3];
    float *sample = golden("video.sample", ss), *ctx = golden("video.context", cs);
    float *t = golden("video.timesteps", NULL);
    const int64_t rows = ss[0], B = rows / FRAMES;
    float *ts = malloc((size_t)rows * sizeof *ts);
    for (int64_t i = 0; i < rows; i++) ts[i] = t[i / FRAMES];  // video b's step, per frame
    Arena io;
    if (arena_init(&io, dev, (size_t)4 << 20)) die("video", "no memory");
    Tensor x = upload(&io, dt, sample, 4, ss), c = upload(&io, dt, ctx, 3, cs);
    Tensor out = arena_tensor(&io, dt, 4, ss);
    UnetInputs in = {0};
    in.sample = &x, in.timesteps = ts, in.encoder_hidden_states = &c;
    Arena ws;
    if (arena_init(
            &ws, dev,
            unet_video_scratch_bytes(&m->v, (int)B, FRAMES, (int)ss[2], (int)ss[3], (int)cs[1])))
        die("video", "no memory for the scratch arena");
    const int rc = plain ? unet_forward(&m->u, &in, &out, &ws, g_err, sizeof g_err)
                         : unet_video_forward(&m->v, &in, FRAMES, &out, &ws, g_err, sizeof g_err);
    if (rc) die("video", g_err);
    if (dev == DEV_CUDA) story_cuda_sync();
    float *y = download(&out);
    *n = tensor_numel(&out);
    arena_free(&ws), arena_free(&io);
    free(sample), free(ctx), free(t), free(ts);
    return y;
}

static void video_case(const char *sd15, const char *adapter, Device dev, DType dt, double tol) {
    Video m;
    video_open(&m, sd15, adapter, dev, dt);
    const MotionAdapterConfig *c = &m.v.cfg;
    check(c->nblocks == 2 && c->layers[0] == 2 && c->layers[1] == 2 && c->down_depth[0][0] == 1 &&
              c->down_depth[1][1] == 2 && c->up_depth[0][2] == 2 && c->up_depth[1][0] == 1 &&
              c->mid && c->mid_depth == 1 && c->heads[0] == 2 && c->max_frames == 16,
          "adapter config from %s layout: 2 blocks, 2 layers, depths 1/2, mid, 2 heads, 16 frames",
          m.f.original ? "the original" : "the diffusers");
    int64_t n;
    float *got = video_run(&m, 0, &n), *want = golden("video.noise_pred", NULL);
    compare(dev == DEV_CPU ? "video UNet (2 videos x 4 frames, 8x8)" : "video UNet cuda f16", got,
            want, n, tol);
    free(got), free(want);
    video_close(&m);
}

static void mode_layouts(const char *dir, const char *sd15) {
    char a[1024], b[1024];
    snprintf(a, sizeof a, "%s/adapter", dir);
    snprintf(b, sizeof b, "%s/mm_tiny.safetensors", dir);
    Video va, vb;
    video_open(&va, sd15, a, DEV_CPU, DT_F32);
    video_open(&vb, sd15, b, DEV_CPU, DT_F32);
    check(!va.f.original && vb.f.original, "layouts detected: %s / %s",
          va.f.original ? "original" : "diffusers", vb.f.original ? "original" : "diffusers");
    check(!memcmp(&va.v.cfg, &vb.v.cfg, sizeof va.v.cfg), "both layouts give the same config");
    check(va.ma.used == vb.ma.used, "both layouts take the same weight bytes (%zu)", va.ma.used);
    int64_t n;
    float *ya = video_run(&va, 0, &n), *yb = video_run(&vb, 0, &n);
    check(!memcmp(ya, yb, (size_t)n * sizeof *ya), "noise predictions bit-identical");
    free(ya), free(yb);
    video_close(&va), video_close(&vb);
}

static void mode_refuse(const char *dir, const char *sd15) {
    char a[1024];
    snprintf(a, sizeof a, "%s/adapter", dir);
    Video m;
    video_open(&m, sd15, a, DEV_CPU, DT_F32);
    // sensitivity: without the motion modules the prediction is far off
    int64_t n;
    float *plain = video_run(&m, 1, &n), *want = golden("video.noise_pred", NULL);
    double err = 0;
    for (int64_t i = 0; i < n; i++)
        if (fabs(plain[i] - want[i]) > err) err = fabs(plain[i] - want[i]);
    check(err > 100 * TOL, "without motion modules the prediction moves by %.3g (> 100 x tol)",
          err);
    free(plain), free(want);
    // frames beyond the table, rows not a multiple of frames, the layer seam taken
    static float buf[4 * 4 * 8 * 8], cbuf[4 * 8 * 32], obuf[4 * 4 * 8 * 8], t[4];
    Tensor x = tensor_view(buf, DT_F32, DEV_CPU, 4, SHAPE(3, 4, 8, 8));
    Tensor c = tensor_view(cbuf, DT_F32, DEV_CPU, 3, SHAPE(3, 8, 32));
    Tensor o = tensor_view(obuf, DT_F32, DEV_CPU, 4, SHAPE(3, 4, 8, 8));
    UnetInputs in = {0};
    in.sample = &x, in.timesteps = t, in.encoder_hidden_states = &c;
    int rc = unet_video_forward(&m.v, &in, 17, &o, NULL, g_err, sizeof g_err);
    check(rc < 0 && strstr(g_err, "1 .. 16"), "17 frames refused: %s", g_err);
    rc = unet_video_forward(&m.v, &in, 2, &o, NULL, g_err, sizeof g_err);
    check(rc < 0 && strstr(g_err, "multiple of"), "3 rows of 2 frames refused: %s", g_err);
    in.layer_fn = (UnetLayerFn)1;
    rc = unet_video_forward(&m.v, &in, 3, &o, NULL, g_err, sizeof g_err);
    check(rc < 0 && strstr(g_err, "layer seam"), "a layer hook of the caller refused: %s", g_err);
    // an adapter for another UNet (the same UNet with other widths)
    Unet other = m.u;
    other.cfg.block_out_channels[1] = 48;
    UnetVideo v;
    Arena ma;
    if (arena_init(&ma, DEV_CPU, (size_t)4 << 20)) die("refuse", "no memory");
    rc = unet_video_load(&v, &other, &m.f, &ma, g_err, sizeof g_err);
    check(rc < 0 && strstr(g_err, "32 channels") && strstr(g_err, "48 channels"),
          "adapter for another UNet refused: %s", g_err);
    other = m.u;
    other.down[0].nlayers = 1;
    rc = unet_video_load(&v, &other, &m.f, &ma, g_err, sizeof g_err);
    check(rc < 0 && strstr(g_err, "has 1 layers"), "other layers per block refused: %s", g_err);
    arena_free(&ma);
    // not an adapter; an adapter file with a tensor of the wrong shape is caught at load
    MotionAdapterFile f;
    char p[1024];
    snprintf(p, sizeof p, "%s/golden.safetensors", dir);
    rc = motion_adapter_open(&f, p, g_err, sizeof g_err);
    check(rc < 0 && strstr(g_err, "not an AnimateDiff motion adapter"), "foreign file refused: %s",
          g_err);
    Tensor tmp;
    Arena sa;
    if (arena_init(&sa, DEV_CPU, 1 << 20)) die("refuse", "no memory");
    rc = motion_adapter_source(&m.f, "down_blocks.0.motion_modules.0.proj_in.weight", 2,
                               SHAPE(16, 17), &sa, DT_F32, &tmp, g_err, sizeof g_err);
    check(rc < 0 && strstr(g_err, "shape (16, 16), expected (16, 17)"), "wrong shape named: %s",
          g_err);
    rc = motion_adapter_source(&m.f, "down_blocks.0.motion_modules.9.proj_in.weight", 2,
                               SHAPE(16, 16), &sa, DT_F32, &tmp, g_err, sizeof g_err);
    check(rc < 0 && strstr(g_err, "missing"), "missing tensor named: %s", g_err);
    arena_free(&sa);
    video_close(&m);
}

// ---- (c) end to end: AnimateDiffPipeline's latents ------------------------------------------

// The denoising loop of AnimateDiffPipeline (output_type "latent") on the CPU: DDIM with the
// golden's scheduler config, classifier-free guidance over [uncond video; cond video] rows.
static void mode_e2e(const char *sd15, const char *adapter) {
    Video m;
    video_open(&m, sd15, adapter, DEV_CPU, DT_F32);
    const char *sj = st_meta(&g_st, "scheduler"), *ej = st_meta(&g_st, "e2e");
    if (!sj || !ej) die("golden.safetensors", "no scheduler / e2e metadata (rerun make_golden.py)");
    JsonError je;
    JsonDoc *sd = json_parse("scheduler", sj, strlen(sj), NULL, &je);
    JsonDoc *ed = json_parse("e2e", ej, strlen(ej), NULL, &je);
    if (!sd || !ed) die("golden metadata", je.msg);
    int64_t steps, frames;
    double guidance;
    if (json_get_int(ed, json_root(ed), "steps", 1, 1000, &steps, g_err, sizeof g_err) != 1 ||
        json_get_int(ed, json_root(ed), "frames", 1, 64, &frames, g_err, sizeof g_err) != 1 ||
        json_get_number(ed, json_root(ed), "guidance_scale", &guidance, g_err, sizeof g_err) != 1)
        die("e2e metadata", g_err);
    SchedConfig sc;
    Scheduler s;
    sched_config_unset(&sc);
    if (sched_config_from_json(&sc, sd, json_root(sd), g_err, sizeof g_err) ||
        sched_init(&s, SCHED_DDIM, &sc, (int)steps, g_err, sizeof g_err))
        die("scheduler", g_err);
    int64_t ls[4], ps[3];
    float *lat = golden("e2e.latents", ls), *pos = golden("e2e.prompt_embeds", ps);
    float *neg = golden("e2e.negative_prompt_embeds", NULL),
          *want = golden("e2e.latents_out", NULL);
    const int64_t F = frames, per = ls[1] * ls[2] * ls[3], L = ps[1], D = ps[2];
    Arena io, ws, sws;
    if (arena_init(&io, DEV_CPU, (size_t)8 << 20) ||
        arena_init(&ws, DEV_CPU,
                   unet_video_scratch_bytes(&m.v, 2, (int)F, (int)ls[2], (int)ls[3], (int)L)) ||
        arena_init(&sws, DEV_CPU, (size_t)1 << 20))
        die("e2e", "no memory");
    Tensor x = upload(&io, DT_F32, lat, 4, ls);
    Tensor xin = ARENA_TENSOR(&io, DT_F32, 2 * F, ls[1], ls[2], ls[3]);
    Tensor eps2 = ARENA_TENSOR(&io, DT_F32, 2 * F, ls[1], ls[2], ls[3]);
    Tensor eps = ARENA_TENSOR(&io, DT_F32, F, ls[1], ls[2], ls[3]);
    Tensor ctx = ARENA_TENSOR(&io, DT_F32, 2 * F, L, D);
    for (int64_t r = 0; r < 2 * F; r++)  // the prompt repeated per frame: [negative; positive]
        memcpy((float *)ctx.data + r * L * D, r < F ? neg : pos, (size_t)(L * D) * sizeof(float));
    float *ts = malloc((size_t)(2 * F) * sizeof *ts);
    sched_scale_noise(&s, &x, &x);
    for (int i = 0; i < s.num_steps; i++) {
        Tensor half = tensor_view(xin.data, DT_F32, DEV_CPU, 4, ls);
        sched_scale_model_input(&s, i, &half, &x);
        memcpy((float *)xin.data + F * per, half.data, (size_t)(F * per) * sizeof(float));
        for (int64_t r = 0; r < 2 * F; r++) ts[r] = s.timesteps[i];
        UnetInputs in = {0};
        in.sample = &xin, in.timesteps = ts, in.encoder_hidden_states = &ctx, in.step = i;
        if (unet_video_forward(&m.v, &in, (int)F, &eps2, &ws, g_err, sizeof g_err))
            die("e2e", g_err);
        Tensor un = tensor_view(eps2.data, DT_F32, DEV_CPU, 4, ls);
        Tensor co = tensor_view((float *)eps2.data + F * per, DT_F32, DEV_CPU, 4, ls);
        sched_cfg(&eps, &un, &co, (float)guidance, 0.0f);
        sched_step(&s, i, &eps, &x, NULL, &x, &sws);
    }
    char what[96];
    snprintf(what, sizeof what, "latents after %d DDIM steps, cfg %.1f", s.num_steps, guidance);
    compare(what, x.data, want, tensor_numel(&x), TOL);
    free(ts), free(lat), free(pos), free(neg), free(want);
    arena_free(&sws), arena_free(&ws), arena_free(&io);
    sched_free(&s);
    json_free(sd), json_free(ed);
    video_close(&m);
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s module|video|layouts|e2e|refuse|cuda DATA [SD15 [ADAPTER]]\n",
                argv[0]);
        return 2;
    }
    g_mode = argv[1];
    open_golden(argv[2]);
    if (!strcmp(g_mode, "module")) {
        module_case(argv[2], DEV_CPU, DT_F32, TOL);
    } else if (!strcmp(g_mode, "video") && argc == 5) {
        video_case(argv[3], argv[4], DEV_CPU, DT_F32, TOL);
    } else if (!strcmp(g_mode, "layouts") && argc == 4) {
        mode_layouts(argv[2], argv[3]);
    } else if (!strcmp(g_mode, "e2e") && argc == 5) {
        mode_e2e(argv[3], argv[4]);
    } else if (!strcmp(g_mode, "refuse") && argc == 4) {
        mode_refuse(argv[2], argv[3]);
    } else if (!strcmp(g_mode, "cuda") && argc == 4) {
        if (!cuda_available()) {
            printf("motion_module cuda: skipped: no CUDA device\n");
            return 77;
        }
        char a[1024];
        snprintf(a, sizeof a, "%s/adapter", argv[2]);
        module_case(argv[2], DEV_CUDA, DT_F16, TOL_F16);
        video_case(argv[3], a, DEV_CUDA, DT_F16, TOL_F16);
    } else {
        fprintf(stderr, "test_motion_module: bad arguments for mode %s\n", g_mode);
        return 2;
    }
    st_close(&g_st);
    printf("motion_module %s: %d checks, %d failure(s)\n", g_mode, g_checks, g_fail);
    return g_fail ? 1 : 0;
}

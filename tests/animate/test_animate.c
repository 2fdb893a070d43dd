// tests/animate/test_animate.c: endpoint anchoring on builtin:tiny-animate, and a helper
// for run.sh.
//   test_animate unit             anchoring, determinism, the motion modules' effect
//   test_animate count MP4 N W H  MP4 has N frames of W x H (exit 1 otherwise)
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "models/animate.h"
#include "models/animate_weights.h"
#include "runner/video.h"
#include "tests/common/test_check.h"

#define CK(c) CHECK(c, "%s", "")

static int test_report(const char *name) {
    printf("%s: %d checks, %d failures\n", name, checks, failures);
    if (!failures) printf("all checks passed\n");
    return failures ? 1 : 0;
}

static float max_diff(const float *a, const float *b, int64_t n) {
    float m = 0;
    for (int64_t i = 0; i < n; i++) m = fmaxf(m, fabsf(a[i] - b[i]));
    return m;
}

static int unit(void) {
    char err[2048];
    Weights *w = NULL;
    if (weights_open(&w, "builtin:tiny-animate", err, sizeof err)) {
        printf("FAIL: %s\n", err);
        return 1;
    }
    Arena wa;
    CK(arena_init(&wa, DEV_CPU, (size_t)64 << 20) == 0);
    Conditioner cond;
    Unet unet;
    Vae vae;
    MotionAdapterFile mf;
    UnetVideo video;
    IpAdapter ip;
    int ok = !cond_load(&cond, w, &wa, DT_F32, err, sizeof err) &&
             !unet_load(&unet, w, &wa, DT_F32, err, sizeof err) &&
             !vae_load(&vae, w, VAE_BOTH, &wa, DT_F32, err, sizeof err) &&
             !animate_motion_adapter_from_weights(&mf, w, err, sizeof err) &&
             !unet_video_load(&video, &unet, &mf, &wa, err, sizeof err) &&
             !animate_ip_adapter_from_weights(&ip, &unet, w, &wa, DT_F32, err, sizeof err);
    if (!ok) {
        printf("FAIL: loading builtin:tiny-animate: %s\n", err);
        return 1;
    }
    CK(ip.embed_dim == 16 && animate_ip_adapter_embed_dim(w) == 16);
    AnimateModel m = {.cond = &cond, .unet = &unet, .vae = &vae, .ip = &ip, .ip_scale = 0.6f,
                      .video = &video, .dev = DEV_CPU, .dt = DT_F32};
    CK(sched_config_from_weights(&m.sched_cfg, w, err, sizeof err) == 0);
    enum { F = 4, S = 16 };
    float *A = malloc(sizeof(float) * 3 * S * S), *B = malloc(sizeof(float) * 3 * S * S);
    float *P = malloc(sizeof(float) * F * 16);
    for (int i = 0; i < 3 * S * S; i++) {
        A[i] = sinf(0.1f * (float)i);
        B[i] = cosf(0.07f * (float)i);
    }
    for (int i = 0; i < F * 16; i++) P[i] = 0.5f * sinf(0.3f * (float)i);
    AnimateRequest q = {.frames = F, .width = S, .height = S, .start_image = A, .end_image = B,
                        .embeds = P, .prompt = "a man runs", .negative = "blurry", .seed = 3,
                        .steps = 3, .guidance = 5.0f};
    pipeline_sampler_parse("euler", &q.sampler, NULL, 0);
    AnimateOutput o1, o2, o3;
    CK(animate_transition(&m, &q, &o1, err, sizeof err) == 0);
    CK(animate_transition(&m, &q, &o2, err, sizeof err) == 0);
    const int64_t n1 = 4 * (S / 2) * (S / 2), nf = 3 * S * S;
    const float *L = o1.latents.data, *Z = o1.z_ends.data;
    // the ends are exactly z_A, z_B (tolerance 0: latent replacement after the last step)
    CK(max_diff(L, Z, n1) == 0.0f);
    CK(max_diff(L + (F - 1) * n1, Z + n1, n1) == 0.0f);
    // z_A = encode(A).mean * scaling_factor, computed on its own
    Tensor x = tensor_view(A, DT_F32, DEV_CPU, 4, SHAPE(1, 3, S, S));
    float *mean = malloc(sizeof(float) * n1);
    Tensor mt = tensor_view(mean, DT_F32, DEV_CPU, 4, SHAPE(1, 4, S / 2, S / 2));
    Arena ws;
    CK(arena_init(&ws, DEV_CPU, vae_image_scratch_bytes(&vae, NULL, S / 2, S / 2)) == 0);
    CK(vae_encode_image(&vae, &x, &mt, NULL, NULL, &ws, err, sizeof err) == 0);
    for (int64_t i = 0; i < n1; i++) mean[i] *= vae.cfg.scaling_factor;
    CK(max_diff(mean, Z, n1) < 1e-6f);
    // interior frames moved away from both ends
    for (int f = 1; f < F - 1; f++) {
        CK(max_diff(L + f * n1, Z, n1) > 1e-3f);
        CK(max_diff(L + f * n1, Z + n1, n1) > 1e-3f);
    }
    // the same request gives the same bytes
    CK(memcmp(o1.latents.data, o2.latents.data, sizeof(float) * F * n1) == 0);
    CK(memcmp(o1.frames.data, o2.frames.data, sizeof(float) * F * nf) == 0);
    // the motion modules and the image tokens both change the interior, never the ends
    m.video = NULL;
    CK(animate_transition(&m, &q, &o3, err, sizeof err) == 0);
    CK(max_diff(o3.latents.data, Z, n1) == 0.0f);
    CK(max_diff((float *)o3.latents.data + n1, L + n1, (F - 2) * n1) > 1e-4f);
    animate_output_free(&o3);
    m.video = &video, m.ip_scale = 0.0f;
    CK(animate_transition(&m, &q, &o3, err, sizeof err) == 0);
    CK(max_diff((float *)o3.latents.data + n1, L + n1, (F - 2) * n1) > 1e-4f);
    animate_output_free(&o3);
    // a different seed: other interior frames, the same ends
    m.ip_scale = 0.6f, q.seed = 4;
    CK(animate_transition(&m, &q, &o3, err, sizeof err) == 0);
    CK(max_diff(o3.latents.data, Z, n1) == 0.0f);
    CK(max_diff((float *)o3.latents.data + n1, L + n1, (F - 2) * n1) > 1e-3f);
    animate_output_free(&o3);
    // add_noise: DDIM a^2 + b^2 = 1; Euler (1, sigma_i); DPM++ (alpha, sigma alpha)
    Scheduler s;
    const SchedKind kinds[3] = {SCHED_DDIM, SCHED_EULER, SCHED_DPMPP_2M};
    for (int k = 0; k < 3; k++) {
        CK(sched_init(&s, kinds[k], &m.sched_cfg, 5, err, sizeof err) == 0);
        for (int i = 0; i < 5; i++) {
            double a, b;
            animate_add_noise_coefs(&s, i, &a, &b);
            if (kinds[k] == SCHED_DDIM) CK(fabs(a * a + b * b - 1.0) < 1e-12);
            if (kinds[k] == SCHED_EULER) CK(a == 1.0 && b == s.sigmas[i]);
            if (kinds[k] == SCHED_DPMPP_2M)
                CK(fabs(b / a - s.sigmas[i]) < 1e-9 * s.sigmas[i] &&
                      fabs(a - 1.0 / sqrt((double)s.sigmas[i] * s.sigmas[i] + 1.0)) < 1e-12);
        }
        sched_free(&s);
    }
    // a one-frame transition and a size the UNet cannot take are refused
    q.frames = 1;
    CK(animate_transition(&m, &q, &o3, err, sizeof err) == -1 && strstr(err, "2 frames"));
    q.frames = F, q.width = 18;
    CK(animate_transition(&m, &q, &o3, err, sizeof err) == -1 && strstr(err, "multiples"));
    animate_output_free(&o1), animate_output_free(&o2);
    free(A), free(B), free(P), free(mean);
    arena_free(&ws);
    ip_adapter_free(&ip), unet_video_free(&video), motion_adapter_close(&mf);
    vae_free(&vae), unet_free(&unet), cond_free(&cond);
    arena_free(&wa);
    weights_close(w);
    return test_report("animate unit");
}

static int count(const char *path, long want, int W, int H) {
    char err[1024];
    VideoReader *v;
    if (video_open(path, VIDEO_EXACT_COUNT, &v, err, sizeof err)) {
        printf("FAIL: %s\n", err);
        return 1;
    }
    const VideoInfo *in = video_info(v);
    const int ok = in->nframes == want && in->width == W && in->height == H;
    printf("%s: %lld frames %dx%d (%s)\n", path, (long long)in->nframes, in->width, in->height,
           in->codec);
    video_close(v);
    if (!ok) printf("FAIL: %s: expected %ld frames of %dx%d\n", path, want, W, H);
    return !ok;
}

int main(int argc, char **argv) {
    if (argc == 2 && !strcmp(argv[1], "unit")) return unit();
    if (argc == 6 && !strcmp(argv[1], "count"))
        return count(argv[2], atol(argv[3]), atoi(argv[4]), atoi(argv[5]));
    fprintf(stderr, "usage: test_animate unit | count MP4 N W H\n");
    return 2;
}

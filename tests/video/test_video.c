// tests/video/test_video.c: video reading, clip planning, writing and dataset listings.
//
//   test_video decode DIR       the make_videos set: sizes, counts, rates, and the shapes
//                               of scene.h at their known places in every frame
//   test_video bad DIR WORK     truncated / non-video / missing / empty files: messages
//   test_video clips            clip plans: strides, sample rates, K, ranges, edge cases
//   test_video roundtrip WORK   video_write then video_open: count, rate, PSNR; atomicity
//   test_video csv WORK         manifests: quoting, separators, WebVid columns, bad rows
//   test_video folder DIR       the make_videos folder as a dataset
//   test_video repro DIR DIR2   two make_videos runs: identical bytes, < 2 MB in all
//
// Pixel tolerances: the mean of a 3x3 patch is compared per channel with the colour drawn
// there, within 24 levels for H.264/VP8 (quantisation and 4:2:0 chroma) and 40 for GIF
// (3:3:2 palette: 36 levels between reds and greens); shape and background colours
// differ by >= 85 in blue, so a patch matching one cannot match the other.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libavcodec/avcodec.h>

#include "runner/dataset.h"
#include "runner/video.h"
#include "runner/video_write.h"
#include "tests/common/test_check.h"
#include "tests/video/scene.h"

static char err[2048];

static int contains(const char *s, const char *sub) { return s && strstr(s, sub) != NULL; }

// Mean of the 3x3 patch around (x, y) of an (h, w, 3) image.
static void patch_mean(const uint8_t *img, int w, int h, double x, double y, double out[3]) {
    int cx = (int)lround(x), cy = (int)lround(y);
    out[0] = out[1] = out[2] = 0;
    int n = 0;
    for (int dy = -1; dy <= 1; dy++)
        for (int dx = -1; dx <= 1; dx++) {
            int px = cx + dx, py = cy + dy;
            if (px < 0 || py < 0 || px >= w || py >= h) continue;
            for (int c = 0; c < 3; c++) out[c] += img[((size_t)py * w + px) * 3 + c];
            n++;
        }
    for (int c = 0; c < 3; c++) out[c] /= n;
}

static double max_diff(const double a[3], const double b[3]) {
    double m = 0;
    for (int c = 0; c < 3; c++) m = fmax(m, fabs(a[c] - b[c]));
    return m;
}

// Checks frame k of n of a scene video decoded at ow x oh (scene size w x h).
static void check_scene_frame(const char *name, const uint8_t *img, int k, int n, int w, int h,
                              int ow, int oh, double tol) {
    double sx = (double)ow / w, sy = (double)oh / h;
    double ccx, ccy, r, scx, scy, a, got[3], want[3];
    scene_circle(k, n, w, h, &ccx, &ccy, &r);
    scene_square(k, n, w, h, &scx, &scy, &a);
    // pixel centres scale as (x + 0.5) * s - 0.5
    patch_mean(img, ow, oh, (scx + 0.5) * sx - 0.5, (scy + 0.5) * sy - 0.5, got);
    for (int c = 0; c < 3; c++) want[c] = scene_square_rgb[c];
    CHECK(max_diff(got, want) <= tol,
          "%s frame %d: square at (%.1f, %.1f): (%.0f %.0f %.0f), want (%.0f %.0f %.0f)", name, k,
          scx, scy, got[0], got[1], got[2], want[0], want[1], want[2]);
    if (fabs(ccx - scx) > a + 3 || fabs(ccy - scy) > a + 3) {  // circle centre not covered
        patch_mean(img, ow, oh, (ccx + 0.5) * sx - 0.5, (ccy + 0.5) * sy - 0.5, got);
        for (int c = 0; c < 3; c++) want[c] = scene_circle_rgb[c];
        CHECK(max_diff(got, want) <= tol, "%s frame %d: circle at (%.1f, %.1f): (%.0f %.0f %.0f)",
              name, k, ccx, ccy, got[0], got[1], got[2]);
    }
    // background: the first corner (4 px in) clear of both shapes by 5 px
    const double corners[4][2] = {{4, h - 5}, {w - 5, h - 5}, {4, 4}, {w - 5, 4}};
    for (int i = 0; i < 4; i++) {
        double x = corners[i][0], y = corners[i][1];
        if (hypot(x - ccx, y - ccy) < r + 5) continue;
        if (fabs(x - scx) < a + 5 && fabs(y - scy) < a + 5) continue;
        uint8_t bg[3];
        want[0] = want[1] = want[2] = 0;
        for (int dy = -1; dy <= 1; dy++)
            for (int dx = -1; dx <= 1; dx++) {
                scene_background((int)x + dx, (int)y + dy, w, h, bg);
                for (int c = 0; c < 3; c++) want[c] += bg[c] / 9.0;
            }
        patch_mean(img, ow, oh, (x + 0.5) * sx - 0.5, (y + 0.5) * sy - 0.5, got);
        CHECK(max_diff(got, want) <= tol,
              "%s frame %d: background at (%.0f, %.0f): (%.0f %.0f %.0f), want (%.0f %.0f %.0f)",
              name, k, x, y, got[0], got[1], got[2], want[0], want[1], want[2]);
        break;
    }
}

static int is_gif(const char *name) { return strstr(name, ".gif") != NULL; }

// ---- decode ---------------------------------------------------------------------------------

static void test_decode(const char *dir) {
    char path[4096];
    for (int i = 0; i < SCENE_NVIDEOS; i++) {
        const SceneVideo *s = &scene_videos[i];
        snprintf(path, sizeof path, "%s/%s", dir, s->name);
        for (int flags = 0; flags <= VIDEO_EXACT_COUNT; flags += VIDEO_EXACT_COUNT) {
            VideoReader *v;
            int rc = video_open(path, flags, &v, err, sizeof err);
            CHECK(rc == 0, "%s: %s", path, err);
            if (rc) continue;
            const VideoInfo *in = video_info(v);
            CHECK(in->width == s->width && in->height == s->height, "%s: %dx%d", path, in->width,
                  in->height);
            CHECK(in->nframes == s->nframes, "%s: %lld frames, want %d", path,
                  (long long)in->nframes, s->nframes);
            CHECK(fabs(in->fps - s->fps) < 1e-6, "%s: fps %g, want %g", path, in->fps, s->fps);
            CHECK(fabs(in->duration - s->nframes / s->fps) <= 1.0 / s->fps + 1e-6,
                  "%s: duration %g, want %g", path, in->duration, s->nframes / s->fps);
            int webm = strstr(s->name, ".webm") != NULL;
            CHECK(in->nframes_decoded == (flags || webm), "%s (flags %d): nframes_decoded %d", path,
                  flags, in->nframes_decoded);
            double tol = is_gif(s->name) ? 40 : 24;
            size_t fb = (size_t)s->width * s->height * 3;
            uint8_t *all = malloc(fb * s->nframes), *again = malloc(fb * s->nframes);
            int64_t *idx = malloc(sizeof *idx * s->nframes);
            for (int k = 0; k < s->nframes; k++) idx[k] = k;
            rc = video_read_frames(v, idx, s->nframes, 0, 0, all, err, sizeof err);
            CHECK(rc == 0, "%s: %s", path, err);
            for (int k = 0; !rc && flags == 0 && k < s->nframes; k++)
                check_scene_frame(s->name, all + fb * k, k, s->nframes, s->width, s->height,
                                  s->width, s->height, tol);
            // reading again (a rewind) gives the same bytes
            rc = video_read_frames(v, idx, s->nframes, 0, 0, again, err, sizeof err);
            CHECK(rc == 0 && !memcmp(all, again, fb * s->nframes), "%s: second read differs", path);
            // any order, repeats: the same frames
            int64_t pick[5] = {s->nframes - 1, 3, 0, 3, s->nframes / 2};
            rc = video_read_frames(v, pick, 5, 0, 0, again, err, sizeof err);
            CHECK(rc == 0, "%s: %s", path, err);
            for (int j = 0; !rc && j < 5; j++)
                CHECK(!memcmp(again + fb * j, all + fb * pick[j], fb),
                      "%s: frame %lld read out of order differs", path, (long long)pick[j]);
            // half size, scaled by libswscale
            int hw = s->width / 2, hh = s->height / 2;
            int64_t mid = s->nframes / 3;
            rc = video_read_frames(v, &mid, 1, hw, hh, again, err, sizeof err);
            CHECK(rc == 0, "%s: %s", path, err);
            if (!rc && flags == 0)
                check_scene_frame(s->name, again, (int)mid, s->nframes, s->width, s->height, hw, hh,
                                  tol + 8);
            int64_t beyond = s->nframes;
            CHECK(video_read_frames(v, &beyond, 1, 0, 0, again, err, sizeof err) == -1 &&
                      contains(err, "frame ") && contains(err, path),
                  "%s: frame past the end: %s", path, err);
            CHECK(video_read_frames(v, &mid, 1, -3, 7, again, err, sizeof err) == -1 &&
                      contains(err, "output size"),
                  "bad size: %s", err);
            free(all);
            free(again);
            free(idx);
            video_close(v);
        }
    }
    // two readers of one file give identical frames (what two ranks do)
    snprintf(path, sizeof path, "%s/%s", dir, scene_videos[2].name);
    VideoReader *a = NULL, *b = NULL;
    int64_t k = 17;
    uint8_t fa[128 * 72 * 3], fb[128 * 72 * 3];
    int rc = video_open(path, 0, &a, err, sizeof err) || video_open(path, 0, &b, err, sizeof err);
    CHECK(!rc, "%s", err);
    if (!rc)
        CHECK(!video_read_frames(a, &k, 1, 0, 0, fa, err, sizeof err) &&
                  !video_read_frames(b, &k, 1, 0, 0, fb, err, sizeof err) &&
                  !memcmp(fa, fb, sizeof fa),
              "two readers differ: %s", err);
    video_close(a);
    video_close(b);
}

// ---- bad files ------------------------------------------------------------------------------

static int copy_prefix(const char *from, const char *to, double fraction) {
    FILE *in = fopen(from, "rb");
    if (!in) return -1;
    fseek(in, 0, SEEK_END);
    long n = ftell(in);
    rewind(in);
    char *buf = malloc((size_t)n);
    size_t got = fread(buf, 1, (size_t)n, in);
    fclose(in);
    FILE *out = fopen(to, "wb");
    int rc = out && got == (size_t)n ? 0 : -1;
    if (out) {
        fwrite(buf, 1, (size_t)(n * fraction), out);
        fclose(out);
    }
    free(buf);
    return rc;
}

static void test_bad(const char *dir, const char *work) {
    char path[4096], p2[4096];
    mkdir(work, 0777);
    VideoReader *v = (VideoReader *)1;
    // the cut mp4: its index survives (faststart), so it opens with 40 frames...
    snprintf(path, sizeof path, "%s/%s", dir, SCENE_TRUNCATED);
    int rc = video_open(path, VIDEO_EXACT_COUNT, &v, err, sizeof err);
    CHECK(rc == -1 && v == NULL, "truncated opened with exact count");
    CHECK(contains(err, path) && contains(err, "truncated: decoded ") &&
              contains(err, " of 40 frames"),
          "message: %s", err);
    printf("  %s\n", err);
    rc = video_open(path, 0, &v, err, sizeof err);
    CHECK(rc == 0 && video_info(v)->nframes == 40, "truncated, container count: %s", err);
    if (!rc) {
        // ...frames of the first half decode, the last one does not
        int64_t early = 2, late = 39;
        uint8_t *f = malloc(96 * 96 * 3);
        CHECK(video_read_frames(v, &early, 1, 0, 0, f, err, sizeof err) == 0, "%s", err);
        if (video_read_frames(v, &early, 1, 0, 0, f, err, sizeof err) == 0)
            check_scene_frame("truncated", f, 2, 40, 96, 96, 96, 96, 24);
        CHECK(video_read_frames(v, &late, 1, 0, 0, f, err, sizeof err) == -1 &&
                  contains(err, "truncated: decoded ") && contains(err, " of 40 frames"),
              "late frame: %s", err);
        free(f);
        video_close(v);
    }
    snprintf(path, sizeof path, "%s/%s", dir, SCENE_NOT_VIDEO);
    CHECK(video_open(path, 0, &v, err, sizeof err) == -1 && contains(err, path) &&
              contains(err, "not a video"),
          "text file: %s", err);
    printf("  %s\n", err);
    snprintf(path, sizeof path, "%s/no_such_file.mp4", dir);
    CHECK(video_open(path, 0, &v, err, sizeof err) == -1 && contains(err, "No such file"),
          "missing: %s", err);
    CHECK(video_open(dir, 0, &v, err, sizeof err) == -1 && contains(err, "folder"), "folder: %s",
          err);
    snprintf(path, sizeof path, "%s/empty.webm", work);
    fclose(fopen(path, "wb"));
    CHECK(video_open(path, 0, &v, err, sizeof err) == -1 && contains(err, "empty file"),
          "empty: %s", err);
    // the first 5% of an mp4: its index is cut off
    snprintf(path, sizeof path, "%s/%s", dir, scene_videos[0].name);
    snprintf(p2, sizeof p2, "%s/head.mp4", work);
    CHECK(copy_prefix(path, p2, 0.05) == 0, "copy");
    CHECK(video_open(p2, 0, &v, err, sizeof err) == -1 && contains(err, "not a video"), "head: %s",
          err);
    printf("  %s\n", err);
    // a cut webm: no count in the container; exact counting finds it short of its duration
    snprintf(path, sizeof path, "%s/%s", dir, scene_videos[2].name);
    snprintf(p2, sizeof p2, "%s/cut.webm", work);
    CHECK(copy_prefix(path, p2, 0.5) == 0, "copy");
    CHECK(video_open(p2, 0, &v, err, sizeof err) == -1 && contains(err, "truncated: decoded ") &&
              contains(err, " of about 60 frames"),
          "cut webm: %s", err);
    printf("  %s\n", err);
    // the file replaced by text while open: the rewind fails with a message, twice, no crash
    snprintf(path, sizeof path, "%s/%s", dir, scene_videos[0].name);
    snprintf(p2, sizeof p2, "%s/replaced.mp4", work);
    CHECK(copy_prefix(path, p2, 1.0) == 0, "copy");
    if (video_open(p2, 0, &v, err, sizeof err) == 0) {
        uint8_t *f = malloc(64 * 48 * 3);
        int64_t k5 = 5, k2 = 2;
        CHECK(video_read_frames(v, &k5, 1, 0, 0, f, err, sizeof err) == 0, "%s", err);
        FILE *t = fopen(p2, "wb");
        fputs("gone\n", t);
        fclose(t);
        for (int i = 0; i < 2; i++)
            CHECK(video_read_frames(v, &k2, 1, 0, 0, f, err, sizeof err) == -1 &&
                      contains(err, "not a video"),
                  "replaced, try %d: %s", i, err);
        free(f);
        video_close(v);
    } else {
        CHECK(0, "%s", err);
    }
    // an audio-only file is not a video
    snprintf(p2, sizeof p2, "%s/noise.wav", work);
    FILE *f = fopen(p2, "wb");
    const uint32_t rate = 8000, bytes = 8000;
    uint8_t hdr[44] = "RIFF----WAVEfmt ";
    uint32_t v32;
    uint16_t v16;
    v32 = 36 + bytes;
    memcpy(hdr + 4, &v32, 4);
    v32 = 16;
    memcpy(hdr + 16, &v32, 4);
    v16 = 1;
    memcpy(hdr + 20, &v16, 2);
    memcpy(hdr + 22, &v16, 2);
    memcpy(hdr + 24, &rate, 4);
    v32 = rate;
    memcpy(hdr + 28, &v32, 4);
    v16 = 1;
    memcpy(hdr + 32, &v16, 2);
    v16 = 8;
    memcpy(hdr + 34, &v16, 2);
    memcpy(hdr + 36, "data", 4);
    memcpy(hdr + 40, &bytes, 4);
    fwrite(hdr, 1, 44, f);
    for (uint32_t i = 0; i < bytes; i++) fputc(128 + (int)(40 * sin(i * 0.3)), f);
    fclose(f);
    CHECK(video_open(p2, 0, &v, err, sizeof err) == -1 && contains(err, "no video stream"),
          "wav: %s", err);
}

// ---- clip plans -----------------------------------------------------------------------------

static void expect_plan(const char *what, VideoClipSpec spec, int64_t nframes, double fps,
                        int nclips, const int64_t *frames) {
    VideoClipPlan p;
    int rc = video_plan_clips(&spec, nframes, fps, "v.mp4", &p, err, sizeof err);
    CHECK(rc == 0, "%s: %s", what, err);
    if (rc) return;
    CHECK(p.nclips == nclips, "%s: %d clips, want %d", what, p.nclips, nclips);
    for (int i = 0; p.nclips == nclips && i < nclips * spec.length; i++)
        CHECK(p.frames[i] == frames[i], "%s: frame %d is %lld, want %lld", what, i,
              (long long)p.frames[i], (long long)frames[i]);
    video_clip_plan_free(&p);
}

static void expect_fail(const char *what, VideoClipSpec spec, int64_t nframes, double fps,
                        const char *msg) {
    VideoClipPlan p = {0};
    int rc = video_plan_clips(&spec, nframes, fps, "v.mp4", &p, err, sizeof err);
    CHECK(rc == -1 && contains(err, msg) && contains(err, "v.mp4") && p.frames == NULL,
          "%s: rc %d, \"%s\", want \"%s\"", what, rc, err, msg);
}

static void test_clips(void) {
    typedef VideoClipSpec S;
    // stride 2, L 4: a clip spans 7 frames
    expect_plan("exactly long enough", (S){4, 2, 0, 1, VIDEO_CLIPS_EVEN, 0, 0}, 7, 24, 1,
                (int64_t[]){0, 2, 4, 6});
    expect_fail("one frame short", (S){4, 2, 0, 1, VIDEO_CLIPS_EVEN, 0, 0}, 6, 24,
                "too short: 6 frames, a clip needs 4 at stride 2 = 7");
    expect_fail("brief's example", (S){16, 2, 0, 3, VIDEO_CLIPS_EVEN, 0, 0}, 12, 24,
                "too short: 12 frames, a clip needs 16 at stride 2 = 31");
    // even: starts 0..(P-1) spread; P = 20 - 7 + 1 = 14 -> 0, 6, 13
    expect_plan("even K=3", (S){4, 2, 0, 3, VIDEO_CLIPS_EVEN, 0, 0}, 20, 24, 3,
                (int64_t[]){0, 2, 4, 6, 6, 8, 10, 12, 13, 15, 17, 19});
    expect_plan("even K=1 centred", (S){4, 2, 0, 1, VIDEO_CLIPS_EVEN, 0, 0}, 20, 24, 1,
                (int64_t[]){6, 8, 10, 12});
    // only 2 distinct starts: K=5 gives 2 clips
    expect_plan("even, fewer starts than K", (S){3, 1, 0, 5, VIDEO_CLIPS_EVEN, 0, 0}, 4, 24, 2,
                (int64_t[]){0, 1, 2, 1, 2, 3});
    // consecutive: samples 0,2,4,.. cut into clips of 3: as many as fit
    expect_plan("consecutive", (S){3, 2, 0, 10, VIDEO_CLIPS_CONSECUTIVE, 0, 0}, 13, 24, 2,
                (int64_t[]){0, 2, 4, 6, 8, 10});
    expect_plan("consecutive, K caps", (S){3, 2, 0, 1, VIDEO_CLIPS_CONSECUTIVE, 0, 0}, 100, 24, 1,
                (int64_t[]){0, 2, 4});
    expect_plan("consecutive exactly 2", (S){2, 1, 0, 5, VIDEO_CLIPS_CONSECUTIVE, 0, 0}, 4, 24, 2,
                (int64_t[]){0, 1, 2, 3});
    // by time: 8 fps from 24 fps is every 3rd frame; from 30000/1001 fps a step of 3.746...
    expect_plan("fps 8 of 24", (S){4, 0, 8, 1, VIDEO_CLIPS_CONSECUTIVE, 0, 0}, 10, 24, 1,
                (int64_t[]){0, 3, 6, 9});
    expect_fail("fps too short", (S){4, 0, 8, 1, VIDEO_CLIPS_CONSECUTIVE, 0, 0}, 9, 24,
                "too short: 9 frames, a clip needs 4 at 8 fps (from 24 fps) = 10");
    expect_plan("fps 8 of 29.97", (S){5, 0, 8, 1, VIDEO_CLIPS_CONSECUTIVE, 0, 0}, 100,
                30000.0 / 1001, 1, (int64_t[]){0, 3, 7, 11, 14});
    expect_plan("fps 12 of 8 repeats", (S){4, 0, 12, 1, VIDEO_CLIPS_CONSECUTIVE, 0, 0}, 3, 8, 1,
                (int64_t[]){0, 0, 1, 2});
    // ranges: start 1 s, end 2 s at 10 fps: frames 10..19
    expect_plan("start/end", (S){2, 9, 0, 1, VIDEO_CLIPS_EVEN, 1.0, 2.0}, 100, 10, 1,
                (int64_t[]){10, 19});
    expect_fail("start/end too short", (S){2, 10, 0, 1, VIDEO_CLIPS_EVEN, 1.0, 2.0}, 100, 10,
                "too short: 10 frames from 1 s to 2 s, a clip needs 2 at stride 10 = 11");
    expect_plan("start only, fractional", (S){2, 1, 0, 1, VIDEO_CLIPS_CONSECUTIVE, 0.25, 0}, 5, 10,
                1, (int64_t[]){3, 4});
    expect_plan("end past the video", (S){2, 1, 0, 9, VIDEO_CLIPS_CONSECUTIVE, 0, 99}, 4, 10, 2,
                (int64_t[]){0, 1, 2, 3});
    expect_fail("start past the end", (S){1, 1, 0, 1, VIDEO_CLIPS_EVEN, 5, 0}, 10, 10,
                "too short: the range starts at 5 s, the video ends at 1 s");
    expect_plan("L=1", (S){1, 1, 0, 3, VIDEO_CLIPS_EVEN, 0, 0}, 10, 10, 3, (int64_t[]){0, 4, 9});
    expect_fail("zero frames", (S){1, 1, 0, 1, VIDEO_CLIPS_EVEN, 0, 0}, 0, 10,
                "too short: 0 frames");
    expect_fail("bad length", (S){0, 1, 0, 1, VIDEO_CLIPS_EVEN, 0, 0}, 10, 10, "clip length 0");
    expect_fail("bad stride", (S){2, 0, 0, 1, VIDEO_CLIPS_EVEN, 0, 0}, 10, 10, "stride 0");
    expect_fail("bad range", (S){2, 1, 0, 1, VIDEO_CLIPS_EVEN, 2, 1}, 10, 10, "start 2 s, end 1 s");
    // determinism: a plan is a pure function of its arguments
    VideoClipSpec s = {16, 3, 0, 7, VIDEO_CLIPS_EVEN, 0.5, 0};
    VideoClipPlan p1, p2;
    CHECK(!video_plan_clips(&s, 1000, 25, "x", &p1, err, sizeof err) &&
              !video_plan_clips(&s, 1000, 25, "x", &p2, err, sizeof err) && p1.nclips == 7 &&
              !memcmp(p1.frames, p2.frames, sizeof *p1.frames * 7 * 16),
          "plans differ");
    for (int c = 0; c < p1.nclips; c++)
        for (int j = 0; j < 16; j++) {
            int64_t f = p1.frames[c * 16 + j];
            CHECK(f >= 13 && f < 1000 && (j == 0 || f - p1.frames[c * 16 + j - 1] == 3),
                  "clip %d frame %d = %lld", c, j, (long long)f);
        }
    CHECK(p1.frames[6 * 16 + 15] == 999, "last clip ends at the last frame: %lld",
          (long long)p1.frames[6 * 16 + 15]);
    video_clip_plan_free(&p1);
    video_clip_plan_free(&p2);
}

// ---- writing --------------------------------------------------------------------------------

static double psnr(const uint8_t *a, const uint8_t *b, size_t n) {
    double se = 0;
    for (size_t i = 0; i < n; i++) se += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
    return se == 0 ? 99 : 10 * log10(255.0 * 255.0 / (se / n));
}

static int file_bytes(const char *path, char **out, long *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    fseek(f, 0, SEEK_END);
    *n = ftell(f);
    rewind(f);
    *out = malloc((size_t)*n + 1);
    size_t got = fread(*out, 1, (size_t)*n, f);
    fclose(f);
    return got == (size_t)*n ? 0 : -1;
}

static int temp_files_in(const char *dir) {
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "ls -a '%s' | grep -c '\\.tmp-'", dir);
    FILE *p = popen(cmd, "r");
    int n = -1;
    if (p) {
        if (fscanf(p, "%d", &n) != 1) n = -1;
        pclose(p);
    }
    return n;
}

static long size_of(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0 ? (long)sb.st_size : -1;
}

static void test_roundtrip(const char *work) {
    mkdir(work, 0777);
    const int w = 96, h = 64, n = 16;
    size_t fb = (size_t)w * h * 3;
    uint8_t *frames = malloc(fb * n), *back = malloc(fb * n);
    for (int k = 0; k < n; k++) scene_render(k, n, w, h, frames + fb * k);
    int64_t idx[16];
    for (int k = 0; k < n; k++) idx[k] = k;
    // Without libx264 in FFmpeg the mp4/mkv/mov default is mpeg4.
    const char *h264 = avcodec_find_encoder_by_name("libx264") ? "libx264" : "mpeg4";
    const struct {
        const char *name, *codec, *want_codec;
        double fps, min_psnr;  // PSNR floor in dB over all frames and channels
    } cases[] = {
        {"rt.mp4", NULL, h264, 8, 30},
        {"rt_mpeg4.mp4", "mpeg4", "mpeg4", 12, 30},
        {"rt.webm", NULL, "libvpx", 24, 30},
        {"rt_vp9.webm", "libvpx-vp9", "libvpx-vp9", 10, 30},
        {"rt.mkv", NULL, h264, 30000.0 / 1001, 30},
        {"rt.avi", NULL, "mpeg4", 15, 30},
        {"rt.mov", NULL, h264, 25, 30},
        {"rt.gif", NULL, "gif", 10, 18},  // 3:3:2 colours: ~20 dB is what the palette allows
    };
    char path[4096], codec[32];
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        snprintf(path, sizeof path, "%s/%s", work, cases[c].name);
        VideoWriteOptions o = {cases[c].codec, -1};
        int rc = video_write(path, frames, n, w, h, cases[c].fps, &o, codec, sizeof codec, err,
                             sizeof err);
        if (rc && cases[c].codec && contains(err, "not in this FFmpeg")) {
            printf("  %s: skipped (%s)\n", cases[c].name, err);
            continue;
        }
        CHECK(rc == 0, "%s: %s", path, err);
        if (rc) continue;
        CHECK(!strcmp(codec, cases[c].want_codec), "%s: codec %s, want %s", path, codec,
              cases[c].want_codec);
        VideoReader *v;
        rc = video_open(path, VIDEO_EXACT_COUNT, &v, err, sizeof err);
        CHECK(rc == 0, "%s: %s", path, err);
        if (rc) continue;
        const VideoInfo *in = video_info(v);
        CHECK(in->nframes == n && in->width == w && in->height == h, "%s: %lld frames %dx%d", path,
              (long long)in->nframes, in->width, in->height);
        CHECK(fabs(in->fps - cases[c].fps) < 1e-3, "%s: fps %.6f, want %.6f", path, in->fps,
              cases[c].fps);
        rc = video_read_frames(v, idx, n, 0, 0, back, err, sizeof err);
        CHECK(rc == 0, "%s: %s", path, err);
        double p = rc ? 0 : psnr(frames, back, fb * n);
        CHECK(p > cases[c].min_psnr, "%s: PSNR %.2f dB <= %.0f", path, p, cases[c].min_psnr);
        printf("  %-13s %-11s %6ld bytes  fps %8.4f  PSNR %.2f dB\n", cases[c].name, codec,
               size_of(path), in->fps, p);
        video_close(v);
    }
    // Same frames, same bytes.
    char *a = NULL, *b = NULL;
    long na = 0, nb = 0;
    snprintf(path, sizeof path, "%s/rt_again.mp4", work);
    CHECK(!video_write(path, frames, n, w, h, 8, NULL, NULL, 0, err, sizeof err), "%s", err);
    char first[4096];
    snprintf(first, sizeof first, "%s/rt.mp4", work);
    CHECK(!file_bytes(first, &a, &na) && !file_bytes(path, &b, &nb) && na == nb &&
              !memcmp(a, b, (size_t)na),
          "two writes of the same frames differ (%ld vs %ld bytes)", na, nb);
    free(a);
    free(b);

    // Refusals, with nothing left behind.
    snprintf(path, sizeof path, "%s/no/such/folder/x.mp4", work);
    CHECK(video_write(path, frames, n, w, h, 8, NULL, NULL, 0, err, sizeof err) == -1 &&
              contains(err, "cannot create") && contains(err, path),
          "missing folder: %s", err);
    snprintf(path, sizeof path, "%s/odd.mp4", work);
    CHECK(video_write(path, frames, 1, 33, 20, 8, NULL, NULL, 0, err, sizeof err) == -1 &&
              contains(err, "even") && size_of(path) < 0,
          "odd size: %s", err);
    snprintf(path, sizeof path, "%s/x.xyz", work);
    CHECK(video_write(path, frames, 1, w, h, 8, NULL, NULL, 0, err, sizeof err) == -1 &&
              contains(err, "unknown video file extension"),
          "extension: %s", err);
    snprintf(path, sizeof path, "%s/x.mp4", work);
    VideoWriteOptions bad = {"no_such_encoder", -1};
    CHECK(video_write(path, frames, 1, w, h, 8, &bad, NULL, 0, err, sizeof err) == -1 &&
              contains(err, "no_such_encoder"),
          "encoder: %s", err);
    snprintf(path, sizeof path, "%s/x.webm", work);
    VideoWriteOptions mpeg4 = {"mpeg4", -1};
    CHECK(video_write(path, frames, 1, w, h, 8, &mpeg4, NULL, 0, err, sizeof err) == -1 &&
              contains(err, "cannot hold"),
          "webm+mpeg4: %s", err);
    CHECK(video_write(path, frames, 1, w, h, 0, NULL, NULL, 0, err, sizeof err) == -1 &&
              contains(err, "frame rate"),
          "fps 0: %s", err);
    // An aborted or empty video leaves an existing file as it was.
    snprintf(path, sizeof path, "%s/keep.mp4", work);
    FILE *f = fopen(path, "wb");
    fputs("old", f);
    fclose(f);
    VideoWriter *vw;
    CHECK(!video_writer_open(&vw, path, w, h, 8, NULL, err, sizeof err), "%s", err);
    CHECK(!video_writer_add(vw, frames, err, sizeof err), "%s", err);
    video_writer_abort(vw);
    CHECK(size_of(path) == 3, "abort changed %s", path);
    CHECK(!video_writer_open(&vw, path, w, h, 8, NULL, err, sizeof err), "%s", err);
    CHECK(video_writer_close(vw, err, sizeof err) == -1 && contains(err, "no frames"), "empty: %s",
          err);
    CHECK(size_of(path) == 3, "empty close changed %s", path);
    CHECK(temp_files_in(work) == 0, "temporary files left in %s", work);
    free(frames);
    free(back);
}

// ---- datasets -------------------------------------------------------------------------------

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "wb");
    fputs(text, f);
    fclose(f);
}

static int has_bad(const Dataset *ds, const char *file_line, const char *what) {
    for (int i = 0; i < ds->nbad_kept; i++)
        if (contains(ds->bad[i], file_line) && contains(ds->bad[i], what)) return 1;
    return 0;
}

static void expect_item(const Dataset *ds, int i, const char *path, const char *caption,
                        double start, double end, int line) {
    if (i >= ds->n) {
        CHECK(0, "item %d missing (%d items)", i, ds->n);
        return;
    }
    const DatasetItem *it = &ds->items[i];
    CHECK(!strcmp(it->path, path), "item %d path \"%s\", want \"%s\"", i, it->path, path);
    CHECK(!strcmp(it->caption, caption), "item %d caption \"%s\", want \"%s\"", i, it->caption,
          caption);
    CHECK(it->start == start && it->end == end && it->line == line,
          "item %d: %g..%g line %d, want %g..%g line %d", i, it->start, it->end, it->line, start,
          end, line);
}

static void test_csv(const char *work) {
    char path[4096], want[4096];
    mkdir(work, 0777);
    Dataset ds;
    snprintf(path, sizeof path, "%s/basic.csv", work);
    write_file(path,
               "path,caption,start,end\n"                         // 1
               "a.mp4,\"hello, world\",,\n"                       // 2
               "\"sub/b c.mp4\",\"she said \"\"hi\"\"\",1.5,3\n"  // 3
               "/abs/x.mp4,plain,,\n"                             // 4
               "\"multi\nline.mp4\",\"cap\n"                      // 5, 6
               "tion\",0,1\n"                                     // 7
               "bad_fields.mp4,too,many,fields,here\n"            // 8
               ",empty path,,\n"                                  // 9
               "c.mp4,\"bad \"quote\",,\n"                        // 10
               "d.mp4,cap,abc,\n"                                 // 11
               "e.mp4,cap,2,1\n"                                  // 12
               "\n"                                               // 13
               "f.mp4,a \"quote\" inside,, ");                    // 14 (no newline at the end)
    CHECK(!dataset_open(path, NULL, &ds, err, sizeof err), "%s", err);
    CHECK(ds.n == 5 && ds.nbad == 5 && ds.is_manifest, "%d items, %d bad", ds.n, ds.nbad);
    snprintf(want, sizeof want, "%s/a.mp4", work);
    expect_item(&ds, 0, want, "hello, world", -1, -1, 2);
    snprintf(want, sizeof want, "%s/sub/b c.mp4", work);
    expect_item(&ds, 1, want, "she said \"hi\"", 1.5, 3, 3);
    expect_item(&ds, 2, "/abs/x.mp4", "plain", -1, -1, 4);
    snprintf(want, sizeof want, "%s/multi\nline.mp4", work);
    expect_item(&ds, 3, want, "cap\ntion", 0, 1, 5);
    snprintf(want, sizeof want, "%s/f.mp4", work);
    expect_item(&ds, 4, want, "a \"quote\" inside", -1, -1, 14);
    CHECK(ds.n == 5 && !strcmp(ds.items[1].id, "sub/b c.mp4"), "id");
    char fl[4200];
    snprintf(fl, sizeof fl, "%s:8:", path);
    CHECK(has_bad(&ds, fl, "5 fields, the header has 4"), "line 8");
    snprintf(fl, sizeof fl, "%s:9:", path);
    CHECK(has_bad(&ds, fl, "empty path"), "line 9");
    snprintf(fl, sizeof fl, "%s:10:", path);
    CHECK(has_bad(&ds, fl, "after the closing quote"), "line 10");
    snprintf(fl, sizeof fl, "%s:11:", path);
    CHECK(has_bad(&ds, fl, "start \"abc\""), "line 11");
    snprintf(fl, sizeof fl, "%s:12:", path);
    CHECK(has_bad(&ds, fl, "end 1 s is not after start 2 s"), "line 12");
    for (int i = 0; i < ds.nbad_kept; i++) printf("  bad row: %s\n", ds.bad[i]);
    dataset_free(&ds);

    // The root option, and a manifest named without a folder (relative to the cwd).
    DatasetOptions o = {.root = "/data/videos"};
    CHECK(!dataset_open(path, &o, &ds, err, sizeof err) && ds.n == 5 &&
              !strcmp(ds.items[0].path, "/data/videos/a.mp4") &&
              !strcmp(ds.items[2].path, "/abs/x.mp4"),
          "root: %s", ds.n ? ds.items[0].path : err);
    dataset_free(&ds);
    char cwd[4096];
    CHECK(getcwd(cwd, sizeof cwd) && chdir(work) == 0, "chdir");
    CHECK(!dataset_open("basic.csv", NULL, &ds, err, sizeof err) && ds.n == 5 &&
              !strcmp(ds.items[0].path, "a.mp4"),
          "relative manifest: %s", ds.n ? ds.items[0].path : err);
    dataset_free(&ds);
    CHECK(chdir(cwd) == 0, "chdir back");

    // TSV with a byte order mark, CRLF, a blank line, literal quotes, other column names.
    snprintf(path, sizeof path, "%s/list.tsv", work);
    write_file(path,
               "\xEF\xBB\xBFVideo\tName\tignored\r\nx.mp4\tcap \"quoted\", stays\t1\r\n\r\n"
               "y.mp4\tsecond\t2\r\n");
    CHECK(!dataset_open(path, NULL, &ds, err, sizeof err) && ds.n == 2 && ds.nbad == 0, "tsv: %s",
          err);
    snprintf(want, sizeof want, "%s/x.mp4", work);
    expect_item(&ds, 0, want, "cap \"quoted\", stays", -1, -1, 2);
    snprintf(want, sizeof want, "%s/y.mp4", work);
    expect_item(&ds, 1, want, "second", -1, -1, 4);
    dataset_free(&ds);
    // Sniffed: a .txt with tabs is TSV.
    snprintf(path, sizeof path, "%s/list.txt", work);
    write_file(path, "file\tcaption\nz, y.mp4\tone, two\n");
    CHECK(!dataset_open(path, NULL, &ds, err, sizeof err) && ds.n == 1 &&
              !strcmp(ds.items[0].caption, "one, two"),
          "sniffed tsv: %s", err);
    dataset_free(&ds);

    // WebVid's CSV: videoid + page_dir, caption from name.
    const char *webvid =
        "videoid,contentUrl,duration,page_dir,name\n"
        "1001,https://example.com/1001.mp4,PT00H00M11S,000001_000050,\"Aerial shot, mountains\"\n"
        "1002,https://example.com/1002.mp4,PT00H00M30S,000001_000050,Beach at dawn\n";
    snprintf(path, sizeof path, "%s/webvid.csv", work);
    write_file(path, webvid);
    CHECK(!dataset_open(path, NULL, &ds, err, sizeof err) && ds.n == 2, "webvid: %s", err);
    snprintf(want, sizeof want, "%s/000001_000050/1001.mp4", work);
    expect_item(&ds, 0, want, "Aerial shot, mountains", -1, -1, 2);
    CHECK(ds.n == 2 && !strcmp(ds.items[1].id, "1002"), "webvid id");
    dataset_free(&ds);
    // ... flat when that is where the first video is (AUTO), or when asked
    snprintf(path, sizeof path, "%s/flat", work);
    mkdir(path, 0777);
    snprintf(path, sizeof path, "%s/flat/1001.mp4", work);
    write_file(path, "x");
    snprintf(path, sizeof path, "%s/flat/webvid.csv", work);
    write_file(path, webvid);
    CHECK(!dataset_open(path, NULL, &ds, err, sizeof err) && ds.n == 2, "webvid flat: %s", err);
    snprintf(want, sizeof want, "%s/flat/1002.mp4", work);
    expect_item(&ds, 1, want, "Beach at dawn", -1, -1, 3);
    dataset_free(&ds);
    DatasetOptions nested = {
        .root = "/w", .webvid_layout = DATASET_WEBVID_NESTED, .webvid_ext = ".webm"};
    CHECK(!dataset_open(path, &nested, &ds, err, sizeof err) && ds.n == 2 &&
              !strcmp(ds.items[0].path, "/w/000001_000050/1001.webm"),
          "webvid nested: %s", ds.n ? ds.items[0].path : err);
    dataset_free(&ds);

    // Whole-file refusals.
    struct {
        const char *name, *text, *msg;
    } bad[] = {
        {"nopath.csv", "x,y\n1,2\n", ":1: no column names the videos"},
        {"empty.csv", "", "empty manifest"},
        {"allbad.csv", "path,caption\n,x\n", "no usable rows: 1 bad, the first: "},
        {"open_quote.csv", "path,caption\na.mp4,\"never closed\nb.mp4,x\n",
         ":2: a quoted field opened on this line is never closed"},
        {"header_only.csv", "path,caption\n", "no rows after the header"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        snprintf(path, sizeof path, "%s/%s", work, bad[i].name);
        write_file(path, bad[i].text);
        CHECK(dataset_open(path, NULL, &ds, err, sizeof err) == -1 && contains(err, path) &&
                  contains(err, bad[i].msg) && ds.n == 0 && ds.items == NULL,
              "%s: \"%s\"", bad[i].name, err);
    }
    snprintf(path, sizeof path, "%s/missing.csv", work);
    CHECK(dataset_open(path, NULL, &ds, err, sizeof err) == -1 && contains(err, "No such file"),
          "%s", err);
}

static void test_folder(const char *dir, const char *work) {
    Dataset ds;
    CHECK(!dataset_open(dir, NULL, &ds, err, sizeof err), "%s", err);
    const char *want[] = {"a_64x48.mp4",   "b_96x96.mp4",      "c_128x72.webm",   "d_64x48.webm",
                          SCENE_NOT_VIDEO, "sub/e_128x72.mp4", "sub/f_64x48.gif", SCENE_TRUNCATED};
    CHECK(ds.n == 8 && !ds.is_manifest, "%d items", ds.n);
    char path[4096];
    for (int i = 0; i < ds.n && i < 8; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, want[i]);
        CHECK(!strcmp(ds.items[i].id, want[i]) && !strcmp(ds.items[i].path, path) &&
                  ds.items[i].caption[0] == 0 && ds.items[i].start == -1,
              "item %d: %s", i, ds.items[i].id);
    }
    dataset_free(&ds);
    // the generated manifest: every row opens or fails as expected
    snprintf(path, sizeof path, "%s/manifest.csv", dir);
    CHECK(!dataset_open(path, NULL, &ds, err, sizeof err) && ds.n == SCENE_NVIDEOS + 2, "%s", err);
    for (int i = 0; i < ds.n; i++) {
        VideoReader *v;
        int rc = video_open(ds.items[i].path, VIDEO_EXACT_COUNT, &v, err, sizeof err);
        CHECK((rc == 0) == (i < SCENE_NVIDEOS), "%s: %s", ds.items[i].path, rc ? err : "opened");
        if (i < SCENE_NVIDEOS)
            CHECK(!strcmp(ds.items[i].caption, scene_videos[i].caption), "caption %d: %s", i,
                  ds.items[i].caption);
        video_close(v);
    }
    dataset_free(&ds);
    // hidden files and folders, extensions in any case, probing files without one
    char cmd[8400];
    snprintf(cmd, sizeof cmd,
             "rm -rf '%1$s' && mkdir -p '%1$s/tree/a/.cache' '%1$s/empty' && "
             "cp '%2$s/a_64x48.mp4' '%1$s/tree/Z.MP4' && cp '%2$s/a_64x48.mp4' "
             "'%1$s/tree/.hidden.mp4' && "
             "cp '%2$s/d_64x48.webm' '%1$s/tree/a/b.webm' && cp '%2$s/d_64x48.webm' "
             "'%1$s/tree/a/.cache/x.webm' && "
             "cp '%2$s/a_64x48.mp4' '%1$s/tree/a/noext' && echo hi > '%1$s/tree/a/notes.txt' && "
             "ln -s missing '%1$s/tree/dangling.mp4'",
             work, dir);
    CHECK(system(cmd) == 0, "%s", cmd);
    snprintf(path, sizeof path, "%s/tree", work);
    CHECK(!dataset_open(path, NULL, &ds, err, sizeof err) && ds.n == 2 &&
              !strcmp(ds.items[0].id, "Z.MP4") && !strcmp(ds.items[1].id, "a/b.webm"),
          "tree: %d items (%s)", ds.n, err);
    dataset_free(&ds);
    DatasetOptions probe = {.probe = 1};
    CHECK(!dataset_open(path, &probe, &ds, err, sizeof err) && ds.n == 3 &&
              !strcmp(ds.items[2].id, "a/noext"),
          "tree probed: %d items (%s)", ds.n, err);
    dataset_free(&ds);
    snprintf(path, sizeof path, "%s/empty", work);
    CHECK(dataset_open(path, NULL, &ds, err, sizeof err) == -1 && contains(err, "no videos"), "%s",
          err);
}

// Two make_videos runs: byte-identical files, < 2 MB in all.
static void test_repro(const char *d1, const char *d2) {
    const char *extra[] = {SCENE_TRUNCATED, SCENE_NOT_VIDEO, "manifest.csv", "manifest_good.csv"};
    long total = 0;
    char p1[4096], p2[4096];
    for (int i = 0; i < SCENE_NVIDEOS + 4; i++) {
        const char *name = i < SCENE_NVIDEOS ? scene_videos[i].name : extra[i - SCENE_NVIDEOS];
        snprintf(p1, sizeof p1, "%s/%s", d1, name);
        snprintf(p2, sizeof p2, "%s/%s", d2, name);
        char *a = NULL, *b = NULL;
        long na = 0, nb = 0;
        int rc = file_bytes(p1, &a, &na) | file_bytes(p2, &b, &nb);
        CHECK(!rc && na == nb && !memcmp(a, b, (size_t)na), "%s differs between runs", name);
        total += na;
        free(a);
        free(b);
    }
    printf("  test set: %ld bytes\n", total);
    CHECK(total < 2 * 1024 * 1024, "test set is %ld bytes", total);
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "";
    if (!strcmp(mode, "decode") && argc == 3)
        test_decode(argv[2]);
    else if (!strcmp(mode, "bad") && argc == 4)
        test_bad(argv[2], argv[3]);
    else if (!strcmp(mode, "clips") && argc == 2)
        test_clips();
    else if (!strcmp(mode, "roundtrip") && argc == 3)
        test_roundtrip(argv[2]);
    else if (!strcmp(mode, "csv") && argc == 3)
        test_csv(argv[2]);
    else if (!strcmp(mode, "folder") && argc == 4)
        test_folder(argv[2], argv[3]);
    else if (!strcmp(mode, "repro") && argc == 4)
        test_repro(argv[2], argv[3]);
    else {
        fprintf(stderr,
                "usage: test_video decode DIR | bad DIR WORK | clips | roundtrip WORK | "
                "csv WORK | folder DIR WORK | repro DIR DIR2\n");
        return 2;
    }
    printf("video_%s: %d checks, %d failure(s)\n", mode, checks, failures);
    return failures > 0;
}

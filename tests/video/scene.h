// tests/video/scene.h: the synthetic test videos, shared by the generator (make_videos.c)
// and the tests that check decoded pixels against it.
//
// Frame k of n (w x h): a gradient background, a red circle moving left to right along a
// horizontal line, and a light yellow square (drawn last, on top) moving from the top
// right corner to the bottom left one. Shape colours differ from every background colour
// by >= 85 in blue, so a patch's mean colour tells which is under it.
#pragma once
#include <math.h>
#include <stdint.h>
#include <string.h>

typedef struct {
    const char *name;  // path relative to the output folder
    int width, height, nframes;
    double fps;
    const char *caption;
} SceneVideo;

// The good videos make_videos writes (sizes even: yuv420p). GIF frames are coarse colours
// (8-bit RGB 3:3:2 palette), hence a looser tolerance for them in the tests.
static const SceneVideo scene_videos[] = {
    {"a_64x48.mp4", 64, 48, 24, 8.0, "a red ball rolls right, a yellow box slides down"},
    {"b_96x96.mp4", 96, 96, 40, 12.0, "the \"square\" one: 96x96, 12 fps"},
    {"c_128x72.webm", 128, 72, 60, 24.0, "wide, 24 fps, VP8"},
    {"d_64x48.webm", 64, 48, 32, 16.0, "small webm; 16 fps"},
    {"sub/e_128x72.mp4", 128, 72, 48, 24.0, "in a sub-folder, two seconds"},
    {"sub/f_64x48.gif", 64, 48, 24, 10.0, "an animated GIF"},
};
enum { SCENE_NVIDEOS = sizeof scene_videos / sizeof scene_videos[0] };
// b_96x96.mp4 cut to half its bytes, and a text file with a video's name.
#define SCENE_TRUNCATED "truncated.mp4"
#define SCENE_TRUNCATED_FROM 1  // index in scene_videos
#define SCENE_NOT_VIDEO "not_a_video.mp4"

static const uint8_t scene_circle_rgb[3] = {219, 36, 0};
static const uint8_t scene_square_rgb[3] = {255, 219, 170};

static inline void scene_background(int x, int y, int w, int h, uint8_t rgb[3]) {
    rgb[0] = (uint8_t)(30 + 150 * x / (w - 1));
    rgb[1] = (uint8_t)(40 + 140 * y / (h - 1));
    rgb[2] = 85;
}

// Circle of radius *r centred at (*cx, *cy) in frame k of n.
static inline void scene_circle(int k, int n, int w, int h, double *cx, double *cy, double *r) {
    *r = h / 5;
    *cx = *r + 2 + (w - 2 * *r - 4) * (double)k / (n - 1);
    *cy = *r + 3;
}

// Square of half side *a centred at (*cx, *cy) in frame k of n.
static inline void scene_square(int k, int n, int w, int h, double *cx, double *cy, double *a) {
    *a = h / 6;
    double t = (double)k / (n - 1);
    *cx = w - *a - 3 - (w - 2 * *a - 6) * t;
    *cy = *a + 3 + (h - 2 * *a - 6) * t;
}

// Frame k of n: rgb is (h, w, 3).
static inline void scene_render(int k, int n, int w, int h, uint8_t *rgb) {
    double ccx, ccy, r, scx, scy, a;
    scene_circle(k, n, w, h, &ccx, &ccy, &r);
    scene_square(k, n, w, h, &scx, &scy, &a);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            uint8_t *p = rgb + ((size_t)y * w + x) * 3;
            scene_background(x, y, w, h, p);
            double dx = x - ccx, dy = y - ccy;
            if (dx * dx + dy * dy <= r * r) memcpy(p, scene_circle_rgb, 3);
            if (fabs(x - scx) <= a && fabs(y - scy) <= a) memcpy(p, scene_square_rgb, 3);
        }
}

// tests/video/make_videos.c: writes the synthetic video test set (scene.h) into a folder.
//
//   make_videos OUTDIR
//
// OUTDIR/ (created if missing) receives, byte-identical on every run with the same FFmpeg:
//   a_64x48.mp4 b_96x96.mp4 sub/e_128x72.mp4   H.264 (MPEG-4 part 2 without libx264)
//   c_128x72.webm d_64x48.webm                 VP8
//   sub/f_64x48.gif                            GIF
//   truncated.mp4     the first half of b_96x96.mp4's bytes (its index survives: the
//                     frame count says 40, about half of them decode)
//   not_a_video.mp4   a text file
//   manifest.csv      header "path,caption": every file above (bad ones included)
//   manifest_good.csv the same for the good videos only
// and prints one line per file: "wrote PATH WxH N frames FPS fps CODEC BYTES bytes".
// Exit status 0, or 1 with a message on stderr.
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "runner/video_write.h"
#include "tests/video/scene.h"

static int make_dir(const char *path) {
    if (mkdir(path, 0777) == 0 || errno == EEXIST) return 0;
    fprintf(stderr, "make_videos: cannot create %s: %s\n", path, strerror(errno));
    return -1;
}

static long file_size(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0 ? (long)sb.st_size : -1;
}

// A CSV field: quoted when it holds a comma, quote or line break ("" inside quotes).
static void csv_field(FILE *f, const char *s) {
    if (!strpbrk(s, ",\"\r\n")) {
        fputs(s, f);
        return;
    }
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"') fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

static int write_manifest(const char *dir, const char *name, int with_bad) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f) {
        fprintf(stderr, "make_videos: cannot write %s: %s\n", path, strerror(errno));
        return -1;
    }
    int rows = 0;
    fputs("path,caption\n", f);
    for (int i = 0; i < SCENE_NVIDEOS; i++, rows++) {
        csv_field(f, scene_videos[i].name);
        fputc(',', f);
        csv_field(f, scene_videos[i].caption);
        fputc('\n', f);
    }
    if (with_bad) {
        fputs(SCENE_TRUNCATED ",\"cut in half, on purpose\"\n", f);
        fputs(SCENE_NOT_VIDEO ",text with a video's name\n", f);
        rows += 2;
    }
    if (fclose(f) != 0) {
        fprintf(stderr, "make_videos: cannot write %s: %s\n", path, strerror(errno));
        return -1;
    }
    printf("wrote %s %d rows %ld bytes\n", path, rows, file_size(path));
    return 0;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: make_videos OUTDIR\n");
        return 2;
    }
    const char *dir = argv[1];
    char path[4096], err[1024], codec[32];
    snprintf(path, sizeof path, "%s/sub", dir);
    if (make_dir(dir) || make_dir(path)) return 1;
    for (int i = 0; i < SCENE_NVIDEOS; i++) {
        const SceneVideo *s = &scene_videos[i];
        size_t frame_bytes = (size_t)s->width * s->height * 3;
        uint8_t *frames = malloc(frame_bytes * (size_t)s->nframes);
        if (!frames) return fprintf(stderr, "make_videos: out of memory\n"), 1;
        for (int k = 0; k < s->nframes; k++)
            scene_render(k, s->nframes, s->width, s->height, frames + frame_bytes * k);
        snprintf(path, sizeof path, "%s/%s", dir, s->name);
        int rc = video_write(path, frames, s->nframes, s->width, s->height, s->fps, NULL, codec,
                             sizeof codec, err, sizeof err);
        free(frames);
        if (rc) {
            fprintf(stderr, "make_videos: %s\n", err);
            return 1;
        }
        printf("wrote %s %dx%d %d frames %g fps %s %ld bytes\n", path, s->width, s->height,
               s->nframes, s->fps, codec, file_size(path));
    }

    // The truncated copy: the first half of a good mp4's bytes.
    snprintf(path, sizeof path, "%s/%s", dir, scene_videos[SCENE_TRUNCATED_FROM].name);
    FILE *in = fopen(path, "rb");
    long n = file_size(path);
    char *buf = n > 0 ? malloc((size_t)n) : NULL;
    if (!in || !buf || fread(buf, 1, (size_t)n, in) != (size_t)n) {
        fprintf(stderr, "make_videos: cannot read back %s\n", path);
        return 1;
    }
    fclose(in);
    snprintf(path, sizeof path, "%s/%s", dir, SCENE_TRUNCATED);
    FILE *out = fopen(path, "wb");
    if (!out || fwrite(buf, 1, (size_t)n / 2, out) != (size_t)n / 2 || fclose(out) != 0) {
        fprintf(stderr, "make_videos: cannot write %s\n", path);
        return 1;
    }
    free(buf);
    printf("wrote %s %ld bytes (half of %s)\n", path, file_size(path),
           scene_videos[SCENE_TRUNCATED_FROM].name);

    snprintf(path, sizeof path, "%s/%s", dir, SCENE_NOT_VIDEO);
    out = fopen(path, "wb");
    if (!out || fputs("This is a text file, not a video.\n", out) < 0 || fclose(out) != 0) {
        fprintf(stderr, "make_videos: cannot write %s\n", path);
        return 1;
    }
    printf("wrote %s %ld bytes (text)\n", path, file_size(path));
    if (write_manifest(dir, "manifest.csv", 1) || write_manifest(dir, "manifest_good.csv", 0))
        return 1;
    return 0;
}

// tests/pipeline/check_png.c: checks a PNG written by `storyrun txt2img`: it reads back
// (runner/image.c, i.e. libpng) as 8-bit RGB of the expected size, carries the text chunks
// with the expected values, and its pixels are not all one value.
// Usage: check_png FILE WIDTH HEIGHT [KEY=VALUE ...]
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runner/image.h"

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: check_png FILE WIDTH HEIGHT [KEY=VALUE ...]\n");
        return 2;
    }
    Image img;
    char err[512];
    if (image_read_png(argv[1], &img, err, sizeof err)) {
        fprintf(stderr, "FAIL: %s\n", err);
        return 1;
    }
    int bad = 0;
    if (img.width != atoi(argv[2]) || img.height != atoi(argv[3]) || img.channels != 3) {
        fprintf(stderr, "FAIL: %s is %dx%d with %d channels, expected %sx%s RGB\n", argv[1],
                img.width, img.height, img.channels, argv[2], argv[3]);
        bad++;
    }
    static const char *keys[] = {"prompt",           "negative prompt", "seed",     "model",
                                 "sampler",          "steps",           "guidance", "size",
                                 "storyrun version", "config hash"};
    for (size_t k = 0; k < sizeof keys / sizeof *keys; k++)
        if (!image_text(&img, keys[k])) {
            fprintf(stderr, "FAIL: no text chunk \"%s\"\n", keys[k]);
            bad++;
        }
    for (int i = 4; i < argc; i++) {
        char key[128];
        const char *eq = strchr(argv[i], '=');
        if (!eq || eq - argv[i] >= (int)sizeof key) continue;
        snprintf(key, sizeof key, "%.*s", (int)(eq - argv[i]), argv[i]);
        const char *v = image_text(&img, key);
        if (!v || strcmp(v, eq + 1)) {
            fprintf(stderr, "FAIL: text chunk \"%s\" is \"%s\", expected \"%s\"\n", key,
                    v ? v : "(none)", eq + 1);
            bad++;
        }
    }
    size_t n = (size_t)img.width * img.height * 3, same = 0;
    for (size_t i = 1; i < n; i++) same += img.pixels[i] == img.pixels[0];
    if (n > 1 && same == n - 1) {
        fprintf(stderr, "FAIL: every pixel is %d\n", img.pixels[0]);
        bad++;
    }
    printf("%s: %dx%d RGB, %d text chunks%s\n", argv[1], img.width, img.height, img.ntext,
           bad ? "" : ", ok");
    image_free(&img);
    return bad ? 1 : 0;
}

// runner/image.h: 8-bit images in memory, PNG files (libpng), and the conversion from a
// decoded image tensor to pixels.
//
// Writing is atomic: the PNG goes to a temporary file in the destination's folder, is
// flushed and fsync'ed, then renamed over the final name. On any error the temporary
// file is removed and nothing under the final name is created or changed.
// Text chunks carry how an image was made (prompt, seed, model, sampler, ...): ASCII
// values as tEXt, anything else as uncompressed UTF-8 iTXt.
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "kernels/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

// One key/value text pair. PNG keywords are 1-79 printable Latin-1 characters (letters,
// digits, spaces, punctuation; no leading/trailing/double spaces); values any UTF-8.
typedef struct {
    const char *key;
    const char *value;
} ImageText;

// A row-major image: height rows of width * channels bytes (gray, gray+alpha, RGB, RGBA).
typedef struct {
    int width, height, channels;  // channels 1, 2, 3 or 4
    uint8_t *pixels;              // height * width * channels bytes (owned)
    // text chunks read from a file (owned; image_free releases them)
    int ntext;
    char **text_keys, **text_values;
} Image;

// Largest side image_read_png accepts (and image_alloc makes): bounds memory on a bad file.
#define IMAGE_MAX_SIDE 32768

// A zeroed image of that size. Returns 0, or -1 with a message (bad size).
int image_alloc(Image *img, int width, int height, int channels, char *err, size_t errlen);
void image_free(Image *img);  // pixels and text; the struct is zeroed

// Writes img to `path` atomically with the given text chunks (ntext may be 0). Returns 0,
// or -1 with a message naming the file and the problem (the folder cannot be written, a
// bad keyword, the disk is full, ...).
int image_write_png(const char *path, const Image *img, const ImageText *text, int ntext, char *err,
                    size_t errlen);

// Reads an 8-bit PNG (gray, gray+alpha, RGB, RGBA; palette images become RGB or RGBA,
// 16-bit samples are cut to 8 bits, bit depths below 8 are expanded) with its tEXt, zTXt
// and iTXt chunks. Returns 0, or -1 with a message naming the file.
int image_read_png(const char *path, Image *img, char *err, size_t errlen);

// The value of text chunk `key` of an image read from a file, or NULL.
const char *image_text(const Image *img, const char *key);

// Image n of a decoded batch x (N, 3, H, W), f32 on the host, values nominally in [-1, 1],
// to 8-bit RGB exactly as diffusers' VaeImageProcessor does it:
//   v = clamp(x * 0.5 + 0.5, 0, 1)  (denormalize, f32)
//   pixel = uint8(round_half_even(v * 255))  (numpy_to_pil: (images * 255).round())
// Returns 0, or -1 with a message when x is not (N, 3, H, W) f32 host memory.
int image_from_tensor(const Tensor *x, int n, Image *img, char *err, size_t errlen);

#ifdef __cplusplus
}
#endif

// runner/video_write.h: RGB24 frames to a video file with FFmpeg's libavformat/libavcodec.
//
// The container comes from the file name's extension, the codec from the container
// unless asked for by name:
//   .mp4 .m4v .mov .mkv   H.264 (libx264) when this FFmpeg has it, else MPEG-4 part 2
//                         ("mpeg4", always built in); .mp4/.mov get "faststart" (the index
//                         before the frames, so a cut file still has its frame count)
//   .avi                  MPEG-4 part 2
//   .webm                 VP8 (libvpx), else VP9 (libvpx-vp9)
//   .gif                  GIF (8-bit RGB 3:3:2 palette: coarse colours, for test data)
// Pixels are converted with libswscale to yuv420p (BT.601 matrix, limited range, tagged
// so in the stream), or to the encoder's own format (gif). yuv420p needs an even width
// and height.
//
// Output is reproducible: one encoder thread, FFmpeg's bit-exact flags, encoder buffers
// zeroed before use, and x264 held to AVX2 and below (its AVX-512 code gave a different
// stream for the same frames once earlier encoders had run in the process). The same
// frames give the same bytes on every rank and every run, with the same FFmpeg/x264
// build on the same kind of CPU (x264's SIMD and C code do not round alike).
// Writing is atomic: the file is written under a temporary name in the destination's
// folder (".NAME.tmp-PID-N"), fsync'ed and renamed on video_writer_close; on any error, or
// video_writer_abort, the temporary file is removed and nothing under NAME is touched.
//
//   VideoWriter *w;
//   if (video_writer_open(&w, "out/t.mp4", 512, 512, 8.0, NULL, err, sizeof err)) ...
//   for (...) if (video_writer_add(w, rgb, err, sizeof err)) { video_writer_abort(w); ... }
//   printf("codec %s\n", video_writer_codec(w));
//   if (video_writer_close(w, err, sizeof err)) ...   // frees w in every case
#pragma once
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct VideoWriter VideoWriter;

typedef struct {
    // FFmpeg encoder name ("libx264", "mpeg4", "libvpx", "libvpx-vp9", "gif", ...);
    // NULL or "" picks by extension as above.
    const char *codec;
    // Constant quality on x264's CRF scale, 0 (best) to 51; < 0 means the default 18
    // (visually near-lossless). Mapped for the other encoders: mpeg4 qscale = crf / 6
    // (clamped to 2..31), libvpx crf = crf / 2 + 1 (clamped to 4..63); gif ignores it.
    int crf;
} VideoWriteOptions;

// Starts a video of width x height frames at `fps` frames per second (any positive
// rate; 29.97 is stored as 30000/1001). opt may be NULL (defaults). Returns 0 and *out,
// or -1 with a message naming the file and the problem (unknown extension, codec not
// in this FFmpeg, odd size for yuv420p, folder not writable, ...).
int video_writer_open(VideoWriter **out, const char *path, int width, int height, double fps,
                      const VideoWriteOptions *opt, char *err, size_t errlen);

// Adds one frame: rgb is (height, width, 3) bytes, row-major. Returns 0, or -1 with a
// message (the writer stays open: close or abort it).
int video_writer_add(VideoWriter *w, const uint8_t *rgb, char *err, size_t errlen);

// The encoder in use ("libx264", "mpeg4", ...).
const char *video_writer_codec(const VideoWriter *w);

// Flushes the encoder, finishes the container, fsyncs and renames the temporary file
// to its final name. Frees w whether it succeeds or not. Returns 0, or -1 with a
// message (then nothing was created under the final name). A video needs >= 1 frame.
int video_writer_close(VideoWriter *w, char *err, size_t errlen);

// Drops the video: removes the temporary file and frees w. NULL is ignored.
void video_writer_abort(VideoWriter *w);

// Whole clip in one call: frames is (n, height, width, 3). codec_used (may be NULL)
// receives the encoder's name. Returns 0, or -1 with a message.
int video_write(const char *path, const uint8_t *frames, int n, int width, int height, double fps,
                const VideoWriteOptions *opt, char *codec_used, size_t codec_len, char *err,
                size_t errlen);

#ifdef __cplusplus
}
#endif

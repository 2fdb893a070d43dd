// runner/video.h: reading videos with FFmpeg's libavformat/libavcodec/libswscale, and
// the choice of which frames make up the clips of a video.
//
// Any container and codec this FFmpeg reads (mp4, webm, mkv, avi, mov, gif, ...); only
// local files (FFmpeg's protocol whitelist is "file", so a playlist cannot pull in URLs).
// Frame k is the k-th frame the decoder outputs, in presentation order, counted from the
// start of the file: frames are always decoded in order from the start, never reached by
// seeking, so that k means the same picture on every rank and every run.
//
// Frame count (VideoInfo.nframes):
//   - by default, the container's count when it has one (mp4/mov/avi/gif: the sample
//     index), else the frames counted by decoding the whole video once at open (webm,
//     mkv, ...; nframes_decoded is then 1);
//   - with VIDEO_EXACT_COUNT, always counted by decoding at open, which finds truncated
//     files before any clip is planned.
//   A decoding pass that meets a sign of damage (a packet cut short, a read or decode
//     error, a warning at the end such as "File ended prematurely", the file ending
//     before its sample index does) and gives fewer frames than the container's count
//     (or, without one, than duration x fps) is refused: "truncated: decoded N of M
//     frames". Without damage the decoded count wins (e.g. an edit list that hides
//     frames). Without VIDEO_EXACT_COUNT, a cut mp4 still opens with its index's count,
//     and video_read_frames fails with the same message when it reaches the cut.
// Frame rate (VideoInfo.fps): the stream's avg_frame_rate when it is set and sane (0 <
// fps <= 1000), else r_frame_rate, else nframes / duration. Sampling by time treats the
// video as constant-rate at that fps: frame k is shown from k / fps to (k + 1) / fps
// seconds after the first frame.
//
// Errors are returned, never fatal: -1 and a message "PATH: what", e.g.
//   "a.mp4: not a video (FFmpeg: moov atom not found)"
//   "b.mp4: truncated: decoded 17 of 40 frames (FFmpeg: ...)"
//   "c.webm: too short: 12 frames, a clip needs 16 at stride 2 = 31"
// FFmpeg's own log lines are kept (per thread) for those messages instead of being
// printed; set STORY_FFMPEG_LOG=1 in the environment to print them as well.
#pragma once
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct VideoReader VideoReader;

typedef struct {
    int width, height;    // display size of the decoded frames
    double fps;           // frames per second (see above for which rate)
    double duration;      // seconds (the stream's, else the container's, else nframes / fps)
    int64_t nframes;      // frame count
    int nframes_decoded;  // 1: nframes was counted by decoding; 0: the container's count
    char codec[32];       // decoder name, e.g. "h264", "vp8"
    char container[64];   // demuxer name, e.g. "mov,mp4,m4a,3gp,3g2,mj2"
} VideoInfo;

enum { VIDEO_EXACT_COUNT = 1 };

// Opens path and reads its video stream's properties. flags: 0 or VIDEO_EXACT_COUNT.
// Returns 0 and *out, or -1 with a message (then *out is NULL and nothing leaks).
int video_open(const char *path, int flags, VideoReader **out, char *err, size_t errlen);
void video_close(VideoReader *v);  // NULL is ignored
const VideoInfo *video_info(const VideoReader *v);
const char *video_path(const VideoReader *v);

// Decodes frames idx[0..n) to RGB24 at out_w x out_h (0, 0: the native size; else both
// > 0, scaled with bicubic filtering, aspect ratio not kept). rgb receives n frames of
// (out_h, out_w, 3) bytes, frame i for idx[i]. Indices may come in any order and repeat;
// all are read in one pass from the start of the file. The bytes depend only on the
// file, the index and the size. Returns 0, or -1 with a message ("frame 50 of 40",
// "truncated: decoded 17 of 40 frames", a decoder error).
int video_read_frames(VideoReader *v, const int64_t *idx, int n, int out_w, int out_h, uint8_t *rgb,
                      char *err, size_t errlen);

// ---- clips ----------------------------------------------------------------------------

typedef enum {
    // K clips with starts spread evenly over the usable range: the first clip starts at
    // the first usable frame, the last ends at the last one, the others in between
    // (rounded down); one clip is centred. Clips may overlap when the range is short;
    // never two clips with the same start, so fewer than K when there are fewer starts.
    VIDEO_CLIPS_EVEN = 0,
    // Clips back to back from the first usable frame, continuing the same sampling grid
    // (clip c's frame j is the sample c * L + j), as many as fit, at most K.
    VIDEO_CLIPS_CONSECUTIVE = 1,
} VideoClipSpread;

typedef struct {
    int length;     // L: frames per clip (>= 1)
    int stride;     // source frames between a clip's frames (>= 1); used when fps <= 0
    double fps;     // > 0: sample at this rate by timestamp instead (see video_plan_clips)
    int max_clips;  // K: clips per video at most (>= 1)
    VideoClipSpread spread;
    double start, end;  // seconds from the first frame; the range used is [start, end);
                        // end <= 0 means the end of the video
} VideoClipSpec;

typedef struct {
    int nclips, length;
    int64_t *frames;      // (nclips, length) source frame indices, ascending within a clip (owned)
    double step;          // source frames per clip frame (stride, or video fps / sample fps)
    int64_t first, last;  // usable range of source frames: [first, last)
} VideoClipPlan;

// Plans the clips of a video of nframes frames at `fps` (a pure function: the same
// arguments give the same plan on every rank). With a sample step s (the stride, or
// fps / spec->fps when sampling by time), the sample j of a run starting at frame a is
// frame a + floor(j * s) (so at 8 fps from a 24 fps video every third frame; a sample
// rate above the video's repeats frames). A clip spans floor((L - 1) * s) + 1 frames.
// Usable range: frames whose start time k / fps lies in [start, end).
// path is only used in messages. Returns 0 and a plan (free with video_clip_plan_free),
// or -1 with a message, e.g. "PATH: too short: 12 frames, a clip needs 16 at stride 2 = 31".
int video_plan_clips(const VideoClipSpec *spec, int64_t nframes, double fps, const char *path,
                     VideoClipPlan *plan, char *err, size_t errlen);
void video_clip_plan_free(VideoClipPlan *plan);

// ---- FFmpeg log capture (shared with video_write.c) ------------------------------------

// Installs the capturing log callback once (thread-safe; idempotent).
void video_log_init(void);
// The last FFmpeg error or warning line of this thread since video_log_clear ("" if none).
const char *video_log_last(void);
void video_log_clear(void);

#ifdef __cplusplus
}
#endif

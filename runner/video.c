// runner/video.c: video files to RGB24 frames with libavformat/libavcodec/libswscale, and
// clip planning (see video.h). Frames are always decoded in order from the start of the
// file (rewinding means reopening), so frame k is the same picture on every rank.
#include "runner/video.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/pixdesc.h>
#include <libswscale/swscale.h>

#include "runner/check.h"

struct VideoReader {
    char *path;
    AVFormatContext *fmt;
    AVCodecContext *dec;
    int stream;
    AVPacket *pkt;
    AVFrame *frame;
    struct SwsContext *sws;
    uint8_t *rgb;  // conversion target, rows of rgb_stride bytes + padding
    size_t rgb_size;
    int64_t next;              // index of the frame the decoder gives next
    int64_t packets;           // video packets read since the (re)open
    int64_t container_frames;  // the container's frame count, 0 if it has none
    int flushed;               // end of input sent to the decoder
    char damage[400];          // first sign of a cut or damaged file ("" if none)
    VideoInfo info;
};

#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
static int
fail(char *err, size_t errlen, const char *fmt, ...) {
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

// ---- FFmpeg log capture -----------------------------------------------------------------

static _Thread_local char log_last[256];
static pthread_once_t log_once = PTHREAD_ONCE_INIT;
static int log_echo;

static void log_callback(void *avcl, int level, const char *fmt, va_list ap) {
    if (log_echo) {
        va_list copy;
        va_copy(copy, ap);
        av_log_default_callback(avcl, level, fmt, copy);
        va_end(copy);
    }
    if (level > AV_LOG_WARNING) return;
    char line[256];
    vsnprintf(line, sizeof line, fmt, ap);
    size_t n = strlen(line);
    while (n && (line[n - 1] == '\n' || line[n - 1] == ' ')) line[--n] = 0;
    if (n) memcpy(log_last, line, n + 1);
}

static void log_install(void) {
    const char *e = getenv("STORY_FFMPEG_LOG");
    log_echo = e && e[0] && strcmp(e, "0");
    av_log_set_callback(log_callback);
}

void video_log_init(void) { pthread_once(&log_once, log_install); }
const char *video_log_last(void) { return log_last; }
void video_log_clear(void) { log_last[0] = 0; }

// "(FFmpeg: last log line)" or "(FFmpeg: error text)".
static const char *ffmpeg_why(int ret, char *buf, size_t n) {
    if (log_last[0]) {
        snprintf(buf, n, "FFmpeg: %s", log_last);
    } else {
        char e[AV_ERROR_MAX_STRING_SIZE];
        av_strerror(ret, e, sizeof e);
        snprintf(buf, n, "FFmpeg: %s", e);
    }
    return buf;
}

// ---- opening ------------------------------------------------------------------------------

static void close_input(VideoReader *v) {
    avcodec_free_context(&v->dec);
    avformat_close_input(&v->fmt);
    v->next = 0;
    v->packets = 0;
    v->flushed = 0;
}

void video_close(VideoReader *v) {
    if (!v) return;
    close_input(v);
    av_packet_free(&v->pkt);
    av_frame_free(&v->frame);
    sws_freeContext(v->sws);
    free(v->rgb);
    free(v->path);
    free(v);
}

const VideoInfo *video_info(const VideoReader *v) { return &v->info; }
const char *video_path(const VideoReader *v) { return v->path; }

// Opens the container and the decoder of its best video stream (again, when rewinding).
static int open_input(VideoReader *v, char *err, size_t errlen) {
    char why[320];
    video_log_clear();
    AVDictionary *o = NULL;
    av_dict_set(&o, "protocol_whitelist", "file", 0);
    int ret = avformat_open_input(&v->fmt, v->path, NULL, &o);
    av_dict_free(&o);
    if (ret < 0)
        return fail(err, errlen, "%s: not a video (%s)", v->path, ffmpeg_why(ret, why, sizeof why));
    if ((ret = avformat_find_stream_info(v->fmt, NULL)) < 0)
        return fail(err, errlen, "%s: not a video (%s)", v->path, ffmpeg_why(ret, why, sizeof why));
    const AVCodec *codec = NULL;
    ret = av_find_best_stream(v->fmt, AVMEDIA_TYPE_VIDEO, -1, -1, &codec, 0);
    if (ret == AVERROR_STREAM_NOT_FOUND ||
        (ret >= 0 && (v->fmt->streams[ret]->disposition & AV_DISPOSITION_ATTACHED_PIC)))
        return fail(err, errlen, "%s: not a video: no video stream (%s file)", v->path,
                    v->fmt->iformat->name);
    if (ret == AVERROR_DECODER_NOT_FOUND || (ret >= 0 && !codec)) {
        int s = av_find_best_stream(v->fmt, AVMEDIA_TYPE_VIDEO, -1, -1, NULL, 0);
        enum AVCodecID id = s >= 0 ? v->fmt->streams[s]->codecpar->codec_id : AV_CODEC_ID_NONE;
        return fail(err, errlen, "%s: video codec \"%s\" cannot be decoded by this FFmpeg build",
                    v->path, avcodec_get_name(id));
    }
    if (ret < 0)
        return fail(err, errlen, "%s: not a video (%s)", v->path, ffmpeg_why(ret, why, sizeof why));
    v->stream = ret;
    AVStream *st = v->fmt->streams[ret];
    for (unsigned i = 0; i < v->fmt->nb_streams; i++)
        if ((int)i != ret) v->fmt->streams[i]->discard = AVDISCARD_ALL;  // skip audio packets
    v->dec = avcodec_alloc_context3(codec);
    if (!v->dec) return fail(err, errlen, "%s: out of memory", v->path);
    if ((ret = avcodec_parameters_to_context(v->dec, st->codecpar)) < 0)
        return fail(err, errlen, "%s: %s", v->path, ffmpeg_why(ret, why, sizeof why));
    v->dec->thread_count = 1;  // ranks are the parallelism; one thread each
    if ((ret = avcodec_open2(v->dec, codec, NULL)) < 0)
        return fail(err, errlen, "%s: cannot start the %s decoder (%s)", v->path, codec->name,
                    ffmpeg_why(ret, why, sizeof why));
    v->next = 0;
    v->packets = 0;
    v->flushed = 0;
    v->damage[0] = 0;
    return 0;
}

static void note_damage(VideoReader *v, const char *what, int ret) {
    if (v->damage[0]) return;
    char why[320];
    snprintf(v->damage, sizeof v->damage, "%s%s%s", what, what[0] ? ": " : "",
             ffmpeg_why(ret, why, sizeof why));
}

// Decodes the next frame into v->frame. Returns 1 (a frame; its index is v->next - 1)
// or 0 at the end. A read or decode error ends the stream or skips a packet as FFmpeg
// would (the frames it still gives are used) and is kept in v->damage.
static int next_frame(VideoReader *v) {
    for (;;) {
        int ret = avcodec_receive_frame(v->dec, v->frame);
        if (ret >= 0) {
            if (v->frame->decode_error_flags || (v->frame->flags & AV_FRAME_FLAG_CORRUPT))
                note_damage(v, "a damaged frame", AVERROR_INVALIDDATA);
            v->next++;
            return 1;
        }
        if (ret == AVERROR_EOF || v->flushed) {
            if (ret != AVERROR_EOF) note_damage(v, "decoder", ret);
            if (!v->damage[0] && v->container_frames > 0 && v->packets < v->container_frames)
                snprintf(v->damage, sizeof v->damage,
                         "the file ends after %lld of the %lld frames its index lists",
                         (long long)v->packets, (long long)v->container_frames);
            return 0;
        }
        if (ret != AVERROR(EAGAIN)) note_damage(v, "decoder", ret);
        video_log_clear();
        ret = av_read_frame(v->fmt, v->pkt);
        if (ret < 0) {
            // An error, or a warning on the way to the end ("File ended prematurely").
            if (ret != AVERROR_EOF || log_last[0]) note_damage(v, "", ret);
            v->flushed = 1;
            avcodec_send_packet(v->dec, NULL);
            continue;
        }
        if (v->pkt->stream_index != v->stream) {
            av_packet_unref(v->pkt);
            continue;
        }
        v->packets++;
        if ((v->pkt->flags & AV_PKT_FLAG_CORRUPT) && !v->damage[0])
            snprintf(v->damage, sizeof v->damage, "the file ends inside a frame's data");
        ret = avcodec_send_packet(v->dec, v->pkt);
        av_packet_unref(v->pkt);
        if (ret < 0 && ret != AVERROR(EAGAIN)) note_damage(v, "decoder", ret);
    }
}

static int rewind_input(VideoReader *v, char *err, size_t errlen) {
    close_input(v);
    if (open_input(v, err, errlen) == 0) return 0;
    close_input(v);  // half-open (container but no decoder): leave nothing
    return -1;
}

// "truncated: decoded N of M frames (why)" for a stream that ended early.
static int truncated(VideoReader *v, int64_t expected, int about, char *err, size_t errlen) {
    return fail(err, errlen, "%s: truncated: decoded %lld of %s%lld frames (%s)", v->path,
                (long long)v->next, about ? "about " : "", (long long)expected,
                v->damage[0] ? v->damage : "the stream ends early");
}

// Counts frames by decoding them all, then rewinds. The count is refused as truncated
// when the file shows damage and has fewer frames than its container says (or, with no
// count in the container, than its duration implies).
static int count_frames(VideoReader *v, char *err, size_t errlen) {
    while (next_frame(v)) {
    }
    int64_t expected = v->container_frames;
    int about = 0;
    if (!expected && v->info.duration > 0 && v->info.fps > 0) {
        expected = (int64_t)floor(v->info.duration * v->info.fps + 0.5);
        about = 1;
    }
    if (v->next == 0)
        return fail(err, errlen, "%s: not a video: no frame could be decoded (%s)", v->path,
                    v->damage[0] ? v->damage : "empty stream");
    if (v->damage[0] && v->next < expected - (about ? 1 : 0))
        return truncated(v, expected, about, err, errlen);
    v->info.nframes = v->next;
    v->info.nframes_decoded = 1;
    return rewind_input(v, err, errlen);
}

static double sane_rate(AVRational r) {
    if (r.num <= 0 || r.den <= 0) return 0;
    double f = av_q2d(r);
    return f > 0 && f <= 1000 ? f : 0;
}

int video_open(const char *path, int flags, VideoReader **out, char *err, size_t errlen) {
    *out = NULL;
    video_log_init();
    struct stat sb;
    if (stat(path, &sb) != 0)
        return fail(err, errlen, "%s: cannot open: %s", path, strerror(errno));
    if (S_ISDIR(sb.st_mode)) return fail(err, errlen, "%s: not a video: it is a folder", path);
    if (sb.st_size == 0) return fail(err, errlen, "%s: not a video: empty file", path);
    VideoReader *v = calloc(1, sizeof *v);
    if (!v) return fail(err, errlen, "%s: out of memory", path);
    size_t n = strlen(path) + 1;
    v->path = malloc(n);
    v->pkt = av_packet_alloc();
    v->frame = av_frame_alloc();
    if (!v->path || !v->pkt || !v->frame) {
        video_close(v);
        return fail(err, errlen, "%s: out of memory", path);
    }
    memcpy(v->path, path, n);
    if (open_input(v, err, errlen)) {
        video_close(v);
        return -1;
    }
    AVStream *st = v->fmt->streams[v->stream];
    VideoInfo *in = &v->info;
    in->width = st->codecpar->width;
    in->height = st->codecpar->height;
    snprintf(in->codec, sizeof in->codec, "%s", v->dec->codec->name);
    snprintf(in->container, sizeof in->container, "%s", v->fmt->iformat->name);
    if (in->width < 1 || in->height < 1) {
        video_close(v);
        return fail(err, errlen, "%s: not a video: no frame size in the %s stream", path,
                    in->codec);
    }
    v->container_frames = st->nb_frames > 0 ? st->nb_frames : 0;
    if (st->duration != AV_NOPTS_VALUE && st->duration > 0)
        in->duration = st->duration * av_q2d(st->time_base);
    else if (v->fmt->duration != AV_NOPTS_VALUE && v->fmt->duration > 0)
        in->duration = (double)v->fmt->duration / AV_TIME_BASE;
    in->fps = sane_rate(st->avg_frame_rate);
    if (in->fps == 0) in->fps = sane_rate(st->r_frame_rate);
    if (in->fps == 0 && v->container_frames > 0 && in->duration > 0)
        in->fps = v->container_frames / in->duration;
    in->nframes = v->container_frames;
    if ((flags & VIDEO_EXACT_COUNT) || in->nframes == 0) {
        if (count_frames(v, err, errlen)) {
            video_close(v);
            return -1;
        }
    }
    if (in->fps == 0 && in->duration > 0) in->fps = in->nframes / in->duration;
    if (!(in->fps > 0)) {
        video_close(v);
        return fail(err, errlen,
                    "%s: cannot tell the frame rate (no rate and no duration in the %s stream)",
                    path, in->codec);
    }
    if (in->duration <= 0) in->duration = in->nframes / in->fps;
    *out = v;
    return 0;
}

// ---- decoding to RGB ----------------------------------------------------------------------

// Matrix of a YUV frame: its tag; untagged frames as players treat them (BT.601 below
// 720 lines, BT.709 from 720 up).
static int sws_matrix(const AVFrame *f) {
    switch (f->colorspace) {
    case AVCOL_SPC_BT709: return SWS_CS_ITU709;
    case AVCOL_SPC_FCC: return SWS_CS_FCC;
    case AVCOL_SPC_SMPTE240M: return SWS_CS_SMPTE240M;
    case AVCOL_SPC_BT2020_NCL:
    case AVCOL_SPC_BT2020_CL: return SWS_CS_BT2020;
    case AVCOL_SPC_BT470BG:
    case AVCOL_SPC_SMPTE170M: return SWS_CS_ITU601;
    default: return f->height >= 720 ? SWS_CS_ITU709 : SWS_CS_ITU601;
    }
}

static int to_rgb(VideoReader *v, int out_w, int out_h, uint8_t *dst, char *err, size_t errlen) {
    const AVFrame *f = v->frame;
    v->sws = sws_getCachedContext(
        v->sws, f->width, f->height, f->format, out_w, out_h, AV_PIX_FMT_RGB24,
        SWS_BICUBIC | SWS_ACCURATE_RND | SWS_FULL_CHR_H_INT | SWS_BITEXACT, NULL, NULL, NULL);
    if (!v->sws)
        return fail(err, errlen, "%s: cannot convert %s frames of %dx%d to RGB", v->path,
                    av_get_pix_fmt_name(f->format), f->width, f->height);
    const AVPixFmtDescriptor *d = av_pix_fmt_desc_get(f->format);
    if (d && !(d->flags & AV_PIX_FMT_FLAG_RGB) && d->nb_components >= 3) {
        int full = f->color_range == AVCOL_RANGE_JPEG || f->format == AV_PIX_FMT_YUVJ420P ||
                   f->format == AV_PIX_FMT_YUVJ422P || f->format == AV_PIX_FMT_YUVJ444P;
        const int *m = sws_getCoefficients(sws_matrix(f));
        sws_setColorspaceDetails(v->sws, m, full, sws_getCoefficients(SWS_CS_DEFAULT), 1, 0,
                                 1 << 16, 1 << 16);
    }
    // libswscale's SIMD may write past a row's end: convert into our own padded rows,
    // then copy the pixels out.
    int stride = (3 * out_w + 63) / 64 * 64;
    size_t need = (size_t)stride * out_h + 64;
    if (need > v->rgb_size) {
        free(v->rgb);
        v->rgb_size = 0;
        v->rgb = malloc(need);
        if (!v->rgb) return fail(err, errlen, "%s: out of memory", v->path);
        v->rgb_size = need;
    }
    uint8_t *planes[4] = {v->rgb, NULL, NULL, NULL};
    int strides[4] = {stride, 0, 0, 0};
    sws_scale(v->sws, (const uint8_t *const *)f->data, f->linesize, 0, f->height, planes, strides);
    for (int y = 0; y < out_h; y++)
        memcpy(dst + (size_t)y * out_w * 3, v->rgb + (size_t)y * stride, (size_t)out_w * 3);
    return 0;
}

typedef struct {
    int64_t idx;
    int pos;
} IdxPos;

static int cmp_idxpos(const void *a, const void *b) {
    const IdxPos *x = a, *y = b;
    if (x->idx != y->idx) return x->idx < y->idx ? -1 : 1;
    return x->pos - y->pos;
}

int video_read_frames(VideoReader *v, const int64_t *idx, int n, int out_w, int out_h, uint8_t *rgb,
                      char *err, size_t errlen) {
    if (n <= 0) return 0;
    if (out_w == 0 && out_h == 0) {
        out_w = v->info.width;
        out_h = v->info.height;
    }
    if (out_w < 1 || out_h < 1 || out_w > 16384 || out_h > 16384)
        return fail(err, errlen, "%s: output size %dx%d: expected 0x0 (native) or 1..16384 a side",
                    v->path, out_w, out_h);
    IdxPos *order = malloc((size_t)n * sizeof *order);
    if (!order) return fail(err, errlen, "%s: out of memory", v->path);
    for (int i = 0; i < n; i++) {
        if (idx[i] < 0 || idx[i] >= v->info.nframes) {
            free(order);
            return fail(err, errlen, "%s: frame %lld requested, the video has %lld (0..%lld)",
                        v->path, (long long)idx[i], (long long)v->info.nframes,
                        (long long)v->info.nframes - 1);
        }
        order[i] = (IdxPos){idx[i], i};
    }
    qsort(order, (size_t)n, sizeof *order, cmp_idxpos);
    int rc = 0;
    // The decoder only goes forward: reopen when the first wanted frame is behind it.
    // (also when an earlier reopen failed and left no input)
    if ((order[0].idx < v->next || !v->fmt) && rewind_input(v, err, errlen)) rc = -1;
    size_t frame_bytes = (size_t)out_w * (size_t)out_h * 3;
    int i = 0;
    while (!rc && i < n) {
        if (!next_frame(v)) {
            rc = truncated(v, v->info.nframes, 0, err, errlen);
            break;
        }
        int64_t k = v->next - 1;
        int first = i;
        while (i < n && order[i].idx == k) {
            uint8_t *dst = rgb + (size_t)order[i].pos * frame_bytes;
            if (i == first)
                rc = to_rgb(v, out_w, out_h, dst, err, errlen);
            else
                memcpy(dst, rgb + (size_t)order[first].pos * frame_bytes, frame_bytes);
            if (rc) break;
            i++;
        }
    }
    free(order);
    return rc;
}

// ---- clip planning ------------------------------------------------------------------------

static int64_t sample_at(int64_t a, int64_t j, double step) {
    return a + (int64_t)floor((double)j * step + 1e-9);
}

int video_plan_clips(const VideoClipSpec *spec, int64_t nframes, double fps, const char *path,
                     VideoClipPlan *plan, char *err, size_t errlen) {
    memset(plan, 0, sizeof *plan);
    const VideoClipSpec *s = spec;
    if (s->length < 1 || s->max_clips < 1)
        return fail(err, errlen, "%s: clip length %d and clips per video %d: both must be >= 1",
                    path, s->length, s->max_clips);
    if (!(s->fps > 0) && s->stride < 1)
        return fail(err, errlen, "%s: clip stride %d: expected >= 1 (or a sample fps > 0)", path,
                    s->stride);
    if (!isfinite(s->fps) || !isfinite(s->start) || !isfinite(s->end) || s->start < 0 ||
        (s->end > 0 && s->end <= s->start))
        return fail(err, errlen,
                    "%s: clip range start %g s, end %g s: expected 0 <= start < end (end <= 0: "
                    "the whole video)",
                    path, s->start, s->end);
    if (!(fps > 0) || nframes < 0)
        return fail(err, errlen, "%s: %lld frames at %g fps: cannot plan clips", path,
                    (long long)nframes, fps);
    double step = s->fps > 0 ? fps / s->fps : (double)s->stride;
    // Frame k starts at k / fps: the range holds the frames with start <= k / fps < end.
    int64_t first = s->start > 0 ? (int64_t)ceil(s->start * fps - 1e-9) : 0;
    int64_t last = s->end > 0 ? (int64_t)ceil(s->end * fps - 1e-9) : nframes;
    if (last > nframes) last = nframes;
    if (first > last) first = last;
    int64_t span = (int64_t)floor((s->length - 1) * step + 1e-9) + 1;
    int64_t avail = last - first;
    if (avail < span && s->start > 0 && first >= nframes)
        return fail(err, errlen, "%s: too short: the range starts at %g s, the video ends at %g s",
                    path, s->start, nframes / fps);
    if (avail < span) {
        char range[96] = "", how[96];
        if (s->start > 0 || s->end > 0)
            snprintf(range, sizeof range, " from %g s to %g s", s->start,
                     s->end > 0 ? s->end : nframes / fps);
        if (s->fps > 0)
            snprintf(how, sizeof how, "at %g fps (from %g fps)", s->fps, fps);
        else
            snprintf(how, sizeof how, "at stride %d", s->stride);
        return fail(err, errlen, "%s: too short: %lld frames%s, a clip needs %d %s = %lld", path,
                    (long long)avail, range, s->length, how, (long long)span);
    }
    int64_t nstarts = avail - span + 1;
    int nclips = 0;
    if (s->spread == VIDEO_CLIPS_CONSECUTIVE) {
        while (nclips < s->max_clips &&
               sample_at(first, (int64_t)nclips * s->length + s->length - 1, step) < last)
            nclips++;
    } else {
        nclips = nstarts < s->max_clips ? (int)nstarts : s->max_clips;
    }
    plan->frames = malloc((size_t)nclips * (size_t)s->length * sizeof *plan->frames);
    if (!plan->frames) return fail(err, errlen, "%s: out of memory", path);
    plan->nclips = nclips;
    plan->length = s->length;
    plan->step = step;
    plan->first = first;
    plan->last = last;
    for (int c = 0; c < nclips; c++) {
        int64_t *row = plan->frames + (size_t)c * s->length;
        for (int j = 0; j < s->length; j++) {
            if (s->spread == VIDEO_CLIPS_CONSECUTIVE) {
                row[j] = sample_at(first, (int64_t)c * s->length + j, step);
            } else {
                int64_t a = nclips == 1 ? first + (nstarts - 1) / 2
                                        : first + (int64_t)c * (nstarts - 1) / (nclips - 1);
                row[j] = sample_at(a, j, step);
            }
        }
    }
    return 0;
}

void video_clip_plan_free(VideoClipPlan *plan) {
    if (!plan) return;
    free(plan->frames);
    memset(plan, 0, sizeof *plan);
}

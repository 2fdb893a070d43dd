// runner/video_write.c: RGB24 frames to mp4/webm/mkv/avi/gif with libavformat/libavcodec
// (see video_write.h). One encoder thread and bit-exact flags keep the output bytes
// reproducible; the file is written under a temporary name and renamed when complete.
#include "runner/video_write.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/cpu.h>
#include <libavutil/imgutils.h>
#include <libavutil/opt.h>
#include <libswscale/swscale.h>

#include "runner/check.h"
#include "runner/video.h"

struct VideoWriter {
    char path[PATH_MAX], tmp[PATH_MAX];
    char codec[32];
    int width, height;
    int64_t nframes;  // frames added so far (also the next frame's pts)
    AVFormatContext *oc;
    AVCodecContext *enc;
    AVStream *st;
    AVFrame *frame;  // encoder-format frame
    // The caller's RGB copied into rows of `rgb_stride` bytes with zeroed padding after
    // each row and the last: libswscale's SIMD reads up to 16 bytes past the input, and
    // those bytes must be ours (and always the same, for reproducible output).
    uint8_t *rgb;
    int rgb_stride;
    AVPacket *pkt;
    struct SwsContext *sws;
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

// "FFmpeg error text" plus the last log line FFmpeg printed for it, when there is one.
static const char *av_reason(int ret, char *buf, size_t n) {
    char e[AV_ERROR_MAX_STRING_SIZE];
    av_strerror(ret, e, sizeof e);
    const char *log = video_log_last();
    if (log[0])
        snprintf(buf, n, "%s; FFmpeg: %s", e, log);
    else
        snprintf(buf, n, "%s", e);
    return buf;
}

static const char *extension_of(const char *path) {
    const char *slash = strrchr(path, '/');
    const char *dot = strrchr(slash ? slash : path, '.');
    return dot ? dot + 1 : "";
}

// The default encoder for a container extension (NULL: unknown extension).
static const AVCodec *default_encoder(const char *ext) {
    const AVCodec *c = NULL;
    if (!strcasecmp(ext, "mp4") || !strcasecmp(ext, "m4v") || !strcasecmp(ext, "mov") ||
        !strcasecmp(ext, "mkv")) {
        c = avcodec_find_encoder_by_name("libx264");
        if (!c) c = avcodec_find_encoder_by_name("mpeg4");
    } else if (!strcasecmp(ext, "avi")) {
        c = avcodec_find_encoder_by_name("mpeg4");
    } else if (!strcasecmp(ext, "webm")) {
        c = avcodec_find_encoder_by_name("libvpx");
        if (!c) c = avcodec_find_encoder_by_name("libvpx-vp9");
    } else if (!strcasecmp(ext, "gif")) {
        c = avcodec_find_encoder_by_name("gif");
    }
    return c;
}

// Same temporary-file scheme as runner/image.c: ".NAME.tmp-PID-N" next to path.
static int create_temp(const char *path, char *tmp, size_t n) {
    const char *slash = strrchr(path, '/');
    int dirlen = slash ? (int)(slash - path + 1) : 0;
    static unsigned counter;
    for (int attempt = 0; attempt < 100; attempt++) {
        unsigned k = __atomic_fetch_add(&counter, 1, __ATOMIC_RELAXED);
        int w = snprintf(tmp, n, "%.*s.%s.tmp-%ld-%u", dirlen, path, slash ? slash + 1 : path,
                         (long)getpid(), k);
        if (w < 0 || (size_t)w >= n) {
            errno = ENAMETOOLONG;
            return -1;
        }
        int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (fd >= 0) {
            close(fd);
            return 0;
        }
        if (errno != EEXIST) return -1;
    }
    return -1;
}

static void sync_dir_of(const char *path) {
    const char *slash = strrchr(path, '/');
    char dir[PATH_MAX];
    if (!slash)
        snprintf(dir, sizeof dir, ".");
    else
        snprintf(dir, sizeof dir, "%.*s", (int)(slash == path ? 1 : slash - path), path);
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        (void)fsync(fd);  // best effort: some file systems refuse fsync on folders
        close(fd);
    }
}

static void writer_free(VideoWriter *w) {
    if (!w) return;
    sws_freeContext(w->sws);
    free(w->rgb);
    av_frame_free(&w->frame);
    av_packet_free(&w->pkt);
    avcodec_free_context(&w->enc);
    if (w->oc) {
        if (w->oc->pb) avio_closep(&w->oc->pb);
        avformat_free_context(w->oc);
    }
    free(w);
}

void video_writer_abort(VideoWriter *w) {
    if (!w) return;
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s", w->tmp);
    writer_free(w);
    if (tmp[0]) unlink(tmp);
}

// x264's name for the widest x86 instruction set below AVX-512 this CPU has (NULL: not
// x86, keep x264's own detection). Names are x264's cumulative levels (x264_cpu_names).
static const char *x264_cpu_cap(void) {
#if defined(__x86_64__) || defined(__i386__)
    int f = av_get_cpu_flags();
    if ((f & AV_CPU_FLAG_AVX2) && (f & AV_CPU_FLAG_FMA3) && (f & AV_CPU_FLAG_BMI2)) return "AVX2";
    if (f & AV_CPU_FLAG_AVX) return "AVX";
    if (f & AV_CPU_FLAG_SSE42) return "SSE4.2";
    if (f & AV_CPU_FLAG_SSE4) return "SSE4.1";
    if (f & AV_CPU_FLAG_SSSE3) return "SSSE3";
    if (f & AV_CPU_FLAG_SSE3) return "SSE3";
    if (f & AV_CPU_FLAG_SSE2) return "SSE2";
    return "0";
#else
    return NULL;
#endif
}

// Quality and speed settings per encoder; see VideoWriteOptions.crf for the mapping.
static void set_quality(AVCodecContext *enc, const char *name, int crf, double fps) {
    if (crf < 0) crf = 18;
    if (crf > 51) crf = 51;
    if (!strcmp(name, "libx264")) {
        av_opt_set_int(enc->priv_data, "crf", crf, 0);
        av_opt_set(enc->priv_data, "preset", "medium", 0);
        // x264 164's AVX-512 code made a third encoder in one process write different
        // bytes (an AMD EPYC with AVX-512, Debian 12): cap its instruction sets at AVX2.
        const char *cpu = x264_cpu_cap();
        if (cpu) {
            char params[64];
            snprintf(params, sizeof params, "asm=%s", cpu);
            av_opt_set(enc->priv_data, "x264-params", params, 0);
        }
    } else if (!strcmp(name, "mpeg4")) {
        int q = crf / 6;
        q = q < 2 ? 2 : q > 31 ? 31 : q;
        enc->flags |= AV_CODEC_FLAG_QSCALE;
        enc->global_quality = FF_QP2LAMBDA * q;
    } else if (!strncmp(name, "libvpx", 6)) {
        int q = crf / 2 + 1;
        q = q < 4 ? 4 : q > 63 ? 63 : q;
        av_opt_set_int(enc->priv_data, "crf", q, 0);
        // VP8's constant-quality mode needs a bitrate ceiling: a generous 2 bits per pixel.
        enc->bit_rate = (int64_t)(2.0 * enc->width * enc->height * (fps > 1 ? fps : 1));
        av_opt_set(enc->priv_data, "deadline", "good", 0);
    }
}

int video_writer_open(VideoWriter **out, const char *path, int width, int height, double fps,
                      const VideoWriteOptions *opt, char *err, size_t errlen) {
    *out = NULL;
    video_log_init();
    video_log_clear();
    if (width < 1 || height < 1 || width > 16384 || height > 16384)
        return fail(err, errlen, "%s: video size %dx%d: each side must be 1..16384", path, width,
                    height);
    if (!(fps > 0 && fps <= 1000))
        return fail(err, errlen, "%s: frame rate %g: expected 0 < fps <= 1000", path, fps);
    const char *ext = extension_of(path);
    const AVOutputFormat *ofmt = av_guess_format(NULL, path, NULL);
    if (!ofmt || !ext[0])
        return fail(err, errlen,
                    "%s: unknown video file extension \"%s\"; expected .mp4, .webm, .mkv, .avi, "
                    ".mov or .gif",
                    path, ext);
    const AVCodec *codec = NULL;
    if (opt && opt->codec && opt->codec[0]) {
        codec = avcodec_find_encoder_by_name(opt->codec);
        if (!codec || codec->type != AVMEDIA_TYPE_VIDEO)
            return fail(err, errlen, "%s: video encoder \"%s\" is not in this FFmpeg build", path,
                        opt->codec);
    } else {
        codec = default_encoder(ext);
        if (!codec)
            return fail(err, errlen,
                        "%s: no default encoder for .%s in this FFmpeg build (give one by name)",
                        path, ext);
    }
    if (avformat_query_codec(ofmt, codec->id, FF_COMPLIANCE_NORMAL) != 1)
        return fail(err, errlen, "%s: the %s container cannot hold %s video", path, ofmt->name,
                    codec->name);
    // yuv420p when the encoder takes it; else its closest format to RGB24 (gif: rgb8).
    enum AVPixelFormat pix = AV_PIX_FMT_YUV420P;
    if (codec->pix_fmts) {
        int has420 = 0;
        for (const enum AVPixelFormat *p = codec->pix_fmts; *p != AV_PIX_FMT_NONE; p++)
            has420 |= *p == AV_PIX_FMT_YUV420P;
        if (!has420) {
            pix = AV_PIX_FMT_NONE;
            for (const enum AVPixelFormat *p = codec->pix_fmts; *p != AV_PIX_FMT_NONE; p++)
                if (*p == AV_PIX_FMT_RGB8 || (pix == AV_PIX_FMT_NONE && sws_isSupportedOutput(*p)))
                    pix = *p;
            if (pix == AV_PIX_FMT_NONE)
                return fail(err, errlen,
                            "%s: no pixel format of the %s encoder can be made from RGB", path,
                            codec->name);
        }
    }
    if (pix == AV_PIX_FMT_YUV420P && (width % 2 || height % 2))
        return fail(err, errlen, "%s: %dx%d: %s with yuv420p needs an even width and height", path,
                    width, height, codec->name);

    VideoWriter *w = calloc(1, sizeof *w);
    if (!w) return fail(err, errlen, "%s: out of memory", path);
    snprintf(w->path, sizeof w->path, "%s", path);
    snprintf(w->codec, sizeof w->codec, "%s", codec->name);
    w->width = width;
    w->height = height;
    char why[512];
    int ret;
    if (create_temp(path, w->tmp, sizeof w->tmp)) {
        int e = errno;
        w->tmp[0] = 0;
        writer_free(w);
        return fail(err, errlen, "%s: cannot create a file there: %s", path, strerror(e));
    }
    if ((ret = avformat_alloc_output_context2(&w->oc, ofmt, NULL, w->tmp)) < 0) {
        video_writer_abort(w);
        return fail(err, errlen, "%s: %s", path, av_reason(ret, why, sizeof why));
    }
    w->oc->flags |= AVFMT_FLAG_BITEXACT;  // no library version strings in the file
    w->st = avformat_new_stream(w->oc, NULL);
    w->enc = avcodec_alloc_context3(codec);
    w->frame = av_frame_alloc();
    w->pkt = av_packet_alloc();
    if (!w->st || !w->enc || !w->frame || !w->pkt) {
        video_writer_abort(w);
        return fail(err, errlen, "%s: out of memory", path);
    }
    AVRational rate = av_d2q(fps, 1001000);
    w->enc->width = width;
    w->enc->height = height;
    w->enc->pix_fmt = pix;
    w->enc->framerate = rate;
    w->enc->time_base = av_inv_q(rate);
    w->enc->sample_aspect_ratio = (AVRational){1, 1};
    w->enc->thread_count = 1;  // bit-identical output whatever the machine
    w->enc->flags |= AV_CODEC_FLAG_BITEXACT;
    if (pix == AV_PIX_FMT_YUV420P) {
        w->enc->color_range = AVCOL_RANGE_MPEG;
        w->enc->colorspace = AVCOL_SPC_SMPTE170M;  // what libswscale's default matrix is
    }
    if (w->oc->oformat->flags & AVFMT_GLOBALHEADER) w->enc->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
    set_quality(w->enc, codec->name, opt ? opt->crf : -1, fps);
    if ((ret = avcodec_open2(w->enc, codec, NULL)) < 0) {
        video_writer_abort(w);
        return fail(err, errlen, "%s: cannot start the %s encoder: %s", path, codec->name,
                    av_reason(ret, why, sizeof why));
    }
    w->st->time_base = w->enc->time_base;
    w->st->avg_frame_rate = rate;
    w->st->sample_aspect_ratio = w->enc->sample_aspect_ratio;
    if ((ret = avcodec_parameters_from_context(w->st->codecpar, w->enc)) < 0 ||
        (ret = avio_open(&w->oc->pb, w->tmp, AVIO_FLAG_WRITE)) < 0) {
        video_writer_abort(w);
        return fail(err, errlen, "%s: %s", path, av_reason(ret, why, sizeof why));
    }
    AVDictionary *mux = NULL;
    if (!strcasecmp(ext, "mp4") || !strcasecmp(ext, "mov") || !strcasecmp(ext, "m4v"))
        av_dict_set(&mux, "movflags", "+faststart", 0);
    ret = avformat_write_header(w->oc, &mux);
    av_dict_free(&mux);
    if (ret < 0) {
        video_writer_abort(w);
        return fail(err, errlen, "%s: cannot start the %s container: %s", path, ofmt->name,
                    av_reason(ret, why, sizeof why));
    }
    w->frame->format = pix;
    w->frame->width = width;
    w->frame->height = height;
    w->sws = sws_getContext(width, height, AV_PIX_FMT_RGB24, width, height, pix,
                            SWS_BICUBIC | SWS_ACCURATE_RND | SWS_BITEXACT, NULL, NULL, NULL);
    w->rgb_stride = (3 * width + 63) / 64 * 64;
    w->rgb = calloc((size_t)w->rgb_stride * height + 64, 1);
    if (!w->sws || !w->rgb || av_frame_get_buffer(w->frame, 0) < 0) {
        video_writer_abort(w);
        return fail(err, errlen, "%s: cannot set up RGB24 -> %s conversion", path,
                    av_get_pix_fmt_name(pix));
    }
    *out = w;
    return 0;
}

const char *video_writer_codec(const VideoWriter *w) { return w->codec; }

// Sends one frame (NULL: end of stream) and writes every packet the encoder has ready.
static int encode(VideoWriter *w, AVFrame *f, char *err, size_t errlen) {
    char why[512];
    int ret = avcodec_send_frame(w->enc, f);
    if (ret < 0)
        return fail(err, errlen, "%s: %s encoder: %s", w->path, w->codec,
                    av_reason(ret, why, sizeof why));
    for (;;) {
        ret = avcodec_receive_packet(w->enc, w->pkt);
        if (ret == AVERROR(EAGAIN) || ret == AVERROR_EOF) return 0;
        if (ret < 0)
            return fail(err, errlen, "%s: %s encoder: %s", w->path, w->codec,
                        av_reason(ret, why, sizeof why));
        av_packet_rescale_ts(w->pkt, w->enc->time_base, w->st->time_base);
        w->pkt->stream_index = w->st->index;
        ret = av_interleaved_write_frame(w->oc, w->pkt);  // takes the packet's data
        if (ret < 0)
            return fail(err, errlen, "%s: cannot write: %s", w->path,
                        av_reason(ret, why, sizeof why));
    }
}

int video_writer_add(VideoWriter *w, const uint8_t *rgb, char *err, size_t errlen) {
    video_log_clear();
    if (av_frame_make_writable(w->frame) < 0)
        return fail(err, errlen, "%s: out of memory", w->path);
    // Zero the whole buffer, row and plane padding included: SIMD code in encoders reads
    // past the last pixel, and what it finds there must not depend on the heap's past.
    for (int i = 0; i < AV_NUM_DATA_POINTERS && w->frame->buf[i]; i++)
        memset(w->frame->buf[i]->data, 0, w->frame->buf[i]->size);
    for (int y = 0; y < w->height; y++)
        memcpy(w->rgb + (size_t)y * w->rgb_stride, rgb + (size_t)y * w->width * 3,
               (size_t)w->width * 3);
    const uint8_t *src[1] = {w->rgb};
    int stride[1] = {w->rgb_stride};
    sws_scale(w->sws, src, stride, 0, w->height, w->frame->data, w->frame->linesize);
    w->frame->pts = w->nframes;
    if (encode(w, w->frame, err, errlen)) return -1;
    w->nframes++;
    return 0;
}

int video_writer_close(VideoWriter *w, char *err, size_t errlen) {
    video_log_clear();
    char why[512];
    if (w->nframes < 1) {
        fail(err, errlen, "%s: no frames to write", w->path);
        video_writer_abort(w);
        return -1;
    }
    if (encode(w, NULL, err, errlen)) {
        video_writer_abort(w);
        return -1;
    }
    int ret = av_write_trailer(w->oc);
    if (ret < 0) {
        fail(err, errlen, "%s: cannot finish the file: %s", w->path,
             av_reason(ret, why, sizeof why));
        video_writer_abort(w);
        return -1;
    }
    ret = avio_closep(&w->oc->pb);
    if (ret < 0) {
        fail(err, errlen, "%s: cannot write: %s", w->path, av_reason(ret, why, sizeof why));
        video_writer_abort(w);
        return -1;
    }
    int fd = open(w->tmp, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || fsync(fd) != 0) {
        int e = errno;
        if (fd >= 0) close(fd);
        fail(err, errlen, "%s: cannot write: %s", w->path, strerror(e));
        video_writer_abort(w);
        return -1;
    }
    close(fd);
    if (rename(w->tmp, w->path) != 0) {
        int e = errno;
        fail(err, errlen, "%s: cannot rename %s to it: %s", w->path, w->tmp, strerror(e));
        video_writer_abort(w);
        return -1;
    }
    sync_dir_of(w->path);
    w->tmp[0] = 0;
    writer_free(w);
    return 0;
}

int video_write(const char *path, const uint8_t *frames, int n, int width, int height, double fps,
                const VideoWriteOptions *opt, char *codec_used, size_t codec_len, char *err,
                size_t errlen) {
    if (n < 1) return fail(err, errlen, "%s: no frames to write", path);
    VideoWriter *w;
    if (video_writer_open(&w, path, width, height, fps, opt, err, errlen)) return -1;
    if (codec_used && codec_len) snprintf(codec_used, codec_len, "%s", w->codec);
    size_t frame_bytes = (size_t)width * (size_t)height * 3;
    for (int i = 0; i < n; i++) {
        if (video_writer_add(w, frames + (size_t)i * frame_bytes, err, errlen)) {
            video_writer_abort(w);
            return -1;
        }
    }
    return video_writer_close(w, err, errlen);
}

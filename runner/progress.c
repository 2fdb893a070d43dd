// runner/progress.c: progress lines for long jobs (see progress.h).
#define _POSIX_C_SOURCE 200809L
#include "runner/progress.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "runner/check.h"
#include "runner/log.h"

enum { RING = 33 };  // step reports kept: 32 intervals for the median rate

struct Progress {
    char label[32], unit[32], step[32];
    long total_units, total_steps;
    int silent, tty, unit_lines;
    FILE *stream;
    double tty_interval, log_interval;
    ProgressClock clock;
    void *clock_ctx;
    ProgressSink sink;
    void *sink_ctx;

    double t0;
    long units_done, steps_done;        // everything, resumed work included
    long units_skipped, steps_skipped;  // resumed work (not in the rate)
    // Ring of (time, steps done in this run) at each step report, oldest at `head`.
    double ring_t[RING];
    long ring_s[RING];
    int ring_n, ring_head;
    double last_draw, last_line;
    int drawn;  // an in-place line is on screen
};

static double clock_monotonic(void *ctx) {
    (void)ctx;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void sink_log(const char *line, void *ctx) {
    (void)ctx;
    LOG_INFO("%s", line);
}

static void copy_name(char *dst, const char *src, const char *fallback) {
    snprintf(dst, 32, "%s", src && *src ? src : fallback);
}

static double now(const Progress *p) { return p->clock(p->clock_ctx); }

static void ring_push(Progress *p, double t, long steps) {
    int last = (p->ring_head + p->ring_n - 1) % RING;
    if (p->ring_n > 0 && t <= p->ring_t[last]) {
        // Same instant as the previous report (coarse or fake clocks): merge them.
        p->ring_s[last] = steps;
        return;
    }
    if (p->ring_n == RING) {
        p->ring_head = (p->ring_head + 1) % RING;
        p->ring_n--;
    }
    int at = (p->ring_head + p->ring_n) % RING;
    p->ring_t[at] = t;
    p->ring_s[at] = steps;
    p->ring_n++;
}

Progress *progress_start(const ProgressOptions *opt) {
    Progress *p = mallocCheck(sizeof *p);
    memset(p, 0, sizeof *p);
    copy_name(p->label, opt->label, "progress");
    copy_name(p->unit, opt->unit, "units");
    copy_name(p->step, opt->step, "steps");
    p->total_units = opt->total_units > 0 ? opt->total_units : 0;
    p->total_steps = opt->total_steps > 0 ? opt->total_steps : 0;
    p->silent = opt->silent;
    p->stream = opt->stream ? opt->stream : stderr;
    p->tty = opt->mode == PROGRESS_TTY || (opt->mode == PROGRESS_AUTO && isatty(fileno(p->stream)));
    p->unit_lines = !opt->no_unit_lines;
    p->tty_interval = opt->tty_interval > 0 ? opt->tty_interval : 0.25;
    p->log_interval = opt->log_interval > 0 ? opt->log_interval : 30.0;
    p->clock = opt->clock ? opt->clock : clock_monotonic;
    p->clock_ctx = opt->clock_ctx;
    p->sink = opt->sink ? opt->sink : sink_log;
    p->sink_ctx = opt->sink_ctx;
    p->t0 = now(p);
    p->last_draw = -INFINITY;
    p->last_line = p->t0;
    ring_push(p, p->t0, 0);
    return p;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double progress_rate(const Progress *p) {
    if (p->ring_n < 2) return 0.0;
    double rates[RING];
    int n = 0;
    for (int i = 1; i < p->ring_n; i++) {
        int a = (p->ring_head + i - 1) % RING, b = (p->ring_head + i) % RING;
        rates[n++] = (double)(p->ring_s[b] - p->ring_s[a]) / (p->ring_t[b] - p->ring_t[a]);
    }
    qsort(rates, (size_t)n, sizeof rates[0], cmp_double);
    return n % 2 ? rates[n / 2] : 0.5 * (rates[n / 2 - 1] + rates[n / 2]);
}

// ETA at time t: remaining work over this run's average pace (see progress.h).
static double eta_at(const Progress *p, double t) {
    double elapsed = t - p->t0;
    if (elapsed <= 0) return -1.0;
    if (p->total_steps > 0) {
        long run = p->steps_done - p->steps_skipped;
        if (run <= 0) return -1.0;
        long left = p->total_steps - p->steps_done;
        return left > 0 ? (double)left * elapsed / (double)run : 0.0;
    }
    long run = p->units_done - p->units_skipped;
    if (run <= 0 || p->total_units == 0) return -1.0;
    long left = p->total_units - p->units_done;
    return left > 0 ? (double)left * elapsed / (double)run : 0.0;
}

double progress_eta(const Progress *p) { return eta_at(p, now(p)); }

const char *progress_format_duration(double seconds, char *buf, size_t n) {
    if (!(seconds >= 0) || seconds > 1e9) {  // negative, NaN or absurd: unknown
        snprintf(buf, n, "--");
        return buf;
    }
    long s = lround(seconds);
    if (s < 60)
        snprintf(buf, n, "%lds", s);
    else if (s < 3600)
        snprintf(buf, n, "%ldm%02lds", s / 60, s % 60);
    else if (s < 86400)
        snprintf(buf, n, "%ldh%02ldm", s / 3600, (s % 3600) / 60);
    else
        snprintf(buf, n, "%ldd%02ldh", s / 86400, (s % 86400) / 3600);
    return buf;
}

// Rates span 0.01 (CPU, big models) to thousands (small batches): keep 3 figures.
static void format_rate(double r, char *buf, size_t n) {
    if (r >= 100)
        snprintf(buf, n, "%.0f", r);
    else if (r >= 10)
        snprintf(buf, n, "%.1f", r);
    else if (r >= 1)
        snprintf(buf, n, "%.2f", r);
    else
        snprintf(buf, n, "%.3f", r);
}

static const char *line_at(Progress *p, double t, char *buf, size_t n) {
    char rate[32], eta[32];
    double r = progress_rate(p);
    if (r > 0)
        format_rate(r, rate, sizeof rate);
    else
        snprintf(rate, sizeof rate, "--");
    progress_format_duration(eta_at(p, t), eta, sizeof eta);
    long pct = p->total_units > 0 ? p->units_done * 100 / p->total_units : 0;
    snprintf(buf, n, "%s: %s %ld/%ld (%ld%%), %s %s/s, ETA %s", p->label, p->unit, p->units_done,
             p->total_units, pct, rate, p->step, eta);
    return buf;
}

const char *progress_line(Progress *p, char *buf, size_t n) { return line_at(p, now(p), buf, n); }

// Shows the state after a change: redraw in place, or a plain line when one is due.
static void report(Progress *p, int unit_finished) {
    double t = now(p);
    char line[256];
    if (p->tty) {
        if (t - p->last_draw < p->tty_interval) return;
        line_at(p, t, line, sizeof line);
        fprintf(p->stream, "\r\033[K%s", line);
        fflush(p->stream);
        p->last_draw = t;
        p->drawn = 1;
        return;
    }
    if ((unit_finished && p->unit_lines) || t - p->last_line >= p->log_interval) {
        p->sink(line_at(p, t, line, sizeof line), p->sink_ctx);
        p->last_line = t;
    }
}

void progress_skip(Progress *p, long units, long steps) {
    if (!p || p->silent) return;
    p->units_done += units;
    p->units_skipped += units;
    p->steps_done += steps;
    p->steps_skipped += steps;
}

void progress_steps(Progress *p, long n) {
    if (!p || p->silent) return;
    p->steps_done += n;
    ring_push(p, now(p), p->steps_done - p->steps_skipped);
    report(p, 0);
}

void progress_units(Progress *p, long n) {
    if (!p || p->silent) return;
    p->units_done += n;
    report(p, 1);
}

void progress_clear(Progress *p) {
    if (!p || p->silent || !p->drawn) return;
    fprintf(p->stream, "\r\033[K");
    fflush(p->stream);
    p->drawn = 0;
    p->last_draw = -INFINITY;  // draw again at the next update
}

void progress_finish(Progress *p) {
    if (!p) return;
    if (!p->silent) {
        progress_clear(p);
        double t = now(p), elapsed = t - p->t0;
        long run_steps = p->steps_done - p->steps_skipped;
        char took[32], rate[32], line[320];
        progress_format_duration(elapsed, took, sizeof took);
        format_rate(elapsed > 0 ? (double)run_steps / elapsed : 0.0, rate, sizeof rate);
        int done = p->units_done >= p->total_units;
        int k = snprintf(line, sizeof line, "%s: %s: %s %ld/%ld in %s, %ld %s, %s %s/s", p->label,
                         done ? "done" : "stopped", p->unit, p->units_done, p->total_units, took,
                         run_steps, p->step, rate, p->step);
        if (p->units_skipped > 0 && k > 0 && (size_t)k < sizeof line)
            snprintf(line + k, sizeof line - (size_t)k, " (%ld %s were done before)",
                     p->units_skipped, p->unit);
        p->sink(line, p->sink_ctx);
    }
    free(p);
}

// runner/progress.h: "frames 3/8 (37%), 2.41 steps/s, ETA 1m05s" for long jobs.
//
// Two kinds of work are counted: units (what the user waits for: frames, clips, epochs)
// and steps (the fine-grained work whose rate is shown: denoising steps, batches). Rank 0
// reports; the other ranks pass .silent = 1 and every call is a no-op for them. On N ranks
// the job reports the counts it wants shown (its own, or global ones it gathered).
//
//   Progress *p = progress_start(&(ProgressOptions){.label = "render", .unit = "frames",
//       .step = "steps", .total_units = 8, .total_steps = 8 * 30, .silent = rank != 0});
//   progress_skip(p, 2, 60);            // resumed: frames done by an earlier run
//   for each step: progress_steps(p, 1);
//   after each frame: progress_units(p, 1);
//   progress_finish(p);                 // summary line; frees p
//
// Output: on a terminal (isatty of the stream, stderr by default) one line redrawn in
// place (carriage return + erase line), at most every tty_interval seconds; otherwise
// plain lines through the log (LOG_INFO, so rank 0's log file and a Slurm .out file get
// them): one at every unit completion and at most one per log_interval seconds between.
// progress_finish prints the summary line through the log in both cases.
//
// The rate shown is the median of the rates between the last 32 step reports: it follows
// what the hardware does now and ignores one-off stalls. The ETA divides the remaining
// steps by this run's average rate instead, because the time between steps (decoding,
// saving, waiting for other ranks) recurs for every unit and must be counted.
//
// Not thread-safe: call from the main thread only.
#pragma once
#include <stddef.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    PROGRESS_AUTO = 0,   // in place when the stream is a terminal, plain lines otherwise
    PROGRESS_TTY = 1,    // always in place
    PROGRESS_LINES = 2,  // always plain lines
} ProgressMode;

// Seconds on a monotonic clock (the default reads CLOCK_MONOTONIC; tests pass a fake).
typedef double (*ProgressClock)(void *ctx);
// Receives each plain line and the summary, without a newline (default: LOG_INFO).
typedef void (*ProgressSink)(const char *line, void *ctx);

// Zero is the default for every field.
typedef struct {
    const char *label;  // first word of every line, e.g. "render" (default "progress")
    const char *unit;   // plural name of the units, e.g. "frames" (default "units")
    const char *step;   // plural name of the steps, e.g. "steps" (default "steps")
    long total_units;   // units in the whole job, resumed ones included
    long total_steps;   // steps in the whole job; 0: unknown (ETA from units instead)
    int silent;         // 1: every call does nothing (ranks other than 0)
    ProgressMode mode;
    FILE *stream;         // where in-place updates go (default stderr)
    double tty_interval;  // seconds between in-place redraws (default 0.25)
    double log_interval;  // seconds between plain lines while steps advance (default 30)
    int no_unit_lines;    // 1: no plain line at each unit completion (many small units)
    ProgressClock clock;
    void *clock_ctx;
    ProgressSink sink;
    void *sink_ctx;
} ProgressOptions;

typedef struct Progress Progress;

// Starts the clock. Strings in opt are copied (names are cut at 31 bytes).
Progress *progress_start(const ProgressOptions *opt);
// Work finished before this run (a resumed job): counts as done, not towards the rate.
void progress_skip(Progress *p, long units, long steps);
// n more steps finished.
void progress_steps(Progress *p, long n);
// n more units finished (report their steps with progress_steps first).
void progress_units(Progress *p, long n);
// Erases the in-place line (before printing something else on the terminal); the next
// update draws it again. Does nothing in plain-line mode.
void progress_clear(Progress *p);
// Prints the summary ("render: done: frames 8/8 in 1m40s, 240 steps, 2.40 steps/s", or
// "stopped" when fewer units than total_units are done) and frees p. NULL is fine.
void progress_finish(Progress *p);

// The current status line, as printed (no control characters). Returns buf.
const char *progress_line(Progress *p, char *buf, size_t n);
// Steps per second shown (median of recent intervals); 0 before two step reports.
double progress_rate(const Progress *p);
// Seconds left, or -1 while unknown (no work done in this run yet).
double progress_eta(const Progress *p);
// Formats seconds as "42s", "12m05s", "3h07m" or "2d03h" (rounded to the nearest
// second; negative: "--"). Returns buf.
const char *progress_format_duration(double seconds, char *buf, size_t n);

#ifdef __cplusplus
}
#endif

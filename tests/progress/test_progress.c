// tests/progress/test_progress.c: progress lines (runner/progress.h) against values worked
// out by hand, on a fake clock so that every rate and ETA is exact.
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runner/progress.h"
#include "tests/common/test_check.h"

typedef struct {
    double t;
} FakeClock;
static double fake_now(void *ctx) { return ((FakeClock *)ctx)->t; }

typedef struct {
    char lines[64][320];
    int n;
} Captured;
static void capture(const char *line, void *ctx) {
    Captured *c = ctx;
    if (c->n < 64) snprintf(c->lines[c->n], sizeof c->lines[0], "%s", line);
    c->n++;
}

static int count_of(const char *hay, const char *needle) {
    int n = 0;
    for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle)) n++;
    return n;
}

#define CHECK_STR(got, want) \
    CHECK(strcmp((got), (want)) == 0, "got \"%s\", want \"%s\"", (got), (want))

static void test_durations(void) {
    char b[32];
    CHECK_STR(progress_format_duration(0, b, sizeof b), "0s");
    CHECK_STR(progress_format_duration(42.4, b, sizeof b), "42s");
    CHECK_STR(progress_format_duration(59.6, b, sizeof b), "1m00s");
    CHECK_STR(progress_format_duration(65, b, sizeof b), "1m05s");
    CHECK_STR(progress_format_duration(3599, b, sizeof b), "59m59s");
    CHECK_STR(progress_format_duration(3600, b, sizeof b), "1h00m");
    CHECK_STR(progress_format_duration(3 * 3600 + 7 * 60 + 20, b, sizeof b), "3h07m");
    CHECK_STR(progress_format_duration(2 * 86400 + 3 * 3600 + 59, b, sizeof b), "2d03h");
    CHECK_STR(progress_format_duration(-1, b, sizeof b), "--");
    CHECK_STR(progress_format_duration(NAN, b, sizeof b), "--");
}

// 4 frames of 10 steps; steps take 0.5 s; a 10 s pause (decoding) after frame 2's steps.
static void test_log_lines(void) {
    FakeClock clk = {100.0};
    Captured cap = {.n = 0};
    Progress *p = progress_start(&(ProgressOptions){.label = "render",
                                                    .unit = "frames",
                                                    .step = "steps",
                                                    .total_units = 4,
                                                    .total_steps = 40,
                                                    .mode = PROGRESS_LINES,
                                                    .clock = fake_now,
                                                    .clock_ctx = &clk,
                                                    .sink = capture,
                                                    .sink_ctx = &cap});
    char b[256];
    CHECK_STR(progress_line(p, b, sizeof b), "render: frames 0/4 (0%), -- steps/s, ETA --");
    CHECK(progress_rate(p) == 0.0 && progress_eta(p) == -1.0, "nothing known yet");

    for (int s = 0; s < 10; s++) {
        clk.t += 0.5;
        progress_steps(p, 1);
    }
    CHECK(cap.n == 0, "no line before a unit completes or 30 s pass (%d)", cap.n);
    progress_units(p, 1);
    CHECK(cap.n == 1, "one line per unit (%d)", cap.n);
    // 10 steps in 5 s: 2 steps/s; 30 steps left at that pace: 15 s.
    CHECK_STR(cap.lines[0], "render: frames 1/4 (25%), 2.00 steps/s, ETA 15s");

    for (int s = 0; s < 10; s++) {
        clk.t += 0.5;
        progress_steps(p, 1);
    }
    clk.t += 10.0;  // decode + save
    progress_units(p, 1);
    // Median rate ignores the pause (every interval is 2 steps/s); the ETA counts it:
    // 20 steps in 20 s, 20 steps left: 20 s.
    CHECK(fabs(progress_rate(p) - 2.0) < 1e-12, "rate %.17g", progress_rate(p));
    CHECK(fabs(progress_eta(p) - 20.0) < 1e-9, "eta %.17g", progress_eta(p));
    CHECK_STR(cap.lines[1], "render: frames 2/4 (50%), 2.00 steps/s, ETA 20s");

    // The first step after the pause is one slow interval among 20 fast ones.
    clk.t += 0.5;
    progress_steps(p, 1);
    CHECK(fabs(progress_rate(p) - 2.0) < 1e-12, "median unmoved: %.17g", progress_rate(p));

    for (int s = 0; s < 19; s++) {
        clk.t += 0.5;
        progress_steps(p, 1);
        if (s == 8) progress_units(p, 1);
    }
    progress_units(p, 1);
    CHECK(cap.n == 4, "4 unit lines (%d)", cap.n);
    CHECK_STR(cap.lines[3], "render: frames 4/4 (100%), 2.00 steps/s, ETA 0s");
    progress_finish(p);
    CHECK(cap.n == 5, "summary (%d)", cap.n);
    CHECK_STR(cap.lines[4], "render: done: frames 4/4 in 30s, 40 steps, 1.33 steps/s");
}

// One long unit: plain lines every log_interval seconds between unit completions.
static void test_log_interval(void) {
    FakeClock clk = {0.0};
    Captured cap = {.n = 0};
    Progress *p = progress_start(&(ProgressOptions){.label = "train",
                                                    .unit = "epochs",
                                                    .step = "batches",
                                                    .total_units = 2,
                                                    .total_steps = 200,
                                                    .mode = PROGRESS_LINES,
                                                    .log_interval = 30,
                                                    .clock = fake_now,
                                                    .clock_ctx = &clk,
                                                    .sink = capture,
                                                    .sink_ctx = &cap});
    for (int s = 0; s < 100; s++) {
        clk.t += 1.0;
        progress_steps(p, 1);
    }
    CHECK(cap.n == 3, "lines at 30, 60, 90 s (%d)", cap.n);
    CHECK_STR(cap.lines[0], "train: epochs 0/2 (0%), 1.00 batches/s, ETA 2m50s");
    CHECK_STR(cap.lines[2], "train: epochs 0/2 (0%), 1.00 batches/s, ETA 1m50s");
    progress_units(p, 1);  // at 100 s: a unit line; the timer restarts from here
    clk.t += 29.0;
    progress_steps(p, 29);
    CHECK(cap.n == 4, "no timed line 29 s after the unit line (%d)", cap.n);
    clk.t += 1.0;
    progress_steps(p, 1);
    CHECK(cap.n == 5, "timed line 30 s after it (%d)", cap.n);
    CHECK_STR(cap.lines[4], "train: epochs 1/2 (50%), 1.00 batches/s, ETA 1m10s");
    progress_finish(p);
    CHECK_STR(cap.lines[5], "train: stopped: epochs 1/2 in 2m10s, 130 batches, 1.00 batches/s");

    // With no_unit_lines, units only show in the timed lines.
    cap.n = 0;
    clk.t = 0;
    p = progress_start(&(ProgressOptions){.unit = "clips",
                                          .total_units = 1000,
                                          .mode = PROGRESS_LINES,
                                          .no_unit_lines = 1,
                                          .clock = fake_now,
                                          .clock_ctx = &clk,
                                          .sink = capture,
                                          .sink_ctx = &cap});
    for (int u = 0; u < 500; u++) {
        clk.t += 0.25;
        progress_steps(p, 4);
        progress_units(p, 1);
    }
    CHECK(cap.n == 4, "125 s of small units: lines at 30, 60, 90, 120 s only (%d)", cap.n);
    // The 30 s line comes from the steps report, before that unit is counted. Units only
    // (no total_steps): 119 units in 30 s, 881 left: 222.1 s.
    CHECK_STR(cap.lines[0], "progress: clips 119/1000 (11%), 16.0 steps/s, ETA 3m42s");
    progress_finish(p);
}

// A resumed run: earlier work counts as done, not towards the rate or the ETA's pace.
static void test_resume(void) {
    FakeClock clk = {0.0};
    Captured cap = {.n = 0};
    Progress *p = progress_start(&(ProgressOptions){.label = "render",
                                                    .unit = "frames",
                                                    .total_units = 8,
                                                    .total_steps = 8 * 25,
                                                    .mode = PROGRESS_LINES,
                                                    .clock = fake_now,
                                                    .clock_ctx = &clk,
                                                    .sink = capture,
                                                    .sink_ctx = &cap});
    progress_skip(p, 3, 75);
    char b[256];
    CHECK_STR(progress_line(p, b, sizeof b), "render: frames 3/8 (37%), -- steps/s, ETA --");
    for (int s = 0; s < 25; s++) {
        clk.t += 4.0;  // slow CPU steps: 0.25 steps/s
        progress_steps(p, 1);
    }
    progress_units(p, 1);
    // 25 steps in 100 s; 100 steps left: 400 s.
    CHECK_STR(cap.lines[cap.n - 1], "render: frames 4/8 (50%), 0.250 steps/s, ETA 6m40s");
    progress_finish(p);
    CHECK_STR(cap.lines[cap.n - 1],
              "render: stopped: frames 4/8 in 1m40s, 25 steps, 0.250 steps/s "
              "(3 frames were done before)");

    // Fast steps and several reports at one instant (a coarse clock): merged, no
    // division by zero.
    clk.t = 0;
    p = progress_start(&(ProgressOptions){.total_units = 1,
                                          .total_steps = 1000,
                                          .mode = PROGRESS_LINES,
                                          .clock = fake_now,
                                          .clock_ctx = &clk,
                                          .sink = capture,
                                          .sink_ctx = &cap});
    for (int s = 0; s < 10; s++) {
        clk.t += 0.5;
        progress_steps(p, 50);
        progress_steps(p, 50);
    }
    CHECK(fabs(progress_rate(p) - 200.0) < 1e-9, "rate %.17g", progress_rate(p));
    CHECK_STR(progress_line(p, b, sizeof b), "progress: units 0/1 (0%), 200 steps/s, ETA 0s");
    progress_finish(p);
}

// In place on a terminal: carriage return + erase line, at most one redraw per 0.25 s.
static void test_tty(void) {
    FakeClock clk = {0.0};
    Captured cap = {.n = 0};
    char *buf = NULL;
    size_t len = 0;
    FILE *term = open_memstream(&buf, &len);
    CHECK(term != NULL, "open_memstream");
    if (!term) return;
    Progress *p = progress_start(&(ProgressOptions){.label = "render",
                                                    .unit = "frames",
                                                    .total_units = 2,
                                                    .total_steps = 16,
                                                    .mode = PROGRESS_TTY,
                                                    .stream = term,
                                                    .clock = fake_now,
                                                    .clock_ctx = &clk,
                                                    .sink = capture,
                                                    .sink_ctx = &cap});
    for (int s = 0; s < 8; s++) {  // steps every 0.125 s: draws at 0.125, 0.375, ...
        clk.t += 0.125;
        progress_steps(p, 1);
    }
    progress_units(p, 1);  // at 1.0 s, 0.125 s after the last draw: not drawn
    fflush(term);
    CHECK(count_of(buf, "\r\033[K") == 4, "4 redraws in 1 s, got %d: %s", count_of(buf, "\r\033[K"),
          buf);
    CHECK(strchr(buf, '\n') == NULL, "no newline while in place");
    CHECK(cap.n == 0, "no log lines on a terminal (%d)", cap.n);
    const char *last = strrchr(buf, '\r');
    CHECK(last && strcmp(last, "\r\033[Krender: frames 0/2 (0%), 8.00 steps/s, ETA 1s") == 0,
          "last draw: %s", last ? last + 1 : "(none)");
    clk.t += 0.25;
    progress_steps(p, 1);
    fflush(term);
    last = strrchr(buf, '\r');
    CHECK(last && strcmp(last, "\r\033[Krender: frames 1/2 (50%), 8.00 steps/s, ETA 1s") == 0,
          "after the unit: %s", last ? last + 1 : "(none)");
    progress_clear(p);
    fflush(term);
    CHECK(len >= 4 && strcmp(buf + len - 4, "\r\033[K") == 0, "clear erases the line");
    progress_finish(p);
    fflush(term);
    CHECK(cap.n == 1, "summary through the log (%d)", cap.n);
    CHECK_STR(cap.lines[0], "render: stopped: frames 1/2 in 1s, 9 steps, 7.20 steps/s");
    fclose(term);
    free(buf);
}

static void test_silent(void) {
    FakeClock clk = {0.0};
    Captured cap = {.n = 0};
    char *buf = NULL;
    size_t len = 0;
    FILE *term = open_memstream(&buf, &len);
    Progress *p = progress_start(&(ProgressOptions){.total_units = 3,
                                                    .silent = 1,
                                                    .mode = PROGRESS_TTY,
                                                    .stream = term,
                                                    .clock = fake_now,
                                                    .clock_ctx = &clk,
                                                    .sink = capture,
                                                    .sink_ctx = &cap});
    for (int i = 0; i < 3; i++) {
        clk.t += 100;
        progress_steps(p, 10);
        progress_units(p, 1);
    }
    progress_finish(p);
    progress_finish(NULL);
    fflush(term);
    CHECK(len == 0 && cap.n == 0, "silent: %zu bytes, %d lines", len, cap.n);
    fclose(term);
    free(buf);
}

int main(void) {
    test_durations();
    test_log_lines();
    test_log_interval();
    test_resume();
    test_tty();
    test_silent();
    printf("progress: %d checks, %d failure(s)\n", checks, failures);
    return failures ? 1 : 0;
}

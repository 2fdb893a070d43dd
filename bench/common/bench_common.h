// bench/common/bench_common.h: what the bench programs share: clocks, medians, this
// process's memory high-water mark, and a reference process (a Python script) on two pipes.
//
// A bench compares storyrun with a reference run in the same invocation (DESIGN.md 7). The
// reference is a child process: bench_child_start runs PYTHON SCRIPT ARGS... with its stdin
// and stdout on pipes; the bench sends lines and reads answer lines, so the two sides run
// one after the other on the same machine state.
#pragma once
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "kernels/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

double bench_now_ms(void);  // CLOCK_MONOTONIC
// Median of n values (sorts v in place); 0 for n == 0.
double bench_median(double *v, int n);

// This process's resident set now (VmRSS) and its high-water mark (VmHWM), in bytes;
// -1 when /proc/self/status cannot be read.
long long bench_rss_bytes(void);
long long bench_hwm_bytes(void);
// Resets the high-water mark to the current RSS (writes "5" to /proc/self/clear_refs,
// Linux >= 4.0). Returns 0, or -1 when the kernel refuses (then HWM counts from start).
int bench_reset_hwm(void);

typedef struct {
    pid_t pid;
    FILE *to, *from;
} BenchChild;

// Starts argv[0] (an executable path) with argv (NULL-terminated). Returns 0, or -1 with a
// reason in why.
int bench_child_start(BenchChild *c, char *const argv[], char *why, size_t whylen);
// Sends one line (a newline is added).
void bench_child_send(BenchChild *c, const char *line);
// Reads the next line (newline stripped) into buf. Returns 0, or -1 at end of output.
int bench_child_read(BenchChild *c, char *buf, size_t n);
// Closes the pipes and waits for the child; returns its exit status (-1 if abnormal).
int bench_child_stop(BenchChild *c);

// One row of a ratio table: "what  storyrun  reference  ratio" (reference "-" when
// have_ref is 0 or it is not positive).
void bench_ratio_row(const char *what, double storyrun, double ref, int have_ref);

// The Python that runs a reference script: $STORY_REF_PYTHON, else /opt/ref-venv/bin/python.
const char *bench_default_python(void);

// Uniform in [-1, 1) from a splitmix64 state (seeded inputs for the benches).
float bench_uniform(uint64_t *state);

// A weight source for unet_load_source / vae_load_source that makes seeded weights by
// name (the same values whatever the loading order): norms 1 / 0, other weights and
// biases uniform +-1/sqrt(fan_in), the range torch's default initialisation draws from.
// ctx: a const int64_t * giving the fan-in assumed for biases (a bias does not know its
// layer's), or NULL for 512. Host f32 arenas only.
int bench_random_source(void *ctx, const char *name, int ndim, const int64_t *shape, Arena *arena,
                        DType dt, Tensor *out, char *err, size_t errlen);

#ifdef __cplusplus
}
#endif

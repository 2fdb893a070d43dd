// bench/common/bench_common.c: see bench_common.h.
#define _POSIX_C_SOURCE 200809L
#include "bench_common.h"

#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

double bench_now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec * 1e-6;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double bench_median(double *v, int n) {
    if (n <= 0) return 0;
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// "Key:   1234 kB" of /proc/self/status, in bytes.
static long long status_kb(const char *key) {
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return -1;
    char line[256];
    long long v = -1;
    const size_t kl = strlen(key);
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, key, kl) && line[kl] == ':') {
            v = atoll(line + kl + 1) * 1024;
            break;
        }
    fclose(f);
    return v;
}

long long bench_rss_bytes(void) { return status_kb("VmRSS"); }
long long bench_hwm_bytes(void) { return status_kb("VmHWM"); }

int bench_reset_hwm(void) {
    FILE *f = fopen("/proc/self/clear_refs", "w");
    if (!f) return -1;
    int ok = fputs("5", f) >= 0;
    return fclose(f) == 0 && ok ? 0 : -1;
}

int bench_child_start(BenchChild *c, char *const argv[], char *why, size_t whylen) {
    memset(c, 0, sizeof *c);
    if (access(argv[0], X_OK) != 0) {
        snprintf(why, whylen, "%s is not executable", argv[0]);
        return -1;
    }
    int in[2], out[2];
    if (pipe(in) != 0) return snprintf(why, whylen, "pipe failed"), -1;
    if (pipe(out) != 0) {
        close(in[0]), close(in[1]);
        return snprintf(why, whylen, "pipe failed"), -1;
    }
    signal(SIGPIPE, SIG_IGN);
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) return snprintf(why, whylen, "fork failed"), -1;
    if (pid == 0) {
        dup2(in[0], 0);
        dup2(out[1], 1);
        close(in[0]), close(in[1]), close(out[0]), close(out[1]);
        execv(argv[0], argv);
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    c->pid = pid;
    c->to = fdopen(in[1], "w");
    c->from = fdopen(out[0], "r");
    return 0;
}

void bench_child_send(BenchChild *c, const char *line) {
    if (!c->to) return;
    fprintf(c->to, "%s\n", line);
    fflush(c->to);
}

int bench_child_read(BenchChild *c, char *buf, size_t n) {
    if (!c->from || !fgets(buf, (int)n, c->from)) return -1;
    buf[strcspn(buf, "\n")] = 0;
    return 0;
}

int bench_child_stop(BenchChild *c) {
    if (c->to) fclose(c->to);
    if (c->from) fclose(c->from);
    int st = -1;
    if (c->pid > 0 && waitpid(c->pid, &st, 0) == c->pid) st = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    memset(c, 0, sizeof *c);
    return st;
}

static uint64_t splitmix(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

float bench_uniform(uint64_t *s) { return (float)((splitmix(s) >> 40) * (2.0 / 16777216.0) - 1.0); }

int bench_random_source(void *ctx, const char *name, int ndim, const int64_t *shape, Arena *arena,
                        DType dt, Tensor *out, char *err, size_t errlen) {
    (void)err, (void)errlen;
    *out = arena_tensor(arena, dt, ndim, shape);
    float *d = out->data;
    const int64_t n = tensor_numel(out);
    uint64_t s = 1469598103934665603ull;  // FNV-1a of the name
    for (const char *p = name; *p; p++) s = (s ^ (uint8_t)*p) * 1099511628211ull;
    const int is_bias = strstr(name, ".bias") != NULL,
              is_norm = strstr(name, "norm") != NULL && ndim == 1;
    if (is_norm) {
        for (int64_t i = 0; i < n; i++) d[i] = is_bias ? 0.0f : 1.0f;
        return 0;
    }
    const int64_t fan_in = ndim > 1 ? n / shape[0] : ctx ? *(const int64_t *)ctx : 512;
    const float bound = 1.0f / sqrtf((float)fan_in);
    for (int64_t i = 0; i < n; i++) d[i] = bound * bench_uniform(&s);
    return 0;
}

void bench_ratio_row(const char *what, double storyrun, double ref, int have_ref) {
    if (have_ref && ref > 0)
        printf("%-34s %12.1f %12.1f %8.2f\n", what, storyrun, ref, storyrun / ref);
    else
        printf("%-34s %12.1f %12s %8s\n", what, storyrun, "-", "-");
}

const char *bench_default_python(void) {
    const char *python = getenv("STORY_REF_PYTHON");
    return python && *python ? python : "/opt/ref-venv/bin/python";
}

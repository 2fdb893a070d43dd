// bench/kernels/bench_kernels.c: CPU kernels vs PyTorch CPU at Stable Diffusion shapes.
//
//   bench_kernels [--threads N] [--reps R] [--rounds K] [--python PATH] [--filter TEXT] [--no-torch]
//
// Each row runs the storyrun CPU op (fp32) and the same torch op with the same thread
// count; both time R runs after two warm-up runs. With --rounds K the pair is measured K
// times in a row and the median of the K medians is kept. "ratio" compares the medians;
// "min ratio" the fastest runs, which is steadier when other work shares the cores. The torch side
// is torch_ref.py in --serve mode: it is started once and asked for one row at a time,
// so the two timings of a row are taken back to back under the same machine load.
// Prints one table: op, shape, storyrun ms, torch ms, ratio storyrun/torch.
#define _POSIX_C_SOURCE 200809L
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench_common.h"
#include "kernels/ops.h"
#include "runner/check.h"

#ifndef STORY_TORCH_REF_SCRIPT
#define STORY_TORCH_REF_SCRIPT "bench/kernels/torch_ref.py"
#endif

// One spec line per row, in torch_ref.py's format; the same line drives both sides.
static const char *g_specs[] = {
    "attn 2 4096 4096 320 8",  "attn 2 4096 77 320 8",        "attn 2 1024 1024 640 8",
    "attn 2 1024 77 640 8",    "attn 2 256 256 1280 8",       "attn 2 256 77 1280 8",
    "conv 1 320 320 64 64 3 1 1", "conv 2 320 320 64 64 3 1 1", "conv 2 640 640 32 32 3 1 1",
    "conv 2 1280 1280 16 16 3 1 1", "conv 2 320 320 64 64 3 2 1", "conv 2 640 320 64 64 1 1 0",
    "linear 4096 320 320",     "linear 4096 320 1280",        "linear 8192 320 2560",
    "linear 8192 1280 320",    "linear 154 768 320",          "group_norm 2 320 64 64 32",
    "layer_norm 8192 320",     "geglu 8192 2560",
};
#define NSPECS ((int)(sizeof g_specs / sizeof g_specs[0]))

static double now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec * 1e-6;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static Tensor rand_tensor(uint64_t *s, float amp, int ndim, const int64_t *shape) {
    Tensor t = tensor_view(NULL, DT_F32, DEV_CPU, ndim, shape);
    t.data = mallocCheck(tensor_nbytes(&t));
    float *d = t.data;
    for (int64_t i = 0; i < tensor_numel(&t); i++) {
        *s = *s * 6364136223846793005ull + 1442695040888963407ull;
        d[i] = amp * ((float)(*s >> 40) / 8388608.0f - 1.0f);
    }
    return t;
}
#define RT(s, amp, ...) rand_tensor((s), (amp), NDIM(__VA_ARGS__), SHAPE(__VA_ARGS__))

// A row's inputs and how to run it.
typedef struct {
    char kind[16];
    long a[8];
    Tensor t[5];
    int nt;
    Arena ws;
} Row;

static int row_setup(Row *r, const char *spec, char *shape, size_t shape_n) {
    memset(r, 0, sizeof *r);
    int n = sscanf(spec, "%15s %ld %ld %ld %ld %ld %ld %ld %ld", r->kind, &r->a[0], &r->a[1], &r->a[2], &r->a[3],
                   &r->a[4], &r->a[5], &r->a[6], &r->a[7]);
    long *a = r->a;
    uint64_t s = 12345;
    if (!strcmp(r->kind, "attn") && n == 6) {  // B Lq Lk C H
        r->t[0] = RT(&s, 1, a[0], a[1], a[3]);
        r->t[1] = RT(&s, 1, a[0], a[2], a[3]);
        r->t[2] = RT(&s, 1, a[0], a[2], a[3]);
        r->t[3] = RT(&s, 0, a[0], a[1], a[3]);
        r->nt = 4;
        snprintf(shape, shape_n, "B%ld H%ld %ldx%ld, %ld keys", a[0], a[4], a[1], a[3], a[2]);
    } else if (!strcmp(r->kind, "conv") && n == 9) {  // N Ci Co H W k s p
        long Ho = (a[3] + 2 * a[7] - a[5]) / a[6] + 1, Wo = (a[4] + 2 * a[7] - a[5]) / a[6] + 1;
        r->t[0] = RT(&s, 1, a[0], a[1], a[3], a[4]);
        r->t[1] = RT(&s, 0.05f, a[2], a[1], a[5], a[5]);
        r->t[2] = RT(&s, 1, a[2]);
        r->t[3] = RT(&s, 0, a[0], a[2], Ho, Wo);
        r->nt = 4;
        if (arena_init(&r->ws, DEV_CPU, (size_t)512 << 20) != 0) return -1;
        snprintf(shape, shape_n, "%ldx%ld %ld->%ld %ldx%ld s%ld N%ld", a[5], a[5], a[1], a[2], a[3], a[4], a[6], a[0]);
    } else if (!strcmp(r->kind, "linear") && n == 4) {  // M K N
        r->t[0] = RT(&s, 1, a[0], a[1]);
        r->t[1] = RT(&s, 0.05f, a[2], a[1]);
        r->t[2] = RT(&s, 1, a[2]);
        r->t[3] = RT(&s, 0, a[0], a[2]);
        r->nt = 4;
        snprintf(shape, shape_n, "%ldx%ld -> %ld", a[0], a[1], a[2]);
    } else if (!strcmp(r->kind, "group_norm") && n == 6) {  // N C H W G
        r->t[0] = RT(&s, 1, a[0], a[1], a[2], a[3]);
        r->t[1] = RT(&s, 1, a[1]);
        r->t[2] = RT(&s, 1, a[1]);
        r->t[3] = RT(&s, 0, a[0], a[1], a[2], a[3]);
        r->nt = 4;
        snprintf(shape, shape_n, "(%ld, %ld, %ld, %ld) G%ld", a[0], a[1], a[2], a[3], a[4]);
    } else if (!strcmp(r->kind, "layer_norm") && n == 3) {  // M C
        r->t[0] = RT(&s, 1, a[0], a[1]);
        r->t[1] = RT(&s, 1, a[1]);
        r->t[2] = RT(&s, 1, a[1]);
        r->t[3] = RT(&s, 0, a[0], a[1]);
        r->nt = 4;
        snprintf(shape, shape_n, "(%ld, %ld)", a[0], a[1]);
    } else if (!strcmp(r->kind, "geglu") && n == 3) {  // M F2
        r->t[0] = RT(&s, 2, a[0], a[1]);
        r->t[1] = RT(&s, 0, a[0], a[1] / 2);
        r->nt = 2;
        snprintf(shape, shape_n, "(%ld, %ld) -> %ld", a[0], a[1], a[1] / 2);
    } else {
        return -1;
    }
    return 0;
}

static void row_run(Row *r) {
    Tensor *t = r->t;
    if (!strcmp(r->kind, "attn")) {
        KVSegment seg = {&t[1], &t[2]};
        cpu_attention(&t[3], &t[0], &seg, 1, (int)r->a[4], 0, 0.0f);
    } else if (!strcmp(r->kind, "conv")) {
        cpu_conv2d(&t[3], &t[0], &t[1], &t[2], (int)r->a[6], (int)r->a[7], &r->ws);
    } else if (!strcmp(r->kind, "linear")) {
        cpu_linear(&t[3], &t[0], &t[1], &t[2]);
    } else if (!strcmp(r->kind, "group_norm")) {
        cpu_group_norm(&t[3], &t[0], &t[1], &t[2], (int)r->a[4], 1e-5f, 0);
    } else if (!strcmp(r->kind, "layer_norm")) {
        cpu_layer_norm(&t[3], &t[0], &t[1], &t[2], 1e-5f);
    } else if (!strcmp(r->kind, "geglu")) {
        cpu_geglu(&t[1], &t[0]);
    }
}

static void row_free(Row *r) {
    for (int i = 0; i < r->nt; i++) free(r->t[i].data);
    if (r->ws.base) arena_free(&r->ws);
}

// Median and minimum of reps timed runs after two warm-up runs.
static void time_row(Row *r, int reps, double *med, double *best) {
    row_run(r);
    row_run(r);
    double *ts = mallocCheck(sizeof(double) * reps);
    for (int i = 0; i < reps; i++) {
        double t0 = now_ms();
        row_run(r);
        ts[i] = now_ms() - t0;
    }
    qsort(ts, reps, sizeof(double), cmp_double);
    *med = reps % 2 ? ts[reps / 2] : 0.5 * (ts[reps / 2 - 1] + ts[reps / 2]);
    *best = ts[0];
    free(ts);
}

// ---- the torch side: torch_ref.py --serve on two pipes ---------------------------------------
typedef struct {
    pid_t pid;
    FILE *to, *from;
    char banner[600];
} TorchRef;

static int torch_start(TorchRef *tr, const char *python, const char *script, int threads, int reps) {
    memset(tr, 0, sizeof *tr);
    if (access(python, X_OK) != 0) {
        snprintf(tr->banner, sizeof tr->banner, "%s is not an executable python", python);
        return -1;
    }
    int in[2], out[2];
    if (pipe(in) != 0 || pipe(out) != 0) return -1;
    char th[16], rp[16];
    snprintf(th, sizeof th, "%d", threads);
    snprintf(rp, sizeof rp, "%d", reps);
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        dup2(in[0], 0);
        dup2(out[1], 1);
        close(in[1]);
        close(out[0]);
        execl(python, python, script, "--serve", "--threads", th, "--reps", rp, (char *)NULL);
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    tr->pid = pid;
    tr->to = fdopen(in[1], "w");
    tr->from = fdopen(out[0], "r");
    char line[512];
    if (!fgets(line, sizeof line, tr->from)) {
        snprintf(tr->banner, sizeof tr->banner, "%s %s did not start", python, script);
        return -1;
    }
    line[strcspn(line, "\n")] = 0;
    if (strncmp(line, "READY ", 6) != 0) {
        snprintf(tr->banner, sizeof tr->banner, "%s", line);  // NOTORCH <reason>
        return -1;
    }
    snprintf(tr->banner, sizeof tr->banner, "%s", line + 6);
    return 0;
}

// Median and minimum in ms; 0 when torch could not run the row.
static int torch_time(TorchRef *tr, const char *spec, double *med, double *best) {
    char line[512];
    *med = *best = 0;
    if (!tr->to) return -1;
    fprintf(tr->to, "%s\n", spec);
    fflush(tr->to);
    if (!fgets(line, sizeof line, tr->from)) return -1;
    return sscanf(line, "RESULT %lf %lf", med, best) == 2 ? 0 : -1;
}

static void torch_stop(TorchRef *tr) {
    if (tr->to) fclose(tr->to);
    if (tr->from) fclose(tr->from);
    if (tr->pid > 0) waitpid(tr->pid, NULL, 0);
}

int main(int argc, char **argv) {
    int threads = 2, reps = 7, rounds = 1, use_torch = 1;
    const char *python = bench_default_python();
    const char *filter = NULL, *script = STORY_TORCH_REF_SCRIPT;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--rounds") && i + 1 < argc) rounds = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--python") && i + 1 < argc) python = argv[++i];
        else if (!strcmp(argv[i], "--script") && i + 1 < argc) script = argv[++i];
        else if (!strcmp(argv[i], "--filter") && i + 1 < argc) filter = argv[++i];
        else if (!strcmp(argv[i], "--no-torch")) use_torch = 0;
        else {
            fprintf(stderr,
                    "usage: %s [--threads N] [--reps R] [--rounds K] [--python PATH] [--script torch_ref.py] "
                    "[--filter TEXT] [--no-torch]\n",
                    argv[0]);
            return 2;
        }
    }
    if (threads < 1 || reps < 1 || rounds < 1 || rounds > 32) {
        fprintf(stderr, "bench_kernels: --threads and --reps must be >= 1, --rounds 1..32\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    cpu_set_threads(threads);

    TorchRef tr = {0};
    int have_torch = use_torch && torch_start(&tr, python, script, threads, reps) == 0;
    printf("bench_kernels: storyrun CPU ops (fp32) vs PyTorch CPU, %d threads, %d timed runs per row, %d round%s\n",
           threads, reps, rounds, rounds > 1 ? "s" : "");
    if (have_torch)
        printf("torch reference: %s\n", tr.banner);
    else
        printf("torch reference: unavailable (%s); storyrun times only\n",
               use_torch ? tr.banner : "--no-torch");
    printf("\n%-11s %-30s %12s %10s %7s %10s\n", "op", "shape", "storyrun ms", "torch ms", "ratio", "min ratio");

    int over = 0, rows = 0;
    for (int i = 0; i < NSPECS; i++) {
        if (filter && !strstr(g_specs[i], filter)) continue;
        Row r;
        char shape[96];
        if (row_setup(&r, g_specs[i], shape, sizeof shape) != 0) STORY_FATAL("bad bench spec '%s'", g_specs[i]);
        double tm[32] = {0}, om[32] = {0}, t_min = 1e30, o_min = 1e30;
        int tok = have_torch;
        for (int k = 0; k < rounds; k++) {
            double a, b;
            if (have_torch) {
                tok = tok && torch_time(&tr, g_specs[i], &a, &b) == 0;
                tm[k] = a, t_min = b < t_min ? b : t_min;
            }
            time_row(&r, reps, &a, &b);
            om[k] = a, o_min = b < o_min ? b : o_min;
        }
        qsort(tm, rounds, sizeof(double), cmp_double);
        qsort(om, rounds, sizeof(double), cmp_double);
        double t_med = have_torch && tok ? tm[rounds / 2] : 0, o_med = om[rounds / 2];
        row_free(&r);
        rows++;
        if (have_torch && t_med > 0) {
            double ratio = o_med / t_med;
            over += ratio > 1.0;
            printf("%-11s %-30s %12.2f %10.2f %7.2f %10.2f\n", r.kind, shape, o_med, t_med, ratio, o_min / t_min);
        } else {
            printf("%-11s %-30s %12.2f %10s %7s %10s\n", r.kind, shape, o_med, "-", "-", "-");
        }
        fflush(stdout);
    }
    torch_stop(&tr);
    if (have_torch) printf("\n%d of %d rows at ratio <= 1.0\n", rows - over, rows);
    return 0;
}

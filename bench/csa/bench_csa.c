// bench/csa/bench_csa.c: Consistent Self-Attention's attention step at SDXL shapes,
// storyrun vs the reference StoryDiffusion approach in PyTorch, in the same run.
//
//   bench_csa [--threads N] [--reps R] [--quick] [--shape a|b] [--frames N] [--cuda]
//             [--python PATH] [--script torch_ref.py] [--no-torch]
//
// One "layer call" is what one CSA layer does for the n id images of a character in an id
// pass (DESIGN.md 2.1, bank mode), sampling rate 0.5: every image attends to its own L
// tokens plus K = L/2 tokens sampled from each of the other n - 1 images. Shapes of a
// 1024 x 1024 SDXL image: (a) H/32, 1024 tokens of 1280 channels (20 heads of 64);
// (b) H/16, 4096 tokens of 640 channels (10 heads of 64); n = id_frames = 2, 3, 4.
//
// storyrun: op_gather_rows takes every image's sampled tokens into one bank (n K, C) once
// per call; then per image unet_attention(attn, y_i, x_i, {x_i, bank rows before i, bank
// rows after i}): the layer's to_q/to_k/to_v/to_out, the key/value token sets read as
// separate segments (no concatenated copy of the own tokens), as models/csa.c does.
// torch (torch_ref.py, a child process): per image cat([x_i, sampled tokens of the
// others]), the projections, one F.scaled_dot_product_attention, the out projection.
// Both sides use the same seeded weights (uniform +-1/sqrt(C)), inputs and sampled
// indices, and their output checksums are compared, so both compute the same thing.
//
// CPU (default): f32, the same thread count on both sides (--threads, default
// $OMP_NUM_THREADS or 2). --cuda: f16 on the GPU on both sides; without a CUDA device it
// prints "skipped: no CUDA device" and exits 0.
// Timing: one warm-up call per side, then R timed calls alternating torch, storyrun, so
// both see the same machine load; medians are reported. Memory: the extra bytes a call
// needs beyond its inputs, weights and output: storyrun's scratch arena peak (bank, q, k,
// v, attention output; the CPU attention kernel's per-thread tiles, < 1 MiB, are outside
// it) vs torch's resident-set high-water mark over the call (CUDA: its allocator peak).
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_common.h"
#include "kernels/cuda_runtime_api.h"
#include "kernels/ops.h"
#include "models/unet.h"
#include "runner/check.h"

#ifndef STORY_TORCH_REF_SCRIPT
#define STORY_TORCH_REF_SCRIPT "bench/csa/torch_ref.py"
#endif

// Seeds of the splitmix64 streams; torch_ref.py uses the same numbers.
enum {
    SEED_WQ = 11,
    SEED_WK = 12,
    SEED_WV = 13,
    SEED_WO = 14,
    SEED_BO = 15,
    SEED_X = 21,
    SEED_IDX = 31
};

typedef struct {
    const char *name;  // row label prefix
    int L, C, heads;
} CsaShape;

static const CsaShape k_shapes[2] = {
    {"(a) H/32 1024 tok x 1280", 1024, 1280, 20},
    {"(b) H/16 4096 tok x 640", 4096, 640, 10},
};
#define MAX_ROWS 16

// ---- seeded data, bit-identical to torch_ref.py -------------------------------------------
static uint64_t splitmix_raw(uint64_t *s) {  // bench_common.c's generator, raw 64-bit output
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

typedef struct {
    uint64_t key;
    int32_t i;
} KeyIndex;

static int cmp_key(const void *a, const void *b) {
    const KeyIndex *x = a, *y = b;
    if (x->key != y->key) return x->key < y->key ? -1 : 1;
    return (x->i > y->i) - (x->i < y->i);
}

static int cmp_i32(const void *a, const void *b) {
    const int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

// K distinct indices of [0, L), ascending: the K smallest keys of the stream (ties: lower i).
static void sample_indices(uint64_t seed, int L, int K, int32_t *idx) {
    KeyIndex *ki = mallocCheck(sizeof *ki * (size_t)L);
    uint64_t s = seed;
    for (int i = 0; i < L; i++) ki[i] = (KeyIndex){splitmix_raw(&s), i};
    qsort(ki, (size_t)L, sizeof *ki, cmp_key);
    for (int i = 0; i < K; i++) idx[i] = ki[i].i;
    qsort(idx, (size_t)K, sizeof *idx, cmp_i32);
    free(ki);
}

// ---- storyrun side ------------------------------------------------------------------------
typedef struct {
    Device dev;
    DType dt;
    int L, C, heads, n, K;
    Arena wa;  // weights, x, y
    Arena ws;  // scratch: the bank and unet_attention's temporaries
    UnetAttention attn;
    Tensor x, y;   // (n, L, C)
    int32_t *idx;  // (n, K) host: image j's sampled token indices
} Story;

// A tensor of wa filled with scale * bench_uniform of stream `seed`, in the run's dtype.
static Tensor story_rand(Story *s, int ndim, const int64_t *shape, uint64_t seed, float scale) {
    Tensor t = arena_tensor(&s->wa, s->dt, ndim, shape);
    const int64_t n = tensor_numel(&t);
    float *h = mallocCheck(sizeof(float) * (size_t)n);
    uint64_t st = seed;
    for (int64_t i = 0; i < n; i++) h[i] = scale * bench_uniform(&st);
    if (s->dev == DEV_CPU) {
        memcpy(t.data, h, sizeof(float) * (size_t)n);
    } else {
        uint16_t *c = mallocCheck(sizeof(uint16_t) * (size_t)n);
        for (int64_t i = 0; i < n; i++) c[i] = f32_to_f16(h[i]);
        story_cuda_memcpy(t.data, c, sizeof(uint16_t) * (size_t)n, 0);
        free(c);
    }
    free(h);
    return t;
}

static void story_setup(Story *s, const CsaShape *sh, int n, Device dev) {
    memset(s, 0, sizeof *s);
    s->dev = dev, s->dt = dev == DEV_CPU ? DT_F32 : DT_F16;
    s->L = sh->L, s->C = sh->C, s->heads = sh->heads, s->n = n, s->K = sh->L / 2;
    const int64_t L = s->L, C = s->C, K = s->K, Lk = L + (int64_t)(n - 1) * K;
    const size_t es = dtype_size(s->dt), slack = 32 * 256;
    if (arena_init(&s->wa, dev, es * (size_t)(4 * C * C + C + 2 * n * L * C) + slack) ||
        arena_init(&s->ws, dev, es * (size_t)(n * K * C + 2 * L * C + 2 * Lk * C) + slack))
        STORY_FATAL("bench_csa: no memory for the case's arenas");
    const float bound = (float)(1.0 / sqrt((double)C));
    s->attn.heads = sh->heads, s->attn.head_dim = (int)(C / sh->heads);
    s->attn.to_q.w = story_rand(s, 2, SHAPE(C, C), SEED_WQ, bound);
    s->attn.to_k.w = story_rand(s, 2, SHAPE(C, C), SEED_WK, bound);
    s->attn.to_v.w = story_rand(s, 2, SHAPE(C, C), SEED_WV, bound);
    s->attn.to_out.w = story_rand(s, 2, SHAPE(C, C), SEED_WO, bound);
    s->attn.to_out.b = story_rand(s, 1, SHAPE(C), SEED_BO, bound);
    s->x = story_rand(s, 3, SHAPE(n, L, C), SEED_X,
                      1.7f);  // about unit variance, as after a LayerNorm
    s->y = arena_tensor(&s->wa, s->dt, 3, SHAPE(n, L, C));
    s->idx = mallocCheck(sizeof(int32_t) * (size_t)(n * K));
    for (int j = 0; j < n; j++)
        sample_indices(SEED_IDX + (uint64_t)j, (int)L, (int)K, s->idx + (size_t)j * K);
}

// Rows [r0, r0 + rows) of a (.., C) tensor as a (1, rows, C) or (rows, C) view.
static Tensor rows_of(const Tensor *t, int64_t r0, int64_t rows, int batch_dim) {
    const int64_t C = t->shape[t->ndim - 1];
    char *p = (char *)t->data + (size_t)(r0 * C) * dtype_size(t->dtype);
    return batch_dim ? tensor_view(p, t->dtype, t->dev, 3, SHAPE(1, rows, C))
                     : tensor_view(p, t->dtype, t->dev, 2, SHAPE(rows, C));
}

// One layer call for all n images; its time in ms.
static double story_run(Story *s) {
    const int64_t L = s->L, K = s->K, n = s->n;
    if (s->dev != DEV_CPU) story_cuda_sync();
    const double t0 = bench_now_ms();
    const size_t mark = arena_mark(&s->ws);
    Tensor bank = arena_tensor(&s->ws, s->dt, 2, SHAPE(n * K, s->C));  // (n K, C)
    for (int64_t j = 0; j < n; j++) {
        Tensor dst = rows_of(&bank, j * K, K, 0), src = rows_of(&s->x, j * L, L, 0);
        op_gather_rows(&dst, &src, s->idx + j * K);
    }
    for (int64_t i = 0; i < n; i++) {
        Tensor xi = rows_of(&s->x, i * L, L, 1), yi = rows_of(&s->y, i * L, L, 1);
        Tensor before = rows_of(&bank, 0, i * K, 1),
               after = rows_of(&bank, (i + 1) * K, (n - 1 - i) * K, 1);
        const Tensor *kv[3] = {&xi};
        int nkv = 1;
        if (i > 0) kv[nkv++] = &before;
        if (i < n - 1) kv[nkv++] = &after;
        unet_attention(&s->attn, &yi, &xi, kv, nkv, &s->ws);
    }
    arena_release(&s->ws, mark);
    if (s->dev != DEV_CPU) story_cuda_sync();
    return bench_now_ms() - t0;
}

// sum |y| and sum y^2 over all outputs, in double.
static void story_sums(const Story *s, double *sabs, double *ssq) {
    const int64_t n = tensor_numel(&s->y);
    float *h = mallocCheck(sizeof(float) * (size_t)n);
    if (s->dev == DEV_CPU) {
        memcpy(h, s->y.data, sizeof(float) * (size_t)n);
    } else {
        uint16_t *c = mallocCheck(sizeof(uint16_t) * (size_t)n);
        story_cuda_memcpy(c, s->y.data, sizeof(uint16_t) * (size_t)n, 1);
        for (int64_t i = 0; i < n; i++) h[i] = f16_to_f32(c[i]);
        free(c);
    }
    *sabs = *ssq = 0;
    for (int64_t i = 0; i < n; i++) *sabs += fabs((double)h[i]), *ssq += (double)h[i] * h[i];
    free(h);
}

static void story_free(Story *s) {
    free(s->idx);
    arena_free(&s->ws);
    arena_free(&s->wa);
}

// ---- the reference: torch_ref.py on two pipes ------------------------------------------------
typedef struct {
    BenchChild c;
    int up;
    char banner[512];
} Torch;

static int torch_start(Torch *t, const char *python, const char *script, int threads, int cuda) {
    char th[16], line[512];
    snprintf(th, sizeof th, "%d", threads);
    char *argv[] = {(char *)python, (char *)script, "--threads", th, cuda ? "--cuda" : NULL, NULL};
    if (bench_child_start(&t->c, argv, t->banner, sizeof t->banner)) return -1;
    if (bench_child_read(&t->c, line, sizeof line) == 0) {
        if (!strncmp(line, "READY ", 6)) {
            snprintf(t->banner, sizeof t->banner, "%s", line + 6);
            t->up = 1;
            return 0;
        }
        snprintf(t->banner, sizeof t->banner, "%s", line);  // NOTORCH <reason> or an error
    }
    bench_child_stop(&t->c);
    if (!t->banner[0]) snprintf(t->banner, sizeof t->banner, "%s %s did not start", python, script);
    return -1;
}

static void torch_case(Torch *t, const Story *s) {
    char line[256];
    snprintf(line, sizeof line, "CASE %d %d %d %d %d", s->L, s->C, s->heads, s->n, s->K);
    bench_child_send(&t->c, line);
    if (bench_child_read(&t->c, line, sizeof line) || strcmp(line, "BUILT")) t->up = 0;
}

// One layer call there: its time in ms and its peak extra bytes (0 if the child failed).
static double torch_run(Torch *t, double *peak) {
    char line[256];
    double ms = 0;
    long long b = 0;
    bench_child_send(&t->c, "RUN");
    if (bench_child_read(&t->c, line, sizeof line) || sscanf(line, "TIME %lf %lld", &ms, &b) != 2)
        t->up = 0;
    *peak = (double)b;
    return ms;
}

static int torch_sums(Torch *t, double *sabs, double *ssq) {
    char line[256];
    bench_child_send(&t->c, "SUM");
    if (bench_child_read(&t->c, line, sizeof line) || sscanf(line, "SUM %lf %lf", sabs, ssq) != 2) {
        t->up = 0;
        return -1;
    }
    return 0;
}

// ---- one case, the tables
// ------------------------------------------------------------------------
typedef struct {
    char label[64];
    double s_ms, t_ms, s_min, t_min;  // median and fastest call
    double s_mib, t_mib, check;       // check: larger relative checksum difference
    int have_ref;
} Row;

static double rel_diff(double a, double b) {
    return fabs(a - b) / (fabs(b) > 1e-30 ? fabs(b) : 1e-30);
}

static void run_case(Row *row, const CsaShape *sh, int n, Device dev, Torch *t, int reps) {
    Story s;
    story_setup(&s, sh, n, dev);
    snprintf(row->label, sizeof row->label, "%s n=%d", sh->name, n);
    const int ref = t->up;
    if (ref) torch_case(t, &s);
    double tt[64] = {0}, st[64] = {0}, tp[64] = {0}, peak;
    if (t->up) torch_run(t, &peak);  // warm-up
    story_run(&s);
    for (int r = 0; r < reps; r++) {
        tt[r] = t->up ? torch_run(t, &tp[r]) : 0;
        st[r] = story_run(&s);
        fprintf(stderr, "  %s run %d: storyrun %.1f ms, torch %.1f ms\n", row->label, r + 1, st[r],
                tt[r]);
    }
    row->s_ms = bench_median(st, reps), row->s_min = st[0];  // sorted by bench_median
    row->s_mib = s.ws.peak / 1048576.0;
    row->check = -1;
    double sa, sq, ta, tq;
    story_sums(&s, &sa, &sq);
    row->have_ref = ref && t->up && torch_sums(t, &ta, &tq) == 0;
    if (row->have_ref) {
        row->t_ms = bench_median(tt, reps), row->t_min = tt[0];
        row->t_mib = bench_median(tp, reps) / 1048576.0;
        const double d1 = rel_diff(sa, ta), d2 = rel_diff(sq, tq);
        row->check = d1 > d2 ? d1 : d2;
    }
    story_free(&s);
}

// ---- frames phase, 2 ranks vs 1 -----------------------------------------------------------
// The render job's frames phase (every non-id frame rendered on its own against the banks,
// no communication) timed on 1 and on 2 MPI ranks by bench/csa/frames_phase.sh, which
// renders a small story on builtin:tiny-sdxl with `storyrun render` under mpirun and reads
// the phase's wall time from rank 0's log (median of 3 each).
static void print_frames_phase(void) {
    printf("\n%-34s %12s %12s %8s\n", "frames phase, 2 ranks vs 1", "1 rank", "2 ranks", "speedup");
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "bash '%s' '%s' 12 2>/dev/null", STORY_FRAMES_PHASE_SCRIPT,
             STORY_STORYRUN_BIN);
    FILE *f = popen(cmd, "r");
    char line[512] = "";
    double one = 0, two = 0, sp = 0;
    int got = 0;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "frames phase (%*d frames, 1 thread per rank): 1 rank %lf s, 2 ranks %lf s, speedup %lfx",
                   &one, &two, &sp) == 3)
            got = 1;
    if (f) pclose(f);
    if (got)
        printf("%-34s %12.0f %12.0f %7.2fx\n", "frames phase, wall time (ms)", 1000 * one,
               1000 * two, sp);
    else
        printf("%-34s %12s %12s %8s   (bench/csa/frames_phase.sh did not run: needs mpirun and "
               "the storyrun binary)\n",
               "frames phase, wall time (ms)", "-", "-", "-");
}

static void usage(const char *argv0) {
    fprintf(stderr,
            "usage: %s [--threads N] [--reps R] [--quick] [--shape a|b] [--frames N] [--cuda] "
            "[--python PATH] [--script torch_ref.py] [--no-torch]\n",
            argv0);
}

int main(int argc, char **argv) {
    const char *env_threads = getenv("OMP_NUM_THREADS");
    int threads = env_threads && atoi(env_threads) > 0 ? atoi(env_threads) : 2;
    int reps = 0, quick = 0, use_torch = 1, cuda = 0, frames = 0;
    const char *python = bench_default_python(), *script = STORY_TORCH_REF_SCRIPT, *shape = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc)
            reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--quick"))
            quick = 1;
        else if (!strcmp(argv[i], "--shape") && i + 1 < argc)
            shape = argv[++i];
        else if (!strcmp(argv[i], "--frames") && i + 1 < argc)
            frames = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--cuda"))
            cuda = 1;
        else if (!strcmp(argv[i], "--python") && i + 1 < argc)
            python = argv[++i];
        else if (!strcmp(argv[i], "--script") && i + 1 < argc)
            script = argv[++i];
        else if (!strcmp(argv[i], "--no-torch"))
            use_torch = 0;
        else {
            usage(argv[0]);
            return 2;
        }
    }
    if (!reps) reps = quick ? 3 : cuda ? 20 : 5;
    if (threads < 1 || reps < 1 || reps > 64 || (frames && (frames < 2 || frames > 15)) ||
        (shape && strcmp(shape, "a") && strcmp(shape, "b"))) {
        fprintf(stderr,
                "bench_csa: --threads >= 1, --reps 1..64, --frames 2..15, --shape a or b\n");
        usage(argv[0]);
        return 2;
    }
    if (cuda && !cuda_available()) {
        printf("bench_csa --cuda: skipped: no CUDA device\n");
        return 0;
    }
    signal(SIGPIPE, SIG_IGN);
    cpu_set_threads(threads);
    const Device dev = cuda ? DEV_CUDA : DEV_CPU;

    Torch t = {0};
    const int have = use_torch && torch_start(&t, python, script, threads, cuda) == 0;
    printf(
        "bench_csa: Consistent Self-Attention, one layer call of an id pass at SDXL 1024x1024 "
        "shapes: "
        "each of n images attends to its own L tokens + (n-1) x L/2 sampled tokens of the others; "
        "%s, %d thread%s, median of %d timed calls after 1 warm-up\n",
        cuda ? "cuda f16" : "cpu f32", threads, threads > 1 ? "s" : "", reps);
    printf(
        "storyrun: op_gather_rows into one bank per call, then per image unet_attention with "
        "segments {own tokens, bank before, bank after}\n");
    if (have)
        printf(
            "torch reference: %s: per image cat(own, sampled), to_q/to_k/to_v, one "
            "F.scaled_dot_product_attention, to_out\n",
            t.banner);
    else
        printf("torch reference: unavailable (%s); storyrun only\n",
               use_torch ? t.banner : "--no-torch");
    fflush(stdout);

    Row rows[MAX_ROWS];
    int nrows = 0;
    int ns[3] = {2, 3, 4}, nn = 3;  // id_frames
    if (frames || quick) ns[0] = frames ? frames : 2, nn = 1;
    for (int a = 0; a < 2; a++) {
        if (shape && shape[0] != "ab"[a]) continue;
        for (int k = 0; k < nn; k++) run_case(&rows[nrows++], &k_shapes[a], ns[k], dev, &t, reps);
    }
    if (have) bench_child_stop(&t.c);

    const double tol = cuda ? 5e-3 : 1e-4;  // f16 outputs vs f32 sums in another order
    int bad = 0, over = 0, ok_rows = 0;
    printf("\n%-34s %12s %12s %8s\n", "time per layer call, median (ms)", "storyrun", "torch",
           "ratio");
    for (int i = 0; i < nrows; i++)
        bench_ratio_row(rows[i].label, rows[i].s_ms, rows[i].t_ms, rows[i].have_ref);
    // under load from other jobs the medians move; the fastest calls are the steadier figure
    printf("\n%-34s %12s %12s %8s\n", "time per layer call, fastest (ms)", "storyrun", "torch",
           "ratio");
    for (int i = 0; i < nrows; i++)
        bench_ratio_row(rows[i].label, rows[i].s_min, rows[i].t_min, rows[i].have_ref);
    printf("\n%-34s %12s %12s %8s\n", "peak extra memory (MiB)", "storyrun", "torch", "ratio");
    for (int i = 0; i < nrows; i++)
        bench_ratio_row(rows[i].label, rows[i].s_mib, rows[i].t_mib, rows[i].have_ref);
    for (int i = 0; i < nrows; i++) {
        if (!rows[i].have_ref) continue;
        ok_rows++;
        over += rows[i].s_ms > rows[i].t_ms;
        if (!(rows[i].check <= tol)) {
            bad++;
            printf("MISMATCH %s: output checksums differ by %.2e (relative; tolerance %.0e)\n",
                   rows[i].label, rows[i].check, tol);
        }
    }
    if (ok_rows) {
        double worst = 0;
        for (int i = 0; i < nrows; i++)
            if (rows[i].have_ref && rows[i].check > worst) worst = rows[i].check;
        printf(
            "\n%d of %d cases at time ratio <= 1.0; outputs %s (sum |y| and sum y^2 within %.1e, "
            "tolerance %.0e)\n",
            ok_rows - over, ok_rows, bad ? "DIFFER" : "agree", worst, tol);
    }
    print_frames_phase();
    return bad ? 1 : 0;
}

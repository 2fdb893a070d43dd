// tests/slurm/fake_render.c render OUTDIR: stands in for `storyrun render` in the
// requeue test (test_slurm_requeue.sh), with the same stop-and-resume contract:
//   - work is 60 units of 50 ms; rank 0 records each finished unit in OUTDIR/units.txt
//     (one line, "unit U run R"), and a resumed run starts after the last one recorded;
//   - before each unit the ranks poll signals_agree; on a stop request every rank writes
//     OUTDIR/stop.<run>.<rank> ("unit U agreed SIG local SIG") and the job exits 75
//     (STORY_EXIT_REQUEUE), which makes slurm/render-cpu.sbatch requeue it;
//   - OUTDIR/ready.<run>.<rank> appears once the rank polls, so the test knows when to
//     send the signal; rank 0 prints progress lines (runner/progress.h) to the job output.
// The run number is SLURM_RESTART_COUNT (0 on the first run).
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "runner/comm.h"
#include "runner/progress.h"
#include "runner/signals.h"

enum { UNITS = 60 };

static void write_line(const char *path, const char *mode, const char *line) {
    FILE *f = fopen(path, mode);
    if (!f || fputs(line, f) < 0 || fclose(f) != 0) {
        fprintf(stderr, "fake_render: cannot write %s\n", path);
        exit(1);
    }
}

// Units already done: one more than the last unit in units.txt.
static int units_done(const char *dir) {
    char path[4096], line[128];
    snprintf(path, sizeof path, "%s/units.txt", dir);
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    int next = 0, u, r;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "unit %d run %d", &u, &r) == 2) next = u + 1;
    fclose(f);
    return next;
}

int main(int argc, char **argv) {
    if (argc < 3 || strcmp(argv[1], "render") != 0) {
        fprintf(stderr, "usage: fake_render render OUTDIR\n");
        return 2;
    }
    Comm *c = comm_init(&argc, &argv);
    const char *dir = argv[2];
    const char *rc_env = getenv("SLURM_RESTART_COUNT");
    int run = rc_env ? atoi(rc_env) : 0;
    if (signals_install() != 0) comm_abort(c, 1);

    int first = units_done(dir);  // rank 0 read it; every rank must start at the same unit
    comm_broadcast(c, &first, sizeof first, 0);
    Progress *p = progress_start(&(ProgressOptions){.label = "fake_render",
                                                    .unit = "units",
                                                    .step = "units",
                                                    .total_units = UNITS,
                                                    .total_steps = UNITS,
                                                    .silent = c->rank != 0,
                                                    .mode = PROGRESS_LINES,
                                                    .log_interval = 1.0,
                                                    .no_unit_lines = 1});
    progress_skip(p, first, first);

    char path[4096], line[256];
    snprintf(path, sizeof path, "%s/ready.%d.%d", dir, run, c->rank);
    write_line(path, "w", "ready\n");
    struct timespec unit_time = {0, 50 * 1000 * 1000};
    int stopped = 0;
    for (int u = first; u < UNITS; u++) {
        int agreed = signals_agree(c);
        if (agreed) {
            snprintf(path, sizeof path, "%s/stop.%d.%d", dir, run, c->rank);
            snprintf(line, sizeof line, "unit %d agreed %s local %s\n", u, signals_name(agreed),
                     signals_requested() ? signals_name(signals_requested()) : "none");
            write_line(path, "w", line);
            stopped = 1;
            break;
        }
        nanosleep(&unit_time, NULL);
        if (c->rank == 0) {
            snprintf(path, sizeof path, "%s/units.txt", dir);
            snprintf(line, sizeof line, "unit %d run %d\n", u, run);
            write_line(path, "a", line);
        }
        progress_steps(p, 1);
        progress_units(p, 1);
    }
    progress_finish(p);
    comm_barrier(c);  // units.txt is complete before any rank reports
    comm_finalize(c);
    return stopped ? STORY_EXIT_REQUEUE : 0;
}

// tests/progress/test_signals.c: stop requests (runner/signals.h).
//
//   test_signals local          raise() sets the flag; the largest signal wins; reset;
//                               uninstall restores the old handler; a second SIGINT kills
//   test_signals agree          (under mpirun -np N) signals raised on single ranks at
//                               known units make every rank stop at that same unit
//   test_signals wait DIR       (under mpirun, driven by signals_mpirun.sh) each rank
//                               writes DIR/ready.<rank> and polls signals_agree every
//                               20 ms for up to 20 s; prints what it saw and exits 75
//                               (STORY_EXIT_REQUEUE) once the ranks agree to stop
//
// Each mode ends with "signals MODE: N checks, F failure(s)" (summed over ranks).
#define _POSIX_C_SOURCE 200809L
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "runner/comm.h"
#include "runner/signals.h"
#include "tests/common/test_check.h"

static volatile sig_atomic_t g_custom_hits;
static void custom_handler(int sig) {
    (void)sig;
    g_custom_hits++;
}

static void test_local(void) {
    CHECK(STORY_EXIT_REQUEUE == 75, "the requeue code is EX_TEMPFAIL");
    CHECK(signals_install() == 0, "install");
    CHECK(signals_requested() == 0, "no request after install");

    raise(SIGUSR1);
    CHECK(signals_requested() == SIGUSR1, "after SIGUSR1: %d", signals_requested());
    raise(SIGINT);  // smaller number than SIGUSR1: the request stays SIGUSR1
    CHECK(signals_requested() == SIGUSR1, "SIGINT after SIGUSR1: %d", signals_requested());
    raise(SIGTERM);
    CHECK(signals_requested() == SIGTERM, "SIGTERM wins: %d", signals_requested());
    raise(SIGUSR1);
    CHECK(signals_requested() == SIGTERM, "still SIGTERM: %d", signals_requested());
    signals_reset();
    CHECK(signals_requested() == 0, "reset");

    // A second install keeps the handler from before the first for uninstall.
    signals_uninstall();
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = custom_handler;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGUSR1, &sa, NULL);
    CHECK(signals_install() == 0 && signals_install() == 0, "install twice");
    raise(SIGUSR1);
    CHECK(signals_requested() == SIGUSR1 && g_custom_hits == 0, "ours, not the custom one");
    signals_uninstall();
    raise(SIGUSR1);
    CHECK(g_custom_hits == 1, "uninstall restored the custom handler (%d hits)",
          (int)g_custom_hits);
    signal(SIGUSR1, SIG_DFL);

    CHECK(strcmp(signals_name(SIGTERM), "SIGTERM") == 0, "%s", signals_name(SIGTERM));
    CHECK(strcmp(signals_name(SIGUSR1), "SIGUSR1") == 0, "%s", signals_name(SIGUSR1));
    CHECK(strcmp(signals_name(SIGINT), "SIGINT") == 0, "%s", signals_name(SIGINT));
    CHECK(strcmp(signals_name(99), "signal 99") == 0, "%s", signals_name(99));

    // Ctrl-C once asks; Ctrl-C twice stops at once (the process dies of SIGINT).
    pid_t pid = fork();
    if (pid == 0) {
        signals_install();
        raise(SIGINT);
        if (signals_requested() != SIGINT) _exit(3);
        raise(SIGINT);
        _exit(4);  // not reached when the second SIGINT killed us
    }
    int status = 0;
    waitpid(pid, &status, 0);
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGINT,
          "child: status 0x%x (want: killed by SIGINT)", status);
}

// Units 0..9. At unit `at`, the listed ranks raise their signal before polling.
static int run_units(Comm *c, int at, const int *who_sig) {
    for (int unit = 0; unit < 10; unit++) {
        if (unit == at && who_sig[c->rank]) raise(who_sig[c->rank]);
        int agreed = signals_agree(c);
        if (agreed) {
            // Every rank must leave at the same unit with the same answer.
            int mine[2] = {unit, agreed}, all[64][2];
            comm_all_gather(c, mine, sizeof mine, all);
            for (int r = 0; r < c->size; r++)
                CHECK(all[r][0] == unit && all[r][1] == agreed,
                      "rank %d stopped at unit %d by %d, rank %d at %d by %d", c->rank, unit,
                      agreed, r, all[r][0], all[r][1]);
            return agreed;
        }
    }
    return 0;
}

static void test_agree(Comm *c) {
    CHECK(c->size <= 64, "at most 64 ranks here");
    int who[64] = {0};
    CHECK(signals_install() == 0, "install");

    CHECK(run_units(c, -1, who) == 0, "no signal: all 10 units run");

    // SIGTERM on the last rank only: everyone stops at unit 3.
    who[c->size - 1] = SIGTERM;
    int got = run_units(c, 3, who);
    CHECK(got == SIGTERM, "agreed %d (want SIGTERM)", got);
    CHECK(signals_requested() == (c->rank == c->size - 1 ? SIGTERM : 0), "local flag %d on rank %d",
          signals_requested(), c->rank);
    signals_reset();
    comm_barrier(c);

    // Different signals on different ranks: the largest wins everywhere.
    memset(who, 0, sizeof who);
    who[0] = SIGUSR1;
    if (c->size > 1) who[1] = SIGTERM;
    got = run_units(c, 5, who);
    CHECK(got == (c->size > 1 ? SIGTERM : SIGUSR1), "agreed %d", got);
    signals_reset();
    comm_barrier(c);

    memset(who, 0, sizeof who);
    who[0] = SIGINT;
    got = run_units(c, 0, who);
    CHECK(got == SIGINT, "agreed %d (want SIGINT)", got);
    signals_reset();
    signals_uninstall();
}

// Waits for a signal from outside (mpirun forwarding it, or kill on one rank's PID).
static int test_wait(Comm *c, const char *dir) {
    CHECK(signals_install() == 0, "install");
    char path[4096];
    snprintf(path, sizeof path, "%s/ready.%d", dir, c->rank);
    FILE *f = fopen(path, "w");
    CHECK(f != NULL, "cannot write %s", path);
    if (f) {
        fprintf(f, "%ld\n", (long)getpid());
        fclose(f);
    }
    struct timespec tick = {0, 20 * 1000 * 1000};
    for (int unit = 0; unit < 1000; unit++) {
        int agreed = signals_agree(c);
        if (agreed) {
            printf("rank %d: stopped at unit %d: agreed %s, local %s\n", c->rank, unit,
                   signals_name(agreed),
                   signals_requested() ? signals_name(signals_requested()) : "none");
            fflush(stdout);
            return 1;
        }
        nanosleep(&tick, NULL);
    }
    CHECK(0, "rank %d: no stop request within 20 s", c->rank);
    return 0;
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "";
    if (strcmp(mode, "local") == 0) {
        test_local();
        printf("signals local: %d checks, %d failure(s)\n", checks, failures);
        return failures ? 1 : 0;
    }
    if (strcmp(mode, "agree") != 0 && !(strcmp(mode, "wait") == 0 && argc > 2)) {
        fprintf(stderr, "usage: test_signals local | agree | wait DIR\n");
        return 2;
    }
    Comm *c = comm_init(&argc, &argv);
    int stopped = 0;
    if (strcmp(mode, "agree") == 0)
        test_agree(c);
    else
        stopped = test_wait(c, argv[2]);
    float sums[2] = {(float)checks, (float)failures};
    comm_all_reduce_f32(c, sums, 2);
    if (c->rank == 0)
        printf("signals %s: %d checks, %d failure(s)\n", mode, (int)sums[0], (int)sums[1]);
    int bad = sums[1] > 0;
    comm_finalize(c);
    if (bad) return 1;
    return stopped ? STORY_EXIT_REQUEUE : 0;
}

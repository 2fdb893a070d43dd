// runner/signals.c: stop requests as a flag (see signals.h). The handler does only what
// is async-signal-safe: store to a sig_atomic_t, write(2) a constant line, and for a
// second SIGINT restore the default action and raise it again.
#define _POSIX_C_SOURCE 200809L
#include "runner/signals.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static const int k_signals[] = {SIGTERM, SIGUSR1, SIGINT};
enum { N_SIGNALS = (int)(sizeof k_signals / sizeof k_signals[0]) };

static volatile sig_atomic_t g_requested;  // largest signal number seen, 0 if none
static volatile sig_atomic_t g_sigint_count;
static struct sigaction g_previous[N_SIGNALS];
static int g_installed;

static void say(const char *s) {
    // write() may be interrupted or short; a lost notice is harmless.
    ssize_t r = write(STDERR_FILENO, s, strlen(s));
    (void)r;
}

static void on_signal(int sig) {
    int saved = errno;  // write() may change errno under the interrupted code
    if (sig == SIGINT && g_sigint_count++ > 0) {
        say("storyrun: second SIGINT: stopping now\n");
        signal(SIGINT, SIG_DFL);
        raise(SIGINT);
        errno = saved;
        return;
    }
    if (sig > g_requested) g_requested = sig;
    if (sig == SIGTERM)
        say("storyrun: SIGTERM received: stopping after the current unit\n");
    else if (sig == SIGUSR1)
        say("storyrun: SIGUSR1 received: stopping after the current unit\n");
    else
        say("storyrun: SIGINT received: stopping after the current unit (again: stop now)\n");
    errno = saved;
}

int signals_install(void) {
    g_requested = 0;
    g_sigint_count = 0;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    // Block the others while one runs, so the "largest wins" update is not torn.
    for (int i = 0; i < N_SIGNALS; i++) sigaddset(&sa.sa_mask, k_signals[i]);
    sa.sa_flags = SA_RESTART;
    for (int i = 0; i < N_SIGNALS; i++) {
        struct sigaction old;
        if (sigaction(k_signals[i], &sa, &old) != 0) {
            fprintf(stderr, "storyrun: cannot install a handler for %s: %s\n",
                    signals_name(k_signals[i]), strerror(errno));
            return -1;
        }
        // On a repeated install keep the handlers from before the first one.
        if (!g_installed) g_previous[i] = old;
    }
    g_installed = 1;
    return 0;
}

void signals_uninstall(void) {
    if (!g_installed) return;
    for (int i = 0; i < N_SIGNALS; i++) sigaction(k_signals[i], &g_previous[i], NULL);
    g_installed = 0;
}

int signals_requested(void) { return (int)g_requested; }

void signals_reset(void) {
    g_requested = 0;
    g_sigint_count = 0;
}

int signals_agree(Comm *c) {
    // The comm layer sums; a max over the few values the handler can store is a sum of
    // one-hot slots (small integers, exact in f32), read back as "the largest signal any
    // rank saw".
    float seen[N_SIGNALS];
    int local = signals_requested();
    for (int i = 0; i < N_SIGNALS; i++) seen[i] = local == k_signals[i] ? 1.0f : 0.0f;
    comm_all_reduce_f32(c, seen, N_SIGNALS);
    int agreed = 0;
    for (int i = 0; i < N_SIGNALS; i++)
        if (seen[i] > 0.5f && k_signals[i] > agreed) agreed = k_signals[i];
    return agreed;
}

const char *signals_name(int sig) {
    static char buf[32];
    switch (sig) {
    case SIGTERM: return "SIGTERM";
    case SIGUSR1: return "SIGUSR1";
    case SIGUSR2: return "SIGUSR2";
    case SIGINT: return "SIGINT";
    case SIGHUP: return "SIGHUP";
    case SIGKILL: return "SIGKILL";
    default: snprintf(buf, sizeof buf, "signal %d", sig); return buf;
    }
}

// runner/log.c: per-rank log files (see log.h). Lines in the file carry wall-clock time
// and seconds since log_init, so ranks' files can be lined up after a run.
#define _POSIX_C_SOURCE 200809L
#include "runner/log.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

static struct {
    FILE *file;
    int rank;
    char path[4096];
    struct timespec start;
} g_log = {NULL, 0, {0}, {0, 0}};
static pthread_mutex_t g_log_mutex = PTHREAD_MUTEX_INITIALIZER;

static const char *level_name[] = {"INFO", "WARN", "ERROR"};

// mkdir -p: creates each missing component of path.
static int make_dirs(const char *path) {
    char buf[4096];
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof buf) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(buf, path, n + 1);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (mkdir(buf, 0755) != 0 && errno != EEXIST) return -1;
        *p = '/';
    }
    if (mkdir(buf, 0755) != 0 && errno != EEXIST) return -1;
    struct stat st;
    if (stat(buf, &st) != 0) return -1;
    if (!S_ISDIR(st.st_mode)) {
        errno = ENOTDIR;
        return -1;
    }
    return 0;
}

int log_init(const char *dir, int rank) {
    pthread_mutex_lock(&g_log_mutex);
    if (g_log.file) fclose(g_log.file);
    g_log.file = NULL;
    g_log.rank = rank;
    clock_gettime(CLOCK_MONOTONIC, &g_log.start);
    int rc = -1;
    if (make_dirs(dir) != 0) {
        fprintf(stderr, "storyrun: rank %d: cannot create log directory %s: %s\n", rank, dir,
                strerror(errno));
    } else {
        snprintf(g_log.path, sizeof g_log.path, "%s/rank%d.log", dir, rank);
        g_log.file = fopen(g_log.path, "a");
        if (!g_log.file)
            fprintf(stderr, "storyrun: rank %d: cannot open log file %s: %s\n", rank, g_log.path,
                    strerror(errno));
        else
            rc = 0;
    }
    pthread_mutex_unlock(&g_log_mutex);
    return rc;
}

const char *log_path(void) { return g_log.file ? g_log.path : NULL; }

void log_close(void) {
    pthread_mutex_lock(&g_log_mutex);
    if (g_log.file) fclose(g_log.file);
    g_log.file = NULL;
    pthread_mutex_unlock(&g_log_mutex);
}

void log_vwrite(LogLevel level, const char *fmt, va_list ap) {
    char msg[2048];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n > 0 && msg[n - 1] == '\n') msg[--n] = 0;

    pthread_mutex_lock(&g_log_mutex);
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    if (g_log.start.tv_sec == 0 && g_log.start.tv_nsec == 0) g_log.start = now;
    double elapsed = (double)(now.tv_sec - g_log.start.tv_sec) +
                     1e-9 * (double)(now.tv_nsec - g_log.start.tv_nsec);
    if (g_log.file) {
        time_t t = time(NULL);
        struct tm tm;
        localtime_r(&t, &tm);
        char stamp[32];
        strftime(stamp, sizeof stamp, "%Y-%m-%d %H:%M:%S", &tm);
        fprintf(g_log.file, "%s %9.3fs rank %d %-5s %s\n", stamp, elapsed, g_log.rank,
                level_name[level], msg);
        fflush(g_log.file);
    }
    // Without a file every rank prints; with one, only rank 0 (and errors) reach stderr.
    if (!g_log.file || level == LOG_LEVEL_ERROR || g_log.rank == 0) {
        if (level == LOG_LEVEL_ERROR)
            fprintf(stderr, "storyrun [rank %d]: error: %s\n", g_log.rank, msg);
        else if (level == LOG_LEVEL_WARN)
            fprintf(stderr, "storyrun [%.1fs]: warning: %s\n", elapsed, msg);
        else
            fprintf(stderr, "storyrun [%.1fs]: %s\n", elapsed, msg);
        fflush(stderr);
    }
    pthread_mutex_unlock(&g_log_mutex);
}

void log_write(LogLevel level, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    log_vwrite(level, fmt, ap);
    va_end(ap);
}

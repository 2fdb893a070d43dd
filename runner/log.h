// runner/log.h: per-rank log files. Every rank writes <dir>/rank<N>.log; rank 0 also
// prints info and warnings to stderr, so a job's terminal (or Slurm's .out file) shows
// one copy of the progress and the per-rank files hold everything. Errors go to
// stderr from every rank, prefixed with the rank.
//
//   log_init("out/logs", comm->rank);
//   LOG_INFO("frame %d of %d done", i, n);
//
// Before log_init (or after a failed one), messages go to stderr only. Thread-safe.
#pragma once
#include <stdarg.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { LOG_LEVEL_INFO = 0, LOG_LEVEL_WARN = 1, LOG_LEVEL_ERROR = 2 } LogLevel;

// Creates dir (and its parents) when missing and opens <dir>/rank<rank>.log for
// appending. Returns 0, or -1 after printing which path failed and why.
int log_init(const char *dir, int rank);
// Path of this rank's log file, or NULL before log_init.
const char *log_path(void);
void log_close(void);

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
void log_write(LogLevel level, const char *fmt, ...);
void log_vwrite(LogLevel level, const char *fmt, va_list ap);

#define LOG_INFO(...) log_write(LOG_LEVEL_INFO, __VA_ARGS__)
#define LOG_WARN(...) log_write(LOG_LEVEL_WARN, __VA_ARGS__)
#define LOG_ERROR(...) log_write(LOG_LEVEL_ERROR, __VA_ARGS__)

#ifdef __cplusplus
}
#endif

// runner/check.h: loud, local failure (file, line, hint) for programmer errors and
// resources; user-input errors are returned with a message instead (see STYLE.md).
#pragma once
#include <stdio.h>
#include <stdlib.h>

#define STORY_FATAL(...)                                                        \
    do {                                                                        \
        fprintf(stderr, "storyrun: fatal at %s:%d: ", __FILE__, __LINE__);    \
        fprintf(stderr, __VA_ARGS__);                                           \
        fprintf(stderr, "\n");                                                  \
        abort();                                                                \
    } while (0)

// STORY_CHECK(cond, fmt, ...): the message is a printf format with its arguments.
#define STORY_CHECK(cond, ...)                                                              \
    do {                                                                                    \
        if (!(cond)) {                                                                      \
            fprintf(stderr, "storyrun: fatal at %s:%d: check failed: %s: ", __FILE__,       \
                    __LINE__, #cond);                                                       \
            fprintf(stderr, __VA_ARGS__);                                                   \
            fprintf(stderr, "\n");                                                          \
            abort();                                                                        \
        }                                                                                   \
    } while (0)

static inline void *malloc_check_(size_t n, const char *file, int line) {
    void *p = malloc(n ? n : 1);
    if (!p) {
        fprintf(stderr, "storyrun: fatal at %s:%d: out of memory allocating %zu bytes\n", file, line, n);
        abort();
    }
    return p;
}
#define mallocCheck(n) malloc_check_((n), __FILE__, __LINE__)

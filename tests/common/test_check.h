// tests/common/test_check.h: the counting CHECK of the single-file C tests. A failed
// check prints file, line, the condition and a printf message, and the test goes on;
// main prints `checks` / `failures` in its closing line (which ctest's regex reads) and
// exits non-zero when failures > 0.
#pragma once
#include <stdio.h>

static int checks, failures;

#define CHECK(cond, ...)                                                    \
    do {                                                                    \
        checks++;                                                           \
        if (!(cond)) {                                                      \
            failures++;                                                     \
            fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                   \
            fprintf(stderr, "\n");                                          \
        }                                                                   \
    } while (0)

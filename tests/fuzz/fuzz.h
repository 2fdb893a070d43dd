// tests/fuzz/fuzz.h: what the fuzz targets share with the corpus replay (replay.c).
// Each fuzz_<parser>.c defines LLVMFuzzerTestOneInput, which feeds one input to the
// parser and aborts when any invariant of its answer is broken; libFuzzer (clang) or
// replay.c (any compiler) drives it.
#pragma once
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

// Set by every LLVMFuzzerTestOneInput call: 1 when the parser accepted the input.
extern int fuzz_accepted;

#define FUZZ_ASSERT(cond)                                                                       \
    do {                                                                                        \
        if (!(cond)) {                                                                          \
            fprintf(stderr, "fuzz invariant broken at %s:%d: %s\n", __FILE__, __LINE__, #cond); \
            abort();                                                                            \
        }                                                                                       \
    } while (0)

// tests/partition/test_partition_philox.c: csa_key's (key, counter) tuple addresses the same
// Philox-4x32-10 stream as models/rng.h's (key, stream, i) functions, so a draw made from a
// CsaKey on one rank equals the draw any other rank makes for the same tuple.
#include <stdio.h>
#include <string.h>

#include "models/rng.h"
#include "partition/partition.h"

static int g_checks, g_fail;
#define CHECK(cond, ...)                                \
    do {                                                \
        g_checks++;                                     \
        if (!(cond)) {                                  \
            g_fail++;                                   \
            printf("FAIL %s:%d: ", __FILE__, __LINE__); \
            printf(__VA_ARGS__);                        \
            printf("\n");                               \
        }                                               \
    } while (0)

int main(void) {
    const uint64_t seeds[] = {0, 1, 42, 0xdeadbeefcafef00dULL};
    for (size_t s = 0; s < sizeof(seeds) / sizeof(seeds[0]); s++) {
        for (int kind = 0; kind < 4; kind++) {
            CsaKey k;
            int rc = csa_key(seeds[s], (CsaKind)kind, 3 + kind, 17, 42, CSA_PURPOSE_SAMPLE, &k);
            CHECK(rc == 0, "key");
            uint64_t key = csa_key_seed(&k), stream = csa_key_stream(&k);
            // blocks 0..2 through the raw generator = elements 0..11 of the stream
            for (uint32_t b = 0; b < 3; b++) {
                uint32_t ctr[4] = {k.counter[0] + b, k.counter[1], k.counter[2], k.counter[3]};
                uint32_t out[4];
                rng_philox4x32(ctr, k.key, out);
                for (int w = 0; w < 4; w++) {
                    uint32_t e = rng_philox_u32(key, stream, 4 * (uint64_t)b + (uint64_t)w);
                    CHECK(out[w] == e, "seed %zu kind %d block %u word %d: %08x vs %08x", s, kind,
                          b, w, out[w], e);
                }
            }
        }
    }
    // different purposes of the same image give different draws
    CsaKey a, b;
    csa_key(5, CSA_KIND_FRAME, 1, 3, 0, CSA_PURPOSE_SAMPLE, &a);
    csa_key(5, CSA_KIND_FRAME, 1, 3, 0, CSA_PURPOSE_GATE, &b);
    CHECK(rng_philox_u32(csa_key_seed(&a), csa_key_stream(&a), 0) !=
              rng_philox_u32(csa_key_seed(&b), csa_key_stream(&b), 0),
          "purposes collide");
    printf("partition philox: %d checks, %d failure(s)\n", g_checks, g_fail);
    return g_fail ? 1 : 0;
}

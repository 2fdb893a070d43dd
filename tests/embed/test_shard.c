// tests/embed/test_shard.c: partition/shard.c against brute force. For every clip count
// 0..60, rank count 1..9 and a family of done masks (none, all, every other, random):
//   - every pending clip is on exactly one rank, no done clip is on any;
//   - each rank's clips are ascending and a contiguous run of the pending list, ranks in order;
//   - shard sizes differ by at most 1 and shard_max_count is the largest;
//   - flush rounds: shard_rounds(max, K) rounds cover every rank's shard exactly, in order,
//     each slice at most K, empty past a rank's end;
//   - bad arguments are refused.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "partition/shard.h"
#include "tests/common/test_check.h"

static uint64_t lcg = 12345;
static uint32_t next_u32(void) {
    lcg = lcg * 6364136223846793005ULL + 1442695040888963407ULL;
    return (uint32_t)(lcg >> 33);
}

static void check_case(int64_t n, const uint8_t *done, int R, int K) {
    int64_t *seen = calloc((size_t)(n ? n : 1), sizeof *seen);
    int64_t *buf = malloc((size_t)(n ? n : 1) * sizeof *buf);
    int64_t pending = shard_pending_count(done, n), next_pos = 0, maxc = 0, minc = INT64_MAX;
    // pending list by brute force
    int64_t *plist = malloc((size_t)(n ? n : 1) * sizeof *plist), np = 0;
    for (int64_t i = 0; i < n; i++)
        if (!done || !done[i]) plist[np++] = i;
    CHECK(np == pending, "pending %lld vs %lld", (long long)pending, (long long)np);
    int64_t rounds = shard_rounds(shard_max_count(done, n, R), K);
    for (int r = 0; r < R; r++) {
        int64_t c = shard_clips(done, n, R, r, NULL, 0);
        int64_t got = shard_clips(done, n, R, r, buf, n ? n : 1);
        CHECK(c == got, "count-only %lld vs %lld", (long long)c, (long long)got);
        if (got < 0) continue;
        if (got > maxc) maxc = got;
        if (got < minc) minc = got;
        for (int64_t k = 0; k < got; k++) {
            CHECK(next_pos + k < np && buf[k] == plist[next_pos + k],
                  "n %lld R %d rank %d item %lld: %lld is not pending[%lld]", (long long)n, R, r,
                  (long long)k, (long long)buf[k], (long long)(next_pos + k));
            if (buf[k] >= 0 && buf[k] < n) seen[buf[k]]++;
        }
        next_pos += got;
        // rounds cover [0, got) in order
        int64_t covered = 0;
        for (int64_t q = 0; q < rounds + 2; q++) {
            int64_t lo, hi;
            shard_round_slice(got, K, q, &lo, &hi);
            CHECK(hi - lo <= K && lo <= hi, "round slice [%lld, %lld)", (long long)lo,
                  (long long)hi);
            if (hi > lo) {
                CHECK(lo == covered && q < rounds, "round %lld starts at %lld, expected %lld",
                      (long long)q, (long long)lo, (long long)covered);
                covered = hi;
            } else {
                CHECK(lo == got, "empty round at %lld, expected %lld", (long long)lo,
                      (long long)got);
            }
        }
        CHECK(covered == got, "rounds cover %lld of %lld", (long long)covered, (long long)got);
    }
    CHECK(next_pos == np, "ranks hold %lld of %lld pending clips", (long long)next_pos,
          (long long)np);
    for (int64_t i = 0; i < n; i++)
        CHECK(seen[i] == ((!done || !done[i]) ? 1 : 0), "clip %lld seen %lld times", (long long)i,
              (long long)seen[i]);
    CHECK(maxc - minc <= 1, "n %lld R %d: sizes %lld..%lld", (long long)n, R, (long long)minc,
          (long long)maxc);
    CHECK(maxc == shard_max_count(done, n, R), "max %lld vs shard_max_count %lld", (long long)maxc,
          (long long)shard_max_count(done, n, R));
    free(seen);
    free(buf);
    free(plist);
}

int main(void) {
    uint8_t done[64];
    for (int64_t n = 0; n <= 60; n++)
        for (int R = 1; R <= 9; R++)
            for (int mode = 0; mode < 5; mode++) {
                for (int64_t i = 0; i < n; i++)
                    done[i] = mode == 1   ? 1
                              : mode == 2 ? (uint8_t)(i % 2)
                              : mode >= 3 ? next_u32() % 3 == 0
                                          : 0;
                check_case(n, mode == 0 ? NULL : done, R, 1 + (int)(next_u32() % 7));
            }
    // A hand-worked case: 10 clips, 3 and 6 done, 3 ranks -> pending 0 1 2 4 5 7 8 9
    // split 3/3/2: {0 1 2} {4 5 7} {8 9}.
    memset(done, 0, sizeof done);
    done[3] = done[6] = 1;
    int64_t b[10];
    CHECK(shard_clips(done, 10, 3, 0, b, 10) == 3 && b[0] == 0 && b[2] == 2, "rank 0");
    CHECK(shard_clips(done, 10, 3, 1, b, 10) == 3 && b[0] == 4 && b[1] == 5 && b[2] == 7, "rank 1");
    CHECK(shard_clips(done, 10, 3, 2, b, 10) == 2 && b[0] == 8 && b[1] == 9, "rank 2");
    CHECK(shard_rounds(3, 2) == 2 && shard_rounds(0, 2) == 0 && shard_rounds(4, 2) == 2, "rounds");
    // refusals
    CHECK(shard_clips(done, 10, 3, 1, b, 2) == -1, "cap too small");
    CHECK(shard_clips(done, 10, 0, 0, b, 10) == -1, "no ranks");
    CHECK(shard_clips(done, 10, 3, 3, b, 10) == -1, "rank out of range");
    CHECK(shard_clips(done, -1, 3, 0, b, 10) == -1, "negative count");
    int64_t lo, hi;
    shard_round_slice(5, 0, 0, &lo, &hi);
    CHECK(lo == 5 && hi == 5, "per_round 0 gives an empty slice");
    shard_round_slice(5, INT64_MAX, 1, &lo, &hi);
    CHECK(lo == 5 && hi == 5, "huge per_round: round 1 empty");
    printf("embed shard: %d checks, %d failure(s)\n", checks, failures);
    return failures ? 1 : 0;
}

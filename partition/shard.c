// partition/shard.c: clips -> ranks for the embed job (see shard.h for the rule).
#include "partition/shard.h"

#include <stddef.h>

int64_t shard_pending_count(const uint8_t *done, int64_t n_clips) {
    if (n_clips <= 0) return 0;
    if (!done) return n_clips;
    int64_t n = 0;
    for (int64_t i = 0; i < n_clips; i++) n += done[i] == 0;
    return n;
}

// part_split's rule on 64-bit counts: [*lo, *hi) of n for rank r of R.
static void split64(int64_t n, int n_ranks, int rank, int64_t *lo, int64_t *hi) {
    int64_t base = n / n_ranks, extra = n % n_ranks;
    *lo = rank * base + (rank < extra ? rank : extra);
    *hi = *lo + base + (rank < extra ? 1 : 0);
}

int64_t shard_clips(const uint8_t *done, int64_t n_clips, int n_ranks, int rank, int64_t *out,
                    int64_t cap) {
    if (n_ranks < 1 || rank < 0 || rank >= n_ranks || n_clips < 0) return -1;
    int64_t pending = shard_pending_count(done, n_clips), lo, hi;
    split64(pending, n_ranks, rank, &lo, &hi);
    int64_t count = hi - lo;
    if (!out && cap == 0) return count;
    if (!out || cap < count) return -1;
    // Walk the pending clips, keeping positions [lo, hi) of that list.
    int64_t pos = 0, k = 0;
    for (int64_t i = 0; i < n_clips && pos < hi; i++) {
        if (done && done[i]) continue;
        if (pos >= lo) out[k++] = i;
        pos++;
    }
    return count;
}

int64_t shard_max_count(const uint8_t *done, int64_t n_clips, int n_ranks) {
    if (n_ranks < 1) return 0;
    int64_t pending = shard_pending_count(done, n_clips);
    return pending / n_ranks + (pending % n_ranks ? 1 : 0);
}

int64_t shard_rounds(int64_t count, int64_t per_round) {
    if (count <= 0 || per_round < 1) return 0;
    return (count + per_round - 1) / per_round;
}

void shard_round_slice(int64_t count, int64_t per_round, int64_t round, int64_t *lo, int64_t *hi) {
    if (count < 0) count = 0;
    if (per_round < 1 || round < 0) {
        *lo = *hi = count;
        return;
    }
    if (round >= shard_rounds(count, per_round)) {  // also keeps round * per_round in range
        *lo = *hi = count;
        return;
    }
    int64_t a = round * per_round;
    int64_t b = count - a > per_round ? a + per_round : count;
    *lo = a;
    *hi = b;
}

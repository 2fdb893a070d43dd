// partition/shard.h: which clips of an embed job each rank computes, and in which flush
// rounds. Pure functions: no I/O, no MPI; the same inputs give the same shard on every rank.
//
// Rule (contiguous over the pending clips): the clips that are not done yet, in clip order,
// are split with part_split's balanced contiguous rule (rank k gets n / R clips, the first
// n % R ranks one more). Contiguous rather than round-robin because the clips of one video
// are neighbours in the plan: a rank then decodes each of its videos once for all of that
// video's clips, and its rows form one run of the store. Sharding the *pending* list (not
// all clips) keeps a resumed job balanced whatever was done before, and with any rank count.
//
// Flush rounds: a rank writes its clips in rounds of at most `per_round` (the job's flush
// interval); round k covers its pending clips [k * per_round, (k + 1) * per_round). Every
// rank must make the same number of collective writes, so the job runs
// shard_rounds(max over ranks of the shard size, per_round) rounds and a rank whose clips
// are used up joins the remaining rounds with an empty slice.
#pragma once
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// Number of clips with done[i] == 0 among n_clips (done may be NULL: none done).
int64_t shard_pending_count(const uint8_t *done, int64_t n_clips);

// Rank `rank` of n_ranks: writes its clips (ascending clip indices) into out, which has room
// for `cap` entries, and returns their count; returns -1 (out untouched) when cap is too
// small or the arguments are out of range (n_ranks < 1, rank outside [0, n_ranks),
// n_clips < 0). Calling with out == NULL, cap == 0 returns the count only.
int64_t shard_clips(const uint8_t *done, int64_t n_clips, int n_ranks, int rank, int64_t *out,
                    int64_t cap);

// The largest shard any rank gets (what every rank needs to agree on the round count).
int64_t shard_max_count(const uint8_t *done, int64_t n_clips, int n_ranks);

// Flush rounds for a shard of `count` clips written `per_round` at a time (per_round >= 1):
// ceil(count / per_round); 0 when count is 0.
int64_t shard_rounds(int64_t count, int64_t per_round);

// Positions [*lo, *hi) within a shard of `count` clips that round `round` writes; empty
// (lo == hi == count) for rounds past the shard's end.
void shard_round_slice(int64_t count, int64_t per_round, int64_t round, int64_t *lo, int64_t *hi);

#ifdef __cplusplus
}
#endif

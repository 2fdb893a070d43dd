// tests/embed/test_store.c: runner/store_embed.c under 1..N MPI ranks.
//   test_store DIR
// Every rank takes part in the collective calls; rank 0 then reads the files back with
// serial HDF5 and checks them value by value:
//   - create: the final name appears only when complete (no DIR/x.h5.partial left); a
//     second create on the same path is refused;
//   - write in flush rounds (2 clips per rank per round, ranks with less work join empty),
//     close after the first round, reopen (resume): the done flags are the first round's,
//     and the rest is written from the pending list;
//   - f16 values are f32_to_f16 of what was written, bit for bit; tokens likewise; a skipped
//     clip keeps zero embeddings, done 0, frames as written and its reason; clips never
//     written read frames -1;
//   - reopening with another L / encoder is refused naming each attribute and both values;
//   - DIR/nan.h5 (a NaN in a done row) and DIR/zero.h5 (a done row of zeros) are left for
//     the `storyrun store verify` tests; DIR/good.h5 for `store info`.
#include <hdf5.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kernels/tensor.h"
#include "partition/shard.h"
#include "runner/comm.h"
#include "runner/store_embed.h"
#include "tests/common/test_check.h"

enum { N = 7, L = 3, D = 5, T = 2, DT = 4, K = 2, SKIP = 5 };

static float emb_value(int64_t c, int l, int d) { return (float)c + 0.1f * l + 0.01f * d + 1e-4f; }
static float tok_value(int64_t c, int l, int t, int e) {
    return -(float)c - 0.5f * l + 0.25f * t + 0.03f * e;
}

static EmbedStoreSpec base_spec(EmbedDtype dt, int tokens) {
    EmbedStoreSpec s = {0};
    s.encoder_id = "tiny-a";
    s.encoder_hash = "abc123";
    s.plan_hash = "plan42";
    s.n_clips = N;
    s.n_videos = N;
    s.L = L;
    s.D = D;
    s.stride = 2;
    s.clips_per_video = 1;
    s.dtype = dt;
    s.tokens_layer = tokens ? 1 : -1;
    s.T = T;
    s.Dt = DT;
    s.preprocess = "test";
    s.source = "test-set";
    return s;
}

// Writes this rank's share of the pending clips of s in rounds of K; stops after
// `max_rounds` rounds (-1: all). bad_clip / bad_value: one value to plant (NaN, zeros).
static void write_pending(Comm *c, EmbedStore *s, int tokens, int max_rounds, int64_t bad_clip,
                          int bad_kind) {
    const uint8_t *done = embed_store_done(s);
    int64_t mine[N], n_mine = shard_clips(done, N, c->size, c->rank, mine, N);
    int64_t rounds = shard_rounds(shard_max_count(done, N, c->size), K);
    if (max_rounds >= 0 && rounds > max_rounds) rounds = max_rounds;
    char err[1024];
    for (int64_t q = 0; q < rounds; q++) {
        int64_t lo, hi;
        shard_round_slice(n_mine, K, q, &lo, &hi);
        int64_t n = hi - lo, clip[K], frames[K * L];
        uint8_t dn[K];
        float emb[K * L * D], tok[K * L * T * DT];
        double fps[K];
        const char *reason[K];
        for (int64_t i = 0; i < n; i++) {
            int64_t cl = mine[lo + i];
            clip[i] = cl;
            dn[i] = cl != SKIP;
            reason[i] = cl == SKIP ? "too short: 3 frames, a clip needs 5" : NULL;
            fps[i] = 24.0 + (double)cl;
            for (int l = 0; l < L; l++) {
                frames[i * L + l] = cl * 10 + 2 * l;
                for (int d = 0; d < D; d++) emb[(i * L + l) * D + d] = emb_value(cl, l, d);
                for (int t = 0; t < T; t++)
                    for (int e = 0; e < DT; e++)
                        tok[((i * L + l) * T + t) * DT + e] = tok_value(cl, l, t, e);
            }
            if (cl == bad_clip && bad_kind == 1) emb[(i * L + 1) * D + 2] = NAN;
            if (cl == bad_clip && bad_kind == 2) memset(emb + i * L * D, 0, sizeof(float) * L * D);
        }
        EmbedStoreRows rows = {n, clip, dn, emb, tokens ? tok : NULL, frames, fps, reason};
        int rc = embed_store_write(s, &rows, err, sizeof err);
        CHECK(rc == 0, "write round %lld: %s", (long long)q, err);
    }
}

static void read_all(hid_t f, const char *name, hid_t type, void *buf) {
    hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
    CHECK(d >= 0 && H5Dread(d, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) >= 0, "read %s", name);
    if (d >= 0) H5Dclose(d);
}

static void check_good(const char *path) {
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    CHECK(f >= 0, "open %s", path);
    if (f < 0) return;
    static float emb[N * L * D], tok[N * L * T * DT];
    int64_t frames[N * L], vidx[N];
    double fps[N];
    uint8_t done[N];
    char reasons[N][EMBED_STORE_REASON_LEN];
    read_all(f, "embeds", H5T_NATIVE_FLOAT, emb);
    read_all(f, "tokens", H5T_NATIVE_FLOAT, tok);
    read_all(f, "done", H5T_NATIVE_UINT8, done);
    read_all(f, "clip_meta/frames", H5T_NATIVE_INT64, frames);
    read_all(f, "clip_meta/fps", H5T_NATIVE_DOUBLE, fps);
    read_all(f, "clip_meta/video_index", H5T_NATIVE_INT64, vidx);
    hid_t ts = H5Tcopy(H5T_C_S1);
    H5Tset_size(ts, EMBED_STORE_REASON_LEN);
    H5Tset_strpad(ts, H5T_STR_NULLPAD);
    H5Tset_cset(ts, H5T_CSET_UTF8);
    read_all(f, "clip_meta/skip_reason", ts, reasons);
    H5Tclose(ts);
    int bad_e = 0, bad_t = 0;
    for (int64_t c = 0; c < N; c++) {
        CHECK(done[c] == (c != SKIP), "done[%lld] = %d", (long long)c, done[c]);
        CHECK(vidx[c] == c, "video_index[%lld] = %lld", (long long)c, (long long)vidx[c]);
        CHECK(fps[c] == 24.0 + (double)c, "fps[%lld] = %g", (long long)c, fps[c]);
        for (int l = 0; l < L; l++) {
            CHECK(frames[c * L + l] == c * 10 + 2 * l, "frames[%lld, %d]", (long long)c, l);
            for (int d = 0; d < D; d++) {
                float want = c == SKIP ? 0.0f : f16_to_f32(f32_to_f16(emb_value(c, l, d)));
                bad_e += emb[(c * L + l) * D + d] != want;
            }
            for (int t = 0; t < T; t++)
                for (int e = 0; e < DT; e++) {
                    float want = c == SKIP ? 0.0f : f16_to_f32(f32_to_f16(tok_value(c, l, t, e)));
                    bad_t += tok[((c * L + l) * T + t) * DT + e] != want;
                }
        }
        if (c == SKIP)
            CHECK(!strncmp(reasons[c], "too short: 3 frames", 19), "skip_reason[%d] = '%.40s'",
                  SKIP, reasons[c]);
        else
            CHECK(reasons[c][0] == 0, "skip_reason[%lld] not empty", (long long)c);
    }
    CHECK(bad_e == 0, "%d embedding values differ from f32_to_f16 of what was written", bad_e);
    CHECK(bad_t == 0, "%d token values differ", bad_t);
    hid_t d = H5Dopen2(f, "embeds", H5P_DEFAULT);
    hid_t t = H5Dget_type(d);
    CHECK(H5Tget_class(t) == H5T_FLOAT && H5Tget_size(t) == 2, "embeds are 2-byte floats");
    H5Tclose(t);
    H5Dclose(d);
    int64_t attr_L = 0;
    hid_t a = H5Aopen(f, "L", H5P_DEFAULT);
    CHECK(a >= 0 && H5Aread(a, H5T_NATIVE_INT64, &attr_L) >= 0 && attr_L == L, "attribute L = %lld",
          (long long)attr_L);
    H5Aclose(a);
    H5Fclose(f);
}

// Frames of never-written clips are -1 (the fill value).
static void check_unwritten(const char *path) {
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    int64_t frames[N * L];
    uint8_t done[N];
    read_all(f, "clip_meta/frames", H5T_NATIVE_INT64, frames);
    read_all(f, "done", H5T_NATIVE_UINT8, done);
    int64_t n_done = 0;
    for (int64_t c = 0; c < N; c++) {
        n_done += done[c];
        if (!done[c] && c != SKIP)
            CHECK(frames[c * L] == -1, "unwritten clip %lld frames[0] = %lld", (long long)c,
                  (long long)frames[c * L]);
    }
    CHECK(n_done > 0, "after one round %lld of %d clips are done", (long long)n_done, N);
    H5Fclose(f);
}

int main(int argc, char **argv) {
    Comm *c = comm_init(&argc, &argv);
    if (argc < 2) {
        fprintf(stderr, "usage: test_store DIR\n");
        return 2;
    }
    const char *dir = argv[1];
    char good[1024], partial[1100], nanp[1024], zero[1024], err[4096];
    snprintf(good, sizeof good, "%s/good.h5", dir);
    snprintf(partial, sizeof partial, "%s.partial", good);
    snprintf(nanp, sizeof nanp, "%s/nan.h5", dir);
    snprintf(zero, sizeof zero, "%s/zero.h5", dir);
    if (c->rank == 0) {
        mkdir(dir, 0755);
        unlink(good);
        unlink(nanp);
        unlink(zero);
    }
    comm_barrier(c);

    const char *paths[N], *caps[N];
    char pbuf[N][32], cbuf[N][32];
    int64_t vidx[N];
    for (int i = 0; i < N; i++) {
        snprintf(pbuf[i], sizeof pbuf[i], "videos/v%d.mp4", i);
        snprintf(cbuf[i], sizeof cbuf[i], "caption number %d", i);
        paths[i] = pbuf[i];
        caps[i] = cbuf[i];
        vidx[i] = i;
    }
    EmbedStorePlanMeta meta = {paths, caps, vidx};

    // create, one round, close
    EmbedStoreSpec spec = base_spec(EMBED_F16, 1);
    EmbedStore *s = NULL;
    int rc = embed_store_create(c, good, &spec, &meta, &s, err, sizeof err);
    CHECK(rc == 0, "create: %s", err);
    CHECK(access(partial, F_OK) != 0, "%s left behind", partial);
    if (rc == 0) {
        write_pending(c, s, 1, 1, -1, 0);
        CHECK(embed_store_close(s, err, sizeof err) == 0, "close: %s", err);
    }
    comm_barrier(c);
    if (c->rank == 0) check_unwritten(good);
    comm_barrier(c);
    EmbedStore *again = NULL;
    CHECK(embed_store_create(c, good, &spec, &meta, &again, err, sizeof err) == -1 &&
              strstr(err, "already exists"),
          "second create: %s", err);

    // resume: the rest
    rc = embed_store_open(c, good, &spec, &s, err, sizeof err);
    CHECK(rc == 0, "reopen: %s", err);
    if (rc == 0) {
        int64_t n_done = 0;
        for (int64_t i = 0; i < N; i++) n_done += embed_store_done(s)[i];
        int64_t want = 0;  // first round: min(K, shard) clips per rank, minus the skipped one
        for (int r = 0; r < c->size; r++) {
            int64_t buf[N], cnt = shard_clips(NULL, N, c->size, r, buf, N);
            for (int64_t i = 0; i < cnt && i < K; i++) want += buf[i] != SKIP;
        }
        CHECK(n_done == want, "reopened with %lld done clips, expected %lld", (long long)n_done,
              (long long)want);
        write_pending(c, s, 1, -1, -1, 0);
        CHECK(embed_store_close(s, err, sizeof err) == 0, "close: %s", err);
    }
    comm_barrier(c);
    if (c->rank == 0) check_good(good);
    comm_barrier(c);

    // refusals
    EmbedStoreSpec other = spec;
    other.L = 4;
    CHECK(embed_store_open(c, good, &other, &s, err, sizeof err) == -1 &&
              strstr(err, "L is 3 in the store but 4 in the config"),
          "L mismatch: %s", err);
    other = spec;
    other.encoder_id = "tiny-b";
    other.stride = 3;
    CHECK(embed_store_open(c, good, &other, &s, err, sizeof err) == -1 &&
              strstr(err, "encoder_id is 'tiny-a' in the store but 'tiny-b' in the config") &&
              strstr(err, "stride is 2 in the store but 3 in the config"),
          "encoder mismatch: %s", err);
    other = spec;
    other.dtype = EMBED_F32;
    CHECK(embed_store_open(c, good, &other, &s, err, sizeof err) == -1 &&
              strstr(err, "dtype is 'f16' in the store but 'f32' in the config"),
          "dtype: %s", err);
    CHECK(embed_store_open(c, "/no/such/store.h5", &spec, &s, err, sizeof err) == -1 &&
              strstr(err, "/no/such/store.h5: cannot open"),
          "missing: %s", err);
    char notes[1100];
    snprintf(notes, sizeof notes, "%s/not_a_store.h5", dir);
    if (c->rank == 0) {
        FILE *fp = fopen(notes, "w");
        fputs("hello\n", fp);
        fclose(fp);
    }
    comm_barrier(c);
    CHECK(embed_store_open(c, notes, &spec, &s, err, sizeof err) == -1 &&
              strstr(err, "not an HDF5 file"),
          "text file: %s", err);

    // files for the verify tests: f32, no tokens, every clip done but SKIP
    EmbedStoreSpec s32 = base_spec(EMBED_F32, 0);
    const char *bad_paths[2] = {nanp, zero};
    for (int k = 0; k < 2; k++) {
        rc = embed_store_create(c, bad_paths[k], &s32, &meta, &s, err, sizeof err);
        CHECK(rc == 0, "create %s: %s", bad_paths[k], err);
        if (rc) continue;
        write_pending(c, s, 0, -1, k == 0 ? 2 : 4, k + 1);
        CHECK(embed_store_close(s, err, sizeof err) == 0, "close: %s", err);
    }

    float fails = (float)failures;
    comm_all_reduce_f32(c, &fails, 1);
    if (c->rank == 0)
        printf("embed store (%d ranks): %d checks, %d failure(s)\n", c->size, checks, (int)fails);
    int code = fails > 0 ? 1 : 0;
    comm_finalize(c);
    return code;
}

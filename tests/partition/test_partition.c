// tests/partition/test_partition.c: the planners of partition/partition.c against
// hand-worked plans and against brute-force references over small sweeps.
//   test_partition split|bank|bank_sweep|window|window_sweep|key
// Every mode ends with "partition MODE: N checks, 0 failure(s)" when it passes.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "partition/partition.h"

static int g_checks, g_fail;

// Counts a check; prints the formatted message when it fails.
#define CHECK(cond, ...)                                    \
    do {                                                    \
        g_checks++;                                         \
        if (!(cond)) {                                      \
            g_fail++;                                       \
            if (g_fail <= 40) {                             \
                printf("FAIL %s:%d: ", __FILE__, __LINE__); \
                printf(__VA_ARGS__);                        \
                printf("\n");                               \
            }                                               \
        }                                                   \
    } while (0)

// A story built in a test: up to 64 frames, each naming up to 4 characters.
#define TS_MAX_F 64
#define TS_MAX_C 8
typedef struct {
    int names[TS_MAX_F][4];
    PartFrame frames[TS_MAX_F];
    PartCharacter chars[TS_MAX_C];
    PartStory story;
} TestStory;

// spec: one string per frame: "" = no name, "N" = [NC], otherwise digits = character
// indices ("01" names characters 0 and 1).
static void ts_make(TestStory *ts, int n_frames, const char *const *spec, int n_chars,
                    const int *id_frames) {
    memset(ts, 0, sizeof(*ts));
    for (int f = 0; f < n_frames; f++) {
        PartFrame *fr = &ts->frames[f];
        fr->chars = ts->names[f];
        if (spec[f][0] == 'N') {
            fr->is_nc = 1;
            continue;
        }
        for (const char *s = spec[f]; *s; s++) ts->names[f][fr->n_chars++] = *s - '0';
    }
    for (int c = 0; c < n_chars; c++) ts->chars[c].id_frames = id_frames[c];
    ts->story = (PartStory){ts->frames, n_frames, ts->chars, n_chars};
}

static int ints_eq(const int *a, const int *b, int n) {
    for (int i = 0; i < n; i++)
        if (a[i] != b[i]) return 0;
    return 1;
}

static unsigned lcg_next(unsigned *s) {
    *s = *s * 1664525u + 1013904223u;
    return *s >> 8;
}

// ---- split -----------------------------------------------------------------------------------

static void test_split(void) {
    for (int n = 0; n <= 50; n++) {
        for (int R = 1; R <= 12; R++) {
            int prev_hi = 0, mn = 1 << 30, mx = -1;
            for (int r = 0; r < R; r++) {
                int lo, hi;
                part_split(n, R, r, &lo, &hi);
                CHECK(lo == prev_hi, "split n=%d R=%d r=%d: lo %d != previous hi %d", n, R, r, lo,
                      prev_hi);
                CHECK(hi >= lo, "split n=%d R=%d r=%d: hi %d < lo %d", n, R, r, hi, lo);
                int want = n / R + (r < n % R ? 1 : 0);
                CHECK(hi - lo == want, "split n=%d R=%d r=%d: size %d, expected %d", n, R, r,
                      hi - lo, want);
                prev_hi = hi;
                if (hi - lo < mn) mn = hi - lo;
                if (hi - lo > mx) mx = hi - lo;
            }
            CHECK(prev_hi == n, "split n=%d R=%d: covers %d", n, R, prev_hi);
            CHECK(mx - mn <= 1, "split n=%d R=%d: sizes %d..%d", n, R, mn, mx);
        }
    }
    int lo, hi;
    part_split(5, 3, 3, &lo, &hi);  // rank out of range: empty
    CHECK(lo == hi, "split rank out of range gives [%d, %d)", lo, hi);
}

// ---- bank mode: hand-worked cases ---------------------------------------------------------

// Checks pass c's slice for rank r against an expected list.
static void expect_ids(const PartBankPlan *p, int c, int r, const int *want, int n) {
    const int *got;
    int k = part_bank_rank_ids(p, c, r, &got);
    CHECK(k == n && ints_eq(got, want, n), "pass %d rank %d: %d id frames (expected %d)", c, r, k,
          n);
}
static void expect_rest(const PartBankPlan *p, int r, const int *want, int n) {
    const int *got;
    int k = part_bank_rank_rest(p, r, &got);
    CHECK(k == n && ints_eq(got, want, n), "rest rank %d: %d frames (expected %d)", r, k, n);
}

static void test_bank(void) {
    char err[PART_ERR_LEN];
    TestStory ts;
    PartBankPlan p;

    {  // several characters, [NC], a shared frame, a repeated tag; 3 ranks
        // frame: 0   1   2    3   4   5   6    7   8   9
        const char *spec[] = {"0", "1", "01", "0", "N", "1", "00", "2", "0", ""};
        const int idf[] = {3, 1, 2};
        ts_make(&ts, 10, spec, 3, idf);
        CHECK(part_bank_plan(&ts.story, 3, &p, err) == 0, "plan failed: %s", err);
        // char 0 names alone: 0, 3, 6 ("00"), 8 -> first 3 = 0, 3, 6
        // char 1: 1, 5 -> first 1 = 1; char 2: 7 only -> 1 of 2 (shortfall 1)
        const int id0[] = {0, 3, 6}, id1[] = {1}, id2[] = {7};
        CHECK(p.id_start[1] - p.id_start[0] == 3 && ints_eq(p.id_frames + p.id_start[0], id0, 3),
              "char 0 id frames");
        CHECK(p.id_start[2] - p.id_start[1] == 1 && ints_eq(p.id_frames + p.id_start[1], id1, 1),
              "char 1 id frames");
        CHECK(p.id_start[3] - p.id_start[2] == 1 && ints_eq(p.id_frames + p.id_start[2], id2, 1),
              "char 2 id frames");
        CHECK(p.id_shortfall[0] == 0 && p.id_shortfall[1] == 0 && p.id_shortfall[2] == 1,
              "shortfalls %d %d %d", p.id_shortfall[0], p.id_shortfall[1], p.id_shortfall[2]);
        CHECK(p.n_short == 1 && p.n_no_id == 0, "n_short %d n_no_id %d", p.n_short, p.n_no_id);
        // pass 0 over 3 ranks: one each; pass 1 and 2: rank 0 only
        expect_ids(&p, 0, 0, (int[]){0}, 1);
        expect_ids(&p, 0, 1, (int[]){3}, 1);
        expect_ids(&p, 0, 2, (int[]){6}, 1);
        expect_ids(&p, 1, 0, id1, 1);
        expect_ids(&p, 1, 1, NULL, 0);
        expect_ids(&p, 2, 0, id2, 1);
        expect_ids(&p, 2, 2, NULL, 0);
        // rest: 2 4 5 8 9 -> ranks 2, 2, 1 frames
        CHECK(p.n_rest == 5, "n_rest %d", p.n_rest);
        expect_rest(&p, 0, (int[]){2, 4}, 2);
        expect_rest(&p, 1, (int[]){5, 8}, 2);
        expect_rest(&p, 2, (int[]){9}, 1);
        const int role[] = {PART_ROLE_ID,    PART_ROLE_ID,   PART_ROLE_BANK, PART_ROLE_ID,
                            PART_ROLE_PLAIN, PART_ROLE_BANK, PART_ROLE_ID,   PART_ROLE_ID,
                            PART_ROLE_BANK,  PART_ROLE_PLAIN};
        const int pass[] = {0, 1, -1, 0, -1, -1, 0, 2, -1, -1};
        const int rank[] = {0, 0, 0, 1, 0, 1, 2, 0, 1, 2};
        CHECK(ints_eq(p.frame_role, role, 10), "frame roles");
        CHECK(ints_eq(p.frame_pass, pass, 10), "frame passes");
        CHECK(ints_eq(p.frame_rank, rank, 10), "frame ranks");
        part_bank_plan_free(&p);
        CHECK(p.id_frames == NULL, "free clears the plan");
    }
    {  // a character with no id frame available (only appears with another), one rank
        const char *spec[] = {"01", "0", "01", "N"};
        const int idf[] = {1, 2};
        ts_make(&ts, 4, spec, 2, idf);
        CHECK(part_bank_plan(&ts.story, 1, &p, err) == 0, "plan failed: %s", err);
        CHECK(p.id_start[2] - p.id_start[1] == 0, "char 1 has no id frame");
        CHECK(p.id_shortfall[1] == 2 && p.n_no_id == 1 && p.n_short == 1,
              "char 1 shortfall %d, n_no_id %d", p.id_shortfall[1], p.n_no_id);
        expect_ids(&p, 0, 0, (int[]){1}, 1);
        expect_ids(&p, 1, 0, NULL, 0);
        expect_rest(&p, 0, (int[]){0, 2, 3}, 3);
        CHECK(p.frame_role[0] == PART_ROLE_BANK && p.frame_role[3] == PART_ROLE_PLAIN, "roles");
        part_bank_plan_free(&p);
    }
    {  // one frame, more ranks than frames; id frames requested > available
        const char *spec[] = {"0"};
        const int idf[] = {4};
        ts_make(&ts, 1, spec, 1, idf);
        CHECK(part_bank_plan(&ts.story, 5, &p, err) == 0, "plan failed: %s", err);
        CHECK(p.id_shortfall[0] == 3 && p.n_no_id == 0, "shortfall %d", p.id_shortfall[0]);
        expect_ids(&p, 0, 0, (int[]){0}, 1);
        for (int r = 1; r < 5; r++) expect_ids(&p, 0, r, NULL, 0);
        for (int r = 0; r < 5; r++) expect_rest(&p, r, NULL, 0);
        CHECK(p.frame_rank[0] == 0, "the frame is on rank 0");
        part_bank_plan_free(&p);
    }
    {  // one [NC] frame, no characters at all, 3 ranks
        const char *spec[] = {"N"};
        ts_make(&ts, 1, spec, 0, NULL);
        CHECK(part_bank_plan(&ts.story, 3, &p, err) == 0, "plan failed: %s", err);
        CHECK(p.n_rest == 1 && p.frame_role[0] == PART_ROLE_PLAIN && p.frame_rank[0] == 0,
              "lone [NC] frame");
        expect_rest(&p, 1, NULL, 0);
        part_bank_plan_free(&p);
    }
    {  // id_frames 0 (a character whose bank comes from a store): no pass frames, no shortfall
        const char *spec[] = {"0", "0", "N"};
        const int idf[] = {0};
        ts_make(&ts, 3, spec, 1, idf);
        CHECK(part_bank_plan(&ts.story, 2, &p, err) == 0, "plan failed: %s", err);
        CHECK(p.id_start[1] == 0 && p.n_short == 0 && p.n_no_id == 0, "no id frames wanted");
        CHECK(p.frame_role[0] == PART_ROLE_BANK && p.frame_role[1] == PART_ROLE_BANK,
              "frames still read the bank");
        expect_rest(&p, 0, (int[]){0, 1}, 2);
        expect_rest(&p, 1, (int[]){2}, 1);
        part_bank_plan_free(&p);
    }
    {  // 7 id frames over 3 ranks: slices 3, 2, 2 in story order; rest empty
        const char *spec[] = {"0", "0", "0", "0", "0", "0", "0"};
        const int idf[] = {7};
        ts_make(&ts, 7, spec, 1, idf);
        CHECK(part_bank_plan(&ts.story, 3, &p, err) == 0, "plan failed: %s", err);
        expect_ids(&p, 0, 0, (int[]){0, 1, 2}, 3);
        expect_ids(&p, 0, 1, (int[]){3, 4}, 2);
        expect_ids(&p, 0, 2, (int[]){5, 6}, 2);
        CHECK(p.n_rest == 0, "no rest frames");
        part_bank_plan_free(&p);
    }
    // errors name the frame / character and what was expected
    {
        const char *spec[] = {"0", "N"};
        const int idf[] = {1};
        ts_make(&ts, 2, spec, 1, idf);
        ts.names[1][0] = 0, ts.frames[1].n_chars = 1;  // [NC] that names character 0
        err[0] = 0;
        CHECK(part_bank_plan(&ts.story, 2, &p, err) == -1 && strstr(err, "frame 1") &&
                  strstr(err, "[NC]"),
              "[NC] naming a character: '%s'", err);
        CHECK(p.id_frames == NULL, "failed plan holds nothing");
    }
    {
        const char *spec[] = {"0", "3"};
        const int idf[] = {1};
        ts_make(&ts, 2, spec, 1, idf);
        CHECK(part_bank_plan(&ts.story, 2, &p, err) == -1 && strstr(err, "frame 1") &&
                  strstr(err, "character index 3"),
              "out-of-range character: '%s'", err);
    }
    {
        const char *spec[] = {"0"};
        const int idf[] = {-1};
        ts_make(&ts, 1, spec, 1, idf);
        CHECK(part_bank_plan(&ts.story, 1, &p, err) == -1 && strstr(err, "character 0"),
              "negative id_frames: '%s'", err);
        const int ok[] = {1};
        ts_make(&ts, 1, spec, 1, ok);
        CHECK(part_bank_plan(&ts.story, 0, &p, err) == -1 && strstr(err, "ranks"),
              "zero ranks: '%s'", err);
        ts.story.n_frames = 0;
        CHECK(part_bank_plan(&ts.story, 1, &p, err) == -1 && strstr(err, "no frames"),
              "zero frames: '%s'", err);
        CHECK(part_bank_plan(&ts.story, 0, &p, NULL) == -1, "NULL err is allowed");
    }
}

// ---- bank mode: exhaustive small sweep -----------------------------------------------------

// A random story of F frames over C characters (tags, [NC], shared frames, repeats).
static void random_story(TestStory *ts, int F, int C, unsigned *s) {
    const char *spec[TS_MAX_F];
    char buf[TS_MAX_F][5];
    for (int f = 0; f < F; f++) {
        unsigned u = lcg_next(s) % 10;
        int n = 0;
        if (u == 0) {
            buf[f][n++] = 'N';
        } else if (u >= 2) {  // 1 = no name; otherwise 1 to 3 tags
            int k = 1 + (int)(u >= 8) + (int)(u == 9);
            for (int i = 0; i < k && C > 0; i++) buf[f][n++] = (char)('0' + lcg_next(s) % C);
        }
        buf[f][n] = 0;
        spec[f] = buf[f];
    }
    int idf[TS_MAX_C];
    for (int c = 0; c < C; c++) idf[c] = (int)(lcg_next(s) % 6);
    ts_make(ts, F, spec, C, idf);
}

static void check_bank_plan(const TestStory *ts, int R, const PartBankPlan *p) {
    const PartStory *st = &ts->story;
    const int F = st->n_frames, C = st->n_characters;
    int seen[TS_MAX_F] = {0}, rank_of[TS_MAX_F];
    // reference id lists: scan in story order, take the first requested sole-named frames
    for (int c = 0; c < C; c++) {
        int want[TS_MAX_F], n = 0;
        for (int f = 0; f < F && n < st->characters[c].id_frames; f++) {
            const PartFrame *fr = &st->frames[f];
            int sole = !fr->is_nc && fr->n_chars > 0;
            for (int i = 0; i < fr->n_chars; i++) sole &= fr->chars[i] == c;
            if (sole) want[n++] = f;
        }
        int got = p->id_start[c + 1] - p->id_start[c];
        CHECK(got == n && ints_eq(p->id_frames + p->id_start[c], want, n),
              "F=%d R=%d char %d: %d id frames, reference %d", F, R, c, got, n);
        CHECK(p->id_shortfall[c] == st->characters[c].id_frames - n, "F=%d R=%d char %d shortfall",
              F, R, c);
        // the pass's slices: in order, covering, sizes within 1, extra on the first ranks
        int pos = 0;
        for (int r = 0; r < R; r++) {
            const int *ids;
            int k = part_bank_rank_ids(p, c, r, &ids);
            int sz = n / R + (r < n % R ? 1 : 0);
            CHECK(k == sz, "F=%d R=%d pass %d rank %d: %d frames, balanced size %d", F, R, c, r, k,
                  sz);
            for (int i = 0; i < k && pos + i < n; i++) {
                CHECK(ids[i] == want[pos + i], "pass %d rank %d slice order", c, r);
                seen[ids[i]]++;
                rank_of[ids[i]] = r;
            }
            pos += k;
        }
        CHECK(pos == n, "F=%d R=%d pass %d covers %d of %d", F, R, c, pos, n);
    }
    int pos = 0, prev = -1;
    for (int r = 0; r < R; r++) {
        const int *fs;
        int k = part_bank_rank_rest(p, r, &fs);
        int sz = p->n_rest / R + (r < p->n_rest % R ? 1 : 0);
        CHECK(k == sz, "F=%d R=%d rest rank %d: %d frames, balanced size %d", F, R, r, k, sz);
        for (int i = 0; i < k; i++) {
            CHECK(fs[i] > prev, "rest frames in story order");
            prev = fs[i];
            seen[fs[i]]++;
            rank_of[fs[i]] = r;
        }
        pos += k;
    }
    CHECK(pos == p->n_rest, "rest covers %d of %d", pos, p->n_rest);
    for (int f = 0; f < F; f++) {
        CHECK(seen[f] == 1, "F=%d R=%d frame %d assigned %d times", F, R, f, seen[f]);
        if (seen[f] == 1) CHECK(p->frame_rank[f] == rank_of[f], "frame_rank[%d]", f);
        const PartFrame *fr = &st->frames[f];
        int want_role = p->frame_pass[f] >= 0 ? PART_ROLE_ID
                        : fr->n_chars > 0     ? PART_ROLE_BANK
                                              : PART_ROLE_PLAIN;
        CHECK(p->frame_role[f] == want_role, "F=%d frame %d role %d", F, f, p->frame_role[f]);
    }
}

static void test_bank_sweep(void) {
    char err[PART_ERR_LEN];
    unsigned s = 12345;
    int plans = 0;
    for (int R = 1; R <= 9; R++) {
        for (int F = 1; F <= 40; F++) {
            for (int rep = 0; rep < 6; rep++) {
                TestStory ts;
                random_story(&ts, F, rep % 5, &s);  // 0 to 4 characters
                PartBankPlan a, b;
                int ra = part_bank_plan(&ts.story, R, &a, err);
                CHECK(ra == 0, "F=%d R=%d plan failed: %s", F, R, err);
                if (ra) continue;
                check_bank_plan(&ts, R, &a);
                // determinism: a second plan is identical, array by array
                CHECK(part_bank_plan(&ts.story, R, &b, err) == 0, "second plan");
                int C = a.n_characters;
                CHECK(a.n_rest == b.n_rest && a.n_short == b.n_short && a.n_no_id == b.n_no_id &&
                          ints_eq(a.id_start, b.id_start, C + 1) &&
                          ints_eq(a.id_frames, b.id_frames, a.id_start[C]) &&
                          ints_eq(a.id_rank_start, b.id_rank_start, C * (R + 1)) &&
                          ints_eq(a.rest_frames, b.rest_frames, a.n_rest) &&
                          ints_eq(a.frame_rank, b.frame_rank, F) &&
                          ints_eq(a.frame_role, b.frame_role, F),
                      "F=%d R=%d: plan not deterministic", F, R);
                // the id lists and frame roles do not depend on the rank count
                PartBankPlan one;
                CHECK(part_bank_plan(&ts.story, 1, &one, err) == 0, "one-rank plan");
                CHECK(ints_eq(a.id_frames, one.id_frames, a.id_start[C]) &&
                          ints_eq(a.frame_role, one.frame_role, F) &&
                          ints_eq(a.rest_frames, one.rest_frames, a.n_rest),
                      "F=%d R=%d: id lists depend on the rank count", F, R);
                part_bank_plan_free(&one);
                part_bank_plan_free(&a);
                part_bank_plan_free(&b);
                plans++;
            }
        }
    }
    CHECK(plans == 9 * 40 * 6, "%d plans made", plans);
}

// ---- window mode --------------------------------------------------------------------------

static void test_window(void) {
    char err[PART_ERR_LEN];
    PartWindowPlan p;
    {  // F=10 over 3 ranks (4, 3, 3 frames), W=3: windows 0..7
        CHECK(part_window_plan(10, 3, 3, &p, err) == 0, "plan failed: %s", err);
        CHECK(p.window == 3 && p.n_windows == 8, "W %d, %d windows", p.window, p.n_windows);
        const int own_lo[] = {0, 4, 7}, own_hi[] = {4, 7, 10};
        // rank 0 frames 0..3: windows 0..3 -> frames 0..5; rank 1 frames 4..6: windows
        // 2..6 -> frames 2..8; rank 2 frames 7..9: windows 5..7 -> frames 5..9
        const int win_lo[] = {0, 2, 5}, win_hi[] = {4, 7, 8};
        const int need_lo[] = {0, 2, 5}, need_hi[] = {6, 9, 10};
        CHECK(ints_eq(p.own_lo, own_lo, 3) && ints_eq(p.own_hi, own_hi, 3), "own ranges");
        CHECK(ints_eq(p.win_lo, win_lo, 3) && ints_eq(p.win_hi, win_hi, 3), "window ranges");
        CHECK(ints_eq(p.need_lo, need_lo, 3) && ints_eq(p.need_hi, need_hi, 3), "need ranges");
        CHECK(part_window_halo(&p, 0) == 2 && part_window_halo(&p, 1) == 4 &&
                  part_window_halo(&p, 2) == 2,
              "halos %d %d %d", part_window_halo(&p, 0), part_window_halo(&p, 1),
              part_window_halo(&p, 2));
        const int shared[] = {0, 0, 1, 1, 1, 1, 1, 1, 1, 0};
        CHECK(ints_eq(p.frame_shared, shared, 10) && p.n_shared == 7, "shared frames (%d)",
              p.n_shared);
        const int count[] = {1, 2, 3, 3, 3, 3, 3, 3, 2, 1};
        for (int f = 0; f < 10; f++)
            CHECK(part_window_count(10, 3, f) == count[f], "frame %d in %d windows", f,
                  part_window_count(10, 3, f));
        part_window_plan_free(&p);
        CHECK(p.own_lo == NULL, "free clears the plan");
    }
    {  // W > frames: clamped to F, one window, every rank needs every frame
        CHECK(part_window_plan(5, 9, 2, &p, err) == 0, "plan failed: %s", err);
        CHECK(p.window == 5 && p.n_windows == 1, "W %d, %d windows", p.window, p.n_windows);
        for (int r = 0; r < 2; r++)
            CHECK(p.win_lo[r] == 0 && p.win_hi[r] == 1 && p.need_lo[r] == 0 && p.need_hi[r] == 5,
                  "rank %d", r);
        CHECK(p.n_shared == 5, "all frames shared (%d)", p.n_shared);
        for (int f = 0; f < 5; f++) CHECK(part_window_count(5, 9, f) == 1, "count frame %d", f);
        part_window_plan_free(&p);
    }
    {  // W == 1: a window per frame, no halo at all
        CHECK(part_window_plan(7, 1, 3, &p, err) == 0, "plan failed: %s", err);
        CHECK(p.n_windows == 7 && p.n_shared == 0, "%d windows, %d shared", p.n_windows,
              p.n_shared);
        for (int r = 0; r < 3; r++)
            CHECK(part_window_halo(&p, r) == 0 && p.win_lo[r] == p.own_lo[r] &&
                      p.win_hi[r] == p.own_hi[r],
                  "rank %d windows = own frames", r);
        part_window_plan_free(&p);
    }
    {  // one frame, more ranks than frames
        CHECK(part_window_plan(1, 3, 4, &p, err) == 0, "plan failed: %s", err);
        CHECK(p.window == 1 && p.n_windows == 1 && p.own_hi[0] == 1 && p.n_shared == 0,
              "one frame");
        for (int r = 1; r < 4; r++)
            CHECK(p.own_lo[r] == p.own_hi[r] && p.win_lo[r] == p.win_hi[r] &&
                      part_window_halo(&p, r) == 0,
                  "rank %d idle", r);
        part_window_plan_free(&p);
    }
    {  // one rank: everything local
        CHECK(part_window_plan(12, 4, 1, &p, err) == 0, "plan failed: %s", err);
        CHECK(p.n_windows == 9 && p.win_lo[0] == 0 && p.win_hi[0] == 9 && p.n_shared == 0 &&
                  part_window_halo(&p, 0) == 0,
              "one rank");
        part_window_plan_free(&p);
    }
    CHECK(part_window_plan(0, 2, 2, &p, err) == -1 && strstr(err, "frames"), "0 frames: '%s'", err);
    CHECK(part_window_plan(4, 0, 2, &p, err) == -1 && strstr(err, "window 0"), "W 0: '%s'", err);
    CHECK(part_window_plan(4, 2, 0, &p, err) == -1 && strstr(err, "ranks"), "0 ranks: '%s'", err);
    CHECK(part_window_count(4, 2, 4) == 0 && part_window_count(4, 0, 1) == 0, "count bad args");
}

static void test_window_sweep(void) {
    char err[PART_ERR_LEN];
    int plans = 0;
    for (int R = 1; R <= 9; R++) {
        for (int F = 1; F <= 40; F++) {
            for (int W = 1; W <= F + 2; W++) {
                PartWindowPlan p;
                if (part_window_plan(F, W, R, &p, err)) {
                    CHECK(0, "F=%d W=%d R=%d failed: %s", F, W, R, err);
                    continue;
                }
                int Wc = W < F ? W : F;
                CHECK(p.window == Wc && p.n_windows == F - Wc + 1, "F=%d W=%d clamp", F, W);
                int owned[64] = {0}, shared[64] = {0}, mn = 1 << 30, mx = -1;
                for (int r = 0; r < R; r++) {
                    int lo = p.own_lo[r], hi = p.own_hi[r];
                    if (hi - lo < mn) mn = hi - lo;
                    if (hi - lo > mx) mx = hi - lo;
                    CHECK(r == 0 ? lo == 0 : lo == p.own_hi[r - 1], "F=%d R=%d contiguous", F, R);
                    for (int f = lo; f < hi; f++) {
                        owned[f]++;
                        CHECK(p.frame_rank[f] == r, "frame_rank[%d]", f);
                    }
                    // brute force: windows touching [lo, hi) and the frames they cover
                    int need[64] = {0}, t_first = -1, t_last = -1, n_touch = 0;
                    for (int t = 0; t + Wc <= F; t++) {
                        int touch = 0;
                        for (int f = t; f < t + Wc; f++) touch |= f >= lo && f < hi;
                        if (!touch) continue;
                        if (t_first < 0) t_first = t;
                        t_last = t;
                        n_touch++;
                        for (int f = t; f < t + Wc; f++) need[f] = 1;
                    }
                    int win_n = p.win_hi[r] - p.win_lo[r];
                    CHECK(win_n == n_touch && (n_touch == 0 || (p.win_lo[r] == t_first &&
                                                                p.win_hi[r] == t_last + 1)),
                          "F=%d W=%d R=%d rank %d: windows [%d, %d), reference %d..%d", F, W, R, r,
                          p.win_lo[r], p.win_hi[r], t_first, t_last);
                    for (int f = 0; f < F; f++) {
                        int in = f >= p.need_lo[r] && f < p.need_hi[r];
                        CHECK(in == need[f], "F=%d W=%d R=%d rank %d: need frame %d", F, W, R, r,
                              f);
                        if (need[f] && !(f >= lo && f < hi)) shared[f] = 1;
                    }
                    int halo = 0;
                    for (int f = 0; f < F; f++) halo += need[f] && !(f >= lo && f < hi);
                    CHECK(part_window_halo(&p, r) == halo, "F=%d W=%d R=%d rank %d halo %d vs %d",
                          F, W, R, r, part_window_halo(&p, r), halo);
                }
                CHECK(mx - mn <= 1, "F=%d R=%d block sizes %d..%d", F, R, mn, mx);
                int n_shared = 0;
                for (int f = 0; f < F; f++) {
                    CHECK(owned[f] == 1, "F=%d R=%d frame %d owned %d times", F, R, f, owned[f]);
                    CHECK(p.frame_shared[f] == shared[f], "F=%d W=%d R=%d shared[%d]", F, W, R, f);
                    n_shared += shared[f];
                    int cnt = 0;
                    for (int t = 0; t + Wc <= F; t++) cnt += f >= t && f < t + Wc;
                    CHECK(part_window_count(F, W, f) == cnt, "F=%d W=%d count[%d]", F, W, f);
                }
                CHECK(p.n_shared == n_shared, "F=%d W=%d R=%d n_shared", F, W, R);
                part_window_plan_free(&p);
                plans++;
            }
        }
    }
    CHECK(plans > 0, "no plans");
}

// ---- Philox keys --------------------------------------------------------------------------------

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void test_key(void) {
    CsaKey k;
    // worked packing: purpose 1 | kind 2 << 8 | layer 5 << 12 | step 7 << 24 | index 3 << 40
    CHECK(csa_key(0x0123456789abcdefULL, CSA_KIND_FRAME, 3, 7, 5, CSA_PURPOSE_SAMPLE, &k) == 0,
          "valid key");
    CHECK(k.key[0] == 0x89abcdefu && k.key[1] == 0x01234567u, "key words %08x %08x", k.key[0],
          k.key[1]);
    uint64_t want = 1ull | 2ull << 8 | 5ull << 12 | 7ull << 24 | 3ull << 40;
    CHECK(csa_key_stream(&k) == want && k.counter[2] == (uint32_t)want &&
              k.counter[3] == (uint32_t)(want >> 32),
          "stream %016llx, expected %016llx", (unsigned long long)csa_key_stream(&k),
          (unsigned long long)want);
    CHECK(k.counter[0] == 0 && k.counter[1] == 0, "block counter starts at 0");
    CHECK(csa_key_seed(&k) == 0x0123456789abcdefULL, "seed round trip");
    // field maxima are accepted and land in their own bits
    CHECK(csa_key(~0ull, (CsaKind)CSA_KEY_KIND_MAX, CSA_KEY_INDEX_MAX, CSA_KEY_STEP_MAX,
                  CSA_KEY_LAYER_MAX, (CsaPurpose)CSA_KEY_PURPOSE_MAX, &k) == 0 &&
              csa_key_stream(&k) == ~0ull && csa_key_seed(&k) == ~0ull,
          "all fields at their maximum fill 64 + 64 bits");
    // out of range -> -1 and a zeroed key
    struct {
        int kind, step, layer, purpose;
        int64_t index;
    } bad[] = {{16, 0, 0, 0, 0},       {-1, 0, 0, 0, 0}, {0, 65536, 0, 0, 0}, {0, -1, 0, 0, 0},
               {0, 0, 4096, 0, 0},     {0, 0, -1, 0, 0}, {0, 0, 0, 256, 0},   {0, 0, 0, -1, 0},
               {0, 0, 0, 0, 16777216}, {0, 0, 0, 0, -1}};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int rc = csa_key(9, (CsaKind)bad[i].kind, bad[i].index, bad[i].step, bad[i].layer,
                         (CsaPurpose)bad[i].purpose, &k);
        CHECK(rc == -1 && csa_key_stream(&k) == 0 && csa_key_seed(&k) == 0,
              "out-of-range field set %zu accepted", i);
    }
    // injective over a grid: every (kind, index, step, layer, purpose) its own stream
    enum { NK = 4, NI = 9, NS = 7, NL = 6, NP = 3 };
    static uint64_t streams[NK * NI * NS * NL * NP];
    int n = 0;
    const int idx[NI] = {0, 1, 2, 255, 256, 4095, 4096, 65536, CSA_KEY_INDEX_MAX};
    const int stp[NS] = {0, 1, 19, 20, 255, 4096, CSA_KEY_STEP_MAX};
    const int lay[NL] = {0, 1, 15, 16, 255, CSA_KEY_LAYER_MAX};
    for (int a = 0; a < NK; a++)
        for (int b = 0; b < NI; b++)
            for (int c = 0; c < NS; c++)
                for (int d = 0; d < NL; d++)
                    for (int e = 0; e < NP; e++) {
                        csa_key(42, (CsaKind)a, idx[b], stp[c], lay[d], (CsaPurpose)e, &k);
                        streams[n++] = csa_key_stream(&k);
                    }
    qsort(streams, (size_t)n, sizeof(uint64_t), cmp_u64);
    int dup = 0;
    for (int i = 1; i < n; i++) dup += streams[i] == streams[i - 1];
    CHECK(dup == 0, "%d duplicate streams among %d tuples", dup, n);
    // the same tuple always gives the same key (no hidden state)
    CsaKey k1, k2;
    csa_key(7, CSA_KIND_CHARACTER, 2, 11, 40, CSA_PURPOSE_GATE, &k1);
    csa_key(8, CSA_KIND_CHARACTER, 2, 11, 40, CSA_PURPOSE_GATE, &k);
    csa_key(7, CSA_KIND_CHARACTER, 2, 11, 40, CSA_PURPOSE_GATE, &k2);
    CHECK(memcmp(&k1, &k2, sizeof(k1)) == 0, "same tuple, same key");
    CHECK(csa_key_seed(&k) != csa_key_seed(&k1) && csa_key_stream(&k) == csa_key_stream(&k1),
          "the seed goes to the key, the tuple to the counter");
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "";
    if (!strcmp(mode, "split"))
        test_split();
    else if (!strcmp(mode, "bank"))
        test_bank();
    else if (!strcmp(mode, "bank_sweep"))
        test_bank_sweep();
    else if (!strcmp(mode, "window"))
        test_window();
    else if (!strcmp(mode, "window_sweep"))
        test_window_sweep();
    else if (!strcmp(mode, "key"))
        test_key();
    else {
        fprintf(stderr, "usage: test_partition split|bank|bank_sweep|window|window_sweep|key\n");
        return 2;
    }
    printf("partition %s: %d checks, %d failure(s)\n", mode, g_checks, g_fail);
    return g_fail ? 1 : 0;
}

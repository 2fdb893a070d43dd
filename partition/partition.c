// partition/partition.c: frames -> ranks for bank and window mode, and CSA's Philox keys.
// See partition.h for the rules; everything here is integer arithmetic over the story.
#include "partition/partition.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int part_fail(char *err, const char *fmt, ...) {
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, PART_ERR_LEN, fmt, ap);
        va_end(ap);
    }
    return -1;
}

void part_split(int n, int n_ranks, int rank, int *lo, int *hi) {
    if (n <= 0 || n_ranks <= 0 || rank < 0 || rank >= n_ranks) {
        *lo = *hi = n > 0 ? n : 0;
        return;
    }
    int base = n / n_ranks, extra = n % n_ranks;
    // ranks [0, extra) hold base + 1 items, the rest base
    int start = rank * base + (rank < extra ? rank : extra);
    *lo = start;
    *hi = start + base + (rank < extra ? 1 : 0);
}

int part_frame_sole_character(const PartFrame *f) {
    if (f->is_nc || f->n_chars <= 0) return -1;
    int c = f->chars[0];
    for (int i = 1; i < f->n_chars; i++)
        if (f->chars[i] != c) return -1;
    return c;
}

// Story checks shared by the planners: indices in range, [NC] frames name nobody.
static int part_check_story(const PartStory *s, char *err) {
    if (!s || s->n_frames < 1 || !s->frames)
        return part_fail(err, "story has no frames (expected at least 1 frame line)");
    if (s->n_characters < 0 || (s->n_characters > 0 && !s->characters))
        return part_fail(err, "story character list is invalid (%d characters)", s->n_characters);
    for (int c = 0; c < s->n_characters; c++)
        if (s->characters[c].id_frames < 0)
            return part_fail(err, "character %d: id_frames is %d (expected >= 0)", c,
                             s->characters[c].id_frames);
    for (int f = 0; f < s->n_frames; f++) {
        const PartFrame *fr = &s->frames[f];
        if (fr->n_chars < 0 || (fr->n_chars > 0 && !fr->chars))
            return part_fail(err, "frame %d: invalid character list (%d names)", f, fr->n_chars);
        if (fr->is_nc && fr->n_chars > 0)
            return part_fail(err, "frame %d: marked [NC] but names %d character(s)", f,
                             fr->n_chars);
        for (int i = 0; i < fr->n_chars; i++)
            if (fr->chars[i] < 0 || fr->chars[i] >= s->n_characters)
                return part_fail(err,
                                 "frame %d: character index %d out of range (story has %d "
                                 "characters)",
                                 f, fr->chars[i], s->n_characters);
    }
    return 0;
}

// ---- bank mode ----------------------------------------------------------------------------

int part_bank_plan(const PartStory *story, int n_ranks, PartBankPlan *plan, char *err) {
    memset(plan, 0, sizeof(*plan));
    if (n_ranks < 1) return part_fail(err, "bank plan: %d ranks (expected >= 1)", n_ranks);
    if (part_check_story(story, err)) return -1;
    const int F = story->n_frames, C = story->n_characters, R = n_ranks;

    // pass 1: how many id frames each character gets (the first that name it alone)
    int *got = calloc((size_t)C + 1, sizeof(int));
    if (!got) return part_fail(err, "bank plan: out of memory");
    size_t n_id = 0;
    for (int f = 0; f < F; f++) {
        int c = part_frame_sole_character(&story->frames[f]);
        if (c >= 0 && got[c] < story->characters[c].id_frames) {
            got[c]++;
            n_id++;
        }
    }
    size_t n_rest = (size_t)F - n_id;

    // one block: id_frames | id_start | id_requested | id_shortfall | id_rank_start |
    //            rest_frames | rest_rank_start | frame_rank | frame_role | frame_pass
    size_t n_ints = n_id + ((size_t)C + 1) + 2 * (size_t)C + (size_t)C * ((size_t)R + 1) + n_rest +
                    ((size_t)R + 1) + 3 * (size_t)F;
    int *block = malloc(n_ints * sizeof(int));
    if (!block) {
        free(got);
        return part_fail(err, "bank plan: out of memory (%zu entries for %d ranks)", n_ints, R);
    }
    int *p = block;
    plan->id_frames = p, p += n_id;
    plan->id_start = p, p += (size_t)C + 1;
    plan->id_requested = p, p += C;
    plan->id_shortfall = p, p += C;
    plan->id_rank_start = p, p += (size_t)C * ((size_t)R + 1);
    plan->rest_frames = p, p += n_rest;
    plan->rest_rank_start = p, p += (size_t)R + 1;
    plan->frame_rank = p, p += F;
    plan->frame_role = p, p += F;
    plan->frame_pass = p;
    plan->n_frames = F, plan->n_ranks = R, plan->n_characters = C;
    plan->n_rest = (int)n_rest;

    plan->id_start[0] = 0;
    for (int c = 0; c < C; c++) {
        plan->id_start[c + 1] = plan->id_start[c] + got[c];
        plan->id_requested[c] = story->characters[c].id_frames;
        plan->id_shortfall[c] = plan->id_requested[c] - got[c];
        if (plan->id_shortfall[c] > 0) plan->n_short++;
        if (plan->id_requested[c] > 0 && got[c] == 0) plan->n_no_id++;
    }

    // pass 2: fill the id lists in story order (got[] becomes the fill count) and the rest
    for (int c = 0; c < C; c++) got[c] = 0;
    int k = 0;
    for (int f = 0; f < F; f++) {
        const PartFrame *fr = &story->frames[f];
        int c = part_frame_sole_character(fr);
        if (c >= 0 && got[c] < story->characters[c].id_frames) {
            plan->id_frames[plan->id_start[c] + got[c]++] = f;
            plan->frame_role[f] = PART_ROLE_ID;
            plan->frame_pass[f] = c;
        } else {
            plan->rest_frames[k++] = f;
            plan->frame_role[f] = fr->n_chars > 0 ? PART_ROLE_BANK : PART_ROLE_PLAIN;
            plan->frame_pass[f] = -1;
        }
    }
    free(got);

    // id passes: each character's list split over the ranks
    for (int c = 0; c < C; c++) {
        int n = plan->id_start[c + 1] - plan->id_start[c];
        int *rs = plan->id_rank_start + (size_t)c * ((size_t)R + 1);
        for (int r = 0; r < R; r++) {
            int lo, hi;
            part_split(n, R, r, &lo, &hi);
            rs[r] = lo;
            for (int i = lo; i < hi; i++)
                plan->frame_rank[plan->id_frames[plan->id_start[c] + i]] = r;
        }
        rs[R] = n;
    }
    // frames phase
    for (int r = 0; r < R; r++) {
        int lo, hi;
        part_split((int)n_rest, R, r, &lo, &hi);
        plan->rest_rank_start[r] = lo;
        for (int i = lo; i < hi; i++) plan->frame_rank[plan->rest_frames[i]] = r;
    }
    plan->rest_rank_start[R] = (int)n_rest;
    return 0;
}

void part_bank_plan_free(PartBankPlan *plan) {
    if (!plan) return;
    free(plan->id_frames);  // the start of the one block
    memset(plan, 0, sizeof(*plan));
}

int part_bank_rank_ids(const PartBankPlan *plan, int c, int r, const int **first) {
    if (c < 0 || c >= plan->n_characters || r < 0 || r >= plan->n_ranks) {
        *first = NULL;
        return 0;
    }
    const int *rs = plan->id_rank_start + (size_t)c * ((size_t)plan->n_ranks + 1);
    *first = plan->id_frames + plan->id_start[c] + rs[r];
    return rs[r + 1] - rs[r];
}

int part_bank_rank_rest(const PartBankPlan *plan, int r, const int **first) {
    if (r < 0 || r >= plan->n_ranks) {
        *first = NULL;
        return 0;
    }
    *first = plan->rest_frames + plan->rest_rank_start[r];
    return plan->rest_rank_start[r + 1] - plan->rest_rank_start[r];
}

// ---- window mode -----------------------------------------------------------------------------

int part_window_plan(int n_frames, int window, int n_ranks, PartWindowPlan *plan, char *err) {
    memset(plan, 0, sizeof(*plan));
    if (n_frames < 1) return part_fail(err, "window plan: %d frames (expected >= 1)", n_frames);
    if (window < 1) return part_fail(err, "window plan: window %d (expected >= 1)", window);
    if (n_ranks < 1) return part_fail(err, "window plan: %d ranks (expected >= 1)", n_ranks);
    const int F = n_frames, R = n_ranks, W = window < n_frames ? window : n_frames;

    // one block: six per-rank arrays | frame_shared | frame_rank
    size_t n_ints = 6 * (size_t)R + 2 * (size_t)F;
    int *p = malloc(n_ints * sizeof(int));
    if (!p) return part_fail(err, "window plan: out of memory (%d ranks, %d frames)", R, F);
    plan->own_lo = p, p += R;
    plan->own_hi = p, p += R;
    plan->win_lo = p, p += R;
    plan->win_hi = p, p += R;
    plan->need_lo = p, p += R;
    plan->need_hi = p, p += R;
    plan->frame_shared = p, p += F;
    plan->frame_rank = p;
    plan->n_frames = F, plan->n_ranks = R, plan->window = W, plan->n_windows = F - W + 1;
    memset(plan->frame_shared, 0, (size_t)F * sizeof(int));

    for (int r = 0; r < R; r++) {
        int lo, hi;
        part_split(F, R, r, &lo, &hi);
        plan->own_lo[r] = lo, plan->own_hi[r] = hi;
        for (int f = lo; f < hi; f++) plan->frame_rank[f] = r;
        if (lo == hi) {  // idle rank (more ranks than frames)
            plan->win_lo[r] = plan->win_hi[r] = 0;
            plan->need_lo[r] = plan->need_hi[r] = lo;
            continue;
        }
        // window t covers [t, t + W): it touches [lo, hi) iff t <= hi - 1 and t + W - 1 >= lo
        int t0 = lo - W + 1 > 0 ? lo - W + 1 : 0;
        int t1 = hi - 1 < F - W ? hi - 1 : F - W;  // last touching start, inclusive
        plan->win_lo[r] = t0, plan->win_hi[r] = t1 + 1;
        plan->need_lo[r] = t0, plan->need_hi[r] = t1 + W;
    }
    for (int r = 0; r < R; r++) {
        for (int f = plan->need_lo[r]; f < plan->own_lo[r]; f++) plan->frame_shared[f] = 1;
        for (int f = plan->own_hi[r]; f < plan->need_hi[r]; f++) plan->frame_shared[f] = 1;
    }
    for (int f = 0; f < F; f++) plan->n_shared += plan->frame_shared[f];
    return 0;
}

void part_window_plan_free(PartWindowPlan *plan) {
    if (!plan) return;
    free(plan->own_lo);  // the start of the one block
    memset(plan, 0, sizeof(*plan));
}

int part_window_count(int n_frames, int window, int f) {
    if (n_frames < 1 || window < 1 || f < 0 || f >= n_frames) return 0;
    int W = window < n_frames ? window : n_frames;
    int t0 = f - W + 1 > 0 ? f - W + 1 : 0;
    int t1 = f < n_frames - W ? f : n_frames - W;
    return t1 - t0 + 1;
}

int part_window_halo(const PartWindowPlan *plan, int r) {
    if (r < 0 || r >= plan->n_ranks) return 0;
    return (plan->own_lo[r] - plan->need_lo[r]) + (plan->need_hi[r] - plan->own_hi[r]);
}

// ---- Philox keys
// ---------------------------------------------------------------------------------

int csa_key(uint64_t seed, CsaKind kind, int64_t index, int step, int layer, CsaPurpose purpose,
            CsaKey *out) {
    memset(out, 0, sizeof(*out));
    int k = (int)kind, pu = (int)purpose;
    if (k < 0 || k > CSA_KEY_KIND_MAX || index < 0 || index > CSA_KEY_INDEX_MAX || step < 0 ||
        step > CSA_KEY_STEP_MAX || layer < 0 || layer > CSA_KEY_LAYER_MAX || pu < 0 ||
        pu > CSA_KEY_PURPOSE_MAX)
        return -1;
    uint64_t stream = (uint64_t)pu | (uint64_t)k << 8 | (uint64_t)layer << 12 |
                      (uint64_t)step << 24 | (uint64_t)index << 40;
    out->key[0] = (uint32_t)seed;
    out->key[1] = (uint32_t)(seed >> 32);
    out->counter[2] = (uint32_t)stream;
    out->counter[3] = (uint32_t)(stream >> 32);
    return 0;
}

uint64_t csa_key_seed(const CsaKey *k) { return (uint64_t)k->key[1] << 32 | k->key[0]; }

uint64_t csa_key_stream(const CsaKey *k) { return (uint64_t)k->counter[3] << 32 | k->counter[2]; }

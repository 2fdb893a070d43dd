// tests/train/test_train_tool.c: checks on what `storyrun train` leaves behind.
//
//   test_train_tool cmp A B TOL   every tensor of checkpoint A against B: with TOL = 0 the
//                                 bytes must be equal (tensors, names, shapes, the step);
//                                 else max |a - b| over every parameter <= TOL * max |a|
//                                 over the whole model (optimizer moments are then not
//                                 compared); the largest per-tensor relative difference
//                                 is printed too
//   test_train_tool beats CSV BAR the last validation row of the training log: model MSE
//                                 < BAR * interpolation MSE
//   test_train_tool split         the validation split: the share of clips held out is
//                                 near the fraction asked for, and the batch order
//                                 covers every training clip once per epoch
// Closing line: "train tool: N checks, F failure(s)".
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jobs/train.h"
#include "models/safetensors.h"
#include "tests/common/test_check.h"

static int cmp(const char *a, const char *b, double tol) {
    SafeTensors x, y;
    char err[1024];
    if (st_open(&x, a, err, sizeof err) || st_open(&y, b, err, sizeof err)) {
        CHECK(0, "%s", err);
        return 1;
    }
    CHECK(st_count(&x) == st_count(&y), "%d vs %d tensors", st_count(&x), st_count(&y));
    const char *sx = st_meta(&x, "step"), *sy = st_meta(&y, "step");
    CHECK(sx && sy && !strcmp(sx, sy), "step %s vs %s", sx ? sx : "-", sy ? sy : "-");
    double worst = 0, worst_abs = 0, gmax = 0, gdiff = 0;
    const char *worst_name = "";
    for (int i = 0; i < st_count(&x); i++) {
        const SafeTensorsEntry *e = st_entry(&x, i), *f = st_find(&y, e->name);
        CHECK(f != NULL, "%s: missing in %s", e->name, b);
        if (!f) continue;
        CHECK(f->nbytes == e->nbytes && f->dtype == e->dtype, "%s: shape or dtype differs",
              e->name);
        if (f->nbytes != e->nbytes) continue;
        if (tol == 0) {
            CHECK(memcmp(e->data, f->data, e->nbytes) == 0, "%s: bytes differ", e->name);
            continue;
        }
        if (!strncmp(e->name, "optimizer.", 10) || !strncmp(e->name, "rng.", 4)) continue;
        float *p = malloc(e->numel * sizeof(float)), *q = malloc(e->numel * sizeof(float));
        st_load_f32(e, p);
        st_load_f32(f, q);
        double m = 0, dm = 0;
        for (int64_t k = 0; k < e->numel; k++) {
            m = fmax(m, fabs(p[k]));
            dm = fmax(dm, fabs((double)p[k] - q[k]));
        }
        double rel = dm / fmax(m, 1e-30);
        if (rel > worst) worst = rel, worst_abs = dm, worst_name = e->name;
        gmax = fmax(gmax, m), gdiff = fmax(gdiff, dm);
        free(p), free(q);
    }
    if (tol > 0)
        CHECK(gdiff <= tol * gmax, "max |a - b| %.3g > %.3g x max |a| %.3g", gdiff, tol, gmax);
    if (tol == 0)
        printf("cmp: %s and %s: %d tensors bit-identical\n", a, b, st_count(&x));
    else
        printf(
            "cmp: max |a - b| %.3g = %.3g x max |a| (bar %.3g); largest per-tensor relative "
            "difference %.3g (%s, max abs %.3g)\n",
            gdiff, gdiff / fmax(gmax, 1e-30), tol, worst, worst_name, worst_abs);
    st_close(&x), st_close(&y);
    return 0;
}

static void beats(const char *csv, double bar) {
    TrainLog l = {0};
    char err[1024];
    CHECK(train_log_load(&l, csv, 1L << 40, err, sizeof err) == 0, "%s", err);
    double vm = NAN, vi = NAN;
    for (size_t i = 0; i < l.n; i++)
        if (isfinite(l.rows[i].val_mse)) vm = l.rows[i].val_mse, vi = l.rows[i].interp_mse;
    CHECK(isfinite(vm) && isfinite(vi), "%s: no validation row", csv);
    printf("beats: validation MSE model %.6g, interpolation %.6g, ratio %.4f (bar %.3g)\n", vm, vi,
           vm / vi, bar);
    CHECK(vm < bar * vi, "model %.6g is not below %.3g x interpolation %.6g", vm, bar, vi);
    train_log_free(&l);
}

static void split(void) {
    int held = 0, n = 20000;
    for (int c = 0; c < n; c++) held += train_is_val(0, c, 0.1);
    CHECK(fabs(held / (double)n - 0.1) < 0.01, "held out %d of %d at 0.1", held, n);
    CHECK(train_is_val(3, 17, 0.0) == 0, "fraction 0 holds nothing out");
    CHECK(train_frame_index(0, 5, 9) == 0 && train_frame_index(4, 5, 9) == 8 &&
              train_frame_index(2, 5, 9) == 4 && train_frame_index(1, 3, 8) == 4,
          "frame indices");
    // the batch order: every epoch a permutation; slices of a global batch agree
    TrainData d;
    memset(&d, 0, sizeof d);
    d.n_train = 37;
    d.perm = malloc(37 * sizeof *d.perm);
    d.perm_epoch = -1;
    int G = 6;
    long spe = train_steps_per_epoch(&d, G);
    CHECK(spe == 6, "steps per epoch %ld", spe);
    for (long e = 0; e < 3; e++) {
        int seen[37] = {0};
        for (long k = 0; k < spe; k++) {
            int64_t all[6], h1[3], h2[3];
            train_data_global_batch(&d, 7, e * spe + k, G, 0, G, all);
            train_data_global_batch(&d, 7, e * spe + k, G, 0, 3, h1);
            train_data_global_batch(&d, 7, e * spe + k, G, 3, 6, h2);
            for (int i = 0; i < 6; i++) {
                CHECK(all[i] == (i < 3 ? h1[i] : h2[i - 3]), "slice %d differs", i);
                seen[all[i]]++;
            }
        }
        int twice = 0;
        for (int i = 0; i < 37; i++) twice += seen[i] > 1;
        CHECK(twice == 0, "epoch %ld: %d clips drawn twice", e, twice);
    }
    int64_t a[6], b[6];
    train_data_global_batch(&d, 7, 0, G, 0, G, a);
    train_data_global_batch(&d, 7, spe, G, 0, G, b);
    CHECK(memcmp(a, b, sizeof a) != 0, "epochs 0 and 1 start alike");
    free(d.perm);
}

int main(int argc, char **argv) {
    if (argc == 5 && !strcmp(argv[1], "cmp"))
        cmp(argv[2], argv[3], atof(argv[4]));
    else if (argc == 4 && !strcmp(argv[1], "beats"))
        beats(argv[2], atof(argv[3]));
    else if (argc == 2 && !strcmp(argv[1], "split"))
        split();
    else {
        fprintf(stderr, "usage: test_train_tool cmp A B TOL | beats CSV BAR | split\n");
        return 2;
    }
    printf("train tool: %d checks, %d failure(s)\n", checks, failures);
    return failures ? 1 : 0;
}

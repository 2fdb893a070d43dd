// runner/store_bank.c: character banks in HDF5 (see store_bank.h).
#include "runner/store_bank.h"

#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kernels/cuda_runtime_api.h"
#include "runner/check.h"
#include "runner/h5attr.h"
#include "runner/version.h"

#define BANK_FORMAT 1

// ---- save -----------------------------------------------------------------------------------

int store_bank_save(const char *path, const CsaBank *b, const CsaPlan *p, const BankMeta *m,
                    char *err, size_t errlen) {
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid());
    hid_t f;
    H5E_BEGIN_TRY { f = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT); }
    H5E_END_TRY;
    if (f < 0) return snprintf(err, errlen, "%s: cannot create the bank file", tmp), -1;
    h5_attr_put_i64(f, "format", BANK_FORMAT);
    h5_attr_put_str(f, "storyrun", story_version());
    h5_attr_put_str(f, "character", b->name);
    h5_attr_put_str(f, "model", m->model);
    h5_attr_put_i64(f, "width", m->width);
    h5_attr_put_i64(f, "height", m->height);
    h5_attr_put_i64(f, "steps", m->steps);
    h5_attr_put_str(f, "sampler", m->sampler);
    h5_attr_put_f64(f, "guidance", m->guidance);
    h5_attr_put_i64(f, "halves", b->halves);
    h5_attr_put_u64(f, "seed", m->seed);
    h5_attr_put_i64(f, "n_images", b->n_images);
    h5_attr_put_i64(f, "csa_mode", p->set.mode);
    h5_attr_put_i64(f, "csa_blocks", p->set.blocks);
    h5_attr_put_f64(f, "sa32", p->set.sa32);
    h5_attr_put_f64(f, "sa64", p->set.sa64);
    h5_attr_put_f64(f, "sa_other", p->set.sa_other);
    h5_attr_put_i64(f, "warmup_steps", p->set.warmup_steps);
    h5_attr_put_i64(f, "n_layers", p->n_layers);
    int ok = 1;
    for (int l = 0; l < p->n_layers && ok; l++) {
        int first = -1, n_st = 0;
        for (int s = 0; s < p->steps; s++)
            if (csa_bank_layer(b, s, l)) {
                if (first < 0) first = s;
                n_st++;
            }
        if (!n_st) continue;
        const int k = p->k[l], C = p->channels[l], n = b->n_images, H = b->halves;
        char name[32];
        snprintf(name, sizeof name, "layer_%03d", l);
        hid_t g = H5Gcreate2(f, name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        h5_attr_put_i64(g, "first_step", first);
        h5_attr_put_i64(g, "grid_h", p->sites[l].height);
        h5_attr_put_i64(g, "grid_w", p->sites[l].width);
        h5_attr_put_i64(g, "channels", C);
        h5_attr_put_i64(g, "k", k);
        hsize_t td[4] = {(hsize_t)n_st, (hsize_t)H, (hsize_t)n * k, (hsize_t)C};
        hsize_t id[3] = {(hsize_t)n_st, (hsize_t)n, (hsize_t)k};
        hid_t ts = H5Screate_simple(4, td, NULL), is = H5Screate_simple(3, id, NULL);
        hid_t dt = H5Dcreate2(g, "tokens", H5T_IEEE_F32LE, ts, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        hid_t di = H5Dcreate2(g, "indices", H5T_STD_I32LE, is, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        const size_t per = (size_t)H * n * k * C;
        float *buf = mallocCheck(per * n_st * sizeof(float) + 1);
        int32_t *ib = mallocCheck((size_t)n * k * n_st * sizeof(int32_t) + 1);
        for (int s = first, j = 0; s < p->steps; s++) {
            const CsaBankLayer *e = csa_bank_layer(b, s, l);
            if (!e) continue;
            tensor_to_host_f32(&e->tokens, buf + per * j);
            memcpy(ib + (size_t)n * k * j, e->index, (size_t)n * k * sizeof(int32_t));
            j++;
        }
        ok = H5Dwrite(dt, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) >= 0 &&
             H5Dwrite(di, H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, ib) >= 0;
        free(buf), free(ib);
        H5Dclose(dt), H5Dclose(di), H5Sclose(ts), H5Sclose(is), H5Gclose(g);
    }
    ok = ok && H5Fflush(f, H5F_SCOPE_GLOBAL) >= 0;
    ok = H5Fclose(f) >= 0 && ok;
    if (!ok || rename(tmp, path)) {
        unlink(tmp);
        return snprintf(err, errlen, "%s: writing the bank of [%s] failed (disk full?)", path,
                        b->name),
               -1;
    }
    return 0;
}

// ---- load -----------------------------------------------------------------------------------

#define MISMATCH(what, fmt_bank, fmt_story, ...)                                                \
    (snprintf(err, errlen,                                                                     \
              "%s: the bank of [%s] was made with %s " fmt_bank ", this story uses " fmt_story \
              "; make the bank again under this story's settings, or match them",              \
              path, who, what, __VA_ARGS__))

int store_bank_load(const char *path, const CsaPlan *p, const BankMeta *m, int halves, DType dt,
                    Device dev, CsaBank *out, char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    if (access(path, R_OK))
        return snprintf(err, errlen, "%s: no such bank file (a character bank made by "
                                     "storyrun render)", path),
               -1;
    hid_t f;
    H5E_BEGIN_TRY { f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT); }
    H5E_END_TRY;
    if (f < 0)
        return snprintf(err, errlen, "%s: not an HDF5 file (expected a character bank)", path), -1;
    int rc = -1;
    char who[128] = "?", model[1024] = "", sampler[64] = "";
    int64_t format = 0, width = 0, height = 0, steps = 0, hv = 0, n_images = 0, blocks = 0,
            warm = 0, n_layers = 0;
    double sa32 = 0, sa64 = 0, sao = 0;
    if (h5_attr_get_i64(f, "format", &format) || h5_attr_get_str(f, "character", who, sizeof who) ||
        h5_attr_get_str(f, "model", model, sizeof model) || h5_attr_get_i64(f, "width", &width) ||
        h5_attr_get_i64(f, "height", &height) || h5_attr_get_i64(f, "steps", &steps) ||
        h5_attr_get_str(f, "sampler", sampler, sizeof sampler) || h5_attr_get_i64(f, "halves", &hv) ||
        h5_attr_get_i64(f, "n_images", &n_images) || h5_attr_get_i64(f, "csa_blocks", &blocks) ||
        h5_attr_get_f64(f, "sa32", &sa32) || h5_attr_get_f64(f, "sa64", &sa64) ||
        h5_attr_get_f64(f, "sa_other", &sao) || h5_attr_get_i64(f, "warmup_steps", &warm) ||
        h5_attr_get_i64(f, "n_layers", &n_layers)) {
        snprintf(err, errlen, "%s: not a storyrun character bank (attributes missing)", path);
        goto done;
    }
    if (format != BANK_FORMAT) {
        snprintf(err, errlen, "%s: bank format %lld, this storyrun reads %d", path,
                 (long long)format, BANK_FORMAT);
        goto done;
    }
    if (strcmp(model, m->model)) {
        MISMATCH("model", "'%s'", "'%s'", model, m->model);
        goto done;
    }
    if (width != m->width || height != m->height) {
        MISMATCH("size", "%lldx%lld", "%dx%d", (long long)width, (long long)height, m->width,
                 m->height);
        goto done;
    }
    if (steps != m->steps) {
        MISMATCH("steps", "%lld", "%d", (long long)steps, m->steps);
        goto done;
    }
    if (strcmp(sampler, m->sampler)) {
        MISMATCH("sampler", "%s", "%s", sampler, m->sampler);
        goto done;
    }
    if (hv != halves) {
        MISMATCH("guidance", "%s", "%s", hv == 2 ? "on (> 1)" : "off (<= 1)",
                 halves == 2 ? "on (> 1)" : "off (<= 1)");
        goto done;
    }
    if (blocks != (int64_t)p->set.blocks || warm != p->set.warmup_steps ||
        fabs(sa32 - p->set.sa32) > 1e-6 || fabs(sa64 - p->set.sa64) > 1e-6 ||
        fabs(sao - p->set.sa_other) > 1e-6) {
        MISMATCH("CSA settings", "(blocks %lld, sa32 %g, sa64 %g, sa_other %g, warmup %lld)",
                 "(blocks %u, sa32 %g, sa64 %g, sa_other %g, warmup %d)", (long long)blocks, sa32,
                 sa64, sao, (long long)warm, p->set.blocks, (double)p->set.sa32,
                 (double)p->set.sa64, (double)p->set.sa_other, p->set.warmup_steps);
        goto done;
    }
    if (n_layers != p->n_layers || n_images < 1) {
        MISMATCH("a UNet of", "%lld attention layers", "%d", (long long)n_layers, p->n_layers);
        goto done;
    }
    if (csa_bank_init(out, p, who, (int)n_images, halves, dt, dev, err, errlen)) goto done;
    for (int l = 0; l < p->n_layers; l++) {
        int first = -1, n_st = 0;
        for (int s = 0; s < p->steps; s++)
            if (csa_bank_layer(out, s, l)) {
                if (first < 0) first = s;
                n_st++;
            }
        if (!n_st) continue;
        const int k = p->k[l], C = p->channels[l], n = (int)n_images;
        char name[64];
        snprintf(name, sizeof name, "layer_%03d/tokens", l);
        hid_t dts, dis;
        H5E_BEGIN_TRY {
            dts = H5Dopen2(f, name, H5P_DEFAULT);
            snprintf(name, sizeof name, "layer_%03d/indices", l);
            dis = H5Dopen2(f, name, H5P_DEFAULT);
        }
        H5E_END_TRY;
        hsize_t td[4] = {0}, id[3] = {0};
        int good = dts >= 0 && dis >= 0;
        if (good) {
            hid_t s1 = H5Dget_space(dts), s2 = H5Dget_space(dis);
            good = H5Sget_simple_extent_ndims(s1) == 4 && H5Sget_simple_extent_ndims(s2) == 3;
            if (good) H5Sget_simple_extent_dims(s1, td, NULL), H5Sget_simple_extent_dims(s2, id, NULL);
            H5Sclose(s1), H5Sclose(s2);
        }
        good = good && td[0] == (hsize_t)n_st && td[1] == (hsize_t)halves &&
               td[2] == (hsize_t)n * k && td[3] == (hsize_t)C && id[0] == (hsize_t)n_st &&
               id[1] == (hsize_t)n && id[2] == (hsize_t)k;
        const size_t per = (size_t)halves * n * k * C;
        float *buf = good ? mallocCheck(per * n_st * sizeof(float)) : NULL;
        int32_t *ib = good ? mallocCheck((size_t)n * k * n_st * sizeof(int32_t)) : NULL;
        good = good && H5Dread(dts, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) >= 0 &&
               H5Dread(dis, H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, ib) >= 0;
        if (dts >= 0) H5Dclose(dts);
        if (dis >= 0) H5Dclose(dis);
        if (!good) {
            free(buf), free(ib);
            snprintf(err, errlen,
                     "%s: layer_%03d is missing or has the wrong shape (expected tokens [%d, %d, "
                     "%d, %d] f32 and indices [%d, %d, %d]); the file is damaged or was not made "
                     "for this model",
                     path, l, n_st, halves, n * k, C, n_st, n, k);
            csa_bank_free(out);
            goto done;
        }
        for (int s = first, j = 0; s < p->steps; s++) {
            CsaBankLayer *e = (CsaBankLayer *)csa_bank_layer(out, s, l);
            if (!e) continue;
            tensor_from_host_f32(&e->tokens, buf + per * j);
            memcpy(e->index, ib + (size_t)n * k * j, (size_t)n * k * sizeof(int32_t));
            j++;
        }
        free(buf), free(ib);
    }
    rc = 0;
done:
    H5Fclose(f);
    return rc;
}

// runner/h5attr.c: scalar HDF5 attributes (see h5attr.h).
#include "runner/h5attr.h"

#include <stdio.h>
#include <stdlib.h>

int h5_attr_put(hid_t loc, const char *name, hid_t type, const void *value) {
    if (H5Aexists(loc, name) > 0 && H5Adelete(loc, name) < 0) return -1;
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(loc, name, type, sp, H5P_DEFAULT, H5P_DEFAULT);
    int rc = a < 0 || H5Awrite(a, type, value) < 0 ? -1 : 0;
    if (a >= 0) H5Aclose(a);
    H5Sclose(sp);
    return rc;
}

int h5_attr_put_str(hid_t loc, const char *name, const char *value) {
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, H5T_VARIABLE);
    H5Tset_cset(t, H5T_CSET_UTF8);
    const char *v = value ? value : "";
    int rc = h5_attr_put(loc, name, t, &v);
    H5Tclose(t);
    return rc;
}

int h5_attr_put_i64(hid_t loc, const char *name, int64_t v) {
    return h5_attr_put(loc, name, H5T_NATIVE_INT64, &v);
}
int h5_attr_put_u64(hid_t loc, const char *name, uint64_t v) {
    return h5_attr_put(loc, name, H5T_NATIVE_UINT64, &v);
}
int h5_attr_put_f64(hid_t loc, const char *name, double v) {
    return h5_attr_put(loc, name, H5T_NATIVE_DOUBLE, &v);
}

int h5_attr_get_str(hid_t loc, const char *name, char *buf, size_t n) {
    buf[0] = 0;
    if (H5Aexists(loc, name) <= 0) return -1;
    hid_t a = H5Aopen(loc, name, H5P_DEFAULT);
    if (a < 0) return -1;
    hid_t ft = H5Aget_type(a), sp = H5Aget_space(a);
    int rc = -1;
    if (H5Tget_class(ft) == H5T_STRING && H5Sget_simple_extent_npoints(sp) == 1) {
        if (H5Tis_variable_str(ft) > 0) {
            hid_t t = H5Tcopy(H5T_C_S1);
            H5Tset_size(t, H5T_VARIABLE);
            H5Tset_cset(t, H5Tget_cset(ft));  // HDF5 converts no character sets
            char *v = NULL;
            if (H5Aread(a, t, &v) >= 0) {
                snprintf(buf, n, "%s", v ? v : "");
                rc = 0;
                H5Dvlen_reclaim(t, sp, H5P_DEFAULT, &v);
            }
            H5Tclose(t);
        } else {
            size_t sz = H5Tget_size(ft);
            char *tmp = calloc(1, sz + 1);
            if (tmp && H5Aread(a, ft, tmp) >= 0) {
                snprintf(buf, n, "%s", tmp);
                rc = 0;
            }
            free(tmp);
        }
    }
    H5Sclose(sp);
    H5Tclose(ft);
    H5Aclose(a);
    return rc;
}

int h5_attr_get_num(hid_t loc, const char *name, hid_t mtype, void *v) {
    if (H5Aexists(loc, name) <= 0) return -1;
    hid_t a = H5Aopen(loc, name, H5P_DEFAULT);
    if (a < 0) return -1;
    hid_t ft = H5Aget_type(a), sp = H5Aget_space(a);
    H5T_class_t c = H5Tget_class(ft);
    int rc = (c == H5T_INTEGER || c == H5T_FLOAT) && H5Sget_simple_extent_npoints(sp) == 1 &&
                     H5Aread(a, mtype, v) >= 0
                 ? 0
                 : -1;
    H5Sclose(sp);
    H5Tclose(ft);
    H5Aclose(a);
    return rc;
}

int h5_attr_get_i64(hid_t loc, const char *name, int64_t *v) {
    return h5_attr_get_num(loc, name, H5T_NATIVE_INT64, v);
}
int h5_attr_get_f64(hid_t loc, const char *name, double *v) {
    return h5_attr_get_num(loc, name, H5T_NATIVE_DOUBLE, v);
}

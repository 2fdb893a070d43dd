// runner/h5attr.h: scalar HDF5 attributes as every storyrun store writes and reads them
// (embedding, transitions and character bank stores). Strings are written as
// variable-length UTF-8 (h5py returns str); reading accepts variable or fixed length.
#pragma once
#include <hdf5.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// Creates the attribute, or overwrites it when it exists. Return 0, or -1.
int h5_attr_put(hid_t loc, const char *name, hid_t type, const void *value);
int h5_attr_put_str(hid_t loc, const char *name, const char *value);  // NULL: ""
int h5_attr_put_i64(hid_t loc, const char *name, int64_t v);
int h5_attr_put_u64(hid_t loc, const char *name, uint64_t v);
int h5_attr_put_f64(hid_t loc, const char *name, double v);

// A scalar string attribute into buf (cut to n - 1 bytes); -1 when missing or not text.
int h5_attr_get_str(hid_t loc, const char *name, char *buf, size_t n);
// A scalar number converted to mtype (H5T_NATIVE_INT64, ...); -1 when missing or not a number.
int h5_attr_get_num(hid_t loc, const char *name, hid_t mtype, void *v);
int h5_attr_get_i64(hid_t loc, const char *name, int64_t *v);
int h5_attr_get_f64(hid_t loc, const char *name, double *v);

#ifdef __cplusplus
}
#endif

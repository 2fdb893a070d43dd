// tests/fuzz/fuzz_safetensors.c: libFuzzer target for the safetensors header check
// (models/safetensors.c over runner/json.c). The input is the header's text; the target
// wraps it into a file image (8-byte length, the text, a 64-byte data area) and opens it
// with st_open_memory. The answer must hold together:
// - refused: the message names the file, and nothing is left behind;
// - accepted: every tensor lies inside the data area with nbytes = numel * dtype size,
//   tensors come in data order without overlapping, st_find finds each one, metadata
//   is sorted and found by st_meta, and the data converts (F8 is refused).
#include <stdbool.h>
#include <string.h>

#include "fuzz.h"
#include "models/safetensors.h"

int fuzz_accepted;

#define DATA_BYTES 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    uint8_t *img = malloc(8 + size + DATA_BYTES);
    FUZZ_ASSERT(img != NULL);
    for (int i = 0; i < 8; i++) img[i] = (uint8_t)((uint64_t)size >> (8 * i));
    if (size) memcpy(img + 8, data, size);
    for (int i = 0; i < DATA_BYTES; i++) img[8 + size + i] = (uint8_t)(i * 37 + 11);
    SafeTensors st;
    char err[1024] = "";
    int rc = st_open_memory(&st, img, 8 + size + DATA_BYTES, "fuzz.safetensors", err, sizeof err);
    fuzz_accepted = rc == 0;
    if (rc != 0) {
        FUZZ_ASSERT(rc == -1 && !strncmp(err, "fuzz.safetensors: ", 18));
        FUZZ_ASSERT(st.count == 0 && st.entries == NULL && st.header == NULL && st.path == NULL);
        st_close(&st);
        free(img);
        return 0;
    }
    FUZZ_ASSERT(st.data == img + 8 + size && st.data_size == DATA_BYTES);
    uint64_t prev_end = 0;
    for (int i = 0; i < st_count(&st); i++) {
        const SafeTensorsEntry *e = st_entry(&st, i);
        int64_t numel = 1;
        for (int d = 0; d < e->ndim; d++) numel *= e->shape[d];
        FUZZ_ASSERT(e->ndim >= 0 && e->ndim <= ST_MAX_DIMS && e->numel == numel);
        FUZZ_ASSERT(e->nbytes == (size_t)numel * st_dtype_size(e->dtype));
        FUZZ_ASSERT(e->begin <= e->end && e->end <= DATA_BYTES && e->end - e->begin == e->nbytes);
        FUZZ_ASSERT((const uint8_t *)e->data == st.data + e->begin);
        FUZZ_ASSERT(i == 0 || e->begin >= st_entry(&st, i - 1)->begin);  // data order
        if (e->nbytes) {
            FUZZ_ASSERT(e->begin >= prev_end);  // no shared byte
            prev_end = e->end;
        }
        FUZZ_ASSERT(st_find(&st, e->name) == e);
        float f32[DATA_BYTES];
        uint16_t h16[DATA_BYTES];
        bool f8 = e->dtype == ST_F8_E4M3 || e->dtype == ST_F8_E5M2;
        FUZZ_ASSERT(st_load_f32(e, f32) == (f8 ? -1 : 0));
        FUZZ_ASSERT(st_load_as(e, DT_BF16, h16) == (f8 ? -1 : 0));
        if (e->dtype == ST_F32) FUZZ_ASSERT(!memcmp(f32, e->data, e->nbytes));
    }
    for (int i = 0; i < st_meta_count(&st); i++) {
        const char *value, *key = st_meta_at(&st, i, &value);
        FUZZ_ASSERT(key && st_meta(&st, key) == value);
        FUZZ_ASSERT(i == 0 || strcmp(st_meta_at(&st, i - 1, NULL), key) < 0);
    }
    FUZZ_ASSERT(st_find(&st, "__metadata__") == NULL);
    st_close(&st);
    free(img);
    return 0;
}

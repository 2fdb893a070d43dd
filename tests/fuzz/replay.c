// tests/fuzz/replay.c: runs every file of the given corpus folders through one fuzz
// target (linked beside it) with the normal compiler, so CI exercises the committed
// corpus without clang. File names say what must happen: "ok_*" must be accepted,
// "bad_*" refused; any other name (inputs libFuzzer found) only has to keep every
// invariant, which the target checks itself (it aborts otherwise).
//
// usage: fuzz_replay_<parser> DIR...
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <stdbool.h>
#include <string.h>

#include "fuzz.h"

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

// The whole file, malloc'ed; NULL (reported) when it cannot be read.
static uint8_t *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        return NULL;
    }
    size_t cap = 4096;
    uint8_t *buf = malloc(cap);
    *n = 0;
    for (size_t got; buf && (got = fread(buf + *n, 1, cap - *n, f)) > 0;) {
        *n += got;
        if (*n == cap) buf = realloc(buf, cap *= 2);
    }
    fclose(f);
    return buf;
}

int main(int argc, char **argv) {
    int total = 0, accepted = 0, unexpected = 0;
    for (int a = 1; a < argc; a++) {
        DIR *d = opendir(argv[a]);
        if (!d) {
            perror(argv[a]);
            return 2;
        }
        char **names = NULL;
        size_t n = 0;
        for (struct dirent *e; (e = readdir(d));) {
            if (e->d_name[0] == '.' || !strcmp(e->d_name, "README")) continue;
            names = realloc(names, (n + 1) * sizeof *names);
            names[n++] = strdup(e->d_name);
        }
        closedir(d);
        if (n) qsort(names, n, sizeof *names, cmp_str);  // the same order everywhere
        for (size_t i = 0; i < n; i++) {
            char path[4096];
            snprintf(path, sizeof path, "%s/%s", argv[a], names[i]);
            size_t size;
            uint8_t *data = slurp(path, &size);
            if (!data) return 2;
            LLVMFuzzerTestOneInput(data, size);
            free(data);
            bool want_ok = !strncmp(names[i], "ok_", 3), want_bad = !strncmp(names[i], "bad_", 4);
            bool wrong = (want_ok && !fuzz_accepted) || (want_bad && fuzz_accepted);
            printf("  %s %-40s %s\n", wrong ? "FAIL" : "ok  ", names[i],
                   fuzz_accepted ? "accepted" : "refused");
            total++;
            accepted += fuzz_accepted;
            unexpected += wrong;
            free(names[i]);
        }
        free(names);
    }
    printf("replay: %d inputs, %d accepted, %d refused, %d unexpected\n", total, accepted,
           total - accepted, unexpected);
    return unexpected || total == 0 ? 1 : 0;
}

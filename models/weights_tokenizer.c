// models/weights_tokenizer.c: a model's tokenizer folders. A diffusers folder has its own
// (tokenizer/, tokenizer_2/); a single-file checkpoint has none and gets the CLIP vocabulary
// shipped with storyrun (share/storyrun/clip/{sd15,sdxl_2}, installed by cmake/weights.cmake).
// vocab.json and merges.txt may be gzipped (the shipped copies and the test models are).
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "models/tokenizer.h"
#include "models/weights_impl.h"
#include "runner/check.h"

const char *weights_tokenizer_dir(const Weights *w, const char *which) {
    const WComponent *c = w_component_c(w, which);
    if (c && c->tok_dir) return c->tok_dir;
    return NULL;
}

// dir/name, or dir/name.gz, whole into memory (gzread passes plain files through).
// Returns NULL with *missing set when neither exists, or with a message on a read error.
static char *read_maybe_gz(const char *dir, const char *name, size_t *len, bool *missing, char *err,
                           size_t errlen) {
    *missing = false;
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    if (!w_is_file(path)) {
        snprintf(path, sizeof path, "%s/%s.gz", dir, name);
        if (!w_is_file(path)) {
            *missing = true;
            return NULL;
        }
    }
    gzFile f = gzopen(path, "rb");
    if (!f) return w_err(err, errlen, "%s: cannot open: %s", path, strerror(errno)), NULL;
    size_t cap = 1 << 20, n = 0;
    char *buf = mallocCheck(cap);
    for (;;) {
        if (cap - n < (1 << 16)) {
            cap *= 2;
            buf = realloc(buf, cap);
            if (!buf) STORY_FATAL("out of memory reading %s", path);
        }
        int got = gzread(f, buf + n, (unsigned)(cap - n - 1));
        if (got < 0) {
            int zerr;
            w_err(err, errlen, "%s: read error: %s", path, gzerror(f, &zerr));
            gzclose(f);
            free(buf);
            return NULL;
        }
        if (got == 0) break;
        n += (size_t)got;
    }
    gzclose(f);
    buf[n] = '\0';
    *len = n;
    return buf;
}

int weights_tokenizer_load(const Weights *w, const char *which, Tokenizer *tok, char *err,
                           size_t errlen) {
    memset(tok, 0, sizeof *tok);
    const char *dir = weights_tokenizer_dir(w, which);
    if (!dir) {
        if (w->layout != LAYOUT_DIFFUSERS && weights_has(w, which)) {
            const char *what =
                w->layout == LAYOUT_BUILTIN ? "a built-in model" : "a single-file checkpoint";
            return w_err(err, errlen,
                         "%s: %s has no tokenizer of its own, and storyrun's CLIP vocabulary was "
                         "not found (set STORYRUN_CLIP_DIR to PREFIX/share/storyrun/clip)",
                         w->path, what);
        }
        return w_err(err, errlen, "%s: no %s folder with vocab.json", w->path, which);
    }
    static const char *names[] = {"vocab.json", "merges.txt", "tokenizer_config.json",
                                  "special_tokens_map.json", "added_tokens.json"};
    char *text[5] = {0};
    size_t len[5] = {0};
    int rc = -1;
    for (int i = 0; i < 5; i++) {
        bool missing;
        text[i] = read_maybe_gz(dir, names[i], &len[i], &missing, err, errlen);
        if (!text[i] && (!missing || i < 2)) {
            if (missing) w_err(err, errlen, "%s: no %s (nor %s.gz)", dir, names[i], names[i]);
            goto done;
        }
    }
    TokFiles files = {.name = dir,
                      .vocab_json = text[0],
                      .vocab_len = len[0],
                      .merges_txt = text[1],
                      .merges_len = len[1],
                      .config_json = text[2],
                      .config_len = len[2],
                      .special_map_json = text[3],
                      .special_map_len = len[3],
                      .added_json = text[4],
                      .added_len = len[4]};
    rc = tok_load_memory(tok, &files, err, errlen);
done:
    for (int i = 0; i < 5; i++) free(text[i]);
    return rc;
}

static bool clip_dir_ok(const char *d) {
    char p[4200];
    snprintf(p, sizeof p, "%s/sd15", d);
    if (!w_file_in(p, "vocab.json") && !w_file_in(p, "vocab.json.gz")) return false;
    snprintf(p, sizeof p, "%s/sdxl_2", d);
    return w_file_in(p, "vocab.json") || w_file_in(p, "vocab.json.gz");
}

const char *weights_clip_data_dir(void) {
    static char found[4096];
    const char *env = getenv("STORYRUN_CLIP_DIR");
    if (env && *env && strlen(env) < sizeof found) {
        if (!clip_dir_ok(env)) return NULL;  // an explicit choice is not second-guessed
        snprintf(found, sizeof found, "%s", env);
        return found;
    }
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    char cand[4][4200];
    int nc = 0;
    if (n > 0) {
        exe[n] = '\0';
        char *slash = strrchr(exe, '/');
        if (slash) *slash = '\0';
        snprintf(cand[nc++], sizeof cand[0], "%s/../share/storyrun/clip", exe);
        snprintf(cand[nc++], sizeof cand[0], "%s/share/storyrun/clip", exe);
    }
#ifdef STORY_CLIP_BUILD_DIR
    snprintf(cand[nc++], sizeof cand[0], "%s", STORY_CLIP_BUILD_DIR);
#endif
#ifdef STORY_CLIP_INSTALL_DIR
    snprintf(cand[nc++], sizeof cand[0], "%s", STORY_CLIP_INSTALL_DIR);
#endif
    for (int i = 0; i < nc; i++)
        if (clip_dir_ok(cand[i]) && strlen(cand[i]) < sizeof found) {
            char real[PATH_MAX];  // "PREFIX/share/...", not "PREFIX/bin/../share/..."
            snprintf(found, sizeof found, "%s", realpath(cand[i], real) ? real : cand[i]);
            return found;
        }
    return NULL;
}

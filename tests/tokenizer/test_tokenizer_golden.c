// tests/tokenizer/test_tokenizer_golden.c: storyrun's CLIP tokenizer against the ids of
// transformers' CLIPTokenizer (tests/golden/make_tokenizer_golden.py) for every prompt
// and tokenizer folder of tests/golden/tokenizer/. Identical ids are required, and the
// same untruncated length.
//
//   test_tokenizer_golden DATA_DIR WORK_DIR
// sd15 and sdxl_2 are written out as full folders (vocab.json, merges.txt and their
// configs) and loaded with tok_load; decoder_2 and added go through tok_load_memory.
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <zlib.h>

#include "models/tokenizer.h"

#define MAX_CFG 8

static char *read_gz(const char *path, size_t *len) {
    gzFile f = gzopen(path, "rb");
    if (!f) {
        fprintf(stderr, "%s: cannot open\n", path);
        exit(1);
    }
    size_t n = 0, cap = 1 << 20;
    char *buf = malloc(cap);
    int got;
    while ((got = gzread(f, buf + n, (unsigned)(cap - n - 1))) > 0) {
        n += (size_t)got;
        if (cap - n < 4096) buf = realloc(buf, cap *= 2);
    }
    if (got < 0) {
        fprintf(stderr, "%s: gzip read error\n", path);
        exit(1);
    }
    gzclose(f);
    buf[n] = 0;
    *len = n;
    return buf;
}

// A plain file, NULL if absent.
static char *read_text(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    *len = fread(buf, 1, (size_t)n, f);
    buf[*len] = 0;
    fclose(f);
    return buf;
}

static void write_file(const char *path, const char *data, size_t len) {
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, len, f) != len || fclose(f) != 0) {
        fprintf(stderr, "%s: cannot write\n", path);
        exit(1);
    }
}

static void print_escaped(const char *s) {
    putchar('"');
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            printf("\\%c", *p);
        else if (*p < 0x20 || *p == 0x7f)
            printf("\\x%02x", *p);
        else
            putchar(*p);
    }
    putchar('"');
}

static void print_ids(const char *what, const int *ids, int n) {
    printf("    %s (%d):", what, n);
    for (int i = 0; i < n; i++) printf(" %d", ids[i]);
    printf("\n");
}

typedef struct Cfg {
    char name[64];
    int bos, eos, pad, max_len;
    Tokenizer tok;
    int tested, matched;
} Cfg;

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s DATA_DIR WORK_DIR\n", argv[0]);
        return 2;
    }
    const char *data = argv[1], *work = argv[2];
    char path[8192], golden_path[8192], err[1024];
    size_t vocab_len, merges_len, golden_len;
    snprintf(path, sizeof(path), "%s/vocab.json.gz", data);
    char *vocab = read_gz(path, &vocab_len);
    snprintf(path, sizeof(path), "%s/merges.txt.gz", data);
    char *merges = read_gz(path, &merges_len);
    snprintf(golden_path, sizeof(golden_path), "%s/golden_ids.txt.gz", data);
    char *golden = read_gz(golden_path, &golden_len);
    mkdir(work, 0755);

    Cfg cfg[MAX_CFG];
    int n_cfg = 0, failures = 0, shown = 0, prompts = 0;
    static char prompt[1 << 16];
    int expect[128], got[128];
    for (char *line = strtok(golden, "\n"); line; line = strtok(NULL, "\n")) {
        if (line[0] == 'C' && n_cfg < MAX_CFG) {
            Cfg *c = &cfg[n_cfg];
            memset(c, 0, sizeof(*c));
            if (sscanf(line, "C %63s %d %d %d %d", c->name, &c->bos, &c->eos, &c->pad,
                       &c->max_len) != 5) {
                fprintf(stderr, "golden_ids: bad line: %s\n", line);
                return 1;
            }
            int rc;
            char *text[3];
            static const char *files[3] = {"tokenizer_config.json", "special_tokens_map.json",
                                           "added_tokens.json"};
            size_t lens[3] = {0, 0, 0};
            for (int i = 0; i < 3; i++) {
                snprintf(path, sizeof(path), "%s/%s/%s", data, c->name, files[i]);
                text[i] = read_text(path, &lens[i]);
            }
            if (strcmp(c->name, "sd15") == 0 || strcmp(c->name, "sdxl_2") == 0) {
                char dir[4096];
                snprintf(dir, sizeof(dir), "%s/%s", work, c->name);
                mkdir(dir, 0755);
                snprintf(path, sizeof(path), "%s/vocab.json", dir);
                write_file(path, vocab, vocab_len);
                snprintf(path, sizeof(path), "%s/merges.txt", dir);
                write_file(path, merges, merges_len);
                for (int i = 0; i < 3; i++) {
                    snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
                    if (text[i])
                        write_file(path, text[i], lens[i]);
                    else
                        remove(path);
                }
                clock_t t0 = clock();
                rc = tok_load(&c->tok, dir, err, sizeof(err));
                printf("%s: tok_load(%s) in %.1f ms\n", c->name, dir,
                       1e3 * (double)(clock() - t0) / CLOCKS_PER_SEC);
            } else {
                TokFiles f = {.name = c->name,
                              .vocab_json = vocab,
                              .vocab_len = vocab_len,
                              .merges_txt = merges,
                              .merges_len = merges_len,
                              .config_json = text[0],
                              .config_len = lens[0],
                              .special_map_json = text[1],
                              .special_map_len = lens[1],
                              .added_json = text[2],
                              .added_len = lens[2]};
                rc = tok_load_memory(&c->tok, &f, err, sizeof(err));
            }
            for (int i = 0; i < 3; i++) free(text[i]);
            if (rc) {
                printf("FAIL %s: load: %s\n", c->name, err);
                return 1;
            }
            if (c->tok.bos_id != c->bos || c->tok.eos_id != c->eos || c->tok.pad_id != c->pad ||
                c->tok.model_max_length != c->max_len) {
                printf("FAIL %s: bos/eos/pad/model_max_length %d %d %d %d, expected %d %d %d %d\n",
                       c->name, c->tok.bos_id, c->tok.eos_id, c->tok.pad_id,
                       c->tok.model_max_length, c->bos, c->eos, c->pad, c->max_len);
                failures++;
            }
            n_cfg++;
        } else if (line[0] == 'P') {
            const char *hex = line + 1 + (line[1] == ' ');
            size_t n = strlen(hex) / 2;
            for (size_t i = 0; i < n && i + 1 < sizeof(prompt); i++) {
                unsigned v;
                sscanf(hex + 2 * i, "%2x", &v);
                prompt[i] = (char)v;
            }
            prompt[n] = 0;
            prompts++;
        } else if (line[0] == 'I') {
            char name[64];
            int n_full, off, n_exp = 0;
            if (sscanf(line, "I %63s %d%n", name, &n_full, &off) != 2) {
                fprintf(stderr, "golden_ids: bad line: %s\n", line);
                return 1;
            }
            for (char *p = line + off, *end; n_exp < 128; p = end) {
                long v = strtol(p, &end, 10);
                if (end == p) break;
                expect[n_exp++] = (int)v;
            }
            Cfg *c = NULL;
            for (int i = 0; i < n_cfg; i++)
                if (strcmp(cfg[i].name, name) == 0) c = &cfg[i];
            if (!c) {
                fprintf(stderr, "golden_ids: unknown config %s\n", name);
                return 1;
            }
            int n_untrunc = -1;
            int n = tok_encode(&c->tok, prompt, got, 77, &n_untrunc);
            int n_raw = tok_tokenize(&c->tok, prompt, NULL, 0);
            bool ok = n == n_exp && n_untrunc == n_full && n_raw == n_full - 2;
            for (int i = 0; ok && i < 77; i++) ok = got[i] == (i < n_exp ? expect[i] : c->pad);
            c->tested++;
            if (ok) {
                c->matched++;
                continue;
            }
            failures++;
            if (shown++ < 12) {
                printf("MISMATCH %s: ", c->name);
                print_escaped(prompt);
                printf("\n");
                print_ids("expected", expect, n_exp);
                print_ids("got     ", got, n);
                printf("    n_untruncated expected %d got %d (tok_tokenize %d)\n", n_full,
                       n_untrunc, n_raw);
            }
        }
    }
    for (int i = 0; i < n_cfg; i++)
        printf("%-10s %d/%d prompts matched transformers' ids (bos %d eos %d pad %d)\n",
               cfg[i].name, cfg[i].matched, cfg[i].tested, cfg[i].tok.bos_id, cfg[i].tok.eos_id,
               cfg[i].tok.pad_id);

    // The printable pieces of a known prompt.
    const char *cat = "a photo of a cat";
    int ids[77];
    char piece[64], joined[256] = "";
    int n = tok_encode(&cfg[0].tok, cat, ids, 77, NULL);
    for (int i = 1; i + 1 < n; i++) {
        tok_piece_text(&cfg[0].tok, ids[i], piece, sizeof(piece));
        strncat(joined, piece, sizeof(joined) - strlen(joined) - 1);
    }
    if (strcmp(joined, "a photo of a cat ") != 0 ||
        strcmp(tok_decode_piece(&cfg[0].tok, ids[2]), "photo</w>") != 0) {
        printf("FAIL pieces of \"%s\": \"%s\"\n", cat, joined);
        failures++;
    }

    // Information only (timings are the benchmarks' business): encoding speed.
    clock_t t0 = clock();
    int encoded = 0;
    char *again = read_gz(golden_path, &golden_len);
    for (int rep = 0; encoded < 1000; rep++) {
        for (char *line = strtok(again, "\n"); line && encoded < 1000; line = strtok(NULL, "\n")) {
            if (line[0] != 'P') continue;
            // prompts are re-decoded from hex as above
            const char *hex = line + 1 + (line[1] == ' ');
            size_t m = strlen(hex) / 2;
            for (size_t i = 0; i < m && i + 1 < sizeof(prompt); i++) {
                unsigned v;
                sscanf(hex + 2 * i, "%2x", &v);
                prompt[i] = (char)v;
            }
            prompt[m] = 0;
            tok_encode(&cfg[rep % n_cfg].tok, prompt, ids, 77, NULL);
            encoded++;
        }
        free(again);
        again = read_gz(golden_path, &golden_len);
    }
    free(again);
    printf("encoded %d prompts in %.1f ms (warm caches)\n", encoded,
           1e3 * (double)(clock() - t0) / CLOCKS_PER_SEC);

    for (int i = 0; i < n_cfg; i++) tok_free(&cfg[i].tok);
    free(vocab);
    free(merges);
    free(golden);
    printf("%d prompts, %d configs: %s\n", prompts, n_cfg, failures ? "FAILED" : "all identical");
    return failures ? 1 : 0;
}

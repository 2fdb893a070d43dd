// jobs/tokenize.c: `storyrun tokenize --model PATH [--max-length N] PROMPT...` prints,
// for each tokenizer of the model, the ids the text encoder gets (BOS ... EOS, then the
// padding) and each token's vocab piece, and says where the length limit (77 for every
// SD model) cuts the prompt and what it drops. The words of PROMPT are joined by spaces.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jobs/jobs.h"
#include "models/tokenizer.h"
#include "models/weights.h"
#include "runner/check.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: storyrun tokenize --model PATH [--max-length N] PROMPT...\n"
            "  --model PATH      a diffusers folder or a single-file checkpoint (whose\n"
            "                    tokenizers are storyrun's shipped CLIP vocabulary)\n"
            "  --max-length N    ids per prompt, BOS and EOS included (default: the\n"
            "                    tokenizer's model_max_length, 77)\n");
}

// Prints the pieces of ids[0..n) as their text, quoted.
static void print_text(const Tokenizer *tok, const int *ids, int n) {
    printf("\"");
    for (int i = 0; i < n; i++) {
        char buf[256];
        if (tok_piece_text(tok, ids[i], buf, sizeof buf) < 0) continue;
        size_t len = strlen(buf);
        if (i == n - 1 && len && buf[len - 1] == ' ') buf[len - 1] = '\0';
        printf("%s", buf);
    }
    printf("\"");
}

static int show(Tokenizer *tok, const char *which, const char *dir, const char *prompt,
                int max_len) {
    int len = max_len > 0 ? max_len : tok->model_max_length;
    if (len < 2) {
        fprintf(stderr, "storyrun tokenize: --max-length must be at least 2 (BOS and EOS)\n");
        return -1;
    }
    int *ids = mallocCheck((size_t)len * sizeof *ids);
    int full = 0;
    int n = tok_encode(tok, prompt, ids, len, &full);
    const char *pad = tok_decode_piece(tok, tok->pad_id);
    printf("%s: %s (pads with \"%s\", id %d)\n", which, dir, pad ? pad : "?", tok->pad_id);
    printf("  %d of %d ids used (BOS, %d prompt tokens, EOS), %d padding\n", n, len, n - 2,
           len - n);
    printf("  ids: ");
    for (int i = 0; i < n; i++) printf("%s%d", i ? " " : "", ids[i]);
    if (len > n) printf(" [+%d x %d]", len - n, tok->pad_id);
    printf("\n");
    printf("  %4s %6s  %s\n", "#", "id", "piece");
    for (int i = 0; i < n; i++) {
        const char *p = tok_decode_piece(tok, ids[i]);
        printf("  %4d %6d  %s\n", i, ids[i], p ? p : "?");
    }
    if (full > len) {
        // the prompt's tokens alone: those past len - 2 are what the limit drops
        int total = tok_tokenize(tok, prompt, NULL, 0);
        int *all = mallocCheck((size_t)(total > 0 ? total : 1) * sizeof *all);
        tok_tokenize(tok, prompt, all, total);
        int keep = len - 2;
        printf(
            "  cut: the prompt has %d tokens, the %d-id limit keeps %d; dropped after token "
            "#%d: ",
            total, len, keep, keep);
        print_text(tok, all + keep, total - keep);
        printf(" (%d tokens)\n", total - keep);
        free(all);
    } else {
        printf("  not cut: %d of %d prompt tokens fit\n", n - 2, len - 2);
    }
    free(ids);
    return 0;
}

int job_tokenize(int argc, char **argv) {
    const char *model = NULL;
    int max_len = 0;
    size_t cap = 1, used = 0;
    for (int i = 1; i < argc; i++) cap += strlen(argv[i]) + 1;
    char *prompt = mallocCheck(cap);
    prompt[0] = '\0';
    int words = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--model") && i + 1 < argc)
            model = argv[++i];
        else if (!strcmp(argv[i], "--max-length") && i + 1 < argc) {
            char *end;
            long v = strtol(argv[++i], &end, 10);
            if (*end || v < 2 || v > 100000) {
                fprintf(stderr,
                        "storyrun tokenize: --max-length: expected an integer >= 2, found '%s'\n",
                        argv[i]);
                free(prompt);
                return 2;
            }
            max_len = (int)v;
        } else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            free(prompt);
            return 0;
        } else if (!strcmp(argv[i], "--") && i + 1 < argc) {
            for (i++; i < argc; i++)
                used += (size_t)snprintf(prompt + used, cap - used, "%s%s", words++ ? " " : "",
                                         argv[i]);
        } else if (!strncmp(argv[i], "--", 2)) {
            fprintf(stderr, "storyrun tokenize: unknown or incomplete option '%s'\n", argv[i]);
            usage(stderr);
            free(prompt);
            return 2;
        } else {
            used +=
                (size_t)snprintf(prompt + used, cap - used, "%s%s", words++ ? " " : "", argv[i]);
        }
    }
    if (!model || !words) {
        usage(stderr);
        free(prompt);
        return 2;
    }
    Weights *w;
    char err[2048];
    if (weights_open(&w, model, err, sizeof err)) {
        fprintf(stderr, "storyrun tokenize: %s\n", err);
        free(prompt);
        return 2;
    }
    printf("model: %s (%s)\n", weights_path(w), family_name(weights_family(w)));
    printf("prompt: \"%s\"\n", prompt);
    static const char *which[] = {"tokenizer", "tokenizer_2"};
    int rc = 0, shown = 0;
    for (int t = 0; t < 2; t++) {
        if (!weights_has(w, which[t])) continue;
        Tokenizer tok;
        if (weights_tokenizer_load(w, which[t], &tok, err, sizeof err)) {
            fprintf(stderr, "storyrun tokenize: %s\n", err);
            rc = 1;
            continue;
        }
        if (show(&tok, which[t], weights_tokenizer_dir(w, which[t]), prompt, max_len)) rc = 2;
        shown++;
        tok_free(&tok);
    }
    if (!shown && !rc) {
        fprintf(stderr, "storyrun tokenize: %s has no tokenizer\n", weights_path(w));
        rc = 1;
    }
    weights_close(w);
    free(prompt);
    return rc;
}

// tests/tokenizer/test_tokenizer_errors.c: broken tokenizer folders give an error that
// names the file and the place in it (never a crash or an exit), and a tiny in-memory
// tokenizer encodes as worked out by hand.
//
//   test_tokenizer_errors WORK_DIR
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "models/tokenizer.h"

static int failures = 0;
static char work[4096];

static void put(const char *dir, const char *file, const char *text) {
    char path[8192];
    snprintf(path, sizeof(path), "%s/%s/%s", work, dir, file);
    FILE *f = fopen(path, "wb");
    if (!f) {
        fprintf(stderr, "%s: cannot write\n", path);
        exit(1);
    }
    fputs(text, f);
    fclose(f);
}

static const char *k_vocab =
    "{\"a\": 0, \"b\": 1, \"a</w>\": 2, \"b</w>\": 3, \"ab</w>\": 4,\n"
    " \"<|startoftext|>\": 5, \"<|endoftext|>\": 6, \"!\": 7, \"ab\": 8}\n";
static const char *k_merges = "#version: 0.2\na b</w>\na b\n";

// A folder holding the given files (NULL: absent); loading must fail with every one of
// the `want` fragments in the message.
static void expect_error(const char *name, const char *vocab, const char *merges,
                         const char *config, const char *want1, const char *want2) {
    char dir[8192], err[1024] = "";
    snprintf(dir, sizeof(dir), "%s/%s", work, name);
    mkdir(dir, 0755);
    const char *files[3] = {"vocab.json", "merges.txt", "tokenizer_config.json"};
    const char *texts[3] = {vocab, merges, config};
    for (int i = 0; i < 3; i++) {
        char path[8300];
        snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
        remove(path);
        if (texts[i]) put(name, files[i], texts[i]);
    }
    Tokenizer tok;
    int rc = tok_load(&tok, dir, err, sizeof(err));
    bool ok = rc == -1 && strstr(err, want1) && (!want2 || strstr(err, want2)) && tok.impl == NULL;
    printf("%s %-22s %s\n", ok ? "ok  " : "FAIL", name, err);
    if (!ok) {
        printf("     wanted -1 and \"%s\"%s%s%s\n", want1, want2 ? " and \"" : "",
               want2 ? want2 : "", want2 ? "\"" : "");
        failures++;
    }
    tok_free(&tok);
    // the same with no room for a message must not crash either
    if (tok_load(&tok, dir, NULL, 0) != -1) failures++;
}

static void expect_ids(Tokenizer *tok, const char *text, int max_len, const int *want, int n_want,
                       int untrunc) {
    int ids[16], n_untrunc = -1;
    int n = tok_encode(tok, text, ids, max_len, &n_untrunc);
    int len = max_len > 0 ? max_len : tok->model_max_length;  // 0: the config's length
    bool ok = n == n_want && n_untrunc == untrunc;
    for (int i = 0; ok && i < len; i++) ok = ids[i] == want[i];
    printf("%s encode \"%s\" (max_len %d):", ok ? "ok  " : "FAIL",
           text[1] == '\xff' ? "a\\xff b" : text, max_len);
    for (int i = 0; i < len; i++) printf(" %d", ids[i]);
    printf("  (%d before padding, %d untruncated)\n", n, n_untrunc);
    failures += !ok;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s WORK_DIR\n", argv[0]);
        return 2;
    }
    snprintf(work, sizeof(work), "%s", argv[1]);
    mkdir(work, 0755);

    expect_error("missing_merges", k_vocab, NULL, NULL, "missing_merges/merges.txt", "cannot open");
    expect_error("missing_vocab", NULL, k_merges, NULL, "missing_vocab/vocab.json", "cannot open");
    expect_error("truncated_vocab", "{\"a\": 0,\n \"b\": 1,", k_merges, NULL,
                 "truncated_vocab/vocab.json: line 2", "unexpected end of file");
    expect_error("corrupt_vocab", "{\"a\": 0,\n \"b\" 1}", k_merges, NULL,
                 "corrupt_vocab/vocab.json: line 2, column 6", "expected ':'");
    expect_error("vocab_not_object", "[1, 2]", k_merges, NULL, "vocab_not_object/vocab.json",
                 "expected an object");
    expect_error("vocab_bad_id", "{\"a\": 0, \"b\": 1.5}", k_merges, NULL,
                 "vocab_bad_id/vocab.json: line 1, column 15", "integer id");
    expect_error("vocab_bad_escape", "{\"a\\q\": 0}", k_merges, NULL, "vocab_bad_escape/vocab.json",
                 "escape");
    expect_error("vocab_empty", "{}", k_merges, NULL, "vocab_empty/vocab.json", "empty");
    expect_error("merges_three_tokens", k_vocab, "#version: 0.2\na b</w>\na b c\n", NULL,
                 "merges_three_tokens/merges.txt: line 3", "two tokens");
    expect_error("merges_empty_line", k_vocab, "#version: 0.2\n\na b\n", NULL,
                 "merges_empty_line/merges.txt: line 2", "two tokens");
    expect_error("merges_unknown", k_vocab, "#version: 0.2\na b</w>\nb a\n", NULL,
                 "merges_unknown/merges.txt: line 3", "\"ba\" is not in the vocab");
    expect_error("merges_unknown_left", k_vocab, "#version: 0.2\nz b\n", NULL,
                 "merges_unknown_left/merges.txt: line 2", "\"z\"");
    expect_error("config_bad_json", k_vocab, k_merges, "{\"pad_token\": \"!\",}",
                 "config_bad_json/tokenizer_config.json", "line 1");
    expect_error("config_bad_token", k_vocab, k_merges, "{\"pad_token\": 7}",
                 "config_bad_token/tokenizer_config.json", "expected a token");
    expect_error("config_bad_decoder", k_vocab, k_merges,
                 "{\"added_tokens_decoder\": {\"x\": {\"content\": \"!\"}}}",
                 "config_bad_decoder/tokenizer_config.json", "not an id");
    expect_error(
        "config_single_word", k_vocab, k_merges,
        "{\"pad_token\": {\"__type\": \"AddedToken\", \"content\": \"!\", \"single_word\": true}}",
        "config_single_word/tokenizer_config.json", "single_word");
    expect_error("config_deep", k_vocab, k_merges,
                 "{\"x\": "
                 "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]"
                 "]]]]]]]]]]]]]]]]]]]"
                 "]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}",
                 "config_deep/tokenizer_config.json", "nested deeper");

    // A tiny tokenizer from memory: merges "a b</w>" (rank 0) and "a b" (rank 1). The same
    // folder on disk gives these very ids in transformers 5.24's CLIPTokenizer.
    const char *config = "{\"pad_token\": \"!\", \"model_max_length\": 6}";
    TokFiles files = {.name = "builtin:tiny",
                      .vocab_json = k_vocab,
                      .vocab_len = strlen(k_vocab),
                      .merges_txt = k_merges,
                      .merges_len = strlen(k_merges),
                      .config_json = config,
                      .config_len = strlen(config)};
    Tokenizer tok;
    char err[1024];
    if (tok_load_memory(&tok, &files, err, sizeof(err))) {
        printf("FAIL builtin:tiny: %s\n", err);
        return 1;
    }
    printf("ok   builtin:tiny loaded: bos %d eos %d pad %d unk %d model_max_length %d\n",
           tok.bos_id, tok.eos_id, tok.pad_id, tok.unk_id, tok.model_max_length);
    failures += tok.bos_id != 5 || tok.eos_id != 6 || tok.pad_id != 7 || tok.unk_id != 6 ||
                tok.model_max_length != 6;
    // "AB" -> "ab" -> a b</w> -> ab</w>; "ba" -> b a</w>; "abab" -> a b a b</w> -> ab ab</w>;
    // "c" is not in the vocab -> unk; "!" is an added token (the pad); cut to 6 keeps EOS.
    expect_ids(&tok, "AB", 6, (int[]){5, 4, 6, 7, 7, 7}, 3, 3);
    expect_ids(&tok, "ba", 6, (int[]){5, 1, 2, 6, 7, 7}, 4, 4);
    expect_ids(&tok, "abab", 6, (int[]){5, 8, 4, 6, 7, 7}, 4, 4);
    expect_ids(&tok, "c!a", 6, (int[]){5, 6, 7, 2, 6, 7}, 5, 5);
    expect_ids(&tok, "a a a a a a", 0, (int[]){5, 2, 2, 2, 2, 6}, 6, 8);
    // "\xff" is read as U+FFFD: 3 bytes without vocab entries -> 3 unk; then cut to 4 tokens
    expect_ids(&tok, "a\xff b", 6, (int[]){5, 2, 6, 6, 6, 6}, 6, 7);
    int ids[4];
    if (tok_encode(&tok, "a", ids, 1, NULL) != -1) failures++;
    char text[32];
    if (tok_piece_text(&tok, 4, text, sizeof(text)) != 3 || strcmp(text, "ab ") != 0) failures++;
    if (tok_decode_piece(&tok, 99) != NULL || tok_piece_text(&tok, -1, text, sizeof(text)) != -1)
        failures++;
    tok_free(&tok);

    files.merges_txt = "#version: 0.2\na q\n";
    files.merges_len = strlen(files.merges_txt);
    int rc = tok_load_memory(&tok, &files, err, sizeof(err));
    bool named = rc == -1 && strstr(err, "builtin:tiny/merges.txt: line 2");
    printf("%s in-memory error: %s\n", named ? "ok  " : "FAIL", err);
    failures += !named;

    printf("tokenizer_errors: %s\n", failures ? "FAILED" : "all checks passed");
    return failures ? 1 : 0;
}

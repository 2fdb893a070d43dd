// runner/config_get.c: lookups, did-you-mean and the typed accessors of runner/config.h.
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runner/config.h"

// ---- did you mean ----------------------------------------------------------------------

int cfg_edit_distance(const char *a, const char *b) {
    int n = (int)strlen(a), m = (int)strlen(b);
    if (n > 63 || m > 63) return 99;
    int dp[64][64];
    for (int i = 0; i <= n; i++) dp[i][0] = i;
    for (int j = 0; j <= m; j++) dp[0][j] = j;
    for (int i = 1; i <= n; i++)
        for (int j = 1; j <= m; j++) {
            int sub = tolower((unsigned char)a[i - 1]) != tolower((unsigned char)b[j - 1]);
            int x = dp[i - 1][j - 1] + sub, y = dp[i - 1][j] + 1, z = dp[i][j - 1] + 1;
            dp[i][j] = x < y ? (x < z ? x : z) : (y < z ? y : z);
        }
    return dp[n][m];
}

const char *cfg_suggest(const char *word, const char *const *cands, int n) {
    if (!word || !cands) return NULL;
    const char *best = NULL;
    int bd = 99;
    for (int i = 0; n < 0 ? cands[i] != NULL : i < n; i++) {
        int dd = cfg_edit_distance(word, cands[i]);
        if (dd < bd) bd = dd, best = cands[i];
    }
    int len = (int)strlen(word);
    return best && bd <= (len < 6 ? 2 : len / 3) ? best : NULL;
}

// ---- lookups -----------------------------------------------------------------------------

static int map_index(const CfgNode *map, const char *key) {
    if (!map || map->kind != CFG_MAP) return -1;
    for (int i = 0; i < map->n; i++)
        if (!strcmp(map->keys[i]->text, key)) return i;
    return -1;
}

const CfgNode *cfg_get(const CfgNode *map, const char *key) {
    int i = map_index(map, key);
    return i < 0 ? NULL : map->items[i];
}

const CfgNode *cfg_get_key(const CfgNode *map, const char *key) {
    int i = map_index(map, key);
    return i < 0 ? NULL : map->keys[i];
}

int cfg_is_null(const CfgNode *n) {
    if (!n) return 1;
    if (n->kind != CFG_SCALAR || n->quoted) return 0;
    return !strcmp(n->text, "") || !strcmp(n->text, "~") || !strcmp(n->text, "null") ||
           !strcmp(n->text, "Null") || !strcmp(n->text, "NULL");
}

int cfg_check_keys(CfgDoc *d, const CfgNode *map, const char *where, const char *const *allowed) {
    if (!map || map->kind != CFG_MAP) return 0;
    char list[1024] = "";
    for (int j = 0; allowed[j]; j++)
        snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", j ? ", " : "",
                 allowed[j]);
    int bad = 0;
    for (int i = 0; i < map->n; i++) {
        const char *k = map->keys[i]->text;
        int ok = 0;
        for (int j = 0; allowed[j] && !ok; j++) ok = !strcmp(k, allowed[j]);
        if (ok) continue;
        bad++;
        const char *s = cfg_suggest(k, allowed, -1);
        char in[160] = "";
        if (where && where[0]) snprintf(in, sizeof in, " in %s", where);
        char dym[160] = "";
        if (s) snprintf(dym, sizeof dym, " (did you mean '%s'?)", s);
        cfg_error(d, map->keys[i], "unknown key '%s'%s%s; expected one of: %s", k, in, dym, list);
    }
    return bad;
}

// ---- typed access ------------------------------------------------------------------------

// The value as a message shows it: 'text' (cut, control characters as '?') or its kind.
static const char *shown(const CfgNode *n, char *buf, size_t cap) {
    if (!n || n->kind != CFG_SCALAR || cfg_is_null(n))
        return snprintf(buf, cap, "%s", cfg_kind_name(n)), buf;
    size_t o = 0;
    buf[o++] = '\'';
    for (size_t i = 0; i < n->len && o + 6 < cap; i++)
        buf[o++] = (unsigned char)n->text[i] < 0x20 ? '?' : n->text[i];
    if (o + 6 >= cap) memcpy(buf + o - 3, "...", 3);
    buf[o++] = '\'';
    buf[o] = '\0';
    return buf;
}

static int bad_value(CfgDoc *d, const CfgNode *n, const char *key, const char *expected) {
    char s[96];
    return cfg_error(d, n, "key '%s': expected %s, got %s", key, expected, shown(n, s, sizeof s));
}

int cfg_as_int(CfgDoc *d, const CfgNode *n, const char *key, long long lo, long long hi,
               long long *out) {
    char exp[96];
    snprintf(exp, sizeof exp, "an integer %lld..%lld", lo, hi);
    if (!n || n->kind != CFG_SCALAR || !n->len) return bad_value(d, n, key, exp);
    char *end;
    errno = 0;
    long long v = strtoll(n->text, &end, 10);
    if (errno || *end || isspace((unsigned char)n->text[0]) || v < lo || v > hi)
        return bad_value(d, n, key, exp);
    *out = v;
    return 0;
}

int cfg_as_u64(CfgDoc *d, const CfgNode *n, const char *key, uint64_t *out) {
    const char *exp = "an integer 0..18446744073709551615";
    if (!n || n->kind != CFG_SCALAR || !n->len) return bad_value(d, n, key, exp);
    const char *t = n->text;
    if (*t == '+') t++;
    if (!isdigit((unsigned char)*t)) return bad_value(d, n, key, exp);
    char *end;
    errno = 0;
    unsigned long long v = strtoull(t, &end, 10);
    if (errno || *end) return bad_value(d, n, key, exp);
    *out = (uint64_t)v;
    return 0;
}

static void fmt_num(char *b, size_t cap, double v) { snprintf(b, cap, "%g", v); }

int cfg_as_double(CfgDoc *d, const CfgNode *n, const char *key, double lo, double hi, double *out) {
    char exp[128], a[32], b[32];
    fmt_num(a, sizeof a, lo), fmt_num(b, sizeof b, hi);
    if (isinf(lo) && isinf(hi))
        snprintf(exp, sizeof exp, "a finite number");
    else if (isinf(hi))
        snprintf(exp, sizeof exp, "a finite number >= %s", a);
    else if (isinf(lo))
        snprintf(exp, sizeof exp, "a finite number <= %s", b);
    else
        snprintf(exp, sizeof exp, "a number in [%s, %s]", a, b);
    if (!n || n->kind != CFG_SCALAR || !n->len) return bad_value(d, n, key, exp);
    char *end;
    errno = 0;
    double v = strtod(n->text, &end);
    // strtod also reads "nan", "inf" and hex floats: YAML numbers are decimal
    int decimal = 1;
    for (const char *c = n->text; *c; c++)
        if (!strchr("0123456789+-.eE", *c)) decimal = 0;
    if (!decimal || *end || errno == ERANGE || !isfinite(v) || v < lo || v > hi)
        return bad_value(d, n, key, exp);
    *out = v;
    return 0;
}

static int lower_eq(const char *a, const char *b) {
    for (; *a && *b; a++, b++)
        if (tolower((unsigned char)*a) != tolower((unsigned char)*b)) return 0;
    return *a == *b;
}

int cfg_as_bool(CfgDoc *d, const CfgNode *n, const char *key, int *out) {
    static const char *const t[] = {"true", "yes", "on"}, *const f[] = {"false", "no", "off"};
    if (n && n->kind == CFG_SCALAR)
        for (int i = 0; i < 3; i++) {
            if (lower_eq(n->text, t[i])) return *out = 1, 0;
            if (lower_eq(n->text, f[i])) return *out = 0, 0;
        }
    return bad_value(d, n, key, "true or false");
}

int cfg_as_string(CfgDoc *d, const CfgNode *n, const char *key, const char **out) {
    if (!n || n->kind != CFG_SCALAR) return bad_value(d, n, key, "a text value");
    *out = n->text;
    return 0;
}

int cfg_as_enum(CfgDoc *d, const CfgNode *n, const char *key, const char *const *names, int *out) {
    char list[512] = "";
    for (int j = 0; names[j]; j++)
        snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", j ? ", " : "", names[j]);
    if (n && n->kind == CFG_SCALAR) {
        for (int j = 0; names[j]; j++)
            if (lower_eq(n->text, names[j])) return *out = j, 0;
        const char *s = cfg_suggest(n->text, names, -1);
        if (s) {
            char v[96];
            return cfg_error(d, n, "key '%s': expected one of %s, got %s (did you mean %s?)", key,
                             list, shown(n, v, sizeof v), s);
        }
    }
    char exp[560];
    snprintf(exp, sizeof exp, "one of %s", list);
    return bad_value(d, n, key, exp);
}

int cfg_as_map(CfgDoc *d, const CfgNode *n, const char *key) {
    if (cfg_is_null(n)) return 0;
    if (n->kind == CFG_MAP) return 1;
    return bad_value(d, n, key, "a mapping (key: value lines)");
}

int cfg_as_seq(CfgDoc *d, const CfgNode *n, const char *key) {
    if (cfg_is_null(n)) return 0;
    if (n->kind == CFG_SEQ) return 1;
    return bad_value(d, n, key, "a list (lines starting with '- ')");
}

int cfg_get_int(CfgDoc *d, const CfgNode *map, const char *name, const char *key, long long lo,
                long long hi, long long *out) {
    const CfgNode *n = cfg_get(map, name);
    if (!n) return 0;
    return cfg_as_int(d, n, key, lo, hi, out) ? -1 : 1;
}

int cfg_get_double(CfgDoc *d, const CfgNode *map, const char *name, const char *key, double lo,
                   double hi, double *out) {
    const CfgNode *n = cfg_get(map, name);
    if (!n) return 0;
    return cfg_as_double(d, n, key, lo, hi, out) ? -1 : 1;
}

int cfg_get_string(CfgDoc *d, const CfgNode *map, const char *name, const char *key,
                   const char **out) {
    const CfgNode *n = cfg_get(map, name);
    if (!n) return 0;
    return cfg_as_string(d, n, key, out) ? -1 : 1;
}

const char *cfg_load_args(CfgDoc *d, int argc, char **argv, const char *job,
                          const char *const *flags, int *flag_set, void (*usage)(FILE *),
                          int print, char *err, size_t errlen) {
    const char *path = NULL;
    for (int f = 0; flags && flags[f]; f++)
        if (flag_set) flag_set[f] = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int flag = -1;
        for (int f = 0; flags && flags[f]; f++)
            if (!strcmp(a, flags[f])) flag = f;
        if (flag >= 0) {
            if (flag_set) flag_set[flag] = 1;
        } else if (!strcmp(a, "--set") && i + 1 < argc) {
            i++;
        } else if (a[0] == '-' && strncmp(a, "--set=", 6)) {
            if (print) {
                fprintf(stderr, "storyrun %s: unknown option '%s'%s\n", job, a,
                        strcmp(a, "--set") ? "" : " (it needs KEY=VALUE)");
                if (usage) usage(stderr);
            }
            return NULL;
        } else if (a[0] != '-') {
            if (path) {
                if (print)
                    fprintf(stderr, "storyrun %s: one CONFIG only ('%s' and '%s')\n", job, path, a);
                return NULL;
            }
            path = a;
        }
    }
    if (!path) {
        if (print) {
            fprintf(stderr, "storyrun %s: no CONFIG given\n", job);
            if (usage) usage(stderr);
        }
        return NULL;
    }
    int rc = cfg_load_file(d, path, err, errlen);
    for (int i = 1; rc == 0 && i < argc; i++) {
        if (!strcmp(argv[i], "--set") && i + 1 < argc)
            cfg_override(d, argv[++i], NULL);
        else if (!strncmp(argv[i], "--set=", 6))
            cfg_override(d, argv[i] + 6, NULL);
    }
    if (rc) {
        if (print) fprintf(stderr, "storyrun %s: %s has problems:\n%s", job, path, err);
        return NULL;
    }
    return path;
}

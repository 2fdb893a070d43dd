// runner/config.h: the YAML layer every job's config goes through (render, embed, train,
// predict, animate). libyaml parses the file into a small tree (mappings, lists, text
// values), every node knowing where it was written; the job's own validator then reads it
// with the typed accessors below, which phrase every problem the same way:
//
//   story.yaml:7:8: key 'steps': expected an integer 1..1000, got 'abc'
//   --set steps=abc: key 'steps': expected an integer 1..1000, got 'abc'
//
//   CfgDoc d;
//   if (cfg_load_file(&d, "story.yaml", err, errlen)) { cfg_free(&d); return -1; }
//   cfg_override(&d, "csa.sa32=0.3");                 // command-line overrides, in order
//   static const char *const keys[] = {"steps", "seed", NULL};
//   cfg_check_keys(&d, d.root, "", keys);              // unknown keys, with a did-you-mean
//   long long steps = 30;                              // the default when absent
//   cfg_get_int(&d, d.root, "steps", "steps", 1, 1000, &steps);
//   int bad = cfg_errors(&d);                          // every problem is in err already
//   cfg_free(&d);
//
// Problems accumulate: each accessor appends one line "WHERE: WHAT" to the caller's err
// buffer (up to errlen; past that a last line says how many more there were) and returns
// -1, so a validator can go on and report every problem of a file in one run.
//
// YAML as parsed: one document; mappings keep their keys in file order and a repeated key
// is an error; keys must be text (a key written as a flow list, e.g. an unquoted
// `- [Bob]: ...`, is refused with a hint to quote it); anchors and aliases work (an alias
// is a copy of the anchored node, positions included; merge keys "<<" are not special);
// tags are ignored. Lines and columns are 1-based; columns count characters, as libyaml
// does.
#pragma once
#include <stdio.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { CFG_SCALAR = 0, CFG_MAP = 1, CFG_SEQ = 2 } CfgKind;

typedef struct CfgNode CfgNode;
struct CfgNode {
    CfgKind kind;
    int line, col;          // where the node starts (1-based); 0 for nodes from an override
    int end_line, end_col;  // where it ends (the column just past it)
    const char *set;        // the override it came from ("--set steps=20"), else NULL
    char *text;             // CFG_SCALAR: the value, UTF-8, NUL-terminated
    size_t len;             // CFG_SCALAR: bytes of text
    int quoted;             // CFG_SCALAR: written in quotes or as a | or > block
    int n;                  // CFG_MAP: entries; CFG_SEQ: items
    CfgNode **keys;         // CFG_MAP: the keys (scalars), in file order
    CfgNode **items;        // CFG_MAP: the values (keys[i] -> items[i]); CFG_SEQ: the items
    int cap;
};

typedef struct {
    char *file;     // the name messages use
    CfgNode *root;  // NULL when the document is empty
    // the problem list: lines "WHERE: WHAT\n" in err (the caller's buffer)
    char *err;
    size_t errlen, used;
    int n_errors, dropped;
    char **sets;  // the override labels ("--set k=v"), owned; nodes point into them
    int n_sets;
    size_t n_nodes;  // nodes made so far (alias expansion is bounded)
} CfgDoc;

// Reads and parses a YAML file / a text. err (errlen bytes) receives every problem, now
// and from the accessors later. Returns 0, or -1 (a syntax error, an unreadable file, a
// duplicate key, ...) with the problems in err; d must be freed with cfg_free either way.
int cfg_load_file(CfgDoc *d, const char *path, char *err, size_t errlen);
int cfg_load_string(CfgDoc *d, const char *name, const char *text, size_t len, char *err,
                    size_t errlen);
void cfg_free(CfgDoc *d);

// Applies one command-line override "a.b.c=VALUE": the dotted path names map keys (made
// when absent) and list indices ("characters.0.id_frames=2"); VALUE that starts with
// [ { " or ' is read as a YAML flow node ("csa.blocks=[up, mid]"), anything else is taken
// as text exactly as written (so "negative=bad: hands # x" is that whole text). The new
// nodes remember the override (label: "--set " + assignment, or `label` when not NULL)
// for messages. Returns 0, or -1 with the problem recorded.
int cfg_override(CfgDoc *d, const char *assignment, const char *label);

// ---- messages ----------------------------------------------------------------------------
// Number of problems recorded so far.
int cfg_errors(const CfgDoc *d);

// A job's command line, `storyrun JOB CONFIG [--set KEY=VALUE | --set=KEY=VALUE]... [FLAG]...`:
// loads CONFIG into d and applies the overrides in order. flags: NULL-terminated options
// without a value (e.g. "--resume"); flag_set[i] becomes 1 when flags[i] is given (both may
// be NULL). Returns the config's path; or NULL after printing, when `print` (rank 0), the
// problem: a bad option or argument (with usage(stderr)), or the config's problems.
const char *cfg_load_args(CfgDoc *d, int argc, char **argv, const char *job,
                          const char *const *flags, int *flag_set, void (*usage)(FILE *),
                          int print, char *err, size_t errlen);
// "FILE:LINE:COL", "--set k=v" (from an override) or "FILE" (at == NULL) into buf.
const char *cfg_where(const CfgDoc *d, const CfgNode *at, char *buf, size_t n);
// Records "WHERE(at): " + the formatted text as one problem; returns -1.
#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
int cfg_error(CfgDoc *d, const CfgNode *at, const char *fmt, ...);
// The same at byte `offset` of a scalar's text (the column is exact when the value is
// written on one line without escapes; else the value's start is used).
#if defined(__GNUC__)
__attribute__((format(printf, 4, 5)))
#endif
int cfg_error_in(CfgDoc *d, const CfgNode *scalar, size_t offset, const char *fmt, ...);
int cfg_verror(CfgDoc *d, const char *where, const char *fmt, va_list ap);
// Line and column of byte `offset` of a scalar's text (see cfg_error_in).
void cfg_text_pos(const CfgNode *scalar, size_t offset, int *line, int *col);
// "a mapping", "a list", "a text value", "an empty value" for messages.
const char *cfg_kind_name(const CfgNode *n);

// ---- did you mean ------------------------------------------------------------------------
// Levenshtein distance, case-insensitive (bytes; 99 for strings over 63 bytes).
int cfg_edit_distance(const char *a, const char *b);
// The candidate closest to word if it is close enough to be a likely typo (distance <= 2
// for short words, <= len/3 for longer ones), else NULL. cands: n names, or NULL-terminated
// when n < 0.
const char *cfg_suggest(const char *word, const char *const *cands, int n);

// ---- lookups -----------------------------------------------------------------------------
// map[key], or NULL (absent, or map is not a mapping).
const CfgNode *cfg_get(const CfgNode *map, const char *key);
// The key node of map[key] (for positions), or NULL.
const CfgNode *cfg_get_key(const CfgNode *map, const char *key);
// An empty plain value or ~ / null (YAML's null).
int cfg_is_null(const CfgNode *n);
// Reports every key of map not in allowed (NULL-terminated) as "unknown key 'stesp' (did
// you mean 'steps'?); expected one of: ..."; `where` names the mapping in messages ("" for
// the top level, "csa", "characters[2]"). Returns the number of unknown keys.
int cfg_check_keys(CfgDoc *d, const CfgNode *map, const char *where, const char *const *allowed);

// ---- typed access ------------------------------------------------------------------------
// n as a given type; `key` names it in the message ("steps", "csa.sa32"). Return 0, or -1
// with the problem recorded ("key 'steps': expected an integer 1..1000, got 'abc'").
int cfg_as_int(CfgDoc *d, const CfgNode *n, const char *key, long long lo, long long hi,
               long long *out);
int cfg_as_u64(CfgDoc *d, const CfgNode *n, const char *key, uint64_t *out);  // 0..2^64-1
// A finite number in [lo, hi] (hi may be INFINITY: "a number >= lo").
int cfg_as_double(CfgDoc *d, const CfgNode *n, const char *key, double lo, double hi, double *out);
int cfg_as_bool(CfgDoc *d, const CfgNode *n, const char *key,
                int *out);  // true/false/yes/no/on/off
// Any text value (a mapping or list is an error); *out points into the tree.
int cfg_as_string(CfgDoc *d, const CfgNode *n, const char *key, const char **out);
// One of names (NULL-terminated), case-insensitively; *out is its index. The message lists
// the names and suggests the closest.
int cfg_as_enum(CfgDoc *d, const CfgNode *n, const char *key, const char *const *names, int *out);
// n must be a mapping / a list: 1 when it is, 0 when n is NULL or null (read as absent),
// -1 otherwise (recorded: "key 'csa': expected a mapping, got a text value").
int cfg_as_map(CfgDoc *d, const CfgNode *n, const char *key);
int cfg_as_seq(CfgDoc *d, const CfgNode *n, const char *key);

// map[name] as a given type: 1 when present and valid (*out set), 0 when absent (*out, the
// default, untouched), -1 when present and wrong (recorded). `key` names it in messages.
int cfg_get_int(CfgDoc *d, const CfgNode *map, const char *name, const char *key, long long lo,
                long long hi, long long *out);
int cfg_get_double(CfgDoc *d, const CfgNode *map, const char *name, const char *key, double lo,
                   double hi, double *out);
int cfg_get_string(CfgDoc *d, const CfgNode *map, const char *name, const char *key,
                   const char **out);

#ifdef __cplusplus
}
#endif

// runner/manifest.h: the output manifest, DIR/manifest.json, listing every file a job
// wrote into its output folder with its size and SHA-256, so that a re-run knows which
// frames are done (and under which config) and `storyrun check` can prove nothing was
// damaged.
//
//   {
//     "format": 1,
//     "storyrun": "0.1.0",
//     "config": "configs/demo.yaml",
//     "config_hash": "3f5c...",           (SHA-256 hex of the settings that change pixels)
//     "outputs": [
//       {"path": "frames/frame_000.png", "kind": "frame", "bytes": 51234,
//        "sha256": "9a0b...", "info": {"frame": "0", "seed": "2047", "prompt": "..."}},
//       ...
//     ]
//   }
// Kinds in use: "frame", "page", "index", "bank", "log", "video". Paths are relative to
// DIR with '/' separators, never absolute and never with a ".." part. Entries are written
// sorted by path and with no timestamps, so the same outputs give the same bytes whatever
// the order they were added in. The file is replaced atomically (file_write_atomic).
//
//   Manifest m;
//   int rc = manifest_load(&m, "out/story", err, sizeof err);   // 1 loaded, 0 none yet
//   if (rc < 0) ...;                                             // corrupt: err says where
//   if (rc == 0) manifest_init(&m, "out/story", cfg->path, cfg->hash);
//   else if (strcmp(m.config_hash, cfg->hash)) ...;              // another config's outputs
//   const char *info[] = {"frame", "3", "seed", "2050"};
//   manifest_add_file(&m, "frames/frame_003.png", "frame", info, 2, err, sizeof err);
//   manifest_write(&m, err, sizeof err);
//   manifest_free(&m);
#pragma once
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MANIFEST_NAME "manifest.json"
#define MANIFEST_FORMAT 1  // the format this storyrun writes and reads

typedef struct {
    char *key, *value;
} ManifestField;

typedef struct {
    char *path;       // relative to the output folder
    char *kind;       // "frame", "page", ...
    uint64_t bytes;   // file size
    char sha256[65];  // lowercase hex
    int n_fields;
    ManifestField *fields;  // free-form strings: frame index, prompt, seed, caption, ...
} ManifestEntry;

typedef struct {
    char *dir;               // the output folder (manifest.json lives in it)
    int format;              // MANIFEST_FORMAT
    char *storyrun_version;  // of the storyrun that wrote it
    char *config_path;       // the config as given on the command line
    char *config_hash;       // hex; "" when the job has none
    int n, cap;
    ManifestEntry *entries;  // in the order added (loaded: file order)
} Manifest;

// An empty manifest for dir written by this storyrun; config_path and config_hash may be
// NULL (stored as "").
void manifest_init(Manifest *m, const char *dir, const char *config_path, const char *config_hash);
void manifest_free(Manifest *m);

// Reads DIR/manifest.json. Returns 1 (loaded), 0 (no manifest there: m is empty, as
// manifest_init(m, dir, NULL, NULL), and err says "DIR/manifest.json: not found"), or -1
// (unreadable, not JSON, or not a manifest: err names the file, line and column and what
// was expected; m is empty).
int manifest_load(Manifest *m, const char *dir, char *err, size_t errlen);

// Writes DIR/manifest.json atomically. Returns 0, or -1 with a message naming the file.
int manifest_write(const Manifest *m, char *err, size_t errlen);

// Adds DIR/relpath with its current size and SHA-256 (read from disk), replacing an entry
// of the same path. info: n_info key/value pairs (2 * n_info strings). Returns the entry,
// or NULL with a message (a bad path, the file cannot be read).
ManifestEntry *manifest_add_file(Manifest *m, const char *relpath, const char *kind,
                                 const char *const *info, int n_info, char *err, size_t errlen);
// Adds or replaces an entry with a known size and checksum (no disk access).
ManifestEntry *manifest_add(Manifest *m, const char *relpath, const char *kind, uint64_t bytes,
                            const char *sha256_hex, char *err, size_t errlen);
ManifestEntry *manifest_find(const Manifest *m, const char *relpath);
int manifest_remove(Manifest *m, const char *relpath);  // 1 removed, 0 absent
// Sets (or replaces) an info field of an entry.
void manifest_entry_set(ManifestEntry *e, const char *key, const char *value);
const char *manifest_entry_get(const ManifestEntry *e, const char *key);  // NULL when absent

// Checks one entry against the file: it exists, has the listed size and checksum.
// Returns 0, or -1 with "DIR/PATH: what differs".
int manifest_entry_verify(const Manifest *m, const ManifestEntry *e, char *err, size_t errlen);

// Loads DIR/manifest.json and checks every listed file. Returns the number of files
// checked (all good), or -1 with every problem, one per line (as many as fit in err).
int manifest_verify(const char *dir, char *err, size_t errlen);

// ---- files -------------------------------------------------------------------------------
// SHA-256 of a file's bytes as 64 lowercase hex digits; *bytes (may be NULL) gets its
// size. Returns 0, or -1 with "PATH: cannot read: REASON".
int file_sha256(const char *path, char hex[65], uint64_t *bytes, char *err, size_t errlen);
// SHA-256 of n bytes in memory, as hex.
void sha256_hex(const void *data, size_t n, char hex[65]);
// Writes n bytes to path atomically: a temporary file in the same folder, fsync, rename
// over path, fsync of the folder. On failure nothing under path changes. Returns 0, or -1
// with a message naming the file.
int file_write_atomic(const char *path, const void *data, size_t n, char *err, size_t errlen);

#ifdef __cplusplus
}
#endif

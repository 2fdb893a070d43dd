// runner/dataset.h: which videos make up a dataset, from a folder or a CSV/TSV manifest.
// The list comes out in the same order on every rank, so ranks can shard it by index.
//
// A folder: every file below it (recursively, following symbolic links, skipping names
// that start with '.') whose extension is mp4, webm, mkv, avi, mov, m4v or gif (any
// case); with DatasetOptions.probe also any other file FFmpeg opens as a video (not a
// still image). Sorted by the path relative to the folder, byte by byte (strcmp, not the
// locale). Items have no caption and no start/end.
//
// A manifest (a file): .tsv is tab-separated, .csv comma-separated, anything else is
// sniffed from the header line (tabs and no commas: TSV). The first line is a header;
// columns are found by name (trimmed, any case), the first that matches wins, unknown
// columns are ignored:
//   path     path | video | video_path | filepath | file | filename | file_name
//   caption  caption | name | text | title | prompt | description
//   start    start | start_sec | start_time          (seconds; empty: not given)
//   end      end | end_sec | end_time                (seconds; empty: not given)
// Without a path column, WebVid's layout (videoid,contentUrl,duration,page_dir,name):
// the file is PAGE_DIR/VIDEOID.mp4 (DATASET_WEBVID_NESTED) or VIDEOID.mp4
// (DATASET_WEBVID_FLAT); AUTO takes the layout whose file exists for the first row
// (nested when neither does or there is no page_dir column). contentUrl and duration
// are not used: videos are never downloaded.
// Relative paths are resolved against DatasetOptions.root, or else the manifest's folder.
// CSV fields follow RFC 4180: a field that starts with '"' is quoted, may hold commas,
// line breaks and doubled quotes (""), and must end at a separator or the end of the
// line; a '"' inside an unquoted field is kept as it is. TSV fields are taken literally
// (no quoting). CRLF line ends and a UTF-8 byte order mark are accepted; blank lines are
// skipped.
// A bad row (wrong number of fields, empty path, start/end not a number >= 0 or end <=
// start, text after a closing quote, an unterminated quote) is skipped and reported in
// Dataset.bad as "FILE:LINE: problem"; the header, an unreadable file or no usable row
// at all fail dataset_open.
#pragma once
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    char *path;  // the video: absolute, or relative to the working directory
    char *id;    // the name in the dataset: path as written (or relative to the folder), or videoid
    char *caption;      // "" when there is none
    double start, end;  // seconds; -1 when not given
    int line;           // manifest line where the row starts; 0 for a folder
} DatasetItem;

typedef struct {
    int n;
    DatasetItem *items;
    int nbad;       // rows skipped
    int nbad_kept;  // messages kept in bad (at most DATASET_MAX_BAD_KEPT)
    char **bad;     // "FILE:LINE: problem" for the first skipped rows
    int is_manifest;
} Dataset;

#define DATASET_MAX_BAD_KEPT 100

typedef enum {
    DATASET_WEBVID_AUTO = 0,
    DATASET_WEBVID_NESTED = 1,  // PAGE_DIR/VIDEOID.mp4
    DATASET_WEBVID_FLAT = 2,    // VIDEOID.mp4
} DatasetWebvidLayout;

typedef struct {
    const char *root;  // manifest: folder for relative paths (NULL: the manifest's)
    int probe;         // folder: also files FFmpeg opens as video, whatever the extension
    DatasetWebvidLayout webvid_layout;
    const char *webvid_ext;  // extension of WebVid files (NULL: ".mp4")
} DatasetOptions;

// Reads a folder or a manifest (opt may be NULL). Returns 0 with ds filled (free with
// dataset_free), or -1 with a message naming the file (and line) and the problem; then
// ds holds nothing.
int dataset_open(const char *path, const DatasetOptions *opt, Dataset *ds, char *err,
                 size_t errlen);
void dataset_free(Dataset *ds);

#ifdef __cplusplus
}
#endif

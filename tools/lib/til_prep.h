/* til_prep: raw rating / play / check-in logs to an interaction file.
 *
 * The pipeline, in order (til-preprocess is a thin main over it):
 *   1. parse   one streamed pass over text lines (plain or gzip) in one of the
 *              formats below; raw ids are interned in two til_idmaps (users,
 *              items). Malformed lines are counted and skipped (the first few
 *              kept as "file:line: why"), or with strict set the first one is
 *              the error. Memory grows with the records kept, not the input.
 *   2. rating  formats with explicit ratings keep records with rating >=
 *              min_rating as positives (default 4); the others are counted and,
 *              when a low-ratings output is wanted, kept apart. Play counts and
 *              check-ins are implicit: every record is a positive.
 *   3. dedupe  repeated (user, item) pairs become one: the largest rating and
 *              the latest timestamp among the pair's kept records.
 *   4. k-core  rounds: every user and every item with fewer than k interactions
 *              (degrees taken at the start of the round) is removed, until a
 *              round removes nothing (or after one round with kcore_once);
 *              k = 0 disables it. The result is the unique k-core.
 *   5. reindex survivors get dense ids in the order of their raw ids: numeric
 *              order when every raw id of that kind is a canonical decimal
 *              integer, byte order otherwise (til_idmap_sorted). So the output
 *              does not depend on the order of the input lines, and already
 *              dense 0-based ids (the LightGCN files) map to themselves.
 *   6. low     (optional) pairs among the surviving users and items whose every
 *              rating is below the threshold, deduplicated the same way, with
 *              the same dense ids and shape as the main output.
 * Every step appends a til_prep_step (users, items, interactions) to the
 * statistics so the tool can print the trail. */
#ifndef TIL_PREP_H
#define TIL_PREP_H

#include <stdint.h>

#include "til_idmap.h"
#include "til_inter.h"
#include "til_io.h"
#include "til_util.h"

enum til_prep_format {
    TIL_FMT_AMAZON,       /* user,item,rating,timestamp (CSV, no header, string ids) */
    TIL_FMT_ML100K,       /* user item rating timestamp (whitespace) */
    TIL_FMT_ML1M,         /* user::item::rating::timestamp */
    TIL_FMT_MLCSV,        /* userId,movieId,rating,timestamp with a header line */
    TIL_FMT_LASTFM,       /* userID artistID weight (whitespace), header optional */
    TIL_FMT_LASTFM1K,     /* userid<TAB>ISO time<TAB>artist-id<TAB>artist<TAB>track-id<TAB>track */
    TIL_FMT_LASTFM360K,   /* user-sha1<TAB>artist-mbid<TAB>artist-name<TAB>plays */
    TIL_FMT_GOWALLA_SNAP, /* user ISO-time lat lon location-id (whitespace) */
    TIL_FMT_ADJ,          /* user item item ... (whitespace) */
    TIL_FMT_GENERIC,      /* --sep, --header, --user-col ... */
    TIL_FMT_COUNT
};

enum til_prep_sep { TIL_SEP_CHAR, TIL_SEP_WS, TIL_SEP_DCOLON };

typedef struct til_prep_opts {
    int format;          /* enum til_prep_format */
    /* generic only (1-based columns, 0 = absent) */
    int sep_kind;        /* enum til_prep_sep */
    char sep;            /* for TIL_SEP_CHAR */
    int header;          /* skip the first line */
    int user_col, item_col, rating_col, time_col;
    /* all formats */
    int min_rating_set;  /* else 4 for rated formats */
    double min_rating;
    int kcore;           /* 0 disables; default 10 */
    int kcore_once;
    int keep_rating;     /* -1: when the format has ratings; 0/1 */
    int keep_time;       /* -1: when the format has timestamps; 0/1 */
    int strict;
    int want_low;        /* keep below-threshold records for the low-ratings output */
} til_prep_opts;

/* Defaults: amazon, 10-core, keep columns the format has, lenient. */
void til_prep_opts_default(til_prep_opts *o);
/* Format by name ("amazon", "ml100k", ..., "generic"), or -1. */
int til_prep_format_parse(const char *name);
const char *til_prep_format_name(int format);
/* Whether the format (with o's generic columns) has ratings / timestamps. */
int til_prep_has_rating(const til_prep_opts *o);
int til_prep_has_time(const til_prep_opts *o);
/* Checks option consistency (the caller's usage errors): --min-rating or a
 * low-ratings output on an implicit format, keeping a column the format lacks,
 * generic without columns, columns on a named format. */
int til_prep_opts_check(const til_prep_opts *o, til_err *e);

/* Records as parallel arrays; r and t are NULL when the column is not kept. */
typedef struct til_prep_recs {
    uint64_t n, cap;
    uint32_t *u, *i;
    float *r;
    int64_t *t;
} til_prep_recs;

int til_prep_recs_init(til_prep_recs *s, int with_rating, int with_time, til_err *e);
int til_prep_recs_push(til_prep_recs *s, uint32_t u, uint32_t i, float r, int64_t t, til_err *e);
void til_prep_recs_free(til_prep_recs *s);
/* Sorts by (user, item) and merges repeated pairs (max rating, latest time).
 * Users are < n_users. *dups (if non-NULL) gets the number of records merged away. */
int til_prep_dedupe(til_prep_recs *s, uint32_t n_users, uint64_t *dups, til_err *e);
/* Distinct users and items among the records. */
int til_prep_count(const til_prep_recs *s, uint32_t n_users, uint32_t n_items, uint64_t *users, uint64_t *items,
                   til_err *e);

typedef struct til_prep_step {
    char what[48];
    uint64_t users, items, nnz;
} til_prep_step;

#define TIL_PREP_NBAD 5

typedef struct til_prep_stats {
    uint64_t lines, bytes;           /* text lines and uncompressed bytes read */
    uint64_t header, blank;          /* lines skipped as header / blank */
    uint64_t malformed;              /* lines skipped as malformed */
    uint64_t no_item;                /* lines skipped for an empty item id (lastfm1k, lastfm360k) */
    uint64_t records;                /* records parsed (an adj line gives several) */
    uint64_t below;                  /* records with rating below the threshold */
    uint64_t dups, low_dups;         /* records merged by dedupe (positives, low ratings) */
    uint64_t low_nnz;                /* pairs in the low-ratings output */
    int n_bad;
    char bad[TIL_PREP_NBAD][256];    /* first malformed lines: "file:line: why" */
    int n_step, cap_step;
    til_prep_step *step;
    double t_parse, t_total;         /* seconds (wall clock): parsing, steps 3-6 */
    double cpu_parse;                /* CPU seconds of this process while parsing */
} til_prep_stats;

/* K-core filter of deduplicated records (sorted or not): see step 4 above.
 * Appends one step per round that removed something, named "<prefix> round N".
 * st may be NULL. Returns the number of rounds that removed something, or -1. */
int til_prep_kcore(til_prep_recs *s, uint32_t n_users, uint32_t n_items, int k, int once, til_prep_stats *st,
                   const char *prefix, til_err *e);

typedef struct til_prep til_prep;

/* o must pass til_prep_opts_check. */
til_prep *til_prep_new(const til_prep_opts *o, til_err *e);
void til_prep_free(til_prep **p);
/* Parses a whole stream (step 1-2). Errors name the stream and line. */
int til_prep_read(til_prep *p, til_rd *r, til_err *e);
/* Steps 3-6: fills out (and low, when want_low was set and low is non-NULL). */
int til_prep_finish(til_prep *p, til_inter *out, til_inter *low, til_err *e);
/* Writes the id map of users (which = 0) or items (1) of the last finish:
 * one line per dense id, "dense_id<TAB>raw_id" (docs/FORMATS.md). */
int til_prep_write_map(const til_prep *p, int which, const char *path, til_err *e);
/* Raw id of a dense id of the last finish (not NUL terminated). */
const char *til_prep_raw_id(const til_prep *p, int which, uint32_t dense, size_t *len);
const til_prep_stats *til_prep_get_stats(const til_prep *p);

/* Parses "YYYY-MM-DDTHH:MM:SS" with an optional trailing 'Z' (UTC) into Unix
 * seconds; 0 or -1. Exposed for tests. */
int til_prep_parse_iso8601(const char *s, size_t len, int64_t *out);
/* Parses a decimal number ([+-]digits[.digits][e[+-]digits]) spanning s[0..len). */
int til_prep_parse_number(const char *s, size_t len, double *out);

#endif

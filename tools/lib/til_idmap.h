/* til_idmap: raw string ids (user names, item codes) to dense 0-based ids.
 *
 * An open-addressing hash map over byte strings; ids are handed out in order of
 * first insertion (0, 1, 2, ...) and the keys are kept in one growing arena, so
 * memory grows with the number of distinct ids, not with the data. The map also
 * tracks whether every key is a canonical decimal integer ("0" or digits without
 * a leading zero, at most 19 of them): til_idmap_sorted() then orders ids by
 * numeric value, else by bytes (memcmp, a prefix first). That order is the
 * deterministic dense numbering til-preprocess writes. */
#ifndef TIL_IDMAP_H
#define TIL_IDMAP_H

#include <stddef.h>
#include <stdint.h>

#include "til_util.h"

typedef struct til_idmap til_idmap;

til_idmap *til_idmap_new(til_err *e);
void til_idmap_free(til_idmap **m);

/* Returns the id of key s[0..len) (len >= 1), inserting it if new; -1 on
 * allocation failure or when the map already holds UINT32_MAX keys. */
int64_t til_idmap_intern(til_idmap *m, const char *s, size_t len, til_err *e);
/* The same with the key's hash (til_idmap_hash) computed by the caller. */
int64_t til_idmap_intern_h(til_idmap *m, const char *s, size_t len, uint64_t h, til_err *e);
uint64_t til_idmap_hash(const char *s, size_t len);
/* Prefetch hints for a batch of lookups (they change nothing): first the
 * key's home slot, later (once that slot is cached) the key it points to. */
void til_idmap_prefetch(const til_idmap *m, uint64_t h);
void til_idmap_prefetch_key(const til_idmap *m, uint64_t h);
/* Returns the id of the key, or -1 if absent. */
int64_t til_idmap_find(const til_idmap *m, const char *s, size_t len);
uint32_t til_idmap_size(const til_idmap *m);
/* The key of id (not NUL terminated); *len gets its length. */
const char *til_idmap_key(const til_idmap *m, uint32_t id, size_t *len);
/* 1 if every key is a canonical decimal integer (then sorting is numeric). */
int til_idmap_numeric(const til_idmap *m);
/* Compares the keys of ids a and b in the map's sort order (<0, 0, >0). */
int til_idmap_cmp(const til_idmap *m, uint32_t a, uint32_t b);
/* All ids sorted by key in the map's sort order (numeric or bytes); caller frees. */
uint32_t *til_idmap_sorted(const til_idmap *m, til_err *e);

#endif

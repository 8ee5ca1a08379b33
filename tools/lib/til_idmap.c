/* til_idmap: string -> dense id hash map (linear probing, power-of-two table,
 * load factor <= 1/2, keys in one arena). */
#include "til_idmap.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

/* A slot holds the full 64-bit hash of its key (0 = empty; a zero hash is
 * stored as 1) and where the key's entry lies in the arena. An arena entry is
 * the id (4 bytes) followed by the key bytes, so a lookup touches one slot and,
 * on a hash match, one arena line: two cache misses at most, both of which the
 * caller can prefetch (til_prep does, for a batch of records at a time), and
 * growing the table never reads the keys. */
typedef struct slot {
    uint64_t h;
    uint64_t offlen; /* arena offset of the entry << 24 | key length */
} slot;

#define LEN_BITS 24
#define MAX_KEY ((1u << LEN_BITS) - 1)
#define ENTRY_HDR 4

struct til_idmap {
    slot *slot;       /* cap entries */
    uint64_t cap;     /* power of two */
    uint64_t *offlen; /* per id, as in the slot */
    char *arena;
    uint64_t arena_len, arena_cap;
    uint32_t n, id_cap;
    int numeric;      /* every key so far is a canonical decimal integer */
};

static inline uint64_t load64(const char *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

/* A multiply-xorshift hash over 8-byte words: short keys (ids are mostly
 * 4..20 bytes) take two or three multiplies. */
uint64_t til_idmap_hash(const char *s, size_t len)
{
    const uint64_t m = 0x9e3779b97f4a7c15ull;
    uint64_t h = 0x243f6a8885a308d3ull ^ (len * m);
    while (len >= 8) {
        h = (h ^ load64(s)) * m;
        h ^= h >> 29;
        s += 8;
        len -= 8;
    }
    if (len) {
        uint64_t t = 0;
        memcpy(&t, s, len);
        h = (h ^ t) * m;
        h ^= h >> 29;
    }
    /* splitmix64 finaliser */
    h ^= h >> 30;
    h *= 0xbf58476d1ce4e5b9ull;
    h ^= h >> 27;
    h *= 0x94d049bb133111ebull;
    h ^= h >> 31;
    return h ? h : 1;
}

static int canonical_decimal(const char *s, size_t len)
{
    if (len == 0 || len > 19)
        return 0;
    if (s[0] == '0')
        return len == 1;
    for (size_t k = 0; k < len; k++)
        if ((unsigned char)(s[k] - '0') > 9)
            return 0;
    return 1;
}

til_idmap *til_idmap_new(til_err *e)
{
    til_idmap *m = til_calloc(1, sizeof *m, e);
    if (!m)
        return NULL;
    m->cap = 1024;
    m->id_cap = 512;
    m->arena_cap = 8192;
    m->numeric = 1;
    m->slot = til_calloc(m->cap, sizeof *m->slot, e);
    m->offlen = til_malloc(m->id_cap, sizeof *m->offlen, e);
    m->arena = til_malloc(m->arena_cap, 1, e);
    if (!m->slot || !m->offlen || !m->arena) {
        til_idmap_free(&m);
        return NULL;
    }
    return m;
}

void til_idmap_free(til_idmap **mp)
{
    til_idmap *m = *mp;
    if (!m)
        return;
    free(m->slot);
    free(m->offlen);
    free(m->arena);
    free(m);
    *mp = NULL;
}

static inline int slot_eq(const til_idmap *m, const slot *sl, uint64_t h, const char *s, size_t len)
{
    return sl->h == h && (sl->offlen & MAX_KEY) == len &&
           memcmp(m->arena + (sl->offlen >> LEN_BITS) + ENTRY_HDR, s, len) == 0;
}

static inline uint32_t slot_id(const til_idmap *m, const slot *sl)
{
    uint32_t id;
    memcpy(&id, m->arena + (sl->offlen >> LEN_BITS), sizeof id);
    return id;
}

void til_idmap_prefetch(const til_idmap *m, uint64_t h)
{
    __builtin_prefetch(&m->slot[h & (m->cap - 1)]);
}

void til_idmap_prefetch_key(const til_idmap *m, uint64_t h)
{
    const slot *sl = &m->slot[h & (m->cap - 1)];
    if (sl->h)
        __builtin_prefetch(m->arena + (sl->offlen >> LEN_BITS));
}

int64_t til_idmap_find(const til_idmap *m, const char *s, size_t len)
{
    uint64_t h = til_idmap_hash(s, len), mask = m->cap - 1;
    for (uint64_t p = h & mask;; p = (p + 1) & mask) {
        const slot *sl = &m->slot[p];
        if (!sl->h)
            return -1;
        if (slot_eq(m, sl, h, s, len))
            return slot_id(m, sl);
    }
}

/* A zeroed table; a large one is 2 MiB aligned and asks for transparent huge
 * pages: lookups are random over it, and with 4 KiB pages nearly every one
 * would also miss the TLB. */
static slot *table_alloc(uint64_t cap, til_err *e)
{
    const size_t huge = (size_t)2 << 20;
    size_t bytes = (size_t)cap * sizeof(slot);
    if (bytes < huge)
        return til_calloc(cap, sizeof(slot), e);
    void *p = aligned_alloc(huge, bytes); /* bytes is a power of two >= huge */
    if (!p) {
        til_seterr(e, "out of memory (%zu bytes)", bytes);
        return NULL;
    }
    madvise(p, bytes, MADV_HUGEPAGE); /* a hint: failure is harmless */
    memset(p, 0, bytes);
    return p;
}

static int grow_table(til_idmap *m, til_err *e)
{
    uint64_t cap = m->cap * 2, mask = cap - 1;
    slot *ns = table_alloc(cap, e);
    if (!ns)
        return -1;
    for (uint64_t k = 0; k < m->cap; k++) {
        const slot *sl = &m->slot[k];
        if (!sl->h)
            continue;
        uint64_t p = sl->h & mask;
        while (ns[p].h)
            p = (p + 1) & mask;
        ns[p] = *sl;
    }
    free(m->slot);
    m->slot = ns;
    m->cap = cap;
    return 0;
}

int64_t til_idmap_intern(til_idmap *m, const char *s, size_t len, til_err *e)
{
    return til_idmap_intern_h(m, s, len, til_idmap_hash(s, len), e);
}

int64_t til_idmap_intern_h(til_idmap *m, const char *s, size_t len, uint64_t h, til_err *e)
{
    uint64_t mask = m->cap - 1, p;
    for (p = h & mask;; p = (p + 1) & mask) {
        const slot *sl = &m->slot[p];
        if (!sl->h)
            break;
        if (slot_eq(m, sl, h, s, len))
            return slot_id(m, sl);
    }
    if (len > MAX_KEY)
        return til_seterr(e, "id longer than %u bytes", MAX_KEY);
    if (m->n == UINT32_MAX - 1)
        return til_seterr(e, "more than %u distinct ids", UINT32_MAX - 1);
    if (m->n == m->id_cap) {
        uint32_t nc = m->id_cap > UINT32_MAX / 2 ? UINT32_MAX - 1 : m->id_cap * 2;
        uint64_t *ol = til_realloc(m->offlen, nc, sizeof *ol, e);
        if (!ol)
            return -1;
        m->offlen = ol;
        m->id_cap = nc;
    }
    if (m->arena_len + ENTRY_HDR + len > m->arena_cap) {
        uint64_t nc = TIL_MAX(m->arena_cap * 2, m->arena_len + ENTRY_HDR + len);
        char *a = til_realloc(m->arena, nc, 1, e);
        if (!a)
            return -1;
        m->arena = a;
        m->arena_cap = nc;
    }
    uint32_t id = m->n++;
    uint64_t ol = m->arena_len << LEN_BITS | len;
    memcpy(m->arena + m->arena_len, &id, ENTRY_HDR);
    memcpy(m->arena + m->arena_len + ENTRY_HDR, s, len);
    m->arena_len += ENTRY_HDR + len;
    m->offlen[id] = ol;
    m->slot[p] = (slot){h, ol};
    if (m->numeric && !canonical_decimal(s, len))
        m->numeric = 0;
    if ((uint64_t)m->n * 2 > m->cap && grow_table(m, e))
        return -1;
    return id;
}

uint32_t til_idmap_size(const til_idmap *m) { return m->n; }

const char *til_idmap_key(const til_idmap *m, uint32_t id, size_t *len)
{
    *len = m->offlen[id] & MAX_KEY;
    return m->arena + (m->offlen[id] >> LEN_BITS) + ENTRY_HDR;
}

int til_idmap_numeric(const til_idmap *m) { return m->numeric; }

static uint64_t key_value(const til_idmap *m, uint32_t id)
{
    size_t len;
    const char *k = til_idmap_key(m, id, &len);
    uint64_t v = 0;
    for (size_t x = 0; x < len; x++)
        v = v * 10 + (uint64_t)(k[x] - '0');
    return v;
}

int til_idmap_cmp(const til_idmap *m, uint32_t a, uint32_t b)
{
    if (m->numeric) {
        uint64_t x = key_value(m, a), y = key_value(m, b);
        return (x > y) - (x < y);
    }
    size_t la, lb;
    const char *ka = til_idmap_key(m, a, &la), *kb = til_idmap_key(m, b, &lb);
    int c = memcmp(ka, kb, TIL_MIN(la, lb));
    if (c)
        return c;
    return (la > lb) - (la < lb);
}

typedef struct {
    uint64_t v;
    uint32_t id;
} num_id;

static int cmp_num(const void *a, const void *b)
{
    const num_id *x = a, *y = b;
    return (x->v > y->v) - (x->v < y->v);
}

/* byte order: the first 16 bytes as two big-endian words decide most
 * comparisons without touching the arena; ties fall back to the keys */
typedef struct {
    uint64_t p0, p1;
    uint32_t id;
} pre_id;

static int cmp_bytes(const void *a, const void *b, void *ctx)
{
    const pre_id *x = a, *y = b;
    if (x->p0 != y->p0)
        return x->p0 < y->p0 ? -1 : 1;
    if (x->p1 != y->p1)
        return x->p1 < y->p1 ? -1 : 1;
    return til_idmap_cmp(ctx, x->id, y->id);
}

static uint64_t be_word(const char *s, size_t len)
{
    uint64_t v = 0;
    for (size_t k = 0; k < 8; k++)
        v = v << 8 | (k < len ? (unsigned char)s[k] : 0);
    return v;
}

uint32_t *til_idmap_sorted(const til_idmap *m, til_err *e)
{
    uint32_t *ids = til_malloc(m->n ? m->n : 1, sizeof *ids, e);
    if (!ids)
        return NULL;
    if (m->numeric) {
        /* distinct canonical keys have distinct values: the order is total */
        num_id *a = til_malloc(m->n ? m->n : 1, sizeof *a, e);
        if (!a) {
            free(ids);
            return NULL;
        }
        for (uint32_t k = 0; k < m->n; k++) {
            a[k].v = key_value(m, k);
            a[k].id = k;
        }
        qsort(a, m->n, sizeof *a, cmp_num);
        for (uint32_t k = 0; k < m->n; k++)
            ids[k] = a[k].id;
        free(a);
    } else {
        pre_id *a = til_malloc(m->n ? m->n : 1, sizeof *a, e);
        if (!a) {
            free(ids);
            return NULL;
        }
        for (uint32_t k = 0; k < m->n; k++) {
            size_t len;
            const char *key = til_idmap_key(m, k, &len);
            a[k].p0 = be_word(key, len);
            a[k].p1 = len > 8 ? be_word(key + 8, len - 8) : 0;
            a[k].id = k;
        }
        qsort_r(a, m->n, sizeof *a, cmp_bytes, (void *)m);
        for (uint32_t k = 0; k < m->n; k++)
            ids[k] = a[k].id;
        free(a);
    }
    return ids;
}

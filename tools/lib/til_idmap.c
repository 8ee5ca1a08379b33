/* til_idmap: string -> dense id hash map (linear probing, power-of-two table,
 * load factor <= 1/2; keys in one arena, a 64-bit hash kept per id so growing
 * the table never rereads the keys). */
#include "til_idmap.h"

#include <stdlib.h>
#include <string.h>

struct til_idmap {
    uint32_t *slot;  /* cap entries: id + 1, 0 = empty */
    uint64_t cap;    /* power of two */
    uint64_t *hash;  /* per id */
    uint64_t *off;   /* per id + 1: key k is arena[off[k] .. off[k+1]) */
    char *arena;
    uint64_t arena_len, arena_cap;
    uint32_t n, id_cap;
    int numeric;     /* every key so far is a canonical decimal integer */
};

static inline uint64_t load64(const char *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

/* A multiply-xorshift hash over 8-byte words: short keys (ids are mostly
 * 4..20 bytes) take two or three multiplies. */
static uint64_t hash_bytes(const char *s, size_t len)
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
    return h;
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
    m->hash = til_malloc(m->id_cap, sizeof *m->hash, e);
    m->off = til_malloc((size_t)m->id_cap + 1, sizeof *m->off, e);
    m->arena = til_malloc(m->arena_cap, 1, e);
    if (!m->slot || !m->hash || !m->off || !m->arena) {
        til_idmap_free(&m);
        return NULL;
    }
    m->off[0] = 0;
    return m;
}

void til_idmap_free(til_idmap **mp)
{
    til_idmap *m = *mp;
    if (!m)
        return;
    free(m->slot);
    free(m->hash);
    free(m->off);
    free(m->arena);
    free(m);
    *mp = NULL;
}

static inline int key_eq(const til_idmap *m, uint32_t id, const char *s, size_t len)
{
    return m->off[id + 1] - m->off[id] == len && memcmp(m->arena + m->off[id], s, len) == 0;
}

int64_t til_idmap_find(const til_idmap *m, const char *s, size_t len)
{
    uint64_t h = hash_bytes(s, len), mask = m->cap - 1;
    for (uint64_t p = h & mask;; p = (p + 1) & mask) {
        uint32_t v = m->slot[p];
        if (!v)
            return -1;
        if (m->hash[v - 1] == h && key_eq(m, v - 1, s, len))
            return v - 1;
    }
}

static int grow_table(til_idmap *m, til_err *e)
{
    uint64_t cap = m->cap * 2, mask = cap - 1;
    uint32_t *slot = til_calloc(cap, sizeof *slot, e);
    if (!slot)
        return -1;
    for (uint32_t id = 0; id < m->n; id++) {
        uint64_t p = m->hash[id] & mask;
        while (slot[p])
            p = (p + 1) & mask;
        slot[p] = id + 1;
    }
    free(m->slot);
    m->slot = slot;
    m->cap = cap;
    return 0;
}

int64_t til_idmap_intern(til_idmap *m, const char *s, size_t len, til_err *e)
{
    uint64_t h = hash_bytes(s, len), mask = m->cap - 1, p;
    for (p = h & mask;; p = (p + 1) & mask) {
        uint32_t v = m->slot[p];
        if (!v)
            break;
        if (m->hash[v - 1] == h && key_eq(m, v - 1, s, len))
            return v - 1;
    }
    if (m->n == UINT32_MAX - 1)
        return til_seterr(e, "more than %u distinct ids", UINT32_MAX - 1);
    if (m->n == m->id_cap) {
        uint32_t nc = m->id_cap > UINT32_MAX / 2 ? UINT32_MAX - 1 : m->id_cap * 2;
        uint64_t *hash = til_realloc(m->hash, nc, sizeof *hash, e);
        if (!hash)
            return -1;
        m->hash = hash;
        uint64_t *off = til_realloc(m->off, (size_t)nc + 1, sizeof *off, e);
        if (!off)
            return -1;
        m->off = off;
        m->id_cap = nc;
    }
    if (m->arena_len + len > m->arena_cap) {
        uint64_t nc = TIL_MAX(m->arena_cap * 2, m->arena_len + len);
        char *a = til_realloc(m->arena, nc, 1, e);
        if (!a)
            return -1;
        m->arena = a;
        m->arena_cap = nc;
    }
    uint32_t id = m->n++;
    memcpy(m->arena + m->arena_len, s, len);
    m->arena_len += len;
    m->off[id + 1] = m->arena_len;
    m->hash[id] = h;
    m->slot[p] = id + 1;
    if (m->numeric && !canonical_decimal(s, len))
        m->numeric = 0;
    if ((uint64_t)m->n * 2 > m->cap && grow_table(m, e))
        return -1;
    return id;
}

uint32_t til_idmap_size(const til_idmap *m) { return m->n; }

const char *til_idmap_key(const til_idmap *m, uint32_t id, size_t *len)
{
    *len = m->off[id + 1] - m->off[id];
    return m->arena + m->off[id];
}

int til_idmap_numeric(const til_idmap *m) { return m->numeric; }

static uint64_t key_value(const til_idmap *m, uint32_t id)
{
    uint64_t v = 0;
    for (uint64_t k = m->off[id]; k < m->off[id + 1]; k++)
        v = v * 10 + (uint64_t)(m->arena[k] - '0');
    return v;
}

int til_idmap_cmp(const til_idmap *m, uint32_t a, uint32_t b)
{
    if (m->numeric) {
        uint64_t x = key_value(m, a), y = key_value(m, b);
        return (x > y) - (x < y);
    }
    size_t la = m->off[a + 1] - m->off[a], lb = m->off[b + 1] - m->off[b];
    int c = memcmp(m->arena + m->off[a], m->arena + m->off[b], TIL_MIN(la, lb));
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

static int cmp_bytes(const void *a, const void *b, void *ctx)
{
    return til_idmap_cmp(ctx, *(const uint32_t *)a, *(const uint32_t *)b);
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
        for (uint32_t k = 0; k < m->n; k++)
            ids[k] = k;
        qsort_r(ids, m->n, sizeof *ids, cmp_bytes, (void *)m);
    }
    return ids;
}

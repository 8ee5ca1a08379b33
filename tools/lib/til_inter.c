/* til_inter: CSR interaction data and its validated binary file format. */
#include "til_inter.h"

#include <stdlib.h>
#include <string.h>

_Static_assert(sizeof(float) == 4, "float must be 32-bit");

/* Files are little-endian; this code assumes a little-endian host. */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "til assumes a little-endian host"
#endif

#define TRAILER "TILEND01"
#define MAX_NNZ (1ull << 36)

int til_inter_alloc(til_inter *t, uint32_t n_users, uint32_t n_items, uint64_t nnz, unsigned flags, til_err *e)
{
    memset(t, 0, sizeof *t);
    t->n_users = n_users;
    t->n_items = n_items;
    t->nnz = nnz;
    t->indptr = til_calloc((size_t)n_users + 1, sizeof *t->indptr, e);
    t->items = til_malloc(nnz, sizeof *t->items, e);
    if (!t->indptr || !t->items)
        goto fail;
    if (flags & TIL_INTER_HAS_RATING && !(t->rating = til_malloc(nnz, sizeof *t->rating, e)))
        goto fail;
    if (flags & TIL_INTER_HAS_TS && !(t->ts = til_malloc(nnz, sizeof *t->ts, e)))
        goto fail;
    return 0;
fail:
    til_inter_free(t);
    return -1;
}

void til_inter_free(til_inter *t)
{
    free(t->indptr);
    free(t->items);
    free(t->rating);
    free(t->ts);
    memset(t, 0, sizeof *t);
}

unsigned til_inter_flags(const til_inter *t)
{
    return (t->rating ? TIL_INTER_HAS_RATING : 0u) | (t->ts ? TIL_INTER_HAS_TS : 0u);
}

int til_inter_validate(const til_inter *t, const char *name, til_err *e)
{
    if (t->indptr[0] != 0)
        return til_seterr(e, "%s: user offsets do not start at 0", name);
    for (uint32_t u = 0; u < t->n_users; u++) {
        uint64_t a = t->indptr[u], b = t->indptr[u + 1];
        if (b < a || b > t->nnz)
            return til_seterr(e, "%s: user %u: bad record count", name, u);
        for (uint64_t k = a; k < b; k++) {
            if (t->items[k] >= t->n_items)
                return til_seterr(e, "%s: user %u: item id %u out of range (n_items %u)", name, u, t->items[k],
                                  t->n_items);
            if (k > a && t->items[k] <= t->items[k - 1])
                return til_seterr(e, "%s: user %u: items not strictly increasing (%u after %u)", name, u,
                                  t->items[k], t->items[k - 1]);
        }
    }
    if (t->indptr[t->n_users] != t->nnz)
        return til_seterr(e, "%s: per-user counts sum to %llu, header says %llu", name,
                          (unsigned long long)t->indptr[t->n_users], (unsigned long long)t->nnz);
    return 0;
}

static void put32(unsigned char *p, uint32_t v) { memcpy(p, &v, 4); }
static void put64(unsigned char *p, uint64_t v) { memcpy(p, &v, 8); }
static uint32_t get32(const unsigned char *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}
static uint64_t get64(const unsigned char *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

int til_inter_write(const char *path, const til_inter *t, til_err *e)
{
    const char *name = strcmp(path, "-") ? path : "stdout";
    if (til_inter_validate(t, name, e))
        return -1;
    til_wr *w = til_wr_open(path, 1, e);
    if (!w)
        return -1;
    unsigned char h[48] = {0};
    memcpy(h, TIL_INTER_MAGIC, 8);
    put32(h + 8, TIL_INTER_VERSION);
    put32(h + 12, til_inter_flags(t));
    put64(h + 16, t->n_users);
    put64(h + 24, t->n_items);
    put64(h + 32, t->nnz);
    if (til_wr_write(w, h, sizeof h, e))
        goto fail;
    /* per-user counts, in chunks */
    uint32_t cnt[4096];
    for (uint32_t u = 0; u < t->n_users;) {
        uint32_t n = 0;
        for (; n < 4096 && u < t->n_users; n++, u++)
            cnt[n] = (uint32_t)(t->indptr[u + 1] - t->indptr[u]);
        if (til_wr_write(w, cnt, n * sizeof *cnt, e))
            goto fail;
    }
    if (til_wr_write(w, t->items, t->nnz * sizeof *t->items, e))
        goto fail;
    if (t->rating && til_wr_write(w, t->rating, t->nnz * sizeof *t->rating, e))
        goto fail;
    if (t->ts && til_wr_write(w, t->ts, t->nnz * sizeof *t->ts, e))
        goto fail;
    unsigned char tr[16];
    memcpy(tr, TRAILER, 8);
    put64(tr + 8, t->nnz);
    if (til_wr_write(w, tr, sizeof tr, e))
        goto fail;
    return til_wr_commit(&w, e);
fail:
    til_wr_abort(&w);
    return -1;
}

int til_inter_read_from(til_rd *r, til_inter *t, til_err *e)
{
    const char *name = til_rd_name(r);
    unsigned char h[48];
    memset(t, 0, sizeof *t);
    if (til_rd_read(r, h, 8, e))
        return til_seterr(e, "%s: empty or truncated file (no interaction header)", name);
    if (memcmp(h, TIL_INTER_MAGIC, 8) != 0)
        return til_seterr(e, "%s: not a til interaction file (bad magic)", name);
    if (til_rd_read(r, h + 8, sizeof h - 8, e))
        return til_seterr(e, "%s: truncated header", name);
    uint32_t ver = get32(h + 8), flags = get32(h + 12);
    uint64_t nu = get64(h + 16), ni = get64(h + 24), nnz = get64(h + 32);
    if (ver != TIL_INTER_VERSION)
        return til_seterr(e, "%s: unsupported interaction file version %u (this build reads %u)", name, ver,
                          TIL_INTER_VERSION);
    if (flags & ~(unsigned)(TIL_INTER_HAS_RATING | TIL_INTER_HAS_TS))
        return til_seterr(e, "%s: unknown flags 0x%x in header", name, flags);
    if (get64(h + 40) != 0)
        return til_seterr(e, "%s: reserved header field is not zero", name);
    if (nu > UINT32_MAX - 1 || ni > UINT32_MAX - 1)
        return til_seterr(e, "%s: header counts out of range (users %llu, items %llu)", name,
                          (unsigned long long)nu, (unsigned long long)ni);
    if (nnz > MAX_NNZ || (nu && ni && nnz > nu * ni) || ((!nu || !ni) && nnz))
        return til_seterr(e, "%s: header count of interactions (%llu) impossible for %llu users x %llu items",
                          name, (unsigned long long)nnz, (unsigned long long)nu, (unsigned long long)ni);
    if (til_inter_alloc(t, (uint32_t)nu, (uint32_t)ni, nnz, flags, e))
        return til_errctx(e, "%s", name);
    /* counts -> indptr */
    uint32_t cnt[4096];
    uint64_t acc = 0;
    for (uint32_t u = 0; u < t->n_users;) {
        uint32_t n = (uint32_t)TIL_MIN(4096u, t->n_users - u);
        if (til_rd_read(r, cnt, n * sizeof *cnt, e))
            goto fail;
        for (uint32_t k = 0; k < n; k++, u++) {
            acc += cnt[k];
            if (acc > nnz) {
                til_seterr(e, "%s: per-user counts exceed the header's %llu interactions", name,
                           (unsigned long long)nnz);
                goto fail;
            }
            t->indptr[u + 1] = acc;
        }
    }
    if (acc != nnz) {
        til_seterr(e, "%s: per-user counts sum to %llu, header says %llu", name, (unsigned long long)acc,
                   (unsigned long long)nnz);
        goto fail;
    }
    if (til_rd_read(r, t->items, nnz * sizeof *t->items, e))
        goto fail;
    if (t->rating && til_rd_read(r, t->rating, nnz * sizeof *t->rating, e))
        goto fail;
    if (t->ts && til_rd_read(r, t->ts, nnz * sizeof *t->ts, e))
        goto fail;
    unsigned char tr[16];
    if (til_rd_read(r, tr, sizeof tr, e))
        goto fail;
    if (memcmp(tr, TRAILER, 8) != 0 || get64(tr + 8) != nnz) {
        til_seterr(e, "%s: bad trailer (file corrupt or counts wrong)", name);
        goto fail;
    }
    int at_end = til_rd_eof(r, e);
    if (at_end < 0)
        goto fail;
    if (!at_end) {
        til_seterr(e, "%s: unexpected data after the trailer", name);
        goto fail;
    }
    if (til_inter_validate(t, name, e))
        goto fail;
    if (t->rating)
        for (uint64_t k = 0; k < nnz; k++)
            if (!(t->rating[k] == t->rating[k]) || t->rating[k] > 1e30f || t->rating[k] < -1e30f) {
                til_seterr(e, "%s: rating of record %llu is not finite", name, (unsigned long long)k);
                goto fail;
            }
    return 0;
fail:
    til_inter_free(t);
    return -1;
}

int til_inter_read(const char *path, til_inter *t, til_err *e)
{
    til_rd *r = til_rd_open(path, e);
    if (!r)
        return -1;
    int rc = til_inter_read_from(r, t, e);
    til_rd_close(&r);
    return rc;
}

int til_inter_from_pairs(til_inter *t, uint32_t n_users, uint32_t n_items, uint64_t n, const uint32_t *users,
                         const uint32_t *items, const float *ratings, const int64_t *ts, uint64_t *dups,
                         til_err *e)
{
    memset(t, 0, sizeof *t);
    for (uint64_t k = 0; k < n; k++)
        if (users[k] >= n_users || items[k] >= n_items)
            return til_seterr(e, "pair %llu: (%u, %u) out of range (%u users, %u items)", (unsigned long long)k,
                              users[k], items[k], n_users, n_items);
    /* counting sort by user (stable), then sort each user's slice by item (stable
     * insertion/merge through an index array) and drop repeats */
    uint64_t *start = til_calloc((size_t)n_users + 1, sizeof *start, e);
    uint64_t *order = til_malloc(n, sizeof *order, e);
    if (!start || !order) {
        free(start);
        free(order);
        return -1;
    }
    for (uint64_t k = 0; k < n; k++)
        start[users[k] + 1]++;
    for (uint32_t u = 0; u < n_users; u++)
        start[u + 1] += start[u];
    {
        uint64_t *pos = til_malloc((size_t)n_users + 1, sizeof *pos, e);
        if (!pos) {
            free(start);
            free(order);
            return -1;
        }
        memcpy(pos, start, ((size_t)n_users + 1) * sizeof *pos);
        for (uint64_t k = 0; k < n; k++)
            order[pos[users[k]]++] = k;
        free(pos);
    }
    /* per-user stable sort of order[] by item: insertion sort for short runs,
     * else a merge sort with a scratch buffer */
    uint64_t maxdeg = 0;
    for (uint32_t u = 0; u < n_users; u++)
        maxdeg = TIL_MAX(maxdeg, start[u + 1] - start[u]);
    uint64_t *tmp = til_malloc(maxdeg ? maxdeg : 1, sizeof *tmp, e);
    if (!tmp) {
        free(start);
        free(order);
        return -1;
    }
    for (uint32_t u = 0; u < n_users; u++) {
        uint64_t *a = order + start[u];
        uint64_t m = start[u + 1] - start[u];
        if (m <= 32) {
            for (uint64_t x = 1; x < m; x++) {
                uint64_t v = a[x];
                uint64_t y = x;
                while (y > 0 && items[a[y - 1]] > items[v]) {
                    a[y] = a[y - 1];
                    y--;
                }
                a[y] = v;
            }
            continue;
        }
        /* bottom-up merge sort */
        for (uint64_t width = 1; width < m; width *= 2) {
            for (uint64_t lo = 0; lo < m; lo += 2 * width) {
                uint64_t mid = TIL_MIN(lo + width, m), hi = TIL_MIN(lo + 2 * width, m);
                uint64_t i = lo, j = mid, o = lo;
                while (i < mid && j < hi)
                    tmp[o++] = items[a[j]] < items[a[i]] ? a[j++] : a[i++];
                while (i < mid)
                    tmp[o++] = a[i++];
                while (j < hi)
                    tmp[o++] = a[j++];
            }
            memcpy(a, tmp, m * sizeof *a);
        }
    }
    free(tmp);
    uint64_t kept = 0, dropped = 0;
    for (uint32_t u = 0; u < n_users; u++)
        for (uint64_t k = start[u]; k < start[u + 1]; k++) {
            if (k > start[u] && items[order[k]] == items[order[k - 1]])
                dropped++;
            else
                kept++;
        }
    unsigned flags = (ratings ? TIL_INTER_HAS_RATING : 0u) | (ts ? TIL_INTER_HAS_TS : 0u);
    if (til_inter_alloc(t, n_users, n_items, kept, flags, e)) {
        free(start);
        free(order);
        return -1;
    }
    uint64_t o = 0;
    for (uint32_t u = 0; u < n_users; u++) {
        for (uint64_t k = start[u]; k < start[u + 1]; k++) {
            if (k > start[u] && items[order[k]] == items[order[k - 1]])
                continue;
            uint64_t src = order[k];
            t->items[o] = items[src];
            if (ratings)
                t->rating[o] = ratings[src];
            if (ts)
                t->ts[o] = ts[src];
            o++;
        }
        t->indptr[u + 1] = o;
    }
    free(start);
    free(order);
    if (dups)
        *dups = dropped;
    return 0;
}

int til_inter_has(const til_inter *t, uint32_t u, uint32_t i)
{
    uint64_t lo = t->indptr[u], hi = t->indptr[u + 1];
    while (lo < hi) {
        uint64_t mid = lo + (hi - lo) / 2;
        if (t->items[mid] < i)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < t->indptr[u + 1] && t->items[lo] == i;
}

uint32_t *til_inter_item_counts(const til_inter *t, til_err *e)
{
    uint32_t *c = til_calloc(t->n_items ? t->n_items : 1, sizeof *c, e);
    if (!c)
        return NULL;
    for (uint64_t k = 0; k < t->nnz; k++)
        c[t->items[k]]++;
    return c;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* min/median/max/mean over the non-empty entries of v (v is sorted in place) */
static void summarise(uint64_t *v, uint64_t n, uint64_t *mn, uint64_t *med, uint64_t *mx, double *mean,
                      uint64_t *empty)
{
    qsort(v, n, sizeof *v, cmp_u64);
    uint64_t z = 0;
    while (z < n && v[z] == 0)
        z++;
    *empty = z;
    uint64_t m = n - z;
    double s = 0;
    for (uint64_t k = z; k < n; k++)
        s += (double)v[k];
    *mn = m ? v[z] : 0;
    *mx = m ? v[n - 1] : 0;
    *med = m ? v[z + (m - 1) / 2] : 0;
    *mean = m ? s / (double)m : 0;
}

int til_inter_stats_compute(const til_inter *t, til_inter_stats *s, til_err *e)
{
    memset(s, 0, sizeof *s);
    uint64_t n = TIL_MAX((uint64_t)t->n_users, (uint64_t)t->n_items);
    uint64_t *v = til_calloc(n ? n : 1, sizeof *v, e);
    if (!v)
        return -1;
    for (uint32_t u = 0; u < t->n_users; u++)
        v[u] = til_inter_deg(t, u);
    summarise(v, t->n_users, &s->user_min, &s->user_med, &s->user_max, &s->user_mean, &s->users_empty);
    memset(v, 0, n * sizeof *v);
    for (uint64_t k = 0; k < t->nnz; k++)
        v[t->items[k]]++;
    summarise(v, t->n_items, &s->item_min, &s->item_med, &s->item_max, &s->item_mean, &s->items_empty);
    free(v);
    s->users = t->n_users;
    s->items = t->n_items;
    s->nnz = t->nnz;
    s->density = t->n_users && t->n_items ? (double)t->nnz / ((double)t->n_users * (double)t->n_items) : 0;
    return 0;
}

int til_inter_same_shape(const til_inter *a, const char *an, const til_inter *b, const char *bn, til_err *e)
{
    if (a->n_users != b->n_users || a->n_items != b->n_items)
        return til_seterr(e, "%s has %u users x %u items but %s has %u x %u: not from the same dataset", bn,
                          b->n_users, b->n_items, an, a->n_users, a->n_items);
    return 0;
}

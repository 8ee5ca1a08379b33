/* til_noise: noisy-positive injection and positive removal (til_noise.h). */
#include "til_noise.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "til_rng.h"

int til_noise_parse_mode(const char *s, unsigned *mode, til_err *e)
{
    if (strcmp(s, "pos") == 0)
        *mode = TIL_NOISE_POS;
    else if (strcmp(s, "neg") == 0)
        *mode = TIL_NOISE_NEG;
    else if (strcmp(s, "pos+neg") == 0)
        *mode = TIL_NOISE_POS | TIL_NOISE_NEG;
    else
        return til_seterr(e, "--mode: '%s' is not one of pos, neg, pos+neg", s);
    return 0;
}

uint64_t til_noise_count(double ratio, uint64_t n)
{
    double c = round(ratio * (double)n);
    return c <= 0 ? 0 : (uint64_t)c;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

/* Picks up to c items for user u that are not marked (mark[i] != 0), marking
 * them, appending them to *buf (grown as needed). Returns the number picked or
 * -1. `avail` is the number of unmarked items. */
static int64_t pick_unmarked(til_rng *r, uint8_t *mark, uint32_t n_items, uint64_t avail, uint64_t c, uint32_t **buf,
                             uint64_t *len, uint64_t *cap, uint32_t *scratch, til_err *e)
{
    uint64_t k = TIL_MIN(c, avail);
    if (*len + k > *cap) {
        uint64_t nc = TIL_MAX(*len + k, 2 * *cap + 1024);
        uint32_t *nb = til_realloc(*buf, nc, sizeof *nb, e);
        if (!nb)
            return -1;
        *buf = nb;
        *cap = nc;
    }
    uint32_t *dst = *buf + *len;
    if (2 * k <= avail) {
        /* rejection: at least half the items are free, < 2 draws per pick */
        for (uint64_t j = 0; j < k;) {
            uint32_t i = (uint32_t)til_rng_below(r, n_items);
            if (mark[i])
                continue;
            mark[i] = 2;
            dst[j++] = i;
        }
    } else {
        /* dense: list the free items, partial Fisher-Yates */
        uint64_t m = 0;
        for (uint32_t i = 0; i < n_items; i++)
            if (!mark[i])
                scratch[m++] = i;
        for (uint64_t j = 0; j < k; j++) {
            uint64_t x = j + til_rng_below(r, m - j);
            uint32_t t = scratch[j];
            scratch[j] = scratch[x];
            scratch[x] = t;
            mark[scratch[j]] = 2;
            dst[j] = scratch[j];
        }
    }
    *len += k;
    return (int64_t)k;
}

int til_noise_run(const til_inter *train, const til_inter *const *exclude, int n_exclude, const til_noise_opts *o,
                  til_inter *out, til_inter *injected, til_inter *removed, til_noise_stats *st, til_err *e)
{
    memset(out, 0, sizeof *out);
    memset(injected, 0, sizeof *injected);
    memset(removed, 0, sizeof *removed);
    if (!(o->ratio >= 0) || !o->mode || (o->mode & ~(unsigned)(TIL_NOISE_POS | TIL_NOISE_NEG)))
        return til_seterr(e, "noise: bad mode or ratio");
    for (int x = 0; x < n_exclude; x++)
        if (exclude[x]->n_users != train->n_users || exclude[x]->n_items != train->n_items)
            return til_seterr(e, "excluded file %d has %u users x %u items, the training file %u x %u", x + 1,
                              exclude[x]->n_users, exclude[x]->n_items, train->n_users, train->n_items);
    uint32_t nu = train->n_users, ni = train->n_items;
    uint64_t maxdeg = 0;
    for (uint32_t u = 0; u < nu; u++)
        maxdeg = TIL_MAX(maxdeg, til_inter_deg(train, u));
    uint8_t *gone = til_calloc(train->nnz ? train->nnz : 1, 1, e);
    uint8_t *mark = til_calloc(ni ? ni : 1, 1, e);
    uint32_t *perm = til_malloc(maxdeg ? maxdeg : 1, sizeof *perm, e);
    uint32_t *scratch = (o->mode & TIL_NOISE_POS) ? til_malloc(ni ? ni : 1, sizeof *scratch, e) : NULL;
    uint64_t *inj_ptr = til_calloc((size_t)nu + 1, sizeof *inj_ptr, e);
    uint32_t *inj = NULL;
    uint64_t inj_len = 0, inj_cap = 0;
    til_noise_stats z = {0};
    int rc = -1;
    if (!gone || !mark || !perm || !inj_ptr || ((o->mode & TIL_NOISE_POS) && !scratch))
        goto out;
    for (uint32_t u = 0; u < nu; u++) {
        uint64_t a = train->indptr[u], n = til_inter_deg(train, u);
        uint64_t c = til_noise_count(o->ratio, n);
        if (n)
            z.users++;
        if ((o->mode & TIL_NOISE_NEG) && n && c) {
            uint64_t k = TIL_MIN(c, n - 1);
            z.users_neg_capped += k < c;
            til_rng r;
            til_rng_seed(&r, o->seed, 2 * (uint64_t)u);
            for (uint64_t j = 0; j < n; j++)
                perm[j] = (uint32_t)j;
            for (uint64_t j = 0; j < k; j++) { /* partial Fisher-Yates */
                uint64_t x = j + til_rng_below(&r, n - j);
                uint32_t t = perm[j];
                perm[j] = perm[x];
                perm[x] = t;
                gone[a + perm[j]] = 1;
            }
            z.removed += k;
        }
        if ((o->mode & TIL_NOISE_POS) && c) {
            uint64_t marked = 0;
            for (uint64_t k = a; k < a + n; k++)
                mark[train->items[k]] = 1;
            marked = n;
            for (int x = 0; x < n_exclude; x++)
                for (uint64_t k = exclude[x]->indptr[u]; k < exclude[x]->indptr[u + 1]; k++)
                    if (!mark[exclude[x]->items[k]]) {
                        mark[exclude[x]->items[k]] = 1;
                        marked++;
                    }
            til_rng r;
            til_rng_seed(&r, o->seed, 2 * (uint64_t)u + 1);
            uint64_t before = inj_len;
            if (pick_unmarked(&r, mark, ni, ni - marked, c, &inj, &inj_len, &inj_cap, scratch, e) < 0)
                goto out;
            z.users_pos_short += inj_len - before < c;
            qsort(inj + before, inj_len - before, sizeof *inj, cmp_u32);
            /* unmark */
            for (uint64_t k = a; k < a + n; k++)
                mark[train->items[k]] = 0;
            for (int x = 0; x < n_exclude; x++)
                for (uint64_t k = exclude[x]->indptr[u]; k < exclude[x]->indptr[u + 1]; k++)
                    mark[exclude[x]->items[k]] = 0;
            for (uint64_t k = before; k < inj_len; k++)
                mark[inj[k]] = 0;
        }
        inj_ptr[u + 1] = inj_len;
    }
    z.injected = inj_len;
    unsigned flags = til_inter_flags(train);
    if (til_inter_alloc(out, nu, ni, train->nnz - z.removed + z.injected, flags, e) ||
        til_inter_alloc(injected, nu, ni, z.injected, flags, e) || til_inter_alloc(removed, nu, ni, z.removed, flags, e))
        goto out;
    uint64_t po = 0, pr = 0;
    for (uint32_t u = 0; u < nu; u++) {
        uint64_t k = train->indptr[u], kend = train->indptr[u + 1];
        uint64_t j = inj_ptr[u], jend = inj_ptr[u + 1];
        /* merge the kept records and the injected items, both sorted by item */
        while (k < kend || j < jend) {
            if (k < kend && gone[k]) {
                removed->items[pr] = train->items[k];
                if (train->rating)
                    removed->rating[pr] = train->rating[k];
                if (train->ts)
                    removed->ts[pr] = train->ts[k];
                pr++;
                k++;
                continue;
            }
            if (j < jend && (k == kend || inj[j] < train->items[k])) {
                out->items[po] = injected->items[j] = inj[j];
                if (train->rating)
                    out->rating[po] = injected->rating[j] = TIL_NOISE_RATING;
                if (train->ts)
                    out->ts[po] = injected->ts[j] = TIL_NOISE_TS;
                j++;
            } else {
                out->items[po] = train->items[k];
                if (train->rating)
                    out->rating[po] = train->rating[k];
                if (train->ts)
                    out->ts[po] = train->ts[k];
                k++;
            }
            po++;
        }
        out->indptr[u + 1] = po;
        injected->indptr[u + 1] = inj_ptr[u + 1];
        removed->indptr[u + 1] = pr;
    }
    if (st)
        *st = z;
    rc = 0;
out:
    if (rc) {
        til_inter_free(out);
        til_inter_free(injected);
        til_inter_free(removed);
    }
    free(gone);
    free(mark);
    free(perm);
    free(scratch);
    free(inj_ptr);
    free(inj);
    return rc;
}

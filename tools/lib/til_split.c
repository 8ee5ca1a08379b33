/* til_split: per-user random or temporal split (rule in til_split.h). */
#include "til_split.h"

#include <stdlib.h>
#include <string.h>

#include "til_rng.h"

#define RATIO_MAX_FRAC 6
#define RATIO_MAX_TOTAL (1ull << 31)

int til_split_parse_ratio(const char *s, uint64_t parts[3], til_err *e)
{
    uint64_t v[3];
    int frac[3], k = 0, maxfrac = 0;
    const char *p = s;
    for (;;) {
        if (k == 3)
            return til_seterr(e, "ratio: '%s' has more than 3 parts", s);
        uint64_t x = 0;
        int digits = 0, f = -1;
        for (; *p && *p != ':'; p++) {
            if (*p == '.' && f < 0) {
                f = 0;
                continue;
            }
            if (*p < '0' || *p > '9')
                return til_seterr(e, "ratio: '%s' is not of the form a:b:c (non-negative numbers)", s);
            if (++digits > 15)
                return til_seterr(e, "ratio: '%s' has a part with too many digits", s);
            x = x * 10 + (uint64_t)(*p - '0');
            if (f >= 0)
                f++;
        }
        if (!digits)
            return til_seterr(e, "ratio: '%s' has an empty part", s);
        if (f > RATIO_MAX_FRAC)
            return til_seterr(e, "ratio: '%s' has more than %d decimals in a part", s, RATIO_MAX_FRAC);
        v[k] = x;
        frac[k] = f < 0 ? 0 : f;
        maxfrac = TIL_MAX(maxfrac, frac[k]);
        k++;
        if (!*p)
            break;
        p++;
    }
    if (k != 3)
        return til_seterr(e, "ratio: '%s' needs 3 parts a:b:c", s);
    uint64_t total = 0;
    for (int i = 0; i < 3; i++) {
        for (int j = frac[i]; j < maxfrac; j++) {
            if (v[i] > RATIO_MAX_TOTAL)
                break;
            v[i] *= 10;
        }
        if (v[i] > RATIO_MAX_TOTAL || (total += v[i]) > RATIO_MAX_TOTAL)
            return til_seterr(e, "ratio: '%s' is too large (parts sum above 2^31 after scaling)", s);
    }
    if (v[0] == 0)
        return til_seterr(e, "ratio: '%s': the training part must be positive", s);
    memcpy(parts, v, sizeof v);
    return 0;
}

void til_split_counts(uint64_t n, const uint64_t parts[3], uint64_t out[3])
{
    uint64_t s = parts[0] + parts[1] + parts[2];
    uint64_t tr = n * parts[0] / s;
    if (tr < 1)
        tr = 1;
    if (tr > n)
        tr = n;
    uint64_t va = n * parts[1] / s;
    if (va > n - tr)
        va = n - tr;
    out[0] = tr;
    out[1] = va;
    out[2] = n - tr - va;
}

typedef struct {
    int64_t ts;
    uint32_t item, k;
} ts_key;

static int cmp_ts(const void *a, const void *b)
{
    const ts_key *x = a, *y = b;
    if (x->ts != y->ts)
        return x->ts < y->ts ? -1 : 1;
    return (x->item > y->item) - (x->item < y->item);
}

int til_split_run(const til_inter *in, const til_split_opts *o, til_inter out[3], til_split_stats *st, til_err *e)
{
    memset(out, 0, 3 * sizeof *out);
    if (o->temporal && !in->ts)
        return til_seterr(e, "--temporal needs timestamps and the input has none");
    uint64_t s = o->parts[0] + o->parts[1] + o->parts[2];
    if (o->parts[0] == 0 || s > RATIO_MAX_TOTAL)
        return til_seterr(e, "split ratio out of range");
    uint64_t maxdeg = 0;
    for (uint32_t u = 0; u < in->n_users; u++)
        maxdeg = TIL_MAX(maxdeg, til_inter_deg(in, u));
    /* part[k] for every record, then the parts are copied out in item order */
    uint8_t *part = til_malloc(in->nnz ? in->nnz : 1, 1, e);
    uint32_t *perm = til_malloc(maxdeg ? maxdeg : 1, sizeof *perm, e);
    ts_key *keys = o->temporal ? til_malloc(maxdeg ? maxdeg : 1, sizeof *keys, e) : NULL;
    int rc = -1;
    if (!part || !perm || (o->temporal && !keys))
        goto out;
    til_split_stats z = {0};
    for (uint32_t u = 0; u < in->n_users; u++) {
        uint64_t a = in->indptr[u], n = til_inter_deg(in, u), cnt[3];
        if (!n)
            continue;
        if (o->temporal) {
            for (uint64_t k = 0; k < n; k++)
                keys[k] = (ts_key){in->ts[a + k], in->items[a + k], (uint32_t)k};
            qsort(keys, n, sizeof *keys, cmp_ts);
            for (uint64_t k = 0; k < n; k++)
                perm[k] = keys[k].k;
        } else {
            til_rng r;
            til_rng_seed(&r, o->seed, u);
            for (uint64_t k = 0; k < n; k++)
                perm[k] = (uint32_t)k;
            til_rng_shuffle_u32(&r, perm, n);
        }
        til_split_counts(n, o->parts, cnt);
        for (uint64_t k = 0; k < n; k++)
            part[a + perm[k]] = k < cnt[0] ? TIL_SPLIT_TRAIN : k < cnt[0] + cnt[1] ? TIL_SPLIT_VALID : TIL_SPLIT_TEST;
        for (int p = 0; p < 3; p++)
            z.nnz[p] += cnt[p];
        z.users++;
        z.users_empty_valid += cnt[1] == 0;
        z.users_empty_test += cnt[2] == 0;
    }
    unsigned flags = til_inter_flags(in);
    for (int p = 0; p < 3; p++)
        if (til_inter_alloc(&out[p], in->n_users, in->n_items, z.nnz[p], flags, e))
            goto out;
    uint64_t pos[3] = {0, 0, 0};
    for (uint32_t u = 0; u < in->n_users; u++) {
        for (uint64_t k = in->indptr[u]; k < in->indptr[u + 1]; k++) {
            til_inter *t = &out[part[k]];
            uint64_t q = pos[part[k]]++;
            t->items[q] = in->items[k];
            if (in->rating)
                t->rating[q] = in->rating[k];
            if (in->ts)
                t->ts[q] = in->ts[k];
        }
        for (int p = 0; p < 3; p++)
            out[p].indptr[u + 1] = pos[p];
    }
    if (st)
        *st = z;
    rc = 0;
out:
    if (rc)
        for (int p = 0; p < 3; p++)
            til_inter_free(&out[p]);
    free(part);
    free(perm);
    free(keys);
    return rc;
}

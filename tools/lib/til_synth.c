/* til_synth: synthetic clustered implicit feedback (model in til_synth.h). */
#include "til_synth.h"

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "til_rng.h"

#define SIGMA 0.8
#define DAY 86400.0
#define TRIES 50

til_synth_opts til_synth_defaults(void)
{
    return (til_synth_opts){.n_users = 1500,
                            .n_items = 1000,
                            .n_clusters = 10,
                            .mean_len = 40,
                            .min_len = 5,
                            .zipf = 1.0,
                            .mix_max = 3,
                            .noise = 0.1,
                            .seed = 1};
}

int til_synth_check(const til_synth_opts *o, til_err *e)
{
    if (o->n_users < 1 || o->n_items < 2)
        return til_seterr(e, "--users must be >= 1 and --items >= 2");
    if (o->n_clusters < 1 || o->n_clusters > o->n_items)
        return til_seterr(e, "--clusters must be in [1, --items]");
    if (!(o->mean_len >= 1) || o->mean_len > 1e6)
        return til_seterr(e, "--mean must be in [1, 1e6]");
    if (o->min_len < 1 || o->min_len > o->n_items / 2)
        return til_seterr(e, "--min must be in [1, items/2]");
    if (!(o->zipf >= 0 && o->zipf <= 5))
        return til_seterr(e, "--zipf must be in [0, 5]");
    if (o->mix_max < 1)
        return til_seterr(e, "--mix must be >= 1");
    if (!(o->noise >= 0 && o->noise <= 1))
        return til_seterr(e, "--noise must be in [0, 1]");
    return 0;
}

void til_synth_free(til_synth *s)
{
    free(s->item_cluster);
    free(s->item_rank);
    free(s->user_w);
    free(s->indptr);
    free(s->items);
    free(s->rating);
    free(s->ts);
    memset(s, 0, sizeof *s);
}

/* Exponential(1) draw. */
static double expo(til_rng *r) { return -log(1.0 - til_rng_uniform(r)); }

int til_synth_generate(const til_synth_opts *o, til_synth *s, til_err *e)
{
    memset(s, 0, sizeof *s);
    if (til_synth_check(o, e))
        return -1;
    uint32_t nu = o->n_users, ni = o->n_items, K = o->n_clusters;
    s->n_users = nu;
    s->n_items = ni;
    s->n_clusters = K;
    uint32_t *perm = NULL, *cstart = NULL;
    double *cdf = NULL;
    uint8_t *seen = NULL;
    int rc = -1;
    s->item_cluster = til_malloc(ni, sizeof *s->item_cluster, e);
    s->item_rank = til_malloc(ni, sizeof *s->item_rank, e);
    s->user_w = til_calloc((size_t)nu * K, sizeof *s->user_w, e);
    s->indptr = til_calloc((size_t)nu + 1, sizeof *s->indptr, e);
    perm = til_malloc(ni, sizeof *perm, e);
    cstart = til_malloc((size_t)K + 1, sizeof *cstart, e);
    cdf = til_malloc(ni, sizeof *cdf, e);
    seen = til_calloc(ni, 1, e);
    if (!s->item_cluster || !s->item_rank || !s->user_w || !s->indptr || !perm || !cstart || !cdf || !seen)
        goto out;

    /* items: deal a random permutation round-robin into clusters; the members
     * of cluster c, in rank order, are perm[c], perm[c + K], ... */
    til_rng r;
    til_rng_seed(&r, o->seed, 0);
    for (uint32_t i = 0; i < ni; i++)
        perm[i] = i;
    til_rng_shuffle_u32(&r, perm, ni);
    /* regroup by cluster: members[cstart[c] + rank] */
    uint32_t *members = til_malloc(ni, sizeof *members, e);
    if (!members)
        goto out;
    for (uint32_t c = 0, p = 0; c < K; c++) {
        cstart[c] = p;
        double acc = 0;
        for (uint32_t j = c, rank = 0; j < ni; j += K, rank++, p++) {
            members[p] = perm[j];
            s->item_cluster[perm[j]] = c;
            s->item_rank[perm[j]] = rank;
            acc += pow(rank + 1.0, -o->zipf);
            cdf[p] = acc;
        }
    }
    cstart[K] = ni;
    memcpy(perm, members, ni * sizeof *perm);
    free(members);

    /* users, one generator each: mixture, length, then the records */
    double mu = log(o->mean_len) - SIGMA * SIGMA / 2;
    uint64_t n = 0, cap = 0;
    for (uint32_t u = 0; u < nu; u++) {
        til_rng_seed(&r, o->seed, 1 + (uint64_t)u);
        float *w = s->user_w + (size_t)u * K;
        uint32_t m = 1 + (uint32_t)til_rng_below(&r, TIL_MIN((uint64_t)o->mix_max, K));
        double tot = 0;
        for (uint32_t k = 0; k < m; k++) {
            uint32_t c;
            do /* m distinct clusters: a chosen one has w > 0 */
                c = (uint32_t)til_rng_below(&r, K);
            while (w[c] > 0);
            w[c] = (float)expo(&r) + 1e-6f; /* flat Dirichlet: normalised exponentials */
            tot += w[c];
        }
        float wmax = 0;
        for (uint32_t c = 0; c < K; c++) {
            w[c] = (float)(w[c] / tot);
            wmax = TIL_MAX(wmax, w[c]);
        }
        double l = round(exp(mu + SIGMA * til_rng_normal(&r)));
        l = TIL_MIN(TIL_MAX(l, (double)o->min_len), (double)(ni / 2));
        uint64_t want = (uint64_t)l;
        if (n + want > cap) {
            uint64_t nc = TIL_MAX(n + want, 2 * cap + 4096);
            uint32_t *it = til_realloc(s->items, nc, sizeof *it, e);
            if (!it)
                goto out;
            s->items = it;
            uint8_t *rt = til_realloc(s->rating, nc, sizeof *rt, e);
            if (!rt)
                goto out;
            s->rating = rt;
            int64_t *ts = til_realloc(s->ts, nc, sizeof *ts, e);
            if (!ts)
                goto out;
            s->ts = ts;
            cap = nc;
        }
        double t = TIL_SYNTH_T0 + til_rng_uniform(&r) * 180 * DAY;
        uint64_t first = n;
        for (uint64_t tries = 0; n - first < want && tries < TRIES * want; tries++) {
            uint32_t i;
            if (til_rng_uniform(&r) < o->noise) {
                i = (uint32_t)til_rng_below(&r, ni);
            } else {
                /* cluster from the mixture, then item from its Zipf cdf */
                double x = til_rng_uniform(&r), acc = 0;
                uint32_t c;
                for (c = 0; c < K - 1; c++) {
                    acc += w[c];
                    if (x < acc)
                        break;
                }
                while (w[c] == 0 && c > 0) /* rounding past the last weight */
                    c--;
                uint32_t lo = cstart[c], hi = cstart[c + 1] - 1;
                double y = til_rng_uniform(&r) * cdf[hi];
                while (lo < hi) { /* first p with cdf[p] > y */
                    uint32_t mid = lo + (hi - lo) / 2;
                    if (cdf[mid] > y)
                        hi = mid;
                    else
                        lo = mid + 1;
                }
                i = perm[lo];
            }
            if (seen[i])
                continue;
            seen[i] = 1;
            /* affinity a in [0, 1]: 1 for the user's main cluster */
            double a = w[s->item_cluster[i]] / wmax;
            double rt = round(1.8 + 3.0 * a + 0.8 * til_rng_normal(&r));
            s->items[n] = i;
            s->rating[n] = (uint8_t)TIL_MIN(5.0, TIL_MAX(1.0, rt));
            t += expo(&r) * 2 * DAY;
            s->ts[n] = (int64_t)t;
            n++;
        }
        for (uint64_t k = first; k < n; k++)
            seen[s->items[k]] = 0;
        s->indptr[u + 1] = n;
    }
    s->n = n;
    rc = 0;
out:
    if (rc)
        til_synth_free(s);
    free(perm);
    free(cstart);
    free(cdf);
    free(seen);
    return rc;
}

int til_synth_write(const til_synth *s, til_wr *w, int columns, til_err *e)
{
    if (columns < 2 || columns > 4)
        return til_seterr(e, "columns must be 2, 3 or 4");
    char buf[1 << 16];
    size_t len = 0;
    for (uint32_t u = 0; u < s->n_users; u++)
        for (uint64_t k = s->indptr[u]; k < s->indptr[u + 1]; k++) {
            if (len > sizeof buf - 128) {
                if (til_wr_write(w, buf, len, e))
                    return -1;
                len = 0;
            }
            int m;
            if (columns == 2)
                m = snprintf(buf + len, 128, "%u\t%u\n", u + 1, s->items[k] + 1);
            else if (columns == 3)
                m = snprintf(buf + len, 128, "%u\t%u\t%u\n", u + 1, s->items[k] + 1, s->rating[k]);
            else
                m = snprintf(buf + len, 128, "%u\t%u\t%u\t%" PRId64 "\n", u + 1, s->items[k] + 1, s->rating[k],
                             s->ts[k]);
            len += (size_t)m;
        }
    return len ? til_wr_write(w, buf, len, e) : 0;
}

int til_synth_write_truth(const til_synth *s, til_wr *w, til_err *e)
{
    if (til_wr_printf(w, e, "item\tcluster\trank\n"))
        return -1;
    for (uint32_t i = 0; i < s->n_items; i++)
        if (til_wr_printf(w, e, "%u\t%u\t%u\n", i + 1, s->item_cluster[i], s->item_rank[i]))
            return -1;
    return 0;
}

/* til_baselines: WBPR, AOBPR, PRIS, T-CE, R-CE, TCE-BPR, RCE-BPR (see the header). */
#include "til_baselines.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "til_adam.h"
#include "til_backbone.h"
#include "til_cluster.h"
#include "til_loss.h"
#include "til_model.h"
#include "til_par.h"
#include "til_rng.h"
#include "til_sampler.h"

static const char *const names[] = {"bpr", "wbpr", "aobpr", "pris", "tce", "rce", "tce-bpr", "rce-bpr"};

void til_bl_defaults(til_bl_cfg *c)
{
    memset(c, 0, sizeof *c);
    c->negatives = 5;
    c->drop_rate = 0.2;
    c->drop_warmup = 30000;
    c->beta = 0.2;
    c->aobpr_lambda = 500;
    c->aobpr_refresh = 0;
    c->pris_clusters = 16;
    c->pris_pop = 0;
    c->pop_exp = 1;
}

int til_bl_method_parse(const char *s)
{
    for (int k = 0; k < (int)(sizeof names / sizeof *names); k++)
        if (!strcmp(s, names[k]))
            return k;
    return -1;
}

const char *til_bl_method_name(int m)
{
    return m >= 0 && m < (int)(sizeof names / sizeof *names) ? names[m] : "?";
}

/* ------------------------------------------------------------------ alias */

int til_alias_build(til_alias *a, const double *p, uint32_t n, til_err *e)
{
    memset(a, 0, sizeof *a);
    double sum = 0;
    for (uint32_t k = 0; k < n; k++) {
        if (!(p[k] >= 0) || !isfinite(p[k]))
            return til_seterr(e, "alias: weight %u is %g", k, p[k]);
        sum += p[k];
    }
    if (n == 0 || !(sum > 0))
        return til_seterr(e, "alias: no positive weight");
    double *q = til_malloc(n, sizeof *q, e);
    uint32_t *small = til_malloc(n, sizeof *small, e), *large = til_malloc(n, sizeof *large, e);
    a->prob = til_malloc(n, sizeof *a->prob, e);
    a->alias = til_malloc(n, sizeof *a->alias, e);
    if (!q || !small || !large || !a->prob || !a->alias) {
        free(q), free(small), free(large);
        til_alias_free(a);
        return -1;
    }
    a->n = n;
    uint32_t ns = 0, nl = 0;
    for (uint32_t k = 0; k < n; k++) {
        q[k] = p[k] * n / sum;
        if (q[k] < 1)
            small[ns++] = k;
        else
            large[nl++] = k;
    }
    while (ns && nl) { /* Vose: fill a short column with a long one */
        uint32_t s = small[--ns], l = large[nl - 1];
        a->prob[s] = (float)q[s];
        a->alias[s] = l;
        q[l] -= 1 - q[s];
        if (q[l] < 1) {
            nl--;
            small[ns++] = l;
        }
    }
    while (nl) {
        uint32_t l = large[--nl];
        a->prob[l] = 1, a->alias[l] = l;
    }
    while (ns) { /* rounding leftovers */
        uint32_t s = small[--ns];
        a->prob[s] = 1, a->alias[s] = s;
    }
    free(q), free(small), free(large);
    return 0;
}

uint32_t til_alias_draw(const til_alias *a, til_rng *r)
{
    uint32_t k = (uint32_t)til_rng_below(r, a->n);
    return til_rng_uniform(r) < a->prob[k] ? k : a->alias[k];
}

void til_alias_free(til_alias *a)
{
    free(a->prob);
    free(a->alias);
    memset(a, 0, sizeof *a);
}

/* ------------------------------------------------------------------ losses */

double til_bl_drop_rate(double eps_max, uint64_t warmup, uint64_t T)
{
    if (warmup <= 1 || T >= warmup)
        return eps_max;
    return eps_max * (double)T / (double)(warmup - 1); /* np.linspace(0, eps_max, warmup)[T] */
}

uint64_t til_bl_n_keep(double eps, uint64_t n)
{
    double k = (1.0 - eps) * (double)n;
    uint64_t r = (uint64_t)k; /* int() truncates */
    return r > n ? n : r;
}

/* sort key descending (drop first), ties: higher index dropped first */
static int cmp_key_desc(const void *a, const void *b, void *ctx)
{
    const float *key = ctx;
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    float kx = key[x], ky = key[y];
    if (kx != ky)
        return kx < ky ? 1 : -1;
    return (x < y) - (x > y);
}

static void sort_desc(const float *key, uint32_t *idx, uint64_t n)
{
    for (uint64_t k = 0; k < n; k++)
        idx[k] = (uint32_t)k;
    qsort_r(idx, n, sizeof *idx, cmp_key_desc, (void *)key);
}

void til_bl_loss(int method, const til_bl_cfg *c, uint64_t T, const float *s_pos, const float *s_neg,
                 const float *w, uint64_t n, float *loss, float *g_pos, float *g_neg, uint8_t *kept, uint32_t *idx)
{
    if (kept)
        memset(kept, 1, n);
    if (n == 0)
        return;
    float scale = 1.0f / (float)n;
    switch (method) {
    default: /* BPR-sampled methods: BPR with optional weights */
        til_loss_bpr(s_pos, s_neg, w, scale, 0, n, loss, g_pos, g_neg);
        return;
    case TIL_M_RCE_BPR:
        for (uint64_t b = 0; b < n; b++) {
            float x = s_pos[b] - s_neg[b];
            float wb = powf(til_sigmoid(x), (float)c->beta); /* detached */
            loss[b] = wb * til_softplus(-x);
            float g = -til_sigmoid(-x) * scale * wb;
            g_pos[b] = g;
            g_neg[b] = -g;
        }
        return;
    case TIL_M_TCE_BPR: {
        double eps = til_bl_drop_rate(c->drop_rate, c->drop_warmup, T);
        uint64_t keep = til_bl_n_keep(eps, n);
        for (uint64_t b = 0; b < n; b++)
            loss[b] = til_softplus(-(s_pos[b] - s_neg[b]));
        sort_desc(loss, idx, n);
        float sk = keep ? 1.0f / (float)keep : 0.0f, mul = keep ? (float)n / (float)keep : 0.0f;
        for (uint64_t b = 0; b < n; b++) {
            float x = s_pos[b] - s_neg[b];
            float g = -til_sigmoid(-x) * sk;
            loss[b] *= mul; /* sum(loss)/n = mean over the kept */
            g_pos[b] = g;
            g_neg[b] = -g;
        }
        for (uint64_t k = 0; k < n - keep; k++) { /* the largest losses */
            uint32_t b = idx[k];
            loss[b] = g_pos[b] = g_neg[b] = 0;
            if (kept)
                kept[b] = 0;
        }
        return;
    }
    case TIL_M_TCE: {
        /* 2n elements; negatives sort as 0, so only positives are dropped (eps <= .5) */
        double eps = til_bl_drop_rate(c->drop_rate, c->drop_warmup, T);
        uint64_t keep = til_bl_n_keep(eps, 2 * n), drop = 2 * n - keep;
        if (drop > n)
            drop = n, keep = n;
        for (uint64_t b = 0; b < n; b++)
            loss[b] = til_softplus(-s_pos[b]); /* positive's BCE, label 1 */
        sort_desc(loss, idx, n);
        float sk = 1.0f / (float)keep, mul = (float)n / (float)keep;
        for (uint64_t b = 0; b < n; b++) {
            float ln = til_softplus(s_neg[b]); /* negative's BCE, label 0 */
            loss[b] = (loss[b] + ln) * mul;
            g_pos[b] = -til_sigmoid(-s_pos[b]) * sk;
            g_neg[b] = til_sigmoid(s_neg[b]) * sk;
        }
        for (uint64_t k = 0; k < drop; k++) {
            uint32_t b = idx[k];
            loss[b] = til_softplus(s_neg[b]) * mul;
            g_pos[b] = 0;
            if (kept)
                kept[b] = 0;
        }
        return;
    }
    case TIL_M_RCE: {
        float s2 = 0.5f * scale, bt = (float)c->beta;
        for (uint64_t b = 0; b < n; b++) {
            float pp = til_sigmoid(s_pos[b]), pn = til_sigmoid(s_neg[b]);
            float wp = powf(pp, bt), wn = powf(1.0f - pn, bt); /* detached */
            loss[b] = 0.5f * (wp * til_softplus(-s_pos[b]) + wn * til_softplus(s_neg[b]));
            g_pos[b] = -til_sigmoid(-s_pos[b]) * wp * s2;
            g_neg[b] = pn * wn * s2;
        }
        return;
    }
    }
}

/* ------------------------------------------------------------------ AOBPR */

typedef struct {
    float v;
    uint32_t id;
} vid;

static int cmp_vid_desc(const void *a, const void *b)
{
    const vid *x = a, *y = b;
    if (x->v != y->v)
        return x->v < y->v ? 1 : -1;
    return (x->id > y->id) - (x->id < y->id);
}

typedef struct {
    const float *V;
    uint32_t n;
    int d;
    uint32_t *ord;
    float *sigma;
    vid *buf; /* parts x n */
} ord_job;

static void ord_part(void *ctx, int part, uint64_t lo, uint64_t hi)
{
    ord_job *j = ctx;
    vid *b = j->buf + (uint64_t)part * j->n;
    for (uint64_t f = lo; f < hi; f++) {
        double s = 0, s2 = 0;
        for (uint32_t i = 0; i < j->n; i++) {
            float v = j->V[(uint64_t)i * j->d + f];
            b[i].v = v, b[i].id = i;
            s += v;
        }
        double mu = s / j->n;
        for (uint32_t i = 0; i < j->n; i++)
            s2 += (b[i].v - mu) * (b[i].v - mu);
        j->sigma[f] = (float)sqrt(s2 / j->n);
        qsort(b, j->n, sizeof *b, cmp_vid_desc);
        for (uint32_t i = 0; i < j->n; i++)
            j->ord[f * j->n + i] = b[i].id;
    }
}

int til_aobpr_order(const float *V, uint32_t n, int d, int threads, uint32_t *ord, float *sigma, til_err *e)
{
    int parts = TIL_MIN(threads, d);
    vid *buf = til_malloc((uint64_t)parts * n, sizeof *buf, e);
    if (!buf)
        return -1;
    ord_job j = {V, n, d, ord, sigma, buf};
    til_par_for(parts, (uint64_t)d, ord_part, &j);
    free(buf);
    return 0;
}

uint32_t til_aobpr_rank(til_rng *r, uint32_t n, double lambda)
{
    /* inverse CDF of the continuous exp(-x/lambda) on [0, n), floored: exact for
     * the discrete P(r) ∝ exp(-r/lambda), r = 0..n-1 */
    double u = til_rng_uniform(r);
    double x = -lambda * log1p(-u * -expm1(-(double)n / lambda));
    uint32_t k = x < 0 ? 0 : (uint32_t)x;
    return k >= n ? n - 1 : k;
}

uint32_t til_aobpr_draw(til_rng *r, const float *p, const uint32_t *ord, const float *sigma, uint32_t n, int d,
                        double lambda, int *fo)
{
    double tot = 0;
    for (int f = 0; f < d; f++)
        tot += fabs((double)p[f]) * sigma[f];
    int f = 0;
    if (tot > 0) {
        double x = til_rng_uniform(r) * tot, c = 0;
        for (f = 0; f < d - 1; f++) {
            c += fabs((double)p[f]) * sigma[f];
            if (x < c)
                break;
        }
        while (fabs((double)p[f]) * sigma[f] == 0 && f > 0) /* rounding at the top end */
            f--;
    } else {
        f = (int)til_rng_below(r, (uint64_t)d);
    }
    *fo = f;
    uint32_t k = til_aobpr_rank(r, n, lambda);
    return p[f] > 0 ? ord[(uint64_t)f * n + k] : ord[(uint64_t)f * n + (n - 1 - k)];
}

/* ------------------------------------------------------------------ PRIS */

void til_pris_free(til_pris *p)
{
    free(p->centers);
    free(p->assign);
    free(p->list);
    free(p->start);
    free(p->cum);
    free(p->logw);
    free(p->logm);
    memset(p, 0, sizeof *p);
}

int til_pris_build(til_pris *p, const float *V, uint32_t n, int d, int K, const double *mass, uint64_t seed,
                   int threads, til_err *e)
{
    if (K < 1 || (uint32_t)K > n)
        return til_seterr(e, "pris: %d clusters for %u items", K, n);
    if (!p->centers) {
        p->K = K, p->d = d, p->n_items = n, p->mass = mass;
        p->centers = til_malloc((uint64_t)K * d, sizeof *p->centers, e);
        p->assign = til_malloc(n, sizeof *p->assign, e);
        p->list = til_malloc(n, sizeof *p->list, e);
        p->start = til_calloc((size_t)K + 1, sizeof *p->start, e);
        p->cum = til_malloc((size_t)n + 1, sizeof *p->cum, e);
        p->logw = til_malloc((size_t)K, sizeof *p->logw, e);
        p->logm = til_malloc(n, sizeof *p->logm, e);
        if (!p->centers || !p->assign || !p->list || !p->start || !p->cum || !p->logw || !p->logm) {
            til_pris_free(p);
            return -1;
        }
    }
    if (til_kmeans(V, n, d, K, 20, seed, threads, p->centers, p->assign, NULL, e))
        return -1;
    memset(p->start, 0, ((size_t)K + 1) * sizeof *p->start);
    for (uint32_t i = 0; i < n; i++)
        p->start[p->assign[i] + 1]++;
    for (int k = 0; k < K; k++)
        p->start[k + 1] += p->start[k];
    uint64_t *fill = til_malloc((size_t)K, sizeof *fill, e);
    if (!fill)
        return -1;
    memcpy(fill, p->start, (size_t)K * sizeof *fill);
    for (uint32_t i = 0; i < n; i++)
        p->list[fill[p->assign[i]]++] = i;
    free(fill);
    p->cum[0] = 0;
    for (uint32_t k = 0; k < n; k++) {
        uint32_t i = p->list[k];
        double m = mass ? mass[i] : 1.0;
        p->cum[k + 1] = p->cum[k] + m;
        p->logm[i] = m > 0 ? (float)log(m) : -INFINITY;
    }
    for (int k = 0; k < K; k++) {
        double w = p->cum[p->start[k + 1]] - p->cum[p->start[k]];
        p->logw[k] = w > 0 ? log(w) : -INFINITY;
    }
    return 0;
}

void til_pris_user(const til_pris *p, const float *pu, double *a, double *prob)
{
    double mx = -INFINITY;
    for (int k = 0; k < p->K; k++) {
        const float *c = p->centers + (uint64_t)k * p->d;
        double s = 0;
        for (int l = 0; l < p->d; l++)
            s += (double)pu[l] * c[l];
        a[k] = s + p->logw[k]; /* log(w_k exp(p_u . c_k)) */
        if (a[k] > mx)
            mx = a[k];
    }
    double z = 0;
    for (int k = 0; k < p->K; k++)
        z += prob[k] = exp(a[k] - mx);
    for (int k = 0; k < p->K; k++)
        prob[k] /= z;
}

uint32_t til_pris_draw(const til_pris *p, til_rng *r, const double *a, const double *prob, double *logq)
{
    double x = til_rng_uniform(r), c = 0;
    int k = 0;
    for (; k < p->K - 1; k++) {
        c += prob[k];
        if (x < c && prob[k] > 0)
            break;
    }
    while (!(prob[k] > 0) && k > 0) /* rounding at the top end */
        k--;
    /* within cluster k: mass-proportional, binary search on cum */
    uint64_t lo = p->start[k], hi = p->start[k + 1];
    double base = p->cum[lo], y = base + til_rng_uniform(r) * (p->cum[hi] - base);
    while (hi - lo > 1) {
        uint64_t mid = lo + (hi - lo) / 2;
        if (p->cum[mid] <= y)
            lo = mid;
        else
            hi = mid;
    }
    uint32_t j = p->list[lo];
    *logq = a[k] - p->logw[k] + p->logm[j];
    return j;
}

void til_pris_weights(const float *s, const double *logq, int N, float *w)
{
    double mx = -INFINITY, z = 0;
    for (int k = 0; k < N; k++)
        if (s[k] - logq[k] > mx)
            mx = s[k] - logq[k];
    double t[N > 0 ? N : 1];
    for (int k = 0; k < N; k++)
        z += t[k] = exp(s[k] - logq[k] - mx);
    for (int k = 0; k < N; k++)
        w[k] = (float)(t[k] / z);
}

/* ------------------------------------------------------------------ state */

void til_bl_free(til_bl *b)
{
    free(b->pop);
    til_alias_free(&b->alias);
    free(b->snap);
    free(b->ord);
    free(b->sigma);
    til_pris_free(&b->pris);
    free(b->eu);
    free(b->ei);
    free(b->ej);
    free(b->idx);
    free(b->w);
    free(b->kept);
    free(b->scratch);
    memset(b, 0, sizeof *b);
}

int til_bl_expand(const til_bl *b) { return b->method == TIL_M_PRIS ? b->cfg.negatives : 1; }
int til_bl_per_batch(const til_bl *b) { return b->method == TIL_M_AOBPR || b->method == TIL_M_PRIS; }
const float *til_bl_weights(const til_bl *b) { return b->method == TIL_M_PRIS ? b->w : NULL; }

uint32_t til_bl_pop_draw(const void *ctx, til_rng *r) { return til_alias_draw(&((const til_bl *)ctx)->alias, r); }

int til_bl_init(til_bl *b, int method, const til_bl_cfg *c, const til_inter *train, int dim, uint64_t batch,
                uint64_t seed, til_err *e)
{
    memset(b, 0, sizeof *b);
    b->method = method;
    b->cfg = *c;
    b->train = train;
    b->seed = seed;
    b->batch = batch;
    b->d = dim;
    if (method < 0 || method > TIL_M_RCE_BPR)
        return til_seterr(e, "unknown method %d", method);
    if (c->drop_rate < 0 || c->drop_rate > 0.5 || c->negatives < 1 || c->negatives > 1000 || !(c->aobpr_lambda > 0) ||
        c->pris_clusters < 1 || c->pris_clusters > TIL_CLUSTER_MAXK || c->pop_exp < 0)
        return til_seterr(e, "bad baseline configuration");
    uint32_t ni = train->n_items;
    uint64_t N = (uint64_t)til_bl_expand(b), cap = batch * N;
    b->cap = cap;
    if (!(b->idx = til_malloc(cap, sizeof *b->idx, e)) || !(b->kept = til_malloc(cap, 1, e)))
        goto fail;
    if (method == TIL_M_WBPR || (method == TIL_M_PRIS && c->pris_pop)) {
        uint32_t *cnt = til_inter_item_counts(train, e);
        if (!cnt || !(b->pop = til_malloc(ni, sizeof *b->pop, e))) {
            free(cnt);
            goto fail;
        }
        for (uint32_t i = 0; i < ni; i++)
            b->pop[i] = cnt[i] ? pow((double)cnt[i], c->pop_exp) : 0.0;
        free(cnt);
        double tot = 0;
        for (uint32_t i = 0; i < ni; i++)
            tot += b->pop[i];
        /* every user needs a non-positive item of positive mass */
        for (uint32_t u = 0; u < train->n_users; u++) {
            double s = 0;
            for (uint64_t k = train->indptr[u]; k < train->indptr[u + 1]; k++)
                s += b->pop[train->items[k]];
            if (!(s < tot * (1 - 1e-12))) {
                til_seterr(e, "user %u has interacted with every item of nonzero popularity: no popularity negative",
                           u);
                goto fail;
            }
        }
        if (method == TIL_M_WBPR && til_alias_build(&b->alias, b->pop, ni, e))
            goto fail;
    }
    if (til_bl_per_batch(b)) {
        uint64_t nr = (uint64_t)train->n_users + ni;
        if (!(b->snap = til_malloc(nr * dim, sizeof *b->snap, e)))
            goto fail;
    }
    if (method == TIL_M_AOBPR) {
        if (!(b->ord = til_malloc((uint64_t)ni * dim, sizeof *b->ord, e)) ||
            !(b->sigma = til_malloc((size_t)dim, sizeof *b->sigma, e)))
            goto fail;
        double draws = c->aobpr_refresh ? (double)c->aobpr_refresh : (double)ni * log((double)ni);
        b->refresh_batches = (uint64_t)llround(draws / (double)batch);
        if (b->refresh_batches < 1)
            b->refresh_batches = 1;
    }
    if (method == TIL_M_PRIS) {
        if ((uint32_t)c->pris_clusters > ni)
            return til_seterr(e, "--pris-clusters %d > %u items", c->pris_clusters, ni);
        if (!(b->eu = til_malloc(cap, sizeof *b->eu, e)) || !(b->ei = til_malloc(cap, sizeof *b->ei, e)) ||
            !(b->ej = til_malloc(cap, sizeof *b->ej, e)) || !(b->w = til_malloc(cap, sizeof *b->w, e)) ||
            !(b->scratch = til_malloc(cap, sizeof *b->scratch, e)))
            goto fail;
    }
    return 0;
fail:
    til_bl_free(b);
    return -1;
}

/* Snapshot of U and V for the adaptive samplers, after bringing every row up to date. */
static int refresh(til_bl *b, til_backbone *bb, til_adam *adam, uint64_t epoch, int threads, til_err *e)
{
    til_adam_sync(adam, threads);
    if (bb->ops->forward(bb, NULL, threads, e))
        return -1;
    uint64_t nu = b->train->n_users, ni = b->train->n_items, d = (uint64_t)b->d;
    memcpy(b->snap, bb->U, nu * d * sizeof(float));
    memcpy(b->snap + nu * d, bb->V, ni * d * sizeof(float));
    const float *V = b->snap + nu * d;
    if (b->method == TIL_M_AOBPR)
        return til_aobpr_order(V, (uint32_t)ni, b->d, threads, b->ord, b->sigma, e);
    return til_pris_build(&b->pris, V, (uint32_t)ni, b->d, b->cfg.pris_clusters, b->pop,
                          b->seed ^ (0x9e3779b97f4a7c15ull * (epoch + 1)), threads, e);
}

#define MAX_TRIES 1000

int til_bl_batch(til_bl *b, til_backbone *bb, til_adam *adam, uint64_t epoch, uint64_t bidx, const til_batch *in,
                 uint32_t *j, til_batch *out, int threads, til_err *e)
{
    til_batch src = *in; /* in and out may be the same */
    in = &src;
    *out = src;
    out->j = j;
    if (!til_bl_per_batch(b))
        return 0;
    int due = b->method == TIL_M_AOBPR ? bidx % b->refresh_batches == 0 : bidx == 0;
    if ((due || !b->have_snap) && refresh(b, bb, adam, epoch, threads, e))
        return -1;
    b->have_snap = 1;
    const til_inter *tr = b->train;
    uint64_t d = (uint64_t)b->d, ni = tr->n_items;
    const float *U = b->snap;
    til_rng r;
    til_rng_seed(&r, b->seed, til_stream(TIL_STREAM_BL, epoch, bidx));
    if (b->method == TIL_M_AOBPR) {
        for (uint64_t k = 0; k < in->n; k++) {
            uint32_t u = in->u[k], x = 0;
            int f, t = 0;
            do
                x = til_aobpr_draw(&r, U + u * d, b->ord, b->sigma, (uint32_t)ni, b->d, b->cfg.aobpr_lambda, &f);
            while (til_inter_has(tr, u, x) && ++t < MAX_TRIES);
            while (til_inter_has(tr, u, x)) /* fallback: uniform */
                x = (uint32_t)til_rng_below(&r, ni);
            j[k] = x;
        }
        return 0;
    }
    /* PRIS: expand to n x N triplets */
    int N = b->cfg.negatives, K = b->pris.K;
    double a[TIL_CLUSTER_MAXK], prob[TIL_CLUSTER_MAXK];
    for (uint64_t k = 0; k < in->n; k++) {
        uint32_t u = in->u[k];
        til_pris_user(&b->pris, U + u * d, a, prob);
        (void)K;
        for (int q = 0; q < N; q++) {
            uint64_t t = k * (uint64_t)N + q;
            uint32_t x;
            double lq;
            int tries = 0;
            do
                x = til_pris_draw(&b->pris, &r, a, prob, &lq);
            while (til_inter_has(tr, u, x) && ++tries < MAX_TRIES);
            while (til_inter_has(tr, u, x)) { /* fallback: uniform, its proposal value kept */
                x = (uint32_t)til_rng_below(&r, ni);
                lq = a[b->pris.assign[x]] - b->pris.logw[b->pris.assign[x]] + b->pris.logm[x];
            }
            b->eu[t] = u;
            b->ei[t] = in->i[k];
            b->ej[t] = x;
            b->scratch[t] = lq;
        }
    }
    out->n = in->n * (uint64_t)N;
    out->u = b->eu;
    out->i = b->ei;
    out->j = b->ej;
    return 0;
}

int til_bl_step_loss(til_bl *b, uint64_t n, const float *s_pos, const float *s_neg, float *loss, float *g_pos,
                     float *g_neg, til_err *e)
{
    if (n > b->cap)
        return til_seterr(e, "batch of %llu > method capacity", (unsigned long long)n);
    const float *w = NULL;
    if (b->method == TIL_M_PRIS) {
        int N = b->cfg.negatives;
        for (uint64_t k = 0; k < n; k += (uint64_t)N) { /* one positive's N negatives */
            til_pris_weights(s_neg + k, b->scratch + k, N, b->w + k);
            for (int q = 0; q < N; q++)
                b->w[k + q] *= (float)N; /* mean over triplets = mean over positives */
        }
        w = b->w;
    }
    til_bl_loss(b->method, &b->cfg, b->T, s_pos, s_neg, w, n, loss, g_pos, g_neg, b->kept, b->idx);
    return 0;
}

int til_bl_meta(til_model *m, const til_bl *b, til_err *e)
{
    const til_bl_cfg *c = &b->cfg;
    const char *samp = "uniform";
    switch (b->method) {
    case TIL_M_WBPR: samp = "popularity"; break;
    case TIL_M_AOBPR: samp = "aobpr"; break;
    case TIL_M_PRIS: samp = c->pris_pop ? "pris-cluster-pop" : "pris-cluster-uniform"; break;
    }
    if (til_model_set(m, "sampler", samp, e) || til_model_setf(m, e, "negatives", "%d", til_bl_expand(b)))
        return -1;
    switch (b->method) {
    case TIL_M_WBPR: return til_model_setf(m, e, "pop_exponent", "%.17g", c->pop_exp);
    case TIL_M_AOBPR:
        return til_model_setf(m, e, "aobpr_lambda", "%.17g", c->aobpr_lambda) ||
                       til_model_setf(m, e, "aobpr_refresh_batches", "%llu", (unsigned long long)b->refresh_batches)
                   ? -1
                   : 0;
    case TIL_M_PRIS:
        return til_model_setf(m, e, "pris_clusters", "%d", c->pris_clusters) ||
                       (c->pris_pop && til_model_setf(m, e, "pop_exponent", "%.17g", c->pop_exp))
                   ? -1
                   : 0;
    case TIL_M_TCE:
    case TIL_M_TCE_BPR:
        return til_model_setf(m, e, "drop_rate", "%.17g", c->drop_rate) ||
                       til_model_setf(m, e, "drop_warmup", "%llu", (unsigned long long)c->drop_warmup)
                   ? -1
                   : 0;
    case TIL_M_RCE:
    case TIL_M_RCE_BPR: return til_model_setf(m, e, "rce_beta", "%.17g", c->beta);
    }
    return 0;
}

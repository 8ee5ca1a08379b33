/* til_eval: exact full-ranking evaluation (see til_eval.h for the metrics).
 *
 * The users with test items are cut into fixed blocks of B users (B depends
 * only on n_items and opts->block, never on the thread count, so every score is
 * computed by the same sgemm call whatever the threads). Blocks are split over
 * opts->threads parts with til_par_for; each part owns a B x n_items score
 * buffer and runs OpenBLAS single-threaded. For each score row:
 *   1. top-maxk selection with a bounded min-heap: items are scanned in id
 *      order in chunks of 16; a chunk is looked at element by element only when
 *      one of its scores beats the heap's worst (the common case is one
 *      vectorised compare per chunk). Since ids ascend, an item that only ties
 *      the worst never enters: ties go to the lower id. Excluded (train,
 *      exclude) items are skipped by binary search only when they would enter.
 *   2. the full-ranking rank of the best candidate test item t (score s_t):
 *      1 + #{candidates i : s_i > s_t or (s_i == s_t and i < t)}, counted over
 *      the whole row and corrected for excluded items.
 * Per-user metrics go into an array indexed by evaluation order and are summed
 * in user order afterwards, so the averages do not depend on the threads.
 * A NaN score is an error (the model diverged). */
#include "til_eval.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "til_cuda.h"
#include "til_model.h"
#include "til_par.h"

#ifdef TIL_HAVE_BLAS
#include <cblas.h>
#endif

til_scorer til_scorer_dot(const float *U, const float *V, uint32_t n_users, uint32_t n_items, int dim)
{
    til_scorer s;
    memset(&s, 0, sizeof s);
    s.n_users = n_users;
    s.n_items = n_items;
    s.U = U;
    s.V = V;
    s.dim = dim;
    return s;
}

int til_scorer_check_data(const til_scorer *s, const char *mname, const til_inter *t, const char *dname,
                          til_err *e)
{
    if (t->n_users != s->n_users || t->n_items != s->n_items)
        return til_seterr(e, "%s has %u users x %u items but model %s has %u x %u: not from the same dataset",
                          dname, t->n_users, t->n_items, mname, s->n_users, s->n_items);
    return 0;
}

int til_scorer_block(const til_scorer *s, const uint32_t *users, int n, float *ubuf, float *out, til_err *e)
{
    if (s->score)
        return s->score(s->ctx, users, n, out, e);
    const int d = s->dim;
    const uint64_t ni = s->n_items;
    /* out[n x ni] = U[users] (n x d) . V^T (d x ni) */
#ifdef TIL_HAVE_BLAS
    for (int r = 0; r < n; r++)
        memcpy(ubuf + (size_t)r * d, s->U + (size_t)users[r] * d, (size_t)d * sizeof(float));
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, (int)ni, d, 1.0f, ubuf, d, s->V, d, 0.0f, out,
                (int)ni);
#else
    (void)ubuf;
    for (int r = 0; r < n; r++) {
        const float *pu = s->U + (size_t)users[r] * d;
        float *o = out + (size_t)r * ni;
        for (uint64_t i = 0; i < ni; i++) {
            const float *qi = s->V + i * d;
            float acc = 0;
            for (int k = 0; k < d; k++)
                acc += pu[k] * qi[k];
            o[i] = acc;
        }
    }
#endif
    return 0;
}

int til_eval_block_size(const til_scorer *s, const til_eval_opts *o)
{
    if (o->block > 0)
        return o->block;
    /* a block's scores take about 4 MiB: read back from L3 right after sgemm */
    uint64_t b = (4u << 20) / 4 / (s->n_items ? s->n_items : 1);
    return (int)TIL_MAX(8, TIL_MIN(256, b));
}

typedef struct {
    float s;
    uint32_t id;
} cand;

/* a is worse than b: lower score, or equal score and higher id */
static inline int worse(cand a, cand b) { return a.s < b.s || (a.s == b.s && a.id > b.id); }

static void sift_down(cand *h, int n, int p)
{
    for (;;) {
        int c = 2 * p + 1;
        if (c >= n)
            return;
        if (c + 1 < n && worse(h[c + 1], h[c]))
            c++;
        if (!worse(h[c], h[p]))
            return;
        cand t = h[c];
        h[c] = h[p];
        h[p] = t;
        p = c;
    }
}

static void sift_up(cand *h, int p)
{
    while (p > 0) {
        int q = (p - 1) / 2;
        if (!worse(h[p], h[q]))
            return;
        cand t = h[p];
        h[p] = h[q];
        h[q] = t;
        p = q;
    }
}

static inline int excluded(const til_inter *tr, const til_inter *ex, uint32_t u, uint32_t i)
{
    return til_inter_has(tr, u, i) || (ex && til_inter_has(ex, u, i));
}

static inline int better_than(float s, uint32_t i, float st, uint32_t t) { return s > st || (s == st && i < t); }

/* One pass over a score row (the row is read once from memory):
 *   - the top-m candidates into h, best first (returns their count);
 *   - *better = #{i : s_i > st or (s_i == st and i < t)} over ALL items
 *     (excluded ones too: the caller subtracts them); st NaN counts nothing;
 *   - *nan = number of NaN scores.
 * Chunks of 256, then 16, are compared in vector registers; a chunk is looked
 * at item by item only while the heap fills or when one of its scores beats
 * the worst. */
typedef struct {
    uint32_t u;
    const til_inter *tr, *ex;
    cand *h;
    int hn, m;
    float thr;
} sel;

static inline void consider(sel *q, float s, uint32_t i)
{
    if (q->hn < q->m) {
        if (excluded(q->tr, q->ex, q->u, i))
            return;
        q->h[q->hn] = (cand){s, i};
        sift_up(q->h, q->hn++);
        if (q->hn == q->m)
            q->thr = q->h[0].s;
    } else if (s > q->thr && !excluded(q->tr, q->ex, q->u, i)) {
        q->h[0] = (cand){s, i};
        sift_down(q->h, q->hn, 0);
        q->thr = q->h[0].s;
    }
}

static int scan_row(const float *r, uint32_t n, uint32_t u, const til_inter *tr, const til_inter *ex, int m,
                    cand *h, float st, uint32_t t, uint64_t *better, uint64_t *nan)
{
    sel q = {u, tr, ex, h, 0, m, -INFINITY};
    uint64_t gt = 0, eq = 0, nn = 0;
    uint32_t i = 0;
    /* 256 items at a time: counts and "any above the worst" in vector
     * accumulators (one horizontal reduction per 256), then 16 at a time */
    for (; i + 256 <= n; i += 256) {
        const float *c = r + i;
        int above = 0, g = 0, e = 0, z = 0;
        for (int j = 0; j < 256; j++) {
            above |= c[j] > q.thr;
            g += c[j] > st;
            e += c[j] == st;
            z += c[j] != c[j];
        }
        gt += g;
        nn += z;
        if (e)
            for (uint32_t j = 0; j < 256; j++)
                eq += c[j] == st && i + j < t;
        if (q.hn < m || above)
            for (uint32_t j0 = 0; j0 < 256; j0 += 16) {
                int a = 0;
                for (int j = 0; j < 16; j++)
                    a |= c[j0 + j] > q.thr;
                if (a || q.hn < m)
                    for (uint32_t j = j0; j < j0 + 16; j++)
                        consider(&q, c[j], i + j);
            }
    }
    for (; i < n; i++) {
        gt += r[i] > st;
        eq += r[i] == st && i < t;
        nn += r[i] != r[i];
        consider(&q, r[i], i);
    }
    *better = gt + eq;
    *nan = nn;
    /* heap -> best first (m is small: insertion sort) */
    int hn = q.hn;
    for (int a = 1; a < hn; a++) {
        cand x = h[a];
        int b = a;
        while (b > 0 && worse(h[b - 1], x)) {
            h[b] = h[b - 1];
            b--;
        }
        h[b] = x;
    }
    return hn;
}

typedef struct {
    const til_scorer *s;
    const til_inter *train, *excl, *test;
    const til_eval_opts *o;
    const uint32_t *users; /* evaluated users, ascending */
    uint64_t n_eval;
    int B, maxk, n_k, stride;
    int score_only; /* benchmark floor: score the blocks, select nothing */
    /* til_recommend: top-k items and scores per listed user (n_eval x maxk) */
    uint32_t *rec_items;
    float *rec_scores;
    int *rec_n;
    const double *idcg; /* idcg[n] = sum_{r=1..n} 1/log2(r+1), n <= maxk */
    double *vals;       /* n_eval x stride */
    int *rc;            /* per part */
    til_err *err;       /* per part */
} run_ctx;

/* per-user value layout: recall[n_k] ndcg[n_k] precision[n_k] hitrate[n_k] mrr */
static int eval_row(const run_ctx *c, uint32_t u, const float *row, cand *h, double *v, til_err *e)
{
    const uint32_t n = c->s->n_items;
    const til_inter *tr = c->train, *ex = c->excl, *te = c->test;
    /* best candidate test item t (score st): its rank gives the MRR */
    int have = 0;
    float st = NAN;
    uint32_t t = 0;
    for (uint64_t p = te->indptr[u]; p < te->indptr[u + 1]; p++) {
        uint32_t i = te->items[p];
        if (excluded(tr, ex, u, i))
            continue;
        if (!have || better_than(row[i], i, st, t)) {
            st = row[i];
            t = i;
            have = 1;
        }
    }
    uint64_t better, nan;
    int hn = scan_row(row, n, u, tr, ex, c->maxk, h, st, t, &better, &nan);
    if (nan)
        return til_seterr(e, "scores of user %u contain %llu NaN values (diverged model?)", u,
                          (unsigned long long)nan);
    double mrr = 0;
    if (have) {
        /* remove excluded items counted as better (train, then exclude-only) */
        for (uint64_t p = tr->indptr[u]; p < tr->indptr[u + 1]; p++)
            better -= better_than(row[tr->items[p]], tr->items[p], st, t);
        if (ex)
            for (uint64_t p = ex->indptr[u]; p < ex->indptr[u + 1]; p++) {
                uint32_t i = ex->items[p];
                if (!til_inter_has(tr, u, i))
                    better -= better_than(row[i], i, st, t);
            }
        mrr = 1.0 / (double)(better + 1);
    }
    til_eval_user_metrics(c->o, c->idcg, te, u, &h[0].id, sizeof *h / sizeof h[0].id, hn, mrr, v);
    return 0;
}

void til_eval_idcg(int maxk, double *idcg)
{
    idcg[0] = 1; /* unused: n_test >= 1 */
    for (int r = 1; r <= maxk; r++)
        idcg[r] = (r > 1 ? idcg[r - 1] : 0) + 1.0 / log2(r + 1.0);
}

void til_eval_user_metrics(const til_eval_opts *o, const double *idcg, const til_inter *te, uint32_t u,
                           const uint32_t *ids, size_t stride, int hn, double mrr, double *v)
{
    uint64_t nt = til_inter_deg(te, u);
    /* hits by rank, then the metrics per cutoff */
    int hits = 0, r = 0, n_k = o->n_k;
    double dcg = 0;
    for (int q = 0; q < n_k; q++) {
        int k = o->ks[q];
        for (; r < k && r < hn; r++)
            if (til_inter_has(te, u, ids[(size_t)r * stride])) {
                hits++;
                dcg += 1.0 / log2(r + 2.0);
            }
        v[q] = (double)hits / (double)nt;
        v[n_k + q] = dcg / idcg[TIL_MIN((uint64_t)k, nt)];
        v[2 * n_k + q] = (double)hits / k;
        v[3 * n_k + q] = hits > 0;
    }
    v[4 * n_k] = mrr;
}

static void run_part(void *vctx, int part, uint64_t lo, uint64_t hi)
{
    run_ctx *c = vctx;
    til_err *e = &c->err[part];
    c->rc[part] = 0;
    if (lo >= hi)
        return;
    const int B = c->B;
    const uint64_t ni = c->s->n_items;
    float *buf = til_aligned_calloc((size_t)B * ni, sizeof(float), e);
    float *ubuf = til_aligned_calloc((size_t)B * (c->s->dim > 0 ? c->s->dim : 1), sizeof(float), e);
    cand *h = til_malloc((size_t)c->maxk + 1, sizeof *h, e);
    if (!buf || !ubuf || !h) {
        c->rc[part] = -1;
        goto out;
    }
    for (uint64_t b = lo; b < hi; b++) {
        uint64_t u0 = b * B;
        int n = (int)TIL_MIN((uint64_t)B, c->n_eval - u0);
        if (til_scorer_block(c->s, c->users + u0, n, ubuf, buf, e)) {
            c->rc[part] = -1;
            goto out;
        }
        if (c->score_only)
            continue;
        if (c->rec_items) {
            for (int r = 0; r < n; r++) {
                uint64_t x = u0 + r, better, nan;
                int hn = scan_row(buf + (size_t)r * ni, (uint32_t)ni, c->users[x], c->train, c->excl, c->maxk, h,
                                  NAN, 0, &better, &nan);
                if (nan) {
                    til_seterr(e, "scores of user %u contain %llu NaN values (diverged model?)", c->users[x],
                               (unsigned long long)nan);
                    c->rc[part] = -1;
                    goto out;
                }
                c->rec_n[x] = hn;
                for (int q = 0; q < hn; q++) {
                    c->rec_items[x * c->maxk + q] = h[q].id;
                    c->rec_scores[x * c->maxk + q] = h[q].s;
                }
            }
            continue;
        }
        for (int r = 0; r < n; r++)
            if (eval_row(c, c->users[u0 + r], buf + (size_t)r * ni, h, c->vals + (u0 + r) * c->stride, e)) {
                c->rc[part] = -1;
                goto out;
            }
    }
out:
    free(buf);
    free(ubuf);
    free(h);
}

static int check_shape(const til_scorer *s, const til_inter *t, const char *what, til_err *e)
{
    if (t->n_users != s->n_users || t->n_items != s->n_items)
        return til_seterr(e, "%s data has %u users x %u items but the model has %u x %u", what, t->n_users,
                          t->n_items, s->n_users, s->n_items);
    return 0;
}

static int eval_core(const til_scorer *s, const til_inter *train, const til_inter *exclude, const til_inter *test,
                     const til_eval_opts *o, til_eval_result *res, til_eval_per_user *per_user, int score_only,
                     til_err *e)
{
    if (o->n_k < 1 || o->n_k > TIL_EVAL_MAXK)
        return til_seterr(e, "eval: %d cutoffs (want 1..%d)", o->n_k, TIL_EVAL_MAXK);
    int maxk = 0;
    for (int q = 0; q < o->n_k; q++) {
        if (o->ks[q] < 1)
            return til_seterr(e, "eval: cutoff k=%d (want >= 1)", o->ks[q]);
        maxk = TIL_MAX(maxk, o->ks[q]);
    }
    if (o->threads < 1 || o->block < 0)
        return til_seterr(e, "eval: threads %d, block %d (want threads >= 1, block >= 0)", o->threads, o->block);
    if (!s->score && (!s->U || !s->V || s->dim < 1))
        return til_seterr(e, "eval: dot-product scorer without embeddings");
    if (check_shape(s, train, "train", e) || check_shape(s, test, "test", e) ||
        (exclude && check_shape(s, exclude, "excluded", e)))
        return -1;

    memset(res, 0, sizeof *res);
    res->n_k = o->n_k;
    memcpy(res->ks, o->ks, sizeof res->ks);
    if (per_user)
        memset(per_user, 0, sizeof *per_user);

    run_ctx c;
    memset(&c, 0, sizeof c);
    c.s = s;
    c.train = train;
    c.excl = exclude;
    c.test = test;
    c.o = o;
    c.maxk = maxk;
    c.n_k = o->n_k;
    c.stride = 4 * o->n_k + 1;
    c.B = til_eval_block_size(s, o);
    c.score_only = score_only;
    int parts = TIL_MIN(o->threads, 256);
    int rc = -1;
    uint32_t *users = til_malloc(s->n_users ? s->n_users : 1, sizeof *users, e);
    double *idcg = til_malloc((size_t)maxk + 1, sizeof *idcg, e);
    c.rc = til_calloc((size_t)parts, sizeof *c.rc, e);
    c.err = til_calloc((size_t)parts, sizeof *c.err, e);
    if (!users || !idcg || !c.rc || !c.err)
        goto out;
    for (uint32_t u = 0; u < s->n_users; u++)
        if (til_inter_deg(test, u) > 0)
            users[c.n_eval++] = u;
    til_eval_idcg(maxk, idcg);
    c.users = users;
    c.idcg = idcg;
    c.vals = til_malloc(c.n_eval ? c.n_eval * c.stride : 1, sizeof(double), e);
    if (!c.vals)
        goto out;

    uint64_t n_blocks = (c.n_eval + c.B - 1) / c.B;
#ifdef TIL_HAVE_BLAS
    int blas_threads = openblas_get_num_threads();
    openblas_set_num_threads(1);
#endif
    til_par_for(parts, n_blocks, run_part, &c);
#ifdef TIL_HAVE_BLAS
    openblas_set_num_threads(blas_threads);
#endif
    for (int p = 0; p < parts; p++)
        if (c.rc[p]) {
            memcpy(e, &c.err[p], sizeof *e);
            goto out;
        }

    if (score_only) {
        rc = 0;
        goto out;
    }
    if (til_eval_collect(users, c.n_eval, c.vals, o, s->n_users, res, per_user, e))
        goto out;
    rc = 0;
out:
    free(users);
    free(idcg);
    free(c.vals);
    free(c.rc);
    free(c.err);
    return rc;
}

int til_eval_run(const til_scorer *s, const til_inter *train, const til_inter *exclude, const til_inter *test,
                 const til_eval_opts *o, til_eval_result *res, til_eval_per_user *per_user, til_err *e)
{
    if (o->device == TIL_DEVICE_CUDA)
        return til_cuda_eval_run(s, train, exclude, test, o, res, per_user, e);
    return eval_core(s, train, exclude, test, o, res, per_user, 0, e);
}

int til_eval_score_only(const til_scorer *s, const til_inter *train, const til_inter *test, const til_eval_opts *o,
                        til_err *e)
{
    til_eval_result res;
    return eval_core(s, train, NULL, test, o, &res, NULL, 1, e);
}

int til_recommend(const til_scorer *s, const til_inter *exclude, const uint32_t *users, uint64_t n, int k,
                  int threads, uint32_t *items, float *scores, int *counts, til_err *e)
{
    if (k < 1 || threads < 1)
        return til_seterr(e, "recommend: k %d, threads %d (want >= 1)", k, threads);
    if (exclude && (exclude->n_users != s->n_users || exclude->n_items != s->n_items))
        return til_seterr(e, "recommend: excluded data has %u users x %u items but the model has %u x %u",
                          exclude->n_users, exclude->n_items, s->n_users, s->n_items);
    for (uint64_t x = 0; x < n; x++)
        if (users[x] >= s->n_users)
            return til_seterr(e, "recommend: user %u out of range (model has %u users)", users[x], s->n_users);
    til_inter none = {0}; /* exclude NULL: an empty set, indptr all 0 */
    uint32_t zero[1] = {0};
    til_eval_opts o = {.ks = {k}, .n_k = 1, .threads = threads, .block = 0};
    run_ctx c;
    memset(&c, 0, sizeof c);
    c.s = s;
    c.o = &o;
    c.maxk = k;
    c.users = users;
    c.n_eval = n;
    c.B = til_eval_block_size(s, &o);
    c.rec_items = items;
    c.rec_scores = scores;
    c.rec_n = counts;
    int parts = TIL_MIN(threads, 256), rc = -1;
    uint64_t *indptr = NULL;
    if (!exclude) {
        indptr = til_calloc((size_t)s->n_users + 1, sizeof *indptr, e);
        if (!indptr)
            return -1;
        none.n_users = s->n_users;
        none.n_items = s->n_items;
        none.indptr = indptr;
        none.items = zero;
        exclude = &none;
    }
    c.train = exclude;
    c.rc = til_calloc((size_t)parts, sizeof *c.rc, e);
    c.err = til_calloc((size_t)parts, sizeof *c.err, e);
    if (!c.rc || !c.err)
        goto out;
#ifdef TIL_HAVE_BLAS
    int blas_threads = openblas_get_num_threads();
    openblas_set_num_threads(1);
#endif
    til_par_for(parts, (n + c.B - 1) / c.B, run_part, &c);
#ifdef TIL_HAVE_BLAS
    openblas_set_num_threads(blas_threads);
#endif
    rc = 0;
    for (int p = 0; p < parts; p++)
        if (c.rc[p]) {
            memcpy(e, &c.err[p], sizeof *e);
            rc = -1;
            break;
        }
out:
    free(indptr);
    free(c.rc);
    free(c.err);
    return rc;
}

int til_eval_collect(const uint32_t *users, uint64_t n_eval, const double *vals, const til_eval_opts *o,
                     uint32_t n_users, til_eval_result *res, til_eval_per_user *per_user, til_err *e)
{
    const int n_k = o->n_k, stride = 4 * o->n_k + 1;
    memset(res, 0, sizeof *res);
    res->n_k = o->n_k;
    memcpy(res->ks, o->ks, sizeof res->ks);
    /* averages: sums in user order */
    for (uint64_t x = 0; x < n_eval; x++) {
        const double *v = vals + x * stride;
        for (int q = 0; q < n_k; q++) {
            res->recall[q] += v[q];
            res->ndcg[q] += v[n_k + q];
            res->precision[q] += v[2 * n_k + q];
            res->hitrate[q] += v[3 * n_k + q];
        }
        res->mrr += v[4 * n_k];
    }
    res->n_users = n_eval;
    if (n_eval) {
        double d = (double)n_eval;
        for (int q = 0; q < n_k; q++) {
            res->recall[q] /= d;
            res->ndcg[q] /= d;
            res->precision[q] /= d;
            res->hitrate[q] /= d;
        }
        res->mrr /= d;
    }

    if (per_user) {
        size_t nu = n_users ? n_users : 1, nk = (size_t)n_k;
        memset(per_user, 0, sizeof *per_user);
        per_user->evaluated = til_calloc(nu, 1, e);
        per_user->recall = til_calloc(nu * nk, sizeof(double), e);
        per_user->ndcg = til_calloc(nu * nk, sizeof(double), e);
        per_user->precision = til_calloc(nu * nk, sizeof(double), e);
        per_user->hitrate = til_calloc(nu * nk, sizeof(double), e);
        per_user->mrr = til_calloc(nu, sizeof(double), e);
        if (!per_user->evaluated || !per_user->recall || !per_user->ndcg || !per_user->precision ||
            !per_user->hitrate || !per_user->mrr) {
            til_eval_per_user_free(per_user);
            return -1;
        }
        for (uint64_t x = 0; x < n_eval; x++) {
            uint32_t u = users[x];
            const double *v = vals + x * stride;
            per_user->evaluated[u] = 1;
            for (size_t q = 0; q < nk; q++) {
                per_user->recall[u * nk + q] = v[q];
                per_user->ndcg[u * nk + q] = v[nk + q];
                per_user->precision[u * nk + q] = v[2 * nk + q];
                per_user->hitrate[u * nk + q] = v[3 * nk + q];
            }
            per_user->mrr[u] = v[4 * nk];
        }
    }
    return 0;
}

void til_eval_per_user_free(til_eval_per_user *p)
{
    if (!p)
        return;
    free(p->evaluated);
    free(p->recall);
    free(p->ndcg);
    free(p->precision);
    free(p->hitrate);
    free(p->mrr);
    memset(p, 0, sizeof *p);
}

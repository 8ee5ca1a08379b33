/* Unit tests of til_eval: metrics against an independent brute-force reference
 * (score every candidate, full sort per user) on small random cases with many
 * ties, users without test items, k beyond the candidate set, train and
 * valid exclusion; hand-computed cases; thread and block independence; NaN
 * and shape errors. */
#include <stdlib.h>
#include <string.h>

#include "til_eval.h"
#include "til_rng.h"
#include "til_stats.h"
#include "unit.h"

/* ---- reference: full sort of the candidates of each user ---- */

typedef struct {
    double s;
    uint32_t id;
} ref_c;

static int ref_cmp(const void *a, const void *b)
{
    const ref_c *x = a, *y = b;
    if (x->s != y->s)
        return x->s > y->s ? -1 : 1;
    return x->id < y->id ? -1 : (x->id > y->id);
}

static int has(const til_inter *t, uint32_t u, uint32_t i)
{
    for (uint64_t p = t->indptr[u]; p < t->indptr[u + 1]; p++)
        if (t->items[p] == i)
            return 1;
    return 0;
}

/* reference result; scores computed in double from the float embeddings */
static void ref_eval(const float *U, const float *V, int d, const til_inter *tr, const til_inter *ex,
                     const til_inter *te, const int *ks, int nk, til_eval_result *res)
{
    memset(res, 0, sizeof *res);
    res->n_k = nk;
    ref_c *c = malloc((te->n_items + 1) * sizeof *c);
    for (uint32_t u = 0; u < te->n_users; u++) {
        uint64_t nt = te->indptr[u + 1] - te->indptr[u];
        if (!nt)
            continue;
        res->n_users++;
        int n = 0;
        for (uint32_t i = 0; i < te->n_items; i++) {
            if (has(tr, u, i) || (ex && has(ex, u, i)))
                continue;
            double s = 0;
            for (int k = 0; k < d; k++)
                s += (double)U[u * d + k] * V[i * d + k];
            c[n++] = (ref_c){s, i};
        }
        qsort(c, n, sizeof *c, ref_cmp);
        for (int q = 0; q < nk; q++) {
            int hits = 0;
            double dcg = 0, idcg = 0;
            for (int r = 0; r < ks[q] && r < n; r++)
                if (has(te, u, c[r].id)) {
                    hits++;
                    dcg += 1 / log2(r + 2.0);
                }
            for (uint64_t r = 0; r < (uint64_t)ks[q] && r < nt; r++)
                idcg += 1 / log2(r + 2.0);
            res->recall[q] += (double)hits / nt;
            res->ndcg[q] += dcg / idcg;
            res->precision[q] += (double)hits / ks[q];
            res->hitrate[q] += hits > 0;
        }
        for (int r = 0; r < n; r++)
            if (has(te, u, c[r].id)) {
                res->mrr += 1.0 / (r + 1);
                break;
            }
    }
    for (int q = 0; q < nk; q++) {
        res->recall[q] /= res->n_users;
        res->ndcg[q] /= res->n_users;
        res->precision[q] /= res->n_users;
        res->hitrate[q] /= res->n_users;
    }
    res->mrr /= res->n_users;
    free(c);
}

/* ---- random cases ---- */

typedef struct {
    uint32_t nu, ni;
    int d;
    float *U, *V;
    til_inter tr, va, te;
} cas;

/* Disjoint train/valid/test per user; integer embeddings in [-lim, lim] make
 * float scores exact and ties frequent (lim 0: random normal floats). */
static void make_case(cas *c, uint64_t seed, uint32_t nu, uint32_t ni, int d, int lim)
{
    til_rng r;
    til_rng_seed(&r, seed, 0);
    til_err e;
    c->nu = nu;
    c->ni = ni;
    c->d = d;
    c->U = malloc(sizeof(float) * nu * d);
    c->V = malloc(sizeof(float) * ni * d);
    for (uint32_t k = 0; k < nu * d; k++)
        c->U[k] = lim ? (float)((int)til_rng_below(&r, 2 * lim + 1) - lim) : (float)til_rng_normal(&r);
    for (uint32_t k = 0; k < ni * d; k++)
        c->V[k] = lim ? (float)((int)til_rng_below(&r, 2 * lim + 1) - lim) : (float)til_rng_normal(&r);
    uint32_t *pu[3], *pi[3];
    uint64_t pn[3] = {0, 0, 0};
    for (int s = 0; s < 3; s++) {
        pu[s] = malloc(sizeof(uint32_t) * nu * ni);
        pi[s] = malloc(sizeof(uint32_t) * nu * ni);
    }
    for (uint32_t u = 0; u < nu; u++) {
        int mode = (int)til_rng_below(&r, 8); /* 0: no test, 1: almost all train */
        for (uint32_t i = 0; i < ni; i++) {
            double x = til_rng_uniform(&r);
            int s = -1;
            if (mode == 1)
                s = x < 0.9 ? 0 : (x < 0.95 ? 2 : -1);
            else if (x < 0.25)
                s = 0;
            else if (x < 0.32)
                s = 1;
            else if (x < 0.42 && mode != 0)
                s = 2;
            if (s >= 0) {
                pu[s][pn[s]] = u;
                pi[s][pn[s]++] = i;
            }
        }
    }
    CHECK(til_inter_from_pairs(&c->tr, nu, ni, pn[0], pu[0], pi[0], NULL, NULL, NULL, &e) == 0, "%s", e.msg);
    CHECK(til_inter_from_pairs(&c->va, nu, ni, pn[1], pu[1], pi[1], NULL, NULL, NULL, &e) == 0, "%s", e.msg);
    CHECK(til_inter_from_pairs(&c->te, nu, ni, pn[2], pu[2], pi[2], NULL, NULL, NULL, &e) == 0, "%s", e.msg);
    for (int s = 0; s < 3; s++) {
        free(pu[s]);
        free(pi[s]);
    }
}

static void free_case(cas *c)
{
    free(c->U);
    free(c->V);
    til_inter_free(&c->tr);
    til_inter_free(&c->va);
    til_inter_free(&c->te);
}

static void res_vec(const til_eval_result *r, double *out)
{
    int n = 0;
    for (int q = 0; q < r->n_k; q++) {
        out[n++] = r->recall[q];
        out[n++] = r->ndcg[q];
        out[n++] = r->precision[q];
        out[n++] = r->hitrate[q];
    }
    out[n++] = r->mrr;
    out[n++] = (double)r->n_users;
}

TEST(matches_bruteforce_reference)
{
    static const int ks[] = {1, 3, 10, 40, 200};
    for (int trial = 0; trial < 24; trial++) {
        cas c;
        uint32_t nu = 20 + trial * 3, ni = 17 + trial * 5;
        make_case(&c, 100 + trial, nu, ni, 1 + trial % 5, trial % 3 == 2 ? 0 : 1 + trial % 2);
        til_scorer s = til_scorer_dot(c.U, c.V, nu, ni, c.d);
        for (int withva = 0; withva < 2; withva++) {
            til_eval_opts o = {.n_k = 5, .threads = 1 + trial % 3, .block = trial % 4};
            memcpy(o.ks, ks, sizeof ks);
            til_eval_result got, ref;
            til_err e;
            const til_inter *ex = withva ? &c.va : NULL;
            CHECK(til_eval_run(&s, &c.tr, ex, &c.te, &o, &got, NULL, &e) == 0, "%s", e.msg);
            ref_eval(c.U, c.V, c.d, &c.tr, ex, &c.te, ks, 5, &ref);
            double g[22], r[22];
            res_vec(&got, g);
            res_vec(&ref, r);
            char what[64];
            snprintf(what, sizeof what, "trial %d valid %d", trial, withva);
            CHECK_CLOSE(what, g, r, 22, 1e-12, 1e-12);
        }
        free_case(&c);
    }
}

TEST(hand_computed)
{
    /* one user, scores 5 4 3 2 1 for items 0..4; train {0}; test {2, 4}.
     * candidates ranked 1,2,3,4: test items at ranks 2 and 4 */
    float U[1] = {1}, V[5] = {5, 4, 3, 2, 1};
    uint32_t zu[3] = {0, 0, 0}, tri[1] = {0}, tei[2] = {2, 4};
    til_inter tr, te;
    til_err e;
    CHECK(til_inter_from_pairs(&tr, 1, 5, 1, zu, tri, NULL, NULL, NULL, &e) == 0, "%s", e.msg);
    CHECK(til_inter_from_pairs(&te, 1, 5, 2, zu, tei, NULL, NULL, NULL, &e) == 0, "%s", e.msg);
    til_scorer s = til_scorer_dot(U, V, 1, 5, 1);
    til_eval_opts o = {.ks = {1, 2, 4, 10}, .n_k = 4, .threads = 1};
    til_eval_result r;
    til_eval_per_user pu;
    CHECK(til_eval_run(&s, &tr, NULL, &te, &o, &r, &pu, &e) == 0, "%s", e.msg);
    double l3 = 1 / log2(3.0), l5 = 1 / log2(5.0);
    double got[] = {r.recall[0], r.recall[1], r.recall[2], r.recall[3], r.ndcg[0], r.ndcg[1], r.ndcg[2], r.ndcg[3],
                    r.precision[0], r.precision[1], r.precision[2], r.precision[3], r.hitrate[0], r.hitrate[1],
                    r.mrr, pu.mrr[0], pu.ndcg[2], (double)pu.evaluated[0]};
    double ref[] = {0, 0.5, 1, 1, 0, l3 / (1 + l3), (l3 + l5) / (1 + l3), (l3 + l5) / (1 + l3),
                    0, 0.5, 0.5, 0.2, 0, 1,
                    0.5, 0.5, (l3 + l5) / (1 + l3), 1};
    CHECK_CLOSE("hand", got, ref, sizeof ref / sizeof *ref, 1e-15, 1e-15);
    til_eval_per_user_free(&pu);
    til_inter_free(&tr);
    til_inter_free(&te);

    /* ties: every score 3; test {1}: ranking by id 0,1,2 -> rank 2 */
    float V2[3] = {3, 3, 3};
    uint32_t t2[1] = {1};
    til_inter tr2, te2;
    CHECK(til_inter_from_pairs(&tr2, 1, 3, 0, zu, tri, NULL, NULL, NULL, &e) == 0, "%s", e.msg);
    CHECK(til_inter_from_pairs(&te2, 1, 3, 1, zu, t2, NULL, NULL, NULL, &e) == 0, "%s", e.msg);
    til_scorer s2 = til_scorer_dot(U, V2, 1, 3, 1);
    til_eval_opts o2 = {.ks = {1, 2}, .n_k = 2, .threads = 2};
    CHECK(til_eval_run(&s2, &tr2, NULL, &te2, &o2, &r, NULL, &e) == 0, "%s", e.msg);
    double got2[] = {r.recall[0], r.recall[1], r.ndcg[1], r.mrr};
    double ref2[] = {0, 1, l3, 0.5};
    CHECK_CLOSE("ties", got2, ref2, 4, 1e-15, 1e-15);
    til_inter_free(&tr2);
    til_inter_free(&te2);
}

TEST(threads_and_blocks_do_not_change_results)
{
    cas c;
    make_case(&c, 7, 301, 257, 8, 0);
    til_scorer s = til_scorer_dot(c.U, c.V, c.nu, c.ni, c.d);
    til_eval_opts o = {.ks = {5, 20}, .n_k = 2, .threads = 1, .block = 0};
    til_eval_result r1, r2;
    til_eval_per_user p1, p2;
    til_err e;
    CHECK(til_eval_run(&s, &c.tr, &c.va, &c.te, &o, &r1, &p1, &e) == 0, "%s", e.msg);
    for (int t = 2; t <= 7; t += 5) {
        o.threads = t;
        CHECK(til_eval_run(&s, &c.tr, &c.va, &c.te, &o, &r2, &p2, &e) == 0, "%s", e.msg);
        CHECK(memcmp(&r1, &r2, sizeof r1) == 0, "threads %d: result differs", t);
        CHECK(memcmp(p1.mrr, p2.mrr, c.nu * sizeof(double)) == 0, "threads %d: per-user mrr differs", t);
        CHECK(memcmp(p1.ndcg, p2.ndcg, 2 * c.nu * sizeof(double)) == 0, "threads %d: per-user ndcg differs", t);
        til_eval_per_user_free(&p2);
    }
    til_eval_per_user_free(&p1);
    free_case(&c);
}

/* a scorer through the callback: the same dot product, computed per row */
typedef struct {
    const float *U, *V;
    uint32_t ni;
    int d;
    int nan_user;
} cb_ctx;

static int cb_score(void *vctx, const uint32_t *users, int n, float *out, til_err *e)
{
    (void)e;
    const cb_ctx *c = vctx;
    for (int r = 0; r < n; r++)
        for (uint32_t i = 0; i < c->ni; i++) {
            float acc = 0;
            for (int k = 0; k < c->d; k++)
                acc += c->U[users[r] * c->d + k] * c->V[i * c->d + k];
            out[(size_t)r * c->ni + i] = (int)users[r] == c->nan_user && i == 3 ? NAN : acc;
        }
    return 0;
}

TEST(callback_scorer_nan_and_shape_errors)
{
    cas c;
    make_case(&c, 11, 40, 33, 3, 2);
    cb_ctx cc = {c.U, c.V, c.ni, c.d, -1};
    til_scorer s = {.n_users = c.nu, .n_items = c.ni, .score = cb_score, .ctx = &cc};
    til_scorer sd = til_scorer_dot(c.U, c.V, c.nu, c.ni, c.d);
    til_eval_opts o = {.ks = {2, 10}, .n_k = 2, .threads = 3, .block = 5};
    til_eval_result r1, r2;
    til_err e;
    CHECK(til_eval_run(&s, &c.tr, &c.va, &c.te, &o, &r1, NULL, &e) == 0, "%s", e.msg);
    CHECK(til_eval_run(&sd, &c.tr, &c.va, &c.te, &o, &r2, NULL, &e) == 0, "%s", e.msg);
    CHECK(memcmp(&r1, &r2, sizeof r1) == 0, "callback and dot scorers differ");
    /* NaN for a user with test items */
    for (uint32_t u = 0; u < c.nu; u++)
        if (til_inter_deg(&c.te, u)) {
            cc.nan_user = (int)u;
            break;
        }
    CHECK(til_eval_run(&s, &c.tr, &c.va, &c.te, &o, &r1, NULL, &e) == -1 && strstr(e.msg, "NaN"), "NaN: %s",
          e.msg);
    /* shapes */
    til_scorer bad = til_scorer_dot(c.U, c.V, c.nu, c.ni - 1, c.d);
    CHECK(til_eval_run(&bad, &c.tr, NULL, &c.te, &o, &r1, NULL, &e) == -1 && strstr(e.msg, "train"), "shape: %s",
          e.msg);
    til_eval_opts bo = {.ks = {0}, .n_k = 1, .threads = 1};
    CHECK(til_eval_run(&sd, &c.tr, NULL, &c.te, &bo, &r1, NULL, &e) == -1, "k=0 accepted");
    free_case(&c);
}

/* top-k recommendation against the reference full sort, exclusion applied */
TEST(recommend_matches_reference)
{
    cas c;
    make_case(&c, 21, 37, 29, 3, 1);
    til_scorer s = til_scorer_dot(c.U, c.V, c.nu, c.ni, c.d);
    uint32_t users[5] = {36, 0, 5, 5, 17};
    enum { K = 40 };
    uint32_t items[5 * K];
    float scores[5 * K];
    int cnt[5];
    til_err e;
    CHECK(til_recommend(&s, &c.tr, users, 5, K, 2, items, scores, cnt, &e) == 0, "%s", e.msg);
    ref_c *rc = malloc(c.ni * sizeof *rc);
    for (int x = 0; x < 5; x++) {
        uint32_t u = users[x];
        int n = 0;
        for (uint32_t i = 0; i < c.ni; i++)
            if (!has(&c.tr, u, i)) {
                double sc = 0;
                for (int k = 0; k < c.d; k++)
                    sc += (double)c.U[u * c.d + k] * c.V[i * c.d + k];
                rc[n++] = (ref_c){sc, i};
            }
        qsort(rc, n, sizeof *rc, ref_cmp);
        CHECK(cnt[x] == (n < K ? n : K), "user %u: %d items, want %d", u, cnt[x], n);
        for (int q = 0; q < cnt[x]; q++)
            CHECK(items[x * K + q] == rc[q].id && scores[x * K + q] == rc[q].s, "user %u rank %d: %u, want %u", u,
                  q + 1, items[x * K + q], rc[q].id);
    }
    CHECK(til_recommend(&s, NULL, users, 5, 3, 1, items, scores, cnt, &e) == 0 && cnt[0] == 3, "no exclusion");
    users[0] = c.nu;
    CHECK(til_recommend(&s, NULL, users, 5, 3, 1, items, scores, cnt, &e) == -1, "user out of range accepted");
    free(rc);
    free_case(&c);
}

TEST(t_distribution_and_paired_ttest)
{
    double got[] = {til_betainc(2, 3, 0.4), til_betainc(0.5, 0.5, 0.5), til_betainc(3, 2, 1), til_t_cdf(1, 1),
                    til_t_cdf(2, 2), til_t_cdf(1, 3), til_t_cdf(2.228138851986274, 10),
                    til_t_cdf(-2.228138851986274, 10), til_t_cdf(4.604094871350383, 4),
                    til_t_cdf(2.042272456301238, 30), til_t_cdf(0, 7)};
    /* exact: binomial sum 0.5248; symmetry; Student t closed forms for df 1, 2, 3;
     * tabulated quantiles t(0.975, 10), t(0.995, 4), t(0.975, 30) */
    double ref[] = {0.5248, 0.5, 1, 0.75, 0.9082482904638631, 0.8044988905221147, 0.975, 0.025, 0.995, 0.975, 0.5};
    CHECK_CLOSE("t cdf", got, ref, sizeof ref / sizeof *ref, 1e-9, 1e-9);
    double a[5] = {3, 4, 6, 4, 7}, b[5] = {2, 3, 4, 4, 5}, t;
    /* d = 1 1 2 0 2: t = 1.2 / (sqrt(0.7) / sqrt 5); p from the df-4 closed form */
    double p = til_ttest_paired(a, b, 5, &t);
    double g2[] = {t, p}, r2[] = {3.2071349029490928, 0.03267792333680308};
    CHECK_CLOSE("paired t", g2, r2, 2, 1e-12, 1e-9);
    CHECK(til_ttest_paired(a, a, 5, &t) == 1 && t == 0, "identical samples: p 1");
    CHECK(isnan(til_ttest_paired(a, b, 1, &t)), "n=1 gives NaN");
    double m, sd;
    til_mean_std(a, 5, &m, &sd);
    double g3[] = {m, sd}, r3[] = {4.8, sqrt(2.7)};
    CHECK_CLOSE("mean std", g3, r3, 2, 1e-12, 1e-12);
}

int main(void)
{
    RUN(matches_bruteforce_reference);
    RUN(hand_computed);
    RUN(threads_and_blocks_do_not_change_results);
    RUN(callback_scorer_nan_and_shape_errors);
    RUN(recommend_matches_reference);
    RUN(t_distribution_and_paired_ttest);
    return unit_end();
}

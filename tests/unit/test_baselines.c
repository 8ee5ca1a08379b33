/* test_baselines: the baselines' samplers against their intended distributions
 * (chi-square bounds on seeded draws), the drop schedule and what it drops, the
 * reweighting, and every loss's dL/dscore against finite differences. */
#include <math.h>
#include <string.h>

#include "til_baselines.h"
#include "til_inter.h"
#include "til_loss.h"
#include "til_rng.h"
#include "til_sampler.h"
#include "unit.h"

/* chi-square statistic of counts against probabilities (cells with p = 0 must be empty) */
static double chi2(const uint64_t *cnt, const double *p, int k, uint64_t n, int *df, int *bad_zero)
{
    double x = 0;
    *df = -1, *bad_zero = 0;
    for (int c = 0; c < k; c++) {
        if (p[c] <= 0) {
            *bad_zero += cnt[c] != 0;
            continue;
        }
        double E = p[c] * (double)n;
        x += (cnt[c] - E) * (cnt[c] - E) / E;
        (*df)++;
    }
    return x;
}
/* generous: mean df, sd sqrt(2 df); a wrong distribution overshoots by far */
#define CHI_OK(x, df) ((x) < (df) + 6 * sqrt(2.0 * (df)) + 10)

TEST(wbpr_popularity_among_non_positives)
{
    /* 3 users, 8 items; popularity = training counts */
    const uint32_t us[] = {0, 0, 0, 1, 1, 2, 2, 2, 2, 1, 2, 0};
    const uint32_t is[] = {0, 1, 2, 0, 3, 0, 1, 3, 4, 5, 6, 7};
    til_inter tr;
    til_err e;
    CHECK(til_inter_from_pairs(&tr, 3, 8, 12, us, is, NULL, NULL, NULL, &e) == 0, "%s", e.msg);
    til_bl_cfg c;
    til_bl_defaults(&c);
    til_bl bl;
    CHECK(til_bl_init(&bl, TIL_M_WBPR, &c, &tr, 4, 16, 7, &e) == 0, "%s", e.msg);
    til_sampler s;
    CHECK(til_sampler_init(&s, TIL_SAMPLER_UNIFORM, &tr, 11, &e) == 0, "%s", e.msg);
    s.draw = til_bl_pop_draw, s.draw_ctx = &bl;
    til_triplets t;
    CHECK(til_triplets_alloc(&t, tr.nnz, 1, &e) == 0, "%s", e.msg);
    uint64_t cnt[3][8] = {{0}}, n[3] = {0};
    for (uint64_t ep = 1; ep <= 1500; ep++) {
        til_sampler_epoch(&s, ep, 1, &t, &e);
        for (uint64_t k = 0; k < t.n; k++)
            cnt[t.u[k]][t.j[k]]++, n[t.u[k]]++;
    }
    uint32_t *ic = til_inter_item_counts(&tr, &e);
    for (uint32_t u = 0; u < 3; u++) {
        double p[8], z = 0;
        for (uint32_t j = 0; j < 8; j++)
            z += p[j] = til_inter_has(&tr, u, j) ? 0 : ic[j];
        for (uint32_t j = 0; j < 8; j++)
            p[j] /= z;
        int df, bz;
        double x = chi2(cnt[u], p, 8, n[u], &df, &bz);
        CHECK(bz == 0, "user %u: %d positives or zero-popularity items drawn", u, bz);
        CHECK(CHI_OK(x, df), "user %u: chi2 %.1f df %d", u, x, df);
    }
    free(ic);
    til_triplets_free(&t);
    til_sampler_free(&s);
    til_bl_free(&bl);
    til_inter_free(&tr);
}

TEST(alias_matches_weights)
{
    const double w[6] = {0.5, 0, 3, 1, 1e-3, 2};
    til_alias a;
    til_err e;
    CHECK(til_alias_build(&a, w, 6, &e) == 0, "%s", e.msg);
    til_rng r;
    til_rng_seed(&r, 5, 1);
    uint64_t cnt[6] = {0}, N = 60000;
    for (uint64_t k = 0; k < N; k++)
        cnt[til_alias_draw(&a, &r)]++;
    double p[6], z = 0;
    for (int k = 0; k < 6; k++)
        z += w[k];
    for (int k = 0; k < 6; k++)
        p[k] = w[k] / z;
    int df, bz;
    double x = chi2(cnt, p, 6, N, &df, &bz);
    CHECK(bz == 0 && CHI_OK(x, df), "chi2 %.1f df %d, zero cells hit %d", x, df, bz);
    til_alias_free(&a);
}

TEST(aobpr_rank_factor_and_direction)
{
    til_rng r;
    til_rng_seed(&r, 9, 2);
    /* rank: P(r) ∝ exp(-r/lambda), r < n */
    enum { NR = 40 };
    uint64_t cnt[NR] = {0}, N = 40000;
    double p[NR], z = 0, lam = 6;
    for (int k = 0; k < NR; k++)
        z += p[k] = exp(-k / lam);
    for (int k = 0; k < NR; k++)
        p[k] /= z;
    for (uint64_t k = 0; k < N; k++)
        cnt[til_aobpr_rank(&r, NR, lam)]++;
    int df, bz;
    double x = chi2(cnt, p, NR, N, &df, &bz);
    CHECK(CHI_OK(x, df), "rank chi2 %.1f df %d", x, df);
    /* factor: P(f) ∝ |p_uf| sigma_f; direction by sign */
    enum { NI = 30, D = 4 };
    float V[NI * D];
    for (int i = 0; i < NI; i++)
        for (int f = 0; f < D; f++)
            V[i * D + f] = (float)((f + 1) * sin(1.3 * i + f) + 0.1 * i * (f == 2));
    uint32_t ord[D * NI];
    float sig[D];
    til_err e;
    CHECK(til_aobpr_order(V, NI, D, 2, ord, sig, &e) == 0, "%s", e.msg);
    for (int f = 0; f < D; f++)
        for (int k = 1; k < NI; k++)
            CHECK(V[ord[f * NI + k - 1] * D + f] >= V[ord[f * NI + k] * D + f], "order f %d rank %d", f, k);
    const float pu[D] = {0.5f, -1.0f, 0.0f, 2.0f};
    uint64_t fc[D] = {0}, first_pos = 0, first_neg = 0, n3 = 0, n1 = 0;
    double pf[D], zf = 0;
    for (int f = 0; f < D; f++)
        zf += pf[f] = fabs(pu[f]) * sig[f];
    for (int f = 0; f < D; f++)
        pf[f] /= zf;
    for (uint64_t k = 0; k < N; k++) {
        int f;
        uint32_t j = til_aobpr_draw(&r, pu, ord, sig, NI, D, 0.7, &f);
        fc[f]++;
        if (f == 3) /* p > 0: small ranks of the descending order = largest v */
            n3++, first_pos += j == ord[3 * NI];
        if (f == 1) /* p < 0: ascending: the smallest v */
            n1++, first_neg += j == ord[1 * NI + NI - 1];
    }
    x = chi2(fc, pf, D, N, &df, &bz);
    CHECK(bz == 0 && CHI_OK(x, df), "factor chi2 %.1f df %d zero-weight factor drawn %d", x, df, bz);
    double p0 = 1 - exp(-1 / 0.7); /* P(rank 0) */
    CHECK(fabs((double)first_pos / n3 - p0) < 0.03, "top item share %.3f, want %.3f", (double)first_pos / n3, p0);
    CHECK(fabs((double)first_neg / n1 - p0) < 0.03, "bottom item share %.3f, want %.3f", (double)first_neg / n1, p0);
}

TEST(pris_proposal_and_weights)
{
    enum { NI = 24, D = 3, K = 4 };
    float V[NI * D];
    double mass[NI];
    for (int i = 0; i < NI; i++) {
        for (int f = 0; f < D; f++)
            V[i * D + f] = (float)((i % K == f) * 2.0 + 0.3 * sin(i * 0.7 + f));
        mass[i] = 1 + i % 5;
    }
    til_err e;
    for (int pop = 0; pop < 2; pop++) {
        til_pris p = {0};
        CHECK(til_pris_build(&p, V, NI, D, K, pop ? mass : NULL, 3, 1, &e) == 0, "%s", e.msg);
        const float pu[D] = {0.8f, -0.4f, 0.3f};
        double a[K], prob[K], q[NI], z = 0;
        til_pris_user(&p, pu, a, prob);
        for (int i = 0; i < NI; i++) { /* the intended Q(j|u) = P(k|u) m_j / w_k */
            int k = (int)p.assign[i];
            q[i] = prob[k] * (pop ? mass[i] : 1.0) / exp(p.logw[k]);
            z += q[i];
        }
        CHECK(fabs(z - 1) < 1e-9, "Q sums to %.12f", z);
        til_rng r;
        til_rng_seed(&r, 4, (uint64_t)pop);
        uint64_t cnt[NI] = {0}, N = 48000;
        double lz = NAN;
        int lq_ok = 1;
        for (uint64_t k = 0; k < N; k++) {
            double lq;
            uint32_t j = til_pris_draw(&p, &r, a, prob, &lq);
            cnt[j]++;
            /* logq = log Q + log Z_u: the same offset for every j */
            double off = lq - log(q[j]);
            if (isnan(lz))
                lz = off;
            lq_ok &= fabs(off - lz) < 1e-6; /* log m_j is stored as float */
        }
        CHECK(lq_ok, "logq - log Q not constant (pop %d)", pop);
        int df, bz;
        double x = chi2(cnt, q, NI, N, &df, &bz);
        CHECK(CHI_OK(x, df), "pris pop %d chi2 %.1f df %d", pop, x, df);
        til_pris_free(&p);
    }
    /* weights: softmax(s - logq), sum 1 */
    const float s[5] = {0.3f, -1.2f, 2.0f, 0.0f, 0.7f};
    const double lq[5] = {-1.0, -3.0, 0.5, -0.2, -2.2};
    float w[5];
    til_pris_weights(s, lq, 5, w);
    double sum = 0, z = 0;
    for (int k = 0; k < 5; k++)
        sum += w[k], z += exp(s[k] - lq[k]);
    CHECK(fabs(sum - 1) < 1e-6, "weights sum %.9f", sum);
    for (int k = 0; k < 5; k++)
        CHECK(fabs(w[k] - exp(s[k] - lq[k]) / z) < 1e-6, "w[%d] %.9f", k, w[k]);
}

TEST(drop_schedule_and_dropped)
{
    CHECK(til_bl_drop_rate(0.2, 11, 0) == 0, "eps(0)");
    CHECK(fabs(til_bl_drop_rate(0.2, 11, 5) - 0.1) < 1e-15, "eps(5) %.17g", til_bl_drop_rate(0.2, 11, 5));
    CHECK(fabs(til_bl_drop_rate(0.2, 11, 10) - 0.2) < 1e-15, "eps(10)");
    CHECK(til_bl_drop_rate(0.2, 11, 1000) == 0.2, "eps after warmup");
    CHECK(til_bl_drop_rate(0.3, 0, 0) == 0.3, "no warmup");
    CHECK(til_bl_n_keep(0.2, 10) == 8 && til_bl_n_keep(0.25, 10) == 7 && til_bl_n_keep(0, 7) == 7, "n_keep");
    til_bl_cfg c;
    til_bl_defaults(&c);
    c.drop_warmup = 0; /* eps = 0.2 now */
    enum { N = 10 };
    const float sp[N] = {2, -3, 1, 0.5f, -1, 3, -2, 0, 1.5f, -0.5f};
    const float sn[N] = {0, 0, 1, -1, 0.2f, 0, -1, 0.4f, 0, 0};
    float l[N], gp[N], gn[N];
    uint8_t kept[N];
    uint32_t idx[N];
    /* TCE-BPR: keep int(0.8*10) = 8; the 2 largest BPR losses: x = -3 (b1), -1 - 0.2 = -1.2 (b4) */
    til_bl_loss(TIL_M_TCE_BPR, &c, 0, sp, sn, NULL, N, l, gp, gn, kept, idx);
    for (int b = 0; b < N; b++)
        CHECK(kept[b] == !(b == 1 || b == 4), "tce-bpr kept[%d] = %d", b, kept[b]);
    /* T-CE: 2N elements, keep int(0.8*20) = 16: drop the 4 positives of largest BCE: sp -3, -2, -1, -0.5 */
    til_bl_loss(TIL_M_TCE, &c, 0, sp, sn, NULL, N, l, gp, gn, kept, idx);
    for (int b = 0; b < N; b++)
        CHECK(kept[b] == !(b == 1 || b == 6 || b == 4 || b == 9), "tce kept[%d] = %d", b, kept[b]);
    for (int b = 0; b < N; b++)
        CHECK(gn[b] > 0, "tce: negatives are never dropped (b %d)", b);
    /* reweighting */
    c.beta = 0.5;
    til_bl_loss(TIL_M_RCE_BPR, &c, 0, sp, sn, NULL, N, l, gp, gn, NULL, NULL);
    for (int b = 0; b < N; b++) {
        float x = sp[b] - sn[b];
        CHECK(fabs(l[b] - sqrtf(til_sigmoid(x)) * til_softplus(-x)) < 1e-6, "rce-bpr loss %d", b);
    }
    til_bl_loss(TIL_M_RCE, &c, 0, sp, sn, NULL, N, l, gp, gn, NULL, NULL);
    for (int b = 0; b < N; b++) {
        double ref = 0.5 * (sqrt(til_sigmoid(sp[b])) * til_softplus(-sp[b]) +
                            sqrt(1 - til_sigmoid(sn[b])) * til_softplus(sn[b]));
        CHECK(fabs(l[b] - ref) < 1e-6, "rce loss %d %.9g vs %.9g", b, l[b], ref);
    }
}

/* Reference batch loss in double with frozen (detached) weights and drop set:
 * pairwise: sum_b cw[b] softplus(-(sp-sn)) / M;  pointwise: sum_b (cp sp-term + cn sn-term) / M. */
static double ref_loss(int pointwise, const double *sp, const double *sn, const double *cp, const double *cn, int n,
                       double M)
{
    double L = 0;
    for (int b = 0; b < n; b++) {
        if (pointwise)
            L += cp[b] * log1p(exp(-sp[b])) + cn[b] * log1p(exp(sn[b]));
        else
            L += cp[b] * log1p(exp(-(sp[b] - sn[b])));
    }
    return L / M;
}

TEST(losses_fd)
{
    enum { N = 12 };
    til_bl_cfg c;
    til_bl_defaults(&c);
    c.drop_warmup = 0;
    c.drop_rate = 0.25;
    c.beta = 0.3;
    float sp[N], sn[N], w[N], l[N], gp[N], gn[N];
    uint8_t kept[N];
    uint32_t idx[N];
    for (int b = 0; b < N; b++) {
        sp[b] = (float)(1.7 * sin(b * 1.1 + 0.3)); /* distinct losses: the drop set is stable under FD */
        sn[b] = (float)(1.1 * cos(b * 0.7));
        w[b] = (float)(0.5 + 0.1 * b);
    }
    const int methods[] = {TIL_M_BPR, TIL_M_PRIS, TIL_M_TCE, TIL_M_RCE, TIL_M_TCE_BPR, TIL_M_RCE_BPR, -1};
    for (int mi = 0; mi < 7; mi++) {
        int m = methods[mi] < 0 ? TIL_M_TCE : methods[mi];
        til_bl_cfg cc = c;
        if (methods[mi] < 0)
            cc.drop_rate = 0; /* plain BCE */
        const float *wp = m == TIL_M_PRIS ? w : NULL;
        til_bl_loss(m, &cc, 0, sp, sn, wp, N, l, gp, gn, kept, idx);
        int pw = m == TIL_M_TCE || m == TIL_M_RCE;
        double dsp[N], dsn[N], cp[N], cn[N], M = pw ? 2.0 * N : N;
        int nk = 0;
        for (int b = 0; b < N; b++) {
            dsp[b] = sp[b], dsn[b] = sn[b];
            nk += kept[b];
            double x = sp[b] - sn[b];
            cp[b] = wp ? wp[b] : 1;
            cn[b] = 1;
            if (m == TIL_M_RCE_BPR)
                cp[b] = pow(1 / (1 + exp(-x)), cc.beta);
            if (m == TIL_M_RCE) {
                cp[b] = pow(1 / (1 + exp(-sp[b])), cc.beta);
                cn[b] = pow(1 - 1 / (1 + exp(-sn[b])), cc.beta);
            }
            if (m == TIL_M_TCE || m == TIL_M_TCE_BPR)
                cp[b] = kept[b];
        }
        if (m == TIL_M_TCE)
            M = 2.0 * N - (N - nk);
        if (m == TIL_M_TCE_BPR)
            M = nk;
        double sum = 0;
        for (int b = 0; b < N; b++)
            sum += l[b];
        double L0 = ref_loss(pw, dsp, dsn, cp, cn, N, M);
        CHECK(fabs(sum / N - L0) < 1e-5 * (1 + fabs(L0)), "method %s: loss %.9g vs %.9g", til_bl_method_name(m),
              sum / N, L0);
        double got[2 * N], fd[2 * N], h = 1e-5;
        for (int b = 0; b < N; b++) {
            got[b] = gp[b], got[N + b] = gn[b];
            dsp[b] += h;
            double a = ref_loss(pw, dsp, dsn, cp, cn, N, M);
            dsp[b] -= 2 * h;
            double bb = ref_loss(pw, dsp, dsn, cp, cn, N, M);
            dsp[b] += h;
            fd[b] = (a - bb) / (2 * h);
            dsn[b] += h;
            a = ref_loss(pw, dsp, dsn, cp, cn, N, M);
            dsn[b] -= 2 * h;
            bb = ref_loss(pw, dsp, dsn, cp, cn, N, M);
            dsn[b] += h;
            fd[N + b] = (a - bb) / (2 * h);
        }
        CHECK(CHECK_CLOSE(til_bl_method_name(m), got, fd, 2 * N, 1e-6, 1e-4), "method %s (mi %d)",
              til_bl_method_name(m), mi);
        if (m == TIL_M_TCE && cc.drop_rate > 0)
            CHECK(nk == N - (int)(2 * N - til_bl_n_keep(cc.drop_rate, 2 * N)), "tce dropped %d", N - nk);
    }
}

int main(void)
{
    RUN(wbpr_popularity_among_non_positives);
    RUN(alias_matches_weights);
    RUN(aobpr_rank_factor_and_direction);
    RUN(pris_proposal_and_weights);
    RUN(drop_schedule_and_dropped);
    RUN(losses_fd);
    return unit_end();
}

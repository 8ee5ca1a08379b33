/* test_cuda: every CUDA kernel of tools/cuda/ against its CPU reference on
 * random inputs (TAP; tolerance abs + rel x |ref|, worst element reported by
 * unit.h). Skips (exit 0) when no CUDA device is visible. Run by
 * `make test-cuda` (tests/cuda/run.sh); built, not run, by `make test`.
 *   k_bpr        vs til_dot + til_loss_bpr            scores bitwise, loss/g 1 ulp-ish
 *   k_adam_dense vs til_adam_elem_hd on the host       bitwise (tolerance 0)
 *   train step   vs til_batch_grad + til_adam_step (CPU MF trainer pieces), 5 steps
 *   k_topk       vs a sort by (score desc, id asc)     items and counts exact
 *   eval         vs til_eval_run on the CPU            metrics abs 1e-6 */
#include <stdlib.h>
#include <string.h>

#include "til_adam.h"
#include "til_backbone.h"
#include "til_cuda.h"
#include "til_eval.h"
#include "til_inter.h"
#include "til_loss.h"
#include "til_rng.h"
#include "til_train.h"
#include "unit.h"

static til_rng R;
static float rnd(void) { return (float)(til_rng_uniform(&R) * 2 - 1); }

TEST(k_bpr_vs_cpu)
{
    enum { NU = 50, NI = 70, D = 64, N = 3000 };
    static float U[NU * D], V[NI * D], sp[N], sn[N], l[N], g[N], rsp[N], rsn[N], rl[N], rg[N], rgn[N];
    static uint32_t u[N], i[N], j[N];
    for (int k = 0; k < NU * D; k++)
        U[k] = rnd();
    for (int k = 0; k < NI * D; k++)
        V[k] = rnd();
    for (int b = 0; b < N; b++)
        u[b] = (uint32_t)(til_rng_uniform(&R) * NU), i[b] = (uint32_t)(til_rng_uniform(&R) * NI),
        j[b] = (uint32_t)(til_rng_uniform(&R) * NI);
    til_err e;
    CHECK(!til_cuda_k_bpr(U, V, NU, NI, D, u, i, j, N, sp, sn, l, g, &e), "%s", e.msg);
    for (int b = 0; b < N; b++) {
        rsp[b] = til_dot(U + u[b] * D, V + i[b] * D, D);
        rsn[b] = til_dot(U + u[b] * D, V + j[b] * D, D);
    }
    til_loss_bpr(rsp, rsn, NULL, 1.0f / N, 0, N, rl, rg, rgn);
    CHECK_CLOSE_F("s_pos", sp, rsp, N, 0, 0);
    CHECK_CLOSE_F("s_neg", sn, rsn, N, 0, 0);
    CHECK_CLOSE_F("loss", l, rl, N, 1e-7, 1e-6);
    CHECK_CLOSE_F("g", g, rg, N, 1e-12, 1e-6);
}

TEST(k_adam_vs_cpu)
{
    enum { RW = 300, D = 48 };
    static float p[RW * D], m[RW * D], v[RW * D], G[RW * D], rp[RW * D], rm[RW * D], rv[RW * D];
    static int32_t slot[RW];
    for (int k = 0; k < RW * D; k++)
        p[k] = rp[k] = rnd(), m[k] = rm[k] = rnd() * 1e-2f, v[k] = rv[k] = fabsf(rnd()) * 1e-4f, G[k] = rnd();
    for (int r = 0; r < RW; r++)
        slot[r] = r % 3 ? r : -1;
    float ns = (float)(-(1e-3 / (1 - 0.9 * 0.9 * 0.9))), bs = (float)sqrt(1 - 0.999 * 0.999 * 0.999);
    til_err e;
    CHECK(!til_cuda_k_adam(p, m, v, G, slot, RW, D, 0.9f, 0.999f, ns, bs, 1e-8f, &e), "%s", e.msg);
    for (int r = 0; r < RW; r++)
        for (int q = 0; q < D; q++) {
            int k = r * D + q;
            til_adam_elem_hd(&rp[k], &rm[k], &rv[k], slot[r] >= 0 ? G[slot[r] * D + q] : 0.0f, 0.9f,
                             (float)(1 - 0.9), 0.999f, (float)(1 - 0.999), ns, bs, 1e-8f);
        }
    CHECK_CLOSE_F("p", p, rp, RW * D, 0, 0);
    CHECK_CLOSE_F("m", m, rm, RW * D, 0, 0);
    CHECK_CLOSE_F("v", v, rv, RW * D, 0, 0);
}

/* 5 steps of MF-BPR with dense Adam: CPU pieces (prepare, catch-up,
 * til_batch_grad, til_adam_step) vs til_cuda_train_step */
static void train_case(int optim)
{
    enum { NU = 40, NI = 90, D = 32, B = 500, STEPS = 5 };
    til_err e;
    til_train_cfg c;
    til_train_defaults(&c);
    c.dim = D, c.batch = B, c.lr = 1e-2, c.reg = 1e-2, c.optim = optim;
    til_backbone cb, gb;
    til_adam ca, ga;
    til_step_buf sb;
    til_cuda_train *dev = NULL;
    CHECK(!til_mf_init(&cb, NU, NI, D, B, &e) && !til_mf_init(&gb, NU, NI, D, B, &e), "%s", e.msg);
    for (uint64_t k = 0; k < cb.n_param * D; k++)
        cb.param[k] = gb.param[k] = rnd() * 0.1f;
    CHECK(!til_adam_init(&ca, optim, cb.param, cb.n_param, D, c.lr, c.b1, c.b2, c.eps, &e) &&
              !til_adam_init(&ga, optim, gb.param, gb.n_param, D, c.lr, c.b1, c.b2, c.eps, &e) &&
              !til_step_buf_alloc(&sb, B, D, &e) && !til_cuda_train_init(&dev, &c, &gb, &ga, &e),
          "%s", e.msg);
    static uint32_t u[B], i[B], j[B];
    double lc[STEPS], lg[STEPS];
    for (int s = 0; s < STEPS && dev; s++) {
        for (int b = 0; b < B; b++)
            u[b] = (uint32_t)(til_rng_uniform(&R) * NU), i[b] = (uint32_t)(til_rng_uniform(&R) * NI),
            j[b] = (uint32_t)(til_rng_uniform(&R) * NI);
        til_batch bt = {B - s, u, i, j}; /* ragged sizes too */
        CHECK(!cb.ops->prepare(&cb, &bt, &e), "%s", e.msg);
        til_adam_catch_up(&ca, cb.rows, cb.n_rows, 1);
        CHECK(!til_batch_grad(&cb, &bt, c.reg, 1, &sb, &lc[s], &e) &&
                  !til_adam_step(&ca, cb.rows, sb.G, cb.n_rows, 1, &e),
              "%s", e.msg);
        CHECK(!til_cuda_train_step(dev, &bt, &lg[s], &e), "%s", e.msg);
    }
    if (dev) {
        CHECK(!til_cuda_train_download(dev, 1, &e), "%s", e.msg);
        til_adam_sync(&ca, 1);
        uint64_t n = cb.n_param * D;
        CHECK_CLOSE("batch loss", lg, lc, STEPS, 1e-7, 1e-6);
        CHECK_CLOSE_F("param", gb.param, cb.param, n, 1e-6, 1e-4);
        CHECK_CLOSE_F("adam m", ga.m, ca.m, n, 1e-9, 1e-4);
        CHECK_CLOSE_F("adam v", ga.v, ca.v, n, 1e-12, 1e-4);
        CHECK(ga.t == ca.t, "steps %llu vs %llu", (unsigned long long)ga.t, (unsigned long long)ca.t);
    }
    til_cuda_train_free(&dev);
    til_step_buf_free(&sb);
    til_adam_free(&ca), til_adam_free(&ga);
    til_backbone_free(&cb), til_backbone_free(&gb);
}
TEST(train_step_dense_vs_cpu) { train_case(TIL_ADAM_DENSE); }
TEST(train_step_lazy_adam_vs_cpu) { train_case(TIL_ADAM_SPARSE); }

static int cmp_key(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x < y) - (x > y); /* descending */
}

TEST(k_topk_vs_sort)
{
    enum { N = 20, NI = 3000, K = 50 };
    static float S[N * NI], ts[N * K];
    static uint32_t items[N * K];
    static uint64_t kt[N], better[N], nan[N], keys[NI];
    static int counts[N];
    for (int r = 0; r < N; r++)
        for (int i = 0; i < NI; i++) {
            float x = rnd();
            if (r % 4 == 1)
                x = (float)(int)(x * 4) / 4; /* many ties */
            if (r == 2 && i % 7)
                x = -INFINITY; /* few candidates (< K) */
            if (r % 5 == 3 && i % 3 == 0)
                x = -INFINITY; /* excluded */
            S[r * NI + i] = x;
        }
    for (int r = 0; r < N; r++)
        kt[r] = r == 5 ? 0 : til_score_key64(S[r * NI + 17 * r], 17 * r);
    til_err e;
    CHECK(!til_cuda_k_topk(S, N, NI, K, kt, items, ts, counts, better, nan, &e), "%s", e.msg);
    int bad = 0;
    for (int r = 0; r < N; r++) {
        int nc = 0;
        uint64_t nb = 0;
        for (int i = 0; i < NI; i++) {
            uint64_t k = til_score_key64(S[r * NI + i], (uint32_t)i);
            if (k >> 32)
                keys[nc++] = k, nb += kt[r] && k > kt[r];
        }
        qsort(keys, (size_t)nc, sizeof *keys, cmp_key);
        int want = nc < K ? nc : K;
        if (counts[r] != want || better[r] != nb || nan[r] != 0) {
            bad++;
            printf("#   row %d: count %d want %d, better %llu want %llu\n", r, counts[r], want,
                   (unsigned long long)better[r], (unsigned long long)nb);
            continue;
        }
        for (int q = 0; q < want; q++)
            if (items[r * K + q] != 0xFFFFFFFFu - (uint32_t)keys[q]) {
                bad++;
                printf("#   row %d rank %d: item %u want %u\n", r, q, items[r * K + q], 0xFFFFFFFFu - (uint32_t)keys[q]);
                break;
            }
    }
    CHECK(bad == 0, "%d rows differ", bad);
}

TEST(eval_vs_cpu)
{
    enum { NU = 300, NI = 500, D = 16 };
    til_err e;
    static float U[NU * D], V[NI * D];
    for (int k = 0; k < NU * D; k++)
        U[k] = rnd();
    for (int k = 0; k < NI * D; k++)
        V[k] = rnd();
    uint32_t *pu = malloc(NU * 40 * sizeof *pu), *pi = malloc(NU * 40 * sizeof *pi);
    til_inter sets[3];
    for (int s = 0; s < 3; s++) {
        uint64_t n = 0;
        for (uint32_t u = 0; u < NU; u++)
            for (int q = 0; q < (s == 0 ? 30 : 5); q++)
                pu[n] = u, pi[n++] = (uint32_t)(til_rng_uniform(&R) * NI);
        CHECK(!til_inter_from_pairs(&sets[s], NU, NI, n, pu, pi, NULL, NULL, NULL, &e), "%s", e.msg);
    }
    til_scorer sc = til_scorer_dot(U, V, NU, NI, D);
    til_eval_opts o = {.ks = {1, 10, 20, 50}, .n_k = 4, .threads = 2, .block = 0};
    til_eval_result rc, rg;
    CHECK(!til_eval_run(&sc, &sets[0], &sets[1], &sets[2], &o, &rc, NULL, &e), "%s", e.msg);
    o.device = TIL_DEVICE_CUDA;
    o.block = 37; /* ragged blocks */
    CHECK(!til_eval_run(&sc, &sets[0], &sets[1], &sets[2], &o, &rg, NULL, &e), "%s", e.msg);
    CHECK(rg.n_users == rc.n_users, "users %llu vs %llu", (unsigned long long)rg.n_users,
          (unsigned long long)rc.n_users);
    CHECK_CLOSE("recall", rg.recall, rc.recall, 4, 1e-6, 0);
    CHECK_CLOSE("ndcg", rg.ndcg, rc.ndcg, 4, 1e-6, 0);
    CHECK_CLOSE("precision", rg.precision, rc.precision, 4, 1e-6, 0);
    CHECK_CLOSE("mrr", &rg.mrr, &rc.mrr, 1, 1e-6, 0);
    for (int s = 0; s < 3; s++)
        til_inter_free(&sets[s]);
    free(pu), free(pi);
}

int main(void)
{
    til_err e;
    if (til_cuda_check(&e)) {
        printf("1..0 # SKIP %s\n", e.msg);
        return 0;
    }
    char dev[256];
    if (!til_cuda_describe(dev, sizeof dev, &e))
        printf("# device: %s\n", dev);
    til_rng_seed(&R, 7, 0);
    RUN(k_bpr_vs_cpu);
    RUN(k_adam_vs_cpu);
    RUN(train_step_dense_vs_cpu);
    RUN(train_step_lazy_adam_vs_cpu);
    RUN(k_topk_vs_sort);
    RUN(eval_vs_cpu);
    return unit_end();
}

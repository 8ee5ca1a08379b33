/* test_device: the shared host/device arithmetic of til_device.h against the
 * CPU modules it mirrors, bit for bit (the CUDA kernels run the same lines). */
#include <float.h>
#include <string.h>

#include "til_adam.h"
#include "til_device.h"
#include "til_loss.h"
#include "til_rng.h"
#include "til_train.h"
#include "unit.h"

static uint32_t bits(float x)
{
    uint32_t u;
    memcpy(&u, &x, 4);
    return u;
}

TEST(dot_matches_til_dot)
{
    til_rng r;
    til_rng_seed(&r, 1, 0);
    float a[200], b[200];
    for (int k = 0; k < 200; k++)
        a[k] = (float)(til_rng_uniform(&r) * 2 - 1), b[k] = (float)(til_rng_uniform(&r) * 2 - 1);
    int bad = 0;
    for (int d = 1; d <= 200; d++)
        bad += bits(til_dot_hd(a, b, d)) != bits(til_dot(a, b, d));
    CHECK(bad == 0, "%d dims differ", bad);
}

TEST(bpr_matches_til_loss_bpr)
{
    enum { N = 2000 };
    static float sp[N], sn[N], l[N], gp[N], gn[N];
    til_rng r;
    til_rng_seed(&r, 2, 0);
    for (int b = 0; b < N; b++)
        sp[b] = (float)((til_rng_uniform(&r) * 2 - 1) * (b < 100 ? 100 : 8)), sn[b] = (float)(til_rng_uniform(&r) * 2 - 1);
    til_loss_bpr(sp, sn, NULL, 1.0f / N, 0, N, l, gp, gn);
    int bad = 0;
    for (int b = 0; b < N; b++) {
        float lh, gh;
        til_bpr_hd(sp[b], sn[b], 1.0f, 1.0f / N, &lh, &gh);
        bad += bits(lh) != bits(l[b]) || bits(gh) != bits(gp[b]) || bits(-gh) != bits(gn[b]);
    }
    CHECK(bad == 0, "%d triplets differ", bad);
}

/* eager Adam (til_adam, AVX rows) vs til_adam_elem_hd over several steps with
 * some rows without gradient; SparseAdam likewise */
static void adam_case(int mode)
{
    enum { R = 7, D = 37, T = 6 };
    static float p[R * D], m0[R * D], v0[R * D], p2[R * D], G[R * D];
    til_rng r;
    til_rng_seed(&r, 3, (uint64_t)mode);
    for (int k = 0; k < R * D; k++)
        p[k] = p2[k] = (float)(til_rng_uniform(&r) - 0.5);
    memset(m0, 0, sizeof m0), memset(v0, 0, sizeof v0);
    til_adam a;
    til_err e;
    CHECK(!til_adam_init(&a, mode, p, R, D, 1e-2, 0.9, 0.999, 1e-8, &e), "%s", e.msg);
    uint32_t rows[2] = {1, 4};
    for (int t = 1; t <= T; t++) {
        for (int k = 0; k < 2 * D; k++)
            G[k] = (float)(til_rng_uniform(&r) - 0.5) * (t == 3 ? 0 : 1);
        CHECK(!til_adam_step(&a, rows, G, 2, 1, &e), "%s", e.msg);
        for (int x = 0; x < R; x++) {
            int s = x == 1 ? 0 : x == 4 ? 1 : -1;
            if (mode == TIL_ADAM_SPARSE && s < 0)
                continue;
            for (int q = 0; q < D; q++) {
                float g = s >= 0 ? G[s * D + q] : 0.0f;
                int k = x * D + q;
                if (mode == TIL_ADAM_SPARSE)
                    til_sparse_adam_elem_hd(&p2[k], &m0[k], &v0[k], g, (float)(1 - 0.9), (float)(1 - 0.999),
                                            a.c_ns[t], 1e-8f);
                else
                    til_adam_elem_hd(&p2[k], &m0[k], &v0[k], g, 0.9f, (float)(1 - 0.9), 0.999f, (float)(1 - 0.999),
                                     a.c_ns[t], a.c_bc2s[t], 1e-8f);
            }
        }
    }
    til_adam_sync(&a, 1);
    int bad = 0;
    for (int k = 0; k < R * D; k++)
        bad += bits(p[k]) != bits(p2[k]) || bits(a.m[k]) != bits(m0[k]) || bits(a.v[k]) != bits(v0[k]);
    CHECK(bad == 0, "mode %d: %d elements differ", mode, bad);
    til_adam_free(&a);
}
TEST(adam_dense_matches) { adam_case(TIL_ADAM_DENSE); }
TEST(adam_eager_matches) { adam_case(TIL_ADAM_EAGER); }
TEST(adam_sparse_matches) { adam_case(TIL_ADAM_SPARSE); }

/* key order == til_eval's: higher score, ties (-0 == +0) to the lower id; -inf and NaN key32 0 */
TEST(score_keys_order_like_eval)
{
    float vals[] = {-INFINITY, -3.5f, -1e-30f, -0.0f, 0.0f, 1e-30f, 1.0f, 1.0f, 2.5f, INFINITY};
    int n = sizeof vals / sizeof *vals, bad = 0;
    for (int a = 0; a < n; a++)
        for (int b = 0; b < n; b++)
            for (uint32_t ia = 0; ia < 3; ia++)
                for (uint32_t ib = 0; ib < 3; ib++) {
                    if (vals[a] == -INFINITY || vals[b] == -INFINITY || (a == b && ia == ib))
                        continue;
                    int better = vals[a] > vals[b] || (vals[a] == vals[b] && ia < ib);
                    bad += better != (til_score_key64(vals[a], ia) > til_score_key64(vals[b], ib));
                }
    CHECK(bad == 0, "%d pairs ordered differently", bad);
    CHECK(til_score_key32(-INFINITY) == 0 && til_score_key32(NAN) == 0, "excluded keys");
    CHECK(til_score_key32(-FLT_MAX) > 0, "lowest finite key is a candidate");
    CHECK(til_device_parse("cpu") == TIL_DEVICE_CPU && til_device_parse("cuda") == TIL_DEVICE_CUDA &&
              til_device_parse("gpu") < 0 && til_device_parse("cud") < 0,
          "til_device_parse");
}

int main(void)
{
    RUN(dot_matches_til_dot);
    RUN(bpr_matches_til_loss_bpr);
    RUN(adam_dense_matches);
    RUN(adam_eager_matches);
    RUN(adam_sparse_matches);
    RUN(score_keys_order_like_eval);
    return unit_end();
}

/* Unit tests of the data tools' libraries: til_split (per-user part sizes,
 * partition, determinism, temporal order), til_noise (exact counts, injected
 * items never positives nor excluded, removed ones were positives) and
 * til_synth (determinism, planted cluster structure). */
#include <string.h>

#include "til_inter.h"
#include "til_noise.h"
#include "til_rng.h"
#include "til_split.h"
#include "til_synth.h"
#include "til_util.h"
#include "unit.h"

/* A random interaction file: user u has u % 31 records (0..30), with ratings
 * and timestamps (ties on purpose: ts = item / 3). */
static void make_data(til_inter *t, uint32_t n_users, uint32_t n_items, uint64_t seed)
{
    til_err e;
    uint64_t n = 0;
    for (uint32_t u = 0; u < n_users; u++)
        n += u % 31;
    uint32_t *us = malloc(n * sizeof *us), *is = malloc(n * sizeof *is);
    float *rs = malloc(n * sizeof *rs);
    int64_t *ts = malloc(n * sizeof *ts);
    uint8_t *seen = calloc(n_items, 1);
    til_rng r;
    til_rng_seed(&r, seed, 99);
    uint64_t k = 0;
    for (uint32_t u = 0; u < n_users; u++) {
        memset(seen, 0, n_items);
        for (uint32_t j = 0; j < u % 31; j++) {
            uint32_t i;
            do
                i = (uint32_t)til_rng_below(&r, n_items);
            while (seen[i]);
            seen[i] = 1;
            us[k] = u;
            is[k] = i;
            rs[k] = (float)(1 + til_rng_below(&r, 5));
            ts[k] = i / 3;
            k++;
        }
    }
    int rc = til_inter_from_pairs(t, n_users, n_items, n, us, is, rs, ts, NULL, &e);
    CHECK(rc == 0, "from_pairs: %s", e.msg);
    free(us);
    free(is);
    free(rs);
    free(ts);
    free(seen);
}

static int inter_equal(const til_inter *a, const til_inter *b)
{
    return a->n_users == b->n_users && a->n_items == b->n_items && a->nnz == b->nnz &&
           memcmp(a->indptr, b->indptr, (a->n_users + 1) * sizeof *a->indptr) == 0 &&
           memcmp(a->items, b->items, a->nnz * sizeof *a->items) == 0 && !a->rating == !b->rating &&
           !a->ts == !b->ts && (!a->rating || memcmp(a->rating, b->rating, a->nnz * sizeof *a->rating) == 0) &&
           (!a->ts || memcmp(a->ts, b->ts, a->nnz * sizeof *a->ts) == 0);
}

static void free3(til_inter *o)
{
    for (int p = 0; p < 3; p++)
        til_inter_free(&o[p]);
}

TEST(split_ratio_parsing)
{
    til_err e;
    uint64_t p[3];
    CHECK(til_split_parse_ratio("8:1:1", p, &e) == 0 && p[0] == 8 && p[1] == 1 && p[2] == 1, "8:1:1");
    CHECK(til_split_parse_ratio("0.8:0.1:0.1", p, &e) == 0 && p[0] == 8 && p[1] == 1 && p[2] == 1, "0.8:0.1:0.1");
    CHECK(til_split_parse_ratio("0.7:0.15:0.15", p, &e) == 0 && p[0] == 70 && p[1] == 15 && p[2] == 15, "0.7");
    CHECK(til_split_parse_ratio("8:2:0", p, &e) == 0 && p[2] == 0, "8:2:0");
    CHECK(til_split_parse_ratio("0:1:1", p, &e) == -1 && strstr(e.msg, "training"), "zero train: %s", e.msg);
    CHECK(til_split_parse_ratio("8:1", p, &e) == -1, "two parts accepted");
    CHECK(til_split_parse_ratio("8:1:1:1", p, &e) == -1, "four parts accepted");
    CHECK(til_split_parse_ratio("8:-1:1", p, &e) == -1, "negative accepted");
    CHECK(til_split_parse_ratio("8::1", p, &e) == -1, "empty part accepted");
    CHECK(til_split_parse_ratio("8:1:1x", p, &e) == -1, "junk accepted");
    CHECK(til_split_parse_ratio("1.5.5:1:1", p, &e) == -1, "two dots accepted");
    CHECK(til_split_parse_ratio("9999999999:1:1", p, &e) == -1, "huge accepted");
}

TEST(split_counts_rule)
{
    uint64_t p811[3] = {8, 1, 1}, c[3];
    /* expected (train, valid, test) for n = 1..30 under 8:1:1, worked by hand:
     * train = max(1, floor(0.8n)), valid = floor(0.1n), test = rest */
    for (uint64_t n = 1; n <= 30; n++) {
        til_split_counts(n, p811, c);
        uint64_t tr = n * 8 / 10 ? n * 8 / 10 : 1, va = TIL_MIN(n / 10, n - tr);
        CHECK(c[0] == tr && c[1] == va && c[2] == n - tr - va, "n=%llu: %llu %llu %llu", (unsigned long long)n,
              (unsigned long long)c[0], (unsigned long long)c[1], (unsigned long long)c[2]);
        CHECK(c[0] >= 1, "n=%llu: no training record", (unsigned long long)n);
        CHECK(n < 2 || c[2] >= 1, "n=%llu: no test record", (unsigned long long)n);
        CHECK(n < 10 || c[1] >= 1, "n=%llu: no valid record", (unsigned long long)n);
    }
    /* a few literal values */
    til_split_counts(1, p811, c);
    CHECK(c[0] == 1 && c[1] == 0 && c[2] == 0, "n=1");
    til_split_counts(2, p811, c);
    CHECK(c[0] == 1 && c[1] == 0 && c[2] == 1, "n=2");
    til_split_counts(9, p811, c);
    CHECK(c[0] == 7 && c[1] == 0 && c[2] == 2, "n=9");
    til_split_counts(10, p811, c);
    CHECK(c[0] == 8 && c[1] == 1 && c[2] == 1, "n=10");
    til_split_counts(29, p811, c);
    CHECK(c[0] == 23 && c[1] == 2 && c[2] == 4, "n=29");
    til_split_counts(0, p811, c);
    CHECK(c[0] == 0 && c[1] == 0 && c[2] == 0, "n=0");
    uint64_t p100[3] = {1, 0, 0};
    til_split_counts(5, p100, c);
    CHECK(c[0] == 5 && c[1] == 0 && c[2] == 0, "1:0:0");
    uint64_t p136[3] = {1, 3, 6}; /* valid capped by n - train */
    til_split_counts(1, p136, c);
    CHECK(c[0] == 1 && c[1] == 0 && c[2] == 0, "1:3:6 n=1");
    til_split_counts(3, p136, c);
    CHECK(c[0] == 1 && c[1] == 0 && c[2] == 2, "1:3:6 n=3");
}

/* Checks that the three parts partition the input, with per-user sizes by the
 * rule, columns carried. */
static void check_partition(const til_inter *in, const til_inter *o, const uint64_t parts[3])
{
    int ok_size = 1, ok_once = 1, ok_cols = 1;
    for (int p = 0; p < 3; p++)
        CHECK(o[p].n_users == in->n_users && o[p].n_items == in->n_items && til_inter_flags(&o[p]) == til_inter_flags(in),
              "part %d shape/columns", p);
    for (uint32_t u = 0; u < in->n_users; u++) {
        uint64_t c[3];
        til_split_counts(til_inter_deg(in, u), parts, c);
        for (int p = 0; p < 3; p++)
            ok_size &= til_inter_deg(&o[p], u) == c[p];
        for (uint64_t k = in->indptr[u]; k < in->indptr[u + 1]; k++) {
            int found = 0;
            for (int p = 0; p < 3; p++)
                for (uint64_t q = o[p].indptr[u]; q < o[p].indptr[u + 1]; q++)
                    if (o[p].items[q] == in->items[k]) {
                        found++;
                        ok_cols &= o[p].rating[q] == in->rating[k] && o[p].ts[q] == in->ts[k];
                    }
            ok_once &= found == 1;
        }
    }
    CHECK(o[0].nnz + o[1].nnz + o[2].nnz == in->nnz, "sizes do not add up");
    CHECK(ok_size, "a user's part sizes differ from the rule");
    CHECK(ok_once, "an interaction is not in exactly one part");
    CHECK(ok_cols, "rating/timestamp not carried");
}

TEST(split_random_partition_and_determinism)
{
    til_inter in, a[3], b[3], c[3];
    til_err e;
    make_data(&in, 93, 60, 1);
    til_split_opts o = {{8, 1, 1}, 5, 0};
    til_split_stats st;
    CHECK(til_split_run(&in, &o, a, &st, &e) == 0, "run: %s", e.msg);
    check_partition(&in, a, o.parts);
    CHECK(st.nnz[0] == a[0].nnz && st.nnz[1] == a[1].nnz && st.nnz[2] == a[2].nnz, "stats nnz");
    /* users with n = 1..9 records have empty valid: 3 of each residue 1..9 (93 users, u % 31) */
    CHECK(st.users == 90 && st.users_empty_valid == 27 && st.users_empty_test == 3, "stats users %llu %llu %llu",
          (unsigned long long)st.users, (unsigned long long)st.users_empty_valid,
          (unsigned long long)st.users_empty_test);
    CHECK(til_split_run(&in, &o, b, NULL, &e) == 0, "run again");
    CHECK(inter_equal(&a[0], &b[0]) && inter_equal(&a[1], &b[1]) && inter_equal(&a[2], &b[2]), "same seed differs");
    o.seed = 6;
    CHECK(til_split_run(&in, &o, c, NULL, &e) == 0, "run seed 6");
    check_partition(&in, c, o.parts);
    CHECK(!inter_equal(&a[2], &c[2]), "another seed gives the same test part");
    free3(b);
    /* a user's split depends only on (seed, user): dropping other users' records changes nothing */
    til_inter sub;
    CHECK(til_inter_alloc(&sub, in.n_users, in.n_items, til_inter_deg(&in, 29), 3, &e) == 0, "alloc");
    memcpy(sub.items, in.items + in.indptr[29], sub.nnz * 4);
    memcpy(sub.rating, in.rating + in.indptr[29], sub.nnz * 4);
    memcpy(sub.ts, in.ts + in.indptr[29], sub.nnz * 8);
    for (uint32_t u = 29; u < in.n_users; u++)
        sub.indptr[u + 1] = sub.nnz;
    o.seed = 5;
    CHECK(til_split_run(&sub, &o, b, NULL, &e) == 0, "run sub");
    CHECK(til_inter_deg(&b[2], 29) == til_inter_deg(&a[2], 29) &&
              memcmp(b[2].items, a[2].items + a[2].indptr[29], b[2].nnz * 4) == 0,
          "user 29's split depends on other users");
    til_inter_free(&sub);
    free3(b);
    free3(a);
    free3(c);
    til_inter_free(&in);
}

TEST(split_temporal_order)
{
    til_inter in, a[3];
    til_err e;
    make_data(&in, 62, 80, 2);
    til_split_opts o = {{8, 1, 1}, 1, 1};
    CHECK(til_split_run(&in, &o, a, NULL, &e) == 0, "run: %s", e.msg);
    check_partition(&in, a, o.parts);
    /* key (ts, item) of every train record < every valid record < every test record */
    int ok = 1;
    for (uint32_t u = 0; u < in.n_users; u++)
        for (int p = 0; p < 2; p++)
            for (uint64_t x = a[p].indptr[u]; x < a[p].indptr[u + 1]; x++)
                for (int q = p + 1; q < 3; q++)
                    for (uint64_t y = a[q].indptr[u]; y < a[q].indptr[u + 1]; y++) {
                        int64_t tx = a[p].ts[x], ty = a[q].ts[y];
                        ok &= tx < ty || (tx == ty && a[p].items[x] < a[q].items[y]);
                    }
    CHECK(ok, "a later record went to an earlier part");
    free3(a);
    /* no timestamps: error */
    free(in.ts);
    in.ts = NULL;
    CHECK(til_split_run(&in, &o, a, NULL, &e) == -1 && strstr(e.msg, "timestamps"), "no ts: %s", e.msg);
    til_inter_free(&in);
}

TEST(noise_counts_and_invariants)
{
    til_inter in, sp[3];
    til_err e;
    make_data(&in, 124, 40, 3);
    til_split_opts so = {{8, 1, 1}, 1, 0};
    CHECK(til_split_run(&in, &so, sp, NULL, &e) == 0, "split");
    const til_inter *tr = &sp[0];
    const til_inter *ex[2] = {&sp[1], &sp[2]};
    CHECK(til_noise_count(0.5, 1) == 1 && til_noise_count(0.5, 3) == 2 && til_noise_count(0.5, 4) == 2 &&
              til_noise_count(0.2, 7) == 1 && til_noise_count(0, 9) == 0 && til_noise_count(1.5, 2) == 3,
          "c_u rounding");
    unsigned modes[3] = {TIL_NOISE_POS, TIL_NOISE_NEG, TIL_NOISE_POS | TIL_NOISE_NEG};
    til_inter o[3][3];
    for (int m = 0; m < 3; m++) {
        til_noise_opts no = {modes[m], 0.5, 7};
        til_noise_stats st;
        CHECK(til_noise_run(tr, ex, 2, &no, &o[m][0], &o[m][1], &o[m][2], &st, &e) == 0, "run: %s", e.msg);
        const til_inter *out = &o[m][0], *inj = &o[m][1], *rem = &o[m][2];
        int ok_count = 1, ok_inj = 1, ok_rem = 1, ok_out = 1, ok_mark = 1;
        for (uint32_t u = 0; u < tr->n_users; u++) {
            uint64_t n = til_inter_deg(tr, u), c = til_noise_count(0.5, n);
            uint64_t free_items = tr->n_items - n - til_inter_deg(ex[0], u) - til_inter_deg(ex[1], u);
            uint64_t want_inj = (modes[m] & TIL_NOISE_POS) ? TIL_MIN(c, free_items) : 0;
            uint64_t want_rem = (modes[m] & TIL_NOISE_NEG) && n ? TIL_MIN(c, n - 1) : 0;
            ok_count &= til_inter_deg(inj, u) == want_inj && til_inter_deg(rem, u) == want_rem;
            ok_count &= til_inter_deg(out, u) == n - want_rem + want_inj;
            for (uint64_t k = inj->indptr[u]; k < inj->indptr[u + 1]; k++) {
                uint32_t i = inj->items[k];
                ok_inj &= !til_inter_has(tr, u, i) && !til_inter_has(ex[0], u, i) && !til_inter_has(ex[1], u, i);
                ok_out &= til_inter_has(out, u, i);
                ok_mark &= inj->rating[k] == 0 && inj->ts[k] == -1;
            }
            for (uint64_t k = rem->indptr[u]; k < rem->indptr[u + 1]; k++) {
                uint32_t i = rem->items[k];
                ok_rem &= til_inter_has(tr, u, i) && !til_inter_has(out, u, i);
            }
            for (uint64_t k = out->indptr[u]; k < out->indptr[u + 1]; k++) {
                uint32_t i = out->items[k];
                ok_out &= til_inter_has(tr, u, i) != til_inter_has(inj, u, i);
            }
        }
        CHECK(ok_count, "mode %u: per-user counts differ from c_u", modes[m]);
        CHECK(ok_inj, "mode %u: an injected item was a positive or excluded", modes[m]);
        CHECK(ok_rem, "mode %u: a removed item was not a positive or is still in the output", modes[m]);
        CHECK(ok_out, "mode %u: output is not train - removed + injected", modes[m]);
        CHECK(ok_mark, "mode %u: injected records not marked rating 0, timestamp -1", modes[m]);
        CHECK(til_inter_validate(out, "out", &e) == 0, "output invalid: %s", e.msg);
        CHECK(st.injected == inj->nnz && st.removed == rem->nnz, "stats");
        if (modes[m] & TIL_NOISE_POS)
            CHECK(st.users_pos_short > 0, "no user ran out of candidates (test data should make some)");
    }
    /* pos+neg injects what pos injects and removes what neg removes */
    CHECK(inter_equal(&o[2][1], &o[0][1]) && inter_equal(&o[2][2], &o[1][2]), "pos+neg differs from pos, neg");
    /* same seed same result, another seed another */
    til_inter a[3];
    til_noise_opts no = {TIL_NOISE_POS | TIL_NOISE_NEG, 0.5, 7};
    CHECK(til_noise_run(tr, ex, 2, &no, &a[0], &a[1], &a[2], NULL, &e) == 0, "rerun");
    CHECK(inter_equal(&a[0], &o[2][0]), "same seed differs");
    free3(a);
    no.seed = 8;
    CHECK(til_noise_run(tr, ex, 2, &no, &a[0], &a[1], &a[2], NULL, &e) == 0, "seed 8");
    CHECK(!inter_equal(&a[0], &o[2][0]), "another seed gives the same output");
    free3(a);
    /* without exclusion, injection may pick held-out items; with ratio 0 nothing changes */
    no = (til_noise_opts){TIL_NOISE_POS | TIL_NOISE_NEG, 0, 7};
    CHECK(til_noise_run(tr, NULL, 0, &no, &a[0], &a[1], &a[2], NULL, &e) == 0, "ratio 0");
    CHECK(inter_equal(&a[0], tr) && a[1].nnz == 0 && a[2].nnz == 0, "ratio 0 changed the file");
    free3(a);
    for (int m = 0; m < 3; m++)
        free3(o[m]);
    free3(sp);
    til_inter_free(&in);
}

static int synth_equal(const til_synth *a, const til_synth *b)
{
    return a->n == b->n && memcmp(a->indptr, b->indptr, (a->n_users + 1) * 8) == 0 &&
           memcmp(a->items, b->items, a->n * 4) == 0 && memcmp(a->rating, b->rating, a->n) == 0 &&
           memcmp(a->ts, b->ts, a->n * 8) == 0 && memcmp(a->item_cluster, b->item_cluster, a->n_items * 4) == 0;
}

TEST(synth_determinism_and_structure)
{
    til_synth_opts o = til_synth_defaults();
    til_synth a, b, c;
    til_err e;
    CHECK(til_synth_generate(&o, &a, &e) == 0, "generate: %s", e.msg);
    CHECK(til_synth_generate(&o, &b, &e) == 0, "generate again");
    CHECK(synth_equal(&a, &b), "same seed differs");
    o.seed = 2;
    CHECK(til_synth_generate(&o, &c, &e) == 0, "seed 2");
    CHECK(!synth_equal(&a, &c), "another seed gives the same data");
    /* default size: ~60k records (documented) */
    CHECK(a.n > 50000 && a.n < 70000, "default size %llu", (unsigned long long)a.n);
    /* clusters are balanced */
    uint32_t size[10] = {0};
    for (uint32_t i = 0; i < a.n_items; i++)
        size[a.item_cluster[i]]++;
    int bal = 1;
    for (int k = 0; k < 10; k++)
        bal &= size[k] == 100;
    CHECK(bal, "cluster sizes not 100 each");
    /* records concentrate in the user's mix: share in mix clusters vs the share
     * of items those clusters hold (what uniform records would give) */
    double in_mix = 0, base = 0, r_in = 0, r_off = 0, n_in = 0, n_off = 0, hi_main = 0, n_main = 0;
    int ok_ts = 1, ok_dup = 1, ok_len = 1;
    for (uint32_t u = 0; u < a.n_users; u++) {
        const float *w = a.user_w + (size_t)u * a.n_clusters;
        double mixshare = 0, wmax = 0;
        for (uint32_t k = 0; k < a.n_clusters; k++) {
            mixshare += w[k] > 0 ? size[k] / (double)a.n_items : 0;
            wmax = TIL_MAX(wmax, w[k]);
        }
        uint64_t deg = a.indptr[u + 1] - a.indptr[u];
        ok_len &= deg >= o.min_len && deg <= a.n_items / 2;
        base += mixshare * deg;
        for (uint64_t k = a.indptr[u]; k < a.indptr[u + 1]; k++) {
            float wk = w[a.item_cluster[a.items[k]]];
            ok_ts &= k == a.indptr[u] || a.ts[k] >= a.ts[k - 1];
            for (uint64_t q = a.indptr[u]; q < k; q++)
                ok_dup &= a.items[q] != a.items[k];
            if (wk > 0) {
                in_mix++;
                r_in += a.rating[k];
                n_in++;
            } else {
                r_off += a.rating[k];
                n_off++;
            }
            if (wk == wmax) {
                n_main++;
                hi_main += a.rating[k] >= 4;
            }
        }
    }
    in_mix /= (double)a.n;
    base /= (double)a.n;
    CHECK(in_mix > 0.75 && in_mix > base + 0.4, "share in the user's clusters %.3f (uniform would give %.3f)", in_mix,
          base);
    CHECK(r_in / n_in > r_off / n_off + 1.5, "mean rating in mix %.2f, off mix %.2f", r_in / n_in, r_off / n_off);
    CHECK(hi_main / n_main > 0.85, "share of ratings >= 4 in the main cluster %.3f", hi_main / n_main);
    CHECK(ok_ts, "timestamps not increasing within a user");
    CHECK(ok_dup, "a user has a repeated item");
    CHECK(ok_len, "a user's record count outside [min, items/2]");
    /* popularity: rank-0 items of a cluster are far more frequent than rank >= 50 (each user takes an item once, which flattens the head) */
    double top = 0, tail = 0, ntop = 0, ntail = 0;
    uint32_t *cnt = calloc(a.n_items, sizeof *cnt);
    for (uint64_t k = 0; k < a.n; k++)
        cnt[a.items[k]]++;
    for (uint32_t i = 0; i < a.n_items; i++) {
        if (a.item_rank[i] == 0) {
            top += cnt[i];
            ntop++;
        } else if (a.item_rank[i] >= 50) {
            tail += cnt[i];
            ntail++;
        }
    }
    CHECK(top / ntop > 4 * (tail / ntail), "head %.1f vs tail %.1f records per item", top / ntop, tail / ntail);
    free(cnt);
    /* bad options */
    o = til_synth_defaults();
    o.n_clusters = 0;
    CHECK(til_synth_check(&o, &e) == -1 && strstr(e.msg, "--clusters"), "0 clusters: %s", e.msg);
    o = til_synth_defaults();
    o.mix_max = 0;
    CHECK(til_synth_check(&o, &e) == -1 && strstr(e.msg, "--mix"), "mix 0");
    til_synth_free(&a);
    til_synth_free(&b);
    til_synth_free(&c);
}

int main(void)
{
    RUN(split_ratio_parsing);
    RUN(split_counts_rule);
    RUN(split_random_partition_and_determinism);
    RUN(split_temporal_order);
    RUN(noise_counts_and_invariants);
    RUN(synth_determinism_and_structure);
    return unit_end();
}

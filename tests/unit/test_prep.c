/* Unit tests of til_idmap and til_prep: the id map, number and time parsing,
 * dedupe, the k-core against a brute-force reference on random data, every
 * input format from small inline samples, the rating threshold and the
 * low-ratings output, malformed lines (counted, or the --strict error). */
#include <string.h>
#include <unistd.h>

#include "til_idmap.h"
#include "til_inter.h"
#include "til_io.h"
#include "til_prep.h"
#include "til_rng.h"
#include "til_util.h"
#include "unit.h"

static char tmpdir[256];

static const char *tpath(const char *name)
{
    static char buf[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", tmpdir, name);
    return buf[k];
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
}

/* Runs the whole pipeline on text; returns the prep (caller frees) or NULL
 * with the error in e. */
static til_prep *run_prep(const til_prep_opts *o, const char *text, til_inter *t, til_inter *low, til_err *e)
{
    const char *path = tpath("in.txt");
    write_text(path, text);
    til_prep *p = til_prep_new(o, e);
    if (!p)
        return NULL;
    til_rd *r = til_rd_open(path, e);
    int rc = !r || til_prep_read(p, r, e) || til_prep_finish(p, t, low, e);
    til_rd_close(&r);
    if (rc)
        til_prep_free(&p);
    return p;
}

static int raw_is(const til_prep *p, int which, uint32_t d, const char *want)
{
    size_t len;
    const char *k = til_prep_raw_id(p, which, d, &len);
    return len == strlen(want) && memcmp(k, want, len) == 0;
}

TEST(idmap_intern_and_order)
{
    til_err e;
    til_idmap *m = til_idmap_new(&e);
    CHECK(til_idmap_intern(m, "10", 2, &e) == 0, "first id");
    CHECK(til_idmap_intern(m, "9", 1, &e) == 1, "second id");
    CHECK(til_idmap_intern(m, "10", 2, &e) == 0, "repeat keeps its id");
    CHECK(til_idmap_find(m, "9", 1) == 1 && til_idmap_find(m, "8", 1) == -1, "find");
    CHECK(til_idmap_numeric(m), "all canonical integers");
    uint32_t *s = til_idmap_sorted(m, &e);
    CHECK(s[0] == 1 && s[1] == 0, "numeric order: 9 before 10");
    free(s);
    /* a leading zero makes the keys non-canonical: byte order */
    CHECK(til_idmap_intern(m, "007", 3, &e) == 2, "third id");
    CHECK(!til_idmap_numeric(m), "007 is not canonical");
    s = til_idmap_sorted(m, &e);
    CHECK(s[0] == 2 && s[1] == 0 && s[2] == 1, "byte order: 007 < 10 < 9");
    free(s);
    /* growth: many keys, all found again with their ids */
    char buf[32];
    for (int k = 0; k < 20000; k++) {
        int n = snprintf(buf, sizeof buf, "key-%d", k);
        CHECK(til_idmap_intern(m, buf, (size_t)n, &e) == 3 + k, "id of key %d", k);
    }
    int bad = 0;
    for (int k = 0; k < 20000; k++) {
        int n = snprintf(buf, sizeof buf, "key-%d", k);
        bad += til_idmap_find(m, buf, (size_t)n) != 3 + k;
    }
    CHECK(bad == 0, "%d keys lost after growth", bad);
    CHECK(til_idmap_size(m) == 20003, "size %u", til_idmap_size(m));
    size_t len;
    const char *k = til_idmap_key(m, 2, &len);
    CHECK(len == 3 && memcmp(k, "007", 3) == 0, "key of id 2");
    /* prefix first in byte order */
    til_idmap *b = til_idmap_new(&e);
    til_idmap_intern(b, "ab", 2, &e);
    til_idmap_intern(b, "a", 1, &e);
    CHECK(til_idmap_cmp(b, 1, 0) < 0, "a < ab");
    til_idmap_free(&b);
    til_idmap_free(&m);
    CHECK(m == NULL, "free sets NULL");
}

TEST(parse_numbers_and_times)
{
    static const char *ok[] = {"4.0", "3.5", "-1", ".5", "5.", "+2", "0.1", "1e3", "2.5E-1", "0.12345678901234567891"};
    for (size_t k = 0; k < sizeof ok / sizeof *ok; k++) {
        double v, ref = strtod(ok[k], NULL);
        CHECK(til_prep_parse_number(ok[k], strlen(ok[k]), &v) == 0 && v == ref, "'%s' -> %.17g (ref %.17g)", ok[k],
              v, ref);
    }
    static const char *bad[] = {"", "abc", "4.0x", "nan", "inf", "-", ".", "1e", " 4", "4 ", "1e999"};
    for (size_t k = 0; k < sizeof bad / sizeof *bad; k++) {
        double v;
        CHECK(til_prep_parse_number(bad[k], strlen(bad[k]), &v) == -1, "'%s' accepted", bad[k]);
    }
    int64_t t;
    CHECK(til_prep_parse_iso8601("1970-01-01T00:00:00Z", 20, &t) == 0 && t == 0, "epoch");
    CHECK(til_prep_parse_iso8601("2010-10-19T23:55:27Z", 20, &t) == 0 && t == 1287532527, "gowalla time %lld",
          (long long)t);
    CHECK(til_prep_parse_iso8601("2000-02-29T12:00:00", 19, &t) == 0 && t == 951825600, "leap day, no Z");
    CHECK(til_prep_parse_iso8601("1969-12-31T23:59:59Z", 20, &t) == 0 && t == -1, "before epoch");
    CHECK(til_prep_parse_iso8601("1900-02-29T00:00:00Z", 20, &t) == -1, "1900 is not leap");
    CHECK(til_prep_parse_iso8601("2010-13-01T00:00:00Z", 20, &t) == -1, "month 13");
    CHECK(til_prep_parse_iso8601("2010-10-19T24:00:00Z", 20, &t) == -1, "hour 24");
    CHECK(til_prep_parse_iso8601("2010-10-19", 10, &t) == -1, "date only");
    CHECK(til_prep_parse_iso8601("2010-10-19T23:55:27ZZ", 21, &t) == -1, "junk");
}

TEST(dedupe_keeps_max_rating_and_latest_time)
{
    til_err e;
    til_prep_recs s;
    til_prep_recs_init(&s, 1, 1, &e);
    /* (user, item, rating, time) */
    til_prep_recs_push(&s, 1, 5, 3, 10, &e);
    til_prep_recs_push(&s, 0, 7, 1, 50, &e);
    til_prep_recs_push(&s, 1, 5, 5, 5, &e);
    til_prep_recs_push(&s, 1, 2, 4, 1, &e);
    til_prep_recs_push(&s, 1, 5, 4, 20, &e);
    uint64_t dups = 0;
    CHECK(til_prep_dedupe(&s, 2, &dups, &e) == 0, "%s", e.msg);
    CHECK(dups == 2 && s.n == 3, "dups %llu n %llu", (unsigned long long)dups, (unsigned long long)s.n);
    CHECK(s.u[0] == 0 && s.i[0] == 7 && s.u[1] == 1 && s.i[1] == 2 && s.u[2] == 1 && s.i[2] == 5, "sorted by pair");
    CHECK(s.r[2] == 5 && s.t[2] == 20, "merged pair: rating %g time %lld", s.r[2], (long long)s.t[2]);
    /* a user out of range is an error */
    til_prep_recs_push(&s, 9, 0, 0, 0, &e);
    CHECK(til_prep_dedupe(&s, 2, NULL, &e) == -1 && strstr(e.msg, "out of range"), "%s", e.msg);
    til_prep_recs_free(&s);
    /* a long user slice takes the qsort path */
    til_prep_recs_init(&s, 0, 0, &e);
    for (int k = 0; k < 200; k++)
        til_prep_recs_push(&s, 0, (uint32_t)(k * 7919 % 50), 0, 0, &e);
    CHECK(til_prep_dedupe(&s, 1, &dups, &e) == 0 && s.n == 50 && dups == 150, "n %llu", (unsigned long long)s.n);
    int sorted = 1;
    for (uint64_t k = 0; k < s.n; k++)
        sorted &= s.i[k] == k;
    CHECK(sorted, "items 0..49 in order");
    til_prep_recs_free(&s);
}

/* Brute force: remove one user or item below k at a time (first found), over
 * an adjacency matrix, until none is left. The k-core is unique, so the order
 * of removals must not matter. */
static void kcore_ref(uint8_t *adj, int nu, int ni, int k)
{
    for (;;) {
        int removed = 0;
        for (int u = 0; u < nu && !removed; u++) {
            int d = 0;
            for (int i = 0; i < ni; i++)
                d += adj[u * ni + i];
            if (d > 0 && d < k) {
                memset(adj + u * ni, 0, (size_t)ni);
                removed = 1;
            }
        }
        for (int i = 0; i < ni && !removed; i++) {
            int d = 0;
            for (int u = 0; u < nu; u++)
                d += adj[u * ni + i];
            if (d > 0 && d < k) {
                for (int u = 0; u < nu; u++)
                    adj[u * ni + i] = 0;
                removed = 1;
            }
        }
        if (!removed)
            return;
    }
}

TEST(kcore_matches_brute_force)
{
    til_err e;
    til_rng rng;
    til_rng_seed(&rng, 42, 0);
    int mismatches = 0, nonempty = 0, rounds_max = 0;
    for (int trial = 0; trial < 300; trial++) {
        int nu = 1 + (int)til_rng_below(&rng, 25), ni = 1 + (int)til_rng_below(&rng, 25);
        int k = 1 + (int)til_rng_below(&rng, 5);
        double dens = 0.05 + 0.5 * til_rng_uniform(&rng);
        uint8_t *adj = calloc((size_t)nu * ni, 1), *got = calloc((size_t)nu * ni, 1);
        til_prep_recs s;
        til_prep_recs_init(&s, 0, 0, &e);
        for (int u = 0; u < nu; u++)
            for (int i = 0; i < ni; i++)
                if (til_rng_uniform(&rng) < dens) {
                    adj[u * ni + i] = 1;
                    til_prep_recs_push(&s, (uint32_t)u, (uint32_t)i, 0, 0, &e);
                }
        kcore_ref(adj, nu, ni, k);
        til_prep_stats st = {0};
        int rounds = til_prep_kcore(&s, (uint32_t)nu, (uint32_t)ni, k, 0, &st, "kcore", &e);
        CHECK(rounds >= 0 && rounds == st.n_step, "rounds %d steps %d", rounds, st.n_step);
        rounds_max = TIL_MAX(rounds_max, rounds);
        for (uint64_t x = 0; x < s.n; x++)
            got[s.u[x] * ni + s.i[x]] = 1;
        if (memcmp(adj, got, (size_t)nu * ni) != 0) {
            if (mismatches++ < 3)
                printf("#   trial %d: nu %d ni %d k %d differs from the reference\n", trial, nu, ni, k);
        }
        nonempty += s.n > 0;
        if (st.n_step) {
            uint64_t cu, ci;
            til_prep_count(&s, (uint32_t)nu, (uint32_t)ni, &cu, &ci, &e);
            const til_prep_step *last = &st.step[st.n_step - 1];
            CHECK(last->nnz == s.n && last->users == cu && last->items == ci, "last step counts");
        }
        free(st.step);
        til_prep_recs_free(&s);
        free(adj);
        free(got);
    }
    CHECK(mismatches == 0, "%d of 300 trials differ", mismatches);
    CHECK(nonempty > 50 && rounds_max >= 3, "weak test data: %d non-empty, at most %d rounds", nonempty, rounds_max);
}

TEST(kcore_once_is_one_round)
{
    til_err e;
    /* user 0: items 0,1 ; user 1: items 0,1,2 ; user 2: item 2. k = 2:
     * round 1 drops user 2 (degree 1); item 2 had degree 2 at the start of the
     * round and stays, with degree 1 left; round 2 would drop it. */
    static const uint32_t U[] = {0, 0, 1, 1, 1, 2}, I[] = {0, 1, 0, 1, 2, 2};
    til_prep_recs s;
    til_prep_recs_init(&s, 0, 0, &e);
    for (int k = 0; k < 6; k++)
        til_prep_recs_push(&s, U[k], I[k], 0, 0, &e);
    CHECK(til_prep_kcore(&s, 3, 3, 2, 1, NULL, NULL, &e) == 1 && s.n == 5, "once: n %llu", (unsigned long long)s.n);
    CHECK(til_prep_kcore(&s, 3, 3, 2, 0, NULL, NULL, &e) == 1 && s.n == 4, "then: n %llu", (unsigned long long)s.n);
    CHECK(til_prep_kcore(&s, 3, 3, 0, 0, NULL, NULL, &e) == 0 && s.n == 4, "k 0 is a no-op");
    til_prep_recs_free(&s);
}

TEST(amazon_threshold_dedupe_low_and_maps)
{
    til_err e;
    til_prep_opts o;
    til_prep_opts_default(&o);
    o.format = TIL_FMT_AMAZON;
    o.kcore = 0;
    o.want_low = 1;
    const char *text = "A1,0001,5.0,100\n"
                       "A2,0001,3.0,200\n"
                       "A1,B002,4.0,300\n"
                       "A1,0001,4.0,400\n"
                       "A3,0001,5,1\n"
                       "A3,B002,2.0,7\n"
                       "A3,B002,1.5,9\n"
                       "A1,B002,1,10\n";
    til_inter t, low;
    til_prep *p = run_prep(&o, text, &t, &low, &e);
    CHECK(p != NULL, "%s", e.msg);
    if (!p)
        return;
    const til_prep_stats *st = til_prep_get_stats(p);
    CHECK(st->lines == 8 && st->records == 8 && st->below == 4 && st->dups == 1, "lines %llu below %llu dups %llu",
          (unsigned long long)st->lines, (unsigned long long)st->below, (unsigned long long)st->dups);
    CHECK(t.n_users == 2 && t.n_items == 2 && t.nnz == 3, "shape %u %u %llu", t.n_users, t.n_items,
          (unsigned long long)t.nnz);
    CHECK(raw_is(p, 0, 0, "A1") && raw_is(p, 0, 1, "A3") && raw_is(p, 1, 0, "0001") && raw_is(p, 1, 1, "B002"),
          "dense ids in raw-id order");
    CHECK(t.rating && t.ts, "rating and time kept by default");
    /* A1-0001 merged: max rating 5, latest time 400 */
    CHECK(t.items[0] == 0 && t.rating[0] == 5 && t.ts[0] == 400, "merged pair %u %g %lld", t.items[0], t.rating[0],
          (long long)t.ts[0]);
    CHECK(til_inter_has(&t, 0, 1) && til_inter_has(&t, 1, 0) && !til_inter_has(&t, 1, 1), "positives");
    /* low: only A3-B002 (A2 is not a survivor; A1-B002 also has a rating 4) */
    CHECK(low.n_users == 2 && low.n_items == 2 && low.nnz == 1 && til_inter_has(&low, 1, 1), "low nnz %llu",
          (unsigned long long)low.nnz);
    CHECK(low.rating[0] == 2 && low.ts[0] == 9, "low merged %g %lld", low.rating[0], (long long)low.ts[0]);
    /* id map file */
    CHECK(til_prep_write_map(p, 1, tpath("items.map"), &e) == 0, "%s", e.msg);
    FILE *f = fopen(tpath("items.map"), "r");
    char buf[128] = {0};
    size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    if (f)
        fclose(f);
    CHECK(n == 14 && strcmp(buf, "0\t0001\n1\tB002\n") == 0, "map file '%s'", buf);
    til_inter_free(&t);
    til_inter_free(&low);
    til_prep_free(&p);

    /* a lower threshold and dropped columns */
    til_prep_opts_default(&o);
    o.kcore = 0;
    o.min_rating_set = 1;
    o.min_rating = 1.5;
    o.keep_rating = 0;
    o.keep_time = 0;
    p = run_prep(&o, text, &t, NULL, &e);
    CHECK(p && t.nnz == 5 && !t.rating && !t.ts, "min 1.5: nnz %llu", (unsigned long long)t.nnz);
    til_inter_free(&t);
    til_prep_free(&p);
}

typedef struct {
    int format;
    const char *text;
    uint32_t users, items;
    uint64_t nnz;
    const char *user0, *item0; /* raw ids of dense 0 */
    int has_r, has_t;
    float r0;
    int64_t t0;
    uint64_t header, no_item, malformed;
} fmt_case;

TEST(every_format_parses)
{
    static const fmt_case cases[] = {
        {TIL_FMT_AMAZON, "AX,I9,4.0,5\nAX,I8,5,6\n", 1, 2, 2, "AX", "I8", 1, 1, 5, 6, 0, 0, 0},
        {TIL_FMT_ML100K, "2\t20\t5\t881250950\n10 3  4   881250949\n", 2, 2, 2, "2", "3", 1, 1, 5, 881250950, 0, 0,
         0},
        {TIL_FMT_ML1M, "1::1193::5::978300760\n1::661::3::978302109\n", 1, 1, 1, "1", "1193", 1, 1, 5, 978300760, 0,
         0, 0},
        {TIL_FMT_MLCSV, "userId,movieId,rating,timestamp\r\n1,1,4.0,964982703\r\n1,3,4.5,964981247\r\n", 1, 2, 2, "1",
         "1", 1, 1, 4, 964982703, 1, 0, 0},
        {TIL_FMT_LASTFM, "userID\tartistID\tweight\n2\t51\t13883\n2\t52\t11690\n", 1, 2, 2, "2", "51", 0, 0, 0, 0, 1,
         0, 0},
        {TIL_FMT_LASTFM, "2\t51\t13883\n3\t51\t1\n", 2, 1, 2, "2", "51", 0, 0, 0, 0, 0, 0, 0},
        {TIL_FMT_LASTFM1K,
         "user_000001\t2009-05-04T23:08:57Z\tf1b1cf71-bd35-4e99-8624-24a6e15f133a\tDeep Dish\t\tFuck Me Im Famous\n"
         "user_000001\t2009-05-04T13:54:10Z\t\tAki\t\tSomething\n"
         "user_000001\t2009-05-04T10:00:00Z\tf1b1cf71-bd35-4e99-8624-24a6e15f133a\tDeep Dish\t\tAnother\n",
         1, 1, 1, "user_000001", "f1b1cf71-bd35-4e99-8624-24a6e15f133a", 0, 1, 0, 1241478537, 0, 1, 0},
        {TIL_FMT_LASTFM360K,
         "00000c289a1829a808ac09c00daf10bc3c4e223b\t3bd73256-3905-4f3a-97e2-8b341527f805\tbetty blowtorch\t2137\n"
         "00000c289a1829a808ac09c00daf10bc3c4e223b\t\tsome band\t100\n",
         1, 1, 1, "00000c289a1829a808ac09c00daf10bc3c4e223b", "3bd73256-3905-4f3a-97e2-8b341527f805", 0, 0, 0, 0, 0, 1,
         0},
        {TIL_FMT_GOWALLA_SNAP,
         "0\t2010-10-19T23:55:27Z\t30.2359091167\t-97.7951395833\t22847\n"
         "0\t2010-10-18T22:17:43Z\t30.2691029532\t-97.7493953705\t420315\n"
         "0\t2010-10-17T23:42:03Z\t91.0\t-97.7\t316637\n",
         1, 2, 2, "0", "22847", 0, 1, 0, 1287532527, 0, 0, 1},
        {TIL_FMT_ADJ, "0 1 2 3\n1 2\n2\n\n", 2, 3, 4, "0", "1", 0, 0, 0, 0, 0, 0, 0},
    };
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        const fmt_case *k = &cases[c];
        til_err e;
        til_prep_opts o;
        til_prep_opts_default(&o);
        o.format = k->format;
        o.kcore = 0;
        til_inter t;
        til_prep *p = run_prep(&o, k->text, &t, NULL, &e);
        const char *fn = til_prep_format_name(k->format);
        CHECK(p != NULL, "%s: %s", fn, e.msg);
        if (!p)
            continue;
        const til_prep_stats *st = til_prep_get_stats(p);
        CHECK(t.n_users == k->users && t.n_items == k->items && t.nnz == k->nnz, "%s: shape %u %u %llu", fn,
              t.n_users, t.n_items, (unsigned long long)t.nnz);
        CHECK(raw_is(p, 0, 0, k->user0) && raw_is(p, 1, 0, k->item0), "%s: raw ids of dense 0", fn);
        CHECK(!t.rating == !k->has_r && !t.ts == !k->has_t, "%s: columns", fn);
        if (t.rating && t.nnz)
            CHECK(t.rating[0] == k->r0, "%s: rating %g", fn, t.rating[0]);
        if (t.ts && t.nnz)
            CHECK(t.ts[0] == k->t0, "%s: time %lld", fn, (long long)t.ts[0]);
        CHECK(st->header == k->header && st->no_item == k->no_item && st->malformed == k->malformed,
              "%s: header %llu no_item %llu malformed %llu", fn, (unsigned long long)st->header,
              (unsigned long long)st->no_item, (unsigned long long)st->malformed);
        til_inter_free(&t);
        til_prep_free(&p);
    }
}

TEST(generic_format)
{
    til_err e;
    til_prep_opts o;
    til_prep_opts_default(&o);
    o.format = TIL_FMT_GENERIC;
    o.kcore = 0;
    o.sep = ';';
    o.header = 1;
    o.user_col = 2;
    o.item_col = 1;
    o.rating_col = 3;
    o.time_col = 4;
    til_inter t;
    til_prep *p = run_prep(&o, "item;user;rating;time\nI1;U1;5;2010-10-19T23:55:27Z\nI2;U1;4;17;extra\n", &t, NULL, &e);
    CHECK(p && t.n_users == 1 && t.n_items == 2 && t.nnz == 2, "%s", p ? "shape" : e.msg);
    if (p) {
        CHECK(t.ts[0] == 1287532527 && t.ts[1] == 17 && t.rating[0] == 5, "ISO or integer time");
        til_inter_free(&t);
        til_prep_free(&p);
    }
    /* no rating column: implicit */
    o.rating_col = 0;
    o.sep_kind = TIL_SEP_WS;
    o.header = 0;
    p = run_prep(&o, "a b x 1\nc b y 2\n", &t, NULL, &e);
    CHECK(p && t.n_users == 1 && t.n_items == 2 && !t.rating && t.ts, "implicit generic");
    if (p) {
        CHECK(raw_is(p, 0, 0, "b") && raw_is(p, 1, 0, "a"), "columns swapped");
        til_inter_free(&t);
        til_prep_free(&p);
    }
}

TEST(option_checks)
{
    til_err e;
    til_prep_opts o;
    til_prep_opts_default(&o);
    o.format = TIL_FMT_LASTFM;
    o.min_rating_set = 1;
    CHECK(til_prep_opts_check(&o, &e) == -1 && strstr(e.msg, "no ratings"), "min-rating on lastfm: %s", e.msg);
    til_prep_opts_default(&o);
    o.format = TIL_FMT_ADJ;
    o.want_low = 1;
    CHECK(til_prep_opts_check(&o, &e) == -1, "low on adj");
    til_prep_opts_default(&o);
    o.format = TIL_FMT_LASTFM360K;
    o.keep_time = 1;
    CHECK(til_prep_opts_check(&o, &e) == -1 && strstr(e.msg, "timestamps"), "keep-time on 360k: %s", e.msg);
    til_prep_opts_default(&o);
    o.format = TIL_FMT_GENERIC;
    o.user_col = 1;
    CHECK(til_prep_opts_check(&o, &e) == -1 && strstr(e.msg, "--item-col"), "generic without item col: %s", e.msg);
    o.item_col = 1;
    CHECK(til_prep_opts_check(&o, &e) == -1 && strstr(e.msg, "twice"), "same column twice: %s", e.msg);
    til_prep_opts_default(&o);
    o.format = TIL_FMT_ML100K;
    o.user_col = 2;
    CHECK(til_prep_opts_check(&o, &e) == -1 && strstr(e.msg, "generic only"), "columns on ml100k: %s", e.msg);
    CHECK(til_prep_format_parse("gowalla-snap") == TIL_FMT_GOWALLA_SNAP && til_prep_format_parse("csv") == -1,
          "format names");
}

TEST(malformed_lines_counted_or_strict)
{
    til_err e;
    til_prep_opts o;
    til_prep_opts_default(&o);
    o.format = TIL_FMT_ML100K;
    o.kcore = 0;
    const char *text = "1 10 5 100\n"
                       "1 10 5\n"
                       "x 10 5 100\n"
                       "1 11 abc 100\n"
                       "1 12 5 4.5\n"
                       "\n"
                       "1 13 5 100 7\n"
                       "2 13 4 100\n";
    til_inter t;
    til_prep *p = run_prep(&o, text, &t, NULL, &e);
    CHECK(p != NULL, "%s", e.msg);
    if (p) {
        const til_prep_stats *st = til_prep_get_stats(p);
        CHECK(st->malformed == 5 && st->blank == 1 && st->records == 2 && t.nnz == 2, "malformed %llu blank %llu",
              (unsigned long long)st->malformed, (unsigned long long)st->blank);
        CHECK(st->n_bad == 5, "n_bad %d", st->n_bad);
        CHECK(strstr(st->bad[0], "in.txt:2: expected 4 fields, got 3") != NULL, "%s", st->bad[0]);
        CHECK(strstr(st->bad[1], "in.txt:3: user id 'x'") != NULL, "%s", st->bad[1]);
        CHECK(strstr(st->bad[2], "in.txt:4: rating 'abc'") != NULL, "%s", st->bad[2]);
        CHECK(strstr(st->bad[3], "in.txt:5: timestamp '4.5'") != NULL, "%s", st->bad[3]);
        CHECK(strstr(st->bad[4], "in.txt:7: expected 4 fields, got 5") != NULL, "%s", st->bad[4]);
        til_inter_free(&t);
        til_prep_free(&p);
    }
    o.strict = 1;
    p = run_prep(&o, text, &t, NULL, &e);
    CHECK(p == NULL && strstr(e.msg, "in.txt:2: expected 4 fields, got 3") != NULL, "strict: %s", e.msg);
    til_prep_free(&p);
    /* amazon ids may not carry a tab (it would break the id map file) */
    til_prep_opts_default(&o);
    o.strict = 1;
    p = run_prep(&o, "A\t1,B,5,1\n", &t, NULL, &e);
    CHECK(p == NULL && strstr(e.msg, "in.txt:1: user id contains a tab") != NULL, "%s", e.msg);
    til_prep_free(&p);
}

TEST(line_order_does_not_matter)
{
    til_err e;
    til_prep_opts o;
    til_prep_opts_default(&o);
    o.format = TIL_FMT_AMAZON;
    o.kcore = 2;
    /* the same records in two orders give the same bytes */
    static const char *lines[] = {"u1,a,5,1\n", "u2,a,4,2\n", "u1,b,5,3\n", "u2,b,5,4\n",
                                  "u3,a,5,5\n", "u3,c,5,6\n", "u1,a,4,9\n", "u2,c,4,7\n"};
    char fwd[256] = "", rev[256] = "";
    for (int k = 0; k < 8; k++) {
        strcat(fwd, lines[k]);
        strcat(rev, lines[7 - k]);
    }
    til_inter a, b;
    til_prep *p = run_prep(&o, fwd, &a, NULL, &e);
    til_prep *q = run_prep(&o, rev, &b, NULL, &e);
    CHECK(p && q, "%s", e.msg);
    if (p && q) {
        CHECK(a.n_users == b.n_users && a.n_items == b.n_items && a.nnz == b.nnz, "shape");
        CHECK(a.nnz == 7 && memcmp(a.items, b.items, a.nnz * 4) == 0 && memcmp(a.ts, b.ts, a.nnz * 8) == 0,
              "same records (nnz %llu)", (unsigned long long)a.nnz);
        til_inter_free(&a);
        til_inter_free(&b);
    }
    til_prep_free(&p);
    til_prep_free(&q);
}

int main(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/til-unit-prep-XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    RUN(idmap_intern_and_order);
    RUN(parse_numbers_and_times);
    RUN(dedupe_keeps_max_rating_and_latest_time);
    RUN(kcore_matches_brute_force);
    RUN(kcore_once_is_one_round);
    RUN(amazon_threshold_dedupe_low_and_maps);
    RUN(every_format_parses);
    RUN(generic_format);
    RUN(option_checks);
    RUN(malformed_lines_counted_or_strict);
    RUN(line_order_does_not_matter);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    if (system(cmd) != 0)
        printf("# could not remove %s\n", tmpdir);
    return unit_end();
}

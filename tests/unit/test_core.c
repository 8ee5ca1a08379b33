/* Unit tests of the core modules: parsing, rng, parallel-for, interaction and
 * model files (round trips, validation of corrupt and truncated input). */
#include <string.h>
#include <unistd.h>

#include "til_inter.h"
#include "til_io.h"
#include "til_model.h"
#include "til_par.h"
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

TEST(parse_numbers)
{
    til_err e;
    int64_t v;
    double d;
    int xs[8];
    CHECK(til_parse_i64("42", 0, 100, &v, "n", &e) == 0 && v == 42, "42");
    CHECK(til_parse_i64("42x", 0, 100, &v, "n", &e) == -1, "trailing junk accepted");
    CHECK(strstr(e.msg, "not an integer") != NULL, "message: %s", e.msg);
    CHECK(til_parse_i64("101", 0, 100, &v, "n", &e) == -1, "out of range accepted");
    CHECK(til_parse_i64("", 0, 100, &v, "n", &e) == -1, "empty accepted");
    CHECK(til_parse_i64("99999999999999999999", 0, INT64_MAX, &v, "n", &e) == -1, "overflow accepted");
    uint64_t u;
    CHECK(til_parse_u64("-1", 0, 10, &u, "n", &e) == -1, "negative u64 accepted");
    CHECK(til_parse_double("1e-3", 0, 1, &d, "lr", &e) == 0 && d == 1e-3, "1e-3");
    CHECK(til_parse_double("nan", 0, 1, &d, "lr", &e) == -1, "nan accepted");
    CHECK(til_parse_double("0.5 ", 0, 1, &d, "lr", &e) == -1, "trailing space accepted");
    CHECK(til_parse_int_list("10,20,50", 1, 1000, xs, 8, "k", &e) == 3 && xs[2] == 50, "list");
    CHECK(til_parse_int_list("10,,x", 1, 1000, xs, 8, "k", &e) == -1, "bad list accepted");
    double r[3];
    CHECK(til_parse_ratio("8:1:1", r, 3, "ratio", &e) == 0 && r[0] == 0.8, "ratio");
    CHECK(til_parse_ratio("8:1", r, 3, "ratio", &e) == -1, "short ratio accepted");
}

TEST(rng_reproducible_and_uniform)
{
    til_rng a, b, c;
    til_rng_seed(&a, 7, 0);
    til_rng_seed(&b, 7, 0);
    til_rng_seed(&c, 7, 1);
    int same = 1, diff = 0;
    for (int i = 0; i < 100; i++) {
        uint64_t x = til_rng_u64(&a), y = til_rng_u64(&b), z = til_rng_u64(&c);
        same &= x == y;
        diff += x != z;
    }
    CHECK(same, "same seed and stream differ");
    CHECK(diff > 95, "streams 0 and 1 agree too often (%d)", diff);
    /* chi-square of below(10) over 100000 draws: 9 dof, 99.9% quantile 27.9 */
    int cnt[10] = {0};
    for (int i = 0; i < 100000; i++)
        cnt[til_rng_below(&a, 10)]++;
    double chi = 0;
    for (int k = 0; k < 10; k++)
        chi += (cnt[k] - 10000.0) * (cnt[k] - 10000.0) / 10000.0;
    CHECK(chi < 27.9, "below(10) chi-square %.2f", chi);
    double s = 0, s2 = 0;
    for (int i = 0; i < 100000; i++) {
        double x = til_rng_normal(&a);
        s += x;
        s2 += x * x;
    }
    CHECK(fabs(s / 1e5) < 0.02 && fabs(s2 / 1e5 - 1) < 0.03, "normal mean %g var %g", s / 1e5, s2 / 1e5);
}

typedef struct {
    int *hits;
} par_ctx;
static void mark(void *ctx, int part, uint64_t lo, uint64_t hi)
{
    (void)part;
    par_ctx *c = ctx;
    for (uint64_t i = lo; i < hi; i++)
        c->hits[i]++;
}

TEST(par_partition_covers_remainder)
{
    for (uint64_t n = 0; n < 50; n++)
        for (int parts = 1; parts <= 9; parts++) {
            int hits[64] = {0};
            par_ctx c = {hits};
            til_par_for(parts, n, mark, &c);
            int ok = 1;
            for (uint64_t i = 0; i < n; i++)
                ok &= hits[i] == 1;
            CHECK(ok, "n=%llu parts=%d: some index not visited exactly once", (unsigned long long)n, parts);
            uint64_t lo, hi, prev = 0;
            for (int p = 0; p < parts; p++) {
                til_par_range(n, parts, p, &lo, &hi);
                CHECK(lo == prev && hi >= lo, "parts not contiguous");
                prev = hi;
            }
            CHECK(prev == n, "parts do not end at n");
        }
}

static void make_inter(til_inter *t, int with_rating)
{
    uint32_t us[] = {2, 0, 0, 1, 2, 0, 2};
    uint32_t is[] = {3, 4, 1, 0, 3, 2, 0};
    float rs[] = {5, 4, 3, 5, 1, 2, 4};
    int64_t ts[] = {10, 20, 30, 40, 50, 60, 70};
    til_err e;
    uint64_t dups;
    int rc = til_inter_from_pairs(t, 3, 5, 7, us, is, with_rating ? rs : NULL, with_rating ? ts : NULL, &dups, &e);
    CHECK(rc == 0, "from_pairs: %s", e.msg);
    CHECK(dups == 1, "dups %llu", (unsigned long long)dups);
}

TEST(inter_from_pairs_sorted_first_kept)
{
    til_inter t;
    make_inter(&t, 1);
    CHECK(t.nnz == 6, "nnz %llu", (unsigned long long)t.nnz);
    uint32_t want[] = {1, 2, 4, 0, 0, 3};
    for (int k = 0; k < 6; k++)
        CHECK(t.items[k] == want[k], "items[%d] = %u", k, t.items[k]);
    CHECK(t.rating[5] == 5 && t.ts[5] == 10, "first occurrence of (2,3) not kept");
    CHECK(til_inter_has(&t, 0, 2) && !til_inter_has(&t, 0, 3), "has");
    til_inter_free(&t);
}

TEST(inter_roundtrip_and_stats)
{
    til_inter t, r;
    til_err e;
    make_inter(&t, 1);
    CHECK(til_inter_write(tpath("a.til"), &t, &e) == 0, "write: %s", e.msg);
    CHECK(til_inter_read(tpath("a.til"), &r, &e) == 0, "read: %s", e.msg);
    CHECK(r.nnz == t.nnz && memcmp(r.items, t.items, t.nnz * 4) == 0 && memcmp(r.rating, t.rating, t.nnz * 4) == 0 &&
              memcmp(r.ts, t.ts, t.nnz * 8) == 0,
          "round trip differs");
    til_inter_stats s;
    CHECK(til_inter_stats_compute(&r, &s, &e) == 0, "stats");
    CHECK(s.user_min == 1 && s.user_max == 3 && s.user_med == 2, "user degrees %llu %llu %llu",
          (unsigned long long)s.user_min, (unsigned long long)s.user_med, (unsigned long long)s.user_max);
    CHECK(s.items_empty == 0 && s.item_max == 2, "item degrees");
    til_inter_free(&r);
    til_inter_free(&t);
}

/* Writes bytes to a file. */
static void put_file(const char *p, const void *b, size_t n)
{
    FILE *f = fopen(p, "wb");
    fwrite(b, 1, n, f);
    fclose(f);
}

static size_t get_file(const char *p, unsigned char *b, size_t cap)
{
    FILE *f = fopen(p, "rb");
    size_t n = fread(b, 1, cap, f);
    fclose(f);
    return n;
}

TEST(inter_rejects_truncated_corrupt_random)
{
    til_inter t, r;
    til_err e;
    make_inter(&t, 0);
    CHECK(til_inter_write(tpath("b.til"), &t, &e) == 0, "write");
    unsigned char buf[4096];
    size_t n = get_file(tpath("b.til"), buf, sizeof buf);
    /* every truncation fails cleanly */
    int ok = 1;
    for (size_t k = 0; k < n; k++) {
        put_file(tpath("c.til"), buf, k);
        if (til_inter_read(tpath("c.til"), &r, &e) == 0) {
            ok = 0;
            til_inter_free(&r);
        }
    }
    CHECK(ok, "a truncated file was accepted");
    /* every single-byte corruption of the gzip stream is caught, except in the
     * gzip header's mtime/xfl/os bytes (4..9), which carry no data */
    ok = 1;
    for (size_t k = 0; k < n; k++) {
        if (k >= 4 && k <= 9)
            continue;
        unsigned char c[4096];
        memcpy(c, buf, n);
        c[k] ^= 0x5a;
        put_file(tpath("c.til"), c, n);
        if (til_inter_read(tpath("c.til"), &r, &e) == 0) {
            ok = 0;
            printf("#   corruption at byte %zu accepted\n", k);
            til_inter_free(&r);
        }
    }
    CHECK(ok, "a corrupted file was accepted");
    /* random garbage */
    til_rng g;
    til_rng_seed(&g, 1, 0);
    ok = 1;
    for (int k = 0; k < 200; k++) {
        size_t m = til_rng_below(&g, sizeof buf);
        for (size_t j = 0; j < m; j++)
            buf[j] = (unsigned char)til_rng_u64(&g);
        if (k % 2)
            memcpy(buf, TIL_INTER_MAGIC, TIL_MIN(m, 8));
        put_file(tpath("c.til"), buf, m);
        if (til_inter_read(tpath("c.til"), &r, &e) == 0) {
            ok = 0;
            til_inter_free(&r);
        }
    }
    CHECK(ok, "random bytes accepted");
    /* an uncompressed valid stream is accepted too (gzip is optional on input) */
    til_inter_free(&t);
}

TEST(inter_rejects_unsorted_and_out_of_range)
{
    til_inter t;
    til_err e;
    make_inter(&t, 0);
    t.items[1] = 1; /* user 0: 1, 1, 4: not strictly increasing */
    CHECK(til_inter_write(tpath("d.til"), &t, &e) == -1 && strstr(e.msg, "strictly"), "unsorted written: %s", e.msg);
    t.items[1] = 9;
    CHECK(til_inter_validate(&t, "x", &e) == -1 && strstr(e.msg, "out of range"), "range: %s", e.msg);
    til_inter_free(&t);
}

TEST(model_roundtrip_and_validation)
{
    til_model m, r;
    til_err e;
    til_model_init(&m);
    CHECK(til_model_set(&m, "kind", "model", &e) == 0, "set");
    CHECK(til_model_setf(&m, &e, "lr", "%.17g", 1e-3) == 0, "setf");
    CHECK(til_model_set(&m, "bad key", "x", &e) == -1, "bad key accepted");
    float x[6] = {1, 2, 3, 4, 5, 6.5f};
    CHECK(til_model_add(&m, "user", TIL_F32, 3, 2, x, &e) != NULL, "add");
    CHECK(til_model_add(&m, "user", TIL_F32, 3, 2, x, &e) == NULL, "duplicate accepted");
    CHECK(til_model_write(tpath("m.bin"), &m, &e) == 0, "write: %s", e.msg);
    CHECK(til_model_read(tpath("m.bin"), &r, &e) == 0, "read: %s", e.msg);
    const til_tensor *t = til_model_need(&r, "user", TIL_F32, 3, 2, "m", &e);
    CHECK(t && memcmp(t->data, x, sizeof x) == 0, "tensor differs");
    CHECK(til_model_need(&r, "user", TIL_F32, 2, 2, "m", &e) == NULL && strstr(e.msg, "expected"), "shape check");
    double lr;
    CHECK(til_model_get_double(&r, "lr", &lr, &e) == 0 && lr == 1e-3, "meta double");
    unsigned char buf[4096];
    size_t n = get_file(tpath("m.bin"), buf, sizeof buf);
    int ok = 1;
    for (size_t k = 0; k < n; k++) {
        put_file(tpath("m2.bin"), buf, k);
        til_model q;
        if (til_model_read(tpath("m2.bin"), &q, &e) == 0) {
            ok = 0;
            til_model_free(&q);
        }
    }
    CHECK(ok, "truncated model accepted");
    til_model_free(&r);
    til_model_free(&m);
}

TEST(writer_atomic_abort_leaves_nothing)
{
    til_err e;
    til_wr *w = til_wr_open(tpath("atom.txt"), -1, &e);
    CHECK(w != NULL, "open");
    til_wr_printf(w, &e, "half");
    CHECK(access(tpath("atom.txt"), F_OK) != 0, "target visible before commit");
    til_wr_abort(&w);
    CHECK(access(tpath("atom.txt"), F_OK) != 0, "target exists after abort");
    w = til_wr_open(tpath("atom.txt"), -1, &e);
    til_wr_printf(w, &e, "line1\nline2\r\nlast");
    CHECK(til_wr_commit(&w, &e) == 0, "commit");
    til_rd *r = til_rd_open(tpath("atom.txt"), &e);
    char *l;
    CHECK(til_rd_line(r, &l, &e) == 5 && strcmp(l, "line1") == 0, "line 1");
    CHECK(til_rd_line(r, &l, &e) == 5 && strcmp(l, "line2") == 0, "line 2 (CR stripped)");
    CHECK(til_rd_line(r, &l, &e) == 4 && strcmp(l, "last") == 0 && til_rd_lineno(r) == 3, "last line");
    CHECK(til_rd_line(r, &l, &e) == -1, "eof");
    til_rd_close(&r);
}

int main(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/til-unit-XXXXXX");
    if (!mkdtemp(tmpdir))
        return 1;
    RUN(parse_numbers);
    RUN(rng_reproducible_and_uniform);
    RUN(par_partition_covers_remainder);
    RUN(inter_from_pairs_sorted_first_kept);
    RUN(inter_roundtrip_and_stats);
    RUN(inter_rejects_truncated_corrupt_random);
    RUN(inter_rejects_unsorted_and_out_of_range);
    RUN(model_roundtrip_and_validation);
    RUN(writer_atomic_abort_leaves_nothing);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    if (system(cmd) != 0)
        return 1;
    return unit_end();
}

/* til-mkdata: small helper that makes interaction files for tests and benches
 * (until til-preprocess/til-split land; kept beside til-train).
 *
 *   til-mkdata adj --users N --items M IN OUT
 *       adjacency text "user item item ..." (plain or gzip; 0-based ids; a
 *       line whose user field is empty is an error) -> OUT.til
 *   til-mkdata synth [--users N] [--items M] [--per-user K] [--clusters C] [--seed S] PREFIX
 *       planted clusters: user u and item i belong to cluster u % C, i % C; each
 *       user draws K distinct items, 90% from its cluster; per-user 8:1:1 split
 *       -> PREFIX.train.til, PREFIX.valid.til, PREFIX.test.til */
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "til_inter.h"
#include "til_io.h"
#include "til_rng.h"
#include "til_util.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: til-mkdata adj --users N --items M IN OUT\n"
               "       til-mkdata synth [--users N] [--items M] [--per-user K] [--clusters C] [--seed S] PREFIX\n"
               "Makes interaction files for tests and benchmarks (see the top of tools/train/til-mkdata.c).\n");
}

typedef struct {
    uint32_t *u, *i;
    uint64_t n, cap;
} pairs;

static int push(pairs *p, uint32_t u, uint32_t i, til_err *e)
{
    if (p->n == p->cap) {
        uint64_t cap = p->cap ? 2 * p->cap : 1024;
        uint32_t *a = til_realloc(p->u, cap, 4, e);
        if (!a)
            return -1;
        p->u = a;
        uint32_t *b = til_realloc(p->i, cap, 4, e);
        if (!b)
            return -1;
        p->i = b;
        p->cap = cap;
    }
    p->u[p->n] = u;
    p->i[p->n] = i;
    p->n++;
    return 0;
}

static int write_pairs(const char *path, pairs *p, uint32_t nu, uint32_t ni, til_err *e)
{
    til_inter t;
    uint64_t dups;
    if (til_inter_from_pairs(&t, nu, ni, p->n, p->u, p->i, NULL, NULL, &dups, e))
        return -1;
    int rc = til_inter_write(path, &t, e);
    til_inter_free(&t);
    return rc;
}

static int do_adj(const char *in, const char *out, uint64_t nu, uint64_t ni, til_err *e)
{
    til_rd *r = til_rd_open(in, e);
    if (!r)
        return -1;
    pairs p = {0};
    char *line;
    long len;
    int rc = -1;
    while ((len = til_rd_line(r, &line, e)) >= 0) {
        if (len == 0)
            continue;
        if (line[0] == ' ' || line[0] == '\t') {
            til_seterr(e, "%s:%" PRIu64 ": empty user field", til_rd_name(r), til_rd_lineno(r));
            goto out;
        }
        char *save = NULL, *tok = strtok_r(line, " \t", &save);
        uint64_t u, it;
        if (til_parse_u64(tok, 0, nu - 1, &u, "user", e)) {
            til_errctx(e, "%s:%" PRIu64, til_rd_name(r), til_rd_lineno(r));
            goto out;
        }
        while ((tok = strtok_r(NULL, " \t", &save))) {
            if (til_parse_u64(tok, 0, ni - 1, &it, "item", e)) {
                til_errctx(e, "%s:%" PRIu64, til_rd_name(r), til_rd_lineno(r));
                goto out;
            }
            if (push(&p, (uint32_t)u, (uint32_t)it, e))
                goto out;
        }
    }
    if (len == -2)
        goto out;
    rc = write_pairs(out, &p, (uint32_t)nu, (uint32_t)ni, e);
out:
    free(p.u);
    free(p.i);
    til_rd_close(&r);
    return rc;
}

static int do_synth(const char *prefix, uint32_t nu, uint32_t ni, uint32_t k, uint32_t nc, uint64_t seed, til_err *e)
{
    if (k > ni / 2 || nc > ni || nc < 1)
        return til_seterr(e, "synth: need per-user <= items/2 and 1 <= clusters <= items");
    pairs sp[3] = {{0}};
    til_rng r;
    til_rng_seed(&r, seed, 0);
    uint32_t *got = til_malloc(k, 4, e);
    int rc = -1;
    if (!got)
        return -1;
    for (uint32_t u = 0; u < nu; u++) {
        uint32_t n = 0, c = u % nc;
        while (n < k) {
            uint32_t i;
            if (til_rng_uniform(&r) < 0.9) {
                uint32_t per = (ni - c + nc - 1) / nc; /* items of cluster c: c, c+nc, ... */
                i = c + nc * (uint32_t)til_rng_below(&r, per);
            } else {
                i = (uint32_t)til_rng_below(&r, ni);
            }
            int dup = 0;
            for (uint32_t q = 0; q < n; q++)
                dup |= got[q] == i;
            if (!dup)
                got[n++] = i;
        }
        uint32_t ntr = k * 8 / 10 ? k * 8 / 10 : 1, nva = TIL_MIN(k / 10, k - ntr);
        for (uint32_t q = 0; q < k; q++)
            if (push(&sp[q < ntr ? 0 : q < ntr + nva ? 1 : 2], u, got[q], e))
                goto out;
    }
    const char *suf[3] = {"train", "valid", "test"};
    for (int s = 0; s < 3; s++) {
        char path[4096];
        snprintf(path, sizeof path, "%s.%s.til", prefix, suf[s]);
        if (write_pairs(path, &sp[s], nu, ni, e))
            goto out;
    }
    rc = 0;
out:
    for (int s = 0; s < 3; s++) {
        free(sp[s].u);
        free(sp[s].i);
    }
    free(got);
    return rc;
}

int main(int argc, char **argv)
{
    til_setprog(argv[0]);
    static const struct option opts[] = {{"users", required_argument, 0, 'u'},   {"items", required_argument, 0, 'i'},
                                         {"per-user", required_argument, 0, 'k'}, {"clusters", required_argument, 0, 'c'},
                                         {"seed", required_argument, 0, 's'},    {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    uint64_t nu = 0, ni = 0, k = 20, nc = 8, seed = 1;
    int ch;
    til_err e;
    while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        uint64_t *dst = ch == 'u' ? &nu : ch == 'i' ? &ni : ch == 'k' ? &k : ch == 'c' ? &nc : &seed;
        switch (ch) {
        case 'u':
        case 'i':
        case 'k':
        case 'c':
        case 's':
            if (til_parse_u64(optarg, ch == 's' ? 0 : 1, ch == 's' ? UINT64_MAX : UINT32_MAX - 1, dst, "number",
                              &e)) {
                til_report(&e);
                usage(stderr);
                return TIL_EXIT_USAGE;
            }
            break;
        case 'h': usage(stdout); return til_close_stdout();
        default: usage(stderr); return TIL_EXIT_USAGE;
        }
    }
    int rc;
    til_io_cleanup_on_signals();
    if (optind + 3 == argc && !strcmp(argv[optind], "adj") && nu && ni)
        rc = do_adj(argv[optind + 1], argv[optind + 2], nu, ni, &e);
    else if (optind + 2 == argc && !strcmp(argv[optind], "synth"))
        rc = do_synth(argv[optind + 1], nu ? (uint32_t)nu : 200, ni ? (uint32_t)ni : 300, (uint32_t)k, (uint32_t)nc,
                      seed, &e);
    else {
        usage(stderr);
        return TIL_EXIT_USAGE;
    }
    if (rc) {
        til_report(&e);
        return TIL_EXIT_DATA;
    }
    return til_close_stdout();
}

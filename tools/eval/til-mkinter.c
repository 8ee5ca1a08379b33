/* til-mkinter: text pairs or adjacency lines to an interaction file (a small
 * converter for tests and benchmarks; til-preprocess is the real front end).
 *
 * Input lines are "user item" (TSV or spaces) with dense 0-based ids, or with
 * --adj "user item item ...". --users/--items fix the shape (so train, valid
 * and test files agree); otherwise max id + 1. Duplicate pairs are an error. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "til_inter.h"
#include "til_io.h"
#include "til_util.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: til-mkinter [--adj] [--users N] [--items M] [-o FILE] [INPUT]\n"
               "Converts 'user item' lines (or with --adj 'user item item ...') with dense 0-based ids\n"
               "into an interaction file. INPUT '-' or none reads standard input.\n"
               "  --adj           adjacency lines\n"
               "  --users N       number of users (default: max user id + 1)\n"
               "  --items M       number of items (default: max item id + 1)\n"
               "  -o, --output F  output file (default '-' = stdout)\n"
               "  -h, --help      this text\n");
}

static int grow(uint32_t **a, uint32_t **b, uint64_t *cap, til_err *e)
{
    uint64_t nc = *cap ? *cap * 2 : 4096;
    uint32_t *na = til_realloc(*a, nc, sizeof **a, e);
    if (!na)
        return -1;
    *a = na;
    uint32_t *nb = til_realloc(*b, nc, sizeof **b, e);
    if (!nb)
        return -1;
    *b = nb;
    *cap = nc;
    return 0;
}

int main(int argc, char **argv)
{
    til_setprog(argv[0]);
    til_io_cleanup_on_signals();
    static const struct option opts[] = {{"adj", no_argument, 0, 'a'},          {"users", required_argument, 0, 'u'},
                                         {"items", required_argument, 0, 'i'},  {"output", required_argument, 0, 'o'},
                                         {"help", no_argument, 0, 'h'},         {0, 0, 0, 0}};
    til_err e;
    int adj = 0, c;
    uint64_t nu = 0, ni = 0;
    const char *out = "-", *in = "-";
    while ((c = getopt_long(argc, argv, "o:h", opts, NULL)) != -1) {
        int bad = 0;
        switch (c) {
        case 'a': adj = 1; break;
        case 'u': bad = til_parse_u64(optarg, 1, UINT32_MAX, &nu, "--users", &e); break;
        case 'i': bad = til_parse_u64(optarg, 1, UINT32_MAX, &ni, "--items", &e); break;
        case 'o': out = optarg; break;
        case 'h': usage(stdout); return til_close_stdout();
        default: usage(stderr); return TIL_EXIT_USAGE;
        }
        if (bad) {
            til_report(&e);
            usage(stderr);
            return TIL_EXIT_USAGE;
        }
    }
    if (optind + 1 < argc) {
        usage(stderr);
        return TIL_EXIT_USAGE;
    }
    if (optind < argc)
        in = argv[optind];
    til_rd *r = til_rd_open(in, &e);
    uint32_t *us = NULL, *is = NULL;
    uint64_t n = 0, cap = 0, maxu = 0, maxi = 0;
    int rc = -1;
    til_inter t = {0};
    if (!r)
        goto out;
    char *line;
    long len;
    while ((len = til_rd_line(r, &line, &e)) >= 0) {
        char *save = NULL, *tok = strtok_r(line, " \t", &save);
        if (!tok)
            continue;
        uint64_t u, i;
        if (til_parse_u64(tok, 0, UINT32_MAX - 1, &u, "user id", &e))
            goto bad_line;
        int cnt = 0;
        while ((tok = strtok_r(NULL, " \t", &save))) {
            if (til_parse_u64(tok, 0, UINT32_MAX - 1, &i, "item id", &e))
                goto bad_line;
            if (n == cap && grow(&us, &is, &cap, &e))
                goto out;
            us[n] = (uint32_t)u;
            is[n++] = (uint32_t)i;
            maxi = TIL_MAX(maxi, i + 1);
            cnt++;
        }
        maxu = TIL_MAX(maxu, u + 1);
        if (!adj && cnt != 1) {
            til_seterr(&e, "want 'user item', got %d items", cnt);
            goto bad_line;
        }
        continue;
    bad_line:
        til_errctx(&e, "%s:%llu", til_rd_name(r), (unsigned long long)til_rd_lineno(r));
        goto out;
    }
    if (len == -2)
        goto out;
    if (!nu)
        nu = maxu;
    if (!ni)
        ni = maxi;
    if (maxu > nu || maxi > ni) {
        til_seterr(&e, "%s: ids reach %llu users x %llu items, beyond --users %llu --items %llu", til_rd_name(r),
                   (unsigned long long)maxu, (unsigned long long)maxi, (unsigned long long)nu,
                   (unsigned long long)ni);
        goto out;
    }
    uint64_t dups = 0;
    if (til_inter_from_pairs(&t, (uint32_t)nu, (uint32_t)ni, n, us, is, NULL, NULL, &dups, &e))
        goto out;
    if (dups) {
        til_seterr(&e, "%s: %llu duplicate pairs", til_rd_name(r), (unsigned long long)dups);
        goto out;
    }
    if (til_inter_write(out, &t, &e))
        goto out;
    rc = 0;
out:
    if (rc)
        til_report(&e);
    til_rd_close(&r);
    til_inter_free(&t);
    free(us);
    free(is);
    int cs = til_close_stdout();
    return rc ? TIL_EXIT_DATA : cs;
}

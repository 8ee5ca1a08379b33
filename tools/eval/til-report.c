/* til-report: the paper's Table 1 from til-eval TSV results.
 *
 * Reads any number of `til-eval --format tsv` outputs (rows "dataset backbone
 * method seed metric k value"; header lines skipped) and prints one row per
 * dataset x backbone x metric@k and one column per method, each cell the mean
 * ± sample std over seeds, the best mean in bold and the second underlined
 * (markdown). The method named by --ours is compared with the best other
 * method of the row by a two-sided paired t-test whose pairs are the runs with
 * the same seed; p <= --alpha (0.01) puts an asterisk on its cell. */
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "til_io.h"
#include "til_stats.h"
#include "til_util.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: til-report [--format md|tsv] [--ours METHOD] [--alpha A] FILE...\n"
               "Aggregates til-eval TSV results (several seeds, methods, backbones, datasets) into Table 1:\n"
               "rows dataset x backbone x metric@k, columns methods, cells mean ± std over seeds, best in bold,\n"
               "second underlined; paired t-test (pairs: runs with the same seed) of --ours against the best\n"
               "other method of each row, p <= A marked '*'. FILE '-' reads standard input.\n"
               "  -f, --format F    md (default) or tsv (one row per cell with n, mean, std, rank, p)\n"
               "  -o, --ours M      the method tested against the others (default til-mi); --method is a synonym\n"
               "  -a, --alpha A     significance level for the asterisk (default 0.01)\n"
               "  -h, --help        this text\n");
}

enum { F_DS, F_BB, F_ME, F_SEED, F_METRIC, F_K, NF };

typedef struct {
    char *f[NF];
    double v;
} rec;

typedef struct {
    rec *r;
    size_t n, cap;
} recs;

static int add_rec(recs *R, char **fields, double v, til_err *e)
{
    if (R->n == R->cap) {
        size_t nc = R->cap ? 2 * R->cap : 256;
        rec *nr = til_realloc(R->r, nc, sizeof *nr, e);
        if (!nr)
            return -1;
        R->r = nr;
        R->cap = nc;
    }
    rec *x = &R->r[R->n];
    for (int i = 0; i < NF; i++)
        if (!(x->f[i] = til_strdup(fields[i], e))) {
            for (int j = 0; j < i; j++)
                free(x->f[j]);
            return -1;
        }
    x->v = v;
    R->n++;
    return 0;
}

static int read_file(const char *path, recs *R, til_err *e)
{
    til_rd *r = til_rd_open(path, e);
    if (!r)
        return -1;
    char *line;
    long len;
    int rc = 0;
    while ((len = til_rd_line(r, &line, e)) >= 0) {
        if (!*line || *line == '#' || !strncmp(line, "dataset\t", 8))
            continue;
        char *fields[NF + 2];
        int nf = 0;
        char *save = NULL;
        for (char *t = strtok_r(line, "\t", &save); t && nf < NF + 2; t = strtok_r(NULL, "\t", &save))
            fields[nf++] = t;
        double v;
        if (nf != NF + 1) {
            rc = til_seterr(e, "%s:%llu: want 7 tab-separated fields (dataset backbone method seed metric k value)",
                            til_rd_name(r), (unsigned long long)til_rd_lineno(r));
            break;
        }
        if (til_parse_double(fields[NF], -1e300, 1e300, &v, "value", e) || add_rec(R, fields, v, e)) {
            rc = til_errctx(e, "%s:%llu", til_rd_name(r), (unsigned long long)til_rd_lineno(r));
            break;
        }
    }
    if (len == -2)
        rc = -1;
    til_rd_close(&r);
    return rc;
}

static int same(const rec *a, const rec *b, const int *fs, int n)
{
    for (int i = 0; i < n; i++)
        if (strcmp(a->f[fs[i]], b->f[fs[i]]))
            return 0;
    return 1;
}

/* distinct values (first-appearance order) of a field set, as indices of representative records */
static size_t distinct(const recs *R, const int *fs, int nfs, size_t *out)
{
    size_t n = 0;
    for (size_t i = 0; i < R->n; i++) {
        size_t j = 0;
        for (; j < n; j++)
            if (same(&R->r[out[j]], &R->r[i], fs, nfs))
                break;
        if (j == n)
            out[n++] = i;
    }
    return n;
}

typedef struct {
    size_t n;
    double mean, std;
    double *v;     /* by seed order of the row */
    char **seed;
} cell;

static void label(const rec *x, char *buf, size_t n)
{
    if (!strcmp(x->f[F_K], "-"))
        snprintf(buf, n, "%s", x->f[F_METRIC]);
    else
        snprintf(buf, n, "%s@%s", x->f[F_METRIC], x->f[F_K]);
}

int main(int argc, char **argv)
{
    til_setprog(argv[0]);
    static const struct option opts[] = {{"format", required_argument, 0, 'f'}, {"ours", required_argument, 0, 'o'},
                                         {"method", required_argument, 0, 'o'}, {"alpha", required_argument, 0, 'a'},
                                         {"help", no_argument, 0, 'h'},         {0, 0, 0, 0}};
    til_err e;
    const char *format = "md", *ours = "til-mi";
    double alpha = 0.01;
    int c;
    while ((c = getopt_long(argc, argv, "f:o:a:h", opts, NULL)) != -1) {
        int bad = 0;
        switch (c) {
        case 'f':
            format = optarg;
            if (strcmp(format, "md") && strcmp(format, "tsv"))
                bad = til_seterr(&e, "--format: want md or tsv, got '%s'", format);
            break;
        case 'o': ours = optarg; break;
        case 'a': bad = til_parse_double(optarg, 0, 1, &alpha, "--alpha", &e); break;
        case 'h': usage(stdout); return til_close_stdout();
        default: usage(stderr); return TIL_EXIT_USAGE;
        }
        if (bad) {
            til_report(&e);
            usage(stderr);
            return TIL_EXIT_USAGE;
        }
    }
    if (optind == argc) {
        til_warn("no input files");
        usage(stderr);
        return TIL_EXIT_USAGE;
    }
    recs R = {0};
    int rc = -1;
    size_t *rows = NULL, *meths = NULL;
    cell *cells = NULL;
    size_t nr = 0, nm = 0;
    for (int i = optind; i < argc; i++)
        if (read_file(argv[i], &R, &e))
            goto out;
    if (!R.n) {
        til_seterr(&e, "no result rows in the input");
        goto out;
    }
    /* duplicates: the same run reported twice */
    static const int key_all[] = {F_DS, F_BB, F_ME, F_SEED, F_METRIC, F_K};
    for (size_t i = 0; i < R.n; i++)
        for (size_t j = i + 1; j < R.n; j++)
            if (same(&R.r[i], &R.r[j], key_all, 6)) {
                til_seterr(&e, "duplicate result: %s %s %s seed %s %s k %s", R.r[i].f[F_DS], R.r[i].f[F_BB],
                           R.r[i].f[F_ME], R.r[i].f[F_SEED], R.r[i].f[F_METRIC], R.r[i].f[F_K]);
                goto out;
            }
    rows = til_malloc(R.n, sizeof *rows, &e);
    meths = til_malloc(R.n, sizeof *meths, &e);
    if (!rows || !meths)
        goto out;
    static const int key_row[] = {F_DS, F_BB, F_METRIC, F_K}, key_me[] = {F_ME};
    nr = distinct(&R, key_row, 4, rows);
    nm = distinct(&R, key_me, 1, meths);
    cells = til_calloc(nm, sizeof *cells, &e);
    if (!cells)
        goto out;
    for (size_t m = 0; m < nm; m++) {
        cells[m].v = til_malloc(R.n, sizeof(double), &e);
        cells[m].seed = til_malloc(R.n, sizeof(char *), &e);
        if (!cells[m].v || !cells[m].seed)
            goto out;
    }
    int md = !strcmp(format, "md");
    if (md) {
        printf("Mean ± std over seeds (std only with two seeds or more); **best**, <u>second best</u>. `*`: %s better than the best other method of "
               "the row with p <= %g (two-sided paired t-test, pairs = runs with the same seed; p in the last "
               "column).\n\n",
               ours, alpha);
        printf("| dataset | backbone | metric |");
        for (size_t m = 0; m < nm; m++)
            printf(" %s |", R.r[meths[m]].f[F_ME]);
        printf(" p (%s vs best other) |\n|---|---|---|", ours);
        for (size_t m = 0; m <= nm; m++)
            printf("---:|");
        putchar('\n');
    } else {
        printf("dataset\tbackbone\tmetric\tk\tmethod\tn\tmean\tstd\trank\tp_vs_best_other\n");
    }
    for (size_t r = 0; r < nr; r++) {
        const rec *rr = &R.r[rows[r]];
        for (size_t m = 0; m < nm; m++) {
            cell *cl = &cells[m];
            cl->n = 0;
            for (size_t i = 0; i < R.n; i++)
                if (same(&R.r[i], rr, key_row, 4) && !strcmp(R.r[i].f[F_ME], R.r[meths[m]].f[F_ME])) {
                    cl->v[cl->n] = R.r[i].v;
                    cl->seed[cl->n++] = R.r[i].f[F_SEED];
                }
            til_mean_std(cl->v, cl->n, &cl->mean, &cl->std);
        }
        /* best and second best by mean; ours vs the best other */
        long best = -1, second = -1, om = -1, bo = -1;
        for (size_t m = 0; m < nm; m++) {
            if (!cells[m].n)
                continue;
            if (!strcmp(R.r[meths[m]].f[F_ME], ours))
                om = (long)m;
            else if (bo < 0 || cells[m].mean > cells[bo].mean)
                bo = (long)m;
            if (best < 0 || cells[m].mean > cells[best].mean) {
                second = best;
                best = (long)m;
            } else if (second < 0 || cells[m].mean > cells[second].mean)
                second = (long)m;
        }
        double p = NAN, t = NAN;
        size_t np = 0;
        if (om >= 0 && bo >= 0) {
            double *a = til_malloc(cells[om].n, sizeof *a, &e), *b = til_malloc(cells[om].n, sizeof *b, &e);
            if (!a || !b) {
                free(a);
                free(b);
                goto out;
            }
            for (size_t i = 0; i < cells[om].n; i++)
                for (size_t j = 0; j < cells[bo].n; j++)
                    if (!strcmp(cells[om].seed[i], cells[bo].seed[j])) {
                        a[np] = cells[om].v[i];
                        b[np++] = cells[bo].v[j];
                    }
            p = til_ttest_paired(a, b, np, &t);
            free(a);
            free(b);
        }
        int star = om >= 0 && !isnan(p) && p <= alpha && t > 0;
        char lab[256];
        label(rr, lab, sizeof lab);
        if (md) {
            printf("| %s | %s | %s |", rr->f[F_DS], rr->f[F_BB], lab);
            for (size_t m = 0; m < nm; m++) {
                if (!cells[m].n) {
                    printf(" – |");
                    continue;
                }
                const char *o = (long)m == best ? "**" : (long)m == second ? "<u>" : "";
                const char *cl = (long)m == best ? "**" : (long)m == second ? "</u>" : "";
                if (cells[m].n > 1) /* a std needs two seeds */
                    printf(" %s%.4f ± %.4f%s%s |", o, cells[m].mean, cells[m].std, cl,
                           (long)m == om && star ? "*" : "");
                else
                    printf(" %s%.4f%s%s |", o, cells[m].mean, cl, (long)m == om && star ? "*" : "");
            }
            if (isnan(p))
                printf(" – |\n");
            else
                printf(" %.3g (%s, %zu seeds) |\n", p, R.r[meths[bo]].f[F_ME], np);
        } else {
            for (size_t m = 0; m < nm; m++) {
                if (!cells[m].n)
                    continue;
                printf("%s\t%s\t%s\t%s\t%s\t%zu\t%.17g\t%.17g\t%d\t", rr->f[F_DS], rr->f[F_BB], rr->f[F_METRIC],
                       rr->f[F_K], R.r[meths[m]].f[F_ME], cells[m].n, cells[m].mean, cells[m].std,
                       (long)m == best ? 1 : (long)m == second ? 2 : 0);
                if ((long)m == om && !isnan(p))
                    printf("%.6g\n", p);
                else
                    printf("-\n");
            }
        }
    }
    rc = 0;
out:
    if (rc)
        til_report(&e);
    for (size_t i = 0; i < R.n; i++)
        for (int j = 0; j < NF; j++)
            free(R.r[i].f[j]);
    free(R.r);
    if (cells)
        for (size_t m = 0; m < nm; m++) {
            free(cells[m].v);
            free(cells[m].seed);
        }
    free(cells);
    free(rows);
    free(meths);
    int cs = til_close_stdout();
    return rc ? TIL_EXIT_DATA : cs;
}

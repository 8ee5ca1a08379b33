/* til-recommend: top-k items per user from a model, excluding the items the
 * user already has (train, and any --exclude files).
 *
 * Writes TSV "user item rank score" (rank 1-based, ties to the lower item id).
 * With --user-map/--item-map (text "dense_id<TAB>original_id", one line per
 * dense id in order, as til-preprocess writes them) ids are written back as
 * the original ids, and --users lists original ids; without maps, dense ids. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "til_eval.h"
#include "til_scorers.h"
#include "til_inter.h"
#include "til_io.h"
#include "til_model.h"
#include "til_util.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: til-recommend --model M --train TRAIN [--exclude F ...] [-k 20] [--user-map F --item-map F]\n"
               "                     [--users FILE] [--threads N] [-o OUT]\n"
               "Top-k items per user, excluding the user's TRAIN (and --exclude) items; TSV 'user item rank score'.\n"
               "  -m, --model M       model file\n"
               "  -r, --train F       training interactions (excluded)\n"
               "  -x, --exclude F     more interactions to exclude (repeatable)\n"
               "  -k, --k K           items per user (default 20)\n"
               "  -U, --user-map F    user id map ('dense<TAB>original' per line): write original user ids\n"
               "  -I, --item-map F    item id map: write original item ids\n"
               "  -u, --users FILE    users to recommend for, one per line (original ids when --user-map is\n"
               "                      given); default all users\n"
               "  -j, --threads N     threads (default: all CPUs)\n"
               "  -o, --output F      output (default '-' = stdout)\n"
               "  -h, --help          this text\n");
}

typedef struct {
    uint32_t n;
    char **id; /* n original ids, by dense id */
    char *buf;
} idmap;

static void idmap_free(idmap *m)
{
    free(m->id);
    free(m->buf);
    memset(m, 0, sizeof *m);
}

/* Reads a map that must cover exactly n dense ids 0..n-1 in order. */
static int idmap_read(const char *path, uint32_t n, const char *what, idmap *m, til_err *e)
{
    memset(m, 0, sizeof *m);
    til_rd *r = til_rd_open(path, e);
    if (!r)
        return -1;
    size_t cap = 1 << 16, used = 0;
    size_t *off = til_malloc(n ? n : 1, sizeof *off, e);
    m->buf = til_malloc(cap, 1, e);
    m->id = til_malloc(n ? n : 1, sizeof *m->id, e);
    char *line;
    long len;
    uint64_t k = 0;
    if (!off || !m->buf || !m->id)
        goto fail;
    while ((len = til_rd_line(r, &line, e)) >= 0) {
        char *tab = strchr(line, '\t');
        uint64_t d;
        if (!tab || tab == line || !tab[1] || strchr(tab + 1, '\t')) {
            til_seterr(e, "%s:%llu: want 'dense_id<TAB>original_id'", til_rd_name(r),
                       (unsigned long long)til_rd_lineno(r));
            goto fail;
        }
        *tab = 0;
        if (til_parse_u64(line, 0, UINT32_MAX, &d, "dense id", e)) {
            til_errctx(e, "%s:%llu", til_rd_name(r), (unsigned long long)til_rd_lineno(r));
            goto fail;
        }
        if (d != k || k >= n) {
            til_seterr(e, "%s:%llu: dense id %llu, expected %llu (%s map must list 0..%u in order)",
                       til_rd_name(r), (unsigned long long)til_rd_lineno(r), (unsigned long long)d,
                       (unsigned long long)k, what, n ? n - 1 : 0);
            goto fail;
        }
        size_t l = strlen(tab + 1) + 1;
        while (used + l > cap) {
            char *nb = til_realloc(m->buf, cap * 2, 1, e);
            if (!nb)
                goto fail;
            m->buf = nb;
            cap *= 2;
        }
        memcpy(m->buf + used, tab + 1, l);
        off[k++] = used;
        used += l;
    }
    if (len == -2)
        goto fail;
    if (k != n) {
        til_seterr(e, "%s: %s map has %llu ids but the model has %u %ss", til_rd_name(r), what,
                   (unsigned long long)k, n, what);
        goto fail;
    }
    for (uint32_t i = 0; i < n; i++)
        m->id[i] = m->buf + off[i];
    m->n = n;
    free(off);
    til_rd_close(&r);
    return 0;
fail:
    free(off);
    til_rd_close(&r);
    idmap_free(m);
    return -1;
}

static const idmap *sort_map;
static int cmp_by_orig(const void *a, const void *b)
{
    return strcmp(sort_map->id[*(const uint32_t *)a], sort_map->id[*(const uint32_t *)b]);
}

/* Reads the --users list into dense ids (through the map when given). */
static int read_users(const char *path, const idmap *um, uint32_t n_users, uint32_t **out, uint64_t *n_out,
                      til_err *e)
{
    uint32_t *byorig = NULL, *us = NULL;
    uint64_t n = 0, cap = 0;
    if (um->n) {
        byorig = til_malloc(um->n, sizeof *byorig, e);
        if (!byorig)
            return -1;
        for (uint32_t i = 0; i < um->n; i++)
            byorig[i] = i;
        sort_map = um;
        qsort(byorig, um->n, sizeof *byorig, cmp_by_orig);
    }
    til_rd *r = til_rd_open(path, e);
    char *line;
    long len;
    if (!r)
        goto fail;
    while ((len = til_rd_line(r, &line, e)) >= 0) {
        if (!*line)
            continue;
        uint64_t d = 0;
        if (um->n) {
            uint64_t lo = 0, hi = um->n;
            while (lo < hi) {
                uint64_t mid = (lo + hi) / 2;
                if (strcmp(um->id[byorig[mid]], line) < 0)
                    lo = mid + 1;
                else
                    hi = mid;
            }
            if (lo == um->n || strcmp(um->id[byorig[lo]], line)) {
                til_seterr(e, "%s:%llu: user '%s' is not in the user map", til_rd_name(r),
                           (unsigned long long)til_rd_lineno(r), line);
                goto fail;
            }
            d = byorig[lo];
        } else if (til_parse_u64(line, 0, n_users ? n_users - 1 : 0, &d, "user id", e)) {
            til_errctx(e, "%s:%llu", til_rd_name(r), (unsigned long long)til_rd_lineno(r));
            goto fail;
        }
        if (n == cap) {
            cap = cap ? 2 * cap : 1024;
            uint32_t *nu = til_realloc(us, cap, sizeof *us, e);
            if (!nu)
                goto fail;
            us = nu;
        }
        us[n++] = (uint32_t)d;
    }
    if (len == -2)
        goto fail;
    til_rd_close(&r);
    free(byorig);
    *out = us;
    *n_out = n;
    return 0;
fail:
    til_rd_close(&r);
    free(byorig);
    free(us);
    return -1;
}

/* train + exclude files as one set (their union). */
static int union_of(til_inter *all, const til_inter *a, int n, til_err *e)
{
    uint64_t tot = 0;
    for (int f = 0; f < n; f++)
        tot += a[f].nnz;
    uint32_t *us = til_malloc(tot ? tot : 1, sizeof *us, e), *is = til_malloc(tot ? tot : 1, sizeof *is, e);
    int rc = -1;
    if (us && is) {
        uint64_t k = 0;
        for (int f = 0; f < n; f++)
            for (uint32_t u = 0; u < a[f].n_users; u++)
                for (uint64_t p = a[f].indptr[u]; p < a[f].indptr[u + 1]; p++) {
                    us[k] = u;
                    is[k++] = a[f].items[p];
                }
        rc = til_inter_from_pairs(all, a[0].n_users, a[0].n_items, tot, us, is, NULL, NULL, NULL, e);
    }
    free(us);
    free(is);
    return rc;
}

#define MAX_EX 16

int main(int argc, char **argv)
{
    til_setprog(argv[0]);
    til_io_cleanup_on_signals();
    static const struct option opts[] = {{"model", required_argument, 0, 'm'},    {"train", required_argument, 0, 'r'},
                                         {"exclude", required_argument, 0, 'x'},  {"k", required_argument, 0, 'k'},
                                         {"user-map", required_argument, 0, 'U'}, {"item-map", required_argument, 0, 'I'},
                                         {"users", required_argument, 0, 'u'},    {"threads", required_argument, 0, 'j'},
                                         {"output", required_argument, 0, 'o'},   {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    til_err e;
    const char *model = NULL, *files[MAX_EX + 1] = {0}, *umap = NULL, *imap = NULL, *ulist = NULL, *out = "-";
    int n_files = 1, k = 20, threads = til_ncpu(), c;
    while ((c = getopt_long(argc, argv, "m:r:x:k:U:I:u:j:o:h", opts, NULL)) != -1) {
        int bad = 0;
        switch (c) {
        case 'm': model = optarg; break;
        case 'r': files[0] = optarg; break;
        case 'x':
            if (n_files > MAX_EX)
                bad = til_seterr(&e, "at most %d --exclude files", MAX_EX);
            else
                files[n_files++] = optarg;
            break;
        case 'k': bad = til_parse_int(optarg, 1, 1000000, &k, "-k", &e); break;
        case 'U': umap = optarg; break;
        case 'I': imap = optarg; break;
        case 'u': ulist = optarg; break;
        case 'j': bad = til_parse_int(optarg, 1, 256, &threads, "--threads", &e); break;
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
    if (!model || !files[0] || optind != argc) {
        til_warn(optind != argc ? "unexpected operand" : "--model and --train are required");
        usage(stderr);
        return TIL_EXIT_USAGE;
    }
    til_model m;
    til_model_init(&m);
    til_inter in[MAX_EX + 1], all = {0};
    memset(in, 0, sizeof in);
    idmap um = {0}, im = {0};
    til_scorer s = {0};
    uint32_t *users = NULL, *items = NULL;
    float *scores = NULL;
    int *counts = NULL;
    uint64_t n = 0;
    til_wr *w = NULL;
    int rc = -1;
    const char *mname = strcmp(model, "-") ? model : "stdin";
    if (til_model_read(model, &m, &e) || til_scorer_from_model(&m, mname, &s, &e))
        goto out;
    for (int f = 0; f < n_files; f++)
        if (til_inter_read(files[f], &in[f], &e) || til_scorer_check_data(&s, mname, &in[f], files[f], &e))
            goto out;
    if (union_of(&all, in, n_files, &e))
        goto out;
    if ((umap && idmap_read(umap, s.n_users, "user", &um, &e)) ||
        (imap && idmap_read(imap, s.n_items, "item", &im, &e)))
        goto out;
    if (ulist) {
        if (read_users(ulist, &um, s.n_users, &users, &n, &e))
            goto out;
    } else {
        n = s.n_users;
        if (!(users = til_malloc(n ? n : 1, sizeof *users, &e)))
            goto out;
        for (uint32_t u = 0; u < s.n_users; u++)
            users[u] = u;
    }
    items = til_malloc(n ? n * (uint64_t)k : 1, sizeof *items, &e);
    scores = til_malloc(n ? n * (uint64_t)k : 1, sizeof *scores, &e);
    counts = til_malloc(n ? n : 1, sizeof *counts, &e);
    if (!items || !scores || !counts || til_recommend(&s, &all, users, n, k, threads, items, scores, counts, &e))
        goto out;
    if (!(w = til_wr_open(out, -1, &e)) || til_wr_printf(w, &e, "user\titem\trank\tscore\n"))
        goto out;
    for (uint64_t x = 0; x < n; x++)
        for (int q = 0; q < counts[x]; q++) {
            uint32_t u = users[x], i = items[x * k + q];
            int bad = (um.n ? til_wr_printf(w, &e, "%s\t", um.id[u]) : til_wr_printf(w, &e, "%u\t", u)) ||
                      (im.n ? til_wr_printf(w, &e, "%s\t", im.id[i]) : til_wr_printf(w, &e, "%u\t", i)) ||
                      til_wr_printf(w, &e, "%d\t%.9g\n", q + 1, scores[x * k + q]);
            if (bad)
                goto out;
        }
    if (til_wr_commit(&w, &e))
        goto out;
    rc = 0;
out:
    if (rc)
        til_report(&e);
    if (w)
        til_wr_abort(&w);
    til_scorer_release(&s);
    til_model_free(&m);
    for (int f = 0; f < n_files; f++)
        til_inter_free(&in[f]);
    til_inter_free(&all);
    idmap_free(&um);
    idmap_free(&im);
    free(users);
    free(items);
    free(scores);
    free(counts);
    int cs = til_close_stdout();
    return rc ? TIL_EXIT_DATA : cs;
}

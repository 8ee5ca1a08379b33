/* til-cat: view any til binary file as text.
 *
 * Interaction files print as TSV "user item[ rating][ timestamp]", one record a
 * line (0-based dense ids); --stats prints a summary instead. Model and
 * checkpoint files print their metadata and a line per tensor; --tensor NAME
 * prints that tensor's rows as TSV. The file type is read from its magic. */
#include <getopt.h>
#include <inttypes.h>
#include <string.h>

#include "til_inter.h"
#include "til_io.h"
#include "til_model.h"
#include "til_util.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: til-cat [--stats] [--header] [--tensor NAME] [FILE...]\n"
            "Prints til binary files (interactions, models, checkpoints) as text.\n"
            "FILE '-' or none reads standard input.\n"
            "  -s, --stats        summary of an interaction file (users, items, density, degrees)\n"
            "  -H, --header       print a header line before TSV records\n"
            "  -t, --tensor NAME  print one tensor of a model file as TSV rows\n"
            "  -h, --help         this text\n");
}

static int cat_inter(const til_inter *t, int stats, int header, const char *name, til_err *e)
{
    if (stats) {
        til_inter_stats s;
        if (til_inter_stats_compute(t, &s, e))
            return -1;
        printf("file\t%s\n", name);
        printf("users\t%" PRIu64 "\nitems\t%" PRIu64 "\ninteractions\t%" PRIu64 "\n", s.users, s.items, s.nnz);
        printf("density\t%.6g\n", s.density);
        printf("columns\tuser item%s%s\n", t->rating ? " rating" : "", t->ts ? " timestamp" : "");
        printf("per_user_min_median_max_mean\t%" PRIu64 "\t%" PRIu64 "\t%" PRIu64 "\t%.2f\n", s.user_min, s.user_med,
               s.user_max, s.user_mean);
        printf("per_item_min_median_max_mean\t%" PRIu64 "\t%" PRIu64 "\t%" PRIu64 "\t%.2f\n", s.item_min, s.item_med,
               s.item_max, s.item_mean);
        printf("users_without_interactions\t%" PRIu64 "\nitems_without_interactions\t%" PRIu64 "\n", s.users_empty,
               s.items_empty);
        return 0;
    }
    if (header)
        printf("user\titem%s%s\n", t->rating ? "\trating" : "", t->ts ? "\ttimestamp" : "");
    for (uint32_t u = 0; u < t->n_users; u++)
        for (uint64_t k = t->indptr[u]; k < t->indptr[u + 1]; k++) {
            printf("%u\t%u", u, t->items[k]);
            if (t->rating)
                printf("\t%.9g", t->rating[k]);
            if (t->ts)
                printf("\t%" PRId64, t->ts[k]);
            putchar('\n');
        }
    return 0;
}

static void print_elem(const til_tensor *t, uint64_t k)
{
    switch (t->dtype) {
    case TIL_F32: printf("%.9g", ((const float *)t->data)[k]); break;
    case TIL_F64: printf("%.17g", ((const double *)t->data)[k]); break;
    case TIL_U32: printf("%" PRIu32, ((const uint32_t *)t->data)[k]); break;
    case TIL_U64: printf("%" PRIu64, ((const uint64_t *)t->data)[k]); break;
    case TIL_I64: printf("%" PRId64, ((const int64_t *)t->data)[k]); break;
    }
}

static int cat_model(const til_model *m, const char *tensor, const char *name, til_err *e)
{
    if (tensor) {
        const til_tensor *t = til_model_find(m, tensor);
        if (!t)
            return til_seterr(e, "%s: no tensor '%s'", name, tensor);
        for (uint64_t r = 0; r < t->rows; r++) {
            for (uint64_t c = 0; c < t->cols; c++) {
                if (c)
                    putchar('\t');
                print_elem(t, r * t->cols + c);
            }
            putchar('\n');
        }
        return 0;
    }
    printf("# %s\n", name);
    for (int i = 0; i < m->n_meta; i++)
        printf("%s = %s\n", m->key[i], m->val[i]);
    for (int i = 0; i < m->n_tensor; i++)
        printf("tensor %s %s %" PRIu64 "x%" PRIu64 "\n", m->t[i].name, til_dtype_name(m->t[i].dtype), m->t[i].rows,
               m->t[i].cols);
    return 0;
}

static int cat_one(const char *path, int stats, int header, const char *tensor, til_err *e)
{
    til_rd *r = til_rd_open(path, e);
    if (!r)
        return -1;
    char magic[8];
    long n = til_rd_peek(r, magic, 8, e);
    int rc = -1;
    if (n < 0)
        goto out;
    if (n == 8 && memcmp(magic, TIL_INTER_MAGIC, 8) == 0) {
        if (tensor) {
            til_seterr(e, "%s: --tensor applies to model files, this is an interaction file", til_rd_name(r));
            goto out;
        }
        til_inter t;
        if (til_inter_read_from(r, &t, e))
            goto out;
        rc = cat_inter(&t, stats, header, til_rd_name(r), e);
        til_inter_free(&t);
    } else if (n == 8 && memcmp(magic, TIL_MODEL_MAGIC, 8) == 0) {
        if (stats) {
            til_seterr(e, "%s: --stats applies to interaction files, this is a model file", til_rd_name(r));
            goto out;
        }
        til_model m;
        if (til_model_read_from(r, &m, e))
            goto out;
        rc = cat_model(&m, tensor, til_rd_name(r), e);
        til_model_free(&m);
    } else {
        til_seterr(e, "%s: not a til binary file (unknown magic)", til_rd_name(r));
    }
out:
    til_rd_close(&r);
    return rc;
}

int main(int argc, char **argv)
{
    til_setprog(argv[0]);
    static const struct option opts[] = {{"stats", no_argument, 0, 's'},
                                         {"header", no_argument, 0, 'H'},
                                         {"tensor", required_argument, 0, 't'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    int stats = 0, header = 0, c;
    const char *tensor = NULL;
    while ((c = getopt_long(argc, argv, "sHt:h", opts, NULL)) != -1) {
        switch (c) {
        case 's': stats = 1; break;
        case 'H': header = 1; break;
        case 't': tensor = optarg; break;
        case 'h': usage(stdout); return til_close_stdout();
        default: usage(stderr); return TIL_EXIT_USAGE;
        }
    }
    til_err e;
    int status = TIL_EXIT_OK;
    if (optind == argc) {
        if (cat_one("-", stats, header, tensor, &e)) {
            til_report(&e);
            status = TIL_EXIT_DATA;
        }
    }
    for (int i = optind; i < argc; i++)
        if (cat_one(argv[i], stats, header, tensor, &e)) {
            til_report(&e);
            status = TIL_EXIT_DATA;
        }
    int cs = til_close_stdout();
    return status ? status : cs;
}

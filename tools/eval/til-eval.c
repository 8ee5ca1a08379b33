/* til-eval: full-ranking evaluation of a model on a test split.
 *
 * Ranks every item for each user with test items, excluding the user's train
 * items (and --valid items), and prints Recall, NDCG, Precision, HitRate @k and
 * MRR (til_eval.h) as a table, as TSV rows "dataset backbone method seed metric
 * k value" (backbone, method, seed from the model's meta, --tag overrides), or
 * as JSON. --per-user writes each user's metrics for paired tests. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "til_device.h"
#include "til_eval.h"
#include "til_scorers.h"
#include "til_inter.h"
#include "til_io.h"
#include "til_model.h"
#include "til_util.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: til-eval --model M --train TRAIN [--valid VALID] --test TEST [-k 10,20,50]\n"
            "                [--threads N] [--format table|tsv|json] [--per-user FILE] [--tag KEY=VALUE ...]\n"
            "Full-ranking evaluation: every item is ranked for each user with test items, the user's\n"
            "TRAIN (and VALID) items excluded; ties go to the lower item id. Recall, NDCG, Precision,\n"
            "HitRate @k and MRR, averaged over users with test items. Any input may be '-' (stdin, once).\n"
            "  -m, --model M       model file (kind=model, tensors user and item)\n"
            "  -r, --train F       training interactions (excluded from the ranking)\n"
            "  -v, --valid F       validation interactions (also excluded)\n"
            "  -t, --test F        test interactions (the relevant items)\n"
            "  -k, --k LIST        cutoffs, comma separated (default 10,20,50; at most %d)\n"
            "  -j, --threads N     threads (default: all CPUs); results do not depend on it\n"
            "  -f, --format F      table (default), tsv (rows: dataset backbone method seed metric k value),\n"
            "                      json\n"
            "  -p, --per-user F    write per-user TSV: user recall@k... ndcg@k... mrr\n"
            "  -T, --tag K=V       set a label (dataset, backbone, method, seed override the model's meta;\n"
            "                      others appear in table and json); repeatable\n"
            "      --block N       users per scoring block (default: automatic)\n"
            "      --device D      cpu (default) or cuda (dot-product models; docs/CUDA.md)\n"
            "      --bench-sgemm-only  time the scoring alone (same blocks, no selection) and the full\n"
            "                      evaluation, print both in seconds\n"
            "  -h, --help          this text\n",
            TIL_EVAL_MAXK);
}

#define MAX_TAGS 32

typedef struct {
    const char *key[MAX_TAGS];
    const char *val[MAX_TAGS];
    int n;
} tags;

static const char *tag_get(const tags *t, const til_model *m, const char *key)
{
    for (int i = t->n - 1; i >= 0; i--)
        if (strcmp(t->key[i], key) == 0)
            return t->val[i];
    const char *v = m ? til_model_get(m, key) : NULL;
    return v && *v ? v : "-";
}

static int is_std(const char *k)
{
    return !strcmp(k, "dataset") || !strcmp(k, "backbone") || !strcmp(k, "method") || !strcmp(k, "seed");
}

static void json_str(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            printf("\\%c", ch);
        else if (ch < 0x20)
            printf("\\u%04x", ch);
        else
            putchar(ch);
    }
    putchar('"');
}

static const char *metric_name[4] = {"recall", "ndcg", "precision", "hitrate"};

static const double *metric_arr(const til_eval_result *r, int m)
{
    return m == 0 ? r->recall : m == 1 ? r->ndcg : m == 2 ? r->precision : r->hitrate;
}

static void print_table(const til_eval_result *r, const tags *t, const til_model *m, const char *model, double secs)
{
    printf("model %s: dataset %s, backbone %s, method %s, seed %s", model, tag_get(t, m, "dataset"),
           tag_get(t, m, "backbone"), tag_get(t, m, "method"), tag_get(t, m, "seed"));
    for (int i = 0; i < t->n; i++)
        if (!is_std(t->key[i]))
            printf(", %s %s", t->key[i], t->val[i]);
    printf("\n%llu users evaluated in %.2f s\n", (unsigned long long)r->n_users, secs);
    printf("%-10s", "metric");
    for (int q = 0; q < r->n_k; q++) {
        char h[16];
        snprintf(h, sizeof h, "@%d", r->ks[q]);
        printf(" %8s", h);
    }
    putchar('\n');
    for (int k = 0; k < 4; k++) {
        printf("%-10s", metric_name[k]);
        for (int q = 0; q < r->n_k; q++)
            printf(" %8.4f", metric_arr(r, k)[q]);
        putchar('\n');
    }
    printf("%-10s %8.4f\n", "mrr", r->mrr);
}

static void print_tsv(const til_eval_result *r, const tags *t, const til_model *m)
{
    const char *ds = tag_get(t, m, "dataset"), *bb = tag_get(t, m, "backbone"), *me = tag_get(t, m, "method"),
               *se = tag_get(t, m, "seed");
    printf("dataset\tbackbone\tmethod\tseed\tmetric\tk\tvalue\n");
    for (int k = 0; k < 4; k++)
        for (int q = 0; q < r->n_k; q++)
            printf("%s\t%s\t%s\t%s\t%s\t%d\t%.17g\n", ds, bb, me, se, metric_name[k], r->ks[q], metric_arr(r, k)[q]);
    printf("%s\t%s\t%s\t%s\tmrr\t-\t%.17g\n", ds, bb, me, se, r->mrr);
}

static void print_json(const til_eval_result *r, const tags *t, const til_model *m, const char *model, double secs)
{
    static const char *std[4] = {"dataset", "backbone", "method", "seed"};
    printf("{\"model\": ");
    json_str(model);
    for (int i = 0; i < 4; i++) {
        printf(", \"%s\": ", std[i]);
        json_str(tag_get(t, m, std[i]));
    }
    printf(", \"tags\": {");
    int first = 1;
    for (int i = 0; i < t->n; i++)
        if (!is_std(t->key[i])) {
            printf(first ? "" : ", ");
            json_str(t->key[i]);
            printf(": ");
            json_str(t->val[i]);
            first = 0;
        }
    printf("}, \"n_users\": %llu, \"seconds\": %.3f, \"ks\": [", (unsigned long long)r->n_users, secs);
    for (int q = 0; q < r->n_k; q++)
        printf("%s%d", q ? ", " : "", r->ks[q]);
    printf("]");
    for (int k = 0; k < 4; k++) {
        printf(", \"%s\": {", metric_name[k]);
        for (int q = 0; q < r->n_k; q++)
            printf("%s\"%d\": %.17g", q ? ", " : "", r->ks[q], metric_arr(r, k)[q]);
        printf("}");
    }
    printf(", \"mrr\": %.17g}\n", r->mrr);
}

static int write_per_user(const char *path, const til_eval_per_user *p, const til_eval_result *r, uint32_t n_users,
                          til_err *e)
{
    til_wr *w = til_wr_open(path, -1, e);
    if (!w)
        return -1;
    if (til_wr_printf(w, e, "user"))
        goto fail;
    for (int k = 0; k < 2; k++)
        for (int q = 0; q < r->n_k; q++)
            if (til_wr_printf(w, e, "\t%s@%d", metric_name[k], r->ks[q]))
                goto fail;
    if (til_wr_printf(w, e, "\tmrr\n"))
        goto fail;
    for (uint32_t u = 0; u < n_users; u++) {
        if (!p->evaluated[u])
            continue;
        if (til_wr_printf(w, e, "%u", u))
            goto fail;
        for (int q = 0; q < r->n_k; q++)
            if (til_wr_printf(w, e, "\t%.17g", p->recall[(size_t)u * r->n_k + q]))
                goto fail;
        for (int q = 0; q < r->n_k; q++)
            if (til_wr_printf(w, e, "\t%.17g", p->ndcg[(size_t)u * r->n_k + q]))
                goto fail;
        if (til_wr_printf(w, e, "\t%.17g\n", p->mrr[u]))
            goto fail;
    }
    return til_wr_commit(&w, e);
fail:
    til_wr_abort(&w);
    return -1;
}

int main(int argc, char **argv)
{
    til_setprog(argv[0]);
    til_io_cleanup_on_signals();
    enum { OPT_BLOCK = 256, OPT_BENCH, OPT_DEVICE };
    static const struct option opts[] = {{"model", required_argument, 0, 'm'},
                                         {"train", required_argument, 0, 'r'},
                                         {"valid", required_argument, 0, 'v'},
                                         {"test", required_argument, 0, 't'},
                                         {"k", required_argument, 0, 'k'},
                                         {"threads", required_argument, 0, 'j'},
                                         {"format", required_argument, 0, 'f'},
                                         {"per-user", required_argument, 0, 'p'},
                                         {"tag", required_argument, 0, 'T'},
                                         {"block", required_argument, 0, OPT_BLOCK},
                                         {"bench-sgemm-only", no_argument, 0, OPT_BENCH},
                                         {"device", required_argument, 0, OPT_DEVICE},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    til_err e;
    const char *model = NULL, *train = NULL, *valid = NULL, *test = NULL, *format = "table", *per_user = NULL;
    til_eval_opts o = {.ks = {10, 20, 50}, .n_k = 3, .threads = til_ncpu(), .block = 0};
    tags tg = {.n = 0};
    int bench = 0, c;
    while ((c = getopt_long(argc, argv, "m:r:v:t:k:j:f:p:T:h", opts, NULL)) != -1) {
        int bad = 0;
        switch (c) {
        case 'm': model = optarg; break;
        case 'r': train = optarg; break;
        case 'v': valid = optarg; break;
        case 't': test = optarg; break;
        case 'k':
            o.n_k = til_parse_int_list(optarg, 1, 1000000, o.ks, TIL_EVAL_MAXK, "-k", &e);
            bad = o.n_k < 1;
            break;
        case 'j': bad = til_parse_int(optarg, 1, 256, &o.threads, "--threads", &e); break;
        case 'f':
            format = optarg;
            if (strcmp(format, "table") && strcmp(format, "tsv") && strcmp(format, "json"))
                bad = til_seterr(&e, "--format: want table, tsv or json, got '%s'", format);
            break;
        case 'p': per_user = optarg; break;
        case 'T': {
            const char *eq = strchr(optarg, '=');
            if (!eq || eq == optarg || tg.n == MAX_TAGS || strpbrk(optarg, "\t\n")) {
                bad = til_seterr(&e, "--tag: want KEY=VALUE without tabs (at most %d), got '%s'", MAX_TAGS, optarg);
                break;
            }
            *(char *)eq = 0; /* split argv in place */
            tg.key[tg.n] = optarg;
            tg.val[tg.n++] = eq + 1;
            break;
        }
        case OPT_BLOCK: bad = til_parse_int(optarg, 1, 1 << 20, &o.block, "--block", &e); break;
        case OPT_BENCH: bench = 1; break;
        case OPT_DEVICE:
            if ((o.device = til_device_parse(optarg)) < 0)
                bad = til_seterr(&e, "--device: want cpu or cuda, got '%s'", optarg);
            break;
        case 'h': usage(stdout); return til_close_stdout();
        default: usage(stderr); return TIL_EXIT_USAGE;
        }
        if (bad) {
            til_report(&e);
            usage(stderr);
            return TIL_EXIT_USAGE;
        }
    }
    if (!model || !train || !test || optind != argc) {
        if (optind != argc)
            til_warn("unexpected operand '%s'", argv[optind]);
        else
            til_warn("--model, --train and --test are required");
        usage(stderr);
        return TIL_EXIT_USAGE;
    }
    if (bench && o.device == TIL_DEVICE_CUDA) {
        til_warn("--bench-sgemm-only times the CPU path; drop --device cuda");
        usage(stderr);
        return TIL_EXIT_USAGE;
    }
    int stdin_uses = !strcmp(model, "-") + !strcmp(train, "-") + !strcmp(test, "-") + (valid && !strcmp(valid, "-"));
    if (stdin_uses > 1) {
        til_warn("only one input may be '-' (stdin)");
        usage(stderr);
        return TIL_EXIT_USAGE;
    }

    til_model m;
    til_model_init(&m);
    til_inter tr = {0}, va = {0}, te = {0};
    til_eval_per_user pu;
    memset(&pu, 0, sizeof pu);
    til_scorer s = {0};
    til_eval_result res;
    int rc = -1;
    const char *mname = strcmp(model, "-") ? model : "stdin";
    if (til_model_read(model, &m, &e) || til_scorer_from_model(&m, mname, &s, &e))
        goto out;
    if (til_inter_read(train, &tr, &e) || til_scorer_check_data(&s, mname, &tr, train, &e))
        goto out;
    if (valid && (til_inter_read(valid, &va, &e) || til_scorer_check_data(&s, mname, &va, valid, &e)))
        goto out;
    if (til_inter_read(test, &te, &e) || til_scorer_check_data(&s, mname, &te, test, &e))
        goto out;
    if (bench) {
        double t0 = til_now();
        if (til_eval_score_only(&s, &tr, &te, &o, &e))
            goto out;
        double t1 = til_now();
        if (til_eval_run(&s, &tr, valid ? &va : NULL, &te, &o, &res, NULL, &e))
            goto out;
        double t2 = til_now();
        printf("sgemm_only_s\t%.4f\neval_s\t%.4f\nratio\t%.3f\nblock\t%d\nthreads\t%d\n", t1 - t0, t2 - t1,
               (t2 - t1) / (t1 - t0), til_eval_block_size(&s, &o), o.threads);
        rc = 0;
        goto out;
    }
    double t0 = til_now();
    if (til_eval_run(&s, &tr, valid ? &va : NULL, &te, &o, &res, per_user ? &pu : NULL, &e))
        goto out;
    double secs = til_now() - t0;
    if (per_user && write_per_user(per_user, &pu, &res, s.n_users, &e))
        goto out;
    if (!strcmp(format, "tsv"))
        print_tsv(&res, &tg, &m);
    else if (!strcmp(format, "json"))
        print_json(&res, &tg, &m, mname, secs);
    else
        print_table(&res, &tg, &m, mname, secs);
    rc = 0;
out:
    if (rc)
        til_report(&e);
    til_eval_per_user_free(&pu);
    til_scorer_release(&s);
    til_model_free(&m);
    til_inter_free(&tr);
    til_inter_free(&va);
    til_inter_free(&te);
    int cs = til_close_stdout();
    return rc ? TIL_EXIT_DATA : cs;
}

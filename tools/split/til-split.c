/* til-split: per-user train/validation/test split of an interaction file.
 *
 * Random (seeded per user) or temporal; the rule is in til_split.h and
 * docs/SPLIT.md. Each output is written atomically; if a later one fails, the
 * ones already written by this run are removed. A summary goes to stderr. */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "til_inter.h"
#include "til_io.h"
#include "til_split.h"
#include "til_util.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: til-split --train F [--valid F] --test F [--ratio A:B:C] [--seed N] [--temporal] [INPUT]\n"
            "Splits an interaction file per user into training, validation and test files.\n"
            "INPUT '-' or none reads standard input; at most one output may be '-' (stdout).\n"
            "  -r, --train F      training output\n"
            "  -v, --valid F      validation output (needed unless the ratio's middle part is 0)\n"
            "  -t, --test F       test output\n"
            "  -R, --ratio A:B:C  part sizes, integers or decimals (default 8:1:1)\n"
            "  -s, --seed N       random seed (default 1); each user's shuffle depends only on (seed, user)\n"
            "  -T, --temporal     order each user's records by timestamp (ties by item) instead of\n"
            "                     shuffling: earliest to training, latest to test (needs timestamps)\n"
            "  -q, --quiet        no summary on stderr\n"
            "  -h, --help         this text\n"
            "Rule for a user with n records, total S = A+B+C (integer arithmetic):\n"
            "  train = max(1, floor(n*A/S)), valid = min(floor(n*B/S), n - train), test = the rest.\n"
            "Every user keeps >= 1 training record; with 8:1:1 a user with >= 2 records gets >= 1 test\n"
            "record and one with >= 10 records gets >= 1 validation record (n = 1: train only;\n"
            "n = 2..9: no validation record). Outputs keep n_users, n_items and the rating and\n"
            "timestamp columns of the input.\n");
}

int main(int argc, char **argv)
{
    til_setprog(argv[0]);
    til_io_cleanup_on_signals();
    static const struct option opts[] = {{"train", required_argument, 0, 'r'},
                                         {"valid", required_argument, 0, 'v'},
                                         {"test", required_argument, 0, 't'},
                                         {"ratio", required_argument, 0, 'R'},
                                         {"seed", required_argument, 0, 's'},
                                         {"temporal", no_argument, 0, 'T'},
                                         {"quiet", no_argument, 0, 'q'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    const char *path[3] = {NULL, NULL, NULL}, *ratio = "8:1:1";
    til_split_opts o = {.seed = 1};
    int quiet = 0, c;
    til_err e;
    while ((c = getopt_long(argc, argv, "r:v:t:R:s:Tqh", opts, NULL)) != -1) {
        switch (c) {
        case 'r': path[TIL_SPLIT_TRAIN] = optarg; break;
        case 'v': path[TIL_SPLIT_VALID] = optarg; break;
        case 't': path[TIL_SPLIT_TEST] = optarg; break;
        case 'R': ratio = optarg; break;
        case 's':
            if (til_parse_u64(optarg, 0, UINT64_MAX, &o.seed, "--seed", &e)) {
                til_report(&e);
                usage(stderr);
                return TIL_EXIT_USAGE;
            }
            break;
        case 'T': o.temporal = 1; break;
        case 'q': quiet = 1; break;
        case 'h': usage(stdout); return til_close_stdout();
        default: usage(stderr); return TIL_EXIT_USAGE;
        }
    }
    const char *why = NULL;
    if (til_split_parse_ratio(ratio, o.parts, &e))
        why = e.msg;
    else if (argc - optind > 1)
        why = "at most one INPUT";
    else if (!path[TIL_SPLIT_TRAIN] || !path[TIL_SPLIT_TEST])
        why = "--train and --test are required";
    else if (!path[TIL_SPLIT_VALID] && o.parts[1])
        why = "--valid is required unless the ratio's middle part is 0";
    else
        for (int i = 0; i < 3 && !why; i++)
            for (int j = i + 1; j < 3; j++)
                if (path[i] && path[j] && strcmp(path[i], path[j]) == 0) {
                    why = strcmp(path[i], "-") ? "two outputs name the same file" : "at most one output may be '-'";
                    break;
                }
    if (why) {
        fprintf(stderr, "%s: %s\n", til_prog(), why);
        usage(stderr);
        return TIL_EXIT_USAGE;
    }
    const char *in_path = optind < argc ? argv[optind] : "-";
    const char *in_name = strcmp(in_path, "-") ? in_path : "stdin";

    til_inter in, out[3];
    if (til_inter_read(in_path, &in, &e)) {
        til_report(&e);
        return TIL_EXIT_DATA;
    }
    til_split_stats st;
    if (til_split_run(&in, &o, out, &st, &e)) {
        til_errctx(&e, "%s", in_name);
        til_report(&e);
        til_inter_free(&in);
        return TIL_EXIT_DATA;
    }
    int status = TIL_EXIT_OK;
    for (int p = 0; p < 3; p++) {
        if (!path[p])
            continue;
        if (til_inter_write(path[p], &out[p], &e)) {
            til_report(&e);
            for (int q = 0; q < p; q++) /* all or nothing */
                if (path[q] && strcmp(path[q], "-"))
                    remove(path[q]);
            status = TIL_EXIT_DATA;
            break;
        }
    }
    if (!status && !quiet) {
        const char *mode = o.temporal ? "temporal" : "random";
        fprintf(stderr,
                "%s: %s: %s split %s (seed %" PRIu64 "): train %" PRIu64 ", valid %" PRIu64 ", test %" PRIu64
                " interactions; %" PRIu64 " users with records, %" PRIu64 " with empty valid, %" PRIu64
                " with empty test\n",
                til_prog(), in_name, mode, ratio, o.seed, st.nnz[0], st.nnz[1], st.nnz[2], st.users,
                st.users_empty_valid, st.users_empty_test);
    }
    for (int p = 0; p < 3; p++)
        til_inter_free(&out[p]);
    til_inter_free(&in);
    int cs = til_close_stdout();
    return status ? status : cs;
}

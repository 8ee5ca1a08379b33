/* til-synth: writes the embedded synthetic dataset as text in the MovieLens
 * u.data layout ("user<TAB>item<TAB>rating<TAB>timestamp", raw ids from 1), so
 * the demo pipeline starts from raw text like a real dataset and exercises
 * til-preprocess. The generative model is in til_synth.h and docs/DATA.md. */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "til_io.h"
#include "til_synth.h"
#include "til_util.h"

static void usage(FILE *f)
{
    til_synth_opts d = til_synth_defaults();
    fprintf(f,
            "usage: til-synth [-o FILE] [--truth FILE] [--users N] [--items M] [--clusters K] [--seed N] ...\n"
            "Generates synthetic implicit feedback with planted item clusters, as text lines\n"
            "user<TAB>item<TAB>rating<TAB>timestamp (MovieLens u.data layout, ids from 1).\n"
            "  -o, --output FILE   text output (default '-', standard output)\n"
            "  -T, --truth FILE    write the planted structure: item<TAB>cluster<TAB>rank per item\n"
            "  -u, --users N       users (default %u)\n"
            "  -i, --items M       items (default %u)\n"
            "  -k, --clusters K    item clusters (default %u)\n"
            "  -n, --mean L        mean records per user, log-normal (default %g)\n"
            "      --min L         fewest records per user (default %u)\n"
            "  -z, --zipf A        popularity exponent inside a cluster (default %g)\n"
            "      --mix C         each user mixes 1..min(C, K) clusters (default %d)\n"
            "      --noise P       share of uniform off-structure records (default %g)\n"
            "  -c, --columns N     2: user item, 3: + rating, 4: + timestamp (default 4)\n"
            "  -s, --seed N        random seed (default %" PRIu64 ")\n"
            "  -q, --quiet         no summary on stderr\n"
            "  -h, --help          this text\n"
            "Ratings 1..5 follow how well the item's cluster fits the user's mix: items of the user's\n"
            "main cluster are mostly rated 4-5, off-mix items mostly 1-3.\n",
            d.n_users, d.n_items, d.n_clusters, d.mean_len, d.min_len, d.zipf, d.mix_max, d.noise, d.seed);
}

static int usage_error(const char *why)
{
    fprintf(stderr, "%s: %s\n", til_prog(), why);
    usage(stderr);
    return TIL_EXIT_USAGE;
}

enum { OPT_MIN = 256, OPT_MIX, OPT_NOISE };

int main(int argc, char **argv)
{
    til_setprog(argv[0]);
    til_io_cleanup_on_signals();
    static const struct option opts[] = {{"output", required_argument, 0, 'o'},
                                         {"truth", required_argument, 0, 'T'},
                                         {"users", required_argument, 0, 'u'},
                                         {"items", required_argument, 0, 'i'},
                                         {"clusters", required_argument, 0, 'k'},
                                         {"mean", required_argument, 0, 'n'},
                                         {"min", required_argument, 0, OPT_MIN},
                                         {"zipf", required_argument, 0, 'z'},
                                         {"mix", required_argument, 0, OPT_MIX},
                                         {"noise", required_argument, 0, OPT_NOISE},
                                         {"columns", required_argument, 0, 'c'},
                                         {"seed", required_argument, 0, 's'},
                                         {"quiet", no_argument, 0, 'q'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    til_synth_opts o = til_synth_defaults();
    const char *out = "-", *truth = NULL;
    int columns = 4, quiet = 0, c, rc = 0;
    uint64_t v;
    til_err e;
    while ((c = getopt_long(argc, argv, "o:T:u:i:k:n:z:c:s:qh", opts, NULL)) != -1) {
        switch (c) {
        case 'o': out = optarg; break;
        case 'T': truth = optarg; break;
        case 'u': rc = til_parse_u64(optarg, 1, 100000000, &v, "--users", &e), o.n_users = (uint32_t)v; break;
        case 'i': rc = til_parse_u64(optarg, 2, 100000000, &v, "--items", &e), o.n_items = (uint32_t)v; break;
        case 'k': rc = til_parse_u64(optarg, 1, 1000000, &v, "--clusters", &e), o.n_clusters = (uint32_t)v; break;
        case OPT_MIN: rc = til_parse_u64(optarg, 1, 100000000, &v, "--min", &e), o.min_len = (uint32_t)v; break;
        case 'n': rc = til_parse_double(optarg, 1, 1e6, &o.mean_len, "--mean", &e); break;
        case 'z': rc = til_parse_double(optarg, 0, 5, &o.zipf, "--zipf", &e); break;
        case OPT_MIX: rc = til_parse_int(optarg, 1, 1000000, &o.mix_max, "--mix", &e); break;
        case OPT_NOISE: rc = til_parse_double(optarg, 0, 1, &o.noise, "--noise", &e); break;
        case 'c': rc = til_parse_int(optarg, 2, 4, &columns, "--columns", &e); break;
        case 's': rc = til_parse_u64(optarg, 0, UINT64_MAX, &o.seed, "--seed", &e); break;
        case 'q': quiet = 1; break;
        case 'h': usage(stdout); return til_close_stdout();
        default: usage(stderr); return TIL_EXIT_USAGE;
        }
        if (rc)
            return usage_error(e.msg);
    }
    if (optind < argc)
        return usage_error("no operands expected");
    if (til_synth_check(&o, &e))
        return usage_error(e.msg);
    if (truth && strcmp(truth, out) == 0)
        return usage_error(strcmp(out, "-") ? "--truth and --output name the same file" : "at most one output may be '-'");

    double t0 = til_now();
    til_synth s;
    if (til_synth_generate(&o, &s, &e)) {
        til_report(&e);
        return TIL_EXIT_DATA;
    }
    int status = TIL_EXIT_OK;
    til_wr *w = til_wr_open(out, -1, &e);
    if (!w || til_synth_write(&s, w, columns, &e) || til_wr_commit(&w, &e)) {
        til_report(&e); /* til_wr messages name the file */
        til_wr_abort(&w);
        status = TIL_EXIT_DATA;
    }
    if (!status && truth) {
        w = til_wr_open(truth, -1, &e);
        if (!w || til_synth_write_truth(&s, w, &e) || til_wr_commit(&w, &e)) {
            til_report(&e);
            til_wr_abort(&w);
            if (strcmp(out, "-")) /* all or nothing */
                remove(out);
            status = TIL_EXIT_DATA;
        }
    }
    if (!status && !quiet)
        fprintf(stderr,
                "%s: %u users x %u items, %u clusters, seed %" PRIu64 ": %" PRIu64 " interactions (%.1f per user) in %.2f s\n",
                til_prog(), s.n_users, s.n_items, s.n_clusters, o.seed, s.n, (double)s.n / s.n_users, til_now() - t0);
    til_synth_free(&s);
    int cs = til_close_stdout();
    return status ? status : cs;
}

/* til-noise: the paper's robustness study (section 5.6.2) on a training file.
 *
 * Injects noisy positives (--mode pos), turns true positives into negatives by
 * removing them (--mode neg), or both; c_u = round(ratio x the user's
 * positives). The rule is in til_noise.h and docs/DATA.md. Optionally writes
 * the injected and removed pairs so later analysis can tell clean triplets
 * from noisy ones. Outputs are atomic; if a later one fails, the ones already
 * written by this run are removed. */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "til_inter.h"
#include "til_noise.h"
#include "til_util.h"

#define MAX_EXCLUDE 16

static void usage(FILE *f)
{
    fprintf(f,
            "usage: til-noise --mode pos|neg|pos+neg [-o OUT] [--ratio R] [--seed N] [--exclude F]...\n"
            "                 [--injected F] [--removed F] [INPUT]\n"
            "Adds noisy positives to and/or removes true positives from a training interaction file.\n"
            "INPUT '-' or none reads standard input; OUT '-' (default) writes standard output.\n"
            "  -m, --mode M       pos: add c_u random items the user has not interacted with as positives;\n"
            "                     neg: remove c_u of the user's positives (so they can be sampled as\n"
            "                     negatives; at least one positive is kept); pos+neg: both\n"
            "  -r, --ratio R      c_u = round(R x the user's training positives) (default 0.5)\n"
            "  -s, --seed N       random seed (default 1); draws depend only on (seed, user)\n"
            "  -x, --exclude F    never inject the user's items in F (repeatable, e.g. the validation and\n"
            "                     test files); default: none, only the training items are avoided\n"
            "  -o, --output F     the noisy training file\n"
            "  -I, --injected F   write the injected pairs as an interaction file\n"
            "  -D, --removed F    write the removed pairs (with their original columns)\n"
            "  -q, --quiet        no summary on stderr\n"
            "  -h, --help         this text\n"
            "Injected records get rating 0 and timestamp -1 when the input has those columns.\n");
}

static int usage_error(const char *why)
{
    fprintf(stderr, "%s: %s\n", til_prog(), why);
    usage(stderr);
    return TIL_EXIT_USAGE;
}

int main(int argc, char **argv)
{
    til_setprog(argv[0]);
    til_io_cleanup_on_signals();
    static const struct option opts[] = {{"mode", required_argument, 0, 'm'},
                                         {"ratio", required_argument, 0, 'r'},
                                         {"seed", required_argument, 0, 's'},
                                         {"exclude", required_argument, 0, 'x'},
                                         {"output", required_argument, 0, 'o'},
                                         {"injected", required_argument, 0, 'I'},
                                         {"removed", required_argument, 0, 'D'},
                                         {"quiet", no_argument, 0, 'q'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    til_noise_opts o = {.ratio = 0.5, .seed = 1};
    const char *exclude[MAX_EXCLUDE], *path[3] = {"-", NULL, NULL}, *mode = NULL;
    int n_exclude = 0, quiet = 0, c;
    til_err e;
    while ((c = getopt_long(argc, argv, "m:r:s:x:o:I:D:qh", opts, NULL)) != -1) {
        switch (c) {
        case 'm':
            mode = optarg;
            if (til_noise_parse_mode(optarg, &o.mode, &e))
                return usage_error(e.msg);
            break;
        case 'r':
            if (til_parse_double(optarg, 0, 100, &o.ratio, "--ratio", &e))
                return usage_error(e.msg);
            break;
        case 's':
            if (til_parse_u64(optarg, 0, UINT64_MAX, &o.seed, "--seed", &e))
                return usage_error(e.msg);
            break;
        case 'x':
            if (n_exclude == MAX_EXCLUDE)
                return usage_error("too many --exclude files");
            exclude[n_exclude++] = optarg;
            break;
        case 'o': path[0] = optarg; break;
        case 'I': path[1] = optarg; break;
        case 'D': path[2] = optarg; break;
        case 'q': quiet = 1; break;
        case 'h': usage(stdout); return til_close_stdout();
        default: usage(stderr); return TIL_EXIT_USAGE;
        }
    }
    if (!mode)
        return usage_error("--mode is required");
    if (argc - optind > 1)
        return usage_error("at most one INPUT");
    for (int i = 0; i < 3; i++)
        for (int j = i + 1; j < 3; j++)
            if (path[i] && path[j] && strcmp(path[i], path[j]) == 0)
                return usage_error(strcmp(path[i], "-") ? "two outputs name the same file"
                                                        : "at most one output may be '-'");
    const char *in_path = optind < argc ? argv[optind] : "-";
    const char *in_name = strcmp(in_path, "-") ? in_path : "stdin";
    int n_stdin = !strcmp(in_path, "-");
    for (int x = 0; x < n_exclude; x++)
        n_stdin += !strcmp(exclude[x], "-");
    if (n_stdin > 1)
        return usage_error("standard input can be read only once");

    til_inter train, ex[MAX_EXCLUDE], out[3];
    const til_inter *exp[MAX_EXCLUDE];
    int n_read = 0, status = TIL_EXIT_DATA;
    if (til_inter_read(in_path, &train, &e)) {
        til_report(&e);
        return TIL_EXIT_DATA;
    }
    for (; n_read < n_exclude; n_read++) {
        if (til_inter_read(exclude[n_read], &ex[n_read], &e))
            goto fail;
        if (til_inter_same_shape(&train, in_name, &ex[n_read], exclude[n_read], &e)) {
            til_inter_free(&ex[n_read]);
            goto fail;
        }
        exp[n_read] = &ex[n_read];
    }
    til_noise_stats st;
    if (til_noise_run(&train, exp, n_exclude, &o, &out[0], &out[1], &out[2], &st, &e)) {
        til_errctx(&e, "%s", in_name);
        goto fail;
    }
    status = TIL_EXIT_OK;
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
    if (!status && !quiet)
        fprintf(stderr,
                "%s: %s: mode %s ratio %g (seed %" PRIu64 "): %" PRIu64 " interactions -> %" PRIu64 "; injected %" PRIu64
                ", removed %" PRIu64 " over %" PRIu64 " users; %" PRIu64 " users had fewer candidates than c_u, %" PRIu64
                " kept one positive (removal capped)\n",
                til_prog(), in_name, mode, o.ratio, o.seed, train.nnz, out[0].nnz, st.injected, st.removed, st.users,
                st.users_pos_short, st.users_neg_capped);
    for (int p = 0; p < 3; p++)
        til_inter_free(&out[p]);
    goto done;
fail:
    til_report(&e);
done:
    for (int x = 0; x < n_read; x++)
        til_inter_free(&ex[x]);
    til_inter_free(&train);
    int cs = til_close_stdout();
    return status ? status : cs;
}

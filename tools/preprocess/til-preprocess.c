/* til-preprocess: raw rating / play / check-in logs to an interaction file.
 *
 * Reads one text input (plain or gzip, '-' = stdin) in a named format, keeps
 * ratings >= --min-rating as positives (rated formats), merges repeated pairs,
 * applies the iterative k-core and numbers users and items densely in the order
 * of their raw ids (til_prep.h has the rules). Writes the interaction file, and
 * optionally the id maps and the low-ratings file; prints the trail of counts
 * (users, items, interactions after each step) on stderr. */
#include <getopt.h>
#include <inttypes.h>
#include <string.h>

#include "til_inter.h"
#include "til_io.h"
#include "til_prep.h"
#include "til_util.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: til-preprocess --format FMT [options] [INPUT]\n"
            "Turns a raw ratings / plays / check-ins file into a til interaction file.\n"
            "INPUT (plain or gzip) '-' or none reads standard input.\n"
            "  -f, --format FMT      amazon       user,item,rating,timestamp (CSV, string ids)\n"
            "                        ml100k       user item rating timestamp (u.data)\n"
            "                        ml1m         user::item::rating::timestamp (ratings.dat)\n"
            "                        mlcsv        userId,movieId,rating,timestamp + header (ratings.csv)\n"
            "                        lastfm       userID artistID weight (HetRec user_artists.dat; header optional)\n"
            "                        lastfm1k     userid<TAB>time<TAB>artist-id<TAB>artist<TAB>track-id<TAB>track\n"
            "                        lastfm360k   user-sha1<TAB>artist-mbid<TAB>artist-name<TAB>plays\n"
            "                        gowalla-snap user time lat lon location-id (SNAP check-ins)\n"
            "                        adj          user item item ... (LightGCN adjacency lists)\n"
            "                        generic      see --sep, --header, --*-col\n"
            "  -o, --output FILE     interaction file to write (default '-', stdout)\n"
            "  -r, --min-rating R    positives are ratings >= R (default 4; rated formats only:\n"
            "                        plays and check-ins are implicit, every pair is a positive)\n"
            "  -k, --kcore K         iterative K-core over users and items (default 10; 0 disables)\n"
            "      --kcore-once      a single K-core round instead of iterating until stable\n"
            "      --user-map FILE   write 'dense_id<TAB>raw_id' for every user\n"
            "      --item-map FILE   write 'dense_id<TAB>raw_id' for every item\n"
            "      --low-ratings FILE  interaction file of the pairs rated only below R among the\n"
            "                        surviving users and items (same ids and shape as the output)\n"
            "      --keep-rating, --drop-rating  store the rating column or not (default: if the format has it)\n"
            "      --keep-time, --drop-time      store the timestamp column or not (default: if the format has it)\n"
            "      --strict          fail on the first malformed line (default: skip and count them)\n"
            "  -q, --quiet           no summary on stderr\n"
            "  generic format only (columns are 1-based):\n"
            "      --sep S           separator: one character, 'tab', 'ws' (runs of blanks) or '::'\n"
            "      --header          skip the first line\n"
            "      --user-col N --item-col N [--rating-col N] [--time-col N]\n"
            "  -h, --help            this text\n"
            "Repeated pairs keep the largest rating and the latest timestamp. Dense ids follow the\n"
            "raw ids' order (numeric if all are integers, else bytewise).\n");
}

enum {
    OPT_KCORE_ONCE = 256,
    OPT_USER_MAP,
    OPT_ITEM_MAP,
    OPT_LOW,
    OPT_KEEP_RATING,
    OPT_DROP_RATING,
    OPT_KEEP_TIME,
    OPT_DROP_TIME,
    OPT_STRICT,
    OPT_SEP,
    OPT_HEADER,
    OPT_USER_COL,
    OPT_ITEM_COL,
    OPT_RATING_COL,
    OPT_TIME_COL,
};

static void print_summary(const til_prep_stats *st, const char *input)
{
    FILE *f = stderr;
    const char *prog = til_prog();
    double mb = (double)st->bytes / 1e6;
    fprintf(f, "%s: read %s: %" PRIu64 " lines, %" PRIu64 " bytes in %.3f s (%.1f MB/s; %.3f s CPU, %.1f MB/s)\n", prog,
            input, st->lines, st->bytes, st->t_parse, st->t_parse > 0 ? mb / st->t_parse : 0.0, st->cpu_parse,
            st->cpu_parse > 0 ? mb / st->cpu_parse : 0.0);
    fprintf(f, "%s: %" PRIu64 " records; skipped %" PRIu64 " malformed, %" PRIu64 " blank, %" PRIu64 " header, %" PRIu64
               " without item id; %" PRIu64 " below the rating threshold\n",
            prog, st->records, st->malformed, st->blank, st->header, st->no_item, st->below);
    for (int k = 0; k < st->n_bad; k++)
        fprintf(f, "%s: skipped %s\n", prog, st->bad[k]);
    if (st->malformed > (uint64_t)st->n_bad)
        fprintf(f, "%s: ... and %" PRIu64 " more malformed lines (--strict stops at the first)\n", prog,
                st->malformed - (uint64_t)st->n_bad);
    fprintf(f, "%s: %" PRIu64 " repeated pairs merged\n", prog, st->dups);
    fprintf(f, "%-20s %10s %10s %14s\n", "step", "users", "items", "interactions");
    for (int k = 0; k < st->n_step; k++)
        fprintf(f, "%-20s %10" PRIu64 " %10" PRIu64 " %14" PRIu64 "\n", st->step[k].what, st->step[k].users,
                st->step[k].items, st->step[k].nnz);
    char buf[32];
    fprintf(f, "%s: dedupe, k-core and re-indexing took %.3f s; peak memory %s\n", prog, st->t_total,
            til_fmt_bytes(til_peak_rss(), buf, sizeof buf));
}

static int parse_col(const char *s, int *out)
{
    til_err e;
    if (til_parse_int(s, 1, 64, out, "column", &e)) {
        til_report(&e);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    til_setprog(argv[0]);
    til_io_cleanup_on_signals();
    static const struct option opts[] = {{"format", required_argument, 0, 'f'},
                                         {"output", required_argument, 0, 'o'},
                                         {"min-rating", required_argument, 0, 'r'},
                                         {"kcore", required_argument, 0, 'k'},
                                         {"kcore-once", no_argument, 0, OPT_KCORE_ONCE},
                                         {"user-map", required_argument, 0, OPT_USER_MAP},
                                         {"item-map", required_argument, 0, OPT_ITEM_MAP},
                                         {"low-ratings", required_argument, 0, OPT_LOW},
                                         {"keep-rating", no_argument, 0, OPT_KEEP_RATING},
                                         {"drop-rating", no_argument, 0, OPT_DROP_RATING},
                                         {"keep-time", no_argument, 0, OPT_KEEP_TIME},
                                         {"drop-time", no_argument, 0, OPT_DROP_TIME},
                                         {"strict", no_argument, 0, OPT_STRICT},
                                         {"sep", required_argument, 0, OPT_SEP},
                                         {"header", no_argument, 0, OPT_HEADER},
                                         {"user-col", required_argument, 0, OPT_USER_COL},
                                         {"item-col", required_argument, 0, OPT_ITEM_COL},
                                         {"rating-col", required_argument, 0, OPT_RATING_COL},
                                         {"time-col", required_argument, 0, OPT_TIME_COL},
                                         {"quiet", no_argument, 0, 'q'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    til_prep_opts o;
    til_prep_opts_default(&o);
    const char *out = "-", *user_map = NULL, *item_map = NULL, *low_path = NULL;
    int have_format = 0, quiet = 0, c;
    til_err e;
    while ((c = getopt_long(argc, argv, "f:o:r:k:qh", opts, NULL)) != -1) {
        switch (c) {
        case 'f':
            o.format = til_prep_format_parse(optarg);
            if (o.format < 0) {
                til_warn("--format: unknown format '%s'", optarg);
                usage(stderr);
                return TIL_EXIT_USAGE;
            }
            have_format = 1;
            break;
        case 'o': out = optarg; break;
        case 'r':
            if (til_parse_double(optarg, -1e30, 1e30, &o.min_rating, "--min-rating", &e)) {
                til_report(&e);
                return TIL_EXIT_USAGE;
            }
            o.min_rating_set = 1;
            break;
        case 'k':
            if (til_parse_int(optarg, 0, 1000000000, &o.kcore, "--kcore", &e)) {
                til_report(&e);
                return TIL_EXIT_USAGE;
            }
            break;
        case OPT_KCORE_ONCE: o.kcore_once = 1; break;
        case OPT_USER_MAP: user_map = optarg; break;
        case OPT_ITEM_MAP: item_map = optarg; break;
        case OPT_LOW:
            low_path = optarg;
            o.want_low = 1;
            break;
        case OPT_KEEP_RATING: o.keep_rating = 1; break;
        case OPT_DROP_RATING: o.keep_rating = 0; break;
        case OPT_KEEP_TIME: o.keep_time = 1; break;
        case OPT_DROP_TIME: o.keep_time = 0; break;
        case OPT_STRICT: o.strict = 1; break;
        case OPT_SEP:
            if (strcmp(optarg, "tab") == 0 || strcmp(optarg, "\t") == 0) {
                o.sep_kind = TIL_SEP_CHAR;
                o.sep = '\t';
            } else if (strcmp(optarg, "ws") == 0) {
                o.sep_kind = TIL_SEP_WS;
                o.sep = 0;
            } else if (strcmp(optarg, "::") == 0) {
                o.sep_kind = TIL_SEP_DCOLON;
                o.sep = 0;
            } else if (strlen(optarg) == 1 && optarg[0] != '\n' && optarg[0] != '\r') {
                o.sep_kind = TIL_SEP_CHAR;
                o.sep = optarg[0];
            } else {
                til_warn("--sep: '%s' is not one character, 'tab', 'ws' or '::'", optarg);
                usage(stderr);
                return TIL_EXIT_USAGE;
            }
            break;
        case OPT_HEADER: o.header = 1; break;
        case OPT_USER_COL:
            if (parse_col(optarg, &o.user_col))
                return TIL_EXIT_USAGE;
            break;
        case OPT_ITEM_COL:
            if (parse_col(optarg, &o.item_col))
                return TIL_EXIT_USAGE;
            break;
        case OPT_RATING_COL:
            if (parse_col(optarg, &o.rating_col))
                return TIL_EXIT_USAGE;
            break;
        case OPT_TIME_COL:
            if (parse_col(optarg, &o.time_col))
                return TIL_EXIT_USAGE;
            break;
        case 'q': quiet = 1; break;
        case 'h': usage(stdout); return til_close_stdout();
        default: usage(stderr); return TIL_EXIT_USAGE;
        }
    }
    if (!have_format) {
        til_warn("--format is required");
        usage(stderr);
        return TIL_EXIT_USAGE;
    }
    if (argc - optind > 1) {
        til_warn("one input at most");
        usage(stderr);
        return TIL_EXIT_USAGE;
    }
    if (til_prep_opts_check(&o, &e)) {
        til_report(&e);
        usage(stderr);
        return TIL_EXIT_USAGE;
    }
    const char *in = optind < argc ? argv[optind] : "-";

    int status = TIL_EXIT_DATA;
    til_inter t = {0}, low = {0};
    til_prep *p = til_prep_new(&o, &e);
    til_rd *r = p ? til_rd_open(in, &e) : NULL;
    if (!r || til_prep_read(p, r, &e) || til_prep_finish(p, &t, low_path ? &low : NULL, &e))
        goto out;
    if (!quiet)
        print_summary(til_prep_get_stats(p), til_rd_name(r));
    if (t.nnz == 0)
        til_warn("no interactions left%s", o.kcore > 0 ? " (try a smaller --kcore)" : "");
    if (til_inter_write(out, &t, &e))
        goto out;
    if (user_map && til_prep_write_map(p, 0, user_map, &e))
        goto out;
    if (item_map && til_prep_write_map(p, 1, item_map, &e))
        goto out;
    if (low_path) {
        if (til_inter_write(low_path, &low, &e))
            goto out;
        if (!quiet)
            fprintf(stderr, "%s: low ratings: %" PRIu64 " pairs rated below %g among the survivors\n", til_prog(),
                    low.nnz, o.min_rating_set ? o.min_rating : 4.0);
    }
    status = TIL_EXIT_OK;
out:
    if (status != TIL_EXIT_OK)
        til_report(&e);
    til_rd_close(&r);
    til_prep_free(&p);
    til_inter_free(&t);
    til_inter_free(&low);
    int cs = til_close_stdout();
    return status ? status : cs;
}

/* til-mkmodel: writes a random dot-product model file (for tests and
 * benchmarks; not part of the pipeline).
 *
 * Embeddings are N(0, scale^2) from til_rng seeded by --seed (stream 0 for
 * users, 1 for items), so the same flags give the same bytes. --int L draws
 * integers in [-L, L] instead: scores are then exact in float and tie often.
 * --from-train FILE makes a model that ranks like item-based collaborative
 * filtering, so metrics are far from zero: random user vectors r_u, item
 * vectors q_i = mean of r_u over the users who have i, user vectors p_u = mean
 * of q_i over the user's items. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "til_inter.h"
#include "til_io.h"
#include "til_model.h"
#include "til_rng.h"
#include "til_util.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: til-mkmodel --users N --items M [--dim D] [--seed S] [--scale X] [--int L]\n"
               "                   [--backbone NAME] [--meta KEY=VALUE ...] -o FILE\n"
               "Writes a random dot-product model (kind=model, tensors user, item) for tests and benchmarks.\n"
               "  --dim D         embedding size (default 64)\n"
               "  --seed S        random seed (default 1)\n"
               "  --scale X       standard deviation of the entries (default 0.1)\n"
               "  --int L         integer entries in [-L, L] instead (exact scores, many ties)\n"
               "  --from-train F  co-occurrence model from interactions F (sizes taken from F)\n"
               "  --backbone NAME meta backbone (default mf)\n"
               "  --meta K=V      extra metadata (repeatable), e.g. method=bpr seed=3\n"
               "  -o, --output F  output file ('-' = stdout)\n"
               "  -h, --help      this text\n");
}

int main(int argc, char **argv)
{
    til_setprog(argv[0]);
    til_io_cleanup_on_signals();
    static const struct option opts[] = {{"users", required_argument, 0, 'u'}, {"items", required_argument, 0, 'i'},
                                         {"dim", required_argument, 0, 'd'},   {"seed", required_argument, 0, 's'},
                                         {"scale", required_argument, 0, 'x'}, {"int", required_argument, 0, 'I'},
                                         {"backbone", required_argument, 0, 'b'}, {"from-train", required_argument, 0, 'F'},
                                         {"meta", required_argument, 0, 'm'},  {"output", required_argument, 0, 'o'},
                                         {"help", no_argument, 0, 'h'},        {0, 0, 0, 0}};
    til_err e;
    uint64_t nu = 0, ni = 0, d = 64, seed = 1;
    int lim = 0, c, have_u = 0, have_i = 0;
    double scale = 0.1;
    const char *out = NULL, *backbone = "mf", *from = NULL;
    const char *meta[64];
    int n_meta = 0;
    while ((c = getopt_long(argc, argv, "o:h", opts, NULL)) != -1) {
        int bad = 0;
        switch (c) {
        case 'u': bad = til_parse_u64(optarg, 1, UINT32_MAX, &nu, "--users", &e); have_u = 1; break;
        case 'i': bad = til_parse_u64(optarg, 1, UINT32_MAX, &ni, "--items", &e); have_i = 1; break;
        case 'd': bad = til_parse_u64(optarg, 1, 4096, &d, "--dim", &e); break;
        case 's': bad = til_parse_u64(optarg, 0, UINT64_MAX, &seed, "--seed", &e); break;
        case 'x': bad = til_parse_double(optarg, 0, 1e6, &scale, "--scale", &e); break;
        case 'I': bad = til_parse_int(optarg, 1, 1000, &lim, "--int", &e); break;
        case 'b': backbone = optarg; break;
        case 'F': from = optarg; break;
        case 'm':
            if (!strchr(optarg, '=') || n_meta == 64) {
                til_seterr(&e, "--meta wants KEY=VALUE (at most 64), got '%s'", optarg);
                bad = -1;
            } else
                meta[n_meta++] = optarg;
            break;
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
    til_inter tr = {0};
    if (from) {
        if (til_inter_read(from, &tr, &e)) {
            til_report(&e);
            return TIL_EXIT_DATA;
        }
        nu = tr.n_users;
        ni = tr.n_items;
        have_u = have_i = 1;
    }
    if (!have_u || !have_i || !out || optind != argc) {
        usage(stderr);
        return TIL_EXIT_USAGE;
    }
    til_model m;
    til_model_init(&m);
    int rc = -1;
    til_tensor *U, *V;
    if (til_model_set(&m, "kind", "model", &e) || til_model_set(&m, "backbone", backbone, &e) ||
        til_model_setf(&m, &e, "n_users", "%llu", (unsigned long long)nu) ||
        til_model_setf(&m, &e, "n_items", "%llu", (unsigned long long)ni) ||
        til_model_setf(&m, &e, "dim", "%llu", (unsigned long long)d))
        goto out;
    for (int k = 0; k < n_meta; k++) {
        char key[256];
        size_t kl = (size_t)(strchr(meta[k], '=') - meta[k]);
        if (kl == 0 || kl >= sizeof key) {
            til_seterr(&e, "--meta: bad key in '%s'", meta[k]);
            goto out;
        }
        memcpy(key, meta[k], kl);
        key[kl] = 0;
        if (til_model_set(&m, key, meta[k] + kl + 1, &e))
            goto out;
    }
    if (!(U = til_model_add(&m, "user", TIL_F32, nu, d, NULL, &e)) ||
        !(V = til_model_add(&m, "item", TIL_F32, ni, d, NULL, &e)))
        goto out;
    til_tensor *ts[2] = {U, V};
    for (int t = 0; t < 2; t++) {
        til_rng r;
        til_rng_seed(&r, seed, (uint64_t)t);
        float *x = ts[t]->data;
        for (uint64_t k = 0; k < ts[t]->rows * d; k++)
            x[k] = lim ? (float)((int64_t)til_rng_below(&r, 2 * (uint64_t)lim + 1) - lim)
                       : (float)(scale * til_rng_normal(&r));
    }
    if (from) {
        /* q_i = mean of r_u over users having i; p_u = mean of q_i over u's items */
        float *r = U->data, *q = V->data;
        float *p = til_calloc(nu * d, sizeof *p, &e);
        uint32_t *cnt = til_calloc(ni, sizeof *cnt, &e);
        if (!p || !cnt) {
            free(p);
            free(cnt);
            goto out;
        }
        memset(q, 0, ni * d * sizeof *q);
        for (uint32_t u = 0; u < nu; u++)
            for (uint64_t k = tr.indptr[u]; k < tr.indptr[u + 1]; k++) {
                uint32_t i = tr.items[k];
                cnt[i]++;
                for (uint64_t j = 0; j < d; j++)
                    q[i * d + j] += r[u * d + j];
            }
        for (uint32_t i = 0; i < ni; i++)
            for (uint64_t j = 0; j < d && cnt[i]; j++)
                q[i * d + j] /= (float)cnt[i];
        for (uint32_t u = 0; u < nu; u++) {
            uint64_t deg = til_inter_deg(&tr, u);
            for (uint64_t k = tr.indptr[u]; k < tr.indptr[u + 1]; k++)
                for (uint64_t j = 0; j < d; j++)
                    p[u * d + j] += q[tr.items[k] * d + j];
            for (uint64_t j = 0; j < d && deg; j++)
                p[u * d + j] /= (float)deg;
        }
        memcpy(r, p, nu * d * sizeof *p);
        free(p);
        free(cnt);
    }
    if (til_model_write(out, &m, &e))
        goto out;
    rc = 0;
out:
    if (rc)
        til_report(&e);
    til_model_free(&m);
    til_inter_free(&tr);
    int cs = til_close_stdout();
    return rc ? TIL_EXIT_DATA : cs;
}

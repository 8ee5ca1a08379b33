/* til-train: trains a recommender on an interaction file and writes the best
 * model (by validation Recall@K) as a model file (docs/FORMATS.md).
 *
 * Now: backbones mf, lightgcn (--layers), neumf, mgccf; method bpr, TIL's til-ui,
 * til-mi, til-mik (tools/lib/til_tilm.h) or a baseline
 * (til_baselines.h: wbpr, aobpr, pris, tce, rce, tce-bpr, rce-bpr); optimizers adam (PyTorch dense semantics,
 * exact lazy), lazy-adam (SparseAdam) and adam-eager (the dense reference).
 * All the work is in tools/lib/til_train.c; this main parses, loads, reports. */
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "til_adam.h"
#include "til_device.h"
#include "til_eval.h"
#include "til_inter.h"
#include "til_io.h"
#include "til_model.h"
#include "til_scorers.h"
#include "til_tilm.h"
#include "til_train.h"
#include "til_util.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: til-train --train FILE --valid FILE --out MODEL [options]\n"
            "Trains a recommender with early stopping on validation Recall@K; writes the best model.\n"
            "  --train FILE          training interactions (.til)\n"
            "  --valid FILE          validation interactions (.til), same users/items\n"
            "  --test FILE           also report test metrics of the best model (train+valid masked)\n"
            "  -o, --out FILE        model file to write (kind=model; tensors user, item)\n"
            "  --backbone NAME       mf, lightgcn, neumf, mgccf (default mf)\n"
            "  --layers N            lightgcn: propagation layers (1)\n"
                        "  --method NAME         bpr (default), or a baseline: wbpr (popularity negatives), aobpr (adaptive\n"
            "                        oversampling), pris (importance-sampled cluster negatives), tce, rce\n"
            "                        (point-wise BCE, truncated / reweighted), tce-bpr, rce-bpr (the same on BPR),\n"
            "                        or TIL: til-ui, til-mi, til-mik (options below)\n"
            "  --negatives N         pris: negatives per positive (5)\n"
            "  --pris-clusters K     pris: k-means clusters of items, refreshed every epoch (16)\n"
            "  --pris-within W       pris: uniform or pop sampling inside a cluster (uniform)\n"
            "  --pop-exponent A      wbpr, pris pop: item weight count^A (1)\n"
            "  --aobpr-lambda X      aobpr: rank distribution exp(-r/X) (500)\n"
            "  --aobpr-refresh N     aobpr: draws between factor-ordering refreshes (0: |I| ln |I|)\n"
            "  --drop-rate X         tce, tce-bpr: final drop rate, at most 0.5 (0.2)\n"
            "  --drop-warmup N       tce, tce-bpr: steps to reach it linearly (30000)\n"
            "  --rce-beta X          rce, rce-bpr: weight sigmoid(score)^X (0.2)\n"
            "  --optim NAME          adam: PyTorch Adam with dense gradients, exact lazy update (default)\n"
            "                        lazy-adam: only the batch's rows move (torch SparseAdam)\n"
            "                        adam-eager: the dense reference, every row every step (slow)\n"
            "  --dim N               embedding size (64)\n"
            "  --batch N             triplets per step (5000)\n"
            "  --lr X                Adam learning rate (1e-3)\n"
            "  --reg X               L2: reg*0.5*(|p_u|^2+|q_i|^2+|q_j|^2)/batch (1e-4)\n"
            "  --epochs N            at most N epochs (3000)\n"
            "  --eval-every N        validate every N epochs (1)\n"
            "  --patience N          stop when valid Recall@K has not improved for N epochs (100)\n"
            "  --topk K              K of Recall/NDCG@K (20)\n"
            "  --seed N              random seed (2020)\n"
            "  --threads N           threads (default: all cores); results do not depend on it\n"
            "  --device cpu|cuda     where to train (cpu); cuda: mf backbone with bpr only (docs/CUDA.md)\n"
            "  --log FILE            TSV: epoch loss train_s sample_s eval_s valid_recall valid_ndcg best_epoch best_recall\n"
            "  --checkpoint FILE     checkpoint every --checkpoint-every epochs, at the end, and on SIGINT/SIGTERM\n"
            "  --checkpoint-every N  epochs between checkpoints (0: only at the end / on a signal)\n"
            "  --resume FILE         continue from a checkpoint (bit-identical to an uninterrupted run)\n"
            "TIL methods (til-ui: Uni-Interest state; til-mi: Multi-Interest + DEC clustering; til-mik: k-means centers):\n"
            "  --alpha X             Multi-Interest mixing of the cluster center (1)\n"
            "  --clusters K          item clusters (60)\n"
            "  --tau X               Student-t degrees of freedom of the soft assignment (1)\n"
            "  --gamma X             weight of the clustering loss KL(T||Q), til-mi (0.1)\n"
            "  --pretrain-epochs N   epochs with the Uni-Interest state before clustering starts (500)\n"
            "  --cluster-update N    steps between refreshes of T and memberships / k-means centers (10)\n"
            "  --eta-update N        steps between refreshes of eta_u for all users (50)\n"
            "  --kmeans-iter N       til-mik: warm-started Lloyd iterations per refresh (3)\n"
            "  --virtual-lr X        look-ahead step beta (default: --lr)\n"
            "  --meta-lr X           Adam learning rate of the weight network (1e-3)\n"
            "  --meta-hidden N       hidden units of the weight network (default: --dim)\n"
            "  --meta-batch same|fresh  outer loss on the same batch or a fresh one (same)\n"
            "  --meta-holdout F      hold out round(F x n_u) of each user's training items (keeping >= 1)\n"
            "                        for the outer loss only; train on the rest (0: none)\n"
            "  --weight-norm none|batch weights divided by their batch mean (none)\n"
            "  --meta-path auto|generic|double  mf meta-gradient: float fast path (auto), the backbone-jvp\n"
            "                        path (generic), til_meta's double closed form (double)\n"
            "  --dump-weights FILE   after training: TSV user pos neg weight of one more epoch's triplets\n"
            "  --dump-sample N       only the first N (random) triplets of that epoch (0: all)\n"
            "  --dump-clusters FILE  after training: TSV item cluster (til-mi, til-mik)\n"
            "  -q, --quiet           no progress line and no info lines\n"
            "  -h, --help            this text\n"
            "Exit status: 0 ok, 1 data/runtime error or interrupted, 2 usage.\n");
}

static volatile sig_atomic_t stop_flag;
static struct sigaction old_int, old_term;

static void on_stop(int sig)
{
    stop_flag = 1;
    /* a second signal takes the previous action (remove temporaries, die) */
    sigaction(sig, sig == SIGINT ? &old_int : &old_term, NULL);
}

enum { O_TRAIN = 256, O_VALID, O_TEST, O_BACKBONE, O_METHOD, O_OPTIM, O_DIM, O_BATCH, O_LR, O_REG, O_EPOCHS,
       O_EVAL_EVERY, O_PATIENCE, O_TOPK, O_SEED, O_THREADS, O_LOG, O_CKPT, O_CKPT_EVERY, O_RESUME,
       O_LAYERS, O_NEGATIVES, O_PRIS_K, O_PRIS_WITHIN, O_POP_EXP, O_AO_LAMBDA, O_AO_REFRESH, O_DROP_RATE,
       O_DROP_WARMUP, O_RCE_BETA, O_DEVICE,
       O_ALPHA, O_CLUSTERS, O_TAU, O_GAMMA, O_PRETRAIN, O_CUPDATE, O_EUPDATE, O_KITER, O_VLR, O_MLR, O_MHIDDEN,
       O_MBATCH, O_WNORM, O_MPATH, O_DUMPW, O_DUMPS, O_DUMPC, O_MHOLD };

int main(int argc, char **argv)
{
    til_setprog(argv[0]);
    static const struct option opts[] = {
        {"train", required_argument, 0, O_TRAIN},       {"valid", required_argument, 0, O_VALID},
        {"test", required_argument, 0, O_TEST},         {"out", required_argument, 0, 'o'},
        {"backbone", required_argument, 0, O_BACKBONE}, {"method", required_argument, 0, O_METHOD},
        {"optim", required_argument, 0, O_OPTIM},       {"dim", required_argument, 0, O_DIM},
        {"batch", required_argument, 0, O_BATCH},       {"lr", required_argument, 0, O_LR},
        {"reg", required_argument, 0, O_REG},           {"epochs", required_argument, 0, O_EPOCHS},
        {"eval-every", required_argument, 0, O_EVAL_EVERY}, {"patience", required_argument, 0, O_PATIENCE},
        {"topk", required_argument, 0, O_TOPK},         {"seed", required_argument, 0, O_SEED},
        {"threads", required_argument, 0, O_THREADS},   {"log", required_argument, 0, O_LOG},
        {"checkpoint", required_argument, 0, O_CKPT},   {"checkpoint-every", required_argument, 0, O_CKPT_EVERY},
        {"resume", required_argument, 0, O_RESUME},     {"quiet", no_argument, 0, 'q'},
        {"layers", required_argument, 0, O_LAYERS},
        {"negatives", required_argument, 0, O_NEGATIVES}, {"pris-clusters", required_argument, 0, O_PRIS_K},
        {"pris-within", required_argument, 0, O_PRIS_WITHIN}, {"pop-exponent", required_argument, 0, O_POP_EXP},
        {"aobpr-lambda", required_argument, 0, O_AO_LAMBDA}, {"aobpr-refresh", required_argument, 0, O_AO_REFRESH},
        {"drop-rate", required_argument, 0, O_DROP_RATE}, {"drop-warmup", required_argument, 0, O_DROP_WARMUP},
        {"rce-beta", required_argument, 0, O_RCE_BETA}, {"device", required_argument, 0, O_DEVICE},
        {"alpha", required_argument, 0, O_ALPHA},       {"clusters", required_argument, 0, O_CLUSTERS},
        {"tau", required_argument, 0, O_TAU},           {"gamma", required_argument, 0, O_GAMMA},
        {"pretrain-epochs", required_argument, 0, O_PRETRAIN}, {"cluster-update", required_argument, 0, O_CUPDATE},
        {"eta-update", required_argument, 0, O_EUPDATE}, {"kmeans-iter", required_argument, 0, O_KITER},
        {"virtual-lr", required_argument, 0, O_VLR},    {"meta-lr", required_argument, 0, O_MLR},
        {"meta-hidden", required_argument, 0, O_MHIDDEN}, {"meta-batch", required_argument, 0, O_MBATCH},
        {"meta-holdout", required_argument, 0, O_MHOLD},
        {"weight-norm", required_argument, 0, O_WNORM}, {"meta-path", required_argument, 0, O_MPATH},
        {"dump-weights", required_argument, 0, O_DUMPW}, {"dump-sample", required_argument, 0, O_DUMPS},
        {"dump-clusters", required_argument, 0, O_DUMPC},
        {"help", no_argument, 0, 'h'},                  {0, 0, 0, 0}};
    til_train_cfg c;
    til_train_defaults(&c);
    til_tilm_opts to;
    til_tilm_defaults(&to);
    c.method_opts = &to;
    c.threads = til_ncpu();
    const char *train_p = NULL, *valid_p = NULL, *test_p = NULL, *out_p = NULL;
    int quiet = 0, ch;
    til_err e;
    int64_t v;
#define NUM(lo, hi, dst, what)                                                                                    \
    do {                                                                                                          \
        if (til_parse_i64(optarg, lo, hi, &v, what, &e)) {                                                        \
            til_report(&e);                                                                                       \
            usage(stderr);                                                                                        \
            return TIL_EXIT_USAGE;                                                                                \
        }                                                                                                         \
        dst = v;                                                                                                  \
    } while (0)
    while ((ch = getopt_long(argc, argv, "o:qh", opts, NULL)) != -1) {
        switch (ch) {
        case O_TRAIN: train_p = optarg; break;
        case O_VALID: valid_p = optarg; break;
        case O_TEST: test_p = optarg; break;
        case 'o': out_p = optarg; break;
        case O_BACKBONE: c.backbone = optarg; break;
        case O_METHOD: c.method = optarg; break;
        case O_OPTIM:
            if ((c.optim = til_adam_mode_parse(optarg)) < 0) {
                til_warn("--optim: unknown optimizer '%s' (adam, lazy-adam, adam-eager)", optarg);
                usage(stderr);
                return TIL_EXIT_USAGE;
            }
            break;
        case O_DIM: NUM(1, 1024, c.dim, "--dim"); break;
        case O_BATCH: NUM(1, 100000000, c.batch, "--batch"); break;
        case O_EPOCHS: NUM(1, 1000000, c.epochs, "--epochs"); break;
        case O_EVAL_EVERY: NUM(1, 1000000, c.eval_every, "--eval-every"); break;
        case O_PATIENCE: NUM(1, 1000000, c.patience, "--patience"); break;
        case O_TOPK: NUM(1, 10000, c.topk, "--topk"); break;
        case O_SEED: NUM(0, INT64_MAX, c.seed, "--seed"); break;
        case O_THREADS: NUM(1, 256, c.threads, "--threads"); break;
        case O_CKPT_EVERY: NUM(0, 1000000, c.checkpoint_every, "--checkpoint-every"); break;
        case O_LAYERS: NUM(1, 16, c.layers, "--layers"); break;
        case O_LR:
        case O_REG: {
            double x;
            if (til_parse_double(optarg, 0, 1e6, &x, ch == O_LR ? "--lr" : "--reg", &e) || (ch == O_LR && x <= 0)) {
                if (ch == O_LR && x <= 0)
                    til_seterr(&e, "--lr: must be > 0");
                til_report(&e);
                usage(stderr);
                return TIL_EXIT_USAGE;
            }
            if (ch == O_LR)
                c.lr = x;
            else
                c.reg = x;
            break;
        }
        case O_DEVICE:
            if ((c.device = til_device_parse(optarg)) < 0) {
                til_warn("--device: unknown device '%s' (cpu, cuda)", optarg);
                usage(stderr);
                return TIL_EXIT_USAGE;
            }
            break;
        case O_NEGATIVES: NUM(1, 1000, c.bl.negatives, "--negatives"); break;
        case O_PRIS_K: NUM(1, 1024, c.bl.pris_clusters, "--pris-clusters"); break;
        case O_AO_REFRESH: NUM(0, INT64_MAX, c.bl.aobpr_refresh, "--aobpr-refresh"); break;
        case O_DROP_WARMUP: NUM(0, INT64_MAX, c.bl.drop_warmup, "--drop-warmup"); break;
        case O_PRIS_WITHIN:
            if (strcmp(optarg, "uniform") && strcmp(optarg, "pop")) {
                til_warn("--pris-within: uniform or pop, not '%s'", optarg);
                usage(stderr);
                return TIL_EXIT_USAGE;
            }
            c.bl.pris_pop = !strcmp(optarg, "pop");
            break;
        case O_POP_EXP:
        case O_AO_LAMBDA:
        case O_DROP_RATE:
        case O_RCE_BETA: {
            const char *what = ch == O_POP_EXP ? "--pop-exponent" : ch == O_AO_LAMBDA ? "--aobpr-lambda"
                             : ch == O_DROP_RATE ? "--drop-rate" : "--rce-beta";
            double x, hi = ch == O_DROP_RATE ? 0.5 : 1e9;
            if (til_parse_double(optarg, 0, hi, &x, what, &e) || (ch == O_AO_LAMBDA && x <= 0)) {
                if (ch == O_AO_LAMBDA && x <= 0)
                    til_seterr(&e, "--aobpr-lambda: must be > 0");
                til_report(&e);
                usage(stderr);
                return TIL_EXIT_USAGE;
            }
            *(ch == O_POP_EXP ? &c.bl.pop_exp : ch == O_AO_LAMBDA ? &c.bl.aobpr_lambda
              : ch == O_DROP_RATE ? &c.bl.drop_rate : &c.bl.beta) = x;
            break;
        }
        case O_CLUSTERS: NUM(1, 1024, to.clusters, "--clusters"); break;
        case O_PRETRAIN: NUM(0, 1000000, to.pretrain_epochs, "--pretrain-epochs"); break;
        case O_CUPDATE: NUM(1, 1000000000, to.cluster_update, "--cluster-update"); break;
        case O_EUPDATE: NUM(1, 1000000000, to.eta_update, "--eta-update"); break;
        case O_KITER: NUM(1, 100000, to.kmeans_iter, "--kmeans-iter"); break;
        case O_MHIDDEN: NUM(1, 4096, to.hidden, "--meta-hidden"); break;
        case O_DUMPS: NUM(0, INT64_MAX, to.dump_sample, "--dump-sample"); break;
        case O_MHOLD: {
            double x;
            if (til_parse_double(optarg, 0, 1, &x, "--meta-holdout", &e) || x >= 1) {
                if (x >= 1)
                    til_seterr(&e, "--meta-holdout: must be < 1");
                til_report(&e);
                usage(stderr);
                return TIL_EXIT_USAGE;
            }
            to.meta_holdout = x;
            break;
        }
        case O_ALPHA:
        case O_TAU:
        case O_GAMMA:
        case O_VLR:
        case O_MLR: {
            static const char *names[] = {"--alpha", "--tau", "--gamma", "--virtual-lr", "--meta-lr"};
            double *dst[] = {&to.alpha, &to.tau, &to.gamma, &to.virtual_lr, &to.meta_lr};
            int k = ch == O_ALPHA ? 0 : ch == O_TAU ? 1 : ch == O_GAMMA ? 2 : ch == O_VLR ? 3 : 4;
            double x;
            if (til_parse_double(optarg, 0, 1e6, &x, names[k], &e) || ((k == 1 || k >= 3) && x <= 0)) {
                if (x <= 0)
                    til_seterr(&e, "%s: must be > 0", names[k]);
                til_report(&e);
                usage(stderr);
                return TIL_EXIT_USAGE;
            }
            *dst[k] = x;
            break;
        }
        case O_MBATCH:
        case O_WNORM:
        case O_MPATH: {
            static const char *names[] = {"--meta-batch", "--weight-norm", "--meta-path"};
            static const char *vals[][3] = {{"same", "fresh", ""}, {"none", "batch", ""}, {"auto", "generic", "double"}};
            int *dst[] = {&to.meta_fresh, &to.weight_norm, &to.meta_path};
            int k = ch == O_MBATCH ? 0 : ch == O_WNORM ? 1 : 2, v = -1;
            for (int q = 0; q < 3; q++)
                if (vals[k][q][0] && !strcmp(optarg, vals[k][q]))
                    v = q;
            if (v < 0) {
                til_warn("%s: '%s' is not one of %s %s %s", names[k], optarg, vals[k][0], vals[k][1], vals[k][2]);
                usage(stderr);
                return TIL_EXIT_USAGE;
            }
            *dst[k] = v;
            break;
        }
        case O_DUMPW: to.dump_weights = optarg; break;
        case O_DUMPC: to.dump_clusters = optarg; break;
        case O_LOG: c.log_path = optarg; break;
        case O_CKPT: c.checkpoint_path = optarg; break;
        case O_RESUME: c.resume_path = optarg; break;
        case 'q': quiet = 1; break;
        case 'h': usage(stdout); return til_close_stdout();
        default: usage(stderr); return TIL_EXIT_USAGE;
        }
    }
    if (optind != argc || !train_p || !valid_p || !out_p) {
        if (optind != argc)
            til_warn("unexpected argument '%s'", argv[optind]);
        else
            til_warn("--train, --valid and --out are required");
        usage(stderr);
        return TIL_EXIT_USAGE;
    }
    if (c.device == TIL_DEVICE_CUDA && (strcmp(c.backbone, "mf") || strcmp(c.method, "bpr"))) {
        til_warn("--device cuda: backbone %s with method %s is not yet on cuda (mf with bpr is)", c.backbone,
                 c.method);
        usage(stderr);
        return TIL_EXIT_USAGE;
    }
    til_io_cleanup_on_signals();
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    c.stop = &stop_flag;
    c.progress = !quiet && isatty(2);
    c.info = quiet ? NULL : stderr;

    til_inter tr = {0}, va = {0}, te = {0};
    til_model m;
    til_model_init(&m);
    int status = TIL_EXIT_DATA;
    if (til_inter_read(train_p, &tr, &e) || til_inter_read(valid_p, &va, &e) ||
        (test_p && (til_inter_read(test_p, &te, &e) || til_inter_same_shape(&tr, train_p, &te, test_p, &e))) ||
        til_inter_same_shape(&tr, train_p, &va, valid_p, &e)) {
        til_report(&e);
        goto out;
    }
    double t0 = til_now();
    til_train_result r;
    int rc = til_train_run(&c, &tr, &va, &m, &r, &e);
    if (rc) {
        til_report(&e);
        goto out;
    }
    if (til_model_write(out_p, &m, &e)) {
        til_report(&e);
        goto out;
    }
    char rss[32];
    if (!quiet)
        fprintf(stderr,
                "%s: best epoch %d of %d (%s): valid Recall@%d %.6f NDCG@%d %.6f; %.1f s (train %.1f, sample %.1f, "
                "eval %.1f), median %.3f s/epoch (batch loop, epochs 2..); peak RSS %s\n",
                til_prog(), r.best_epoch, r.epochs_run, r.stopped_early ? "early stop" : "max epochs", c.topk,
                r.best_recall, c.topk, r.best_ndcg, til_now() - t0, r.train_s, r.sample_s, r.eval_s, r.median_epoch_s,
                til_fmt_bytes(til_peak_rss(), rss, sizeof rss));
    if (test_p) {
        til_scorer s;
        til_eval_opts eo = {.ks = {c.topk}, .n_k = 1, .threads = c.threads, .block = 0, .device = c.device};
        til_eval_result er;
        if (til_scorer_from_model(&m, out_p, &s, &e) ||
            til_eval_run(&s, &tr, &va, &te, &eo, &er, NULL, &e)) {
            til_scorer_release(&s);
            til_report(&e);
            goto out;
        }
        til_scorer_release(&s);
        printf("test\tepoch\t%d\trecall@%d\t%.6f\tndcg@%d\t%.6f\tusers\t%" PRIu64 "\n", r.best_epoch, c.topk,
               er.recall[0], c.topk, er.ndcg[0], er.n_users);
    }
    status = TIL_EXIT_OK;
out:
    til_model_free(&m);
    til_inter_free(&tr);
    til_inter_free(&va);
    til_inter_free(&te);
    int cs = til_close_stdout();
    return status ? status : cs;
}

/* til_neumf: NeuMF pair forward/backward, the backbone, the scorer (maths in
 * til_neumf.h).
 *
 * Training: scores per triplet in parallel; the backward recomputes each
 * pair's pre-activations and accumulates the tower gradient per fixed chunk of
 * NEUMF_CHUNK triplets (chunks reduced in order: the bits do not depend on the
 * thread count); the embedding rows reuse MF's prepare/backward (an MF
 * backbone whose parameter table is borrowed from ours). */
#pragma GCC optimize("vect-cost-model=dynamic")
#include "til_neumf.h"

#include <stdlib.h>
#include <string.h>

#include "til_backbone.h"
#include "til_eval.h"
#include "til_model.h"
#include "til_par.h"
#include "til_sampler.h"

#define NEUMF_CHUNK 64u

uint64_t til_neumf_tower_size(int D)
{
    uint64_t h = (uint64_t)D / 2, h2 = h / 2;
    return (uint64_t)D * h + h + h * h2 + h2 + (h + h2) + 1;
}

void til_neumf_net_view(til_neumf_net *n, int D, const float *t)
{
    int h = D / 2, h2 = h / 2;
    n->D = D;
    n->h = h;
    n->W1 = t;
    n->b1 = n->W1 + (uint64_t)D * h;
    n->W2 = n->b1 + h;
    n->b2 = n->W2 + (uint64_t)h * h2;
    n->wp = n->b2 + h2;
    n->bp = n->wp + h + h2;
}

/* Forward of one pair; z1 [h], z2 [h/2]: pre-activations (kept for backward).
 *   z1 = b1 + W1^T [pu_mlp; qi_mlp];  z2 = b2 + W2^T relu(z1)
 *   y  = bp + wp[0..h) . (pu_gmf * qi_gmf) + wp[h..) . relu(z2) */
static float pair_fwd(const til_neumf_net *n, const float *restrict pu, const float *restrict qi, float *restrict z1,
                      float *restrict z2)
{
    int h = n->h, h2 = h / 2;
    for (int j = 0; j < h; j++)
        z1[j] = n->b1[j];
    for (int k = 0; k < h; k++) {
        const float *restrict w = n->W1 + (uint64_t)k * h;
        float x = pu[h + k];
        for (int j = 0; j < h; j++)
            z1[j] += x * w[j];
    }
    for (int k = 0; k < h; k++) {
        const float *restrict w = n->W1 + (uint64_t)(h + k) * h;
        float x = qi[h + k];
        for (int j = 0; j < h; j++)
            z1[j] += x * w[j];
    }
    for (int j = 0; j < h2; j++)
        z2[j] = n->b2[j];
    for (int k = 0; k < h; k++) {
        const float *restrict w = n->W2 + (uint64_t)k * h2;
        float a = z1[k] > 0 ? z1[k] : 0.0f;
        for (int j = 0; j < h2; j++)
            z2[j] += a * w[j];
    }
    float s = n->bp[0];
    for (int k = 0; k < h; k++)
        s += n->wp[k] * (pu[k] * qi[k]);
    for (int j = 0; j < h2; j++)
        s += n->wp[h + j] * (z2[j] > 0 ? z2[j] : 0.0f);
    return s;
}

float til_neumf_score(const til_neumf_net *n, const float *pu, const float *qi)
{
    float z1[512], z2[256];
    return pair_fwd(n, pu, qi, z1, z2);
}

/* Backward of one pair with dL/dy = ds: adds into dpu, dqi [D] and the tower
 * gradient tg (packed like the tower):
 *   dwp = ds [g; a2], dbp = ds;  dg = ds wp[0..h): dpu_gmf += dg qi, dqi_gmf += dg pu
 *   dz2 = ds wp[h..) * [z2 > 0];  dW2 += a1 dz2^T;  db2 += dz2
 *   dz1 = (W2 dz2) * [z1 > 0];    dW1 += x dz1^T;   db1 += dz1;  d[pu_mlp; qi_mlp] += W1 dz1 */
static void pair_bwd(const til_neumf_net *n, const float *restrict pu, const float *restrict qi, const float *z1,
                     const float *z2, float ds, float *restrict dpu, float *restrict dqi, float *restrict tg)
{
    int D = n->D, h = n->h, h2 = h / 2;
    float *gW1 = tg, *gb1 = gW1 + (uint64_t)D * h, *gW2 = gb1 + h, *gb2 = gW2 + (uint64_t)h * h2, *gwp = gb2 + h2,
          *gbp = gwp + h + h2;
    float dz2[256], dz1[512];
    gbp[0] += ds;
    for (int k = 0; k < h; k++) {
        gwp[k] += ds * (pu[k] * qi[k]);
        float dg = ds * n->wp[k];
        dpu[k] += dg * qi[k];
        dqi[k] += dg * pu[k];
    }
    for (int j = 0; j < h2; j++) {
        gwp[h + j] += ds * (z2[j] > 0 ? z2[j] : 0.0f);
        dz2[j] = z2[j] > 0 ? ds * n->wp[h + j] : 0.0f;
        gb2[j] += dz2[j];
    }
    for (int k = 0; k < h; k++) {
        float a = z1[k] > 0 ? z1[k] : 0.0f, s = 0;
        const float *restrict w = n->W2 + (uint64_t)k * h2;
        float *restrict gw = gW2 + (uint64_t)k * h2;
        for (int j = 0; j < h2; j++) {
            gw[j] += a * dz2[j];
            s += w[j] * dz2[j];
        }
        dz1[k] = z1[k] > 0 ? s : 0.0f;
    }
    for (int j = 0; j < h; j++)
        gb1[j] += dz1[j];
    for (int k = 0; k < D; k++) {
        float x = k < h ? pu[h + k] : qi[k], s = 0;
        const float *restrict w = n->W1 + (uint64_t)k * h;
        float *restrict gw = gW1 + (uint64_t)k * h;
        for (int j = 0; j < h; j++) {
            gw[j] += x * dz1[j];
            s += w[j] * dz1[j];
        }
        if (k < h)
            dpu[h + k] += s;
        else
            dqi[k] += s;
    }
}

/* ------------------------------------------------------------------ scorer */

typedef struct nscore {
    til_neumf_net net;
    const float *U, *V;
    uint32_t n_items;
    float *B; /* n_items x h: b1 + W1[h..D)^T q_i[h..D) */
    float *Bk; /* h = 32 (D = 64): per block of 16 items, B (h x 16) then the GMF
                  halves q_i[0..h) (h x 16), item-minor; the last block zero-padded */
} nscore;

/* a user's share of every item's score: A = W1[0..h)^T p_u[h..D) (the MLP
 * half's first layer, k increasing) and gw = wp[0..h) * p_u[0..h) (GMF) */
static inline void user_terms(const til_neumf_net *n, const float *restrict pu, int h, float *restrict A,
                              float *restrict gw)
{
    for (int j = 0; j < h; j++)
        A[j] = 0.0f;
    for (int k = 0; k < h; k++) {
        const float *restrict w = n->W1 + (uint64_t)k * h;
        for (int j = 0; j < h; j++)
            A[j] += pu[h + k] * w[j];
    }
    for (int k = 0; k < h; k++)
        gw[k] = n->wp[k] * pu[k];
}

/* D = 64: 16 items at a time, one item per vector lane (gcc vector extension),
 * so each lane does what nscore_user does for its item, in the same order:
 * bit-identical to it. */
typedef float v16f __attribute__((vector_size(64)));
typedef int32_t v16i __attribute__((vector_size(64)));
static void nscore_user_blocks(const nscore *c, const float *restrict pu, float *restrict out)
{
    enum { H = 32, H2 = 16, L = 16 };
    const til_neumf_net *n = &c->net;
    float A[H], gw[H];
    user_terms(n, pu, H, A, gw);
    uint32_t nb = (c->n_items + L - 1) / L;
    const v16f zero = {0};
    for (uint32_t blk = 0; blk < nb; blk++) {
        const float *Bb = c->Bk + (uint64_t)blk * 2 * H * L, *Qb = Bb + H * L;
        v16f z2[H2];
        for (int j = 0; j < H2; j++)
            z2[j] = zero + n->b2[j];
        for (int k = 0; k < H; k++) {
            v16f a;
            memcpy(&a, Bb + k * L, sizeof a);
            a = A[k] + a;
            a = (v16f)((v16i)a & (a > zero)); /* a > 0 ? a : 0 */
            const float *restrict w = n->W2 + (uint64_t)k * H2;
            for (int j = 0; j < H2; j++)
                z2[j] = z2[j] + a * w[j];
        }
        v16f sv = zero + n->bp[0], q;
        for (int k = 0; k < H; k++) {
            memcpy(&q, Qb + k * L, sizeof q);
            sv = sv + gw[k] * q;
        }
        for (int j = 0; j < H2; j++)
            sv = sv + n->wp[H + j] * (v16f)((v16i)z2[j] & (z2[j] > zero));
        uint32_t i0 = blk * L, m = c->n_items - i0 < L ? c->n_items - i0 : L;
        memcpy(out + i0, &sv, m * sizeof(float));
    }
}

/* out[r][i] for users[r] against every item: a1 = relu(A_u + B_i) with
 * A_u = W1[0..h)^T p_u[h..D) computed once per user, then as pair_fwd. */
static inline void nscore_user(const nscore *c, const float *restrict pu, float *restrict out, int h)
{
    const til_neumf_net *n = &c->net;
    int D = 2 * h, h2 = h / 2;
    float A[512], gw[512];
    user_terms(n, pu, h, A, gw);
    for (uint32_t i = 0; i < c->n_items; i++) {
        const float *restrict qi = c->V + (uint64_t)i * D, *restrict Bi = c->B + (uint64_t)i * h;
        float z2[256];
        for (int j = 0; j < h2; j++)
            z2[j] = n->b2[j];
        for (int k = 0; k < h; k++) {
            float a = A[k] + Bi[k];
            a = a > 0 ? a : 0.0f;
            const float *restrict w = n->W2 + (uint64_t)k * h2;
            for (int j = 0; j < h2; j++)
                z2[j] += a * w[j];
        }
        float s = n->bp[0];
        for (int k = 0; k < h; k++)
            s += gw[k] * qi[k];
        for (int j = 0; j < h2; j++)
            s += n->wp[h + j] * (z2[j] > 0 ? z2[j] : 0.0f);
        out[i] = s;
    }
}

static int nscore_fn(void *ctx, const uint32_t *users, int n, float *out, til_err *e)
{
    (void)e;
    const nscore *c = ctx;
    int h = c->net.h;
    for (int r = 0; r < n; r++) {
        const float *pu = c->U + (uint64_t)users[r] * (2 * h);
        float *o = out + (uint64_t)r * c->n_items;
        if (c->Bk)
            nscore_user_blocks(c, pu, o);
        else if (h == 32)
            nscore_user(c, pu, o, 32);
        else if (h == 64)
            nscore_user(c, pu, o, 64);
        else
            nscore_user(c, pu, o, h);
    }
    return 0;
}

typedef struct {
    nscore *c;
} itemb_job;

static void itemb_part(void *ctx, int part, uint64_t lo, uint64_t hi)
{
    (void)part;
    nscore *c = ((itemb_job *)ctx)->c;
    const til_neumf_net *n = &c->net;
    int h = n->h, D = n->D;
    for (uint64_t i = lo; i < hi; i++) {
        float *Bi = c->B + i * h;
        const float *qi = c->V + i * D;
        for (int j = 0; j < h; j++)
            Bi[j] = n->b1[j];
        for (int k = 0; k < h; k++) {
            const float *w = n->W1 + (uint64_t)(h + k) * h;
            for (int j = 0; j < h; j++)
                Bi[j] += qi[h + k] * w[j];
        }
    }
}

int til_neumf_scorer(til_scorer *s, const til_neumf_net *net, const float *U, const float *V, uint32_t n_users,
                     uint32_t n_items, int threads, til_err *e)
{
    memset(s, 0, sizeof *s);
    if (net->D % 4 || net->D < 4 || net->D > 1024)
        return til_seterr(e, "neumf: dim %d must be a multiple of 4 in 4..1024", net->D);
    nscore *c = til_calloc(1, sizeof *c, e);
    if (!c)
        return -1;
    c->net = *net;
    c->U = U;
    c->V = V;
    c->n_items = n_items;
    if (!(c->B = til_aligned_calloc((uint64_t)n_items * net->h, sizeof(float), e))) {
        free(c);
        return -1;
    }
    itemb_job j = {c};
    til_par_for(threads < 1 ? 1 : threads, n_items, itemb_part, &j);
    const char *gen = getenv("TIL_NEUMF_GENERIC"); /* 1: the per-item loop at D = 64 too (tests) */
    if (net->h == 32 && !(gen && *gen == '1')) {
        enum { H = 32, L = 16 };
        uint64_t nb = ((uint64_t)n_items + L - 1) / L;
        if (!(c->Bk = til_aligned_calloc(nb * 2 * H * L, sizeof(float), e))) {
            free(c->B);
            free(c);
            return -1;
        }
        for (uint64_t i = 0; i < n_items; i++) {
            float *Bb = c->Bk + (i / L) * 2 * H * L;
            for (int k = 0; k < H; k++) {
                Bb[k * L + i % L] = c->B[i * H + k];
                Bb[(H + k) * L + i % L] = V[i * (uint64_t)net->D + k];
            }
        }
    }
    s->n_users = n_users;
    s->n_items = n_items;
    s->score = nscore_fn;
    s->ctx = c;
    s->dim = 0;
    return 0;
}

void til_neumf_scorer_free(til_scorer *s)
{
    if (s->score == nscore_fn && s->ctx) {
        nscore *c = s->ctx;
        free(c->B);
        free(c->Bk);
        free(c);
    }
    memset(s, 0, sizeof *s);
}

/* ------------------------------------------------------------------ the backbone */

typedef struct neumf {
    til_backbone mf;    /* rows and reductions of the embedding rows; mf.param borrows ours */
    uint64_t n_emb;     /* n_users + n_items */
    uint64_t tower_n, tower_rows;
    til_neumf_net net;  /* views into bb->param after the embedding rows */
    uint32_t *rows;     /* the batch's embedding rows, then the tower rows */
    float *tg;          /* chunks x tower_n: per-chunk tower gradients */
    float *tsum;        /* tower_n: their sum in chunk order */
    uint64_t cap;
    til_scorer sc;      /* evaluation scorer (rebuilt at each request) */
    int32_t *jat;       /* score_jvp (allocated by its first call): n_emb, row -> index or -1 */
    float *jT;          /* (tower_rows + 1) x D: the tower's direction, then a zero row */
} neumf;

static int nm_prepare(til_backbone *bb, const til_batch *b, til_err *e)
{
    neumf *m = bb->impl;
    if (m->mf.ops->prepare(&m->mf, b, e))
        return -1;
    memcpy(m->rows, m->mf.rows, m->mf.n_rows * sizeof *m->rows);
    for (uint64_t k = 0; k < m->tower_rows; k++)
        m->rows[m->mf.n_rows + k] = (uint32_t)(m->n_emb + k);
    bb->rows = m->rows;
    bb->n_rows = m->mf.n_rows + m->tower_rows;
    return 0;
}

static int nm_forward(til_backbone *bb, const til_batch *b, int threads, til_err *e)
{
    (void)b, (void)threads, (void)e;
    bb->U = bb->param;
    bb->V = bb->param + (uint64_t)bb->n_users * bb->dim;
    return 0;
}

typedef struct {
    til_backbone *bb;
    const til_batch *b;
    float *s_pos, *s_neg;
    const float *g_pos, *g_neg;
    float *dU, *dQi, *dQj;
} nm_job;

static void nm_score_part(void *ctx, int part, uint64_t lo, uint64_t hi)
{
    (void)part;
    nm_job *j = ctx;
    const neumf *m = j->bb->impl;
    int D = j->bb->dim;
    float z1[512], z2[256];
    for (uint64_t t = lo; t < hi; t++) {
        const float *pu = j->bb->U + (uint64_t)j->b->u[t] * D;
        j->s_pos[t] = pair_fwd(&m->net, pu, j->bb->V + (uint64_t)j->b->i[t] * D, z1, z2);
        j->s_neg[t] = pair_fwd(&m->net, pu, j->bb->V + (uint64_t)j->b->j[t] * D, z1, z2);
    }
}

static int nm_score(til_backbone *bb, const til_batch *b, float *s_pos, float *s_neg, int threads, til_err *e)
{
    (void)e;
    nm_job j = {bb, b, s_pos, s_neg, NULL, NULL, NULL, NULL, NULL};
    til_par_for(b->n < 256 ? 1 : threads, b->n, nm_score_part, &j);
    return 0;
}

/* chunks [lo, hi): triplets [c*CHUNK, (c+1)*CHUNK) each, tower gradient into tg[c] */
static void nm_bwd_part(void *ctx, int part, uint64_t lo, uint64_t hi)
{
    (void)part;
    nm_job *j = ctx;
    const neumf *m = j->bb->impl;
    int D = j->bb->dim;
    float z1[512], z2[256];
    for (uint64_t c = lo; c < hi; c++) {
        float *tg = m->tg + c * m->tower_n;
        memset(tg, 0, m->tower_n * sizeof(float));
        uint64_t t1 = TIL_MIN((c + 1) * NEUMF_CHUNK, j->b->n);
        for (uint64_t t = c * NEUMF_CHUNK; t < t1; t++) {
            const float *pu = j->bb->U + (uint64_t)j->b->u[t] * D;
            const float *qi = j->bb->V + (uint64_t)j->b->i[t] * D, *qj = j->bb->V + (uint64_t)j->b->j[t] * D;
            float *du = j->dU + t * D, *di = j->dQi + t * D, *dj = j->dQj + t * D;
            memset(du, 0, (size_t)D * sizeof(float));
            memset(di, 0, (size_t)D * sizeof(float));
            memset(dj, 0, (size_t)D * sizeof(float));
            pair_fwd(&m->net, pu, qi, z1, z2);
            pair_bwd(&m->net, pu, qi, z1, z2, j->g_pos[t], du, di, tg);
            pair_fwd(&m->net, pu, qj, z1, z2);
            pair_bwd(&m->net, pu, qj, z1, z2, j->g_neg[t], du, dj, tg);
        }
    }
}

static int nm_score_backward(til_backbone *bb, const til_batch *b, const float *g_pos, const float *g_neg, float *dU,
                             float *dQi, float *dQj, int threads, til_err *e)
{
    neumf *m = bb->impl;
    if (b->n > m->cap)
        return til_seterr(e, "neumf: batch of %llu > capacity", (unsigned long long)b->n);
    uint64_t nc = (b->n + NEUMF_CHUNK - 1) / NEUMF_CHUNK;
    nm_job j = {bb, b, NULL, NULL, g_pos, g_neg, dU, dQi, dQj};
    til_par_for(nc < 4 ? 1 : threads, nc, nm_bwd_part, &j);
    /* chunk order, whatever the threads */
    memcpy(m->tsum, m->tg, m->tower_n * sizeof(float));
    for (uint64_t c = 1; c < nc; c++) {
        const float *restrict src = m->tg + c * m->tower_n;
        for (uint64_t k = 0; k < m->tower_n; k++)
            m->tsum[k] += src[k];
    }
    return 0;
}

static int nm_backward(til_backbone *bb, const til_batch *b, const float *dU, const float *dQi, const float *dQj,
                       float reg_c, float *G, double *l2, int threads, til_err *e)
{
    neumf *m = bb->impl;
    if (m->mf.ops->backward(&m->mf, b, dU, dQi, dQj, reg_c, G, l2, threads, e))
        return -1;
    float *gt = G + m->mf.n_rows * (uint64_t)bb->dim;
    memset(gt, 0, m->tower_rows * (uint64_t)bb->dim * sizeof(float));
    memcpy(gt, m->tsum, m->tower_n * sizeof(float));
    return 0;
}

/* ------------------------------------------------------------------ forward-mode (TIL) */

/* Tangent of one pair's score: the pair at (pu, qi, net) moved along (dpu,
 * dqi, dnet) (dnet: the tower's direction, packed like the tower):
 *   dz1 = db1 + dW1^T x + W1^T dx;        da1 = dz1 [z1 > 0]
 *   dz2 = db2 + dW2^T a1 + W2^T da1;      da2 = dz2 [z2 > 0]
 *   dy  = dbp + dwp . [g; a2] + wp[0..h) . (dpu_g qi_g + pu_g dqi_g) + wp[h..) . da2 */
static float pair_jvp(const til_neumf_net *n, const til_neumf_net *dn, const float *restrict pu,
                      const float *restrict qi, const float *restrict dpu, const float *restrict dqi)
{
    int h = n->h, h2 = h / 2;
    float z1[512], z2[256], dz1[512], dz2[256];
    pair_fwd(n, pu, qi, z1, z2);
    for (int j = 0; j < h; j++)
        dz1[j] = dn->b1[j];
    for (int k = 0; k < 2 * h; k++) {
        float x = k < h ? pu[h + k] : qi[k], dx = k < h ? dpu[h + k] : dqi[k];
        const float *restrict w = n->W1 + (uint64_t)k * h, *restrict dw = dn->W1 + (uint64_t)k * h;
        for (int j = 0; j < h; j++)
            dz1[j] += x * dw[j] + dx * w[j];
    }
    for (int j = 0; j < h2; j++)
        dz2[j] = dn->b2[j];
    for (int k = 0; k < h; k++) {
        float a = z1[k] > 0 ? z1[k] : 0.0f, da = z1[k] > 0 ? dz1[k] : 0.0f;
        const float *restrict w = n->W2 + (uint64_t)k * h2, *restrict dw = dn->W2 + (uint64_t)k * h2;
        for (int j = 0; j < h2; j++)
            dz2[j] += a * dw[j] + da * w[j];
    }
    float s = dn->bp[0];
    for (int k = 0; k < h; k++)
        s += dn->wp[k] * (pu[k] * qi[k]) + n->wp[k] * (dpu[k] * qi[k] + pu[k] * dqi[k]);
    for (int j = 0; j < h2; j++)
        if (z2[j] > 0)
            s += dn->wp[h + j] * z2[j] + n->wp[h + j] * dz2[j];
    return s;
}

typedef struct {
    til_backbone *bb;
    const til_batch *b;
    const float *Dir; /* rows' directions */
    const int32_t *at; /* n_emb: embedding row -> index into Dir, or -1 */
    const float *zero; /* D zeros */
    til_neumf_net dn;  /* the tower's direction */
    float *ds_pos, *ds_neg;
} nj_job;

static void nm_sjvp_part(void *ctx, int part, uint64_t lo, uint64_t hi)
{
    (void)part;
    nj_job *j = ctx;
    const neumf *m = j->bb->impl;
    uint64_t D = (uint64_t)j->bb->dim, nu = j->bb->n_users;
    for (uint64_t t = lo; t < hi; t++) {
        uint64_t r3[3] = {j->b->u[t], nu + j->b->i[t], nu + j->b->j[t]};
        const float *d3[3];
        for (int q = 0; q < 3; q++)
            d3[q] = j->at[r3[q]] >= 0 ? j->Dir + (uint64_t)j->at[r3[q]] * D : j->zero;
        const float *pu = j->bb->param + r3[0] * D;
        j->ds_pos[t] = pair_jvp(&m->net, &j->dn, pu, j->bb->param + r3[1] * D, d3[0], d3[1]);
        j->ds_neg[t] = pair_jvp(&m->net, &j->dn, pu, j->bb->param + r3[2] * D, d3[0], d3[2]);
    }
}

/* score_jvp: the listed rows' directions through the head (embedding rows by
 * a row -> index map, the tower rows gathered into one packed direction). */
static int nm_score_jvp(til_backbone *bb, const til_batch *b, const uint32_t *rows, uint64_t n_rows, const float *Dir,
                        float *ds_pos, float *ds_neg, int threads, til_err *e)
{
    neumf *m = bb->impl;
    uint64_t D = (uint64_t)bb->dim;
    if (!m->jat) {
        if (!(m->jat = til_malloc(m->n_emb, sizeof *m->jat, e)) ||
            !(m->jT = til_aligned_calloc((m->tower_rows + 1) * D, sizeof(float), e)))
            return -1;
        for (uint64_t r = 0; r < m->n_emb; r++)
            m->jat[r] = -1;
    }
    memset(m->jT, 0, (m->tower_rows + 1) * D * sizeof(float)); /* last row: the zero direction */
    for (uint64_t k = 0; k < n_rows; k++) {
        uint64_t r = rows ? rows[k] : k;
        if (r < m->n_emb)
            m->jat[r] = (int32_t)k;
        else
            memcpy(m->jT + (r - m->n_emb) * D, Dir + k * D, D * sizeof(float));
    }
    nj_job j = {bb, b, Dir, m->jat, m->jT + m->tower_rows * D, {0}, ds_pos, ds_neg};
    til_neumf_net_view(&j.dn, bb->dim, m->jT);
    til_par_for(b->n < 256 ? 1 : threads, b->n, nm_sjvp_part, &j);
    for (uint64_t k = 0; k < n_rows; k++) {
        uint64_t r = rows ? rows[k] : k;
        if (r < m->n_emb)
            m->jat[r] = -1;
    }
    return 0;
}

/* jvp of the representations U, V = the embedding rows: the identity on them
 * (the tower's rows do not move U, V; their effect is score_jvp's) */
static int nm_jvp(til_backbone *bb, const uint32_t *rows, uint64_t n_rows, const float *Dir, const til_batch *want,
                  float *dU, float *dV, int threads, til_err *e)
{
    (void)want, (void)threads, (void)e;
    const neumf *m = bb->impl;
    uint64_t d = (uint64_t)bb->dim, nu = bb->n_users;
    for (uint64_t k = 0; k < n_rows; k++) {
        uint64_t r = rows ? rows[k] : k;
        if (r >= m->n_emb)
            continue;
        float *dst = r < nu ? dU + r * d : dV + (r - nu) * d;
        for (uint64_t c = 0; c < d; c++)
            dst[c] += Dir[k * d + c];
    }
    return 0;
}

static void nm_init(til_backbone *bb, uint64_t seed)
{
    neumf *m = bb->impl;
    int D = bb->dim, h = D / 2;
    float *t = bb->param + m->n_emb * (uint64_t)D;
    memset(t, 0, m->tower_rows * (uint64_t)D * sizeof(float));
    til_neumf_net v;
    til_neumf_net_view(&v, D, t);
    til_init_xavier((float *)v.W1, (uint64_t)D, h, seed, til_stream(TIL_STREAM_INIT, 0, 2));
    til_init_xavier((float *)v.W2, (uint64_t)h, h / 2, seed, til_stream(TIL_STREAM_INIT, 0, 3));
    til_init_xavier((float *)v.wp, 1, h + h / 2, seed, til_stream(TIL_STREAM_INIT, 0, 4));
}

static int nm_scorer(til_backbone *bb, til_scorer *s, til_err *e)
{
    neumf *m = bb->impl;
    til_neumf_scorer_free(&m->sc);
    if (til_neumf_scorer(&m->sc, &m->net, bb->U, bb->V, bb->n_users, bb->n_items, 1, e))
        return -1;
    *s = m->sc;
    return 0;
}

static int nm_meta(const til_backbone *bb, til_model *mo, til_err *e)
{
    int D = bb->dim, h = D / 2;
    return til_model_setf(mo, e, "tower", "%d-%d-%d", D, h, h / 2) ||
                   til_model_setf(mo, e, "neumf_split", "gmf %d + mlp %d per row; predict layer %d -> 1", h, h,
                                  h + h / 2)
               ? -1
               : 0;
}

static int nm_export(const til_backbone *bb, til_model *mo, til_err *e)
{
    const neumf *m = bb->impl;
    const til_neumf_net *n = &m->net;
    int D = n->D, h = n->h, h2 = h / 2;
    return til_model_set(mo, "scorer", "neumf", e) || !til_model_add(mo, "neumf.W1", TIL_F32, D, h, n->W1, e) ||
                   !til_model_add(mo, "neumf.b1", TIL_F32, 1, h, n->b1, e) ||
                   !til_model_add(mo, "neumf.W2", TIL_F32, h, h2, n->W2, e) ||
                   !til_model_add(mo, "neumf.b2", TIL_F32, 1, h2, n->b2, e) ||
                   !til_model_add(mo, "neumf.wp", TIL_F32, 1, h + h2, n->wp, e) ||
                   !til_model_add(mo, "neumf.bp", TIL_F32, 1, 1, n->bp, e)
               ? -1
               : 0;
}

static void nm_free(til_backbone *bb)
{
    neumf *m = bb->impl;
    if (m) {
        m->mf.param = NULL; /* borrowed */
        til_backbone_free(&m->mf);
        til_neumf_scorer_free(&m->sc);
        free(m->rows);
        free(m->tg);
        free(m->tsum);
        free(m->jat);
        free(m->jT);
        free(m);
    }
    free(bb->param);
}

static const til_backbone_ops nm_ops = {.name = "neumf",
                                        .prepare = nm_prepare,
                                        .forward = nm_forward,
                                        .backward = nm_backward,
                                        .free = nm_free,
                                        .init = nm_init,
                                        .score = nm_score,
                                        .score_backward = nm_score_backward,
                                        .score_jvp = nm_score_jvp,
                                        .jvp = nm_jvp,
                                        .scorer = nm_scorer,
                                        .meta = nm_meta,
                                        .export_model = nm_export};

int til_neumf_init(til_backbone *bb, uint32_t n_users, uint32_t n_items, int dim, uint64_t batch_cap, til_err *e)
{
    memset(bb, 0, sizeof *bb);
    bb->ops = &nm_ops;
    bb->n_users = n_users;
    bb->n_items = n_items;
    bb->dim = dim;
    if (dim % 4 || dim < 4 || dim > 1024)
        return til_seterr(e, "neumf: dim %d must be a multiple of 4 in 4..1024", dim);
    neumf *m = til_calloc(1, sizeof *m, e);
    bb->impl = m;
    if (!m)
        return -1;
    m->cap = batch_cap;
    m->n_emb = (uint64_t)n_users + n_items;
    m->tower_n = til_neumf_tower_size(dim);
    m->tower_rows = (m->tower_n + dim - 1) / dim;
    bb->n_param = m->n_emb + m->tower_rows;
    if (til_mf_init(&m->mf, n_users, n_items, dim, batch_cap, e)) {
        til_backbone_free(bb);
        return -1;
    }
    free(m->mf.param); /* MF's rows are the first n_emb rows of ours */
    m->mf.param = NULL;
    uint64_t nr = TIL_MIN(3 * batch_cap, m->n_emb) + m->tower_rows;
    bb->rows_cap = nr;
    uint64_t nc = (batch_cap + NEUMF_CHUNK - 1) / NEUMF_CHUNK;
    bb->param = til_aligned_calloc(bb->n_param * (uint64_t)dim, sizeof(float), e);
    m->rows = til_malloc(nr, sizeof *m->rows, e);
    m->tg = til_aligned_calloc(nc * m->tower_n, sizeof(float), e);
    m->tsum = til_aligned_calloc(m->tower_n, sizeof(float), e);
    if (!bb->param || !m->rows || !m->tg || !m->tsum) {
        til_backbone_free(bb);
        return -1;
    }
    m->mf.param = bb->param;
    til_neumf_net_view(&m->net, dim, bb->param + m->n_emb * (uint64_t)dim);
    bb->U = bb->param;
    bb->V = bb->param + (uint64_t)n_users * dim;
    return 0;
}

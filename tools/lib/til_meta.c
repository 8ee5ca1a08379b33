/* til_meta: one-step look-ahead meta-gradient of the outer BPR loss wrt the
 * triplet weights (and, through the weight network, wrt Lambda) for MF. */
#include "til_meta.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int til_meta_ws_init(til_meta_ws *ws, uint32_t n_users, uint32_t n_items, int d, til_err *e)
{
    memset(ws, 0, sizeof *ws);
    if (d < 1)
        return til_seterr(e, "meta-gradient: dim %d must be >= 1", d);
    ws->n_users = n_users;
    ws->n_items = n_items;
    ws->d = d;
    ws->umap = til_malloc((size_t)n_users + n_items, sizeof *ws->umap, e);
    if (!ws->umap)
        return til_errctx(e, "meta-gradient workspace");
    ws->imap = ws->umap + n_users;
    for (size_t r = 0; r < (size_t)n_users + n_items; r++)
        ws->umap[r] = -1;
    return 0;
}

void til_meta_ws_free(til_meta_ws *ws)
{
    free(ws->umap);
    free(ws->slot_row);
    free(ws->slot_tab);
    free(ws->theta);
    free(ws->G);
    free(ws->f1);
    memset(ws, 0, sizeof *ws);
}

static int grow_slots(til_meta_ws *ws, int need, til_err *e)
{
    if (need <= ws->cap)
        return 0;
    int cap = ws->cap ? ws->cap : 256;
    while (cap < need)
        cap *= 2;
    uint32_t *r = til_realloc(ws->slot_row, (size_t)cap, sizeof *r, e);
    if (!r)
        return -1;
    ws->slot_row = r;
    uint8_t *t = til_realloc(ws->slot_tab, (size_t)cap, sizeof *t, e);
    if (!t)
        return -1;
    ws->slot_tab = t;
    double *th = til_realloc(ws->theta, (size_t)cap * ws->d, sizeof *th, e);
    if (!th)
        return -1;
    ws->theta = th;
    double *g = til_realloc(ws->G, (size_t)cap * ws->d, sizeof *g, e);
    if (!g)
        return -1;
    ws->G = g;
    ws->cap = cap;
    return 0;
}

/* slot of (tab, row), adding it if new (capacity ensured by the caller) */
static inline int32_t slot_add(til_meta_ws *ws, int tab, uint32_t row)
{
    int32_t *map = tab == TIL_META_USER ? ws->umap : ws->imap;
    if (map[row] < 0) {
        int32_t s = ws->n_slots++;
        map[row] = s;
        ws->slot_row[s] = row;
        ws->slot_tab[s] = (uint8_t)tab;
    }
    return map[row];
}

static void slots_clear(til_meta_ws *ws)
{
    for (int s = 0; s < ws->n_slots; s++)
        (ws->slot_tab[s] == TIL_META_USER ? ws->umap : ws->imap)[ws->slot_row[s]] = -1;
    ws->n_slots = 0;
}

static inline double dotd(const double *a, const double *b, int d)
{
    double s = 0;
    for (int c = 0; c < d; c++)
        s += a[c] * b[c];
    return s;
}

/* -sigmoid(-x) = dsoftplus(-x)/dx, and softplus(-x), both stable */
static inline double bpr_dx(double x) { return x >= 0 ? -exp(-x) / (1 + exp(-x)) : -1 / (1 + exp(x)); }
static inline double bpr_loss(double x) { return x >= 0 ? log1p(exp(-x)) : -x + log1p(exp(x)); }

int til_meta_dw(til_meta_ws *ws, const float *P, const float *Q, const til_meta_batch *in, const float *w,
                const til_meta_batch *out, const til_meta_opts *o, float *dw, double *j_out, til_err *e)
{
    const int d = ws->d, n = in->n, m = out->n;
    if (n < 1 || m < 1)
        return til_seterr(e, "meta-gradient: empty batch (inner %d, outer %d)", n, m);
    /* ids index the row map: check them once (O(n + m)) */
    for (int b = 0; b < 2; b++) {
        const til_meta_batch *t = b ? out : in;
        for (int k = 0; k < t->n; k++)
            if (t->u[k] >= ws->n_users || t->i[k] >= ws->n_items || t->j[k] >= ws->n_items)
                return til_seterr(e, "meta-gradient: %s triplet %d (%u, %u, %u) out of range (%u users, %u items)",
                                  b ? "outer" : "inner", k, t->u[k], t->i[k], t->j[k], ws->n_users, ws->n_items);
    }
    if (grow_slots(ws, 3 * m, e) < 0)
        return til_errctx(e, "meta-gradient workspace");
    double pb[512], db[512];
    double *pu = d <= 512 ? pb : NULL, *dq = d <= 512 ? db : NULL;
    if (!pu) {
        pu = til_malloc((size_t)2 * d, sizeof *pu, e);
        if (!pu)
            return til_errctx(e, "meta-gradient");
        dq = pu + d;
    }

    /* 1. the outer batch's distinct rows; Theta~ starts at Theta */
    for (int k = 0; k < m; k++) {
        slot_add(ws, TIL_META_USER, out->u[k]);
        slot_add(ws, TIL_META_ITEM, out->i[k]);
        slot_add(ws, TIL_META_ITEM, out->j[k]);
    }
    const int ns = ws->n_slots;
    /* G is used as the inner-gradient accumulator first */
    memset(ws->G, 0, (size_t)ns * d * sizeof *ws->G);
    for (int s = 0; s < ns; s++) {
        const float *src = (ws->slot_tab[s] == TIL_META_USER ? P : Q) + (size_t)ws->slot_row[s] * d;
        for (int c = 0; c < d; c++)
            ws->theta[(size_t)s * d + c] = src[c];
    }

    /* 2. grad_Theta J_in on those rows: (1/|B|) sum_k w_k grad L_k + reg/|B| per use */
    const double invn = 1.0 / n;
    for (int k = 0; k < n; k++) {
        int32_t su = ws->umap[in->u[k]], si = ws->imap[in->i[k]], sj = ws->imap[in->j[k]];
        if (su < 0 && si < 0 && sj < 0)
            continue;
        const float *p = P + (size_t)in->u[k] * d, *qi = Q + (size_t)in->i[k] * d, *qj = Q + (size_t)in->j[k] * d;
        double x = 0;
        for (int c = 0; c < d; c++) {
            pu[c] = p[c];
            dq[c] = (double)qi[c] - (double)qj[c];
            x += pu[c] * dq[c];
        }
        double a = (double)w[k] * bpr_dx(x) * invn, r = o->reg * invn;
        if (su >= 0) { /* w s' (q_i - q_j)/|B| + reg p_u/|B| */
            double *g = ws->G + (size_t)su * d;
            for (int c = 0; c < d; c++)
                g[c] += a * dq[c] + r * pu[c];
        }
        if (si >= 0) { /* w s' p_u/|B| + reg q_i/|B| */
            double *g = ws->G + (size_t)si * d;
            for (int c = 0; c < d; c++)
                g[c] += a * pu[c] + r * qi[c];
        }
        if (sj >= 0) { /* -w s' p_u/|B| + reg q_j/|B| */
            double *g = ws->G + (size_t)sj * d;
            for (int c = 0; c < d; c++)
                g[c] += -a * pu[c] + r * qj[c];
        }
    }
    if (o->extra)
        for (int s = 0; s < ns; s++) {
            const float *src = (ws->slot_tab[s] == TIL_META_USER ? P : Q) + (size_t)ws->slot_row[s] * d;
            o->extra(o->extra_ctx, ws->slot_tab[s], ws->slot_row[s], src, d, ws->G + (size_t)s * d);
        }
    /* Theta~ = Theta - beta grad J_in */
    for (size_t q = 0; q < (size_t)ns * d; q++)
        ws->theta[q] -= o->beta * ws->G[q];

    /* 3. G = grad J_out(Theta~), summed over the outer triplets */
    memset(ws->G, 0, (size_t)ns * d * sizeof *ws->G);
    double J = 0;
    const double invm = 1.0 / m;
    for (int k = 0; k < m; k++) {
        int32_t su = ws->umap[out->u[k]], si = ws->imap[out->i[k]], sj = ws->imap[out->j[k]];
        const double *p = ws->theta + (size_t)su * d, *qi = ws->theta + (size_t)si * d,
                     *qj = ws->theta + (size_t)sj * d;
        double x = 0;
        for (int c = 0; c < d; c++)
            x += p[c] * (qi[c] - qj[c]);
        J += bpr_loss(x);
        double a = bpr_dx(x) * invm;
        double *gu = ws->G + (size_t)su * d, *gi = ws->G + (size_t)si * d, *gj = ws->G + (size_t)sj * d;
        for (int c = 0; c < d; c++) {
            gu[c] += a * (qi[c] - qj[c]);
            gi[c] += a * p[c];
            gj[c] -= a * p[c];
        }
    }
    if (j_out)
        *j_out = J * invm;

    /* 4. dJ_out/dw_k = -(beta/|B|) [G_u . s'(q_i - q_j) + (G_i - G_j) . s' p_u] at Theta */
    for (int k = 0; k < n; k++) {
        int32_t su = ws->umap[in->u[k]], si = ws->imap[in->i[k]], sj = ws->imap[in->j[k]];
        if (su < 0 && si < 0 && sj < 0) {
            dw[k] = 0;
            continue;
        }
        const float *p = P + (size_t)in->u[k] * d, *qi = Q + (size_t)in->i[k] * d, *qj = Q + (size_t)in->j[k] * d;
        double x = 0, acc = 0;
        for (int c = 0; c < d; c++) {
            pu[c] = p[c];
            dq[c] = (double)qi[c] - (double)qj[c];
            x += pu[c] * dq[c];
        }
        if (su >= 0)
            acc += dotd(ws->G + (size_t)su * d, dq, d);
        if (si >= 0)
            acc += dotd(ws->G + (size_t)si * d, pu, d);
        if (sj >= 0)
            acc -= dotd(ws->G + (size_t)sj * d, pu, d);
        dw[k] = (float)(-o->beta * invn * bpr_dx(x) * acc);
    }
    slots_clear(ws);
    if (pu != pb)
        free(pu);
    return 0;
}

double til_wnorm_forward(const float *w, int n, float *wn)
{
    double s = 0;
    for (int k = 0; k < n; k++)
        s += w[k];
    double mean = n ? s / n : 0;
    for (int k = 0; k < n; k++)
        wn[k] = (float)(w[k] / mean);
    return mean;
}

void til_wnorm_backward(const float *w, int n, const float *dwn, float *dw)
{
    /* wn_k = n w_k / S: dwn_k/dw_m = (n/S) (delta_km - wn_k / n) */
    double s = 0;
    for (int k = 0; k < n; k++)
        s += w[k];
    double mean = s / n, dot = 0;
    for (int k = 0; k < n; k++)
        dot += (double)dwn[k] * (w[k] / mean);
    for (int k = 0; k < n; k++)
        dw[k] = (float)(((double)dwn[k] - dot / n) / mean);
}

int til_meta_grad_lambda(til_meta_ws *ws, const float *P, const float *Q, const til_meta_batch *in,
                         const til_meta_batch *out, const til_meta_opts *o, const til_wnet *m, til_wnet_cache *c,
                         const float *S, int weight_norm, float *grad, float *dw, double *j_out, til_err *e)
{
    const int n = in->n;
    if (n > c->cap)
        return til_seterr(e, "meta-gradient: batch %d exceeds the weight network cache (%d)", n, c->cap);
    if (n > ws->fcap) {
        float *f = til_realloc(ws->f1, (size_t)2 * n, sizeof *f, e);
        if (!f)
            return til_errctx(e, "meta-gradient workspace");
        ws->f1 = f;
        ws->f2 = f + n;
        ws->fcap = n;
    }
    float *wu = ws->f1, *g = ws->f2;
    if (weight_norm)
        til_wnorm_forward(c->w, n, wu);
    else
        memcpy(wu, c->w, (size_t)n * sizeof *wu);
    if (til_meta_dw(ws, P, Q, in, wu, out, o, g, j_out, e) < 0)
        return -1;
    if (weight_norm)
        til_wnorm_backward(c->w, n, g, g);
    if (dw)
        memcpy(dw, g, (size_t)n * sizeof *dw);
    til_wnet_backward(m, c, S, n, g, grad);
    return 0;
}

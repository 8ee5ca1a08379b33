/* til_sampler: shuffled positives and rejection-sampled uniform negatives. */
#include "til_sampler.h"

#include <stdlib.h>
#include <string.h>

#include "til_par.h"
#include "til_rng.h"

int til_sampler_init(til_sampler *s, int kind, const til_inter *train, uint64_t seed, til_err *e)
{
    memset(s, 0, sizeof *s);
    s->kind = kind;
    s->n_neg = 1;
    s->train = train;
    s->seed = seed;
    if (train->nnz == 0)
        return til_seterr(e, "training data has no interactions");
    s->pair_user = til_malloc(train->nnz, sizeof *s->pair_user, e);
    if (!s->pair_user)
        return -1;
    for (uint32_t u = 0; u < train->n_users; u++) {
        if (til_inter_deg(train, u) >= train->n_items) {
            til_sampler_free(s);
            return til_seterr(e, "user %u has every item as a training positive: no negative can be sampled", u);
        }
        for (uint64_t k = train->indptr[u]; k < train->indptr[u + 1]; k++)
            s->pair_user[k] = u;
    }
    return 0;
}

void til_sampler_free(til_sampler *s)
{
    free(s->pair_user);
    s->pair_user = NULL;
}

int til_triplets_alloc(til_triplets *t, uint64_t n, int n_neg, til_err *e)
{
    t->n = n;
    t->u = til_malloc(n ? n : 1, sizeof *t->u, e);
    t->i = til_malloc(n ? n : 1, sizeof *t->i, e);
    t->j = til_malloc(n ? n * (uint64_t)n_neg : 1, sizeof *t->j, e);
    if (!t->u || !t->i || !t->j) {
        til_triplets_free(t);
        return -1;
    }
    return 0;
}

void til_triplets_free(til_triplets *t)
{
    free(t->u);
    free(t->i);
    free(t->j);
    memset(t, 0, sizeof *t);
}

typedef struct {
    const til_sampler *s;
    uint64_t epoch;
    til_triplets *t;
} neg_job;

static void neg_part(void *ctx, int part, uint64_t lo, uint64_t hi)
{
    (void)part;
    neg_job *jb = ctx;
    const til_inter *tr = jb->s->train, *ex = jb->s->exclude ? jb->s->exclude : tr;
    uint64_t n = jb->t->n;
    for (uint64_t c = lo; c < hi; c++) { /* chunks */
        til_rng r;
        til_rng_seed(&r, jb->s->seed, til_stream(TIL_STREAM_NEG, jb->epoch, c));
        uint64_t a = c * TIL_SAMPLER_CHUNK, b = TIL_MIN(n, a + TIL_SAMPLER_CHUNK);
        for (uint64_t k = a; k < b; k++) {
            uint32_t u = jb->t->u[k], j;
            do /* uniform over items, rejecting the user's training positives */
                j = jb->s->draw ? jb->s->draw(jb->s->draw_ctx, &r) : (uint32_t)til_rng_below(&r, tr->n_items);
            while (til_inter_has(ex, u, j));
            jb->t->j[k] = j;
        }
    }
}

int til_sampler_epoch(til_sampler *s, uint64_t epoch, int threads, til_triplets *t, til_err *e)
{
    const til_inter *tr = s->train;
    if (t->n != tr->nnz)
        return til_seterr(e, "sampler: triplet buffer has %llu slots, need %llu", (unsigned long long)t->n,
                          (unsigned long long)tr->nnz);
    /* shuffle positive indices (kept in t->i while shuffling), then resolve */
    uint32_t *perm = t->i;
    if (tr->nnz > UINT32_MAX)
        return til_seterr(e, "sampler: more than 2^32 training positives");
    for (uint64_t k = 0; k < tr->nnz; k++)
        perm[k] = (uint32_t)k;
    til_rng r;
    til_rng_seed(&r, s->seed, til_stream(TIL_STREAM_SHUFFLE, epoch, 0));
    til_rng_shuffle_u32(&r, perm, tr->nnz);
    for (uint64_t k = 0; k < tr->nnz; k++) {
        uint32_t p = perm[k];
        t->u[k] = s->pair_user[p];
        t->i[k] = tr->items[p];
    }
    neg_job jb = {s, epoch, t};
    uint64_t chunks = (tr->nnz + TIL_SAMPLER_CHUNK - 1) / TIL_SAMPLER_CHUNK;
    til_par_for(TIL_MIN((uint64_t)threads, chunks ? chunks : 1), chunks, neg_part, &jb);
    return 0;
}

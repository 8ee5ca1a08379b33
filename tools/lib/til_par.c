/* til_par: parallel-for with pthreads and a remainder-covering partition. */
#include "til_par.h"

#include <pthread.h>
#include <stdlib.h>

void til_par_range(uint64_t n, int parts, int part, uint64_t *lo, uint64_t *hi)
{
    /* 128-bit products avoid overflow for any n */
    *lo = (uint64_t)((unsigned __int128)n * (unsigned)part / (unsigned)parts);
    *hi = (uint64_t)((unsigned __int128)n * (unsigned)(part + 1) / (unsigned)parts);
}

typedef struct {
    til_par_fn fn;
    void *ctx;
    int part;
    uint64_t lo, hi;
} job;

static void *run(void *arg)
{
    job *j = arg;
    j->fn(j->ctx, j->part, j->lo, j->hi);
    return NULL;
}

int til_par_for(int parts, uint64_t n, til_par_fn fn, void *ctx)
{
    if (parts <= 1) {
        fn(ctx, 0, 0, n);
        return 0;
    }
    job jobs[256];
    pthread_t th[256];
    int started[256] = {0};
    if (parts > 256)
        parts = 256;
    int rc = 0;
    for (int p = 0; p < parts; p++) {
        jobs[p] = (job){fn, ctx, p, 0, 0};
        til_par_range(n, parts, p, &jobs[p].lo, &jobs[p].hi);
    }
    for (int p = 1; p < parts; p++) {
        if (pthread_create(&th[p], NULL, run, &jobs[p]) == 0)
            started[p] = 1;
        else
            rc = -1;
    }
    run(&jobs[0]);
    for (int p = 1; p < parts; p++) {
        if (started[p])
            pthread_join(th[p], NULL);
        else
            run(&jobs[p]);
    }
    return rc;
}

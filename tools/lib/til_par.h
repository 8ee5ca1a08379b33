/* til_par: a small parallel-for over [0, n) with a fixed partition.
 *
 * Part t of T covers [n*t/T, n*(t+1)/T): the parts are contiguous, disjoint and
 * cover the whole range including the remainder (tested). The partition depends
 * only on n and T, so work that writes per-part results and reduces them in part
 * order is deterministic for a given thread count. Thread 0 runs on the caller. */
#ifndef TIL_PAR_H
#define TIL_PAR_H

#include <stdint.h>

typedef void (*til_par_fn)(void *ctx, int part, uint64_t lo, uint64_t hi);

/* Bounds of part `part` of `parts` over [0, n). */
void til_par_range(uint64_t n, int parts, int part, uint64_t *lo, uint64_t *hi);
/* Runs fn on `parts` parts (parts >= 1) with one thread each. Returns 0, or -1
 * if a thread could not be started (then the remaining parts run serially, so
 * the result is still complete). */
int til_par_for(int parts, uint64_t n, til_par_fn fn, void *ctx);

#endif

/* til_stats: the statistics til-report needs: mean and sample standard
 * deviation, the regularized incomplete beta function, Student's t CDF, and
 * the paired two-sided t-test. Written here (no libm beyond lgamma/exp/log)
 * and tested against tabulated values. */
#ifndef TIL_STATS_H
#define TIL_STATS_H

#include <stddef.h>

/* Regularized incomplete beta I_x(a, b), a, b > 0, 0 <= x <= 1 (continued
 * fraction, modified Lentz; relative accuracy ~1e-14). NaN outside the domain. */
double til_betainc(double a, double b, double x);
/* P(T <= t) for Student's t with df > 0 degrees of freedom. */
double til_t_cdf(double t, double df);
/* Mean and sample standard deviation (n - 1; 0 when n < 2) of x[0..n). */
void til_mean_std(const double *x, size_t n, double *mean, double *std);
/* Paired two-sided t-test of a against b (differences a - b) over n pairs.
 * Sets *t and returns p. n < 2: NaN. All differences equal: p = 1 when they
 * are 0, else p = 0 (t = +-inf). */
double til_ttest_paired(const double *a, const double *b, size_t n, double *t);

#endif

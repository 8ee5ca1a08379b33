/* unit.h: a tiny TAP producer for the C unit tests.
 *
 * TEST(name) defines a case; CHECK(cond, fmt, ...) records a failure with its
 * file:line and message and lets the case continue; the case ends as "ok" or
 * "not ok" in TAP. unit_close() compares arrays with tolerance
 * |got - ref| <= atol + rtol * |ref| and reports the worst element and the first
 * mismatches. main() ends with `return unit_end();` (exit 1 on any failure). */
#ifndef UNIT_H
#define UNIT_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

static int unit_n, unit_failed_cases, unit_case_failed;

#define CHECK(cond, ...)                                                                    \
    do {                                                                                    \
        if (!(cond)) {                                                                      \
            unit_case_failed = 1;                                                           \
            fprintf(stdout, "#   %s:%d: CHECK(%s) failed: ", __FILE__, __LINE__, #cond);    \
            fprintf(stdout, __VA_ARGS__);                                                   \
            fputc('\n', stdout);                                                            \
        }                                                                                   \
    } while (0)

#define TEST(name) static void name(void)
#define RUN(name) unit_run(#name, name)

static inline void unit_run(const char *name, void (*fn)(void))
{
    unit_case_failed = 0;
    fn();
    unit_n++;
    if (unit_case_failed)
        unit_failed_cases++;
    printf("%s %d - %s\n", unit_case_failed ? "not ok" : "ok", unit_n, name);
    fflush(stdout);
}

static inline int unit_end(void)
{
    printf("1..%d\n", unit_n);
    return unit_failed_cases ? 1 : 0;
}

/* Compares n values; returns 1 if all within tolerance, else prints details. */
static inline int unit_close_impl(const char *file, int line, const char *what, const double *got, const double *ref,
                           size_t n, double atol, double rtol)
{
    size_t worst = 0, bad = 0;
    double worst_ex = -1;
    for (size_t k = 0; k < n; k++) {
        double tol = atol + rtol * fabs(ref[k]);
        double d = fabs(got[k] - ref[k]);
        double ex = isfinite(d) ? d / tol : INFINITY;
        if (!(d <= tol)) {
            if (bad < 3)
                printf("#   %s: [%zu] got %.9g ref %.9g (|d| %.3g > tol %.3g)\n", what, k, got[k], ref[k], d, tol);
            bad++;
        }
        if (ex > worst_ex || (k == 0)) {
            worst_ex = ex;
            worst = k;
        }
    }
    if (bad) {
        unit_case_failed = 1;
        printf("#   %s:%d: %s: %zu of %zu outside atol %g + rtol %g; worst [%zu] got %.9g ref %.9g\n", file, line, what,
               bad, n, atol, rtol, worst, got[worst], ref[worst]);
    }
    return bad == 0;
}
#define CHECK_CLOSE(what, got, ref, n, atol, rtol) unit_close_impl(__FILE__, __LINE__, what, got, ref, n, atol, rtol)

/* float arrays: converted to double first */
static inline int unit_close_f_impl(const char *file, int line, const char *what, const float *got, const float *ref,
                             size_t n, double atol, double rtol)
{
    double *g = malloc((n ? n : 1) * sizeof *g), *r = malloc((n ? n : 1) * sizeof *r);
    for (size_t k = 0; k < n; k++) {
        g[k] = got[k];
        r[k] = ref[k];
    }
    int ok = unit_close_impl(file, line, what, g, r, n, atol, rtol);
    free(g);
    free(r);
    return ok;
}
#define CHECK_CLOSE_F(what, got, ref, n, atol, rtol) unit_close_f_impl(__FILE__, __LINE__, what, got, ref, n, atol, rtol)

#endif

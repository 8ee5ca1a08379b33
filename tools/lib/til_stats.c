/* til_stats: incomplete beta, Student's t, paired t-test (see til_stats.h). */
#include "til_stats.h"

#include <math.h>

/* continued fraction of I_x(a, b) (Numerical Recipes' betacf, modified Lentz) */
static double betacf(double a, double b, double x)
{
    const double tiny = 1e-300, eps = 1e-15;
    double qab = a + b, qap = a + 1, qam = a - 1, c = 1, d = 1 - qab * x / qap;
    if (fabs(d) < tiny)
        d = tiny;
    d = 1 / d;
    double h = d;
    for (int m = 1; m <= 1000; m++) {
        int m2 = 2 * m;
        double aa = m * (b - m) * x / ((qam + m2) * (a + m2));
        d = 1 + aa * d;
        if (fabs(d) < tiny)
            d = tiny;
        c = 1 + aa / c;
        if (fabs(c) < tiny)
            c = tiny;
        d = 1 / d;
        h *= d * c;
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));
        d = 1 + aa * d;
        if (fabs(d) < tiny)
            d = tiny;
        c = 1 + aa / c;
        if (fabs(c) < tiny)
            c = tiny;
        d = 1 / d;
        double del = d * c;
        h *= del;
        if (fabs(del - 1) < eps)
            break;
    }
    return h;
}

double til_betainc(double a, double b, double x)
{
    if (!(a > 0) || !(b > 0) || !(x >= 0) || !(x <= 1))
        return NAN;
    if (x == 0 || x == 1)
        return x;
    /* front factor x^a (1-x)^b / (a B(a, b)) */
    double lbt = lgamma(a + b) - lgamma(a) - lgamma(b) + a * log(x) + b * log1p(-x);
    if (x < (a + 1) / (a + b + 2))
        return exp(lbt) * betacf(a, b, x) / a;
    return 1 - exp(lbt) * betacf(b, a, 1 - x) / b;
}

double til_t_cdf(double t, double df)
{
    if (!(df > 0) || isnan(t))
        return NAN;
    if (isinf(t))
        return t > 0 ? 1 : 0;
    /* P(|T| > |t|) = I_{df/(df+t^2)}(df/2, 1/2) */
    double tail = 0.5 * til_betainc(df / 2, 0.5, df / (df + t * t));
    return t >= 0 ? 1 - tail : tail;
}

void til_mean_std(const double *x, size_t n, double *mean, double *std)
{
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += x[i];
    double m = n ? s / n : NAN, ss = 0;
    for (size_t i = 0; i < n; i++)
        ss += (x[i] - m) * (x[i] - m);
    *mean = m;
    *std = n > 1 ? sqrt(ss / (n - 1)) : 0;
}

double til_ttest_paired(const double *a, const double *b, size_t n, double *t)
{
    *t = NAN;
    if (n < 2)
        return NAN;
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += a[i] - b[i];
    double m = s / n, ss = 0;
    for (size_t i = 0; i < n; i++) {
        double d = a[i] - b[i] - m;
        ss += d * d;
    }
    double sd = sqrt(ss / (n - 1));
    if (sd == 0 || sd < 1e-15 * fabs(m)) {
        *t = m == 0 ? 0 : (m > 0 ? INFINITY : -INFINITY);
        return m == 0 ? 1 : 0;
    }
    *t = m / (sd / sqrt((double)n));
    double df = (double)n - 1;
    return til_betainc(df / 2, 0.5, df / (df + *t * *t));
}

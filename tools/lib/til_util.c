/* til_util: error vocabulary, checked parsing, allocation, clocks. */
#include "til_util.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

static const char *prog = "til";

static void vfmt(char *buf, size_t n, const char *fmt, va_list ap, int errnum)
{
    vsnprintf(buf, n, fmt, ap);
    size_t len = strlen(fmt);
    if (len > 0 && fmt[len - 1] == ':') {
        size_t used = strlen(buf);
        if (used < n)
            snprintf(buf + used, n - used, " %s", strerror(errnum));
    }
}

int til_seterr(til_err *e, const char *fmt, ...)
{
    int errnum = errno;
    if (!e)
        return -1;
    va_list ap;
    va_start(ap, fmt);
    vfmt(e->msg, sizeof e->msg, fmt, ap, errnum);
    va_end(ap);
    return -1;
}

int til_errctx(til_err *e, const char *fmt, ...)
{
    if (!e)
        return -1;
    char pre[512], old[sizeof e->msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(pre, sizeof pre, fmt, ap);
    va_end(ap);
    memcpy(old, e->msg, sizeof old);
    size_t pl = strlen(pre);
    if (pl > sizeof e->msg - 3)
        pl = sizeof e->msg - 3;
    memcpy(e->msg, pre, pl);
    memcpy(e->msg + pl, ": ", 2);
    size_t room = sizeof e->msg - pl - 3, ol = strlen(old);
    if (ol > room)
        ol = room;
    memcpy(e->msg + pl + 2, old, ol);
    e->msg[pl + 2 + ol] = '\0';
    return -1;
}

void til_setprog(const char *argv0)
{
    const char *s = strrchr(argv0, '/');
    prog = s ? s + 1 : argv0;
}

const char *til_prog(void) { return prog; }

void til_die(int status, const char *fmt, ...)
{
    int errnum = errno;
    char buf[2048];
    va_list ap;
    va_start(ap, fmt);
    vfmt(buf, sizeof buf, fmt, ap, errnum);
    va_end(ap);
    fflush(stdout);
    fprintf(stderr, "%s: %s\n", prog, buf);
    exit(status);
}

void til_warn(const char *fmt, ...)
{
    int errnum = errno;
    char buf[2048];
    va_list ap;
    va_start(ap, fmt);
    vfmt(buf, sizeof buf, fmt, ap, errnum);
    va_end(ap);
    fprintf(stderr, "%s: %s\n", prog, buf);
}

void til_report(const til_err *e) { fprintf(stderr, "%s: %s\n", prog, e->msg); }

int til_close_stdout(void)
{
    if (fflush(stdout) != 0 || ferror(stdout) || fclose(stdout) != 0) {
        fprintf(stderr, "%s: write error on standard output: %s\n", prog, strerror(errno));
        return TIL_EXIT_DATA;
    }
    return TIL_EXIT_OK;
}

int til_parse_i64(const char *s, int64_t lo, int64_t hi, int64_t *out, const char *what, til_err *e)
{
    if (!s || !*s)
        return til_seterr(e, "%s: empty number", what);
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (end == s || *end != '\0')
        return til_seterr(e, "%s: '%s' is not an integer", what, s);
    if (errno == ERANGE || v < lo || v > hi)
        return til_seterr(e, "%s: %s is out of range [%lld, %lld]", what, s, (long long)lo, (long long)hi);
    *out = v;
    return 0;
}

int til_parse_u64(const char *s, uint64_t lo, uint64_t hi, uint64_t *out, const char *what, til_err *e)
{
    if (!s || !*s)
        return til_seterr(e, "%s: empty number", what);
    if (*s == '-' || *s == ' ' || *s == '+')
        return til_seterr(e, "%s: '%s' is not a non-negative integer", what, s);
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (end == s || *end != '\0')
        return til_seterr(e, "%s: '%s' is not an integer", what, s);
    if (errno == ERANGE || v < lo || v > hi)
        return til_seterr(e, "%s: %s is out of range [%llu, %llu]", what, s, (unsigned long long)lo,
                          (unsigned long long)hi);
    *out = v;
    return 0;
}

int til_parse_int(const char *s, int lo, int hi, int *out, const char *what, til_err *e)
{
    int64_t v;
    if (til_parse_i64(s, lo, hi, &v, what, e))
        return -1;
    *out = (int)v;
    return 0;
}

int til_parse_double(const char *s, double lo, double hi, double *out, const char *what, til_err *e)
{
    if (!s || !*s)
        return til_seterr(e, "%s: empty number", what);
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || *end != '\0')
        return til_seterr(e, "%s: '%s' is not a number", what, s);
    if (errno == ERANGE || !isfinite(v) || v < lo || v > hi)
        return til_seterr(e, "%s: %s is out of range [%g, %g]", what, s, lo, hi);
    *out = v;
    return 0;
}

int til_parse_int_list(const char *s, int lo, int hi, int *out, int cap, const char *what, til_err *e)
{
    char buf[1024];
    if (strlen(s) >= sizeof buf)
        return til_seterr(e, "%s: list too long", what);
    strcpy(buf, s);
    int n = 0;
    char *save = NULL;
    for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (n >= cap)
            return til_seterr(e, "%s: more than %d values", what, cap);
        if (til_parse_int(tok, lo, hi, &out[n], what, e))
            return -1;
        n++;
    }
    if (n == 0)
        return til_seterr(e, "%s: empty list", what);
    return n;
}

int til_parse_ratio(const char *s, double *out, int n, const char *what, til_err *e)
{
    char buf[256];
    if (strlen(s) >= sizeof buf)
        return til_seterr(e, "%s: too long", what);
    strcpy(buf, s);
    int k = 0;
    double sum = 0;
    char *save = NULL;
    for (char *tok = strtok_r(buf, ":", &save); tok; tok = strtok_r(NULL, ":", &save)) {
        if (k >= n)
            return til_seterr(e, "%s: '%s' has more than %d parts", what, s, n);
        if (til_parse_double(tok, 0, 1e9, &out[k], what, e))
            return -1;
        sum += out[k++];
    }
    if (k != n)
        return til_seterr(e, "%s: '%s' needs %d parts separated by ':'", what, s, n);
    if (!(sum > 0))
        return til_seterr(e, "%s: '%s' sums to zero", what, s);
    for (int i = 0; i < n; i++)
        out[i] /= sum;
    return 0;
}

static int mul_ok(size_t n, size_t size, size_t *tot)
{
    if (size && n > SIZE_MAX / size)
        return 0;
    *tot = n * size;
    return 1;
}

void *til_malloc(size_t n, size_t size, til_err *e)
{
    size_t tot;
    if (!mul_ok(n, size, &tot)) {
        til_seterr(e, "allocation of %zu x %zu bytes overflows", n, size);
        return NULL;
    }
    void *p = malloc(tot ? tot : 1);
    if (!p) {
        char b[32];
        til_seterr(e, "out of memory allocating %s", til_fmt_bytes(tot, b, sizeof b));
    }
    return p;
}

void *til_calloc(size_t n, size_t size, til_err *e)
{
    size_t tot;
    if (!mul_ok(n, size, &tot)) {
        til_seterr(e, "allocation of %zu x %zu bytes overflows", n, size);
        return NULL;
    }
    void *p = calloc(tot ? tot : 1, 1);
    if (!p) {
        char b[32];
        til_seterr(e, "out of memory allocating %s", til_fmt_bytes(tot, b, sizeof b));
    }
    return p;
}

void *til_realloc(void *old, size_t n, size_t size, til_err *e)
{
    size_t tot;
    if (!mul_ok(n, size, &tot)) {
        til_seterr(e, "allocation of %zu x %zu bytes overflows", n, size);
        return NULL;
    }
    void *p = realloc(old, tot ? tot : 1);
    if (!p) {
        char b[32];
        til_seterr(e, "out of memory allocating %s", til_fmt_bytes(tot, b, sizeof b));
    }
    return p;
}

void *til_aligned_calloc(size_t n, size_t size, til_err *e)
{
    size_t tot;
    if (!mul_ok(n, size, &tot) || tot > SIZE_MAX - 64) {
        til_seterr(e, "allocation of %zu x %zu bytes overflows", n, size);
        return NULL;
    }
    size_t rounded = (tot + 63) / 64 * 64;
    void *p = aligned_alloc(64, rounded ? rounded : 64);
    if (!p) {
        char b[32];
        til_seterr(e, "out of memory allocating %s", til_fmt_bytes(tot, b, sizeof b));
        return NULL;
    }
    memset(p, 0, rounded ? rounded : 64);
    return p;
}

char *til_strdup(const char *s, til_err *e)
{
    size_t n = strlen(s) + 1;
    char *p = til_malloc(n, 1, e);
    if (p)
        memcpy(p, s, n);
    return p;
}

double til_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

uint64_t til_peak_rss(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0)
        return 0;
    return (uint64_t)ru.ru_maxrss * 1024u;
}

int til_ncpu(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : (int)TIL_MIN(n, 1024);
}

const char *til_fmt_bytes(uint64_t bytes, char *buf, size_t n)
{
    const char *unit[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = (double)bytes;
    int u = 0;
    while (v >= 1024 && u < 4) {
        v /= 1024;
        u++;
    }
    snprintf(buf, n, u ? "%.1f %s" : "%.0f %s", v, unit[u]);
    return buf;
}

/* til_util: the error vocabulary, checked number parsing, allocation and small
 * helpers shared by every module.
 *
 * Library functions never exit. They return 0 on success and -1 on failure and
 * describe the failure in a caller-provided til_err; only a tool's main prints it
 * (prefixed with the program name) and chooses the exit status:
 *   0 success, 1 data or runtime error, 2 usage. */
#ifndef TIL_UTIL_H
#define TIL_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum { TIL_EXIT_OK = 0, TIL_EXIT_DATA = 1, TIL_EXIT_USAGE = 2 };

typedef struct til_err {
    char msg[1024];
} til_err;

/* Formats into e (if e is non-NULL). A format ending in ':' appends
 * " strerror(errno)". Always returns -1 so callers can `return til_seterr(...)`. */
int til_seterr(til_err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prepends "prefix: " to an existing message (adds context on the way up). */
int til_errctx(til_err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Program name used by til_die/til_warn; set once from argv[0] by main. */
void til_setprog(const char *argv0);
const char *til_prog(void);
/* For mains only: print "prog: message" (strerror if fmt ends in ':') and exit. */
_Noreturn void til_die(int status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void til_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* For mains only: print e->msg prefixed by the program name. */
void til_report(const til_err *e);
/* For mains only: flush and close stdout, exiting 1 if a write failed. */
int til_close_stdout(void);

/* Checked parsers: whole string must be consumed, value within [lo, hi].
 * Return 0 or -1 with a message naming `what`. */
int til_parse_i64(const char *s, int64_t lo, int64_t hi, int64_t *out, const char *what, til_err *e);
int til_parse_u64(const char *s, uint64_t lo, uint64_t hi, uint64_t *out, const char *what, til_err *e);
int til_parse_int(const char *s, int lo, int hi, int *out, const char *what, til_err *e);
int til_parse_double(const char *s, double lo, double hi, double *out, const char *what, til_err *e);
/* Parses "a,b,c" of ints in [lo,hi] into out (cap entries); returns count or -1. */
int til_parse_int_list(const char *s, int lo, int hi, int *out, int cap, const char *what, til_err *e);
/* Parses ratio "8:1:1" (n positive numbers) into out[] normalised to sum 1. */
int til_parse_ratio(const char *s, double *out, int n, const char *what, til_err *e);

/* Allocation that reports failure through e (never exits). Sizes are checked
 * for overflow (n * size). Memory is zeroed by til_calloc. */
void *til_malloc(size_t n, size_t size, til_err *e);
void *til_calloc(size_t n, size_t size, til_err *e);
void *til_realloc(void *p, size_t n, size_t size, til_err *e);
/* Aligned (64 bytes) zeroed allocation, freed with free(). */
void *til_aligned_calloc(size_t n, size_t size, til_err *e);
char *til_strdup(const char *s, til_err *e);

/* Wall clock seconds (monotonic). */
double til_now(void);
/* Peak resident set size of this process in bytes (0 if unknown). */
uint64_t til_peak_rss(void);
/* Number of online CPUs (>= 1). */
int til_ncpu(void);
/* Formats bytes as "12.3 MiB" into buf. */
const char *til_fmt_bytes(uint64_t bytes, char *buf, size_t n);

#define TIL_MIN(a, b) ((a) < (b) ? (a) : (b))
#define TIL_MAX(a, b) ((a) > (b) ? (a) : (b))

#endif

/* til_io: gzip-transparent stream readers and atomic writers. */
#include "til_io.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#define RD_BUF (1u << 20)

struct til_rd {
    gzFile gz;
    char *name;
    char *buf;        /* raw chunk buffer for line reading */
    size_t len, pos;  /* valid bytes, read position */
    char *line;       /* assembled line when it spans chunks */
    size_t line_cap;
    uint64_t lineno, bytes;
    int eof;
};

static int gz_errmsg(gzFile gz, const char *name, til_err *e, const char *what)
{
    int zerr = 0;
    const char *m = gzerror(gz, &zerr);
    if (zerr == Z_ERRNO)
        return til_seterr(e, "%s: %s:", name, what);
    if (zerr == Z_BUF_ERROR)
        return til_seterr(e, "%s: truncated compressed data (%s)", name, m);
    if (zerr != Z_OK && zerr != Z_STREAM_END)
        return til_seterr(e, "%s: corrupt compressed data (%s)", name, m);
    return til_seterr(e, "%s: %s failed", name, what);
}

til_rd *til_rd_open(const char *path, til_err *e)
{
    til_rd *r = til_calloc(1, sizeof *r, e);
    if (!r)
        return NULL;
    int stdin_ = strcmp(path, "-") == 0;
    r->name = til_strdup(stdin_ ? "stdin" : path, e);
    r->buf = til_malloc(RD_BUF, 1, e);
    if (!r->name || !r->buf)
        goto fail;
    int fd = stdin_ ? dup(0) : open(path, O_RDONLY);
    if (fd < 0) {
        til_seterr(e, "%s:", r->name);
        goto fail;
    }
    struct stat st;
    if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
        close(fd);
        til_seterr(e, "%s: is a directory", r->name);
        goto fail;
    }
    r->gz = gzdopen(fd, "rb");
    if (!r->gz) {
        close(fd);
        til_seterr(e, "%s: cannot open stream", r->name);
        goto fail;
    }
    gzbuffer(r->gz, 1u << 18);
    return r;
fail:
    free(r->name);
    free(r->buf);
    free(r);
    return NULL;
}

const char *til_rd_name(const til_rd *r) { return r->name; }

/* Fills buf from gz: returns bytes read (0 at clean EOF) or -1. */
static long fill(til_rd *r, void *dst, size_t n, til_err *e)
{
    size_t got = 0;
    while (got < n) {
        unsigned chunk = (unsigned)TIL_MIN(n - got, (size_t)1 << 30);
        int k = gzread(r->gz, (char *)dst + got, chunk);
        if (k < 0)
            return gz_errmsg(r->gz, r->name, e, "read");
        if (k == 0) {
            int zerr = 0;
            gzerror(r->gz, &zerr);
            if (zerr != Z_OK && zerr != Z_STREAM_END)
                return gz_errmsg(r->gz, r->name, e, "read");
            break;
        }
        got += (size_t)k;
    }
    r->bytes += got;
    return (long)got;
}

int til_rd_read(til_rd *r, void *buf, size_t n, til_err *e)
{
    size_t got = 0;
    /* serve from the line buffer first, if mixing (not expected, but correct) */
    if (r->pos < r->len) {
        size_t k = TIL_MIN(n, r->len - r->pos);
        memcpy(buf, r->buf + r->pos, k);
        r->pos += k;
        got = k;
    }
    while (got < n) {
        long k = fill(r, (char *)buf + got, n - got, e);
        if (k < 0)
            return -1;
        if (k == 0)
            return til_seterr(e, "%s: truncated: expected %zu more bytes", r->name, n - got);
        got += (size_t)k;
    }
    return 0;
}

long til_rd_peek(til_rd *r, void *buf, size_t n, til_err *e)
{
    if (n > RD_BUF)
        n = RD_BUF;
    if (r->pos > 0 && r->pos < r->len) {
        memmove(r->buf, r->buf + r->pos, r->len - r->pos);
        r->len -= r->pos;
        r->pos = 0;
    } else if (r->pos >= r->len) {
        r->len = r->pos = 0;
    }
    while (r->len < n && !r->eof) {
        long k = fill(r, r->buf + r->len, n - r->len, e);
        if (k < 0)
            return -1;
        if (k == 0)
            r->eof = 1;
        r->len += (size_t)k;
    }
    size_t k = TIL_MIN(n, r->len);
    memcpy(buf, r->buf, k);
    return (long)k;
}

int til_rd_eof(til_rd *r, til_err *e)
{
    if (r->pos < r->len)
        return 0;
    char c;
    long k = fill(r, &c, 1, e);
    if (k < 0)
        return -1;
    if (k == 0)
        return 1;
    r->buf[0] = c;
    r->len = 1;
    r->pos = 0;
    return 0;
}

long til_rd_line(til_rd *r, char **line, til_err *e)
{
    size_t ll = 0; /* bytes assembled in r->line */
    for (;;) {
        if (r->pos >= r->len) {
            if (r->eof)
                break;
            long k = fill(r, r->buf, RD_BUF, e);
            if (k < 0)
                return -2;
            r->len = (size_t)k;
            r->pos = 0;
            if (k == 0) {
                r->eof = 1;
                break;
            }
        }
        char *start = r->buf + r->pos;
        size_t avail = r->len - r->pos;
        char *nl = memchr(start, '\n', avail);
        size_t take = nl ? (size_t)(nl - start) : avail;
        if (nl && ll == 0) {
            /* fast path: the whole line lies in the chunk; terminate in place */
            *nl = '\0';
            r->pos += take + 1;
            r->lineno++;
            if (take > 0 && start[take - 1] == '\r')
                start[--take] = '\0';
            *line = start;
            return (long)take;
        }
        if (ll + take + 1 > r->line_cap) {
            size_t cap = TIL_MAX(r->line_cap * 2, ll + take + 1);
            if (cap < 256)
                cap = 256;
            char *p = til_realloc(r->line, cap, 1, e);
            if (!p)
                return -2;
            r->line = p;
            r->line_cap = cap;
        }
        memcpy(r->line + ll, start, take);
        ll += take;
        r->pos += take + (nl ? 1 : 0);
        if (nl)
            goto done;
    }
    if (ll == 0)
        return -1; /* EOF and nothing pending */
done:
    r->lineno++;
    if (ll > 0 && r->line[ll - 1] == '\r')
        ll--;
    r->line[ll] = '\0';
    *line = r->line;
    return (long)ll;
}

uint64_t til_rd_lineno(const til_rd *r) { return r->lineno; }
uint64_t til_rd_bytes(const til_rd *r) { return r->bytes; }

void til_rd_close(til_rd **rp)
{
    til_rd *r = *rp;
    if (!r)
        return;
    if (r->gz)
        gzclose(r->gz);
    free(r->name);
    free(r->buf);
    free(r->line);
    free(r);
    *rp = NULL;
}

/* ---- writers ---- */

#define MAX_TEMPS 64
static char *volatile temps[MAX_TEMPS]; /* open temporaries, for signal cleanup */

static void temp_register(char *p)
{
    for (int i = 0; i < MAX_TEMPS; i++)
        if (!temps[i]) {
            temps[i] = p;
            return;
        }
}

static void temp_forget(const char *p)
{
    for (int i = 0; i < MAX_TEMPS; i++)
        if (temps[i] == p)
            temps[i] = NULL;
}

static void on_signal(int sig)
{
    for (int i = 0; i < MAX_TEMPS; i++)
        if (temps[i])
            unlink(temps[i]);
    signal(sig, SIG_DFL);
    raise(sig);
}

void til_io_cleanup_on_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_DFL);
}

struct til_wr {
    gzFile gz;
    int fd;
    char *path; /* final path, NULL for stdout */
    char *tmp;
    char *name;
};

til_wr *til_wr_open(const char *path, int level, til_err *e)
{
    til_wr *w = til_calloc(1, sizeof *w, e);
    if (!w)
        return NULL;
    w->fd = -1;
    int out = strcmp(path, "-") == 0;
    w->name = til_strdup(out ? "stdout" : path, e);
    if (!w->name)
        goto fail;
    if (out) {
        w->fd = dup(1);
        if (w->fd < 0) {
            til_seterr(e, "stdout:");
            goto fail;
        }
    } else {
        size_t n = strlen(path) + 16;
        w->path = til_strdup(path, e);
        w->tmp = til_malloc(n, 1, e);
        if (!w->path || !w->tmp)
            goto fail;
        snprintf(w->tmp, n, "%s.tmp.XXXXXX", path);
        w->fd = mkstemp(w->tmp);
        if (w->fd < 0) {
            til_seterr(e, "%s: cannot create temporary file:", path);
            goto fail;
        }
        temp_register(w->tmp);
        mode_t um = umask(0);
        umask(um);
        if (fchmod(w->fd, 0666 & ~um) != 0) {
            til_seterr(e, "%s:", w->tmp);
            goto fail;
        }
    }
    char mode[8];
    if (level < 0)
        snprintf(mode, sizeof mode, "wbT");
    else
        snprintf(mode, sizeof mode, "wb%d", TIL_MIN(level, 9));
    int gfd = dup(w->fd);
    if (gfd < 0 || !(w->gz = gzdopen(gfd, mode))) {
        if (gfd >= 0)
            close(gfd);
        til_seterr(e, "%s: cannot open output stream", w->name);
        goto fail;
    }
    gzbuffer(w->gz, 1u << 18);
    return w;
fail:
    til_wr_abort(&w);
    return NULL;
}

const char *til_wr_name(const til_wr *w) { return w->name; }

int til_wr_write(til_wr *w, const void *buf, size_t n, til_err *e)
{
    const char *p = buf;
    while (n > 0) {
        unsigned chunk = (unsigned)TIL_MIN(n, (size_t)1 << 30);
        int k = gzwrite(w->gz, p, chunk);
        if (k <= 0) {
            int zerr = 0;
            const char *m = gzerror(w->gz, &zerr);
            if (zerr == Z_ERRNO)
                return til_seterr(e, "%s: write error:", w->name);
            return til_seterr(e, "%s: write error (%s)", w->name, m);
        }
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

int til_wr_printf(til_wr *w, til_err *e, const char *fmt, ...)
{
    char small[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0)
        return til_seterr(e, "%s: format error", w->name);
    if ((size_t)n < sizeof small)
        return til_wr_write(w, small, (size_t)n, e);
    char *big = til_malloc((size_t)n + 1, 1, e);
    if (!big)
        return -1;
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    int rc = til_wr_write(w, big, (size_t)n, e);
    free(big);
    return rc;
}

static void wr_free(til_wr *w)
{
    free(w->path);
    free(w->tmp);
    free(w->name);
    free(w);
}

int til_wr_commit(til_wr **wp, til_err *e)
{
    til_wr *w = *wp;
    int rc = 0;
    int zr = gzclose(w->gz);
    w->gz = NULL;
    if (zr != Z_OK) {
        rc = til_seterr(e, "%s: write error on close:", w->name);
    } else if (w->path) {
        if (fsync(w->fd) != 0)
            rc = til_seterr(e, "%s: fsync:", w->name);
        else if (rename(w->tmp, w->path) != 0)
            rc = til_seterr(e, "%s: rename:", w->name);
    }
    if (close(w->fd) != 0 && rc == 0)
        rc = til_seterr(e, "%s: close:", w->name);
    w->fd = -1;
    if (rc != 0 && w->tmp)
        unlink(w->tmp);
    if (w->tmp)
        temp_forget(w->tmp);
    wr_free(w);
    *wp = NULL;
    return rc;
}

void til_wr_abort(til_wr **wp)
{
    til_wr *w = *wp;
    if (!w)
        return;
    if (w->gz)
        gzclose(w->gz);
    if (w->fd >= 0)
        close(w->fd);
    if (w->tmp) {
        if (w->fd >= 0)
            unlink(w->tmp);
        temp_forget(w->tmp);
    }
    wr_free(w);
    *wp = NULL;
}

int til_path_readable(const char *path)
{
    return strcmp(path, "-") == 0 || access(path, R_OK) == 0;
}

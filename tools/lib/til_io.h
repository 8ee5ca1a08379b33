/* til_io: streams for every tool.
 *
 * Readers take a path or "-" (stdin) and read gzip or plain data transparently,
 * as a stream (never rewound), so tools chain in pipes. Writers take a path or
 * "-" (stdout); a path is written atomically: a temporary file beside it
 * (path.tmp.XXXXXX) is written, flushed, fsync'ed and renamed over the path on
 * commit, so an interrupted run never leaves a half file that make would take
 * for fresh. til_io_cleanup_on_signals() makes SIGINT/SIGTERM/SIGHUP remove
 * the temporaries of writers still open. */
#ifndef TIL_IO_H
#define TIL_IO_H

#include <stddef.h>
#include <stdint.h>

#include "til_util.h"

typedef struct til_rd til_rd;

/* Opens path ("-" = stdin). Gzip is detected from the data, not the name. */
til_rd *til_rd_open(const char *path, til_err *e);
/* The name used in messages ("stdin" for "-"). */
const char *til_rd_name(const til_rd *r);
/* Reads exactly n bytes; a short read is an error ("truncated"). */
int til_rd_read(til_rd *r, void *buf, size_t n, til_err *e);
/* Looks at up to n next bytes without consuming them; returns how many are
 * available (< n only at end of data), or -1 on error. */
long til_rd_peek(til_rd *r, void *buf, size_t n, til_err *e);
/* Returns 1 at end of data, 0 if more data follows, -1 on a read error. */
int til_rd_eof(til_rd *r, til_err *e);
/* Next text line, without its '\n' (and a trailing '\r' removed), NUL
 * terminated; the buffer belongs to the reader and is valid until the next call.
 * Returns the length (>= 0), -1 at end of data, -2 on error (message in e). */
long til_rd_line(til_rd *r, char **line, til_err *e);
/* Number of the line last returned by til_rd_line (1-based). */
uint64_t til_rd_lineno(const til_rd *r);
/* Uncompressed bytes consumed so far. */
uint64_t til_rd_bytes(const til_rd *r);
void til_rd_close(til_rd **r);

typedef struct til_wr til_wr;

/* Opens path ("-" = stdout) for writing. level: -1 plain, 1..9 gzip. */
til_wr *til_wr_open(const char *path, int level, til_err *e);
int til_wr_write(til_wr *w, const void *buf, size_t n, til_err *e);
int til_wr_printf(til_wr *w, til_err *e, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Flushes, fsyncs and renames into place (or flushes stdout); frees w. */
int til_wr_commit(til_wr **w, til_err *e);
/* Discards a writer: removes its temporary file; frees w. */
void til_wr_abort(til_wr **w);
const char *til_wr_name(const til_wr *w);

/* Installs SIGINT/SIGTERM/SIGHUP handlers that remove open temporaries and
 * then re-raise the signal with its default action. Call once from main. */
void til_io_cleanup_on_signals(void);

/* 1 if path exists and is readable ("-" always 1). */
int til_path_readable(const char *path);

#endif

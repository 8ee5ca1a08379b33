/* til_prep: parsing of the raw formats, rating filter, dedupe, k-core, dense
 * re-indexing (see til_prep.h for the pipeline and its rules).
 *
 * The parse loop is the hot path (a 1 GB ratings file is ~25M lines): lines
 * come from til_rd_line (memchr over a 1 MiB buffer), fields are split by hand
 * into (pointer, length) spans without copying, and numbers are parsed by hand
 * with range and trailing-junk checks (strtod only for exponents or more than
 * 15 significant digits, where a hand-rolled conversion would round wrongly). */
#include "til_prep.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- options and formats ---- */

static const char *const fmt_names[TIL_FMT_COUNT] = {
    "amazon", "ml100k", "ml1m", "mlcsv", "lastfm", "lastfm1k", "lastfm360k", "gowalla-snap", "adj", "generic",
};

void til_prep_opts_default(til_prep_opts *o)
{
    memset(o, 0, sizeof *o);
    o->format = TIL_FMT_AMAZON;
    o->sep_kind = TIL_SEP_CHAR;
    o->sep = ',';
    o->min_rating = 4;
    o->kcore = 10;
    o->keep_rating = -1;
    o->keep_time = -1;
}

int til_prep_format_parse(const char *name)
{
    for (int f = 0; f < TIL_FMT_COUNT; f++)
        if (strcmp(name, fmt_names[f]) == 0)
            return f;
    return -1;
}

const char *til_prep_format_name(int format)
{
    return format >= 0 && format < TIL_FMT_COUNT ? fmt_names[format] : "?";
}

int til_prep_has_rating(const til_prep_opts *o)
{
    switch (o->format) {
    case TIL_FMT_AMAZON:
    case TIL_FMT_ML100K:
    case TIL_FMT_ML1M:
    case TIL_FMT_MLCSV: return 1;
    case TIL_FMT_GENERIC: return o->rating_col > 0;
    default: return 0;
    }
}

int til_prep_has_time(const til_prep_opts *o)
{
    switch (o->format) {
    case TIL_FMT_AMAZON:
    case TIL_FMT_ML100K:
    case TIL_FMT_ML1M:
    case TIL_FMT_MLCSV:
    case TIL_FMT_LASTFM1K:
    case TIL_FMT_GOWALLA_SNAP: return 1;
    case TIL_FMT_GENERIC: return o->time_col > 0;
    default: return 0;
    }
}

#define MAX_COL 64

int til_prep_opts_check(const til_prep_opts *o, til_err *e)
{
    if (o->format < 0 || o->format >= TIL_FMT_COUNT)
        return til_seterr(e, "unknown format");
    const char *fn = fmt_names[o->format];
    int generic = o->format == TIL_FMT_GENERIC;
    if (generic) {
        if (o->user_col < 1 || o->item_col < 1)
            return til_seterr(e, "--format generic needs --user-col and --item-col");
        int c[4] = {o->user_col, o->item_col, o->rating_col, o->time_col};
        for (int a = 0; a < 4; a++) {
            if (c[a] < 0 || c[a] > MAX_COL)
                return til_seterr(e, "columns are 1..%d", MAX_COL);
            for (int b = 0; b < a; b++)
                if (c[a] && c[a] == c[b])
                    return til_seterr(e, "column %d is given twice", c[a]);
        }
    } else if (o->user_col || o->item_col || o->rating_col || o->time_col || o->header || o->sep_kind != TIL_SEP_CHAR ||
               o->sep != ',') {
        return til_seterr(e, "--sep, --header and --*-col apply to --format generic only (format %s is fixed)", fn);
    }
    int rated = til_prep_has_rating(o), timed = til_prep_has_time(o);
    if (!rated && o->min_rating_set)
        return til_seterr(e, "--min-rating: format %s has no ratings (every user-item pair is a positive)", fn);
    if (!rated && o->want_low)
        return til_seterr(e, "--low-ratings: format %s has no ratings", fn);
    if (!rated && o->keep_rating == 1)
        return til_seterr(e, "--keep-rating: format %s has no ratings", fn);
    if (!timed && o->keep_time == 1)
        return til_seterr(e, "--keep-time: format %s has no timestamps", fn);
    if (o->min_rating_set && !isfinite(o->min_rating))
        return til_seterr(e, "--min-rating must be finite");
    if (o->kcore < 0)
        return til_seterr(e, "--kcore must be >= 0");
    return 0;
}

/* How a line is split and which fields mean what (0-based, -1 = absent). */
typedef struct layout {
    int sep_kind;
    char sep;
    int header;          /* 0 none, 1 skip the first line, 2 skip it if its first field is not a number */
    int nf;              /* exact field count (0: at least minf) */
    int minf;
    int ucol, icol, rcol, tcol;
    int t_iso;           /* 0 integer seconds, 1 ISO 8601, 2 either */
    int wcol;            /* play count: a number >= 0 */
    int latcol, loncol;  /* check-in coordinates */
    int numeric_ids;     /* ids must be digits */
    int skip_empty_item; /* an empty item id skips the line (not malformed) */
    int adj;             /* user item item ... */
    int check_ctrl;      /* ids may contain TAB or CR (comma-like separators): reject those */
} layout;

static void layout_of(const til_prep_opts *o, layout *L)
{
    memset(L, 0, sizeof *L);
    L->rcol = L->tcol = L->wcol = L->latcol = L->loncol = -1;
    L->ucol = 0;
    L->icol = 1;
    switch (o->format) {
    case TIL_FMT_AMAZON:
        *L = (layout){TIL_SEP_CHAR, ',', 0, 4, 4, 0, 1, 2, 3, 0, -1, -1, -1, 0, 0, 0, 1};
        break;
    case TIL_FMT_ML100K:
        *L = (layout){TIL_SEP_WS, 0, 0, 4, 4, 0, 1, 2, 3, 0, -1, -1, -1, 1, 0, 0, 0};
        break;
    case TIL_FMT_ML1M:
        *L = (layout){TIL_SEP_DCOLON, 0, 0, 4, 4, 0, 1, 2, 3, 0, -1, -1, -1, 1, 0, 0, 0};
        break;
    case TIL_FMT_MLCSV:
        *L = (layout){TIL_SEP_CHAR, ',', 2, 4, 4, 0, 1, 2, 3, 0, -1, -1, -1, 1, 0, 0, 0};
        break;
    case TIL_FMT_LASTFM:
        *L = (layout){TIL_SEP_WS, 0, 2, 3, 3, 0, 1, -1, -1, 0, 2, -1, -1, 1, 0, 0, 0};
        break;
    case TIL_FMT_LASTFM1K:
        *L = (layout){TIL_SEP_CHAR, '\t', 0, 6, 6, 0, 2, -1, 1, 1, -1, -1, -1, 0, 1, 0, 0};
        break;
    case TIL_FMT_LASTFM360K:
        *L = (layout){TIL_SEP_CHAR, '\t', 0, 4, 4, 0, 1, -1, -1, 0, 3, -1, -1, 0, 1, 0, 0};
        break;
    case TIL_FMT_GOWALLA_SNAP:
        *L = (layout){TIL_SEP_WS, 0, 0, 5, 5, 0, 4, -1, 1, 1, -1, 2, 3, 1, 0, 0, 0};
        break;
    case TIL_FMT_ADJ:
        *L = (layout){TIL_SEP_WS, 0, 0, 0, 1, 0, -1, -1, -1, 0, -1, -1, -1, 1, 0, 1, 0};
        break;
    case TIL_FMT_GENERIC: {
        L->sep_kind = o->sep_kind;
        L->sep = o->sep;
        L->header = o->header ? 1 : 0;
        L->ucol = o->user_col - 1;
        L->icol = o->item_col - 1;
        L->rcol = o->rating_col - 1;
        L->tcol = o->time_col - 1;
        L->t_iso = 2;
        int mx = TIL_MAX(TIL_MAX(o->user_col, o->item_col), TIL_MAX(o->rating_col, o->time_col));
        L->minf = mx;
        L->check_ctrl = o->sep_kind == TIL_SEP_CHAR && o->sep != '\t';
        break;
    }
    }
}

/* ---- numbers ---- */

static const double pow10_tab[23] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
                                     1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

static int number_slow(const char *s, size_t len, double *out)
{
    char buf[64];
    if (len >= sizeof buf)
        return -1;
    memcpy(buf, s, len);
    buf[len] = '\0';
    char *end;
    errno = 0;
    double v = strtod(buf, &end);
    if (end != buf + len || errno == ERANGE || !isfinite(v))
        return -1;
    *out = v;
    return 0;
}

int til_prep_parse_number(const char *s, size_t len, double *out)
{
    const char *p = s, *end = s + len;
    int neg = 0;
    if (p < end && (*p == '+' || *p == '-')) {
        neg = *p == '-';
        p++;
    }
    uint64_t mant = 0;
    int digits = 0, frac = 0;
    while (p < end && (unsigned char)(*p - '0') <= 9) {
        mant = mant * 10 + (uint64_t)(*p++ - '0');
        digits++;
        if (digits > 15)
            return number_slow(s, len, out);
    }
    if (p < end && *p == '.') {
        p++;
        while (p < end && (unsigned char)(*p - '0') <= 9) {
            mant = mant * 10 + (uint64_t)(*p++ - '0');
            digits++;
            frac++;
            if (digits > 15)
                return number_slow(s, len, out);
        }
    }
    if (digits == 0)
        return -1;
    if (p < end && (*p == 'e' || *p == 'E'))
        return number_slow(s, len, out);
    if (p != end)
        return -1;
    /* mant < 10^15 and 10^frac are exact doubles: one correctly rounded division */
    double v = frac ? (double)mant / pow10_tab[frac] : (double)mant;
    *out = neg ? -v : v;
    return 0;
}

static int parse_i64(const char *s, size_t len, int64_t *out)
{
    const char *p = s, *end = s + len;
    int neg = 0;
    if (p < end && (*p == '+' || *p == '-')) {
        neg = *p == '-';
        p++;
    }
    if (p == end)
        return -1;
    uint64_t v = 0;
    for (; p < end; p++) {
        unsigned d = (unsigned char)(*p - '0');
        if (d > 9 || v > (UINT64_C(1) << 63) / 10)
            return -1;
        v = v * 10 + d;
    }
    if (v > (uint64_t)INT64_MAX + (uint64_t)neg)
        return -1;
    *out = neg ? (int64_t)(0 - v) : (int64_t)v;
    return 0;
}

static int all_digits(const char *s, size_t len)
{
    if (len == 0)
        return 0;
    for (size_t k = 0; k < len; k++)
        if ((unsigned char)(s[k] - '0') > 9)
            return 0;
    return 1;
}

static int two(const char *s, int *v)
{
    unsigned a = (unsigned char)(s[0] - '0'), b = (unsigned char)(s[1] - '0');
    if (a > 9 || b > 9)
        return -1;
    *v = (int)(a * 10 + b);
    return 0;
}

/* days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm) */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

int til_prep_parse_iso8601(const char *s, size_t len, int64_t *out)
{
    static const int mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (len == 20 && s[19] == 'Z')
        len = 19;
    if (len != 19 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != ' ') || s[13] != ':' || s[16] != ':')
        return -1;
    int y1, y2, mo, d, h, mi, se;
    if (two(s, &y1) || two(s + 2, &y2) || two(s + 5, &mo) || two(s + 8, &d) || two(s + 11, &h) ||
        two(s + 14, &mi) || two(s + 17, &se))
        return -1;
    int y = y1 * 100 + y2;
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] + (mo == 2 && leap) || h > 23 || mi > 59 || se > 59)
        return -1;
    *out = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se;
    return 0;
}

/* ---- records ---- */

int til_prep_recs_init(til_prep_recs *s, int with_rating, int with_time, til_err *e)
{
    memset(s, 0, sizeof *s);
    s->cap = 1024;
    s->u = til_malloc(s->cap, sizeof *s->u, e);
    s->i = til_malloc(s->cap, sizeof *s->i, e);
    s->r = with_rating ? til_malloc(s->cap, sizeof *s->r, e) : NULL;
    s->t = with_time ? til_malloc(s->cap, sizeof *s->t, e) : NULL;
    if (!s->u || !s->i || (with_rating && !s->r) || (with_time && !s->t)) {
        til_prep_recs_free(s);
        return -1;
    }
    return 0;
}

void til_prep_recs_free(til_prep_recs *s)
{
    free(s->u);
    free(s->i);
    free(s->r);
    free(s->t);
    memset(s, 0, sizeof *s);
}

static int recs_grow(til_prep_recs *s, uint64_t need, til_err *e)
{
    if (need <= s->cap)
        return 0;
    uint64_t cap = TIL_MAX(need, s->cap + s->cap / 2);
    void *p;
    if (!(p = til_realloc(s->u, cap, sizeof *s->u, e)))
        return -1;
    s->u = p;
    if (!(p = til_realloc(s->i, cap, sizeof *s->i, e)))
        return -1;
    s->i = p;
    if (s->r) {
        if (!(p = til_realloc(s->r, cap, sizeof *s->r, e)))
            return -1;
        s->r = p;
    }
    if (s->t) {
        if (!(p = til_realloc(s->t, cap, sizeof *s->t, e)))
            return -1;
        s->t = p;
    }
    s->cap = cap;
    return 0;
}

int til_prep_recs_push(til_prep_recs *s, uint32_t u, uint32_t i, float r, int64_t t, til_err *e)
{
    if (s->n == s->cap && recs_grow(s, s->n + 1, e))
        return -1;
    s->u[s->n] = u;
    s->i[s->n] = i;
    if (s->r)
        s->r[s->n] = r;
    if (s->t)
        s->t[s->n] = t;
    s->n++;
    return 0;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

int til_prep_dedupe(til_prep_recs *s, uint32_t n_users, uint64_t *dups, til_err *e)
{
    uint64_t n = s->n, dropped = 0;
    uint64_t *start = til_calloc((size_t)n_users + 2, sizeof *start, e);
    uint64_t *order = til_malloc(n ? n : 1, sizeof *order, e);
    uint32_t *nu = til_malloc(n ? n : 1, sizeof *nu, e), *ni = til_malloc(n ? n : 1, sizeof *ni, e);
    float *nr = s->r ? til_malloc(n ? n : 1, sizeof *nr, e) : NULL;
    int64_t *nt = s->t ? til_malloc(n ? n : 1, sizeof *nt, e) : NULL;
    uint64_t *keys = NULL;
    int rc = -1;
    if (!start || !order || !nu || !ni || (s->r && !nr) || (s->t && !nt))
        goto out;
    /* counting sort by user (stable); start[u + 1] counts, then becomes positions */
    for (uint64_t k = 0; k < n; k++) {
        if (s->u[k] >= n_users) {
            til_seterr(e, "record %llu: user %u out of range (%u users)", (unsigned long long)k, s->u[k], n_users);
            goto out;
        }
        start[s->u[k] + 2]++;
    }
    for (uint32_t u = 0; u < n_users; u++)
        start[u + 2] += start[u + 1];
    for (uint64_t k = 0; k < n; k++)
        order[start[s->u[k] + 1]++] = k;
    /* now start[u] .. start[u + 1] is user u's slice of order */
    uint64_t maxdeg = 0;
    for (uint32_t u = 0; u < n_users; u++)
        maxdeg = TIL_MAX(maxdeg, start[u + 1] - start[u]);
    if (maxdeg > UINT32_MAX) {
        til_seterr(e, "a user has more than %u records", UINT32_MAX);
        goto out;
    }
    keys = til_malloc(maxdeg ? maxdeg : 1, sizeof *keys, e);
    if (!keys)
        goto out;
    uint64_t o = 0;
    for (uint32_t u = 0; u < n_users; u++) {
        const uint64_t *sl = order + start[u];
        uint64_t m = start[u + 1] - start[u];
        /* key = item << 32 | position in the slice: sorts by item, stable */
        for (uint64_t x = 0; x < m; x++)
            keys[x] = (uint64_t)s->i[sl[x]] << 32 | x;
        if (m <= 32) {
            for (uint64_t x = 1; x < m; x++) {
                uint64_t v = keys[x], y = x;
                for (; y > 0 && keys[y - 1] > v; y--)
                    keys[y] = keys[y - 1];
                keys[y] = v;
            }
        } else {
            qsort(keys, m, sizeof *keys, cmp_u64);
        }
        uint64_t first = o;
        for (uint64_t x = 0; x < m; x++) {
            uint64_t k = sl[keys[x] & 0xffffffffu];
            uint32_t item = (uint32_t)(keys[x] >> 32);
            if (o > first && ni[o - 1] == item) {
                /* a repeated pair: largest rating, latest timestamp */
                if (nr && s->r[k] > nr[o - 1])
                    nr[o - 1] = s->r[k];
                if (nt && s->t[k] > nt[o - 1])
                    nt[o - 1] = s->t[k];
                dropped++;
                continue;
            }
            nu[o] = u;
            ni[o] = item;
            if (nr)
                nr[o] = s->r[k];
            if (nt)
                nt[o] = s->t[k];
            o++;
        }
    }
    free(s->u);
    free(s->i);
    free(s->r);
    free(s->t);
    s->u = nu;
    s->i = ni;
    s->r = nr;
    s->t = nt;
    s->n = o;
    s->cap = n ? n : 1;
    nu = ni = NULL;
    nr = NULL;
    nt = NULL;
    if (dups)
        *dups = dropped;
    rc = 0;
out:
    free(start);
    free(order);
    free(keys);
    free(nu);
    free(ni);
    free(nr);
    free(nt);
    return rc;
}

int til_prep_count(const til_prep_recs *s, uint32_t n_users, uint32_t n_items, uint64_t *users, uint64_t *items,
                   til_err *e)
{
    uint8_t *mu = til_calloc(n_users ? n_users : 1, 1, e), *mi = til_calloc(n_items ? n_items : 1, 1, e);
    if (!mu || !mi) {
        free(mu);
        free(mi);
        return -1;
    }
    uint64_t cu = 0, ci = 0;
    for (uint64_t k = 0; k < s->n; k++) {
        cu += !mu[s->u[k]];
        mu[s->u[k]] = 1;
        ci += !mi[s->i[k]];
        mi[s->i[k]] = 1;
    }
    free(mu);
    free(mi);
    *users = cu;
    *items = ci;
    return 0;
}

static int add_step(til_prep_stats *st, const char *what, uint64_t users, uint64_t items, uint64_t nnz, til_err *e)
{
    if (!st)
        return 0;
    if (st->n_step == st->cap_step) {
        int cap = st->cap_step ? st->cap_step * 2 : 16;
        til_prep_step *p = til_realloc(st->step, (size_t)cap, sizeof *p, e);
        if (!p)
            return -1;
        st->step = p;
        st->cap_step = cap;
    }
    til_prep_step *s = &st->step[st->n_step++];
    snprintf(s->what, sizeof s->what, "%s", what);
    s->users = users;
    s->items = items;
    s->nnz = nnz;
    return 0;
}

int til_prep_kcore(til_prep_recs *s, uint32_t n_users, uint32_t n_items, int k, int once, til_prep_stats *st,
                   const char *prefix, til_err *e)
{
    if (k <= 0)
        return 0;
    uint64_t *ud = til_calloc(n_users ? n_users : 1, sizeof *ud, e);
    uint64_t *id = til_calloc(n_items ? n_items : 1, sizeof *id, e);
    int rounds = -1;
    if (!ud || !id)
        goto out;
    for (uint64_t x = 0; x < s->n; x++) {
        ud[s->u[x]]++;
        id[s->i[x]]++;
    }
    const uint64_t kk = (uint64_t)k;
    rounds = 0;
    for (;;) {
        /* one round: drop every record of a user or item below k (degrees as
         * the round starts), then recount */
        uint64_t o = 0;
        for (uint64_t x = 0; x < s->n; x++) {
            if (ud[s->u[x]] < kk || id[s->i[x]] < kk)
                continue;
            s->u[o] = s->u[x];
            s->i[o] = s->i[x];
            if (s->r)
                s->r[o] = s->r[x];
            if (s->t)
                s->t[o] = s->t[x];
            o++;
        }
        if (o == s->n)
            break;
        s->n = o;
        memset(ud, 0, (size_t)n_users * sizeof *ud);
        memset(id, 0, (size_t)n_items * sizeof *id);
        uint64_t cu = 0, ci = 0;
        for (uint64_t x = 0; x < s->n; x++) {
            cu += ud[s->u[x]]++ == 0;
            ci += id[s->i[x]]++ == 0;
        }
        rounds++;
        char what[48];
        snprintf(what, sizeof what, "%s round %d", prefix ? prefix : "kcore", rounds);
        if (add_step(st, what, cu, ci, s->n, e)) {
            rounds = -1;
            goto out;
        }
        if (once)
            break;
    }
out:
    free(ud);
    free(id);
    return rounds;
}

/* ---- the pipeline state ---- */

/* Records parsed but not yet interned: the parse loop queues them (ids copied,
 * since the reader's line buffer moves on) and interns a batch at a time, so
 * the hash-table cache misses of one batch overlap (prefetch, then use). */
#define BATCH 64

typedef struct pending {
    uint64_t uo, io; /* offsets of the ids in batch_ids */
    uint32_t ul, il;
    uint64_t hu, hi;
    float r;
    int64_t t;
    int low;
} pending;

struct til_prep {
    pending batch[BATCH];
    int nb;
    char *batch_ids;
    size_t ids_len, ids_cap;
    til_prep_opts o;
    layout L;
    double min_rating;
    int rated, keep_r, keep_t;
    til_idmap *users, *items;
    til_prep_recs pos, low;
    til_prep_stats st;
    uint32_t *dense[2]; /* after finish: dense id -> idmap id, users and items */
    uint32_t n_dense[2];
};

til_prep *til_prep_new(const til_prep_opts *o, til_err *e)
{
    if (til_prep_opts_check(o, e))
        return NULL;
    til_prep *p = til_calloc(1, sizeof *p, e);
    if (!p)
        return NULL;
    p->o = *o;
    layout_of(o, &p->L);
    p->rated = til_prep_has_rating(o);
    p->min_rating = o->min_rating_set ? o->min_rating : 4;
    p->keep_r = p->rated && o->keep_rating != 0;
    p->keep_t = til_prep_has_time(o) && o->keep_time != 0;
    p->users = til_idmap_new(e);
    p->items = til_idmap_new(e);
    if (!p->users || !p->items || til_prep_recs_init(&p->pos, p->keep_r, p->keep_t, e) ||
        (o->want_low && til_prep_recs_init(&p->low, p->keep_r, p->keep_t, e))) {
        til_prep_free(&p);
        return NULL;
    }
    return p;
}

void til_prep_free(til_prep **pp)
{
    til_prep *p = *pp;
    if (!p)
        return;
    til_idmap_free(&p->users);
    til_idmap_free(&p->items);
    til_prep_recs_free(&p->pos);
    til_prep_recs_free(&p->low);
    free(p->st.step);
    free(p->dense[0]);
    free(p->dense[1]);
    free(p->batch_ids);
    free(p);
    *pp = NULL;
}

const til_prep_stats *til_prep_get_stats(const til_prep *p) { return &p->st; }

/* ---- parsing ---- */

typedef struct span {
    const char *p;
    size_t len;
} span;

/* Splits line into at most max spans; returns the number of fields (which may
 * exceed max: the extra ones are counted, not stored). */
static int split(const layout *L, const char *s, size_t len, span *f, int max)
{
    const char *p = s, *end = s + len;
    int n = 0;
    switch (L->sep_kind) {
    case TIL_SEP_CHAR:
        for (;;) {
            const char *q = memchr(p, L->sep, (size_t)(end - p));
            const char *fe = q ? q : end;
            if (n < max)
                f[n] = (span){p, (size_t)(fe - p)};
            n++;
            if (!q)
                break;
            p = q + 1;
        }
        break;
    case TIL_SEP_DCOLON:
        for (;;) {
            const char *q = p;
            while ((q = memchr(q, ':', (size_t)(end - q))) && !(q + 1 < end && q[1] == ':'))
                q++;
            const char *fe = q ? q : end;
            if (n < max)
                f[n] = (span){p, (size_t)(fe - p)};
            n++;
            if (!q)
                break;
            p = q + 2;
        }
        break;
    default: /* runs of blanks separate; leading and trailing blanks ignored */
        for (;;) {
            while (p < end && (*p == ' ' || *p == '\t'))
                p++;
            if (p == end)
                break;
            const char *q = p;
            while (q < end && *q != ' ' && *q != '\t')
                q++;
            if (n < max)
                f[n] = (span){p, (size_t)(q - p)};
            n++;
            p = q;
        }
        break;
    }
    return n;
}

/* Records a malformed line: in strict mode it is the error, else counted and
 * (the first few) remembered. Returns 0 to go on, -1 to stop. */
static int bad_line(til_prep *p, const char *name, uint64_t line, til_err *e, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static int bad_line(til_prep *p, const char *name, uint64_t line, til_err *e, const char *fmt, ...)
{
    char why[192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    if (p->o.strict)
        return til_seterr(e, "%s:%llu: %s", name, (unsigned long long)line, why);
    p->st.malformed++;
    if (p->st.n_bad < TIL_PREP_NBAD)
        snprintf(p->st.bad[p->st.n_bad++], sizeof p->st.bad[0], "%s:%llu: %s", name, (unsigned long long)line, why);
    return 0;
}

#define SHOW(sp) (int)TIL_MIN((sp).len, 40), (sp).p

static int check_id(const layout *L, span s, const char *what, char *why, size_t n)
{
    if (s.len == 0) {
        snprintf(why, n, "empty %s id", what);
        return -1;
    }
    if (L->numeric_ids && !all_digits(s.p, s.len)) {
        snprintf(why, n, "%s id '%.*s' is not a non-negative integer", what, SHOW(s));
        return -1;
    }
    if (L->check_ctrl && (memchr(s.p, '\t', s.len) || memchr(s.p, '\r', s.len))) {
        snprintf(why, n, "%s id contains a tab or carriage return", what);
        return -1;
    }
    return 0;
}

static int flush(til_prep *p, til_err *e)
{
    pending *b = p->batch;
    const char *ids = p->batch_ids;
    for (int k = 0; k < p->nb; k++) {
        b[k].hu = til_idmap_hash(ids + b[k].uo, b[k].ul);
        b[k].hi = til_idmap_hash(ids + b[k].io, b[k].il);
        til_idmap_prefetch(p->users, b[k].hu);
        til_idmap_prefetch(p->items, b[k].hi);
    }
    for (int k = 0; k < p->nb; k++) {
        til_idmap_prefetch_key(p->users, b[k].hu);
        til_idmap_prefetch_key(p->items, b[k].hi);
    }
    for (int k = 0; k < p->nb; k++) {
        int64_t u = til_idmap_intern_h(p->users, ids + b[k].uo, b[k].ul, b[k].hu, e);
        if (u < 0)
            return til_errctx(e, "users");
        int64_t i = til_idmap_intern_h(p->items, ids + b[k].io, b[k].il, b[k].hi, e);
        if (i < 0)
            return til_errctx(e, "items");
        if (til_prep_recs_push(b[k].low ? &p->low : &p->pos, (uint32_t)u, (uint32_t)i, b[k].r, b[k].t, e))
            return -1;
    }
    p->nb = 0;
    p->ids_len = 0;
    return 0;
}

static int queue(til_prep *p, span u, span i, float r, int64_t t, int low, til_err *e)
{
    size_t need = p->ids_len + u.len + i.len;
    if (need > p->ids_cap) {
        size_t cap = TIL_MAX(need, TIL_MAX(p->ids_cap * 2, (size_t)8192));
        char *q = til_realloc(p->batch_ids, cap, 1, e);
        if (!q)
            return -1;
        p->batch_ids = q;
        p->ids_cap = cap;
    }
    pending *b = &p->batch[p->nb++];
    b->uo = p->ids_len;
    b->ul = (uint32_t)u.len;
    memcpy(p->batch_ids + p->ids_len, u.p, u.len);
    p->ids_len += u.len;
    b->io = p->ids_len;
    b->il = (uint32_t)i.len;
    memcpy(p->batch_ids + p->ids_len, i.p, i.len);
    p->ids_len += i.len;
    b->r = r;
    b->t = t;
    b->low = low;
    return p->nb == BATCH ? flush(p, e) : 0;
}

static int parse_adj(til_prep *p, const char *s, size_t len, const char *name, uint64_t line, til_err *e)
{
    const char *q = s, *end = s + len;
    span u = {0, 0};
    uint64_t n_items = 0;
    /* first pass: validate every token, so a bad line adds nothing */
    for (;;) {
        while (q < end && (*q == ' ' || *q == '\t'))
            q++;
        if (q == end)
            break;
        const char *t = q;
        while (q < end && *q != ' ' && *q != '\t')
            q++;
        span tok = {t, (size_t)(q - t)};
        if (!all_digits(tok.p, tok.len))
            return bad_line(p, name, line, e, "%s id '%.*s' is not a non-negative integer", u.p ? "item" : "user",
                            SHOW(tok));
        if (!u.p)
            u = tok;
        else
            n_items++;
    }
    if (!u.p) {
        p->st.blank++;
        return 0;
    }
    int64_t uid = til_idmap_intern(p->users, u.p, u.len, e);
    if (uid < 0)
        return til_errctx(e, "users");
    q = u.p + u.len;
    p->st.records += n_items;
    if (recs_grow(&p->pos, p->pos.n + n_items, e))
        return -1;
    while (q < end) {
        while (q < end && (*q == ' ' || *q == '\t'))
            q++;
        if (q == end)
            break;
        const char *t = q;
        while (q < end && *q != ' ' && *q != '\t')
            q++;
        int64_t iid = til_idmap_intern(p->items, t, (size_t)(q - t), e);
        if (iid < 0)
            return til_errctx(e, "items");
        p->pos.u[p->pos.n] = (uint32_t)uid;
        p->pos.i[p->pos.n] = (uint32_t)iid;
        p->pos.n++;
    }
    return 0;
}

static int parse_line(til_prep *p, char *s, size_t len, const char *name, uint64_t line, til_err *e)
{
    const layout *L = &p->L;
    if (L->adj)
        return parse_adj(p, s, len, name, line, e);
    span f[MAX_COL];
    int nf = split(L, s, len, f, MAX_COL);
    if (nf == 0 || (nf == 1 && f[0].len == 0)) {
        p->st.blank++;
        return 0;
    }
    if (line == 1 && L->header) {
        double v;
        if (L->header == 1 || til_prep_parse_number(f[0].p, f[0].len, &v)) {
            p->st.header++;
            return 0;
        }
    }
    if (L->nf ? nf != L->nf : nf < L->minf)
        return bad_line(p, name, line, e, "expected %s%d fields, got %d", L->nf ? "" : "at least ",
                        L->nf ? L->nf : L->minf, nf);
    char why[192];
    span u = f[L->ucol], i = f[L->icol];
    if (check_id(L, u, "user", why, sizeof why))
        return bad_line(p, name, line, e, "%s", why);
    if (L->skip_empty_item && i.len == 0) {
        p->st.no_item++;
        return 0;
    }
    if (check_id(L, i, "item", why, sizeof why))
        return bad_line(p, name, line, e, "%s", why);
    double r = 0;
    if (L->rcol >= 0 && til_prep_parse_number(f[L->rcol].p, f[L->rcol].len, &r))
        return bad_line(p, name, line, e, "rating '%.*s' is not a number", SHOW(f[L->rcol]));
    int64_t t = 0;
    if (L->tcol >= 0) {
        span ts = f[L->tcol];
        int bad = L->t_iso == 0   ? parse_i64(ts.p, ts.len, &t)
                  : L->t_iso == 1 ? til_prep_parse_iso8601(ts.p, ts.len, &t)
                                  : parse_i64(ts.p, ts.len, &t) && til_prep_parse_iso8601(ts.p, ts.len, &t);
        if (bad)
            return bad_line(p, name, line, e, "timestamp '%.*s' is not %s", SHOW(ts),
                            L->t_iso == 0   ? "an integer"
                            : L->t_iso == 1 ? "ISO 8601 (YYYY-MM-DDTHH:MM:SSZ)"
                                            : "an integer or ISO 8601");
    }
    if (L->wcol >= 0) {
        double w;
        if (til_prep_parse_number(f[L->wcol].p, f[L->wcol].len, &w) || w < 0)
            return bad_line(p, name, line, e, "play count '%.*s' is not a number >= 0", SHOW(f[L->wcol]));
    }
    if (L->latcol >= 0) {
        double la, lo;
        if (til_prep_parse_number(f[L->latcol].p, f[L->latcol].len, &la) || la < -90 || la > 90)
            return bad_line(p, name, line, e, "latitude '%.*s' is not a number in [-90, 90]", SHOW(f[L->latcol]));
        if (til_prep_parse_number(f[L->loncol].p, f[L->loncol].len, &lo) || lo < -180 || lo > 180)
            return bad_line(p, name, line, e, "longitude '%.*s' is not a number in [-180, 180]",
                            SHOW(f[L->loncol]));
    }
    p->st.records++;
    int low = 0;
    if (p->rated && !(r >= p->min_rating)) {
        p->st.below++;
        if (!p->o.want_low)
            return 0;
        low = 1;
    }
    if (u.len > UINT32_MAX || i.len > UINT32_MAX)
        return bad_line(p, name, line, e, "id too long");
    return queue(p, u, i, (float)r, t, low, e);
}

static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int til_prep_read(til_prep *p, til_rd *r, til_err *e)
{
    double t0 = til_now(), c0 = cpu_now();
    const char *name = til_rd_name(r);
    char *s;
    long len;
    uint64_t lines = 0;
    while ((len = til_rd_line(r, &s, e)) >= 0) {
        lines++;
        if (parse_line(p, s, (size_t)len, name, til_rd_lineno(r), e))
            return -1;
    }
    if (len == -2 || flush(p, e))
        return -1;
    p->st.lines += lines;
    p->st.bytes += til_rd_bytes(r);
    p->st.t_parse += til_now() - t0;
    p->st.cpu_parse += cpu_now() - c0;
    return 0;
}

/* ---- steps 3-6 ---- */

static int step_of(til_prep *p, const til_prep_recs *s, const char *what, uint32_t nu, uint32_t ni, til_err *e)
{
    uint64_t cu, ci;
    if (til_prep_count(s, nu, ni, &cu, &ci, e))
        return -1;
    return add_step(&p->st, what, cu, ci, s->n, e);
}

/* Dense ids of one kind: survivors (present[id]) in the map's sort order.
 * Fills newid[idmap id] (UINT32_MAX for the others) and p->dense[which]. */
static int reindex(til_prep *p, int which, const uint8_t *present, uint32_t *newid, til_err *e)
{
    const til_idmap *m = which ? p->items : p->users;
    uint32_t n = til_idmap_size(m);
    uint32_t *sorted = til_idmap_sorted(m, e);
    if (!sorted)
        return -1;
    free(p->dense[which]);
    p->dense[which] = sorted; /* compacted in place below: dense -> idmap id */
    uint32_t d = 0;
    for (uint32_t k = 0; k < n; k++) {
        uint32_t id = sorted[k];
        newid[id] = UINT32_MAX;
        if (present[id]) {
            newid[id] = d;
            sorted[d++] = id;
        }
    }
    p->n_dense[which] = d;
    return 0;
}

int til_prep_finish(til_prep *p, til_inter *out, til_inter *low, til_err *e)
{
    double t0 = til_now();
    uint32_t nu = til_idmap_size(p->users), ni = til_idmap_size(p->items);
    uint8_t *pu = NULL, *pi = NULL;
    uint32_t *newu = NULL, *newi = NULL;
    int rc = -1;
    memset(out, 0, sizeof *out);
    char what[48];
    if (p->rated)
        snprintf(what, sizeof what, "rating>=%g", p->min_rating);
    else
        snprintf(what, sizeof what, "parsed");
    if (step_of(p, &p->pos, what, nu, ni, e))
        return -1;
    if (til_prep_dedupe(&p->pos, nu, &p->st.dups, e) || step_of(p, &p->pos, "dedupe", nu, ni, e))
        return -1;
    char prefix[32];
    snprintf(prefix, sizeof prefix, "kcore%d", p->o.kcore);
    if (til_prep_kcore(&p->pos, nu, ni, p->o.kcore, p->o.kcore_once, &p->st, prefix, e) < 0)
        return -1;
    pu = til_calloc(nu ? nu : 1, 1, e);
    pi = til_calloc(ni ? ni : 1, 1, e);
    newu = til_malloc(nu ? nu : 1, sizeof *newu, e);
    newi = til_malloc(ni ? ni : 1, sizeof *newi, e);
    if (!pu || !pi || !newu || !newi)
        goto out;
    for (uint64_t k = 0; k < p->pos.n; k++) {
        pu[p->pos.u[k]] = 1;
        pi[p->pos.i[k]] = 1;
    }
    if (reindex(p, 0, pu, newu, e) || reindex(p, 1, pi, newi, e))
        goto out;
    for (uint64_t k = 0; k < p->pos.n; k++) {
        p->pos.u[k] = newu[p->pos.u[k]];
        p->pos.i[k] = newi[p->pos.i[k]];
    }
    if (til_inter_from_pairs(out, p->n_dense[0], p->n_dense[1], p->pos.n, p->pos.u, p->pos.i, p->pos.r, p->pos.t,
                             NULL, e))
        goto out;
    if (add_step(&p->st, "final", out->n_users, out->n_items, out->nnz, e))
        goto out;
    if (low && p->o.want_low) {
        /* low ratings among the survivors, same dense ids; pairs that also have a
         * kept rating are positives, not low */
        til_prep_recs *s = &p->low;
        uint64_t o = 0;
        for (uint64_t k = 0; k < s->n; k++) {
            uint32_t u = newu[s->u[k]], i = newi[s->i[k]];
            if (u == UINT32_MAX || i == UINT32_MAX)
                continue;
            s->u[o] = u;
            s->i[o] = i;
            if (s->r)
                s->r[o] = s->r[k];
            if (s->t)
                s->t[o] = s->t[k];
            o++;
        }
        s->n = o;
        if (til_prep_dedupe(s, out->n_users, &p->st.low_dups, e))
            goto out;
        o = 0;
        for (uint64_t k = 0; k < s->n; k++) {
            if (til_inter_has(out, s->u[k], s->i[k]))
                continue;
            s->u[o] = s->u[k];
            s->i[o] = s->i[k];
            if (s->r)
                s->r[o] = s->r[k];
            if (s->t)
                s->t[o] = s->t[k];
            o++;
        }
        s->n = o;
        if (til_inter_from_pairs(low, out->n_users, out->n_items, s->n, s->u, s->i, s->r, s->t, NULL, e))
            goto out;
        p->st.low_nnz = low->nnz;
    }
    rc = 0;
out:
    if (rc)
        til_inter_free(out);
    free(pu);
    free(pi);
    free(newu);
    free(newi);
    p->st.t_total += til_now() - t0;
    return rc;
}

const char *til_prep_raw_id(const til_prep *p, int which, uint32_t dense, size_t *len)
{
    return til_idmap_key(which ? p->items : p->users, p->dense[which][dense], len);
}

int til_prep_write_map(const til_prep *p, int which, const char *path, til_err *e)
{
    til_wr *w = til_wr_open(path, -1, e);
    if (!w)
        return -1;
    for (uint32_t d = 0; d < p->n_dense[which]; d++) {
        size_t len;
        const char *k = til_prep_raw_id(p, which, d, &len);
        if (til_wr_printf(w, e, "%u\t%.*s\n", d, (int)len, k)) {
            til_wr_abort(&w);
            return -1;
        }
    }
    return til_wr_commit(&w, e);
}

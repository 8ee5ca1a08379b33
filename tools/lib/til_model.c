/* til_model: validated tensor container for models and checkpoints. */
#include "til_model.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "til_io.h"

#define TRAILER "TILEND01"
#define MAX_NAME 255u
#define MAX_VAL 65535u
#define MAX_ENTRIES 100000u
#define MAX_ELEMS (1ull << 36)

size_t til_dtype_size(int d)
{
    switch (d) {
    case TIL_F32: case TIL_U32: return 4;
    case TIL_F64: case TIL_U64: case TIL_I64: return 8;
    default: return 0;
    }
}

const char *til_dtype_name(int d)
{
    switch (d) {
    case TIL_F32: return "f32";
    case TIL_F64: return "f64";
    case TIL_U32: return "u32";
    case TIL_U64: return "u64";
    case TIL_I64: return "i64";
    default: return "?";
    }
}

void til_model_init(til_model *m) { memset(m, 0, sizeof *m); }

void til_model_free(til_model *m)
{
    for (int i = 0; i < m->n_meta; i++) {
        free(m->key[i]);
        free(m->val[i]);
    }
    free(m->key);
    free(m->val);
    for (int i = 0; i < m->n_tensor; i++) {
        free(m->t[i].name);
        free(m->t[i].data);
    }
    free(m->t);
    memset(m, 0, sizeof *m);
}

static int key_ok(const char *k)
{
    size_t n = strlen(k);
    if (n == 0 || n > MAX_NAME)
        return 0;
    for (const char *p = k; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '_' ||
              *p == '.' || *p == '-'))
            return 0;
    return 1;
}

static int val_ok(const char *v)
{
    if (strlen(v) > MAX_VAL)
        return 0;
    for (const unsigned char *p = (const unsigned char *)v; *p; p++)
        if (*p < 0x20 && *p != '\t')
            return 0;
    return 1;
}

int til_model_set(til_model *m, const char *key, const char *val, til_err *e)
{
    if (!key_ok(key))
        return til_seterr(e, "bad metadata key '%s'", key);
    if (!val_ok(val))
        return til_seterr(e, "bad metadata value for '%s' (control characters or too long)", key);
    for (int i = 0; i < m->n_meta; i++)
        if (strcmp(m->key[i], key) == 0) {
            char *v = til_strdup(val, e);
            if (!v)
                return -1;
            free(m->val[i]);
            m->val[i] = v;
            return 0;
        }
    if (m->n_meta == m->cap_meta) {
        int cap = m->cap_meta ? m->cap_meta * 2 : 16;
        char **k = til_realloc(m->key, (size_t)cap, sizeof *k, e);
        if (!k)
            return -1;
        m->key = k;
        char **v = til_realloc(m->val, (size_t)cap, sizeof *v, e);
        if (!v)
            return -1;
        m->val = v;
        m->cap_meta = cap;
    }
    char *k = til_strdup(key, e), *v = til_strdup(val, e);
    if (!k || !v) {
        free(k);
        free(v);
        return -1;
    }
    m->key[m->n_meta] = k;
    m->val[m->n_meta] = v;
    m->n_meta++;
    return 0;
}

int til_model_setf(til_model *m, til_err *e, const char *key, const char *fmt, ...)
{
    char buf[4096];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof buf)
        return til_seterr(e, "metadata value for '%s' too long", key);
    return til_model_set(m, key, buf, e);
}

const char *til_model_get(const til_model *m, const char *key)
{
    for (int i = 0; i < m->n_meta; i++)
        if (strcmp(m->key[i], key) == 0)
            return m->val[i];
    return NULL;
}

int til_model_get_u64(const til_model *m, const char *key, uint64_t *out, til_err *e)
{
    const char *v = til_model_get(m, key);
    if (!v)
        return til_seterr(e, "missing metadata '%s'", key);
    return til_parse_u64(v, 0, UINT64_MAX, out, key, e);
}

int til_model_get_double(const til_model *m, const char *key, double *out, til_err *e)
{
    const char *v = til_model_get(m, key);
    if (!v)
        return til_seterr(e, "missing metadata '%s'", key);
    return til_parse_double(v, -HUGE_VAL, HUGE_VAL, out, key, e);
}

til_tensor *til_model_find(const til_model *m, const char *name)
{
    for (int i = 0; i < m->n_tensor; i++)
        if (strcmp(m->t[i].name, name) == 0)
            return &m->t[i];
    return NULL;
}

til_tensor *til_model_add(til_model *m, const char *name, int dtype, uint64_t rows, uint64_t cols,
                          const void *data, til_err *e)
{
    if (!key_ok(name)) {
        til_seterr(e, "bad tensor name '%s'", name);
        return NULL;
    }
    if (til_model_find(m, name)) {
        til_seterr(e, "duplicate tensor '%s'", name);
        return NULL;
    }
    size_t es = til_dtype_size(dtype);
    if (!es || (cols && rows > MAX_ELEMS / cols)) {
        til_seterr(e, "tensor '%s': bad type or size", name);
        return NULL;
    }
    if (m->n_tensor == m->cap_tensor) {
        int cap = m->cap_tensor ? m->cap_tensor * 2 : 8;
        til_tensor *t = til_realloc(m->t, (size_t)cap, sizeof *t, e);
        if (!t)
            return NULL;
        m->t = t;
        m->cap_tensor = cap;
    }
    til_tensor *t = &m->t[m->n_tensor];
    t->name = til_strdup(name, e);
    t->data = til_aligned_calloc((size_t)(rows * cols), es, e);
    if (!t->name || !t->data) {
        free(t->name);
        free(t->data);
        return NULL;
    }
    if (data)
        memcpy(t->data, data, (size_t)(rows * cols) * es);
    t->dtype = dtype;
    t->rows = rows;
    t->cols = cols;
    m->n_tensor++;
    return t;
}

til_tensor *til_model_need(const til_model *m, const char *name, int dtype, uint64_t rows, uint64_t cols,
                           const char *file, til_err *e)
{
    til_tensor *t = til_model_find(m, name);
    if (!t) {
        til_seterr(e, "%s: no tensor '%s'", file, name);
        return NULL;
    }
    if (t->dtype != dtype || (rows && t->rows != rows) || (cols && t->cols != cols)) {
        til_seterr(e, "%s: tensor '%s' is %s %llux%llu, expected %s %llux%llu", file, name,
                   til_dtype_name(t->dtype), (unsigned long long)t->rows, (unsigned long long)t->cols,
                   til_dtype_name(dtype), (unsigned long long)rows, (unsigned long long)cols);
        return NULL;
    }
    return t;
}

static int wr_u32(til_wr *w, uint32_t v, til_err *e) { return til_wr_write(w, &v, 4, e); }
static int wr_u64(til_wr *w, uint64_t v, til_err *e) { return til_wr_write(w, &v, 8, e); }
static int wr_str(til_wr *w, const char *s, til_err *e)
{
    uint32_t n = (uint32_t)strlen(s);
    return wr_u32(w, n, e) || til_wr_write(w, s, n, e);
}

int til_model_write(const char *path, const til_model *m, til_err *e)
{
    til_wr *w = til_wr_open(path, -1, e);
    if (!w)
        return -1;
    if (til_wr_write(w, TIL_MODEL_MAGIC, 8, e) || wr_u32(w, TIL_MODEL_VERSION, e) ||
        wr_u32(w, (uint32_t)m->n_meta, e) || wr_u32(w, (uint32_t)m->n_tensor, e) || wr_u32(w, 0, e))
        goto fail;
    for (int i = 0; i < m->n_meta; i++)
        if (wr_str(w, m->key[i], e) || wr_str(w, m->val[i], e))
            goto fail;
    for (int i = 0; i < m->n_tensor; i++) {
        const til_tensor *t = &m->t[i];
        if (wr_str(w, t->name, e) || wr_u32(w, (uint32_t)t->dtype, e) || wr_u64(w, t->rows, e) ||
            wr_u64(w, t->cols, e) || til_wr_write(w, t->data, (size_t)(t->rows * t->cols) * til_dtype_size(t->dtype), e))
            goto fail;
    }
    if (til_wr_write(w, TRAILER, 8, e) || wr_u32(w, (uint32_t)m->n_tensor, e))
        goto fail;
    return til_wr_commit(&w, e);
fail:
    til_wr_abort(&w);
    return -1;
}

static int rd_u32(til_rd *r, uint32_t *v, til_err *e) { return til_rd_read(r, v, 4, e); }
static int rd_u64(til_rd *r, uint64_t *v, til_err *e) { return til_rd_read(r, v, 8, e); }
static char *rd_str(til_rd *r, uint32_t max, const char *what, til_err *e)
{
    uint32_t n;
    if (rd_u32(r, &n, e))
        return NULL;
    if (n > max) {
        til_seterr(e, "%s: %s length %u exceeds %u (corrupt file)", til_rd_name(r), what, n, max);
        return NULL;
    }
    char *s = til_malloc((size_t)n + 1, 1, e);
    if (!s)
        return NULL;
    if (til_rd_read(r, s, n, e)) {
        free(s);
        return NULL;
    }
    s[n] = '\0';
    if (strlen(s) != n) {
        til_seterr(e, "%s: %s contains a NUL byte (corrupt file)", til_rd_name(r), what);
        free(s);
        return NULL;
    }
    return s;
}

int til_model_read(const char *path, til_model *m, til_err *e)
{
    til_model_init(m);
    til_rd *r = til_rd_open(path, e);
    if (!r)
        return -1;
    int rc = til_model_read_from(r, m, e);
    til_rd_close(&r);
    return rc;
}

int til_model_read_from(til_rd *r, til_model *m, til_err *e)
{
    til_model_init(m);
    const char *name = til_rd_name(r);
    char magic[8];
    uint32_t ver, n_meta, n_tensor, resv;
    if (til_rd_read(r, magic, 8, e)) {
        til_seterr(e, "%s: empty or truncated file (no model header)", name);
        goto fail;
    }
    if (memcmp(magic, TIL_MODEL_MAGIC, 8) != 0) {
        til_seterr(e, "%s: not a til model file (bad magic)", name);
        goto fail;
    }
    if (rd_u32(r, &ver, e) || rd_u32(r, &n_meta, e) || rd_u32(r, &n_tensor, e) || rd_u32(r, &resv, e))
        goto fail;
    if (ver != TIL_MODEL_VERSION) {
        til_seterr(e, "%s: unsupported model file version %u (this build reads %u)", name, ver, TIL_MODEL_VERSION);
        goto fail;
    }
    if (n_meta > MAX_ENTRIES || n_tensor > MAX_ENTRIES || resv != 0) {
        til_seterr(e, "%s: corrupt header (meta %u, tensors %u)", name, n_meta, n_tensor);
        goto fail;
    }
    for (uint32_t i = 0; i < n_meta; i++) {
        char *k = rd_str(r, MAX_NAME, "metadata key", e);
        if (!k)
            goto fail;
        char *v = rd_str(r, MAX_VAL, "metadata value", e);
        if (!v) {
            free(k);
            goto fail;
        }
        int dup = til_model_get(m, k) != NULL;
        int rc = dup ? til_seterr(e, "duplicate metadata key '%s'", k) : til_model_set(m, k, v, e);
        free(k);
        free(v);
        if (rc) {
            til_errctx(e, "%s", name);
            goto fail;
        }
    }
    for (uint32_t i = 0; i < n_tensor; i++) {
        char *tn = rd_str(r, MAX_NAME, "tensor name", e);
        if (!tn)
            goto fail;
        uint32_t dt;
        uint64_t rows, cols;
        if (rd_u32(r, &dt, e) || rd_u64(r, &rows, e) || rd_u64(r, &cols, e)) {
            free(tn);
            goto fail;
        }
        if (!til_dtype_size((int)dt) || (cols && rows > MAX_ELEMS / cols)) {
            til_seterr(e, "%s: tensor '%s': bad type %u or size %llux%llu", name, tn, dt, (unsigned long long)rows,
                       (unsigned long long)cols);
            free(tn);
            goto fail;
        }
        til_tensor *t = til_model_add(m, tn, (int)dt, rows, cols, NULL, e);
        free(tn);
        if (!t) {
            til_errctx(e, "%s", name);
            goto fail;
        }
        if (til_rd_read(r, t->data, (size_t)(rows * cols) * til_dtype_size((int)dt), e))
            goto fail;
    }
    char tr[8];
    uint32_t tn;
    if (til_rd_read(r, tr, 8, e) || rd_u32(r, &tn, e))
        goto fail;
    if (memcmp(tr, TRAILER, 8) != 0 || tn != n_tensor) {
        til_seterr(e, "%s: bad trailer (file corrupt)", name);
        goto fail;
    }
    int at_end = til_rd_eof(r, e);
    if (at_end < 0)
        goto fail;
    if (!at_end) {
        til_seterr(e, "%s: unexpected data after the trailer", name);
        goto fail;
    }
    return 0;
fail:
    til_model_free(m);
    return -1;
}

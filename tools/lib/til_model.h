/* til_model: the tensor container used for models and checkpoints
 * (docs/FORMATS.md, "Model files").
 *
 * A file holds text metadata (key = value, in order) and named tensors (float32,
 * float64, uint32, uint64 or int64; one or two dimensions). A model file has
 * meta "kind" = "model" and at least: "backbone", "n_users", "n_items", "dim",
 * and tensors "user" (n_users x dim) and "item" (n_items x dim): the final
 * representations that scores are computed from. A backbone whose score is not
 * a dot product (NeuMF) adds its layers as more tensors and names its scorer in
 * meta "scorer". Checkpoints use the same container with "kind" = "checkpoint".
 *
 * The reader validates everything (magic, version, lengths, dtypes, sizes,
 * trailer, no trailing bytes) and rejects duplicate names. */
#ifndef TIL_MODEL_H
#define TIL_MODEL_H

#include <stdint.h>

#include "til_util.h"

#define TIL_MODEL_MAGIC "TILMODEL"
#define TIL_MODEL_VERSION 1u

enum til_dtype { TIL_F32 = 1, TIL_F64 = 2, TIL_U32 = 3, TIL_U64 = 4, TIL_I64 = 5 };

typedef struct til_tensor {
    char *name;
    int dtype;
    uint64_t rows, cols; /* a vector has cols = 1 */
    void *data;          /* rows * cols elements, owned by the model */
} til_tensor;

typedef struct til_model {
    int n_meta, cap_meta;
    char **key, **val;
    int n_tensor, cap_tensor;
    til_tensor *t;
} til_model;

size_t til_dtype_size(int dtype);
const char *til_dtype_name(int dtype);

void til_model_init(til_model *m);
void til_model_free(til_model *m);

/* Sets (adds or replaces) a metadata value. Keys: [A-Za-z0-9_.-]+; values
 * printable text without newlines. */
int til_model_set(til_model *m, const char *key, const char *val, til_err *e);
int til_model_setf(til_model *m, til_err *e, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Returns the value or NULL. */
const char *til_model_get(const til_model *m, const char *key);
/* Gets and parses a required value; error names the key. */
int til_model_get_u64(const til_model *m, const char *key, uint64_t *out, til_err *e);
int til_model_get_double(const til_model *m, const char *key, double *out, til_err *e);

/* Adds a tensor, copying data (data NULL: zeroed). Returns it, or NULL. */
til_tensor *til_model_add(til_model *m, const char *name, int dtype, uint64_t rows, uint64_t cols,
                          const void *data, til_err *e);
/* Finds a tensor by name, or NULL. */
til_tensor *til_model_find(const til_model *m, const char *name);
/* Finds a tensor and checks its dtype and shape (0 for rows/cols: any). */
til_tensor *til_model_need(const til_model *m, const char *name, int dtype, uint64_t rows, uint64_t cols,
                           const char *file, til_err *e);

int til_model_read(const char *path, til_model *m, til_err *e);
/* Reads from an open reader (til-cat sniffs the magic first). */
struct til_rd;
int til_model_read_from(struct til_rd *r, til_model *m, til_err *e);
/* Writes atomically ("-" = stdout), uncompressed. */
int til_model_write(const char *path, const til_model *m, til_err *e);

#endif

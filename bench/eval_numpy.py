#!/usr/bin/python3
"""The NumPy peer of til-eval: the same full-ranking evaluation, written the way
one would in NumPy (blocked matmul, masking with -inf, argpartition top-k).

Reads the til model file (tensors user, item) and the train/valid/test splits
as adjacency text ("user item item ...", plain or gz), evaluates Recall, NDCG,
Precision, HitRate @k and MRR on the test items with train and valid items
excluded (ties by lower item id, as til-eval), and prints TSV "metric k value"
plus a line "seconds S" (evaluation only, files already loaded).

usage: eval_numpy.py MODEL TRAIN VALID TEST N_USERS N_ITEMS [-k 20] [--block 1024]
"""
import argparse
import gzip
import struct
import sys
import time

import numpy as np


def read_model(path):
    """Minimal reader of the TILMODEL container (docs/FORMATS.md)."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    if data[:8] != b"TILMODEL":
        sys.exit(f"{path}: not a til model file")
    off = 8
    version, n_meta, n_tensors, _ = struct.unpack_from("<4I", data, off)
    off += 16

    def string():
        nonlocal off
        (n,) = struct.unpack_from("<I", data, off)
        off += 4
        s = data[off:off + n].decode()
        off += n
        return s

    meta = {}
    for _ in range(n_meta):
        k = string()
        meta[k] = string()
    dtypes = {1: np.float32, 2: np.float64, 3: np.uint32, 4: np.uint64, 5: np.int64}
    tensors = {}
    for _ in range(n_tensors):
        name = string()
        dt, rows, cols = struct.unpack_from("<IQQ", data, off)
        off += 20
        dtype = np.dtype(dtypes[dt])
        n = rows * cols
        tensors[name] = np.frombuffer(data, dtype=dtype, count=n, offset=off).reshape(rows, cols)
        off += n * dtype.itemsize
    return meta, tensors


def read_adj(path, n_users):
    """Adjacency text to CSR (indptr, items), items sorted per user."""
    opener = gzip.open if path.endswith(".gz") else open
    lists = [[] for _ in range(n_users)]
    with opener(path, "rt") as f:
        for line in f:
            p = line.split()
            if p:
                lists[int(p[0])].extend(int(x) for x in p[1:])
    indptr = np.zeros(n_users + 1, dtype=np.int64)
    indptr[1:] = np.cumsum([len(x) for x in lists])
    items = np.fromiter((i for x in lists for i in sorted(x)), dtype=np.int64, count=int(indptr[-1]))
    return indptr, items


def evaluate(U, V, train, valid, test, k, block):
    n_users = U.shape[0]
    tr_ptr, tr_it = train
    va_ptr, va_it = valid
    te_ptr, te_it = test
    deg = np.diff(te_ptr)
    users = np.nonzero(deg > 0)[0]
    disc = 1.0 / np.log2(np.arange(2, k + 2))
    idcg_cum = np.cumsum(disc)
    recall = np.zeros(len(users))
    ndcg = np.zeros(len(users))
    prec = np.zeros(len(users))
    hit = np.zeros(len(users))
    mrr = np.zeros(len(users))
    n_items = V.shape[0]
    ids = np.arange(n_items)
    for b0 in range(0, len(users), block):
        bu = users[b0:b0 + block]
        S = U[bu] @ V.T  # float32, BLAS
        nb = len(bu)
        # mask train and valid items
        for ptr, it in ((tr_ptr, tr_it), (va_ptr, va_it)):
            lens = ptr[bu + 1] - ptr[bu]
            rows = np.repeat(np.arange(nb), lens)
            cols = np.concatenate([it[ptr[u]:ptr[u + 1]] for u in bu]) if lens.sum() else np.zeros(0, np.int64)
            S[rows, cols] = -np.inf
        # test matrix
        lens = te_ptr[bu + 1] - te_ptr[bu]
        rows = np.repeat(np.arange(nb), lens)
        cols = np.concatenate([te_it[te_ptr[u]:te_ptr[u + 1]] for u in bu])
        T = np.zeros((nb, n_items), dtype=bool)
        T[rows, cols] = True
        T &= np.isfinite(S)  # a test item that is also excluded is no candidate
        # top-k: argpartition, then order the k by (score desc, id asc)
        part = np.argpartition(-S, k - 1, axis=1)[:, :k]
        ps = np.take_along_axis(S, part, axis=1)
        order = np.lexsort((part, -ps), axis=1)
        top = np.take_along_axis(part, order, axis=1)
        # ties at the k-th score: argpartition may pick any of the tied items;
        # redo those rows exactly (rare with float scores)
        kth = np.take_along_axis(S, top[:, -1:], axis=1)
        tie_rows = np.nonzero((S == kth).sum(1) > (np.take_along_axis(S, top, axis=1) == kth).sum(1))[0]
        for r in tie_rows:
            o = np.lexsort((ids, -S[r]))
            top[r] = o[:k]
        h = np.take_along_axis(T, top, axis=1)
        hits = h.sum(1)
        dcg = (h * disc).sum(1)
        nt = lens
        recall[b0:b0 + nb] = hits / nt
        ndcg[b0:b0 + nb] = dcg / idcg_cum[np.minimum(nt, k) - 1]
        prec[b0:b0 + nb] = hits / k
        hit[b0:b0 + nb] = hits > 0
        # MRR: rank of the best candidate test item among candidates
        ST = np.where(T, S, -np.inf)
        t = np.argmax(ST, axis=1)  # first (lowest id) of the maxima
        st = ST[np.arange(nb), t]
        has = T.any(1)
        better = (S > st[:, None]).sum(1) + ((S == st[:, None]) & (ids[None, :] < t[:, None])).sum(1)
        mrr[b0:b0 + nb] = np.where(has, 1.0 / (better + 1), 0.0)
    return {"recall": recall.mean(), "ndcg": ndcg.mean(), "precision": prec.mean(), "hitrate": hit.mean(),
            "mrr": mrr.mean()}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model")
    ap.add_argument("train")
    ap.add_argument("valid")
    ap.add_argument("test")
    ap.add_argument("n_users", type=int)
    ap.add_argument("n_items", type=int)
    ap.add_argument("-k", type=int, default=20)
    ap.add_argument("--block", type=int, default=1024)
    a = ap.parse_args()
    meta, t = read_model(a.model)
    U, V = t["user"], t["item"]
    tr = read_adj(a.train, a.n_users)
    va = read_adj(a.valid, a.n_users)
    te = read_adj(a.test, a.n_users)
    t0 = time.perf_counter()
    m = evaluate(U, V, tr, va, te, a.k, a.block)
    secs = time.perf_counter() - t0
    for name in ("recall", "ndcg", "precision", "hitrate"):
        print(f"{name}\t{a.k}\t{m[name]:.17g}")
    print(f"mrr\t-\t{m['mrr']:.17g}")
    print(f"seconds\t{secs:.4f}")


if __name__ == "__main__":
    main()

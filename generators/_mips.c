/* lrbench.generators._mips: the MIPS task's exact causal search for D = 4, compiled.

   The numpy paths in atomic.py define the result; this module computes the same bits faster, and
   atomic.py falls back to numpy when it is not built (the extension is optional at install).

   Score of a pair: the float64 inner product summed left to right, one rounding per operation,
       s = q0*k0;  s = s + q1*k1;  s = s + q2*k2;  s = s + q3*k3,
   so it must be compiled without FMA contraction (-ffp-contract=off, set by setup.py) and without
   -ffast-math; every SIMD lane below performs exactly these IEEE operations.

   Search (unit rows, 4 coordinates): answer i' = argmax_{j <= i} s(q_i, k_j), ties to the smallest j.
   Keys are bucketed in a uniform grid of G^4 cells over [-1, 1]^4 (coordinates beyond clamp to the
   border cells), in ascending j inside a cell, so the keys eligible for query i are a prefix of each
   cell. A query scans its own cell, then every cell of the box of half-width r around it.
   Certificate: if b is the best score found, a key that ties or beats it has true inner product
   >= b - e (e <= 4.5e-16 here), hence Euclidean distance to q at most
       R = sqrt(|q|^2 + max|k|^2 - 2b + 1e-12)
   (the 1e-12 absorbs e and the rounding of the norms, both ~1e-16). The box covers every key within
   r of q along each axis up to the rounding of q_d +- r and of the cell index (~1e-16), so R <= r - 1e-9
   proves no unscanned key can tie or win; otherwise the box is rescanned with r = R + 2e-9 (or doubled
   when it held no eligible key), which terminates since the whole grid is scanned once r > 2. */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if !defined(FLT_EVAL_METHOD) || FLT_EVAL_METHOD != 0
#error "double arithmetic must be evaluated in double precision (FLT_EVAL_METHOD == 0)"
#endif

static inline double dot4(const double *a, const double *b) {
    double s = a[0] * b[0];
    s = s + a[1] * b[1];
    s = s + a[2] * b[2];
    s = s + a[3] * b[3];
    return s;
}

/* Cell of coordinate x: floor((x + 1) * G/2), clamped to [0, G-1]; monotone in x. */
static inline int cell_of(double x, double inv_h, int G) {
    double t = (x + 1.0) * inv_h;
    if (!(t >= 1.0)) return 0;
    int c = (int)t;
    return c < G ? c : G - 1;
}

/* Grid resolution: about 24 keys per cell on the sphere (the surface of the unit 3-sphere is 2 pi^2 = 19.74), at most 2^20 cells. */
static int grid_size(int64_t L) {
    int G = (int)ceil(2.0 / cbrt(24.0 * 19.74 / (double)(L > 1 ? L : 1)));
    if (G < 2) G = 2;
    if (G > 32) G = 32;
    return G;
}

int causal_mips_unit4(const double *q, const double *k, int64_t L, int64_t *out) {
    if (L <= 0) return 0;
    const int G = grid_size(L);
    const int64_t s1 = G, s2 = (int64_t)G * G, s3 = (int64_t)G * G * G, ncell = s3 * G;
    const double h = 2.0 / G, inv_h = G / 2.0;
    int64_t *start = calloc((size_t)ncell + 1, sizeof *start);
    int64_t *fill = malloc((size_t)ncell * sizeof *fill);
    int64_t *cid = malloc((size_t)L * sizeof *cid);
    int64_t *kj = malloc((size_t)L * sizeof *kj);
    double *ks = malloc((size_t)L * 4 * sizeof *ks);
    if (!start || !fill || !cid || !kj || !ks) {
        free(start); free(fill); free(cid); free(kj); free(ks);
        return -1;
    }
    double nkmax = 0.0;
    for (int64_t j = 0; j < L; j++) {
        const double *kk = k + 4 * j;
        double n2 = dot4(kk, kk);
        if (n2 > nkmax) nkmax = n2;
        cid[j] = cell_of(kk[0], inv_h, G) + cell_of(kk[1], inv_h, G) * s1 + cell_of(kk[2], inv_h, G) * s2 +
                 cell_of(kk[3], inv_h, G) * s3;
        start[cid[j] + 1]++;
    }
    for (int64_t c = 0; c < ncell; c++) start[c + 1] += start[c];
    memcpy(fill, start, (size_t)ncell * sizeof *fill);
    for (int64_t j = 0; j < L; j++) { /* ascending j inside each cell */
        int64_t p = fill[cid[j]]++;
        memcpy(ks + 4 * p, k + 4 * j, 4 * sizeof *ks);
        kj[p] = j;
    }

    for (int64_t i = 0; i < L; i++) {
        const double *qi = q + 4 * i;
        const double base2 = dot4(qi, qi) + nkmax + 1e-12;
        double best = -INFINITY, r;
        int64_t bj = -1;
        int own[4];
        for (int d = 0; d < 4; d++) own[d] = cell_of(qi[d], inv_h, G);
        const int64_t c0 = own[0] + own[1] * s1 + own[2] * s2 + own[3] * s3;
        for (int64_t p = start[c0], e = start[c0 + 1]; p < e && kj[p] <= i; p++) {
            double s = dot4(qi, ks + 4 * p);
            if (s > best || (s == best && kj[p] < bj)) { best = s; bj = kj[p]; }
        }
        if (bj >= 0) {
            double R2 = base2 - 2.0 * best;
            r = (R2 > 0 ? sqrt(R2) : 0.0) + 2e-9;
        } else {
            r = 2.5 / cbrt((double)(i + 1)); /* about 3 keys expected within r */
        }
        for (;;) {
            int lo[4], hi[4];
            double gap[4][33];
            for (int d = 0; d < 4; d++) {
                lo[d] = cell_of(qi[d] - r, inv_h, G);
                hi[d] = cell_of(qi[d] + r, inv_h, G);
                for (int c = lo[d]; c <= hi[d]; c++) { /* squared distance from q to the cell along d */
                    double clo = c == 0 ? -INFINITY : c * h - 1.0, chi = c == G - 1 ? INFINITY : (c + 1) * h - 1.0;
                    double g = qi[d] < clo ? clo - qi[d] : (qi[d] > chi ? qi[d] - chi : 0.0);
                    gap[d][c - lo[d]] = g * g;
                }
            }
            for (int a3 = lo[3]; a3 <= hi[3]; a3++)
                for (int a2 = lo[2]; a2 <= hi[2]; a2++)
                    for (int a1 = lo[1]; a1 <= hi[1]; a1++) {
                        const double g321 = gap[3][a3 - lo[3]] + gap[2][a2 - lo[2]] + gap[1][a1 - lo[1]];
                        const int64_t row = a3 * s3 + a2 * s2 + a1 * s1;
                        for (int a0 = lo[0]; a0 <= hi[0]; a0++) {
                            const int64_t c = row + a0;
                            int64_t p = start[c], e = start[c + 1];
                            if (p == e || c == c0) continue;
                            /* a cell farther than R from q cannot hold a tie or a winner */
                            if (bj >= 0 && g321 + gap[0][a0 - lo[0]] > base2 - 2.0 * best + 1e-9) continue;
                            for (; p < e && kj[p] <= i; p++) {
                                double s = dot4(qi, ks + 4 * p);
                                if (s > best || (s == best && kj[p] < bj)) { best = s; bj = kj[p]; }
                            }
                        }
                    }
            if (bj >= 0) {
                double R2 = base2 - 2.0 * best, R = R2 > 0 ? sqrt(R2) : 0.0;
                if (R <= r - 1e-9) break;
                r = R + 2e-9;
            } else {
                r *= 2.0;
            }
        }
        out[i] = bj;
    }
    free(start); free(fill); free(cid); free(kj); free(ks);
    return 0;
}

/* ---- Python bindings (buffer protocol; atomic.py checks dtypes, shapes and contiguity) ---------- */

static int get_buffer(PyObject *obj, Py_buffer *view, int writable, Py_ssize_t nbytes, const char *what) {
    if (PyObject_GetBuffer(obj, view, PyBUF_C_CONTIGUOUS | (writable ? PyBUF_WRITABLE : 0)) < 0) return -1;
    if (view->len != nbytes) {
        PyErr_Format(PyExc_ValueError, "%s has %zd bytes, expected %zd", what, view->len, nbytes);
        PyBuffer_Release(view);
        return -1;
    }
    return 0;
}

PyDoc_STRVAR(search_doc, "search(q, k, out, L): out[i] = argmax_{j<=i} <q_i, k_j>, ties to the smallest j.\n\n"
                         "q, k: C-contiguous float64 [L, 4] with unit rows; out: int64 [L], written.");

static PyObject *py_search(PyObject *self, PyObject *args) {
    PyObject *qo, *ko, *oo;
    Py_ssize_t L;
    if (!PyArg_ParseTuple(args, "OOOn:search", &qo, &ko, &oo, &L)) return NULL;
    if (L < 0) return PyErr_Format(PyExc_ValueError, "L must be >= 0");
    Py_buffer qb, kb, ob;
    if (get_buffer(qo, &qb, 0, L * 32, "q") < 0) return NULL;
    if (get_buffer(ko, &kb, 0, L * 32, "k") < 0) { PyBuffer_Release(&qb); return NULL; }
    if (get_buffer(oo, &ob, 1, L * 8, "out") < 0) { PyBuffer_Release(&qb); PyBuffer_Release(&kb); return NULL; }
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = causal_mips_unit4((const double *)qb.buf, (const double *)kb.buf, L, (int64_t *)ob.buf);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&qb); PyBuffer_Release(&kb); PyBuffer_Release(&ob);
    if (rc < 0) return PyErr_NoMemory();
    Py_RETURN_NONE;
}

PyDoc_STRVAR(sample_doc, "sample(x, pos, inputs, targets, L): a mips sample (D = 4) from its draws.\n\n"
                         "x: float64 [3, L, 4] standard normals, normalised in place to unit rows q, k, v\n"
                         "(each row divided by sqrt(((x0*x0 + x1*x1) + x2*x2) + x3*x3));\n"
                         "pos: float32 [L, 2]; inputs: float32 [L, 14] = (q, k, v, pos); targets: float32 [L, 4]\n"
                         "= v[argmax_{j<=i} <q_i, k_j>].");

static PyObject *py_sample(PyObject *self, PyObject *args) {
    PyObject *xo, *po, *io, *to;
    Py_ssize_t L;
    if (!PyArg_ParseTuple(args, "OOOOn:sample", &xo, &po, &io, &to, &L)) return NULL;
    if (L < 0) return PyErr_Format(PyExc_ValueError, "L must be >= 0");
    Py_buffer xb, pb, ib, tb;
    if (get_buffer(xo, &xb, 1, L * 96, "x") < 0) return NULL;
    if (get_buffer(po, &pb, 0, L * 8, "pos") < 0) { PyBuffer_Release(&xb); return NULL; }
    if (get_buffer(io, &ib, 1, L * 56, "inputs") < 0) { PyBuffer_Release(&xb); PyBuffer_Release(&pb); return NULL; }
    if (get_buffer(to, &tb, 1, L * 16, "targets") < 0) {
        PyBuffer_Release(&xb); PyBuffer_Release(&pb); PyBuffer_Release(&ib);
        return NULL;
    }
    int rc = 0;
    int64_t *idx = malloc((size_t)(L > 0 ? L : 1) * sizeof *idx);
    if (!idx) rc = -1;
    Py_BEGIN_ALLOW_THREADS
    if (rc == 0) {
        double *x = (double *)xb.buf;
        const float *pos = (const float *)pb.buf;
        float *in = (float *)ib.buf, *tg = (float *)tb.buf;
        for (Py_ssize_t r = 0; r < 3 * L; r++) {
            double *row = x + 4 * r;
            double n = sqrt(dot4(row, row));
            for (int d = 0; d < 4; d++) row[d] = row[d] / n;
        }
        const double *q = x, *k = x + 4 * L, *v = x + 8 * L;
        rc = causal_mips_unit4(q, k, L, idx);
        if (rc == 0) {
            for (Py_ssize_t i = 0; i < L; i++) {
                float *o = in + 14 * i;
                for (int d = 0; d < 4; d++) {
                    o[d] = (float)q[4 * i + d];
                    o[4 + d] = (float)k[4 * i + d];
                    o[8 + d] = (float)v[4 * i + d];
                    tg[4 * i + d] = (float)v[4 * idx[i] + d];
                }
                o[12] = pos[2 * i];
                o[13] = pos[2 * i + 1];
            }
        }
    }
    Py_END_ALLOW_THREADS
    free(idx);
    PyBuffer_Release(&xb); PyBuffer_Release(&pb); PyBuffer_Release(&ib); PyBuffer_Release(&tb);
    if (rc < 0) return PyErr_NoMemory();
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"search", py_search, METH_VARARGS, search_doc},
    {"sample", py_sample, METH_VARARGS, sample_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_mips", "Compiled exact causal MIPS for lrbench (D = 4); see atomic.py.", -1, methods,
};

PyMODINIT_FUNC PyInit__mips(void) { return PyModule_Create(&module); }

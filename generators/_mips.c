/* lrbench.generators._mips: the MIPS task's exact causal search for D = 4, compiled.

   The numpy paths in atomic.py define the result; this module computes the same bits faster, and
   atomic.py falls back to numpy when it is not built (the extension is optional at install).
   setup.py compiles it with -ffp-contract=off (no fused multiply-add) and never -ffast-math; every
   SIMD lane below performs exactly the IEEE operations of the scalar score. */

/* causal_mips_unit4: out[i] = argmax_{j<=i} score(q_i, k_j), ties -> smallest j, for unit rows in R^4,
 * score = ((q0*k0 + q1*k1) + q2*k2) + q3*k3 evaluated in float64 with one rounding per op
 * (compile with -ffp-contract=off, never -ffast-math).
 *
 * Algorithm ("charts"): a unit vector has max_d |x_d| >= 1/2. Chart (d,s) holds every key with
 * sign(k_d) = s (k_d = 0 counts as +), bucketed by a uniform 3D grid (G cells per axis over [-1,1])
 * on the other three coordinates; every key is stored once in each of the 4 charts matching its
 * signs (CSR, SoA, ascending j inside a cell). A query uses the chart of its largest |q_d| and scans
 * the 3x3x3 cell box around its own cell = 9 contiguous runs (3 cells along the fastest axis),
 * 4-wide SIMD (GCC vector extensions; AVX2 clone via target_clones, SSE2/plain fallback), masked
 * j <= i, per lane (best, j) with the exact tie rule, lanes merged with the same rule. Queries are
 * processed in chart-cell order (same runs back to back: good branch prediction and locality).
 *
 * Exactness: let b be the best rounded score found. For any key k whose rounded score is >= b
 * (i.e. any key that could win or tie), its exact inner product is >= b - eps, eps <= ~4.5e-16
 * (4-term dot of unit-norm vectors, |q.k| <= 1). Hence
 *   |q-k|^2 = |q|^2 + |k|^2 - 2 q.k <= |q|^2 + max|k|^2 - 2b + 2 eps.
 * We use R^2 = |q|^2 + max|k|^2 + 1e-12 - 2b: the 1e-12 dominates 2 eps plus the rounding of
 * this 4-operation expression (values <= ~4, so each rounding < 5e-16). Every key outside the
 * scanned box is farther than rad from q, where rad = min(|q_d| [keys of the other sign or
 * with k_d = 0 have |q_d - k_d| >= |q_d|], distance of q's projection to each box face that is
 * not a grid edge) -- projection onto 3 coordinates never increases distance. Cell assignment
 * and the face coordinates are computed in float64 with relative errors ~1e-16, so a key put in a
 * cell outside the box is at least (face distance - ~1e-15) away; requiring R + 1e-9 <= rad
 * (1e-9 >> 1e-15) makes the certificate safe. Since the SIMD lanes evaluate exactly the same IEEE
 * operations as the scalar definition, the argmax (with the tie rule) over a scanned superset of
 * the box (over-reading past a run only adds real, causally-masked keys) equals the global one.
 * Failed certificates: rescan with a 5x5x5 box (i >= 512), else SIMD brute force over j <= i.
 * Queries i < I0 are brute-forced. Memory O(L + G^3) with 8 G^3 <= 2^21 (G capped); larger L
 * stays correct, only slower. The workspace is kept between calls (see ws_ptr below).
 */

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

#define W 4
#ifndef MIPS_GSCALE
#define MIPS_GSCALE 10.0
#endif
#if defined(__GNUC__) && !defined(MIPS_SCALAR)
#define VEC 1
typedef double vd __attribute__((vector_size(W * 8)));
typedef int64_t vl __attribute__((vector_size(W * 8)));
#define vsel(m, a, b) ((vd)(((m) & (vl)(a)) | (~(m) & (vl)(b))))
#define LOADV(v, ptr) memcpy(&(v), (ptr), sizeof(vd))
#define SPLAT(x) ((vd){0} + (x))
#if defined(__x86_64__) && defined(__GLIBC__) && !defined(__clang__) && !defined(MIPS_NO_CLONES)
#define CLONES __attribute__((target_clones("avx2", "default")))
#endif
#endif
#ifndef CLONES
#define CLONES
#endif
#define INLINE static inline __attribute__((always_inline))

static inline double dot4(const double *a, const double *b) {
    double s = a[0] * b[0];
    s = s + a[1] * b[1];
    s = s + a[2] * b[2];
    s = s + a[3] * b[3];
    return s;
}
static inline int cellc(double x, double inv_h, int G) {
    double t = (x + 1.0) * inv_h;
    int c = t >= 1.0 ? (int)t : 0;
    return c < G ? c : G - 1;
}
static const int oth[4][3] = {{1, 2, 3}, {0, 2, 3}, {0, 1, 3}, {0, 1, 2}};

typedef struct {
    int G; int64_t G3; double h, inv_h, nkmax;
    const int32_t *start;
    const double *K0, *K1, *K2, *K3, *KJ;
} idx_t;

/* one W-wide step: scores of entries P..P+W-1, masked j <= i, tie rule (s, then smaller j) */
#define STEP(A0, A1, A2, A3, AJ, P, BEST, BJ) do { vd a0, a1, a2, a3, j; LOADV(a0, (A0) + (P)); \
    LOADV(a1, (A1) + (P)); LOADV(a2, (A2) + (P)); LOADV(a3, (A3) + (P)); LOADV(j, (AJ) + (P)); \
    vd s = q0 * a0; s = s + q1 * a1; s = s + q2 * a2; s = s + q3 * a3; \
    vl take = (j <= id) & ((s > BEST) | ((s == BEST) & (j < BJ))); \
    BEST = vsel(take, s, BEST); BJ = vsel(take, j, BJ); } while (0)

/* scan the (2r+1)^3 box around q in its chart; returns 1 and sets *res if certified */
INLINE int query_box(const idx_t *X, const double *qv, int64_t i, int r, int64_t *res) {
    const int G = X->G;
    const double h = X->h, inv_h = X->inv_h;
    double a0 = fabs(qv[0]), a1 = fabs(qv[1]), a2 = fabs(qv[2]), a3 = fabs(qv[3]);
    int d = 0; double am = a0;
    if (a1 > am) { d = 1; am = a1; }
    if (a2 > am) { d = 2; am = a2; }
    if (a3 > am) { d = 3; am = a3; }
    int ch = 2 * d + (qv[d] < 0);
    double rad = am;
    int lo[3], hi[3];
    for (int m = 0; m < 3; m++) {
        double x = qv[oth[d][m]];
        int c = cellc(x, inv_h, G);
        lo[m] = c - r < 0 ? 0 : c - r;
        hi[m] = c + r > G - 1 ? G - 1 : c + r;
        double e1 = lo[m] > 0 ? x - (lo[m] * h - 1.0) : INFINITY;
        double e2 = hi[m] < G - 1 ? ((hi[m] + 1) * h - 1.0) - x : INFINITY;
        rad = e1 < rad ? e1 : rad;
        rad = e2 < rad ? e2 : rad;
    }
    const int32_t *st = X->start + ch * X->G3;
    double bs = -INFINITY, bjj = INFINITY;
#ifdef VEC
    vd q0 = SPLAT(qv[0]), q1 = SPLAT(qv[1]), q2 = SPLAT(qv[2]), q3 = SPLAT(qv[3]);
    vd id = SPLAT((double)i);
    vd best = SPLAT(-INFINITY), bj = SPLAT(INFINITY), best2 = best, bj2 = bj;
    for (int c2 = lo[2]; c2 <= hi[2]; c2++)
        for (int c1 = lo[1]; c1 <= hi[1]; c1++) {
            int64_t cb = (int64_t)G * G * c2 + (int64_t)G * c1;
            int32_t p = st[cb + lo[0]], e = st[cb + hi[0] + 1];
            /* reading up to 2W-1 entries past e is harmless: they are real keys (still masked by
               j <= i) or end padding (j = +inf); a scanned superset of the box keeps the argmax */
            for (; p < e; p += 2 * W) {
                STEP(X->K0, X->K1, X->K2, X->K3, X->KJ, p, best, bj);
                STEP(X->K0, X->K1, X->K2, X->K3, X->KJ, p + W, best2, bj2);
            }
        }
    for (int l = 0; l < W; l++) {
        if (best[l] > bs || (best[l] == bs && bj[l] < bjj)) { bs = best[l]; bjj = bj[l]; }
        if (best2[l] > bs || (best2[l] == bs && bj2[l] < bjj)) { bs = best2[l]; bjj = bj2[l]; }
    }
#else
    for (int c2 = lo[2]; c2 <= hi[2]; c2++)
        for (int c1 = lo[1]; c1 <= hi[1]; c1++) {
            int64_t cb = (int64_t)G * G * c2 + (int64_t)G * c1;
            for (int32_t p = st[cb + lo[0]], e = st[cb + hi[0] + 1]; p < e; p++) {
                double j = X->KJ[p];
                double s = qv[0] * X->K0[p]; s = s + qv[1] * X->K1[p]; s = s + qv[2] * X->K2[p]; s = s + qv[3] * X->K3[p];
                if (j <= (double)i && (s > bs || (s == bs && j < bjj))) { bs = s; bjj = j; }
            }
        }
#endif
    double R2 = dot4(qv, qv) + X->nkmax + 1e-12 - 2.0 * bs;
    double R = R2 > 0 ? sqrt(R2) : 0.0;
    if (bjj <= (double)i && R + 1e-9 <= rad) { *res = (int64_t)bjj; return 1; }
    return 0;
}

CLONES static int64_t query_pass(const idx_t *X, const double *q, const int32_t *order, int64_t n, int r,
                                 int64_t *out, int32_t *fail) {
    int64_t nfail = 0;
    for (int64_t t = 0; t < n; t++) {
        int64_t i = order[t];
        if (!query_box(X, q + 4 * i, i, r, out + i)) fail[nfail++] = i;
    }
    return nfail;
}

/* brute force over j <= i using SoA copies B0..BJ in j order (padded with j = +inf) */
CLONES static void brute(const double *q, const double *B0, const double *B1, const double *B2, const double *B3,
                         const double *BJ, const int32_t *list, int64_t n, int64_t *out) {
    for (int64_t t = 0; t < n; t++) {
        int64_t i = list[t];
        const double *qv = q + 4 * i;
        double bs = -INFINITY, bjj = INFINITY;
#ifdef VEC
        vd q0 = SPLAT(qv[0]), q1 = SPLAT(qv[1]), q2 = SPLAT(qv[2]), q3 = SPLAT(qv[3]);
        vd id = SPLAT((double)i);
        vd best = SPLAT(-INFINITY), bj = SPLAT(INFINITY);
        for (int64_t p = 0; p <= i; p += W) STEP(B0, B1, B2, B3, BJ, p, best, bj);
        for (int l = 0; l < W; l++)
            if (best[l] > bs || (best[l] == bs && bj[l] < bjj)) { bs = best[l]; bjj = bj[l]; }
#else
        for (int64_t j = 0; j <= i; j++) {
            double s = qv[0] * B0[j]; s = s + qv[1] * B1[j]; s = s + qv[2] * B2[j]; s = s + qv[3] * B3[j];
            if (s > bs) { bs = s; bjj = (double)j; }
        }
#endif
        out[i] = (int64_t)bjj;
    }
}

/* The workspace is kept between calls: first-touch page faults of a fresh ~1 MB allocation cost
   about a quarter of a call. The Python bindings hold the GIL, so one buffer per process is safe. */
static void *ws_ptr;
static size_t ws_cap;

int causal_mips_unit4(const double *q, const double *k, int64_t L, int64_t *out) {
    if (L <= 0) return 0;
    if (L > (INT32_MAX - 64) / 4) return -1;
    /* grid resolution ~ nearest-neighbour distance ~ L^(-1/3); 8 G^3 cells capped at 2^21 */
    int G = (int)(MIPS_GSCALE * cbrt((double)L / 4096.0) + 0.5);
    if (G < 2) G = 2;
    if (G > 64) G = 64;
    const int64_t I0 = 256;           /* brute-force queries below this index */
    const int64_t G3 = (int64_t)G * G * G, ncell = 8 * G3;
    const double h = 2.0 / G, inv_h = G / 2.0;
    const int64_t N = 4 * L;
    size_t need = (size_t)(5 * (N + 2 * W) + 5 * (L + 2 * W)) * 8 + (size_t)(2 * (ncell + 2) + 2 * N + 3 * L) * 4 + 64;
    if (need > ws_cap) {
        free(ws_ptr);
        ws_ptr = malloc(need);
        ws_cap = ws_ptr ? need : 0;
        if (!ws_ptr) return -1;
    }
    char *ws = ws_ptr;
    double *K0 = (double *)ws, *K1 = K0 + N + 2 * W, *K2 = K1 + N + 2 * W, *K3 = K2 + N + 2 * W, *KJ = K3 + N + 2 * W;
    double *B0 = KJ + N + 2 * W, *B1 = B0 + L + 2 * W, *B2 = B1 + L + 2 * W, *B3 = B2 + L + 2 * W, *BJ = B3 + L + 2 * W;
    int32_t *start = (int32_t *)(BJ + L + 2 * W), *cnt = start + ncell + 2, *kc = cnt + ncell + 2, *ix = kc + N;
    int32_t *order = ix + N, *fail = order + L, *qc = fail + L;
    memset(start, 0, (size_t)(ncell + 2) * 4);
    memset(cnt, 0, (size_t)(ncell + 2) * 4);

    /* strides of the 4 coordinates inside chart d (its own coordinate gets stride 0) */
    const int64_t GG = (int64_t)G * G;
    const int64_t str[4][4] = {{0, 1, G, GG}, {1, 0, G, GG}, {1, G, 0, GG}, {1, G, GG, 0}};
    double nkmax = 0;
    for (int64_t j = 0; j < L; j++) {
        const double *kk = k + j * 4;
        double n2 = dot4(kk, kk);
        nkmax = n2 > nkmax ? n2 : nkmax;
        B0[j] = kk[0]; B1[j] = kk[1]; B2[j] = kk[2]; B3[j] = kk[3]; BJ[j] = (double)j;
        int c0 = cellc(kk[0], inv_h, G), c1 = cellc(kk[1], inv_h, G), c2 = cellc(kk[2], inv_h, G), c3 = cellc(kk[3], inv_h, G);
        for (int d = 0; d < 4; d++) {
            int64_t c = (2 * d + (kk[d] < 0)) * G3 + c0 * str[d][0] + c1 * str[d][1] + c2 * str[d][2] + c3 * str[d][3];
            kc[j * 4 + d] = (int32_t)c;
            start[c + 2]++;
        }
    }
    for (int64_t p = L; p < L + 2 * W; p++) { B0[p] = B1[p] = B2[p] = B3[p] = 0; BJ[p] = INFINITY; }
    for (int64_t c = 0; c < ncell; c++) start[c + 2] += start[c + 1];
    for (int64_t e = 0; e < N; e++) ix[start[kc[e] + 1]++] = (int32_t)(e >> 2);   /* ascending j per cell */
    for (int64_t p = 0; p < N; p++) {
        int32_t j = ix[p];
        K0[p] = B0[j]; K1[p] = B1[j]; K2[p] = B2[j]; K3[p] = B3[j]; KJ[p] = (double)j;
    }
    for (int64_t p = N; p < N + 2 * W; p++) { K0[p] = K1[p] = K2[p] = K3[p] = 0; KJ[p] = INFINITY; }
    idx_t X = {G, G3, h, inv_h, nkmax, start, K0, K1, K2, K3, KJ};

    /* queries i >= I0, counting-sorted by chart cell (ascending i within a cell) */
    int64_t nb = I0 < L ? I0 : L;
    for (int64_t i = nb; i < L; i++) {
        const double *qv = q + 4 * i;
        double a0 = fabs(qv[0]), a1 = fabs(qv[1]), a2 = fabs(qv[2]), a3 = fabs(qv[3]);
        int d = 0; double am = a0;
        if (a1 > am) { d = 1; am = a1; }
        if (a2 > am) { d = 2; am = a2; }
        if (a3 > am) { d = 3; am = a3; }
        int64_t c = (2 * d + (qv[d] < 0)) * G3 + cellc(qv[0], inv_h, G) * str[d][0] + cellc(qv[1], inv_h, G) * str[d][1] +
                    cellc(qv[2], inv_h, G) * str[d][2] + cellc(qv[3], inv_h, G) * str[d][3];
        qc[i] = (int32_t)c;
        cnt[c + 1]++;
    }
    for (int64_t c = 0; c < ncell; c++) cnt[c + 1] += cnt[c];
    for (int64_t i = nb; i < L; i++) order[cnt[qc[i]]++] = (int32_t)i;
    int64_t nfail = query_pass(&X, q, order, L - nb, 1, out, fail);

    /* failures: 5x5x5 box for large i, then brute force; plus all i < I0 */
    int64_t nbr = 0;
    for (int64_t f = 0; f < nfail; f++) {
        int32_t i = fail[f];
        if (i < 512 || query_pass(&X, q, fail + f, 1, 2, out, qc) != 0) order[nbr++] = i;
    }
    for (int64_t i = 0; i < nb; i++) order[nbr++] = (int32_t)i;
    brute(q, B0, B1, B2, B3, BJ, order, nbr, out);
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

static PyObject *py_search(PyObject *Py_UNUSED(self), PyObject *args) {
    PyObject *qo, *ko, *oo;
    Py_ssize_t L;
    if (!PyArg_ParseTuple(args, "OOOn:search", &qo, &ko, &oo, &L)) return NULL;
    if (L < 0) return PyErr_Format(PyExc_ValueError, "L must be >= 0");
    Py_buffer qb, kb, ob;
    if (get_buffer(qo, &qb, 0, L * 32, "q") < 0) return NULL;
    if (get_buffer(ko, &kb, 0, L * 32, "k") < 0) { PyBuffer_Release(&qb); return NULL; }
    if (get_buffer(oo, &ob, 1, L * 8, "out") < 0) { PyBuffer_Release(&qb); PyBuffer_Release(&kb); return NULL; }
    int rc = causal_mips_unit4((const double *)qb.buf, (const double *)kb.buf, L, (int64_t *)ob.buf);
    PyBuffer_Release(&qb); PyBuffer_Release(&kb); PyBuffer_Release(&ob);
    if (rc < 0) return PyErr_NoMemory();
    Py_RETURN_NONE;
}

PyDoc_STRVAR(sample_doc, "sample(x, pos, inputs, targets, L): a mips sample (D = 4) from its draws.\n\n"
                         "x: float64 [3, L, 4] standard normals, normalised in place to unit rows q, k, v\n"
                         "(each row divided by sqrt(((x0*x0 + x1*x1) + x2*x2) + x3*x3));\n"
                         "pos: float32 [L, 2]; inputs: float32 [L, 14] = (q, k, v, pos); targets: float32 [L, 4]\n"
                         "= v[argmax_{j<=i} <q_i, k_j>].");

static PyObject *py_sample(PyObject *Py_UNUSED(self), PyObject *args) {
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
    if (rc == 0) { /* with the GIL held: causal_mips_unit4 reuses one workspace */
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
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__mips(void) { return PyModule_Create(&module); }

/* lrbench.generators._mips: the MIPS task's exact causal search for D = 4, compiled.

   The numpy paths in atomic.py define the result; this module computes the same bits faster, and
   atomic.py falls back to numpy when it is not built (the extension is optional at install).
   setup.py compiles it with -ffp-contract=off (no implicit fused multiply-add) and never -ffast-math:
   the float64 scores that decide are never fused. Only the float32 screen below uses explicit FMA
   instructions, and its error bound allows them. */

/* causal_mips_unit4: out[i] = argmax_{j<=i} score(q_i, k_j), ties -> smallest j, for unit rows in R^4,
 * score = ((q0*k0 + q1*k1) + q2*k2) + q3*k3 evaluated in float64 with one rounding per op.
 *
 * Where the keys are ("charts"): a unit vector has max_d |x_d| >= 1/2. Chart (d,s) holds the keys
 * with sign(k_d) = s (k_d = 0 counts as +) and |k_d| >= TAU = 0.3, bucketed by a uniform 3D grid
 * (G cells per axis over [-1,1]) on the other three coordinates (CSR, SoA, ascending j inside a
 * cell); a key is in 2.5 of the 4 charts of its signs on average. A query uses the chart of its
 * largest |q_d| (>= 1/2, so the keys left out of that chart are far from it) and scans the 3x3x3
 * cell box around its own cell = 9 contiguous runs (3 cells along the fastest axis). Queries are
 * processed in chart-cell order (neighbouring queries reuse the same runs).
 *
 * Screening in float32, deciding in float64: the scan scores keys in float32 from float32 copies
 * of q and k, masked j <= i, and keeps per lane the largest and second-largest score and the j of
 * the largest: 8 lanes with AVX2 + FMA where the CPU has them (chosen at import), else 4 lanes of
 * portable vector code (SSE2, NEON); simd() switches, and both give the same answers. For rows of norm 1 +- 1e-8 the float32 score differs from the float64
 * score by at most 6 u32 (1 + 1e-7) < 3.6e-7 (u32 = 2^-24: two input roundings plus four operations,
 * each relative to sum |q_d k_d| <= 1). Let m be the largest float32 score and thr = fl32(m - 1e-6)
 * <= m - 9.4e-7. A key whose float32 score is below thr has float64 score < m - 5.8e-7, below the
 * float64 score of the key that reached m (>= m - 3.6e-7): it can neither win nor tie. So when
 * exactly one scanned score is >= thr (one lane's largest, and that lane's second-largest is below
 * thr), that key is the exact argmax over the scanned keys; otherwise the box is rescanned in float64
 * with the tie rule. The winner's float64 score b then goes into the certificate.
 *
 * Certificate: for any key k whose float64 score is >= b (any key that could win or tie), its exact
 * inner product is >= b - eps, eps <= ~4.5e-16 (4-term dot of unit-norm vectors, |q.k| <= 1). Hence
 *   |q-k|^2 = |q|^2 + |k|^2 - 2 q.k <= |q|^2 + max|k|^2 - 2b + 2 eps.
 * We use R^2 = |q|^2 + max|k|^2 + 1e-12 - 2b: the 1e-12 dominates 2 eps plus the rounding of
 * this 4-operation expression (values <= ~4, so each rounding < 5e-16). Every key outside the
 * scanned box is farther than rad from q, where rad = min(|q_d| - TAU [keys left out of the chart
 * have k_d of the other sign or |k_d| < TAU, so |q_d - k_d| > |q_d| - TAU], distance of q's
 * projection to each box face that is not a grid edge) -- projection onto 3 coordinates never
 * increases distance. Cell assignment
 * and the face coordinates are computed in float64 with relative errors ~1e-16, so a key put in a
 * cell outside the box is at least (face distance - ~1e-15) away; requiring R + 1e-9 <= rad
 * (1e-9 >> 1e-15) makes the certificate safe. The scan may read up to 7 entries past a run's end:
 * they are real keys (still masked by j <= i) or end padding (j = INT32_MAX), and the argmax over a
 * scanned superset of the box is the global one as soon as the box is certified.
 * Failed certificates: rescan with a 5x5x5 box (i >= 512), else brute force over j <= i (screened
 * the same way). Queries i < I0 are brute-forced. Memory O(L + G^3) with 8 G^3 <= 2^21 (G capped);
 * larger L stays correct, only slower. The workspace is kept between calls (see ws_ptr below). */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if !defined(FLT_EVAL_METHOD) || FLT_EVAL_METHOD != 0
#error "arithmetic must be evaluated in the precision of its type (FLT_EVAL_METHOD == 0)"
#endif

#define INLINE static inline __attribute__((always_inline))
#ifndef MIPS_GSCALE
#define MIPS_GSCALE 10.0
#endif
#define PAD 16            /* padding entries after each key array: a step may read 7 past a run */
#define WINDOW 1e-6f      /* screening window, see above */
#define TAU 0.3           /* chart d keeps the keys with |k_d| >= TAU: queries there have |q_d| >= 1/2 */
#if defined(__GNUC__) && !defined(MIPS_SCALAR)
#define VEC 1
typedef float vf __attribute__((vector_size(16)));     /* 4 lanes: native on SSE2 and NEON */
typedef int32_t vi __attribute__((vector_size(16)));
typedef double vd4 __attribute__((vector_size(32)));
typedef int64_t vl4 __attribute__((vector_size(32)));
typedef int32_t vi4 __attribute__((vector_size(16)));
#define SELF(m, a, b) ((vf)(((m) & (vi)(a)) | (~(m) & (vi)(b))))
#define SELI(m, a, b) (((m) & (a)) | (~(m) & (b)))
#define VMAXF(a, b) SELF((a) > (b), a, b)
#define VMINF(a, b) SELF((a) < (b), a, b)
#define VMAXI(a, b) SELI((a) > (b), a, b)
#define LOADV(v, ptr) memcpy(&(v), (ptr), sizeof(v))
#define SPLAT(T, x) ((T){0} + (x))
#if defined(__x86_64__) && defined(__GLIBC__) && !defined(__clang__) && !defined(MIPS_NO_CLONES)
#define CLONES __attribute__((target_clones("avx2", "default")))
#endif
#if defined(__x86_64__) && !defined(MIPS_NO_AVX2)
#include <immintrin.h>
#define HAVE_AVX2 1
#define AVX2_FMA __attribute__((target("avx2,fma")))
#endif
#endif
#ifndef CLONES
#define CLONES
#endif

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
/* the coordinate of largest |x_d| (the first on ties) and that |x_d|, without data-dependent branches */
static inline int chart_of(const double *x, double *am) {
    double a0 = fabs(x[0]), a1 = fabs(x[1]), a2 = fabs(x[2]), a3 = fabs(x[3]);
    int u = a1 > a0, w = a3 > a2;
    double m01 = u ? a1 : a0, m23 = w ? a3 : a2;
    int hi = m23 > m01;
    *am = hi ? m23 : m01;
    return hi ? 2 + w : u;
}
static const int oth[4][3] = {{1, 2, 3}, {0, 2, 3}, {0, 1, 3}, {0, 1, 2}};

typedef struct {
    int G; int64_t G3; double h, inv_h, nkmax;
    const int32_t *start;
    const float *F0, *F1, *F2, *F3; const int32_t *FJ;   /* chart entries, float32 SoA, and their j */
    const float *B0, *B1, *B2, *B3; const int32_t *BJ;   /* every key in j order, float32 SoA */
    const double *k;                                     /* the float64 keys, for deciding */
} idx_t;

#ifdef VEC
/* 4 float32 scores against q0..q3; j > i masked to -inf; per lane (best, second, bj) */
#define STEP(F0, F1, F2, F3, FJ, P) do { vf a0, a1, a2, a3; vi jj; LOADV(a0, (F0) + (P)); LOADV(a1, (F1) + (P)); \
    LOADV(a2, (F2) + (P)); LOADV(a3, (F3) + (P)); LOADV(jj, (FJ) + (P)); \
    vf s = q0 * a0; s = s + q1 * a1; s = s + q2 * a2; s = s + q3 * a3; \
    s = SELF(jj <= id, s, ninf); vi gt = s > best; vf lo = VMINF(best, s); \
    best = VMAXF(best, s); bj = SELI(gt, jj, bj); second = VMAXF(second, lo); } while (0)
#define SCREEN_INIT(qv, i) vf q0 = SPLAT(vf, (float)(qv)[0]), q1 = SPLAT(vf, (float)(qv)[1]), \
    q2 = SPLAT(vf, (float)(qv)[2]), q3 = SPLAT(vf, (float)(qv)[3]); vi id = SPLAT(vi, (int32_t)(i)); \
    const vf ninf = SPLAT(vf, -INFINITY); vf best = ninf, second = ninf; vi bj = SPLAT(vi, -1)
/* all lanes = the lane-wise max / sum */
#ifdef __clang__
#define SWAP2(v) __builtin_shufflevector(v, v, 2, 3, 0, 1)
#define SWAP1(v) __builtin_shufflevector(v, v, 1, 0, 3, 2)
#else
#define SWAP2(v) __builtin_shuffle(v, (vi){2, 3, 0, 1})
#define SWAP1(v) __builtin_shuffle(v, (vi){1, 0, 3, 2})
#endif
#define HMAX(v, MAX) do { v = MAX(v, SWAP2(v)); v = MAX(v, SWAP1(v)); } while (0)
#define HADD(v) do { v = v + SWAP2(v); v = v + SWAP1(v); } while (0)
/* the j of the largest screened score m if it is the only score >= fl32(m - WINDOW), else -1 */
#define SCREENED() screened_j(best, second, bj)
INLINE int32_t screened_j(vf best, vf second, vi bj) {
    vf m = best;
    HMAX(m, VMAXF);
    vf thr = m - WINDOW;
    vi c = (best >= thr) + (second >= thr);   /* -1 per score at or above thr */
    HADD(c);
    vi j = SELI(best == m, bj, SPLAT(vi, -1));
    HMAX(j, VMAXI);
    return m[0] != -INFINITY && c[0] == -1 ? j[0] : -1;
}
#endif

/* float64: best (score, smaller j) over entries [p0, e) with j <= i */
INLINE void exact_run(const idx_t *X, const double *qv, int64_t i, int32_t p0, int32_t e, double *bs, int64_t *bj) {
    for (int32_t p = p0; p < e; p++) {
        int64_t j = X->FJ[p];
        if (j > i) continue;
        double s = dot4(qv, X->k + 4 * j);
        if (s > *bs || (s == *bs && j < *bj)) { *bs = s; *bj = j; }
    }
}

/* the (2r+1)^3 box around q's cell in its chart (returns the chart's cell starts) and the radius
   around q inside which every key of every chart is in that box */
INLINE const int32_t *box_of(const idx_t *X, const double *qv, int r, int lo[3], int hi[3], double *radp) {
    const int G = X->G;
    const double h = X->h, inv_h = X->inv_h;
    double am;
    int d = chart_of(qv, &am);
    int ch = 2 * d + (qv[d] < 0);
    double rad = am - TAU;   /* keys missing from this chart have k_d of the other sign or |k_d| < TAU */
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
    *radp = rad;
    return X->start + ch * X->G3;
}

/* The screens, as one body for two instruction sets: screen_queries sets win[t] to the screened
   winner of query order[t]'s box (-1: ambiguous) and rad[t] to the box's radius; screen_brute sets
   win[t] to the screened winner over all j <= i for i = list[t]. */
#define DEFINE_SCREENS(SFX, ATTR, WF)                                                                      \
    ATTR static void screen_queries##SFX(const idx_t *X, const double *q, const int32_t *order, int64_t n,  \
                                         int r, int32_t *win, double *rad) {                                \
        for (int64_t t = 0; t < n; t++) {                                                                  \
            int64_t i = order[t];                                                                          \
            int lo[3], hi[3];                                                                              \
            const int32_t *st = box_of(X, q + 4 * i, r, lo, hi, rad + t);                                  \
            SCREEN_INIT(q + 4 * i, i);                                                                     \
            for (int c2 = lo[2]; c2 <= hi[2]; c2++)                                                        \
                for (int c1 = lo[1]; c1 <= hi[1]; c1++) {                                                  \
                    int64_t cb = (int64_t)X->G * X->G * c2 + (int64_t)X->G * c1;                           \
                    for (int32_t p = st[cb + lo[0]], e = st[cb + hi[0] + 1]; p < e; p += WF)               \
                        STEP(X->F0, X->F1, X->F2, X->F3, X->FJ, p);                                        \
                }                                                                                          \
            win[t] = SCREENED();                                                                           \
        }                                                                                                  \
    }                                                                                                      \
    ATTR static void screen_brute##SFX(const idx_t *X, const double *q, const int32_t *list, int64_t n,     \
                                       int32_t *win) {                                                     \
        for (int64_t t = 0; t < n; t++) {                                                                  \
            int64_t i = list[t];                                                                           \
            SCREEN_INIT(q + 4 * i, i);                                                                     \
            for (int64_t p = 0; p <= i; p += WF) STEP(X->B0, X->B1, X->B2, X->B3, X->BJ, p);               \
            win[t] = SCREENED();                                                                           \
        }                                                                                                  \
    }

#ifdef VEC
DEFINE_SCREENS(_portable, , 4)
#undef STEP
#undef SCREEN_INIT
#undef SCREENED
#else
static void screen_queries_portable(const idx_t *X, const double *q, const int32_t *order, int64_t n, int r,
                                    int32_t *win, double *rad) {
    for (int64_t t = 0; t < n; t++) {   /* no screen: decide() rescans every box in float64 */
        int lo[3], hi[3];
        box_of(X, q + 4 * (int64_t)order[t], r, lo, hi, rad + t);
        win[t] = -1;
    }
}
static void screen_brute_portable(const idx_t *X, const double *q, const int32_t *list, int64_t n, int32_t *win) {
    (void)X; (void)q; (void)list;
    for (int64_t t = 0; t < n; t++) win[t] = -1;
}
#endif

#ifdef HAVE_AVX2
/* the same step with AVX2 + FMA: max/min/blend in one instruction each, and fused multiply-adds
   (the screening bound above holds with or without fusing: four roundings either way) */
#define STEP(F0, F1, F2, F3, FJ, P) do { \
    __m256 s = _mm256_mul_ps(q0, _mm256_loadu_ps((F0) + (P))); \
    s = _mm256_fmadd_ps(q1, _mm256_loadu_ps((F1) + (P)), s); \
    s = _mm256_fmadd_ps(q2, _mm256_loadu_ps((F2) + (P)), s); \
    s = _mm256_fmadd_ps(q3, _mm256_loadu_ps((F3) + (P)), s); \
    __m256i jj = _mm256_loadu_si256((const __m256i *)((FJ) + (P))); \
    s = _mm256_blendv_ps(s, ninf, _mm256_castsi256_ps(_mm256_cmpgt_epi32(jj, id))); \
    __m256 gt = _mm256_cmp_ps(s, best, _CMP_GT_OQ); \
    second = _mm256_max_ps(second, _mm256_min_ps(best, s)); \
    best = _mm256_max_ps(best, s); \
    bj = _mm256_castps_si256(_mm256_blendv_ps(_mm256_castsi256_ps(bj), _mm256_castsi256_ps(jj), gt)); } while (0)
#define SCREEN_INIT(qv, i) __m256 q0 = _mm256_set1_ps((float)(qv)[0]), q1 = _mm256_set1_ps((float)(qv)[1]), \
    q2 = _mm256_set1_ps((float)(qv)[2]), q3 = _mm256_set1_ps((float)(qv)[3]); \
    __m256i id = _mm256_set1_epi32((int32_t)(i)); const __m256 ninf = _mm256_set1_ps(-INFINITY); \
    __m256 best = ninf, second = ninf; __m256i bj = _mm256_set1_epi32(-1)
#define SCREENED() screened_m256(best, second, bj)
AVX2_FMA INLINE int32_t screened_m256(__m256 best, __m256 second, __m256i bj) {
    __m256 m = _mm256_max_ps(best, _mm256_permute2f128_ps(best, best, 1));   /* all lanes: the max */
    m = _mm256_max_ps(m, _mm256_shuffle_ps(m, m, _MM_SHUFFLE(1, 0, 3, 2)));
    m = _mm256_max_ps(m, _mm256_shuffle_ps(m, m, _MM_SHUFFLE(2, 3, 0, 1)));
    __m256 thr = _mm256_sub_ps(m, _mm256_set1_ps(WINDOW));
    int c = __builtin_popcount(_mm256_movemask_ps(_mm256_cmp_ps(best, thr, _CMP_GE_OQ))) +
            __builtin_popcount(_mm256_movemask_ps(_mm256_cmp_ps(second, thr, _CMP_GE_OQ)));
    int lane = __builtin_ctz(_mm256_movemask_ps(_mm256_cmp_ps(best, m, _CMP_EQ_OQ)) | 0x100);
    int32_t j[8];
    _mm256_storeu_si256((__m256i *)j, bj);
    return _mm256_cvtss_f32(m) != -INFINITY && c == 1 ? j[lane & 7] : -1;
}
DEFINE_SCREENS(_avx2, AVX2_FMA, 8)
#endif

typedef void (*screen_queries_fn)(const idx_t *, const double *, const int32_t *, int64_t, int, int32_t *, double *);
typedef void (*screen_brute_fn)(const idx_t *, const double *, const int32_t *, int64_t, int32_t *);
static screen_queries_fn screen_queries = screen_queries_portable;
static screen_brute_fn screen_brute = screen_brute_portable;

/* use the AVX2 + FMA screens when asked and the CPU has them; returns whether they are in use */
static int use_simd(int on) {
#ifdef HAVE_AVX2
    __builtin_cpu_init();
    on = on && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    screen_queries = on ? screen_queries_avx2 : screen_queries_portable;
    screen_brute = on ? screen_brute_avx2 : screen_brute_portable;
    return on;
#else
    (void)on;
    return 0;
#endif
}

/* the float64 score of the screened winner j (j < 0: a float64 rescan of the box with the tie
   rule), then the certificate; returns 1 and sets *res if certified */
INLINE int decide(const idx_t *X, const double *qv, int64_t i, int r, int32_t j, double rad, int64_t *res) {
    double bs = -INFINITY;
    int64_t bjj = j;
    if (j >= 0) bs = dot4(qv, X->k + 4 * (int64_t)j);
    else {
        int lo[3], hi[3];
        const int32_t *st = box_of(X, qv, r, lo, hi, &rad);
        for (int c2 = lo[2]; c2 <= hi[2]; c2++)
            for (int c1 = lo[1]; c1 <= hi[1]; c1++) {
                int64_t cb = (int64_t)X->G * X->G * c2 + (int64_t)X->G * c1;
                exact_run(X, qv, i, st[cb + lo[0]], st[cb + hi[0] + 1], &bs, &bjj);
            }
        if (bjj < 0) return 0;
    }
    double R2 = dot4(qv, qv) + X->nkmax + 1e-12 - 2.0 * bs;
    double R = R2 > 0 ? sqrt(R2) : 0.0;
    if (R + 1e-9 <= rad) { *res = bjj; return 1; }
    return 0;
}

/* queries order[0..n): screen all, then decide all (in two loops, the long dependency chain of one
   query's decision overlaps the next screens); uncertified queries go to fail[] */
static int64_t query_pass(const idx_t *X, const double *q, const int32_t *order, int64_t n, int r,
                          int64_t *out, int32_t *fail, int32_t *win, double *rad) {
    screen_queries(X, q, order, n, r, win, rad);
    int64_t nfail = 0;
    for (int64_t t = 0; t < n; t++) {
        int64_t i = order[t];
        if (!decide(X, q + 4 * i, i, r, win[t], rad[t], out + i)) fail[nfail++] = (int32_t)i;
    }
    return nfail;
}

/* brute force over j <= i for i in list[0..n), screened, float64 where the screen is ambiguous */
static void brute(const idx_t *X, const double *q, const int32_t *list, int64_t n, int64_t *out, int32_t *win) {
    screen_brute(X, q, list, n, win);
    for (int64_t t = 0; t < n; t++) {
        int64_t i = list[t], bjj = win[t];
        if (bjj < 0) {
            const double *qv = q + 4 * i;
            double bs = -INFINITY;
            for (int64_t j = 0; j <= i; j++) {
                double s = dot4(qv, X->k + 4 * j);
                if (s > bs) { bs = s; bjj = j; }
            }
        }
        out[i] = bjj;
    }
}

/* cells[4r + d] = cellc(x[4r + d], ...) for n rows of 4 */
CLONES static void cells_rows(const double *x, int64_t n, double inv_h, int G, int32_t *cells) {
#ifdef VEC
    const vd4 one = SPLAT(vd4, 1.0), top = SPLAT(vd4, (double)(G - 1)), ih = SPLAT(vd4, inv_h), zero = {0};
    for (int64_t r = 0; r < n; r++) {
        vd4 v;
        LOADV(v, x + 4 * r);
        vd4 t = (v + one) * ih;   /* as cellc: truncate t >= 0, clamp to [0, G-1] */
        vl4 big = t > top, neg = t < zero;
        t = (vd4)((big & (vl4)top) | (~big & ~neg & (vl4)t));
        vi4 c = __builtin_convertvector(t, vi4);
        memcpy(cells + 4 * r, &c, sizeof c);
    }
#else
    for (int64_t r = 0; r < 4 * n; r++) cells[r] = cellc(x[r], inv_h, G);
#endif
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
    size_t need = (size_t)(5 * (N + PAD) + 5 * (L + PAD)) * 4 + (size_t)(2 * (ncell + 2) + 2 * N + 12 * L) * 4 +
                  (size_t)L * 8 + 64;
    if (need > ws_cap) {
        free(ws_ptr);
        ws_ptr = malloc(need);
        ws_cap = ws_ptr ? need : 0;
        if (!ws_ptr) return -1;
    }
    float *F0 = ws_ptr, *F1 = F0 + N + PAD, *F2 = F1 + N + PAD, *F3 = F2 + N + PAD;
    int32_t *FJ = (int32_t *)(F3 + N + PAD);
    float *B0 = (float *)(FJ + N + PAD), *B1 = B0 + L + PAD, *B2 = B1 + L + PAD, *B3 = B2 + L + PAD;
    int32_t *BJ = (int32_t *)(B3 + L + PAD);
    int32_t *start = BJ + L + PAD, *cnt = start + ncell + 2, *kc = cnt + ncell + 2, *ke = kc + N;
    int32_t *order = ke + N, *fail = order + L, *qc = fail + L, *KC = qc + L, *QC = KC + 4 * L, *win = QC + 4 * L;
    double *rad = (double *)(((uintptr_t)(win + L) + 7) & ~(uintptr_t)7);
    memset(start, 0, (size_t)(ncell + 2) * 4);
    memset(cnt, 0, (size_t)(ncell + 2) * 4);
    cells_rows(k, L, inv_h, G, KC);
    cells_rows(q, L, inv_h, G, QC);

    /* strides of the 4 coordinates inside chart d (its own coordinate gets stride 0) */
    const int64_t GG = (int64_t)G * G;
    const int64_t str[4][4] = {{0, 1, G, GG}, {1, 0, G, GG}, {1, G, 0, GG}, {1, G, GG, 0}};
    /* the cell of row x (its cells cx) in chart (d, sign x_d) */
#define CHART_CELL(x, cx, d) ((2 * (d) + ((x)[d] < 0)) * G3 + (cx)[0] * str[d][0] + (cx)[1] * str[d][1] + \
                              (cx)[2] * str[d][2] + (cx)[3] * str[d][3])
    double nkmax = 0;
    int64_t ne = 0;   /* chart entries: (cell kc, key ke) */
    for (int64_t j = 0; j < L; j++) {
        const double *kk = k + j * 4;
        const int32_t *cj = KC + 4 * j;
        double n2 = dot4(kk, kk);
        nkmax = n2 > nkmax ? n2 : nkmax;
        B0[j] = (float)kk[0]; B1[j] = (float)kk[1]; B2[j] = (float)kk[2]; B3[j] = (float)kk[3]; BJ[j] = (int32_t)j;
        for (int d = 0; d < 4; d++) {
            int64_t c = CHART_CELL(kk, cj, d);
            int keep = fabs(kk[d]) >= TAU;
            kc[ne] = (int32_t)c;
            ke[ne] = (int32_t)j;
            ne += keep;
            start[c + 2] += keep;
        }
    }
    for (int64_t p = L; p < L + PAD; p++) { B0[p] = B1[p] = B2[p] = B3[p] = 0; BJ[p] = INT32_MAX; }
    for (int64_t c = 0; c < ncell; c++) start[c + 2] += start[c + 1];
    for (int64_t e = 0; e < ne; e++) FJ[start[kc[e] + 1]++] = ke[e];   /* ascending j per cell */
    for (int64_t p = 0; p < ne; p++) {
        int32_t j = FJ[p];
        F0[p] = B0[j]; F1[p] = B1[j]; F2[p] = B2[j]; F3[p] = B3[j];
    }
    for (int64_t p = ne; p < ne + PAD; p++) { F0[p] = F1[p] = F2[p] = F3[p] = 0; FJ[p] = INT32_MAX; }
    idx_t X = {G, G3, h, inv_h, nkmax, start, F0, F1, F2, F3, FJ, B0, B1, B2, B3, BJ, k};

    /* queries i >= I0, counting-sorted by chart cell (ascending i within a cell) */
    int64_t nb = I0 < L ? I0 : L;
    for (int64_t i = nb; i < L; i++) {
        const double *qv = q + 4 * i;
        const int32_t *ci = QC + 4 * i;
        double am;
        int d = chart_of(qv, &am);
        int64_t c = CHART_CELL(qv, ci, d);
        qc[i] = (int32_t)c;
        cnt[c + 1]++;
    }
    for (int64_t c = 0; c < ncell; c++) cnt[c + 1] += cnt[c];
    for (int64_t i = nb; i < L; i++) order[cnt[qc[i]]++] = (int32_t)i;
    int64_t nfail = query_pass(&X, q, order, L - nb, 1, out, fail, win, rad);

    /* failures: 5x5x5 box for large i, then brute force; plus all i < I0 */
    int64_t nbr = 0;
    for (int64_t f = 0; f < nfail; f++) {
        int32_t i = fail[f];
        if (i < 512 || query_pass(&X, q, fail + f, 1, 2, out, qc, win, rad) != 0) order[nbr++] = i;
    }
    for (int64_t i = 0; i < nb; i++) order[nbr++] = (int32_t)i;
    brute(&X, q, order, nbr, out, win);
    return 0;
#undef CHART_CELL
}

/* ---- a whole sample (D = 4): normalisation, search, float32 assembly -------------------------- */

/* each row of 4 divided by sqrt(((x0*x0 + x1*x1) + x2*x2) + x3*x3), lane-wise IEEE division */
CLONES static void normalise_rows(double *x, int64_t n) {
    for (int64_t r = 0; r < n; r++) {
        double *row = x + 4 * r;
        double nrm = sqrt(dot4(row, row));
#ifdef VEC
        vd4 v;
        LOADV(v, row);
        v = v / SPLAT(vd4, nrm);
        memcpy(row, &v, sizeof v);
#else
        for (int d = 0; d < 4; d++) row[d] = row[d] / nrm;
#endif
    }
}

/* inputs[i] = (q_i, k_i, v_i, pos_i), targets[i] = v_idx[i], each value rounded to float32 */
CLONES static void assemble(const double *q, const double *k, const double *v, const float *pos, const int64_t *idx,
                            int64_t L, float *in, float *tg) {
    for (int64_t i = 0; i < L; i++) {
        float *o = in + 14 * i;
#ifdef VEC
        vd4 a, b, c, t;
        LOADV(a, q + 4 * i); LOADV(b, k + 4 * i); LOADV(c, v + 4 * i); LOADV(t, v + 4 * idx[i]);
        vf fa = __builtin_convertvector(a, vf), fb = __builtin_convertvector(b, vf);
        vf fc = __builtin_convertvector(c, vf), ft = __builtin_convertvector(t, vf);
        memcpy(o, &fa, 16); memcpy(o + 4, &fb, 16); memcpy(o + 8, &fc, 16); memcpy(tg + 4 * i, &ft, 16);
#else
        for (int d = 0; d < 4; d++) {
            o[d] = (float)q[4 * i + d];
            o[4 + d] = (float)k[4 * i + d];
            o[8 + d] = (float)v[4 * i + d];
            tg[4 * i + d] = (float)v[4 * idx[i] + d];
        }
#endif
        o[12] = pos[2 * i];
        o[13] = pos[2 * i + 1];
    }
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
        normalise_rows(x, 3 * L);
        rc = causal_mips_unit4(x, x + 4 * L, L, idx);
        if (rc == 0) assemble(x, x + 4 * L, x + 8 * L, (const float *)pb.buf, idx, L, (float *)ib.buf, (float *)tb.buf);
    }
    free(idx);
    PyBuffer_Release(&xb); PyBuffer_Release(&pb); PyBuffer_Release(&ib); PyBuffer_Release(&tb);
    if (rc < 0) return PyErr_NoMemory();
    Py_RETURN_NONE;
}

PyDoc_STRVAR(simd_doc, "simd(on) -> bool: screen with the AVX2 + FMA kernels when on and the CPU has them, else with\n"
                       "the portable ones (the results are the same); returns whether AVX2 + FMA are now in use.");

static PyObject *py_simd(PyObject *Py_UNUSED(self), PyObject *arg) {
    int on = PyObject_IsTrue(arg);
    if (on < 0) return NULL;
    return PyBool_FromLong(use_simd(on));
}

static PyMethodDef methods[] = {
    {"simd", py_simd, METH_O, simd_doc},
    {"search", py_search, METH_VARARGS, search_doc},
    {"sample", py_sample, METH_VARARGS, sample_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_mips", "Compiled exact causal MIPS for lrbench (D = 4); see atomic.py.", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__mips(void) {
    use_simd(1);
    return PyModule_Create(&module);
}

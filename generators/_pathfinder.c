/* lrbench.generators._pathfinder: Pathfinder-Segmentation's snake growth, compiled.

   generators/pathfinder.py defines the process (`_main_paths_py`, `_grow_py`); this module computes
   the same bits faster, and pathfinder.py falls back to Python when it is not built (the extension
   is optional at install). Every trigonometric value comes from tables that Python computes with its
   math module; what is computed here is IEEE double +, -, *, /, comparisons, ceil and round-half-even,
   in the same order as the Python path (setup.py: -ffp-contract=off, no fast-math).

   Shapes: a "shape id" names one dash's rendering: 0..359 a first dash pointing at degree id - 180,
   360 + i the dash drawn back from ring head i. Per shape id the tables hold its mask patch
   (uint8 [P*P], its start at the centre), that mask dilated by a disc of radius margin ([G*G]),
   sin/cos of the direction a snake continues in after it (`heading`), and the turn weight of every
   ring head given that heading (`weight` [n_shapes][n_heads]).

   grow(): snakes (1 or 2) grow alternately, one dash each per round. A snake's next pivot lies
   length + 2 margin px beyond its last pivot (rounded up); the candidate heads are the pixels that
   the ring's points (offsets ring_y, ring_x from that pivot) fall in, in ring order, each once. Head
   i is drawn with probability ~ weight * (1 - grown / 255) by its cmf and uniform
   u[(r*S + s)*3 + t] (try t of round r of snake s); the dash drawn back from it must not collide
   (mask + its mask >= COLLIDE nowhere). On success the snake's previous dash joins the mask.

   main_paths(): whole attempts of the two main paths, each from a fresh mask, until one succeeds
   (returns its index) or the block of uniforms is used up (returns -1). */

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

#define FREE 76
#define COLLIDE 459
#define TRIES 3
#define SEEDS 360
#define MIN_FREE 0.01

typedef struct {
    int M, L, m, K, R, W, P, G, n_ring, n_heads, n_shapes;
    const double *ring_y, *ring_x, *sin_h, *cos_h, *sin_r, *cos_r, *weight, *sin_a, *cos_a;
    const int32_t *head_of, *foot; /* [W*W] ring head of an offset (-1: none); [SEEDS][5] footprint extents, no-start flag */
    const uint8_t *masks, *grown;
    const int32_t *mspan, *gspan; /* per shape and patch row: [first, last + 1) column of nonzero pixels */
    uint8_t *mask, *gmask;
    int64_t dirty[4]; /* rows [0], [1]) and columns [2], [3]) that add() has written since the last reset */
    const int32_t *inner; /* [n_inner][3]: dy, dx, head of the ring's pixels around an inner pivot */
    int n_inner;
    const int32_t *foot_off, *foot_at; /* start footprints: offsets [n][2], shape s at [foot_at[s], foot_at[s+1]) */
    /* undo log of add() while a distractor grows: boxes of mask and grown as they were */
    uint8_t *log;
    size_t log_used, *log_at; /* entry k starts at log_at[k]; even k: mask, odd k: grown */
    int log_n;
    /* scratch */
    int32_t *seen, *cand;
    int64_t *cy, *cx;
    double *pmf;
    int32_t stamp;
} Ctx;

/* canvas = max(canvas, patch) with the patch's centre at (y, x), over the patch's nonzero spans
   (zero pixels change nothing) */
static void paste_max(uint8_t *canvas, int64_t M, const uint8_t *p, const int32_t *span, int64_t half, int64_t y,
                      int64_t x) {
    int64_t P = 2 * half + 1, y0 = y - half, x0 = x - half;
    int64_t r0 = y0 > 0 ? y0 : 0, r1 = y0 + P < M ? y0 + P : M;
    for (int64_t r = r0; r < r1; r++) {
        const int32_t *sp = span + 2 * (r - y0);
        int64_t c0 = x0 + sp[0] > 0 ? x0 + sp[0] : 0, c1 = x0 + sp[1] < M ? x0 + sp[1] : M;
        uint8_t *row = canvas + r * M;
        const uint8_t *src = p + (r - y0) * P - x0;
        for (int64_t q = c0; q < c1; q++) row[q] = src[q] > row[q] ? src[q] : row[q];
    }
}

/* save (or with restore: put back) the box of half-width `half` around (y, x) of a canvas */
static void save_box(Ctx *c, uint8_t *canvas, int64_t half, int64_t y, int64_t x) {
    int64_t M = c->M, r0 = y - half > 0 ? y - half : 0, r1 = y + half + 1 < M ? y + half + 1 : M;
    int64_t c0 = x - half > 0 ? x - half : 0, c1 = x + half + 1 < M ? x + half + 1 : M;
    int64_t box[4] = {r0, r1, c0, c1};
    if (r0 >= r1 || c0 >= c1) box[1] = r0, box[3] = c0;
    c->log_at[c->log_n++] = c->log_used;
    memcpy(c->log + c->log_used, box, sizeof box);
    c->log_used += sizeof box;
    for (int64_t r = box[0]; r < box[1]; r++) {
        memcpy(c->log + c->log_used, canvas + r * M + c0, (size_t)(c1 - c0));
        c->log_used += (size_t)(c1 - c0);
    }
}

/* undo the logged adds, newest first */
static void undo(Ctx *c) {
    for (int k = c->log_n; k-- > 0;) {
        int64_t box[4];
        memcpy(box, c->log + c->log_at[k], sizeof box);
        uint8_t *canvas = (k % 2 == 0) ? c->mask : c->gmask;
        const uint8_t *src = c->log + c->log_at[k] + sizeof box;
        for (int64_t r = box[0]; r < box[1]; r++) {
            memcpy(canvas + r * c->M + box[2], src, (size_t)(box[3] - box[2]));
            src += box[3] - box[2];
        }
    }
    c->log_used = 0, c->log_n = 0;
}

/* the dash's mask into the mask, its dilation into grown */
static void add(Ctx *c, int64_t y, int64_t x, int64_t shape) {
    int64_t P = c->P, G = c->G;
    if (c->log) save_box(c, c->mask, c->K, y, x), save_box(c, c->gmask, c->K + c->m, y, x);
    int64_t h = c->K + c->m; /* the grown patch covers the mask patch */
    if (y - h < c->dirty[0]) c->dirty[0] = y - h > 0 ? y - h : 0;
    if (y + h + 1 > c->dirty[1]) c->dirty[1] = y + h + 1 < c->M ? y + h + 1 : c->M;
    if (x - h < c->dirty[2]) c->dirty[2] = x - h > 0 ? x - h : 0;
    if (x + h + 1 > c->dirty[3]) c->dirty[3] = x + h + 1 < c->M ? x + h + 1 : c->M;
    paste_max(c->mask, c->M, c->masks + shape * P * P, c->mspan + shape * P * 2, c->K, y, x);
    paste_max(c->gmask, c->M, c->grown + shape * G * G, c->gspan + shape * G * 2, c->K + c->m, y, x);
}

static int collides(const Ctx *c, int64_t y, int64_t x, int64_t shape) {
    int64_t K = c->K, P = c->P, M = c->M, y0 = y - K, x0 = x - K;
    const uint8_t *p = c->masks + shape * P * P;
    const int32_t *span = c->mspan + shape * P * 2;
    int64_t r0 = y0 > 0 ? y0 : 0, r1 = y0 + P < M ? y0 + P : M;
    for (int64_t r = r0; r < r1; r++) {
        const int32_t *sp = span + 2 * (r - y0);
        int64_t c0 = x0 + sp[0] > 0 ? x0 + sp[0] : 0, c1 = x0 + sp[1] < M ? x0 + sp[1] : M;
        const uint8_t *row = c->mask + r * M;
        const uint8_t *src = p + (r - y0) * P - x0;
        for (int64_t q = c0; q < c1; q++)
            if ((int)row[q] + (int)src[q] >= COLLIDE) return 1;
    }
    return 0;
}

/* snake: pivot y, x, last dash y, x, shape id. Returns 1 placed, 0 failed, -1 table error */
static int grow_one(Ctx *c, int64_t *snake, const double *u, int64_t *out) {
    int64_t last = snake[4], M = c->M, R = c->R, W = c->W;
    double dist = (double)(c->L + 2 * c->m);
    int64_t py = (int64_t)ceil((double)snake[0] + dist * c->sin_h[last]);
    int64_t px = (int64_t)ceil((double)snake[1] + dist * c->cos_h[last]);
    int n = 0;
    if (c->n_inner && py >= R && py < M - R && px >= R && px < M - R) {
        /* every point of the ring inside the image: its pixels are the table's, in ring order */
        for (int i = 0; i < c->n_inner; i++) {
            const int32_t *e = c->inner + 3 * i;
            c->cand[i] = e[2], c->cy[i] = py + e[0], c->cx[i] = px + e[1];
        }
        n = c->n_inner;
    } else {
        c->stamp++;
        for (int k = 0; k < c->n_ring; k++) {
            double fy = (double)py + c->ring_y[k], fx = (double)px + c->ring_x[k];
            if (!(fy >= 0 && fy < M && fx >= 0 && fx < M)) continue;
            int64_t hy = (int64_t)fy, hx = (int64_t)fx;
            int64_t dy = hy - py + R, dx = hx - px + R;
            if (dy < 0 || dy >= W || dx < 0 || dx >= W) return -1;
            int64_t cell = dy * W + dx;
            if (c->seen[cell] == c->stamp) continue;
            c->seen[cell] = c->stamp;
            if (c->head_of[cell] < 0) return -1;
            c->cand[n] = c->head_of[cell], c->cy[n] = hy, c->cx[n] = hx;
            n++;
        }
    }
    if (n == 0) return 0;
    const double *w = c->weight + last * c->n_heads;
    double total = 0.0; /* pmf[] holds the running sum: the cmf times the total */
    for (int i = 0; i < n; i++) {
        total += (1.0 - (double)c->gmask[c->cy[i] * M + c->cx[i]] / 255.0) * w[c->cand[i]];
        c->pmf[i] = total;
    }
    if (total < 1e-4) return 0;
    for (int t = 0; t < TRIES; t++) {
        double draw = u[t] * total;
        int i = 0;
        while (i < n && !(c->pmf[i] > draw)) i++;
        if (i == n) i = 0; /* the reference's argmax quirk */
        int64_t shape = SEEDS + c->cand[i];
        if (collides(c, c->cy[i], c->cx[i], shape)) continue;
        add(c, snake[2], snake[3], snake[4]);
        snake[0] = py, snake[1] = px, snake[2] = c->cy[i], snake[3] = c->cx[i], snake[4] = shape;
        out[0] = c->cy[i], out[1] = c->cx[i], out[2] = shape;
        return 1;
    }
    return 0;
}

/* rounds of S snakes; out [rounds][S][3]. 1 all placed, 0 failed, -1 table error */
static int grow_all(Ctx *c, int64_t *snakes, int S, int rounds, const double *u, int64_t *out) {
    for (int r = 0; r < rounds; r++)
        for (int s = 0; s < S; s++) {
            int ok = grow_one(c, snakes + 5 * s, u + (r * S + s) * TRIES, out + (r * S + s) * 3);
            if (ok != 1) return ok;
        }
    return 1;
}

static int inside(const Ctx *c, int64_t y, int64_t x) { return y >= 0 && y < c->M && x >= 0 && x < c->M; }

/* a first dash from `tail` at seed shape `id`: pivot, or 0 when head or pivot leave the image */
static int seed_dash(const Ctx *c, int64_t ty, int64_t tx, int id, int64_t *snake) {
    int64_t hy = (int64_t)ceil((double)ty + (double)c->L * c->sin_a[id]);
    int64_t hx = (int64_t)ceil((double)tx + (double)c->L * c->cos_a[id]);
    int64_t py = (int64_t)ceil((double)hy + (double)(c->L + c->m) * c->sin_r[id]);
    int64_t px = (int64_t)ceil((double)hx + (double)(c->L + c->m) * c->cos_r[id]);
    if (!inside(c, hy, hx) || !inside(c, py, px)) return 0;
    snake[0] = py, snake[1] = px, snake[2] = ty, snake[3] = tx, snake[4] = id;
    return 1;
}

/* one attempt; u as laid out in pathfinder.py (_main_attempt_py). 1 success, 0 failed, -1 error */
static int attempt(Ctx *c, const double *u, int w, int sd, int rounds, int64_t *snakes, int64_t *out) {
    int ok = 0;
    for (int t = 0; t < TRIES && !ok; t++) {
        int id = (int)(u[3 * t] * SEEDS);
        const int32_t *f = c->foot + 5 * id;
        if (f[4]) return 0; /* the reference's dilation leaves no start at all with this kernel */
        int64_t y0 = w - f[0], y1 = c->M - 1 - w - f[1], x0 = w - f[2], x1 = c->M - 1 - w - f[3];
        if (y0 > y1 || x0 > x1) return 0; /* no clear start at all */
        int64_t ty = y0 + (int64_t)(u[3 * t + 1] * (double)(y1 - y0 + 1));
        int64_t tx = x0 + (int64_t)(u[3 * t + 2] * (double)(x1 - x0 + 1));
        ok = seed_dash(c, ty, tx, id, snakes);
    }
    if (!ok) return 0;
    ok = 0;
    for (int t = 0; t < TRIES && !ok; t++) {
        int id = (int)(u[9 + 2 * t] * SEEDS), away = (int)(u[9 + 2 * t + 1] * SEEDS);
        int64_t ty = (int64_t)nearbyint((double)snakes[2] + (double)sd * c->sin_a[away]);
        int64_t tx = (int64_t)nearbyint((double)snakes[3] + (double)sd * c->cos_a[away]);
        ok = seed_dash(c, ty, tx, id, snakes + 5);
    }
    if (!ok) return 0;
    out[0] = snakes[2], out[1] = snakes[3], out[2] = snakes[4];
    out[3] = snakes[7], out[4] = snakes[8], out[5] = snakes[9];
    int grown = grow_all(c, snakes, 2, rounds, u + 15, out + 6);
    if (grown != 1) return grown;
    add(c, snakes[7], snakes[8], snakes[9]); /* the second path's last dash; the first's never */
    return 1;
}

/* is every footprint pixel of seed shape `id` from (y, x) that lies inside the image free? */
static int clear_at(const Ctx *c, int64_t y, int64_t x, int id) {
    for (int32_t k = c->foot_at[id]; k < c->foot_at[id + 1]; k++) {
        int64_t yy = y + c->foot_off[2 * k], xx = x + c->foot_off[2 * k + 1];
        if (yy >= 0 && yy < c->M && xx >= 0 && xx < c->M && c->mask[yy * c->M + xx] > FREE) return 0;
    }
    return 1;
}

/* the pick-th clear start in row-major order (pick < 0: count them) */
static int64_t clear_scan(const Ctx *c, int id, int64_t pick, int64_t *y, int64_t *x) {
    int64_t n = 0;
    for (int64_t yy = 0; yy < c->M; yy++)
        for (int64_t xx = 0; xx < c->M; xx++)
            if (clear_at(c, yy, xx, id)) {
                if (n == pick) {
                    *y = yy, *x = xx;
                    return n;
                }
                n++;
            }
    return n;
}

/* one distractor: the image must be >= MIN_FREE free; 3 tries of a start (u per try: shape, exact pick,
   then N candidate (y, x) pairs, the first clear one wins, else the exact set), then rounds dashes */
static int distractor_attempt(Ctx *c, const double *u, int N, int rounds, int64_t *out, int64_t *pivot) {
    int64_t M = c->M, MM = M * M, n_free = 0;
    for (int64_t i = 0; i < MM; i++) n_free += c->mask[i] <= FREE;
    if ((double)n_free < MIN_FREE * (double)MM) return 0;
    int64_t snake[5];
    int ok = 0;
    for (int t = 0; t < TRIES && !ok; t++) {
        const double *v = u + t * (2 + 2 * N);
        int id = (int)(v[0] * SEEDS);
        if (c->foot[5 * id + 4]) return 0; /* no start at all with this kernel */
        int64_t ty = -1, tx = -1;
        for (int j = 0; j < N && ty < 0; j++) {
            int64_t y = (int64_t)(v[2 + 2 * j] * (double)M), x = (int64_t)(v[3 + 2 * j] * (double)M);
            if (clear_at(c, y, x, id)) ty = y, tx = x;
        }
        if (ty < 0) {
            int64_t n = clear_scan(c, id, -1, &ty, &tx);
            if (n == 0) return 0; /* no clear start at all */
            clear_scan(c, id, (int64_t)(v[1] * (double)n), &ty, &tx);
        }
        ok = seed_dash(c, ty, tx, id, snake);
    }
    if (!ok) return 0;
    pivot[0] = snake[0], pivot[1] = snake[1];
    out[0] = snake[2], out[1] = snake[3], out[2] = snake[4];
    int grown = grow_all(c, snake, 1, rounds, u + TRIES * (2 + 2 * N), out + 3);
    if (grown != 1) {
        undo(c);
        return grown;
    }
    uint8_t *log = c->log;
    c->log = NULL; /* the last dash's add needs no undo */
    add(c, snake[2], snake[3], snake[4]);
    c->log = log;
    return 1;
}

/* ---- Python glue ---- */

static int get(PyObject *obj, Py_buffer *b, int writable, Py_ssize_t itemsize, Py_ssize_t n, const char *name) {
    if (PyObject_GetBuffer(obj, b, (writable ? PyBUF_WRITABLE : 0) | PyBUF_C_CONTIGUOUS) < 0) return -1;
    if (b->itemsize != itemsize || (n >= 0 && b->len != n * itemsize)) {
        PyErr_Format(PyExc_ValueError, "_pathfinder: %s has the wrong size or type", name);
        PyBuffer_Release(b);
        return -1;
    }
    return 0;
}

typedef struct {
    Py_buffer b[24];
    int n;
} Buffers;

static void release(Buffers *bs) {
    for (int i = 0; i < bs->n; i++) PyBuffer_Release(&bs->b[i]);
    bs->n = 0;
}

#define GET(obj_, writable_, itemsize_, count_, name_, dst_)                        \
    do {                                                                           \
        if (get(obj_, &bs.b[bs.n], writable_, itemsize_, count_, name_) < 0) goto fail; \
        dst_ = bs.b[bs.n++].buf;                                                   \
    } while (0)

/* tables: (M, L, m, K, R, ring_y, ring_x, head_of, sin_h, cos_h, sin_a, cos_a, sin_r, cos_r,
            weight, foot, masks, grown, mask_span, grown_span, foot_offsets, foot_at, inner) */
static int load(Ctx *c, PyObject *t, Buffers *b_out) {
    Buffers bs = {.n = 0};
    PyObject *o[23];
    if (!PyTuple_Check(t) || PyTuple_GET_SIZE(t) != 23) {
        PyErr_SetString(PyExc_TypeError, "_pathfinder: tables must be a 23-tuple");
        return -1;
    }
    for (int i = 0; i < 23; i++) o[i] = PyTuple_GET_ITEM(t, i);
    c->M = (int)PyLong_AsLong(o[0]), c->L = (int)PyLong_AsLong(o[1]), c->m = (int)PyLong_AsLong(o[2]);
    c->K = (int)PyLong_AsLong(o[3]), c->R = (int)PyLong_AsLong(o[4]);
    if (PyErr_Occurred()) return -1;
    c->W = 2 * c->R + 1, c->P = 2 * c->K + 1, c->G = c->P + 2 * c->m;
    Py_ssize_t W2 = (Py_ssize_t)c->W * c->W;
    GET(o[5], 0, 8, -1, "ring_y", c->ring_y);
    c->n_ring = (int)(bs.b[bs.n - 1].len / 8);
    GET(o[6], 0, 8, c->n_ring, "ring_x", c->ring_x);
    GET(o[7], 0, 4, W2, "head_of", c->head_of);
    GET(o[8], 0, 8, -1, "sin_h", c->sin_h);
    c->n_shapes = (int)(bs.b[bs.n - 1].len / 8);
    c->n_heads = c->n_shapes - SEEDS;
    GET(o[9], 0, 8, c->n_shapes, "cos_h", c->cos_h);
    GET(o[10], 0, 8, SEEDS, "sin_a", c->sin_a);
    GET(o[11], 0, 8, SEEDS, "cos_a", c->cos_a);
    GET(o[12], 0, 8, SEEDS, "sin_r", c->sin_r);
    GET(o[13], 0, 8, SEEDS, "cos_r", c->cos_r);
    GET(o[14], 0, 8, (Py_ssize_t)c->n_shapes * c->n_heads, "weight", c->weight);
    GET(o[15], 0, 4, SEEDS * 5, "foot", c->foot);
    GET(o[16], 0, 1, (Py_ssize_t)c->n_shapes * c->P * c->P, "masks", c->masks);
    GET(o[17], 0, 1, (Py_ssize_t)c->n_shapes * c->G * c->G, "grown", c->grown);
    GET(o[18], 0, 4, (Py_ssize_t)c->n_shapes * c->P * 2, "mask_span", c->mspan);
    GET(o[19], 0, 4, (Py_ssize_t)c->n_shapes * c->G * 2, "grown_span", c->gspan);
    GET(o[20], 0, 4, -1, "foot_offsets", c->foot_off);
    Py_ssize_t n_off = bs.b[bs.n - 1].len / 8;
    GET(o[21], 0, 4, SEEDS + 1, "foot_at", c->foot_at);
    GET(o[22], 0, 4, -1, "inner", c->inner);
    c->n_inner = (int)(bs.b[bs.n - 1].len / 12);
    for (int i = 0; i < c->n_inner; i++)
        if (abs(c->inner[3 * i]) > c->R || abs(c->inner[3 * i + 1]) > c->R || c->inner[3 * i + 2] < 0 ||
            c->inner[3 * i + 2] >= c->n_heads || c->n_inner > c->n_ring) {
            PyErr_SetString(PyExc_ValueError, "_pathfinder: inner out of range");
            goto fail;
        }
    for (int i = 0; i < SEEDS; i++)
        if (c->foot_at[i] < 0 || c->foot_at[i] > c->foot_at[i + 1] || c->foot_at[i + 1] > n_off) {
            PyErr_SetString(PyExc_ValueError, "_pathfinder: foot_at out of range");
            goto fail;
        }
    for (Py_ssize_t i = 0; i < (Py_ssize_t)c->n_shapes * c->P; i++)
        if (c->mspan[2 * i] < 0 || c->mspan[2 * i] > c->mspan[2 * i + 1] || c->mspan[2 * i + 1] > c->P) {
            PyErr_SetString(PyExc_ValueError, "_pathfinder: mask_span out of range");
            goto fail;
        }
    for (Py_ssize_t i = 0; i < (Py_ssize_t)c->n_shapes * c->G; i++)
        if (c->gspan[2 * i] < 0 || c->gspan[2 * i] > c->gspan[2 * i + 1] || c->gspan[2 * i + 1] > c->G) {
            PyErr_SetString(PyExc_ValueError, "_pathfinder: grown_span out of range");
            goto fail;
        }
    for (Py_ssize_t i = 0; i < W2; i++)
        if (c->head_of[i] >= c->n_heads) {
            PyErr_SetString(PyExc_ValueError, "_pathfinder: head_of out of range");
            goto fail;
        }
    c->seen = calloc((size_t)W2, sizeof(int32_t));
    c->cand = malloc(sizeof(int32_t) * (size_t)(c->n_ring + 1));
    c->cy = malloc(sizeof(int64_t) * (size_t)(c->n_ring + 1));
    c->cx = malloc(sizeof(int64_t) * (size_t)(c->n_ring + 1));
    c->pmf = malloc(sizeof(double) * (size_t)(c->n_ring + 1));
    c->stamp = 0;
    if (!c->seen || !c->cand || !c->cy || !c->cx || !c->pmf) {
        PyErr_NoMemory();
        goto fail;
    }
    *b_out = bs;
    return 0;
fail:
    release(&bs);
    return -1;
}

static void unload(Ctx *c) {
    free(c->seen), free(c->cand), free(c->cy), free(c->cx), free(c->pmf);
    c->seen = NULL, c->cand = NULL, c->cy = c->cx = NULL, c->pmf = NULL;
}

static PyObject *table_error(void) {
    PyErr_SetString(PyExc_RuntimeError, "pathfinder: a head offset has no dash in the ring table");
    return NULL;
}

/* distractor(tables, mask, grown, N, uniforms, out [rounds + 1][3], pivot [2]) -> bool: one attempt of a
   distractor, as pathfinder.py's _distractor_py; on failure mask and grown are as before */
static PyObject *distractor(PyObject *self, PyObject *args) {
    PyObject *tables, *o_mask, *o_grown, *o_u, *o_out, *o_pivot;
    int N;
    if (!PyArg_ParseTuple(args, "OOOiOOO", &tables, &o_mask, &o_grown, &N, &o_u, &o_out, &o_pivot)) return NULL;
    Ctx c = {0};
    Buffers tb = {.n = 0}, bs = {.n = 0};
    if (load(&c, tables, &tb) < 0) return NULL;
    Py_ssize_t MM = (Py_ssize_t)c.M * c.M;
    int64_t *out, *pivot;
    const double *u;
    GET(o_mask, 1, 1, MM, "mask", c.mask);
    GET(o_grown, 1, 1, MM, "grown", c.gmask);
    GET(o_out, 1, 8, -1, "out", out);
    int rounds = (int)(bs.b[bs.n - 1].len / 24) - 1;
    GET(o_u, 0, 8, (Py_ssize_t)TRIES * (2 + 2 * N) + (Py_ssize_t)TRIES * (rounds > 0 ? rounds : 0), "uniforms", u);
    GET(o_pivot, 1, 8, 2, "pivot", pivot);
    if (rounds < 0 || N < 1) {
        PyErr_SetString(PyExc_ValueError, "_pathfinder.distractor: out must be [rounds + 1, 3], N >= 1");
        goto fail;
    }
    c.log = malloc((size_t)(rounds + 1) * (2 * 4 * sizeof(int64_t) + (size_t)(c.P * c.P + c.G * c.G)));
    c.log_at = malloc(sizeof(size_t) * 2 * (size_t)(rounds + 1));
    c.log_used = 0, c.log_n = 0;
    if (!c.log || !c.log_at) {
        free(c.log), free(c.log_at);
        PyErr_NoMemory();
        goto fail;
    }
    int ok;
    Py_BEGIN_ALLOW_THREADS;
    ok = distractor_attempt(&c, u, N, rounds, out, pivot);
    Py_END_ALLOW_THREADS;
    free(c.log), free(c.log_at);
    release(&bs), release(&tb), unload(&c);
    if (ok < 0) return table_error();
    return PyBool_FromLong(ok);
fail:
    release(&bs), release(&tb), unload(&c);
    return NULL;
}

/* main_paths(tables, mask, grown, mask0, grown0, w, sd, uniforms [A][U], snakes [2][5],
              out [rounds + 1][2][3]) -> index of the first successful attempt, or -1 */
static PyObject *main_paths(PyObject *self, PyObject *args) {
    PyObject *tables, *o_mask, *o_grown, *o_mask0, *o_grown0, *o_u, *o_snakes, *o_out;
    int w, sd;
    if (!PyArg_ParseTuple(args, "OOOOOiiOOO", &tables, &o_mask, &o_grown, &o_mask0, &o_grown0, &w, &sd, &o_u,
                          &o_snakes, &o_out))
        return NULL;
    Ctx c = {0};
    Buffers tb = {.n = 0}, bs = {.n = 0};
    if (load(&c, tables, &tb) < 0) return NULL;
    Py_ssize_t MM = (Py_ssize_t)c.M * c.M;
    const uint8_t *mask0, *grown0;
    const double *u;
    int64_t *snakes, *out;
    GET(o_mask, 1, 1, MM, "mask", c.mask);
    GET(o_grown, 1, 1, MM, "grown", c.gmask);
    GET(o_mask0, 0, 1, MM, "mask0", mask0);
    GET(o_grown0, 0, 1, MM, "grown0", grown0);
    GET(o_out, 1, 8, -1, "out", out);
    int rounds = (int)(bs.b[bs.n - 1].len / 48) - 1;
    int U = 15 + 6 * rounds;
    GET(o_u, 0, 8, -1, "uniforms", u);
    Py_ssize_t A = bs.b[bs.n - 1].len / (8 * (Py_ssize_t)U);
    GET(o_snakes, 1, 8, 10, "snakes", snakes);
    if (rounds < 0 || bs.b[5].len != A * U * 8) {
        PyErr_SetString(PyExc_ValueError, "_pathfinder.main_paths: uniforms must be [A, 15 + 6 rounds]");
        goto fail;
    }
    Py_ssize_t found = -1;
    int err = 0;
    Py_BEGIN_ALLOW_THREADS;
    memcpy(c.mask, mask0, (size_t)MM), memcpy(c.gmask, grown0, (size_t)MM);
    for (Py_ssize_t a = 0; a < A && found < 0; a++) {
        for (int64_t r = c.dirty[0]; r < c.dirty[1]; r++) { /* back to the fresh masks where touched */
            int64_t at = r * c.M + c.dirty[2], n = c.dirty[3] - c.dirty[2];
            memcpy(c.mask + at, mask0 + at, (size_t)n), memcpy(c.gmask + at, grown0 + at, (size_t)n);
        }
        c.dirty[0] = c.dirty[2] = c.M, c.dirty[1] = c.dirty[3] = 0;
        int ok = attempt(&c, u + a * U, w, sd, rounds, snakes, out);
        if (ok < 0) {
            err = 1;
            break;
        }
        if (ok) found = a;
    }
    Py_END_ALLOW_THREADS;
    release(&bs), release(&tb), unload(&c);
    if (err) return table_error();
    return PyLong_FromSsize_t(found);
fail:
    release(&bs), release(&tb), unload(&c);
    return NULL;
}

static PyMethodDef methods[] = {
    {"distractor", distractor, METH_VARARGS, "One attempt of a distractor (see pathfinder.py: _distractor_py)."},
    {"main_paths", main_paths, METH_VARARGS, "Attempts of the two main paths (see pathfinder.py: _main_paths_py)."},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_pathfinder", NULL, -1, methods};

PyMODINIT_FUNC PyInit__pathfinder(void) { return PyModule_Create(&module); }

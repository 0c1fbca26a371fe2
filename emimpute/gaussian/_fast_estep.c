/* Compiled E-step of the multivariate normal for rows with k missing cells.
 *
 * The same arithmetic as emimpute/gaussian/_conditional.py (Little & Rubin 2002,
 * sec. 11.2, written through the precision matrix K = inv(S)), for rows that
 * all have k missing cells.  For one row with observed cells o, missing m,
 * d = x - mu with d_m = 0:
 *
 *   g = K_m. d                 (= K_mo d_o)
 *   K_mm = L L'                (Cholesky), Li = inv(L)
 *   x_m  = mu_m - Li' Li g     (conditional mean)
 *   C    = Li' Li              (conditional covariance, added on the (m, m)
 *                               block of the covariance sum)
 *   log det K_mm = 2 sum log L_aa
 *
 * Why compiled: these are k x k operations per row (k is often 5-15).  NumPy
 * runs them as batched elementwise passes through memory; here they stay in
 * registers.  Rows are taken LANES at a time and every small array is stored
 * [index][lane], so each arithmetic step works on LANES independent rows: the
 * compiler vectorises the lane loops and the long latency of the sqrt and
 * division chain of a Cholesky is hidden.  Common k get a specialised copy
 * with k a compile-time constant, so the tiny loops unroll.
 *
 * Optionally (the multivariate t, Liu & Rubin 1995) each row's observed-part
 * Mahalanobis distance is written out:
 *
 *   d_o' inv(S_oo) d_o = d' K d - g' C g   (the minimum over x_m of the
 *                                            quadratic form is at x_m = c)
 *
 * and weighted_sums() adds up sum w x and sum w x x' of completed rows.
 *
 * mixture_rows() is the E-step of a mixture of normals (see mixture_rows_k):
 * each group of rows goes through every component's conditional moments
 * (group_moments, shared with the normal kernel) before the next group is
 * read, so a K-component E-step reads the data once.
 *
 * The functions release the GIL; the caller runs one call per thread on
 * disjoint rows, each with its own accumulators.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define LANES 8

#if defined(__GNUC__) || defined(__clang__)
#define ALWAYS_INLINE inline __attribute__((always_inline))
#else
#define ALWAYS_INLINE inline
#endif

typedef struct {
    double *data;          /* (n, p) rows, overwritten with the completed rows */
    Py_ssize_t n, p, k;
    const int64_t *missing; /* missing[a * stride + r]: a-th missing column of row r */
    Py_ssize_t stride;
    const double *mean;    /* (p,) */
    const double *K;       /* (p, p) precision matrix */
    double *cov_sum;       /* (p, p) lower triangle accumulated, or NULL */
    double *row_sum;       /* (p,) sum of completed rows accumulated, or NULL */
    double *cross;         /* (p, p) lower triangle of sum x x' accumulated, or NULL */
    double *d2;            /* (n,) observed-part Mahalanobis distances written, or NULL */
} Rows;

/* acc[i, j] += sum over the group's rows of x[i] x[j], j <= i.  A full group
   of LANES rows is unrolled so that the loop over j is a plain vectorisable
   loop and each acc[i, j] is loaded and stored once per group, not per row. */
static ALWAYS_INLINE void
add_cross_products(double *restrict acc, const double *restrict x, Py_ssize_t p,
                   Py_ssize_t n_rows)
{
    if (n_rows == LANES) {
        const double *x0 = x, *x1 = x + p, *x2 = x + 2 * p, *x3 = x + 3 * p;
        const double *x4 = x + 4 * p, *x5 = x + 5 * p, *x6 = x + 6 * p, *x7 = x + 7 * p;
        for (Py_ssize_t i = 0; i < p; i++) {
            const double a0 = x0[i], a1 = x1[i], a2 = x2[i], a3 = x3[i];
            const double a4 = x4[i], a5 = x5[i], a6 = x6[i], a7 = x7[i];
            double *restrict acc_i = acc + i * p;
            for (Py_ssize_t j = 0; j <= i; j++)
                acc_i[j] += ((a0 * x0[j] + a1 * x1[j]) + (a2 * x2[j] + a3 * x3[j])) +
                            ((a4 * x4[j] + a5 * x5[j]) + (a6 * x6[j] + a7 * x7[j]));
        }
        return;
    }
    for (Py_ssize_t r = 0; r < n_rows; r++) {
        const double *xr = x + r * p;
        for (Py_ssize_t i = 0; i < p; i++) {
            const double a = xr[i];
            double *restrict acc_i = acc + i * p;
            for (Py_ssize_t j = 0; j <= i; j++) acc_i[j] += a * xr[j];
        }
    }
}

/* acc[i, j] += sum over the group's rows of w x[i] x[j], j <= i, and
   row_sum += sum w x: add_cross_products with each row scaled by its weight
   on one side (a separate function, so the normal path is untouched). */
static ALWAYS_INLINE void
add_weighted_products(double *restrict acc, double *restrict row_sum,
                      const double *restrict x, const double *restrict w,
                      Py_ssize_t p, Py_ssize_t n_rows)
{
    for (Py_ssize_t r = 0; r < n_rows; r++) {
        const double *xr = x + r * p;
        for (Py_ssize_t j = 0; j < p; j++) row_sum[j] += w[r] * xr[j];
    }
    if (n_rows == LANES) {
        const double *x0 = x, *x1 = x + p, *x2 = x + 2 * p, *x3 = x + 3 * p;
        const double *x4 = x + 4 * p, *x5 = x + 5 * p, *x6 = x + 6 * p, *x7 = x + 7 * p;
        for (Py_ssize_t i = 0; i < p; i++) {
            const double a0 = w[0] * x0[i], a1 = w[1] * x1[i], a2 = w[2] * x2[i];
            const double a3 = w[3] * x3[i], a4 = w[4] * x4[i], a5 = w[5] * x5[i];
            const double a6 = w[6] * x6[i], a7 = w[7] * x7[i];
            double *restrict acc_i = acc + i * p;
            for (Py_ssize_t j = 0; j <= i; j++)
                acc_i[j] += ((a0 * x0[j] + a1 * x1[j]) + (a2 * x2[j] + a3 * x3[j])) +
                            ((a4 * x4[j] + a5 * x5[j]) + (a6 * x6[j] + a7 * x7[j]));
        }
        return;
    }
    for (Py_ssize_t r = 0; r < n_rows; r++) {
        const double *xr = x + r * p;
        for (Py_ssize_t i = 0; i < p; i++) {
            const double a = w[r] * xr[i];
            double *restrict acc_i = acc + i * p;
            for (Py_ssize_t j = 0; j <= i; j++) acc_i[j] += a * xr[j];
        }
    }
}

/* quad[l] = d' K d for the LANES rows stored D[j][lane]:
   sum_i d_i (K_ii d_i + 2 sum_{j<i} K_ij d_j).  The lanes are held in two
   vectors of four (GCC/clang vector extension, lowered to what the target
   has), so the compiler cannot vectorise the loop over j instead; two i at
   a time give four independent chains of multiply-adds. */
#if defined(__GNUC__) || defined(__clang__)
typedef double half_t __attribute__((vector_size(4 * sizeof(double))));
#define LOAD_HALF(v, ptr) memcpy(&(v), (ptr), sizeof(half_t))

static ALWAYS_INLINE void
quadratic_forms(double *restrict quad, const double *restrict D,
                const double *restrict K, Py_ssize_t p)
{
    half_t q_lo = {0.0}, q_hi = {0.0};
    Py_ssize_t i0 = 0;
    for (; i0 + 2 <= p; i0 += 2) {
        half_t a0_lo = {0.0}, a0_hi = {0.0}, a1_lo = {0.0}, a1_hi = {0.0};
        half_t v_lo, v_hi;
        const double *K0 = K + i0 * p, *K1 = K0 + p;
        for (Py_ssize_t j = 0; j < i0; j++) {
            LOAD_HALF(v_lo, D + j * LANES);
            LOAD_HALF(v_hi, D + j * LANES + 4);
            a0_lo += K0[j] * v_lo;
            a0_hi += K0[j] * v_hi;
            a1_lo += K1[j] * v_lo;
            a1_hi += K1[j] * v_hi;
        }
        half_t d0_lo, d0_hi, d1_lo, d1_hi;
        LOAD_HALF(d0_lo, D + i0 * LANES);
        LOAD_HALF(d0_hi, D + i0 * LANES + 4);
        LOAD_HALF(d1_lo, D + (i0 + 1) * LANES);
        LOAD_HALF(d1_hi, D + (i0 + 1) * LANES + 4);
        a1_lo += K1[i0] * d0_lo;
        a1_hi += K1[i0] * d0_hi;
        q_lo += d0_lo * (K0[i0] * d0_lo + 2.0 * a0_lo) +
                d1_lo * (K1[i0 + 1] * d1_lo + 2.0 * a1_lo);
        q_hi += d0_hi * (K0[i0] * d0_hi + 2.0 * a0_hi) +
                d1_hi * (K1[i0 + 1] * d1_hi + 2.0 * a1_hi);
    }
    if (i0 < p) { /* the last row of K when p is odd */
        const double *K_i = K + i0 * p;
        half_t a_lo = {0.0}, a_hi = {0.0}, v_lo, v_hi;
        for (Py_ssize_t j = 0; j < i0; j++) {
            LOAD_HALF(v_lo, D + j * LANES);
            LOAD_HALF(v_hi, D + j * LANES + 4);
            a_lo += K_i[j] * v_lo;
            a_hi += K_i[j] * v_hi;
        }
        LOAD_HALF(v_lo, D + i0 * LANES);
        LOAD_HALF(v_hi, D + i0 * LANES + 4);
        q_lo += v_lo * (K_i[i0] * v_lo + 2.0 * a_lo);
        q_hi += v_hi * (K_i[i0] * v_hi + 2.0 * a_hi);
    }
    memcpy(quad, &q_lo, sizeof q_lo);
    memcpy(quad + 4, &q_hi, sizeof q_hi);
}

/* The same with the lanes in four vectors of two, for targets without
   256-bit registers (GCC splits a 256-bit vector there badly). */
typedef double pair_t __attribute__((vector_size(2 * sizeof(double))));

static ALWAYS_INLINE void
quadratic_forms_narrow(double *restrict quad, const double *restrict D,
                       const double *restrict K, Py_ssize_t p)
{
    pair_t q[4] = {{0.0}};
    Py_ssize_t i0 = 0;
    for (; i0 + 2 <= p; i0 += 2) {
        const double *K0 = K + i0 * p, *K1 = K0 + p;
        pair_t a0[4] = {{0.0}}, a1[4] = {{0.0}}, v[4], d0[4], d1[4];
        for (Py_ssize_t j = 0; j < i0; j++) {
            memcpy(v, D + j * LANES, sizeof v);
            for (int h = 0; h < 4; h++) {
                a0[h] += K0[j] * v[h];
                a1[h] += K1[j] * v[h];
            }
        }
        memcpy(d0, D + i0 * LANES, sizeof d0);
        memcpy(d1, D + (i0 + 1) * LANES, sizeof d1);
        for (int h = 0; h < 4; h++)
            q[h] += d0[h] * (K0[i0] * d0[h] + 2.0 * a0[h]) +
                    d1[h] * (K1[i0 + 1] * d1[h] + 2.0 * (a1[h] + K1[i0] * d0[h]));
    }
    if (i0 < p) { /* the last row of K when p is odd */
        const double *K_i = K + i0 * p;
        pair_t a[4] = {{0.0}}, v[4];
        for (Py_ssize_t j = 0; j < i0; j++) {
            memcpy(v, D + j * LANES, sizeof v);
            for (int h = 0; h < 4; h++) a[h] += K_i[j] * v[h];
        }
        memcpy(v, D + i0 * LANES, sizeof v);
        for (int h = 0; h < 4; h++) q[h] += v[h] * (K_i[i0] * v[h] + 2.0 * a[h]);
    }
    memcpy(quad, q, sizeof q);
}
#else
/* Without vector extensions: plain loops over the lanes. */
static ALWAYS_INLINE void
quadratic_forms(double *restrict quad, const double *restrict D,
                const double *restrict K, Py_ssize_t p)
{
    for (Py_ssize_t l = 0; l < LANES; l++) quad[l] = 0.0;
    for (Py_ssize_t i = 0; i < p; i++) {
        const double *K_i = K + i * p, *D_i = D + i * LANES;
        double acc[LANES] = {0.0};
        for (Py_ssize_t j = 0; j < i; j++)
            for (Py_ssize_t l = 0; l < LANES; l++) acc[l] += K_i[j] * D[j * LANES + l];
        for (Py_ssize_t l = 0; l < LANES; l++)
            quad[l] += D_i[l] * (K_i[i] * D_i[l] + 2.0 * acc[l]);
    }
}
#define quadratic_forms_narrow quadratic_forms
#endif

/* Sums of weighted rows and weighted cross-products (lower triangle), into
   the caller's zeroed-or-accumulating arrays, via private accumulators (see
   complete_rows_k).  Returns 0, or -1 if the workspace cannot be allocated. */
static ALWAYS_INLINE int
weighted_sums_impl(const double *data, const double *w, Py_ssize_t n, Py_ssize_t p,
                   double *row_sum_out, double *cross_out)
{
    double *work = calloc(p * p + p, sizeof(double));
    if (work == NULL) return -1;
    double *cross = work, *row_sum = work + p * p;
    for (Py_ssize_t r0 = 0; r0 < n; r0 += LANES) {
        const Py_ssize_t active = n - r0 < LANES ? n - r0 : LANES;
        add_weighted_products(cross, row_sum, data + r0 * p, w + r0, p, active);
    }
    for (Py_ssize_t i = 0; i < p * p; i++) cross_out[i] += cross[i];
    for (Py_ssize_t j = 0; j < p; j++) row_sum_out[j] += row_sum[j];
    free(work);
    return 0;
}

/* The scratch of one group of LANES rows, every array stored [index][lane]
   (see group_moments); the doubles it needs, and its layout from `at`. */
typedef struct {
    double *L, *Li;        /* (k, k) Cholesky factor of K_mm and its inverse */
    double *g;             /* (k) K_m. d */
    double *inv;           /* (k) 1 / L_aa */
    double *y, *z;         /* (k) Li g, and z = C g */
    double *det, *log_det; /* a running product of the L_aa; log det K_mm */
    double *quad;          /* d' K d, when the deviations are kept */
    int64_t *m;            /* (k) missing columns */
    double *D;             /* (p) deviations d (d_m = 0), or NULL */
    double *d;             /* (p) one row's deviation, while gathering (no lanes) */
} Group;

#define GROUP_DOUBLES(k, p) ((2 * (k) * (k) + 6 * (k) + 3 + (p)) * LANES + (p))

static ALWAYS_INLINE void
group_layout(Group *s, double *at, Py_ssize_t k, Py_ssize_t p, int keep_deviations)
{
    const Py_ssize_t B = LANES;
    s->L = at;
    s->Li = s->L + k * k * B;
    s->g = s->Li + k * k * B;
    s->inv = s->g + k * B;
    s->y = s->inv + k * B;
    s->z = s->y + k * B;
    s->det = s->z + k * B;
    s->log_det = s->det + B;
    s->quad = s->log_det + B;
    s->m = (int64_t *)(s->quad + B);
    double *deviations = (double *)(s->m + k * B);
    s->D = keep_deviations ? deviations : NULL;
    s->d = deviations + p * B;
}

/* The conditional moments of rows r0 .. r0 + LANES - 1 of `data` under
   N(mean, inv(K)); lanes past `active` (a short last group) repeat row r0, a
   valid positive definite problem whose results the callers never use.
   Fills m, g, L (the Cholesky factor of K_mm), Li = inv(L), z = C g (the
   conditional mean of the missing cells is mean_m - z), log_det (log det
   K_mm), and, when the deviations are kept, D and quad = d' K d.  Returns 0,
   or -1 if some K_mm is not numerically positive definite. */
static ALWAYS_INLINE int
group_moments(Group *s, const double *data, const int64_t *missing, Py_ssize_t stride,
              Py_ssize_t r0, Py_ssize_t active, Py_ssize_t k, Py_ssize_t p,
              const double *mean, const double *K, const int wide)
{
    const Py_ssize_t B = LANES;
    double *L = s->L, *Li = s->Li, *g = s->g, *inv = s->inv, *y = s->y, *z = s->z;
    double *det = s->det, *log_det = s->log_det, *d = s->d, *D = s->D;
    int64_t *m = s->m;

    /* Gather, row by row: g = K_m. d and the lower triangle of K_mm. */
    for (Py_ssize_t l = 0; l < B; l++) {
        const Py_ssize_t r = r0 + (l < active ? l : 0);
        const double *x = data + r * p;
        for (Py_ssize_t a = 0; a < k; a++) m[a * B + l] = missing[a * stride + r];
        for (Py_ssize_t j = 0; j < p; j++) d[j] = x[j] - mean[j];
        for (Py_ssize_t a = 0; a < k; a++) d[m[a * B + l]] = 0.0;
        for (Py_ssize_t a = 0; a < k; a++) {
            const double *K_row = K + m[a * B + l] * p;
            /* Four partial sums: independent chains, vectorisable. */
            double s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0;
            Py_ssize_t j = 0;
            for (; j + 4 <= p; j += 4) {
                s0 += K_row[j] * d[j];
                s1 += K_row[j + 1] * d[j + 1];
                s2 += K_row[j + 2] * d[j + 2];
                s3 += K_row[j + 3] * d[j + 3];
            }
            for (; j < p; j++) s0 += K_row[j] * d[j];
            g[a * B + l] = (s0 + s1) + (s2 + s3);
            for (Py_ssize_t b = 0; b <= a; b++)
                L[(a * k + b) * B + l] = K_row[m[b * B + l]];
        }
        if (D != NULL)
            for (Py_ssize_t j = 0; j < p; j++) D[j * B + l] = d[j];
    }

    if (D != NULL) {
        if (wide)
            quadratic_forms(s->quad, D, K, p);
        else
            quadratic_forms_narrow(s->quad, D, K, p);
    }

    /* Cholesky K_mm = L L', row by row (Cholesky-Banachiewicz), in place. */
    for (Py_ssize_t l = 0; l < B; l++) det[l] = 1.0, log_det[l] = 0.0;
    for (Py_ssize_t a = 0; a < k; a++) {
        for (Py_ssize_t b = 0; b <= a; b++) {
            double s_ab[LANES];
            double *L_ab = L + (a * k + b) * B;
            for (Py_ssize_t l = 0; l < B; l++) s_ab[l] = L_ab[l];
            for (Py_ssize_t c = 0; c < b; c++) {
                const double *L_ac = L + (a * k + c) * B, *L_bc = L + (b * k + c) * B;
                for (Py_ssize_t l = 0; l < B; l++) s_ab[l] -= L_ac[l] * L_bc[l];
            }
            if (b < a) {
                const double *inv_b = inv + b * B;
                for (Py_ssize_t l = 0; l < B; l++) L_ab[l] = s_ab[l] * inv_b[l];
                continue;
            }
            int not_positive = 0;
            for (Py_ssize_t l = 0; l < B; l++) not_positive |= !(s_ab[l] > 0.0);
            if (not_positive) return -1;
            double *inv_a = inv + a * B;
            for (Py_ssize_t l = 0; l < B; l++) {
                const double root = sqrt(s_ab[l]);
                L_ab[l] = root;
                inv_a[l] = 1.0 / root;
                det[l] *= root;
            }
            /* Logs are slow: take one per row, of the product of the
               diagonal, folding it into log_det before it could leave the
               range of a double (columns in tiny or huge units). */
            for (Py_ssize_t l = 0; l < B; l++) {
                if (det[l] > 1e150 || det[l] < 1e-150) {
                    log_det[l] += log(det[l]);
                    det[l] = 1.0;
                }
            }
        }
    }
    for (Py_ssize_t l = 0; l < B; l++) log_det[l] = 2.0 * (log_det[l] + log(det[l]));

    /* Li = inv(L), lower triangular, by forward substitution. */
    for (Py_ssize_t a = 0; a < k; a++) {
        const double *inv_a = inv + a * B;
        for (Py_ssize_t b = 0; b < a; b++) {
            double s_ab[LANES] = {0.0};
            for (Py_ssize_t c = b; c < a; c++) {
                const double *L_ac = L + (a * k + c) * B, *Li_cb = Li + (c * k + b) * B;
                for (Py_ssize_t l = 0; l < B; l++) s_ab[l] -= L_ac[l] * Li_cb[l];
            }
            double *Li_ab = Li + (a * k + b) * B;
            for (Py_ssize_t l = 0; l < B; l++) Li_ab[l] = s_ab[l] * inv_a[l];
        }
        double *Li_aa = Li + (a * k + a) * B;
        for (Py_ssize_t l = 0; l < B; l++) Li_aa[l] = inv_a[l];
    }

    /* z = C g = Li' (Li g). */
    for (Py_ssize_t a = 0; a < k; a++) {
        double s_a[LANES] = {0.0};
        for (Py_ssize_t c = 0; c <= a; c++) {
            const double *Li_ac = Li + (a * k + c) * B, *g_c = g + c * B;
            for (Py_ssize_t l = 0; l < B; l++) s_a[l] += Li_ac[l] * g_c[l];
        }
        for (Py_ssize_t l = 0; l < B; l++) y[a * B + l] = s_a[l];
    }
    for (Py_ssize_t b = 0; b < k; b++) {
        double s_b[LANES] = {0.0};
        for (Py_ssize_t a = b; a < k; a++) {
            const double *Li_ab = Li + (a * k + b) * B, *y_a = y + a * B;
            for (Py_ssize_t l = 0; l < B; l++) s_b[l] += Li_ab[l] * y_a[l];
        }
        for (Py_ssize_t l = 0; l < B; l++) z[b * B + l] = s_b[l];
    }
    return 0;
}

/* out[l] = C_ab = (Li' Li)_ab, a >= b, per lane. */
static ALWAYS_INLINE void
covariance_entry(double *restrict out, const double *restrict Li, Py_ssize_t k,
                 Py_ssize_t a, Py_ssize_t b)
{
    const Py_ssize_t B = LANES;
    double s[LANES] = {0.0};
    for (Py_ssize_t c = a; c < k; c++) {
        const double *Li_ca = Li + (c * k + a) * B, *Li_cb = Li + (c * k + b) * B;
        for (Py_ssize_t l = 0; l < B; l++) s[l] += Li_ca[l] * Li_cb[l];
    }
    for (Py_ssize_t l = 0; l < B; l++) out[l] = s[l];
}

/* Each lane's observed-part Mahalanobis distance, d' K d - g' C g (the
   minimum over x_m of the quadratic form is at x_m = c); rounding can leave
   a tiny negative where the distance is 0. */
static ALWAYS_INLINE double
observed_distance(const Group *s, Py_ssize_t k, Py_ssize_t l)
{
    double q = s->quad[l];
    for (Py_ssize_t a = 0; a < k; a++) q -= s->g[a * LANES + l] * s->z[a * LANES + l];
    return q > 0.0 ? q : 0.0;
}

/* Returns the sum over rows of log det K_mm, NaN if some K_mm is not positive
   definite (numerically), or -INFINITY if the workspace cannot be allocated. */
static ALWAYS_INLINE double
complete_rows_k(const Rows *t, const Py_ssize_t k, const int wide)
{
    const Py_ssize_t B = LANES, p = t->p, n = t->n;
    /* Sums go to this call's own zeroed accumulators first, added to the
       caller's at the end: accumulators of different threads that happen to
       share a cache line would otherwise be written alternately by both. */
    double *work = calloc(2 * p * p + p + GROUP_DOUBLES(k, p), sizeof(double));
    if (work == NULL) return -INFINITY;
    double *cov_sum = work, *cross = cov_sum + p * p, *row_sum = cross + p * p;
    Group s;
    group_layout(&s, row_sum + p, k, p, t->d2 != NULL);
    double logdet = 0.0;

    for (Py_ssize_t r0 = 0; r0 < n; r0 += B) {
        const Py_ssize_t active = n - r0 < B ? n - r0 : B;
        if (group_moments(&s, t->data, t->missing, t->stride, r0, active, k, p, t->mean,
                          t->K, wide) < 0) {
            free(work);
            return NAN;
        }
        for (Py_ssize_t l = 0; l < active; l++) logdet += s.log_det[l];
        if (t->d2 != NULL)
            for (Py_ssize_t l = 0; l < active; l++) t->d2[r0 + l] = observed_distance(&s, k, l);
        for (Py_ssize_t l = 0; l < active; l++) {
            double *x = t->data + (r0 + l) * p;
            for (Py_ssize_t b = 0; b < k; b++) {
                const int64_t col = s.m[b * B + l];
                x[col] = t->mean[col] - s.z[b * B + l];
            }
            for (Py_ssize_t j = 0; j < p; j++) row_sum[j] += x[j];
        }
        if (t->cross != NULL) add_cross_products(cross, t->data + r0 * p, p, active);

        /* C = Li' Li, lower triangle, added at (m_a, m_b) with m_a >= m_b
           (missing columns are increasing), so onto the sum's lower triangle. */
        if (t->cov_sum == NULL) continue;
        for (Py_ssize_t a = 0; a < k; a++) {
            for (Py_ssize_t b = 0; b <= a; b++) {
                double c_ab[LANES];
                covariance_entry(c_ab, s.Li, k, a, b);
                for (Py_ssize_t l = 0; l < active; l++)
                    cov_sum[s.m[a * B + l] * p + s.m[b * B + l]] += c_ab[l];
            }
        }
    }
    for (Py_ssize_t i = 0; i < p * p; i++) {
        if (t->cov_sum != NULL) t->cov_sum[i] += cov_sum[i];
        if (t->cross != NULL) t->cross[i] += cross[i];
    }
    if (t->row_sum != NULL)
        for (Py_ssize_t j = 0; j < p; j++) t->row_sum[j] += row_sum[j];
    free(work);
    return logdet;
}

/* The E-step of a mixture of K normals (emimpute/models/_mixture.py) for rows
   that all have k missing cells, in one pass over them: for each group of
   rows, every component's conditional moments (group_moments) and the log
   density of the observed cells,

     log pi_c N(x_o; mu_c,o, S_c,oo)
       = log pi_c - (p - k) log(2 pi) / 2 - (log det S_c + log det K_c,mm
         + d_o' inv(S_c,oo) d_o) / 2

   (det S = det S_oo / det K_mm: the Schur complement S_mm.o is inv(K_mm));
   then the responsibilities tau_c, and into component c's sums tau_c,
   tau_c xhat_c and tau_c (xhat_c xhat_c' + C_c), xhat_c the row completed by
   component c's conditional mean.  Returns the sum of the rows' log
   likelihoods, NaN if some K_c,mm is not positive definite, -INFINITY if
   the workspace cannot be allocated. */
typedef struct {
    double *data;            /* (n, p) rows; with write_means, completed */
    Py_ssize_t n, p, k, n_components;
    const int64_t *missing;  /* as in Rows */
    Py_ssize_t stride;
    const double *means;     /* (K, p) */
    const double *K;         /* (K, p, p) precision matrices */
    const double *log_norm;  /* (K,) log pi_c - log det S_c / 2 */
    double *resp_sum;        /* (K,) accumulated */
    double *row_sum;         /* (K, p) accumulated */
    double *cross;           /* (K, p, p) lower triangles accumulated */
    double *loglik;          /* (n,) each row's log-likelihood, or NULL */
    double *resp;            /* (n, K) responsibilities, or NULL */
    int write_means;         /* fill the missing cells with sum_c tau_c c_c */
} MixtureRows;

#define LOG_2PI 1.8378770664093454835606594728112353

static ALWAYS_INLINE double
mixture_rows_k(const MixtureRows *t, const Py_ssize_t k, const int wide)
{
    const Py_ssize_t B = LANES, p = t->p, n = t->n, nc = t->n_components;
    const Py_ssize_t n_entries = k * (k + 1) / 2;
    /* Private accumulators (see complete_rows_k); per component, the group's
       completed rows [lane][j], the entries of C [entry][lane] and the log
       densities, then responsibilities [lane]; then the Group. */
    double *work = calloc(nc * (p * p + p + 1) + nc * (B * p + n_entries * B + B) +
                              GROUP_DOUBLES(k, p),
                          sizeof(double));
    if (work == NULL) return -INFINITY;
    double *cross = work, *row_sum = cross + nc * p * p, *resp_sum = row_sum + nc * p;
    double *completed = resp_sum + nc, *entries = completed + nc * B * p;
    double *weight = entries + nc * n_entries * B;
    Group s;
    group_layout(&s, weight + nc * B, k, p, 1);
    const double log_norm_o = -0.5 * (double)(p - k) * LOG_2PI;
    double total = 0.0;

    for (Py_ssize_t r0 = 0; r0 < n; r0 += B) {
        const Py_ssize_t active = n - r0 < B ? n - r0 : B;
        for (Py_ssize_t c = 0; c < nc; c++) {
            const double *mean = t->means + c * p;
            if (group_moments(&s, t->data, t->missing, t->stride, r0, active, k, p, mean,
                              t->K + c * p * p, wide) < 0) {
                free(work);
                return NAN;
            }
            double *x_c = completed + c * B * p, *w_c = weight + c * B;
            for (Py_ssize_t l = 0; l < active; l++) {
                w_c[l] = t->log_norm[c] + log_norm_o -
                         0.5 * (s.log_det[l] + observed_distance(&s, k, l));
                double *x = x_c + l * p;
                memcpy(x, t->data + (r0 + l) * p, p * sizeof(double));
                for (Py_ssize_t b = 0; b < k; b++) {
                    const int64_t col = s.m[b * B + l];
                    x[col] = mean[col] - s.z[b * B + l];
                }
            }
            double *e_c = entries + c * n_entries * B;
            for (Py_ssize_t a = 0, e = 0; a < k; a++)
                for (Py_ssize_t b = 0; b <= a; b++, e++) covariance_entry(e_c + e * B, s.Li, k, a, b);
        }

        /* Responsibilities, by the log-sum-exp of the log densities. */
        for (Py_ssize_t l = 0; l < active; l++) {
            double top = weight[l];
            for (Py_ssize_t c = 1; c < nc; c++)
                if (weight[c * B + l] > top) top = weight[c * B + l];
            double sum = 0.0;
            for (Py_ssize_t c = 0; c < nc; c++) {
                weight[c * B + l] = exp(weight[c * B + l] - top);
                sum += weight[c * B + l];
            }
            const double row_loglik = top + log(sum);
            total += row_loglik;
            if (t->loglik != NULL) t->loglik[r0 + l] = row_loglik;
            for (Py_ssize_t c = 0; c < nc; c++) {
                weight[c * B + l] /= sum;
                if (t->resp != NULL) t->resp[(r0 + l) * nc + c] = weight[c * B + l];
            }
        }

        for (Py_ssize_t c = 0; c < nc; c++) {
            const double *w_c = weight + c * B, *e_c = entries + c * n_entries * B;
            double *cross_c = cross + c * p * p;
            add_weighted_products(cross_c, row_sum + c * p, completed + c * B * p, w_c, p,
                                  active);
            for (Py_ssize_t l = 0; l < active; l++) resp_sum[c] += w_c[l];
            for (Py_ssize_t a = 0, e = 0; a < k; a++)
                for (Py_ssize_t b = 0; b <= a; b++, e++)
                    for (Py_ssize_t l = 0; l < active; l++)
                        cross_c[s.m[a * B + l] * p + s.m[b * B + l]] += w_c[l] * e_c[e * B + l];
        }

        if (t->write_means) {
            for (Py_ssize_t l = 0; l < active; l++) {
                double *x = t->data + (r0 + l) * p;
                for (Py_ssize_t b = 0; b < k; b++) {
                    const int64_t col = s.m[b * B + l];
                    double v = 0.0;
                    for (Py_ssize_t c = 0; c < nc; c++)
                        v += weight[c * B + l] * completed[(c * B + l) * p + col];
                    x[col] = v;
                }
            }
        }
    }
    for (Py_ssize_t i = 0; i < nc * p * p; i++) t->cross[i] += cross[i];
    for (Py_ssize_t i = 0; i < nc * p; i++) t->row_sum[i] += row_sum[i];
    for (Py_ssize_t c = 0; c < nc; c++) t->resp_sum[c] += resp_sum[c];
    free(work);
    return total;
}

/* Two compiled copies of every entry point: a generic one (any x86-64, or
   whatever the target is) and, on x86-64 with GCC >= 11 or clang >= 12, one
   for x86-64-v3 (AVX2 and FMA), about 15% faster.  The copy in use is chosen
   once, at import, from what the CPU supports (__builtin_cpu_supports checks
   the OS's support for the AVX registers too), and may be forced from Python
   with set_kernel_path(): tests run both, since FMA rounds a*b + c once where
   the generic code rounds twice, so the two agree to rounding, not bit for
   bit.  Explicit copies rather than target_clones, whose ifunc resolver
   cannot be overridden. */
#if defined(__x86_64__) && \
    ((defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 11) || \
     (defined(__clang__) && __clang_major__ >= 12))
#define HAVE_AVX2_PATH 1
#define AVX2_TARGET __attribute__((target("arch=x86-64-v3")))
#else
#define HAVE_AVX2_PATH 0
#endif

typedef double (*kernel_fn)(const Rows *);
typedef double (*mixture_fn)(const MixtureRows *);

/* KERNELS(NAME, ATTR, W, IN, IMPL) defines NAME_1 ... NAME_12 (k a
   compile-time constant, so the tiny loops unroll), NAME_any (any k) and the
   table NAME[k], whose entry 0 is NAME_any: each returns IMPL(t, k, W) for
   its argument t of type const IN *; W says whether the target has 256-bit
   vectors (which quadratic form code to use). */
#define KERNEL_K(NAME, ATTR, W, IN, IMPL, KK) \
    ATTR static double NAME##_##KK(const IN *t) { return IMPL(t, KK, W); }
#define KERNELS(NAME, ATTR, W, IN, IMPL) \
    KERNEL_K(NAME, ATTR, W, IN, IMPL, 1) KERNEL_K(NAME, ATTR, W, IN, IMPL, 2) \
    KERNEL_K(NAME, ATTR, W, IN, IMPL, 3) KERNEL_K(NAME, ATTR, W, IN, IMPL, 4) \
    KERNEL_K(NAME, ATTR, W, IN, IMPL, 5) KERNEL_K(NAME, ATTR, W, IN, IMPL, 6) \
    KERNEL_K(NAME, ATTR, W, IN, IMPL, 7) KERNEL_K(NAME, ATTR, W, IN, IMPL, 8) \
    KERNEL_K(NAME, ATTR, W, IN, IMPL, 9) KERNEL_K(NAME, ATTR, W, IN, IMPL, 10) \
    KERNEL_K(NAME, ATTR, W, IN, IMPL, 11) KERNEL_K(NAME, ATTR, W, IN, IMPL, 12) \
    ATTR static double NAME##_any(const IN *t) { return IMPL(t, t->k, W); } \
    static double (*const NAME[])(const IN *) = { \
        NAME##_any, NAME##_1, NAME##_2, NAME##_3, NAME##_4, NAME##_5, NAME##_6, \
        NAME##_7, NAME##_8, NAME##_9, NAME##_10, NAME##_11, NAME##_12};
#define MAX_SPECIALISED_K 12

KERNELS(generic_kernels, , 0, Rows, complete_rows_k)
KERNELS(generic_mixture, , 0, MixtureRows, mixture_rows_k)
#if HAVE_AVX2_PATH
KERNELS(avx2_kernels, AVX2_TARGET, 1, Rows, complete_rows_k)
KERNELS(avx2_mixture, AVX2_TARGET, 1, MixtureRows, mixture_rows_k)
#endif

typedef int (*weighted_fn)(const double *, const double *, Py_ssize_t, Py_ssize_t,
                           double *, double *);
#define WEIGHTED(NAME, ATTR) \
    ATTR static int NAME(const double *data, const double *w, Py_ssize_t n, \
                         Py_ssize_t p, double *row_sum, double *cross) \
    { return weighted_sums_impl(data, w, n, p, row_sum, cross); }
WEIGHTED(generic_weighted, )
#if HAVE_AVX2_PATH
WEIGHTED(avx2_weighted, AVX2_TARGET)
#endif

typedef struct {
    const char *name;
    const kernel_fn *kernels;
    weighted_fn weighted;
    const mixture_fn *mixture;
} KernelPath;

/* In order of preference. */
static const KernelPath kernel_paths[] = {
#if HAVE_AVX2_PATH
    {"avx2", avx2_kernels, avx2_weighted, avx2_mixture},
#endif
    {"generic", generic_kernels, generic_weighted, generic_mixture},
};
#define N_KERNEL_PATHS ((Py_ssize_t)(sizeof(kernel_paths) / sizeof(kernel_paths[0])))

/* The path in use; written at import and by set_kernel_path (under the GIL),
   read by each call before it releases the GIL. */
static const KernelPath *current_path = NULL;

static int
cpu_can_run(const KernelPath *path)
{
#if HAVE_AVX2_PATH
    if (path->kernels == avx2_kernels) {
        __builtin_cpu_init();
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 12
        return __builtin_cpu_supports("x86-64-v3") > 0;
#else
        /* The features of x86-64-v3 that the compiler may use here. */
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
               __builtin_cpu_supports("bmi") && __builtin_cpu_supports("bmi2") &&
               __builtin_cpu_supports("f16c") && __builtin_cpu_supports("movbe");
#endif
    }
#endif
    (void)path;
    return 1;
}

/* Python binding ----------------------------------------------------------- */

/* Take a C-contiguous buffer of `itemsize`-byte items whose format is one of
   `formats`, with at least `length` items; on failure set an error and leave
   view->obj NULL (so that releasing it is a no-op). */
static int
get_buffer(PyObject *obj, Py_buffer *view, const char *name, int writable,
           const char *formats, Py_ssize_t itemsize, Py_ssize_t length)
{
    int flags = PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | (writable ? PyBUF_WRITABLE : 0);
    if (PyObject_GetBuffer(obj, view, flags) < 0) {
        view->obj = NULL;
        return -1;
    }
    const char *format = view->format == NULL ? "B" : view->format;
    if (format[0] == '@' || format[0] == '=' || format[0] == '<') format++;
    if (view->itemsize != itemsize || format[0] == '\0' || format[1] != '\0' ||
        strchr(formats, format[0]) == NULL || view->len < length * itemsize) {
        PyErr_Format(PyExc_ValueError,
                     "%s: expected a C-contiguous array of at least %zd items of "
                     "type '%s' and %zd bytes", name, length, formats, itemsize);
        PyBuffer_Release(view);
        view->obj = NULL;
        return -1;
    }
    return 0;
}

/* Check `missing` (a (k, n_total) array) against n rows from first_row and p
   columns; on failure set an error and return -1. */
static int
missing_shape(const Py_buffer *missing, Py_ssize_t first_row, Py_ssize_t n, Py_ssize_t p,
              Py_ssize_t *k, Py_ssize_t *stride)
{
    if (missing->ndim != 2) {
        PyErr_SetString(PyExc_ValueError, "missing: expected a 2-d array");
        return -1;
    }
    *k = missing->shape[0];
    *stride = missing->shape[1];
    if (*k < 1 || *k >= p || first_row < 0 || first_row + n > *stride) {
        PyErr_SetString(PyExc_ValueError, "missing: shape does not match data");
        return -1;
    }
    return 0;
}

/* Column indices address memory: every one is checked (cheap next to the
   work, and run without the GIL so that threads check in parallel).  Returns
   0, or the first bad index encoded as itself when negative, plus 1 when
   not. */
static int64_t
first_bad_column(const int64_t *missing, Py_ssize_t k, Py_ssize_t stride, Py_ssize_t n,
                 Py_ssize_t p)
{
    for (Py_ssize_t a = 0; a < k; a++)
        for (Py_ssize_t r = 0; r < n; r++) {
            const int64_t col = missing[a * stride + r];
            if (col < 0 || col >= p) return col < 0 ? col : col + 1;
        }
    return 0;
}

/* The Python result of a kernel's return value (see first_bad_column). */
static PyObject *
kernel_result(double value, int64_t bad_column)
{
    if (bad_column != 0) {
        PyErr_Format(PyExc_ValueError, "missing: column index %lld out of range",
                     (long long)(bad_column < 0 ? bad_column : bad_column - 1));
        return NULL;
    }
    if (value == -INFINITY) return PyErr_NoMemory();
    return PyFloat_FromDouble(value);
}

PyDoc_STRVAR(complete_rows_doc,
"complete_rows(data, missing, first_row, mean, precision, cov_sum, row_sum,\n"
"              cross=None, d2=None)\n"
"\n"
"Fill the missing cells of ``data`` (n, p), rows that all have k missing\n"
"cells, with their conditional means under N(mean, inv(precision)).\n"
"``missing`` is the (k, n_total) int64 array of missing columns, increasing\n"
"down each column; row r of ``data`` is column ``first_row + r``.\n"
"``cov_sum`` (p*p float64 or None) accumulates the lower triangle of the sum\n"
"of conditional covariances, ``row_sum`` (p float64 or None) the sum of the\n"
"completed rows, ``cross`` (p*p float64 or None) the lower triangle of the\n"
"sum of their outer products; ``d2`` (n float64 or None) receives each row's\n"
"observed-part Mahalanobis distance d_o' inv(S_oo) d_o.\n"
"Returns the sum of log det K_mm, NaN if some K_mm is not\n"
"numerically positive definite.  All arrays C-contiguous.");

static PyObject *
py_complete_rows(PyObject *self, PyObject *args)
{
    PyObject *data_obj, *missing_obj, *mean_obj, *K_obj, *cov_obj, *sum_obj;
    PyObject *cross_obj = Py_None, *d2_obj = Py_None;
    Py_buffer data = {0}, missing = {0}, mean = {0}, K = {0}, cov = {0}, sums = {0};
    Py_buffer cross = {0}, d2 = {0};
    Py_ssize_t first_row;
    if (!PyArg_ParseTuple(args, "OOnOOOO|OO", &data_obj, &missing_obj, &first_row,
                          &mean_obj, &K_obj, &cov_obj, &sum_obj, &cross_obj, &d2_obj))
        return NULL;
    PyObject *result = NULL;
    Rows t = {0};
    if (get_buffer(mean_obj, &mean, "mean", 0, "d", sizeof(double), 1) < 0) goto done;
    const Py_ssize_t p = mean.len / (Py_ssize_t)sizeof(double);
    t.p = p;
    if (get_buffer(data_obj, &data, "data", 1, "d", sizeof(double), 0) < 0 ||
        get_buffer(missing_obj, &missing, "missing", 0, "qlL", sizeof(int64_t), 0) < 0 ||
        get_buffer(K_obj, &K, "precision", 0, "d", sizeof(double), p * p) < 0)
        goto done;
    if (cov_obj != Py_None) {
        if (get_buffer(cov_obj, &cov, "cov_sum", 1, "d", sizeof(double), p * p) < 0)
            goto done;
        t.cov_sum = cov.buf;
    }
    if (sum_obj != Py_None) {
        if (get_buffer(sum_obj, &sums, "row_sum", 1, "d", sizeof(double), p) < 0)
            goto done;
        t.row_sum = sums.buf;
    }
    if (cross_obj != Py_None) {
        if (get_buffer(cross_obj, &cross, "cross", 1, "d", sizeof(double), p * p) < 0)
            goto done;
        t.cross = cross.buf;
    }
    if (data.len % (p * (Py_ssize_t)sizeof(double)) != 0) {
        PyErr_SetString(PyExc_ValueError, "data: length is not a multiple of p");
        goto done;
    }
    t.n = data.len / (p * (Py_ssize_t)sizeof(double));
    if (d2_obj != Py_None) {
        if (get_buffer(d2_obj, &d2, "d2", 1, "d", sizeof(double), t.n) < 0) goto done;
        t.d2 = d2.buf;
    }
    if (missing_shape(&missing, first_row, t.n, p, &t.k, &t.stride) < 0) goto done;
    t.data = data.buf;
    t.missing = (const int64_t *)missing.buf + first_row;
    t.mean = mean.buf;
    t.K = K.buf;
    double logdet = 0.0;
    int64_t bad_column = 0;
    const kernel_fn *const kernels = current_path->kernels;
    if (t.n > 0) {
        Py_BEGIN_ALLOW_THREADS
        bad_column = first_bad_column(t.missing, t.k, t.stride, t.n, p);
        if (bad_column == 0)
            logdet = kernels[t.k <= MAX_SPECIALISED_K ? t.k : 0](&t);
        Py_END_ALLOW_THREADS
    }
    result = kernel_result(logdet, bad_column);
done:
    if (data.obj != NULL) PyBuffer_Release(&data);
    if (missing.obj != NULL) PyBuffer_Release(&missing);
    if (mean.obj != NULL) PyBuffer_Release(&mean);
    if (K.obj != NULL) PyBuffer_Release(&K);
    if (cov.obj != NULL) PyBuffer_Release(&cov);
    if (sums.obj != NULL) PyBuffer_Release(&sums);
    if (cross.obj != NULL) PyBuffer_Release(&cross);
    if (d2.obj != NULL) PyBuffer_Release(&d2);
    return result;
}

PyDoc_STRVAR(mixture_rows_doc,
"mixture_rows(data, missing, first_row, means, precisions, log_norm,\n"
"             resp_sum, row_sum, cross, loglik=None, resp=None, write_means=False)\n"
"\n"
"The E-step of a mixture of K normals over rows that all have k missing\n"
"cells (laid out as for complete_rows).  ``means`` (K, p), ``precisions``\n"
"(K, p, p) and ``log_norm`` (K: log pi_c - log det S_c / 2) give the\n"
"components.  Accumulates, per component c, the sum of responsibilities\n"
"into ``resp_sum`` (K), of responsibility-weighted completed rows into\n"
"``row_sum`` (K*p), and the lower triangle of the weighted cross-products\n"
"plus conditional covariances into ``cross`` (K*p*p), the rows completed by\n"
"component c's conditional means.  ``loglik`` (n or None) receives each\n"
"row's log-likelihood, ``resp`` (n*K or None) its responsibilities; with\n"
"``write_means`` the missing cells of ``data`` are set to the mixture's\n"
"conditional means.  Returns the sum of the rows' log-likelihoods, NaN if\n"
"some K_c,mm is not numerically positive definite.  All arrays float64\n"
"(missing int64) and C-contiguous.");

static PyObject *
py_mixture_rows(PyObject *self, PyObject *args)
{
    PyObject *data_obj, *missing_obj, *means_obj, *K_obj, *norm_obj, *resp_sum_obj;
    PyObject *sum_obj, *cross_obj, *loglik_obj = Py_None, *resp_obj = Py_None;
    int write_means = 0;
    Py_buffer data = {0}, missing = {0}, means = {0}, K = {0}, norm = {0};
    Py_buffer resp_sum = {0}, sums = {0}, cross = {0}, loglik = {0}, resp = {0};
    Py_ssize_t first_row;
    if (!PyArg_ParseTuple(args, "OOnOOOOOO|OOp", &data_obj, &missing_obj, &first_row,
                          &means_obj, &K_obj, &norm_obj, &resp_sum_obj, &sum_obj,
                          &cross_obj, &loglik_obj, &resp_obj, &write_means))
        return NULL;
    PyObject *result = NULL;
    MixtureRows t = {0};
    if (get_buffer(norm_obj, &norm, "log_norm", 0, "d", sizeof(double), 1) < 0 ||
        get_buffer(means_obj, &means, "means", 0, "d", sizeof(double), 1) < 0)
        goto done;
    const Py_ssize_t nc = norm.len / (Py_ssize_t)sizeof(double);
    const Py_ssize_t p = means.len / (Py_ssize_t)sizeof(double) / nc;
    if (means.len != nc * p * (Py_ssize_t)sizeof(double)) {
        PyErr_SetString(PyExc_ValueError, "means: expected K * p items");
        goto done;
    }
    if (get_buffer(data_obj, &data, "data", 1, "d", sizeof(double), 0) < 0 ||
        get_buffer(missing_obj, &missing, "missing", 0, "qlL", sizeof(int64_t), 0) < 0 ||
        get_buffer(K_obj, &K, "precisions", 0, "d", sizeof(double), nc * p * p) < 0 ||
        get_buffer(resp_sum_obj, &resp_sum, "resp_sum", 1, "d", sizeof(double), nc) < 0 ||
        get_buffer(sum_obj, &sums, "row_sum", 1, "d", sizeof(double), nc * p) < 0 ||
        get_buffer(cross_obj, &cross, "cross", 1, "d", sizeof(double), nc * p * p) < 0)
        goto done;
    if (data.len % (p * (Py_ssize_t)sizeof(double)) != 0) {
        PyErr_SetString(PyExc_ValueError, "data: length is not a multiple of p");
        goto done;
    }
    t.n = data.len / (p * (Py_ssize_t)sizeof(double));
    if (loglik_obj != Py_None) {
        if (get_buffer(loglik_obj, &loglik, "loglik", 1, "d", sizeof(double), t.n) < 0)
            goto done;
        t.loglik = loglik.buf;
    }
    if (resp_obj != Py_None) {
        if (get_buffer(resp_obj, &resp, "resp", 1, "d", sizeof(double), t.n * nc) < 0)
            goto done;
        t.resp = resp.buf;
    }
    if (missing_shape(&missing, first_row, t.n, p, &t.k, &t.stride) < 0) goto done;
    t.p = p;
    t.n_components = nc;
    t.data = data.buf;
    t.missing = (const int64_t *)missing.buf + first_row;
    t.means = means.buf;
    t.K = K.buf;
    t.log_norm = norm.buf;
    t.resp_sum = resp_sum.buf;
    t.row_sum = sums.buf;
    t.cross = cross.buf;
    t.write_means = write_means;
    double total = 0.0;
    int64_t bad_column = 0;
    const mixture_fn *const kernels = current_path->mixture;
    if (t.n > 0) {
        Py_BEGIN_ALLOW_THREADS
        bad_column = first_bad_column(t.missing, t.k, t.stride, t.n, p);
        if (bad_column == 0)
            total = kernels[t.k <= MAX_SPECIALISED_K ? t.k : 0](&t);
        Py_END_ALLOW_THREADS
    }
    result = kernel_result(total, bad_column);
done:
    if (data.obj != NULL) PyBuffer_Release(&data);
    if (missing.obj != NULL) PyBuffer_Release(&missing);
    if (means.obj != NULL) PyBuffer_Release(&means);
    if (K.obj != NULL) PyBuffer_Release(&K);
    if (norm.obj != NULL) PyBuffer_Release(&norm);
    if (resp_sum.obj != NULL) PyBuffer_Release(&resp_sum);
    if (sums.obj != NULL) PyBuffer_Release(&sums);
    if (cross.obj != NULL) PyBuffer_Release(&cross);
    if (loglik.obj != NULL) PyBuffer_Release(&loglik);
    if (resp.obj != NULL) PyBuffer_Release(&resp);
    return result;
}

PyDoc_STRVAR(weighted_sums_doc,
"weighted_sums(data, weights, row_sum, cross)\n"
"\n"
"Add sum_r w_r x_r to ``row_sum`` (p float64) and the lower triangle of\n"
"sum_r w_r x_r x_r' to ``cross`` (p*p float64), x_r the rows of ``data``\n"
"(n, p) and w_r the n float64 ``weights``.  All arrays C-contiguous.");

static PyObject *
py_weighted_sums(PyObject *self, PyObject *args)
{
    PyObject *data_obj, *w_obj, *sum_obj, *cross_obj;
    Py_buffer data = {0}, w = {0}, sums = {0}, cross = {0};
    if (!PyArg_ParseTuple(args, "OOOO", &data_obj, &w_obj, &sum_obj, &cross_obj))
        return NULL;
    PyObject *result = NULL;
    if (get_buffer(sum_obj, &sums, "row_sum", 1, "d", sizeof(double), 1) < 0) goto done;
    const Py_ssize_t p = sums.len / (Py_ssize_t)sizeof(double);
    if (get_buffer(cross_obj, &cross, "cross", 1, "d", sizeof(double), p * p) < 0 ||
        get_buffer(data_obj, &data, "data", 0, "d", sizeof(double), 0) < 0)
        goto done;
    if (data.len % (p * (Py_ssize_t)sizeof(double)) != 0) {
        PyErr_SetString(PyExc_ValueError, "data: length is not a multiple of p");
        goto done;
    }
    const Py_ssize_t n = data.len / (p * (Py_ssize_t)sizeof(double));
    if (get_buffer(w_obj, &w, "weights", 0, "d", sizeof(double), n) < 0) goto done;
    const weighted_fn weighted = current_path->weighted;
    int status = 0;
    Py_BEGIN_ALLOW_THREADS
    status = weighted(data.buf, w.buf, n, p, sums.buf, cross.buf);
    Py_END_ALLOW_THREADS
    if (status < 0)
        PyErr_NoMemory();
    else
        result = Py_NewRef(Py_None);
done:
    if (data.obj != NULL) PyBuffer_Release(&data);
    if (w.obj != NULL) PyBuffer_Release(&w);
    if (sums.obj != NULL) PyBuffer_Release(&sums);
    if (cross.obj != NULL) PyBuffer_Release(&cross);
    return result;
}

PyDoc_STRVAR(kernel_paths_doc,
"kernel_paths()\n"
"\n"
"The compiled copies of the kernel, in order of preference, as a tuple of\n"
"(name, runnable) pairs: name 'avx2' (x86-64-v3: AVX2 and FMA) or 'generic';\n"
"runnable is whether this CPU can run it.");

static PyObject *
py_kernel_paths(PyObject *self, PyObject *unused)
{
    PyObject *result = PyTuple_New(N_KERNEL_PATHS);
    if (result == NULL) return NULL;
    for (Py_ssize_t i = 0; i < N_KERNEL_PATHS; i++) {
        PyObject *item = Py_BuildValue("(sO)", kernel_paths[i].name,
                                       cpu_can_run(&kernel_paths[i]) ? Py_True : Py_False);
        if (item == NULL) {
            Py_DECREF(result);
            return NULL;
        }
        PyTuple_SET_ITEM(result, i, item);
    }
    return result;
}

PyDoc_STRVAR(get_kernel_path_doc,
"get_kernel_path()\n"
"\n"
"The name of the compiled copy that complete_rows runs.");

static PyObject *
py_get_kernel_path(PyObject *self, PyObject *unused)
{
    return PyUnicode_FromString(current_path->name);
}

PyDoc_STRVAR(set_kernel_path_doc,
"set_kernel_path(name)\n"
"\n"
"Make complete_rows run the compiled copy ``name`` (see kernel_paths()).\n"
"ValueError if this build has no such copy, RuntimeError if the CPU cannot\n"
"run it.");

static PyObject *
py_set_kernel_path(PyObject *self, PyObject *arg)
{
    const char *name = PyUnicode_AsUTF8(arg);
    if (name == NULL) return NULL;
    for (Py_ssize_t i = 0; i < N_KERNEL_PATHS; i++) {
        if (strcmp(name, kernel_paths[i].name) != 0) continue;
        if (!cpu_can_run(&kernel_paths[i])) {
            PyErr_Format(PyExc_RuntimeError,
                         "the '%s' kernel needs a CPU with AVX2 and FMA "
                         "(x86-64-v3); this one lacks them", name);
            return NULL;
        }
        current_path = &kernel_paths[i];
        Py_RETURN_NONE;
    }
    PyErr_Format(PyExc_ValueError, "no compiled kernel path '%s' in this build", name);
    return NULL;
}

static PyMethodDef methods[] = {
    {"complete_rows", py_complete_rows, METH_VARARGS, complete_rows_doc},
    {"mixture_rows", py_mixture_rows, METH_VARARGS, mixture_rows_doc},
    {"weighted_sums", py_weighted_sums, METH_VARARGS, weighted_sums_doc},
    {"kernel_paths", py_kernel_paths, METH_NOARGS, kernel_paths_doc},
    {"get_kernel_path", py_get_kernel_path, METH_NOARGS, get_kernel_path_doc},
    {"set_kernel_path", py_set_kernel_path, METH_O, set_kernel_path_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_fast_estep",
    "Compiled E-step of the multivariate normal (see emimpute/gaussian/_fast_estep.c).", -1,
    methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC
PyInit__fast_estep(void)
{
    /* The preferred copy this CPU can run; the last, generic, always can. */
    current_path = &kernel_paths[N_KERNEL_PATHS - 1];
    for (Py_ssize_t i = 0; i < N_KERNEL_PATHS; i++)
        if (cpu_can_run(&kernel_paths[i])) {
            current_path = &kernel_paths[i];
            break;
        }
    return PyModule_Create(&module);
}

/* Native float32 conv / dense kernels: see conv_kernels.h for the contract.
 *
 * Four ways to run a conv, chosen by shape (cg_conv_run):
 * - Winograd F(2x2, 3x3) (3x3, stride 1, dilation 1, group 1, where measured faster: see
 *   WINO_MIN): 16 GEMMs per block of 2x2 output tiles on the same micro-kernels, the input
 *   transform fused into packing B, the output transform into the epilogue (see below).
 * - packed GEMM (default): C[Mg x OH*OW] = A[Mg x K] * B[K x OH*OW] per (image, group), with
 *   A = weights packed once into MR-row panels ([panel][k][MR], all of K, so any KC block is a
 *   pointer offset) and B = im2col of the input packed per (KC x NC) block straight into
 *   NR-column panels ([panel][k][NR]); a 1x1 stride-1 conv packs by plain copies. Loop order
 *   jc (NC) > pc (KC) > ic (MC) > jr (NR) > ir (MR), GotoBLAS style.
 * - direct (AVX2, spatial kernels with moderate K, output rows >= 12): B rows are read in place
 *   from a zero-padded, column-phase-split copy of the input, 16 outputs of a row per tile.
 * - depthwise (one input channel per group): on AVX2, 8 output channels at once with the
 *   channel in the SIMD lanes (input rows transposed on the fly, outputs transposed back);
 *   else, and for the channels past the last block of 8, a direct kernel per plane.
 * The micro-kernel keeps an MR x NR = 6 x 16 tile of C in 12 ymm registers (6 x 8 and 6 x 4
 * variants for narrow tails, 1 x 16 for single rows). On the development machine every
 * variant measured (6x16, 4x24, 3x32, 2x48, memory-operand FMAs, lane-broadcast A) peaked at
 * the same ~37 GFLOPS in L1, against ~88 for a load-free FMA loop: loads are the limit.
 *
 * Partial sums across KC blocks are stored in C itself; the bias and residual are added at the
 * first K block (so an in-place residual is read before its element is overwritten) and the
 * activation at the last. Every output element sees the same sequence of operations whatever
 * the thread count, because the panel grid and the K blocking depend only on the shapes.
 * Threads: a small persistent pthread pool (no OpenMP, so the build needs no flags).
 */
#include "conv_kernels.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#include <pthread.h>
#include <unistd.h>

#if defined(__x86_64__) || defined(__i386__)
#define CG_X86 1
#include <immintrin.h>
#define TGT __attribute__((target("avx2,fma")))
#endif

static inline int cdiv(int a, int b) { return (a + b - 1) / b; }
static inline int imin(int a, int b) { return a < b ? a : b; }

#define MR 6
#define NR 16
/* cache blocking; variables so benchmarks can tune them (cg_set_blocking) */
#define NC_CAP 4096
static int KC_MAX = 256, NC_MAX = 256, MC_MAX = 144, DIRECT_KMAX = 1152;

void cg_set_blocking(int kc, int mc, int nc, int dk) {
    if (dk >= 0) DIRECT_KMAX = dk;
    if (kc > 0) KC_MAX = kc;
    if (mc > 0) MC_MAX = mc;
    if (nc > 0) NC_MAX = (imin(nc, NC_CAP) + NR - 1) / NR * NR;
}
#define DENSE_MC 96

typedef struct {
    const float *bias_row; /* bias per C row (conv), already offset to the tile's row 0 */
    const float *bias_col; /* bias per C column (dense), offset to the tile's column 0 */
    const float *res;      /* residual tile or NULL */
    ptrdiff_t ldr;
    int first, last, act;
    float alpha, beta;
    int bx; /* B's panel is one column, expanded (pack_b_conv, kern_avx2_1col) */
} ep_t;

typedef void (*kern_fn)(int kc, const float *A, const float *B, float *C, ptrdiff_t ldc,
                        int mr, int nr, const ep_t *ep);


static inline int imax(int a, int b) { return a > b ? a : b; }
static inline float *align64(void *p) {
    return (float *)(((uintptr_t)p + 63) & ~(uintptr_t)63);
}

/* ---------------------------------------------------------------- epilogue, portable */

static inline float act_scalar(float v, int act, float a, float b) {
    float t;
    switch (act) {
    case CG_ACT_RELU: return v > 0.f ? v : 0.f;
    case CG_ACT_LEAKY: return v > 0.f ? v : a * v;
    case CG_ACT_CLIP: v = v < a ? a : v; return v > b ? b : v;
    case CG_ACT_SIGMOID: return 1.f / (1.f + expf(-v));
    case CG_ACT_HARDSIGMOID:
        t = a * v + b; t = t < 0.f ? 0.f : t; return t > 1.f ? 1.f : t;
    case CG_ACT_HARDSWISH:
        t = v * (1.f / 6.f) + 0.5f; t = t < 0.f ? 0.f : t; t = t > 1.f ? 1.f : t; return v * t;
    default: return v;
    }
}

/* acc (mr x nr, row stride lda) -> C with the epilogue; the tail path of every kernel. */
static void ep_scalar(const float *acc, int lda, float *C, ptrdiff_t ldc, int mr, int nr,
                      const ep_t *ep) {
    for (int i = 0; i < mr; i++) {
        float *c = C + i * ldc;
        for (int j = 0; j < nr; j++) {
            float v = acc[i * lda + j];
            if (ep->first) {
                if (ep->bias_row) v += ep->bias_row[i];
                if (ep->bias_col) v += ep->bias_col[j];
                if (ep->res) v += ep->res[i * ep->ldr + j];
            } else {
                v += c[j];
            }
            if (ep->last) v = act_scalar(v, ep->act, ep->alpha, ep->beta);
            c[j] = v;
        }
    }
}

static void kern_generic(int kc, const float *A, const float *B, float *C, ptrdiff_t ldc,
                         int mr, int nr, const ep_t *ep) {
    float acc[MR * NR];
    memset(acc, 0, sizeof acc);
    for (int k = 0; k < kc; k++) {
        for (int i = 0; i < MR; i++) {
            float a = A[k * MR + i];
            for (int j = 0; j < NR; j++) acc[i * NR + j] += a * B[k * NR + j];
        }
    }
    ep_scalar(acc, NR, C, ldc, mr, nr, ep);
}

/* ---------------------------------------------------------------- AVX2 / FMA */
#ifdef CG_X86

TGT static inline __m256 act_vec(__m256 v, const ep_t *ep) {
    __m256 z = _mm256_setzero_ps(), one, t;
    switch (ep->act) {
    case CG_ACT_RELU: return _mm256_max_ps(v, z);
    case CG_ACT_LEAKY:
        return _mm256_add_ps(_mm256_max_ps(v, z),
                             _mm256_mul_ps(_mm256_set1_ps(ep->alpha), _mm256_min_ps(v, z)));
    case CG_ACT_CLIP:
        return _mm256_min_ps(_mm256_max_ps(v, _mm256_set1_ps(ep->alpha)),
                             _mm256_set1_ps(ep->beta));
    case CG_ACT_HARDSIGMOID:
        one = _mm256_set1_ps(1.f);
        t = _mm256_add_ps(_mm256_mul_ps(_mm256_set1_ps(ep->alpha), v), _mm256_set1_ps(ep->beta));
        return _mm256_min_ps(_mm256_max_ps(t, z), one);
    case CG_ACT_HARDSWISH:
        one = _mm256_set1_ps(1.f);
        t = _mm256_add_ps(_mm256_mul_ps(_mm256_set1_ps(1.f / 6.f), v), _mm256_set1_ps(0.5f));
        return _mm256_mul_ps(v, _mm256_min_ps(_mm256_max_ps(t, z), one));
    default: return v;
    }
}

/* One C row of a full tile: r0 (and r1 when two) are the 8-wide accumulators of row i. */
#define EP_ROW2(i, r0, r1)                                                                   \
    do {                                                                                     \
        float *c_ = C + (i) * ldc;                                                           \
        if (ep->first) {                                                                     \
            if (ep->bias_row) {                                                              \
                __m256 bb_ = _mm256_broadcast_ss(ep->bias_row + (i));                        \
                r0 = _mm256_add_ps(r0, bb_); r1 = _mm256_add_ps(r1, bb_);                    \
            }                                                                                \
            if (ep->bias_col) {                                                              \
                r0 = _mm256_add_ps(r0, _mm256_loadu_ps(ep->bias_col));                       \
                r1 = _mm256_add_ps(r1, _mm256_loadu_ps(ep->bias_col + 8));                   \
            }                                                                                \
            if (ep->res) {                                                                   \
                const float *q_ = ep->res + (i) * ep->ldr;                                   \
                r0 = _mm256_add_ps(r0, _mm256_loadu_ps(q_));                                 \
                r1 = _mm256_add_ps(r1, _mm256_loadu_ps(q_ + 8));                             \
            }                                                                                \
        } else {                                                                             \
            r0 = _mm256_add_ps(r0, _mm256_loadu_ps(c_));                                     \
            r1 = _mm256_add_ps(r1, _mm256_loadu_ps(c_ + 8));                                 \
        }                                                                                    \
        if (ep->last && ep->act) { r0 = act_vec(r0, ep); r1 = act_vec(r1, ep); }             \
        _mm256_storeu_ps(c_, r0); _mm256_storeu_ps(c_ + 8, r1);                              \
    } while (0)

#define EP_ROW1(i, r0)                                                                       \
    do {                                                                                     \
        float *c_ = C + (i) * ldc;                                                           \
        if (ep->first) {                                                                     \
            if (ep->bias_row) r0 = _mm256_add_ps(r0, _mm256_broadcast_ss(ep->bias_row + (i))); \
            if (ep->bias_col) r0 = _mm256_add_ps(r0, _mm256_loadu_ps(ep->bias_col));         \
            if (ep->res) r0 = _mm256_add_ps(r0, _mm256_loadu_ps(ep->res + (i) * ep->ldr));   \
        } else {                                                                             \
            r0 = _mm256_add_ps(r0, _mm256_loadu_ps(c_));                                     \
        }                                                                                    \
        if (ep->last && ep->act) r0 = act_vec(r0, ep);                                       \
        _mm256_storeu_ps(c_, r0);                                                            \
    } while (0)

/* The epilogue of a tile of `rows` x 16 accumulators (c[2i], c[2i + 1]: row i): vector rows
 * when the tile is full width, else through ep_scalar. Always inlined with a constant `rows`,
 * so c stays in registers. */
TGT static inline __attribute__((always_inline)) void ep_tile16(__m256 *c, int rows, float *C,
                                                                ptrdiff_t ldc, int mr, int nr,
                                                                const ep_t *ep) {
    if (nr == NR && ep->act != CG_ACT_SIGMOID) {
#pragma GCC unroll 6
        for (int i = 0; i < rows; i++)
            if (i < mr) EP_ROW2(i, c[2 * i], c[2 * i + 1]);
    } else {
        float tmp[MR * NR] __attribute__((aligned(32)));
#pragma GCC unroll 6
        for (int i = 0; i < rows; i++) {
            _mm256_store_ps(tmp + i * NR, c[2 * i]);
            _mm256_store_ps(tmp + i * NR + 8, c[2 * i + 1]);
        }
        ep_scalar(tmp, NR, C, ldc, mr, nr, ep);
    }
}

#define FMA2(r, a_, c0, c1)                                                                  \
    a_ = _mm256_broadcast_ss(A + (r));                                                       \
    c0 = _mm256_fmadd_ps(a_, b0, c0);                                                        \
    c1 = _mm256_fmadd_ps(a_, b1, c1);

TGT static void kern_avx2_6x8(int kc, const float *A, const float *B, float *C, ptrdiff_t ldc,
                              int mr, int nr, const ep_t *ep) {
    __m256 c0 = _mm256_setzero_ps(), c1 = c0, c2 = c0, c3 = c0, c4 = c0, c5 = c0, a, b0;
    for (int k = 0; k < kc; k++) {
        b0 = _mm256_load_ps(B);
        a = _mm256_broadcast_ss(A + 0); c0 = _mm256_fmadd_ps(a, b0, c0);
        a = _mm256_broadcast_ss(A + 1); c1 = _mm256_fmadd_ps(a, b0, c1);
        a = _mm256_broadcast_ss(A + 2); c2 = _mm256_fmadd_ps(a, b0, c2);
        a = _mm256_broadcast_ss(A + 3); c3 = _mm256_fmadd_ps(a, b0, c3);
        a = _mm256_broadcast_ss(A + 4); c4 = _mm256_fmadd_ps(a, b0, c4);
        a = _mm256_broadcast_ss(A + 5); c5 = _mm256_fmadd_ps(a, b0, c5);
        A += MR; B += NR;
    }
    if (mr == MR && nr == 8 && ep->act != CG_ACT_SIGMOID) {
        EP_ROW1(0, c0); EP_ROW1(1, c1); EP_ROW1(2, c2);
        EP_ROW1(3, c3); EP_ROW1(4, c4); EP_ROW1(5, c5);
    } else {
        float tmp[MR * 8] __attribute__((aligned(32)));
        _mm256_store_ps(tmp + 0, c0); _mm256_store_ps(tmp + 8, c1);
        _mm256_store_ps(tmp + 16, c2); _mm256_store_ps(tmp + 24, c3);
        _mm256_store_ps(tmp + 32, c4); _mm256_store_ps(tmp + 40, c5);
        ep_scalar(tmp, 8, C, ldc, mr, nr, ep);
    }
}

/* Tails of at most 4 columns: 128-bit vectors do the same FMAs for half the load traffic. */
TGT static void kern_avx2_6x4(int kc, const float *A, const float *B, float *C, ptrdiff_t ldc,
                              int mr, int nr, const ep_t *ep) {
    __m128 c0 = _mm_setzero_ps(), c1 = c0, c2 = c0, c3 = c0, c4 = c0, c5 = c0, b;
    for (int k = 0; k < kc; k++) {
        b = _mm_load_ps(B);
        c0 = _mm_fmadd_ps(_mm_broadcast_ss(A + 0), b, c0);
        c1 = _mm_fmadd_ps(_mm_broadcast_ss(A + 1), b, c1);
        c2 = _mm_fmadd_ps(_mm_broadcast_ss(A + 2), b, c2);
        c3 = _mm_fmadd_ps(_mm_broadcast_ss(A + 3), b, c3);
        c4 = _mm_fmadd_ps(_mm_broadcast_ss(A + 4), b, c4);
        c5 = _mm_fmadd_ps(_mm_broadcast_ss(A + 5), b, c5);
        A += MR; B += NR;
    }
    float tmp[MR * 4] __attribute__((aligned(16)));
    _mm_store_ps(tmp + 0, c0); _mm_store_ps(tmp + 4, c1); _mm_store_ps(tmp + 8, c2);
    _mm_store_ps(tmp + 12, c3); _mm_store_ps(tmp + 16, c4); _mm_store_ps(tmp + 20, c5);
    ep_scalar(tmp, 4, C, ldc, mr, nr, ep);
}

/* One row (a dense layer at batch 1, the last row of a panel): two chains per column vector
 * (even and odd k) hide the FMA latency. */
TGT static void kern_avx2_1x16(int kc, const float *A, const float *B, float *C, ptrdiff_t ldc,
                               int mr, int nr, const ep_t *ep) {
    __m256 c0 = _mm256_setzero_ps(), c1 = c0, d0 = c0, d1 = c0, a;
    int k = 0;
    for (; k + 2 <= kc; k += 2) {
        a = _mm256_broadcast_ss(A);
        c0 = _mm256_fmadd_ps(a, _mm256_load_ps(B), c0);
        c1 = _mm256_fmadd_ps(a, _mm256_load_ps(B + 8), c1);
        a = _mm256_broadcast_ss(A + MR);
        d0 = _mm256_fmadd_ps(a, _mm256_load_ps(B + NR), d0);
        d1 = _mm256_fmadd_ps(a, _mm256_load_ps(B + NR + 8), d1);
        A += 2 * MR; B += 2 * NR;
    }
    if (k < kc) {
        a = _mm256_broadcast_ss(A);
        c0 = _mm256_fmadd_ps(a, _mm256_load_ps(B), c0);
        c1 = _mm256_fmadd_ps(a, _mm256_load_ps(B + 8), c1);
    }
    __m256 c[2] = {_mm256_add_ps(c0, d0), _mm256_add_ps(c1, d1)};
    ep_tile16(c, 1, C, ldc, mr, nr, ep);
}

/* The last panel of an M that is not a multiple of MR, when it holds at most 4 rows: the FMAs of
 * the zero rows are skipped, and whole rows still take the vector epilogue. */
TGT static void kern_avx2_4x16(int kc, const float *A, const float *B, float *C, ptrdiff_t ldc,
                               int mr, int nr, const ep_t *ep) {
    __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00,
           c30 = c00, c31 = c00, a, b0, b1;
    for (int k = 0; k < kc; k++) {
        b0 = _mm256_load_ps(B); b1 = _mm256_load_ps(B + 8);
        FMA2(0, a, c00, c01) FMA2(1, a, c10, c11) FMA2(2, a, c20, c21) FMA2(3, a, c30, c31)
        A += MR; B += NR;
    }
    __m256 c[8] = {c00, c01, c10, c11, c20, c21, c30, c31};
    ep_tile16(c, 4, C, ldc, mr, nr, ep);
}

/* A panel's last column alone (7x7 outputs: 49 = 3 x 16 + 1), B expanded by pack_b_conv to
 * b[k] six times at 6k, matching A's [k][6]: three vector FMAs per four k, where the 6x4
 * kernel spends seven loads per k on a column. */
TGT static void kern_avx2_1col(int kc, const float *A, const float *B, float *C, ptrdiff_t ldc,
                               int mr, const ep_t *ep) {
    __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0;
    int k = 0;
    for (; k + 4 <= kc; k += 4, A += 24, B += 24) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(A), _mm256_loadu_ps(B), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(A + 8), _mm256_loadu_ps(B + 8), s1);
        s2 = _mm256_fmadd_ps(_mm256_loadu_ps(A + 16), _mm256_loadu_ps(B + 16), s2);
    }
    float t[24], acc[MR];
    _mm256_storeu_ps(t, s0); _mm256_storeu_ps(t + 8, s1); _mm256_storeu_ps(t + 16, s2);
    for (int r = 0; r < MR; r++) acc[r] = (t[r] + t[r + 12]) + (t[r + 6] + t[r + 18]);
    for (; k < kc; k++, A += MR, B += MR)
        for (int r = 0; r < MR; r++) acc[r] += A[r] * B[0];
    ep_scalar(acc, 1, C, ldc, mr, 1, ep);
}

TGT static void kern_avx2(int kc, const float *A, const float *B, float *C, ptrdiff_t ldc,
                          int mr, int nr, const ep_t *ep) {
    if (nr == 1 && ep->bx) { kern_avx2_1col(kc, A, B, C, ldc, mr, ep); return; }
    if (nr <= 4) { kern_avx2_6x4(kc, A, B, C, ldc, mr, nr, ep); return; }
    if (nr <= 8) { kern_avx2_6x8(kc, A, B, C, ldc, mr, nr, ep); return; }
    if (mr == 1) { kern_avx2_1x16(kc, A, B, C, ldc, mr, nr, ep); return; }
    if (mr <= 4) { kern_avx2_4x16(kc, A, B, C, ldc, mr, nr, ep); return; }
    __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00,
           c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00, a, b0, b1;
    int k = 0;
    for (; k + 2 <= kc; k += 2) {
        _mm_prefetch((const char *)(A + 16 * MR), _MM_HINT_T0); /* A streams from L2 */
        b0 = _mm256_load_ps(B); b1 = _mm256_load_ps(B + 8);
        FMA2(0, a, c00, c01) FMA2(1, a, c10, c11) FMA2(2, a, c20, c21)
        FMA2(3, a, c30, c31) FMA2(4, a, c40, c41) FMA2(5, a, c50, c51)
        A += MR; B += NR;
        b0 = _mm256_load_ps(B); b1 = _mm256_load_ps(B + 8);
        FMA2(0, a, c00, c01) FMA2(1, a, c10, c11) FMA2(2, a, c20, c21)
        FMA2(3, a, c30, c31) FMA2(4, a, c40, c41) FMA2(5, a, c50, c51)
        A += MR; B += NR;
    }
    for (; k < kc; k++) {
        b0 = _mm256_load_ps(B); b1 = _mm256_load_ps(B + 8);
        FMA2(0, a, c00, c01) FMA2(1, a, c10, c11) FMA2(2, a, c20, c21)
        FMA2(3, a, c30, c31) FMA2(4, a, c40, c41) FMA2(5, a, c50, c51)
        A += MR; B += NR;
    }
    __m256 c[12] = {c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51};
    ep_tile16(c, MR, C, ldc, mr, nr, ep);
}

/* Direct-mode kernels: row k of B is read in place at b + koff[k] (16 or 8 consecutive output
 * positions of the padded input), so B needs no packing. */
TGT static void kern_direct4x16(int K, const float *A, const float *b, const ptrdiff_t *koff,
                                float *C, ptrdiff_t ldc, int mr, int nr, const ep_t *ep) {
    /* a last panel of at most 4 rows, as kern_avx2_4x16 */
    __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00,
           c30 = c00, c31 = c00, a, b0, b1;
    for (int k = 0; k < K; k++) {
        const float *q = b + koff[k];
        b0 = _mm256_loadu_ps(q); b1 = _mm256_loadu_ps(q + 8);
        FMA2(0, a, c00, c01) FMA2(1, a, c10, c11) FMA2(2, a, c20, c21) FMA2(3, a, c30, c31)
        A += MR;
    }
    __m256 c[8] = {c00, c01, c10, c11, c20, c21, c30, c31};
    ep_tile16(c, 4, C, ldc, mr, nr, ep);
}

TGT static void kern_direct16(int K, const float *A, const float *b, const ptrdiff_t *koff,
                              float *C, ptrdiff_t ldc, int mr, int nr, const ep_t *ep) {
    if (mr <= 4) { kern_direct4x16(K, A, b, koff, C, ldc, mr, nr, ep); return; }
    __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00,
           c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00, a, b0, b1;
    for (int k = 0; k < K; k++) {
        const float *q = b + koff[k];
        b0 = _mm256_loadu_ps(q); b1 = _mm256_loadu_ps(q + 8);
        FMA2(0, a, c00, c01) FMA2(1, a, c10, c11) FMA2(2, a, c20, c21)
        FMA2(3, a, c30, c31) FMA2(4, a, c40, c41) FMA2(5, a, c50, c51)
        A += MR;
    }
    __m256 c[12] = {c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51};
    ep_tile16(c, MR, C, ldc, mr, nr, ep);
}

TGT static void kern_direct8(int K, const float *A, const float *b, const ptrdiff_t *koff,
                             float *C, ptrdiff_t ldc, int mr, int nr, const ep_t *ep) {
    __m256 c0 = _mm256_setzero_ps(), c1 = c0, c2 = c0, c3 = c0, c4 = c0, c5 = c0, a, b0;
    for (int k = 0; k < K; k++) {
        b0 = _mm256_loadu_ps(b + koff[k]);
        a = _mm256_broadcast_ss(A + 0); c0 = _mm256_fmadd_ps(a, b0, c0);
        a = _mm256_broadcast_ss(A + 1); c1 = _mm256_fmadd_ps(a, b0, c1);
        a = _mm256_broadcast_ss(A + 2); c2 = _mm256_fmadd_ps(a, b0, c2);
        a = _mm256_broadcast_ss(A + 3); c3 = _mm256_fmadd_ps(a, b0, c3);
        a = _mm256_broadcast_ss(A + 4); c4 = _mm256_fmadd_ps(a, b0, c4);
        a = _mm256_broadcast_ss(A + 5); c5 = _mm256_fmadd_ps(a, b0, c5);
        A += MR;
    }
    if (mr == MR && nr == 8 && ep->act != CG_ACT_SIGMOID) {
        EP_ROW1(0, c0); EP_ROW1(1, c1); EP_ROW1(2, c2);
        EP_ROW1(3, c3); EP_ROW1(4, c4); EP_ROW1(5, c5);
    } else {
        float tmp[MR * 8] __attribute__((aligned(32)));
        _mm256_store_ps(tmp + 0, c0); _mm256_store_ps(tmp + 8, c1);
        _mm256_store_ps(tmp + 16, c2); _mm256_store_ps(tmp + 24, c3);
        _mm256_store_ps(tmp + 32, c4); _mm256_store_ps(tmp + 40, c5);
        ep_scalar(tmp, 8, C, ldc, mr, nr, ep);
    }
}

TGT static double fma_loop_avx2(long iters) {
    __m256 m = _mm256_set1_ps(0.999999f), d = _mm256_set1_ps(1e-6f);
    __m256 a0 = _mm256_set1_ps(1.f), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0,
           a7 = a0, a8 = a0, a9 = a0, a10 = a0, a11 = a0;
    for (long i = 0; i < iters; i++) {
        a0 = _mm256_fmadd_ps(a0, m, d); a1 = _mm256_fmadd_ps(a1, m, d);
        a2 = _mm256_fmadd_ps(a2, m, d); a3 = _mm256_fmadd_ps(a3, m, d);
        a4 = _mm256_fmadd_ps(a4, m, d); a5 = _mm256_fmadd_ps(a5, m, d);
        a6 = _mm256_fmadd_ps(a6, m, d); a7 = _mm256_fmadd_ps(a7, m, d);
        a8 = _mm256_fmadd_ps(a8, m, d); a9 = _mm256_fmadd_ps(a9, m, d);
        a10 = _mm256_fmadd_ps(a10, m, d); a11 = _mm256_fmadd_ps(a11, m, d);
    }
    __m256 s = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)),
                             _mm256_add_ps(_mm256_add_ps(a4, a5), _mm256_add_ps(a6, a7)));
    s = _mm256_add_ps(s, _mm256_add_ps(_mm256_add_ps(a8, a9), _mm256_add_ps(a10, a11)));
    float out[8];
    _mm256_storeu_ps(out, s);
    return out[0];
}
#endif /* CG_X86 */

/* ---------------------------------------------------------------- ISA dispatch, threads */

static int g_isa = -1;

static int cpu_has_avx2(void) {
#ifdef CG_X86
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
    return 0;
#endif
}

int cg_isa(void) {
    if (g_isa < 0) g_isa = cpu_has_avx2();
    return g_isa;
}

int cg_set_isa(int want) {
    g_isa = want && cpu_has_avx2();
    return g_isa;
}

static kern_fn pick_kernel(void) {
#ifdef CG_X86
    if (cg_isa()) return kern_avx2;
#endif
    return kern_generic;
}

int cg_num_procs(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : (int)n;
}

/* A small persistent thread pool (no OpenMP: the build adds no flags). cg_parallel runs
 * fn(ctx, tid, nth) for tid = 0..nth-1, tid 0 on the calling thread, and returns when all are
 * done. Workers are created on first need and then sleep on a condition variable; calls from
 * several Python threads are serialised by call_mu. */
typedef void (*task_fn)(void *ctx, int tid, int nth);

#define POOL_MAX 256
static pthread_mutex_t pool_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t call_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t pool_work = PTHREAD_COND_INITIALIZER;
static pthread_cond_t pool_done = PTHREAD_COND_INITIALIZER;
static int pool_workers = 0, pool_nth = 0, pool_pending = 0;
static long pool_gen = 0;
static task_fn pool_fn;
static void *pool_ctx;
static long pool_gen0[POOL_MAX]; /* the generation when worker tid was created */

/* Waiting: spin a little before sleeping, as OpenMP runtimes do. Back-to-back calls (an
 * executor running conv after conv) then find the workers awake; a worker that has to be woken
 * from a condition variable can lose a millisecond on a busy machine. */
#define POOL_SPIN 20000
static inline void cpu_relax(void) {
#ifdef CG_X86
    _mm_pause();
#endif
}

static void *pool_main(void *arg) {
    int tid = (int)(intptr_t)arg;
    pthread_mutex_lock(&pool_mu);
    long seen = pool_gen0[tid];
    for (;;) {
        pthread_mutex_unlock(&pool_mu);
        for (int i = 0; i < POOL_SPIN && __atomic_load_n(&pool_gen, __ATOMIC_ACQUIRE) == seen; i++)
            cpu_relax();
        pthread_mutex_lock(&pool_mu);
        while (pool_gen == seen) pthread_cond_wait(&pool_work, &pool_mu);
        seen = pool_gen;
        if (tid >= pool_nth) continue;
        task_fn fn = pool_fn;
        void *ctx = pool_ctx;
        int nth = pool_nth;
        pthread_mutex_unlock(&pool_mu);
        fn(ctx, tid, nth);
        pthread_mutex_lock(&pool_mu);
        if (__atomic_sub_fetch(&pool_pending, 1, __ATOMIC_ACQ_REL) == 0)
            pthread_cond_signal(&pool_done);
    }
    return NULL;
}

/* A forked child has none of the workers (only the forking thread survives a fork): start the
 * pool afresh there instead of waiting on threads that do not exist. */
static void pool_atfork_child(void) {
    pthread_mutex_init(&pool_mu, NULL);
    pthread_mutex_init(&call_mu, NULL);
    pthread_cond_init(&pool_work, NULL);
    pthread_cond_init(&pool_done, NULL);
    pool_workers = pool_nth = pool_pending = 0;
}

static void cg_parallel(int nth, task_fn fn, void *ctx) {
    static int atfork_done = 0;
    if (nth > POOL_MAX) nth = POOL_MAX;
    if (nth <= 1) { fn(ctx, 0, 1); return; }
    pthread_mutex_lock(&call_mu);
    if (!atfork_done) {
        pthread_atfork(NULL, NULL, pool_atfork_child);
        atfork_done = 1;
    }
    pthread_mutex_lock(&pool_mu);
    while (pool_workers < nth - 1) {
        pthread_t th;
        pthread_attr_t at;
        pthread_attr_init(&at);
        pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
        pool_gen0[pool_workers + 1] = pool_gen;
        int ok = pthread_create(&th, &at, pool_main, (void *)(intptr_t)(pool_workers + 1)) == 0;
        pthread_attr_destroy(&at);
        if (!ok) break;
        pool_workers++;
    }
    if (nth > pool_workers + 1) nth = pool_workers + 1; /* could not start more: fewer tids */
    if (nth > 1) {
        pool_fn = fn;
        pool_ctx = ctx;
        pool_nth = nth;
        __atomic_store_n(&pool_pending, nth - 1, __ATOMIC_RELEASE);
        __atomic_add_fetch(&pool_gen, 1, __ATOMIC_ACQ_REL);
        pthread_cond_broadcast(&pool_work);
    }
    pthread_mutex_unlock(&pool_mu);
    fn(ctx, 0, nth);
    for (int i = 0; i < POOL_SPIN && __atomic_load_n(&pool_pending, __ATOMIC_ACQUIRE) > 0; i++)
        cpu_relax();
    pthread_mutex_lock(&pool_mu);
    while (pool_pending > 0) pthread_cond_wait(&pool_done, &pool_mu);
    pthread_mutex_unlock(&pool_mu);
    pthread_mutex_unlock(&call_mu);
}

static double fma_loop_generic(long iters) {
    float a[16];
    for (int j = 0; j < 16; j++) a[j] = 1.f;
    for (long i = 0; i < iters; i++)
        for (int j = 0; j < 16; j++) a[j] = a[j] * 0.999999f + 1e-6f;
    float s = 0.f;
    for (int j = 0; j < 16; j++) s += a[j];
    return s;
}

typedef struct { long iters; double sink; pthread_mutex_t mu; } fma_ctx;

static void fma_task(void *c, int tid, int nth) {
    fma_ctx *f = (fma_ctx *)c;
    double s;
    (void)tid; (void)nth;
#ifdef CG_X86
    s = cg_isa() ? fma_loop_avx2(f->iters) : fma_loop_generic(f->iters);
#else
    s = fma_loop_generic(f->iters);
#endif
    pthread_mutex_lock(&f->mu);
    f->sink += s;
    pthread_mutex_unlock(&f->mu);
}

double cg_fma_loop(long iters, int threads) {
    double flops_per_iter;
#ifdef CG_X86
    flops_per_iter = cg_isa() ? 12 * 8 * 2 : 16 * 2;
#else
    flops_per_iter = 16 * 2;
#endif
    if (threads < 1) threads = 1;
    fma_ctx f = {iters, 0.0, PTHREAD_MUTEX_INITIALIZER};
    cg_parallel(threads, fma_task, &f);
    volatile double sink = f.sink;
    (void)sink;
    return flops_per_iter * (double)iters * threads;
}

/* ---------------------------------------------------------------- conv: setup and packing */

static int conv_oh(const cg_conv_t *p, int H) {
    return (H + p->pt + p->pb - p->dh * (p->KH - 1) - 1) / p->sh + 1;
}
static int conv_ow(const cg_conv_t *p, int W) {
    return (W + p->pl + p->pr - p->dw * (p->KW - 1) - 1) / p->sw + 1;
}

static int kc_block(int K) { return cdiv(K, cdiv(K, KC_MAX)); }

/* ---- Winograd F(2x2, 3x3) settings and weight transform (the run-time part is further down).
 * Y = A^T [ (G g G^T) . (B^T d B) ] A per 2x2 output tile, d the 4x4 input tile at stride 2:
 * 16 GEMMs U_xi[M x C] * V_xi[C x tiles], one per position xi of the 4x4 transformed tile. */
static int g_wino_mode = -1;                 /* -1 auto, 0 off, 1 forced */
/* auto, measured on an AMD EPYC (AVX2): faster for C, M >= 16 with C + M >= 64 and at least
 * 9 tiles (e.g. 1.15-1.6x on ResNet-50's 3x3s; C=M=16, C=32 M=8, or 4 tiles: slower) */
#define WINO_MIN 16
#define WINO_MINSUM 64
#define WINO_MIN_TILES 9                     /* auto: at least this many 2x2 output tiles */
static int WINO_VFLOATS = 65536;             /* target size of a thread's V block (floats) */
#define WINO_PAD 16 /* floats between V's (and Mb's) 16 matrices: see wgeom_t */
static int WINO_MB = 48;                     /* rows of M per GEMM / output-transform block */

int cg_set_winograd(int mode) {
    if (mode >= -1 && mode <= 1) g_wino_mode = mode;
    return g_wino_mode;
}

void cg_set_wino_blocking(int vfloats, int mb) {
    if (vfloats > 0) WINO_VFLOATS = vfloats;
    if (mb > 0) WINO_MB = cdiv(mb, MR) * MR;
}

static size_t wino_vs(const cg_conv_t *p, int wnt) { return (size_t)p->C * wnt + WINO_PAD; }
static size_t wino_xs(int wmb, int wnt) { return (size_t)wmb * wnt + WINO_PAD; }

static size_t wino_ufloats(const cg_conv_t *p) { /* floats per xi */
    return (size_t)cdiv(p->M, MR) * p->C * MR;
}

/* Offset of U's panel pn, K block starting at pc (a multiple of wkc), in xi's matrix: blocks
 * of wkc channels, each holding every panel, so a block's panels are read front to back. */
static inline size_t wino_uoff(const cg_conv_t *p, int pn, int pc) {
    return (size_t)pc * p->mpanels * MR + (size_t)pn * imin(p->wkc, p->C - pc) * MR;
}

/* U_xi = (G g G^T)[xi], G = [[1,0,0],[1/2,1/2,1/2],[1/2,-1/2,1/2],[0,0,1]], in double, packed
 * as [xi][K block][panel][c in block][MR] (rows past M zero). */
static void wino_pack(const cg_conv_t *p, const float *w, float *dst) {
    const int C = p->C, M = p->M;
    const size_t us = wino_ufloats(p);
    memset(dst, 0, sizeof(float) * 16 * us);
    for (int m = 0; m < M; m++)
        for (int ch = 0; ch < C; ch++) {
            const float *g = w + ((size_t)m * C + ch) * 9;
            double t[4][3], u[4][4];
            for (int j = 0; j < 3; j++) {
                double g0 = g[j], g1 = g[3 + j], g2 = g[6 + j];
                t[0][j] = g0;
                t[1][j] = 0.5 * (g0 + g1 + g2);
                t[2][j] = 0.5 * (g0 - g1 + g2);
                t[3][j] = g2;
            }
            for (int i = 0; i < 4; i++) {
                double g0 = t[i][0], g1 = t[i][1], g2 = t[i][2];
                u[i][0] = g0;
                u[i][1] = 0.5 * (g0 + g1 + g2);
                u[i][2] = 0.5 * (g0 - g1 + g2);
                u[i][3] = g2;
            }
            for (int xi = 0; xi < 16; xi++)
                dst[xi * us + wino_uoff(p, m / MR, ch / p->wkc * p->wkc) +
                    (size_t)(ch % p->wkc) * MR + m % MR] = (float)u[xi / 4][xi % 4];
        }
}

void cg_conv_init(cg_conv_t *p) {
    p->Cg = p->C / p->group;
    p->Mg = p->M / p->group;
    p->K = p->Cg * p->KH * p->KW;
    p->mpanels = cdiv(p->Mg, MR);
    p->depthwise = p->Cg == 1;
    p->wino = 0;
    if (p->KH == 3 && p->KW == 3 && p->sh == 1 && p->sw == 1 && p->dh == 1 && p->dw == 1 &&
        p->group == 1 && !p->depthwise && g_wino_mode != 0)
        p->wino = g_wino_mode == 1 ? 2
                  : (p->C >= WINO_MIN && p->M >= WINO_MIN && p->C + p->M >= WINO_MINSUM);
    p->wkc = kc_block(p->C);
}

/* floats of the ordinary packed weights; the Winograd ones (if any) follow them */
static size_t conv_base_floats(const cg_conv_t *p) {
    if (p->wino == 2) return 0;  /* every input takes the Winograd path: no ordinary packing */
    if (p->depthwise) /* per channel, then blocked by 8 channels (dw_block_avx2) */
        return (size_t)p->M * p->KH * p->KW + (size_t)(p->M / 8) * 8 * p->KH * p->KW;
    return (size_t)p->group * p->mpanels * p->K * MR;
}

size_t cg_conv_packed_floats(const cg_conv_t *p) {
    size_t n = conv_base_floats(p);
    /* Winograd U: 16 matrices of MR-row panels over C, each 16-float aligned */
    if (p->wino) n = (n + 15) / 16 * 16 + 16 * wino_ufloats(p);
    return n;
}

void cg_conv_pack(const cg_conv_t *p, const float *w, float *dst) {
    if (p->wino) wino_pack(p, w, dst + (conv_base_floats(p) + 15) / 16 * 16);
    if (p->wino == 2) return;
    if (p->depthwise) {
        const int T = p->KH * p->KW;
        memcpy(dst, w, sizeof(float) * (size_t)p->M * T);
        float *b = dst + (size_t)p->M * T; /* [M / 8][T][8] */
        for (int m = 0; m < p->M / 8 * 8; m++)
            for (int t = 0; t < T; t++) b[((size_t)(m / 8) * T + t) * 8 + m % 8] = w[(size_t)m * T + t];
        return;
    }
    const int K = p->K;
    for (int g = 0; g < p->group; g++)
        for (int pn = 0; pn < p->mpanels; pn++) {
            float *d = dst + ((size_t)g * p->mpanels + pn) * K * MR;
            for (int k = 0; k < K; k++)
                for (int r = 0; r < MR; r++) {
                    int m = pn * MR + r;
                    d[(size_t)k * MR + r] = m < p->Mg ? w[((size_t)g * p->Mg + m) * K + k] : 0.f;
                }
        }
}

int cg_conv_uses_winograd(const cg_conv_t *p, int H, int W) {
    if (!p->wino) return 0;
    if (p->wino == 2) return 1;
    return cg_isa() && cdiv(conv_oh(p, H), 2) * cdiv(conv_ow(p, W), 2) >= WINO_MIN_TILES;
}

/* Floats of scratch one thread needs. */
static int conv_pointwise(const cg_conv_t *p) {
    return p->KH == 1 && p->KW == 1 && p->sh == 1 && p->sw == 1 && p->pt == 0 && p->pl == 0 &&
           p->pb == 0 && p->pr == 0;
}

/* Direct mode (AVX2 only): no im2col packing. B rows are read in place from a zero-padded,
 * column-phase-split copy of the input, in tiles of 16 output positions of one output row.
 * Chosen (by measurement) for spatial kernels with moderate K and output rows long enough for
 * 16-wide tiles. */
static int conv_direct(const cg_conv_t *p, int W) {
    /* measured: 1x1 convs run faster packed (packing them is a plain copy), and so do
     * strided convs with a long K */
    if (!cg_isa() || p->depthwise || p->K > DIRECT_KMAX || p->KH * p->KW == 1) return 0;
    return conv_ow(p, W) >= 12 && (p->K <= 640 || p->sw == 1);
}

/* Depthwise by blocks of 8 channels (dw_block_avx2; the channels past the last block go one
 * by one). */
static int dw_blocked(const cg_conv_t *p) { return cg_isa() && p->M >= 8 && p->KH <= 64; }
static size_t dwb_floats(const cg_conv_t *p, int W, int OW);

typedef struct {
    int Hp, PWs;
    int wino, wnt, wmb;  /* Winograd: in use, tiles per block (NR multiple), rows per block */
    size_t cs;          /* floats per input channel in the padded planes */
    size_t shared;      /* floats: koff table, then the padded planes */
    size_t per;         /* floats per thread */
} layout_t;

/* How the packed mode shares one (image, group) GEMM between threads when there are fewer
 * GEMMs than threads can share whole: by column chunks (each packs its own part of B) when there
 * are plenty of columns, else by row chunks over a B packed once into shared scratch. */
static int packed_whole(const cg_conv_t *p, int N, int T) {
    int items = N * p->group;
    return T == 1 || items % T == 0 || items >= 4 * T;
}
static int packed_rows(const cg_conv_t *p, int N, int OHW, int T) {
    return !packed_whole(p, N, T) && !(cdiv(OHW, NR) >= 8 * T || p->mpanels < 2 * T);
}

static void conv_layout(const cg_conv_t *p, int N, int H, int W, int T, layout_t *L) {
    int OH = conv_oh(p, H), OW = conv_ow(p, W);
    memset(L, 0, sizeof *L);
    if (cg_conv_uses_winograd(p, H, W)) {
        /* shared: the zero-padded input planes (2 TH + 2) x (2 TW + 2) of every channel;
         * per thread: V [16][C][wnt] and the GEMM results [16][wmb][wnt] */
        const int TH = cdiv(OH, 2), TW = cdiv(OW, 2), P = TH * TW;
        L->wino = 1;
        L->Hp = 2 * TH + 2;
        L->PWs = 2 * TW + 2;
        L->cs = (size_t)L->Hp * L->PWs;
        L->shared = (size_t)p->C * L->cs + 32;
        L->wnt = imax(NR, imin(8 * NR, WINO_VFLOATS / (16 * p->C) / NR * NR));
        L->wnt = imin(L->wnt, cdiv(P, NR) * NR);
        L->wmb = imin(WINO_MB, p->mpanels * MR);
        L->per = 16 * wino_vs(p, L->wnt) + 16 * wino_xs(L->wmb, L->wnt) + 64;
    } else if (p->depthwise) {
        int Hp = H + p->pt + p->pb;
        int PW = cdiv(OW, 8) * 8 + ((p->KW - 1) * p->dw) / p->sw + 8;
        L->shared = 2 * (size_t)p->KH * p->KW; /* the tap offsets (ptrdiff_t) */
        L->per = (size_t)p->sw * Hp * PW + PW + 32; /* planes, one accumulator row */
        if (dw_blocked(p)) L->per = imax(L->per, dwb_floats(p, W, OW));
    } else if (conv_direct(p, W)) {
        L->Hp = H + p->pt + p->pb;
        L->PWs = imax(cdiv(W + p->pl + p->pr, p->sw), OW + ((p->KW - 1) * p->dw) / p->sw) + NR;
        L->cs = (size_t)p->sw * L->Hp * L->PWs;
        /* the koff table (ptrdiff_t), then the planes of every channel plus zero slack */
        L->shared = (2 * (size_t)p->K + 15) / 16 * 16 + (size_t)p->C * L->cs + 2 * NR;
        L->per = 16;
    } else {
        int ncb = imin(NC_MAX, cdiv(OH * OW, NR) * NR);
        L->per = (size_t)kc_block(p->K) * ncb + ncb + 64;
        if (packed_rows(p, N, OH * OW, T)) /* all of B, packed once */
            L->shared = (size_t)p->K * cdiv(OH * OW, NR) * NR;
    }
    L->shared = (L->shared + 15) / 16 * 16;
    L->per = (L->per + 15) / 16 * 16;
}

static int resolve_threads(int threads) { return threads > 0 ? threads : cg_num_procs(); }

size_t cg_conv_scratch_bytes(const cg_conv_t *p, int N, int H, int W, int threads) {
    layout_t L;
    const int T = resolve_threads(threads);
    conv_layout(p, N, H, W, T, &L);
    return (L.shared + L.per * T) * sizeof(float) + 64;
}

typedef struct {
    const cg_conv_t *p;
    int H, W, OH, OW;
} geom_t;

/* Column j of the packed B block lives at panel j / NR, lane j % NR; row kk of a panel is NR
 * floats. These write a run of columns [j, j + len) of row kk, split at panel boundaries. */
static inline void put_run(float *Bp, int kc, int kk, int j, const float *src, int len,
                           int stride, int pw) {
    while (len > 0) {
        int off = j % pw, n = imin(pw - off, len);
        float *d = Bp + ((size_t)(j / pw) * kc + kk) * pw + off;
        if (stride == 1) {
            for (int t = 0; t < n; t++) d[t] = src[t];
        } else {
            for (int t = 0; t < n; t++) d[t] = src[(ptrdiff_t)t * stride];
        }
        j += n; len -= n; src += (ptrdiff_t)n * stride;
    }
}

static inline void put_zero(float *Bp, int kc, int kk, int j, int len, int pw) {
    while (len > 0) {
        int off = j % pw, n = imin(pw - off, len);
        float *d = Bp + ((size_t)(j / pw) * kc + kk) * pw + off;
        for (int t = 0; t < n; t++) d[t] = 0.f;
        j += n; len -= n;
    }
}

/* Row kk = (c, ky, kx) of the im2col matrix, columns [jc, jc + nc), straight into the panels. */
static void im2col_row(const geom_t *g, const float *x, int c, int ky, int kx, int jc, int nc,
                       float *Bp, int kc, int kk, int pw) {
    const cg_conv_t *p = g->p;
    const int H = g->H, W = g->W, OW = g->OW, sw = p->sw;
    int oy = jc / OW, ox = jc % OW, j = 0;
    const float *xc = x + (size_t)c * H * W;
    while (j < nc) {
        int len = imin(OW - ox, nc - j);
        int iy = oy * p->sh - p->pt + ky * p->dh;
        if (iy < 0 || iy >= H) {
            put_zero(Bp, kc, kk, j, len, pw);
        } else {
            const float *xr = xc + (size_t)iy * W;
            int ix0 = ox * sw - p->pl + kx * p->dw;
            int tlo = ix0 < 0 ? (-ix0 + sw - 1) / sw : 0;
            int thi = ix0 < W ? (W - ix0 + sw - 1) / sw : 0;
            tlo = imin(tlo, len);
            thi = imax(imin(thi, len), tlo);
            if (tlo) put_zero(Bp, kc, kk, j, tlo, pw);
            put_run(Bp, kc, kk, j + tlo, xr + ix0 + (ptrdiff_t)tlo * sw, thi - tlo, sw, pw);
            if (thi < len) put_zero(Bp, kc, kk, j + thi, len - thi, pw);
        }
        j += len;
        ox = 0;
        oy++;
    }
}

/* The last panel of nc columns is a single column, packed for kern_avx2_1col. */
static int panel_1col(int nc) { return nc % NR == 1 && cg_isa(); }

/* Pack B[pc:pc+kc, jc:jc+nc] (im2col of image x, group-local channels) into NR panels. */
static void pack_b_conv(const geom_t *g, const float *x, int pc, int kc, int jc, int nc,
                        float *Bp, float *rowbuf) {
    const cg_conv_t *p = g->p;
    const int KHW = p->KH * p->KW;
    const int pointwise = conv_pointwise(p);
    const size_t HW = (size_t)g->H * g->W;
    (void)rowbuf;
    for (int kk = 0; kk < kc; kk++) {
        int k = pc + kk, c = k / KHW, r = k % KHW;
        if (pointwise) {
            const float *src = x + c * HW + jc; /* 1x1: B is the input itself */
            float *d = Bp + (size_t)kk * NR;
            int j = 0;
            for (; j + NR <= nc; j += NR, d += (size_t)kc * NR)
                memcpy(d, src + j, sizeof(float) * NR);
            if (j < nc) memcpy(d, src + j, sizeof(float) * (nc - j));
        } else {
            im2col_row(g, x, c, r / p->KW, r % p->KW, jc, nc, Bp, kc, kk, NR);
        }
    }
    if (panel_1col(nc)) { /* kern_avx2_1col's layout, in place: b[k] at 16k -> 6k .. 6k+5 */
        float *d = Bp + (size_t)(nc / NR) * kc * NR;
        for (int kk = 0; kk < kc; kk++) {
            float b = d[(size_t)kk * NR];
            for (int r = 0; r < MR; r++) d[(size_t)kk * MR + r] = b;
        }
    } else if (nc % NR) { /* zero the lanes past nc of the last panel */
        float *d = Bp + (size_t)(nc / NR) * kc * NR;
        for (int kk = 0; kk < kc; kk++)
            memset(d + (size_t)kk * NR + nc % NR, 0, sizeof(float) * (NR - nc % NR));
    }
}

/* One image, one group, rows [m0, m1) x columns [n0, n1) of C (m0 a multiple of MR). */
static void conv_gemm_tile(const geom_t *g, kern_fn kern, const float *x, float *y,
                           const float *res, const float *bias, const float *Ap, int m0, int m1,
                           int n0, int n1, float *Bp, float *rowbuf) {
    const cg_conv_t *p = g->p;
    const int K = p->K, OHW = g->OH * g->OW;
    if (m1 <= m0 || n1 <= n0) return;
    const int kcb = kc_block(K);
    const int L = n1 - n0;
    const int ncb = cdiv(cdiv(L, cdiv(L, NC_MAX)), NR) * NR;
    const int npm = cdiv(m1 - m0, MR);
    const int mcb = cdiv(npm, cdiv(npm * MR, MC_MAX)) * MR;
    ep_t ep = {0};
    ep.bias_col = NULL;
    ep.ldr = OHW;
    ep.act = p->act;
    ep.alpha = p->alpha;
    ep.beta = p->beta;
    for (int jc = n0; jc < n1; jc += ncb) {
        int nc = imin(ncb, n1 - jc);
        for (int pc = 0; pc < K; pc += kcb) {
            int kc = imin(kcb, K - pc);
            pack_b_conv(g, x, pc, kc, jc, nc, Bp, rowbuf);
            ep.first = pc == 0;
            ep.last = pc + kc == K;
            for (int ic = m0; ic < m1; ic += mcb) {
                int ie = imin(ic + mcb, m1);
                for (int jr = 0; jr < nc; jr += NR) {
                    int nr = imin(NR, nc - jr);
                    const float *B = Bp + (size_t)(jr / NR) * kc * NR;
                    ep.bx = nr == 1 && panel_1col(nc);
                    for (int ir = ic; ir < ie; ir += MR) {
                        int mr = imin(MR, ie - ir);
                        const float *A = Ap + (size_t)(ir / MR) * K * MR + (size_t)pc * MR;
                        size_t off = (size_t)ir * OHW + jc + jr;
                        ep.bias_row = bias ? bias + ir : NULL;
                        ep.res = res ? res + off : NULL;
                        kern(kc, A, B, y + off, OHW, mr, nr, &ep);
                    }
                }
            }
        }
    }
}

/* ---------------------------------------------------------------- depthwise (Cg == 1) */

/* The zero-padded input plane of one channel, split into sw column phases so that every tap
 * of a strided conv reads contiguous memory: plane[ph][r][j] = xpad[r][j * sw + ph]. */
#ifdef CG_X86
/* One input row into both column phases of stride 2: d_ph[j] = xpad[2j + ph] (fill outside the
 * row); the columns where both phases are inside the row are deinterleaved 8 at a time. */
TGT static void fill_row_s2_avx2(const float *s, int W, int pl, int PW, float *d0, float *d1,
                                  float fill) {
    int J0 = imin((pl + 1) / 2, PW), J1 = imax(J0, imin((W + pl) / 2, PW)), j = 0;
    for (; j < J0; j++) {
        int ix = 2 * j - pl;
        d0[j] = (ix >= 0 && ix < W) ? s[ix] : fill;
        d1[j] = (ix + 1 >= 0 && ix + 1 < W) ? s[ix + 1] : fill;
    }
    for (; j + 8 <= J1; j += 8) {
        const float *q = s + 2 * j - pl;
        __m256 a = _mm256_loadu_ps(q), b = _mm256_loadu_ps(q + 8);
        __m256 ev = _mm256_shuffle_ps(a, b, 0x88), od = _mm256_shuffle_ps(a, b, 0xDD);
        _mm256_storeu_ps(d0 + j, _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(ev), 0xD8)));
        _mm256_storeu_ps(d1 + j, _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(od), 0xD8)));
    }
    for (; j < J1; j++) { /* both phases inside the row */
        d0[j] = s[2 * j - pl];
        d1[j] = s[2 * j + 1 - pl];
    }
    if (j < PW) { /* phase 0 may hold one more column; past it, the fill */
        d0[j] = (2 * j - pl >= 0 && 2 * j - pl < W) ? s[2 * j - pl] : fill;
        d1[j] = fill;
        for (j++; j < PW; j++) d0[j] = d1[j] = fill;
    }
}
#endif

static void dw_fill_planes(const cg_conv_t *p, const float *xc, int H, int W, int Hp, int PW,
                           float *planes) {
    const int sw = p->sw;
#ifdef CG_X86
    if (sw == 2 && cg_isa()) {
        for (int r = 0; r < Hp; r++) {
            float *d0 = planes + (size_t)r * PW, *d1 = planes + ((size_t)Hp + r) * PW;
            int iy = r - p->pt;
            if (iy < 0 || iy >= H) {
                memset(d0, 0, sizeof(float) * PW);
                memset(d1, 0, sizeof(float) * PW);
            } else {
                fill_row_s2_avx2(xc + (size_t)iy * W, W, p->pl, PW, d0, d1, 0.f);
            }
        }
        return;
    }
#endif
    for (int ph = 0; ph < sw; ph++)
        for (int r = 0; r < Hp; r++) {
            float *d = planes + ((size_t)ph * Hp + r) * PW;
            int iy = r - p->pt;
            if (iy < 0 || iy >= H) { memset(d, 0, sizeof(float) * PW); continue; }
            const float *s = xc + (size_t)iy * W;
            /* columns j with 0 <= j * sw + ph - pl < W copy, the rest are zero */
            int jlo = imax(0, cdiv(p->pl - ph, sw)), jhi = imin(PW, cdiv(W + p->pl - ph, sw));
            if (jhi < jlo) jhi = jlo = imin(jlo, PW);
            /* plain loops: rows are short, and libc calls per row cost more than the copy */
            int j = 0;
            for (; j < jlo; j++) d[j] = 0.f;
            if (sw == 1) {
                const float *q = s - p->pl;
                for (; j < jhi; j++) d[j] = q[j];
            } else {
                const float *q = s + (ptrdiff_t)jlo * sw + ph - p->pl;
                for (; j < jhi; j++, q += sw) d[j] = *q;
            }
            for (; j < PW; j++) d[j] = 0.f;
        }
}

static void dw_plane_generic(const cg_conv_t *p, const float *planes, int Hp, int PW, int OH,
                             int OW, const float *wk, float bias, const float *rc, float *yc) {
    const int KH = p->KH, KW = p->KW, sw = p->sw;
    /* accumulate in scratch, not in y: y may be the residual (in place) */
    float *acc = (float *)planes + (size_t)sw * Hp * PW;
    for (int oy = 0; oy < OH; oy++) {
        float *yr = yc + (size_t)oy * OW;
        for (int ox = 0; ox < OW; ox++) acc[ox] = 0.f;
        for (int ky = 0; ky < KH; ky++)
            for (int kx = 0; kx < KW; kx++) {
                int q = kx * p->dw;
                const float *s =
                    planes + ((size_t)(q % sw) * Hp + oy * p->sh + ky * p->dh) * PW + q / sw;
                float w = wk[ky * KW + kx];
                for (int ox = 0; ox < OW; ox++) acc[ox] += w * s[ox];
            }
        for (int ox = 0; ox < OW; ox++) {
            float v = acc[ox] + bias;
            if (rc) v += rc[(size_t)oy * OW + ox];
            yr[ox] = act_scalar(v, p->act, p->alpha, p->beta);
        }
    }
}

#ifdef CG_X86
TGT static inline void dw_ep8(__m256 v, float *y, const float *r, float bias, int n,
                              const ep_t *ep) {
    v = _mm256_add_ps(v, _mm256_set1_ps(bias));
    if (n == 8 && ep->act != CG_ACT_SIGMOID) {
        if (r) v = _mm256_add_ps(v, _mm256_loadu_ps(r));
        if (ep->act) v = act_vec(v, ep);
        _mm256_storeu_ps(y, v);
    } else if (ep->act != CG_ACT_SIGMOID) {
        __m256i mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(n),
                                          _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
        if (r) v = _mm256_add_ps(v, _mm256_maskload_ps(r, mask));
        if (ep->act) v = act_vec(v, ep);
        _mm256_maskstore_ps(y, mask, v);
    } else {
        float t[8];
        _mm256_storeu_ps(t, v);
        for (int i = 0; i < n; i++) {
            float u = t[i];
            if (r) u += r[i];
            y[i] = act_scalar(u, ep->act, ep->alpha, ep->beta);
        }
    }
}

TGT static void dw_plane_avx2(const cg_conv_t *p, const float *planes, int Hp, int PW, int OH,
                              int OW, const float *wk, float bias, const float *rc, float *yc,
                              const ptrdiff_t *toff) {
    /* 8 outputs of 4 rows at a time: four independent FMA chains per tap */
    const int T = p->KH * p->KW;
    const ptrdiff_t rs = (ptrdiff_t)p->sh * PW;
    ep_t ep = {0};
    ep.act = p->act; ep.alpha = p->alpha; ep.beta = p->beta;
    (void)Hp;
    for (int oy = 0; oy < OH; oy += 4) {
        const int R = imin(4, OH - oy);
        const float *row = planes + (size_t)oy * rs;
        for (int ox = 0; ox < OW; ox += 8) {
            const int n = imin(8, OW - ox);
            __m256 a[4];
            a[0] = a[1] = a[2] = a[3] = _mm256_setzero_ps();
            if (R == 4) {
                __m256 a0 = a[0], a1 = a[0], a2 = a[0], a3 = a[0];
                for (int t = 0; t < T; t++) {
                    __m256 w = _mm256_broadcast_ss(wk + t);
                    const float *q = row + toff[t] + ox;
                    a0 = _mm256_fmadd_ps(w, _mm256_loadu_ps(q), a0);
                    a1 = _mm256_fmadd_ps(w, _mm256_loadu_ps(q + rs), a1);
                    a2 = _mm256_fmadd_ps(w, _mm256_loadu_ps(q + 2 * rs), a2);
                    a3 = _mm256_fmadd_ps(w, _mm256_loadu_ps(q + 3 * rs), a3);
                }
                a[0] = a0; a[1] = a1; a[2] = a2; a[3] = a3;
            } else {
                for (int t = 0; t < T; t++) {
                    __m256 w = _mm256_broadcast_ss(wk + t);
                    const float *q = row + toff[t] + ox;
                    for (int r = 0; r < R; r++)
                        a[r] = _mm256_fmadd_ps(w, _mm256_loadu_ps(q + r * rs), a[r]);
                }
            }
            for (int r = 0; r < R; r++) {
                size_t o = (size_t)(oy + r) * OW + ox;
                dw_ep8(a[r], yc + o, rc ? rc + o : NULL, bias, n, &ep);
            }
        }
    }
}

/* Channel-blocked depthwise (AVX2, one output channel per input channel's group or any
 * multiplier): 8 output channels at once with the channel in the SIMD lanes. The input rows
 * of the 8 channels are transposed on the fly into a ring of zero-padded rows [Wp][8] (each
 * input row once), the taps run on whole vectors (no lane is wasted on a 7-wide plane, and a
 * stride only changes an index), and each output row is transposed back to the 8 planes,
 * where bias, residual and activation are applied as in dw_plane_avx2. Every output sees the
 * same operations as there (taps in order from zero, then bias, residual, activation), so the
 * two paths give identical bits. */
typedef struct {
    int Rs, Wp;          /* ring rows, padded row length (columns) */
} dwb_t;

static void dwb_geometry(const cg_conv_t *p, int W, int OW, dwb_t *b) {
    b->Rs = (p->KH - 1) * p->dh + 1;
    /* columns up to OW rounded to 8 outputs: dwb8_s1 runs past a row's end into zeros */
    b->Wp = imax(p->pl + W, (cdiv(OW, 8) * 8 - 1) * p->sw + (p->KW - 1) * p->dw + 1);
}

/* output positions gathered before they go back to the planes */
#define DWB_YCAP 512

/* floats of one thread's scratch: the ring, a zero row, the gathered output positions */
static size_t dwb_floats(const cg_conv_t *p, int W, int OW) {
    dwb_t b;
    dwb_geometry(p, W, OW, &b);
    return (size_t)(b.Rs + 1) * b.Wp * 8 + (size_t)(DWB_YCAP + OW + 16) * 8;
}

/* out[k] = (s[0][j + k], ..., s[7][j + k]) for k < 8: an 8 x 8 transpose with 128-bit loads
 * and in-lane shuffles only (cross-lane permutes are slow on some AVX2 cores) */
TGT static inline void tr8(const float *const s[8], ptrdiff_t j, __m256 out[8]) {
    for (int h = 0; h < 8; h += 4) {
#define LD2(a, b) _mm256_insertf128_ps(_mm256_castps128_ps256(_mm_loadu_ps(s[a] + j + h)), \
                                       _mm_loadu_ps(s[b] + j + h), 1)
        __m256 t0 = LD2(0, 4), t1 = LD2(1, 5), t2 = LD2(2, 6), t3 = LD2(3, 7);
#undef LD2
        __m256 a = _mm256_unpacklo_ps(t0, t1), b = _mm256_unpackhi_ps(t0, t1);
        __m256 c = _mm256_unpacklo_ps(t2, t3), d = _mm256_unpackhi_ps(t2, t3);
        out[h + 0] = _mm256_shuffle_ps(a, c, 0x44);
        out[h + 1] = _mm256_shuffle_ps(a, c, 0xEE);
        out[h + 2] = _mm256_shuffle_ps(b, d, 0x44);
        out[h + 3] = _mm256_shuffle_ps(b, d, 0xEE);
    }
}

TGT static inline __m256 vmax_nan(__m256 a, __m256 b) { /* b where b > a or b is NaN */
    return _mm256_blendv_ps(_mm256_max_ps(b, a), b, _mm256_cmp_ps(b, b, _CMP_UNORD_Q));
}

/* input row iy of the 8 channel planes src[] (rows of W floats, planes of H rows) ->
 * padded blocked row d[Wp][8], padded with fill. Every column goes through tr8: a row shorter than 8 is read
 * together with its neighbour in the same plane (the next row, or for the last row the one
 * before), so no read leaves the plane. */
TGT static void dwb_fill_row(const float *const src[8], int iy, int H, int W, int pl, int Wp,
                             float *d, float fill) {
    const __m256 z = _mm256_set1_ps(fill);
    __m256 v[8];
    for (int j = 0; j < pl; j++) _mm256_storeu_ps(d + 8 * j, z);
    float *dd = d + 8 * pl;
    const ptrdiff_t row = (ptrdiff_t)iy * W;
    if (W >= 8) {
        int ix = 0;
        for (; ix + 8 <= W; ix += 8) {
            tr8(src, row + ix, v);
            for (int k = 0; k < 8; k++) _mm256_storeu_ps(dd + 8 * (ix + k), v[k]);
        }
        if (ix < W) { /* the last 8 columns, overlapping the ones done */
            const int k0 = 8 - (W - ix);
            tr8(src, row + W - 8, v);
#pragma GCC unroll 8
            for (int k = 0; k < 8; k++) /* constant k: v stays in registers */
                if (k >= k0) _mm256_storeu_ps(dd + 8 * (W - 8 + k), v[k]);
        }
    } else if ((ptrdiff_t)H * W >= 8) {
        ptrdiff_t at = imin(row, (ptrdiff_t)H * W - 8); /* 8 floats inside the plane */
        const int off = (int)(row - at);
        tr8(src, at, v);
#pragma GCC unroll 8
        for (int k = 0; k < 8; k++) /* constant k: v stays in registers */
            if (k >= off && k < off + W) _mm256_storeu_ps(dd + 8 * (k - off), v[k]);
    } else {
        for (int ix = 0; ix < W; ix++)
            for (int c = 0; c < 8; c++) dd[8 * ix + c] = src[c][row + ix];
    }
    for (int j = pl + W; j < Wp; j++) _mm256_storeu_ps(d + 8 * j, z);
}

/* 3x3 stride 1: outputs o..o+7 of one row (rows r0..r2 offset to column o). Each input column
 * is loaded once for the (up to) three outputs that read it: loads, not FMAs, are what this
 * kernel waits on. Every accumulator still takes its taps in order (ky, then kx). */
TGT static inline void dwb8_s1(const float *const r[3], const float *wb, float *yb) {
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0,
           a7 = a0, v;
    for (int ky = 0; ky < 3; ky++) {
        const float *q = r[ky];
        const __m256 w0 = _mm256_loadu_ps(wb + 24 * ky), w1 = _mm256_loadu_ps(wb + 24 * ky + 8),
                     w2 = _mm256_loadu_ps(wb + 24 * ky + 16);
        v = _mm256_loadu_ps(q);
        a0 = _mm256_fmadd_ps(w0, v, a0);
        v = _mm256_loadu_ps(q + 8);
        a0 = _mm256_fmadd_ps(w1, v, a0); a1 = _mm256_fmadd_ps(w0, v, a1);
#define COL(c, x, y, z)                                                                      \
        v = _mm256_loadu_ps(q + 8 * (c));                                                    \
        x = _mm256_fmadd_ps(w2, v, x); y = _mm256_fmadd_ps(w1, v, y); z = _mm256_fmadd_ps(w0, v, z);
        COL(2, a0, a1, a2) COL(3, a1, a2, a3) COL(4, a2, a3, a4) COL(5, a3, a4, a5)
        COL(6, a4, a5, a6) COL(7, a5, a6, a7)
#undef COL
        v = _mm256_loadu_ps(q + 64);
        a6 = _mm256_fmadd_ps(w2, v, a6); a7 = _mm256_fmadd_ps(w1, v, a7);
        v = _mm256_loadu_ps(q + 72);
        a7 = _mm256_fmadd_ps(w2, v, a7);
    }
    _mm256_storeu_ps(yb, a0); _mm256_storeu_ps(yb + 8, a1);
    _mm256_storeu_ps(yb + 16, a2); _mm256_storeu_ps(yb + 24, a3);
    _mm256_storeu_ps(yb + 32, a4); _mm256_storeu_ps(yb + 40, a5);
    _mm256_storeu_ps(yb + 48, a6); _mm256_storeu_ps(yb + 56, a7);
}

/* one output row, blocked: yb[ox][8] = sum over taps of w[t] * row(ky)[ox * sw + kx * dw] */
TGT static void dwb_row(const cg_conv_t *p, const float *const *rows, const float *wb, int OW,
                        float *yb) {
    const int KH = p->KH, KW = p->KW, sw = p->sw, dw = p->dw;
    const ptrdiff_t s8 = 8 * (ptrdiff_t)sw;
    int ox = 0;
    if (KH == 3 && KW == 3 && dw == 1 && sw == 1) {
        /* (stride 2 the same way measured slower than the four chains below). Up to 7
         * outputs past OW land in yb's next slots, which the next row (or, after the last
         * row, the flush) overwrites. */
        for (; ox < OW; ox += 8) {
            const ptrdiff_t o = 8 * (ptrdiff_t)ox;
            const float *r[3] = {rows[0] + o, rows[1] + o, rows[2] + o};
            dwb8_s1(r, wb, yb + o);
        }
        return;
    }
    if (KH == 3 && KW == 3 && dw == 1) {
        const __m256 w0 = _mm256_loadu_ps(wb), w1 = _mm256_loadu_ps(wb + 8),
                     w2 = _mm256_loadu_ps(wb + 16), w3 = _mm256_loadu_ps(wb + 24),
                     w4 = _mm256_loadu_ps(wb + 32), w5 = _mm256_loadu_ps(wb + 40),
                     w6 = _mm256_loadu_ps(wb + 48), w7 = _mm256_loadu_ps(wb + 56),
                     w8 = _mm256_loadu_ps(wb + 64);
        const float *r0 = rows[0], *r1 = rows[1], *r2 = rows[2];
#define TAP3(acc, q, wa, wb_, wc)                                                            \
        acc = _mm256_fmadd_ps(wa, _mm256_loadu_ps(q), acc);                                 \
        acc = _mm256_fmadd_ps(wb_, _mm256_loadu_ps((q) + 8), acc);                          \
        acc = _mm256_fmadd_ps(wc, _mm256_loadu_ps((q) + 16), acc);
#define OUT3(acc, o)                                                                         \
        TAP3(acc, r0 + (o), w0, w1, w2) TAP3(acc, r1 + (o), w3, w4, w5)                     \
        TAP3(acc, r2 + (o), w6, w7, w8)
        for (; ox + 4 <= OW; ox += 4) {
            const ptrdiff_t o = (ptrdiff_t)ox * s8;
            __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
            OUT3(a0, o) OUT3(a1, o + s8) OUT3(a2, o + 2 * s8) OUT3(a3, o + 3 * s8)
            _mm256_storeu_ps(yb + 8 * ox, a0);
            _mm256_storeu_ps(yb + 8 * ox + 8, a1);
            _mm256_storeu_ps(yb + 8 * ox + 16, a2);
            _mm256_storeu_ps(yb + 8 * ox + 24, a3);
        }
        if (ox < OW && OW >= 4) { /* the last 4 outputs again: independent chains */
            ox = OW - 4;
            const ptrdiff_t o = (ptrdiff_t)ox * s8;
            __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
            OUT3(a0, o) OUT3(a1, o + s8) OUT3(a2, o + 2 * s8) OUT3(a3, o + 3 * s8)
            _mm256_storeu_ps(yb + 8 * ox, a0);
            _mm256_storeu_ps(yb + 8 * ox + 8, a1);
            _mm256_storeu_ps(yb + 8 * ox + 16, a2);
            _mm256_storeu_ps(yb + 8 * ox + 24, a3);
            ox = OW;
        }
        for (; ox < OW; ox++) {
            const ptrdiff_t o = (ptrdiff_t)ox * s8;
            __m256 a0 = _mm256_setzero_ps();
            OUT3(a0, o)
            _mm256_storeu_ps(yb + 8 * ox, a0);
        }
#undef OUT3
#undef TAP3
        return;
    }
    for (; ox < OW; ox++) {
        __m256 a = _mm256_setzero_ps();
        for (int ky = 0; ky < KH; ky++) {
            const float *q = rows[ky] + (ptrdiff_t)ox * s8;
            const float *w = wb + (ptrdiff_t)ky * KW * 8;
            for (int kx = 0; kx < KW; kx++)
                a = _mm256_fmadd_ps(_mm256_loadu_ps(w + 8 * kx),
                                    _mm256_loadu_ps(q + (ptrdiff_t)kx * dw * 8), a);
        }
        _mm256_storeu_ps(yb + 8 * ox, a);
    }
}

/* max pooling, one output row, blocked: yb[ox][8] = max over taps of row(ky)[ox sw + kx dw].
 * Four outputs at a time; a NaN among the inputs is tracked apart (an OR of compares) so that
 * each maximum chain is one instruction per tap, and makes the output NaN at the end. */
TGT static void mpb_row(const cg_conv_t *p, const float *const *rows, int OW, float *yb) {
    const ptrdiff_t s8 = 8 * (ptrdiff_t)p->sw, d8 = 8 * (ptrdiff_t)p->dw;
    const __m256 ninf = _mm256_set1_ps(-INFINITY);
    int ox = 0;
    for (; ox + 4 <= OW; ox += 4) {
        __m256 m0 = ninf, m1 = ninf, m2 = ninf, m3 = ninf, bad = _mm256_setzero_ps();
        for (int ky = 0; ky < p->KH; ky++) {
            const float *q = rows[ky] + (ptrdiff_t)ox * s8;
            for (int kx = 0; kx < p->KW; kx++, q += d8) {
                __m256 v0 = _mm256_loadu_ps(q), v1 = _mm256_loadu_ps(q + s8),
                       v2 = _mm256_loadu_ps(q + 2 * s8), v3 = _mm256_loadu_ps(q + 3 * s8);
                m0 = _mm256_max_ps(v0, m0); m1 = _mm256_max_ps(v1, m1);
                m2 = _mm256_max_ps(v2, m2); m3 = _mm256_max_ps(v3, m3);
                bad = _mm256_or_ps(bad, _mm256_or_ps(_mm256_cmp_ps(v0, v1, _CMP_UNORD_Q),
                                                     _mm256_cmp_ps(v2, v3, _CMP_UNORD_Q)));
            }
        }
        if (_mm256_movemask_ps(bad)) { /* some NaN in these four windows: redo them exactly */
            for (int i = 0; i < 4; i++) {
                __m256 m = ninf;
                for (int ky = 0; ky < p->KH; ky++)
                    for (int kx = 0; kx < p->KW; kx++)
                        m = vmax_nan(m, _mm256_loadu_ps(rows[ky] + (ptrdiff_t)(ox + i) * s8 +
                                                        kx * d8));
                _mm256_storeu_ps(yb + 8 * (ox + i), m);
            }
            continue;
        }
        _mm256_storeu_ps(yb + 8 * ox, m0);
        _mm256_storeu_ps(yb + 8 * ox + 8, m1);
        _mm256_storeu_ps(yb + 8 * ox + 16, m2);
        _mm256_storeu_ps(yb + 8 * ox + 24, m3);
    }
    for (; ox < OW; ox++) {
        __m256 m = ninf;
        for (int ky = 0; ky < p->KH; ky++)
            for (int kx = 0; kx < p->KW; kx++)
                m = vmax_nan(m, _mm256_loadu_ps(rows[ky] + (ptrdiff_t)ox * s8 + kx * d8));
        _mm256_storeu_ps(yb + 8 * ox, m);
    }
}

/* dw_block_avx2: groups j, j + 8, ... of 8 whole positions from yb back to the planes, as
 * dw_ep8 does (bias, residual, activation ACT of v) */
#define DWB_FLUSH(ACT)                                                                        \
    for (; j + 8 <= L; j += 8) {                                                              \
        __m256 t[8];                                                                          \
        const size_t o = f0 + j;                                                              \
        tr8(ybr, 8 * (ptrdiff_t)j, t);                                                        \
        for (int c = 0; c < 8; c++) {                                                         \
            __m256 v = _mm256_add_ps(t[c], _mm256_broadcast_ss(bias + c));                    \
            if (res) v = _mm256_add_ps(v, _mm256_loadu_ps(rc[c] + o));                        \
            v = ACT;                                                                          \
            _mm256_storeu_ps(yc[c] + o, v);                                                   \
        }                                                                                     \
    }

/* Output channels [m0, m0 + 8) of image n. Output rows gather, blocked, in yb; whole groups
 * of 8 positions of the flattened plane go back to the planes at once (a plane's only partial
 * group is its last). maxpool: the same walk takes the maximum of the window instead (padding
 * -inf; p holds the window, no weights, bias or activation). */
TGT static void dw_block_avx2(const cg_conv_t *p, const float *x, float *y, const float *res,
                              int n, int m0, int H, int W, int OH, int OW, float *scratch,
                              int maxpool) {
    dwb_t g;
    dwb_geometry(p, W, OW, &g);
    const int Wp = g.Wp, Rs = g.Rs;
    float *ring = scratch, *zero = ring + (size_t)Rs * Wp * 8, *yb = zero + (size_t)Wp * 8;
    const size_t HW = (size_t)H * W, OHW = (size_t)OH * OW;
    const float *wb = maxpool ? NULL : p->wpacked + (size_t)p->M * p->KH * p->KW +
                                           (size_t)(m0 / 8) * p->KH * p->KW * 8;
    const float fill = maxpool ? -INFINITY : 0.f;
    const float *src[8], *ybr[8], *rows[64];
    float *yc[8], bias[8];
    const float *rc[8];
    ep_t ep = {0};
    ep.act = p->act; ep.alpha = p->alpha; ep.beta = p->beta;
    for (int c = 0; c < 8; c++) {
        int m = m0 + c;
        src[c] = x + ((size_t)n * p->C + m / p->Mg) * HW;
        yc[c] = y + ((size_t)n * p->M + m) * OHW;
        rc[c] = res ? res + ((size_t)n * p->M + m) * OHW : NULL;
        ybr[c] = yb + 8 * c;
        bias[c] = p->bias ? p->bias[m] : 0.f;
    }
    for (int k = 0; k < Wp; k++) _mm256_storeu_ps(zero + 8 * k, _mm256_set1_ps(fill));
    int next = 0;      /* input rows below this one are in the ring already */
    int cnt = 0;       /* output positions held in yb, from flat position f0 on */
    size_t f0 = 0;
    for (int oy = 0; oy < OH; oy++) {
        const int lo = oy * p->sh - p->pt;
        for (int ky = 0; ky < p->KH; ky++) {
            int iy = lo + ky * p->dh;
            if (iy < 0 || iy >= H) { rows[ky] = zero; continue; }
            /* every row of [lo, iy] not in the ring yet (a dilation skips some rows here
             * that the next output row needs) */
            for (int r = imax(imax(next, lo), 0); r <= iy; r++)
                dwb_fill_row(src, r, H, W, p->pl, Wp, ring + (size_t)(r % Rs) * Wp * 8, fill);
            next = imax(next, iy + 1);
            rows[ky] = ring + (size_t)(iy % Rs) * Wp * 8;
        }
        if (maxpool)
            mpb_row(p, rows, OW, yb + 8 * (size_t)cnt);
        else
            dwb_row(p, rows, wb, OW, yb + 8 * (size_t)cnt);
        cnt += OW;
        const int last = oy == OH - 1;
        if (cnt < DWB_YCAP && !last) continue;
        const int L = last ? cnt : cnt / 8 * 8;
        int j = 0;
        if (maxpool) {
            for (; j < L; j += 8) {
                __m256 t[8];
                const int nn = imin(8, L - j);
                tr8(ybr, 8 * (ptrdiff_t)j, t);
                for (int c = 0; c < 8; c++) {
                    if (nn == 8) { _mm256_storeu_ps(yc[c] + f0 + j, t[c]); continue; }
                    float u[8];
                    _mm256_storeu_ps(u, t[c]);
                    for (int i = 0; i < nn; i++) yc[c][f0 + j + i] = u[i];
                }
            }
        }
        switch (maxpool ? -1 : ep.act) { /* whole groups of 8, the common activations inlined */
        case CG_ACT_NONE: DWB_FLUSH(v) break;
        case CG_ACT_RELU: DWB_FLUSH(_mm256_max_ps(v, _mm256_setzero_ps())) break;
        case CG_ACT_CLIP:
            DWB_FLUSH(_mm256_min_ps(_mm256_max_ps(v, _mm256_set1_ps(ep.alpha)),
                                    _mm256_set1_ps(ep.beta)))
            break;
        default: break;
        }
        if (last) for (int k = cnt; k < cnt + 8; k++) _mm256_storeu_ps(yb + 8 * k, _mm256_setzero_ps());
        for (; j < L; j += 8) {
            __m256 v[8];
            const int nn = imin(8, L - j);
            tr8(ybr, 8 * (ptrdiff_t)j, v);
            for (int c = 0; c < 8; c++) {
                size_t o = f0 + j;
                dw_ep8(v[c], yc[c] + o, rc[c] ? rc[c] + o : NULL, bias[c], nn, &ep);
            }
        }
        for (int k = 0; k < cnt - L; k++)
            _mm256_storeu_ps(yb + 8 * k, _mm256_loadu_ps(yb + 8 * (L + k)));
        f0 += L;
        cnt -= L;
    }
}
#endif

static void dw_channel(const cg_conv_t *p, const float *x, float *y, const float *res, int n,
                       int m, int H, int W, int OH, int OW, float *planes, int avx2,
                       const ptrdiff_t *toff) {
    const int Hp = H + p->pt + p->pb;
    const int PW = cdiv(OW, 8) * 8 + ((p->KW - 1) * p->dw) / p->sw + 8;
    const int c = m / p->Mg;
    const float *xc = x + ((size_t)n * p->C + c) * H * W;
    size_t yo = ((size_t)n * p->M + m) * OH * OW;
    const float *wk = p->wpacked + (size_t)m * p->KH * p->KW;
    float bias = p->bias ? p->bias[m] : 0.f;
    dw_fill_planes(p, xc, H, W, Hp, PW, planes);
#ifdef CG_X86
    if (avx2) {
        dw_plane_avx2(p, planes, Hp, PW, OH, OW, wk, bias, res ? res + yo : NULL, y + yo, toff);
        return;
    }
#endif
    (void)avx2;
    dw_plane_generic(p, planes, Hp, PW, OH, OW, wk, bias, res ? res + yo : NULL, y + yo);
}

/* ---------------------------------------------------------------- conv: driver */

typedef struct {
    const cg_conv_t *p;
    geom_t g;
    layout_t L;
    const float *x, *res;
    float *y, *base, *thr; /* scratch: shared part at base, per-thread parts from thr */
    ptrdiff_t *koff;
    float *planes;
    size_t bpf;
    int N, n, whole;
    int next;            /* work counter: threads take the next unit with an atomic add, so a
                          * thread the OS delays (a shared machine) holds no one up */
    int units, chunk;    /* work units of the current phase and their size */
    long items;          /* depthwise: channels or blocks of 8 channels, over all images */
    kern_fn kern;
    int avx2;
} conv_ctx;

static inline int take(conv_ctx *r) { return __atomic_fetch_add(&r->next, 1, __ATOMIC_RELAXED); }

static void dw_task(void *c, int tid, int nth) {
    conv_ctx *r = (conv_ctx *)c;
    const cg_conv_t *p = r->p;
    (void)nth;
    /* per image: the blocks of 8 channels first (when blocked), then single channels */
    const int nb = r->whole ? p->M / 8 : 0, per = nb + p->M - 8 * nb;
    float *scratch = r->thr + r->L.per * tid;
    const long items = r->items;
    for (int u; (u = take(r)) < r->units;)
        for (long it = (long)u * r->chunk; it < items && it < (long)(u + 1) * r->chunk; it++) {
            const int n = (int)(it / per), j = (int)(it % per);
#ifdef CG_X86
            if (j < nb) {
                dw_block_avx2(p, r->x, r->y, r->res, n, 8 * j, r->g.H, r->g.W, r->g.OH,
                              r->g.OW, scratch, 0);
                continue;
            }
#endif
            dw_channel(p, r->x, r->y, r->res, n, 8 * nb + j - nb, r->g.H, r->g.W, r->g.OH,
                       r->g.OW, scratch, r->avx2, r->koff);
        }
}

/* Packed mode, whole GEMMs or column chunks of them: unit u is chunk u % r->units_per of
 * GEMM (image, group) u / per. */
static void conv_task(void *c, int tid, int nth) {
    conv_ctx *r = (conv_ctx *)c;
    const cg_conv_t *p = r->p;
    const int H = r->g.H, W = r->g.W, OHW = r->g.OH * r->g.OW;
    const size_t xs = (size_t)p->C * H * W, ys = (size_t)p->M * OHW;
    const int per = r->whole ? 1 : cdiv(cdiv(OHW, NR), r->chunk);
    float *Bp = r->thr + r->L.per * tid;
    float *rowbuf = align64(Bp + r->bpf);
    (void)nth;
    for (int u; (u = take(r)) < r->units;) {
        int it = u / per, ch = u % per;
        int n = it / p->group, gi = it % p->group;
        const float *xg = r->x + n * xs + (size_t)gi * p->Cg * H * W;
        size_t yoff = n * ys + (size_t)gi * p->Mg * OHW;
        const float *Ap = p->wpacked + (size_t)gi * p->mpanels * p->K * MR;
        const float *bg = p->bias ? p->bias + gi * p->Mg : NULL;
        int n0 = 0, n1 = OHW;
        if (!r->whole) {
            n0 = imin(OHW, ch * r->chunk * NR);
            n1 = imin(OHW, (ch + 1) * r->chunk * NR);
        }
        conv_gemm_tile(&r->g, r->kern, xg, r->y + yoff, r->res ? r->res + yoff : NULL, bg, Ap,
                       0, p->Mg, n0, n1, Bp, rowbuf);
    }
}

/* Packed mode, row chunks of GEMM r->n (image * group + group): step 1 packs all of B. */
static void packB_task(void *c, int tid, int nth) {
    conv_ctx *r = (conv_ctx *)c;
    const cg_conv_t *p = r->p;
    const int H = r->g.H, W = r->g.W, OHW = r->g.OH * r->g.OW, K = p->K, kcb = kc_block(K);
    const int npad = cdiv(OHW, NR) * NR;
    const int n = r->n / p->group, gi = r->n % p->group;
    const float *xg = r->x + ((size_t)n * p->C + (size_t)gi * p->Cg) * H * W;
    for (int b = tid; b * kcb < K; b += nth)
        pack_b_conv(&r->g, xg, b * kcb, imin(kcb, K - b * kcb), 0, OHW,
                    r->planes + (size_t)b * kcb * npad, NULL);
}

/* ... step 2: chunks of r->chunk row panels against the shared B. */
static void rows_task(void *c, int tid, int nth) {
    conv_ctx *r = (conv_ctx *)c;
    const cg_conv_t *p = r->p;
    const int OHW = r->g.OH * r->g.OW, K = p->K, kcb = kc_block(K);
    const int npad = cdiv(OHW, NR) * NR;
    const int n = r->n / p->group, gi = r->n % p->group;
    const size_t yoff = ((size_t)n * p->M + (size_t)gi * p->Mg) * OHW;
    const float *Ap = p->wpacked + (size_t)gi * p->mpanels * K * MR;
    const float *bias = p->bias ? p->bias + gi * p->Mg : NULL;
    const float *res = r->res ? r->res + yoff : NULL;
    float *y = r->y + yoff;
    ep_t ep = {0};
    (void)tid; (void)nth;
    ep.bias_col = NULL;
    ep.ldr = OHW;
    ep.act = p->act; ep.alpha = p->alpha; ep.beta = p->beta;
    for (int u; (u = take(r)) < r->units;) {
        int m0 = u * r->chunk * MR, m1 = imin(p->Mg, (u + 1) * r->chunk * MR);
        for (int pc = 0; pc < K; pc += kcb) {
            int kc = imin(kcb, K - pc);
            const float *Bb = r->planes + (size_t)pc * npad;
            ep.first = pc == 0;
            ep.last = pc + kc == K;
            for (int jr = 0; jr < OHW; jr += NR) {
                int nr = imin(NR, OHW - jr);
                const float *B = Bb + (size_t)(jr / NR) * kc * NR;
                ep.bx = nr == 1 && panel_1col(OHW);
                for (int ir = m0; ir < m1; ir += MR) {
                    size_t off = (size_t)ir * OHW + jr;
                    ep.bias_row = bias ? bias + ir : NULL;
                    ep.res = res ? res + off : NULL;
                    r->kern(kc, Ap + (size_t)(ir / MR) * K * MR + (size_t)pc * MR, B, y + off,
                            OHW, imin(MR, m1 - ir), nr, &ep);
                }
            }
        }
    }
}

#ifdef CG_X86
/* Direct mode, step 1 for image r->n: the padded, phase-split planes of every input channel. */
static void prep_task(void *c, int tid, int nth) {
    conv_ctx *r = (conv_ctx *)c;
    const cg_conv_t *p = r->p;
    const int H = r->g.H, W = r->g.W;
    int c0 = (int)((long)p->C * tid / nth), c1 = (int)((long)p->C * (tid + 1) / nth);
    for (int ch = c0; ch < c1; ch++)
        dw_fill_planes(p, r->x + ((size_t)r->n * p->C + ch) * H * W, H, W, r->L.Hp, r->L.PWs,
                       r->planes + (size_t)ch * r->L.cs);
}

/* Direct mode, step 2 for image r->n: a contiguous range of 16-position tiles per thread, every
 * group; a few tiles at a time share each A panel while it is in L1. */
static void direct_task(void *c, int tid, int nth) {
    conv_ctx *r = (conv_ctx *)c;
    const cg_conv_t *p = r->p;
    const int OW = r->g.OW, OHW = r->g.OH * OW, K = p->K;
    const int tpr = cdiv(OW, NR), nt = r->g.OH * tpr;
    /* K in KC blocks as in the packed mode; G = r->chunk tiles share each A block while their
     * B rows (G * kc * 64 bytes) stay in L1. Units: (group, G tiles). */
    const int kcb = kc_block(K), G = r->chunk, per = cdiv(nt, G);
    (void)tid; (void)nth;
    ep_t ep = {0};
    ep.bias_col = NULL;
    ep.ldr = OHW;
    ep.act = p->act; ep.alpha = p->alpha; ep.beta = p->beta;
    for (int u; (u = take(r)) < r->units;) {
        const int gi = u / per, tg = (u % per) * G, te = imin(tg + G, nt);
        const float *src = r->planes + (size_t)gi * p->Cg * r->L.cs;
        size_t yoff = ((size_t)r->n * p->M + (size_t)gi * p->Mg) * OHW;
        float *yg = r->y + yoff;
        const float *rg = r->res ? r->res + yoff : NULL;
        const float *bg = p->bias ? p->bias + gi * p->Mg : NULL;
        const float *Ap = p->wpacked + (size_t)gi * p->mpanels * K * MR;
        {
            for (int pc = 0; pc < K; pc += kcb) {
                int kc = imin(kcb, K - pc);
                ep.first = pc == 0;
                ep.last = pc + kc == K;
                for (int ir = 0; ir < p->Mg; ir += MR) {
                    int mr = imin(MR, p->Mg - ir);
                    const float *A = Ap + (size_t)(ir / MR) * K * MR + (size_t)pc * MR;
                    ep.bias_row = bg ? bg + ir : NULL;
                    for (int t = tg; t < te; t++) {
                        int oy = t / tpr, ox0 = (t % tpr) * NR;
                        int off = oy * OW + ox0, nr = imin(NR, OW - ox0);
                        const float *b = src + (size_t)oy * p->sh * r->L.PWs + ox0;
                        float *C = yg + (size_t)ir * OHW + off;
                        ep.res = rg ? rg + (size_t)ir * OHW + off : NULL;
                        if (nr <= 8)
                            kern_direct8(kc, A, b, r->koff + pc, C, OHW, mr, nr, &ep);
                        else
                            kern_direct16(kc, A, b, r->koff + pc, C, OHW, mr, nr, &ep);
                    }
                }
            }
        }
    }
}
#endif

/* ---------------------------------------------------------------- conv: Winograd F(2x2, 3x3)
 * Per image: the input is copied into zero-padded planes (shared), then work units (a block of
 * wnt tiles x a chunk of M's row panels) each
 *   1. transform their tiles' 4x4 inputs, V = B^T d B, straight into the NR-panel layout of the
 *      16 GEMMs' B operands: V [xi][tile panel][c][NR];
 *   2. per block of wmb rows: run the 16 GEMMs U_xi * V_xi with the packed micro-kernel
 *      (K = C blocked as in the packed mode) into Mb [xi][row][wnt];
 *   3. transform back, Y = A^T m A, add bias and residual, activate, store into y.
 * Every output element sees the same operations whatever the thread count: the row panel grid
 * and the K blocking depend on the shapes only, and each tile is transformed on its own. */

/* B^T d B for one tile, the scalar path; d row r at q + r * ld. Same operation order as the
 * AVX2 path, so the two agree bit for bit. */
static inline void wino_in1(const float *q, ptrdiff_t ld, float v[16]) {
    float w[4][4];
    for (int r = 0; r < 4; r++) {
        const float *s = q + r * ld;
        w[r][0] = s[0] - s[2];
        w[r][1] = s[1] + s[2];
        w[r][2] = s[2] - s[1];
        w[r][3] = s[1] - s[3];
    }
    for (int j = 0; j < 4; j++) {
        v[0 + j] = w[0][j] - w[2][j];
        v[4 + j] = w[1][j] + w[2][j];
        v[8 + j] = w[2][j] - w[1][j];
        v[12 + j] = w[1][j] - w[3][j];
    }
}

/* A^T m A: m[xi] -> y[dy * 2 + dx] */
static inline void wino_out1(const float m[16], float y[4]) {
    float s[4][2];
    for (int a = 0; a < 4; a++) {
        s[a][0] = (m[4 * a] + m[4 * a + 1]) + m[4 * a + 2];
        s[a][1] = (m[4 * a + 1] - m[4 * a + 2]) - m[4 * a + 3];
    }
    for (int j = 0; j < 2; j++) {
        y[j] = (s[0][j] + s[1][j]) + s[2][j];
        y[2 + j] = (s[1][j] - s[2][j]) - s[3][j];
    }
}

#ifdef CG_X86
/* Even and odd columns of 16 floats a:b, without a cross-lane fix-up: lane l holds column pair
 * WPERM[l] = (0, 1, 4, 5, 2, 3, 6, 7)[l]. Whole 8-tile groups keep that lane order through V,
 * the GEMMs and Mb (the GEMMs treat lanes alike); the output transform's interleave then comes
 * out in order. Partial groups are stored in natural order. */
TGT static inline __m256 deint_even(__m256 a, __m256 b) { return _mm256_shuffle_ps(a, b, 0x88); }
TGT static inline __m256 deint_odd(__m256 a, __m256 b) { return _mm256_shuffle_ps(a, b, 0xDD); }
static const int WPERM[8] = {0, 1, 4, 5, 2, 3, 6, 7}; /* self-inverse */

/* B^T d B for 8 horizontally consecutive tiles (lane l: tile WPERM[l], at column q + 2 WPERM[l]). */
TGT static inline void wino_in8(const float *q, ptrdiff_t ld, __m256 v[16]) {
    __m256 w[4][4];
    for (int r = 0; r < 4; r++) {
        const float *s = q + r * ld;
        __m256 a = _mm256_loadu_ps(s), b = _mm256_loadu_ps(s + 8);
        __m256 a2 = _mm256_loadu_ps(s + 2), b2 = _mm256_loadu_ps(s + 10);
        __m256 d0 = deint_even(a, b), d1 = deint_odd(a, b);
        __m256 d2 = deint_even(a2, b2), d3 = deint_odd(a2, b2);
        w[r][0] = _mm256_sub_ps(d0, d2);
        w[r][1] = _mm256_add_ps(d1, d2);
        w[r][2] = _mm256_sub_ps(d2, d1);
        w[r][3] = _mm256_sub_ps(d1, d3);
    }
    for (int j = 0; j < 4; j++) {
        v[0 + j] = _mm256_sub_ps(w[0][j], w[2][j]);
        v[4 + j] = _mm256_add_ps(w[1][j], w[2][j]);
        v[8 + j] = _mm256_sub_ps(w[2][j], w[1][j]);
        v[12 + j] = _mm256_sub_ps(w[1][j], w[3][j]);
    }
}

/* 8 lanes into V at tile lane j of channel c (the lanes may straddle two NR panels) */
TGT static inline void wino_put8(float *Vx, int C, int c, int j, __m256 v) {
    const int pn = j / NR, off = j % NR;
    float *d = Vx + ((size_t)pn * C + c) * NR + off;
    if (off <= NR - 8) {
        _mm256_storeu_ps(d, v);
    } else {
        float t[8];
        const int n1 = NR - off;
        float *d2 = Vx + ((size_t)(pn + 1) * C + c) * NR;
        _mm256_storeu_ps(t, v);
        for (int i = 0; i < n1; i++) d[i] = t[i];
        for (int i = n1; i < 8; i++) d2[i - n1] = t[i];
    }
}

/* k <= 8 tiles from lane j on; the lanes past k read (and drop) whatever lies beyond. */
TGT static void wino_in8_store(const float *q, ptrdiff_t ld, float *V, size_t vs, int C, int c,
                               int j, int k) {
    __m256 v[16];
    wino_in8(q, ld, v);
    if (k == 8) {
        for (int xi = 0; xi < 16; xi++) wino_put8(V + xi * vs, C, c, j, v[xi]);
        return;
    }
    float t[8];
    for (int xi = 0; xi < 16; xi++) {
        _mm256_storeu_ps(t, v[xi]);
        for (int l = 0; l < k; l++)
            V[xi * vs + ((size_t)((j + l) / NR) * C + c) * NR + (j + l) % NR] = t[WPERM[l]];
    }
}

/* A^T m A for 8 consecutive complete tiles of one row of M (lanes at s, xi stride xs), the
 * epilogue, and the 2 x 16 outputs stored at y + off0 (and y + off0 + OW). */
TGT static void wino_out8(const float *s, size_t xs, float *y, const float *res, size_t off0,
                          ptrdiff_t OW, int hasbias, float b, const ep_t *ep, int nrows,
                          int ncols, int perm) {
    __m256 mm[16], sa[4][2], o[2][2];
    for (int xi = 0; xi < 16; xi++) mm[xi] = _mm256_loadu_ps(s + xi * xs);
    for (int a = 0; a < 4; a++) {
        sa[a][0] = _mm256_add_ps(_mm256_add_ps(mm[4 * a], mm[4 * a + 1]), mm[4 * a + 2]);
        sa[a][1] = _mm256_sub_ps(_mm256_sub_ps(mm[4 * a + 1], mm[4 * a + 2]), mm[4 * a + 3]);
    }
    for (int j = 0; j < 2; j++) {
        o[0][j] = _mm256_add_ps(_mm256_add_ps(sa[0][j], sa[1][j]), sa[2][j]);
        o[1][j] = _mm256_sub_ps(_mm256_sub_ps(sa[1][j], sa[2][j]), sa[3][j]);
    }
    for (int dy = 0; dy < 2; dy++) {
        __m256 lo = _mm256_unpacklo_ps(o[dy][0], o[dy][1]);
        __m256 hi = _mm256_unpackhi_ps(o[dy][0], o[dy][1]);
        __m256 r0 = lo, r1 = hi; /* lanes in WPERM order: the interleave is in order */
        if (!perm) { /* natural lane order */
            r0 = _mm256_permute2f128_ps(lo, hi, 0x20);
            r1 = _mm256_permute2f128_ps(lo, hi, 0x31);
        }
        size_t off = off0 + (size_t)dy * OW;
        if (nrows < 2 || ncols < 16 || ep->act == CG_ACT_SIGMOID) {
            /* partial: the outputs inside the plane, scalar epilogue */
            float t[16];
            if (dy >= nrows) break;
            _mm256_storeu_ps(t, r0);
            _mm256_storeu_ps(t + 8, r1);
            for (int l = 0; l < ncols; l++) {
                float v = t[l];
                if (hasbias) v += b;
                if (res) v += res[off + l];
                y[off + l] = act_scalar(v, ep->act, ep->alpha, ep->beta);
            }
            continue;
        }
        if (hasbias) {
            __m256 bb = _mm256_set1_ps(b);
            r0 = _mm256_add_ps(r0, bb);
            r1 = _mm256_add_ps(r1, bb);
        }
        if (res) {
            r0 = _mm256_add_ps(r0, _mm256_loadu_ps(res + off));
            r1 = _mm256_add_ps(r1, _mm256_loadu_ps(res + off + 8));
        }
        if (ep->act) { r0 = act_vec(r0, ep); r1 = act_vec(r1, ep); }
        _mm256_storeu_ps(y + off, r0);
        _mm256_storeu_ps(y + off + 8, r1);
    }
}
#endif

typedef struct {
    const cg_conv_t *p;
    int OH, OW, TW, P, wnt, wmb;
    ptrdiff_t ld;        /* row stride of the padded planes */
    size_t vs, xs;       /* floats per xi in V and in Mb: one cache line over, so that the 16
                          * streams of a transform do not all map to the same L1 sets */
    size_t cs;           /* floats per padded plane */
    int avx2;
} wgeom_t;

/* Step 1: V for tiles [t0, t0 + nt) from the padded planes. */
static void wino_pack_v(const wgeom_t *g, const float *planes, int t0, int nt, float *V) {
    const int C = g->p->C, TW = g->TW;
    const size_t vs = g->vs;
    for (int c = 0; c < C; c++) {
        const float *pl = planes + (size_t)c * g->cs;
        for (int t = t0; t < t0 + nt;) {
            const int ty = t / TW, tx = t % TW, seg = imin(TW - tx, t0 + nt - t);
            const float *q = pl + (ptrdiff_t)2 * ty * g->ld + 2 * tx;
            int i = 0;
#ifdef CG_X86
            if (g->avx2)
                for (; i < seg; i += 8)
                    wino_in8_store(q + 2 * i, g->ld, V, vs, C, c, t - t0 + i, imin(8, seg - i));
#endif
            for (; i < seg; i++) {
                float v[16];
                const int j = t - t0 + i;
                wino_in1(q + 2 * i, g->ld, v);
                float *d = V + ((size_t)(j / NR) * C + c) * NR + j % NR;
                for (int xi = 0; xi < 16; xi++) d[xi * vs] = v[xi];
            }
            t += seg;
        }
    }
    if (nt % NR) /* lanes past nt of the last panel: zero, so no stale NaN or denormal is read */
        for (int xi = 0; xi < 16; xi++) {
            float *d = V + xi * vs + (size_t)(nt / NR) * C * NR;
            for (int c = 0; c < C; c++)
                memset(d + (size_t)c * NR + nt % NR, 0, sizeof(float) * (NR - nt % NR));
        }
}

static inline float wino_ep(const cg_conv_t *p, float v, float b, const float *res, size_t idx) {
    if (p->bias) v += b;
    if (res) v += res[idx];
    return act_scalar(v, p->act, p->alpha, p->beta);
}

/* Step 3: rows [m0, m1) of tiles [t0, t0 + nt) from Mb (row m at Mb + (m - m0) * wnt, xi stride
 * wmb * wnt) into y / res (the image's output planes). */
static void wino_out(const wgeom_t *g, const float *Mb, int t0, int nt, int m0, int m1,
                     float *y, const float *res) {
    const cg_conv_t *p = g->p;
    const int TW = g->TW, OH = g->OH, OW = g->OW;
    const size_t xs = g->xs, OHW = (size_t)OH * OW;
    for (int m = m0; m < m1; m++) {
        const float *mr = Mb + (size_t)(m - m0) * g->wnt;
        const float b = p->bias ? p->bias[m] : 0.f;
        float *ym = y + (size_t)m * OHW;
        const float *rm = res ? res + (size_t)m * OHW : NULL;
        for (int t = t0; t < t0 + nt;) {
            const int ty = t / TW, tx = t % TW, seg = imin(TW - tx, t0 + nt - t);
            const int oy = 2 * ty;
            int i = 0;
#ifdef CG_X86
            if (g->avx2) {
                ep_t ep = {0};
                ep.act = p->act; ep.alpha = p->alpha; ep.beta = p->beta;
                for (; i < seg; i += 8)
                    wino_out8(mr + (t - t0 + i), xs, ym, rm, (size_t)oy * OW + 2 * (tx + i), OW,
                              p->bias != NULL, b, &ep, imin(2, OH - oy),
                              imin(2 * imin(8, seg - i), OW - 2 * (tx + i)), seg - i >= 8);
            }
#endif
            for (; i < seg; i++) {
                float mm[16], o[4];
                const float *s = mr + (t - t0 + i);
                const int ox = 2 * (tx + i);
                for (int xi = 0; xi < 16; xi++) mm[xi] = s[xi * xs];
                wino_out1(mm, o);
                for (int dy = 0; dy < 2 && oy + dy < OH; dy++)
                    for (int dx = 0; dx < 2 && ox + dx < OW; dx++) {
                        size_t off = (size_t)(oy + dy) * OW + ox + dx;
                        ym[off] = wino_ep(p, o[dy * 2 + dx], b, rm, off);
                    }
            }
            t += seg;
        }
    }
}

typedef struct {
    wgeom_t g;
    const float *planes, *U, *res;
    float *y, *thr;
    size_t per;
    kern_fn kern;
    int next, units, nmc, cpan;
} wino_ctx;

/* Columns a GEMM call computes: whole panels, or 4 / 8 for a narrow last one (the kernel's
 * narrow variants); Mb and V have room for them, the lanes past nt are dropped. Rows are always
 * whole panels (U's rows past M are zero), so every call runs the 6-row kernel. */
static inline int wino_nr(int n) { return n <= 4 ? 4 : n <= 8 ? 8 : NR; }

static void wino_task(void *c, int tid, int nth) {
    wino_ctx *r = (wino_ctx *)c;
    const wgeom_t *g = &r->g;
    const cg_conv_t *p = g->p;
    const int C = p->C, M = p->M, wnt = g->wnt, wmb = g->wmb, kcb = p->wkc;
    const size_t us = wino_ufloats(p), vs = g->vs, xs = g->xs;
    float *V = r->thr + r->per * tid, *Mb = V + 16 * vs;
    ep_t ep = {0};
    memset(&ep, 0, sizeof ep);
    ep.last = 1;
    ep.act = CG_ACT_NONE;
    (void)nth;
    for (int u; (u = __atomic_fetch_add(&r->next, 1, __ATOMIC_RELAXED)) < r->units;) {
        const int tb = u / r->nmc, mc = u % r->nmc;
        const int t0 = tb * wnt, nt = imin(wnt, g->P - t0);
        const int m0 = mc * r->cpan * MR, m1 = imin(M, (mc + 1) * r->cpan * MR);
        if (m0 >= m1) continue;
        wino_pack_v(g, r->planes, t0, nt, V);
        for (int b0 = m0; b0 < m1; b0 += wmb) {
            const int b1 = imin(m1, b0 + wmb);
            for (int xi = 0; xi < 16; xi++)
                for (int pc = 0; pc < C; pc += kcb) {
                    const int kc = imin(kcb, C - pc);
                    ep.first = pc == 0;
                    for (int jr = 0; jr < nt; jr += NR) {
                        const float *B = V + xi * vs + (size_t)(jr / NR) * C * NR + (size_t)pc * NR;
                        for (int ir = b0; ir < b1; ir += MR) {
                            r->kern(kc, r->U + xi * us + wino_uoff(p, ir / MR, pc),
                                    B, Mb + xi * xs + (size_t)(ir - b0) * wnt + jr, wnt,
                                    MR, wino_nr(nt - jr), &ep);
                        }
                    }
                }
            wino_out(g, Mb, t0, nt, b0, b1, r->y, r->res);
        }
    }
}

static void wino_prep_task(void *c, int tid, int nth) {
    conv_ctx *r = (conv_ctx *)c;
    const cg_conv_t *p = r->p;
    const int H = r->g.H, W = r->g.W;
    int c0 = (int)((long)p->C * tid / nth), c1 = (int)((long)p->C * (tid + 1) / nth);
    for (int ch = c0; ch < c1; ch++)
        dw_fill_planes(p, r->x + ((size_t)r->n * p->C + ch) * H * W, H, W, r->L.Hp, r->L.PWs,
                       r->planes + (size_t)ch * r->L.cs);
}

static void wino_run(conv_ctx *r, int T) {
    const cg_conv_t *p = r->p;
    wino_ctx w;
    const size_t OHW = (size_t)r->g.OH * r->g.OW;
    w.g.p = p;
    w.g.OH = r->g.OH; w.g.OW = r->g.OW;
    w.g.TW = cdiv(r->g.OW, 2);
    w.g.P = cdiv(r->g.OH, 2) * w.g.TW;
    w.g.wnt = r->L.wnt; w.g.wmb = r->L.wmb;
    w.g.ld = r->L.PWs; w.g.cs = r->L.cs;
    w.g.vs = wino_vs(p, w.g.wnt); w.g.xs = wino_xs(w.g.wmb, w.g.wnt);
    w.g.avx2 = r->avx2;
    w.planes = r->planes = r->base;
    w.U = p->wpacked + (conv_base_floats(p) + 15) / 16 * 16;
    w.thr = r->thr;
    w.per = r->L.per;
    w.kern = r->kern;
    const int nblk = cdiv(w.g.P, w.g.wnt);
    /* few tile blocks for the threads: split M's row panels too (each unit then transforms
     * its tiles' input itself) */
    w.nmc = (T == 1 || nblk >= 4 * T) ? 1 : imin(p->mpanels, cdiv(4 * T, nblk));
    w.cpan = cdiv(p->mpanels, w.nmc);
    w.nmc = cdiv(p->mpanels, w.cpan);
    w.units = nblk * w.nmc;
    /* 8-tile groups at a row's end read up to 14 floats past the last plane: keep them finite */
    memset(r->planes + (size_t)p->C * r->L.cs, 0, sizeof(float) * 32);
    for (r->n = 0; r->n < r->N; r->n++) {
        cg_parallel(imin(T, p->C), wino_prep_task, r);
        w.y = r->y + (size_t)r->n * p->M * OHW;
        w.res = r->res ? r->res + (size_t)r->n * p->M * OHW : NULL;
        w.next = 0;
        cg_parallel(imin(T, w.units), wino_task, &w);
    }
}

void cg_conv_run(const cg_conv_t *p, const float *x, float *y, const float *res, int N, int H,
                 int W, void *scratch, int threads) {
    conv_ctx r;
    const int T = resolve_threads(threads);
    r.p = p;
    r.g.p = p; r.g.H = H; r.g.W = W; r.g.OH = conv_oh(p, H); r.g.OW = conv_ow(p, W);
    r.x = x; r.y = y; r.res = res; r.N = N;
    conv_layout(p, N, H, W, T, &r.L);
    r.base = align64(scratch);
    r.thr = r.base + r.L.shared;
    r.kern = pick_kernel();
    r.avx2 = cg_isa();
    const int OHW = r.g.OH * r.g.OW;
    if (r.L.wino) {
        wino_run(&r, T);
        return;
    }
    if (p->depthwise) {
        /* tap t = (ky, kx) reads phase (kx*dw) % sw at row ky*dh, column offset (kx*dw) / sw */
        const int Hp = H + p->pt + p->pb;
        const int PW = cdiv(r.g.OW, 8) * 8 + ((p->KW - 1) * p->dw) / p->sw + 8;
        r.koff = (ptrdiff_t *)r.base;
        for (int ky = 0, t = 0; ky < p->KH; ky++)
            for (int kx = 0; kx < p->KW; kx++, t++) {
                int q = kx * p->dw;
                r.koff[t] = ((ptrdiff_t)(q % p->sw) * Hp + (ptrdiff_t)ky * p->dh) * PW + q / p->sw;
            }
        r.whole = 0; /* here: blocks of 8 channels */
#ifdef CG_X86
        r.whole = dw_blocked(p);
#endif
        long items = (long)N * (r.whole ? p->M / 8 + p->M % 8 : p->M);
        r.items = items;
        r.chunk = (int)imax(1, (int)(items / (8L * T)));
        r.units = (int)((items + r.chunk - 1) / r.chunk);
        r.next = 0;
        cg_parallel(items < T ? (int)items : T, dw_task, &r);
        return;
    }
#ifdef CG_X86
    if (conv_direct(p, W)) {
        const int KHW = p->KH * p->KW;
        const int nt = r.g.OH * cdiv(r.g.OW, NR);
        r.koff = (ptrdiff_t *)r.base;
        r.planes = r.base + (2 * (size_t)p->K + 15) / 16 * 16;
        for (int k = 0; k < p->K; k++) {
            int ch = k / KHW, ky = (k % KHW) / p->KW, kx = k % p->KW, q = kx * p->dw;
            r.koff[k] = (ptrdiff_t)ch * r.L.cs +
                        ((ptrdiff_t)(q % p->sw) * r.L.Hp + (ptrdiff_t)ky * p->dh) * r.L.PWs +
                        q / p->sw;
        }
        /* zero slack past the last plane: the last tile's 16-wide loads may run into it */
        memset(r.planes + (size_t)p->C * r.L.cs, 0, sizeof(float) * 2 * NR);
        r.chunk = imax(1, imin(8, (40 * 1024) / (kc_block(p->K) * NR * 4)));
        r.units = p->group * cdiv(nt, r.chunk);
        for (r.n = 0; r.n < N; r.n++) {
            cg_parallel(imin(T, p->C), prep_task, &r);
            r.next = 0;
            cg_parallel(T, direct_task, &r);
        }
        return;
    }
#endif
    const int items = N * p->group;
    r.whole = packed_whole(p, N, T);
    r.bpf = r.L.per - (size_t)imin(NC_MAX, cdiv(OHW, NR) * NR) - 64; /* B panel floats */
    if (packed_rows(p, N, OHW, T)) {
        r.planes = r.base; /* the shared B */
        r.chunk = imax(1, p->mpanels / (4 * T));
        r.units = cdiv(p->mpanels, r.chunk);
        for (r.n = 0; r.n < items; r.n++) {
            cg_parallel(imin(T, cdiv(p->K, kc_block(p->K))), packB_task, &r);
            r.next = 0;
            cg_parallel(T, rows_task, &r);
        }
        return;
    }
    r.chunk = r.whole ? 1 : imax(1, cdiv(OHW, NR) / (4 * T));
    r.units = r.whole ? items : items * cdiv(cdiv(OHW, NR), r.chunk);
    r.next = 0;
    cg_parallel(T, conv_task, &r);
}

/* ---------------------------------------------------------------- max pooling
 * Per plane, separably: the input rows are split into their sw column phases (padded with -inf,
 * so that every tap reads contiguous memory, as the depthwise planes are), all rows first (a
 * row read right after its own stores would wait on store forwarding), then reduced along W
 * into rows of OW maxima, then OH output rows take the maximum of their kh rows. NaN
 * propagates (as numpy's maximum does). Max is exact: the split between threads cannot change
 * a bit. */

static int mp_owp(int OW) { return cdiv(OW, 8) * 8; }
static int mp_pw(const cg_pool_t *q, int OW) {
    return mp_owp(OW) + ((q->kw - 1) * q->dw) / q->sw + 8;
}
/* per thread: the phases of every row, then the rows reduced along W */
static size_t mp_thread_floats(const cg_pool_t *q, int H, int OW) {
    return ((size_t)H * q->sw * mp_pw(q, OW) + (size_t)H * mp_owp(OW) + 31) / 16 * 16;
}

static inline float max_nan(float a, float b) { return (b > a || b != b) ? b : a; }

/* the sw column phases of input row s (W floats): ph[k][j] = xpad[j * sw + k] */
static void mp_phases(const cg_pool_t *q, const float *s, int W, int PW, float *ph) {
    const float fill = -INFINITY;
#ifdef CG_X86
    if (q->sw == 2 && cg_isa()) {
        fill_row_s2_avx2(s, W, q->pl, PW, ph, ph + PW, fill);
        return;
    }
#endif
    for (int k = 0; k < q->sw; k++) {
        float *d = ph + (size_t)k * PW;
        for (int j = 0; j < PW; j++) {
            int ix = j * q->sw + k - q->pl;
            d[j] = ix >= 0 && ix < W ? s[ix] : fill;
        }
    }
}

#ifdef CG_X86
TGT static void mp_row_avx2(int kw, const ptrdiff_t *toff, const float *ph, int OWp, float *h) {
    for (int ox = 0; ox < OWp; ox += 8) {
        __m256 m = _mm256_loadu_ps(ph + toff[0] + ox);
        for (int kx = 1; kx < kw; kx++) m = vmax_nan(m, _mm256_loadu_ps(ph + toff[kx] + ox));
        _mm256_storeu_ps(h + ox, m);
    }
}

TGT static void mp_out_avx2(const float *const *rows, int nrows, int OW, float *y) {
    for (int ox = 0; ox < OW; ox += 8) {
        __m256 m = _mm256_set1_ps(-INFINITY);
        for (int r = 0; r < nrows; r++) m = vmax_nan(m, _mm256_loadu_ps(rows[r] + ox));
        if (ox + 8 <= OW) {
            _mm256_storeu_ps(y + ox, m);
        } else {
            float t[8];
            _mm256_storeu_ps(t, m);
            for (int i = 0; ox + i < OW; i++) y[ox + i] = t[i];
        }
    }
}
#endif

static void mp_plane(const cg_pool_t *q, const ptrdiff_t *toff, const float *x, float *y, int H,
                     int W, int OH, int OW, float *scratch, int avx2) {
    const int PW = mp_pw(q, OW), OWp = mp_owp(OW);
    const size_t phs = (size_t)q->sw * PW; /* floats of one row's phases */
    float *ph = scratch, *hrows = scratch + (size_t)H * phs;
    const float *rows[64];
    /* the rows some window reads */
    const int lo = imax(0, -q->pt);
    const int hi = imin(H - 1, (OH - 1) * q->sh - q->pt + (q->kh - 1) * q->dh);
    for (int iy = lo; iy <= hi; iy++) mp_phases(q, x + (size_t)iy * W, W, PW, ph + iy * phs);
    for (int iy = lo; iy <= hi; iy++) {
        const float *pr = ph + iy * phs;
        float *h = hrows + (size_t)iy * OWp;
#ifdef CG_X86
        if (avx2) { mp_row_avx2(q->kw, toff, pr, OWp, h); continue; }
#endif
        for (int ox = 0; ox < OW; ox++) {
            float m = pr[toff[0] + ox];
            for (int kx = 1; kx < q->kw; kx++) m = max_nan(m, pr[toff[kx] + ox]);
            h[ox] = m;
        }
    }
    for (int oy = 0; oy < OH; oy++) {
        int n = 0;
        for (int ky = 0; ky < q->kh; ky++) {
            int iy = oy * q->sh - q->pt + ky * q->dh;
            if (iy >= 0 && iy < H) rows[n++] = hrows + (size_t)iy * OWp;
        }
        float *yr = y + (size_t)oy * OW;
#ifdef CG_X86
        if (avx2) { mp_out_avx2(rows, n, OW, yr); continue; }
#endif
        for (int ox = 0; ox < OW; ox++) {
            float m = -INFINITY;
            for (int r = 0; r < n; r++) m = max_nan(m, rows[r][ox]);
            yr[ox] = m;
        }
    }
}

/* The window as a depthwise conv's geometry, for dw_block_avx2 (planes as channels). */
static void mp_as_conv(const cg_pool_t *q, int planes, cg_conv_t *pc) {
    memset(pc, 0, sizeof *pc);
    pc->C = pc->M = pc->group = planes;
    pc->Cg = pc->Mg = 1;
    pc->KH = q->kh; pc->KW = q->kw; pc->sh = q->sh; pc->sw = q->sw;
    pc->pt = q->pt; pc->pl = q->pl; pc->dh = q->dh; pc->dw = q->dw;
    pc->act = CG_ACT_NONE;
}

/* per thread: the per-plane path's scratch, or (AVX2) dw_block_avx2's */
static size_t mp_per(const cg_pool_t *q, int planes, int H, int W, int OW) {
    size_t per = mp_thread_floats(q, H, OW);
#ifdef CG_X86
    if (cg_isa()) {
        cg_conv_t pc;
        mp_as_conv(q, planes, &pc);
        per = (size_t)imax((int)per, (int)dwb_floats(&pc, W, OW));
    }
#endif
    return (per + 15) / 16 * 16;
}

size_t cg_maxpool_scratch_bytes(const cg_pool_t *q, int planes, int H, int W, int OW,
                                int threads) {
    /* the tap offsets, then each thread's part */
    return (64 + mp_per(q, planes, H, W, OW) * resolve_threads(threads)) * sizeof(float) + 64;
}

typedef struct {
    const cg_pool_t *q;
    cg_conv_t pc;
    const ptrdiff_t *toff;
    const float *x;
    float *y;
    float *scratch;
    size_t per;
    int planes, blocks, H, W, OH, OW, avx2;
} mp_ctx;

/* units: blocks of 8 planes (AVX2), then the planes past them one by one */
static void mp_task(void *c, int tid, int nth) {
    mp_ctx *r = (mp_ctx *)c;
    const int units = r->blocks + r->planes - 8 * r->blocks;
    const int u0 = (int)((long)units * tid / nth), u1 = (int)((long)units * (tid + 1) / nth);
    float *scratch = r->scratch + r->per * tid;
    for (int u = u0; u < u1; u++) {
#ifdef CG_X86
        if (u < r->blocks) {
            dw_block_avx2(&r->pc, r->x, r->y, NULL, 0, 8 * u, r->H, r->W, r->OH, r->OW, scratch,
                          1);
            continue;
        }
#endif
        const size_t i = (size_t)8 * r->blocks + (u - r->blocks);
        mp_plane(r->q, r->toff, r->x + i * r->H * r->W, r->y + i * r->OH * r->OW, r->H, r->W,
                 r->OH, r->OW, scratch, r->avx2);
    }
}

void cg_maxpool_run(const cg_pool_t *q, const float *x, float *y, int planes, int H, int W,
                    int OH, int OW, void *scratch, int threads) {
    mp_ctx r;
    const int T = resolve_threads(threads);
    ptrdiff_t *toff = (ptrdiff_t *)align64(scratch); /* tap kx: phase (kx dw) % sw, shifted */
    for (int kx = 0; kx < q->kw && kx < 32; kx++) {
        int c = kx * q->dw;
        toff[kx] = (ptrdiff_t)(c % q->sw) * mp_pw(q, OW) + c / q->sw;
    }
    r.q = q; r.toff = toff; r.x = x; r.y = y; r.scratch = (float *)toff + 64;
    r.planes = planes; r.H = H; r.W = W; r.OH = OH; r.OW = OW;
    r.avx2 = cg_isa();
    r.per = mp_per(q, planes, H, W, OW);
    mp_as_conv(q, planes, &r.pc);
    r.blocks = r.avx2 ? planes / 8 : 0;
    cg_parallel(imin(T, r.blocks + planes - 8 * r.blocks), mp_task, &r);
}

/* ---------------------------------------------------------------- dense */

size_t cg_dense_packed_floats(const cg_dense_t *p) {
    return (size_t)cdiv(p->M, NR) * NR * p->K;
}

void cg_dense_pack(const cg_dense_t *p, const float *w, float *dst) {
    const int K = p->K, np = cdiv(p->M, NR);
    for (int pn = 0; pn < np; pn++)
        for (int k = 0; k < K; k++)
            for (int j = 0; j < NR; j++) {
                int m = pn * NR + j;
                dst[((size_t)pn * K + k) * NR + j] = m < p->M ? w[(size_t)m * K + k] : 0.f;
            }
}

/* One panel of rows (batch <= 6) is a GEMV, bound by streaming W: no K blocking, so each
 * panel of W is read front to back in one go. */
static int dense_kcb(int K, int B) { return B <= MR ? K : kc_block(K); }

static size_t dense_thread_floats(const cg_dense_t *p, int B) {
    int mc = imin(cdiv(B, MR) * MR, DENSE_MC);
    return (size_t)mc * dense_kcb(p->K, B) + 32;
}

size_t cg_dense_scratch_bytes(const cg_dense_t *p, int B, int threads) {
    if (!p->wpacked) return 64; /* the streamed path keeps its sums on the stack */
    size_t per = (dense_thread_floats(p, B) + 15) / 16 * 16;
    return per * sizeof(float) * resolve_threads(threads) + 64;
}

typedef struct {
    const cg_dense_t *p;
    const float *x, *res;
    float *y, *base;
    size_t per;
    int B;
    kern_fn kern;
} dense_ctx;

static void dense_task(void *c, int tid, int nth) {
    dense_ctx *r = (dense_ctx *)c;
    const cg_dense_t *p = r->p;
    const int K = p->K, M = p->M, B = r->B, np = cdiv(M, NR), kcb = dense_kcb(K, B);
    const int mcmax = imin(cdiv(B, MR) * MR, DENSE_MC);
    const float *x = r->x;
    float *Ap = r->base + r->per * tid;
    int p0 = (int)((long)tid * np / nth), p1 = (int)((long)(tid + 1) * np / nth);
    ep_t ep = {0};
    ep.bias_row = NULL;
    ep.ldr = M;
    ep.act = p->act; ep.alpha = p->alpha; ep.beta = p->beta;
    for (int pc = 0; pc < K && p0 < p1; pc += kcb) {
        int kc = imin(kcb, K - pc);
        ep.first = pc == 0;
        ep.last = pc + kc == K;
        for (int ic = 0; ic < B; ic += mcmax) {
            int mc = imin(mcmax, B - ic);
            /* pack rows [ic, ic + mc) x [pc, pc + kc) of x into MR panels */
            for (int ip = 0; ip < cdiv(mc, MR); ip++)
                for (int kk = 0; kk < kc; kk++)
                    for (int q = 0; q < MR; q++) {
                        int row = ic + ip * MR + q;
                        Ap[((size_t)ip * kc + kk) * MR + q] =
                            row < ic + mc ? x[(size_t)row * K + pc + kk] : 0.f;
                    }
            for (int jp = p0; jp < p1; jp++) {
                int nr = imin(NR, M - jp * NR);
                const float *Bm = p->wpacked + ((size_t)jp * K + pc) * NR;
                for (int ip = 0; ip < cdiv(mc, MR); ip++) {
                    int row = ic + ip * MR, mr = imin(MR, ic + mc - row);
                    size_t off = (size_t)row * M + jp * NR;
                    ep.bias_col = p->bias ? p->bias + jp * NR : NULL;
                    ep.res = r->res ? r->res + off : NULL;
                    r->kern(kc, Ap + (size_t)ip * kc * MR, Bm, r->y + off, M, mr, nr, &ep);
                }
            }
        }
    }
}

/* ---- dense, weights as given: y[b, m] = dot(x[b], w[m]) read straight from w's rows. A
 * block of 4 rows of w is read once per K block (in L1) and used for every batch row. Each
 * output is summed by one thread in one order, so any thread count gives the same bits. */
#define ROWS_M 4      /* rows of w per block */
#define ROWS_KB 1024  /* K block: 4 rows x 4 KiB stay in L1 while the batch rows pass */
#define ROWS_B 16     /* batch rows summed per pass (the sums live on the stack) */

/* out[0..3] = x0 . w[0..3], out[4..7] = x1 . w[0..3] over k in [0, n) */
typedef void (*rows_dot_fn)(const float *x0, const float *x1, const float *const *w, int n,
                            float *out);

static void rows_dot_generic(const float *x0, const float *x1, const float *const *w, int n,
                             float *out) {
    for (int r = 0; r < ROWS_M; r++) {
        float s0 = 0.f, s1 = 0.f;
        for (int k = 0; k < n; k++) {
            s0 += x0[k] * w[r][k];
            s1 += x1[k] * w[r][k];
        }
        out[r] = s0;
        out[ROWS_M + r] = s1;
    }
}

#ifdef CG_X86
TGT static inline float hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

TGT static void rows_dot_avx2(const float *x0, const float *x1, const float *const *w, int n,
                              float *out) {
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0,
           b3 = a0, u, v, q;
    int k = 0;
    for (; k + 8 <= n; k += 8) {
        u = _mm256_loadu_ps(x0 + k);
        v = _mm256_loadu_ps(x1 + k);
        q = _mm256_loadu_ps(w[0] + k); a0 = _mm256_fmadd_ps(u, q, a0); b0 = _mm256_fmadd_ps(v, q, b0);
        q = _mm256_loadu_ps(w[1] + k); a1 = _mm256_fmadd_ps(u, q, a1); b1 = _mm256_fmadd_ps(v, q, b1);
        q = _mm256_loadu_ps(w[2] + k); a2 = _mm256_fmadd_ps(u, q, a2); b2 = _mm256_fmadd_ps(v, q, b2);
        q = _mm256_loadu_ps(w[3] + k); a3 = _mm256_fmadd_ps(u, q, a3); b3 = _mm256_fmadd_ps(v, q, b3);
    }
    out[0] = hsum8(a0); out[1] = hsum8(a1); out[2] = hsum8(a2); out[3] = hsum8(a3);
    out[4] = hsum8(b0); out[5] = hsum8(b1); out[6] = hsum8(b2); out[7] = hsum8(b3);
    for (; k < n; k++)
        for (int r = 0; r < ROWS_M; r++) {
            out[r] += x0[k] * w[r][k];
            out[ROWS_M + r] += x1[k] * w[r][k];
        }
}
#endif

typedef struct {
    const cg_dense_t *p;
    const float *x, *res;
    float *y;
    int B;
    rows_dot_fn dot;
} rows_ctx;

static void dense_rows_task(void *c, int tid, int nth) {
    const rows_ctx *r = (const rows_ctx *)c;
    const cg_dense_t *p = r->p;
    const int K = p->K, M = p->M, blocks = cdiv(M, ROWS_M);
    float acc[ROWS_B * ROWS_M], part[2 * ROWS_M];
    const float *w[ROWS_M];
    int q0 = (int)((long)tid * blocks / nth), q1 = (int)((long)(tid + 1) * blocks / nth);
    for (int q = q0; q < q1; q++) {
        int m0 = q * ROWS_M, nm = imin(ROWS_M, M - m0);
        for (int i = 0; i < ROWS_M; i++) /* a short block repeats its last row */
            w[i] = p->w + (size_t)(m0 + imin(i, nm - 1)) * K;
        for (int b0 = 0; b0 < r->B; b0 += ROWS_B) {
            int nb = imin(ROWS_B, r->B - b0);
            memset(acc, 0, sizeof acc);
            for (int k0 = 0; k0 < K; k0 += ROWS_KB) {
                const float *wk[ROWS_M];
                int n = imin(ROWS_KB, K - k0);
                for (int i = 0; i < ROWS_M; i++) wk[i] = w[i] + k0;
                for (int b = 0; b < nb; b += 2) {
                    const float *x0 = r->x + (size_t)(b0 + b) * K + k0;
                    const float *x1 = b + 1 < nb ? x0 + K : x0;
                    r->dot(x0, x1, wk, n, part);
                    for (int i = 0; i < ROWS_M; i++) {
                        acc[b * ROWS_M + i] += part[i];
                        if (b + 1 < nb) acc[(b + 1) * ROWS_M + i] += part[ROWS_M + i];
                    }
                }
            }
            ep_t ep = {0};
            ep.bias_col = p->bias ? p->bias + m0 : NULL;
            ep.res = r->res ? r->res + (size_t)b0 * M + m0 : NULL;
            ep.ldr = M;
            ep.first = ep.last = 1;
            ep.act = p->act; ep.alpha = p->alpha; ep.beta = p->beta;
            ep_scalar(acc, ROWS_M, r->y + (size_t)b0 * M + m0, M, nb, nm, &ep);
        }
    }
}

static void dense_rows_run(const cg_dense_t *p, const float *x, float *y, const float *res,
                           int B, int threads) {
    rows_ctx r;
    r.p = p; r.x = x; r.res = res; r.y = y; r.B = B;
    r.dot = rows_dot_generic;
#ifdef CG_X86
    if (cg_isa()) r.dot = rows_dot_avx2;
#endif
    int T = resolve_threads(threads), blocks = cdiv(p->M, ROWS_M);
    cg_parallel(blocks < T ? blocks : T, dense_rows_task, &r);
}

void cg_dense_run(const cg_dense_t *p, const float *x, float *y, const float *res, int B,
                  void *scratch, int threads) {
    if (!p->wpacked) {
        dense_rows_run(p, x, y, res, B, threads);
        return;
    }
    dense_ctx r;
    r.p = p; r.x = x; r.res = res; r.y = y; r.B = B;
    r.per = (dense_thread_floats(p, B) + 15) / 16 * 16;
    r.base = align64(scratch);
    r.kern = pick_kernel();
    int T = resolve_threads(threads), np = cdiv(p->M, NR);
    cg_parallel(np < T ? np : T, dense_task, &r);
}

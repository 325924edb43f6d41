/* Native float32 convolution and dense (GEMM) kernels for cnngraph.
 *
 * Conv: NCHW input, (M, C/group, KH, KW) weight, NCHW output, any group, stride, dilation
 * and asymmetric padding. Grouped and ordinary convs run as packed SGEMMs per (image, group)
 * (weights = A, prepacked once; im2col fused into the packing of B), or, for spatial kernels
 * of moderate K on AVX2, read B in place from a padded copy of the input; convs with one input
 * channel per group (depthwise, with any channel multiplier) run a direct kernel. 3x3 stride-1
 * convs with enough channels and output tiles run Winograd F(2x2, 3x3) (16 GEMMs on the same
 * micro-kernels; cg_set_winograd forces or disables it).
 * Dense: y = act(x @ W^T + b), W (M, K) as in ONNX Gemm with transB=1, prepacked once.
 *
 * Epilogue order (what a fused Relu(Add(Conv(x) + b, r)) means):
 *     out = act(conv + bias + residual)
 * The residual may be the very memory of the output (in place): every output element is read
 * from the residual before it is first written, by the thread that writes it.
 *
 * Every entry point trusts its arguments; csrc/conv.pyx validates them.
 * The AVX2/FMA code is compiled with target attributes and chosen at run time, so the build
 * needs no -mavx2 and the portable path runs on any CPU.
 */
#ifndef CNNGRAPH_CONV_KERNELS_H
#define CNNGRAPH_CONV_KERNELS_H

#include <stddef.h>

enum {
    CG_ACT_NONE = 0,
    CG_ACT_RELU = 1,
    CG_ACT_LEAKY = 2,       /* v > 0 ? v : alpha * v */
    CG_ACT_CLIP = 3,        /* min(max(v, alpha), beta) */
    CG_ACT_SIGMOID = 4,
    CG_ACT_HARDSIGMOID = 5, /* max(0, min(1, alpha * v + beta)) */
    CG_ACT_HARDSWISH = 6    /* v * max(0, min(1, v / 6 + 1 / 2)) */
};

typedef struct {
    int C, M, KH, KW, group;
    int sh, sw, pt, pl, pb, pr, dh, dw;
    int act;
    float alpha, beta;
    /* derived by cg_conv_init */
    int Cg, Mg, K;      /* per group: input channels, output channels, Cg*KH*KW */
    int mpanels;        /* per group, panels of CG_MR output channels */
    int depthwise;      /* Cg == 1: direct kernel */
    const float *wpacked; /* set by the caller to the buffer cg_conv_pack filled */
    const float *bias;    /* M floats or NULL */
    int wino;           /* Winograd F(2x2,3x3) weights packed too: 0 no, 1 auto (used where
                         * measured faster), 2 forced (used for every input, and then the
                         * only weights packed) */
    int wkc;            /* Winograd: K (= C) block of the packed U, fixed at packing */
} cg_conv_t;

typedef struct {
    int K, M;
    int act;
    float alpha, beta;
    const float *wpacked; /* the buffer cg_dense_pack filled, or NULL: */
    const float *w;       /* the (M, K) weights as given, streamed row by row (no packed copy:
                           * for small batches, where reading the weights bounds the time) */
    const float *bias;    /* M floats or NULL */
} cg_dense_t;

void cg_conv_init(cg_conv_t *p);
size_t cg_conv_packed_floats(const cg_conv_t *p);
void cg_conv_pack(const cg_conv_t *p, const float *w, float *dst);
size_t cg_conv_scratch_bytes(const cg_conv_t *p, int N, int H, int W, int threads);
void cg_conv_run(const cg_conv_t *p, const float *x, float *y, const float *res,
                 int N, int H, int W, void *scratch, int threads);

size_t cg_dense_packed_floats(const cg_dense_t *p);
void cg_dense_pack(const cg_dense_t *p, const float *w, float *dst);
size_t cg_dense_scratch_bytes(const cg_dense_t *p, int B, int threads);
void cg_dense_run(const cg_dense_t *p, const float *x, float *y, const float *res,
                  int B, void *scratch, int threads);

/* Max pooling, float32 NCHW, over `planes` = N * C planes of H x W into OH x OW (the caller
 * derives OH, OW: ceil mode and end pads only change them); windows kh x kw, strides, pads at
 * the top and left, dilations. Padding counts as -inf; kh <= 64, kw <= 32. */
typedef struct {
    int kh, kw, sh, sw, pt, pl, dh, dw;
} cg_pool_t;

size_t cg_maxpool_scratch_bytes(const cg_pool_t *q, int planes, int H, int W, int OW,
                                int threads);
void cg_maxpool_run(const cg_pool_t *q, const float *x, float *y, int planes, int H, int W,
                    int OH, int OW, void *scratch, int threads);

int cg_isa(void);            /* 1: AVX2/FMA kernels in use, 0: portable C */
int cg_set_isa(int want);    /* returns the ISA now in use (AVX2 only if the CPU has it) */
int cg_num_procs(void);
/* Winograd F(2x2,3x3) for 3x3 stride-1 dilation-1 group-1 convs: -1 auto (default), 0 off,
 * 1 on wherever eligible; read by cg_conv_init. Returns the mode now set. */
int cg_set_winograd(int mode);
int cg_conv_uses_winograd(const cg_conv_t *p, int H, int W);
void cg_set_wino_blocking(int vfloats, int mb); /* <= 0 keeps a value */
void cg_set_blocking(int kc, int mc, int nc, int dk); /* <= 0 (dk < 0) keeps a value */
double cg_fma_loop(long iters, int threads); /* returns flops done (time it outside) */

#endif

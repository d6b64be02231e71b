/*
 * Compiled CfC step for the liquidnode runtime (float32, one sample, no allocation).
 *
 * Same arithmetic as ncps 1.0.1 ``CfCCell.forward`` (torch), followed by the optional
 * ``proj_size`` readout of ``ncps.torch.CfC``. Loaded through ctypes by
 * ``controller/cells/kernel.py``, which packs the weights; the numpy cell is the fallback.
 *
 * dims (int32[8]):
 *   0 n_in        input features
 *   1 hidden      hidden units H
 *   2 layers      backbone layers L (0 = none)
 *   3 bb_units    backbone units U (ignored when L == 0)
 *   4 mode        0 default, 1 pure, 2 no_gate
 *   5 activation  0 lecun_tanh, 1 tanh, 2 relu, 3 silu, 4 gelu (erf)
 *   6 proj        readout size P (0 = none)
 *   7 reserved
 *
 * params (float32, packed in this order; every matrix TRANSPOSED: in_features rows of
 * out_features, so that the inner loop runs over outputs and vectorises without reordering
 * each output's sum, which stays the plain sum over inputs in input order):
 *   backbone layer l: Wt (in_l x U), b (U)            in_0 = n_in + H, in_l = U
 *   heads, C = U if L > 0 else n_in + H:
 *     default/no_gate: Wt (C x 4H) with columns [ff1 | ff2 | time_a | time_b], b (4H)
 *     pure:            Wt (C x H) of ff1, b (H), w_tau (H), A (H)
 *   readout (P > 0): Wt (H x P), b (P)
 *
 * scratch (float32): [x (n_in) | h (H)] followed by room for max(U, 4H) * 2 floats.
 *   The caller writes x and h into the first n_in + H floats before each call.
 * out (float32): new hidden state (H), then the readout (P) when P > 0.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

/* Bias first, then inputs in order: torch's addmv accumulates the products and adds the
 * bias last; float addition is not associative, so do it the same way. */
static void linear_t(const float *Wt, const float *b, const float *x, int n_in, int rows,
                     float *y) {
    memset(y, 0, (size_t)rows * sizeof(float));
    for (int i = 0; i < n_in; ++i) {
        const float xi = x[i];
        const float *w = Wt + (size_t)i * rows;
        for (int r = 0; r < rows; ++r) y[r] += xi * w[r];
    }
    for (int r = 0; r < rows; ++r) y[r] += b[r];
}

static float activate(float v, int kind) {
    switch (kind) {
    case 0: return 1.7159f * tanhf(0.666f * v);
    case 1: return tanhf(v);
    case 2: return v > 0.0f ? v : 0.0f;
    case 3: return v / (1.0f + expf(-v));
    default: return 0.5f * v * (1.0f + erff(v * 0.70710678118654752f));
    }
}

static float sigmoidf(float v) { return 1.0f / (1.0f + expf(-v)); }

int lnk_cfc_step(const int32_t *dims, const float *params, float *scratch, float ts,
                 float *out) {
    const int n_in = dims[0], H = dims[1], L = dims[2], U = dims[3];
    const int mode = dims[4], act = dims[5], P = dims[6];
    const int cat = n_in + H;
    const int room = (U > 4 * H ? U : 4 * H);
    float *a = scratch + cat;        /* current layer input/output */
    float *t = a + room;             /* second buffer */
    const float *p = params;
    const float *x = scratch;
    int width = cat;

    for (int l = 0; l < L; ++l) {
        const float *Wt = p;
        p += (size_t)width * U;
        const float *b = p;
        p += U;
        linear_t(Wt, b, x, width, U, t);
        for (int r = 0; r < U; ++r) t[r] = activate(t[r], act);
        float *swap = a;
        a = t;
        t = swap;
        x = a;
        width = U;
    }
    if (mode == 1) {
        const float *Wt = p;
        p += (size_t)width * H;
        const float *b = p;
        p += H;
        const float *w_tau = p;
        p += H;
        const float *A = p;
        p += H;
        linear_t(Wt, b, x, width, H, t);
        for (int j = 0; j < H; ++j) {
            const float f = t[j];
            out[j] = -A[j] * expf(-ts * (fabsf(w_tau[j]) + fabsf(f))) * f + A[j];
        }
    } else {
        const float *Wt = p;
        p += (size_t)width * 4 * H;
        const float *b = p;
        p += 4 * H;
        linear_t(Wt, b, x, width, 4 * H, t);
        for (int j = 0; j < H; ++j) {
            const float f1 = tanhf(t[j]);
            const float f2 = tanhf(t[H + j]);
            const float ti = sigmoidf(t[2 * H + j] * ts + t[3 * H + j]);
            out[j] = (mode == 2) ? f1 + ti * f2 : f1 * (1.0f - ti) + ti * f2;
        }
    }
    if (P > 0) {
        const float *Wt = p;
        p += (size_t)H * P;
        const float *b = p;
        linear_t(Wt, b, out, H, P, out + H);
    }
    return 0;
}

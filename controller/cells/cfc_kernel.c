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

/* y = Wt^T x + b. Bias last and each output's products summed in input order, as a plain dot
 * product does (torch adds the bias last too); four inputs per pass over y keep the same order
 * of additions while touching y a quarter as often. Inner loops run over outputs: they
 * vectorise without reordering any sum. */
static void linear_t(const float *restrict Wt, const float *restrict b,
                     const float *restrict x, int n_in, int rows, float *restrict y) {
    memset(y, 0, (size_t)rows * sizeof(float));
    int i = 0;
    for (; i + 4 <= n_in; i += 4) {
        const float x0 = x[i], x1 = x[i + 1], x2 = x[i + 2], x3 = x[i + 3];
        const float *w0 = Wt + (size_t)i * rows;
        const float *w1 = w0 + rows, *w2 = w1 + rows, *w3 = w2 + rows;
        for (int r = 0; r < rows; ++r) {
            float acc = y[r] + x0 * w0[r];
            acc += x1 * w1[r];
            acc += x2 * w2[r];
            y[r] = acc + x3 * w3[r];
        }
    }
    for (; i < n_in; ++i) {
        const float xi = x[i];
        const float *w = Wt + (size_t)i * rows;
        for (int r = 0; r < rows; ++r) y[r] += xi * w[r];
    }
    for (int r = 0; r < rows; ++r) y[r] += b[r];
}

/* exp(v) for float32 in the Cephes way (range reduction by ln 2, degree-6 polynomial, exponent
 * built from bits): within 2 ulp of expf, branch-free so loops over it vectorise. */
static inline float exp_f(float v) {
    v = v > 88.0f ? 88.0f : (v < -87.0f ? -87.0f : v);
    const float n = (v * 1.44269504088896341f + 12582912.0f) - 12582912.0f; /* round */
    const float r = (v - n * 0.693359375f) + n * 2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    union { int32_t i; float f; } scale;
    scale.i = ((int32_t)n + 127) << 23;
    return p * scale.f;
}

/* tanh(v) = sign(v) (1 - 2 / (exp(2|v|) + 1)); absolute error below 2e-7. */
static inline float tanh_f(float v) {
    const float a = v < 0.0f ? -v : v;
    const float t = 1.0f - 2.0f / (exp_f(2.0f * a) + 1.0f);
    return v < 0.0f ? -t : t;
}

static inline float sigmoid_f(float v) { return 1.0f / (1.0f + exp_f(-v)); }

static void activate(float *restrict y, int n, int kind) {
    switch (kind) {
    case 0:
        for (int i = 0; i < n; ++i) y[i] = 1.7159f * tanh_f(0.666f * y[i]);
        break;
    case 1:
        for (int i = 0; i < n; ++i) y[i] = tanh_f(y[i]);
        break;
    case 2:
        for (int i = 0; i < n; ++i) y[i] = y[i] > 0.0f ? y[i] : 0.0f;
        break;
    case 3:
        for (int i = 0; i < n; ++i) y[i] = y[i] / (1.0f + expf(-y[i]));
        break;
    default:
        for (int i = 0; i < n; ++i) y[i] = 0.5f * y[i] * (1.0f + erff(y[i] * 0.70710678118654752f));
    }
}

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
        activate(t, U, act);
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
            const float f1 = tanh_f(t[j]);
            const float f2 = tanh_f(t[H + j]);
            const float ti = sigmoid_f(t[2 * H + j] * ts + t[3 * H + j]);
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

/*
 * LTC step (ncps 1.0.1 ``LTCCell.forward``, semi-implicit Euler unfolds), same arithmetic as
 * the numpy cell in ``ltc.py`` (softplus and masks already folded into the weights).
 *
 * dims (int32[4]): 0 inputs S, 1 neurons N, 2 outputs M, 3 ode_unfolds.
 * params (float32): in_w (S), in_b (S), sensory mu, sigma, w*erev, w (each S x N, row = source),
 *   mu, sigma, w*erev, w (each N x N, row = source), cm (N), gleak (N), gleak*vleak (N),
 *   out_w (M), out_b (M), epsilon (1).
 * scratch (float32): [x (S) | v (N)] then room for 6 N floats; the caller writes x and v.
 * out (float32): new state v' (N), then the output y (M).
 */
int lnk_ltc_step(const int32_t *dims, const float *params, float *scratch, float ts,
                 float *out) {
    const int S = dims[0], N = dims[1], M = dims[2], unfolds = dims[3];
    const float *in_w = params, *in_b = in_w + S;
    const float *s_mu = in_b + S, *s_sigma = s_mu + S * N, *s_we = s_sigma + S * N;
    const float *s_w = s_we + S * N;
    const float *mu = s_w + S * N, *sigma = mu + N * N, *we = sigma + N * N, *w = we + N * N;
    const float *cm = w + N * N, *gleak = cm + N, *gl_vl = gleak + N;
    const float *out_w = gl_vl + N, *out_b = out_w + M;
    const float eps = out_b[M];
    const float *x = scratch;
    float *v = out;
    float *num_c = scratch + S + N, *den_c = num_c + N, *cmt = den_c + N;
    float *num = cmt + N, *den = num + N;

    for (int j = 0; j < N; ++j) {
        num[j] = 0.0f;
        den[j] = 0.0f;
    }
    for (int i = 0; i < S; ++i) {
        const float xi = x[i] * in_w[i] + in_b[i];
        const float *m = s_mu + i * N, *sg = s_sigma + i * N;
        const float *a = s_we + i * N, *b = s_w + i * N;
        for (int j = 0; j < N; ++j) {
            const float s = 1.0f / (1.0f + exp_f(-((xi - m[j]) * sg[j])));
            num[j] += s * a[j];
            den[j] += s * b[j];
        }
    }
    const float step = ts / (float)unfolds;
    for (int j = 0; j < N; ++j) {
        cmt[j] = cm[j] / step;
        num_c[j] = gl_vl[j] + num[j];
        den_c[j] = ((cmt[j] + gleak[j]) + den[j]) + eps;
        v[j] = scratch[S + j];
    }
    for (int k = 0; k < unfolds; ++k) {
        for (int j = 0; j < N; ++j) {
            num[j] = 0.0f;
            den[j] = 0.0f;
        }
        for (int i = 0; i < N; ++i) {
            const float vi = v[i];
            const float *m = mu + i * N, *sg = sigma + i * N, *a = we + i * N, *b = w + i * N;
            for (int j = 0; j < N; ++j) {
                const float s = 1.0f / (1.0f + exp_f(-((vi - m[j]) * sg[j])));
                num[j] += s * a[j];
                den[j] += s * b[j];
            }
        }
        for (int j = 0; j < N; ++j) v[j] = ((cmt[j] * v[j] + num_c[j]) + num[j]) / (den_c[j] + den[j]);
    }
    for (int j = 0; j < M; ++j) out[N + j] = v[j] * out_w[j] + out_b[j];
    return 0;
}

/*
 * Wired CfC step (ncps' ``WiredCfCCell``: one CfC cell per NCP layer, masks folded into each
 * layer's weights, no backbone): the layers run in order, each on the previous layer's new
 * state, each as lnk_cfc_step above.
 *
 * dims (int32): 0 layers L, 1 state size (sum of the layers' units), 2 n_in, then per layer
 *   11 ints: the layer's 8 lnk_cfc_step dims, its params offset, its scratch offset and its
 *   state offset (where its units start in the state).
 * params (float32): the layers' packed params at their offsets.
 * scratch (float32): [x (n_in) | h (state)] then each layer's own lnk_cfc_step scratch.
 * out (float32): the new state (the layers' new states in order); the output y is the last
 *   layer's part of it.
 */
int lnk_wired_step(const int32_t *dims, const float *params, float *scratch, float ts,
                   float *out) {
    const int L = dims[0], n_in = dims[2];
    const float *h = scratch + n_in;
    const float *input = scratch;
    int width = n_in;
    for (int l = 0; l < L; ++l) {
        const int32_t *d = dims + 3 + 11 * l;
        const int units = d[1];
        float *s = scratch + d[9];
        memcpy(s, input, (size_t)width * sizeof(float));
        memcpy(s + width, h + d[10], (size_t)units * sizeof(float));
        lnk_cfc_step(d, params + d[8], s, ts, out + d[10]);
        input = out + d[10];
        width = units;
    }
    return 0;
}

/*
 * A whole ``Policy.step`` in one call (controller/policy.py): the observation mapping, the
 * cell step (lnk_cfc_step, lnk_ltc_step or lnk_wired_step, as above) and the action mapping,
 * with the same arithmetic as the numpy code in ``Policy.step``:
 *
 *   x[i]      = (float)((obs[i] - mean[i]) * inv_std[i])      float64, rounded once
 *   x[i]      = min(max(x[i], -clip), clip)                     float32 (clip rounded to float32)
 *   y, state  = cell(x, state, ts)
 *   action[j] = offset[j] + scale[j] * tanh((double)y[j])      float64, multiply then add
 *
 * io_dims (int32[6]): 0 cell (0 CfC, 1 LTC, 2 wired CfC), 1 obs_dim, 2 act_dim, 3 state_dim,
 *   4 y_offset (where y starts in the cell's out buffer), 5 flags: 1 normalise, 2 clip,
 *   4 tanh, 8 scale and offset.
 * io_params (float64): mean (obs_dim), inv_std (obs_dim), scale (act_dim), offset (act_dim),
 *   clip (1).
 * io (float64): obs (obs_dim, written by the caller), then action (act_dim, written here).
 * dims, params, scratch, out: as for the cell's own step. The state is read from scratch
 *   (after x) and the new state copied back there, so consecutive calls carry it.
 */
int lnk_policy_step(const int32_t *io_dims, const double *io_params, double *io,
                    const int32_t *dims, const float *params, float *scratch, float ts,
                    float *out) {
    const int kind = io_dims[0], n_obs = io_dims[1], n_act = io_dims[2], n_state = io_dims[3];
    const int flags = io_dims[5];
    const double *mean = io_params, *inv_std = mean + n_obs;
    const double *scale = inv_std + n_obs, *offset = scale + n_act;
    const float clip = (float)offset[n_act];
    const double *obs = io;
    double *action = io + n_obs;
    for (int i = 0; i < n_obs; ++i) {
        float v = (flags & 1) ? (float)((obs[i] - mean[i]) * inv_std[i]) : (float)obs[i];
        if (flags & 2) {
            v = v > clip ? clip : v;
            v = v < -clip ? -clip : v;
        }
        scratch[i] = v;
    }
    const int rc = kind == 0   ? lnk_cfc_step(dims, params, scratch, ts, out)
                   : kind == 1 ? lnk_ltc_step(dims, params, scratch, ts, out)
                               : lnk_wired_step(dims, params, scratch, ts, out);
    const float *y = out + io_dims[4];
    for (int j = 0; j < n_act; ++j) {
        double a = (flags & 4) ? tanh((double)y[j]) : (double)y[j];
        if (flags & 8) {
            a = a * scale[j];
            a = a + offset[j];
        }
        action[j] = a;
    }
    memcpy(scratch + n_obs, out, (size_t)n_state * sizeof(float));
    return rc;
}

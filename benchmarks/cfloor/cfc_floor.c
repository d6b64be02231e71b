/*
 * The floor: a plain C CfC step (ncps "default" mode, lecun_tanh backbone, linear readout),
 * written the obvious way with sizes fixed at compile time. The benchmark compiles it with
 * ``cc -O2 -DN_IN=.. -DH=.. -DU=.. -DP=..`` and calls it through ctypes, once per tick, like
 * the runtime; ``floor_run`` also times a loop of steps inside C (no Python at all).
 *
 * params (float32, torch Linear layout: weight (out, in) row-major, then bias):
 *   backbone (U, N_IN + H), (U); ff1, ff2, time_a, time_b each (H, U), (H); fc (P, H), (P).
 */
#define _POSIX_C_SOURCE 199309L
#include <math.h>
#include <string.h>
#include <time.h>

#ifndef N_IN
#define N_IN 17
#endif
#ifndef H
#define H 64
#endif
#ifndef U
#define U 128
#endif
#ifndef P
#define P 6
#endif

static void dense(const float *w, const float *b, const float *x, int n_in, int n_out,
                  float *y) {
    for (int o = 0; o < n_out; ++o) {
        float acc = 0.0f;
        for (int i = 0; i < n_in; ++i) acc += w[o * n_in + i] * x[i];
        y[o] = acc + b[o];
    }
}

/* One step: h (H) is updated in place, y (P) receives the readout. */
void floor_step(const float *params, const float *x, float *h, float ts, float *y) {
    float z[N_IN + H], bb[U], f1[H], f2[H], ta[H], tb[H];
    const float *p = params;
    memcpy(z, x, sizeof(float) * N_IN);
    memcpy(z + N_IN, h, sizeof(float) * H);
    dense(p, p + U * (N_IN + H), z, N_IN + H, U, bb);
    p += U * (N_IN + H) + U;
    for (int i = 0; i < U; ++i) bb[i] = 1.7159f * tanhf(0.666f * bb[i]);
    dense(p, p + H * U, bb, U, H, f1);
    p += H * U + H;
    dense(p, p + H * U, bb, U, H, f2);
    p += H * U + H;
    dense(p, p + H * U, bb, U, H, ta);
    p += H * U + H;
    dense(p, p + H * U, bb, U, H, tb);
    p += H * U + H;
    for (int j = 0; j < H; ++j) {
        float s = 1.0f / (1.0f + expf(-(ta[j] * ts + tb[j])));
        h[j] = tanhf(f1[j]) * (1.0f - s) + s * tanhf(f2[j]);
    }
    dense(p, p + P * H, h, H, P, y);
}

/* Run n steps on the same input; returns the elapsed wall time in nanoseconds. */
double floor_run(const float *params, const float *x, float *h, float ts, float *y, int n) {
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (int k = 0; k < n; ++k) floor_step(params, x, h, ts, y);
    clock_gettime(CLOCK_MONOTONIC, &b);
    return (double)(b.tv_sec - a.tv_sec) * 1e9 + (double)(b.tv_nsec - a.tv_nsec);
}

// tests/emu/test_emu_runtime.cpp: the CUDA emulation runtime (kernels/emu) checked value
// by value: barriers, shuffles, ballots, shared memory, atomics, grids, early exits, WMMA,
// half/bf16 rounding against kernels/tensor.c, and the misuse checks (each in a child
// process that must abort with the right message). Prints the emulation's speed on two
// 1M-element kernels (informational; tests never assert times).
//
// Run: test_emu_runtime            all checks
//      test_emu_runtime --death X  one misuse case (used by the test itself)
#include "port_features.cu"

#include <limits.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <string>
#include <vector>

#include "kernels/cuda_runtime_api.h"
#include "kernels/tensor.h"

static int g_checks, g_failed;
#define CHECK(cond, ...)                                                    \
    do {                                                                    \
        g_checks++;                                                         \
        if (!(cond)) {                                                      \
            g_failed++;                                                     \
            fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                   \
            fprintf(stderr, "\n");                                          \
        }                                                                   \
    } while (0)

// Device buffers: story_cuda_malloc is host memory (256-byte aligned) in the emulation.
template <typename T>
struct DevBuf {
    T *p;
    size_t n;
    explicit DevBuf(size_t count) : p((T *)story_cuda_malloc(count * sizeof(T))), n(count) {
        memset((void *)p, 0, count * sizeof(T));
    }
    ~DevBuf() { story_cuda_free(p); }
    DevBuf(const DevBuf &) = delete;
    DevBuf &operator=(const DevBuf &) = delete;
    T &operator[](size_t i) { return p[i]; }
};

static double now_s() {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

// Small integers as floats: every sum below is exact, whatever the order.
static float int_value(int i) { return (float)((i * 37) % 101 - 50); }

static void test_block_reduce() {
    const int cases[][3] = {{100000, 37, 256}, {50000, 5, 1024}, {3000, 9, 64}, {1024, 1, 1024}};
    for (const auto &cs : cases) {
        const int n = cs[0], blocks = cs[1], threads = cs[2];
        DevBuf<float> x(n), sums(blocks), total(1);
        for (int i = 0; i < n; i++) x[i] = int_value(i);
        pf_block_sum(x.p, sums.p, total.p, n, blocks, threads);
        double all = 0;
        int bad = 0;
        for (int b = 0; b < blocks; b++) {
            double s = 0;
            for (int t = 0; t < threads; t++)
                for (int i = b * threads + t; i < n; i += blocks * threads) s += x[i];
            bad += sums[b] != (float)s;
            all += s;
        }
        CHECK(bad == 0, "n=%d blocks=%d threads=%d: %d block sums wrong", n, blocks, threads, bad);
        CHECK(total[0] == (float)all, "n=%d threads=%d: total %g, expected %g", n, threads,
              total[0], all);
    }
}

static void test_warp_reduce() {
    const int n = 4096;
    DevBuf<float> x(n), ox(n), od(n / 32);
    for (int i = 0; i < n; i++) x[i] = int_value(i * 3 + 1);
    pf_warp_reduce(x.p, ox.p, od.p, n);
    int bad_xor = 0, bad_down = 0;
    for (int w = 0; w < n / 32; w++) {
        float s = 0;
        for (int l = 0; l < 32; l++) s += x[w * 32 + l];
        for (int l = 0; l < 32; l++) bad_xor += ox[w * 32 + l] != s;
        bad_down += od[w] != s;
    }
    CHECK(bad_xor == 0, "%d lanes with a wrong butterfly sum", bad_xor);
    CHECK(bad_down == 0, "%d warps with a wrong shift-down sum", bad_down);
}

static int round_half_even(float v) {
    const float fl = floorf(v), d = v - fl;
    if (d > 0.5f) return (int)fl + 1;
    if (d < 0.5f) return (int)fl;
    return ((long)fl % 2 == 0) ? (int)fl : (int)fl + 1;
}

static void test_shuffles() {
    DevBuf<int> in(64), out(64 * PF_SHFL_OUT);
    DevBuf<float> fin(64);
    for (int t = 0; t < 64; t++) {
        in[t] = 1000 + 7 * t;
        fin[t] = t * 0.25f - 3.0f;  // exact in half and bf16
    }
    pf_shfl(in.p, fin.p, out.p);
    unsigned ballot3 = 0;
    for (int l = 0; l < 32; l += 3) ballot3 |= 1u << l;
    int bad[PF_SHFL_OUT] = {0};
    for (int t = 0; t < 64; t++) {
        const int lane = t & 31, base = t - lane, seg16 = base + (lane & 16);
        const int *o = out.p + t * PF_SHFL_OUT;
        int e[PF_SHFL_OUT];
        e[0] = in[base + 5];
        e[1] = in[seg16 + 5];
        e[2] = in[base + 5];
        e[3] = (lane & 15) >= 3 ? in[t - 3] : in[t];
        e[4] = (lane & 15) + 3 < 16 ? in[t + 3] : in[t];
        e[5] = in[t ^ 1];
        e[6] = lane < 31 ? in[t + 1] : in[t];
        e[7] = lane > 0 ? in[t - 1] : in[t];
        e[8] = (int)ballot3;
        e[9] = 1;
        e[10] = 1;
        e[11] = 0;
        e[12] = in[base + (lane ^ 2)];
        e[13] = __float_as_int(fin[base + 31 - lane]);
        e[14] = __float_as_int(lane + 2 <= 31 ? fin[t + 2] : fin[t]);
        e[15] = (int)((double)fin[base + (lane ^ 4)] * 3.0 * 1000.0);
        e[16] = lane < 16 ? (int)0xaaaau : -1;
        e[17] = lane < 16 ? in[base + 15 - lane] : -1;
        e[18] = round_half_even(fin[base + (lane ^ 3)]);
        e[19] = 20 * 1000 + 10 + 1;  // count(lane < 10) over 64, and(all), or(t == 63)
        for (int k = 0; k < PF_SHFL_OUT; k++)
            if (o[k] != e[k]) {
                if (!bad[k])
                    fprintf(stderr,
                            "  shuffle output %d, thread %d: got %d (0x%x), expected %d (0x%x)\n",
                            k, t, o[k], o[k], e[k], e[k]);
                bad[k]++;
            }
    }
    for (int k = 0; k < PF_SHFL_OUT; k++)
        CHECK(bad[k] == 0, "shuffle output %d wrong on %d threads", k, bad[k]);
}

static void test_dynamic_smem() {
    const int n = 1000, threads = 128, blocks = (n + threads - 1) / threads;
    DevBuf<float> x(n), y(n);
    DevBuf<unsigned> first(blocks * threads);
    for (int i = 0; i < n; i++) x[i] = (float)i;
    pf_reverse(x.p, y.p, first.p, n, threads);
    int bad = 0, clean = 0;
    for (int j = 0; j < n; j++) {
        const int b = j / threads, t = threads - 1 - (j - b * threads), src = b * threads + t;
        bad += y[j] != (src < n ? x[src] : 0.0f);
    }
    for (int i = 0; i < blocks * threads; i++) clean += first[i] != 0xffffffffu;
    CHECK(bad == 0, "%d reversed elements wrong", bad);
    CHECK(clean == 0, "%d threads read dynamic shared memory that was not garbage-filled", clean);

    const int words = 16384;  // 64 KiB: above the default, allowed by the attribute
    DevBuf<float> out(1);
    CHECK(pf_big_smem(out.p, words) == 0, "launch with 64 KiB of dynamic shared memory failed");
    const double expect = 2.0 * words * (words - 1) / 2.0;
    CHECK(fabs(out[0] - expect) <= 1e-5 * expect, "64 KiB smem sum %g, expected %g", out[0],
          expect);
}

static void test_atomics() {
    const int blocks = 64, threads = 256, total = blocks * threads;
    DevBuf<PfCounters> c(1);
    c[0].imax = INT_MIN;
    c[0].imin = INT_MAX;
    c[0].exch = -1;
    pf_atomics(c.p, blocks, threads);
    int imax = INT_MIN;
    for (int g = 0; g < total; g++) imax = std::max(imax, (g * 7919) % 100003);
    CHECK(c[0].iadd == total, "atomicAdd(int): %d", c[0].iadd);
    CHECK(c[0].uadd == 2u * total, "atomicAdd(unsigned): %u", c[0].uadd);
    CHECK(c[0].ulladd == (unsigned long long)total * (total - 1) / 2, "atomicAdd(ull): %llu",
          c[0].ulladd);
    CHECK(c[0].fadd == 0.5f * total, "atomicAdd(float): %g", c[0].fadd);
    CHECK(c[0].imax == imax, "atomicMax: %d, expected %d", c[0].imax, imax);
    CHECK(c[0].imin == 1000 - (total - 1), "atomicMin: %d", c[0].imin);
    CHECK(c[0].cas == 3 * total, "atomicCAS loop: %d, expected %d", c[0].cas, 3 * total);
    CHECK(c[0].exch >= 0 && c[0].exch < total, "atomicExch left %d", c[0].exch);
}

static void test_grids() {
    const dim3 cases[][2] = {{dim3(3, 2, 2), dim3(4, 3, 2)},
                             {dim3(5, 3), dim3(8, 4)},
                             {dim3(7), dim3(33)},
                             {dim3(1, 1, 3), dim3(2, 2, 16)}};
    for (const auto &cs : cases) {
        const dim3 g = cs[0], b = cs[1];
        const int nb = g.x * g.y * g.z, nt = b.x * b.y * b.z;
        DevBuf<unsigned> out((size_t)nb * nt * 2);
        DevBuf<int> bad(1);
        for (size_t i = 0; i < out.n; i++) out[i] = 0xdeadbeefu;
        pf_grid_ids(out.p, bad.p, g, b);
        int wrong = 0;
        for (unsigned bz = 0; bz < g.z; bz++)
            for (unsigned by = 0; by < g.y; by++)
                for (unsigned bx = 0; bx < g.x; bx++)
                    for (unsigned tz = 0; tz < b.z; tz++)
                        for (unsigned ty = 0; ty < b.y; ty++)
                            for (unsigned tx = 0; tx < b.x; tx++) {
                                const unsigned bl = bx + g.x * (by + g.y * bz),
                                               tl = tx + b.x * (ty + b.y * tz);
                                const size_t k = ((size_t)bl * nt + tl) * 2;
                                wrong += out[k] != (bx | by << 10 | bz << 20);
                                wrong += out[k + 1] != (tx | ty << 10 | tz << 20);
                            }
        CHECK(wrong == 0 && bad[0] == 0,
              "grid (%u,%u,%u) block (%u,%u,%u): %d ids wrong, %d bad dims", g.x, g.y, g.z, b.x,
              b.y, b.z, wrong, bad[0]);
    }
}

static void test_early_exit() {
    const int actives[] = {100, 37, 256, 1, 32};
    for (int active : actives) {
        DevBuf<float> x(256), out(256);
        DevBuf<int> counts(1);
        float total = 0;
        for (int t = 0; t < 256; t++) {
            x[t] = int_value(t + 5);
            out[t] = -12345.0f;
            if (t < active) total += x[t];
        }
        pf_early_exit(x.p, out.p, counts.p, active);
        int bad = 0;
        for (int t = 0; t < 256; t++) bad += out[t] != (t < active ? total - x[t] : -12345.0f);
        CHECK(bad == 0, "active=%d: %d outputs wrong", active, bad);
        CHECK(counts[0] == active, "active=%d: __syncthreads_count gave %d", active, counts[0]);
    }
}

// Deterministic values in [-2, 2).
static float rnd(unsigned &s) {
    s = s * 1664525u + 1013904223u;
    return (float)((s >> 8) & 0xffff) / 16384.0f - 2.0f;
}

static void test_wmma() {
    DevBuf<half_t> a(256), b(256), dh(256);
    DevBuf<bf16_t> a2(256), b2(256);
    DevBuf<float> c(256), d(256), db(256);
    unsigned s = 12345;
    for (int i = 0; i < 256; i++) {
        a[i] = from_f32<half_t>(rnd(s));
        b[i] = from_f32<half_t>(rnd(s));
        a2[i] = from_f32<bf16_t>(rnd(s));
        b2[i] = from_f32<bf16_t>(rnd(s));
        c[i] = rnd(s);
    }
    pf_wmma(a.p, b.p, c.p, d.p, dh.p, a2.p, b2.p, db.p);
    int bad_d = 0, bad_h = 0, bad_b = 0;
    double worst = 0;
    for (int i = 0; i < 16; i++)
        for (int j = 0; j < 16; j++) {
            double ab = 0, ab2 = 0;
            for (int k = 0; k < 16; k++) {
                ab += (double)to_f32(a[i * 16 + k]) * to_f32(b[j * 16 + k]);  // b column-major
                ab2 += (double)to_f32(a2[i * 16 + k]) * to_f32(b2[k * 16 + j]);
            }
            const double ref = 2.0 * (ab + c[i * 16 + j]);
            worst = std::max(worst, fabs(d[i * 16 + j] - ref));
            bad_d += fabs(d[i * 16 + j] - ref) > 1e-5 * (1.0 + fabs(ref));
            // half accumulator, stored column-major: within one half ulp of the exact product
            const double h = to_f32(dh[j * 16 + i]);
            bad_h += fabs(h - ab) > ldexp(1.0, -10) * fabs(ab) + ldexp(1.0, -24);
            bad_b += fabs(db[i * 16 + j] - ab2) > 1e-5 * (1.0 + fabs(ab2));
        }
    CHECK(bad_d == 0, "wmma f32 accumulate: %d of 256 wrong (worst |err| %g)", bad_d, worst);
    CHECK(bad_h == 0, "wmma half accumulate: %d of 256 wrong", bad_h);
    CHECK(bad_b == 0, "wmma bf16 inputs: %d of 256 wrong", bad_b);

    const int M = 64, N = 96, K = 48;
    DevBuf<half_t> ga(M * K), gb(K * N);
    DevBuf<float> gc(M * N);
    for (int i = 0; i < M * K; i++) ga[i] = from_f32<half_t>(rnd(s));
    for (int i = 0; i < K * N; i++) gb[i] = from_f32<half_t>(rnd(s));
    pf_gemm(ga.p, gb.p, gc.p, M, N, K);
    int bad = 0;
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double r = 0;
            for (int k = 0; k < K; k++) r += (double)to_f32(ga[i * K + k]) * to_f32(gb[k * N + j]);
            bad += fabs(gc[i * N + j] - r) > 1e-5 * (1.0 + fabs(r));
        }
    CHECK(bad == 0, "wmma tiled GEMM %dx%dx%d: %d of %d wrong", M, N, K, bad, M * N);
}

static bool half_nan(uint16_t h) { return (h & 0x7fffu) > 0x7c00u; }
static bool bf16_nan(uint16_t h) { return (h & 0x7fffu) > 0x7f80u; }

// One float through both conversions, compared with tensor.c; returns 1 if any differs.
static int conv_mismatch(float f) {
    const uint16_t h = __half_as_ushort(from_f32<half_t>(f)), hr = f32_to_f16(f);
    const uint16_t b = __bfloat16_as_ushort(from_f32<bf16_t>(f)), br = f32_to_bf16(f);
    const bool hok = half_nan(hr) ? half_nan(h) : h == hr;
    const bool bok = bf16_nan(br) ? bf16_nan(b) : b == br;
    static int shown = 0;
    if ((!hok || !bok) && shown++ < 10)
        fprintf(stderr, "  %a (0x%08x): half 0x%04x vs 0x%04x, bf16 0x%04x vs 0x%04x\n", f,
                __float_as_uint(f), h, hr, b, br);
    return !(hok && bok);
}

static void test_conversions() {
    int bad = 0, n = 0;
    // a sweep over all float bit patterns (every 997th)
    for (uint64_t u = 0; u <= 0xffffffffull; u += 997, n++)
        bad += conv_mismatch(__uint_as_float((unsigned)u));
    // every half and bf16 value, the ties between neighbours and one float ulp either side
    int bad_exact = 0;
    for (unsigned h = 0; h < 0x10000; h++) {
        const float fh = f16_to_f32((uint16_t)h), fb = bf16_to_f32((uint16_t)h);
        const float eh = to_f32(__ushort_as_half((unsigned short)h)),
                    eb = to_f32(__ushort_as_bfloat16((unsigned short)h));
        if (half_nan((uint16_t)h)) {
            bad_exact += !(eh != eh);
        } else {
            bad_exact += __float_as_uint(eh) != __float_as_uint(fh);
            bad_exact += __half_as_ushort(from_f32<half_t>(fh)) != h;
        }
        if (bf16_nan((uint16_t)h)) {
            bad_exact += !(eb != eb);
        } else {
            bad_exact += __float_as_uint(eb) != __float_as_uint(fb);
            bad_exact += __bfloat16_as_ushort(from_f32<bf16_t>(fb)) != h;
        }
        if ((h & 0x7fffu) < 0x7c00u) {  // finite half: tie with the next one up in magnitude
            const float up = f16_to_f32((uint16_t)(h + 1)), mid = 0.5f * (fh + up);
            for (float f : {mid, nextafterf(mid, 0.0f), nextafterf(mid, 2.0f * up)})
                bad += conv_mismatch(f), n++;
            const uint16_t even = (h & 1) ? (uint16_t)(h + 1) : (uint16_t)h;
            bad_exact += __half_as_ushort(from_f32<half_t>(mid)) != even;
        }
        if ((h & 0x7fffu) < 0x7f80u) {  // finite bf16: the tie is the float with low half 0x8000
            const float mid = __uint_as_float((h << 16) | 0x8000u);
            for (float f :
                 {mid, __uint_as_float((h << 16) | 0x7fffu), __uint_as_float((h << 16) | 0x8001u)})
                bad += conv_mismatch(f), n++;
            const uint16_t even = (h & 1) ? (uint16_t)(h + 1) : (uint16_t)h;
            bad_exact += __bfloat16_as_ushort(from_f32<bf16_t>(mid)) != even;
        }
    }
    const float specials[] = {0.0f,       -0.0f,     1.0f,         65504.0f,     65519.99f,
                              65520.0f,   -65520.0f, 1e10f,        INFINITY,     -INFINITY,
                              NAN,        -NAN,      0x1p-24f,     0x1p-25f,     0x1.000002p-25f,
                              0x1.8p-25f, 0x1p-14f,  0x1.ff8p-15f, 0x1.ffcp-15f, 1e-30f,
                              -1e-30f,    FLT_MAX,   FLT_MIN,      0x1p-149f,    3.3895e38f};
    for (float f : specials) bad += conv_mismatch(f), n++;
    CHECK(__half_as_ushort(from_f32<half_t>(0x1p-25f)) == 0, "2^-25 must tie to +0");
    CHECK(__half_as_ushort(from_f32<half_t>(0x1.000002p-25f)) == 1,
          "just above 2^-25 rounds to 2^-24");
    CHECK(__half_as_ushort(from_f32<half_t>(65520.0f)) == 0x7c00, "65520 rounds to inf");
    CHECK(__half_as_ushort(from_f32<half_t>(-0.0f)) == 0x8000, "-0 keeps its sign");
    CHECK(half_nan(__half_as_ushort(from_f32<half_t>(NAN))) &&
              bf16_nan(__bfloat16_as_ushort(from_f32<bf16_t>(NAN))),
          "NaN stays NaN");
    CHECK(bad == 0, "%d of %d floats convert differently from tensor.c", bad, n);
    CHECK(bad_exact == 0, "%d exact values, round trips or ties wrong", bad_exact);

    // the same through a kernel
    const int m = 1 << 16;
    DevBuf<float> x(m), hf(m), bf(m);
    DevBuf<half_t> h(m);
    DevBuf<bf16_t> b(m);
    for (int i = 0; i < m; i++) x[i] = __uint_as_float((unsigned)i * 65537u + 0x01234567u);
    pf_convert(x.p, h.p, b.p, hf.p, bf.p, m);
    int kbad = 0;
    for (int i = 0; i < m; i++) {
        const uint16_t hr = f32_to_f16(x[i]), br = f32_to_bf16(x[i]);
        kbad += half_nan(hr) ? !half_nan(__half_as_ushort(h[i])) : __half_as_ushort(h[i]) != hr;
        kbad +=
            bf16_nan(br) ? !bf16_nan(__bfloat16_as_ushort(b[i])) : __bfloat16_as_ushort(b[i]) != br;
        if (!half_nan(hr)) kbad += hf[i] != f16_to_f32(hr);
        if (!bf16_nan(br)) kbad += bf[i] != bf16_to_f32(br);
    }
    CHECK(kbad == 0, "device conversions: %d mismatches of %d", kbad, 4 * m);
}

static void test_math() {
    const int n = 64;
    DevBuf<float> x(n), m(n * 8);
    for (int i = 0; i < n; i++) x[i] = (i - 32) * 0.1875f;  // -6 .. 5.8, exact
    pf_math(x.p, m.p, n);
    int bad = 0;
    for (int i = 0; i < n; i++) {
        const float v = x[i];
        const float e[8] = {
            1.0f / sqrtf(fabsf(v) + 1.0f),
            expf(v) + logf(fabsf(v) + 1.0f),
            v / 3.0f + 1.0f / (v + 10.0f),
            v < 0   ? 0.0f
            : v > 1 ? 1.0f
                    : v,
            fmaxf(v, 0.0f) + fminf(v, 0.0f) + erff(v) + tanhf(v) + expf(-v * v),
            (float)round_half_even(v * 4.0f),
            (float)(std::min(i, 3) + std::max(i, 3)) + std::min(v, 0.5f) + std::max(v, -0.5f),
            x[i & ~31] > 0.0f ? 1.0f : 0.0f};
        for (int k = 0; k < 8; k++)
            bad += fabsf(m[i * 8 + k] - e[k]) > 1e-6f * (1.0f + fabsf(e[k]));
    }
    CHECK(bad == 0, "%d math results wrong", bad);
}

static void test_misc() {
    DevBuf<float> x(256), out(64 * 8), tile(8 * 32);
    DevBuf<unsigned> ctr(7);
    for (int i = 0; i < 256; i++) x[i] = (i % 13) * 0.25f - 1.5f;  // exact in half and bf16
    pf_misc(x.p, out.p, ctr.p, tile.p);
    int bad = 0;
    for (int t = 0; t < 64; t++) {
        const float v = x[t], *o = out.p + t * 8;
        const float e[8] = {x[4 * t] + x[4 * t + 1] + x[4 * t + 2] + x[4 * t + 3],
                            v + 2.0f * (float)((t & 3) + 1),
                            2.0f * v + 1.0f + 2.0f - 2.0f,
                            v * v,
                            2.0f * v + 2.0f,
                            40.0f,
                            v + 1.0f,
                            1.0f + 8 + 3 + 1};
        for (int k = 0; k < 8; k++) bad += fabsf(o[k] - e[k]) > 1e-5f * (1.0f + fabsf(e[k]));
    }
    CHECK(bad == 0, "%d intrinsic results wrong", bad);
    CHECK((int)ctr[0] == -64 && ctr[1] == 0xffffffffu && ctr[2] == 0 && ctr[3] == 0 &&
              ctr[4] == 4 && ctr[5] == 0x80000000u && ctr[6] == 63,
          "atomics: sub %d or %x and %x xor %u inc %u exch %x max %u", (int)ctr[0], ctr[1], ctr[2],
          ctr[3], ctr[4], ctr[5], ctr[6]);
    int tbad = 0;
    for (int i = 0; i < 8 * 32; i++) tbad += tile[i] != 9.0f;  // 1 + 16 * 1 * 0.5
    CHECK(tbad == 0, "wmma 8x32x16: %d of 256 wrong", tbad);
}

static void test_speed() {
    const int n = 1 << 20;
    DevBuf<float> x(n), y(n), sums(n / 256), total(1);
    for (int i = 0; i < n; i++) x[i] = int_value(i);
    pf_axpb(x.p, y.p, 2.0f, 1.0f, n);  // warm-up: stacks and threads
    double t0 = now_s();
    pf_axpb(x.p, y.p, 3.0f, -1.0f, n);
    const double t_ew = now_s() - t0;
    int bad = 0;
    for (int i = 0; i < n; i++) bad += y[i] != 3.0f * x[i] - 1.0f;
    CHECK(bad == 0, "elementwise 1M: %d wrong", bad);
    t0 = now_s();
    pf_block_sum(x.p, sums.p, total.p, n, n / 256, 256);  // 9 barriers per block
    const double t_red = now_s() - t0;
    double all = 0;
    for (int i = 0; i < n; i++) all += x[i];
    CHECK(total[0] == (float)all, "reduction 1M: %g, expected %g", total[0], all);
    printf(
        "speed: elementwise 1M floats (4096 blocks x 256): %.1f ms; block reduction 1M (4096 x "
        "256, "
        "9 barriers per block): %.1f ms\n",
        t_ew * 1e3, t_red * 1e3);
}

// ---- misuse: each case must abort with a message naming the problem ----------------------
__global__ void death_deadlock_kernel() {
    if (threadIdx.x == 0)
        __syncthreads();
    else
        __syncwarp();
}
__global__ void death_exited_lane_kernel(int *out) {
    if (threadIdx.x == 3) return;
    out[threadIdx.x] = __shfl_xor_sync(0xffffffffu, (int)threadIdx.x, 1);
}
__global__ void death_shfl_kernel(int *out, unsigned mask, int width) {
    out[threadIdx.x] = __shfl_sync(mask, (int)threadIdx.x, 0, width);
}
__global__ void death_wmma_kernel(const half_t *a) {
    wmma::fragment<wmma::matrix_a, 16, 16, 16, half_t, wmma::row_major> f;
    wmma::load_matrix_sync(f, a + 1, 16);
}
__global__ void death_smem_overrun_kernel(int words) {
    DYNAMIC_SHARED(float, buf);
    buf[words + 32 + threadIdx.x] = 1.0f;  // past the end: the guard page faults
}
__global__ void death_trap_kernel() {
    if (threadIdx.x == 5) __trap();
}

static int run_death(const char *name) {
    struct rlimit nocore = {0, 0};
    setrlimit(RLIMIT_CORE, &nocore);
    DevBuf<int> buf(2048);
    DevBuf<half_t> h(512);
    const std::string n = name;
    if (n == "block_too_big") KERNEL_LAUNCH(death_trap_kernel, 1, 2048, 0, 0);
    if (n == "block_z") KERNEL_LAUNCH(death_trap_kernel, 1, dim3(1, 1, 65), 0, 0);
    if (n == "grid_zero") KERNEL_LAUNCH(death_trap_kernel, dim3(4, 0), 32, 0, 0);
    if (n == "smem_no_attr")
        KERNEL_LAUNCH(pf_reverse_kernel, 1, 32, 64 * 1024, 0, NULL, NULL, NULL, 0);
    if (n == "deadlock") KERNEL_LAUNCH(death_deadlock_kernel, 1, 32, 0, 0);
    if (n == "exited_lane") KERNEL_LAUNCH(death_exited_lane_kernel, 1, 32, 0, 0, buf.p);
    if (n == "partial_warp") KERNEL_LAUNCH(death_shfl_kernel, 1, 48, 0, 0, buf.p, 0xffffffffu, 32);
    if (n == "bad_width") KERNEL_LAUNCH(death_shfl_kernel, 1, 32, 0, 0, buf.p, 0xffffffffu, 12);
    if (n == "lane_not_in_mask") KERNEL_LAUNCH(death_shfl_kernel, 1, 32, 0, 0, buf.p, 0x2u, 32);
    if (n == "wmma_misaligned") KERNEL_LAUNCH(death_wmma_kernel, 1, 32, 0, 0, (const half_t *)h.p);
    if (n == "smem_overrun")
        KERNEL_LAUNCH(death_smem_overrun_kernel, 1, 32, 1000 * sizeof(float), 0, 1000);
    if (n == "trap") KERNEL_LAUNCH(death_trap_kernel, 2, 32, 0, 0);
    if (n == "outside_kernel") printf("%u\n", threadIdx.x);
    if (n == "outside_sync") __syncthreads();
    fprintf(stderr, "death case %s did not abort\n", name);
    return 0;
}

static void expect_death(const char *name, const char *needle) {
    char self[4096];
    const ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
    if (len <= 0) {
        CHECK(len > 0, "cannot find this executable to run death case %s", name);
        return;
    }
    self[len] = 0;
    const std::string cmd = std::string("'") + self + "' --death " + name + " 2>&1";
    FILE *p = popen(cmd.c_str(), "r");
    std::string out;
    char line[1024];
    while (p && fgets(line, sizeof line, p)) out += line;
    const int st = p ? pclose(p) : -1;
    const bool died = st != -1 && (WIFSIGNALED(st) || (WIFEXITED(st) && WEXITSTATUS(st) != 0));
    CHECK(died && out.find(needle) != std::string::npos,
          "death case %s: status %d, output: %s (wanted \"%s\")", name, st, out.c_str(), needle);
}

static void test_misuse() {
    expect_death("block_too_big", "block (2048,1,1) is invalid");
    expect_death("block_z", "block (1,1,65) is invalid");
    expect_death("grid_zero", "grid (4,0,1) is invalid");
    expect_death("smem_no_attr", "exceed the 48 KiB default");
    expect_death("deadlock", "deadlocks");
    expect_death("exited_lane", "returned");
    expect_death("partial_warp", "do not exist");
    expect_death("bad_width", "not a power of two");
    expect_death("lane_not_in_mask", "does not include the calling lane 0");
    expect_death("wmma_misaligned", "not 32-byte");
    expect_death("trap", "__trap() called");
    expect_death("smem_overrun", "");  // SIGSEGV, no message
    expect_death("outside_kernel", "threadIdx used outside a kernel");
    expect_death("outside_sync", "__syncthreads used outside a kernel");
}

int main(int argc, char **argv) {
    if (argc == 3 && strcmp(argv[1], "--death") == 0) return run_death(argv[2]);
    const char *why = NULL;
    CHECK(story_cuda_device_count(&why) == 0 && why && strstr(why, "emulation"),
          "device count in emulation");
    test_block_reduce();
    test_warp_reduce();
    test_shuffles();
    test_dynamic_smem();
    test_atomics();
    test_grids();
    test_early_exit();
    test_wmma();
    test_conversions();
    test_math();
    test_misc();
    test_speed();
    test_misuse();
    printf("emu_runtime: %d checks, %d failed\n", g_checks, g_failed);
    return g_failed ? 1 : 0;
}

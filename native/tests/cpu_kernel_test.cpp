// Checks the CPU kernels against naive loops on random inputs, at every instruction set level this CPU
// runs (argument "all"), or at the levels named; exits non-zero on a mismatch.
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "cpu_kernels.h"

static int failures = 0;
static void expect_close(const std::string& what, const std::vector<float>& a, const std::vector<float>& b, float tol) {
  float worst = 0;
  bool nan = false;
  for (size_t i = 0; i < a.size(); i++) {
    if (std::isnan(a[i]) != std::isnan(b[i])) nan = true;
    worst = std::max(worst, std::fabs(a[i] - b[i]));
  }
  const bool ok = !nan && worst <= tol;
  if (!ok) std::printf("  %-44s max abs err %.3g FAIL (tolerance %.3g)\n", what.c_str(), worst, tol);
  if (!ok) failures++;
}

static float bf16_value(uint16_t h) {
  uint32_t f = (uint32_t)h << 16;
  float x;
  std::memcpy(&x, &f, 4);
  return x;
}

// F16 by hand (normal numbers only, which is all the test draws).
static uint16_t to_f16(float x) {
  uint32_t f;
  std::memcpy(&f, &x, 4);
  uint32_t sign = (f >> 16) & 0x8000, exp = (f >> 23) & 0xff, man = f & 0x7fffff;
  if (exp < 113) return (uint16_t)sign;  // flush tiny values to zero
  uint32_t h = sign | ((exp - 112) << 10) | (man >> 13);
  if ((man >> 12) & 1) h++;  // round half up: the test compares with the rounded value anyway
  return (uint16_t)h;
}
static float f16_value(uint16_t h) {
  uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff;
  uint32_t f = exp == 0 ? sign : sign | ((exp + 112) << 23) | (man << 13);
  float x;
  std::memcpy(&x, &f, 4);
  return x;
}

// Independent references for narrowing (kv_write): the nearest value by double arithmetic, ties to even;
// F16 saturating at +-65504 (the kernels' choice, where F16C would give infinity).
static uint16_t ref_f16(float x) {
  const uint16_t sign = std::signbit(x) ? 0x8000 : 0;
  if (std::isnan(x)) return sign | 0x7e00;
  const double a = std::fabs((double)x);
  if (a > 65504.0) return sign | 0x7bff;
  if (a < 6.103515625e-05) return sign | (uint16_t)std::nearbyint(a * 16777216.0);  // 2^-24 units (0x400 is 2^-14)
  int e;
  const double f = std::frexp(a, &e);  // a = f * 2^e, f in [0.5, 1)
  double m = std::nearbyint((f * 2 - 1) * 1024);
  if (m == 1024) { m = 0; e++; }
  if (e - 1 + 15 >= 31) return sign | 0x7c00;
  return sign | (uint16_t)((e - 1 + 15) << 10) | (uint16_t)m;
}
static uint16_t ref_bf16(float x) {
  uint32_t f;
  std::memcpy(&f, &x, 4);
  if (std::isnan(x)) return (uint16_t)((f >> 16) | 0x40);
  if (std::isinf(x)) return (uint16_t)(f >> 16);
  const uint16_t lo = (uint16_t)(f >> 16), hi = (uint16_t)(lo + 1);
  const double dlo = std::fabs((double)bf16_value(lo) - x), dhi = std::fabs((double)bf16_value(hi) - x);
  if (dlo != dhi) return dlo < dhi ? lo : hi;
  return (lo & 1) ? hi : lo;
}

// The n x m product out[i][j] = sum_p xv(i, p) * wv(j, p), summed in double and rounded once: the matmul
// tests' reference, whatever the weights' type and however x is rounded.
template <typename X, typename Wv>
static std::vector<float> reference_matmul(int n, int k, int m, X xv, Wv wv) {
  std::vector<float> ref((size_t)n * m);
  for (int i = 0; i < n; i++)
    for (int j = 0; j < m; j++) {
      double s = 0;
      for (int p = 0; p < k; p++) s += (double)xv(i, p) * wv(j, p);
      ref[(size_t)i * m + j] = (float)s;
    }
  return ref;
}

static void test_level() {
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> u(-1, 1);
  auto rnd = [&](size_t n) { std::vector<float> v(n); for (auto& x : v) x = u(rng); return v; };

  // round_to_bf16: nearest even, as torch does
  {
    const float in[] = {1.0f, 1.00390625f /* exactly half an ulp: ties to even (1.0) */, 1.01171875f /* ties up */,
                        -2.5f, 3.0e38f, 1e-40f};
    const uint16_t want[] = {0x3f80, 0x3f80, 0x3f82, 0xc020, 0x7f62, 0x0001};
    uint16_t out[6];
    bs::round_to_bf16(out, in, 6);
    for (int i = 0; i < 6; i++)
      if (out[i] != want[i]) {
        std::printf("  round_to_bf16(%g) = %04x, want %04x FAIL\n", in[i], out[i], want[i]);
        failures++;
      }
  }

  for (int n : {1, 3, 5, 8, 23, 24, 33, 70}) {
    for (int k : {8, 64, 172, 576}) {
      for (int m : {37, 64, 100}) {
        auto x = rnd((size_t)n * k), w = rnd((size_t)m * k);
        std::vector<uint16_t> wb(w.size()), wh(w.size());
        bs::round_to_bf16(wb.data(), w.data(), (int64_t)w.size());
        for (size_t i = 0; i < w.size(); i++) wh[i] = to_f16(w[i]);
        for (int dt : {0, 1, 2}) {
          std::vector<float> out((size_t)n * m, NAN);
          const void* wp = dt == 0 ? (const void*)w.data() : dt == 1 ? (const void*)wh.data() : (const void*)wb.data();
          if (const char* e = bs::matmul(out.data(), x.data(), wp, dt, n, k, m)) {
            std::printf("  matmul rejected: %s FAIL\n", e);
            failures++;
            continue;
          }
          const std::vector<float> ref = reference_matmul(n, k, m, [&](int i, int p) { return x[(size_t)i * k + p]; },
              [&](int j, int p) {
                const size_t wi = (size_t)j * k + p;
                return dt == 0 ? w[wi] : dt == 1 ? f16_value(wh[wi]) : bf16_value(wb[wi]);
              });
          char name[96];
          std::snprintf(name, sizeof name, "matmul %s n=%d k=%d m=%d", dt == 0 ? "f32" : dt == 1 ? "f16" : "bf16", n, k, m);
          expect_close(name, out, ref, 1e-4f * std::sqrt((float)k));
          // below 24 rows a row's result must not depend on the rows beside it (speculative steps rely on it)
          for (int i = 0; n > 1 && n < 24 && i < n; i++) {
            std::vector<float> alone((size_t)m, NAN);
            bs::matmul(alone.data(), x.data() + (size_t)i * k, wp, dt, 1, k, m);
            if (std::memcmp(alone.data(), out.data() + (size_t)i * m, (size_t)m * sizeof(float)) != 0) {
              std::printf("  %s: row %d alone differs from the row in its batch FAIL\n", name, i);
              failures++;
              break;
            }
          }
        }
      }
    }
  }
  // BF16 matrices packed to 12 bits a weight (batch-1 decode): where the level and CPU can, the packed
  // product must equal the plain one bit for bit, for rows packed (at most 16 distinct high bytes) and rows
  // left as BF16 (more), at odd and even m; and k not a multiple of 64 must be refused.
  if (bs::packed_bf16_bytes(576, 10) > 0) {
    if (bs::packed_bf16_bytes(572, 10) != 0) {
      std::printf("  packed_bf16_bytes accepted k = 572 FAIL\n");
      failures++;
    }
    std::uniform_real_distribution<float> mag(0.25f, 1.0f);
    for (int k : {64, 576, 1536}) {
      struct Packed {
        int m;
        std::vector<uint16_t> wb;
        std::vector<uint8_t> bytes;
        void* pk;
      };
      std::vector<Packed> mats;  // this k's matrices, for the several-matrix form below
      for (int m : {1, 2, 37, 100}) {
        std::vector<float> w((size_t)m * k);
        for (auto& v : w) v = (rng() & 1 ? 1 : -1) * mag(rng) * 0.03125f;  // 2 exponents: 4 high bytes
        int raw_rows = 0;
        for (int r = 1; r < m; r += 7, raw_rows++)  // 40 exponents of both signs: over 16 high bytes
          for (int p = 0; p < 40; p++) w[(size_t)r * k + p * (k / 40)] = std::ldexp(p % 2 ? -0.75f : 0.75f, -p);
        std::vector<uint16_t> wb(w.size());
        bs::round_to_bf16(wb.data(), w.data(), (int64_t)w.size());
        std::vector<uint8_t> packed((size_t)bs::packed_bf16_bytes(k, m) + 64);
        void* pk = packed.data() + (64 - (uintptr_t)packed.data() % 64) % 64;
        if (const char* e = bs::pack_bf16(pk, wb.data(), k, m)) {
          std::printf("  pack_bf16 k=%d m=%d: %s FAIL\n", k, m, e);
          failures++;
          continue;
        }
        const int64_t counted = ((const int64_t*)pk)[4];
        if (counted != raw_rows) {
          std::printf("  pack_bf16 k=%d m=%d left %lld rows as BF16, expected %d FAIL\n", k, m, (long long)counted, raw_rows);
          failures++;
        }
        const int n = 5;
        auto x = rnd((size_t)n * k);
        std::vector<float> batch((size_t)n * m), one((size_t)m, NAN);
        bs::matmul(batch.data(), x.data(), wb.data(), 2, n, k, m);
        for (int i = 0; i < n; i++) {
          if (const char* e = bs::matmul_packed_bf16(one.data(), x.data() + (size_t)i * k, pk, wb.data(), k, m)) {
            std::printf("  matmul_packed_bf16 k=%d m=%d: %s FAIL\n", k, m, e);
            failures++;
            break;
          }
          if (std::memcmp(one.data(), batch.data() + (size_t)i * m, (size_t)m * sizeof(float)) != 0) {
            std::printf("  matmul_packed_bf16 k=%d m=%d row %d differs from matmul's FAIL\n", k, m, i);
            failures++;
            break;
          }
        }
        if (!bs::matmul_packed_bf16(one.data(), x.data(), pk, wb.data(), k, m + 1)) {
          std::printf("  matmul_packed_bf16 took a packed matrix of another shape FAIL\n");
          failures++;
        }
        mats.push_back(Packed{m, std::move(wb), std::move(packed), pk});  // a vector's heap block stays put
      }
      // Several matrices sharing x as one op (q, k, v; gate, up): each product bit for bit the one-matrix one,
      // for two, three and four matrices of odd and even m with rows left as BF16; a wrong shape or count refused.
      if (mats.size() == 4) {
        auto x = rnd((size_t)k);
        for (std::vector<int> pick : {std::vector<int>{2, 3}, {3, 2, 0}, {1, 3, 2, 0}}) {
          const int count = (int)pick.size();
          std::vector<std::vector<float>> want(count), got(count);
          float* outs[4];
          const void* pks[4];
          const uint16_t* ws[4];
          int64_t ms[4];
          for (int i = 0; i < count; i++) {
            const Packed& p = mats[pick[i]];
            want[i].assign(p.m, NAN);
            got[i].assign(p.m, NAN);
            bs::matmul_packed_bf16(want[i].data(), x.data(), p.pk, p.wb.data(), k, p.m);
            outs[i] = got[i].data();
            pks[i] = p.pk;
            ws[i] = p.wb.data();
            ms[i] = p.m;
          }
          if (const char* e = bs::matmul_packed_bf16_n(x.data(), k, count, outs, pks, ws, ms)) {
            std::printf("  matmul_packed_bf16_n k=%d count=%d: %s FAIL\n", k, count, e);
            failures++;
            continue;
          }
          for (int i = 0; i < count; i++)
            if (std::memcmp(got[i].data(), want[i].data(), want[i].size() * sizeof(float)) != 0) {
              std::printf("  matmul_packed_bf16_n k=%d count=%d: matrix %d (m=%d) differs from its one-matrix product FAIL\n",
                          k, count, i, mats[pick[i]].m);
              failures++;
            }
          ms[count - 1] += 1;
          if (!bs::matmul_packed_bf16_n(x.data(), k, count, outs, pks, ws, ms)) {
            std::printf("  matmul_packed_bf16_n took a packed matrix of another shape FAIL\n");
            failures++;
          }
          if (!bs::matmul_packed_bf16_n(x.data(), k, 0, outs, pks, ws, ms) || !bs::matmul_packed_bf16_n(x.data(), k, 5, outs, pks, ws, ms)) {
            std::printf("  matmul_packed_bf16_n took a count outside 1-4 FAIL\n");
            failures++;
          }
        }
      }
    }
  } else if (bs::pack_bf16(nullptr, nullptr, 576, 10) == nullptr) {
    std::printf("  pack_bf16 accepted where packed_bf16_bytes says it cannot FAIL\n");
    failures++;
  }
  // BF16 activations: where the level has AVX-512 BF16, BF16 matrices take x rounded to BF16 (odd k
  // included: the last pair's high half is zero); the reference rounds x the same way. Below 24 rows
  // (the dot form) a row's result must not depend on the rows beside it: each row is also multiplied
  // alone and must come out bit for bit the same.
  // (The avx512bf16 code built for AVX2 runs the same path with two FMAs a pair in place of vdpbf16ps.)
  // Other levels refuse the switch and stay exact; off is always accepted.
  const bool has_bf16_dot = std::string(bs::level()) == "avx512bf16";
  if (bs::set_bf16_activations(1) != (has_bf16_dot ? 1 : 0)) {
    std::printf("  set_bf16_activations(1) at %s answered wrong FAIL\n", bs::level());
    failures++;
  }
  if (has_bf16_dot) {
    for (int n : {1, 2, 3, 8, 23, 24, 33, 70}) {
      for (int k : {7, 64, 173, 576}) {
        for (int m : {5, 37, 100}) {
          auto x = rnd((size_t)n * k), w = rnd((size_t)m * k);
          std::vector<uint16_t> wb(w.size()), xb(x.size());
          bs::round_to_bf16(wb.data(), w.data(), (int64_t)w.size());
          bs::round_to_bf16(xb.data(), x.data(), (int64_t)x.size());
          std::vector<float> out((size_t)n * m, NAN);
          if (const char* e = bs::matmul(out.data(), x.data(), wb.data(), 2, n, k, m)) {
            std::printf("  matmul bf16 activations rejected: %s FAIL\n", e);
            failures++;
            continue;
          }
          const std::vector<float> ref = reference_matmul(n, k, m,
              [&](int i, int p) { return bf16_value(xb[(size_t)i * k + p]); },
              [&](int j, int p) { return bf16_value(wb[(size_t)j * k + p]); });
          char name[96];
          std::snprintf(name, sizeof name, "matmul bf16 activations n=%d k=%d m=%d", n, k, m);
          expect_close(name, out, ref, 1e-4f * std::sqrt((float)k));
          for (int i = 0; n > 1 && n < 24 && i < n; i++) {
            std::vector<float> alone((size_t)m, NAN);
            bs::matmul(alone.data(), x.data() + (size_t)i * k, wb.data(), 2, 1, k, m);
            if (std::memcmp(alone.data(), out.data() + (size_t)i * m, (size_t)m * sizeof(float)) != 0) {
              std::printf("  %s: row %d alone differs from the row in its batch FAIL\n", name, i);
              failures++;
              break;
            }
          }
        }
      }
    }
  }
  if (bs::set_bf16_activations(0) != 1) {
    std::printf("  set_bf16_activations(0) refused at %s FAIL\n", bs::level());
    failures++;
  }
  if (!bs::matmul(nullptr, nullptr, nullptr, 7, 1, 1, 1)) {
    std::printf("  matmul accepted dtype code 7 FAIL\n");
    failures++;
  }

  // embedding of each table type
  {
    const int rows = 5, dim = 19;
    auto t = rnd(rows * dim);
    std::vector<uint16_t> tb(t.size());
    bs::round_to_bf16(tb.data(), t.data(), (int64_t)t.size());
    int32_t ids[3] = {4, 0, 4};
    std::vector<float> out(3 * dim), ref(3 * dim);
    bs::embedding(out.data(), tb.data(), 2, ids, 3, dim, rows);
    for (int i = 0; i < 3; i++)
      for (int j = 0; j < dim; j++) ref[i * dim + j] = bf16_value(tb[ids[i] * dim + j]);
    expect_close("embedding bf16", out, ref, 0);
    int32_t bad[1] = {5};
    if (!bs::embedding(out.data(), t.data(), 0, bad, 1, dim, rows)) {
      std::printf("  embedding accepted id 5 of 5 rows FAIL\n");
      failures++;
    }
  }

  // silu_mul (its vector exp) against libm, over the range activations take and beyond
  {
    const int n = 1000;
    std::vector<float> g(n), up(n, 1.0f), out(n), ref(n);
    for (int i = 0; i < n; i++) g[i] = -100.0f + 200.0f * i / (n - 1);
    bs::silu_mul(out.data(), g.data(), up.data(), n);
    float worst = 0;
    for (int i = 0; i < n; i++) {
      ref[i] = (float)(g[i] / (1.0 + std::exp(-(double)g[i])));
      worst = std::max(worst, std::fabs(out[i] - ref[i]) / std::max(1e-30f, std::fabs(ref[i])));
    }
    if (!(worst < 1e-6f)) {
      std::printf("  silu_mul relative error %.3g FAIL\n", worst);
      failures++;
    }
  }

  // silu_mul over the team (prefill-sized counts, an odd tail) gives every element exactly as alone:
  // against the same op called on 16 elements at a time (below the parallel threshold, the serial code)
  {
    const int n = 40003;
    std::vector<float> g(n), up(n), out(n), ref(n);
    for (int i = 0; i < n; i++) g[i] = -12.0f + 24.0f * (float)((i * 7919) % n) / n, up[i] = 0.5f + (float)(i % 13) / 7;
    bs::silu_mul(out.data(), g.data(), up.data(), n);
    for (int i = 0; i < n; i += 16) bs::silu_mul(ref.data() + i, g.data() + i, up.data() + i, std::min(16, n - i));
    int differ = 0;
    for (int i = 0; i < n; i++) differ += out[i] != ref[i];
    if (differ) {
      std::printf("  silu_mul over the team: %d of %d elements differ from the serial op FAIL\n", differ, n);
      failures++;
    }
  }

  // exp_sum (the sampler's softmax pass) against libm, with a masked (-inf) entry and a vector tail
  {
    const int n = 1003;
    std::vector<float> in(n), out(n, NAN);
    for (int i = 0; i < n; i++) in[i] = -30.0f + 40.0f * i / (n - 1);
    in[5] = -INFINITY;
    const double sum = bs::exp_sum(out.data(), in.data(), n, 2.0f, 1.3f);
    double want = 0, worst = 0;
    for (int i = 0; i < n; i++) {
      const double e = std::exp((double)((in[i] - 2.0f) * 1.3f));
      want += e;
      worst = std::max(worst, std::fabs(out[i] - e) / std::max(1e-30, e));
    }
    if (!(worst < 1e-6) || out[5] != 0.0f || !(std::fabs(sum - want) <= 1e-6 * want) ||
        bs::exp_sum(nullptr, in.data(), n, 2.0f, 1.3f) != sum) {
      std::printf("  exp_sum: element error %.3g, sum %.9g want %.9g FAIL\n", worst, sum, want);
      failures++;
    }
  }

  // kv_write narrowing to each cache type, element by element against the references above: random
  // values of every magnitude, ties, F16's overflow, subnormals and underflow, NaN. 1 token, 1 KV head,
  // head_dim 45 (vectors and a tail at every level).
  {
    const int hd = 45;
    std::vector<float> x(hd);
    std::uniform_real_distribution<float> mag(-9, 6);
    for (int i = 0; i < hd; i++) x[i] = u(rng) * std::pow(10.0f, mag(rng));
    const float edge[] = {1.00390625f, 1.01171875f, 1.0f + 1.0f / 2048, 1.0f + 3.0f / 2048, 65504.0f, 65519.0f, 65520.0f,
                          -1e6f, 6.0e-5f, 3.0e-8f, 2.9e-8f, 1e-40f, -0.0f, NAN, 2.98023224e-08f /* 2^-25: tie to 0 */,
                          INFINITY};
    for (size_t i = 0; i < sizeof edge / sizeof edge[0]; i++) x[i * 2] = edge[i];
    for (int dt : {1, 2}) {
      std::vector<uint16_t> kc(2 * hd, 0xdead), vc(2 * hd, 0xdead);
      const int32_t slot[1] = {1};
      if (const char* e = bs::kv_write(kc.data(), vc.data(), dt, x.data(), x.data(), slot, 1, 1, hd, 2)) {
        std::printf("  kv_write rejected: %s FAIL\n", e);
        failures++;
        continue;
      }
      for (int i = 0; i < hd; i++) {
        const uint16_t want = dt == 1 ? ref_f16(x[i]) : ref_bf16(x[i]);
        if (kc[hd + i] != want || vc[hd + i] != want || kc[i] != 0xdead) {
          std::printf("  kv_write %s(%.9g) = %04x, want %04x FAIL\n", dt == 1 ? "f16" : "bf16", x[i], kc[hd + i], want);
          failures++;
        }
      }
    }
    const int32_t slot[1] = {0};
    if (!bs::kv_write(x.data(), x.data(), 3, x.data(), x.data(), slot, 1, 1, hd, 2)) {
      std::printf("  kv_write accepted cache dtype code 3 FAIL\n");
      failures++;
    }
  }

  // One sequence of 5 cached tokens (2 new) in blocks {3, 1, 2} of size 2; 4 heads over 2 kv heads;
  // head_dim 8 (below a vector at AVX-512), 20 (no whole vectors) and 64 (several vectors: the vector
  // softmax path); caches of each type, filled by kv_write and compared with attention over the values
  // the cache holds. block_copy then copies blocks of each type.
  for (int dt : {0, 1, 2}) {
    for (int hd : {8, 20, 64}) {
      const int bsz = 2, kvh = 2, heads = 4, nblocks = 4, slots = nblocks * bsz;
      const int64_t row = (int64_t)kvh * hd;
      auto k32 = rnd((size_t)slots * row), v32 = rnd((size_t)slots * row);
      const size_t elem = dt == 0 ? 4 : 2;
      std::vector<char> kc(slots * row * elem), vc(slots * row * elem);
      std::vector<int32_t> all(slots);
      for (int i = 0; i < slots; i++) all[i] = i;
      bs::kv_write(kc.data(), vc.data(), dt, k32.data(), v32.data(), all.data(), slots, kvh, hd, slots);
      auto held = [&](const std::vector<char>& c, int64_t i) {
        if (dt == 0) return ((const float*)c.data())[i];
        const uint16_t h = ((const uint16_t*)c.data())[i];
        return dt == 1 ? f16_value(h) : bf16_value(h);
      };
      auto q = rnd((size_t)2 * heads * hd);
      int bt[3] = {3, 1, 2}, lens[1] = {5}, qs[2] = {0, 2};
      std::vector<float> out((size_t)2 * heads * hd), ref((size_t)2 * heads * hd);
      const std::string name = std::string("paged_attention ") + (dt == 0 ? "f32" : dt == 1 ? "f16" : "bf16") + " hd=" + std::to_string(hd);
      const char* err = bs::paged_attention(out.data(), q.data(), kc.data(), vc.data(), dt, bt, 3, lens, qs, 1, 2, heads, kvh, hd, bsz, nblocks, 0.35f, 0);
      if (err) { std::printf("  %s rejected: %s FAIL\n", name.c_str(), err); failures++; continue; }
      for (int t = 0; t < 2; t++)
        for (int h = 0; h < heads; h++) {
          const int kh = h / (heads / kvh), visible = 5 - 2 + t + 1;
          std::vector<double> p(visible);
          double mx = -1e30, sum = 0;
          for (int j = 0; j < visible; j++) {
            const int64_t kr = ((int64_t)bt[j / bsz] * bsz + j % bsz) * row + kh * hd;
            double s = 0;
            for (int d = 0; d < hd; d++) s += (double)q[(t * heads + h) * hd + d] * held(kc, kr + d);
            p[j] = s * 0.35;
            mx = std::max(mx, p[j]);
          }
          for (auto& x : p) { x = std::exp(x - mx); sum += x; }
          for (int d = 0; d < hd; d++) {
            double o = 0;
            for (int j = 0; j < visible; j++) o += p[j] / sum * held(vc, ((int64_t)bt[j / bsz] * bsz + j % bsz) * row + kh * hd + d);
            ref[(t * heads + h) * hd + d] = (float)o;
          }
        }
      expect_close(name, out, ref, 2e-5f);  // float32 sums of 5 keys against double ones
      int bad[3] = {3, 9, 2};
      if (!bs::paged_attention(out.data(), q.data(), kc.data(), vc.data(), dt, bad, 3, lens, qs, 1, 2, heads, kvh, hd, bsz, nblocks, 0.35f, 0)) {
        std::printf("  %s accepted block id 9 of 4 FAIL\n", name.c_str());
        failures++;
      }
      if (!bs::paged_attention(out.data(), q.data(), kc.data(), vc.data(), 5, bt, 3, lens, qs, 1, 2, heads, kvh, hd, bsz, nblocks, 0.35f, 0)) {
        std::printf("  paged_attention accepted cache dtype code 5 FAIL\n");
        failures++;
      }
      // block_copy 3 -> 0 and 1 -> 2: the destination blocks now hold the sources' bytes
      const size_t bbytes = (size_t)bsz * row * elem;
      std::vector<char> k3(kc.begin() + 3 * bbytes, kc.begin() + 4 * bbytes), v1(vc.begin() + bbytes, vc.begin() + 2 * bbytes);
      const int32_t src[2] = {3, 1}, dst[2] = {0, 2};
      if (const char* e = bs::block_copy(kc.data(), vc.data(), dt, src, dst, 2, (int64_t)bsz * row, nblocks)) {
        std::printf("  block_copy rejected: %s FAIL\n", e);
        failures++;
      } else if (std::memcmp(kc.data(), k3.data(), bbytes) || std::memcmp(vc.data() + 2 * bbytes, v1.data(), bbytes)) {
        std::printf("  block_copy %s moved the wrong bytes FAIL\n", name.c_str());
        failures++;
      }
    }
  }
}

// GQA groups of 1, 3 and 7 query heads a KV head (the kernels take up to four heads of a group at a
// time: 3 is one step, 7 is 4 + 3), head sizes with and without whole vectors, and both ways the work is
// split: one decode token (by KV head) and a batch of ten decode tokens (a whole token per item). Ten
// sequences of 1..10 cached tokens in blocks of 4, handed out in reverse order; against double sums. One
// decode token over 1,001 keys (the keys split in chunks, flash-decoding), whole and with a window of 600.
static void test_attention_groups() {
  std::mt19937 rng(11);
  std::uniform_real_distribution<float> u(-1, 1);
  auto rnd = [&](size_t n) { std::vector<float> v(n); for (auto& x : v) x = u(rng); return v; };
  for (int dt : {0, 2}) {
    for (int hd : {20, 64, 128}) {
      for (int group : {1, 3, 7}) {
        for (int seqs : {1, 10, -1, -2}) {  // -1: one sequence of 1,001 keys; -2: the same with a window of 600
          const int window = seqs == -2 ? 600 : 0, longest = seqs < 0 ? 1001 : 10;
          if (seqs < 0) seqs = 1;
          const int bsz = 4, kvh = 2, heads = kvh * group, per = (longest + bsz - 1) / bsz, nblocks = seqs * per;
          const int64_t row = (int64_t)kvh * hd;
          const int slots = nblocks * bsz;
          auto k32 = rnd((size_t)slots * row), v32 = rnd((size_t)slots * row);
          const size_t elem = dt == 0 ? 4 : 2;
          std::vector<char> kc(slots * row * elem), vc(slots * row * elem);
          std::vector<int32_t> all(slots);
          for (int i = 0; i < slots; i++) all[i] = i;
          bs::kv_write(kc.data(), vc.data(), dt, k32.data(), v32.data(), all.data(), slots, kvh, hd, slots);
          auto held = [&](const std::vector<char>& c, int64_t i) {
            return dt == 0 ? ((const float*)c.data())[i] : bf16_value(((const uint16_t*)c.data())[i]);
          };
          std::vector<int32_t> bt(nblocks), lens(seqs), qs(seqs + 1);
          for (int b = 0; b < nblocks; b++) bt[b] = nblocks - 1 - b;
          for (int s = 0; s < seqs; s++) lens[s] = longest > 10 ? longest : 1 + s % 10, qs[s + 1] = s + 1;
          auto q = rnd((size_t)seqs * heads * hd);
          std::vector<float> out((size_t)seqs * heads * hd), ref(out.size());
          const std::string name = std::string("paged_attention groups ") + (dt ? "bf16" : "f32") + " hd=" + std::to_string(hd) +
                                   " group=" + std::to_string(group) + " seqs=" + std::to_string(seqs) + " keys<=" +
                                   std::to_string(longest) + " window=" + std::to_string(window);
          if (const char* err = bs::paged_attention(out.data(), q.data(), kc.data(), vc.data(), dt, bt.data(), per, lens.data(),
                                                    qs.data(), seqs, seqs, heads, kvh, hd, bsz, nblocks, 0.3f, window)) {
            std::printf("  %s rejected: %s FAIL\n", name.c_str(), err);
            failures++;
            continue;
          }
          for (int s = 0; s < seqs; s++)
            for (int h = 0; h < heads; h++) {
              const int kh = h / group, visible = lens[s], first = window > 0 ? std::max(0, visible - window) : 0;
              std::vector<double> p(visible, 0.0);
              double mx = -1e30, sum = 0;
              for (int j = first; j < visible; j++) {
                const int64_t kr = ((int64_t)bt[s * per + j / bsz] * bsz + j % bsz) * row + kh * hd;
                double d = 0;
                for (int e = 0; e < hd; e++) d += (double)q[((size_t)s * heads + h) * hd + e] * held(kc, kr + e);
                p[j] = d * 0.3;
                mx = std::max(mx, p[j]);
              }
              for (int j = first; j < visible; j++) { p[j] = std::exp(p[j] - mx); sum += p[j]; }
              for (int e = 0; e < hd; e++) {
                double o = 0;
                for (int j = first; j < visible; j++)
                  o += p[j] / sum * held(vc, ((int64_t)bt[s * per + j / bsz] * bsz + j % bsz) * row + kh * hd + e);
                ref[((size_t)s * heads + h) * hd + e] = (float)o;
              }
            }
          expect_close(name, out, ref, 3e-5f);
        }
      }
    }
  }
}

int main(int argc, char** argv) {
  std::vector<std::string> levels;
  for (int i = 1; i < argc; i++) {
    if (std::strncmp(argv[i], "expect-best=", 12) == 0) {  // run under an emulated CPU: auto must pick this
      std::string all = bs::supported_levels(), want = argv[i] + 12;
      if (all.substr(0, all.find(',')) != want) {
        std::printf("best level on this CPU is %s, expected %s FAIL\n", all.c_str(), want.c_str());
        failures++;
      }
    } else if (std::strcmp(argv[i], "all") == 0) {
      std::string all = bs::supported_levels();
      for (size_t p = 0; p <= all.size();) {
        size_t c = all.find(',', p);
        if (c == std::string::npos) c = all.size();
        if (c > p) levels.push_back(all.substr(p, c - p));
        p = c + 1;
      }
    } else {
      levels.push_back(argv[i]);
    }
  }
  if (levels.empty()) levels.push_back("auto");
  std::printf("this CPU runs: %s\n", bs::supported_levels());
  if (!bs::matmul(nullptr, nullptr, nullptr, 0, 1, 1, 1)) {
    std::printf("a kernel ran before any level was selected FAIL\n");
    failures++;
  }
  if (!bs::select_level(BS_KERNEL_DIR, "avx9000")) {
    std::printf("an unknown level was accepted FAIL\n");
    failures++;
  }
  for (const std::string& l : levels) {
    if (const char* e = bs::select_level(BS_KERNEL_DIR, l.c_str())) {
      std::printf("level %s: %s FAIL\n", l.c_str(), e);
      failures++;
      continue;
    }
    const int before = failures;
    test_level();
    test_attention_groups();
    std::printf("level %-10s %s\n", bs::level(), failures == before ? "ok" : "FAIL");
  }
  std::printf("%d failed\n", failures);
  return failures ? 1 : 0;
}

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

  for (int n : {1, 3, 8, 23, 24, 33, 70}) {
    for (int k : {8, 64, 172, 576}) {
      for (int m : {37, 64, 100}) {
        auto x = rnd((size_t)n * k), w = rnd((size_t)m * k);
        std::vector<uint16_t> wb(w.size()), wh(w.size());
        bs::round_to_bf16(wb.data(), w.data(), (int64_t)w.size());
        for (size_t i = 0; i < w.size(); i++) wh[i] = to_f16(w[i]);
        for (int dt : {0, 1, 2}) {
          std::vector<float> out((size_t)n * m, NAN), ref((size_t)n * m);
          const void* wp = dt == 0 ? (const void*)w.data() : dt == 1 ? (const void*)wh.data() : (const void*)wb.data();
          if (const char* e = bs::matmul(out.data(), x.data(), wp, dt, n, k, m)) {
            std::printf("  matmul rejected: %s FAIL\n", e);
            failures++;
            continue;
          }
          for (int i = 0; i < n; i++)
            for (int j = 0; j < m; j++) {
              double s = 0;
              for (int p = 0; p < k; p++) {
                const size_t wi = (size_t)j * k + p;
                const float wv = dt == 0 ? w[wi] : dt == 1 ? f16_value(wh[wi]) : bf16_value(wb[wi]);
                s += (double)x[i * k + p] * wv;
              }
              ref[i * m + j] = (float)s;
            }
          char name[96];
          std::snprintf(name, sizeof name, "matmul %s n=%d k=%d m=%d", dt == 0 ? "f32" : dt == 1 ? "f16" : "bf16", n, k, m);
          expect_close(name, out, ref, 1e-4f * std::sqrt((float)k));
        }
      }
    }
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

  // One sequence of 5 cached tokens (2 new) in blocks {3, 1, 2} of size 2; 4 heads over 2 kv heads;
  // head_dim 8 (below a vector) and 64 (several vectors: the vector softmax path).
  for (int hd : {8, 64}) {
    const int bsz = 2, kvh = 2, heads = 4, nblocks = 4;
    auto kc = rnd((size_t)nblocks * bsz * kvh * hd), vc = rnd((size_t)nblocks * bsz * kvh * hd);
    auto q = rnd((size_t)2 * heads * hd);
    int bt[3] = {3, 1, 2}, lens[1] = {5}, qs[2] = {0, 2};
    std::vector<float> out((size_t)2 * heads * hd), ref((size_t)2 * heads * hd);
    const char* err = bs::paged_attention(out.data(), q.data(), kc.data(), vc.data(), bt, 3, lens, qs, 1, 2, heads, kvh, hd, bsz, nblocks, 0.35f, 0);
    if (err) { std::printf("  paged_attention rejected: %s FAIL\n", err); failures++; continue; }
    for (int t = 0; t < 2; t++)
      for (int h = 0; h < heads; h++) {
        const int kh = h / (heads / kvh), visible = 5 - 2 + t + 1;
        std::vector<double> p(visible);
        double mx = -1e30, sum = 0;
        for (int j = 0; j < visible; j++) {
          const float* kr = &kc[((size_t)bt[j / bsz] * bsz + j % bsz) * kvh * hd + kh * hd];
          double s = 0;
          for (int d = 0; d < hd; d++) s += (double)q[(t * heads + h) * hd + d] * kr[d];
          p[j] = s * 0.35;
          mx = std::max(mx, p[j]);
        }
        for (auto& x : p) { x = std::exp(x - mx); sum += x; }
        for (int d = 0; d < hd; d++) {
          double o = 0;
          for (int j = 0; j < visible; j++) o += p[j] / sum * vc[((size_t)bt[j / bsz] * bsz + j % bsz) * kvh * hd + kh * hd + d];
          ref[(t * heads + h) * hd + d] = (float)o;
        }
      }
    expect_close("paged_attention hd=" + std::to_string(hd), out, ref, 1e-5f);
    int bad[3] = {3, 9, 2};
    if (!bs::paged_attention(out.data(), q.data(), kc.data(), vc.data(), bad, 3, lens, qs, 1, 2, heads, kvh, hd, bsz, nblocks, 0.35f, 0)) {
      std::printf("  paged_attention accepted block id 9 of 4 FAIL\n");
      failures++;
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
    std::printf("level %-10s %s\n", bs::level(), failures == before ? "ok" : "FAIL");
  }
  std::printf("%d failed\n", failures);
  return failures ? 1 : 0;
}

// Checks the CPU kernels against naive loops on random inputs; exits non-zero on a mismatch.
#include <cmath>
#include <cstdio>
#include <random>
#include <vector>

#include "cpu_kernels.h"

static int failures = 0;
static void expect_close(const char* what, const std::vector<float>& a, const std::vector<float>& b, float tol) {
  float worst = 0;
  for (size_t i = 0; i < a.size(); i++) worst = std::max(worst, std::fabs(a[i] - b[i]));
  std::printf("%-28s max abs err %.3g %s\n", what, worst, worst <= tol ? "ok" : "FAIL");
  if (!(worst <= tol)) failures++;
}

int main() {
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> u(-1, 1);
  auto rnd = [&](size_t n) { std::vector<float> v(n); for (auto& x : v) x = u(rng); return v; };

  for (int n : {1, 3, 8, 33}) {
    for (int k : {8, 64, 172, 576}) {
      const int m = 37;
      auto x = rnd((size_t)n * k), w = rnd((size_t)m * k);
      std::vector<float> out((size_t)n * m), ref((size_t)n * m);
      bs::matmul(out.data(), x.data(), w.data(), n, k, m);
      for (int i = 0; i < n; i++)
        for (int j = 0; j < m; j++) {
          double s = 0;
          for (int p = 0; p < k; p++) s += (double)x[i * k + p] * w[j * k + p];
          ref[i * m + j] = (float)s;
        }
      char name[64];
      std::snprintf(name, sizeof name, "matmul n=%d k=%d", n, k);
      expect_close(name, out, ref, 1e-4f * std::sqrt((float)k));
    }
  }

  // One sequence of 5 cached tokens (2 new) in blocks {3, 1, 2} of size 2; 4 heads over 2 kv heads.
  const int bsz = 2, kvh = 2, hd = 8, heads = 4, nblocks = 4;
  auto kc = rnd((size_t)nblocks * bsz * kvh * hd), vc = rnd((size_t)nblocks * bsz * kvh * hd);
  auto q = rnd((size_t)2 * heads * hd);
  int bt[3] = {3, 1, 2}, lens[1] = {5}, qs[2] = {0, 2};
  std::vector<float> out((size_t)2 * heads * hd), ref((size_t)2 * heads * hd);
  const char* err = bs::paged_attention(out.data(), q.data(), kc.data(), vc.data(), bt, 3, lens, qs, 1, 2, heads, kvh, hd, bsz, nblocks, 0.35f, 0);
  if (err) { std::printf("paged_attention rejected: %s\n", err); return 1; }
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
  expect_close("paged_attention", out, ref, 1e-5f);

  int bad[3] = {3, 9, 2};
  if (!bs::paged_attention(out.data(), q.data(), kc.data(), vc.data(), bad, 3, lens, qs, 1, 2, heads, kvh, hd, bsz, nblocks, 0.35f, 0)) {
    std::printf("paged_attention accepted block id 9 of 4\n");
    failures++;
  }
  std::printf("%d failed\n", failures);
  return failures ? 1 : 0;
}

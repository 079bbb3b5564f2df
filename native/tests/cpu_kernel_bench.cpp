// Peak arithmetic of one core and matmul throughput at the shapes of a SmolLM2-135M-sized model, per
// instruction set level: `cpu_kernel_bench [level|auto] [threads]`. A benchmark, not a test: numbers
// go to docs/benchmarks.md. The matmul figures are medians of repeated calls with all threads.
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

#include "cpu_kernels.h"

int main(int argc, char** argv) {
  const char* level = argc > 1 ? argv[1] : "auto";
  const int threads = argc > 2 ? std::atoi(argv[2]) : 0;
  if (const char* e = bs::select_level(BS_KERNEL_DIR, level)) {
    std::printf("%s\n", e);
    return 1;
  }
  bs::set_threads(threads);
  std::printf("level %s, %d threads\n", bs::level(), bs::threads());
  const double fma1 = bs::peak_gflops(0, 0.5), bf1 = bs::peak_gflops(1, 0.5);
  std::printf("peak of one core: F32 FMA %.1f GFLOP/s, BF16 dot (vdpbf16ps) %.1f GFLOP/s\n", fma1, bf1);
  // the same probe on every thread at once: the machine's peak (cores may share clocks and units)
  double all = 0;
#pragma omp parallel num_threads(bs::threads()) reduction(+ : all)
  all += bs::peak_gflops(0, 0.5);
  std::printf("peak of %d threads together: F32 FMA %.1f GFLOP/s\n", bs::threads(), all);

  std::mt19937 rng(1);
  std::uniform_real_distribution<float> u(-1, 1);
  struct Shape { int k, m; const char* what; };
  const Shape shapes[] = {{576, 576, "q/o"}, {576, 1536, "gate/up"}, {1536, 576, "down"}, {576, 49152, "lm_head"}};
  std::printf("| n | k | m | dtype | ms | GFLOP/s | fraction of %d-thread FMA peak |\n| --- | --- | --- | --- | --- | --- | --- |\n",
              bs::threads());
  for (int n : {1, 8, 32, 128, 512}) {
    for (const Shape& s : shapes) {
      if (s.m == 49152 && n > 32) continue;
      std::vector<float> x((size_t)n * s.k), w((size_t)s.m * s.k), out((size_t)n * s.m);
      for (auto& v : x) v = u(rng);
      for (auto& v : w) v = u(rng);
      std::vector<uint16_t> wb(w.size());
      bs::round_to_bf16(wb.data(), w.data(), (int64_t)w.size());
      for (int dt : {0, 2}) {
        const void* wp = dt == 0 ? (const void*)w.data() : (const void*)wb.data();
        std::vector<double> ms;
        const int reps = std::max(3, (int)(2e9 / (2.0 * n * s.k * s.m)));
        for (int r = 0; r < std::min(reps, 50); r++) {
          auto t0 = std::chrono::steady_clock::now();
          bs::matmul(out.data(), x.data(), wp, dt, n, s.k, s.m);
          ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
        }
        std::sort(ms.begin(), ms.end());
        const double med = ms[ms.size() / 2], gf = 2.0 * n * s.k * s.m / med / 1e6;
        std::printf("| %d | %d | %d (%s) | %s | %.3f | %.1f | %.0f%% |\n", n, s.k, s.m, s.what, dt ? "bf16" : "f32", med, gf,
                    100 * gf / all);
      }
    }
  }
  return 0;
}

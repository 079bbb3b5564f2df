// Peak arithmetic of one core, matmul throughput at the shapes of a SmolLM2-135M-sized model and decode
// attention over a paged cache (9 query / 3 KV heads of 64, blocks of 16 in shuffled order), per
// instruction set level: `cpu_kernel_bench [level|auto] [threads] [all|matmul|attention|decode]`. A benchmark,
// not a test: numbers go to docs/benchmarks.md. Figures are medians of repeated calls with all threads.
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "cpu_kernels.h"

// Decode attention: one query token per sequence, every sequence holding ctx tokens, the cache of
// kv_dtype filled (every page touched) and its blocks handed out in shuffled order.
static void attention(double peak, std::mt19937& rng) {
  const int heads = 9, kvh = 3, hd = 64, bs = 16;
  std::printf("| decode attention: seqs | context | kv dtype | ms | K/V GB/s |\n| --- | --- | --- | --- | --- |\n");
  (void)peak;
  for (int dt : {0, 2}) {
    for (auto [seqs, ctx] : std::vector<std::pair<int, int>>{{1, 2048}, {8, 1024}, {32, 128}, {32, 512}, {32, 2048}}) {
      const int per = ctx / bs, blocks = seqs * per;
      const size_t elems = (size_t)blocks * bs * kvh * hd, esz = dt == 0 ? 4 : 2;
      // the cache comes from the library's allocator, as the server's does (huge pages where it asks)
      void *kp = nullptr, *vp = nullptr;
      if (bs::alloc(&kp, elems * esz) || bs::alloc(&vp, elems * esz)) {
        std::printf("out of memory\n");
        return;
      }
      char *kc_ = (char*)kp, *vc_ = (char*)vp;
      {  // values in [-1, 1) (random bytes would make denormals, which no model's cache holds)
        std::uniform_real_distribution<float> u(-1, 1);
        std::vector<float> f(elems);
        for (char* c : {kc_, vc_}) {
          for (auto& v : f) v = u(rng);
          if (dt == 0) std::memcpy(c, f.data(), elems * 4);
          else bs::round_to_bf16((uint16_t*)c, f.data(), (int64_t)elems);
        }
      }
      std::vector<float> q((size_t)seqs * heads * hd), out(q.size());
      for (auto& v : q) v = 0.01f * (float)(rng() % 100);
      std::vector<int32_t> table(blocks), lens(seqs, ctx), start(seqs + 1);
      for (int i = 0; i < blocks; i++) table[i] = i;
      std::shuffle(table.begin(), table.end(), rng);
      for (int s = 0; s <= seqs; s++) start[s] = s;
      std::vector<double> ms;
      for (int r = 0; r < 25; r++) {
        auto t0 = std::chrono::steady_clock::now();
        if (const char* e = bs::paged_attention(out.data(), q.data(), kc_, vc_, dt, table.data(), per, lens.data(),
                                                start.data(), seqs, seqs, heads, kvh, hd, bs, blocks, 0.125f, 0)) {
          std::printf("%s\n", e);
          return;
        }
        ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
      }
      bs::free(kp);
      bs::free(vp);
      std::sort(ms.begin(), ms.end());
      const double med = ms[ms.size() / 2];
      std::printf("| %d | %d | %s | %.3f | %.1f |\n", seqs, ctx, dt ? "bf16" : "f32", med, 2.0 * elems * esz / med / 1e6);
    }
  }
}


// Batch-1 decode's weight reads over a model's worth of BF16 matrices (30 layers of q, k, v, o, gate, up,
// down and the LM head, 269 MB: far beyond the caches), one matmul per op as the forward pass issues
// them, against the same bytes in a few large matmuls and against reading them with the bandwidth probe,
// the three interleaved in every round (this kind of VM's bandwidth moves within seconds): the difference
// is what splitting a token into 211 small matmuls costs (waking the team, its barrier, each op's ramp-up).
static void decode_stream(std::mt19937& rng) {
  struct Op { int k, m; };
  std::vector<Op> ops;
  for (int l = 0; l < 30; l++) {
    for (Op o : {Op{576, 576}, Op{576, 192}, Op{576, 192}, Op{576, 576}, Op{576, 1536}, Op{576, 1536}, Op{1536, 576}}) {
      ops.push_back(o);
    }
  }
  ops.push_back({576, 49152});
  size_t total = 0;
  for (const Op& o : ops) total += (size_t)o.k * o.m;
  std::vector<uint16_t> w(total);
  std::uniform_int_distribution<int> bits(0x3c00, 0x3f80); // BF16 values in [2^-7, 1)
  for (auto& v : w) v = (uint16_t)bits(rng);
  std::vector<float> x(1536, 0.5f), out(98304);
  auto ms_since = [](std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  };
  std::vector<double> per_op, few, read;
  for (int r = 0; r < 15; r++) {
    auto t0 = std::chrono::steady_clock::now();
    size_t off = 0;
    for (const Op& o : ops) {
      bs::matmul(out.data(), x.data(), w.data() + off, 2, 1, o.k, o.m);
      off += (size_t)o.k * o.m;
    }
    per_op.push_back(ms_since(t0));
    t0 = std::chrono::steady_clock::now();
    for (size_t done = 0; done + 576 <= total; done += (size_t)576 * 98304) {
      bs::matmul(out.data(), x.data(), w.data() + done, 2, 1, 576, (int64_t)std::min<size_t>(98304, (total - done) / 576));
    }
    few.push_back(ms_since(t0));
    t0 = std::chrono::steady_clock::now();
    volatile double sink = bs::stream_read((const float*)w.data(), (int64_t)(total / 2));
    (void)sink;
    read.push_back(ms_since(t0));
  }
  auto med = [](std::vector<double> v) { std::sort(v.begin(), v.end()); return v[v.size() / 2]; };
  const double mb = total * 2 / 1e6, a = med(per_op), b = med(few), c = med(read);
  std::printf("\ndecode batch 1 over %.1f MB of BF16 weights (%zu matmuls), medians of 15 interleaved rounds\n", mb, ops.size());
  std::printf("| how | ms a token | GB/s | fraction of the bandwidth probe's rate |\n| --- | --- | --- | --- |\n");
  std::printf("| one matmul per op | %.2f | %.1f | %.0f%% |\n", a, mb / a, 100 * c / a);
  std::printf("| the same bytes in a few large matmuls | %.2f | %.1f | %.0f%% |\n", b, mb / b, 100 * c / b);
  std::printf("| the bandwidth probe (stream_read) over the same bytes | %.2f | %.1f | 100%% |\n", c, mb / c);
}

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

  const std::string what = argc > 3 ? argv[3] : "all";
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> u(-1, 1);
  if (what == "all" || what == "attention") attention(all, rng);
  if (what == "attention") return 0;
  if (what == "all" || what == "decode") decode_stream(rng);
  if (what == "decode") return 0;
  struct Shape { int k, m; const char* what; };
  const Shape shapes[] = {{576, 576, "q/o"}, {576, 1536, "gate/up"}, {1536, 576, "down"}, {576, 49152, "lm_head"}};
  std::printf("| n | k | m | dtype | ms | GFLOP/s | fraction of %d-thread peak (FMA; BF16 dot for bf16 x bf16) |\n"
              "| --- | --- | --- | --- | --- | --- | --- |\n", bs::threads());
  for (int n : {1, 8, 32, 128, 512}) {
    for (const Shape& s : shapes) {
      if (s.m == 49152 && n > 32) continue;
      std::vector<float> x((size_t)n * s.k), w((size_t)s.m * s.k), out((size_t)n * s.m);
      for (auto& v : x) v = u(rng);
      for (auto& v : w) v = u(rng);
      std::vector<uint16_t> wb(w.size());
      bs::round_to_bf16(wb.data(), w.data(), (int64_t)w.size());
      // dt 3: BF16 weights with BF16 activations (set_bf16_activations), where the level has it
      for (int dt : {0, 2, 3}) {
        if (dt == 3 && bs::set_bf16_activations(1) == 0) continue;
        const void* wp = dt == 0 ? (const void*)w.data() : (const void*)wb.data();
        std::vector<double> ms;
        const int reps = std::max(3, (int)(2e9 / (2.0 * n * s.k * s.m)));
        for (int r = 0; r < std::min(reps, 50); r++) {
          auto t0 = std::chrono::steady_clock::now();
          bs::matmul(out.data(), x.data(), wp, dt == 3 ? 2 : dt, n, s.k, s.m);
          ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
        }
        bs::set_bf16_activations(0);
        std::sort(ms.begin(), ms.end());
        const double med = ms[ms.size() / 2], gf = 2.0 * n * s.k * s.m / med / 1e6;
        // BF16 x BF16 against the BF16 dot product's peak (one core's, times the threads)
        const double peak = dt == 3 ? bf1 * bs::threads() : all;
        std::printf("| %d | %d | %d (%s) | %s | %.3f | %.1f | %.0f%% |\n", n, s.k, s.m, s.what,
                    dt == 0 ? "f32" : dt == 2 ? "bf16" : "bf16 x bf16 act", med, gf, 100 * gf / peak);
      }
    }
  }
  return 0;
}

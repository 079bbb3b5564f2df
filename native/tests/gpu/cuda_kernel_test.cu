// Every CUDA kernel against the CPU library on random inputs, then benchmarks. Needs a GPU; run it
// through run.sh. Exit code: 0 when every check passes. Writes the full results to argv[1] if given.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdarg>
#include <functional>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "cpu_kernels.h"
#include "cuda_backend.h"

static int failures = 0;
static FILE* results = nullptr;

static void say(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char* fmt, ...) {
  char buf[1024];
  va_list a;
  va_start(a, fmt);
  vsnprintf(buf, sizeof buf, fmt, a);
  va_end(a);
  fputs(buf, stdout);
  if (results) fputs(buf, results);
}

static void ok(const char* what, const char* err) {
  if (err) {
    say("FAIL %s: %s\n", what, err);
    exit(1);
  }
}

template <typename T>
struct Dev {
  T* p = nullptr;
  size_t n = 0;
  explicit Dev(size_t count) : n(count) { ok("alloc", bscuda::alloc((void**)&p, std::max<size_t>(1, n) * sizeof(T))); }
  Dev(const std::vector<T>& h) : Dev(h.size()) { ok("upload", bscuda::copy(p, h.data(), n * sizeof(T), 1)); }
  std::vector<T> get() const {
    std::vector<T> h(n);
    ok("download", bscuda::copy(h.data(), p, n * sizeof(T), 2));
    return h;
  }
  ~Dev() { bscuda::free(p); }
};

static std::mt19937 rng;  // seeded in main: fresh inputs each run unless BS_SEED repeats one
static std::vector<float> rnd(size_t n, float lo = -1, float hi = 1) {
  std::uniform_real_distribution<float> u(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) x = u(rng);
  return v;
}

static void compare(const std::string& what, const std::vector<float>& ref, const std::vector<float>& got, double tol) {
  double worst = 0, scale = 1e-6;
  for (size_t i = 0; i < ref.size(); i++) {
    worst = std::max(worst, (double)std::fabs(ref[i] - got[i]));
    scale = std::max(scale, (double)std::fabs(ref[i]));
  }
  double rel = worst / scale;
  bool pass = rel <= tol;
  if (!pass) failures++;
  say("%-58s rel err %.2e (tol %.0e) %s\n", what.c_str(), rel, tol, pass ? "ok" : "FAIL");
}

static uint16_t to_bf16(float f) {
  uint32_t u;
  memcpy(&u, &f, 4);
  u += 0x7fff + ((u >> 16) & 1);  // round to nearest even
  return (uint16_t)(u >> 16);
}
static float from_bf16(uint16_t b) {
  uint32_t u = (uint32_t)b << 16;
  float f;
  memcpy(&f, &u, 4);
  return f;
}

struct AttnCase {
  int seqs, heads, kvh, hd, bs, maxctx;
  bool decode;
  int window = 0;  // sliding window in keys; 0 for full causal attention
  int kv_dtype = 0; // the caches' element type: 0 F32, 1 F16, 2 BF16
};

static const char* kv_name(int dt) { return dt == 0 ? "f32" : dt == 1 ? "f16" : "bf16"; }

// A cache of `slots` random rows, narrowed to kv_dtype by the CPU library's kv_write: its bytes.
static std::vector<char> typed_cache(const std::vector<float>& values, int kv_dtype, int64_t slots, int64_t kvh, int64_t hd) {
  std::vector<char> bytes((size_t)slots * kvh * hd * (kv_dtype == 0 ? 4 : 2));
  std::vector<int> all(slots);
  std::iota(all.begin(), all.end(), 0);
  ok("cpu kv_write", bs::kv_write(bytes.data(), bytes.data(), kv_dtype, values.data(), values.data(), all.data(), slots, kvh,
                                  hd, slots));
  return bytes;
}

// Builds a random mixed (or decode) batch, runs CPU and GPU attention, compares.
static void attention_case(const AttnCase& c) {
  std::uniform_int_distribution<int> len(1, c.maxctx);
  std::vector<int> lens(c.seqs), qs(c.seqs + 1, 0);
  int maxb = 0, total_blocks = 0;
  for (int s = 0; s < c.seqs; s++) {
    lens[s] = len(rng);
    int ql = c.decode ? 1 : std::uniform_int_distribution<int>(1, std::min(lens[s], 70))(rng);
    qs[s + 1] = qs[s] + ql;
    int nb = (lens[s] + c.bs - 1) / c.bs;
    maxb = std::max(maxb, nb);
    total_blocks += nb;
  }
  int T = qs[c.seqs], nblocks = total_blocks + 3;
  std::vector<int> ids(nblocks);
  std::iota(ids.begin(), ids.end(), 0);
  std::shuffle(ids.begin(), ids.end(), rng);
  std::vector<int> bt((size_t)c.seqs * maxb, 0);
  int next = 0;
  for (int s = 0; s < c.seqs; s++)
    for (int b = 0; b < (lens[s] + c.bs - 1) / c.bs; b++) bt[(size_t)s * maxb + b] = ids[next++];
  size_t cache = (size_t)nblocks * c.bs * c.kvh * c.hd;
  const int64_t slots = (int64_t)nblocks * c.bs;
  auto kc = typed_cache(rnd(cache), c.kv_dtype, slots, c.kvh, c.hd), vc = typed_cache(rnd(cache), c.kv_dtype, slots, c.kvh, c.hd);
  auto q = rnd((size_t)T * c.heads * c.hd);
  float scale = 1.f / std::sqrt((float)c.hd);
  std::vector<float> ref((size_t)T * c.heads * c.hd);
  ok("cpu attention", bs::paged_attention(ref.data(), q.data(), kc.data(), vc.data(), c.kv_dtype, bt.data(), maxb, lens.data(),
                                          qs.data(), c.seqs, T, c.heads, c.kvh, c.hd, c.bs, nblocks, scale, c.window));
  Dev<float> dq(q), dout(ref.size()),
      scratch((size_t)bscuda::attention_scratch_floats(c.seqs, c.heads, c.hd, (int64_t)maxb * c.bs));
  Dev<char> dk(kc), dv(vc);
  Dev<int> dbt(bt), dl(lens), dqs(qs);
  ok("gpu attention", bscuda::paged_attention(dout.p, dq.p, dk.p, dv.p, c.kv_dtype, dbt.p, maxb, dl.p, dqs.p, c.seqs, T, c.heads,
                                              c.kvh, c.hd, c.bs, nblocks, scale, c.window, scratch.p));
  char name[160];
  snprintf(name, sizeof name, "%s attention %s seqs=%d hd=%d bs=%d gqa=%d ctx<=%d window=%d", c.decode ? "decode " : "prefill",
           kv_name(c.kv_dtype), c.seqs, c.hd, c.bs, c.heads / c.kvh, c.maxctx, c.window);
  compare(name, ref, dout.get(), 1e-5);
}

// Median over 7 timed groups of `iters` calls (device events around each group), after one warm-up
// call: a single slow group (a clock ramp, another tenant) does not move the figure.
static float time_ms(const std::function<void()>& f, int iters) {
  cudaEvent_t a, b;
  cudaEventCreate(&a);
  cudaEventCreate(&b);
  f();
  ok("warm-up", bscuda::synchronize());
  std::vector<float> groups;
  for (int g = 0; g < 7; g++) {
    cudaEventRecord(a);
    for (int i = 0; i < iters; i++) f();
    cudaEventRecord(b);
    cudaEventSynchronize(b);
    float ms = 0;
    cudaEventElapsedTime(&ms, a, b);
    groups.push_back(ms / iters);
  }
  ok("timed calls", bscuda::synchronize());
  ok("timed calls", bscuda::check_error());
  cudaEventDestroy(a);
  cudaEventDestroy(b);
  std::sort(groups.begin(), groups.end());
  return groups[groups.size() / 2];
}

// Benchmark inputs are random, never the zeros a fresh allocation may hold (zeros can run faster and hide
// unwritten outputs): uniform in [-1, 1) from a hash of the index, written on the device because the
// largest buffers hold gigabytes. kind 0: F32, 1: F16, 2: BF16 (16-bit values packed two per word).
__global__ void k_fill(uint32_t* p, size_t words, uint32_t seed, int kind) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < words; i += (size_t)gridDim.x * blockDim.x) {
    uint32_t h = (uint32_t)i * 0x9E3779B1u ^ (uint32_t)(i >> 32) ^ seed;
    h ^= h >> 16; h *= 0x85EBCA6Bu; h ^= h >> 13; h *= 0xC2B2AE35u; h ^= h >> 16;
    float lo = (h & 0xFFFF) / 32768.f - 1.f, hi = (h >> 16) / 32768.f - 1.f;
    if (kind == 0) {
      reinterpret_cast<float*>(p)[i] = 0.5f * (lo + hi);
    } else if (kind == 1) {
      reinterpret_cast<__half*>(p)[2 * i] = __float2half_rn(lo);
      reinterpret_cast<__half*>(p)[2 * i + 1] = __float2half_rn(hi);
    } else {
      reinterpret_cast<__nv_bfloat16*>(p)[2 * i] = __float2bfloat16_rn(lo);
      reinterpret_cast<__nv_bfloat16*>(p)[2 * i + 1] = __float2bfloat16_rn(hi);
    }
  }
}
static uint32_t fill_seed = 1;
template <typename T>
static void fill(Dev<T>& d, int kind) {
  size_t words = d.n * sizeof(T) / 4;
  k_fill<<<1024, 256>>>(reinterpret_cast<uint32_t*>(d.p), words, fill_seed++ * 0x27D4EB2Fu, kind);
  ok("fill", cudaGetLastError() == cudaSuccess ? nullptr : "fill kernel launch failed");
}

int main(int argc, char** argv) {
  if (argc > 1) results = fopen(argv[1], "w");
  // BS_KERNEL_DIR in the environment: the CPU libraries' folder when this binary runs on another machine
  // than the one that built it (run.sh with a prebuilt binary)
  const char* kernel_dir = getenv("BS_KERNEL_DIR") ? getenv("BS_KERNEL_DIR") : BS_KERNEL_DIR;
  if (const char* e = bs::select_level(kernel_dir, "auto")) {
    say("CPU reference kernels: %s\n", e);
    return 1;
  }
  const unsigned seed = getenv("BS_SEED") ? (unsigned)strtoul(getenv("BS_SEED"), nullptr, 10) : std::random_device{}();
  rng.seed(seed);
  // BS_KERNEL_TEST_ONLY=matmul: the matmul checks and benchmark alone (run.sh's second pass through cuBLAS)
  const bool only_matmul = getenv("BS_KERNEL_TEST_ONLY") && strcmp(getenv("BS_KERNEL_TEST_ONLY"), "matmul") == 0;
  int n = 0;
  if (bscuda::device_count(&n) || n == 0) {
    say("no CUDA device: nothing was tested\n");
    return 2;
  }
  char name[256];
  size_t fb, tb;
  int ma, mi;
  ok("device", bscuda::device_info(0, name, sizeof name, &fb, &tb, &ma, &mi));
  say("device: %s (sm_%d%d), %.1f GiB, matmul: %s, seed %u (BS_SEED repeats it)\n\n", name, ma, mi, tb / 1073741824.0,
      bscuda::matmul_impl(), seed);

  // --- elementwise and row ops
  if (!only_matmul) {
    int rows = 37, dim = 576, vocab = 300;
    auto table = rnd((size_t)vocab * dim);
    std::vector<int> ids(rows);
    for (auto& i : ids) i = std::uniform_int_distribution<int>(0, vocab - 1)(rng);
    std::vector<float> ref((size_t)rows * dim);
    bs::embedding(ref.data(), table.data(), 0, ids.data(), rows, dim, vocab);
    Dev<float> dt(table), dout(ref.size());
    Dev<int> di(ids);
    ok("embedding", bscuda::embedding(dout.p, dt.p, 0, di.p, rows, dim, vocab));
    compare("embedding", ref, dout.get(), 0);

    auto x = rnd((size_t)rows * dim), w = rnd(dim, 0.5f, 1.5f);
    bs::rmsnorm(ref.data(), x.data(), w.data(), rows, dim, 1e-5f);
    Dev<float> dx(x), dw(w);
    ok("rmsnorm", bscuda::rmsnorm(dout.p, dx.p, dw.p, rows, dim, 1e-5f));
    compare("rmsnorm", ref, dout.get(), 1e-5);

    int heads = 9, hd = 64, maxpos = 2048;
    auto cs = rnd((size_t)maxpos * hd);
    std::vector<int> pos(rows);
    for (auto& p : pos) p = std::uniform_int_distribution<int>(0, maxpos - 1)(rng);
    auto xr = rnd((size_t)rows * heads * hd);
    Dev<float> dxr(xr), dcs(cs);
    Dev<int> dp(pos);
    bs::rope(xr.data(), pos.data(), cs.data(), rows, heads, hd, maxpos);
    ok("rope", bscuda::rope(dxr.p, dp.p, dcs.p, rows, heads, hd, maxpos));
    compare("rope", xr, dxr.get(), 1e-5);

    auto g = rnd(100000), u = rnd(100000);
    std::vector<float> sref(g.size());
    bs::silu_mul(sref.data(), g.data(), u.data(), g.size());
    Dev<float> dg(g), du(u), ds(g.size());
    ok("silu_mul", bscuda::silu_mul(ds.p, dg.p, du.p, g.size()));
    compare("silu_mul", sref, ds.get(), 1e-5);
    bs::add(g.data(), u.data(), g.size());
    ok("add", bscuda::add(dg.p, du.p, g.size()));
    compare("add", g, dg.get(), 1e-6);

    auto logits = rnd((size_t)rows * 49152);
    std::vector<int> am(rows);
    bs::argmax(am.data(), logits.data(), rows, 49152);
    Dev<float> dlog(logits);
    Dev<int> dam(rows);
    ok("argmax", bscuda::argmax(dam.p, dlog.p, rows, 49152));
    auto gam = dam.get();
    bool same = gam == am;
    if (!same) failures++;
    say("%-58s %s\n", "argmax", same ? "ok" : "FAIL");
  }
  // --- kv write and block copy, each cache type (narrowing on the GPU must give the CPU's bits)
  for (int dt : {0, 1, 2}) {
    if (only_matmul) break;
    int blocks = 20, bsz = 16, kvh = 3, hd = 64, tokens = 50;
    size_t cache = (size_t)blocks * bsz * kvh * hd;
    auto kc = typed_cache(rnd(cache), dt, (int64_t)blocks * bsz, kvh, hd), vc = typed_cache(rnd(cache), dt, (int64_t)blocks * bsz, kvh, hd);
    auto k = rnd((size_t)tokens * kvh * hd, -300, 300), v = rnd((size_t)tokens * kvh * hd);
    std::vector<int> slots(tokens);
    for (int i = 0; i < tokens; i++) slots[i] = i % 7 == 0 ? -1 : (i * 37) % (blocks * bsz);
    Dev<char> dkc(kc), dvc(vc);
    Dev<float> dk(k), dv(v);
    Dev<int> ds(slots);
    const std::string t = kv_name(dt);
    bs::kv_write(kc.data(), vc.data(), dt, k.data(), v.data(), slots.data(), tokens, kvh, hd, blocks * bsz);
    ok("kv_write", bscuda::kv_write(dkc.p, dvc.p, dt, dk.p, dv.p, ds.p, tokens, kvh, hd, blocks * bsz));
    const bool k_same = dkc.get() == kc, v_same = dvc.get() == vc;
    if (!k_same || !v_same) failures++;
    say("%-58s %s\n", ("kv_write " + t + ": the CPU library's bytes").c_str(), k_same && v_same ? "ok" : "FAIL");
    std::vector<int> src = {1, 5, 9}, dst = {2, 6, 19};
    Dev<int> dsrc(src), ddst(dst);
    bs::block_copy(kc.data(), vc.data(), dt, src.data(), dst.data(), 3, (int64_t)bsz * kvh * hd, blocks);
    ok("block_copy", bscuda::block_copy(dkc.p, dvc.p, dt, dsrc.p, ddst.p, 3, (int64_t)bsz * kvh * hd, blocks));
    const bool copied = dkc.get() == kc && dvc.get() == vc;
    if (!copied) failures++;
    say("%-58s %s\n", ("block_copy " + t).c_str(), copied ? "ok" : "FAIL");
    // a bad slot is reported, not written
    std::vector<int> bad = {blocks * bsz + 5};
    Dev<int> dbad(bad);
    ok("kv_write (bad)", bscuda::kv_write(dkc.p, dvc.p, dt, dk.p, dv.p, dbad.p, 1, kvh, hd, blocks * bsz));
    bscuda::synchronize();
    const char* e = bscuda::check_error();
    bool reported = e && strstr(e, "slot") != nullptr;
    if (!reported) failures++;
    say("%-58s %s\n", "out-of-range slot is reported", reported ? "ok" : "FAIL");
    say("%-58s %s\n", "error word is cleared after reading", bscuda::check_error() == nullptr ? "ok" : "FAIL");
  }
  // --- matmul
  // odd k takes the scalar GEMV path; k = 576 the vectorised one below 16 rows (8 rows a pass: 8, 9 and 15 rows
  // take one full pass, a second of one row, a second of 7), and after the 32 tensor-core rows of 33
  for (int k : {576, 577})
  for (int rows : {1, 7, 8, 9, 15, 16, 33, 64}) {
    int m = 1536;
    auto x = rnd((size_t)rows * k), w = rnd((size_t)m * k);
    std::vector<float> ref((size_t)rows * m);
    bs::matmul(ref.data(), x.data(), w.data(), 0, rows, k, m);
    Dev<float> dx(x), dw(w), dout(ref.size());
    ok("matmul f32", bscuda::matmul_f32(dout.p, dx.p, dw.p, rows, k, m));
    compare("matmul fp32 n=" + std::to_string(rows) + " k=" + std::to_string(k), ref, dout.get(), 1e-5);
    // BF16: compare against the CPU product with the same BF16-rounded weights
    std::vector<uint16_t> wb(w.size());
    std::vector<float> wr(w.size());
    for (size_t i = 0; i < w.size(); i++) { wb[i] = to_bf16(w[i]); wr[i] = from_bf16(wb[i]); }
    bs::matmul(ref.data(), x.data(), wr.data(), 0, rows, k, m);
    Dev<uint16_t> dwb(wb), xs((size_t)rows * k);
    ok("matmul bf16", bscuda::matmul_bf16(dout.p, dx.p, xs.p, dwb.p, rows, k, m));
    compare("matmul bf16 n=" + std::to_string(rows) + " k=" + std::to_string(k), ref, dout.get(), 1e-2);
  }
  // --- attention: the vectorised kernels (head sizes 16-256) and the first ones (every size), each checked
  for (bool vec : {true, false}) {
  if (only_matmul) break;
  bscuda::set_vectorised_attention(vec);
  say("attention kernels: %s\n", vec ? "vectorised where they apply" : "the first kernels everywhere");
  for (int hd : {8, 16, 64, 128, 256})
    for (int bsz : {8, 16, 32})
      for (int gqa : {1, 2, 4, 7}) {  // 7: Qwen2.5-0.5B (14 query heads, 2 KV heads)
        // decode cases with the vectorised kernel's small splits (chosen for grids this small) and, at one
        // block size (the split does not depend on it), its 512-key splits forced: the only two it has
        auto decode_case = [&](const AttnCase& c) {
          attention_case(c);
          if (!vec || bsz != 16) return;
          ok("set_decode_partition", bscuda::set_decode_partition(512));
          attention_case(c);
          ok("set_decode_partition", bscuda::set_decode_partition(0));
        };
        decode_case({5, 2 * gqa, 2, hd, bsz, 1500, true});
        attention_case({4, 2 * gqa, 2, hd, bsz, 300, false});
        decode_case({5, 2 * gqa, 2, hd, bsz, 1500, true, 37});   // sliding window (Mistral)
        decode_case({5, 2 * gqa, 2, hd, bsz, 1500, true, 600});  // a window across a partition's end
        decode_case({5, 2 * gqa, 2, hd, bsz, 1500, true, 130});  // ... and across a small split's end
        attention_case({4, 2 * gqa, 2, hd, bsz, 300, false, 9});
        if (bsz == 16)
          for (int dt : {1, 2}) {  // 16-bit caches
            decode_case({5, 2 * gqa, 2, hd, bsz, 1500, true, 0, dt});
            attention_case({4, 2 * gqa, 2, hd, bsz, 300, false, 0, dt});
            decode_case({5, 2 * gqa, 2, hd, bsz, 1500, true, 37, dt});
          }
      }
  }
  bscuda::set_vectorised_attention(true);
  {
    const char* e = bscuda::synchronize();
    if (!e) e = bscuda::check_error();
    if (e) { failures++; say("device error after the checks: %s\n", e); }
  }
  say("\n%d failed\n\n", failures);
#ifdef BS_CUDA_EMU
  // on the CPU emulator (cuda_emu.h) speed means nothing: the checks above are the test
  if (results) fclose(results);
  return failures ? 1 : 0;
#endif

  // --- benchmarks
  double copy_gbps = 0;
  ok("d2d", bscuda::d2d_bandwidth((size_t)1 << 30, 20, &copy_gbps));
  say("device-to-device copy: %.0f GB/s (read + write)\n\n", copy_gbps);
  say("| op | batch | context | heads/kv | head_dim | block | ms | GB/s K/V | %% of copy | TFLOP/s |\n");
  say("|---|---|---|---|---|---|---|---|---|---|\n");
  // split 128 or 512: the vectorised kernel with that many keys per split (it chooses 128 where
  // sequences x query heads x 512-key splits <= 2048); 0: the first kernels
  for (int split : {128, 512, 0})
  for (int dt : {0, 2})
  for (int batch : {1, 32, 128})
    if (!only_matmul)
    for (int ctx : {512, 4096}) {
      const bool vec = split != 0;
      bscuda::set_vectorised_attention(vec);
      ok("set_decode_partition", bscuda::set_decode_partition(split));
      int heads = 32, kvh = 8, hd = 128, bsz = 16, per = ctx / bsz, nb = batch * per;
      std::vector<int> bt(nb), lens(batch, ctx), qs(batch + 1);
      std::iota(bt.begin(), bt.end(), 0);
      std::shuffle(bt.begin(), bt.end(), rng);
      std::iota(qs.begin(), qs.end(), 0);
      Dev<float> kc((size_t)nb * bsz * kvh * hd), vc((size_t)nb * bsz * kvh * hd), q((size_t)batch * heads * hd),
          out((size_t)batch * heads * hd), scratch((size_t)bscuda::attention_scratch_floats(batch, heads, hd, ctx));
      Dev<int> dbt(bt), dl(lens), dqs(qs);
      fill(kc, dt);
      fill(vc, dt);
      fill(q, 0);
      float ms = time_ms([&] {
        bscuda::paged_attention(out.p, q.p, kc.p, vc.p, dt, dbt.p, per, dl.p, dqs.p, batch, batch, heads, kvh, hd, bsz, nb,
                                0.088f, 0, scratch.p);
      }, 20);
      double bytes = 2.0 * batch * ctx * kvh * hd * (dt == 0 ? 4 : 2);
      double gbps = bytes / (ms / 1e3) / 1e9;
      say("| decode %s%s | %d | %d | %d/%d | %d | %d | %.3f | %.0f | %.0f%% | |\n", kv_name(dt),
          split == 128 ? " (128-key splits)" : split == 512 ? " (512-key splits)" : " (first kernel)", batch, ctx, heads, kvh,
          hd, bsz, ms, gbps, 100 * gbps / copy_gbps);
    }
  ok("set_decode_partition", bscuda::set_decode_partition(0));
  for (bool vec : {true, false})
  for (int T : {512, 2048}) {
    if (only_matmul) break;
    bscuda::set_vectorised_attention(vec);
    int heads = 32, kvh = 8, hd = 128, bsz = 16, per = T / bsz;
    std::vector<int> bt(per), lens(1, T), qs = {0, T};
    std::iota(bt.begin(), bt.end(), 0);
    Dev<float> kc((size_t)per * bsz * kvh * hd), vc((size_t)per * bsz * kvh * hd), q((size_t)T * heads * hd),
        out((size_t)T * heads * hd), scratch(1);
    Dev<int> dbt(bt), dl(lens), dqs(qs);
    fill(kc, 0);
    fill(vc, 0);
    fill(q, 0);
    float ms = time_ms([&] {
      bscuda::paged_attention(out.p, q.p, kc.p, vc.p, 0, dbt.p, per, dl.p, dqs.p, 1, T, heads, kvh, hd, bsz, per, 0.088f,
                              0, scratch.p);
    }, 5);
    double flops = 4.0 * heads * hd * (double)T * T / 2;  // QK^T and PV over the causal half
    say("| prefill%s | 1 | %d | %d/%d | %d | %d | %.3f | | | %.2f |\n", vec ? "" : " (first kernel)", T, heads, kvh, hd, bsz, ms, flops / (ms / 1e3) / 1e12);
  }
  bscuda::set_vectorised_attention(true);
  for (int rows : {1, 32, 2048}) {
    int k = 4096, m = 4096;
    Dev<float> x((size_t)rows * k), out((size_t)rows * m);
    Dev<uint16_t> w((size_t)m * k), xs((size_t)rows * k);
    fill(x, 0);
    fill(w, 2);
    float ms = time_ms([&] { bscuda::matmul_bf16(out.p, x.p, xs.p, w.p, rows, k, m); }, 10);
    say("| matmul bf16 (%s) | %d | k=%d | m=%d | | | %.3f | %.0f (weights) | | %.2f |\n", bscuda::matmul_impl(), rows, k, m, ms,
        2.0 * m * k / (ms / 1e3) / 1e9, 2.0 * rows * k * m / (ms / 1e3) / 1e12);
  }
  if (results) fclose(results);
  return failures ? 1 : 0;
}

// Run-time choice of the CPU kernels: the best instruction set level the CPU has (CPUID through the
// compiler's __builtin_cpu_supports), or the one asked for, opened from the library's folder with
// RTLD_LOCAL so its code and its copies of library templates stay its own. Compiled for the baseline,
// so this file runs anywhere. Called from the engine thread (and once at load); the table pointer is
// atomic so a probe from another thread reads a whole one.
#include <dlfcn.h>

#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <string>

#include "cpu_kernels.h"
#include "cpu_table.h"

namespace bs {

namespace {

std::atomic<const KernelTable*> g_table{nullptr};
std::atomic<int> g_threads{0};
std::mutex g_select;
thread_local char g_msg[1024];

struct Level {
  const char* name;
  bool (*runs)();
};

#if defined(__x86_64__)
bool has_v2() { return __builtin_cpu_supports("sse4.2") && __builtin_cpu_supports("popcnt"); }
bool has_v3() {
  return has_v2() && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("bmi2");
}
#if defined(BS_EMULATED_AVX512)
// Test build only (CMake BLOCKSERVE_EMULATED_TESTS): the AVX-512 levels beside it were compiled for
// AVX2 with their intrinsics emulated, so an AVX2 CPU "has" them.
bool has_v4() { return has_v3(); }
bool has_bf16() { return has_v3(); }
#else
bool has_v4() {
  return has_v3() && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl");
}
bool has_bf16() {
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 11
  return has_v4() && __builtin_cpu_supports("avx512bf16");
#else
  return false;
#endif
}
#endif
// Best first.
const Level kLevels[] = {{"avx512bf16", has_bf16}, {"avx512", has_v4}, {"avx2", has_v3}, {"baseline", has_v2}};
#else
bool always() { return true; }
const Level kLevels[] = {{"baseline", always}};
#endif

template <typename... A>
const char* fail(const char* fmt, A... a) {
  std::snprintf(g_msg, sizeof g_msg, fmt, a...);
  return g_msg;
}

const char* not_ready() {
  const char* m = "CPU kernels: no instruction set level selected (select_level was not called or failed)";
  return m;
}

inline const KernelTable* T() { return g_table.load(std::memory_order_acquire); }

}  // namespace

const char* supported_levels() {
  static std::string s = [] {
    std::string r;
    for (const Level& l : kLevels)
      if (l.runs()) r += (r.empty() ? "" : ",") + std::string(l.name);
    return r;
  }();
  return s.c_str();
}

const char* select_level(const char* dir, const char* requested) {
  std::lock_guard<std::mutex> lock(g_select);
  const Level* chosen = nullptr;
  const bool any = requested == nullptr || *requested == 0 || std::strcmp(requested, "auto") == 0;
  for (const Level& l : kLevels) {
    if (any ? l.runs() : std::strcmp(l.name, requested) == 0) {
      chosen = &l;
      break;
    }
  }
  if (chosen == nullptr) {
    if (any) return fail("CPU kernels: this CPU lacks even the baseline level (x86-64-v2: SSE4.2, POPCNT)");
    std::string names;
    for (const Level& l : kLevels) names += (names.empty() ? "" : ", ") + std::string(l.name);
    return fail("CPU kernels: unknown instruction set level '%s' (known: auto, %s)", requested, names.c_str());
  }
  if (!chosen->runs())
    return fail("CPU kernels: this CPU cannot run level '%s' (it runs: %s)", chosen->name, supported_levels());
  std::string path = std::string(dir) + "/libblockserve_cpu_" + chosen->name + ".so";
  // Each level stays open once opened (a later switch back costs nothing); RTLD_LOCAL keeps its
  // symbols out of the global scope.
  void* h = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (h == nullptr) return fail("CPU kernels: cannot open %s: %s", path.c_str(), dlerror());
  auto table_fn = reinterpret_cast<const KernelTable* (*)()>(dlsym(h, "bs_cpu_kernel_table"));
  if (table_fn == nullptr) return fail("CPU kernels: %s has no bs_cpu_kernel_table", path.c_str());
  const KernelTable* t = table_fn();
  t->set_threads(g_threads.load());
  g_table.store(t, std::memory_order_release);
  return nullptr;
}

const char* level() {
  const KernelTable* t = T();
  return t ? t->level : "";
}

void set_threads(int n) {
  g_threads.store(n);
  if (const KernelTable* t = T()) t->set_threads(n);
}

int threads() {
  const KernelTable* t = T();
  return t ? t->threads() : 0;
}

int team_threads() {
  const KernelTable* t = T();
  return t ? t->team_threads() : 0;
}

const char* round_to_bf16(uint16_t* out, const float* in, int64_t n) {
  const KernelTable* t = T();
  if (!t) return not_ready();
  t->round_to_bf16(out, in, n);
  return nullptr;
}

double stream_read(const float* p, int64_t count) {
  const KernelTable* t = T();
  return t ? t->stream_read(p, count) : 0;
}

double peak_gflops(int bf16, double seconds) {
  const KernelTable* t = T();
  return t ? t->peak_gflops(bf16, seconds) : 0;
}

double exp_sum(float* out, const float* in, int64_t n, float shift, float scale) {
  const KernelTable* t = T();
  return t ? t->exp_sum(out, in, n, shift, scale) : NAN;
}

int set_bf16_activations(int on) {
  const KernelTable* t = T();
  return t ? t->set_bf16_activations(on) : 0;
}

int64_t packed_bf16_bytes(int64_t k, int64_t m) {
  const KernelTable* t = T();
  return t ? t->packed_bf16_bytes(k, m) : 0;
}

const char* pack_bf16(void* dst, const uint16_t* w, int64_t k, int64_t m) {
  const KernelTable* t = T();
  return t ? t->pack_bf16(dst, w, k, m) : not_ready();
}

const char* matmul_packed_bf16(float* out, const float* x, const void* packed, const uint16_t* w, int64_t k, int64_t m) {
  const KernelTable* t = T();
  return t ? t->matmul_packed_bf16(out, x, packed, w, k, m) : not_ready();
}

const char* matmul_packed_bf16_n(const float* x, int64_t k, int count, float* const* outs, const void* const* packed,
                                 const uint16_t* const* ws, const int64_t* ms) {
  const KernelTable* t = T();
  return t ? t->matmul_packed_bf16_n(x, k, count, outs, packed, ws, ms) : not_ready();
}

// ---- the contract, forwarded

#define BS_FORWARD(name, params, args)          \
  const char* name params {                     \
    const KernelTable* t = T();                 \
    return t ? t->name args : not_ready();      \
  }

BS_FORWARD(alloc, (void** p, size_t bytes), (p, bytes))
BS_FORWARD(free, (void* p), (p))
BS_FORWARD(load_weight, (float* out, const void* host_src, int dtype, int64_t n), (out, host_src, dtype, n))
BS_FORWARD(embedding, (float* out, const void* table, int table_dtype, const int32_t* ids, int64_t n, int64_t dim, int64_t rows),
           (out, table, table_dtype, ids, n, dim, rows))
BS_FORWARD(rmsnorm, (float* out, const float* x, const float* w, int64_t n, int64_t dim, float eps), (out, x, w, n, dim, eps))
BS_FORWARD(matmul, (float* out, const float* x, const void* w, int w_dtype, int64_t n, int64_t k, int64_t m),
           (out, x, w, w_dtype, n, k, m))
BS_FORWARD(rope, (float* x, const int32_t* pos, const float* cos_sin, int64_t n, int64_t heads, int64_t head_dim, int64_t max_pos),
           (x, pos, cos_sin, n, heads, head_dim, max_pos))
BS_FORWARD(silu_mul, (float* out, const float* gate, const float* up, int64_t count), (out, gate, up, count))
BS_FORWARD(add, (float* x, const float* y, int64_t count), (x, y, count))
BS_FORWARD(bias_add, (float* x, const float* bias, int64_t n, int64_t dim), (x, bias, n, dim))
BS_FORWARD(kv_write, (void* k_cache, void* v_cache, int kv_dtype, const float* k, const float* v, const int32_t* slots, int64_t n,
                      int64_t kv_heads, int64_t head_dim, int64_t num_slots),
           (k_cache, v_cache, kv_dtype, k, v, slots, n, kv_heads, head_dim, num_slots))
BS_FORWARD(paged_attention, (float* out, const float* q, const void* k_cache, const void* v_cache, int kv_dtype, const int32_t* block_tables,
                             int64_t max_blocks_per_seq, const int32_t* seq_lens, const int32_t* query_start, int64_t num_seqs,
                             int64_t num_tokens, int64_t num_heads, int64_t num_kv_heads, int64_t head_dim, int64_t block_size,
                             int64_t num_blocks, float scale, int64_t window),
           (out, q, k_cache, v_cache, kv_dtype, block_tables, max_blocks_per_seq, seq_lens, query_start, num_seqs, num_tokens, num_heads,
            num_kv_heads, head_dim, block_size, num_blocks, scale, window))
BS_FORWARD(block_copy, (void* k_cache, void* v_cache, int kv_dtype, const int32_t* src, const int32_t* dst, int64_t n,
                        int64_t block_elems, int64_t num_blocks),
           (k_cache, v_cache, kv_dtype, src, dst, n, block_elems, num_blocks))
BS_FORWARD(argmax, (int32_t* out, const float* logits, int64_t n, int64_t vocab), (out, logits, n, vocab))

// Transfers need no kernel level: host memory both sides.
const char* to_device(void* dst, const void* host_src, size_t bytes) {
  std::memcpy(dst, host_src, bytes);
  return nullptr;
}

const char* to_host(void* host_dst, const void* src, size_t bytes) {
  std::memcpy(host_dst, src, bytes);
  return nullptr;
}

}  // namespace bs

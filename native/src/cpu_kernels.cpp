// CPU kernels, compiled once per instruction set level: CMake builds this file into
// libblockserve_cpu_<level>.so with that level's -march (x86-64-v2, v3, v4, v4 + AVX-512 BF16; armv8-a),
// and cpu_dispatch.cpp picks the copy the CPU runs. Plain C++17 with GCC/Clang vector extensions: the
// vector width follows the level, and OpenMP spreads the work. Everything here has hidden visibility
// except bs_cpu_kernel_table(), so two levels loaded in one process never share a function.
#include "cpu_table.h"

#include <omp.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif
// BS_AVX512: this copy runs the AVX-512 levels' code (16 floats per vector). A test build (CMake
// BLOCKSERVE_EMULATED_TESTS) also compiles that code for AVX2 as BS_EMULATE_AVX512: GCC splits its
// 64-byte vectors in two, and the AVX-512 intrinsics below (BF16 widening, vdpbf16ps) have AVX2 stand-ins,
// so the levels' tiling, tails and packing are checked on machines without AVX-512; such a copy is never shipped.
#if defined(__AVX512F__) || (defined(BS_EMULATE_AVX512) && defined(__AVX2__))
#define BS_AVX512 1
#endif
#if defined(__aarch64__)
#include <arm_neon.h>
#endif

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string_view>
#include <type_traits>
#include <vector>

#if defined(__linux__)
#include <sys/mman.h>
#endif

#ifndef BS_LEVEL
#error "BS_LEVEL (the instruction set level's name) is set by CMake"
#endif

namespace {

#if defined(BS_AVX512)
constexpr int VL = 16;
#elif defined(__AVX__)
constexpr int VL = 8;
#else
constexpr int VL = 4;
#endif
// aligned(4)/(2): loads through these types compile to unaligned vector loads (weights sit in an
// mmap'd safetensors file at whatever offset the header gave them).
typedef float vf __attribute__((vector_size(VL * sizeof(float)), aligned(4)));
typedef int32_t vi __attribute__((vector_size(VL * sizeof(int32_t)), aligned(4)));
typedef uint32_t vu __attribute__((vector_size(VL * sizeof(uint32_t)), aligned(4)));
typedef uint16_t vh __attribute__((vector_size(VL * sizeof(uint16_t)), aligned(2)));

enum : int { DT_F32 = 0, DT_F16 = 1, DT_BF16 = 2 };

// A compile-time int as a value, for the template dispatch helpers below (f(Int<N>{}) in place of f<N>()).
template <int N>
using Int = std::integral_constant<int, N>;

std::atomic<int> g_threads{0};

inline int nthreads() {
  int t = g_threads.load(std::memory_order_relaxed);
  return t > 0 ? t : omp_get_num_procs();
}

// Threads alive that have entered a kernel able to open a parallel region. libgomp keeps a worker team
// for each such thread until it exits, and with more threads than CPUs it stops spinning at barriers:
// serving must open regions from the engine thread alone (Java's TransientThread), and this count lets
// a test check that it does.
std::atomic<int> g_team_owners{0};
struct TeamOwner {
  bool marked = false;
  ~TeamOwner() {
    if (marked) g_team_owners.fetch_sub(1, std::memory_order_relaxed);
  }
};
thread_local TeamOwner t_team_owner;

// The thread count of a parallel region (counting the caller among the team owners).
inline int team() {
  if (!t_team_owner.marked) {
    t_team_owner.marked = true;
    g_team_owners.fetch_add(1, std::memory_order_relaxed);
  }
  return nthreads();
}

// OpenMP thresholds. Below them a parallel region (waking the team, a barrier at its end: a few
// microseconds on 2 threads) costs more than the work it would split, so the op stays on the caller.
constexpr int64_t PAR_ROWS_ELEMS = 65536;      // rmsnorm, rope: floats touched
constexpr int64_t PAR_MATMUL_MACS = 32768;     // matmul: multiply-adds of one row chunk
constexpr int64_t PAR_ELEMWISE = 262144;       // add: memory-bound, ~1 MiB per operand
constexpr int64_t PAR_SILU = 16384;            // silu_mul: an exp and a division per element
constexpr int64_t PAR_ATTENTION_ELEMS = 16384; // paged attention: query rows x keys x head_dim
constexpr int64_t SPLIT_MIN_KEYS = 512;        // paged attention: split keys from here, chunks of >= 256
constexpr int64_t SPLIT_ALL_HEADS_KEYS = 256;  // ... and from here for fewer tokens than threads, all heads an item
constexpr int64_t PAR_UPCAST = 1 << 20;        // load-time dtype conversions

// Runs body on the team when `parallel`, else on the caller alone without entering libgomp. A region
// whose `if` clause is false is not free: libgomp still sets up a team of one and hands the idle worker
// back to its pool, 1.4-2.0 us a call here against 80 ns for a 576-float add run plainly, and a batch-1
// decode step has some 240 such calls between its matmuls. The body's worksharing constructs (`omp for`,
// `omp single`) bind to the region when there is one; outside any region they run the whole loop on the
// caller, as the OpenMP specification defines for orphaned constructs.
template <typename F>
inline void team_if(bool parallel, int threads, F body) {
  if (parallel && threads > 1) {
#pragma omp parallel num_threads(threads)
    body();
  } else {
    body();
  }
}

thread_local char g_msg[512];

template <typename... A>
const char* fail(const char* fmt, A... a) {
  std::snprintf(g_msg, sizeof g_msg, fmt, a...);
  return g_msg;
}

inline float hsum(vf v) {
#if defined(BS_AVX512)
  // halves by shuffles: GCC 12's AVX-512 extract intrinsics trip -Wmaybe-uninitialized in its own header
  typedef float v8 __attribute__((vector_size(32)));
  const v8 lo = __builtin_shufflevector(v, v, 0, 1, 2, 3, 4, 5, 6, 7);
  const v8 up = __builtin_shufflevector(v, v, 8, 9, 10, 11, 12, 13, 14, 15);
  const __m256 h = (__m256)(lo + up);
  __m128 a = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
  a = _mm_add_ps(a, _mm_movehl_ps(a, a));
  return _mm_cvtss_f32(_mm_add_ss(a, _mm_shuffle_ps(a, a, 1)));
#elif defined(__AVX__)
  __m128 a = _mm_add_ps(_mm256_castps256_ps128((__m256)v), _mm256_extractf128_ps((__m256)v, 1));
  a = _mm_add_ps(a, _mm_movehl_ps(a, a));
  return _mm_cvtss_f32(_mm_add_ss(a, _mm_shuffle_ps(a, a, 1)));
#else
  float s = 0.f;
  for (int i = 0; i < VL; i++) s += v[i];
  return s;
#endif
}

inline float dot(const float* a, const float* b, int64_t k) {
  float s = 0.f;
#pragma omp simd reduction(+ : s)
  for (int64_t i = 0; i < k; i++) s += a[i] * b[i];
  return s;
}

// exp on a vector: 2^n * e^r with n = round(x / ln 2), |r| <= ln2/2, e^r by its degree-6 Taylor
// polynomial (relative error below 2e-7, about one float ulp); 0 below -87.3, clamped above 88.7.
inline vf vexp(vf x) {
  const vf lo = vf{} - 87.3f, hi = vf{} + 88.7f;
  vf xc = x < hi ? x : hi;
  xc = xc > lo ? xc : lo;
  const float MAGIC = 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer held in the low bits
  vf t = xc * 1.44269504f + MAGIC;
  vi n = (vi)t - (vi)(vf{} + MAGIC);
  vf nf = t - MAGIC;
  vf r = xc - nf * 0.693145751953125f - nf * 1.428606765330187e-06f;
  vf p = 1.0f + r * (1.0f + r * (0.5f + r * (0.16666667f + r * (0.041666668f + r * (0.0083333338f + r * 0.0013888889f)))));
  vf out = (vf)((vi)p + (n << 23));
  return x > lo ? out : vf{};
}

// ---- weight element types: a vector of VL weights widened to float in registers

inline float f16_to_float(uint16_t h16) {
  const uint32_t h = h16;
  const uint32_t sign = (h & 0x8000u) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff;
  uint32_t f;
  if (exp == 0) {
    if (man == 0) {
      f = sign;
    } else {  // subnormal: renormalise
      int e = -1;
      uint32_t m = man;
      do { e++; m <<= 1; } while (!(m & 0x400));
      f = sign | ((uint32_t)(127 - 15 - e) << 23) | ((m & 0x3ff) << 13);
    }
  } else if (exp == 31) {
    f = sign | 0x7f800000u | (man << 13);
  } else {
    f = sign | ((exp + 112) << 23) | (man << 13);
  }
  float out;
  std::memcpy(&out, &f, 4);
  return out;
}

// Eight floats whatever the level's vector width: the unit of the 8 x 8 transposes that pack panels.
typedef float v8f __attribute__((vector_size(32), aligned(4)));
typedef uint16_t v8h __attribute__((vector_size(16), aligned(2)));
typedef uint32_t v8u __attribute__((vector_size(32)));

struct F32W {
  typedef float T;
  static vf load(const float* p) { return *(const vf*)p; }
  static void load8(v8f& r, const float* p) { r = *(const v8f*)p; }
  static float one(const float* p) { return *p; }
};

// GCC 12's AVX-512 conversion intrinsics warn -Wmaybe-uninitialized inside its own header (GCC bug
// 105593); the warning is about the header's masked-merge source, not this code.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
struct BF16W {
  typedef uint16_t T;
  // bf16 is the top half of a float: zero-extend to 32 bits and shift (vpmovzxwd + vpslld).
  // (intrinsics where present: GCC's generic tuning splits the vector-extension form into 128-bit halves)
  static vf load(const uint16_t* p) {
#if defined(BS_AVX512)
#if defined(__AVX512F__)
    return (vf)_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i*)p)), 16);
#else  // emulated: the same widening as two AVX2 halves
    typedef float v8 __attribute__((vector_size(32)));
    const v8 lo = (v8)_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i*)p)), 16);
    const v8 hi = (v8)_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i*)(p + 8))), 16);
    return __builtin_shufflevector(lo, hi, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
#endif
#elif defined(__AVX2__)
    return (vf)_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i*)p)), 16);
#else
    return (vf)(__builtin_convertvector(*(const vh*)p, vu) << 16);
#endif
  }
  // (by reference: a returned 32-byte vector would change the ABI at the SSE-only baseline level)
  static void load8(v8f& r, const uint16_t* p) {
#if defined(__AVX2__)
    r = (v8f)_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i*)p)), 16);
#else
    r = (v8f)(__builtin_convertvector(*(const v8h*)p, v8u) << 16);
#endif
  }
  static float one(const uint16_t* p) {
    uint32_t f = (uint32_t)*p << 16;
    float out;
    std::memcpy(&out, &f, 4);
    return out;
  }
};

#pragma GCC diagnostic pop

struct F16W {
  typedef uint16_t T;
  static vf load(const uint16_t* p) {
#if defined(BS_AVX512)
    // two F16C halves (GCC 12's _mm512_cvtph_ps trips -Wmaybe-uninitialized in its own header)
    typedef float v8 __attribute__((vector_size(32)));
    const v8 lo = (v8)_mm256_cvtph_ps(_mm_loadu_si128((const __m128i*)p));
    const v8 hi = (v8)_mm256_cvtph_ps(_mm_loadu_si128((const __m128i*)(p + 8)));
    return __builtin_shufflevector(lo, hi, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
#elif defined(__F16C__) && defined(__AVX__)
    return (vf)_mm256_cvtph_ps(_mm_loadu_si128((const __m128i*)p));
#elif defined(__aarch64__)
    return (vf)vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(p)));
#else
    vf r;
    for (int i = 0; i < VL; i++) r[i] = f16_to_float(p[i]);
    return r;
#endif
  }
  static void load8(v8f& r, const uint16_t* p) {
#if defined(__F16C__) && defined(__AVX__)
    r = (v8f)_mm256_cvtph_ps(_mm_loadu_si128((const __m128i*)p));
#else
    for (int i = 0; i < 8; i++) r[i] = f16_to_float(p[i]);
#endif
  }
  static float one(const uint16_t* p) { return f16_to_float(*p); }
};

// ---- narrowing float32 to the KV cache's 16-bit types (round to nearest even, as torch's .to() and
// F16C do); only kv_write narrows, once per token and layer. F16 saturates: a value beyond its range
// becomes +-65504, not infinity, so one outlier cannot turn a whole attention row into NaN.

inline uint16_t float_to_bf16(float v) {
  uint32_t f;
  std::memcpy(&f, &v, 4);
  if ((f & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((f >> 16) | 0x40);  // NaN stays a (quiet) NaN
  return (uint16_t)((f + 0x7fffu + ((f >> 16) & 1)) >> 16);
}

inline uint16_t float_to_f16(float v) {
  uint32_t f;
  std::memcpy(&f, &v, 4);
  const uint16_t sign = (uint16_t)((f >> 16) & 0x8000u);
  const uint32_t a = f & 0x7fffffffu;
  if (a > 0x7f800000u) return sign | 0x7e00;   // NaN
  if (a >= 0x477ff000u) return sign | 0x7bff;  // would round to 65520 or beyond: the largest finite, 65504
  if (a < 0x38800000u) {
    // below F16's smallest normal (2^-14): adding 0.5 puts the value's 2^-24 units in the low
    // mantissa bits, and the float addition rounds them to nearest even (reaching 0x400 is 2^-14)
    float t;
    std::memcpy(&t, &a, 4);
    t += 0.5f;
    uint32_t u;
    std::memcpy(&u, &t, 4);
    return sign | (uint16_t)(u - 0x3f000000u);
  }
  // normal: rebias the exponent (127 -> 15) and round the 13 dropped bits to nearest even
  return sign | (uint16_t)((a + 0xfffu + ((a >> 13) & 1) - (112u << 23)) >> 13);
}

// dst[0..n) = src[0..n) narrowed to the cache's type, a vector at a time where the level can.
inline void narrow_row(float* dst, const float* src, int64_t n) { std::memcpy(dst, src, n * sizeof(float)); }

inline void narrow_row(uint16_t* dst, const float* src, int64_t n, bool bf16) {
  int64_t i = 0;
  if (bf16) {
    for (; i + VL <= n; i += VL) {
      const vu f = (vu)*(const vf*)(src + i);
      const vu r = (f + 0x7fffu + ((f >> 16) & 1u)) >> 16;
      const vu q = (f >> 16) | 0x40u;
      *(vh*)(dst + i) = __builtin_convertvector(((f & 0x7fffffffu) > 0x7f800000u) ? q : r, vh);
    }
    for (; i < n; i++) dst[i] = float_to_bf16(src[i]);
    return;
  }
#if defined(__F16C__) && defined(__AVX__)
  // clamped to +-65504 first; min/max return their second operand when it is NaN, so NaN stays NaN
  const __m256 hi = _mm256_set1_ps(65504.0f), lo = _mm256_set1_ps(-65504.0f);
  for (; i + 8 <= n; i += 8) {
    const __m256 x = _mm256_max_ps(lo, _mm256_min_ps(hi, _mm256_loadu_ps(src + i)));
    _mm_storeu_si128((__m128i*)(dst + i), _mm256_cvtps_ph(x, _MM_FROUND_TO_NEAREST_INT));
  }
#endif
  for (; i < n; i++) dst[i] = float_to_f16(src[i]);
}

// The KV cache's element type (the contract's kv_dtype) as a loader: F32W, BF16W or F16W.
template <typename KT>
inline void narrow_kv(typename KT::T* dst, const float* src, int64_t n) {
  if constexpr (sizeof(typename KT::T) == 4) narrow_row(dst, src, n);
  else narrow_row(dst, src, n, std::is_same<KT, BF16W>::value);
}

// ---- matmul, few rows: dot products streaming the weights once (decode is bound by reading them)

// RX rows of x against RW rows of w: RX*RW dot products of length k, kept in vector registers.
// Each step loads RX+RW vectors and issues RX*RW FMAs, so the weights stream once per RX rows.
//
// The RW weight rows are read as RW short streams at once (a row of 576 BF16 weights is 18 cache
// lines), too short for the hardware prefetcher to lock on to before each ends: measured on a 2-core
// EPYC (AVX2), batch-1 passes over a model's weights read 9-11 GB/s of a 17-19 GB/s machine. So each
// step also prefetches the next tile (the RW rows after these, contiguous) as one sequential stream,
// spread evenly over the loop: with it the same passes read 17-19 GB/s. A tile of one weight row is
// itself one sequential stream over the whole matrix, which the hardware prefetcher follows; there the
// software prefetch cost speed (batch-1 decode on a 2-core Zen 4, the library with and without it
// alternating: F32 faster without in 6 of 6 rounds, medians 54.9 -> 56.4 tok/s; BF16 in 4 of 4, 95.6 ->
// 102.2), so only RW > 1 prefetches.
template <int RX, int RW, typename W>
inline void tile(float* out, int64_t ldo, const float* x, const typename W::T* w, int64_t k) {
  constexpr int STEP_BYTES = RW * VL * (int)sizeof(typename W::T);  // next-tile bytes per step of k
  // Steps shorter than a cache line (2 BF16 rows at AVX2: 32 bytes) prefetch every 64/STEP_BYTES-th
  // step, so each line is asked for once.
  constexpr int64_t PF_EVERY = STEP_BYTES >= 64 ? 1 : 64 / STEP_BYTES;
  const char* next = (const char*)(w + RW * k);
  vf acc[RX][RW];
  for (int i = 0; i < RX; i++)
    for (int j = 0; j < RW; j++) acc[i][j] = vf{};
  const int64_t kv = k - k % VL;
  for (int64_t p = 0; p < kv; p += VL) {
    // prefetch never faults, so the tile after the matrix's last one is harmless
    if (RW > 1 && (PF_EVERY == 1 || (p / VL) % PF_EVERY == 0))
      for (int b = 0; b < STEP_BYTES; b += 64) __builtin_prefetch(next + p * RW * (int64_t)sizeof(typename W::T) + b, 0, 3);
    vf wv[RW];
    for (int j = 0; j < RW; j++) wv[j] = W::load(w + j * k + p);
    for (int i = 0; i < RX; i++) {
      vf xv = *(const vf*)(x + i * k + p);
      for (int j = 0; j < RW; j++) acc[i][j] += xv * wv[j];
    }
  }
  for (int i = 0; i < RX; i++)
    for (int j = 0; j < RW; j++) {
      float s = hsum(acc[i][j]);
      for (int64_t p = kv; p < k; p++) s += x[i * k + p] * W::one(w + j * k + p);
      out[i * ldo + j] = s;
    }
}

// Rows [0, nx) of x in groups of RX (the rows left over 2, then 1, at a time): f(Int<R>{}, i) for the R rows
// from i. Both dot forms (exact and BF16 pairs) take their rows so.
template <int RX, typename F>
inline void by_row_groups(int64_t nx, F f) {
  int64_t i = 0;
  for (; i + RX <= nx; i += RX) f(Int<RX>{}, i);
  if constexpr (RX > 2)
    for (; i + 2 <= nx; i += 2) f(Int<2>{}, i);
  for (; i < nx; i++) f(Int<1>{}, i);
}

template <int RW, typename W, int RX>
inline void rows_against(float* out, int64_t ldo, const float* x, int64_t nx, const typename W::T* w, int64_t k) {
  by_row_groups<RX>(nx, [&](auto r, int64_t i) { tile<decltype(r)::value, RW, W>(out + i * ldo, ldo, x + i * k, w, k); });
}

// The dot form's frame: rows of x are taken in chunks that stay in L2 (x_row_bytes a row) while each
// thread streams its share of the weights, RW rows a tile: tile(r0, nx, j) multiplies rows [r0, r0 + nx)
// by weight rows [j, j + RW), and one(r0, nx, j) by the single weight row j past the last whole tile.
template <int RW, typename Tile, typename One>
void dot_frame(int64_t n, int64_t k, int64_t m, int64_t x_row_bytes, Tile tile, One one) {
  const int64_t chunk = std::max<int64_t>(4, (256 * 1024) / x_row_bytes / 4 * 4);
  const int64_t tiles = m / RW;
  for (int64_t r0 = 0; r0 < n; r0 += chunk) {
    const int64_t nx = std::min(chunk, n - r0);
    team_if(tiles * nx * k > PAR_MATMUL_MACS, team(), [&] {
#pragma omp for schedule(static) nowait
      for (int64_t t = 0; t < tiles; t++) tile(r0, nx, t * RW);
#pragma omp single nowait
      for (int64_t j = tiles * RW; j < m; j++) one(r0, nx, j);
    });
  }
}

template <int RW, int RX, typename W>
void matmul_dot_rw(float* out, const float* x, const typename W::T* w, int64_t n, int64_t k, int64_t m) {
  dot_frame<RW>(n, k, m, k * (int64_t)sizeof(float),
      [&](int64_t r0, int64_t nx, int64_t j) { rows_against<RW, W, RX>(out + r0 * m + j, m, x + r0 * k, nx, w + j * k, k); },
      [&](int64_t r0, int64_t nx, int64_t j) { rows_against<1, W, RX>(out + r0 * m + j, m, x + r0 * k, nx, w + j * k, k); });
}

// Weight rows per tile (RW). A tile's RW rows are read as RW concurrent streams, and at one row of x
// fewer stream faster: on a 2-core EPYC (AVX2), batch-1 decode of the SmolLM2-shaped model ran at 2 rows
// 51.7 tok/s against 45.5 at 4 for BF16 weights, 28.4 against 26.9 for F32 (medians of 6 interleaved
// rounds each; 1 row measured like 2); on a 2-core Zen 4 (AVX-512), one row (the whole matrix read as
// one sequential stream) 102 / 56 tok/s (BF16 / F32) against 90 / 49 at 8 rows and 89 / 52 at 2
// (medians of 3 interleaved rounds). With more rows of x the tile's RX*RW accumulators hide the FMA
// latency instead. AVX-512 (32 vector registers) takes 4 rows of x by 4 weight rows from 4 rows of x
// on: each widened weight vector then feeds 4 FMAs, not 2. On a 2-core Zen 4, 8 rows of x, cpu_kernel_bench
// GFLOP/s 4x4 against 2x8: F32 q/o 184 / 98, gate/up 192 / 112, down 160 / 104, LM head 71 / 59; BF16 196 /
// 172, 200 / 175, 218 / 187, 137 / 105 (4x6 about as 4x4, 3x8 and 4x3 no better than 2x8); the whole
// model's decode, 3 interleaved rounds, batch 8 F32 +15-17%, BF16 +7-10%, batch 16 F32 +36-49%, BF16
// +11-13%, batch 4 unchanged. Two or three rows keep 2x8. With 16 vector registers (AVX2 and SSE; NEON,
// which has 32, runs the same code) 2 rows of x by 4 weight rows (2 weight rows were 2-5% slower at batch 8 for F32 and
// no better for BF16), and from 4 rows of x 4 by 3 (12 accumulators): measured at the avx2 level on the
// same Zen 4 (no AVX2-only machine here), 8 rows of x, GFLOP/s F32 157 / 100, 176 / 102, 139 / 86, LM
// head 76 / 63; BF16 164 / 139, 169 / 128, 183 / 148, 129 / 101 (3x4 and 4x2 less); whole-model decode,
// 3 rounds, batch 8 F32 +16-30%, BF16 +14-16%, batch 16 F32 +32-49%, BF16 +13-15%. Whatever RX and RW,
// a dot product is summed in the same order (per lane along k, then hsum), so below PACK_MIN_ROWS a
// row's result does not depend on its batch (cpu_kernel_test checks it bit for bit at every level).
template <typename W>
void matmul_dot(float* out, const float* x, const typename W::T* w, int64_t n, int64_t k, int64_t m) {
  if constexpr (VL == 16) {
    if (n == 1) return matmul_dot_rw<1, 1, W>(out, x, w, n, k, m);
    if (n < 4) return matmul_dot_rw<8, 2, W>(out, x, w, n, k, m);
    matmul_dot_rw<4, 4, W>(out, x, w, n, k, m);
  } else if (n == 1) {
    matmul_dot_rw<2, 1, W>(out, x, w, n, k, m);
  } else if (n < 4) {
    matmul_dot_rw<4, 2, W>(out, x, w, n, k, m);
  } else {
    matmul_dot_rw<3, 4, W>(out, x, w, n, k, m);
  }
}

// ---- matmul, many rows (prefill, large decode batches): packed panels and a register-blocked kernel
//
// A panel is NR = 2 vectors of output columns: its NR weight rows, widened to F32 and transposed to
// [k][NR] once, then used by every row of x. The micro-kernel keeps an MR x NR block of out in
// registers (AVX-512: 14 x 32 = 28 accumulators of 32 registers) and per step of k loads 2 panel
// vectors and broadcasts MR values of x: 2 + MR loads for 2*MR FMAs, against 2 + 8 for 16 in the
// dot form. Packing costs one pass over the panel's weights, about 8/n of the multiply work.

constexpr int NR = 2 * VL;
constexpr int MR = (VL == 16) ? 14 : 6;  // accumulators: 28 of 32 zmm; 12 of 16 ymm/xmm
// Below PACK_MIN_ROWS rows the dot form, which packs nothing, wins (measured with cpu_kernel_bench);
// BLOCKSERVE_PACK_MIN_ROWS overrides it, for such measurements.
const int64_t PACK_MIN_ROWS = [] {
  const char* e = std::getenv("BLOCKSERVE_PACK_MIN_ROWS");
  return e ? std::atoll(e) : 24LL;
}();

// r[i][l] becomes r[l][i] (unpack, shuffle, then swap 128-bit halves: 24 shuffles for 64 floats).
inline void transpose8(v8f r[8]) {
  v8f t[8], u[8];
  for (int i = 0; i < 8; i += 2) {
    t[i] = __builtin_shufflevector(r[i], r[i + 1], 0, 8, 1, 9, 4, 12, 5, 13);
    t[i + 1] = __builtin_shufflevector(r[i], r[i + 1], 2, 10, 3, 11, 6, 14, 7, 15);
  }
  for (int i = 0; i < 8; i += 4) {
    u[i] = __builtin_shufflevector(t[i], t[i + 2], 0, 1, 8, 9, 4, 5, 12, 13);
    u[i + 1] = __builtin_shufflevector(t[i], t[i + 2], 2, 3, 10, 11, 6, 7, 14, 15);
    u[i + 2] = __builtin_shufflevector(t[i + 1], t[i + 3], 0, 1, 8, 9, 4, 5, 12, 13);
    u[i + 3] = __builtin_shufflevector(t[i + 1], t[i + 3], 2, 3, 10, 11, 6, 7, 14, 15);
  }
  for (int i = 0; i < 4; i++) {
    r[i] = __builtin_shufflevector(u[i], u[i + 4], 0, 1, 2, 3, 8, 9, 10, 11);
    r[i + 4] = __builtin_shufflevector(u[i], u[i + 4], 4, 5, 6, 7, 12, 13, 14, 15);
  }
}

// Widens and transposes the panel's weight rows, eight rows by eight k at a time: one vector load per
// row and one vector store per k. (Element by element it was one scalar store per weight: at 32 rows of
// x the packing then cost a third as much as the multiplying.) The eight rows are eight short streams,
// so the next eight rows are prefetched as one sequential stream, as in tile().
template <typename W>
void pack_panel(float* panel, const typename W::T* w, int64_t k, int64_t j0, int64_t cols) {
  constexpr int STEP_BYTES = 8 * 8 * (int)sizeof(typename W::T);
  int64_t c0 = 0;
  for (; c0 + 8 <= cols; c0 += 8) {
    const typename W::T* rows = w + (j0 + c0) * k;
    const char* next = (const char*)(rows + 8 * k);
    int64_t p = 0;
    for (; p + 8 <= k; p += 8) {
      for (int b = 0; b < STEP_BYTES; b += 64) __builtin_prefetch(next + p * 8 * (int64_t)sizeof(typename W::T) + b, 0, 3);
      v8f r[8];
      for (int i = 0; i < 8; i++) W::load8(r[i], rows + i * k + p);
      transpose8(r);
      for (int l = 0; l < 8; l++) *(v8f*)(panel + (p + l) * NR + c0) = r[l];
    }
    for (; p < k; p++)
      for (int i = 0; i < 8; i++) panel[p * NR + c0 + i] = W::one(rows + i * k + p);
  }
  for (int64_t c = c0; c < cols; c++) {
    const typename W::T* row = w + (j0 + c) * k;
    int64_t p = 0;
    for (; p + VL <= k; p += VL) {
      vf v = W::load(row + p);
      for (int l = 0; l < VL; l++) panel[(p + l) * NR + c] = v[l];
    }
    for (; p < k; p++) panel[p * NR + c] = W::one(row + p);
  }
  for (int64_t c = cols; c < NR; c++)
    for (int64_t p = 0; p < k; p++) panel[p * NR + c] = 0.f;
}

// An M x NR block of out from its accumulators; a last panel narrower than NR stores its cols only.
template <int M>
inline void store_block(float* out, int64_t ldo, const vf (&acc)[M][2], int64_t cols) {
  if (cols == NR) {
    for (int i = 0; i < M; i++) {
      *(vf*)(out + i * ldo) = acc[i][0];
      *(vf*)(out + i * ldo + VL) = acc[i][1];
    }
  } else {
    for (int i = 0; i < M; i++)
      for (int64_t c = 0; c < cols; c++) out[i * ldo + c] = c < VL ? acc[i][0][c] : acc[i][1][c - VL];
  }
}

// pf, where not null, is the next panel's weights (NR rows of k, contiguous: pf_step bytes per step
// of k), prefetched into L2 a step at a time while this block multiplies, so that packing the next
// panel reads cache rather than memory.
template <int M>
inline void micro(float* out, int64_t ldo, const float* x, int64_t k, const float* panel, int64_t cols,
                  const char* pf = nullptr, int pf_step = 0) {
  vf acc[M][2];
  for (int i = 0; i < M; i++) acc[i][0] = acc[i][1] = vf{};
  for (int64_t p = 0; p < k; p++) {
    if (pf != nullptr)
      for (int b = 0; b < pf_step; b += 64) __builtin_prefetch(pf + p * pf_step + b, 0, 2);
    const vf b0 = *(const vf*)(panel + p * NR), b1 = *(const vf*)(panel + p * NR + VL);
    for (int i = 0; i < M; i++) {
      const float a = x[i * k + p];
      acc[i][0] += a * b0;
      acc[i][1] += a * b1;
    }
  }
  store_block<M>(out, ldo, acc, cols);
}

template <int M>
inline void micro_tail(int rows, float* out, int64_t ldo, const float* x, int64_t k, const float* panel, int64_t cols) {
  if constexpr (M > 0) {
    if (rows == M) return micro<M>(out, ldo, x, k, panel, cols);
    return micro_tail<M - 1>(rows, out, ldo, x, k, panel, cols);
  }
}

// A thread's buffer of n 4-byte elements in buf (have of them), grown to the largest n asked for and
// kept for its next call; null when out of memory.
template <typename T>
inline T* grown_buffer(T*& buf, int64_t& have, int64_t n) {
  static_assert(sizeof(T) == 4, "4-byte elements");
  if (n > have) {
    std::free(buf);
    buf = static_cast<T*>(std::aligned_alloc(64, (size_t)((n * 4 + 63) / 64 * 64)));
    have = buf ? n : 0;
  }
  return buf;
}

// Per-thread panel buffer, grown to the largest k seen (k * NR floats: 192 KiB at k = 1536 on AVX-512).
thread_local float* t_panel = nullptr;
thread_local int64_t t_panel_floats = 0;

inline float* panel_buffer(int64_t floats) { return grown_buffer(t_panel, t_panel_floats, floats); }

// The packed matmuls' frame. Panels are dealt to the team (static schedule, so a thread's next item is
// item + 1) and, with few panels for many threads, the rows are split too into parts of whole
// micro-kernel blocks (each part packs its panel again). Every thread first runs prepare(thread,
// threads) (then, with `barrier`, waits for all of them), then for each of its items block(panel, j0,
// cols, r0, r1): pack the panel of columns [j0, j0 + cols) into its buffer of panel_floats and
// multiply rows [r0, r1) by it. False when a thread's panel buffer could not be had.
template <typename Prepare, typename Block>
bool packed_frame(int64_t n, int64_t m, int64_t panel_floats, bool barrier, Prepare prepare, Block block) {
  const int64_t panels = (m + NR - 1) / NR;
  const int threads = team();
  const int64_t want = std::max<int64_t>(1, std::min<int64_t>((2 * threads + panels - 1) / panels, n / (4 * MR)));
  const int64_t part_rows = (n + want - 1) / want / MR * MR + MR;
  const int64_t parts = (n + part_rows - 1) / part_rows;
  bool failed = false;
#pragma omp parallel num_threads(threads)
  {
    prepare(omp_get_thread_num(), omp_get_num_threads());
    float* panel = panel_buffer(panel_floats);
    if (panel == nullptr) {
#pragma omp atomic write
      failed = true;
    }
    if (barrier) {  // the same on every thread
#pragma omp barrier
    }
#pragma omp for schedule(static)
    for (int64_t item = 0; item < panels * parts; item++) {
      if (panel == nullptr) continue;
      const int64_t j0 = (item % panels) * NR, r0 = (item / panels) * part_rows;
      block(panel, j0, std::min<int64_t>(NR, m - j0), r0, std::min(n, r0 + part_rows));
    }
  }
  return !failed;
}

template <typename W>
const char* matmul_packed(float* out, const float* x, const typename W::T* w, int64_t n, int64_t k, int64_t m) {
  const bool ok = packed_frame(n, m, k * NR, false, [](int, int) {},
                               [&](float* panel, int64_t j0, int64_t cols, int64_t r0, int64_t r1) {
    pack_panel<W>(panel, w, k, j0, cols);
    // the first block of rows prefetches the panel this thread packs next
    const char* pf = j0 + NR < m ? (const char*)(w + (j0 + NR) * k) : nullptr;
    int64_t i = r0;
    for (; i + MR <= r1; i += MR, pf = nullptr)
      micro<MR>(out + i * m + j0, m, x + i * k, k, panel, cols, pf, NR * (int)sizeof(typename W::T));
    if (i < r1) micro_tail<MR - 1>((int)(r1 - i), out + i * m + j0, m, x + i * k, k, panel, cols);
  });
  return ok ? nullptr : fail("matmul: out of host memory for a %lld-float weight panel", (long long)(k * NR));
}

// ---- BF16 activations (blockserve.bf16-activations; the avx512bf16 level only)
//
// Off by default: every product above is F32 x F32. When it is on, a BF16 matrix takes x rounded to BF16
// too, as llama.cpp and GPUs do, and vdpbf16ps multiplies pairs of BF16 values into F32 sums: twice the
// multiply-adds of an F32 FMA per instruction, and no widening of the weights. From PACK_MIN_ROWS rows
// packed panels of pairs, below them dot products over the weights where they lie, as in the exact path.
// Not golden-exact (x loses 16 bits of mantissa); the goldens' tolerance test checks it.
std::atomic<int> g_bf16_activations{0};

#if defined(BS_AVX512)
// The avx512bf16 level's copies only (the real one, and in test builds its copy for AVX2) take the mode.
constexpr bool kBf16Level = std::string_view(BS_LEVEL) == "avx512bf16";

// acc += a.hi * b.hi + a.lo * b.lo per 32-bit lane, each half a BF16 value: vdpbf16ps, or in a copy built
// for AVX2 the same two products as two FMAs, in vdpbf16ps' order (odd halves first).
inline vf dot_bf16_pairs(vf acc, vu a, vu b) {
#if defined(__AVX512BF16__)
  return (vf)_mm512_dpbf16_ps((__m512)acc, (__m512bh)a, (__m512bh)b);
#else
  const vu hi = vu{} + 0xffff0000u;
  acc += (vf)(a & hi) * (vf)(b & hi);
  acc += (vf)(a << 16) * (vf)(b << 16);
  return acc;
#endif
}

// x rows rounded to BF16 (nearest even, as kv_write narrows), kp = ceil(k / 2) 32-bit words a row, each
// word two consecutive k; an odd k's last word has a zero high half.
inline void round_rows_bf16(uint32_t* xw, const float* x, int64_t r0, int64_t r1, int64_t k) {
  const int64_t kp = (k + 1) / 2;
  for (int64_t i = r0; i < r1; i++) {
    uint16_t* o = (uint16_t*)(xw + i * kp);
    narrow_row(o, x + i * k, k, true);
    if (k & 1) o[k] = 0;
  }
}

// The panel of NR columns as kp rows of NR 32-bit words (column c's weights 2q and 2q + 1): a transpose
// of 32-bit words, eight columns by eight words at a time, the next eight columns prefetched.
inline void pack_panel_pairs(uint32_t* panel, const uint16_t* w, int64_t k, int64_t j0, int64_t cols) {
  const int64_t kp = (k + 1) / 2, full = k / 2;  // words wholly inside a row
  int64_t c0 = 0;
  for (; c0 + 8 <= cols; c0 += 8) {
    const uint16_t* rows = w + (j0 + c0) * k;
    const char* next = (const char*)(rows + 8 * k);
    int64_t q = 0;
    for (; q + 8 <= full; q += 8) {
      __builtin_prefetch(next + q * 32, 0, 3);
      __builtin_prefetch(next + q * 32 + 64, 0, 3);
      v8f r[8];
      for (int i = 0; i < 8; i++) std::memcpy(&r[i], rows + i * k + 2 * q, 32);
      transpose8(r);
      for (int l = 0; l < 8; l++) std::memcpy(panel + (q + l) * NR + c0, &r[l], 32);
    }
    for (; q < kp; q++)
      for (int i = 0; i < 8; i++) {
        const uint16_t* wi = rows + i * k;
        panel[q * NR + c0 + i] = wi[2 * q] | (2 * q + 1 < k ? (uint32_t)wi[2 * q + 1] << 16 : 0u);
      }
  }
  for (int64_t c = c0; c < cols; c++) {
    const uint16_t* wc = w + (j0 + c) * k;
    for (int64_t q = 0; q < kp; q++) panel[q * NR + c] = wc[2 * q] | (2 * q + 1 < k ? (uint32_t)wc[2 * q + 1] << 16 : 0u);
  }
  for (int64_t c = cols; c < NR; c++)
    for (int64_t q = 0; q < kp; q++) panel[q * NR + c] = 0;
}

// micro() with BF16 pairs: per word of k, 2 panel vectors and M broadcast words feed 2 * M pair products.
template <int M>
inline void micro_pairs(float* out, int64_t ldo, const uint32_t* xw, int64_t kp, const uint32_t* panel, int64_t cols,
                        const char* pf, int pf_step) {
  vf acc[M][2];
  for (int i = 0; i < M; i++) acc[i][0] = acc[i][1] = vf{};
  for (int64_t q = 0; q < kp; q++) {
    if (pf != nullptr)
      for (int b = 0; b < pf_step; b += 64) __builtin_prefetch(pf + q * pf_step + b, 0, 2);
    const vu b0 = *(const vu*)(panel + q * NR), b1 = *(const vu*)(panel + q * NR + VL);
    for (int i = 0; i < M; i++) {
      const vu a = vu{} + xw[i * kp + q];
      acc[i][0] = dot_bf16_pairs(acc[i][0], a, b0);
      acc[i][1] = dot_bf16_pairs(acc[i][1], a, b1);
    }
  }
  store_block<M>(out, ldo, acc, cols);
}

template <int M>
inline void micro_pairs_tail(int rows, float* out, int64_t ldo, const uint32_t* xw, int64_t kp, const uint32_t* panel,
                             int64_t cols) {
  if constexpr (M > 0) {
    if (rows == M) return micro_pairs<M>(out, ldo, xw, kp, panel, cols, nullptr, 0);
    return micro_pairs_tail<M - 1>(rows, out, ldo, xw, kp, panel, cols);
  }
}

thread_local uint32_t* t_xw = nullptr;  // x rounded to BF16 pairs, grown to the largest n * kp seen
thread_local int64_t t_xw_words = 0;

inline uint32_t* xw_buffer(int64_t words) { return grown_buffer(t_xw, t_xw_words, words); }

// ---- BF16 activations, few rows: tile() with BF16 pairs
//
// RX rows of x (rounded, kp words a row) against RW weight rows read where they lie: a row's consecutive
// BF16 values already are the pairs vdpbf16ps takes, so nothing is widened or packed. Per step of VL
// words (2 VL values of k), RW weight vectors and RX x vectors feed RX * RW pair products. A lane sums its
// pairs in k order, then the lanes are summed, then the values past the last whole vector in k order: the
// same order whatever RX and RW, so below PACK_MIN_ROWS a row's result does not depend on its batch (a
// speculative step's rows equal plain decode's). Vector loads stay inside whole words of a weight row: an
// odd k's last value would pair with the next row's first, so it is a tail value. The next tile is
// prefetched as in tile() for RW > 1 only: one weight row a tile is one sequential stream that the
// hardware prefetcher follows, and there the software prefetch cost speed (batch-1 decode of the
// SmolLM2-shaped model, 6 interleaved rounds on a Zen 4: slower in all 6, median 95.5 against 99.0 tok/s;
// at batch 8 it gains 387-419 against 314-361).
template <int RX, int RW>
inline void tile_pairs(float* out, int64_t ldo, const uint32_t* xw, int64_t kp, const uint16_t* w, int64_t k) {
  constexpr int STEP_BYTES = RW * VL * 4;  // next-tile bytes per step, prefetched as tile() does
  const char* next = (const char*)(w + RW * k);
  const int64_t kv = k / 2 - (k / 2) % VL;  // words in whole vectors
  vf acc[RX][RW];
  for (int i = 0; i < RX; i++)
    for (int j = 0; j < RW; j++) acc[i][j] = vf{};
  for (int64_t q = 0; q < kv; q += VL) {
    if constexpr (RW > 1)
      for (int b = 0; b < STEP_BYTES; b += 64) __builtin_prefetch(next + q * RW * 4 + b, 0, 3);
    vu wv[RW];
    for (int j = 0; j < RW; j++) std::memcpy(&wv[j], w + j * k + 2 * q, sizeof(vu));  // rows of odd k: 2-byte aligned
    for (int i = 0; i < RX; i++) {
      const vu xv = *(const vu*)(xw + i * kp + q);
      for (int j = 0; j < RW; j++) acc[i][j] = dot_bf16_pairs(acc[i][j], xv, wv[j]);
    }
  }
  for (int i = 0; i < RX; i++) {
    const uint16_t* xh = (const uint16_t*)(xw + i * kp);
    for (int j = 0; j < RW; j++) {
      float s = hsum(acc[i][j]);
      for (int64_t p = 2 * kv; p < k; p++) s += BF16W::one(xh + p) * BF16W::one(w + j * k + p);
      out[i * ldo + j] = s;
    }
  }
}

template <int RW>
inline void rows_against_pairs(float* out, int64_t ldo, const uint32_t* xw, int64_t kp, int64_t nx, const uint16_t* w,
                               int64_t k) {
  by_row_groups<2>(nx, [&](auto r, int64_t i) { tile_pairs<decltype(r)::value, RW>(out + i * ldo, ldo, xw + i * kp, kp, w, k); });
}

// matmul_dot_rw with x rounded to BF16 (rounded once, on the caller: a few rows).
template <int RW>
void matmul_dot_pairs_rw(float* out, const uint32_t* xw, const uint16_t* w, int64_t n, int64_t k, int64_t m) {
  const int64_t kp = (k + 1) / 2;
  dot_frame<RW>(n, k, m, kp * 4,
      [&](int64_t r0, int64_t nx, int64_t j) { rows_against_pairs<RW>(out + r0 * m + j, m, xw + r0 * kp, kp, nx, w + j * k, k); },
      [&](int64_t r0, int64_t nx, int64_t j) { rows_against_pairs<1>(out + r0 * m + j, m, xw + r0 * kp, kp, nx, w + j * k, k); });
}

// Weight rows per tile as matmul_dot takes them: one long stream at one row, 8 rows from two.
[[maybe_unused]] const char* matmul_dot_pairs(float* out, const float* x, const uint16_t* w, int64_t n, int64_t k,
                                              int64_t m) {
  const int64_t kp = (k + 1) / 2;
  uint32_t* xw = xw_buffer(n * kp);
  if (xw == nullptr) return fail("matmul: out of host memory for %lld rows of BF16 activations", (long long)n);
  round_rows_bf16(xw, x, 0, n, k);
  if (n == 1) matmul_dot_pairs_rw<1>(out, xw, w, n, k, m);
  else matmul_dot_pairs_rw<8>(out, xw, w, n, k, m);
  return nullptr;
}

// matmul_packed with x rounded to BF16: the caller's thread keeps the rounded x (each thread rounds its
// share of the rows before any multiplies), every thread its panel.
[[maybe_unused]] const char* matmul_packed_pairs(float* out, const float* x, const uint16_t* w, int64_t n, int64_t k,
                                                 int64_t m) {
  const int64_t kp = (k + 1) / 2;
  uint32_t* xw = xw_buffer(n * kp);
  if (xw == nullptr) return fail("matmul: out of host memory for %lld rows of BF16 activations", (long long)n);
  const bool ok = packed_frame(n, m, kp * NR, true,
                               [&](int me, int nt) { round_rows_bf16(xw, x, n * me / nt, n * (me + 1) / nt, k); },
                               [&](float* panel_floats, int64_t j0, int64_t cols, int64_t r0, int64_t r1) {
    uint32_t* panel = (uint32_t*)panel_floats;
    pack_panel_pairs(panel, w, k, j0, cols);
    const char* pf = j0 + NR < m ? (const char*)(w + (j0 + NR) * k) : nullptr;
    int64_t i = r0;
    for (; i + MR <= r1; i += MR, pf = nullptr) micro_pairs<MR>(out + i * m + j0, m, xw + i * kp, kp, panel, cols, pf, NR * 2);
    if (i < r1) micro_pairs_tail<MR - 1>((int)(r1 - i), out + i * m + j0, m, xw + i * kp, kp, panel, cols);
  });
  return ok ? nullptr : fail("matmul: out of host memory for a %lld-word weight panel", (long long)(kp * NR));
}
#endif

template <typename W>
const char* matmul_typed(float* out, const float* x, const void* w, int64_t n, int64_t k, int64_t m) {
  const typename W::T* wt = static_cast<const typename W::T*>(w);
#if defined(BS_AVX512)
  if constexpr (std::is_same_v<W, BF16W> && kBf16Level)
    if (g_bf16_activations.load(std::memory_order_relaxed))
      return n >= PACK_MIN_ROWS ? matmul_packed_pairs(out, x, wt, n, k, m) : matmul_dot_pairs(out, x, wt, n, k, m);
#endif
  if (n >= PACK_MIN_ROWS) return matmul_packed<W>(out, x, wt, n, k, m);
  matmul_dot<W>(out, x, wt, n, k, m);
  return nullptr;
}

// ---- BF16 matrices at 12 bits a weight, for one row of x (batch-1 decode)
//
// Batch-1 decode reads every weight once a token, so its speed is the machine's read rate over the
// matrices' bytes. The high byte of a BF16 weight (its sign and 7 of its 8 exponent bits) takes few values
// in one row: in the SmolLM2-shaped model (N(0, 0.02) weights) all but 22 of its 204,672 rows hold at most
// 16 distinct high bytes. Such a row is stored as those 16 bytes (a table), then per group of 64 weights
// their 64 low bytes and 64 four-bit indexes into the table: 16 + 96 bytes per 64 weights, exactly the
// same values in 76% of the bytes. vpermb (AVX-512 VBMI) looks the high bytes up, two byte unpacks join
// them to the low bytes, and four word unpacks against zero put each BF16 value in the top half of an F32
// lane: the floats BF16W::load widens, multiplied in the same order (one accumulator along k, then hsum),
// so every result is bit for bit that of the plain kernel at any batch size. A row with more distinct
// high bytes is read from the BF16 matrix itself. Each thread walks two rows at once, t and t + m/2 (two
// independent FMA chains, in streams far apart; two adjacent rows were slower than one). A probe over the
// model's 211 matrices on a 2-core Zen 4 (docs/benchmarks.md, nineteenth session): 0.69-0.84x the plain
// kernel's time, in both of the VM's bandwidth states.
//
// Layout: a 64-byte header, one byte per row (1: read from the BF16 matrix), padded to 64, then m rows of
// row_bytes. Within a group, byte b = 16j + 4q + i holds weight 16q + 4j + i (j: 128-bit lane, q: output
// vector): the order the in-lane unpacks take them apart in. Index b < 32 is the low nibble of index
// byte b, index b >= 32 the high nibble of byte b - 32 (one variable word shift makes both vpermb indexes;
// vpermb reads 6 index bits, and the table is repeated four times so that bits 4-5 do not matter).

constexpr uint64_t P12_MAGIC = 0x3231666231736200ULL;  // "\0bs1bf12"
struct P12Header {
  uint64_t magic;
  int64_t k, m, row_bytes, raw_rows, pad[3];
};
static_assert(sizeof(P12Header) == 64, "the rows start 64-byte aligned");

inline int64_t p12_row_bytes(int64_t k) { return 16 + 96 * (k / 64); }
inline int64_t p12_flags_bytes(int64_t m) { return (m + 63) / 64 * 64; }

// Whether this copy and this CPU can multiply packed matrices (a real AVX-512 build on a CPU with VBMI).
inline bool p12_supported() {
#if defined(__AVX512F__)
  static const bool ok = __builtin_cpu_supports("avx512vbmi");
  return ok;
#else
  return false;
#endif
}

int64_t k_packed_bf16_bytes(int64_t k, int64_t m) {
  if (!p12_supported() || k <= 0 || k % 64 != 0 || m <= 0) return 0;
  return (int64_t)sizeof(P12Header) + p12_flags_bytes(m) + m * p12_row_bytes(k);
}

// Packs one row; false where it holds more than 16 distinct high bytes (then it is read as BF16).
inline bool p12_pack_row(uint8_t* dst, const uint16_t* w, int64_t k) {
  int8_t code[256];
  std::memset(code, -1, sizeof code);
  int distinct = 0;
  for (int64_t p = 0; p < k; p++) {
    const int hb = w[p] >> 8;
    if (code[hb] < 0) {
      if (distinct == 16) return false;
      dst[distinct] = (uint8_t)hb;
      code[hb] = (int8_t)distinct++;
    }
  }
  for (int c = distinct; c < 16; c++) dst[c] = dst[0];
  for (int64_t g = 0; g < k / 64; g++) {
    uint8_t* lo = dst + 16 + 96 * g;
    uint8_t* idx = lo + 64;
    std::memset(idx, 0, 32);
    const uint16_t* wg = w + 64 * g;
    for (int b = 0; b < 64; b++) {
      const uint16_t v = wg[16 * ((b / 4) % 4) + 4 * (b / 16) + b % 4];
      lo[b] = (uint8_t)(v & 0xff);
      const int c = code[v >> 8];
      if (b < 32) idx[b] |= (uint8_t)c;
      else idx[b - 32] |= (uint8_t)(c << 4);
    }
  }
  return true;
}

const char* k_pack_bf16(void* dst, const uint16_t* w, int64_t k, int64_t m) {
  if (k_packed_bf16_bytes(k, m) == 0)
    return fail("pack_bf16: %lld x %lld cannot be packed at level %s on this CPU", (long long)m, (long long)k, BS_LEVEL);
  P12Header* h = static_cast<P12Header*>(dst);
  uint8_t* flags = static_cast<uint8_t*>(dst) + sizeof(P12Header);
  uint8_t* rows = flags + p12_flags_bytes(m);
  const int64_t rb = p12_row_bytes(k);
  int64_t raw = 0;
#pragma omp parallel for num_threads(team()) if (m * k > PAR_UPCAST) schedule(static) reduction(+ : raw)
  for (int64_t r = 0; r < m; r++) {
    const bool packed = p12_pack_row(rows + r * rb, w + r * k, k);
    flags[r] = packed ? 0 : 1;
    raw += packed ? 0 : 1;
  }
  *h = P12Header{P12_MAGIC, k, m, rb, raw, {0, 0, 0}};
  return nullptr;
}

#if defined(__AVX512F__)
// (GCC 12's AVX-512 headers warn about their own undefined-source intrinsics here, GCC bug 105593, as above)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
// Rows r0 and r1 (r1 < 0: r0 alone) of a packed matrix against x: R independent accumulators, each summed
// as tile<1, 1, BF16W> sums its row.
template <int R>
__attribute__((target("avx512vbmi"), noinline)) void p12_rows(float* out, const float* x, const uint8_t* rows,
                                                               int64_t rb, int64_t k, const int64_t* r) {
  const __m512i shift = _mm512_set_epi64(0x0004000400040004LL, 0x0004000400040004LL, 0x0004000400040004LL,
                                         0x0004000400040004LL, 0, 0, 0, 0);
  const __m512i zero = _mm512_setzero_si512();
  const uint8_t* p[R];
  __m512i table[R];
  vf acc[R];
  for (int j = 0; j < R; j++) {
    p[j] = rows + r[j] * rb;
    table[j] = _mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i*)p[j]));
    p[j] += 16;
    acc[j] = vf{};
  }
  for (int64_t g = 0; g < k; g += 64) {
    const vf x0 = *(const vf*)(x + g), x1 = *(const vf*)(x + g + 16), x2 = *(const vf*)(x + g + 32),
             x3 = *(const vf*)(x + g + 48);
    for (int j = 0; j < R; j++) {
      const __m512i lo = _mm512_loadu_si512(p[j]);
      const __m512i idx = _mm512_srlv_epi16(_mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i*)(p[j] + 64))), shift);
      const __m512i hi = _mm512_permutexvar_epi8(idx, table[j]);
      const __m512i w01 = _mm512_unpacklo_epi8(lo, hi), w23 = _mm512_unpackhi_epi8(lo, hi);
      acc[j] += x0 * (vf)_mm512_unpacklo_epi16(zero, w01);
      acc[j] += x1 * (vf)_mm512_unpackhi_epi16(zero, w01);
      acc[j] += x2 * (vf)_mm512_unpacklo_epi16(zero, w23);
      acc[j] += x3 * (vf)_mm512_unpackhi_epi16(zero, w23);
      p[j] += 96;
    }
  }
  for (int j = 0; j < R; j++) out[r[j]] = hsum(acc[j]);
}
#pragma GCC diagnostic pop
#endif

// One row of x against count (1-4) packed matrices that share it (q, k and v; gate and up): the products
// matmul_packed_bf16 makes one by one, in one parallel region. A region costs about 2.9 us on the 2-core
// VM (its two cores' caches are some 540 ns apart and libgomp's start and end take several round trips),
// and a batch-1 step of a 30-layer model opens 90 fewer of them this way. The row pairs of all the
// matrices form one range dealt to the team in static shares; a row's arithmetic is the same as alone.
const char* k_matmul_packed_bf16_n(const float* x, int64_t k, int count, float* const* outs, const void* const* packed,
                                   const uint16_t* const* ws, const int64_t* ms) {
  if (count < 1 || count > 4) return fail("matmul_packed_bf16: %d matrices (1 to 4)", count);
  for (int i = 0; i < count; i++) {
    const P12Header* h = static_cast<const P12Header*>(packed[i]);
    if (h == nullptr || h->magic != P12_MAGIC || h->k != k || h->m != ms[i])
      return fail("matmul_packed_bf16: the packed matrix is not one of %lld x %lld", (long long)ms[i], (long long)k);
  }
  // BF16 activations multiply differently: that mode's own kernels, so a row's result keeps not depending
  // on its batch.
  if (g_bf16_activations.load(std::memory_order_relaxed) || !p12_supported()) {
    for (int i = 0; i < count; i++)
      if (const char* e = matmul_typed<BF16W>(outs[i], x, ws[i], 1, k, ms[i])) return e;
    return nullptr;
  }
#if defined(__AVX512F__)
  const uint8_t* flags[4];
  const uint8_t* rows[4];
  int64_t first[5] = {0};  // matrix i's row pairs are [first[i], first[i + 1]) of the whole range
  int64_t macs = 0;
  for (int i = 0; i < count; i++) {
    flags[i] = static_cast<const uint8_t*>(packed[i]) + sizeof(P12Header);
    rows[i] = flags[i] + p12_flags_bytes(ms[i]);
    first[i + 1] = first[i] + ms[i] / 2;
    macs += ms[i] * k;
  }
  const int64_t rb = p12_row_bytes(k);
  auto one = [&](int i, int64_t r) {
    if (flags[i][r]) tile<1, 1, BF16W>(outs[i] + r, 1, x, ws[i] + r * k, k);
    else p12_rows<1>(outs[i], x, rows[i], rb, k, &r);
  };
  team_if(macs > PAR_MATMUL_MACS, team(), [&] {
#pragma omp for schedule(static) nowait
    for (int64_t u = 0; u < first[count]; u++) {
      int i = 0;
      while (u >= first[i + 1]) i++;
      const int64_t half = ms[i] / 2, t = u - first[i];
      const int64_t r[2] = {t, t + half};
      if (flags[i][r[0]] | flags[i][r[1]]) {
        one(i, r[0]);
        one(i, r[1]);
      } else {
        p12_rows<2>(outs[i], x, rows[i], rb, k, r);
      }
    }
    for (int i = 0; i < count; i++) {  // the same constructs, in the same order, on every thread
#pragma omp single nowait
      if (ms[i] & 1) one(i, ms[i] - 1);
    }
  });
#endif
  return nullptr;
}

const char* k_matmul_packed_bf16(float* out, const float* x, const void* packed, const uint16_t* w, int64_t k, int64_t m) {
  return k_matmul_packed_bf16_n(x, k, 1, &out, &packed, &w, &m);
}

// ---- paged attention helpers

// Scores of G query heads (one GQA group sharing a cached K row; q heads hd = NV * VL floats apart)
// against n consecutive cached tokens (rows `stride` elements apart, of the cache's type KT, widened in
// registers), KEYS keys at a time: each K vector is loaded and widened once for the G heads, and
// KEYS * G independent FMA chains are in flight. Per head and key the arithmetic is that of one plain
// dot product (lanes summed over the vectors, then hsum), whatever G and KEYS are.
template <int NV, int G, typename KT>
inline void scores_block(float* sc, int64_t ldsc, const float* q, const typename KT::T* k, int64_t stride, int64_t n,
                         float scale) {
  constexpr int KEYS = G <= 2 ? 4 : 2;  // accumulators KEYS * G <= 8, beside G * NV query vectors
  vf qv[G][NV];
  for (int g = 0; g < G; g++)
    for (int v = 0; v < NV; v++) qv[g][v] = *(const vf*)(q + (g * NV + v) * VL);
  int64_t j = 0;
  for (; j + KEYS <= n; j += KEYS) {
    vf a[KEYS][G];
    for (int kk = 0; kk < KEYS; kk++)
      for (int g = 0; g < G; g++) a[kk][g] = vf{};
    for (int v = 0; v < NV; v++)
      for (int kk = 0; kk < KEYS; kk++) {
        const vf kv = KT::load(k + (j + kk) * stride + v * VL);
        for (int g = 0; g < G; g++) a[kk][g] += qv[g][v] * kv;
      }
    for (int kk = 0; kk < KEYS; kk++)
      for (int g = 0; g < G; g++) sc[g * ldsc + j + kk] = hsum(a[kk][g]) * scale;
  }
  for (; j < n; j++) {
    vf a[G];
    for (int g = 0; g < G; g++) a[g] = vf{};
    for (int v = 0; v < NV; v++) {
      const vf kv = KT::load(k + j * stride + v * VL);
      for (int g = 0; g < G; g++) a[g] += qv[g][v] * kv;
    }
    for (int g = 0; g < G; g++) sc[g * ldsc + j] = hsum(a[g]) * scale;
  }
}

// o_g += sum_j p_g[j] * v_j over n consecutive cached tokens for the G heads of a group (o rows hd =
// NV * VL apart, p rows ldp apart), the G output rows held in registers: each V vector is loaded and
// widened once for the G heads, and G * NV FMA chains are in flight (with one head, NV chains of one
// FMA a key left decode attention waiting on FMA latency).
template <int NV, int G, typename KT>
inline void accumulate_block(float* o, const float* p, int64_t ldp, const typename KT::T* vrow, int64_t stride, int64_t n) {
  vf acc[G][NV];
  for (int g = 0; g < G; g++)
    for (int v = 0; v < NV; v++) acc[g][v] = *(const vf*)(o + (g * NV + v) * VL);
  for (int64_t j = 0; j < n; j++) {
    float pj[G];
    for (int g = 0; g < G; g++) pj[g] = p[g * ldp + j];
    for (int v = 0; v < NV; v++) {
      const vf vv = KT::load(vrow + j * stride + v * VL);
      for (int g = 0; g < G; g++) acc[g][v] += pj[g] * vv;
    }
  }
  for (int g = 0; g < G; g++)
    for (int v = 0; v < NV; v++) *(vf*)(o + (g * NV + v) * VL) = acc[g][v];
}

// Heads a group step takes at once: at most 16 accumulators on AVX-512 (32 registers), 8 below it.
template <int NV>
constexpr int group_step() {
  constexpr int g = (VL == 16 ? 16 : 8) / NV;
  return g < 1 ? 1 : (g > 4 ? 4 : g);
}

// Calls f(Int<NV>{}) where a head of hd floats is NV whole vectors (NV = 1, 2, 4, ... 32); false otherwise
// (the caller's scalar loop then takes it).
template <typename F>
inline bool with_head_vectors(int64_t hd, F f) {
  switch (hd / VL * (hd % VL == 0)) {
    case 1: f(Int<1>{}); return true;
    case 2: f(Int<2>{}); return true;
    case 4: f(Int<4>{}); return true;
    case 8: f(Int<8>{}); return true;
    case 16: f(Int<16>{}); return true;
    case 32: f(Int<32>{}); return true;
    default: return false;
  }
}

// Walks `heads` query heads of NV vectors in steps of up to group_step<NV>() heads: f(Int<G>{}, h) for the
// G heads from h.
template <int NV, typename F>
inline void by_head_groups(int64_t heads, F f) {
  constexpr int GS = group_step<NV>();
  for (int64_t h = 0; h < heads;) {
    const int64_t g = std::min<int64_t>(GS, heads - h);
    switch (g) {
      case 4: if constexpr (GS >= 4) { f(Int<4>{}, h); break; } [[fallthrough]];
      case 3: if constexpr (GS >= 3) { f(Int<3>{}, h); break; } [[fallthrough]];
      case 2: if constexpr (GS >= 2) { f(Int<2>{}, h); break; } [[fallthrough]];
      default: f(Int<1>{}, h);
    }
    h += g;
  }
}

// Scores of `heads` query heads sharing one cached K row (a GQA group or part of it): sc rows ldsc apart.
template <typename KT>
inline void scores_heads(float* sc, int64_t ldsc, const float* q, const typename KT::T* k, int64_t stride, int64_t n,
                         int64_t hd, float scale, int64_t heads) {
  const bool vectors = with_head_vectors(hd, [&](auto nv) {
    constexpr int NV = decltype(nv)::value;
    by_head_groups<NV>(heads, [&](auto g, int64_t h) {
      scores_block<NV, decltype(g)::value, KT>(sc + h * ldsc, ldsc, q + h * NV * VL, k, stride, n, scale);
    });
  });
  if (vectors) return;
  for (int64_t h = 0; h < heads; h++)
    for (int64_t j = 0; j < n; j++) {
      float s = 0.f;
      const typename KT::T* kj = k + j * stride;
      const float* qh = q + h * hd;
#pragma omp simd reduction(+ : s)
      for (int64_t d = 0; d < hd; d++) s += qh[d] * KT::one(kj + d);
      sc[h * ldsc + j] = s * scale;
    }
}

// o_h += sum_j p_h[j] * v_j for `heads` query heads sharing one cached V row: p rows ldp apart.
template <typename KT>
inline void accumulate_heads(float* o, const float* p, int64_t ldp, const typename KT::T* vrow, int64_t stride, int64_t n,
                             int64_t hd, int64_t heads) {
  const bool vectors = with_head_vectors(hd, [&](auto nv) {
    constexpr int NV = decltype(nv)::value;
    by_head_groups<NV>(heads, [&](auto g, int64_t h) {
      accumulate_block<NV, decltype(g)::value, KT>(o + h * NV * VL, p + h * ldp, ldp, vrow, stride, n);
    });
  });
  if (vectors) return;
  for (int64_t h = 0; h < heads; h++)
    for (int64_t j = 0; j < n; j++) {
      const float pj = p[h * ldp + j];
      const typename KT::T* vj = vrow + j * stride;
      float* oh = o + h * hd;
#pragma omp simd
      for (int64_t d = 0; d < hd; d++) oh[d] += pj * KT::one(vj + d);
    }
}

// exp(p - max) in place over p[lo, hi), a vector at a time; returns the sum and sets *max_out (softmax
// without its division, as a split of the keys needs).
inline float exp_shifted(float* p, int64_t lo, int64_t hi, float* max_out) {
  float mx = -INFINITY;
  for (int64_t j = lo; j < hi; j++) mx = std::max(mx, p[j]);
  float sum = 0.f;
  int64_t j = lo;
  vf vs{};
  for (; j + VL <= hi; j += VL) {
    vf e = vexp(*(vf*)(p + j) - mx);
    *(vf*)(p + j) = e;
    vs += e;
  }
  sum = hsum(vs);
  for (; j < hi; j++) {
    p[j] = std::exp(p[j] - mx);
    sum += p[j];
  }
  *max_out = mx;
  return sum;
}

// softmax in place over p[lo, hi): max, then exp(p - max) a vector at a time, then scale by 1/sum.
inline void softmax(float* p, int64_t lo, int64_t hi) {
  float mx;
  const float inv = 1.0f / exp_shifted(p, lo, hi, &mx);
  for (int64_t i = lo; i < hi; i++) p[i] *= inv;
}

// ---- the contract (see ../include/bs_kernels.h)

const char* k_embedding(float* out, const void* table, int dtype, const int32_t* ids, int64_t n, int64_t dim, int64_t rows) {
  if (dtype != DT_F32 && dtype != DT_F16 && dtype != DT_BF16) return fail("embedding: unknown table dtype code %d", dtype);
  for (int64_t i = 0; i < n; i++)
    if (ids[i] < 0 || ids[i] >= rows) return fail("embedding: id %d at row %lld is outside [0, %lld)", ids[i], (long long)i, (long long)rows);
  for (int64_t i = 0; i < n; i++) {
    const int64_t r = (int64_t)ids[i] * dim;
    float* o = out + i * dim;
    if (dtype == DT_F32) {
      std::memcpy(o, static_cast<const float*>(table) + r, dim * sizeof(float));
    } else {
      const uint16_t* t = static_cast<const uint16_t*>(table) + r;
      for (int64_t j = 0; j < dim; j++) o[j] = dtype == DT_BF16 ? BF16W::one(t + j) : F16W::one(t + j);
    }
  }
  return nullptr;
}

const char* k_rmsnorm(float* out, const float* x, const float* w, int64_t n, int64_t dim, float eps) {
  team_if(n * dim > PAR_ROWS_ELEMS, team(), [&] {
#pragma omp for schedule(static)
    for (int64_t i = 0; i < n; i++) {
      const float* xi = x + i * dim;
      float* oi = out + i * dim;
      float ss = dot(xi, xi, dim);
      float r = 1.0f / std::sqrt(ss / (float)dim + eps);
#pragma omp simd
      for (int64_t j = 0; j < dim; j++) oi[j] = xi[j] * r * w[j];
    }
  });
  return nullptr;
}

const char* k_matmul(float* out, const float* x, const void* w, int w_dtype, int64_t n, int64_t k, int64_t m) {
  switch (w_dtype) {
    case DT_F32: return matmul_typed<F32W>(out, x, w, n, k, m);
    case DT_BF16: return matmul_typed<BF16W>(out, x, w, n, k, m);
    case DT_F16: return matmul_typed<F16W>(out, x, w, n, k, m);
    default: return fail("matmul: unknown weight dtype code %d", w_dtype);
  }
}

const char* k_rope(float* x, const int32_t* pos, const float* cos_sin, int64_t n, int64_t heads, int64_t head_dim,
                   int64_t max_pos) {
  if (head_dim % 2) return fail("rope: head_dim %lld is odd", (long long)head_dim);
  for (int64_t i = 0; i < n; i++)
    if (pos[i] < 0 || pos[i] >= max_pos) return fail("rope: position %d at row %lld is outside [0, %lld)", pos[i], (long long)i, (long long)max_pos);
  const int64_t h = head_dim / 2;
  team_if(n * heads * head_dim > PAR_ROWS_ELEMS, team(), [&] {
#pragma omp for schedule(static)
    for (int64_t i = 0; i < n; i++) {
      const float* c = cos_sin + (int64_t)pos[i] * head_dim;
      const float* s = c + h;
      for (int64_t hh = 0; hh < heads; hh++) {
        float* v = x + (i * heads + hh) * head_dim;
#pragma omp simd
        for (int64_t j = 0; j < h; j++) {
          float a = v[j], b = v[j + h];
          v[j] = a * c[j] - b * s[j];
          v[j + h] = b * c[j] + a * s[j];
        }
      }
    }
  });
  return nullptr;
}

inline void silu_mul_range(float* out, const float* gate, const float* up, int64_t lo, int64_t hi) {
  int64_t i = lo;
  for (; i + VL <= hi; i += VL) {
    const vf g = *(const vf*)(gate + i);
    *(vf*)(out + i) = g / (1.0f + vexp(-g)) * *(const vf*)(up + i);
  }
  for (; i < hi; i++) out[i] = gate[i] / (1.0f + std::exp(-gate[i])) * up[i];
}

const char* k_silu_mul(float* out, const float* gate, const float* up, int64_t count) {
  if (count <= PAR_SILU) {
    silu_mul_range(out, gate, up, 0, count);
    return nullptr;
  }
#pragma omp parallel num_threads(team())
  {
    const int64_t t = omp_get_thread_num(), nt = omp_get_num_threads();
    const int64_t per = (count / nt + VL - 1) / VL * VL;
    silu_mul_range(out, gate, up, std::min(count, t * per), std::min(count, (t + 1) * per));
  }
  return nullptr;
}

const char* k_add(float* x, const float* y, int64_t count) {
  team_if(count > PAR_ELEMWISE, team(), [&] {
#pragma omp for simd schedule(static)
    for (int64_t i = 0; i < count; i++) x[i] += y[i];
  });
  return nullptr;
}

const char* k_bias_add(float* x, const float* bias, int64_t n, int64_t dim) {
  team_if(n * dim > PAR_ELEMWISE, team(), [&] {
#pragma omp for schedule(static)
    for (int64_t i = 0; i < n; i++) {
      float* r = x + i * dim;
#pragma omp simd
      for (int64_t j = 0; j < dim; j++) r[j] += bias[j];
    }
  });
  return nullptr;
}

template <typename KT>
void kv_write_typed(void* k_cache, void* v_cache, const float* k, const float* v, const int32_t* slots, int64_t n,
                    int64_t row) {
  typename KT::T* kc = static_cast<typename KT::T*>(k_cache);
  typename KT::T* vc = static_cast<typename KT::T*>(v_cache);
  for (int64_t i = 0; i < n; i++) {
    if (slots[i] < 0) continue;
    narrow_kv<KT>(kc + (int64_t)slots[i] * row, k + i * row, row);
    narrow_kv<KT>(vc + (int64_t)slots[i] * row, v + i * row, row);
  }
}

const char* k_kv_write(void* k_cache, void* v_cache, int kv_dtype, const float* k, const float* v, const int32_t* slots,
                       int64_t n, int64_t kv_heads, int64_t head_dim, int64_t num_slots) {
  if (kv_dtype != DT_F32 && kv_dtype != DT_F16 && kv_dtype != DT_BF16) return fail("kv_write: unknown cache dtype code %d", kv_dtype);
  for (int64_t i = 0; i < n; i++)
    if (slots[i] < -1 || slots[i] >= num_slots) return fail("kv_write: slot %d of token %lld is outside [-1, %lld)", slots[i], (long long)i, (long long)num_slots);
  const int64_t row = kv_heads * head_dim;
  switch (kv_dtype) {
    case DT_F32: kv_write_typed<F32W>(k_cache, v_cache, k, v, slots, n, row); break;
    case DT_BF16: kv_write_typed<BF16W>(k_cache, v_cache, k, v, slots, n, row); break;
    default: kv_write_typed<F16W>(k_cache, v_cache, k, v, slots, n, row); break;
  }
  return nullptr;
}

template <typename KT>
void attention_typed(float* out, const float* q, const void* k_cache_raw, const void* v_cache_raw,
                     const int32_t* block_tables, int64_t max_blocks_per_seq, const int32_t* seq_lens,
                     const int32_t* query_start, int64_t num_seqs, int64_t num_heads, int64_t num_kv_heads,
                     int64_t head_dim, int64_t block_size, float scale, int64_t window, int64_t max_len);

const char* k_paged_attention(float* out, const float* q, const void* k_cache, const void* v_cache, int kv_dtype,
                              const int32_t* block_tables, int64_t max_blocks_per_seq, const int32_t* seq_lens,
                              const int32_t* query_start, int64_t num_seqs, int64_t num_tokens, int64_t num_heads, int64_t num_kv_heads,
                              int64_t head_dim, int64_t block_size, int64_t num_blocks, float scale, int64_t window) {
  if (kv_dtype != DT_F32 && kv_dtype != DT_F16 && kv_dtype != DT_BF16) return fail("paged_attention: unknown cache dtype code %d", kv_dtype);
  if (window < 0) return fail("paged_attention: window %lld is negative", (long long)window);
  if (num_kv_heads <= 0 || num_heads % num_kv_heads)
    return fail("paged_attention: %lld query heads are not a multiple of %lld kv heads", (long long)num_heads, (long long)num_kv_heads);
  if (query_start[0] != 0) return fail("paged_attention: query_start[0] is %d, not 0", query_start[0]);
  if (query_start[num_seqs] != num_tokens)
    return fail("paged_attention: query_start[%lld] is %d, the batch has %lld query tokens", (long long)num_seqs, query_start[num_seqs], (long long)num_tokens);
  // Validate every sequence and every block it will read before any work starts.
  int64_t max_len = 0;
  for (int64_t s = 0; s < num_seqs; s++) {
    const int64_t ql = (int64_t)query_start[s + 1] - query_start[s];
    const int64_t len = seq_lens[s];
    if (ql < 1) return fail("paged_attention: sequence %lld has %lld query tokens (needs at least 1)", (long long)s, (long long)ql);
    if (len < ql) return fail("paged_attention: sequence %lld has %lld cached tokens, fewer than its %lld query tokens", (long long)s, (long long)len, (long long)ql);
    const int64_t nb = (len + block_size - 1) / block_size;
    if (nb > max_blocks_per_seq) return fail("paged_attention: sequence %lld needs %lld blocks, its block table has %lld", (long long)s, (long long)nb, (long long)max_blocks_per_seq);
    // with a window, the first query row sees keys from len-ql+1-window on: blocks before are never read
    const int64_t first_key = window > 0 ? std::max<int64_t>(0, len - ql + 1 - window) : 0;
    for (int64_t b = first_key / block_size; b < nb; b++) {
      int32_t id = block_tables[s * max_blocks_per_seq + b];
      if (id < 0 || id >= num_blocks) return fail("paged_attention: sequence %lld block %lld is %d, outside [0, %lld)", (long long)s, (long long)b, id, (long long)num_blocks);
    }
    if (len > max_len) max_len = len;
  }
  switch (kv_dtype) {
    case DT_F32:
      attention_typed<F32W>(out, q, k_cache, v_cache, block_tables, max_blocks_per_seq, seq_lens, query_start, num_seqs,
                            num_heads, num_kv_heads, head_dim, block_size, scale, window, max_len);
      break;
    case DT_BF16:
      attention_typed<BF16W>(out, q, k_cache, v_cache, block_tables, max_blocks_per_seq, seq_lens, query_start, num_seqs,
                             num_heads, num_kv_heads, head_dim, block_size, scale, window, max_len);
      break;
    default:
      attention_typed<F16W>(out, q, k_cache, v_cache, block_tables, max_blocks_per_seq, seq_lens, query_start, num_seqs,
                            num_heads, num_kv_heads, head_dim, block_size, scale, window, max_len);
  }
  return nullptr;
}

// The attention itself, on validated inputs, for the cache's element type KT.
template <typename KT>
void attention_typed(float* out, const float* q, const void* k_cache_raw, const void* v_cache_raw,
                     const int32_t* block_tables, int64_t max_blocks_per_seq, const int32_t* seq_lens,
                     const int32_t* query_start, int64_t num_seqs, int64_t num_heads, int64_t num_kv_heads,
                     int64_t head_dim, int64_t block_size, float scale, int64_t window, int64_t max_len) {
  const typename KT::T* k_cache = static_cast<const typename KT::T*>(k_cache_raw);
  const typename KT::T* v_cache = static_cast<const typename KT::T*>(v_cache_raw);
  const int64_t total_q = query_start[num_seqs];
  const int64_t group = num_heads / num_kv_heads;
  const int64_t row = num_kv_heads * head_dim;  // elements per cached token
  // Scratch kept per thread from call to call (grown, never shrunk): a decode step calls this once a
  // layer, and a fresh allocation each time is work the step can avoid. The caller's buffers are taken
  // by pointer before the parallel region: inside it, a thread_local name is each thread's own.
  thread_local std::vector<int32_t> t_seq_of;
  thread_local std::vector<float> t_part, t_scores;
  if ((int64_t)t_seq_of.size() < total_q) t_seq_of.resize(total_q);
  int32_t* const seq_of = t_seq_of.data();
  for (int64_t s = 0; s < num_seqs; s++)
    for (int64_t t = query_start[s]; t < query_start[s + 1]; t++) seq_of[t] = (int32_t)s;

  // An item is one query token against kv_per_item KV heads. Decode batches (many query tokens) take
  // every head of a token in one item, so each cached block is read front to back, all heads of a
  // token being contiguous (a head alone reads a third of each 768-byte row with GQA 9/3, and the
  // prefetcher fetches the rest for nobody). Fewer query tokens than threads over long key ranges do
  // the same, their keys split below so that every thread has a share; other few-token steps split by
  // head, so that both threads work.
  const int threads = team();
  const bool few_long = total_q < threads && max_len >= SPLIT_ALL_HEADS_KEYS;
  const int64_t kv_per_item = total_q >= 4 * threads || few_long ? num_kv_heads : 1;
  const int64_t items = total_q * (num_kv_heads / kv_per_item);
  const int64_t item_heads = kv_per_item * group;
  // Split keys (flash-decoding) where there are fewer items than two a thread (one decode token: 3 KV
  // heads on 2 threads left a thread idle a third of the time) and long key ranges: each item's keys are
  // cut into `splits` chunks of whole blocks, each chunk's softmax kept unnormalized with its max and sum
  // (part: per item and chunk, item_heads output rows, then their maxima, then their sums), and the
  // chunks combined after. A token with all its heads takes one chunk a thread: one decode token's
  // attention on the 2-core VM, 30 layers' caches read cold, took 22 / 34 / 66 / 132 us a call at 256 /
  // 512 / 1,024 / 2,048 keys against 28 / 41 / 100 / 197 by head (up to 150 keys by head was faster).
  int64_t splits = 1;
  if (few_long)
    splits = std::max<int64_t>(1, std::min<int64_t>((threads + total_q - 1) / total_q, max_len / (SPLIT_ALL_HEADS_KEYS / 2)));
  else if (items < 2 * threads && max_len >= SPLIT_MIN_KEYS)
    splits = std::min<int64_t>((4 * threads + items - 1) / items, max_len / (SPLIT_MIN_KEYS / 2));
  const int64_t part_floats = item_heads * (head_dim + 2);
  if (splits > 1 && (int64_t)t_part.size() < items * splits * part_floats) t_part.resize(items * splits * part_floats);
  float* const part = t_part.data();
  team_if(items * kv_per_item * max_len * head_dim > PAR_ATTENTION_ELEMS, threads, [&] {
    // Scores for the item's heads against every visible key: item_heads x max_len, per thread.
    if ((int64_t)t_scores.size() < item_heads * max_len) t_scores.resize(item_heads * max_len);
    float* const sc = t_scores.data();  // this thread's own
#pragma omp for schedule(dynamic, 1)
    for (int64_t u = 0; u < items * splits; u++) {
      const int64_t it = u / splits, c = u % splits;
      const int64_t t = it / (num_kv_heads / kv_per_item), kh0 = it % (num_kv_heads / kv_per_item) * kv_per_item;
      const int64_t s = seq_of[t];
      const int64_t ql = query_start[s + 1] - query_start[s];
      const int64_t visible = seq_lens[s] - ql + (t - query_start[s]) + 1;
      const int32_t* bt = block_tables + s * max_blocks_per_seq;
      const float* qg = q + (t * num_heads + kh0 * group) * head_dim;
      // Keys [lo, visible): all earlier ones, or the last `window` of them; this unit takes [a, b) of them.
      const int64_t lo = window > 0 ? std::max<int64_t>(0, visible - window) : 0;
      int64_t a = lo, b = visible;
      if (splits > 1) {
        const int64_t chunk = ((visible - lo + splits - 1) / splits + block_size - 1) / block_size * block_size;
        a = std::min(visible, lo + c * chunk);
        b = std::min(visible, a + chunk);
      }
      float* og = splits > 1 ? part + u * part_floats : out + (t * num_heads + kh0 * group) * head_dim;
      // Pass 1, block by block: a block's K rows are fetched once and stay in L1 for every head of the group.
      for (int64_t j0 = a; j0 < b;) {
        const int64_t off = j0 % block_size, n = std::min(block_size - off, b - j0);
        const typename KT::T* kb = k_cache + ((int64_t)bt[j0 / block_size] * block_size + off) * row + kh0 * head_dim;
        for (int64_t kh = 0; kh < kv_per_item; kh++) {
          scores_heads<KT>(sc + kh * group * max_len + j0, max_len, qg + kh * group * head_dim, kb + kh * head_dim,
                           row, n, head_dim, scale, group);
        }
        j0 += n;
      }
      for (int64_t h = 0; h < item_heads; h++) {
        if (splits == 1) {
          softmax(sc + h * max_len, a, b);
        } else {
          float* stats = og + item_heads * head_dim;  // maxima, then sums
          stats[item_heads + h] = a < b ? exp_shifted(sc + h * max_len, a, b, &stats[h]) : 0.f;
          if (a == b) stats[h] = -INFINITY;
        }
        std::memset(og + h * head_dim, 0, head_dim * sizeof(float));
      }
      // Pass 2, block by block, likewise for V.
      for (int64_t j0 = a; j0 < b;) {
        const int64_t off = j0 % block_size, n = std::min(block_size - off, b - j0);
        const typename KT::T* vb = v_cache + ((int64_t)bt[j0 / block_size] * block_size + off) * row + kh0 * head_dim;
        for (int64_t kh = 0; kh < kv_per_item; kh++) {
          accumulate_heads<KT>(og + kh * group * head_dim, sc + kh * group * max_len + j0, max_len,
                               vb + kh * head_dim, row, n, head_dim, group);
        }
        j0 += n;
      }
    }
    if (splits > 1) {
      // the chunks of each item and head: out = sum_c o_c e^(m_c - M) / sum_c l_c e^(m_c - M), M = max_c m_c
#pragma omp for schedule(static)
      for (int64_t it = 0; it < items; it++) {
        const int64_t t = it / (num_kv_heads / kv_per_item), kh0 = it % (num_kv_heads / kv_per_item) * kv_per_item;
        for (int64_t h = 0; h < item_heads; h++) {
          float mx = -INFINITY, total = 0.f;
          for (int64_t c = 0; c < splits; c++) mx = std::max(mx, part[(it * splits + c) * part_floats + item_heads * head_dim + h]);
          float* o = out + (t * num_heads + kh0 * group + h) * head_dim;
          std::memset(o, 0, head_dim * sizeof(float));
          for (int64_t c = 0; c < splits; c++) {
            const float* pc = part + (it * splits + c) * part_floats;
            const float m = pc[item_heads * head_dim + h];
            if (m == -INFINITY) continue;  // an empty chunk
            const float w = std::exp(m - mx);
            total += w * pc[item_heads * head_dim + item_heads + h];
            for (int64_t d = 0; d < head_dim; d++) o[d] += w * pc[h * head_dim + d];
          }
          const float inv = 1.0f / total;
          for (int64_t d = 0; d < head_dim; d++) o[d] *= inv;
        }
      }
    }
  });
}

const char* k_block_copy(void* k_cache, void* v_cache, int kv_dtype, const int32_t* src, const int32_t* dst, int64_t n,
                         int64_t block_elems, int64_t num_blocks) {
  if (kv_dtype != DT_F32 && kv_dtype != DT_F16 && kv_dtype != DT_BF16) return fail("block_copy: unknown cache dtype code %d", kv_dtype);
  const int64_t block_bytes = block_elems * (kv_dtype == DT_F32 ? 4 : 2);
  char* kc = static_cast<char*>(k_cache);
  char* vc = static_cast<char*>(v_cache);
  for (int64_t i = 0; i < n; i++) {
    if (src[i] < 0 || src[i] >= num_blocks || dst[i] < 0 || dst[i] >= num_blocks)
      return fail("block_copy: pair %lld (%d -> %d) is outside [0, %lld)", (long long)i, src[i], dst[i], (long long)num_blocks);
  }
  for (int64_t i = 0; i < n; i++) {
    std::memcpy(kc + (int64_t)dst[i] * block_bytes, kc + (int64_t)src[i] * block_bytes, block_bytes);
    std::memcpy(vc + (int64_t)dst[i] * block_bytes, vc + (int64_t)src[i] * block_bytes, block_bytes);
  }
  return nullptr;
}

const char* k_argmax(int32_t* out, const float* logits, int64_t n, int64_t vocab) {
  for (int64_t i = 0; i < n; i++) {
    const float* l = logits + i * vocab;
    int64_t best = 0;
    for (int64_t j = 1; j < vocab; j++)
      if (l[j] > l[best]) best = j;
    out[i] = (int32_t)best;
  }
  return nullptr;
}

const char* k_load_weight(float* out, const void* host_src, int dtype, int64_t n) {
  if (dtype == DT_F32) {
    std::memcpy(out, host_src, (size_t)n * sizeof(float));
    return nullptr;
  }
  if (dtype != DT_F16 && dtype != DT_BF16) return fail("load_weight: unknown dtype code %d", dtype);
  const uint16_t* in = static_cast<const uint16_t*>(host_src);
#pragma omp parallel for num_threads(team()) if (n > PAR_UPCAST) schedule(static)
  for (int64_t i = 0; i < n; i++) out[i] = dtype == DT_BF16 ? BF16W::one(in + i) : F16W::one(in + i);
  return nullptr;
}

// F32 -> BF16, rounding to nearest even (NaN stays NaN), as torch's .to(bfloat16) does.
void k_round_to_bf16(uint16_t* out, const float* in, int64_t n) {
#pragma omp parallel for num_threads(team()) if (n > PAR_UPCAST) schedule(static)
  for (int64_t i = 0; i < n; i++) out[i] = float_to_bf16(in[i]);
}

// Buffers of 2 MiB and more (the KV cache, widened or rounded weight copies, large scratch) start on a
// 2 MiB boundary and ask for transparent huge pages before their first touch: streaming hundreds of MB
// through 4 KiB pages costs a page walk every 4 KiB, which under a hypervisor's nested paging cut a plain
// read by a third (docs/benchmarks.md, "Huge pages"). Smaller buffers stay 64-byte aligned.
const char* k_alloc(void** p, size_t bytes) {
  if (bytes == 0) return fail("alloc: size must be positive");
  constexpr size_t HUGE_PAGE = (size_t)2 << 20;
  const bool huge = bytes >= HUGE_PAGE;
  const size_t align = huge ? HUGE_PAGE : 64;
  const size_t rounded = (bytes + align - 1) & ~(align - 1);
  void* a = std::aligned_alloc(align, rounded);
  if (a == nullptr) return fail("alloc: out of host memory allocating %zu bytes", bytes);
#ifdef MADV_HUGEPAGE
  if (huge) madvise(a, rounded, MADV_HUGEPAGE);  // advice only: without THP the pages stay 4 KiB
#endif
  std::memset(a, 0, rounded);
  *p = a;
  return nullptr;
}

const char* k_free(void* p) {
  std::free(p);
  return nullptr;
}

void k_set_threads(int n) { g_threads.store(n, std::memory_order_relaxed); }
int k_threads() { return nthreads(); }
int k_team_threads() { return g_team_owners.load(std::memory_order_relaxed); }

double k_stream_read(const float* p, int64_t count) {
  double total = 0;
#pragma omp parallel num_threads(team()) reduction(+ : total)
  {
    vf acc{};
#pragma omp for schedule(static) nowait
    for (int64_t i = 0; i < count / VL; i++) acc += *(const vf*)(p + i * VL);
    total += hsum(acc);
  }
  return total;
}

// Peak arithmetic of the calling thread's core: 12 independent FMA chains in registers (enough to
// cover the latency on every x86 core of the last decade) for `seconds`; GFLOP/s, a multiply-add
// counting 2. bf16 != 0 measures vdpbf16ps (2 products per float lane) where the level has it, else 0.
// The empty asm keeps the chains in registers and stops the compiler folding the loop away.
#define BS_CHAINS(OP) OP(0) OP(1) OP(2) OP(3) OP(4) OP(5) OP(6) OP(7) OP(8) OP(9) OP(10) OP(11)
#define BS_KEEP(T)                                                                                            \
  __asm__ volatile("" : "+" T(c0), "+" T(c1), "+" T(c2), "+" T(c3), "+" T(c4), "+" T(c5), "+" T(c6), "+" T(c7), \
                   "+" T(c8), "+" T(c9), "+" T(c10), "+" T(c11))
double k_peak_gflops(int bf16, double seconds) {
  const auto t0 = std::chrono::steady_clock::now();
  double elapsed = 0;
  int64_t iters = 0;
#if defined(BS_EMULATE_AVX512)
  (void)bf16, (void)seconds, (void)elapsed, (void)t0, (void)iters;
  return 0;  // an emulated copy's peak means nothing (and its 64-byte vectors fit no register)
#else
  if (!bf16) {
#define BS_INIT(i) vf c##i = vf{} + 1e-3f * i;
    BS_CHAINS(BS_INIT)
    const vf a = vf{} + 0.999999f, b = vf{} + 1e-7f;
    do {
      for (int r = 0; r < 1000; r++) {
#define BS_FMA(i) c##i = c##i * a + b;
        BS_CHAINS(BS_FMA)
        BS_KEEP("x");
      }
      iters += 1000;
      elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    } while (elapsed < seconds);
    return (double)iters * 12 * VL * 2 / elapsed / 1e9;
  }
#if defined(__AVX512BF16__)
#define BS_INIT16(i) __m512 c##i = _mm512_set1_ps(1e-3f * i);
  BS_CHAINS(BS_INIT16)
  const __m512bh a = (__m512bh)_mm512_set1_epi16(0x3f80), b = (__m512bh)_mm512_set1_epi16(0x3380);
  do {
    for (int r = 0; r < 1000; r++) {
#define BS_DP(i) c##i = _mm512_dpbf16_ps(c##i, a, b);
      BS_CHAINS(BS_DP)
      BS_KEEP("v");
    }
    iters += 1000;
    elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  } while (elapsed < seconds);
  return (double)iters * 12 * 16 * 4 / elapsed / 1e9;
#else
  return 0;
#endif
#endif
}

// exp((in - shift) * scale) over a host row, a vector at a time (vexp: about one float ulp), summed in
// double every 256 vectors. One thread: a vocabulary row (49,152 floats) takes some 20-40 us here, less
// than waking the team would. The sampler's softmax and logprobs call it per sequence.
double k_exp_sum(float* out, const float* in, int64_t n, float shift, float scale) {
  double total = 0;
  vf acc{};
  int64_t i = 0;
  for (int64_t v = 0; i + VL <= n; i += VL, v++) {
    const vf e = vexp((*(const vf*)(in + i) - shift) * scale);
    if (out != nullptr) *(vf*)(out + i) = e;
    acc += e;
    if ((v & 255) == 255) {
      total += hsum(acc);
      acc = vf{};
    }
  }
  total += hsum(acc);
  for (; i < n; i++) {
    const float e = std::exp((in[i] - shift) * scale);
    if (out != nullptr) out[i] = e;
    total += e;
  }
  return total;
}

// 1: BF16 matrices take activations rounded to BF16 where this level can (returns 1), else returns 0.
int k_set_bf16_activations(int on) {
#if defined(BS_AVX512)
  if (kBf16Level) {
    g_bf16_activations.store(on != 0, std::memory_order_relaxed);
    return 1;
  }
#endif
  return on ? 0 : 1;
}

constexpr bs::KernelTable kTable = {
    BS_LEVEL, VL, k_alloc, k_free, k_load_weight, k_embedding, k_rmsnorm, k_matmul, k_rope, k_silu_mul, k_add,
    k_bias_add, k_kv_write, k_paged_attention, k_block_copy, k_argmax, k_set_threads, k_threads, k_round_to_bf16,
    k_stream_read, k_peak_gflops, k_team_threads, k_exp_sum, k_set_bf16_activations, k_packed_bf16_bytes, k_pack_bf16,
    k_matmul_packed_bf16, k_matmul_packed_bf16_n,
};

}  // namespace

extern "C" __attribute__((visibility("default"))) const bs::KernelTable* bs_cpu_kernel_table() { return &kTable; }

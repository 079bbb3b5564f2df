// CPU kernels. Plain C++17 with GCC/Clang vector extensions: the vector width follows the target
// (-march=native gives AVX-512 where the build machine has it), and OpenMP spreads the work.
#include "cpu_kernels.h"

#include <cstdlib>
#include <new>
#include <string>

#include <omp.h>
#if defined(__AVX__)
#include <immintrin.h>
#endif

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <vector>

namespace bs {

namespace {

#if defined(__AVX512F__)
constexpr int VL = 16;
#elif defined(__AVX__)
constexpr int VL = 8;
#else
constexpr int VL = 4;
#endif
// aligned(4): loads through this type compile to unaligned vector loads (weights sit in an
// mmap'd safetensors file at whatever offset the header gave them).
typedef float vf __attribute__((vector_size(VL * sizeof(float)), aligned(4)));

std::atomic<int> g_threads{0};

inline int nthreads() {
  int t = g_threads.load(std::memory_order_relaxed);
  return t > 0 ? t : omp_get_num_procs();
}

// OpenMP thresholds. Below them a parallel region (waking the team, a barrier at its end: a few
// microseconds on 2 threads) costs more than the work it would split, so the op stays on the caller.
constexpr int64_t PAR_ROWS_ELEMS = 65536;      // rmsnorm, rope: floats touched
constexpr int64_t PAR_MATMUL_MACS = 32768;     // matmul: multiply-adds of one row chunk
constexpr int64_t PAR_ELEMWISE = 262144;       // silu_mul, add: memory-bound, ~1 MiB per operand
constexpr int64_t PAR_ATTENTION_ELEMS = 16384; // paged attention: query rows x keys x head_dim
constexpr int64_t PAR_UPCAST = 1 << 20;        // load-time dtype upcasts

thread_local char g_msg[512];

template <typename... A>
const char* fail(const char* fmt, A... a) {
  std::snprintf(g_msg, sizeof g_msg, fmt, a...);
  return g_msg;
}

inline float hsum(vf v) {
#if defined(__AVX512F__)
  return _mm512_reduce_add_ps((__m512)v);
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

// RX rows of x against RW rows of w: RX*RW dot products of length k, kept in vector registers.
// Each step loads RX+RW vectors and issues RX*RW FMAs, so the weights stream once per RX rows.
template <int RX, int RW>
inline void tile(float* out, int64_t ldo, const float* x, const float* w, int64_t k) {
  vf acc[RX][RW];
  for (int i = 0; i < RX; i++)
    for (int j = 0; j < RW; j++) acc[i][j] = vf{};
  const int64_t kv = k - k % VL;
  for (int64_t p = 0; p < kv; p += VL) {
    vf wv[RW];
    for (int j = 0; j < RW; j++) wv[j] = *(const vf*)(w + j * k + p);
    for (int i = 0; i < RX; i++) {
      vf xv = *(const vf*)(x + i * k + p);
      for (int j = 0; j < RW; j++) acc[i][j] += xv * wv[j];
    }
  }
  for (int i = 0; i < RX; i++)
    for (int j = 0; j < RW; j++) {
      float s = hsum(acc[i][j]);
      for (int64_t p = kv; p < k; p++) s += x[i * k + p] * w[j * k + p];
      out[i * ldo + j] = s;
    }
}

template <int RW>
inline void rows_against(float* out, int64_t ldo, const float* x, int64_t nx, const float* w, int64_t k) {
  // 2 rows of x against RW rows of w. Measured on Zen 4 (AVX-512): 2x8 runs at ~105 GFLOP/s on two
  // cores where 4x4 runs at ~60, since GCC then folds every weight load into its FMA.
  constexpr int RX = 2;
  int64_t i = 0;
  for (; i + RX <= nx; i += RX) tile<RX, RW>(out + i * ldo, ldo, x + i * k, w, k);
  for (; i < nx; i++) tile<1, RW>(out + i * ldo, ldo, x + i * k, w, k);
}

// Scores of one query head against n consecutive cached tokens (rows `stride` floats apart), four
// keys at a time so four independent loads and FMA chains are in flight instead of one.
template <int NV>
inline void scores_block(float* sc, const float* q, const float* k, int64_t stride, int64_t n, float scale) {
  vf qv[NV];
  for (int v = 0; v < NV; v++) qv[v] = *(const vf*)(q + v * VL);
  int64_t j = 0;
  for (; j + 4 <= n; j += 4) {
    const float* k0 = k + j * stride;
    vf a0{}, a1{}, a2{}, a3{};
    for (int v = 0; v < NV; v++) {
      a0 += qv[v] * *(const vf*)(k0 + v * VL);
      a1 += qv[v] * *(const vf*)(k0 + stride + v * VL);
      a2 += qv[v] * *(const vf*)(k0 + 2 * stride + v * VL);
      a3 += qv[v] * *(const vf*)(k0 + 3 * stride + v * VL);
    }
    sc[j] = hsum(a0) * scale;
    sc[j + 1] = hsum(a1) * scale;
    sc[j + 2] = hsum(a2) * scale;
    sc[j + 3] = hsum(a3) * scale;
  }
  for (; j < n; j++) {
    vf a{};
    for (int v = 0; v < NV; v++) a += qv[v] * *(const vf*)(k + j * stride + v * VL);
    sc[j] = hsum(a) * scale;
  }
}

// o += sum_j p[j] * v_j over n consecutive cached tokens, the output row held in registers.
template <int NV>
inline void accumulate_block(float* o, const float* p, const float* vrow, int64_t stride, int64_t n) {
  vf acc[NV];
  for (int v = 0; v < NV; v++) acc[v] = *(const vf*)(o + v * VL);
  for (int64_t j = 0; j < n; j++) {
    const float pj = p[j];
    for (int v = 0; v < NV; v++) acc[v] += pj * *(const vf*)(vrow + j * stride + v * VL);
  }
  for (int v = 0; v < NV; v++) *(vf*)(o + v * VL) = acc[v];
}

inline void scores_block_any(float* sc, const float* q, const float* k, int64_t stride, int64_t n, int64_t hd, float scale) {
  switch (hd / VL * (hd % VL == 0)) {
    case 1: return scores_block<1>(sc, q, k, stride, n, scale);
    case 2: return scores_block<2>(sc, q, k, stride, n, scale);
    case 4: return scores_block<4>(sc, q, k, stride, n, scale);
    case 8: return scores_block<8>(sc, q, k, stride, n, scale);
    case 16: return scores_block<16>(sc, q, k, stride, n, scale);
    default:
      for (int64_t j = 0; j < n; j++) sc[j] = dot(q, k + j * stride, hd) * scale;
  }
}

inline void accumulate_block_any(float* o, const float* p, const float* vrow, int64_t stride, int64_t n, int64_t hd) {
  switch (hd / VL * (hd % VL == 0)) {
    case 1: return accumulate_block<1>(o, p, vrow, stride, n);
    case 2: return accumulate_block<2>(o, p, vrow, stride, n);
    case 4: return accumulate_block<4>(o, p, vrow, stride, n);
    case 8: return accumulate_block<8>(o, p, vrow, stride, n);
    case 16: return accumulate_block<16>(o, p, vrow, stride, n);
    default:
      for (int64_t j = 0; j < n; j++) {
        const float pj = p[j];
#pragma omp simd
        for (int64_t d = 0; d < hd; d++) o[d] += pj * vrow[j * stride + d];
      }
  }
}

}  // namespace

void set_threads(int n) { g_threads.store(n, std::memory_order_relaxed); }
int threads() { return nthreads(); }

const char* embedding(float* out, const float* table, const int32_t* ids, int64_t n, int64_t dim, int64_t rows) {
  for (int64_t i = 0; i < n; i++)
    if (ids[i] < 0 || ids[i] >= rows) return fail("embedding: id %d at row %lld is outside [0, %lld)", ids[i], (long long)i, (long long)rows);
  for (int64_t i = 0; i < n; i++) std::memcpy(out + i * dim, table + (int64_t)ids[i] * dim, dim * sizeof(float));
  return nullptr;
}

const char* rmsnorm(float* out, const float* x, const float* w, int64_t n, int64_t dim, float eps) {
#pragma omp parallel for num_threads(nthreads()) if (n * dim > PAR_ROWS_ELEMS) schedule(static)
  for (int64_t i = 0; i < n; i++) {
    const float* xi = x + i * dim;
    float* oi = out + i * dim;
    float ss = dot(xi, xi, dim);
    float r = 1.0f / std::sqrt(ss / (float)dim + eps);
#pragma omp simd
    for (int64_t j = 0; j < dim; j++) oi[j] = xi[j] * r * w[j];
  }
  return nullptr;
}

const char* matmul(float* out, const float* x, const float* w, int64_t n, int64_t k, int64_t m) {
  constexpr int RW = (VL == 16) ? 8 : 4;  // AVX-512 has 32 vector registers, AVX2 16
  // Rows of x are taken in chunks that stay in L2 while each thread streams its share of w.
  const int64_t chunk = std::max<int64_t>(4, (256 * 1024) / (k * (int64_t)sizeof(float)) / 4 * 4);
  const int64_t tiles = m / RW;
  for (int64_t r0 = 0; r0 < n; r0 += chunk) {
    const int64_t nx = std::min(chunk, n - r0);
    const float* xc = x + r0 * k;
    float* oc = out + r0 * m;
#pragma omp parallel num_threads(nthreads()) if (tiles * nx * k > PAR_MATMUL_MACS)
    {
#pragma omp for schedule(static) nowait
      for (int64_t t = 0; t < tiles; t++) rows_against<RW>(oc + t * RW, m, xc, nx, w + t * RW * k, k);
#pragma omp single nowait
      for (int64_t j = tiles * RW; j < m; j++) rows_against<1>(oc + j, m, xc, nx, w + j * k, k);
    }
  }
  return nullptr;
}

const char* rope(float* x, const int32_t* pos, const float* cos_sin, int64_t n, int64_t heads, int64_t head_dim,
                 int64_t max_pos) {
  if (head_dim % 2) return fail("rope: head_dim %lld is odd", (long long)head_dim);
  for (int64_t i = 0; i < n; i++)
    if (pos[i] < 0 || pos[i] >= max_pos) return fail("rope: position %d at row %lld is outside [0, %lld)", pos[i], (long long)i, (long long)max_pos);
  const int64_t h = head_dim / 2;
#pragma omp parallel for num_threads(nthreads()) if (n * heads * head_dim > PAR_ROWS_ELEMS) schedule(static)
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
  return nullptr;
}

const char* silu_mul(float* out, const float* gate, const float* up, int64_t count) {
#pragma omp parallel for simd num_threads(nthreads()) if (count > PAR_ELEMWISE) schedule(static)
  for (int64_t i = 0; i < count; i++) {
    float g = gate[i];
    out[i] = g / (1.0f + std::exp(-g)) * up[i];
  }
  return nullptr;
}

const char* add(float* x, const float* y, int64_t count) {
#pragma omp parallel for simd num_threads(nthreads()) if (count > PAR_ELEMWISE) schedule(static)
  for (int64_t i = 0; i < count; i++) x[i] += y[i];
  return nullptr;
}

const char* bias_add(float* x, const float* bias, int64_t n, int64_t dim) {
#pragma omp parallel for num_threads(nthreads()) if (n * dim > PAR_ELEMWISE) schedule(static)
  for (int64_t i = 0; i < n; i++) {
    float* r = x + i * dim;
#pragma omp simd
    for (int64_t j = 0; j < dim; j++) r[j] += bias[j];
  }
  return nullptr;
}

const char* kv_write(float* k_cache, float* v_cache, const float* k, const float* v, const int32_t* slots,
                     int64_t n, int64_t kv_heads, int64_t head_dim, int64_t num_slots) {
  for (int64_t i = 0; i < n; i++)
    if (slots[i] < -1 || slots[i] >= num_slots) return fail("kv_write: slot %d of token %lld is outside [-1, %lld)", slots[i], (long long)i, (long long)num_slots);
  const int64_t row = kv_heads * head_dim;
  for (int64_t i = 0; i < n; i++) {
    if (slots[i] < 0) continue;
    std::memcpy(k_cache + (int64_t)slots[i] * row, k + i * row, row * sizeof(float));
    std::memcpy(v_cache + (int64_t)slots[i] * row, v + i * row, row * sizeof(float));
  }
  return nullptr;
}

const char* paged_attention(float* out, const float* q, const float* k_cache, const float* v_cache,
                            const int32_t* block_tables, int64_t max_blocks_per_seq, const int32_t* seq_lens,
                            const int32_t* query_start, int64_t num_seqs, int64_t num_tokens, int64_t num_heads, int64_t num_kv_heads,
                            int64_t head_dim, int64_t block_size, int64_t num_blocks, float scale, int64_t window) {
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
  const int64_t total_q = query_start[num_seqs];
  const int64_t group = num_heads / num_kv_heads;
  const int64_t row = num_kv_heads * head_dim;  // floats per cached token
  std::vector<int32_t> seq_of(total_q);
  for (int64_t s = 0; s < num_seqs; s++)
    for (int64_t t = query_start[s]; t < query_start[s + 1]; t++) seq_of[t] = (int32_t)s;

  const int64_t items = total_q * num_kv_heads;
#pragma omp parallel num_threads(nthreads()) if (items * max_len * head_dim > PAR_ATTENTION_ELEMS)
  {
    // Scores for the group's heads against every visible key: group x max_len, per thread.
    std::vector<float> sc(group * max_len);
#pragma omp for schedule(dynamic, 1)
    for (int64_t it = 0; it < items; it++) {
      const int64_t t = it / num_kv_heads, kh = it % num_kv_heads;
      const int64_t s = seq_of[t];
      const int64_t ql = query_start[s + 1] - query_start[s];
      const int64_t visible = seq_lens[s] - ql + (t - query_start[s]) + 1;
      const int32_t* bt = block_tables + s * max_blocks_per_seq;
      const float* qg = q + (t * num_heads + kh * group) * head_dim;
      float* og = out + (t * num_heads + kh * group) * head_dim;
      // Keys [lo, visible): all earlier ones, or the last `window` of them.
      const int64_t lo = window > 0 ? std::max<int64_t>(0, visible - window) : 0;
      // Pass 1, block by block: a block's K rows are fetched once and stay in L1 for every head of the group.
      for (int64_t j0 = lo; j0 < visible;) {
        const int64_t off = j0 % block_size, n = std::min(block_size - off, visible - j0);
        const float* kb = k_cache + ((int64_t)bt[j0 / block_size] * block_size + off) * row + kh * head_dim;
        for (int64_t g = 0; g < group; g++)
          scores_block_any(sc.data() + g * max_len + j0, qg + g * head_dim, kb, row, n, head_dim, scale);
        j0 += n;
      }
      for (int64_t g = 0; g < group; g++) {
        float* p = sc.data() + g * max_len;
        float mx = -INFINITY;
        for (int64_t j = lo; j < visible; j++) mx = std::max(mx, p[j]);
        float sum = 0.f;
        for (int64_t j = lo; j < visible; j++) {
          p[j] = std::exp(p[j] - mx);
          sum += p[j];
        }
        const float inv = 1.0f / sum;
        for (int64_t j = lo; j < visible; j++) p[j] *= inv;
        std::memset(og + g * head_dim, 0, head_dim * sizeof(float));
      }
      // Pass 2, block by block, likewise for V.
      for (int64_t j0 = lo; j0 < visible;) {
        const int64_t off = j0 % block_size, n = std::min(block_size - off, visible - j0);
        const float* vb = v_cache + ((int64_t)bt[j0 / block_size] * block_size + off) * row + kh * head_dim;
        for (int64_t g = 0; g < group; g++)
          accumulate_block_any(og + g * head_dim, sc.data() + g * max_len + j0, vb, row, n, head_dim);
        j0 += n;
      }
    }
  }
  return nullptr;
}

const char* block_copy(float* k_cache, float* v_cache, const int32_t* src, const int32_t* dst, int64_t n,
                       int64_t block_elems, int64_t num_blocks) {
  for (int64_t i = 0; i < n; i++) {
    if (src[i] < 0 || src[i] >= num_blocks || dst[i] < 0 || dst[i] >= num_blocks)
      return fail("block_copy: pair %lld (%d -> %d) is outside [0, %lld)", (long long)i, src[i], dst[i], (long long)num_blocks);
  }
  for (int64_t i = 0; i < n; i++) {
    std::memcpy(k_cache + (int64_t)dst[i] * block_elems, k_cache + (int64_t)src[i] * block_elems, block_elems * sizeof(float));
    std::memcpy(v_cache + (int64_t)dst[i] * block_elems, v_cache + (int64_t)src[i] * block_elems, block_elems * sizeof(float));
  }
  return nullptr;
}

const char* argmax(int32_t* out, const float* logits, int64_t n, int64_t vocab) {
  for (int64_t i = 0; i < n; i++) {
    const float* l = logits + i * vocab;
    int64_t best = 0;
    for (int64_t j = 1; j < vocab; j++)
      if (l[j] > l[best]) best = j;
    out[i] = (int32_t)best;
  }
  return nullptr;
}

void f16_to_f32(float* out, const uint16_t* in, int64_t n) {
#pragma omp parallel for num_threads(nthreads()) if (n > PAR_UPCAST) schedule(static)
  for (int64_t i = 0; i < n; i++) {
    const uint32_t h = in[i];
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
    std::memcpy(out + i, &f, 4);
  }
}

void bf16_to_f32(float* out, const uint16_t* in, int64_t n) {
#pragma omp parallel for num_threads(nthreads()) if (n > PAR_UPCAST) schedule(static)
  for (int64_t i = 0; i < n; i++) {
    uint32_t f = (uint32_t)in[i] << 16;
    std::memcpy(out + i, &f, 4);
  }
}

const char* alloc(void** p, size_t bytes) {
  if (bytes == 0) return fail("alloc: size must be positive");
  const size_t rounded = (bytes + 63) & ~(size_t)63;
  void* a = std::aligned_alloc(64, rounded);
  if (a == nullptr) return fail("alloc: out of host memory allocating %zu bytes", bytes);
  std::memset(a, 0, rounded);
  *p = a;
  return nullptr;
}

const char* free(void* p) {
  std::free(p);
  return nullptr;
}

const char* to_device(void* dst, const void* host_src, size_t bytes) {
  std::memcpy(dst, host_src, bytes);
  return nullptr;
}

const char* to_host(void* host_dst, const void* src, size_t bytes) {
  std::memcpy(host_dst, src, bytes);
  return nullptr;
}

const char* load_weight(float* out, const void* host_src, int dtype, int64_t n) {
  switch (dtype) {
    case 0: std::memcpy(out, host_src, (size_t)n * sizeof(float)); return nullptr;
    case 1: f16_to_f32(out, static_cast<const uint16_t*>(host_src), n); return nullptr;
    case 2: bf16_to_f32(out, static_cast<const uint16_t*>(host_src), n); return nullptr;
    default: return fail("load_weight: unknown dtype code %d", dtype);
  }
}

double stream_read(const float* p, int64_t count) {
  double total = 0;
#pragma omp parallel num_threads(nthreads()) reduction(+ : total)
  {
    vf acc{};
#pragma omp for schedule(static) nowait
    for (int64_t i = 0; i < count / VL; i++) acc += *(const vf*)(p + i * VL);
    total += hsum(acc);
  }
  return total;
}

}  // namespace bs

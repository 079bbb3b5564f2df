// CUDA kernels behind the blockserve backend contract (native/README.md). Activations are FP32;
// matmul weights are BF16 with FP32 accumulation. Bad indices found on the device set a sticky error
// word instead of touching memory; the Java side checks it at its next synchronising copy.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <dlfcn.h>
#include <mma.h>

#include <cfloat>
#include <cstdint>
#include <cstdlib>
#include <cstdio>
#include <mutex>
#include <type_traits>
#include <unordered_map>

#include "cuda_backend.h"

namespace bscuda {

namespace {

thread_local char g_msg[512];

const char* err(const char* op, cudaError_t e) {
  if (e == cudaSuccess) return nullptr;
  std::snprintf(g_msg, sizeof g_msg, "%s: %s (%s)", op, cudaGetErrorString(e), cudaGetErrorName(e));
  return g_msg;
}

// After a launch: a configuration error shows up at once, a fault at the next synchronising call.
const char* launched(const char* op) { return err(op, cudaGetLastError()); }

// Error word: op code in the high 32 bits, the offending value in the low 32 bits.
__device__ unsigned long long d_error = 0;

enum Op : unsigned { OP_EMBEDDING = 1, OP_KV_WRITE = 2, OP_ATTENTION = 3, OP_BLOCK_COPY = 4, OP_ROPE = 5 };

__device__ void flag(unsigned op, int value) {
  atomicCAS(&d_error, 0ull, ((unsigned long long)op << 32) | (unsigned)value);
}

inline unsigned blocks_for(int64_t n, int threads) { return (unsigned)((n + threads - 1) / threads); }

__device__ __forceinline__ float warp_sum(float v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffff, v, o);
  return v;
}

__device__ __forceinline__ float warp_max(float v) {
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffff, v, o));
  return v;
}

struct SumOp {
  __device__ static float identity() { return 0.f; }
  __device__ static float warp(float v) { return warp_sum(v); }
};
struct MaxOp {
  __device__ static float identity() { return -FLT_MAX; }
  __device__ static float warp(float v) { return warp_max(v); }
};

// Block-wide reduction for blockDim.x a multiple of 32, at most 1024 threads; every thread gets the result.
template <typename Op>
__device__ float block_reduce(float v) {
  __shared__ float part[32];
  v = Op::warp(v);
  int lane = threadIdx.x & 31, wid = threadIdx.x >> 5;
  __syncthreads();
  if (lane == 0) part[wid] = v;
  __syncthreads();
  v = lane < (int)(blockDim.x >> 5) ? part[lane] : Op::identity();
  return Op::warp(v);
}

__device__ float block_sum(float v) { return block_reduce<SumOp>(v); }
__device__ float block_max(float v) { return block_reduce<MaxOp>(v); }

// KV cache elements (the contract's kv_dtype): float, __half or __nv_bfloat16, widened to float on every
// read and narrowed (round to nearest even) once, by kv_write.
__device__ __forceinline__ float kv_f(float x) { return x; }
__device__ __forceinline__ float kv_f(__half x) { return __half2float(x); }
__device__ __forceinline__ float kv_f(__nv_bfloat16 x) { return __bfloat162float(x); }
template <typename KT> __device__ __forceinline__ KT kv_from(float x);
template <> __device__ __forceinline__ float kv_from<float>(float x) { return x; }
// F16 saturates at +-65504 as the CPU library's does (NaN stays NaN)
template <> __device__ __forceinline__ __half kv_from<__half>(float x) {
  return __float2half_rn(isnan(x) ? x : fminf(fmaxf(x, -65504.f), 65504.f));
}
template <> __device__ __forceinline__ __nv_bfloat16 kv_from<__nv_bfloat16>(float x) { return __float2bfloat16_rn(x); }

// ---- conversions

__global__ void k_f32_to_bf16(__nv_bfloat16* out, const float* in, int64_t n) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
    out[i] = __float2bfloat16(in[i]);
}

__global__ void k_bf16_to_f32(float* out, const __nv_bfloat16* in, int64_t n) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
    out[i] = __bfloat162float(in[i]);
}

__global__ void k_f16_to_f32(float* out, const __half* in, int64_t n) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
    out[i] = __half2float(in[i]);
}

unsigned grid_for(int64_t n) { return (unsigned)std::min<int64_t>((n + 255) / 256, 65535 * 8); }

// ---- elementwise and row ops

__global__ void k_embedding(float* out, const float* table, const int32_t* ids, int64_t dim, int64_t rows) {
  int64_t i = blockIdx.x;
  int id = ids[i];
  if (id < 0 || id >= rows) {
    if (threadIdx.x == 0) flag(OP_EMBEDDING, id);
    return;
  }
  for (int64_t j = threadIdx.x; j < dim; j += blockDim.x) out[i * dim + j] = table[(int64_t)id * dim + j];
}

__global__ void k_rmsnorm(float* out, const float* x, const float* w, int64_t dim, float eps) {
  const float* xi = x + blockIdx.x * dim;
  float ss = 0.f;
  for (int64_t j = threadIdx.x; j < dim; j += blockDim.x) ss += xi[j] * xi[j];
  ss = block_sum(ss);
  float r = rsqrtf(ss / (float)dim + eps);
  float* oi = out + blockIdx.x * dim;
  for (int64_t j = threadIdx.x; j < dim; j += blockDim.x) oi[j] = xi[j] * r * w[j];
}

__global__ void k_rope(float* x, const int32_t* pos, const float* cos_sin, int64_t heads, int64_t head_dim, int64_t max_pos) {
  int64_t t = blockIdx.x;
  int p = pos[t];
  if (p < 0 || p >= max_pos) {
    if (threadIdx.x == 0) flag(OP_ROPE, p);
    return;
  }
  int64_t h2 = head_dim / 2;
  const float* c = cos_sin + (int64_t)p * head_dim;
  for (int64_t i = threadIdx.x; i < heads * h2; i += blockDim.x) {
    int64_t hh = i / h2, j = i % h2;
    float* v = x + (t * heads + hh) * head_dim;
    float a = v[j], b = v[j + h2], cs = c[j], sn = c[h2 + j];
    v[j] = a * cs - b * sn;
    v[j + h2] = b * cs + a * sn;
  }
}

__global__ void k_silu_mul(float* out, const float* g, const float* u, int64_t n) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
    float a = g[i];
    out[i] = a / (1.f + __expf(-a)) * u[i];
  }
}

__global__ void k_bias_add(float* x, const float* b, int64_t n, int64_t dim) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n * dim; i += (int64_t)gridDim.x * blockDim.x)
    x[i] += b[i % dim];
}

__global__ void k_add(float* x, const float* y, int64_t n) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) x[i] += y[i];
}

template <typename KT>
__global__ void k_kv_write(KT* kc, KT* vc, const float* k, const float* v, const int32_t* slots, int64_t row,
                           int64_t num_slots) {
  int64_t t = blockIdx.x;
  int s = slots[t];
  if (s < 0) return;
  if (s >= num_slots) {
    if (threadIdx.x == 0) flag(OP_KV_WRITE, s);
    return;
  }
  for (int64_t j = threadIdx.x; j < row; j += blockDim.x) {
    kc[(int64_t)s * row + j] = kv_from<KT>(k[t * row + j]);
    vc[(int64_t)s * row + j] = kv_from<KT>(v[t * row + j]);
  }
}

template <typename KT>
__global__ void k_block_copy(KT* kc, KT* vc, const int32_t* src, const int32_t* dst, int64_t elems, int64_t num_blocks) {
  int64_t i = blockIdx.x;
  int s = src[i], d = dst[i];
  if (s < 0 || s >= num_blocks || d < 0 || d >= num_blocks) {
    if (threadIdx.x == 0) flag(OP_BLOCK_COPY, s < 0 || s >= num_blocks ? s : d);
    return;
  }
  for (int64_t j = threadIdx.x; j < elems; j += blockDim.x) {
    kc[(int64_t)d * elems + j] = kc[(int64_t)s * elems + j];
    vc[(int64_t)d * elems + j] = vc[(int64_t)s * elems + j];
  }
}

__global__ void k_argmax(int32_t* out, const float* logits, int64_t vocab) {
  const float* l = logits + blockIdx.x * vocab;
  float best = -FLT_MAX;
  int idx = 0;
  for (int64_t j = threadIdx.x; j < vocab; j += blockDim.x)
    if (l[j] > best) { best = l[j]; idx = (int)j; }
  // reduce (value, index), the lowest index on ties
  __shared__ float sv[1024];
  __shared__ int si[1024];
  sv[threadIdx.x] = best;
  si[threadIdx.x] = idx;
  __syncthreads();
  for (int s = blockDim.x / 2; s > 0; s >>= 1) {
    if (threadIdx.x < s) {
      float ov = sv[threadIdx.x + s];
      int oi = si[threadIdx.x + s];
      if (ov > sv[threadIdx.x] || (ov == sv[threadIdx.x] && oi < si[threadIdx.x])) {
        sv[threadIdx.x] = ov;
        si[threadIdx.x] = oi;
      }
    }
    __syncthreads();
  }
  if (threadIdx.x == 0) out[blockIdx.x] = si[0];
}

// ---- matmul: out[n,m] = x[n,k] . w[m,k]^T, w BF16

// Decode rows (few rows of x): one warp per output column, weights streamed once per row group of 4.
__global__ void k_gemv_bf16(float* out, const float* x, const __nv_bfloat16* w, int64_t n, int64_t k, int64_t m) {
  int64_t col = blockIdx.x * (blockDim.x / 32) + (threadIdx.x >> 5);
  int lane = threadIdx.x & 31;
  if (col >= m) return;
  const __nv_bfloat16* wr = w + col * k;
  for (int64_t r0 = 0; r0 < n; r0 += 4) {
    float acc[4] = {0.f, 0.f, 0.f, 0.f};
    int64_t rows = n - r0 < 4 ? n - r0 : 4;
    if ((k & 1) == 0) {
      // k even: every row of w starts 4-byte aligned, so BF16 pairs load as one word
      for (int64_t p = lane * 2; p + 1 < k; p += 64) {
        float2 wv = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(wr + p));
        for (int r = 0; r < rows; r++) {
          const float* xr = x + (r0 + r) * k;
          acc[r] += wv.x * xr[p] + wv.y * xr[p + 1];
        }
      }
    } else {
      for (int64_t p = lane; p < k; p += 32) {
        float wv = __bfloat162float(wr[p]);
        for (int r = 0; r < rows; r++) acc[r] += wv * x[(r0 + r) * k + p];
      }
    }
    for (int r = 0; r < rows; r++) {
      float s = warp_sum(acc[r]);
      if (lane == 0) out[(r0 + r) * m + col] = s;
    }
  }
}

// Tensor cores (sm_80+): each warp computes a 16x16 tile of out with BF16 inputs and FP32 accumulation.
// Needs rows, m and k multiples of 16 (the caller sends the remainder rows to the GEMV kernel).
__global__ void k_wmma_bf16(float* out, const __nv_bfloat16* x, const __nv_bfloat16* w, int64_t rows, int64_t k, int64_t m) {
#if __CUDA_ARCH__ >= 800
  using namespace nvcuda;
  int warp = (blockIdx.x * blockDim.x + threadIdx.x) >> 5;
  int64_t tiles_m = m / 16;
  int64_t tr = warp / tiles_m, tc = warp % tiles_m;
  if (tr * 16 >= rows) return;
  wmma::fragment<wmma::matrix_a, 16, 16, 16, __nv_bfloat16, wmma::row_major> a;
  wmma::fragment<wmma::matrix_b, 16, 16, 16, __nv_bfloat16, wmma::col_major> b;
  wmma::fragment<wmma::accumulator, 16, 16, 16, float> c;
  wmma::fill_fragment(c, 0.f);
  for (int64_t p = 0; p < k; p += 16) {
    wmma::load_matrix_sync(a, x + tr * 16 * k + p, (unsigned)k);
    // w is [m, k] row-major, i.e. w^T [k, m] column-major with leading dimension k
    wmma::load_matrix_sync(b, w + tc * 16 * k + p, (unsigned)k);
    wmma::mma_sync(c, a, b, c);
  }
  wmma::store_matrix_sync(out + tr * 16 * m + tc * 16, c, (unsigned)m, wmma::mem_row_major);
#endif
}

// FP32 matmul: 16x16 output tile per block, x and w tiles staged through shared memory.
__global__ void k_sgemm(float* out, const float* x, const float* w, int64_t n, int64_t k, int64_t m) {
  __shared__ float xs[16][17];
  __shared__ float ws[16][17];
  int64_t row = blockIdx.y * 16 + threadIdx.y, col = blockIdx.x * 16 + threadIdx.x;
  float acc = 0.f;
  for (int64_t p = 0; p < k; p += 16) {
    int64_t xr = blockIdx.y * 16 + threadIdx.y, xc = p + threadIdx.x;
    xs[threadIdx.y][threadIdx.x] = xr < n && xc < k ? x[xr * k + xc] : 0.f;
    int64_t wr = blockIdx.x * 16 + threadIdx.y, wc = p + threadIdx.x;
    ws[threadIdx.y][threadIdx.x] = wr < m && wc < k ? w[wr * k + wc] : 0.f;
    __syncthreads();
    for (int e = 0; e < 16; e++) acc += xs[threadIdx.y][e] * ws[threadIdx.x][e];
    __syncthreads();
  }
  if (row < n && col < m) out[row * m + col] = acc;
}

// ---- cuBLAS, opened at run time so the library loads where it is absent

typedef int (*cublasCreate_t)(void**);
typedef int (*cublasGemmEx_t)(void*, int, int, int, int, int, const void*, const void*, int, int, const void*, int, int,
                              const void*, void*, int, int, int, int);
struct Cublas {
  void* handle = nullptr;
  cublasGemmEx_t gemm = nullptr;
  bool tried = false;
} g_cublas;
std::mutex g_cublas_lock;

void open_cublas() {
  std::lock_guard<std::mutex> g(g_cublas_lock);
  if (g_cublas.tried) return;
  g_cublas.tried = true;
  // BS_CUDA_NO_CUBLAS=1: the library's own WMMA kernel even where cuBLAS is there (run.sh checks both)
  if (const char* no = std::getenv("BS_CUDA_NO_CUBLAS"); no != nullptr && no[0] == '1') return;
  const char* names[] = {"libcublas.so", "libcublas.so.13", "libcublas.so.12"};
  for (const char* n : names) {
    void* lib = dlopen(n, RTLD_NOW | RTLD_LOCAL);
    if (!lib) continue;
    auto create = (cublasCreate_t)dlsym(lib, "cublasCreate_v2");
    auto gemm = (cublasGemmEx_t)dlsym(lib, "cublasGemmEx");
    void* h = nullptr;
    if (create && gemm && create(&h) == 0) {
      g_cublas.handle = h;
      g_cublas.gemm = gemm;
      return;
    }
  }
}

// ---- attention

constexpr int PARTITION = 512;  // context tokens per split of the decode kernel
// The vectorised decode kernel's split when the grid is small: at batch 1 a 512-key split gave 8 blocks
// (one per KV head) that each walk their keys in one latency chain on a card of 132 SMs; 128-key splits
// give 4x the blocks and a quarter of the chain. Chosen by decode_partition.
constexpr int SMALL_PARTITION = 128;
constexpr int SMALL_GRID = 2048;  // sequences x query heads x 512-key splits up to which the small split is used
constexpr int MAX_GROUP = 8;    // query heads per KV head handled by one block

// A partition with no key to attend (before a sliding window, past a short sequence) contributes nothing
// to the reduction, and leaves no stale scratch values for it: max -FLT_MAX, sum 0, output 0.
__device__ void empty_partition(float* part_out, float* part_ml, int s, int kh, int p, int group, int64_t heads,
                                int64_t hd, int parts) {
  for (int g = threadIdx.x; g < group; g += blockDim.x) {
    int64_t h = (int64_t)kh * group + g;
    part_ml[((int64_t)s * heads + h) * parts * 2 + p * 2] = -FLT_MAX;
    part_ml[((int64_t)s * heads + h) * parts * 2 + p * 2 + 1] = 0.f;
  }
  for (int i = threadIdx.x; i < group * hd; i += blockDim.x) {
    int64_t h = (int64_t)kh * group + i / (int)hd;
    part_out[(((int64_t)s * heads + h) * parts + p) * hd + i % (int)hd] = 0.f;
  }
}

// Split-context decode attention (one query token per sequence). Grid: (kv_heads, seqs, partitions).
// A block reads each K and V row of its partition once for all query heads of its KV head, writes the
// partition's max, sum and unnormalised output; k_attn_reduce combines partitions.
template <typename KT>
__global__ void k_decode_attn(float* part_out, float* part_ml, const float* q, const KT* kc, const KT* vc,
                              const int32_t* bt, int64_t max_blocks, const int32_t* seq_lens, int64_t heads,
                              int64_t kv_heads, int64_t hd, int64_t bs, int64_t num_blocks, float scale, int parts,
                              int64_t window) {
  extern __shared__ float sm[];
  const int kh = blockIdx.x, s = blockIdx.y, p = blockIdx.z;
  const int group = (int)(heads / kv_heads);
  const int ctx = seq_lens[s];
  // with a sliding window only the last `window` keys count: partitions before them are empty, and the
  // partition holding the window's first key starts there but still ends where the next one begins
  // (ending PARTITION keys after the window's start counted keys of the next partition twice)
  const int lo = window > 0 ? max(0, ctx - (int)window) : 0;
  const int start = max(p * PARTITION, lo);
  const int end = min(ctx, (p + 1) * PARTITION);
  float* qs = sm;                        // group x hd
  float* sc = sm + group * hd;           // group x PARTITION
  const int64_t row = kv_heads * hd;
  if (start >= end) {
    empty_partition(part_out, part_ml, s, kh, p, group, heads, hd, parts);
    return;
  }
  for (int i = threadIdx.x; i < group * hd; i += blockDim.x) qs[i] = q[((int64_t)s * heads + (int64_t)kh * group) * hd + i];
  __syncthreads();
  const int lane = threadIdx.x & 31, wid = threadIdx.x >> 5, nw = blockDim.x >> 5;
  for (int t = start + wid; t < end; t += nw) {
    int b = bt[(int64_t)s * max_blocks + t / bs];
    if (b < 0 || b >= num_blocks) {
      if (lane == 0) flag(OP_ATTENTION, b);
      for (int g = 0; g < group; g++) if (lane == 0) sc[g * PARTITION + t - start] = -FLT_MAX;
      continue;
    }
    const KT* kr = kc + ((int64_t)b * bs + t % bs) * row + (int64_t)kh * hd;
    for (int g = 0; g < group; g++) {
      float d = 0.f;
      for (int64_t i = lane; i < hd; i += 32) d += qs[g * hd + i] * kv_f(kr[i]);
      d = warp_sum(d);
      if (lane == 0) sc[g * PARTITION + t - start] = d * scale;
    }
  }
  __syncthreads();
  const int n = end - start;
  for (int g = 0; g < group; g++) {
    float m = -FLT_MAX;
    for (int i = threadIdx.x; i < n; i += blockDim.x) m = fmaxf(m, sc[g * PARTITION + i]);
    m = block_max(m);
    float l = 0.f;
    for (int i = threadIdx.x; i < n; i += blockDim.x) {
      float e = __expf(sc[g * PARTITION + i] - m);
      sc[g * PARTITION + i] = e;
      l += e;
    }
    l = block_sum(l);
    if (threadIdx.x == 0) {
      int64_t h = (int64_t)kh * group + g;
      part_ml[((int64_t)s * heads + h) * parts * 2 + p * 2] = m;
      part_ml[((int64_t)s * heads + h) * parts * 2 + p * 2 + 1] = l;
    }
  }
  __syncthreads();
  // V pass: thread i owns output element (g, d); keys read in order, each row once per block
  for (int i = threadIdx.x; i < group * hd; i += blockDim.x) {
    int g = i / (int)hd, d = i % (int)hd;
    float acc = 0.f;
    for (int t = start; t < end; t++) {
      int b = bt[(int64_t)s * max_blocks + t / bs];
      if (b < 0 || b >= num_blocks) continue;
      acc += sc[g * PARTITION + t - start] * kv_f(vc[((int64_t)b * bs + t % bs) * row + (int64_t)kh * hd + d]);
    }
    int64_t h = (int64_t)kh * group + g;
    part_out[(((int64_t)s * heads + h) * parts + p) * hd + d] = acc;
  }
}

__global__ void k_attn_reduce(float* out, const float* part_out, const float* part_ml, int64_t heads, int64_t hd, int parts) {
  const int64_t sh = blockIdx.x;  // seq * heads + head
  const float* ml = part_ml + sh * parts * 2;
  float M = -FLT_MAX;
  for (int p = 0; p < parts; p++) M = fmaxf(M, ml[p * 2]);
  float L = 0.f;
  for (int p = 0; p < parts; p++) L += ml[p * 2 + 1] * __expf(ml[p * 2] - M);
  for (int64_t d = threadIdx.x; d < hd; d += blockDim.x) {
    float acc = 0.f;
    for (int p = 0; p < parts; p++) acc += part_out[(sh * parts + p) * hd + d] * __expf(ml[p * 2] - M);
    out[sh * hd + d] = acc / L;
  }
}

// The decode kernel for the common head sizes (16, 32, 64, 128, 256) and 16-byte aligned caches: the same
// grid, partitions, scratch and results as k_decode_attn, arranged for bandwidth. k_decode_attn gives a key
// to a whole warp and then walks each value column key by key, one dependent load after another: a block
// holds a few loads in flight and decode ran at under 10% of the card's copy bandwidth (docs/gpu-notes.md).
// Here every load is 16 bytes (8 for 16-bit values) and every warp instruction reads whole rows:
//   scores: HD/16 lanes per key, 16 elements each (32 / (HD/16) keys per warp step), dot products summed
//           over those lanes with shuffles;
//   softmax: one warp per query head of the group (no block-wide reductions);
//   values:  each lane owns DV columns of a row (HD/DV lanes per row), warps take keys in turn, keep up
//            to VG heads' partial outputs in registers, and add the warps' partials in a fixed order
//            (deterministic, unlike atomics).
template <typename KT, int N>
struct alignas(N * sizeof(KT)) Pack {
  KT v[N];
};

constexpr int DECODE_WARPS = 4;
constexpr int VG = 8;  // query heads per value pass (more heads take more passes over the partition's values)

template <typename KT, int HD, int PART>
__global__ void __launch_bounds__(DECODE_WARPS * 32)
    k_decode_attn_vec(float* part_out, float* part_ml, const float* q, const KT* kc, const KT* vc, const int32_t* bt,
                      int64_t max_blocks, const int32_t* seq_lens, int64_t heads, int64_t kv_heads, int64_t bs,
                      int64_t num_blocks, float scale, int parts, int64_t window) {
  constexpr int TG = HD / 16;                  // lanes per key in the score pass
  constexpr int KPW = 32 / TG;                 // keys per warp step
  constexpr int KN = 16 / sizeof(KT);          // elements per 16-byte load
  constexpr int DV = HD <= 128 ? 4 : 8;        // value columns per lane
  constexpr int LR = HD / DV;                  // lanes per value row
  constexpr int RW = 32 / LR;                  // value rows per warp step
  extern __shared__ float sm[];
  const int kh = blockIdx.x, s = blockIdx.y, p = blockIdx.z;
  const int group = (int)(heads / kv_heads);
  const int vg = min(group, VG);
  const int ctx = seq_lens[s];
  const int lo = window > 0 ? max(0, ctx - (int)window) : 0;  // as k_decode_attn: see there
  const int start = max(p * PART, lo);
  const int end = min(ctx, (p + 1) * PART);
  float* qs = sm;                      // group x HD
  float* sc = qs + group * HD;         // group x PART
  float* red = sc + group * PART;      // DECODE_WARPS x vg x HD
  if (start >= end) {
    empty_partition(part_out, part_ml, s, kh, p, group, heads, HD, parts);
    return;
  }
  for (int i = threadIdx.x; i < group * HD; i += blockDim.x) qs[i] = q[((int64_t)s * heads + (int64_t)kh * group) * HD + i];
  __syncthreads();
  const int lane = threadIdx.x & 31, w = threadIdx.x >> 5;
  const int64_t row = kv_heads * HD;
  const int32_t* table = bt + (int64_t)s * max_blocks;
  {  // scores: lane (sub, tl) reads elements (j * TG + tl) * KN .. + KN of key t0 + sub
    const int sub = lane / TG, tl = lane % TG;
    for (int t0 = start + w * KPW; t0 < end; t0 += DECODE_WARPS * KPW) {
      const int t = t0 + sub;
      float k[16];
      int b = t < end ? table[t / bs] : 0;
      const bool bad = t < end && (b < 0 || b >= num_blocks);
      if (t < end && !bad) {
        const KT* kr = kc + ((int64_t)b * bs + t % bs) * row + (int64_t)kh * HD;
#pragma unroll
        for (int j = 0; j < 16 / KN; j++) {
          Pack<KT, KN> v = *reinterpret_cast<const Pack<KT, KN>*>(kr + (j * TG + tl) * KN);
#pragma unroll
          for (int c = 0; c < KN; c++) k[j * KN + c] = kv_f(v.v[c]);
        }
      } else {
#pragma unroll
        for (int c = 0; c < 16; c++) k[c] = 0.f;
      }
      if (bad && tl == 0) flag(OP_ATTENTION, b);
      for (int g = 0; g < group; g++) {
        const float* qg = qs + g * HD;
        float d = 0.f;
#pragma unroll
        for (int j = 0; j < 16 / KN; j++)
#pragma unroll
          for (int c = 0; c < KN; c++) d += qg[(j * TG + tl) * KN + c] * k[j * KN + c];
#pragma unroll
        for (int o = TG / 2; o > 0; o >>= 1) d += __shfl_xor_sync(0xffffffff, d, o);
        if (t < end && tl == 0) sc[g * PART + t - start] = bad ? -FLT_MAX : d * scale;
      }
    }
  }
  __syncthreads();
  const int n = end - start;
  for (int g = w; g < group; g += DECODE_WARPS) {  // softmax: a warp per query head
    float m = -FLT_MAX;
    for (int i = lane; i < n; i += 32) m = fmaxf(m, sc[g * PART + i]);
    m = warp_max(m);
    float l = 0.f;
    for (int i = lane; i < n; i += 32) {
      float e = __expf(sc[g * PART + i] - m);
      sc[g * PART + i] = e;
      l += e;
    }
    l = warp_sum(l);
    if (lane == 0) {
      int64_t h = (int64_t)kh * group + g;
      part_ml[((int64_t)s * heads + h) * parts * 2 + p * 2] = m;
      part_ml[((int64_t)s * heads + h) * parts * 2 + p * 2 + 1] = l;
    }
  }
  __syncthreads();
  const int r = lane / LR, dl = lane % LR;  // this lane: row r of the warp's step, columns dl * DV .. + DV
  for (int g0 = 0; g0 < group; g0 += vg) {
    float acc[VG][DV];
#pragma unroll
    for (int gg = 0; gg < VG; gg++)
#pragma unroll
      for (int c = 0; c < DV; c++) acc[gg][c] = 0.f;
#pragma unroll 2
    for (int t0 = start + w * RW; t0 < end; t0 += DECODE_WARPS * RW) {
      const int t = t0 + r;
      if (t >= end) continue;
      const int b = table[t / bs];
      if (b < 0 || b >= num_blocks) continue;  // flagged in the score pass
      const KT* vr = vc + ((int64_t)b * bs + t % bs) * row + (int64_t)kh * HD + dl * DV;
      float v[DV];
      constexpr int VN = DV * sizeof(KT) > 16 ? 16 / sizeof(KT) : DV;  // elements per load
#pragma unroll
      for (int j = 0; j < DV / VN; j++) {
        Pack<KT, VN> x = *reinterpret_cast<const Pack<KT, VN>*>(vr + j * VN);
#pragma unroll
        for (int c = 0; c < VN; c++) v[j * VN + c] = kv_f(x.v[c]);
      }
#pragma unroll
      for (int gg = 0; gg < VG; gg++) {
        if (g0 + gg < group) {
          const float pr = sc[(g0 + gg) * PART + t - start];
#pragma unroll
          for (int c = 0; c < DV; c++) acc[gg][c] += pr * v[c];
        }
      }
    }
#pragma unroll
    for (int gg = 0; gg < VG; gg++)
#pragma unroll
      for (int c = 0; c < DV; c++)
#pragma unroll
        for (int o = LR; o < 32; o <<= 1) acc[gg][c] += __shfl_xor_sync(0xffffffff, acc[gg][c], o);
    if (r == 0) {
#pragma unroll
      for (int gg = 0; gg < VG; gg++)
        if (gg < vg)
#pragma unroll
          for (int c = 0; c < DV; c++) red[(w * vg + gg) * HD + dl * DV + c] = acc[gg][c];
    }
    __syncthreads();
    const int heads_here = min(vg, group - g0);
    for (int i = threadIdx.x; i < heads_here * HD; i += blockDim.x) {
      const int gg = i / HD, d = i % HD;
      float sum = 0.f;
      for (int ww = 0; ww < DECODE_WARPS; ww++) sum += red[(ww * vg + gg) * HD + d];
      int64_t h = (int64_t)kh * group + g0 + gg;
      part_out[(((int64_t)s * heads + h) * parts + p) * HD + d] = sum;
    }
    __syncthreads();
  }
}

constexpr int KTILE = 64;  // keys per tile of the prefill kernel

// Mixed-batch attention with an online softmax over key tiles staged in shared memory (memory O(tile)).
// Grid: (tokens, kv_heads). A block serves one query token for all query heads of one KV head.
template <typename KT>
__global__ void k_prefill_attn(float* out, const float* q, const KT* kc, const KT* vc, const int32_t* bt,
                               int64_t max_blocks, const int32_t* seq_lens, const int32_t* qstart, int64_t num_seqs,
                               int64_t heads, int64_t kv_heads, int64_t hd, int64_t bs, int64_t num_blocks, float scale,
                               int64_t window) {
  extern __shared__ float sm[];
  const int64_t t = blockIdx.x;
  const int kh = blockIdx.y;
  const int group = (int)(heads / kv_heads);
  // find the sequence of token t (binary search over query_start)
  int64_t lo = 0, hi = num_seqs - 1;
  while (lo < hi) {
    int64_t mid = (lo + hi + 1) / 2;
    if (qstart[mid] <= t) lo = mid; else hi = mid - 1;
  }
  const int64_t s = lo;
  const int ql = qstart[s + 1] - qstart[s];
  const int visible = seq_lens[s] - ql + (int)(t - qstart[s]) + 1;
  const int64_t row = kv_heads * hd;
  float* qs = sm;                         // group x hd
  float* ks = qs + group * hd;            // KTILE x hd
  float* vs = ks + KTILE * hd;            // KTILE x hd
  float* sc = vs + KTILE * hd;            // group x KTILE
  float* mrow = sc + group * KTILE;       // group: running max
  float* lrow = mrow + group;             // group: running sum
  float* cf = lrow + group;               // group: this tile's rescaling of the running output
  float* acc = cf + group;                // group x hd: running output
  for (int i = threadIdx.x; i < group * hd; i += blockDim.x) {
    qs[i] = q[(t * heads + (int64_t)kh * group) * hd + i];
    acc[i] = 0.f;
  }
  for (int g = threadIdx.x; g < group; g += blockDim.x) { mrow[g] = -FLT_MAX; lrow[g] = 0.f; }
  __syncthreads();
  const int first = window > 0 ? max(0, visible - (int)window) : 0;  // first key this query sees
  for (int j0 = first; j0 < visible; j0 += KTILE) {
    const int n = min(KTILE, visible - j0);
    for (int i = threadIdx.x; i < n * hd; i += blockDim.x) {
      int j = j0 + i / (int)hd, d = i % (int)hd;
      int b = bt[s * max_blocks + j / bs];
      if (b < 0 || b >= num_blocks) {
        if (d == 0) flag(OP_ATTENTION, b);
        ks[i] = 0.f; vs[i] = 0.f;
        continue;
      }
      int64_t off = ((int64_t)b * bs + j % bs) * row + (int64_t)kh * hd + d;
      ks[i] = kv_f(kc[off]);
      vs[i] = kv_f(vc[off]);
    }
    __syncthreads();
    for (int i = threadIdx.x; i < group * n; i += blockDim.x) {
      int g = i / n, j = i % n;
      float d = 0.f;
      for (int64_t e = 0; e < hd; e++) d += qs[g * hd + e] * ks[j * hd + e];
      sc[g * KTILE + j] = d * scale;
    }
    __syncthreads();
    // per head: new max, rescale running sum and output, add this tile
    for (int g = threadIdx.x; g < group; g += blockDim.x) {
      float m = mrow[g];
      for (int j = 0; j < n; j++) m = fmaxf(m, sc[g * KTILE + j]);
      float corr = __expf(mrow[g] - m);
      float l = lrow[g] * corr;
      for (int j = 0; j < n; j++) {
        float e = __expf(sc[g * KTILE + j] - m);
        sc[g * KTILE + j] = e;
        l += e;
      }
      mrow[g] = m;
      lrow[g] = l;
      cf[g] = corr;
    }
    __syncthreads();
    for (int i = threadIdx.x; i < group * hd; i += blockDim.x) {
      int g = i / (int)hd, d = i % (int)hd;
      float a = acc[i] * cf[g];
      for (int j = 0; j < n; j++) a += sc[g * KTILE + j] * vs[j * hd + d];
      acc[i] = a;
    }
    __syncthreads();
  }
  for (int i = threadIdx.x; i < group * hd; i += blockDim.x) {
    int g = i / (int)hd;
    out[(t * heads + (int64_t)kh * group) * hd + i] = acc[i] / lrow[g];
  }
}

// The prefill kernel for head sizes 16, 32, 64 and 128 (FP32 arithmetic throughout, as the CPU library's):
// k_prefill_attn gives each query token a block that streams every visible key and value from L2, so a
// prompt of T tokens reads its K/V T times and the arithmetic runs one dot product at a time (0.5
// TFLOP/s on an H200, docs/gpu-notes.md). Here a block takes PQ_ROWS query rows (PQ_ROWS / group tokens of
// one sequence, all query heads of one KV head), stages each tile of PQ_KEYS keys and values in shared
// memory once for all of them, and computes the tile's scores and its share of the output as register-
// tiled products (each thread 8 rows x 4 keys, then 8 rows x HD/16 columns), with an online softmax.
// Grid: (tiles, kv_heads), tiles = num_tokens / (PQ_ROWS / group) + num_seqs bounds the tiles of a batch
// whose sequences each start a new tile; blocks past the last tile return.
constexpr int PQ_ROWS = 64;   // query rows (token, head) per block
constexpr int PQ_KEYS = 64;   // keys per tile
constexpr int PQ_PSTRIDE = PQ_ROWS + 4;

template <typename KT, int HD>
__global__ void __launch_bounds__(128)
    k_prefill_attn_tiled(float* out, const float* q, const KT* kc, const KT* vc, const int32_t* bt, int64_t max_blocks,
                         const int32_t* seq_lens, const int32_t* qstart, int64_t num_seqs, int64_t heads, int64_t kv_heads,
                         int64_t bs, int64_t num_blocks, float scale, int64_t window) {
  constexpr int DPT = HD / 16;  // output columns per thread
  extern __shared__ float sm[];
  float* qs = sm;                        // HD x PQ_ROWS, scaled queries, transposed
  float* ks = qs + HD * PQ_ROWS;         // HD x PQ_KEYS, keys transposed
  float* vs = ks + HD * PQ_KEYS;         // PQ_KEYS x HD
  float* ps = vs + PQ_KEYS * HD;         // PQ_KEYS x PQ_PSTRIDE, probabilities transposed
  const int kh = blockIdx.y;
  const int group = (int)(heads / kv_heads);
  const int per = PQ_ROWS / group;       // query tokens per block
  // this block's sequence and first token: tiles are numbered sequence after sequence
  int tile = (int)blockIdx.x, s = 0;
  for (; s < num_seqs; s++) {
    const int tiles = (qstart[s + 1] - qstart[s] + per - 1) / per;
    if (tile < tiles) break;
    tile -= tiles;
  }
  if (s >= num_seqs) return;
  const int ql = qstart[s + 1] - qstart[s];
  const int t0 = tile * per;                         // first query of the tile within the sequence
  const int nt = min(per, ql - t0);                  // its query tokens
  const int rows = nt * group;
  const int len = seq_lens[s];
  const int pos0 = len - ql + t0;                    // position of the tile's first query
  const int pos_last = pos0 + nt - 1;
  const int kfirst = window > 0 ? max(0, pos0 - (int)window + 1) : 0;
  const int64_t row = kv_heads * HD;
  const int32_t* table = bt + (int64_t)s * max_blocks;
  const int tid = threadIdx.x, tr = tid / 16, tc = tid % 16;

  for (int i = tid; i < PQ_ROWS * HD; i += 128) {  // row r of the tile: token r / group, head r % group
    const int r = i % PQ_ROWS, e = i / PQ_ROWS;
    qs[e * PQ_ROWS + r] = r < rows
        ? q[((int64_t)(qstart[s] + t0 + r / group) * heads + (int64_t)kh * group + r % group) * HD + e] * scale
        : 0.f;
  }
  float o[8][DPT], m[8], l[8];
#pragma unroll
  for (int i = 0; i < 8; i++) {
    m[i] = -INFINITY;
    l[i] = 0.f;
#pragma unroll
    for (int d = 0; d < DPT; d++) o[i][d] = 0.f;
  }
  for (int k0 = kfirst; k0 <= pos_last; k0 += PQ_KEYS) {
    __syncthreads();  // the previous tile's keys, values and probabilities are used up
    for (int i = tid; i < PQ_KEYS * (HD / 4); i += 128) {
      const int kk = i % PQ_KEYS, c = i / PQ_KEYS, kp = k0 + kk;
      Pack<KT, 4> kv{};
      Pack<KT, 4> vv{};
      if (kp <= pos_last) {
        const int b = table[kp / bs];
        if (b < 0 || b >= num_blocks) {
          if (c == 0) flag(OP_ATTENTION, b);
        } else {
          const int64_t off = ((int64_t)b * bs + kp % bs) * row + (int64_t)kh * HD + c * 4;
          kv = *reinterpret_cast<const Pack<KT, 4>*>(kc + off);
          vv = *reinterpret_cast<const Pack<KT, 4>*>(vc + off);
        }
      }
      Pack<float, 4> vf;
#pragma unroll
      for (int j = 0; j < 4; j++) {
        ks[(c * 4 + j) * PQ_KEYS + kk] = kp <= pos_last ? kv_f(kv.v[j]) : 0.f;
        vf.v[j] = kp <= pos_last ? kv_f(vv.v[j]) : 0.f;
      }
      *reinterpret_cast<Pack<float, 4>*>(vs + kk * HD + c * 4) = vf;
    }
    __syncthreads();
    float sc[8][4];
#pragma unroll
    for (int i = 0; i < 8; i++)
#pragma unroll
      for (int j = 0; j < 4; j++) sc[i][j] = 0.f;
#pragma unroll 4
    for (int e = 0; e < HD; e++) {
      const Pack<float, 4> a0 = *reinterpret_cast<const Pack<float, 4>*>(qs + e * PQ_ROWS + tr * 8);
      const Pack<float, 4> a1 = *reinterpret_cast<const Pack<float, 4>*>(qs + e * PQ_ROWS + tr * 8 + 4);
      const Pack<float, 4> b = *reinterpret_cast<const Pack<float, 4>*>(ks + e * PQ_KEYS + tc * 4);
#pragma unroll
      for (int j = 0; j < 4; j++) {
#pragma unroll
        for (int i = 0; i < 4; i++) {
          sc[i][j] += a0.v[i] * b.v[j];
          sc[i + 4][j] += a1.v[i] * b.v[j];
        }
      }
    }
    // mask (causal, window, rows past the tile's tokens), then the online softmax per row; the 16 threads
    // of a row group are one half-warp, so row reductions are shuffles
#pragma unroll
    for (int i = 0; i < 8; i++) {
      const int r = tr * 8 + i;
      const int pos = pos0 + r / group;
      const int first = window > 0 ? pos - (int)window + 1 : 0;
      float mx = -INFINITY;
#pragma unroll
      for (int j = 0; j < 4; j++) {
        const int kp = k0 + tc * 4 + j;
        if (r >= rows || kp > pos || kp < first) sc[i][j] = -INFINITY;
        mx = fmaxf(mx, sc[i][j]);
      }
#pragma unroll
      for (int off = 8; off > 0; off >>= 1) mx = fmaxf(mx, __shfl_xor_sync(0xffffffff, mx, off));
      const float mnew = fmaxf(m[i], mx);
      const float base = mnew == -INFINITY ? 0.f : mnew;  // a row with no visible key yet: nothing to add
      const float corr = __expf(m[i] - base);
      float sum = 0.f;
#pragma unroll
      for (int j = 0; j < 4; j++) {
        const float pj = __expf(sc[i][j] - base);
        sum += pj;
        ps[(tc * 4 + j) * PQ_PSTRIDE + r] = pj;
      }
#pragma unroll
      for (int off = 8; off > 0; off >>= 1) sum += __shfl_xor_sync(0xffffffff, sum, off);
      l[i] = l[i] * corr + sum;
      m[i] = mnew;
#pragma unroll
      for (int d = 0; d < DPT; d++) o[i][d] *= corr;
    }
    __syncthreads();
#pragma unroll 4
    for (int kk = 0; kk < PQ_KEYS; kk++) {
      const Pack<float, 4> a0 = *reinterpret_cast<const Pack<float, 4>*>(ps + kk * PQ_PSTRIDE + tr * 8);
      const Pack<float, 4> a1 = *reinterpret_cast<const Pack<float, 4>*>(ps + kk * PQ_PSTRIDE + tr * 8 + 4);
      float b[DPT];
#pragma unroll
      for (int d = 0; d < DPT; d++) b[d] = vs[kk * HD + tc * DPT + d];
#pragma unroll
      for (int d = 0; d < DPT; d++) {
#pragma unroll
        for (int i = 0; i < 4; i++) {
          o[i][d] += a0.v[i] * b[d];
          o[i + 4][d] += a1.v[i] * b[d];
        }
      }
    }
  }
#pragma unroll
  for (int i = 0; i < 8; i++) {
    const int r = tr * 8 + i;
    if (r >= rows) continue;
    float* dst = out + ((int64_t)(qstart[s] + t0 + r / group) * heads + (int64_t)kh * group + r % group) * HD + tc * DPT;
#pragma unroll
    for (int d = 0; d < DPT; d++) dst[d] = o[i][d] / l[i];
  }
}

}  // namespace

// ---- host API

const char* device_count(int* n) { return err("cudaGetDeviceCount", cudaGetDeviceCount(n)); }

const char* device_info(int dev, char* name, int name_len, size_t* free_b, size_t* total_b, int* cc_major, int* cc_minor) {
  cudaDeviceProp p;
  if (const char* m = err("cudaGetDeviceProperties", cudaGetDeviceProperties(&p, dev))) return m;
  std::snprintf(name, name_len, "%s", p.name);
  *cc_major = p.major;
  *cc_minor = p.minor;
  if (const char* m = err("cudaSetDevice", cudaSetDevice(dev))) return m;
  return err("cudaMemGetInfo", cudaMemGetInfo(free_b, total_b));
}

const char* set_device(int dev) { return err("cudaSetDevice", cudaSetDevice(dev)); }

const char* mem_info(size_t* free_b, size_t* total_b) { return err("cudaMemGetInfo", cudaMemGetInfo(free_b, total_b)); }

const char* alloc(void** p, size_t bytes) {
  if (const char* m = err("cudaMalloc", cudaMalloc(p, bytes))) return m;
  return err("cudaMemset", cudaMemset(*p, 0, bytes));
}

// The contract's matmul state: BF16 twins of weights (keyed by the FP32 weight's address) and grow-only
// scratch. The engine thread is the library's only caller, like every backend's.
namespace {
bool g_bf16 = true;
bool g_vec_attention = true;  // set_vectorised_attention(false): the first kernels, for A/B runs and checks
int g_decode_partition = 0;   // set_decode_partition: 0 lets decode_partition choose; 128 or 512 forces a split
std::unordered_map<const float*, uint16_t*> g_twins;
uint16_t* g_x_bf16 = nullptr;
size_t g_x_bf16_bytes = 0;
float* g_attn_scratch = nullptr;
size_t g_attn_scratch_bytes = 0;

// A device buffer of at least bytes in *p, grown (never shrunk) as steps get larger.
template <typename T>
const char* at_least(T** p, size_t* have, size_t bytes) {
  if (*have >= bytes) return nullptr;
  if (*p != nullptr) {
    if (const char* m = err("cudaFree", cudaFree(*p))) return m;
    *p = nullptr;
    *have = 0;
  }
  size_t grown = bytes < ((size_t)1 << 20) ? ((size_t)1 << 20) : bytes;
  if (const char* m = err("cudaMalloc", cudaMalloc(reinterpret_cast<void**>(p), grown))) return m;
  *have = grown;
  return nullptr;
}
}  // namespace

const char* free(void* p) {
  auto t = g_twins.find(static_cast<const float*>(p));
  if (t != g_twins.end()) {
    cudaFree(t->second);
    g_twins.erase(t);
  }
  return err("cudaFree", cudaFree(p));
}

void set_bf16_matmul(bool on) { g_bf16 = on; }

const char* release_scratch() {
  for (auto& t : g_twins) cudaFree(t.second);
  g_twins.clear();
  if (g_x_bf16) cudaFree(g_x_bf16);
  if (g_attn_scratch) cudaFree(g_attn_scratch);
  g_x_bf16 = nullptr;
  g_attn_scratch = nullptr;
  g_x_bf16_bytes = g_attn_scratch_bytes = 0;
  return err("cudaFree", cudaGetLastError());
}

void set_vectorised_attention(bool on) { g_vec_attention = on; }

const char* set_decode_partition(int keys) {
  if (keys != 0 && keys != SMALL_PARTITION && keys != PARTITION) return "set_decode_partition: keys must be 0, 128 or 512";
  g_decode_partition = keys;
  return nullptr;
}

const char* to_device(void* dst, const void* host_src, size_t bytes) {
  return err("cudaMemcpy (to device)", cudaMemcpy(dst, host_src, bytes, cudaMemcpyHostToDevice));
}

// Device-to-host copies synchronise, so they also report a range error any earlier kernel recorded.
const char* to_host(void* host_dst, const void* src, size_t bytes) {
  if (const char* m = err("cudaMemcpy (to host)", cudaMemcpy(host_dst, src, bytes, cudaMemcpyDeviceToHost))) return m;
  return check_error();
}

const char* copy(void* dst, const void* src, size_t bytes, int kind) {
  return err("cudaMemcpy", cudaMemcpy(dst, src, bytes, static_cast<cudaMemcpyKind>(kind)));
}

const char* synchronize() { return err("cudaDeviceSynchronize", cudaDeviceSynchronize()); }

const char* check_error() {
  unsigned long long e = 0, zero = 0;
  if (const char* m = err("cudaMemcpyFromSymbol", cudaMemcpyFromSymbol(&e, d_error, sizeof e))) return m;
  if (e == 0) return nullptr;
  if (const char* m = err("cudaMemcpyToSymbol", cudaMemcpyToSymbol(d_error, &zero, sizeof zero))) return m;
  static const char* names[] = {"?", "embedding", "kv_write", "paged_attention", "block_copy", "rope"};
  unsigned op = (unsigned)(e >> 32);
  int value = (int)(unsigned)(e & 0xffffffffu);
  const char* what = op < 6 ? names[op] : "?";
  const char* kind = op == OP_EMBEDDING ? "token id" : op == OP_KV_WRITE ? "slot" : op == OP_ROPE ? "position" : "block id";
  std::snprintf(g_msg, sizeof g_msg, "%s: %s %d is out of range (the op skipped it; output is invalid)", what, kind, value);
  return g_msg;
}

const char* f32_to_bf16(uint16_t* out, const float* in, int64_t n) {
  k_f32_to_bf16<<<grid_for(n), 256>>>(reinterpret_cast<__nv_bfloat16*>(out), in, n);
  return launched("f32_to_bf16");
}

const char* bf16_to_f32(float* out, const uint16_t* in, int64_t n) {
  k_bf16_to_f32<<<grid_for(n), 256>>>(out, reinterpret_cast<const __nv_bfloat16*>(in), n);
  return launched("bf16_to_f32");
}

const char* f16_to_f32(float* out, const uint16_t* in, int64_t n) {
  k_f16_to_f32<<<grid_for(n), 256>>>(out, reinterpret_cast<const __half*>(in), n);
  return launched("f16_to_f32");
}

const char* embedding(float* out, const void* table, int table_dtype, const int32_t* ids, int64_t n, int64_t dim,
                      int64_t rows) {
  if (table_dtype != 0) {
    std::snprintf(g_msg, sizeof g_msg, "embedding: the CUDA library takes F32 tables, got dtype code %d", table_dtype);
    return g_msg;
  }
  if (n == 0) return nullptr;
  k_embedding<<<(unsigned)n, 256>>>(out, static_cast<const float*>(table), ids, dim, rows);
  return launched("embedding");
}

const char* rmsnorm(float* out, const float* x, const float* w, int64_t n, int64_t dim, float eps) {
  if (n == 0) return nullptr;
  k_rmsnorm<<<(unsigned)n, 256>>>(out, x, w, dim, eps);
  return launched("rmsnorm");
}

// Decode rows (fewer than 16) against BF16 weights whose rows start on 16-byte boundaries (k a multiple of 8,
// x and w aligned): one warp per output column, each lane loading 8 weights (16 bytes) a step, so a warp covers
// 256 of k per step with all of a row's loads in flight at once, and up to GEMV_ROWS rows of x per pass over
// the weights. k_gemv_bf16 (4 bytes a lane a step, 4 rows a pass) is latency-bound: on an H200 it made a
// batch-8 step of the SmolLM2-135M shape take 5.3 ms against 3.0 at batch 1 (docs/gpu-notes.md, run 9).
constexpr int GEMV_ROWS = 8;
constexpr int GEMV_WARPS = 4;

__global__ void __launch_bounds__(GEMV_WARPS * 32)
    k_gemv_bf16_vec(float* out, const float* x, const __nv_bfloat16* w, int64_t n, int64_t k, int64_t m) {
  const int64_t col = (int64_t)blockIdx.x * GEMV_WARPS + (threadIdx.x >> 5);
  const int lane = threadIdx.x & 31;
  if (col >= m) return;  // the same for the whole warp
  const __nv_bfloat16* wr = w + col * k;
  for (int64_t r0 = 0; r0 < n; r0 += GEMV_ROWS) {
    const int rows = n - r0 < GEMV_ROWS ? (int)(n - r0) : GEMV_ROWS;
    float acc[GEMV_ROWS];
#pragma unroll
    for (int r = 0; r < GEMV_ROWS; r++) acc[r] = 0.f;
    for (int64_t p = (int64_t)lane * 8; p < k; p += 256) {
      const Pack<__nv_bfloat16, 8> wv = *reinterpret_cast<const Pack<__nv_bfloat16, 8>*>(wr + p);
      float wf[8];
#pragma unroll
      for (int c = 0; c < 8; c++) wf[c] = __bfloat162float(wv.v[c]);
#pragma unroll
      for (int r = 0; r < GEMV_ROWS; r++) {
        if (r < rows) {
          const float* xr = x + (r0 + r) * k + p;
          const Pack<float, 4> a = *reinterpret_cast<const Pack<float, 4>*>(xr);
          const Pack<float, 4> b = *reinterpret_cast<const Pack<float, 4>*>(xr + 4);
          acc[r] += wf[0] * a.v[0] + wf[1] * a.v[1] + wf[2] * a.v[2] + wf[3] * a.v[3] + wf[4] * b.v[0] + wf[5] * b.v[1] +
                    wf[6] * b.v[2] + wf[7] * b.v[3];
        }
      }
    }
    for (int r = 0; r < rows; r++) {
      const float sum = warp_sum(acc[r]);
      if (lane == 0) out[(r0 + r) * m + col] = sum;
    }
  }
}

const char* matmul_bf16(float* out, const float* x, uint16_t* x_bf16, const uint16_t* w, int64_t n, int64_t k, int64_t m) {
  const __nv_bfloat16* wb = reinterpret_cast<const __nv_bfloat16*>(w);
  int64_t big = (n >= 16 && k % 16 == 0 && m % 16 == 0) ? n / 16 * 16 : 0;
  if (big > 0) {
    k_f32_to_bf16<<<grid_for(big * k), 256>>>(reinterpret_cast<__nv_bfloat16*>(x_bf16), x, big * k);
    if (const char* e = launched("matmul (convert)")) return e;
    open_cublas();
    if (g_cublas.gemm) {
      // column-major view: out^T[m, big] = W[m, k] (k x m col-major, transposed) . X^T[k, big]
      const float alpha = 1.f, beta = 0.f;
      int rc = g_cublas.gemm(g_cublas.handle, /*transa*/ 1, /*transb*/ 0, (int)m, (int)big, (int)k, &alpha, wb,
                             /*CUDA_R_16BF*/ 14, (int)k, x_bf16, 14, (int)k, &beta, out, /*CUDA_R_32F*/ 0, (int)m,
                             /*CUBLAS_COMPUTE_32F*/ 68, /*CUBLAS_GEMM_DEFAULT*/ -1);
      if (rc != 0) {
        std::snprintf(g_msg, sizeof g_msg, "matmul: cublasGemmEx failed with status %d", rc);
        return g_msg;
      }
    } else {
      int64_t warps = (big / 16) * (m / 16);
      k_wmma_bf16<<<blocks_for(warps * 32, 128), 128>>>(out, reinterpret_cast<const __nv_bfloat16*>(x_bf16), wb, big, k, m);
      if (const char* e = launched("matmul (wmma)")) return e;
    }
  }
  if (big < n) {
    const float* xs = x + big * k;
    if (k % 8 == 0 && (reinterpret_cast<uintptr_t>(xs) | reinterpret_cast<uintptr_t>(w)) % 16 == 0) {
      k_gemv_bf16_vec<<<blocks_for(m, GEMV_WARPS), GEMV_WARPS * 32>>>(out + big * m, xs, wb, n - big, k, m);
    } else {
      k_gemv_bf16<<<blocks_for(m, 8), 256>>>(out + big * m, xs, wb, n - big, k, m);
    }
    return launched("matmul (gemv)");
  }
  return nullptr;
}

const char* matmul_f32(float* out, const float* x, const float* w, int64_t n, int64_t k, int64_t m) {
  dim3 grid((unsigned)((m + 15) / 16), (unsigned)((n + 15) / 16));
  k_sgemm<<<grid, dim3(16, 16)>>>(out, x, w, n, k, m);
  return launched("matmul (fp32)");
}

const char* matmul(float* out, const float* x, const void* wv, int w_dtype, int64_t n, int64_t k, int64_t m) {
  if (w_dtype == 2) {  // BF16 weights as they are
    if (const char* e = at_least(&g_x_bf16, &g_x_bf16_bytes, (size_t)(n * k) * 2)) return e;
    return matmul_bf16(out, x, g_x_bf16, static_cast<const uint16_t*>(wv), n, k, m);
  }
  if (w_dtype != 0) {
    std::snprintf(g_msg, sizeof g_msg, "matmul: the CUDA library takes F32 or BF16 weights, got dtype code %d", w_dtype);
    return g_msg;
  }
  const float* w = static_cast<const float*>(wv);
  if (!g_bf16) return matmul_f32(out, x, w, n, k, m);
  uint16_t*& twin = g_twins[w];
  if (twin == nullptr) {
    if (const char* e = err("cudaMalloc (bf16 weight)", cudaMalloc(reinterpret_cast<void**>(&twin), (size_t)(m * k) * 2))) {
      g_twins.erase(w);
      return e;
    }
    if (const char* e = f32_to_bf16(twin, w, m * k)) return e;
  }
  if (const char* e = at_least(&g_x_bf16, &g_x_bf16_bytes, (size_t)(n * k) * 2)) return e;
  return matmul_bf16(out, x, g_x_bf16, twin, n, k, m);
}

const char* matmul_impl() {
  open_cublas();
  return g_cublas.gemm ? "cublas" : "wmma";
}

const char* rope(float* x, const int32_t* pos, const float* cos_sin, int64_t n, int64_t heads, int64_t head_dim,
                 int64_t max_pos) {
  if (n == 0) return nullptr;
  k_rope<<<(unsigned)n, 128>>>(x, pos, cos_sin, heads, head_dim, max_pos);
  return launched("rope");
}

const char* silu_mul(float* out, const float* gate, const float* up, int64_t count) {
  k_silu_mul<<<grid_for(count), 256>>>(out, gate, up, count);
  return launched("silu_mul");
}

const char* add(float* x, const float* y, int64_t count) {
  k_add<<<grid_for(count), 256>>>(x, y, count);
  return launched("add");
}

const char* bias_add(float* x, const float* bias, int64_t n, int64_t dim) {
  if (n == 0 || dim == 0) return nullptr;
  k_bias_add<<<grid_for(n * dim), 256>>>(x, bias, n, dim);
  return launched("bias_add");
}

namespace {
// Lets a kernel take `smem` bytes of dynamic shared memory past the default 48 KiB. The attribute is set
// once per kernel for the largest size asked so far (a launch per layer per step would otherwise pay a
// driver call each time). Engine thread only, like the rest of the library's state.
std::unordered_map<const void*, size_t> g_smem_allowed;

template <typename K>
const char* allow_smem(K* kernel, size_t smem) {
  if (smem <= 48 * 1024) return nullptr;
  size_t& allowed = g_smem_allowed[reinterpret_cast<const void*>(kernel)];
  if (smem <= allowed) return nullptr;
  if (const char* e = err("cudaFuncSetAttribute",
                          cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem)))
    return e;
  allowed = smem;
  return nullptr;
}

// Calls f with the head size as a compile-time constant (std::integral_constant) where it is one of
// Sizes, the sizes a kernel is built for; kNotHandled otherwise.
const char* const kNotHandled = "not handled";

template <int... Sizes, typename F>
const char* with_head_dim(int64_t hd, F f) {
  const char* r = kNotHandled;
  (void)((hd == Sizes ? (r = f(std::integral_constant<int, Sizes>{}), true) : false) || ...);
  return r;
}
}  // namespace

namespace {
// Calls f with a null pointer of the cache's element type (a tag), or returns the rejection of an
// unknown kv_dtype code.
template <typename F>
const char* with_kv_type(const char* op, int kv_dtype, F f) {
  switch (kv_dtype) {
    case 0: return f((float*)nullptr);
    case 1: return f((__half*)nullptr);
    case 2: return f((__nv_bfloat16*)nullptr);
    default:
      std::snprintf(g_msg, sizeof g_msg, "%s: unknown cache dtype code %d", op, kv_dtype);
      return g_msg;
  }
}
}  // namespace

const char* kv_write(void* k_cache, void* v_cache, int kv_dtype, const float* k, const float* v, const int32_t* slots,
                     int64_t n, int64_t kv_heads, int64_t head_dim, int64_t num_slots) {
  return with_kv_type("kv_write", kv_dtype, [&](auto tag) -> const char* {
    using KT = std::remove_pointer_t<decltype(tag)>;
    if (n == 0) return nullptr;
    k_kv_write<KT><<<(unsigned)n, 128>>>(static_cast<KT*>(k_cache), static_cast<KT*>(v_cache), k, v, slots,
                                         kv_heads * head_dim, num_slots);
    return launched("kv_write");
  });
}

namespace {
// Keys per split of the decode kernel: SMALL_PARTITION where the 512-key grid is small and the vectorised
// kernels are on (set_decode_partition forces either). The scratch is sized with the same choice, and the
// first kernel (where the vectorised one does not apply) always splits at PARTITION, fewer splits than that.
int decode_partition(int64_t num_seqs, int64_t num_heads, int64_t max_context) {
  // BS_CUDA_DECODE_SPLIT=128 or 512 forces a split for a whole process (A/B runs of the Java path)
  static const int from_env = [] {
    const char* e = std::getenv("BS_CUDA_DECODE_SPLIT");
    const int keys = e != nullptr ? std::atoi(e) : 0;
    return keys == SMALL_PARTITION || keys == PARTITION ? keys : 0;
  }();
  if (g_decode_partition != 0) return g_decode_partition;
  if (from_env != 0) return from_env;
  if (!g_vec_attention) return PARTITION;
  const int64_t big = num_seqs * num_heads * ((max_context + PARTITION - 1) / PARTITION);
  return big <= SMALL_GRID ? SMALL_PARTITION : PARTITION;
}
}  // namespace

int64_t attention_scratch_floats(int64_t num_seqs, int64_t num_heads, int64_t head_dim, int64_t max_context) {
  const int part = decode_partition(num_seqs, num_heads, max_context);
  int64_t parts = (max_context + part - 1) / part;
  return num_seqs * num_heads * parts * (head_dim + 2);
}

namespace {
template <typename KT, int HD, int PART>
const char* launch_decode_vec(dim3 grid, float* part_out, float* part_ml, const float* q, const KT* kc, const KT* vc,
                              const int32_t* bt, int64_t max_blocks, const int32_t* seq_lens, int64_t heads,
                              int64_t kv_heads, int64_t bs, int64_t num_blocks, float scale, int parts, int64_t window) {
  const int group = (int)(heads / kv_heads);
  const size_t smem = ((size_t)group * HD + (size_t)group * PART + (size_t)DECODE_WARPS * std::min(group, VG) * HD) *
                      sizeof(float);
  auto* kernel = k_decode_attn_vec<KT, HD, PART>;  // one name for the launch (the CPU emulator's rewrite takes no comma)
  if (const char* e = allow_smem(kernel, smem)) return e;
  kernel<<<grid, DECODE_WARPS * 32, smem>>>(part_out, part_ml, q, kc, vc, bt, max_blocks, seq_lens, heads, kv_heads, bs,
                                            num_blocks, scale, parts, window);
  return launched("paged_attention (decode)");
}

// The vectorised decode kernel where it applies (a head size it is built for, caches on 16-byte
// boundaries); kNotHandled sends the caller to k_decode_attn.
template <typename KT>
const char* decode_vec(dim3 grid, float* part_out, float* part_ml, const float* q, const KT* kc, const KT* vc,
                       const int32_t* bt, int64_t max_blocks, const int32_t* seq_lens, int64_t heads, int64_t kv_heads,
                       int64_t hd, int64_t bs, int64_t num_blocks, float scale, int part, int parts, int64_t window) {
  if (!g_vec_attention || (reinterpret_cast<uintptr_t>(kc) | reinterpret_cast<uintptr_t>(vc)) % 16 != 0) return kNotHandled;
  return with_head_dim<16, 32, 64, 128, 256>(hd, [&](auto h) {
    constexpr int HD = decltype(h)::value;
    if (part == SMALL_PARTITION)
      return launch_decode_vec<KT, HD, SMALL_PARTITION>(grid, part_out, part_ml, q, kc, vc, bt, max_blocks, seq_lens, heads,
                                                        kv_heads, bs, num_blocks, scale, parts, window);
    return launch_decode_vec<KT, HD, PARTITION>(grid, part_out, part_ml, q, kc, vc, bt, max_blocks, seq_lens, heads,
                                                kv_heads, bs, num_blocks, scale, parts, window);
  });
}

template <typename KT, int HD>
const char* launch_prefill_tiled(float* out, const float* q, const KT* kc, const KT* vc, const int32_t* bt, int64_t max_blocks,
                                 const int32_t* seq_lens, const int32_t* qstart, int64_t num_seqs, int64_t num_tokens,
                                 int64_t heads, int64_t kv_heads, int64_t bs, int64_t num_blocks, float scale, int64_t window) {
  const int per = PQ_ROWS / (int)(heads / kv_heads);
  const size_t smem = ((size_t)HD * PQ_ROWS + (size_t)HD * PQ_KEYS + (size_t)PQ_KEYS * HD + (size_t)PQ_KEYS * PQ_PSTRIDE) *
                      sizeof(float);
  auto* kernel = k_prefill_attn_tiled<KT, HD>;  // one name for the launch (the CPU emulator's rewrite takes no comma)
  if (const char* e = allow_smem(kernel, smem)) return e;
  dim3 grid((unsigned)((num_tokens + per - 1) / per + num_seqs), (unsigned)kv_heads);
  kernel<<<grid, 128, smem>>>(out, q, kc, vc, bt, max_blocks, seq_lens, qstart, num_seqs, heads, kv_heads, bs, num_blocks,
                              scale, window);
  return launched("paged_attention (prefill)");
}

// The tiled prefill kernel where it applies (head size 16, 32, 64 or 128, at most PQ_ROWS query heads per KV
// head, caches on 16-byte boundaries); kNotHandled sends the caller to k_prefill_attn.
template <typename KT>
const char* prefill_tiled(float* out, const float* q, const KT* kc, const KT* vc, const int32_t* bt, int64_t max_blocks,
                          const int32_t* seq_lens, const int32_t* qstart, int64_t num_seqs, int64_t num_tokens, int64_t heads,
                          int64_t kv_heads, int64_t hd, int64_t bs, int64_t num_blocks, float scale, int64_t window) {
  if (!g_vec_attention || heads / kv_heads > PQ_ROWS ||
      (reinterpret_cast<uintptr_t>(kc) | reinterpret_cast<uintptr_t>(vc)) % 16 != 0)
    return kNotHandled;
  return with_head_dim<16, 32, 64, 128>(hd, [&](auto h) {
    return launch_prefill_tiled<KT, decltype(h)::value>(out, q, kc, vc, bt, max_blocks, seq_lens, qstart, num_seqs, num_tokens,
                                                        heads, kv_heads, bs, num_blocks, scale, window);
  });
}

template <typename KT>
const char* paged_attention_typed(float* out, const float* q, const KT* k_cache, const KT* v_cache,
                                  const int32_t* block_tables, int64_t max_blocks_per_seq, const int32_t* seq_lens,
                                  const int32_t* query_start, int64_t num_seqs, int64_t num_tokens, int64_t num_heads,
                                  int64_t num_kv_heads, int64_t head_dim, int64_t block_size, int64_t num_blocks,
                                  float scale, int64_t window, float* scratch) {
  if (window < 0) {
    std::snprintf(g_msg, sizeof g_msg, "paged_attention: window %lld is negative", (long long)window);
    return g_msg;
  }
  if (num_kv_heads <= 0 || num_heads % num_kv_heads) {
    std::snprintf(g_msg, sizeof g_msg, "paged_attention: %lld query heads are not a multiple of %lld kv heads",
                  (long long)num_heads, (long long)num_kv_heads);
    return g_msg;
  }
  int group = (int)(num_heads / num_kv_heads);
  if (group > MAX_GROUP * 4) {
    std::snprintf(g_msg, sizeof g_msg, "paged_attention: GQA group of %d query heads per KV head is not supported", group);
    return g_msg;
  }
  if (num_seqs == 0) return nullptr;
  if (num_tokens == num_seqs) {
    int64_t max_context = max_blocks_per_seq * block_size;
    const int part = decode_partition(num_seqs, num_heads, max_context);
    {  // the vectorised kernel: part_ml follows the partials of its own number of splits
      const int vparts = (int)((max_context + part - 1) / part);
      float* part_out = scratch;
      float* part_ml = scratch + num_seqs * num_heads * vparts * head_dim;
      dim3 grid((unsigned)num_kv_heads, (unsigned)num_seqs, (unsigned)vparts);
      if (const char* e = decode_vec<KT>(grid, part_out, part_ml, q, k_cache, v_cache, block_tables, max_blocks_per_seq,
                                         seq_lens, num_heads, num_kv_heads, head_dim, block_size, num_blocks, scale, part,
                                         vparts, window)) {
        if (e != kNotHandled) return e;
      } else {
        k_attn_reduce<<<(unsigned)(num_seqs * num_heads), 128>>>(out, part_out, part_ml, num_heads, head_dim, vparts);
        return launched("paged_attention (reduce)");
      }
    }
    int parts = (int)((max_context + PARTITION - 1) / PARTITION);
    float* part_out = scratch;
    float* part_ml = scratch + num_seqs * num_heads * parts * head_dim;
    size_t smem = (size_t)group * (head_dim + PARTITION) * sizeof(float);
    if (const char* e = allow_smem(k_decode_attn<KT>, smem)) return e;
    dim3 grid((unsigned)num_kv_heads, (unsigned)num_seqs, (unsigned)parts);
    k_decode_attn<KT><<<grid, 128, smem>>>(part_out, part_ml, q, k_cache, v_cache, block_tables, max_blocks_per_seq, seq_lens,
                                       num_heads, num_kv_heads, head_dim, block_size, num_blocks, scale, parts, window);
    if (const char* e = launched("paged_attention (decode)")) return e;
    k_attn_reduce<<<(unsigned)(num_seqs * num_heads), 128>>>(out, part_out, part_ml, num_heads, head_dim, parts);
    return launched("paged_attention (reduce)");
  }
  if (const char* e = prefill_tiled<KT>(out, q, k_cache, v_cache, block_tables, max_blocks_per_seq, seq_lens, query_start,
                                        num_seqs, num_tokens, num_heads, num_kv_heads, head_dim, block_size, num_blocks, scale,
                                        window)) {
    if (e != kNotHandled) return e;
  } else {
    return nullptr;
  }
  size_t smem = ((size_t)group * head_dim * 2 + 2 * (size_t)KTILE * head_dim + (size_t)group * KTILE + 3 * (size_t)group) *
                sizeof(float);
  if (const char* e = allow_smem(k_prefill_attn<KT>, smem)) return e;
  dim3 grid((unsigned)num_tokens, (unsigned)num_kv_heads);
  k_prefill_attn<KT><<<grid, 128, smem>>>(out, q, k_cache, v_cache, block_tables, max_blocks_per_seq, seq_lens, query_start,
                                      num_seqs, num_heads, num_kv_heads, head_dim, block_size, num_blocks, scale, window);
  return launched("paged_attention (prefill)");
}
}  // namespace

const char* paged_attention(float* out, const float* q, const void* k_cache, const void* v_cache, int kv_dtype,
                            const int32_t* block_tables, int64_t max_blocks_per_seq, const int32_t* seq_lens,
                            const int32_t* query_start, int64_t num_seqs, int64_t num_tokens, int64_t num_heads,
                            int64_t num_kv_heads, int64_t head_dim, int64_t block_size, int64_t num_blocks, float scale,
                            int64_t window, float* scratch) {
  return with_kv_type("paged_attention", kv_dtype, [&](auto tag) {
    using KT = std::remove_pointer_t<decltype(tag)>;
    return paged_attention_typed<KT>(out, q, static_cast<const KT*>(k_cache), static_cast<const KT*>(v_cache),
                                     block_tables, max_blocks_per_seq, seq_lens, query_start, num_seqs, num_tokens,
                                     num_heads, num_kv_heads, head_dim, block_size, num_blocks, scale, window, scratch);
  });
}

const char* paged_attention(float* out, const float* q, const void* k_cache, const void* v_cache, int kv_dtype,
                            const int32_t* block_tables, int64_t max_blocks_per_seq, const int32_t* seq_lens,
                            const int32_t* query_start, int64_t num_seqs, int64_t num_tokens, int64_t num_heads,
                            int64_t num_kv_heads, int64_t head_dim, int64_t block_size, int64_t num_blocks, float scale,
                            int64_t window) {
  size_t need = (size_t)attention_scratch_floats(num_seqs, num_heads, head_dim, max_blocks_per_seq * block_size) * 4;
  if (const char* e = at_least(&g_attn_scratch, &g_attn_scratch_bytes, need)) return e;
  return paged_attention(out, q, k_cache, v_cache, kv_dtype, block_tables, max_blocks_per_seq, seq_lens, query_start, num_seqs,
                         num_tokens, num_heads, num_kv_heads, head_dim, block_size, num_blocks, scale, window, g_attn_scratch);
}

const char* load_weight(float* out, const void* host_src, int dtype, int64_t n) {
  if (dtype == 0) return to_device(out, host_src, (size_t)n * 4);
  if (dtype != 1 && dtype != 2) {
    std::snprintf(g_msg, sizeof g_msg, "load_weight: unknown dtype code %d", dtype);
    return g_msg;
  }
  uint16_t* raw = nullptr;
  if (const char* e = err("cudaMalloc (load_weight)", cudaMalloc(reinterpret_cast<void**>(&raw), (size_t)n * 2))) return e;
  const char* e = to_device(raw, host_src, (size_t)n * 2);
  if (e == nullptr) e = dtype == 1 ? f16_to_f32(out, raw, n) : bf16_to_f32(out, raw, n);
  if (e == nullptr) e = synchronize();
  cudaFree(raw);
  return e;
}

const char* block_copy(void* k_cache, void* v_cache, int kv_dtype, const int32_t* src, const int32_t* dst, int64_t n,
                       int64_t block_elems, int64_t num_blocks) {
  return with_kv_type("block_copy", kv_dtype, [&](auto tag) -> const char* {
    using KT = std::remove_pointer_t<decltype(tag)>;
    if (n == 0) return nullptr;
    k_block_copy<KT><<<(unsigned)n, 256>>>(static_cast<KT*>(k_cache), static_cast<KT*>(v_cache), src, dst, block_elems,
                                           num_blocks);
    return launched("block_copy");
  });
}

const char* argmax(int32_t* out, const float* logits, int64_t n, int64_t vocab) {
  if (n == 0) return nullptr;
  k_argmax<<<(unsigned)n, 1024>>>(out, logits, vocab);
  return launched("argmax");
}

const char* d2d_bandwidth(size_t bytes, int iters, double* gbps) {
  void *a = nullptr, *b = nullptr;
  if (const char* m = err("cudaMalloc", cudaMalloc(&a, bytes))) return m;
  if (const char* m = err("cudaMalloc", cudaMalloc(&b, bytes))) { cudaFree(a); return m; }
  cudaEvent_t e0, e1;
  cudaEventCreate(&e0);
  cudaEventCreate(&e1);
  cudaMemcpy(b, a, bytes, cudaMemcpyDeviceToDevice);
  cudaEventRecord(e0);
  for (int i = 0; i < iters; i++) cudaMemcpy(b, a, bytes, cudaMemcpyDeviceToDevice);
  cudaEventRecord(e1);
  cudaEventSynchronize(e1);
  float ms = 0;
  cudaEventElapsedTime(&ms, e0, e1);
  cudaEventDestroy(e0);
  cudaEventDestroy(e1);
  cudaFree(a);
  cudaFree(b);
  // a copy reads and writes every byte
  *gbps = 2.0 * bytes * iters / (ms / 1e3) / 1e9;
  return err("d2d_bandwidth", cudaGetLastError());
}

}  // namespace bscuda

// The seam between the CPU JNI library and its kernels. The kernels are compiled once per instruction
// set level (cpu_kernels.cpp, built as libblockserve_cpu_<level>.so with that level's -march); each
// copy exports one C function returning this table. cpu_dispatch.cpp opens the copy the CPU can run
// (or the one asked for) with RTLD_LOCAL, so no code compiled for one level is ever shared with another.
#pragma once
#include <cstddef>
#include <cstdint>

namespace bs {

struct KernelTable {
  const char* level;  // "avx512bf16", "avx512", "avx2", "baseline"
  int vector_floats;  // floats per vector register the kernels were compiled for
  const char* (*alloc)(void** p, size_t bytes);
  const char* (*free)(void* p);
  const char* (*load_weight)(float* out, const void* host_src, int dtype, int64_t n);
  const char* (*embedding)(float* out, const void* table, int table_dtype, const int32_t* ids, int64_t n, int64_t dim,
                           int64_t rows);
  const char* (*rmsnorm)(float* out, const float* x, const float* w, int64_t n, int64_t dim, float eps);
  const char* (*matmul)(float* out, const float* x, const void* w, int w_dtype, int64_t n, int64_t k, int64_t m);
  const char* (*rope)(float* x, const int32_t* pos, const float* cos_sin, int64_t n, int64_t heads, int64_t head_dim,
                      int64_t max_pos);
  const char* (*silu_mul)(float* out, const float* gate, const float* up, int64_t count);
  const char* (*add)(float* x, const float* y, int64_t count);
  const char* (*bias_add)(float* x, const float* bias, int64_t n, int64_t dim);
  const char* (*kv_write)(void* k_cache, void* v_cache, int kv_dtype, const float* k, const float* v, const int32_t* slots, int64_t n,
                          int64_t kv_heads, int64_t head_dim, int64_t num_slots);
  const char* (*paged_attention)(float* out, const float* q, const void* k_cache, const void* v_cache, int kv_dtype,
                                 const int32_t* block_tables, int64_t max_blocks_per_seq, const int32_t* seq_lens,
                                 const int32_t* query_start, int64_t num_seqs, int64_t num_tokens, int64_t num_heads,
                                 int64_t num_kv_heads, int64_t head_dim, int64_t block_size, int64_t num_blocks,
                                 float scale, int64_t window);
  const char* (*block_copy)(void* k_cache, void* v_cache, int kv_dtype, const int32_t* src, const int32_t* dst, int64_t n,
                            int64_t block_elems, int64_t num_blocks);
  const char* (*argmax)(int32_t* out, const float* logits, int64_t n, int64_t vocab);
  void (*set_threads)(int n);
  int (*threads)();
  void (*round_to_bf16)(uint16_t* out, const float* in, int64_t n);
  double (*stream_read)(const float* p, int64_t count);
  double (*peak_gflops)(int bf16, double seconds);
  int (*team_threads)();  // threads alive that have opened (or may have opened) a parallel region
  double (*exp_sum)(float* out, const float* in, int64_t n, float shift, float scale);
  // 1 (on) or 0: BF16 matrices multiply activations rounded to BF16 (vdpbf16ps).
  // Returns 1 when done, 0 when this level cannot (it has no AVX-512 BF16); off always succeeds.
  int (*set_bf16_activations)(int on);
  // BF16 matrices at 12 bits a weight for batch-1 decode (cpu_kernels.cpp says how): the bytes a packed
  // m x k matrix takes, 0 where this level or CPU cannot (or k is not a multiple of 64); packing it into
  // dst; and out[1, m] = x[1, k] . w^T from the packed form (w, the BF16 matrix, serves the rows that
  // could not be packed), bit for bit what matmul gives.
  int64_t (*packed_bf16_bytes)(int64_t k, int64_t m);
  const char* (*pack_bf16)(void* dst, const uint16_t* w, int64_t k, int64_t m);
  const char* (*matmul_packed_bf16)(float* out, const float* x, const void* packed, const uint16_t* w, int64_t k, int64_t m);
  // The same for count (1-4) packed matrices sharing x, as one op: outs[i][1, ms[i]] = x[1, k] . ws[i]^T.
  const char* (*matmul_packed_bf16_n)(const float* x, int64_t k, int count, float* const* outs, const void* const* packed,
                                      const uint16_t* const* ws, const int64_t* ms);
};

}  // namespace bs

// Each level's library exports this (and nothing else).
extern "C" const bs::KernelTable* bs_cpu_kernel_table();

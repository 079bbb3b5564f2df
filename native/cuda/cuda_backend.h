// blockserve CUDA kernels: the contract of ../src/bs_kernels.h on device memory, plus what a GPU needs
// (BF16 weights for the matmul, a device error word, scratch for split attention). Every function
// returns nullptr on success or a message naming the CUDA call or op and its error.
#pragma once
#include <cstddef>
#include <cstdint>

namespace bscuda {

const char* device_count(int* n);
const char* device_info(int dev, char* name, int name_len, size_t* free_b, size_t* total_b, int* cc_major, int* cc_minor);
const char* set_device(int dev);
const char* mem_info(size_t* free_b, size_t* total_b);
const char* alloc(void** p, size_t bytes);
const char* free(void* p);
// kind: 1 host->device, 2 device->host, 3 device->device (cudaMemcpyKind values)
const char* copy(void* dst, const void* src, size_t bytes, int kind);
const char* synchronize();

// The sticky error word kernels set on bad input (a block id or slot out of range): 0 when none.
// check_error reads and clears it; a non-zero value comes back as a message.
const char* check_error();

const char* f32_to_bf16(uint16_t* out, const float* in, int64_t n);
const char* bf16_to_f32(float* out, const uint16_t* in, int64_t n);
const char* f16_to_f32(float* out, const uint16_t* in, int64_t n);

const char* embedding(float* out, const float* table, const int32_t* ids, int64_t n, int64_t dim, int64_t rows);
const char* rmsnorm(float* out, const float* x, const float* w, int64_t n, int64_t dim, float eps);
// out[n,m] = x[n,k] . w[m,k]^T with w in BF16, FP32 accumulation. x_bf16 is scratch of n*k values.
const char* matmul_bf16(float* out, const float* x, uint16_t* x_bf16, const uint16_t* w, int64_t n, int64_t k, int64_t m);
// out[n,m] = x[n,k] . w[m,k]^T all in FP32 (exact-reference mode, and models served in FP32).
const char* matmul_f32(float* out, const float* x, const float* w, int64_t n, int64_t k, int64_t m);
const char* rope(float* x, const int32_t* pos, const float* cos_sin, int64_t n, int64_t heads, int64_t head_dim,
                 int64_t max_pos);
const char* silu_mul(float* out, const float* gate, const float* up, int64_t count);
const char* add(float* x, const float* y, int64_t count);
const char* kv_write(float* k_cache, float* v_cache, const float* k, const float* v, const int32_t* slots, int64_t n,
                     int64_t kv_heads, int64_t head_dim, int64_t num_slots);
// Paged attention, semantics of bs::paged_attention. scratch holds split-attention partials: at least
// attention_scratch_floats(...) floats. When num_tokens == num_seqs (all decode) the split-context
// decode kernel runs, else the tiled prefill kernel.
int64_t attention_scratch_floats(int64_t num_seqs, int64_t num_heads, int64_t head_dim, int64_t max_context);
const char* paged_attention(float* out, const float* q, const float* k_cache, const float* v_cache,
                            const int32_t* block_tables, int64_t max_blocks_per_seq, const int32_t* seq_lens,
                            const int32_t* query_start, int64_t num_seqs, int64_t num_tokens, int64_t num_heads,
                            int64_t num_kv_heads, int64_t head_dim, int64_t block_size, int64_t num_blocks, float scale,
                            float* scratch);
const char* block_copy(float* k_cache, float* v_cache, const int32_t* src, const int32_t* dst, int64_t n,
                       int64_t block_elems, int64_t num_blocks);
const char* argmax(int32_t* out, const float* logits, int64_t n, int64_t vocab);

// Which matmul implementation runs: "cublas" when libcublas could be opened, else "wmma".
const char* matmul_impl();

// Bandwidth probe: device-to-device copy of bytes, returns GB/s over iters (benchmarks).
const char* d2d_bandwidth(size_t bytes, int iters, double* gbps);

}  // namespace bscuda

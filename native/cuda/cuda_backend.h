// The CUDA library: the kernel contract (../include/bs_kernels.h) in namespace bscuda on device memory,
// plus what a GPU needs besides (device queries, the sticky device error word, BF16 weight twins,
// scratch for split attention) and the lower-level entry points the GPU kernel test calls directly.
// Every function returns nullptr on success or a message naming the CUDA call or op and its error.
#pragma once
#define BS_KERNELS_NS bscuda
#include "bs_kernels.h"
#undef BS_KERNELS_NS

namespace bscuda {

const char* device_count(int* n);
const char* device_info(int dev, char* name, int name_len, size_t* free_b, size_t* total_b, int* cc_major, int* cc_minor);
const char* set_device(int dev);
const char* mem_info(size_t* free_b, size_t* total_b);
// kind: 1 host->device, 2 device->host, 3 device->device (cudaMemcpyKind values)
const char* copy(void* dst, const void* src, size_t bytes, int kind);
const char* synchronize();

// The sticky error word kernels set on bad input (a block id or slot out of range): 0 when none.
// check_error reads and clears it; a non-zero value comes back as a message. to_host calls it.
const char* check_error();

// How the contract's matmul runs: true (the default) with a BF16 twin of each weight, made on its first
// use and freed with it, and FP32 accumulation; false in FP32 throughout (exact comparison with the CPU).
void set_bf16_matmul(bool on);
// Which attention kernels run: true (the default) the vectorised ones where they apply (head sizes 16-256
// in powers of two, 16-byte aligned caches), false the first, simpler kernels everywhere (the kernel test
// checks and times both).
void set_vectorised_attention(bool on);
// Keys per split of the vectorised decode kernel: 0 (the default) chooses 128 where the grid of 512-key
// splits is small (sequences x query heads x splits up to 2048: batch 1 and short contexts) and 512
// elsewhere; 128 or 512 forces one (A/B runs and checks of both). Other values are refused.
const char* set_decode_partition(int keys);
// Frees the library's own scratch (BF16 twins, activation and attention scratch).
const char* release_scratch();

const char* f32_to_bf16(uint16_t* out, const float* in, int64_t n);
const char* bf16_to_f32(float* out, const uint16_t* in, int64_t n);
const char* f16_to_f32(float* out, const uint16_t* in, int64_t n);

// out[n,m] = x[n,k] . w[m,k]^T with w in BF16, FP32 accumulation. x_bf16 is scratch of n*k values.
const char* matmul_bf16(float* out, const float* x, uint16_t* x_bf16, const uint16_t* w, int64_t n, int64_t k, int64_t m);
// out[n,m] = x[n,k] . w[m,k]^T all in FP32.
const char* matmul_f32(float* out, const float* x, const float* w, int64_t n, int64_t k, int64_t m);
// Which BF16 matmul implementation runs: "cublas" when libcublas could be opened, else "wmma".
const char* matmul_impl();

// Paged attention with caller-provided scratch for split-attention partials: at least
// attention_scratch_floats(...) floats. When num_tokens == num_seqs (all decode) the split-context
// decode kernel runs, else the tiled prefill kernel. The contract's paged_attention keeps its own.
int64_t attention_scratch_floats(int64_t num_seqs, int64_t num_heads, int64_t head_dim, int64_t max_context);
const char* paged_attention(float* out, const float* q, const void* k_cache, const void* v_cache, int kv_dtype,
                            const int32_t* block_tables, int64_t max_blocks_per_seq, const int32_t* seq_lens,
                            const int32_t* query_start, int64_t num_seqs, int64_t num_tokens, int64_t num_heads,
                            int64_t num_kv_heads, int64_t head_dim, int64_t block_size, int64_t num_blocks, float scale,
                            int64_t window, float* scratch);

// Bandwidth probe: device-to-device copy of bytes, returns GB/s over iters (benchmarks).
const char* d2d_bandwidth(size_t bytes, int iters, double* gbps);

}  // namespace bscuda

// The blockserve kernel contract: one shape for every library (CPU in namespace bs, CUDA in namespace
// bscuda). native/README.md states each op's semantics. Rules for every function here:
// - it returns nullptr on success, or a message naming the op and what was wrong;
// - it validates its input before touching memory, so a rejection leaves outputs untouched (on a GPU,
//   range errors found inside a kernel are recorded and reported by the next to_host);
// - tensors are float32, row-major, contiguous, except weight tables and matrices that name their dtype
//   (0 F32, 1 F16, 2 BF16; a library may accept only some: CUDA takes F32 and BF16 matrices, F32
//   tables); integer inputs are int32; pointers are the library's
//   memory (host memory for the CPU library, device memory for CUDA), except the host pointers named so.
// There is no include guard on purpose: a library's own header includes this once inside its namespace
// (cpu_kernels.h, cuda_backend.h), and a test that links both libraries includes both of those.
#include <cstddef>
#include <cstdint>

#ifndef BS_KERNELS_NS
#error "define BS_KERNELS_NS before including bs_kernels.h (use cpu_kernels.h or cuda_backend.h)"
#endif

namespace BS_KERNELS_NS {

// Memory: zeroed allocations; copies between host memory and the library's memory.
const char* alloc(void** p, size_t bytes);
const char* free(void* p);
const char* to_device(void* dst, const void* host_src, size_t bytes);
const char* to_host(void* host_dst, const void* src, size_t bytes);
// out[0..n) = the n values at host_src of dtype (0 F32, 1 F16, 2 BF16), widened to float32.
const char* load_weight(float* out, const void* host_src, int dtype, int64_t n);

// out[i,:] = table[ids[i],:] widened to float32   (ids in [0,rows); table of table_dtype)
const char* embedding(float* out, const void* table, int table_dtype, const int32_t* ids, int64_t n, int64_t dim,
                      int64_t rows);
// out[i,:] = x[i,:] / sqrt(mean(x[i,:]^2) + eps) * w
const char* rmsnorm(float* out, const float* x, const float* w, int64_t n, int64_t dim, float eps);
// out[n,m] = x[n,k] . w[m,k]^T, w of w_dtype widened to float32 in registers, float32 accumulation
const char* matmul(float* out, const float* x, const void* w, int w_dtype, int64_t n, int64_t k, int64_t m);
// In place, Hugging Face rotate-half. x is [n, heads, head_dim]; cos_sin is [max_pos, head_dim]
// holding cos for the head_dim/2 frequencies then sin for them.
const char* rope(float* x, const int32_t* pos, const float* cos_sin, int64_t n, int64_t heads, int64_t head_dim,
                 int64_t max_pos);
// out = silu(gate) * up, elementwise over count
const char* silu_mul(float* out, const float* gate, const float* up, int64_t count);
// x += y
const char* add(float* x, const float* y, int64_t count);
// x[i,:] += bias for each of the n rows of x [n, dim]
const char* bias_add(float* x, const float* bias, int64_t n, int64_t dim);
// Cache layout: [num_blocks, block_size, kv_heads, head_dim] (FlashAttention's paged layout), elements
// of kv_dtype (0 F32, 1 F16, 2 BF16; float32 k/v are narrowed to it, rounding to nearest even).
// Token i's k/v ([n, kv_heads, head_dim]) go to slot slots[i] = block*block_size + offset; -1 skips.
const char* kv_write(void* k_cache, void* v_cache, int kv_dtype, const float* k, const float* v, const int32_t* slots,
                     int64_t n, int64_t kv_heads, int64_t head_dim, int64_t num_slots);
// Paged attention over a mixed batch. Sequence s owns query rows [query_start[s], query_start[s+1])
// of q ([T, heads, head_dim]); seq_lens[s] tokens (new ones included, already written) are read
// through block_tables[s, 0..]. Query row j of s (0-based, q_len rows) sits at position
// seq_lens[s]-q_len+j and attends to keys 0..that position, or with window > 0 to the last `window` of
// them (positions p-window < j <= p, as a sliding-window causal mask). Blocks wholly before a row's
// window are not read and need not be valid. The caches hold kv_dtype elements, widened to float32 in
// registers; scores, softmax and sums are float32. out is [T, heads, head_dim].
const char* paged_attention(float* out, const float* q, const void* k_cache, const void* v_cache, int kv_dtype,
                            const int32_t* block_tables, int64_t max_blocks_per_seq, const int32_t* seq_lens,
                            const int32_t* query_start, int64_t num_seqs, int64_t num_tokens, int64_t num_heads,
                            int64_t num_kv_heads, int64_t head_dim, int64_t block_size, int64_t num_blocks, float scale,
                            int64_t window);
// Copies whole blocks src[i] -> dst[i] in both caches (of kv_dtype); block_elems = block_size*kv_heads*head_dim.
const char* block_copy(void* k_cache, void* v_cache, int kv_dtype, const int32_t* src, const int32_t* dst, int64_t n,
                       int64_t block_elems, int64_t num_blocks);
// out[i] = argmax_j logits[i, j] (first index on ties)
const char* argmax(int32_t* out, const float* logits, int64_t n, int64_t vocab);

}  // namespace BS_KERNELS_NS

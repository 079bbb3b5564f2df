// blockserve kernel contract (CPU implementation). See native/README.md for the full contract.
// Every tensor is float32, row-major, contiguous. Integer inputs are int32.
// Functions that can reject their input return nullptr on success or a message on failure;
// they validate everything before touching memory, so a failure leaves outputs untouched.
#pragma once
#include <cstdint>

namespace bs {

void set_threads(int n);
int threads();

// out[i,:] = table[ids[i],:]   (ids in [0,rows))
const char* embedding(float* out, const float* table, const int32_t* ids, int64_t n, int64_t dim, int64_t rows);
// out[i,:] = x[i,:] / sqrt(mean(x[i,:]^2) + eps) * w
void rmsnorm(float* out, const float* x, const float* w, int64_t n, int64_t dim, float eps);
// out[n,m] = x[n,k] . w[m,k]^T
void matmul(float* out, const float* x, const float* w, int64_t n, int64_t k, int64_t m);
// In place, Hugging Face rotate-half. x is [n, heads, head_dim]; cos_sin is [max_pos, head_dim]
// holding cos for the head_dim/2 frequencies then sin for them.
const char* rope(float* x, const int32_t* pos, const float* cos_sin, int64_t n, int64_t heads, int64_t head_dim,
                 int64_t max_pos);
// out = silu(gate) * up, elementwise over count
void silu_mul(float* out, const float* gate, const float* up, int64_t count);
// x += y
void add(float* x, const float* y, int64_t count);
// Cache layout: [num_blocks, block_size, kv_heads, head_dim] (FlashAttention's paged layout).
// Token i's k/v ([n, kv_heads, head_dim]) go to slot slots[i] = block*block_size + offset; -1 skips.
const char* kv_write(float* k_cache, float* v_cache, const float* k, const float* v, const int32_t* slots,
                     int64_t n, int64_t kv_heads, int64_t head_dim, int64_t num_slots);
// Paged attention over a mixed batch. Sequence s owns query rows [query_start[s], query_start[s+1])
// of q ([T, heads, head_dim]); seq_lens[s] tokens (new ones included, already written) are read
// through block_tables[s, 0..]. Query row j of s (0-based, q_len rows) sits at position
// seq_lens[s]-q_len+j and attends to keys 0..that position. out is [T, heads, head_dim].
const char* paged_attention(float* out, const float* q, const float* k_cache, const float* v_cache,
                            const int32_t* block_tables, int64_t max_blocks_per_seq, const int32_t* seq_lens,
                            const int32_t* query_start, int64_t num_seqs, int64_t num_tokens, int64_t num_heads, int64_t num_kv_heads,
                            int64_t head_dim, int64_t block_size, int64_t num_blocks, float scale);
// Copies whole blocks src[i] -> dst[i] in both caches; block_elems = block_size*kv_heads*head_dim.
const char* block_copy(float* k_cache, float* v_cache, const int32_t* src, const int32_t* dst, int64_t n,
                       int64_t block_elems, int64_t num_blocks);
// out[i] = argmax_j logits[i, j] (first index on ties)
void argmax(int32_t* out, const float* logits, int64_t n, int64_t vocab);
// dtype upcasts used at load time
void f16_to_f32(float* out, const uint16_t* in, int64_t n);
void bf16_to_f32(float* out, const uint16_t* in, int64_t n);
// Reads bytes with all threads and returns a checksum (memory bandwidth probe for benchmarks).
double stream_read(const float* p, int64_t count);

}  // namespace bs

// The CPU library: the kernel contract (../include/bs_kernels.h) in namespace bs, plus what only a CPU
// has (threads, instruction set levels, a BF16 rounding for load time, probes for benchmarks). The
// functions here forward to the kernels of one instruction set level (cpu_table.h), chosen by
// select_level before the first kernel runs.
#pragma once
#define BS_KERNELS_NS bs
#include "bs_kernels.h"
#undef BS_KERNELS_NS

namespace bs {

// Opens libblockserve_cpu_<level> from dir and makes it the kernels every call below uses.
// requested: "auto" (the best level this CPU runs) or a level name ("avx512bf16", "avx512", "avx2",
// "baseline"). Returns nullptr on success, else why not (unknown level, the CPU lacks it, the file is
// missing). Call it when no kernel is running; thread count carries over.
const char* select_level(const char* dir, const char* requested);
// The chosen level's name, or "" before select_level succeeded.
const char* level();
// Level names this CPU can run, best first, separated by commas.
const char* supported_levels();

void set_threads(int n);
int threads();
// Threads alive that have run a kernel of the chosen level able to open a parallel region (each keeps a
// libgomp worker team while it lives).
int team_threads();
// F32 -> BF16 rounding to nearest even (a checkpoint served as BF16).
const char* round_to_bf16(uint16_t* out, const float* in, int64_t n);
// Reads count floats with all threads and returns a checksum (memory bandwidth probe for benchmarks).
double stream_read(const float* p, int64_t count);
// One core's peak arithmetic in GFLOP/s over `seconds`: F32 FMA, or (bf16) vdpbf16ps, 0 where absent.
double peak_gflops(int bf16, double seconds);
// Host arrays, the calling thread alone: out[i] = exp((in[i] - shift) * scale) (out may be null) and
// returns their sum, for the sampler's softmax and logprobs. NaN when no level is selected.
double exp_sum(float* out, const float* in, int64_t n, float shift, float scale);
// BF16 matrices multiply activations rounded to BF16 (vdpbf16ps) when on, as llama.cpp
// does; not golden-exact. Returns 1 when done, 0 when the chosen level cannot (no AVX-512 BF16) or no
// level is chosen yet. Applies to the chosen level; call it again after select_level.
int set_bf16_activations(int on);
// BF16 matrices at 12 bits a weight for batch-1 decode (cpu_table.h): bytes a packed m x k matrix
// takes (0: not at this level, on this CPU, or for this k), packing, and the one-row product.
int64_t packed_bf16_bytes(int64_t k, int64_t m);
const char* pack_bf16(void* dst, const uint16_t* w, int64_t k, int64_t m);
const char* matmul_packed_bf16(float* out, const float* x, const void* packed, const uint16_t* w, int64_t k, int64_t m);
const char* matmul_packed_bf16_n(const float* x, int64_t k, int count, float* const* outs, const void* const* packed,
                                 const uint16_t* const* ws, const int64_t* ms);

}  // namespace bs

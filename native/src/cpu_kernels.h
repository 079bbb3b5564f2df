// The CPU library: the kernel contract (../include/bs_kernels.h) in namespace bs, plus what only a CPU
// has (thread count, the load-time upcasts, a bandwidth probe).
#pragma once
#define BS_KERNELS_NS bs
#include "bs_kernels.h"
#undef BS_KERNELS_NS

namespace bs {

void set_threads(int n);
int threads();
// dtype upcasts (load_weight uses them; the kernel test calls them directly)
void f16_to_f32(float* out, const uint16_t* in, int64_t n);
void bf16_to_f32(float* out, const uint16_t* in, int64_t n);
// Reads bytes with all threads and returns a checksum (memory bandwidth probe for benchmarks).
double stream_read(const float* p, int64_t count);

}  // namespace bs

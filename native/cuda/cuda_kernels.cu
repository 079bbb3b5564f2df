// CUDA side of the backend: device management and memory for now. The model's kernels live in
// their own issue; this file is where they go, behind the same contract as src/bs_kernels.h.
#include <cuda_runtime.h>

#include <cstdio>

#include "cuda_backend.h"

namespace bscuda {

thread_local char g_msg[512];

const char* err(const char* op, cudaError_t e) {
  if (e == cudaSuccess) return nullptr;
  std::snprintf(g_msg, sizeof g_msg, "%s: %s (%s)", op, cudaGetErrorString(e), cudaGetErrorName(e));
  return g_msg;
}

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

const char* alloc(void** p, size_t bytes) {
  if (const char* m = err("cudaMalloc", cudaMalloc(p, bytes))) return m;
  return err("cudaMemset", cudaMemset(*p, 0, bytes));
}

const char* free(void* p) { return err("cudaFree", cudaFree(p)); }

const char* copy(void* dst, const void* src, size_t bytes, int kind) {
  return err("cudaMemcpy", cudaMemcpy(dst, src, bytes, static_cast<cudaMemcpyKind>(kind)));
}

}  // namespace bscuda

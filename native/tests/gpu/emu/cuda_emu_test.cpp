// The CUDA emulator's own checks (cuda_emu.h): what it must run as a GPU does, and what it must refuse
// as CUDA would. Exit code 0 when every check passes.
#include <cuda_runtime.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

static int failures = 0;

static void expect(bool ok, const char* what) {
  if (!ok) failures++;
  std::printf("%-70s %s\n", what, ok ? "ok" : "FAIL");
}

// out[i] = the value thread (blockDim.x - 1 - i) wrote before the barrier
__global__ void k_reverse(float* out) {
  __shared__ float s[256];
  s[threadIdx.x] = (float)(threadIdx.x + 1000 * blockIdx.x);
  __syncthreads();
  out[blockIdx.x * blockDim.x + threadIdx.x] = s[blockDim.x - 1 - threadIdx.x];
}

__global__ void k_warp_sum(float* out) {
  float v = (float)threadIdx.x;
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffff, v, o);
  out[threadIdx.x] = v;
}

// half a warp waits at a shuffle that needs the other half, which waits at __syncthreads: a deadlock
__global__ void k_divergent(float* out) {
  float v = 1.f;
  if (threadIdx.x < 16) v = __shfl_xor_sync(0xffffffff, v, 1);
  else __syncthreads();
  out[threadIdx.x] = v;
}

// a race: each thread reads its right neighbour's slot with no barrier after the writes
__global__ void k_racy(float* out) {
  extern __shared__ float slots[];
  slots[threadIdx.x] = (float)threadIdx.x;
  out[threadIdx.x] = slots[(threadIdx.x + 1) % blockDim.x];
}

__global__ void k_dynamic(float* out, int n) {
  extern __shared__ float dyn[];
  if (threadIdx.x == 0) out[0] = dyn[n - 1];  // never written: shared memory starts undefined
}

int main() {
  std::vector<float> h(512);
  float* d = nullptr;
  cudaMalloc((void**)&d, 512 * sizeof(float));

  k_reverse<<<2, 256>>>(d);
  cudaMemcpy(h.data(), d, 512 * sizeof(float), cudaMemcpyDeviceToHost);
  bool rev = cudaGetLastError() == cudaSuccess;
  for (int b = 0; b < 2; b++)
    for (int i = 0; i < 256; i++) rev = rev && h[b * 256 + i] == (float)(255 - i + 1000 * b);
  expect(rev, "__syncthreads: every thread sees what the others wrote before it");

  k_warp_sum<<<1, 64>>>(d);
  cudaMemcpy(h.data(), d, 64 * sizeof(float), cudaMemcpyDeviceToHost);
  bool sums = cudaGetLastError() == cudaSuccess;
  for (int i = 0; i < 64; i++) sums = sums && h[i] == (i < 32 ? 496.f : 1520.f);
  expect(sums, "__shfl_xor_sync: a butterfly sums each warp's lanes");

  k_divergent<<<1, 32>>>(d);
  expect(cudaGetLastError() == cudaErrorLaunchFailure, "a shuffle and a __syncthreads waiting on each other fail the launch");

  k_warp_sum<<<1, 48>>>(d);
  expect(cudaGetLastError() == cudaErrorLaunchFailure, "a shuffle in a warp of 16 threads fails the launch");

  k_reverse<<<1, 2048>>>(d);
  expect(cudaGetLastError() == cudaErrorInvalidConfiguration, "2048 threads a block is refused");
  k_reverse<<<dim3(1, 70000), 32>>>(d);
  expect(cudaGetLastError() == cudaErrorInvalidConfiguration, "a grid 70000 blocks high is refused");

  k_dynamic<<<1, 32, 64 * 1024>>>(d, 16);
  expect(cudaGetLastError() == cudaErrorInvalidValue, "64 KiB of dynamic shared memory without opting in is refused");
  expect(cudaFuncSetAttribute(k_dynamic, cudaFuncAttributeMaxDynamicSharedMemorySize, 64 * 1024) == cudaSuccess,
         "opting in to 64 KiB");
  k_dynamic<<<1, 32, 64 * 1024>>>(d, 16384);
  cudaMemcpy(h.data(), d, sizeof(float), cudaMemcpyDeviceToHost);
  expect(cudaGetLastError() == cudaSuccess && std::isnan(h[0]),
         "then 64 KiB is granted, and reading shared memory nobody wrote gives NaN");

  // Threads run first to last between barriers (last to first with BS_CUDA_EMU_ORDER=reverse): the racy
  // kernel reads its neighbours' slots before (forward: NaN, never written) or after (reverse) they are
  // written, so running the checks in both orders shows such a race as a difference.
  const char* order = std::getenv("BS_CUDA_EMU_ORDER");
  const bool reverse = order != nullptr && std::strcmp(order, "reverse") == 0;
  k_racy<<<1, 32, 32 * sizeof(float)>>>(d);
  cudaMemcpy(h.data(), d, 32 * sizeof(float), cudaMemcpyDeviceToHost);
  bool as_ordered = cudaGetLastError() == cudaSuccess;
  for (int i = 0; i < 31; i++) as_ordered = as_ordered && (reverse ? h[i] == (float)(i + 1) : std::isnan(h[i]));
  expect(as_ordered, reverse ? "threads run last to first: a read without a barrier sees the later thread's write"
                             : "threads run first to last: a read without a barrier misses the later thread's write");

  cudaFree(d);
  std::printf("\n%d failed\n", failures);
  return failures ? 1 : 0;
}

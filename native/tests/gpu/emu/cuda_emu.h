// A CPU emulation of the part of CUDA that cuda/cuda_kernels.cu uses, so that the kernels' own source runs
// (and is checked against the CPU library and the goldens) on a machine without a GPU. It is not a GPU:
// it says nothing of speed, of the device's arithmetic (__expf, tensor-core rounding) or of memory
// ordering between blocks. What it does check, beyond the results: launch configurations as CUDA
// refuses them (threads a block, grid size, dynamic shared memory against what the launch asked for and
// the 48 KiB limit without cudaFuncSetAttribute), every __syncthreads reached by all live threads of the
// block, and every warp shuffle by all 32 lanes of its warp; a violation fails the launch with an error
// that cudaGetLastError returns, as a real fault would be reported.
//
// How: each block runs its threads as fibers on the calling thread (a stack switch of the callee-saved
// registers, x86-64 only: ucontext's swapcontext makes a system call per switch, and a warp shuffle costs
// two switches a lane). A thread runs until it waits at a barrier (__syncthreads, or a shuffle's warp
// barrier) or returns, then hands the core to the next runnable thread; a barrier opens when every live
// thread it concerns waits at it, and the last to arrive goes on. Threads run first to last between
// barriers, or last to first with BS_CUDA_EMU_ORDER=reverse (a race shows as a difference). Blocks run one
// after another. Device memory is host memory. Built only into test programs and the emulated test library
// (CMakeLists.txt rewrites `kernel<<<...>>>(...)` into BS_EMU_LAUNCH(kernel, ...)(...) and `extern
// __shared__` arrays into the block's dynamic shared memory). Thread: the caller's, one launch at a time.
#pragma once

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#define BS_CUDA_EMU 1
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __shared__ static  // one copy for the block's fibers (blocks run one at a time)
#ifndef __CUDA_ARCH__
#define __CUDA_ARCH__ 800  // the emulated device claims compute capability 8.0 (tensor-core paths built)
#endif

struct uint3 {
  unsigned x, y, z;
};
struct dim3 {
  unsigned x, y, z;
  dim3(unsigned a = 1, unsigned b = 1, unsigned c = 1) : x(a), y(b), z(c) {}
};
struct float2 {
  float x, y;
};

// ---- scalar types and conversions

struct __nv_bfloat16 {
  uint16_t bits;
};
struct __nv_bfloat162 {
  __nv_bfloat16 x, y;
};
struct __half {
  uint16_t bits;
};

inline float __bfloat162float(__nv_bfloat16 b) {
  uint32_t u = (uint32_t)b.bits << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
inline __nv_bfloat16 __float2bfloat16_rn(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return {(uint16_t)((u >> 16) | 0x40u)};  // NaN stays a quiet NaN
  u += 0x7fffu + ((u >> 16) & 1u);
  return {(uint16_t)(u >> 16)};
}
inline __nv_bfloat16 __float2bfloat16(float f) { return __float2bfloat16_rn(f); }
inline float2 __bfloat1622float2(__nv_bfloat162 p) { return {__bfloat162float(p.x), __bfloat162float(p.y)}; }
inline float __half2float(__half h) {
  _Float16 v;
  std::memcpy(&v, &h.bits, 2);
  return (float)v;
}
inline __half __float2half_rn(float f) {
  _Float16 v = (_Float16)f;  // round to nearest even
  __half h;
  std::memcpy(&h.bits, &v, 2);
  return h;
}
inline float __expf(float x) { return std::exp(x); }
inline float rsqrtf(float x) { return 1.0f / std::sqrt(x); }
inline int max(int a, int b) { return a > b ? a : b; }
inline int min(int a, int b) { return a < b ? a : b; }
inline int64_t max(int64_t a, int64_t b) { return a > b ? a : b; }
inline int64_t min(int64_t a, int64_t b) { return a < b ? a : b; }
using std::isnan;

// ---- the runtime API: device memory is host memory

enum cudaError_t {
  cudaSuccess = 0,
  cudaErrorInvalidValue = 1,
  cudaErrorMemoryAllocation = 2,
  cudaErrorInvalidConfiguration = 9,
  cudaErrorLaunchFailure = 719,
};
enum cudaMemcpyKind {
  cudaMemcpyHostToHost = 0,
  cudaMemcpyHostToDevice = 1,
  cudaMemcpyDeviceToHost = 2,
  cudaMemcpyDeviceToDevice = 3,
  cudaMemcpyDefault = 4
};
enum cudaFuncAttribute { cudaFuncAttributeMaxDynamicSharedMemorySize = 8 };
struct cudaDeviceProp {
  char name[256];
  size_t totalGlobalMem;
  int major, minor, multiProcessorCount;
};
typedef struct bs_emu_event* cudaEvent_t;
struct bs_emu_event {
  std::chrono::steady_clock::time_point t;
};

#if !defined(__x86_64__)
#error "the CUDA emulator switches stacks with x86-64 code"
#endif

// bs_emu_switch(&save, to): saves the callee-saved registers on the current stack, stores its pointer in
// save, loads the stack `to` and restores that one's registers (a fiber's first switch "returns" into
// its entry function).
extern "C" void bs_emu_switch(void** save, void* to);
__asm__(
    ".text\n.weak bs_emu_switch\n.type bs_emu_switch,@function\n"  // weak: one copy kept of each TU's
    "bs_emu_switch:\n"
    "  pushq %rbp\n  pushq %rbx\n  pushq %r12\n  pushq %r13\n  pushq %r14\n  pushq %r15\n"
    "  movq %rsp, (%rdi)\n  movq %rsi, %rsp\n"
    "  popq %r15\n  popq %r14\n  popq %r13\n  popq %r12\n  popq %rbx\n  popq %rbp\n"
    "  ret\n"
    ".size bs_emu_switch, .-bs_emu_switch\n");

namespace bs_emu {

constexpr size_t SHARED_DEFAULT = 48 * 1024;  // dynamic shared memory without cudaFuncSetAttribute
constexpr size_t SHARED_OPTIN = 227 * 1024;   // the most an sm_90 block may opt in to
constexpr size_t MEMORY = (size_t)1 << 30;    // what cudaMemGetInfo reports

inline cudaError_t& last_error() {
  static cudaError_t e = cudaSuccess;
  return e;
}
inline std::string& last_message() {
  static std::string m;
  return m;
}
inline void fail(cudaError_t e, const std::string& what) {
  if (last_error() == cudaSuccess) {
    last_error() = e;
    last_message() = what;
    std::fprintf(stderr, "cuda emulator: %s\n", what.c_str());
  }
}

// kernel (by address) -> dynamic shared memory it opted in to
inline std::vector<std::pair<const void*, size_t>>& optins() {
  static std::vector<std::pair<const void*, size_t>> v;
  return v;
}

enum State { RUNNABLE, AT_BLOCK_BARRIER, AT_WARP_BARRIER, DONE };

struct Fiber {
  void* sp;
  uint3 tid;
  State state;
};

struct Block {
  dim3 bdim, gdim;
  uint3 bidx;
  int threads = 0;
  std::vector<Fiber> fibers;
  std::vector<float> lanes;  // shuffle exchange, a slot per thread
  std::vector<char> dyn;     // dynamic shared memory
  void* scheduler;
  Fiber* cur = nullptr;
  void (*body)(void*) = nullptr;
  void* arg = nullptr;
  bool broken = false;
  int done = 0, at_block = 0;             // threads returned, threads waiting at __syncthreads
  std::vector<int> warp_done, warp_at;    // the same per warp (at a shuffle)
};

inline Block*& block() {
  static Block* b = nullptr;
  return b;
}

constexpr size_t STACK = 64 * 1024;

// The fibers' stacks, kept from launch to launch (a launch of 1024 threads would otherwise allocate and
// fault in 64 MiB each time): stack i of the current block.
inline char* stack(int i) {
  static std::vector<std::unique_ptr<char[]>> stacks;
  while ((int)stacks.size() <= i) stacks.emplace_back(new char[STACK]);
  return stacks[i].get();
}

inline void leave(Block* b, Fiber* me, int lo, int hi);
inline void open_barriers(Block* b, int warp);

// BS_CUDA_EMU_ORDER=reverse runs a block's threads last to first between barriers: a kernel that reads
// what another thread writes without a barrier between them then gives other results (on a GPU the order
// is anyone's), so ctest runs the kernel checks in both orders.
inline bool reversed() {
  static const bool r = [] {
    const char* e = std::getenv("BS_CUDA_EMU_ORDER");
    return e != nullptr && std::strcmp(e, "reverse") == 0;
  }();
  return r;
}

[[noreturn]] inline void trampoline() {
  Block* b = block();
  b->body(b->arg);
  Fiber* me = b->cur;
  const int w = (int)(me - b->fibers.data()) >> 5;
  me->state = DONE;
  b->done++;
  b->warp_done[w]++;
  open_barriers(b, w);  // a returned thread no longer holds a barrier back
  leave(b, me, 0, b->threads);
  __builtin_unreachable();  // a finished fiber is never switched to again
}

// A fresh stack whose first switch enters trampoline() as if called (stack aligned as the ABI wants).
inline void* fresh_stack(char* base, size_t size) {
  uintptr_t top = ((uintptr_t)(base + size)) & ~(uintptr_t)15;
  void** sp = (void**)(top - 8);  // trampoline's frame starts here: 8 mod 16, as after a call
  *--sp = (void*)&trampoline;     // where the switch's ret goes
  for (int i = 0; i < 6; i++) *--sp = nullptr;  // rbp rbx r12-r15
  return sp;
}

inline int linear(const uint3& t, const dim3& d) { return (int)(t.x + t.y * d.x + t.z * d.x * d.y); }

// Opens warp `warp`'s shuffle barrier and the block's __syncthreads when every live thread they concern
// waits there.
inline void open_barriers(Block* b, int warp) {
  const int lo = warp * 32, hi = std::min(b->threads, lo + 32);
  if (b->warp_at[warp] > 0 && b->warp_at[warp] + b->warp_done[warp] == hi - lo) {
    for (int i = lo; i < hi; i++)
      if (b->fibers[i].state == AT_WARP_BARRIER) b->fibers[i].state = RUNNABLE;
    b->warp_at[warp] = 0;
  }
  if (b->at_block > 0 && b->at_block + b->done == b->threads) {
    for (int i = 0; i < b->threads; i++)
      if (b->fibers[i].state == AT_BLOCK_BARRIER) b->fibers[i].state = RUNNABLE;
    b->at_block = 0;
  }
}

// Hands the core from `me` (waiting or returned) to the next runnable thread in [lo, hi) after it, or
// back to the scheduler when there is none: a thread to thread switch, so a barrier costs one switch a
// thread and no pass of the scheduler.
inline void leave(Block* b, Fiber* me, int lo, int hi) {
  const int n = hi - lo, i = (int)(me - b->fibers.data());
  for (int j = 1; j < n; j++) {
    Fiber* f = &b->fibers[lo + (i - lo + (reversed() ? n - j : j)) % n];
    if (f->state == RUNNABLE) {
      b->cur = f;
      bs_emu_switch(&me->sp, f->sp);
      return;
    }
  }
  bs_emu_switch(&me->sp, b->scheduler);
}

inline void wait(State s) {
  Block* b = block();
  Fiber* me = b->cur;
  const int i = (int)(me - b->fibers.data()), w = i >> 5;
  me->state = s;
  if (s == AT_WARP_BARRIER) b->warp_at[w]++;
  else b->at_block++;
  open_barriers(b, w);
  if (me->state == RUNNABLE) return;  // the last to arrive goes on
  if (s == AT_WARP_BARRIER) leave(b, me, w * 32, std::min(b->threads, w * 32 + 32));
  else leave(b, me, 0, b->threads);
}

// Runs one block to its end: starts each runnable thread in turn (threads hand the core on to each other
// at barriers and come back here when none of their group can run). When a pass finds nobody runnable and
// some threads still wait, a barrier waits for threads that never come: a deadlock on a GPU, an error here.
inline void run_block(Block& b) {
  for (int i = 0; i < b.threads; i++) {
    Fiber& f = b.fibers[i];
    f.tid = {(unsigned)(i % b.bdim.x), (unsigned)(i / b.bdim.x % b.bdim.y), (unsigned)(i / (b.bdim.x * b.bdim.y))};
    f.state = RUNNABLE;
    f.sp = fresh_stack(stack(i), STACK);
  }
  b.done = b.at_block = 0;
  b.warp_done.assign((b.threads + 31) / 32, 0);
  b.warp_at.assign((b.threads + 31) / 32, 0);
  for (;;) {
    bool ran = false;
    for (int n = 0; n < b.threads; n++) {
      const int i = reversed() ? b.threads - 1 - n : n;
      if (b.fibers[i].state != RUNNABLE) continue;
      b.cur = &b.fibers[i];
      bs_emu_switch(&b.scheduler, b.fibers[i].sp);
      ran = true;
    }
    if (b.done == b.threads) return;
    if (ran) continue;
    // nobody can run and some wait: a barrier that its other threads never reach
    fail(cudaErrorLaunchFailure, "deadlock in block (" + std::to_string(b.bidx.x) + "," + std::to_string(b.bidx.y) + "," +
                                     std::to_string(b.bidx.z) + "): " + std::to_string(b.at_block) +
                                     " threads wait at __syncthreads while others wait at a warp shuffle");
    b.broken = true;
    return;  // the fibers' stacks are dropped with the block; nothing of theirs runs again
  }
}

template <typename... P>
struct Launch {
  void (*kernel)(P...);
  dim3 grid, blk;
  size_t smem;

  template <typename... A>
  void operator()(A&&... a) const {
    static_assert(sizeof...(A) == sizeof...(P), "kernel argument count");
    std::tuple<P...> args(static_cast<P>(std::forward<A>(a))...);
    const uint64_t threads = (uint64_t)blk.x * blk.y * blk.z;
    if (threads == 0 || threads > 1024 || blk.z > 64 || grid.x == 0 || grid.y == 0 || grid.z == 0 || grid.y > 65535 ||
        grid.z > 65535 || grid.x > 2147483647u) {
      fail(cudaErrorInvalidConfiguration, "invalid launch configuration: grid (" + std::to_string(grid.x) + "," +
                                              std::to_string(grid.y) + "," + std::to_string(grid.z) + "), block (" +
                                              std::to_string(blk.x) + "," + std::to_string(blk.y) + "," +
                                              std::to_string(blk.z) + ")");
      return;
    }
    size_t allowed = SHARED_DEFAULT;
    for (auto& o : optins())
      if (o.first == (const void*)kernel) allowed = std::max(allowed, o.second);
    if (smem > allowed) {
      fail(cudaErrorInvalidValue, "launch asks for " + std::to_string(smem) + " bytes of dynamic shared memory, the kernel may have " +
                                      std::to_string(allowed));
      return;
    }
    Block b;
    b.bdim = blk;
    b.gdim = grid;
    b.threads = (int)threads;
    b.fibers.resize(threads);
    b.lanes.assign(threads, 0.f);
    b.dyn.assign(std::max<size_t>(smem, 1), 0);
    struct Call {
      void (*kernel)(P...);
      std::tuple<P...>* args;
    } call{kernel, &args};
    b.arg = &call;
    b.body = [](void* p) {
      Call* c = static_cast<Call*>(p);
      std::apply(c->kernel, *c->args);
    };
    Block* outer = block();
    block() = &b;
    for (unsigned z = 0; z < grid.z && !b.broken; z++)
      for (unsigned y = 0; y < grid.y && !b.broken; y++)
        for (unsigned x = 0; x < grid.x && !b.broken; x++) {
          b.bidx = {x, y, z};
          std::memset(b.dyn.data(), 0xff, b.dyn.size());  // shared memory starts undefined: not zero
          run_block(b);
        }
    block() = outer;
  }
};

template <typename... P>
Launch<P...> launch(void (*kernel)(P...), dim3 grid, dim3 blk, size_t smem = 0, int stream = 0) {
  (void)stream;
  return Launch<P...>{kernel, grid, blk, smem};
}

template <typename T>
T* dyn_shared() {
  return reinterpret_cast<T*>(block()->dyn.data());
}

inline void sync_block() { wait(AT_BLOCK_BARRIER); }

inline float shuffle_xor(unsigned mask, float v, int offset) {
  Block* b = block();
  const int me = linear(b->cur->tid, b->bdim), base = me & ~31;
  if (mask != 0xffffffffu || base + 32 > b->threads) {
    fail(cudaErrorLaunchFailure, "a warp shuffle needs a full mask and a whole warp of 32 threads");
    return v;
  }
  b->lanes[me] = v;
  wait(AT_WARP_BARRIER);
  const int from = base + ((me - base) ^ offset);
  if (b->fibers[from].state == DONE) fail(cudaErrorLaunchFailure, "a warp shuffle reads a lane that has returned");
  const float r = b->lanes[from];
  wait(AT_WARP_BARRIER);  // nobody writes its slot again before every lane has read
  return r;
}

}  // namespace bs_emu

#define threadIdx (bs_emu::block()->cur->tid)
#define blockIdx (bs_emu::block()->bidx)
#define blockDim (bs_emu::block()->bdim)
#define gridDim (bs_emu::block()->gdim)
#define BS_EMU_LAUNCH(kernel, ...) bs_emu::launch(kernel, __VA_ARGS__)

inline void __syncthreads() { bs_emu::sync_block(); }
inline float __shfl_xor_sync(unsigned mask, float v, int offset) { return bs_emu::shuffle_xor(mask, v, offset); }
inline unsigned long long atomicCAS(unsigned long long* a, unsigned long long compare, unsigned long long val) {
  unsigned long long old = *a;  // the block's threads run one at a time
  if (old == compare) *a = val;
  return old;
}

inline const char* cudaGetErrorString(cudaError_t e) {
  return e == cudaSuccess ? "no error" : bs_emu::last_message().empty() ? "emulated error" : bs_emu::last_message().c_str();
}
inline const char* cudaGetErrorName(cudaError_t e) {
  switch (e) {
    case cudaSuccess: return "cudaSuccess";
    case cudaErrorInvalidValue: return "cudaErrorInvalidValue";
    case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
    case cudaErrorInvalidConfiguration: return "cudaErrorInvalidConfiguration";
    default: return "cudaErrorLaunchFailure";
  }
}
inline cudaError_t cudaGetLastError() {
  cudaError_t e = bs_emu::last_error();
  bs_emu::last_error() = cudaSuccess;
  return e;
}
inline cudaError_t cudaDeviceSynchronize() { return bs_emu::last_error(); }
inline cudaError_t cudaGetDeviceCount(int* n) {
  *n = 1;
  return cudaSuccess;
}
inline cudaError_t cudaSetDevice(int d) { return d == 0 ? cudaSuccess : cudaErrorInvalidValue; }
inline cudaError_t cudaGetDeviceProperties(cudaDeviceProp* p, int d) {
  if (d != 0) return cudaErrorInvalidValue;
  std::memset(p, 0, sizeof *p);
  std::snprintf(p->name, sizeof p->name, "blockserve CUDA emulator (CPU)");
  p->totalGlobalMem = bs_emu::MEMORY;
  p->major = 8;
  p->minor = 0;
  p->multiProcessorCount = 1;
  return cudaSuccess;
}
inline cudaError_t cudaMemGetInfo(size_t* f, size_t* t) {
  *f = bs_emu::MEMORY;
  *t = bs_emu::MEMORY;
  return cudaSuccess;
}
inline cudaError_t cudaMalloc(void** p, size_t bytes) {
  *p = std::aligned_alloc(256, (std::max<size_t>(bytes, 1) + 255) / 256 * 256);
  return *p ? cudaSuccess : cudaErrorMemoryAllocation;
}
inline cudaError_t cudaFree(void* p) {
  std::free(p);
  return cudaSuccess;
}
inline cudaError_t cudaMemset(void* p, int v, size_t bytes) {
  std::memset(p, v, bytes);
  return cudaSuccess;
}
inline cudaError_t cudaMemcpy(void* d, const void* s, size_t bytes, cudaMemcpyKind) {
  if (bytes) std::memmove(d, s, bytes);
  return bs_emu::last_error();  // a synchronising copy reports an earlier launch's failure
}
template <typename T>
cudaError_t cudaMemcpyToSymbol(T& symbol, const void* src, size_t bytes) {
  std::memcpy(&symbol, src, bytes);
  return cudaSuccess;
}
template <typename T>
cudaError_t cudaMemcpyFromSymbol(void* dst, const T& symbol, size_t bytes) {
  std::memcpy(dst, &symbol, bytes);
  return bs_emu::last_error();
}
template <typename... P>
cudaError_t cudaFuncSetAttribute(void (*kernel)(P...), cudaFuncAttribute attr, int value) {
  if (attr != cudaFuncAttributeMaxDynamicSharedMemorySize || value < 0 || (size_t)value > bs_emu::SHARED_OPTIN)
    return cudaErrorInvalidValue;
  bs_emu::optins().push_back({(const void*)kernel, (size_t)value});
  return cudaSuccess;
}
inline cudaError_t cudaEventCreate(cudaEvent_t* e) {
  *e = new bs_emu_event();
  return cudaSuccess;
}
inline cudaError_t cudaEventDestroy(cudaEvent_t e) {
  delete e;
  return cudaSuccess;
}
inline cudaError_t cudaEventRecord(cudaEvent_t e, int = 0) {
  e->t = std::chrono::steady_clock::now();
  return cudaSuccess;
}
inline cudaError_t cudaEventSynchronize(cudaEvent_t) { return cudaSuccess; }
inline cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t a, cudaEvent_t b) {
  *ms = std::chrono::duration<float, std::milli>(b->t - a->t).count();
  return cudaSuccess;
}

// ---- tensor cores (wmma): every lane of the warp holds and computes the whole 16 x 16 tile; products of
// BF16 values are exact in FP32 and the sums run in k order (a GPU's order is unspecified).
namespace nvcuda {
namespace wmma {
struct matrix_a {};
struct matrix_b {};
struct accumulator {};
struct row_major {};
struct col_major {};
enum layout_t { mem_row_major, mem_col_major };
template <typename Use, int M, int N, int K, typename T, typename Layout = void>
struct fragment {
  float v[16 * 16];
};
template <typename F>
inline void fill_fragment(F& f, float x) {
  for (float& e : f.v) e = x;
}
inline float wmma_value(float x) { return x; }
inline float wmma_value(__nv_bfloat16 x) { return __bfloat162float(x); }
template <typename T>
inline void load_matrix_sync(fragment<matrix_a, 16, 16, 16, T, row_major>& a, const T* p, unsigned ld) {
  for (int r = 0; r < 16; r++)
    for (int c = 0; c < 16; c++) a.v[r * 16 + c] = wmma_value(p[(size_t)r * ld + c]);
}
template <typename T>
inline void load_matrix_sync(fragment<matrix_b, 16, 16, 16, T, col_major>& b, const T* p, unsigned ld) {
  for (int kk = 0; kk < 16; kk++)
    for (int c = 0; c < 16; c++) b.v[kk * 16 + c] = wmma_value(p[(size_t)c * ld + kk]);
}
template <typename A, typename B, typename C>
inline void mma_sync(C& d, const A& a, const B& b, const C& c) {
  float out[16 * 16];
  for (int i = 0; i < 16; i++)
    for (int j = 0; j < 16; j++) {
      float s = c.v[i * 16 + j];
      for (int kk = 0; kk < 16; kk++) s += a.v[i * 16 + kk] * b.v[kk * 16 + j];
      out[i * 16 + j] = s;
    }
  std::memcpy(d.v, out, sizeof out);
}
template <typename C>
inline void store_matrix_sync(float* p, const C& c, unsigned ld, layout_t layout) {
  for (int i = 0; i < 16; i++)
    for (int j = 0; j < 16; j++) {
      if (layout == mem_row_major) p[(size_t)i * ld + j] = c.v[i * 16 + j];
      else p[(size_t)j * ld + i] = c.v[i * 16 + j];
    }
}
}  // namespace wmma
}  // namespace nvcuda

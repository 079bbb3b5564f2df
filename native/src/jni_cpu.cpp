// JNI of libblockserve_cpu: the kernel bridge (jni_kernels.inc) bound to dev.blockserve.backend.CpuKernels,
// plus what only the CPU library offers (instruction set level, threads, file mapping, BF16 rounding, probes)
// as static natives.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <string>

#include "cpu_kernels.h"

#define BS_IMPL bs
#define BS_JNI_CLASS "dev/blockserve/backend/CpuKernels"
#include "jni_kernels.inc"

#define BS_FN(name) JNICALL Java_dev_blockserve_backend_CpuKernels_##name

extern "C" {

JNIEXPORT void BS_FN(setThreads)(JNIEnv*, jclass, jint n) { bs::set_threads(n); }
JNIEXPORT jint BS_FN(threads)(JNIEnv*, jclass) { return bs::threads(); }
JNIEXPORT jint BS_FN(teamThreads)(JNIEnv*, jclass) { return bs::team_threads(); }
JNIEXPORT jboolean BS_FN(setBf16Activations)(JNIEnv*, jclass, jboolean on) { return bs::set_bf16_activations(on) != 0; }

// Maps a whole file read-only; returns its address (the length is the file's size, known to Java).
JNIEXPORT jlong BS_FN(mapFile)(JNIEnv* env, jclass, jstring path, jlong length) {
  const char* p = env->GetStringUTFChars(path, nullptr);
  if (p == nullptr) return 0;
  std::string name(p);
  env->ReleaseStringUTFChars(path, p);
  int fd = ::open(name.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    std::string m = "mmap: cannot open " + name + ": " + std::strerror(errno);
    throw_backend(env, m.c_str());
    return 0;
  }
  void* a = ::mmap(nullptr, (size_t)length, PROT_READ, MAP_PRIVATE, fd, 0);
  int err = errno;
  ::close(fd);
  if (a == MAP_FAILED) {
    std::string m = "mmap: cannot map " + name + ": " + std::strerror(err);
    throw_backend(env, m.c_str());
    return 0;
  }
  return (jlong)(intptr_t)a;
}

JNIEXPORT void BS_FN(unmap)(JNIEnv*, jclass, jlong addr, jlong length) { ::munmap(ptr<void>(addr), (size_t)length); }

// Asks for the mapping's pages to come in 2 MiB folios where the file system allocates them (advice only;
// pages already in the page cache keep their size). Returns whether the kernel took the advice.
JNIEXPORT jboolean BS_FN(adviseHugePages)(JNIEnv*, jclass, jlong addr, jlong length) {
  return ::madvise(ptr<void>(addr), (size_t)length, MADV_HUGEPAGE) == 0;
}

// Faults every page of a read-only mapping in now (so that the caller can see how it was mapped).
JNIEXPORT void BS_FN(populate)(JNIEnv*, jclass, jlong addr, jlong length) {
#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22  // Linux 5.14
#endif
  // Any failure but an unknown advice (EINVAL: before 5.14) leaves the pages to fault in on first use;
  // touching them here could only raise the same error as a signal.
  if (::madvise(ptr<void>(addr), (size_t)length, MADV_POPULATE_READ) == 0 || errno != EINVAL) return;
  const volatile char* p = ptr<const volatile char>(addr);  // older kernels: touch a byte a page
  const long page = ::sysconf(_SC_PAGESIZE);
  char sink = 0;
  for (jlong off = 0; off < length; off += page) sink ^= p[off];
  (void)sink;
}

// Copies a file mapping's length bytes into fresh anonymous memory that starts on a 2 MiB boundary, is
// advised to huge pages before its first touch and is read-only afterwards. Each 64 MiB of the source is
// released from this process once copied (its page-cache pages become reclaimable; reading them again would
// fault them back in), so the copy never holds the weights twice. Returns the copy's address; its mapped
// length is length rounded up to 2 MiB (unmap that).
JNIEXPORT jlong BS_FN(copyToHugePages)(JNIEnv* env, jclass, jlong src, jlong length) {
  const size_t huge = (size_t)2 << 20;
  const size_t n = ((size_t)length + huge - 1) & ~(huge - 1);
  void* raw = ::mmap(nullptr, n + huge, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) {
    std::string m = "cannot allocate " + std::to_string(n >> 20) + " MiB for the weights in huge pages: " +
                    std::strerror(errno);
    throw_backend(env, m.c_str());
    return 0;
  }
  // Trim the slack so that exactly [b, b + n) stays mapped.
  char* b = reinterpret_cast<char*>(((uintptr_t)raw + huge - 1) & ~(uintptr_t)(huge - 1));
  if (b > raw) ::munmap(raw, (size_t)(b - static_cast<char*>(raw)));
  char* end = static_cast<char*>(raw) + n + huge;
  if (end > b + n) ::munmap(b + n, (size_t)(end - (b + n)));
  ::madvise(b, n, MADV_HUGEPAGE);
  const size_t chunk = (size_t)64 << 20;  // a multiple of the page size: the released ranges stay aligned
  char* from = ptr<char>(src);
  for (size_t off = 0; off < (size_t)length; off += chunk) {
    const size_t len = std::min(chunk, (size_t)length - off);
    std::memcpy(b + off, from + off, len);
    ::madvise(from + off, len, MADV_DONTNEED);
  }
  ::mprotect(b, n, PROT_READ);
  return (jlong)(intptr_t)b;
}

// Drops the file's clean, unmapped pages from the page cache (after the weights were copied out of them).
JNIEXPORT jboolean BS_FN(dropPageCache)(JNIEnv* env, jclass, jstring path) {
  const char* p = env->GetStringUTFChars(path, nullptr);
  if (p == nullptr) return JNI_FALSE;
  int fd = ::open(p, O_RDONLY | O_CLOEXEC);
  env->ReleaseStringUTFChars(path, p);
  if (fd < 0) return JNI_FALSE;
  int r = ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
  ::close(fd);
  return r == 0;
}

// Returns null on success, else why the level cannot be used.
JNIEXPORT jstring BS_FN(selectLevel)(JNIEnv* env, jclass, jstring dir, jstring level) {
  const char* d = env->GetStringUTFChars(dir, nullptr);
  if (d == nullptr) return nullptr;
  const char* l = env->GetStringUTFChars(level, nullptr);
  if (l == nullptr) {
    env->ReleaseStringUTFChars(dir, d);
    return nullptr;
  }
  const char* e = bs::select_level(d, l);
  env->ReleaseStringUTFChars(level, l);
  env->ReleaseStringUTFChars(dir, d);
  return e == nullptr ? nullptr : env->NewStringUTF(e);
}

JNIEXPORT jstring BS_FN(level)(JNIEnv* env, jclass) { return env->NewStringUTF(bs::level()); }
JNIEXPORT jstring BS_FN(supportedLevels)(JNIEnv* env, jclass) { return env->NewStringUTF(bs::supported_levels()); }

JNIEXPORT void BS_FN(roundToBf16)(JNIEnv* env, jclass, jlong out, jlong in, jlong n) {
  check(env, bs::round_to_bf16(ptr<uint16_t>(out), ptr<const float>(in), n));
}

JNIEXPORT jdouble BS_FN(peakGflops)(JNIEnv*, jclass, jboolean bf16, jdouble seconds) {
  return bs::peak_gflops(bf16 ? 1 : 0, seconds);
}

// out[outOff + i] = exp((in[inOff + i] - shift) * scale) for i < n (out may be null); returns the sum.
// Both arrays are held critical for the pass alone (tens of microseconds for a vocabulary row).
JNIEXPORT jdouble BS_FN(expSum)(JNIEnv* env, jclass, jfloatArray in, jint in_off, jfloatArray out, jint out_off, jint n,
                                jfloat shift, jfloat scale) {
  float* src = static_cast<float*>(env->GetPrimitiveArrayCritical(in, nullptr));
  if (src == nullptr) return 0;  // OutOfMemoryError pending
  float* dst = nullptr;
  if (out != nullptr) {
    dst = static_cast<float*>(env->GetPrimitiveArrayCritical(out, nullptr));
    if (dst == nullptr) {
      env->ReleasePrimitiveArrayCritical(in, src, JNI_ABORT);
      return 0;
    }
  }
  const double sum = bs::exp_sum(dst == nullptr ? nullptr : dst + out_off, src + in_off, n, shift, scale);
  if (dst != nullptr) env->ReleasePrimitiveArrayCritical(out, dst, 0);
  env->ReleasePrimitiveArrayCritical(in, src, JNI_ABORT);
  return sum;
}

// BF16 matrices at 12 bits a weight (cpu_table.h): the bytes one takes (0: not here), packing, and the
// one-row product. Java checks every size before it calls.
JNIEXPORT jlong BS_FN(packedBf16Bytes)(JNIEnv*, jclass, jlong k, jlong m) { return bs::packed_bf16_bytes(k, m); }

JNIEXPORT void BS_FN(packBf16)(JNIEnv* env, jclass, jlong dst, jlong w, jlong k, jlong m) {
  check(env, bs::pack_bf16(ptr<void>(dst), ptr<const uint16_t>(w), k, m));
}

JNIEXPORT void BS_FN(matmulPackedBf16)(JNIEnv* env, jclass, jlong out, jlong x, jlong packed, jlong w, jlong k, jlong m) {
  check(env, bs::matmul_packed_bf16(ptr<float>(out), ptr<const float>(x), ptr<const void>(packed), ptr<const uint16_t>(w), k, m));
}

// Two or three packed matrices sharing one row of x (out3 0: two), as one op.
JNIEXPORT void BS_FN(matmulPackedBf16N)(JNIEnv* env, jclass, jlong x, jlong k, jlong out1, jlong p1, jlong w1, jlong m1,
                                        jlong out2, jlong p2, jlong w2, jlong m2, jlong out3, jlong p3, jlong w3, jlong m3) {
  float* outs[3] = {ptr<float>(out1), ptr<float>(out2), ptr<float>(out3)};
  const void* packed[3] = {ptr<const void>(p1), ptr<const void>(p2), ptr<const void>(p3)};
  const uint16_t* ws[3] = {ptr<const uint16_t>(w1), ptr<const uint16_t>(w2), ptr<const uint16_t>(w3)};
  const int64_t ms[3] = {m1, m2, m3};
  check(env, bs::matmul_packed_bf16_n(ptr<const float>(x), k, out3 != 0 ? 3 : 2, outs, packed, ws, ms));
}

JNIEXPORT jdouble BS_FN(streamRead)(JNIEnv*, jclass, jlong p, jlong count) {
  return bs::stream_read(ptr<const float>(p), count);
}

}  // extern "C"

// JNI of libblockserve_cpu: the kernel bridge (jni_kernels.inc) bound to dev.blockserve.backend.CpuKernels,
// plus what only the CPU library offers (instruction set level, threads, file mapping, BF16 rounding, probes)
// as static natives.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
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

JNIEXPORT jdouble BS_FN(streamRead)(JNIEnv*, jclass, jlong p, jlong count) {
  return bs::stream_read(ptr<const float>(p), count);
}

}  // extern "C"

// JNI of libblockserve_cpu: the kernel bridge (jni_kernels.inc) bound to dev.blockserve.backend.CpuKernels,
// plus what only the CPU library offers (threads, file mapping, a bandwidth probe) as static natives.
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

JNIEXPORT jdouble BS_FN(streamRead)(JNIEnv*, jclass, jlong p, jlong count) {
  return bs::stream_read(ptr<const float>(p), count);
}

}  // extern "C"

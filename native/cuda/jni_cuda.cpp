// JNI of libblockserve_cuda: the kernel bridge (../src/jni_kernels.inc) bound to
// dev.blockserve.backend.CudaKernels, plus the device queries only a GPU has, as static natives.
// Every CUDA failure and every device-side range error becomes a BackendException naming the op.
#include <string>

#include "cuda_backend.h"

#define BS_IMPL bscuda
#define BS_JNI_CLASS "dev/blockserve/backend/CudaKernels"
#include "jni_kernels.inc"

#define BS_FN(name) JNICALL Java_dev_blockserve_backend_CudaKernels_##name

extern "C" {

JNIEXPORT jint BS_FN(deviceCount)(JNIEnv*, jclass) {
  int n = 0;
  if (bscuda::device_count(&n) != nullptr) return 0;  // no driver or no device: zero devices, not an error
  return n;
}

// Returns "name|cc_major.cc_minor|free|total".
JNIEXPORT jstring BS_FN(deviceInfo)(JNIEnv* env, jclass, jint dev) {
  char name[256];
  size_t fb = 0, tb = 0;
  int ma = 0, mi = 0;
  if (check(env, bscuda::device_info(dev, name, sizeof name, &fb, &tb, &ma, &mi))) return nullptr;
  std::string s = std::string(name) + "|" + std::to_string(ma) + "." + std::to_string(mi) + "|" + std::to_string(fb) + "|" +
                  std::to_string(tb);
  return env->NewStringUTF(s.c_str());
}

JNIEXPORT void BS_FN(setDevice)(JNIEnv* env, jclass, jint dev) { check(env, bscuda::set_device(dev)); }

JNIEXPORT jlong BS_FN(freeMemory)(JNIEnv* env, jclass) {
  size_t f = 0, t = 0;
  if (check(env, bscuda::mem_info(&f, &t))) return 0;
  return (jlong)f;
}

JNIEXPORT void BS_FN(setBf16Matmul)(JNIEnv*, jclass, jboolean on) { bscuda::set_bf16_matmul(on == JNI_TRUE); }

JNIEXPORT jstring BS_FN(matmulImpl)(JNIEnv* env, jclass) { return env->NewStringUTF(bscuda::matmul_impl()); }

JNIEXPORT void BS_FN(releaseScratch)(JNIEnv* env, jclass) { check(env, bscuda::release_scratch()); }

}  // extern "C"

// JNI entry points of libblockserve_cuda, bound to dev.blockserve.backend.CudaNative.
#include <string>

#include "cuda_backend.h"
#include "jni_util.h"

using bsjni::check;
using bsjni::ptr;

#define BS_FN(name) JNICALL Java_dev_blockserve_backend_CudaNative_##name

extern "C" {

JNIEXPORT jint BS_FN(deviceCount)(JNIEnv* env, jclass) {
  int n = 0;
  if (check(env, bscuda::device_count(&n))) return 0;
  return n;
}

// Returns "name|cc_major.cc_minor|free|total".
JNIEXPORT jstring BS_FN(deviceInfo)(JNIEnv* env, jclass, jint dev) {
  char name[256];
  size_t fb = 0, tb = 0;
  int ma = 0, mi = 0;
  if (check(env, bscuda::device_info(dev, name, sizeof name, &fb, &tb, &ma, &mi))) return nullptr;
  std::string s = std::string(name) + "|" + std::to_string(ma) + "." + std::to_string(mi) + "|" + std::to_string(fb) + "|" + std::to_string(tb);
  return env->NewStringUTF(s.c_str());
}

JNIEXPORT jlong BS_FN(alloc)(JNIEnv* env, jclass, jlong bytes) {
  void* p = nullptr;
  if (check(env, bscuda::alloc(&p, (size_t)bytes))) return 0;
  return (jlong)(intptr_t)p;
}

JNIEXPORT void BS_FN(free)(JNIEnv* env, jclass, jlong p) { check(env, bscuda::free(ptr<void>(p))); }

JNIEXPORT void BS_FN(copy)(JNIEnv* env, jclass, jlong dst, jlong src, jlong bytes, jint kind) {
  check(env, bscuda::copy(ptr<void>(dst), ptr<const void>(src), (size_t)bytes, kind));
}

}  // extern "C"

// Shared JNI helpers: turn a failure into a Java exception instead of a crash.
#pragma once
#include <jni.h>

namespace bsjni {

inline void throw_backend(JNIEnv* env, const char* msg) {
  jclass c = env->FindClass("dev/blockserve/backend/BackendException");
  if (c == nullptr) return;  // NoClassDefFoundError already pending
  env->ThrowNew(c, msg);
}

// Throws when msg is non-null (a kernel's rejection); returns whether it threw.
inline bool check(JNIEnv* env, const char* msg) {
  if (msg == nullptr) return false;
  throw_backend(env, msg);
  return true;
}

template <typename T>
inline T* ptr(jlong a) { return reinterpret_cast<T*>(static_cast<intptr_t>(a)); }

}  // namespace bsjni

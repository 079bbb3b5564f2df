// JNI entry points of libblockserve_cpu, bound to dev.blockserve.backend.CpuNative.
// Buffers cross as raw addresses (jlong) of native memory; Java checks bounds before calling.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string>

#include "bs_kernels.h"
#include "jni_util.h"

using bsjni::check;
using bsjni::ptr;
using bsjni::throw_backend;

#define BS_FN(name) JNICALL Java_dev_blockserve_backend_CpuNative_##name

extern "C" {

JNIEXPORT void BS_FN(setThreads)(JNIEnv*, jclass, jint n) { bs::set_threads(n); }
JNIEXPORT jint BS_FN(threads)(JNIEnv*, jclass) { return bs::threads(); }

JNIEXPORT jlong BS_FN(alloc)(JNIEnv* env, jclass, jlong bytes) {
  if (bytes <= 0) {
    throw_backend(env, "alloc: size must be positive");
    return 0;
  }
  const size_t rounded = ((size_t)bytes + 63) & ~(size_t)63;
  void* p = std::aligned_alloc(64, rounded);
  if (p == nullptr) {
    std::string m = "alloc: out of host memory allocating " + std::to_string(bytes) + " bytes";
    throw_backend(env, m.c_str());
    return 0;
  }
  std::memset(p, 0, rounded);
  return (jlong)(intptr_t)p;
}

JNIEXPORT void BS_FN(free)(JNIEnv*, jclass, jlong p) { std::free(ptr<void>(p)); }

// Maps a whole file read-only; returns its address (the length is the file's size, known to Java).
JNIEXPORT jlong BS_FN(mapFile)(JNIEnv* env, jclass, jstring path, jlong length) {
  const char* p = env->GetStringUTFChars(path, nullptr);
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

JNIEXPORT jlong BS_FN(addressOf)(JNIEnv* env, jclass, jobject directBuffer) {
  void* a = env->GetDirectBufferAddress(directBuffer);
  if (a == nullptr) throw_backend(env, "addressOf: not a direct buffer");
  return (jlong)(intptr_t)a;
}

JNIEXPORT void BS_FN(copy)(JNIEnv*, jclass, jlong dst, jlong src, jlong bytes) {
  std::memcpy(ptr<void>(dst), ptr<void>(src), (size_t)bytes);
}

JNIEXPORT void BS_FN(writeInts)(JNIEnv* env, jclass, jlong dst, jintArray src, jint off, jint n) {
  env->GetIntArrayRegion(src, off, n, ptr<jint>(dst));
}
JNIEXPORT void BS_FN(writeFloats)(JNIEnv* env, jclass, jlong dst, jfloatArray src, jint off, jint n) {
  env->GetFloatArrayRegion(src, off, n, ptr<jfloat>(dst));
}
JNIEXPORT void BS_FN(readFloats)(JNIEnv* env, jclass, jlong src, jfloatArray dst, jint off, jint n) {
  env->SetFloatArrayRegion(dst, off, n, ptr<jfloat>(src));
}
JNIEXPORT void BS_FN(readInts)(JNIEnv* env, jclass, jlong src, jintArray dst, jint off, jint n) {
  env->SetIntArrayRegion(dst, off, n, ptr<jint>(src));
}

JNIEXPORT void BS_FN(embedding)(JNIEnv* env, jclass, jlong out, jlong table, jlong ids, jlong n, jlong dim, jlong rows) {
  check(env, bs::embedding(ptr<float>(out), ptr<const float>(table), ptr<const int32_t>(ids), n, dim, rows));
}

JNIEXPORT void BS_FN(rmsnorm)(JNIEnv*, jclass, jlong out, jlong x, jlong w, jlong n, jlong dim, jfloat eps) {
  bs::rmsnorm(ptr<float>(out), ptr<const float>(x), ptr<const float>(w), n, dim, eps);
}

JNIEXPORT void BS_FN(matmul)(JNIEnv*, jclass, jlong out, jlong x, jlong w, jlong n, jlong k, jlong m) {
  bs::matmul(ptr<float>(out), ptr<const float>(x), ptr<const float>(w), n, k, m);
}

JNIEXPORT void BS_FN(rope)(JNIEnv* env, jclass, jlong x, jlong pos, jlong cosSin, jlong n, jlong heads, jlong headDim, jlong maxPos) {
  check(env, bs::rope(ptr<float>(x), ptr<const int32_t>(pos), ptr<const float>(cosSin), n, heads, headDim, maxPos));
}

JNIEXPORT void BS_FN(siluMul)(JNIEnv*, jclass, jlong out, jlong gate, jlong up, jlong count) {
  bs::silu_mul(ptr<float>(out), ptr<const float>(gate), ptr<const float>(up), count);
}

JNIEXPORT void BS_FN(add)(JNIEnv*, jclass, jlong x, jlong y, jlong count) {
  bs::add(ptr<float>(x), ptr<const float>(y), count);
}

JNIEXPORT void BS_FN(kvWrite)(JNIEnv* env, jclass, jlong kc, jlong vc, jlong k, jlong v, jlong slots, jlong n, jlong kvHeads, jlong headDim, jlong numSlots) {
  check(env, bs::kv_write(ptr<float>(kc), ptr<float>(vc), ptr<const float>(k), ptr<const float>(v), ptr<const int32_t>(slots), n, kvHeads, headDim, numSlots));
}

JNIEXPORT void BS_FN(pagedAttention)(JNIEnv* env, jclass, jlong out, jlong q, jlong kc, jlong vc, jlong blockTables, jlong maxBlocksPerSeq,
                                     jlong seqLens, jlong queryStart, jlong numSeqs, jlong numTokens, jlong numHeads, jlong numKvHeads, jlong headDim,
                                     jlong blockSize, jlong numBlocks, jfloat scale) {
  try {
    check(env, bs::paged_attention(ptr<float>(out), ptr<const float>(q), ptr<const float>(kc), ptr<const float>(vc),
                                   ptr<const int32_t>(blockTables), maxBlocksPerSeq, ptr<const int32_t>(seqLens),
                                   ptr<const int32_t>(queryStart), numSeqs, numTokens, numHeads, numKvHeads, headDim, blockSize, numBlocks, scale));
  } catch (const std::bad_alloc&) {
    throw_backend(env, "paged_attention: out of host memory for scratch");
  }
}

JNIEXPORT void BS_FN(blockCopy)(JNIEnv* env, jclass, jlong kc, jlong vc, jlong src, jlong dst, jlong n, jlong blockElems, jlong numBlocks) {
  check(env, bs::block_copy(ptr<float>(kc), ptr<float>(vc), ptr<const int32_t>(src), ptr<const int32_t>(dst), n, blockElems, numBlocks));
}

JNIEXPORT void BS_FN(argmax)(JNIEnv*, jclass, jlong out, jlong logits, jlong n, jlong vocab) {
  bs::argmax(ptr<int32_t>(out), ptr<const float>(logits), n, vocab);
}

JNIEXPORT void BS_FN(f16ToF32)(JNIEnv*, jclass, jlong out, jlong in, jlong n) { bs::f16_to_f32(ptr<float>(out), ptr<const uint16_t>(in), n); }
JNIEXPORT void BS_FN(bf16ToF32)(JNIEnv*, jclass, jlong out, jlong in, jlong n) { bs::bf16_to_f32(ptr<float>(out), ptr<const uint16_t>(in), n); }
JNIEXPORT jdouble BS_FN(streamRead)(JNIEnv*, jclass, jlong p, jlong count) { return bs::stream_read(ptr<const float>(p), count); }

}  // extern "C"

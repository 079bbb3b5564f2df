// JNI entry points of libblockserve_cuda, bound to dev.blockserve.backend.CudaNative. Device memory
// crosses as raw addresses; every CUDA failure and every device-side range error becomes a
// BackendException naming the op.
#include <string>
#include <vector>

#include "cuda_backend.h"
#include "jni_util.h"

using bsjni::check;
using bsjni::ptr;
using bsjni::throw_backend;

#define BS_FN(name) JNICALL Java_dev_blockserve_backend_CudaNative_##name

extern "C" {

JNIEXPORT jint BS_FN(deviceCount)(JNIEnv* env, jclass) {
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

JNIEXPORT jlong BS_FN(alloc)(JNIEnv* env, jclass, jlong bytes) {
  void* p = nullptr;
  if (check(env, bscuda::alloc(&p, (size_t)bytes))) return 0;
  return (jlong)(intptr_t)p;
}

JNIEXPORT void BS_FN(free)(JNIEnv* env, jclass, jlong p) { check(env, bscuda::free(ptr<void>(p))); }

JNIEXPORT void BS_FN(copy)(JNIEnv* env, jclass, jlong dst, jlong src, jlong bytes, jint kind) {
  check(env, bscuda::copy(ptr<void>(dst), ptr<const void>(src), (size_t)bytes, kind));
}

JNIEXPORT void BS_FN(writeInts)(JNIEnv* env, jclass, jlong dst, jintArray src, jint n) {
  jint* h = (jint*)env->GetPrimitiveArrayCritical(src, nullptr);
  const char* e = bscuda::copy(ptr<void>(dst), h, (size_t)n * 4, 1);
  env->ReleasePrimitiveArrayCritical(src, h, JNI_ABORT);
  check(env, e);
}

JNIEXPORT void BS_FN(writeFloats)(JNIEnv* env, jclass, jlong dst, jfloatArray src, jint n) {
  jfloat* h = (jfloat*)env->GetPrimitiveArrayCritical(src, nullptr);
  const char* e = bscuda::copy(ptr<void>(dst), h, (size_t)n * 4, 1);
  env->ReleasePrimitiveArrayCritical(src, h, JNI_ABORT);
  check(env, e);
}

// Device-to-host reads synchronise, so they also report a range error any earlier kernel recorded.
JNIEXPORT void BS_FN(readFloats)(JNIEnv* env, jclass, jlong src, jfloatArray dst, jint off, jint n) {
  std::vector<float> h((size_t)n);
  if (check(env, bscuda::copy(h.data(), ptr<const void>(src), (size_t)n * 4, 2))) return;
  if (check(env, bscuda::check_error())) return;
  env->SetFloatArrayRegion(dst, off, n, h.data());
}

JNIEXPORT void BS_FN(readInts)(JNIEnv* env, jclass, jlong src, jintArray dst, jint n) {
  std::vector<jint> h((size_t)n);
  if (check(env, bscuda::copy(h.data(), ptr<const void>(src), (size_t)n * 4, 2))) return;
  if (check(env, bscuda::check_error())) return;
  env->SetIntArrayRegion(dst, 0, n, h.data());
}

JNIEXPORT void BS_FN(checkError)(JNIEnv* env, jclass) {
  if (check(env, bscuda::synchronize())) return;
  check(env, bscuda::check_error());
}

JNIEXPORT void BS_FN(f32ToBf16)(JNIEnv* env, jclass, jlong out, jlong in, jlong n) {
  check(env, bscuda::f32_to_bf16(ptr<uint16_t>(out), ptr<const float>(in), n));
}
JNIEXPORT void BS_FN(bf16ToF32)(JNIEnv* env, jclass, jlong out, jlong in, jlong n) {
  check(env, bscuda::bf16_to_f32(ptr<float>(out), ptr<const uint16_t>(in), n));
}
JNIEXPORT void BS_FN(f16ToF32)(JNIEnv* env, jclass, jlong out, jlong in, jlong n) {
  check(env, bscuda::f16_to_f32(ptr<float>(out), ptr<const uint16_t>(in), n));
}

JNIEXPORT void BS_FN(embedding)(JNIEnv* env, jclass, jlong out, jlong table, jlong ids, jlong n, jlong dim, jlong rows) {
  check(env, bscuda::embedding(ptr<float>(out), ptr<const float>(table), ptr<const int32_t>(ids), n, dim, rows));
}

JNIEXPORT void BS_FN(rmsnorm)(JNIEnv* env, jclass, jlong out, jlong x, jlong w, jlong n, jlong dim, jfloat eps) {
  check(env, bscuda::rmsnorm(ptr<float>(out), ptr<const float>(x), ptr<const float>(w), n, dim, eps));
}

JNIEXPORT void BS_FN(matmul)(JNIEnv* env, jclass, jlong out, jlong x, jlong xBf16, jlong w, jlong n, jlong k, jlong m) {
  check(env, bscuda::matmul_bf16(ptr<float>(out), ptr<const float>(x), ptr<uint16_t>(xBf16), ptr<const uint16_t>(w), n, k, m));
}

JNIEXPORT void BS_FN(matmulF32)(JNIEnv* env, jclass, jlong out, jlong x, jlong w, jlong n, jlong k, jlong m) {
  check(env, bscuda::matmul_f32(ptr<float>(out), ptr<const float>(x), ptr<const float>(w), n, k, m));
}

JNIEXPORT jstring BS_FN(matmulImpl)(JNIEnv* env, jclass) { return env->NewStringUTF(bscuda::matmul_impl()); }

JNIEXPORT void BS_FN(rope)(JNIEnv* env, jclass, jlong x, jlong pos, jlong cs, jlong n, jlong heads, jlong hd, jlong maxPos) {
  check(env, bscuda::rope(ptr<float>(x), ptr<const int32_t>(pos), ptr<const float>(cs), n, heads, hd, maxPos));
}

JNIEXPORT void BS_FN(siluMul)(JNIEnv* env, jclass, jlong out, jlong g, jlong u, jlong count) {
  check(env, bscuda::silu_mul(ptr<float>(out), ptr<const float>(g), ptr<const float>(u), count));
}

JNIEXPORT void BS_FN(add)(JNIEnv* env, jclass, jlong x, jlong y, jlong count) {
  check(env, bscuda::add(ptr<float>(x), ptr<const float>(y), count));
}

JNIEXPORT void BS_FN(kvWrite)(JNIEnv* env, jclass, jlong kc, jlong vc, jlong k, jlong v, jlong slots, jlong n, jlong kvh,
                              jlong hd, jlong numSlots) {
  check(env, bscuda::kv_write(ptr<float>(kc), ptr<float>(vc), ptr<const float>(k), ptr<const float>(v),
                              ptr<const int32_t>(slots), n, kvh, hd, numSlots));
}

JNIEXPORT jlong BS_FN(attentionScratchFloats)(JNIEnv*, jclass, jlong seqs, jlong heads, jlong hd, jlong maxContext) {
  return bscuda::attention_scratch_floats(seqs, heads, hd, maxContext);
}

JNIEXPORT void BS_FN(pagedAttention)(JNIEnv* env, jclass, jlong out, jlong q, jlong kc, jlong vc, jlong bt, jlong maxBlocks,
                                     jlong seqLens, jlong qs, jlong numSeqs, jlong numTokens, jlong heads, jlong kvh, jlong hd,
                                     jlong bs, jlong numBlocks, jfloat scale, jlong scratch) {
  check(env, bscuda::paged_attention(ptr<float>(out), ptr<const float>(q), ptr<const float>(kc), ptr<const float>(vc),
                                     ptr<const int32_t>(bt), maxBlocks, ptr<const int32_t>(seqLens), ptr<const int32_t>(qs),
                                     numSeqs, numTokens, heads, kvh, hd, bs, numBlocks, scale, ptr<float>(scratch)));
}

JNIEXPORT void BS_FN(blockCopy)(JNIEnv* env, jclass, jlong kc, jlong vc, jlong src, jlong dst, jlong n, jlong elems,
                                jlong numBlocks) {
  check(env, bscuda::block_copy(ptr<float>(kc), ptr<float>(vc), ptr<const int32_t>(src), ptr<const int32_t>(dst), n, elems,
                                numBlocks));
}

JNIEXPORT void BS_FN(argmax)(JNIEnv* env, jclass, jlong out, jlong logits, jlong n, jlong vocab) {
  check(env, bscuda::argmax(ptr<int32_t>(out), ptr<const float>(logits), n, vocab));
}

}  // extern "C"

#pragma once
#include <cstddef>

// Each function returns nullptr on success or a message naming the CUDA call and its error.
namespace bscuda {
const char* device_count(int* n);
const char* device_info(int dev, char* name, int name_len, size_t* free_b, size_t* total_b, int* cc_major, int* cc_minor);
const char* alloc(void** p, size_t bytes);
const char* free(void* p);
// kind: 1 host->device, 2 device->host, 3 device->device (cudaMemcpyKind values)
const char* copy(void* dst, const void* src, size_t bytes, int kind);
}  // namespace bscuda

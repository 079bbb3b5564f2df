#!/usr/bin/env bash
# The CUDA backend on a GPU machine, in one command (a few minutes):
#   1. builds the kernels' test program from this source tree with nvcc/CMake (no JDK needed), or takes a
#      prebuilt one: CUDA_KERNEL_TEST=path, with BS_KERNEL_DIR=the folder of the CPU libraries;
#   2. checks every CUDA kernel against the CPU library on random inputs (FP32 paths: relative error
#      under 1e-5; BF16 matmul: under 1e-2) and benchmarks decode attention (GB/s against a measured
#      device-to-device copy), prefill attention and the BF16 matmul (TFLOP/s), for the vectorised attention
#      kernels and the first ones; the matmul once as the library finds it (cuBLAS where a libcublas loads)
#      and once the other way (the WMMA kernel, or cuBLAS found among PyTorch's libraries);
#   3. when JAVA_HOME (a JDK, or a jlink image of java.base, java.logging and jdk.unsupported) and
#      BLOCKSERVE_CLASSPATH (target/classes plus the runtime jars, see native/README.md) are set, runs every
#      golden case of ../shared/models through the JNI path on the GPU (GoldenCheck: FP32 matmul exact ids
#      with F32 and F16 caches; BF16 matmul reported); with BLOCKSERVE_TEST_CLASSPATH too (target/test-classes
#      and the JUnit, AssertJ and Jackson jars) the golden suites themselves on the GPU (GoldenTest,
#      SlidingWindowTest, SpeculativeGoldenTest: alone, batched, block sizes 1/16/32, chunked prefill,
#      preemption, prefix caching; F32 and F16 caches) and the decode benchmark of the SmolLM2-135M shape;
#   4. when python3 has torch, PyTorch on the same shapes (torch_reference.py) for comparison.
# Prints a short table at the end; full results go to $OUT_DIR (default target/gpu-results).
# Without an NVIDIA GPU it says so and exits 2: nothing is reported as passed.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
out=${OUT_DIR:-$root/target/gpu-results}
models=${MODELS_DIR:-$root/../shared/models}
mkdir -p "$out"

if ! command -v nvidia-smi >/dev/null 2>&1 || ! nvidia-smi -L >/dev/null 2>&1; then
  echo "run.sh: no NVIDIA GPU found (nvidia-smi is missing or lists no device): nothing was built or tested"
  exit 2
fi
gpu=$(nvidia-smi --query-gpu=name,memory.total,driver_version,compute_cap --format=csv,noheader | head -1)
cc=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader | head -1 | tr -d '.')
echo "GPU: $gpu" | tee "$out/summary.txt"

status=0
if [ -n "${CUDA_KERNEL_TEST:-}" ]; then
  kernel_test=$CUDA_KERNEL_TEST
  echo "kernel test: prebuilt $kernel_test (CPU libraries from ${BS_KERNEL_DIR:-its build tree})"
else
  if ! command -v nvcc >/dev/null 2>&1; then
    for d in /usr/local/cuda/bin /usr/local/cuda-*/bin; do [ -x "$d/nvcc" ] && export PATH="$d:$PATH" && break; done
  fi
  command -v nvcc >/dev/null 2>&1 || { echo "run.sh: nvcc not found (install the CUDA toolkit)"; exit 2; }
  build="$out/build"
  cmake -S "$root/native" -B "$build" -DCMAKE_BUILD_TYPE=Release -DBLOCKSERVE_REQUIRE_JNI=OFF \
    -DCMAKE_CUDA_ARCHITECTURES="$cc" > "$out/cmake.log" 2>&1 \
    && cmake --build "$build" --parallel --target cuda_kernel_test >> "$out/cmake.log" 2>&1 \
    || { echo "run.sh: build failed, see $out/cmake.log"; tail -20 "$out/cmake.log"; exit 1; }
  kernel_test="$build/cuda_kernel_test"
fi

echo "== kernel checks and benchmarks"
timeout 600 "$kernel_test" "$out/kernels.txt"
kernels=$?
[ $kernels -eq 0 ] || status=1
# the BF16 matmul's other implementation too: through cuBLAS where the first run used the library's own
# WMMA kernel (the library opens libcublas at run time; PyTorch's wheels carry one, and the Java runs below
# then use it too), or the WMMA kernel (BS_CUDA_NO_CUBLAS=1) where the first run found cuBLAS
other_run="not run (no libcublas was found)"
rm -f "$out/kernels-other.txt"
if grep -q 'matmul: wmma' "$out/kernels.txt"; then
  cublas_lib=$(find /usr/local /usr/lib /opt -name 'libcublas.so.1[23]' 2>/dev/null | head -1)
  if [ -n "$cublas_lib" ]; then
    export LD_LIBRARY_PATH="$(dirname "$cublas_lib")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    echo "== matmul checks and benchmark with cuBLAS ($cublas_lib)"
    BS_KERNEL_TEST_ONLY=matmul timeout 300 "$kernel_test" "$out/kernels-other.txt" > /dev/null
    c=$?
  fi
else
  echo "== matmul checks and benchmark with the WMMA kernel (BS_CUDA_NO_CUBLAS=1)"
  BS_CUDA_NO_CUBLAS=1 BS_KERNEL_TEST_ONLY=matmul timeout 300 "$kernel_test" "$out/kernels-other.txt" > /dev/null
  c=$?
fi
if [ -f "$out/kernels-other.txt" ]; then
  grep -E '^device|matmul|failed' "$out/kernels-other.txt"
  other_run=$([ $c -eq 0 ] && echo PASS || echo "FAIL (exit $c)")
  [ $c -eq 0 ] || status=1
fi

golden="not run (set JAVA_HOME and BLOCKSERVE_CLASSPATH)"
suites="not run (set BLOCKSERVE_TEST_CLASSPATH too)"
if [ -n "${JAVA_HOME:-}" ] && [ -n "${BLOCKSERVE_CLASSPATH:-}" ]; then
  java=("$JAVA_HOME/bin/java" -Xss4m -Dblockserve.shared.models="$models")
  echo "== golden cases through JNI on the GPU"
  timeout 300 "${java[@]}" -cp "$BLOCKSERVE_CLASSPATH" dev.blockserve.cli.GoldenCheck --models "$models" --device cuda \
    | tee "$out/golden.txt"
  g=${PIPESTATUS[0]}
  timeout 300 "${java[@]}" -cp "$BLOCKSERVE_CLASSPATH" dev.blockserve.cli.GoldenCheck --models "$models" --device cuda \
    --kv-cache-dtype f16 | tee -a "$out/golden.txt"
  g16=${PIPESTATUS[0]}
  [ $g16 -eq 0 ] || g=1
  timeout 300 "${java[@]}" -cp "$BLOCKSERVE_CLASSPATH" dev.blockserve.cli.GoldenCheck --models "$models" --device cuda-bf16 \
    | tee -a "$out/golden.txt"
  golden=$([ $g -eq 0 ] && echo "PASS (fp32 matmul; F32 and F16 KV caches)" || echo "FAIL")
  [ $g -eq 0 ] || status=1
  if [ -n "${BLOCKSERVE_TEST_CLASSPATH:-}" ]; then
    echo "== golden suites (JUnit) on the GPU"
    timeout 600 "${java[@]}" -cp "$BLOCKSERVE_CLASSPATH:$BLOCKSERVE_TEST_CLASSPATH" -Dblockserve.test.device=cuda \
      dev.blockserve.support.RunTests dev.blockserve.model.GoldenTest dev.blockserve.engine.SlidingWindowTest \
      dev.blockserve.model.SpeculativeGoldenTest > "$out/suites.txt" 2>&1
    s=$?
    grep -E 'tests (found|successful|failed|aborted|skipped)|RunTests:' "$out/suites.txt"
    # a skipped or aborted test is not a pass here: every suite must run in full on the GPU
    if [ $s -eq 0 ] && grep -qE '^\[ +0 tests skipped' "$out/suites.txt" && grep -qE '^\[ +0 tests aborted' "$out/suites.txt"; then
      suites="PASS ($(grep -oE '[0-9]+ tests successful' "$out/suites.txt"))"
    else
      suites="FAIL (exit $s, see suites.txt)"
      status=1
    fi
    echo "== decode benchmark (SmolLM2-135M shape, random weights)"
    timeout 400 "${java[@]}" -cp "$BLOCKSERVE_CLASSPATH:$BLOCKSERVE_TEST_CLASSPATH" dev.blockserve.bench.GpuDecodeBenchmark \
      "$out/smollm2-135m-random" "${DECODE_BATCHES:-1,32,128}" "${DECODE_CONTEXTS:-128,1024}" "${DECODE_STEPS:-32}" \
      | tee "$out/decode.txt"
    rm -rf "$out/smollm2-135m-random"
  fi
fi

torch_ref="not run (no python3 with torch)"
if python3 -c 'import torch' >/dev/null 2>&1; then
  echo "== PyTorch on the same shapes"
  timeout 300 python3 "$here/torch_reference.py" | tee "$out/torch.txt"
  torch_ref=$([ "${PIPESTATUS[0]}" -eq 0 ] && echo "see torch.txt" || echo "failed")
fi

{
  echo
  echo "| check | result |"
  echo "|---|---|"
  echo "| kernel checks | $([ $kernels -eq 0 ] && echo PASS || echo "FAIL (exit $kernels)") |"
  echo "| kernel checks, the other BF16 matmul (cuBLAS / WMMA) | $other_run |"
  echo "| golden cases (JNI, GPU) | $golden |"
  echo "| golden suites (JUnit, GPU) | $suites |"
  echo "| PyTorch reference | $torch_ref |"
  echo
  grep -E '^device' "$out/kernels.txt" || true
  grep -E '^\| (decode|prefill|matmul)' "$out/kernels.txt" || true
  grep -E '^\| matmul' "$out/kernels-other.txt" 2>/dev/null || true
  grep -E '^device-to-device|^\| (prefill|decode|matmul)' "$out/torch.txt" 2>/dev/null || true
  grep -E '^\| (fp32|bf16)' "$out/decode.txt" 2>/dev/null || true
} | tee -a "$out/summary.txt"
exit $status

#!/usr/bin/env bash
# The CUDA backend on a GPU machine, in one command (a few minutes):
#   1. builds the kernels and their test program from this source tree with nvcc/CMake (no JDK needed);
#   2. checks every CUDA kernel against the CPU library on random inputs (FP32 paths: relative error
#      under 1e-5; BF16 matmul: under 1e-2) and benchmarks decode attention (GB/s against a measured
#      device-to-device copy), prefill attention and the BF16 matmul (TFLOP/s);
#   3. when JAVA_HOME (a JDK, or a jlink image of java.base) and BLOCKSERVE_CLASSPATH (target/classes plus
#      the runtime jars, see native/README.md) are set, runs every golden case of ../shared/models through
#      the JNI path on the GPU (FP32 matmul: exact ids; BF16: reported).
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
if ! command -v nvcc >/dev/null 2>&1; then
  for d in /usr/local/cuda/bin /usr/local/cuda-*/bin; do [ -x "$d/nvcc" ] && export PATH="$d:$PATH" && break; done
fi
command -v nvcc >/dev/null 2>&1 || { echo "run.sh: nvcc not found (install the CUDA toolkit)"; exit 2; }

gpu=$(nvidia-smi --query-gpu=name,memory.total,driver_version,compute_cap --format=csv,noheader | head -1)
cc=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader | head -1 | tr -d '.')
echo "GPU: $gpu" | tee "$out/summary.txt"

build="$out/build"
status=0
cmake -S "$root/native" -B "$build" -DCMAKE_BUILD_TYPE=Release -DBLOCKSERVE_REQUIRE_JNI=OFF \
  -DCMAKE_CUDA_ARCHITECTURES="$cc" > "$out/cmake.log" 2>&1 \
  && cmake --build "$build" --parallel --target cuda_kernel_test >> "$out/cmake.log" 2>&1 \
  || { echo "run.sh: build failed, see $out/cmake.log"; tail -20 "$out/cmake.log"; exit 1; }

echo "== kernel checks and benchmarks"
"$build/cuda_kernel_test" "$out/kernels.txt"
kernels=$?
[ $kernels -eq 0 ] || status=1

golden="not run (set JAVA_HOME and BLOCKSERVE_CLASSPATH)"
if [ -n "${JAVA_HOME:-}" ] && [ -n "${BLOCKSERVE_CLASSPATH:-}" ]; then
  echo "== golden cases through JNI on the GPU"
  "$JAVA_HOME/bin/java" -cp "$BLOCKSERVE_CLASSPATH" dev.blockserve.cli.GoldenCheck --models "$models" --device cuda \
    | tee "$out/golden.txt"
  g=${PIPESTATUS[0]}
  "$JAVA_HOME/bin/java" -cp "$BLOCKSERVE_CLASSPATH" dev.blockserve.cli.GoldenCheck --models "$models" --device cuda \
    --kv-cache-dtype f16 | tee -a "$out/golden.txt"
  g16=${PIPESTATUS[0]}
  [ $g16 -eq 0 ] || g=1
  "$JAVA_HOME/bin/java" -cp "$BLOCKSERVE_CLASSPATH" dev.blockserve.cli.GoldenCheck --models "$models" --device cuda-bf16 \
    | tee -a "$out/golden.txt"
  golden=$([ $g -eq 0 ] && echo "PASS (fp32 matmul; F32 and F16 KV caches)" || echo "FAIL")
  [ $g -eq 0 ] || status=1
fi

{
  echo
  echo "| check | result |"
  echo "|---|---|"
  echo "| kernel checks | $([ $kernels -eq 0 ] && echo PASS || echo "FAIL (exit $kernels)") |"
  echo "| golden cases (JNI, GPU) | $golden |"
  echo
  grep -E '^\| (decode|prefill|matmul)' "$out/kernels.txt" || true
  grep -E '^device-to-device' "$out/kernels.txt" || true
} | tee -a "$out/summary.txt"
exit $status

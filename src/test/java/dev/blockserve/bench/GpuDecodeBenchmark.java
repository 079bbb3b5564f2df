package dev.blockserve.bench;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;

import dev.blockserve.backend.CudaBackend;
import dev.blockserve.backend.DType;
import dev.blockserve.model.LlamaModel;
import dev.blockserve.support.TestModelWriter;

/**
 * Decode tokens/s of the SmolLM2-135M-shaped model with random weights on the CUDA backend, the whole
 * forward pass through JNI (DecodeBenchmark's decode and prefill loops, which time a step from Java to the
 * argmax on the host), for the FP32 matmul and the BF16 matmul. Needs a GPU; native/tests/gpu/run.sh runs
 * it. Args: [model dir=target/bench-models/smollm2-135m-random] [batches=1,32,128] [context=128,1024]
 * [steps=32].
 */
public final class GpuDecodeBenchmark {

	public static void main(String[] args) throws Exception {
		Path dir = Path.of(args.length > 0 ? args[0] : "target/bench-models/smollm2-135m-random");
		int[] batches = ints(args.length > 1 ? args[1] : "1,32,128");
		int[] contexts = ints(args.length > 2 ? args[2] : "128,1024");
		int steps = args.length > 3 ? Integer.parseInt(args[3]) : 32;
		if (!Files.exists(dir.resolve("model.safetensors"))) {
			System.out.println("writing random SmolLM2-135M-shaped model to " + dir);
			TestModelWriter.smolLm2Shape().write(dir);
		}
		int maxContext = Arrays.stream(contexts).max().orElse(128);
		System.out.println("| matmul | batch | context | step ms (median) | tokens/s |");
		System.out.println("|---|---|---|---|---|");
		for (boolean bf16 : new boolean[] { false, true }) {
			try (CudaBackend backend = CudaBackend.open(0, bf16);
					LlamaModel m = LlamaModel.load(dir, backend, Math.max(2048, maxContext + steps + 1))) {
				String matmul = bf16 ? "bf16 (" + backend.matmulImplementation() + ")" : "fp32";
				for (int context : contexts) {
					for (int batch : batches) {
						double ms = DecodeBenchmark.decode(m, batch, context, steps, DType.F32);
						System.out.printf("| %s | %d | %d | %.3f | %.0f |%n", matmul, batch, context, ms, batch / (ms / 1e3));
					}
				}
				double ms = DecodeBenchmark.prefill(m, 512, 5, DType.F32);
				System.out.printf("| %s prefill | 1 | 512 | %.3f | %.0f |%n", matmul, ms, 512 / (ms / 1e3));
			}
		}
	}

	private static int[] ints(String csv) {
		return Arrays.stream(csv.split(",")).mapToInt(Integer::parseInt).toArray();
	}
}

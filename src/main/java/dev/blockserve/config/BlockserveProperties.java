package dev.blockserve.config;

import org.springframework.boot.context.properties.ConfigurationProperties;
import org.springframework.boot.context.properties.bind.DefaultValue;
import org.springframework.util.unit.DataSize;

/**
 * Everything under {@code blockserve.*}. Invalid values fail start-up with a message naming the
 * property (the constructors below throw, and Spring reports the binding failure).
 *
 * @param model a model directory (Hugging Face layout) or a Hugging Face repository id
 * @param servedModelName the name clients give as "model"; default: the repository id or directory name
 * @param hubOffline never download (as HF_HUB_OFFLINE=1 does)
 * @param device auto (CUDA when a GPU and the CUDA library are usable, else CPU), cpu or cuda
 * @param maxModelLen the longest sequence served; 0 for the model's max_position_embeddings
 * @param threads CPU kernel threads; 0 for one per processor
 * @param dtype weight matrices: auto (as the checkpoint ships them: BF16 stays BF16), bf16 or f32
 * @param cpuLevel CPU kernels' instruction set level: auto (the best this CPU runs), avx512bf16, avx512,
 * avx2 or baseline
 * @param bf16Activations CPU, BF16 matrices, a CPU with AVX-512 BF16: prefill and decode round the
 * activations to BF16 and multiply with vdpbf16ps (as llama.cpp does): faster, not exact to
 * the goldens (checked by tolerance); F32 and F16 matrices stay as they are; ignored with a warning where the
 * CPU lacks AVX-512 BF16
 * @param weightPages CPU: where the weights are read from: auto (the file's mapping when at least 90% of it
 * lies in 2 MiB pages, else a copy in anonymous huge pages, for files of 64 MiB and more), huge (always the
 * copy) or mapped (always the file's mapping, shared with other processes)
 * @param packedDecode CPU, BF16 matrices, a CPU with AVX-512 VBMI: keep a second copy of each matrix at 12
 * bits a weight (lossless) that batch-1 decode reads instead (bit for bit the same results, a quarter fewer
 * bytes a token; 76% of the matrices' bytes more memory, at most an eighth of the machine's)
 * @param warmupTokens new tokens of the start-up warm-up (a greedy and a sampled request through the
 * engine before the server takes requests, so the first users do not wait for the JIT); 0 skips it
 * @param kvCache the paged KV cache
 * @param scheduler per-step budgets and policy
 * @param speculative speculative decoding by prompt lookup (off unless num-tokens is set)
 */
@ConfigurationProperties("blockserve")
public record BlockserveProperties(@DefaultValue(BlockserveProperties.DEFAULT_MODEL) String model,
		String servedModelName, @DefaultValue("false") boolean hubOffline, @DefaultValue("auto") String device,
		@DefaultValue("0") int maxModelLen,
		@DefaultValue("0") int threads, @DefaultValue("auto") String dtype, @DefaultValue("auto") String cpuLevel,
		@DefaultValue("false") boolean bf16Activations, @DefaultValue("auto") String weightPages,
		@DefaultValue("true") boolean packedDecode, @DefaultValue("16") int warmupTokens,
		@DefaultValue KvCache kvCache, @DefaultValue Scheduler scheduler, @DefaultValue Speculative speculative) {

	public static final String DEFAULT_MODEL = "HuggingFaceTB/SmolLM2-135M-Instruct";

	public BlockserveProperties {
		if (maxModelLen < 0) {
			throw new IllegalArgumentException("blockserve.max-model-len must be >= 0, got " + maxModelLen);
		}
		if (!java.util.List.of("auto", "cpu", "cuda").contains(device.toLowerCase(java.util.Locale.ROOT))) {
			throw new IllegalArgumentException("blockserve.device must be auto, cpu or cuda, got '" + device + "'");
		}
		if (threads < 0) {
			throw new IllegalArgumentException("blockserve.threads must be >= 0, got " + threads);
		}
		if (warmupTokens < 0) {
			throw new IllegalArgumentException("blockserve.warmup-tokens must be >= 0, got " + warmupTokens);
		}
		dev.blockserve.backend.WeightType.parse(dtype); // names blockserve.dtype when it is wrong
		dev.blockserve.backend.WeightPages.parse(weightPages); // names blockserve.weight-pages when it is wrong
	}

	/**
	 * @param blockSize tokens per block
	 * @param numBlocks when above 0, the number of blocks, overriding the memory budget
	 * @param memory the CPU backend's KV cache budget; unset: sized to the model (twice its context, at least
	 * 16,384 tokens, at most a quarter of the machine's memory and what the weights and heap leave)
	 * @param gpuMemoryUtilization fraction of free device memory for the cache (CUDA)
	 * @param prefixCaching reuse cached blocks of identical prompt prefixes
	 * @param dtype the cached keys' and values' type: f32 (exact), bf16 or f16 (half the memory a token,
	 * rounded once when written)
	 */
	public record KvCache(@DefaultValue("16") int blockSize, @DefaultValue("0") int numBlocks,
			DataSize memory, @DefaultValue("0.9") double gpuMemoryUtilization,
			@DefaultValue("true") boolean prefixCaching, @DefaultValue("f32") String dtype) {

		public KvCache {
			if (blockSize < 1 || blockSize > 1024) {
				throw new IllegalArgumentException("blockserve.kv-cache.block-size must be in [1, 1024], got " + blockSize);
			}
			if (numBlocks < 0) {
				throw new IllegalArgumentException("blockserve.kv-cache.num-blocks must be >= 0, got " + numBlocks);
			}
			if (memory != null && memory.toBytes() <= 0) {
				throw new IllegalArgumentException("blockserve.kv-cache.memory must be positive, got " + memory);
			}
			if (!(gpuMemoryUtilization > 0 && gpuMemoryUtilization <= 1)) {
				throw new IllegalArgumentException(
						"blockserve.kv-cache.gpu-memory-utilization must be in (0, 1], got " + gpuMemoryUtilization);
			}
			dev.blockserve.backend.KvCacheMemory.parseType(dtype); // names blockserve.kv-cache.dtype when it is wrong
		}
	}

	/**
	 * Unset budgets take the backend's defaults (CPU: 64 sequences, 320 tokens, 256-token prefill chunks, 128 prompt
	 * tokens a step besides decodes while any sequence decodes).
	 *
	 * @param maxNumSeqs sequences per step
	 * @param maxNumBatchedTokens tokens per step
	 * @param longPrefillTokenThreshold most prompt tokens one sequence brings to a step
	 * @param maxPrefillTokens prompt tokens of all sequences in one step while any sequence decodes, decodes not
	 * counted (0: no cap of its own)
	 * @param policy fcfs or priority
	 */
	public record Scheduler(Integer maxNumSeqs, Integer maxNumBatchedTokens, Integer longPrefillTokenThreshold,
			Integer maxPrefillTokens, @DefaultValue("fcfs") String policy) {

		public dev.blockserve.scheduler.SchedulerConfig toConfig(dev.blockserve.scheduler.SchedulerConfig defaults) {
			var p = switch (policy.toLowerCase(java.util.Locale.ROOT)) {
				case "fcfs" -> dev.blockserve.scheduler.SchedulerConfig.Policy.FCFS;
				case "priority" -> dev.blockserve.scheduler.SchedulerConfig.Policy.PRIORITY;
				default -> throw new IllegalArgumentException(
						"blockserve.scheduler.policy must be fcfs or priority, got '" + policy + "'");
			};
			return new dev.blockserve.scheduler.SchedulerConfig(
					maxNumSeqs != null ? maxNumSeqs : defaults.maxNumSeqs(),
					maxNumBatchedTokens != null ? maxNumBatchedTokens : defaults.maxNumBatchedTokens(),
					longPrefillTokenThreshold != null ? longPrefillTokenThreshold : defaults.longPrefillTokenThreshold(),
					p, defaults.speculative(), maxPrefillTokens != null ? maxPrefillTokens : defaults.maxPrefillTokens());
		}
	}

	/**
	 * vLLM's "ngram" speculative decoding: a request whose last tokens occurred before in its prompt or
	 * output drafts what followed them, and one step checks the drafts (same output, fewer steps).
	 *
	 * @param numTokens drafts a sequence and step at most; 0 turns it off
	 * @param promptLookupMin shortest n-gram looked up
	 * @param promptLookupMax longest n-gram looked up, tried first
	 * @param maxBatch speculate only while at most this many sequences run
	 */
	public record Speculative(@DefaultValue("0") int numTokens, @DefaultValue("2") int promptLookupMin,
			@DefaultValue("4") int promptLookupMax, @DefaultValue("4") int maxBatch) {

		public Speculative {
			// names the property when a value is wrong (the fields are not assigned yet: the parameters)
			new dev.blockserve.scheduler.SpeculativeConfig(numTokens, promptLookupMin, promptLookupMax, maxBatch);
		}

		public dev.blockserve.scheduler.SpeculativeConfig toConfig() {
			return new dev.blockserve.scheduler.SpeculativeConfig(numTokens, promptLookupMin, promptLookupMax, maxBatch);
		}
	}
}

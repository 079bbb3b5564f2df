package dev.blockserve.weights;

import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;

import dev.blockserve.backend.DType;
import dev.blockserve.backend.MappedFile;
import dev.blockserve.backend.WeightPages;
import tools.jackson.databind.JsonNode;
import dev.blockserve.model.Json;
import dev.blockserve.model.ModelLoadException;

/**
 * One {@code .safetensors} file: an 8-byte little-endian header length, a JSON header naming each
 * tensor's dtype, shape and byte range, then the data. The header is read and checked (every range
 * inside the file, sizes matching shapes) before the file is memory-mapped; tensors are then
 * addresses into the mapping, never copies on the Java heap.
 * Opened at start-up; read by the engine thread; closed with the model.
 */
public final class SafetensorsFile implements AutoCloseable {

	/** A tensor's place in the file. */
	public record Tensor(String name, DType dtype, long[] shape, long dataOffset, long byteLength) {

		public long elements() {
			long n = 1;
			for (long d : shape) {
				n *= d;
			}
			return n;
		}
	}

	private static final long MAX_HEADER = 100L << 20;

	private final Path path;

	private final Map<String, Tensor> tensors;

	private final MappedFile mapping;

	private SafetensorsFile(Path path, Map<String, Tensor> tensors, MappedFile mapping) {
		this.path = path;
		this.tensors = tensors;
		this.mapping = mapping;
	}

	public static SafetensorsFile open(Path path) {
		return open(path, WeightPages.MAPPED);
	}

	/** Opens the file, its bytes held as {@code pages} says ({@link MappedFile#map(Path, WeightPages)}). */
	public static SafetensorsFile open(Path path, WeightPages pages) {
		long size;
		long headerLen;
		JsonNode header;
		try (InputStream in = Files.newInputStream(path)) {
			size = Files.size(path);
			byte[] lenBytes = in.readNBytes(8);
			if (lenBytes.length < 8) {
				throw new ModelLoadException(path + ": truncated safetensors file (" + size + " bytes, no header)");
			}
			headerLen = ByteBuffer.wrap(lenBytes).order(ByteOrder.LITTLE_ENDIAN).getLong();
			if (headerLen <= 0 || headerLen > MAX_HEADER || headerLen > size - 8) {
				throw new ModelLoadException(path + ": invalid safetensors header length " + headerLen
						+ " for a file of " + size + " bytes (truncated or not a safetensors file)");
			}
			byte[] json = in.readNBytes((int) headerLen);
			header = Json.MAPPER.readTree(new String(json, StandardCharsets.UTF_8));
		}
		catch (IOException e) {
			throw new ModelLoadException(path + ": cannot read (" + e.getMessage() + ")", e);
		}
		catch (ModelLoadException e) {
			throw e;
		}
		catch (RuntimeException e) {
			throw new ModelLoadException(path + ": safetensors header is not valid JSON (" + e.getMessage() + ")", e);
		}
		long dataStart = 8 + headerLen;
		long dataLen = size - dataStart;
		Map<String, Tensor> tensors = new LinkedHashMap<>();
		for (Map.Entry<String, JsonNode> e : header.properties()) {
			if (e.getKey().equals("__metadata__")) {
				continue;
			}
			tensors.put(e.getKey(), parseTensor(path, e.getKey(), e.getValue(), dataStart, dataLen));
		}
		try {
			return new SafetensorsFile(path, Collections.unmodifiableMap(tensors), MappedFile.map(path, pages));
		}
		catch (IOException e) {
			throw new ModelLoadException(path + ": cannot map (" + e.getMessage() + ")", e);
		}
	}

	private static Tensor parseTensor(Path path, String name, JsonNode t, long dataStart, long dataLen) {
		String where = path + ": tensor '" + name + "'";
		String dt = t.path("dtype").asString("");
		DType dtype = switch (dt) {
			case "F32" -> DType.F32;
			case "F16" -> DType.F16;
			case "BF16" -> DType.BF16;
			default -> throw new ModelLoadException(where + " has dtype '" + dt + "' (supported: F32, F16, BF16)");
		};
		JsonNode shapeNode = t.path("shape");
		JsonNode offs = t.path("data_offsets");
		if (!shapeNode.isArray() || !offs.isArray() || offs.size() != 2) {
			throw new ModelLoadException(where + " has no valid shape/data_offsets");
		}
		long[] shape = new long[shapeNode.size()];
		long elements = 1;
		for (int i = 0; i < shape.length; i++) {
			shape[i] = shapeNode.get(i).asLong();
			if (shape[i] < 0) {
				throw new ModelLoadException(where + " has a negative dimension");
			}
			elements = Math.multiplyExact(elements, shape[i]);
		}
		long begin = offs.get(0).asLong();
		long end = offs.get(1).asLong();
		if (begin < 0 || end < begin) {
			throw new ModelLoadException(where + " has invalid data_offsets [" + begin + ", " + end + "]");
		}
		if (end > dataLen) {
			throw new ModelLoadException(where + " ends at byte " + end + " of the data section, but the file holds only "
					+ dataLen + " data bytes: the file is truncated");
		}
		if (end - begin != elements * dtype.bytes()) {
			throw new ModelLoadException(where + " has " + (end - begin) + " bytes, its shape "
					+ java.util.Arrays.toString(shape) + " of " + dt + " needs " + elements * dtype.bytes());
		}
		return new Tensor(name, dtype, shape, dataStart + begin, end - begin);
	}

	public Path path() {
		return path;
	}

	public Map<String, Tensor> tensors() {
		return tensors;
	}

	/** Host address of a tensor's first byte; valid while this file is open. */
	/** How the file's bytes are held ({@link MappedFile#placement()}). */
	public String placement() {
		return mapping.placement();
	}

	public long address(Tensor t) {
		return mapping.address(t.dataOffset());
	}

	@Override
	public void close() {
		mapping.close();
	}
}

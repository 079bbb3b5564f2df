package dev.blockserve.constraint;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;

import tools.jackson.databind.JsonNode;

/**
 * Every token's bytes, as the tokenizer's decoder would write them, and a byte trie over them. The
 * grammar engine walks the trie once per mask instead of walking each token: tokens that share a
 * prefix share its steps, and a dead prefix skips its whole subtree. Special tokens have no bytes (a
 * grammar never produces them; EOS is allowed by the matcher where the grammar may end).
 * Built once per model; immutable, so any thread may read it.
 */
public final class TokenVocabulary {

	private final byte[][] bytes;

	// The trie in preorder: node i has depth depth[i] (the root, depth 0, is not stored), the byte that
	// leads to it, the end of its subtree (first node after it that is not below it), and the tokens
	// whose bytes end there: tokenIds[tokenStart[i], tokenStart[i + 1]).
	final int[] depth;

	final byte[] edge;

	final int[] subtreeEnd;

	final int[] tokenStart;

	final int[] tokenIds;

	final int maxDepth;

	/** @param bytes per token id: its bytes, or null for a token a grammar never produces */
	public TokenVocabulary(byte[][] bytes) {
		this.bytes = bytes;
		Integer[] order = new Integer[bytes.length];
		int usable = 0;
		for (int i = 0; i < bytes.length; i++) {
			if (bytes[i] != null && bytes[i].length > 0) {
				order[usable++] = i;
			}
		}
		Integer[] ids = Arrays.copyOf(order, usable);
		Arrays.sort(ids, (a, b) -> Arrays.compareUnsigned(bytes[a], bytes[b]));
		IntList d = new IntList();
		IntList end = new IntList();
		IntList start = new IntList();
		IntList tok = new IntList();
		List<Byte> e = new ArrayList<>();
		int[] path = new int[16]; // node index per depth of the current path
		byte[] prev = new byte[0];
		int maxD = 0;
		for (int id : ids) {
			byte[] t = bytes[id];
			int common = 0;
			while (common < prev.length && common < t.length && prev[common] == t[common]) {
				common++;
			}
			// close the nodes of the previous path below the common prefix
			for (int k = prev.length; k > common; k--) {
				end.set(path[k], d.size);
			}
			if (path.length <= t.length) {
				path = Arrays.copyOf(path, t.length * 2);
			}
			for (int k = common + 1; k <= t.length; k++) {
				path[k] = d.size;
				d.add(k);
				e.add(t[k - 1]);
				end.add(-1);
				start.add(tok.size);
			}
			tok.add(id); // sorted order puts equal byte strings together, at the path's last node
			maxD = Math.max(maxD, t.length);
			prev = t;
		}
		for (int k = prev.length; k > 0; k--) {
			end.set(path[k], d.size);
		}
		// the tokens of node i are those added between its start and the next node's start
		start.add(tok.size);
		this.depth = d.toArray();
		this.subtreeEnd = end.toArray();
		this.tokenStart = start.toArray();
		this.tokenIds = tok.toArray();
		this.edge = new byte[e.size()];
		for (int i = 0; i < edge.length; i++) {
			edge[i] = e.get(i);
		}
		this.maxDepth = maxD;
	}

	/** The bytes token {@code id} writes, or null (special, unknown or out of range). */
	public byte[] bytes(int id) {
		return id >= 0 && id < bytes.length ? bytes[id] : null;
	}

	public int size() {
		return bytes.length;
	}

	public int trieNodes() {
		return depth.length;
	}

	/**
	 * The token bytes a Hugging Face {@code tokenizer.json} decodes to: byte-level BPE (GPT-2's
	 * byte-to-character table) or SentencePiece-style pieces ({@code ▁} for a space, {@code <0xAB>} byte
	 * fallback). Special added tokens get no bytes; other added tokens are their literal text.
	 */
	public static TokenVocabulary fromTokenizerJson(JsonNode root, int vocabSize) {
		JsonNode model = root.path("model");
		JsonNode vocab = model.path("vocab");
		if (!vocab.isObject()) {
			throw new IllegalArgumentException("tokenizer.json has no model.vocab object (type "
					+ model.path("type").asString("?") + " is not supported for constrained decoding)");
		}
		boolean byteLevel = mentions(root.path("decoder"), "ByteLevel") || mentions(root.path("pre_tokenizer"), "ByteLevel");
		int[] byteOf = byteLevel ? gpt2ByteDecoder() : null;
		int max = vocabSize;
		for (Map.Entry<String, JsonNode> en : vocab.properties()) {
			max = Math.max(max, en.getValue().asInt() + 1);
		}
		byte[][] bytes = new byte[max][];
		for (Map.Entry<String, JsonNode> en : vocab.properties()) {
			int id = en.getValue().asInt();
			bytes[id] = byteLevel ? fromByteLevel(en.getKey(), byteOf) : fromPiece(en.getKey());
		}
		for (JsonNode a : root.path("added_tokens")) {
			int id = a.path("id").asInt(-1);
			if (id < 0 || id >= max) {
				continue;
			}
			bytes[id] = a.path("special").asBoolean(false) ? null
					: a.path("content").asString("").getBytes(StandardCharsets.UTF_8);
		}
		return new TokenVocabulary(bytes);
	}

	private static boolean mentions(JsonNode n, String type) {
		if (n == null || n.isMissingNode() || n.isNull()) {
			return false;
		}
		if (type.equals(n.path("type").asString(""))) {
			return true;
		}
		for (String list : new String[] { "decoders", "pretokenizers" }) {
			for (JsonNode c : n.path(list)) {
				if (mentions(c, type)) {
					return true;
				}
			}
		}
		return false;
	}

	private static byte[] fromByteLevel(String token, int[] byteOf) {
		byte[] out = new byte[token.length()];
		int n = 0;
		for (int i = 0; i < token.length(); i++) {
			char c = token.charAt(i);
			int b = c < byteOf.length ? byteOf[c] : -1;
			if (b < 0) {
				return token.getBytes(StandardCharsets.UTF_8); // not byte-mapped: take the text as it is
			}
			out[n++] = (byte) b;
		}
		return Arrays.copyOf(out, n);
	}

	private static byte[] fromPiece(String piece) {
		if (piece.length() == 6 && piece.startsWith("<0x") && piece.endsWith(">")) {
			try {
				return new byte[] { (byte) Integer.parseInt(piece.substring(3, 5), 16) };
			}
			catch (NumberFormatException e) {
				// an ordinary piece that looks like one
			}
		}
		return piece.replace('\u2581', ' ').getBytes(StandardCharsets.UTF_8);
	}

	/** GPT-2's table, inverted: the character that stands for each byte, back to the byte. */
	static int[] gpt2ByteDecoder() {
		int[] byteOf = new int[512];
		Arrays.fill(byteOf, -1);
		int extra = 0;
		for (int b = 0; b < 256; b++) {
			boolean printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
			int c = printable ? b : 256 + extra++;
			byteOf[c] = b;
		}
		return byteOf;
	}

	/** A growable int array (build time only). */
	static final class IntList {

		int[] a = new int[64];

		int size;

		void add(int v) {
			if (size == a.length) {
				a = Arrays.copyOf(a, size * 2);
			}
			a[size++] = v;
		}

		void set(int i, int v) {
			a[i] = v;
		}

		int[] toArray() {
			return Arrays.copyOf(a, size);
		}
	}
}

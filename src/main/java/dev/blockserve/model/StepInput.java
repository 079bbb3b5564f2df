package dev.blockserve.model;

import java.util.Arrays;

import dev.blockserve.kvcache.BlockTable;

/**
 * The input of one forward step over a mixed batch, in flat primitive arrays that are reused from step
 * to step: the new tokens of every sequence one after another, their positions and KV slots, where each
 * sequence's tokens start ({@code queryStart}, numSeqs + 1 entries), how many tokens each sequence has
 * cached once this step's are written ({@code seqLens}), and the block tables, one row of
 * {@code maxBlocksPerSeq} physical block ids per sequence, and which rows need logits (the output rows:
 * each sequence's last token, or its last few when it verifies drafts). Built and read on the engine thread.
 */
public final class StepInput {

	int numTokens;

	int numSeqs;

	int maxBlocksPerSeq;

	int blockSize;

	int[] tokenIds = new int[64];

	int[] positions = new int[64];

	int[] slotMapping = new int[64];

	int[] queryStart = new int[9];

	int[] seqLens = new int[8];

	int[] blockTables = new int[64];

	int numOutputRows;

	/** Where each sequence's output rows start among all output rows: numSeqs + 1 entries. */
	int[] outputStart = new int[9];

	/** Starts a new step whose block tables have rows of {@code maxBlocksPerSeq} entries. */
	public void reset(int blockSize, int maxBlocksPerSeq) {
		if (blockSize <= 0 || maxBlocksPerSeq <= 0) {
			throw new IllegalArgumentException("blockSize and maxBlocksPerSeq must be positive");
		}
		this.blockSize = blockSize;
		this.maxBlocksPerSeq = maxBlocksPerSeq;
		numTokens = 0;
		numSeqs = 0;
		queryStart[0] = 0;
		numOutputRows = 0;
		outputStart[0] = 0;
	}

	/**
	 * Adds a sequence that brings {@code count} new tokens, {@code tokens[start..start+count)}, at positions
	 * {@code start..start+count-1}; its block table must cover all {@code start + count} tokens.
	 */
	public void addSequence(int[] tokens, int start, int count, BlockTable table) {
		addSequence(tokens, start, count, table, 1);
	}

	/**
	 * Adds a sequence as {@link #addSequence(int[], int, int, BlockTable)} does, whose last {@code outputRows}
	 * tokens need logits (more than one when the step verifies drafts).
	 */
	public void addSequence(int[] tokens, int start, int count, BlockTable table, int outputRows) {
		int len = start + count;
		int numBlocks = table.size();
		if (count < 1) {
			throw new IllegalArgumentException("a sequence brings at least one token");
		}
		if (outputRows < 1 || outputRows > count) {
			throw new IllegalArgumentException("output rows must be in 1.." + count + ", got " + outputRows);
		}
		if ((long) numBlocks * blockSize < len) {
			throw new IllegalArgumentException(
					numBlocks + " blocks of " + blockSize + " cannot hold " + len + " tokens");
		}
		if (numBlocks > maxBlocksPerSeq) {
			throw new IllegalArgumentException(numBlocks + " blocks exceed the row width " + maxBlocksPerSeq);
		}
		ensureTokens(numTokens + count);
		ensureSeqs(numSeqs + 1);
		int row = numSeqs * maxBlocksPerSeq;
		table.copyTo(blockTables, row);
		Arrays.fill(blockTables, row + numBlocks, row + maxBlocksPerSeq, 0);
		for (int i = 0; i < count; i++) {
			int pos = start + i;
			tokenIds[numTokens + i] = tokens[pos];
			positions[numTokens + i] = pos;
			slotMapping[numTokens + i] = blockTables[row + pos / blockSize] * blockSize + pos % blockSize;
		}
		numTokens += count;
		seqLens[numSeqs] = len;
		numSeqs++;
		queryStart[numSeqs] = numTokens;
		numOutputRows += outputRows;
		outputStart[numSeqs] = numOutputRows;
	}

	/** Rows that need logits, over all sequences. */
	public int numOutputRows() {
		return numOutputRows;
	}

	/** Index among the output rows of sequence {@code s}'s first one. */
	public int firstOutputRow(int s) {
		return outputStart[s];
	}

	/** Index among the output rows of sequence {@code s}'s last one (its last token's). */
	public int lastOutputRow(int s) {
		return outputStart[s + 1] - 1;
	}

	/** Index of the step row (token) that holds sequence {@code s}'s first new token. */
	public int firstTokenRow(int s) {
		return queryStart[s];
	}

	/** Index of the row in the step's logits that holds sequence {@code s}'s last token. */
	public int lastTokenRow(int s) {
		return queryStart[s + 1] - 1;
	}

	private void ensureTokens(int n) {
		if (n > tokenIds.length) {
			int cap = Math.max(n, tokenIds.length * 2);
			tokenIds = Arrays.copyOf(tokenIds, cap);
			positions = Arrays.copyOf(positions, cap);
			slotMapping = Arrays.copyOf(slotMapping, cap);
		}
	}

	private void ensureSeqs(int n) {
		if (n + 1 > queryStart.length) {
			int cap = Math.max(n + 1, queryStart.length * 2);
			queryStart = Arrays.copyOf(queryStart, cap);
			outputStart = Arrays.copyOf(outputStart, cap);
			seqLens = Arrays.copyOf(seqLens, cap);
		}
		if ((long) n * maxBlocksPerSeq > blockTables.length) {
			blockTables = Arrays.copyOf(blockTables, Math.max(n * maxBlocksPerSeq, blockTables.length * 2));
		}
	}

	public int numTokens() {
		return numTokens;
	}

	public int numSeqs() {
		return numSeqs;
	}
}

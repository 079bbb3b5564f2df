package dev.blockserve.support;

import java.time.Duration;

import com.openai.client.OpenAIClient;
import com.openai.client.okhttp.OpenAIOkHttpClient;

/** The official OpenAI Java SDK pointed at a test server on 127.0.0.1: no retries, so a test sees every failure once. */
public final class OpenAiSdk {

	private OpenAiSdk() {
	}

	public static OpenAIClient client(int port, String apiKey) {
		return OpenAIOkHttpClient.builder().baseUrl("http://127.0.0.1:" + port + "/v1").apiKey(apiKey).maxRetries(0)
			.timeout(Duration.ofSeconds(120)).build();
	}
}

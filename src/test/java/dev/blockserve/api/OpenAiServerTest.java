package dev.blockserve.api;

import com.openai.client.OpenAIClient;
import dev.blockserve.engine.Engine;
import dev.blockserve.support.OpenAiSdk;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.TestInstance;
import org.springframework.beans.factory.annotation.Autowired;
import org.springframework.boot.test.web.server.LocalServerPort;

/**
 * What the API tests against a running server share: its port, its engine, and an OpenAI SDK client for
 * the whole class (with {@link #apiKey()}), closed after the last test.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
abstract class OpenAiServerTest {

	@LocalServerPort
	int port;

	@Autowired
	Engine engine;

	OpenAIClient client;

	/** The key the client sends; "unused" where the server checks none. */
	String apiKey() {
		return "unused";
	}

	@BeforeAll
	void openClient() {
		client = OpenAiSdk.client(port, apiKey());
	}

	@AfterAll
	void closeClient() {
		client.close();
	}
}

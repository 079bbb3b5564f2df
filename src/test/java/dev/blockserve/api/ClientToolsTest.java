package dev.blockserve.api;

import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;

import dev.blockserve.BlockserveApplication;
import dev.langchain4j.agent.tool.Tool;
import dev.langchain4j.data.message.ChatMessage;
import dev.langchain4j.data.message.UserMessage;
import dev.langchain4j.model.chat.Capability;
import dev.langchain4j.model.chat.request.ChatRequestParameters;
import dev.langchain4j.model.chat.request.ToolChoice;
import dev.langchain4j.service.AiServices;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.EnabledIf;
import org.springframework.ai.chat.client.AdvisorParams;
import org.springframework.ai.chat.client.ChatClient;
import org.springframework.ai.chat.model.ChatResponse;
import org.springframework.ai.chat.prompt.Prompt;
import org.springframework.ai.model.tool.ToolCallingManager;
import org.springframework.ai.model.tool.ToolExecutionResult;
import org.springframework.ai.openai.OpenAiChatModel;
import org.springframework.ai.openai.OpenAiChatOptions;
import org.springframework.ai.support.ToolCallbacks;
import org.springframework.boot.test.context.SpringBootTest;
import org.springframework.boot.test.web.server.LocalServerPort;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Tool calls and structured output through the real Java clients against the server: LangChain4j's
 * {@code AiServices} with a {@code @Tool} method and Spring AI's {@code ChatClient} with a tool, both
 * with {@code tool_choice=required} on the first turn. The model (random weights) must make a valid call
 * because the grammar allows nothing else; the client runs the tool, sends the result back, and the next
 * turn (tool choice auto) renders through the chat template and completes. Then structured output into a
 * Java record through each client's own API.
 */
@SpringBootTest(classes = BlockserveApplication.class, webEnvironment = SpringBootTest.WebEnvironment.RANDOM_PORT,
		properties = { "blockserve.model=../shared/models/tiny-random-llama", "blockserve.kv-cache.num-blocks=256" })
@EnabledIf(value = "dev.blockserve.support.SharedModels#present", disabledReason = "../shared/models is absent")
class ClientToolsTest {

	@LocalServerPort
	int port;

	String baseUrl() {
		return "http://127.0.0.1:" + port + "/v1";
	}

	public enum Sky {
		SUNNY, CLOUDY, RAINY
	}

	/** What the structured-output calls deserialise into. */
	public record Forecast(Sky sky, int temperature, boolean windy) {
	}

	/** A LangChain4j tool: records each call. */
	public static final class Calculator {

		final List<String> calls = new CopyOnWriteArrayList<>();

		@Tool("Adds two integers")
		public long add(long a, long b) {
			calls.add(a + "+" + b);
			return a + b;
		}
	}

	interface Assistant {

		String chat(String message);
	}

	interface Forecaster {

		Forecast forecast(String city);
	}

	@Test
	void langChain4jAiServicesCallsTheToolAndCompletes() {
		var model = dev.langchain4j.model.openai.OpenAiChatModel.builder()
			.baseUrl(baseUrl())
			.apiKey("unused")
			.modelName("tiny-random-llama")
			.maxTokens(300)
			.temperature(0.0)
			.build();
		Calculator calc = new Calculator();
		Assistant assistant = AiServices.builder(Assistant.class)
			.chatModel(model)
			.tools(calc)
			// a call is required on the user's turn; once the tool has answered, the model may reply
			.chatRequestTransformer(req -> {
				List<ChatMessage> m = req.messages();
				boolean userTurn = m.get(m.size() - 1) instanceof UserMessage;
				return req.toBuilder()
					.parameters(req.parameters().overrideWith(ChatRequestParameters.builder()
						.toolChoice(userTurn ? ToolChoice.REQUIRED : ToolChoice.AUTO)
						.build()))
					.build();
			})
			.build();
		String answer = assistant.chat("What is 2 + 3?");
		assertThat(calc.calls).as("the tool ran on the model's call").isNotEmpty();
		assertThat(answer).as("the turn after the tool result").isNotNull();
	}

	@Test
	void langChain4jStructuredOutputIntoARecord() {
		var model = dev.langchain4j.model.openai.OpenAiChatModel.builder()
			.baseUrl(baseUrl())
			.apiKey("unused")
			.modelName("tiny-random-llama")
			.maxTokens(200)
			.temperature(0.0)
			.supportedCapabilities(Capability.RESPONSE_FORMAT_JSON_SCHEMA)
			.strictJsonSchema(true)
			.build();
		Forecast f = AiServices.create(Forecaster.class, model).forecast("Paris");
		assertThat(f.sky()).isNotNull();
	}

	/** A Spring AI tool. */
	public static final class SpringCalculator {

		final List<String> calls = new CopyOnWriteArrayList<>();

		@org.springframework.ai.tool.annotation.Tool(description = "Adds two integers")
		public long add(long a, long b) {
			calls.add(a + "+" + b);
			return a + b;
		}
	}

	OpenAiChatModel springModel(int maxTokens) {
		return OpenAiChatModel.builder()
			.options(OpenAiChatOptions.builder()
				.baseUrl(baseUrl())
				.apiKey("unused")
				.model("tiny-random-llama")
				.maxTokens(maxTokens)
				.temperature(0.0)
				.build())
			.build();
	}

	@Test
	void springAiChatClientCallsTheToolAndCompletes() {
		SpringCalculator calc = new SpringCalculator();
		var tools = ToolCallbacks.from(calc);
		ChatClient client = ChatClient.builder(springModel(300)).build();
		// user-controlled tool execution: the call comes back to us, the client's ToolCallingManager runs it
		Prompt first = new Prompt(List.of(new org.springframework.ai.chat.messages.UserMessage("What is 2 + 3?")),
				OpenAiChatOptions.builder().model("tiny-random-llama").maxTokens(300).temperature(0.0).toolCallbacks(tools)
					.toolChoice("required").build());
		ChatResponse response = client.prompt(first)
			.advisors(AdvisorParams.toolCallAdvisorAutoRegister(false))
			.call()
			.chatResponse();
		assertThat(response.hasToolCalls()).isTrue();
		var call = response.getResult().getOutput().getToolCalls().get(0);
		assertThat(call.name()).isEqualTo("add");
		ToolExecutionResult ran = ToolCallingManager.builder().build().executeToolCalls(first, response);
		assertThat(calc.calls).as("the tool ran on the model's call").hasSize(response.getResult().getOutput().getToolCalls().size());
		Prompt next = new Prompt(ran.conversationHistory(),
				OpenAiChatOptions.builder().model("tiny-random-llama").maxTokens(300).temperature(0.0).toolCallbacks(tools)
					.toolChoice("auto").build());
		String answer = client.prompt(next).advisors(AdvisorParams.toolCallAdvisorAutoRegister(false)).call().content();
		assertThat(answer).as("the turn after the tool result").isNotNull();
	}

	@Test
	void springAiStructuredOutputIntoARecord() {
		ChatClient client = ChatClient.builder(springModel(200)).build();
		Forecast f = client.prompt()
			.user("Forecast for Paris")
			.advisors(AdvisorParams.ENABLE_NATIVE_STRUCTURED_OUTPUT)
			.call()
			.entity(Forecast.class);
		assertThat(f).isNotNull();
		assertThat(f.sky()).isNotNull();
	}
}

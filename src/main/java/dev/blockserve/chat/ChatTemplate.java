package dev.blockserve.chat;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.ZonedDateTime;
import java.time.format.DateTimeFormatter;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.regex.Pattern;

import com.hubspot.jinjava.Jinjava;
import com.hubspot.jinjava.JinjavaConfig;
import com.hubspot.jinjava.el.JinjavaInterpreterResolver;
import com.hubspot.jinjava.interpret.RenderResult;
import com.hubspot.jinjava.interpret.TemplateError;
import com.hubspot.jinjava.lib.fn.ELFunctionDefinition;
import jinjava.javax.el.CompositeELResolver;
import tools.jackson.databind.JsonNode;
import dev.blockserve.model.Json;
import dev.blockserve.model.ModelLoadException;

/**
 * A model's chat template (the Jinja {@code chat_template} of {@code tokenizer_config.json}) rendered in
 * Java with Jinjava, with what Hugging Face templates expect of Python's Jinja: {@code raise_exception}
 * that fails the request with its message, {@code tojson} formatted as Python's {@code json.dumps},
 * {@code strftime_now}, Python string methods ({@code startswith}, {@code strip}, {@code split},
 * {@code title}, ...), {@code [::-1]}, and {@code trim_blocks}/{@code lstrip_blocks}. Message content is
 * passed as data: the output of an expression is never rendered again, so text such as {@code {{ 7*7 }}}
 * in a message reaches the model as those characters.
 * Thread-safe once built: request threads render concurrently.
 */
public final class ChatTemplate {

	/** A template's {@code raise_exception}, or any other failure to render: a client error. */
	public static final class TemplateException extends RuntimeException {

		public TemplateException(String message) {
			super(message);
		}
	}

	// Jinja's whitespace control: "{{-" / "{%-" / "{#-" strip all whitespace before the tag, "-}}" / "-%}" /
	// "-#}" all after it. Jinjava ignores it on expression tags, so it is applied to the source here.
	private static final Pattern STRIP_BEFORE = Pattern.compile("\\s*(\\{[{%#])-");

	private static final Pattern STRIP_AFTER = Pattern.compile("-([}%#]\\})\\s*");

	private static final Pattern REVERSE_SLICE = Pattern.compile("([A-Za-z_][\\w.]*(?:\\[[^\\]]*\\])*)\\[::-1\\]");

	private final String source;

	private final String bosToken;

	private final String eosToken;

	private final Jinjava jinjava;

	/**
	 * In Jinjava a named argument binds tighter than arithmetic: {@code namespace(i=messages|length - 1)}
	 * parses as {@code (i=messages|length) - 1} and fails (Qwen3's template does this). Jinja reads the
	 * whole expression as the value, so each named argument of the calls {@code call} opens gets its value
	 * in parentheses. Quotes and nested brackets are respected.
	 */
	static String parenthesiseNamedArguments(String src, String call) {
		StringBuilder out = new StringBuilder(src.length() + 16);
		int from = 0;
		for (int at = src.indexOf(call); at >= 0; at = src.indexOf(call, from)) {
			int open = at + call.length();
			int close = matching(src, open);
			if (close < 0) {
				break;
			}
			out.append(src, from, open);
			int depth = 0;
			int argStart = open;
			char quote = 0;
			for (int i = open; i <= close; i++) {
				char ch = src.charAt(i);
				if (quote != 0) {
					quote = ch == quote && src.charAt(i - 1) != '\\' ? 0 : quote;
					continue;
				}
				if (ch == '\'' || ch == '"') {
					quote = ch;
				}
				else if (ch == '(' || ch == '[' || ch == '{') {
					depth++;
				}
				else if (ch == ')' || ch == ']' || ch == '}') {
					depth--;
				}
				if ((ch == ',' && depth == 0) || i == close) {
					out.append(namedInParens(src.substring(argStart, i))).append(ch);
					argStart = i + 1;
				}
			}
			from = close + 1;
		}
		return out.append(src, from, src.length()).toString();
	}

	/** Index of the ')' closing the call whose arguments start at {@code open}, or -1. */
	private static int matching(String s, int open) {
		int depth = 0;
		char quote = 0;
		for (int i = open; i < s.length(); i++) {
			char ch = s.charAt(i);
			if (quote != 0) {
				quote = ch == quote && s.charAt(i - 1) != '\\' ? 0 : quote;
			}
			else if (ch == '\'' || ch == '"') {
				quote = ch;
			}
			else if (ch == '(' || ch == '[' || ch == '{') {
				depth++;
			}
			else if (ch == ')' || ch == ']' || ch == '}') {
				if (depth == 0) {
					return ch == ')' ? i : -1;
				}
				depth--;
			}
		}
		return -1;
	}

	private static String namedInParens(String arg) {
		java.util.regex.Matcher m = Pattern.compile("^(\\s*[A-Za-z_]\\w*\\s*=)(?!=)(.+)$", Pattern.DOTALL).matcher(arg);
		return m.matches() ? m.group(1) + "(" + m.group(2) + ")" : arg;
	}

	public ChatTemplate(String source, String bosToken, String eosToken) {
		// Jinjava's parser has no step slices; the one templates use reverses a list.
		String src = STRIP_BEFORE.matcher(source).replaceAll("$1");
		src = STRIP_AFTER.matcher(src).replaceAll("$1");
		src = REVERSE_SLICE.matcher(src).replaceAll("($1|reverse|list)");
		this.source = parenthesiseNamedArguments(src, "namespace(");
		this.bosToken = bosToken == null ? "" : bosToken;
		this.eosToken = eosToken == null ? "" : eosToken;
		CompositeELResolver resolver = new CompositeELResolver();
		resolver.add(new PythonStringMethods());
		resolver.add(JinjavaInterpreterResolver.DEFAULT_RESOLVER_READ_ONLY);
		JinjavaConfig config = JinjavaConfig.newBuilder()
			.withTrimBlocks(true)
			.withLstripBlocks(true)
			.withNestedInterpretationEnabled(false)
			.withFailOnUnknownTokens(false)
			.withElResolver(resolver)
			.build();
		this.jinjava = new Jinjava(config);
		jinjava.getGlobalContext().registerFilter(new PythonToJson());
		jinjava.getGlobalContext()
			.registerFunction(new ELFunctionDefinition("", "raise_exception", ChatTemplate.class, "raiseException",
					String.class));
		jinjava.getGlobalContext()
			.registerFunction(new ELFunctionDefinition("", "strftime_now", ChatTemplate.class, "strftimeNow",
					String.class));
	}

	/**
	 * The template of a model directory's {@code tokenizer_config.json}, or null when it has none
	 * ({@code chat_template.jinja} beside it is read too, as newer models ship it that way).
	 */
	/** The template's text (to tell which tool-call format its model family writes). */
	public String source() {
		return source;
	}

	public static ChatTemplate load(Path dir) {
		Path cfg = dir.resolve("tokenizer_config.json");
		if (!Files.isRegularFile(cfg)) {
			return null;
		}
		JsonNode c = Json.read(cfg);
		String template = null;
		JsonNode t = c.get("chat_template");
		if (t != null && t.isString()) {
			template = t.asString();
		}
		else if (t != null && t.isArray()) {
			for (JsonNode named : t) {
				if ("default".equals(named.path("name").asString(""))) {
					template = named.path("template").asString();
				}
			}
		}
		Path jinja = dir.resolve("chat_template.jinja");
		if (template == null && Files.isRegularFile(jinja)) {
			try {
				template = Files.readString(jinja);
			}
			catch (java.io.IOException e) {
				throw new ModelLoadException(jinja + ": cannot read (" + e.getMessage() + ")", e);
			}
		}
		if (template == null) {
			return null;
		}
		return new ChatTemplate(template, tokenText(c.get("bos_token")), tokenText(c.get("eos_token")));
	}

	private static String tokenText(JsonNode n) {
		if (n == null || n.isNull()) {
			return "";
		}
		return n.isObject() ? n.path("content").asString("") : n.asString("");
	}

	/**
	 * Leaves the final message of a rendered conversation open, so that the model continues it (vLLM's and
	 * transformers' {@code continue_final_message}): the text is cut after the last occurrence of that
	 * message's content, dropping what the template closes a turn with (an end-of-turn token, EOS). Where
	 * the template trimmed the message's trailing spaces, the cut follows the trimmed content, as
	 * transformers does. Fails when the template does not reproduce the message.
	 *
	 * @param rendered the conversation rendered without a generation prompt
	 * @param finalContent the final message's text
	 */
	public static String openFinalMessage(String rendered, String finalContent) {
		String stripped = finalContent.strip();
		int at = rendered.lastIndexOf(stripped);
		if (at < 0) {
			throw new TemplateException("continue_final_message is set but the final message does not appear in the "
					+ "chat after applying the chat template (the template changes it)");
		}
		String lead = finalContent.stripLeading();
		if (rendered.startsWith(lead, at)) {
			return rendered.substring(0, at + lead.length()); // the message's own spacing survived
		}
		return rendered.substring(0, at + stripped.length());
	}

	/**
	 * Renders a conversation. {@code messages} and {@code tools} are plain JSON-like values (maps, lists,
	 * strings, numbers, booleans).
	 */
	public String render(List<Map<String, Object>> messages, List<Object> tools, boolean addGenerationPrompt,
			Map<String, Object> extra) {
		Map<String, Object> ctx = new HashMap<>();
		if (extra != null) {
			ctx.putAll(extra);
		}
		ctx.put("messages", messages);
		ctx.put("tools", tools);
		ctx.put("add_generation_prompt", addGenerationPrompt);
		ctx.put("bos_token", bosToken);
		ctx.put("eos_token", eosToken);
		RenderResult r;
		try {
			r = jinjava.renderForResult(source, ctx);
		}
		catch (RaisedException e) {
			throw new TemplateException(e.getMessage());
		}
		catch (RuntimeException e) {
			RaisedException raised = find(e);
			throw new TemplateException(raised != null ? raised.getMessage() : "chat template failed: " + e.getMessage());
		}
		for (TemplateError err : r.getErrors()) {
			if (err.getSeverity() == TemplateError.ErrorType.FATAL) {
				RaisedException raised = err.getException() != null ? find(err.getException()) : null;
				String msg = raised != null ? raised.getMessage() : err.getMessage();
				if (msg != null && msg.contains(RaisedException.MARK)) {
					msg = msg.substring(msg.indexOf(RaisedException.MARK) + RaisedException.MARK.length());
				}
				throw new TemplateException(raised != null || err.getMessage().contains(RaisedException.MARK) ? msg
						: "chat template failed: " + msg);
			}
		}
		return r.getOutput();
	}

	private static RaisedException find(Throwable t) {
		for (Throwable c = t; c != null; c = c.getCause()) {
			if (c instanceof RaisedException re) {
				return re;
			}
		}
		return null;
	}

	/** What a template's raise_exception throws. */
	static final class RaisedException extends RuntimeException {

		static final String MARK = "raise_exception: ";

		RaisedException(String message) {
			super(message);
		}
	}

	public static Object raiseException(String message) {
		throw new RaisedException(message);
	}

	/** Python's time.strftime for the directives templates use (%d %b %Y %B %m %H %M %S %A %a %y %j). */
	public static String strftimeNow(String format) {
		ZonedDateTime now = ZonedDateTime.now();
		StringBuilder sb = new StringBuilder();
		for (int i = 0; i < format.length(); i++) {
			char ch = format.charAt(i);
			if (ch != '%' || i + 1 == format.length()) {
				sb.append(ch);
				continue;
			}
			char d = format.charAt(++i);
			String pattern = switch (d) {
				case 'd' -> "dd";
				case 'b' -> "MMM";
				case 'B' -> "MMMM";
				case 'Y' -> "yyyy";
				case 'y' -> "yy";
				case 'm' -> "MM";
				case 'H' -> "HH";
				case 'M' -> "mm";
				case 'S' -> "ss";
				case 'A' -> "EEEE";
				case 'a' -> "EEE";
				case 'j' -> "DDD";
				default -> null;
			};
			sb.append(pattern == null ? "%" + d : now.format(DateTimeFormatter.ofPattern(pattern, Locale.ENGLISH)));
		}
		return sb.toString();
	}
}

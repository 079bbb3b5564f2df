package dev.blockserve.chat;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.ZonedDateTime;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collection;
import java.util.HashMap;
import java.util.Iterator;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.regex.Pattern;

import com.hubspot.jinjava.Jinjava;
import com.hubspot.jinjava.JinjavaConfig;
import com.hubspot.jinjava.el.JinjavaInterpreterResolver;
import com.hubspot.jinjava.interpret.JinjavaInterpreter;
import com.hubspot.jinjava.interpret.RenderResult;
import com.hubspot.jinjava.interpret.TemplateError;
import com.hubspot.jinjava.lib.fn.ELFunctionDefinition;
import com.hubspot.jinjava.lib.filter.Filter;
import jinjava.javax.el.CompositeELResolver;
import jinjava.javax.el.ELContext;
import jinjava.javax.el.ELResolver;
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

	public ChatTemplate(String source, String bosToken, String eosToken) {
		// Jinjava's parser has no step slices; the one templates use reverses a list.
		String src = STRIP_BEFORE.matcher(source).replaceAll("$1");
		src = STRIP_AFTER.matcher(src).replaceAll("$1");
		this.source = REVERSE_SLICE.matcher(src).replaceAll("($1|reverse|list)");
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

	/** Python's str methods on Java strings, answered before Jinjava's bean resolver looks for Java methods. */
	static final class PythonStringMethods extends ELResolver {

		@Override
		public Object invoke(ELContext context, Object base, Object method, Class<?>[] paramTypes, Object[] params) {
			if (!(base instanceof String s) || method == null) {
				return null;
			}
			Object[] p = params == null ? new Object[0] : params;
			Object result = call(s, method.toString(), p);
			if (result != NONE) {
				context.setPropertyResolved(true);
				return result;
			}
			return null;
		}

		private static final Object NONE = new Object();

		static Object call(String s, String m, Object[] p) {
			switch (m) {
				case "startswith":
					return affix(s, p[0], true);
				case "endswith":
					return affix(s, p[0], false);
				case "strip":
					return p.length == 0 || p[0] == null ? s.strip() : stripChars(s, p[0].toString(), true, true);
				case "lstrip":
					return p.length == 0 || p[0] == null ? s.stripLeading() : stripChars(s, p[0].toString(), true, false);
				case "rstrip":
					return p.length == 0 || p[0] == null ? s.stripTrailing() : stripChars(s, p[0].toString(), false, true);
				case "upper":
					return s.toUpperCase(Locale.ROOT);
				case "lower":
					return s.toLowerCase(Locale.ROOT);
				case "title":
					return title(s);
				case "capitalize":
					return s.isEmpty() ? s : s.substring(0, 1).toUpperCase(Locale.ROOT) + s.substring(1).toLowerCase(Locale.ROOT);
				case "split":
					return split(s, p.length > 0 ? p[0] : null, p.length > 1 ? ((Number) p[1]).intValue() : -1);
				case "replace":
					if (p.length == 3) {
						int n = ((Number) p[2]).intValue();
						String out = s;
						int from = 0;
						for (int i = 0; i < n; i++) {
							int at = out.indexOf(p[0].toString(), from);
							if (at < 0) {
								break;
							}
							out = out.substring(0, at) + p[1] + out.substring(at + p[0].toString().length());
							from = at + p[1].toString().length();
						}
						return out;
					}
					return s.replace(p[0].toString(), p[1].toString());
				case "find":
					return s.indexOf(p[0].toString());
				case "count":
					return (s.length() - s.replace(p[0].toString(), "").length()) / Math.max(1, p[0].toString().length());
				case "join":
					return join(s, p[0]);
				case "isdigit":
					return !s.isEmpty() && s.chars().allMatch(Character::isDigit);
				case "isspace":
					return !s.isEmpty() && s.chars().allMatch(Character::isWhitespace);
				default:
					return NONE;
			}
		}

		private static boolean affix(String s, Object arg, boolean start) {
			if (arg instanceof Collection<?> c) {
				for (Object o : c) {
					if (start ? s.startsWith(o.toString()) : s.endsWith(o.toString())) {
						return true;
					}
				}
				return false;
			}
			return start ? s.startsWith(arg.toString()) : s.endsWith(arg.toString());
		}

		private static String stripChars(String s, String chars, boolean left, boolean right) {
			int b = 0, e = s.length();
			while (left && b < e && chars.indexOf(s.charAt(b)) >= 0) {
				b++;
			}
			while (right && e > b && chars.indexOf(s.charAt(e - 1)) >= 0) {
				e--;
			}
			return s.substring(b, e);
		}

		private static String title(String s) {
			StringBuilder sb = new StringBuilder(s.length());
			boolean prevCased = false;
			for (int i = 0; i < s.length(); i++) {
				char c = s.charAt(i);
				sb.append(prevCased ? Character.toLowerCase(c) : Character.toUpperCase(c));
				prevCased = Character.isLetter(c);
			}
			return sb.toString();
		}

		private static List<String> split(String s, Object sep, int max) {
			List<String> out = new ArrayList<>();
			if (sep == null) {
				for (String part : s.strip().split("\\s+", max < 0 ? 0 : max + 1)) {
					if (!part.isEmpty()) {
						out.add(part);
					}
				}
				return out;
			}
			String d = sep.toString();
			int from = 0;
			while (max < 0 || out.size() < max) {
				int at = s.indexOf(d, from);
				if (at < 0) {
					break;
				}
				out.add(s.substring(from, at));
				from = at + d.length();
			}
			out.add(s.substring(from));
			return out;
		}

		private static String join(String sep, Object items) {
			StringBuilder sb = new StringBuilder();
			Iterator<?> it = items instanceof Iterable<?> i ? i.iterator() : Arrays.asList((Object[]) items).iterator();
			while (it.hasNext()) {
				sb.append(it.next());
				if (it.hasNext()) {
					sb.append(sep);
				}
			}
			return sb.toString();
		}

		@Override
		public Object getValue(ELContext context, Object base, Object property) {
			return null;
		}

		@Override
		public Class<?> getType(ELContext context, Object base, Object property) {
			return null;
		}

		@Override
		public void setValue(ELContext context, Object base, Object property, Object value) {
		}

		@Override
		public boolean isReadOnly(ELContext context, Object base, Object property) {
			return true;
		}

		@Override
		public Iterator<java.beans.FeatureDescriptor> getFeatureDescriptors(ELContext context, Object base) {
			return null;
		}

		@Override
		public Class<?> getCommonPropertyType(ELContext context, Object base) {
			return null;
		}
	}

	/** {@code tojson} as Hugging Face defines it: Python's json.dumps, ensure_ascii off, optional indent. */
	static final class PythonToJson implements Filter {

		@Override
		public String getName() {
			return "tojson";
		}

		@Override
		public Object filter(Object var, JinjavaInterpreter interpreter, String... args) {
			Integer indent = null;
			if (args != null && args.length > 0 && args[0] != null) {
				String a = args[0].trim();
				if (a.startsWith("indent=")) {
					a = a.substring(7);
				}
				try {
					indent = Integer.parseInt(a);
				}
				catch (NumberFormatException e) {
					indent = null;
				}
			}
			StringBuilder sb = new StringBuilder();
			write(sb, var, indent, 0);
			return sb.toString();
		}

		static void write(StringBuilder sb, Object v, Integer indent, int depth) {
			if (v == null) {
				sb.append("null");
			}
			else if (v instanceof Boolean b) {
				sb.append(b ? "true" : "false");
			}
			else if (v instanceof Double || v instanceof Float) {
				double d = ((Number) v).doubleValue();
				sb.append(d == Math.rint(d) && Math.abs(d) < 1e16 ? String.format(Locale.ROOT, "%.1f", d) : Double.toString(d));
			}
			else if (v instanceof Number n) {
				sb.append(n);
			}
			else if (v instanceof Map<?, ?> m) {
				if (m.isEmpty()) {
					sb.append("{}");
					return;
				}
				sb.append('{');
				boolean first = true;
				for (Map.Entry<?, ?> e : m.entrySet()) {
					sb.append(first ? "" : ",");
					newline(sb, indent, depth + 1, first);
					first = false;
					string(sb, String.valueOf(e.getKey()));
					sb.append(": ");
					write(sb, e.getValue(), indent, depth + 1);
				}
				if (indent != null) {
					sb.append('\n').append(" ".repeat(indent * depth));
				}
				sb.append('}');
			}
			else if (v instanceof Iterable<?> it) {
				Iterator<?> i = it.iterator();
				if (!i.hasNext()) {
					sb.append("[]");
					return;
				}
				sb.append('[');
				boolean first = true;
				while (i.hasNext()) {
					sb.append(first ? "" : ",");
					newline(sb, indent, depth + 1, first);
					first = false;
					write(sb, i.next(), indent, depth + 1);
				}
				if (indent != null) {
					sb.append('\n').append(" ".repeat(indent * depth));
				}
				sb.append(']');
			}
			else {
				string(sb, v.toString());
			}
		}

		private static void newline(StringBuilder sb, Integer indent, int depth, boolean first) {
			if (indent != null) {
				sb.append('\n').append(" ".repeat(indent * depth));
			}
			else if (!first) {
				sb.append(' ');
			}
		}

		static void string(StringBuilder sb, String s) {
			sb.append('"');
			for (int i = 0; i < s.length(); i++) {
				char c = s.charAt(i);
				switch (c) {
					case '"' -> sb.append("\\\"");
					case '\\' -> sb.append("\\\\");
					case '\n' -> sb.append("\\n");
					case '\r' -> sb.append("\\r");
					case '\t' -> sb.append("\\t");
					case '\b' -> sb.append("\\b");
					case '\f' -> sb.append("\\f");
					default -> {
						if (c < 0x20) {
							sb.append(String.format("\\u%04x", (int) c));
						}
						else {
							sb.append(c);
						}
					}
				}
			}
			sb.append('"');
		}
	}
}

package dev.blockserve.chat;

import java.util.Iterator;
import java.util.Locale;
import java.util.Map;
import com.hubspot.jinjava.interpret.JinjavaInterpreter;
import com.hubspot.jinjava.lib.filter.Filter;

/** {@code tojson} as Hugging Face defines it: Python's json.dumps, ensure_ascii off, optional indent. Stateless: any thread. */
final class PythonToJson implements Filter {

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

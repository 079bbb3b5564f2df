package dev.blockserve.chat;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collection;
import java.util.Iterator;
import java.util.List;
import java.util.Locale;
import com.hubspot.jinjava.Jinjava;
import jinjava.javax.el.ELContext;
import jinjava.javax.el.ELResolver;

/** Python's str methods on Java strings, answered before Jinjava's bean resolver looks for Java methods. Stateless: any thread. */
final class PythonStringMethods extends ELResolver {

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

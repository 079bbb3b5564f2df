package dev.blockserve.constraint;

import java.util.List;

/** Ten schemas of increasing depth, as the Java clients and OpenAI's strict mode write them. */
public final class Schemas {

	private Schemas() {
	}

	public static final List<String> TEN = List.of(
			// 1. flat object, all required
			"""
			{"type":"object","properties":{"name":{"type":"string","maxLength":12},"age":{"type":"integer"}},
			 "required":["name","age"],"additionalProperties":false}""",
			// 2. optional properties and booleans, null
			"""
			{"type":"object","properties":{"a":{"type":"boolean"},"b":{"type":"null"},"c":{"type":"number"}},
			 "required":["c"],"additionalProperties":false}""",
			// 3. enum and const
			"""
			{"type":"object","properties":{"color":{"enum":["red","green","blue"]},"v":{"const":2},
			 "mood":{"type":"string","enum":["ok","tired"]}},"required":["color","v","mood"],"additionalProperties":false}""",
			// 4. array of strings with bounds
			"""
			{"type":"object","properties":{"tags":{"type":"array","items":{"type":"string","maxLength":6},"minItems":1,"maxItems":3}},
			 "required":["tags"],"additionalProperties":false}""",
			// 5. nested object
			"""
			{"type":"object","properties":{"user":{"type":"object","properties":{"id":{"type":"integer"},
			 "email":{"type":"string","maxLength":16}},"required":["id","email"],"additionalProperties":false},
			 "active":{"type":"boolean"}},"required":["user","active"],"additionalProperties":false}""",
			// 6. array of objects
			"""
			{"type":"object","properties":{"items":{"type":"array","maxItems":3,"items":{"type":"object",
			 "properties":{"sku":{"type":"string","pattern":"^[A-Z]{2}-[0-9]{3}$"},"qty":{"type":"integer"}},
			 "required":["sku","qty"],"additionalProperties":false}}},"required":["items"],"additionalProperties":false}""",
			// 7. anyOf and type lists
			"""
			{"type":"object","properties":{"value":{"anyOf":[{"type":"integer"},{"type":"string","maxLength":5},
			 {"type":"array","items":{"type":"boolean"},"maxItems":2}]},"note":{"type":["string","null"],"maxLength":8}},
			 "required":["value","note"],"additionalProperties":false}""",
			// 8. $ref / $defs
			"""
			{"$defs":{"Point":{"type":"object","properties":{"x":{"type":"number"},"y":{"type":"number"}},
			 "required":["x","y"],"additionalProperties":false}},"type":"object","properties":{"from":{"$ref":"#/$defs/Point"},
			 "to":{"$ref":"#/$defs/Point"}},"required":["from","to"],"additionalProperties":false}""",
			// 9. formats
			"""
			{"type":"object","properties":{"id":{"type":"string","format":"uuid"},"day":{"type":"string","format":"date"},
			 "at":{"type":"string","format":"date-time"}},"required":["id","day","at"],"additionalProperties":false}""",
			// 10. recursive tree through $ref, depth by the model
			"""
			{"$defs":{"Node":{"type":"object","properties":{"label":{"type":"string","maxLength":4},
			 "children":{"type":"array","maxItems":2,"items":{"$ref":"#/$defs/Node"}}},"required":["label"],
			 "additionalProperties":false}},"$ref":"#/$defs/Node"}""");
}

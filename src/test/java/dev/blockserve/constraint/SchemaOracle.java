package dev.blockserve.constraint;

import java.util.List;

import com.networknt.schema.Schema;
import com.networknt.schema.SchemaRegistry;
import com.networknt.schema.SpecificationVersion;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;

/**
 * The independent judge of structured output: networknt's JSON Schema validator (draft 2020-12, format
 * assertions on). Parses with Jackson, so a text that is not JSON fails here too.
 */
public final class SchemaOracle {

	public static final JsonMapper JSON = JsonMapper.builder().build();

	private static final SchemaRegistry REGISTRY = SchemaRegistry.withDefaultDialect(SpecificationVersion.DRAFT_2020_12);

	private final Schema schema;

	public SchemaOracle(JsonNode schema) {
		this.schema = REGISTRY.getSchema(schema);
	}

	public SchemaOracle(String schema) {
		this(JSON.readTree(schema));
	}

	/** The validator's complaints about {@code text}; empty when it is JSON valid under the schema. */
	public List<String> errors(String text) {
		JsonNode value;
		try {
			value = JSON.readTree(text);
		}
		catch (RuntimeException e) {
			return List.of("not JSON: " + e.getMessage());
		}
		return schema.validate(value, ctx -> ctx.executionConfig(c -> c.formatAssertionsEnabled(true)))
			.stream()
			.map(Object::toString)
			.toList();
	}
}

package dev.blockserve.constraint;

/** A schema, regex or choice list that cannot be compiled to a grammar; the message names what and where. */
public class GrammarException extends IllegalArgumentException {

	public GrammarException(String message) {
		super(message);
	}
}

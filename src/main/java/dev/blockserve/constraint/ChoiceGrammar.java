package dev.blockserve.constraint;

import java.util.ArrayList;
import java.util.List;

import dev.blockserve.constraint.Grammar.Builder;
import dev.blockserve.constraint.Grammar.Sym;

/** The output is exactly one of a list of strings (vLLM's {@code guided_choice}). Stateless. */
public final class ChoiceGrammar {

	private ChoiceGrammar() {
	}

	public static Grammar of(List<String> choices) {
		if (choices.isEmpty()) {
			throw new GrammarException("the choice list is empty");
		}
		Builder b = new Builder();
		List<List<Sym>> alts = new ArrayList<>();
		for (String c : choices) {
			if (c.isEmpty()) {
				throw new GrammarException("a choice must not be empty");
			}
			alts.add(Builder.literal(c));
		}
		return b.build(b.choice("root", alts), "choice of " + choices.size());
	}
}

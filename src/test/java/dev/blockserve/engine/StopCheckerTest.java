package dev.blockserve.engine;

import java.util.List;

import org.junit.jupiter.api.Test;

import static org.assertj.core.api.Assertions.assertThat;

class StopCheckerTest {

	@Test
	void aStopStringAcrossDeltasIsCutAndNeverReleased() {
		StopChecker c = new StopChecker(List.of("END"));
		assertThat(c.append("abc E")).isFalse();
		assertThat(c.release(false)).isEqualTo("abc"); // the last two characters held back: they may start "END"
		assertThat(c.append("ND more")).isTrue();
		assertThat(c.release(true)).isEqualTo(" "); // the held-back blank, and nothing of the stop string
		assertThat(c.text()).isEqualTo("abc ");
	}

	/** Under min_tokens the text is kept but not searched; the first searched delta finds a stop string it completes. */
	@Test
	void uncheckedDeltasAreKeptAndAStopStringEndingLaterIsFound() {
		StopChecker c = new StopChecker(List.of("END"));
		assertThat(c.append("END x E", false)).isFalse();
		assertThat(c.append("N", false)).isFalse();
		assertThat(c.append("D y", true)).isTrue();
		assertThat(c.text()).isEqualTo("END x ");
		assertThat(c.release(true)).isEqualTo("END x ");
	}
}

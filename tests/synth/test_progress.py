"""The heartbeat of long steps (:mod:`nybble.synth.progress`)."""
import io
import time

from nybble.synth.progress import heartbeat


def test_beats_while_the_step_runs_and_stops_after():
    log = io.StringIO()
    with heartbeat("compiling", log, every=0.05):
        time.sleep(0.18)
    lines = log.getvalue().splitlines()
    assert 2 <= len(lines) <= 4 and all(line.startswith("  ... still compiling (") for line in lines)
    time.sleep(0.1)
    assert log.getvalue().splitlines() == lines      # nothing after the step


def test_silent_without_a_log_or_for_quick_steps():
    log = io.StringIO()
    with heartbeat("x", None, every=0.01):
        time.sleep(0.03)
    with heartbeat("x", log, every=10):
        pass
    assert log.getvalue() == ""

"""A heartbeat for long single steps (elaborating Verilog, compiling a Verilator model): a line
on the log every few seconds while the step runs, so that a long step never looks hung."""

import contextlib
import threading
import time

__all__ = ["heartbeat"]


@contextlib.contextmanager
def heartbeat(what, log, every=10.0):
    """While the body runs, print ``  ... still <what> (<seconds> s)`` to ``log`` every
    ``every`` seconds (nothing when ``log`` is None or the body is quicker)."""
    if log is None:
        yield
        return
    stop = threading.Event()
    start = time.perf_counter()

    def beat():
        while not stop.wait(every):
            print(f"  ... still {what} ({time.perf_counter() - start:.0f} s)", file=log,
                  flush=True)

    thread = threading.Thread(target=beat, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()

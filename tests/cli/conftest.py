"""What the CLI tests share: running ``nybble ARGV`` and collecting its exit status and output."""
import io
from contextlib import redirect_stderr, redirect_stdout

import pytest

from nybble.__main__ import main


@pytest.fixture
def run_cli():
    """``run_cli(argv) -> (exit status, stdout, stderr)``."""
    def run(argv):
        out, err = io.StringIO(), io.StringIO()
        with redirect_stdout(out), redirect_stderr(err):
            rc = main(argv)
        return rc, out.getvalue(), err.getvalue()
    return run

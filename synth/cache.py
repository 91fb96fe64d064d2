"""Content-addressed cache of tool results, stored as one JSON file per key.

Synthesis runs take seconds to minutes; their results depend only on their inputs (the Verilog
text, the script, the tool version, ...). :func:`cache_key` hashes those inputs, and
:class:`ResultCache` keeps one ``<key>.json`` per result, plus scratch work directories for the
runs that produce them::

    <cache root>/<tool>/<key>.json       # results
    <cache root>/<tool>/work/<key>-xxxx/ # one scratch directory per run (removed on success)

The cache root is ``build/cache`` relative to the current directory, or ``$NYBBLE_CACHE`` when
that is set; each tool gets a sub-directory (``yosys``, ...).
"""

import hashlib
import json
import os
import tempfile
from pathlib import Path
from nybble.sw.errors import ParameterTypeError


__all__ = ["CACHE_ENV_VAR", "default_cache_dir", "cache_key", "ResultCache"]


#: Environment variable that overrides the cache root (default ``build/cache``).
CACHE_ENV_VAR = "NYBBLE_CACHE"


def default_cache_dir(tool):
    """Cache directory of ``tool``: ``$NYBBLE_CACHE/<tool>``, else ``build/cache/<tool>``.

    The default is relative to the current directory, so it lands in the git-ignored ``build/``
    of whatever checkout the command runs in.
    """
    if not isinstance(tool, str) or not tool:
        raise ParameterTypeError(f"Tool name must be a non-empty string, not {tool!r}")
    return Path(os.environ.get(CACHE_ENV_VAR) or "build/cache") / tool


def cache_key(*parts):
    """SHA-256 hex digest of ``parts`` (each ``str`` or ``bytes``).

    Every part is length-prefixed, so ``("ab", "c")`` and ``("a", "bc")`` get different keys.
    """
    digest = hashlib.sha256()
    for part in parts:
        if isinstance(part, str):
            part = part.encode("utf-8")
        elif not isinstance(part, bytes):
            raise ParameterTypeError(f"Cache key parts must be str or bytes, not {part!r}")
        digest.update(len(part).to_bytes(8, "little"))
        digest.update(part)
    return digest.hexdigest()


class ResultCache:
    """JSON results keyed by :func:`cache_key` digests, in ``directory``.

    Writes are atomic (write to a temporary file, then rename), so concurrent runs of the same
    job (pytest-xdist, parallel sweeps) at worst compute a result twice; readers never see a
    half-written file.
    """

    def __init__(self, directory):
        if not isinstance(directory, (str, os.PathLike)):
            raise ParameterTypeError(f"Cache directory must be a path, not {directory!r}")
        self._directory = Path(directory)

    @property
    def directory(self):
        return self._directory

    def path(self, key):
        return self._directory / f"{key}.json"

    def get(self, key, require=()):
        """The stored result of ``key`` as a ``dict``, or ``None`` if absent, unreadable or
        lacking one of the keys in ``require`` (an entry from an older or interrupted writer
        is a miss, rebuilt and overwritten, never a ``KeyError`` in the caller)."""
        try:
            with open(self.path(key), encoding="utf-8") as file:
                value = json.load(file)
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            # A corrupt entry (disk full, killed process on a non-atomic filesystem) must not
            # make the run fail: treat it as a miss and let put() overwrite it.
            return None
        # valid JSON that is not a result (``null``, a list, a bare number): a miss as well
        if not isinstance(value, dict) or any(k not in value for k in require):
            return None
        return value

    def put(self, key, value):
        """Store ``value`` (a JSON-serialisable ``dict``) under ``key``."""
        self._directory.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=self._directory, prefix=f".{key[:16]}-",
                                        suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as file:
                json.dump(value, file, indent=1)
            os.replace(tmp_name, self.path(key))
        except BaseException:
            try:
                os.unlink(tmp_name)
            except FileNotFoundError:
                pass
            raise

    def work_dir(self, key):
        """A new, empty scratch directory for one run of ``key`` (unique per call)."""
        parent = self._directory / "work"
        parent.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(dir=parent, prefix=f"{key[:16]}-"))

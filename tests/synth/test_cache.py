import os
from pathlib import Path

import pytest

from nybble.synth.cache import ResultCache, cache_key, default_cache_dir


def test_default_cache_dir(monkeypatch):
    monkeypatch.delenv("NYBBLE_CACHE", raising=False)
    assert default_cache_dir("yosys") == Path("build/cache/yosys")
    monkeypatch.setenv("NYBBLE_CACHE", "/somewhere")
    assert default_cache_dir("yosys") == Path("/somewhere/yosys")


def test_cache_key_framing():
    assert cache_key("ab", "c") != cache_key("a", "bc")
    assert cache_key("ab", b"c") == cache_key(b"ab", "c")
    assert len(cache_key()) == 64
    with pytest.raises(TypeError, match=r"^Cache key parts must be str or bytes, not 1$"):
        cache_key("a", 1)


def test_result_cache_round_trip(tmp_path):
    cache = ResultCache(tmp_path / "c")
    key = cache_key("x")
    assert cache.get(key) is None
    cache.put(key, {"cells": 3, "breakdown": {"top": {"cells": 3}}})
    assert cache.get(key) == {"cells": 3, "breakdown": {"top": {"cells": 3}}}
    assert [p.name for p in (tmp_path / "c").iterdir()] == [f"{key}.json"]


def test_result_cache_corrupt_entry_is_a_miss(tmp_path):
    cache = ResultCache(tmp_path)
    key = cache_key("x")
    cache.path(key).write_text("{not json")
    assert cache.get(key) is None


def test_work_dirs_are_unique(tmp_path):
    cache = ResultCache(tmp_path)
    key = cache_key("x")
    first, second = cache.work_dir(key), cache.work_dir(key)
    assert first != second and first.is_dir() and second.is_dir()
    assert first.parent == tmp_path / "work"


@pytest.mark.parametrize("junk", ["", '{"cells": 3', "\x00" * 64, "null", "[1, 2]", "3"])
def test_a_corrupt_entry_is_overwritten_by_the_next_put(tmp_path, junk):
    cache = ResultCache(tmp_path)
    key = cache_key("x")
    cache.path(key).write_text(junk)
    assert cache.get(key) is None                      # a miss, not an exception
    cache.put(key, {"cells": 3})
    assert cache.get(key) == {"cells": 3}
    assert [p.name for p in tmp_path.iterdir()] == [f"{key}.json"]   # no temporary left


def test_put_is_atomic(tmp_path, monkeypatch):
    """A put that fails half-way (here: a value json cannot write) leaves the old entry whole
    and no temporary file behind; the entry is only ever replaced by os.replace."""
    cache = ResultCache(tmp_path)
    key = cache_key("x")
    cache.put(key, {"cells": 3})
    with pytest.raises(TypeError):
        cache.put(key, {"cells": 4, "bad": object()})
    assert cache.get(key) == {"cells": 3}
    assert [p.name for p in tmp_path.iterdir()] == [f"{key}.json"]
    replaced = []
    real_replace = os.replace
    monkeypatch.setattr(os, "replace", lambda a, b: (replaced.append((a, b)),
                                                     real_replace(a, b)))
    cache.put(key, {"cells": 5})
    assert cache.get(key) == {"cells": 5}
    (tmp, dest), = replaced
    assert Path(dest) == cache.path(key) and Path(tmp).parent == tmp_path
    assert Path(tmp).name.startswith(".") and Path(tmp).name.endswith(".tmp")


def test_an_entry_lacking_a_required_key_is_a_miss(tmp_path):
    """An entry written by an older or interrupted writer (``fmax_mhz`` missing) is a miss
    for a reader that needs that key, and a hit for one that does not."""
    cache = ResultCache(tmp_path)
    cache.put("k", {"luts": 10, "seconds": 1.0})
    assert cache.get("k", require=("fmax_mhz", "luts")) is None
    assert cache.get("k", require=("luts",)) == {"luts": 10, "seconds": 1.0}

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

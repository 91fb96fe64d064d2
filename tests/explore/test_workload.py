import pytest

from nybble.explore.workload import load_workload
from nybble.sim.workloads import llama_7b
from nybble.sw.errors import InputFileError, ParameterError


def test_prefill_is_the_sim_workload():
    w = load_workload("llama-7b", seq_len=64)
    assert w.phase == "prefill" and list(w.layers) == llama_7b(seq_len=64)


def test_decode_one_token_per_sequence():
    w = load_workload("llama-7b", phase="decode", seq_len=512, batch=2)
    by = {l.name: l for l in w.layers}
    assert (by["q_proj"].m, by["q_proj"].n, by["q_proj"].k) == (2, 4096, 4096)
    assert (by["ffn_down"].m, by["ffn_down"].k) == (2, 11008)
    assert (by["attn_scores"].m, by["attn_scores"].n, by["attn_scores"].k,
            by["attn_scores"].count) == (1, 512, 128, 64)
    assert (by["attn_values"].m, by["attn_values"].n, by["attn_values"].k) == (1, 128, 512)
    assert not w.weight_layer(by["attn_scores"]) and w.weight_layer(by["q_proj"])
    # decode MACs: weights 2 * (4 * 4096^2 + 3 * 4096 * 11008), attention 2 * 32 * 2 * 512*128
    assert w.macs == 2 * (4 * 4096 ** 2 + 3 * 4096 * 11008) + 64 * 2 * 512 * 128


def test_digest_changes_with_the_layers(tiny_topology):
    a = load_workload("llama-7b", phase="decode")
    assert a.digest() == load_workload("llama-7b", phase="decode").digest()
    assert a.digest() != load_workload("llama-7b").digest()
    t = load_workload(tiny_topology)
    assert [l.name for l in t.layers] == ["fc1", "fc2"] and t.phase is None


@pytest.mark.parametrize("args, kwargs, match", [
    (("llama-7b",), dict(phase="train"), r"phase must be one of prefill, decode, not 'train'"),
    (("resnet50",), dict(phase="decode"), r"phase and seq_len apply to llama-7b"),
    (("gpt-9",), {}, r"workload must be one of llama-7b, resnet50"),
    (("missing.csv",), {}, r"topology file 'missing.csv' does not exist"),
])
def test_workload_errors(args, kwargs, match):
    with pytest.raises((ParameterError, InputFileError), match=match):
        load_workload(*args, **kwargs)

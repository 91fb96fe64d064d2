"""``nybble gemm`` / ``nybble cycles`` on the streaming top (:mod:`nybble.stream_mode`): one
JSON document on the working and failing paths, the RTL run checked bit for bit and against
the cycle model, LLaMA-7B decode per format, the roofline PNG, SCALE-Sim ``.cfg`` sizes and
bandwidth, and bad flags refused by name."""
import json

import pytest

from nybble.cmd_example import SCALESIM_CFG


def _doc(run_cli, argv, status=0):
    rc, out, err = run_cli(argv + ["--json"])
    assert rc == status, err
    return json.loads(out)


def test_gemm_runs_on_the_streaming_top(run_cli):
    doc = _doc(run_cli, ["gemm", "--array", "2x2", "--m", "3", "--n", "5", "--k", "6",
                         "--sim", "amaranth", "--dram-bw", "3/2", "--dram-latency", "2",
                         "--a-words", "4", "--b-words", "4"])
    assert doc["mismatches"] == 0 and doc["model_exact"] and doc["passed"]
    assert doc["rtl_cycles"] == doc["cycles"] and doc["rtl_stall_cycles"] == doc["stall_cycles"]
    assert doc["dram_bw_bytes_per_cycle"] == 1.5 and doc["k_chunk"] == 4
    assert doc["rtl_bytes_read"] == doc["bytes_read"] > 0


def test_gemm_runs_weight_stationary_on_the_streaming_top(run_cli):
    doc = _doc(run_cli, ["gemm", "--array", "2x2", "--m", "7", "--n", "5", "--k", "6",
                         "--sim", "amaranth", "--dram-bw", "2", "--dram-latency", "3",
                         "--dataflow", "ws", "--a-words", "4", "--acc-rows", "4"])
    assert doc["mismatches"] == 0 and doc["model_exact"] and doc["passed"]
    assert doc["dataflow"] == "ws" and doc["acc_rows"] == 4 and doc["k_chunk"] == 4
    assert doc["rtl_cycles"] == doc["cycles"] and doc["rtl_bytes_read"] == doc["bytes_read"]
    assert doc["scratchpad_bytes"]["c"] == 2 * 4 * 8          # 2 halves x 4 rows x 2 x int32


def test_gemm_runs_input_stationary_on_the_streaming_top(run_cli):
    doc = _doc(run_cli, ["gemm", "--array", "2x2", "--m", "3", "--n", "7", "--k", "5",
                         "--sim", "amaranth", "--dram-bw", "2", "--dataflow", "is"])
    assert doc["passed"] and doc["mismatches"] == 0 and doc["model_exact"]
    assert doc["dataflow"] == "is" and (doc["m"], doc["n"], doc["k"]) == (3, 7, 5)
    assert doc["a_bytes_read"] + doc["b_bytes_read"] == doc["bytes_read"]
    doc = _doc(run_cli, ["gemm", "--array", "2x2", "--m", "3", "--n", "7", "--k", "5",
                         "--dataflow", "is"], status=2)
    assert doc["error"].startswith("dataflow 'is' (input-stationary) runs on the streaming "
                                   "top only")


def test_llama_layers_under_each_dataflow(run_cli, tmp_path):
    is_cfg = tmp_path / "is.cfg"
    is_cfg.write_text(SCALESIM_CFG.replace("Dataflow : os", "Dataflow : is"))
    docs = {df: _doc(run_cli, ["cycles", "--workload", "llama-7b", "--phase", "decode",
                               "--seq-len", "64", "--array", "4x4", "--dram-bw", "4",
                               "--dataflow", df]) for df in ("os", "ws", "is")}
    keys = {df: [sorted(r) for r in d["formats"][0]["layers"]] for df, d in docs.items()}
    assert keys["os"] == keys["ws"] == keys["is"]
    assert [d["formats"][0]["dataflow"] for d in docs.values()] == ["os", "ws", "is"]
    # M = 1: B, the weights, is what a decode step reads; every dataflow reads all of it
    for d in docs.values():
        q = next(r for r in d["formats"][0]["layers"] if r["name"] == "q_proj")
        assert q["bytes_read"] >= 4096 * 4096 // 2
    doc = _doc(run_cli, ["cycles", "--config", str(is_cfg), "--workload", "llama-7b",
                         "--seq-len", "64", "--dram-latency", "4"])
    assert doc["config"]["dataflow"] == "is"


@pytest.mark.parametrize("scheme", ["mxfp4", "nvfp4"])
def test_block_scaled_gemm_on_the_streaming_top(run_cli, scheme):
    doc = _doc(run_cli, ["gemm", "--scheme", scheme, "--array", "2x2", "--m", "3", "--n", "4",
                         "--k", "40", "--sim", "amaranth", "--dram-bw", "4", "--a-words", "4",
                         "--b-words", "4"])
    assert doc["passed"] and doc["mismatches"] == 0 and doc["model_exact"]
    assert doc["scheme"] == scheme and doc["rtl_bytes_read"] == doc["bytes_read"] > 0
    # NVFP4's per-tensor scales are applied on the host: the values are the dequantized
    # product's up to the accumulator's window
    assert doc["max_abs_error_vs_dequantized"] < 1e-3


@pytest.mark.parametrize("argv, message", [
    (["--dram-bw", "0"], r"^--dram-bw must be a positive number of bytes per cycle, not '0'$"),
    (["--dram-latency", "0"], r"^--dram-latency must be in 1\.\.1048576 cycles, not 0$"),
    (["--a-words", "3"], r"^--a-words must be a multiple of beat_words=2 in 2\.\.4194304, "
                         r"not 3$"),
    (["--a-words", "2"], r"^scratchpad A holds 2 words per half \(4 bytes in both halves\), "
                         r"less than one tile needs: 3 words per half \(6 bytes\) on a 2x2 "
                         r"int4 array; raise a_words to at least 3$"),
    (["--dram-bw", "4", "--depth", "64"], r"^--depth applies to the whole-GEMM-buffer top, "),
    (["--dram-bw", "4", "--dataflow", "ws", "--b-words", "1", "--beat-words", "1"],
     r"^scratchpad B holds 1 words per half \(2 bytes in both halves\), less than one "
     r"weight tile needs: 2 words per half \(4 bytes\) on a 2x2 int4 array; raise b_words "
     r"to at least 2$"),
    (["--dram-bw", "4", "--dataflow", "ws", "--acc-rows", "1"],
     r"^--acc-rows must be in 2\.\.1048576, not 1$"),
])
def test_gemm_refuses_bad_flags(run_cli, argv, message):
    import re
    doc = _doc(run_cli, ["gemm", "--array", "2x2", "--m", "2", "--n", "2", "--k", "5",
                         "--sim", "amaranth", *argv], status=2)
    assert re.search(message, doc["error"]), doc["error"]


def test_llama_decode_per_format_and_roofline(run_cli, tmp_path):
    png = tmp_path / "roof.png"
    doc = _doc(run_cli, ["cycles", "--workload", "llama-7b", "--phase", "decode",
                         "--dram-bw", "4", "--formats", "int16,int8,int4,mxfp4,nvfp4,q4_0",
                         "--roofline", str(png)])
    by = {f["pe"]: f for f in doc["formats"]}
    q = {pe: next(r for r in by[pe]["layers"] if r["name"] == "q_proj") for pe in by}
    assert all(r["bound"] == "memory" for r in q.values())
    assert 0.9 < 2 * q["int4"]["cycles"] / q["int8"]["cycles"] < 1.1
    assert 0.9 < 4 * q["int4"]["cycles"] / q["int16"]["cycles"] < 1.1
    # block scales ride with their blocks: 4.25 and 4.5 bits per element at the port
    for pe, bits in (("mxfp4", 4.25), ("nvfp4", 4.5), ("q4_0", 4.5), ("int4", 4)):
        assert by[pe]["port_bits_per_element"] == [bits, bits]
        assert abs(q[pe]["cycles"] / q["int4"]["cycles"] - bits / 4) < 0.01
    t4 = by["int4"]["totals"]
    assert t4["tokens_per_pass"] == 1 and t4["cycles_per_token"] == 32 * t4["cycles"]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and doc["roofline"] == str(png)


def test_cfg_sram_sizes_and_bandwidth(run_cli, tmp_path):
    cfg = tmp_path / "s.cfg"
    cfg.write_text(SCALESIM_CFG)
    doc = _doc(run_cli, ["cycles", "--config", str(cfg), "--workload", "llama-7b",
                         "--seq-len", "64", "--dram-latency", "4"])
    # 64 kB in front of 32 rows of int4 (16-byte words), two halves: 2048 words each
    assert doc["config"]["a_words"] == 2048 and doc["config"]["dram_bw_bytes_per_cycle"] == 64
    small = tmp_path / "small.cfg"
    small.write_text(SCALESIM_CFG.replace("IfmapSramSzkB:   64", "IfmapSramSzkB:   1"))
    doc = _doc(run_cli, ["cycles", "--config", str(small), "--workload", "llama-7b",
                         "--seq-len", "64", "--dram-bw", "8"], status=2)
    assert doc["error"].startswith("scratchpad A holds 32 words per half (1024 bytes in both "
                                   "halves), less than one tile needs: 63 words per half")


def test_phase_needs_llama(run_cli):
    doc = _doc(run_cli, ["cycles", "--workload", "resnet50", "--phase", "decode"], status=2)
    assert doc["error"] == "--phase applies to --workload llama-7b"
    doc = _doc(run_cli, ["cycles", "--workload", "llama-7b", "--dram-bw", "4",
                         "--formats", "int4,int3"], status=2)
    assert doc["error"].startswith("--formats: ArrayConfig.pe must be one of")


def test_text_report(run_cli):
    rc, out, err = run_cli(["cycles", "--workload", "llama-7b", "--phase", "prefill",
                            "--seq-len", "32", "--array", "4x4", "--dram-bw", "16"])
    assert rc == 0 and "cycles per token" in out and "q_proj" in out


def test_bench_stream_refuses_bad_flags(run_cli):
    doc = _doc(run_cli, ["bench", "stream", "--size", "0"], status=2)
    assert doc["error"] == "--size must be at least 1, not 0"
    doc = _doc(run_cli, ["bench", "stream", "--dram-latency", "0"], status=2)
    assert doc["error"] == "--dram-latency must be in 1..1048576 cycles, not 0"


@pytest.mark.slow
def test_bench_stream_side_by_side(run_cli):
    doc = _doc(run_cli, ["bench", "stream", "--array", "2x2", "--size", "16", "--repeats", "1"])
    assert doc["failures"] == 0 and doc["stream"]["model_exact"]
    assert doc["stream_over_whole_buffer_speed"] == pytest.approx(
        doc["stream_macs_per_second"] / doc["whole_buffer_macs_per_second"])


def test_trace_dir(run_cli, tmp_path):
    doc = _doc(run_cli, ["cycles", "--workload", "llama-7b", "--phase", "decode",
                         "--seq-len", "16", "--array", "4x4", "--dram-bw", "8",
                         "--trace", str(tmp_path / "t"), "--trace-layer", "attn_scores"])
    assert doc["trace"]["layer"] == "attn_scores" and doc["trace"]["rows"]["DRAM_READ.csv"] > 0
    assert (tmp_path / "t" / "A_SCRATCHPAD_READ.csv").read_text().startswith("cycle,word\n")
    doc = _doc(run_cli, ["cycles", "--workload", "llama-7b", "--dram-bw", "8",
                         "--trace", str(tmp_path / "u"), "--trace-layer", "nope"], status=2)
    assert doc["error"].startswith("--trace-layer must be one of q_proj, k_proj")
    doc = _doc(run_cli, ["gemm", "--array", "2x2", "--m", "2", "--n", "3", "--k", "4",
                         "--sim", "amaranth", "--dram-bw", "2", "--trace", str(tmp_path / "g")])
    assert doc["passed"] and doc["trace"]["rows"]["DRAM_WRITE.csv"] == 2 * 2

"""``kmsenvelope bench``: report structure, narrowing, the measurement engine. No test asserts a timing."""

from __future__ import annotations

import importlib.util
import io
import json
import math
from typing import Any

import pytest

import kmsenvelope
from kmsenvelope import Envelope, RawAesKeyring
from kmsenvelope.cli import bench
from kmsenvelope.cli.bench_cmd import parse_size
from kmsenvelope.cli.bench_run import CACHE_MAX_MESSAGES, QUICK_SIZES, feature
from kmsenvelope.cli.exits import CliError, ExitCode

from .test_cli import assert_fails, run


def positive(value: Any) -> bool:
    return isinstance(value, float | int) and math.isfinite(value) and value > 0


def check_marked(row: dict[str, Any], numbers: list[str]) -> None:
    """A row is either measured (every number positive) or explicitly not available, with a reason."""
    if row["status"] == "ok":
        assert all(positive(row[name]) for name in numbers), row
    else:
        assert row["status"] == bench.NOT_AVAILABLE and row["reason"], row
        assert all(row[name] is None for name in numbers), row


@pytest.fixture(scope="module")
def quick_report() -> dict[str, Any]:
    result = run("bench", "--quick", "--json")
    assert result.exit_code == 0, result.stderr
    assert result.stderr == ""  # no progress bar when stderr is not a terminal
    report: dict[str, Any] = json.loads(result.stdout)
    return report


def test_quick_json_describes_machine_and_versions(quick_report: dict[str, Any]) -> None:
    machine = quick_report["machine"]
    assert machine["cpu_count"] >= 1 and machine["platform"] and machine["python"].count(".") == 2
    versions = quick_report["versions"]
    assert versions["kmsenvelope"] == kmsenvelope.__version__
    assert (versions["aws-encryption-sdk"] is None) == (
        importlib.util.find_spec("aws_encryption_sdk") is None
    )
    assert quick_report["config"]["quick"] is True
    assert quick_report["config"]["suites"] == ["0x0478"]


def test_quick_json_message_rows(quick_report: dict[str, Any]) -> None:
    rows = quick_report["messages"]
    seen = {(r["implementation"], r["size"]) for r in rows}
    assert seen == {(impl, size) for impl in bench.IMPLEMENTATIONS for size in QUICK_SIZES}
    assert len(rows) == len(seen)
    numbers = ["encrypt_ops_per_s", "decrypt_ops_per_s", "encrypt_mb_per_s", "decrypt_mb_per_s"]
    esdk_installed = importlib.util.find_spec("aws_encryption_sdk") is not None
    for row in rows:
        check_marked(row, numbers)
        must_be_measured = row["implementation"] != bench.ESDK or esdk_installed
        assert (row["status"] == "ok") == must_be_measured, row
        if row["status"] == "ok":
            assert row["encrypt_mb_per_s"] == pytest.approx(row["encrypt_ops_per_s"] * row["size"] / 1e6)
            assert row["decrypt_mb_per_s"] == pytest.approx(row["decrypt_ops_per_s"] * row["size"] / 1e6)
        assert row["suite"] == (None if row["implementation"].startswith("AES-GCM") else "0x0478")


def test_quick_json_ratios_follow_from_rows(quick_report: dict[str, Any]) -> None:
    """A headline row at the ESDK's default frames, then a labelled row at ours; shares under ~100%."""
    from kmsenvelope.cli.bench_ratios import HEADLINE, OUR_FRAMES

    rows = {(r["implementation"], r["size"]): r for r in quick_report["messages"]}
    ratios = quick_report["ratios"]
    assert [(r["size"], r["label"]) for r in ratios] == [
        (size, label) for size in QUICK_SIZES for label in (HEADLINE, OUR_FRAMES)
    ]
    pairs = {
        HEADLINE: (bench.KMSENVELOPE_ESDK_FRAMES, bench.ESDK_DEFAULT_FRAMES, bench.ESDK_DEFAULT_FRAME_LENGTH),
        OUR_FRAMES: (bench.KMSENVELOPE, bench.ESDK, bench.FRAME_LENGTH),
    }
    for ratio in ratios:
        ours_name, esdk_name, frames = pairs[ratio["label"]]
        ours, esdk = rows[(ours_name, ratio["size"])], rows[(esdk_name, ratio["size"])]
        assert ratio["frame_length"] == ours["frame_length"] == esdk["frame_length"] == frames
        if esdk["status"] == "ok":
            assert ratio["vs_esdk_encrypt"] == pytest.approx(
                ours["encrypt_ops_per_s"] / esdk["encrypt_ops_per_s"]
            )
            assert ratio["vs_esdk_decrypt"] == pytest.approx(
                ours["decrypt_ops_per_s"] / esdk["decrypt_ops_per_s"]
            )
        else:
            assert ratio["vs_esdk_encrypt"] is None and ratio["reason"]
        # Measured beside kmsenvelope under the same conditions (no bound asserted: tests assert no timing).
        for share in (ratio["of_ceiling_encrypt"], ratio["of_ceiling_decrypt"]):
            assert positive(share), ratio
        assert ratio["ceiling"]


def test_text_report_fits_80_columns_and_labels_elapsed_time(quick_report: dict[str, Any]) -> None:
    from kmsenvelope.cli.bench_cmd import render_text

    text = render_text(quick_report)
    assert max(len(line) for line in text.splitlines()) <= 80
    assert f"(elapsed {quick_report['elapsed_s']:.1f} s)" in text.splitlines()[0]
    assert "headline: 4 KiB" in text and "64 KiB frames" in text
    # a long "not available" reason becomes a footnote rather than a wide column
    report = json.loads(json.dumps(quick_report))
    report["messages"][0].update(status=bench.NOT_AVAILABLE, reason="x " * 80)
    assert max(len(line) for line in render_text(report).splitlines()) <= 80


def test_json_keeps_its_shape(quick_report: dict[str, Any]) -> None:
    """Only new fields: every key of schema 1's rows is still there."""
    assert quick_report["schema"] == "kmsenvelope-bench/1"
    old_message_keys = {"implementation", "size", "suite", "encrypt_ops_per_s", "decrypt_ops_per_s", "reason",
                        "encrypt_mb_per_s", "decrypt_mb_per_s", "status"}  # fmt: skip
    old_ratio_keys = {"suite", "size", "vs_esdk_encrypt", "vs_esdk_decrypt", "of_ceiling_encrypt",
                      "of_ceiling_decrypt", "reason"}  # fmt: skip
    assert all(old_message_keys <= set(row) for row in quick_report["messages"])
    assert all(old_ratio_keys <= set(row) for row in quick_report["ratios"])
    assert {"machine", "versions", "config", "units", "elapsed_s"} <= set(quick_report)


def test_quick_json_dynamodb_rows(quick_report: dict[str, Any]) -> None:
    rows = quick_report["dynamodb"]
    for row in rows:
        check_marked(row, ["encrypt_items_per_s", "decrypt_items_per_s"])
    if feature("kmsenvelope.dynamodb", "ItemEncryptor") is None:
        assert [r["status"] for r in rows] == [bench.NOT_AVAILABLE]
    else:
        assert [r["status"] for r in rows] == ["ok", "ok"]
        assert ["0x6700" in rows[0]["configuration"], "0x6701" in rows[1]["configuration"]] == [True, True]


def test_quick_json_kms_rows(quick_report: dict[str, Any]) -> None:
    rows = {r["configuration"].partition(" (")[0]: r for r in quick_report["kms"]}
    numbers = [
        "encrypt_calls_per_message",
        "decrypt_calls_per_message",
        "encrypt_ops_per_s",
        "decrypt_ops_per_s",
    ]
    for row in rows.values():
        check_marked(row, numbers)
    plain, cached = rows["KmsKeyring, no cache"], rows["KmsKeyring + CachingMaterials"]
    if feature("kmsenvelope.testing", "local_aws") is None:
        assert plain["status"] == bench.NOT_AVAILABLE
    else:
        # one GenerateDataKey per encrypt and one Decrypt per decrypt, counted by kmsenvelope.stats()
        assert (plain["encrypt_calls_per_message"], plain["decrypt_calls_per_message"]) == (1.0, 1.0)
        assert plain["encrypt_usd_per_million_messages"] == pytest.approx(3.0)
        assert plain["total_usd_per_million_messages"] == pytest.approx(6.0)
    if feature("kmsenvelope.materials.caching", "CachingMaterials") is None:
        assert cached["status"] == bench.NOT_AVAILABLE and "CachingMaterials" in cached["reason"]
    else:
        # one GenerateDataKey and one Decrypt per data key, each data key serving max_messages messages
        assert cached["status"] == "ok" and cached["messages"] == 2 * CACHE_MAX_MESSAGES
        assert cached["encrypt_calls_per_message"] == pytest.approx(1 / CACHE_MAX_MESSAGES)
        assert cached["decrypt_calls_per_message"] == pytest.approx(1 / CACHE_MAX_MESSAGES)
        assert cached["total_usd_per_million_messages"] == pytest.approx(6.0 / CACHE_MAX_MESSAGES)


def test_narrowed_text_run() -> None:
    args = ["--size", "64,1KiB", "--suite", "0x0578", "--keyring", "raw-aes", "--min-time", "0.002"]
    text = run("bench", "--quick", *args)
    assert text.exit_code == 0, text.stderr
    assert "\x1b[" not in text.stdout
    assert "Messages:" in text.stdout and "Ratios:" in text.stdout and "AWS KMS" not in text.stdout
    report = json.loads(run("bench", "--json", *args).stdout)
    assert "kms" not in report
    assert {r["size"] for r in report["messages"]} == {64, 1024}
    assert {r["suite"] for r in report["messages"]} == {None, "0x0578"}


def test_bad_bench_options() -> None:
    assert_fails(run("bench", "--size", "lots"), ExitCode.USAGE)
    assert_fails(run("bench", "--suite", "0x1234"), ExitCode.USAGE)


def test_parse_size() -> None:
    assert [parse_size(s) for s in ("64", "4k", "4KiB", "16M", "16 MiB")] == [
        64,
        4096,
        4096,
        16 << 20,
        16 << 20,
    ]
    with pytest.raises(CliError):
        parse_size("0")


def test_measure_runs_the_callable_and_validates_arguments() -> None:
    calls = []
    rate = bench.measure(lambda: calls.append(1), min_time=0.01, repeat=3)
    assert positive(rate) and len(calls) >= 4  # warm-up plus at least three timed batches
    assert positive(bench.measure(lambda: None, min_time=0.01, statistic="median"))
    for bad in ({"min_time": 0}, {"repeat": 0}, {"statistic": "mean"}):
        with pytest.raises(ValueError):
            bench.measure(lambda: None, **bad)


def test_measure_interleaved_times_every_subject_in_every_round() -> None:
    order: list[str] = []
    subjects = {"a": lambda: order.append("a"), "b": lambda: order.append("b")}
    rates = bench.measure_interleaved(subjects, batch_time=0.002, rounds=3)
    assert set(rates) == {"a", "b"} and all(positive(rate) for rate in rates.values())
    # After calibration the rounds alternate: the last batch run is b's, preceded by a full batch of a.
    assert order[-1] == "b" and "a" in order[len(order) // 2 :]
    for bad in ({"batch_time": 0}, {"rounds": 0}):
        with pytest.raises(ValueError):
            bench.measure_interleaved(subjects, **bad)


def test_ratio_rows_without_a_peer() -> None:
    rows = [
        bench.ThroughputRow(bench.KMSENVELOPE, 64, "0x0478", 100.0, 50.0),
        bench.ThroughputRow(bench.ESDK, 64, "0x0478", None, None, "aws-encryption-sdk is not installed"),
        bench.ThroughputRow(bench.AESGCM_FRESH, 64, None, 1000.0, 500.0),
    ]
    [ratio] = bench.ratio_rows(rows)  # no headline row: no kmsenvelope row at 4 KiB frames
    assert (ratio.vs_esdk_encrypt, ratio.of_ceiling_encrypt, ratio.of_ceiling_decrypt) == (None, None, None)
    assert ratio.reason == "aws-encryption-sdk is not installed"
    [measured] = bench.ratio_rows(rows, min_time=0.003)
    assert positive(measured.of_ceiling_encrypt) and positive(measured.of_ceiling_decrypt)


def test_pairs_round_trip_before_they_are_measured() -> None:
    payload = b"x" * 3000
    for implementation in bench.IMPLEMENTATIONS:
        encrypt, decrypt = bench.make_pair(implementation, bench.DEFAULT_SUITE, payload)
        encrypt()
        decrypt()


def test_rich_renderings(
    quick_report: dict[str, Any], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The TTY renderings (rich tables) show the same rows as the plain text."""
    from kmsenvelope.cli import bench_cmd, inspect

    monkeypatch.setenv("COLUMNS", "250")

    bench_cmd._render_rich(quick_report)
    out = capsys.readouterr().out
    for title in ("Messages:", "Ratios:", "DynamoDB items", "AWS KMS requests"):
        assert title in out
    assert out.count("kmsenvelope, into") == len(QUICK_SIZES)
    keyring = RawAesKeyring("ns", "n", bytes(32))
    message = Envelope(keyring).encrypt(b"x", {"k": "[bold]v[/bold]"})
    doc = inspect.inspect_source(io.BytesIO(message))
    inspect._render_rich(doc)
    out = capsys.readouterr().out
    assert "[bold]v[/bold]" in out  # context values are shown as data, never as rich markup
    assert "key name: n" in out

"""Bad configuration, flags and environment: `python scheduler.py …` exits 2 with one line on stderr naming the
problem, before it talks to any cluster."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """scheduler.py with no KUBECONFIG, no MY_SCHEDULER_* and an empty HOME, so only `args` and `env` count.
    `--once` and a kubeconfig that does not exist make sure nothing would run for long if an error went unseen."""
    clean = {k: v for k, v in os.environ.items() if k != "KUBECONFIG" and not k.startswith("MY_SCHEDULER_")}
    defaults = ["--once", "--kubeconfig", str(tmp_path / "no-kubeconfig")]
    return subprocess.run(
        [sys.executable, str(ROOT / "scheduler.py"), *defaults, *args],
        env={**clean, "HOME": str(tmp_path), **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    """The exit code is 2 and stderr is exactly one `scheduler.py: error: …` line; returns that line."""
    lines = result.stderr.splitlines()
    assert (result.returncode, len(lines)) == (2, 1), result.stderr
    assert lines[0].startswith("scheduler.py: error: "), lines[0]
    assert result.stdout == ""
    return lines[0]


def policy(tmp_path: Path, text: str) -> str:
    path = tmp_path / "policy.yaml"
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize(
    "text, expected",
    [
        pytest.param("scores: [\n", ["invalid YAML", "line 2"], id="invalid YAML names the line"),
        pytest.param("scores: [{name: Nope}]\n", ["unknown score policy 'Nope'"], id="an unknown score policy"),
        pytest.param("filters: [Nope]\n", ["unknown filter policy 'Nope'"], id="an unknown filter policy"),
        pytest.param(
            "scores: [{name: LeastAllocated, weight: -1}]\n",
            ["LeastAllocated", "weight", "-1"],
            id="a negative weight",
        ),
        pytest.param("foo: 1\n", ["unknown key", "foo"], id="an unknown top-level key"),
        pytest.param("- a\n- b\n", ["mapping"], id="a list instead of a mapping"),
    ],
)
def test_a_bad_policy_file_is_one_line_naming_the_file_and_the_mistake(
    tmp_path: Path, text: str, expected: list[str]
) -> None:
    path = policy(tmp_path, text)
    line = one_line_error(run(tmp_path, "--config", path))
    assert path in line
    for words in expected:
        assert words in line


@pytest.mark.parametrize(
    "name, expected",
    [
        pytest.param("missing.yaml", "No such file or directory", id="a --config path that does not exist"),
        pytest.param(".", "Is a directory", id="a --config path that is a directory"),
    ],
)
def test_an_unreadable_policy_file_is_one_line_naming_it(tmp_path: Path, name: str, expected: str) -> None:
    path = str(tmp_path / name)
    line = one_line_error(run(tmp_path, "--config", path))
    assert "cannot read" in line
    assert expected in line


@pytest.mark.parametrize(
    "args, expected",
    [
        pytest.param(["--interval", "-1"], ["--interval", "'-1'"], id="a negative --interval"),
        pytest.param(["--interval", "0"], ["--interval", "'0'"], id="a zero --interval"),
        pytest.param(["--interval", "abc"], ["--interval", "'abc'"], id="a --interval that is not a number"),
        pytest.param(["--metrics-port", "70000"], ["--metrics-port", "70000"], id="a --metrics-port above 65535"),
        pytest.param(["--metrics-port", "abc"], ["--metrics-port", "'abc'"], id="a --metrics-port not a number"),
        pytest.param(["--mode", "nonsense"], ["--mode", "'nonsense'"], id="an unknown --mode"),
        pytest.param(["--log-format", "xml"], ["--log-format", "'xml'"], id="an unknown --log-format"),
        pytest.param(["--parallelism", "0"], ["--parallelism", "0"], id="a --parallelism below 1"),
        pytest.param(
            ["--leader-elect-renew-deadline", "20"],
            ["--leader-elect-renew-deadline", "--leader-elect-lease-duration"],
            id="a renew deadline longer than the lease",
        ),
        pytest.param(["--bogus"], ["unrecognized arguments: --bogus"], id="an unknown flag"),
    ],
)
def test_a_bad_flag_is_one_line_naming_it(tmp_path: Path, args: list[str], expected: list[str]) -> None:
    line = one_line_error(run(tmp_path, *args))
    for words in expected:
        assert words in line


@pytest.mark.parametrize(
    "variable, value, expected",
    [
        pytest.param("MY_SCHEDULER_INTERVAL", "abc", ["--interval", "'abc'"], id="MY_SCHEDULER_INTERVAL=abc"),
        pytest.param("MY_SCHEDULER_METRICS_PORT", "70000", ["--metrics-port", "70000"], id="MY_SCHEDULER_METRICS_PORT"),
        pytest.param("MY_SCHEDULER_PARALLELISM", "abc", ["--parallelism", "'abc'"], id="MY_SCHEDULER_PARALLELISM"),
        pytest.param("MY_SCHEDULER_MODE", "nonsense", ["mode", "'nonsense'"], id="MY_SCHEDULER_MODE=nonsense"),
        pytest.param("MY_SCHEDULER_LOG_FORMAT", "xml", ["log-format", "'xml'"], id="MY_SCHEDULER_LOG_FORMAT=xml"),
        pytest.param("MY_SCHEDULER_LOG_LEVEL", "bogus", ["log-level", "BOGUS"], id="MY_SCHEDULER_LOG_LEVEL=bogus"),
        pytest.param("MY_SCHEDULER_DRY_RUN", "maybe", ["dry-run", "'maybe'"], id="MY_SCHEDULER_DRY_RUN=maybe"),
    ],
)
def test_a_bad_environment_value_is_one_line_naming_the_setting(
    tmp_path: Path, variable: str, value: str, expected: list[str]
) -> None:
    line = one_line_error(run(tmp_path, env={variable: value}))
    for words in expected:
        assert words in line


def test_a_bad_environment_value_names_the_variable(tmp_path: Path) -> None:
    line = one_line_error(run(tmp_path, env={"MY_SCHEDULER_INTERVAL": "abc"}))
    assert "MY_SCHEDULER_INTERVAL" in line


def test_a_kubeconfig_that_does_not_exist_is_one_line(tmp_path: Path) -> None:
    line = one_line_error(run(tmp_path, "--kubeconfig", str(tmp_path / "nowhere" / "kubeconfig")))
    assert "cannot load Kubernetes configuration" in line


def test_a_kubeconfig_that_does_not_exist_is_named(tmp_path: Path) -> None:
    path = str(tmp_path / "nowhere" / "kubeconfig")
    assert path in one_line_error(run(tmp_path, "--kubeconfig", path))


def test_no_kubeconfig_at_all_is_one_line(tmp_path: Path) -> None:
    """Neither --kubeconfig, KUBECONFIG, ~/.kube/config nor an in-cluster service account."""
    clean = {k: v for k, v in os.environ.items() if k != "KUBECONFIG" and not k.startswith("MY_SCHEDULER_")}
    clean.pop("KUBERNETES_SERVICE_HOST", None)
    result = subprocess.run(
        [sys.executable, str(ROOT / "scheduler.py"), "--once"],
        env={**clean, "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert "cannot load Kubernetes configuration" in one_line_error(result)

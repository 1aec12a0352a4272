"""The README's kind path, for real, on one node made here without Docker (hack/e2e/: containerd, runc, the CNI
bridge and a kubelet in their own network namespace, on a local control plane). The session fixture brings the
node up once and always tears it down; the steps of test_kind_path.py run in file order, each timed, and a failed
step skips the ones after it. Opt-in (`make e2e`, i.e. `pytest -m e2e tests/e2e`): needs root and the packages
.ci/run installs."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable, Generator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest

ROOT = Path(__file__).resolve().parents[2]
HACK = ROOT / "hack" / "e2e"
TIMINGS: list[tuple[str, float]] = []
T = TypeVar("T")


@contextmanager
def timed(step: str) -> Iterator[None]:
    """Adds the step's wall time to the table printed at the end of the session."""
    start = time.monotonic()
    try:
        yield
    finally:
        TIMINGS.append((step, time.monotonic() - start))


def run(
    *command: str | Path,
    stdin: str | None = None,
    check: bool = True,
    env: dict[str, str] | None = None,
    timeout: float = 600,
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [str(c) for c in command], input=stdin, capture_output=True, text=True, env=env, timeout=timeout, check=False
    )
    if check and result.returncode != 0:
        pytest.fail(f"{' '.join(map(str, command))} exited {result.returncode}\n{result.stdout}\n{result.stderr}")
    return result


def wait_for(what: str, probe: Callable[[], T | None], timeout: float, interval: float = 0.5) -> T:
    """Polls probe until it returns something other than None (or False)."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value is not None and value is not False:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not after {timeout:.0f} s")
        time.sleep(interval)


@dataclass(frozen=True)
class Kind:
    """The e2e cluster as a user's shell has it: KUBECONFIG set and the built kubectl on PATH."""

    kubeconfig: Path
    bin: Path

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "KUBECONFIG": str(self.kubeconfig), "PATH": f"{self.bin}:{os.environ['PATH']}"}

    def kubectl(
        self, *args: str, stdin: str | None = None, check: bool = True, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return run(self.bin / "kubectl", *args, stdin=stdin, check=check, env={**self.env, **(env or {})}, timeout=120)

    def ctr(self, *args: str) -> str:
        """containerd's own client on the node's containerd (what `docker exec kind-control-plane ctr` reaches)."""
        socket = self.kubeconfig.parent / "node" / "containerd.sock"
        return run("ctr", "--address", socket, "--namespace", "k8s.io", *args).stdout

    def get(self, *args: str) -> dict[str, Any]:
        document: dict[str, Any] = json.loads(self.kubectl("get", *args, "-o", "json").stdout)
        return document


@pytest.fixture(scope="session")
def kind() -> Iterator[Kind]:
    bin_dir = Path(run(ROOT / "hack" / "build.sh", "--bin-dir").stdout.strip())
    with timed("base image: python:3.11-slim stand-in (debootstrap; cached after the first run)"):
        run(HACK / "base-image.sh")
    with timed("pause image (cached after the first run)"):
        run(HACK / "pause-image.sh")
    with timed("local-path-provisioner build (Go; cached after the first run)"):
        run(ROOT / "hack" / "local-path" / "build.sh")
    try:
        with timed("node up: network, control plane, containerd, kubelet, Ready, storage (kind create cluster)"):
            up = run(HACK / "up.sh")
        kubeconfig = Path(up.stdout.strip().splitlines()[-1].removeprefix("export KUBECONFIG="))
        yield Kind(kubeconfig, bin_dir)
    finally:
        with timed("tear-down: processes, mounts, network namespace, cgroups, files"):
            down = run(HACK / "down.sh", check=False)
        assert down.returncode == 0, down.stderr


_failed: list[str] = []


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report: pytest.TestReport = yield
    if item.get_closest_marker("e2e") and report.failed:
        _failed.append(item.name)
    return report


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("e2e") and _failed:
        pytest.skip(f"an earlier step failed: {_failed[0]}")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not TIMINGS:
        return
    terminalreporter.section("e2e timings")
    for step, seconds in TIMINGS:
        terminalreporter.write_line(f"{seconds:8.1f} s  {step}")
    terminalreporter.write_line(f"{sum(s for _, s in TIMINGS):8.1f} s  total")

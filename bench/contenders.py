"""The schedulers the benchmark compares, how each is started, and its process while it runs."""

from __future__ import annotations

import contextlib
import os
import resource
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, ClassVar

from measure import ProcSample, children, proc_sample

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"


@dataclass(frozen=True, slots=True)
class Contender:
    name: str
    kind: str  # ours | kube | naive | raw
    extra_args: tuple[str, ...] = ()
    qps: int | None = None  # kube-scheduler's clientConnection qps and burst; None: its defaults (50/100)
    daemon: bool = True  # raw-limit binds what is pending and exits
    # Ours from another checkout (an environment variable names its folder): an earlier version of the
    # scheduler measured in the same run, e.g. `git worktree add /tmp/baseline <commit>`.
    checkout_env: str | None = None
    opt_in: bool = False  # left out of the default contender list

    def command(self, scheduler_name: str, kubeconfig: str, workdir: Path, bin_dir: Path) -> list[str]:
        if self.kind == "ours":
            root = ROOT
            if self.checkout_env:
                if not os.environ.get(self.checkout_env):
                    raise RuntimeError(f"{self.name} needs {self.checkout_env}=<a checkout of the baseline commit>")
                root = Path(os.environ[self.checkout_env])
            return [sys.executable, str(root / "scheduler.py"), "--scheduler-name", scheduler_name,
                    "--kubeconfig", kubeconfig, *self.extra_args]  # fmt: skip
        if self.kind == "naive":
            return [
                sys.executable,
                str(BENCH / "naive.py"),
                "--scheduler-name",
                scheduler_name,
                "--kubeconfig",
                kubeconfig,
            ]
        if self.kind == "raw":
            return [sys.executable, str(BENCH / "raw_limit.py"), "--scheduler-name", scheduler_name,
                    "--kubeconfig", kubeconfig, "--threads", "16", *self.extra_args]  # fmt: skip
        config = workdir / f"kube-scheduler-{scheduler_name}.yaml"
        config.write_text(kube_scheduler_config(scheduler_name, kubeconfig, self.qps))
        # --secure-port 0: no serving endpoint, so no serving certificate and no delegated authn/authz lookups
        # against kube-system; the client side is all the benchmark needs.
        return [str(bin_dir / "kube-scheduler"), "--config", str(config), "--secure-port", "0"]


def kube_scheduler_config(scheduler_name: str, kubeconfig: str, qps: int | None) -> str:
    connection = f"  kubeconfig: {kubeconfig}\n"
    if qps is not None:
        connection += f"  qps: {qps}\n  burst: {qps}\n"
    return (
        "apiVersion: kubescheduler.config.k8s.io/v1\n"
        "kind: KubeSchedulerConfiguration\n"
        f"clientConnection:\n{connection}"
        "leaderElection:\n  leaderElect: false\n"
        f"profiles:\n- schedulerName: {scheduler_name}\n"
    )


CONTENDERS = {
    c.name: c
    for c in (
        Contender("ours-poll", "ours"),
        Contender("ours-watch", "ours", ("--mode", "watch")),
        Contender("ours-baseline", "ours", checkout_env="MY_SCHEDULER_BASELINE"),
        Contender("ours-no-scores", "ours", ("--config", str(BENCH / "no-scores.yaml")), opt_in=True),
        Contender("kube-scheduler-default", "kube"),
        Contender("kube-scheduler-qps5000", "kube", qps=5000),
        Contender("naive", "naive"),
        Contender("raw-limit", "raw", daemon=False),
        Contender("raw-limit-events", "raw", ("--events",), daemon=False),
    )
}
ANCHORS = ("kube-scheduler-qps5000", "kube-scheduler-default", "raw-limit", "raw-limit-events")


class Running:
    """A contender's process in its own session (so stopping it stops its children too). Its exit is collected
    with wait4, which also gives the exact CPU time and peak RSS of a process that ended by itself."""

    live: ClassVar[list[Running]] = []  # every process not yet stopped, so the harness can always clean up

    def __init__(self, command: list[str], log: Path, env: dict[str, str], *, wrapped: bool = False) -> None:
        """`wrapped`: the command is a wrapper (py-spy) around the contender; stopping signals the contender,
        and the wrapper ends when it does (py-spy would kill its target on a signal of its own)."""
        self.started = time.monotonic()
        self.wrapped = wrapped
        self._log: IO[bytes] = log.open("wb")
        self.log_path = log
        self.proc = subprocess.Popen(
            command, stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=ROOT, env=env,
            start_new_session=True,
        )  # fmt: skip
        self.rusage: resource.struct_rusage | None = None
        self.stop_seconds: float | None = None  # from the stop signal to the exit
        self.killed = False
        Running.live.append(self)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def exited(self) -> bool:
        if self.rusage is not None:
            return True
        pid, status, usage = os.wait4(self.proc.pid, os.WNOHANG)
        if pid == 0:
            return False
        self.proc.returncode = os.waitstatus_to_exitcode(status)
        self.rusage = usage
        return True

    def sample(self) -> ProcSample:
        if self.exited():
            assert self.rusage is not None
            return ProcSample(self.rusage.ru_utime + self.rusage.ru_stime, self.rusage.ru_maxrss / 1024)
        return proc_sample(self.proc.pid)

    def _session_alive(self) -> bool:
        try:
            os.killpg(self.proc.pid, 0)
        except (ProcessLookupError, PermissionError):
            return False
        return True

    def wait(self, timeout: float) -> bool:
        """Wait for the process to end by itself; True if it did."""
        deadline = time.monotonic() + timeout
        while not self.exited() and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.exited()

    def stop(self, grace: float = 15.0) -> int | None:
        """Signal the whole session, wait for the exit, then kill what is left. Records how long the exit took
        and whether it had to be killed (work still queued at the stop shows up here)."""
        begun = time.monotonic()
        if not self.exited():
            targets = children(self.proc.pid) if self.wrapped else []
            with contextlib.suppress(ProcessLookupError):
                if targets:
                    for pid in targets:
                        os.kill(pid, signal.SIGTERM)
                else:
                    os.killpg(self.proc.pid, signal.SIGTERM)
            deadline = time.monotonic() + grace
            # The whole session: under --profile the direct child is py-spy, which exits before the scheduler.
            while (not self.exited() or self._session_alive()) and time.monotonic() < deadline:
                time.sleep(0.05)
            if self.stop_seconds is None:
                self.stop_seconds = round(time.monotonic() - begun, 2)
                self.killed = not self.exited() or self._session_alive()
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)  # stragglers in the session, if any
        while not self.exited():
            time.sleep(0.05)
        self._log.close()
        if self in Running.live:
            Running.live.remove(self)
        return self.proc.returncode

    @classmethod
    def stop_all(cls) -> None:
        for running in list(cls.live):
            running.stop(grace=5.0)

    def log_tail(self, lines: int = 15) -> list[str]:
        try:
            return self.log_path.read_text(errors="replace").splitlines()[-lines:]
        except OSError:
            return []

"""The local control plane from Python, one way for the integration tests and the benchmarks: the binaries of
hack/build.sh (asked for once per process) and `hack/cluster.sh up|down DIR`."""

from __future__ import annotations

import functools
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

HACK = Path(__file__).resolve().parent
CLUSTER = HACK / "cluster.sh"


@functools.cache
def bin_dir() -> Path:
    """hack/build.sh: builds the pinned binaries unless they are current, and prints their folder. Even when
    nothing is built it hashes the pins, so ask once per process."""
    out = subprocess.run([str(HACK / "build.sh")], check=True, capture_output=True, text=True)
    return Path(out.stdout.strip())


def start_cluster(directory: Path, env: Mapping[str, str] | None = None, *, attempts: int = 1) -> str:
    """`hack/cluster.sh up DIR` (with `env` added to the environment); returns the kubeconfig's path. A failed
    start shows the last lines of each component's log, is torn down, and is tried again up to `attempts` times
    (say, a free port taken meanwhile); then RuntimeError."""
    for attempt in range(1, attempts + 1):
        out = subprocess.run(
            ["bash", str(CLUSTER), "up", str(directory)],
            check=False,
            capture_output=True,
            text=True,
            env={**os.environ, **(env or {})},
        )
        if out.returncode == 0:
            return out.stdout.strip().splitlines()[-1].removeprefix("export KUBECONFIG=")
        logs = "".join(
            f"\n--- {log.name}\n" + "\n".join(log.read_text(errors="replace").splitlines()[-10:])
            for log in sorted(directory.glob("*.log"))
        )
        print(f"cluster start failed (attempt {attempt}/{attempts}):\n{out.stderr}{logs}", file=sys.stderr)
        stop_cluster(directory)
    raise RuntimeError(f"the control plane in {directory} did not start; see above")


def stop_cluster(directory: Path) -> None:
    subprocess.run(["bash", str(CLUSTER), "down", str(directory)], check=False)

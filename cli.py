"""Flags and their MY_SCHEDULER_* environment defaults → one frozen Config. Every mistake is one line, exit 2."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

from policies.config import default_profile, load
from policies.framework import Profile

USAGE = """my-scheduler: a Kubernetes scheduler daemon. One loop: observe pending pods, decide with `policies/`, bind.

    python scheduler.py [--scheduler-name my-scheduler] [--interval 1] [--config policy.yaml] [--once] [--dry-run]
    python scheduler.py explain <namespace>/<pod>
    python scheduler.py bind <namespace>/<pod> <node> [--force] [--dry-run]
"""


@dataclass(frozen=True, slots=True)
class Config:
    scheduler_name: str = "my-scheduler"
    interval: float = 1.0
    kubeconfig: str | None = None
    config: str | None = None
    once: bool = False
    dry_run: bool = False
    log_level: str = "INFO"
    log_format: str = "text"
    parallelism: int = 16
    mode: str = "poll"
    metrics_port: int = 0
    leader_elect: bool = False
    lease_namespace: str = "kube-system"
    lease_name: str = ""
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0
    profiles: tuple[Profile, ...] = ()


class ArgumentParser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        """One line and exit 2, not argparse's usage block."""
        self.exit(2, f"{self.prog}: error: {message}\n")


def _number(value: str, kind: Callable[[str], float], low: float, high: float, wanted: str) -> Any:
    try:
        number = kind(value)
    except ValueError:
        number = None
    if number is None or not low <= number <= high:
        raise ValueError(f"must be {wanted}, got {value!r}")
    return number


def _positive(value: str) -> float:
    return float(_number(value, float, 1e-9, float("inf"), "a number > 0"))


def _port(value: str) -> int:
    return int(_number(value, int, 0, 65535, "a port number 0..65535"))


def _at_least_one(value: str) -> int:
    return int(_number(value, int, 1, float("inf"), "a whole number >= 1"))


def _boolean(value: str) -> bool:
    if value.lower() in ("true", "1", "yes"):
        return True
    if value.lower() in ("false", "0", "no", ""):
        return False
    raise ValueError(f"must be true or false, got {value!r}")


def _one_of(*choices: str) -> Callable[[str], str]:
    def convert(value: str) -> str:
        if value not in choices:
            raise ValueError(f"must be one of {', '.join(choices)}, got {value!r}")
        return value

    return convert


@dataclass(frozen=True, slots=True)
class Setting:
    """A flag whose default comes from MY_SCHEDULER_<FLAG>, else `default`. Environment values are checked
    like flag values, and a bad one is named by its variable."""

    flag: str
    convert: Callable[[str], Any] = str
    default: str | None = None
    help: str = ""
    boolean: bool = False
    common: bool = False  # also taken by the explain and bind commands

    @property
    def dest(self) -> str:
        return self.flag.removeprefix("--").replace("-", "_")

    @property
    def variable(self) -> str:
        return "KUBECONFIG" if self.flag == "--kubeconfig" else f"MY_SCHEDULER_{self.dest.upper()}"


SETTINGS = (
    Setting(
        "--scheduler-name",
        default="my-scheduler",
        common=True,
        help="the spec.schedulerName served when --config has no profiles",
    ),
    Setting("--kubeconfig", common=True, help="kubeconfig path (default: in-cluster config, else ~/.kube/config)"),
    Setting("--config", common=True, help="policy YAML: profiles, filters and weighted scores"),
    Setting("--log-level", lambda v: _one_of("DEBUG", "INFO", "WARNING", "ERROR")(v.upper()), "INFO", common=True),
    Setting("--log-format", _one_of("text", "json"), "text", common=True),
    Setting("--interval", _positive, "1.0", "seconds between polls"),
    Setting("--once", _boolean, "false", "one pass, then exit", boolean=True),
    Setting("--dry-run", _boolean, "false", "decide and log, never bind or write", boolean=True),
    Setting("--parallelism", _at_least_one, "16", "binds in flight at once"),
    Setting("--mode", _one_of("poll", "watch"), "poll", "poll every --interval, or wake on a watch of pending pods"),
    Setting("--metrics-port", _port, "0", "serve /healthz, /readyz and /metrics on this port (0: off)"),
    Setting(
        "--leader-elect", _boolean, "false", "only the holder of a Lease schedules (several replicas)", boolean=True
    ),
    Setting("--leader-elect-namespace", default="kube-system"),
    Setting("--leader-elect-name", help="the Lease's name (default: the scheduler name; never kube-scheduler's)"),
    Setting("--leader-elect-lease-duration", _positive, "15"),
    Setting("--leader-elect-renew-deadline", _positive, "10"),
    Setting("--leader-elect-retry-period", _positive, "2"),
)


def _flag_type(convert: Callable[[str], Any]) -> Callable[[str], Any]:
    """argparse shows the ValueError's text when a type function raises ArgumentTypeError."""

    def checked(value: str) -> Any:
        try:
            return convert(value)
        except ValueError as e:
            raise argparse.ArgumentTypeError(str(e)) from e

    return checked


def _add(parser: argparse.ArgumentParser, settings: Sequence[Setting], suppress: bool) -> None:
    """On subcommands the defaults are SUPPRESS, so they do not reset values given before the subcommand."""
    for s in settings:
        default = argparse.SUPPRESS if suppress else None
        shown = f"{s.help} (env {s.variable}" + (f"; default {s.default})" if s.default else ")")
        if s.boolean:
            parser.add_argument(s.flag, action="store_const", const=True, default=default, help=shown)
        else:
            parser.add_argument(s.flag, type=_flag_type(s.convert), default=default, help=shown)


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = ArgumentParser(
        prog="scheduler.py", description=USAGE, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    _add(parser, SETTINGS, suppress=False)
    commands = parser.add_subparsers(dest="command", metavar="{explain,bind}")
    explain = commands.add_parser("explain", help="why a pod is (or would be) placed where: every node, every policy")
    explain.add_argument("pod", help="<namespace>/<pod>")
    explain.add_argument("--output", choices=["table", "json"], default="table")
    _add(explain, [s for s in SETTINGS if s.common], suppress=True)
    bind = commands.add_parser("bind", help="bind a pod to a node by hand, after the same checks the scheduler makes")
    bind.add_argument("pod", help="<namespace>/<pod>")
    bind.add_argument("node")
    bind.add_argument("--force", action="store_true", help="bind even if filters fail, naming what was overridden")
    bind.add_argument(
        "--dry-run", action="store_const", const=True, default=argparse.SUPPRESS, help="check only, bind nothing"
    )
    _add(bind, [s for s in SETTINGS if s.common], suppress=True)
    args = parser.parse_args(argv)
    for s in SETTINGS:  # what no flag set comes from the environment, else the default, checked the same way
        if getattr(args, s.dest) is not None:
            continue
        raw = os.environ.get(s.variable)
        try:
            setattr(args, s.dest, s.convert(raw) if raw is not None else s.default and s.convert(s.default))
        except ValueError as e:
            parser.error(f"environment {s.variable} (for {s.flag}): {e}")
    if args.leader_elect_renew_deadline >= args.leader_elect_lease_duration:
        parser.error("--leader-elect-renew-deadline must be less than --leader-elect-lease-duration")
    return args


def make_config(args: argparse.Namespace) -> Config:
    """Flags (with their environment defaults) → Config; a bad policy file is a ConfigError."""
    profiles = load(args.config, args.scheduler_name) if args.config else (default_profile(args.scheduler_name),)
    return Config(
        scheduler_name=args.scheduler_name,
        interval=float(args.interval),
        kubeconfig=args.kubeconfig,
        config=args.config,
        once=args.once,
        dry_run=args.dry_run,
        log_level=args.log_level,
        log_format=args.log_format,
        parallelism=args.parallelism,
        mode=args.mode,
        metrics_port=args.metrics_port,
        leader_elect=args.leader_elect,
        lease_namespace=args.leader_elect_namespace,
        lease_name=args.leader_elect_name or args.scheduler_name,
        lease_duration=float(args.leader_elect_lease_duration),
        renew_deadline=float(args.leader_elect_renew_deadline),
        retry_period=float(args.leader_elect_retry_period),
        profiles=profiles,
    )

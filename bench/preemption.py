"""The preemption scenario's check, with no I/O: fed the binds and deletions of one namespace in the order the
API server committed them (one watch delivers its events in resourceVersion order), it tells whether every
preemptor got its node only after the low-priority pods there were gone, and who was evicted for whom."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(slots=True)
class PreemptionLedger:
    """`is_preemptor(name)` tells the measured high-priority pods from the low-priority ones."""

    is_preemptor: Callable[[str], bool]
    node_of: dict[str, str] = field(default_factory=dict)  # every pod seen bound, deleted or not
    live_low: dict[str, set[str]] = field(default_factory=dict)  # node → low pods bound there, not yet deleted
    victims: dict[str, float] = field(default_factory=dict)  # deleted low pod → when the deletion was seen
    preemptor_nodes: dict[str, str] = field(default_factory=dict)  # preemptor → its node
    broken: list[str] = field(default_factory=list)

    def bound(self, name: str, node: str) -> None:
        if name in self.node_of:
            return
        self.node_of[name] = node
        if not self.is_preemptor(name):
            self.live_low.setdefault(node, set()).add(name)
            return
        self.preemptor_nodes[name] = node
        if remaining := self.live_low.get(node):
            # The bind was committed while these still held the node: it was overcommitted at that moment.
            self.broken.append(
                f"{name} bound to {node} while {len(remaining)} low-priority pod(s) were still there: "
                + ", ".join(sorted(remaining))
            )

    def deleted(self, name: str, at: float) -> None:
        node = self.node_of.get(name)
        if node is None or self.is_preemptor(name) or name in self.victims:
            return
        self.victims[name] = at
        self.live_low.get(node, set()).discard(name)

    def summary(self) -> dict[str, int]:
        """Victims in all; those on nodes no preemptor took (evicted for nothing, so far); violations."""
        taken = set(self.preemptor_nodes.values())
        return {
            "victims_deleted": len(self.victims),
            "victims_elsewhere": sum(1 for v in self.victims if self.node_of[v] not in taken),
            "preemption_violations": len(self.broken),
        }

"""NodePorts: a host port can be used once per node (per protocol and host IP; 0.0.0.0 clashes with all)."""

from __future__ import annotations

from typing import ClassVar

from kubernetes.client import V1Pod

from policies.framework import SUCCESS, CycleState, Key, NodeInfo, PreFilterSkip, Status, unschedulable
from policies.resources import host_ports

NO_FREE_PORTS = "node(s) didn't have free ports for the requested pod ports"
ANY_IP = "0.0.0.0"


def conflicts(wanted: tuple[str, str, int], used: tuple[str, str, int]) -> bool:
    (ip, protocol, port), (used_ip, used_protocol, used_port) = wanted, used
    return (port == used_port and protocol == used_protocol and ANY_IP in (ip, used_ip)) or wanted == used


_WANTED: Key[set[tuple[str, str, int]]] = Key("NodePorts/wanted", pod_only=True)


class NodePorts(PreFilterSkip):
    name = "NodePorts"
    node_only: ClassVar[bool] = False

    def skips(self, pod: V1Pod, state: CycleState) -> bool:
        return not state.memo(_WANTED, lambda: host_ports(pod))

    def filter(self, pod: V1Pod, node: NodeInfo, state: CycleState) -> Status:
        wanted = state.memo(_WANTED, lambda: host_ports(pod))
        if wanted and any(conflicts(w, u) for w in wanted for u in node.used_ports):
            return unschedulable(NO_FREE_PORTS)
        return SUCCESS

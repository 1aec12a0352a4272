"""ImageLocality: prefer nodes that already have the pod's container images, as kube-scheduler v1.37 scores it
(imagelocality/image_locality.go).

For each container and init container whose image (`:latest` added when it has no tag) is in the node's
`status.images`, the image's size times the share of all nodes that have it; the sum is clamped to
23 MiB .. 1000 MiB times the number of containers and mapped linearly onto 0..100. The share keeps a widely spread
image from drawing every pod to the nodes that have it already.

Difference from kube-scheduler: an image's size is the one this node reports (kube keeps the size the first node
reporting the name gave); image volumes (`volumes[].image`) are not counted.
"""

from __future__ import annotations

from collections.abc import Sequence

from kubernetes.client import V1Pod

from policies.framework import MAX_SCORE, CycleState, Key, NodeInfo, Normalize, UniformScore

MB = 1024 * 1024
MIN_THRESHOLD = 23 * MB
MAX_CONTAINER_THRESHOLD = 1000 * MB


def normalized_image_name(name: str) -> str:
    """kube's normalizedImageName: an image without a tag is `:latest`."""
    return name if name.rfind(":") > name.rfind("/") else f"{name}:latest"


def pod_images(pod: V1Pod) -> list[str]:
    """One entry per container (init containers first), as kube counts them."""
    spec = pod.spec
    containers = [*(spec.init_containers or []), *(spec.containers or [])] if spec else []
    return [normalized_image_name(str(c.image or "")) for c in containers]


def calculate_priority(sum_scores: int, image_count: int) -> int:
    max_threshold = MAX_CONTAINER_THRESHOLD * image_count
    clamped = min(max(sum_scores, MIN_THRESHOLD), max_threshold)
    return MAX_SCORE * (clamped - MIN_THRESHOLD) // (max_threshold - MIN_THRESHOLD)


_SPREAD: Key[dict[str, int]] = Key("ImageLocality/nodes per image")


def _nodes_with(images: Sequence[str], state: CycleState) -> dict[str, int]:
    """How many nodes report each of the images: the cache's counts when it has them, else counted here."""
    known = state.image_nodes
    if known is not None:
        return {name: known[name] for name in set(images) if known.get(name)}
    counts = {name: sum(1 for n in state.nodes if name in n.facts.images) for name in set(images)}
    return {name: n for name, n in counts.items() if n}


class ImageLocality(UniformScore):
    name = "ImageLocality"
    normalize = Normalize.NONE

    def uniform_score(self, pod: V1Pod, state: CycleState) -> float | None:
        """0 everywhere when no node has any of the pod's images (the common case in a cluster without
        image reports)."""
        spread = state.memo(_SPREAD, lambda: _nodes_with(pod_images(pod), state))
        return None if spread else 0.0

    def score(self, pod: V1Pod, node: NodeInfo, state: CycleState) -> float:
        images = pod_images(pod)
        spread = state.memo(_SPREAD, lambda: _nodes_with(images, state))
        total_nodes = len(state.nodes)
        have = node.facts.images
        total = 0
        for name in images:
            size = have.get(name)
            if size is not None:
                total += int(size * (spread.get(name, 0) / total_nodes))
        if not images:
            return 0.0
        return float(calculate_priority(total, len(images)))

"""ImageLocality: kube's sizes times spread, clamped to 23 MiB .. 1000 MiB per container, onto 0..100."""

from __future__ import annotations

import pytest
from kubernetes.client import V1Pod

from policies.framework import CycleState, NodeInfo
from policies.image_locality import ImageLocality, normalized_image_name
from tests.builders import container, node, node_info, pod

MB = 1024 * 1024


def with_images(*images: str) -> V1Pod:
    return pod(containers=[{**container(), "image": image} for image in images])


def image_scores(the_pod: V1Pod, nodes: list[NodeInfo]) -> dict[str, float]:
    cycle = CycleState(nodes)
    plugin = ImageLocality()
    uniform = plugin.uniform_score(the_pod, cycle)
    return {n.name: uniform if uniform is not None else plugin.score(the_pod, n, cycle) for n in nodes}


@pytest.mark.parametrize(
    "the_pod, images, expected",
    [
        pytest.param(with_images("app:v1"), {}, {"a": 0, "b": 0}, id="no node has the image: 0 everywhere"),
        pytest.param(
            with_images("app:v1"),
            {"a": {"app:v1": 500 * MB}},
            # 500 MiB x 1/2 of the nodes = 250 MiB; (250 - 23) * 100 // (1000 - 23)
            {"a": 23, "b": 0},
            id="the size counts times the share of nodes that have the image",
        ),
        pytest.param(
            with_images("app:v1"),
            {"a": {"app:v1": 2000 * MB}, "b": {"app:v1": 2000 * MB}},
            {"a": 100, "b": 100},
            id="an image on every node counts fully, clamped at 1000 MiB per container",
        ),
        pytest.param(
            with_images("app:v1"),
            {"a": {"app:v1": 40 * MB}},
            {"a": 0, "b": 0},
            id="under 23 MiB after the spread counts nothing",
        ),
        pytest.param(
            with_images("app"),
            {"a": {"app:latest": 2000 * MB}, "b": {"app:latest": 2000 * MB}},
            {"a": 100, "b": 100},
            id="an image without a tag is app:latest",
        ),
        pytest.param(
            with_images("app:v1", "sidecar:v1"),
            {"a": {"app:v1": 2000 * MB}, "b": {"app:v1": 2000 * MB}},
            # 2000 MiB over a threshold of 2 x 1000 MiB: (2000 - 23) * 100 // (2000 - 23)
            {"a": 100, "b": 100},
            id="the upper threshold grows with the number of containers",
        ),
        pytest.param(
            with_images("app:v1", "sidecar:v1"),
            {"a": {"app:v1": 1000 * MB}, "b": {"app:v1": 1000 * MB}},
            {"a": 49, "b": 49},
            id="one image of two containers: (1000 - 23) * 100 // (2000 - 23)",
        ),
    ],
)
def test_score(the_pod: V1Pod, images: dict[str, dict[str, int]], expected: dict[str, float]) -> None:
    nodes = [node_info(node(name, images=images.get(name))) for name in ("a", "b")]
    assert image_scores(the_pod, nodes) == expected


@pytest.mark.parametrize(
    "name, normalized",
    [
        ("nginx", "nginx:latest"),
        ("nginx:1.27", "nginx:1.27"),
        ("registry:5000/app", "registry:5000/app:latest"),
        ("registry:5000/app:v2", "registry:5000/app:v2"),
    ],
)
def test_normalized_image_name(name: str, normalized: str) -> None:
    assert normalized_image_name(name) == normalized

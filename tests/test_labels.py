"""The shared label-selector matcher (metav1.LabelSelector semantics)."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes.client import V1LabelSelector

from policies import labels
from tests.builders import expr, label_selector

APP_WEB = {"app": "web", "tier": "front"}


@pytest.mark.parametrize(
    "selector, pod_labels, matches",
    [
        pytest.param(None, APP_WEB, False, id="a missing selector matches nothing"),
        pytest.param(label_selector(), APP_WEB, True, id="an empty selector matches everything"),
        pytest.param(label_selector(), {}, True, id="an empty selector matches even an unlabelled pod"),
        pytest.param(label_selector({"app": "web"}), APP_WEB, True, id="matchLabels matches a subset of the labels"),
        pytest.param(label_selector({"app": "db"}), APP_WEB, False, id="matchLabels with another value does not match"),
        pytest.param(label_selector({"app": "web", "x": "y"}), APP_WEB, False, id="every matchLabels entry must match"),
        pytest.param(label_selector({"app": ""}), {}, False, id="matchLabels with an empty value needs the key"),
        pytest.param(
            label_selector(None, expr("app", "In", "db", "web")), APP_WEB, True, id="In matches any listed value"
        ),
        pytest.param(label_selector(None, expr("app", "In", "db")), APP_WEB, False, id="In fails on an unlisted value"),
        pytest.param(label_selector(None, expr("zone", "In", "a")), APP_WEB, False, id="In fails on a missing key"),
        pytest.param(label_selector(None, expr("app", "NotIn", "db")), APP_WEB, True, id="NotIn matches another value"),
        pytest.param(
            label_selector(None, expr("app", "NotIn", "web")), APP_WEB, False, id="NotIn fails on a listed value"
        ),
        pytest.param(label_selector(None, expr("zone", "NotIn", "a")), APP_WEB, True, id="NotIn matches a missing key"),
        pytest.param(label_selector(None, expr("tier", "Exists")), APP_WEB, True, id="Exists matches a present key"),
        pytest.param(label_selector(None, expr("zone", "Exists")), APP_WEB, False, id="Exists fails on a missing key"),
        pytest.param(
            label_selector(None, expr("zone", "DoesNotExist")), APP_WEB, True, id="DoesNotExist matches a missing key"
        ),
        pytest.param(
            label_selector(None, expr("app", "DoesNotExist")), APP_WEB, False, id="DoesNotExist fails on a present key"
        ),
        pytest.param(
            label_selector(None, expr("app", "Gt", "1")), {"app": "2"}, False, id="Gt is not a label selector operator"
        ),
        pytest.param(
            label_selector({"app": "web"}, expr("tier", "In", "back")),
            APP_WEB,
            False,
            id="matchLabels and matchExpressions are AND-ed",
        ),
        pytest.param(
            label_selector({"app": "web"}, expr("tier", "Exists"), expr("zone", "DoesNotExist")),
            APP_WEB,
            True,
            id="a pod matching every requirement matches",
        ),
        pytest.param(label_selector({"app": "web"}), None, False, id="a pod without labels matches no requirement"),
    ],
)
def test_selector_matches(selector: V1LabelSelector | None, pod_labels: dict[str, str] | None, matches: bool) -> None:
    assert labels.matches(selector, pod_labels) is matches


@pytest.mark.parametrize(
    "selector, empty",
    [
        pytest.param(None, False, id="a missing selector is not empty (it matches nothing)"),
        pytest.param(label_selector(), True, id="a selector without requirements is empty"),
        pytest.param(label_selector({}), True, id="empty matchLabels leave a selector empty"),
        pytest.param(label_selector({"app": "web"}), False, id="matchLabels make a selector non-empty"),
        pytest.param(label_selector(None, expr("app", "Exists")), False, id="matchExpressions make it non-empty"),
    ],
)
def test_is_empty(selector: V1LabelSelector | None, empty: bool) -> None:
    assert labels.is_empty(selector) is empty


@pytest.mark.parametrize(
    "selector, extra, pod_labels, matches",
    [
        pytest.param(
            label_selector({"app": "web"}),
            {"rev": "2"},
            {"app": "web", "rev": "2"},
            True,
            id="the extra label is required and present",
        ),
        pytest.param(
            label_selector({"app": "web"}),
            {"rev": "2"},
            {"app": "web", "rev": "1"},
            False,
            id="another value of the extra label fails",
        ),
        pytest.param(
            label_selector({"app": "web"}),
            {},
            {"app": "web", "rev": "1"},
            True,
            id="no extra labels leave the selector alone",
        ),
        pytest.param(None, {"rev": "2"}, {"rev": "2"}, False, id="a missing selector still matches nothing"),
    ],
)
def test_with_labels_ands_the_extra_labels(
    selector: V1LabelSelector | None, extra: dict[str, str], pod_labels: dict[str, Any], matches: bool
) -> None:
    assert labels.matches(labels.with_labels(selector, extra), pod_labels) is matches

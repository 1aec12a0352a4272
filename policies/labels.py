"""Label selectors (metav1.LabelSelector) as kube-scheduler evaluates them, for PodTopologySpread and
InterPodAffinity: `matchLabels` and `matchExpressions` (In, NotIn, Exists, DoesNotExist) are AND-ed.

Two kube details matter: a missing (nil) selector matches nothing, while an empty one (`{}`) matches
everything (`metav1.LabelSelectorAsSelector`). Node selectors are a different language (they add Gt/Lt and
`matchFields`) and live in node_affinity.py.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping

from kubernetes.client import V1LabelSelector, V1LabelSelectorRequirement, V1Pod

# Every namespace carries this label (set by the API server since 1.21); it is the only namespace label we
# know without reading Namespace objects.
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"


def requirement_matches(requirement: V1LabelSelectorRequirement, labels: Mapping[str, str]) -> bool:
    values = requirement.values or []
    present = requirement.key in labels
    match requirement.operator:
        case "In":
            return present and labels[requirement.key] in values
        case "NotIn":
            return not present or labels[requirement.key] not in values
        case "Exists":
            return present
        case "DoesNotExist":
            return not present
    # Any other operator is invalid in a label selector: kube fails to parse it; here it matches nothing.
    return False


def matches(selector: V1LabelSelector | None, labels: Mapping[str, str] | None) -> bool:
    """kube's `LabelSelectorAsSelector(selector).Matches(labels)`."""
    if selector is None:
        return False
    labels = labels or {}
    return all(k in labels and labels[k] == v for k, v in (selector.match_labels or {}).items()) and all(
        requirement_matches(r, labels) for r in selector.match_expressions or []
    )


def identity(selector: V1LabelSelector | None) -> Hashable:
    """What the selector requires, as a hashable value: selectors written alike have the same identity."""
    if selector is None:
        return None
    return (
        tuple(sorted((selector.match_labels or {}).items())),
        tuple((r.key, r.operator, tuple(r.values or ())) for r in selector.match_expressions or []),
    )


def is_empty(selector: V1LabelSelector | None) -> bool:
    """kube's `Selector.Empty()`: a selector without requirements (it matches everything); nil is not empty."""
    return selector is not None and not selector.match_labels and not selector.match_expressions


def with_labels(selector: V1LabelSelector | None, extra: Mapping[str, str]) -> V1LabelSelector | None:
    """The selector AND-ed with `key In (value)` for each extra label (kube's matchLabelKeys merge).
    A nil selector stays nil: it matches nothing either way."""
    if selector is None or not extra:
        return selector
    added = [V1LabelSelectorRequirement(key=k, operator="In", values=[v]) for k, v in sorted(extra.items())]
    return V1LabelSelector(
        match_labels=selector.match_labels, match_expressions=[*(selector.match_expressions or []), *added]
    )


def pod_labels(pod: V1Pod) -> Mapping[str, str]:
    return (pod.metadata.labels if pod.metadata else None) or {}


def pod_namespace(pod: V1Pod) -> str:
    return str(pod.metadata.namespace or "") if pod.metadata else ""


def namespace_labels(namespace: str, known: Mapping[str, Mapping[str, str]] | None = None) -> Mapping[str, str]:
    """The namespace's labels from `known` (namespace → labels, from the cluster; a namespace not there has
    none, as kube's lister gives), or, without that, only the name label every namespace carries."""
    if known is not None:
        return known.get(namespace, {})
    return {NAMESPACE_NAME_LABEL: namespace}

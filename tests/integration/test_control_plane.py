"""The local control plane is a real one: binding, server-set conditions, RBAC with real tokens, kubectl."""

from __future__ import annotations

import pytest
from kubernetes import client

from kubeapi import PodRef
from tests.integration.conftest import Env, body, conditions, node_name, service_account_token


def test_a_binding_sets_node_name_and_the_server_sets_pod_scheduled(env: Env) -> None:
    node = env.node("n")
    pod = env.pod("p")
    binding = client.V1Binding(
        metadata=client.V1ObjectMeta(name="p", uid=PodRef.of(pod).uid),
        target=client.V1ObjectReference(kind="Node", name=node),
    )
    env.core.create_namespaced_pod_binding("p", env.namespace, binding, _preload_content=False)
    bound = env.read("p")
    assert node_name(bound) == node
    assert [(c.type, c.status) for c in conditions(bound)] == [("PodScheduled", "True")]


def _service_account_client(env: Env, verbs: list[str]) -> client.CoreV1Api:
    ns = env.namespace
    env.core.create_namespaced_service_account(ns, body({"metadata": {"name": "reader"}}))
    rbac = client.RbacAuthorizationV1Api(env.core.api_client)
    rbac.create_namespaced_role(
        ns, body({"metadata": {"name": "r"}, "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": verbs}]})
    )
    rbac.create_namespaced_role_binding(
        ns,
        body(
            {
                "metadata": {"name": "rb"},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "r"},
                "subjects": [{"kind": "ServiceAccount", "name": "reader", "namespace": ns}],
            }
        ),
    )
    token = service_account_token(env.core, "reader", ns)
    configuration = client.Configuration()
    base = env.core.api_client.configuration
    configuration.host, configuration.ssl_ca_cert = base.host, base.ssl_ca_cert
    configuration.api_key = {"authorization": f"Bearer {token}"}
    return client.CoreV1Api(client.ApiClient(configuration))


def test_a_service_account_token_gets_exactly_what_its_role_grants(env: Env) -> None:
    env.pod("p")
    reader = _service_account_client(env, ["get", "list"])
    assert [PodRef.of(p).name for p in reader.list_namespaced_pod(env.namespace).items] == ["p"]
    with pytest.raises(client.ApiException) as denied:
        reader.delete_namespaced_pod("p", env.namespace)
    assert denied.value.status == 403
    with pytest.raises(client.ApiException) as secrets:
        reader.list_namespaced_secret(env.namespace)
    assert secrets.value.status == 403


def test_kubectl_lists_the_simulated_nodes(env: Env) -> None:
    names = [env.node(f"n{i}") for i in range(3)]
    out = env.cluster.kubectl("get", "nodes", "-o", "name").stdout.split()
    assert {f"node/{n}" for n in names} <= set(out)

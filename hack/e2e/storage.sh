#!/usr/bin/env bash
# kind's default storage (kind's pkg/build/nodeimage/const_storage.go): rancher's local-path-provisioner and the
# default StorageClass `standard` (rancher.io/local-path, WaitForFirstConsumer, reclaim Delete), with kind's
# namespace, ServiceAccount and ConfigMap `local-path-config` (config.json, setup, teardown, helperPod.yaml).
# Differences from kind, because this machine pulls no images:
#   - the provisioner runs on the host, in the cgroup /$E2E_CGROUP/control-plane, with the admin kubeconfig (as the
#     control plane here does), not as a Deployment with kind's ClusterRole: so no container of it runs on the node
#     and tear-down stops it with the control plane. It is the stock binary (hack/local-path/build.sh).
#   - the helper pod it creates on the node to make and remove a volume's directory (it sets nodeName itself: no
#     scheduler) runs the python:3.11-slim stand-in (base-image.sh; it has sh, mkdir, rm), preloaded into the node's
#     containerd as kind's node image preloads kindest/local-path-helper, with imagePullPolicy: Never.
#   - the node's /var/local-path-provisioner is $E2E_RUN/node/local-path-provisioner (tear-down deletes it).
# Its log says "failed to save helper-pod-… logs: unable to retrieve in cluster config" after each helper pod: it
# copies a helper's output into its own log through an in-cluster client only (saveHelperPodLogs), so out of the
# cluster it cannot; nothing else depends on it.
# Needs control-plane.sh and node.sh first.
set -euo pipefail
# shellcheck source=hack/e2e/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

provisioner="$("$E2E_REPO/hack/local-path/build.sh")"
kubectl="$("$E2E_REPO/hack/build.sh" --bin-dir)/kubectl"
helper_image=docker.io/library/python:3.11-slim
volumes="$E2E_RUN/node/local-path-provisioner"
mkdir -p "$volumes"
"$E2E_HACK/load-image.sh" "$helper_image"

"$kubectl" --kubeconfig "$E2E_RUN/kubeconfig" apply -f - > /dev/null <<YAML
apiVersion: v1
kind: Namespace
metadata:
  name: local-path-storage
---
apiVersion: v1
kind: ServiceAccount
metadata:
  name: local-path-provisioner-service-account
  namespace: local-path-storage
---
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: standard
  annotations:
    storageclass.kubernetes.io/is-default-class: "true"
provisioner: rancher.io/local-path
volumeBindingMode: WaitForFirstConsumer
reclaimPolicy: Delete
---
kind: ConfigMap
apiVersion: v1
metadata:
  name: local-path-config
  namespace: local-path-storage
data:
  config.json: |-
    {"nodePathMap": [{"node": "DEFAULT_PATH_FOR_NON_LISTED_NODES", "paths": ["$volumes"]}]}
  setup: |-
    #!/bin/sh
    set -eu
    mkdir -m 0777 -p "\$VOL_DIR"
  teardown: |-
    #!/bin/sh
    set -eu
    rm -rf "\$VOL_DIR"
  helperPod.yaml: |-
    apiVersion: v1
    kind: Pod
    metadata:
      name: helper-pod
    spec:
      containers:
      - name: helper-pod
        image: $helper_image
        imagePullPolicy: Never
YAML

# Without --config it reads config.json and helperPod.yaml from the ConfigMap, as kind's Deployment reads the files
# the ConfigMap mounts; the helper pods mount its setup and teardown scripts.
e2e_spawn control-plane local-path-provisioner "$provisioner" --debug start \
  --kubeconfig "$E2E_RUN/kubeconfig" --namespace local-path-storage --configmap-name local-path-config
e2e_wait 30 local-path-provisioner grep -q "Started provisioner controller" "$E2E_RUN/logs/local-path-provisioner.log" \
  || { tail -20 "$E2E_RUN/logs/local-path-provisioner.log" >&2; exit 1; }
e2e_log "storage: StorageClass standard (default), local-path-provisioner on the host, volumes in $volumes"

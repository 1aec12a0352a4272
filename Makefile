# my-scheduler: the commands the README names. The built kubectl is on PATH for every target.
SHELL := /bin/bash
PYTHON ?= python3
BIN := $(shell hack/build.sh --bin-dir)
export PATH := $(BIN):$(PATH)
CLUSTER_DIR ?= $(HOME)/.cache/my-scheduler/clusters/default

.PHONY: deps build cluster-up cluster-down nodes demo test unit lint bench e2e

deps:  ## Python packages for the scheduler, tests, linters and benchmarks
	$(PYTHON) -m pip install -q --disable-pip-version-check -r requirements-dev.txt

build:  ## kube-apiserver, kube-scheduler, kubectl, etcd from the official Go modules (cached)
	@hack/build.sh > /dev/null

cluster-up: build  ## a local control plane; prints `export KUBECONFIG=…` last
	@hack/cluster.sh up $(CLUSTER_DIR)

cluster-down:
	@hack/cluster.sh down $(CLUSTER_DIR)

nodes:  ## simulated nodes in the KUBECONFIG cluster: make nodes N=100 ARGS="--zones 3"
	$(PYTHON) hack/nodes.py $(or $(N),3) $(ARGS)

demo: deps build  ## the scheduler binds test-pod.yaml on a fresh local control plane, then everything stops
	hack/demo.sh

test: deps build  ## unit and integration tests (integration tests start their own control plane)
	$(PYTHON) -m pytest

unit:
	$(PYTHON) -m pytest tests --ignore=tests/integration

lint:
	$(PYTHON) -m ruff check . && $(PYTHON) -m ruff format --check . && $(PYTHON) -m mypy

bench: deps build  ## benchmarks against kube-scheduler on the local control plane (bench/README.md)
	$(PYTHON) bench/bench.py

e2e: deps build  ## the README's kind path on a real node made here without Docker (root; hack/e2e/, tests/e2e/)
	$(PYTHON) -m pytest -m e2e tests/e2e

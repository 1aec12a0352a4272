# my-scheduler: the commands the README names. The built kubectl is on PATH for every target.
SHELL := /bin/bash
PYTHON ?= python3
BIN := $(shell hack/build.sh --bin-dir)
export PATH := $(BIN):$(PATH)
CLUSTER_DIR ?= $(HOME)/.cache/my-scheduler/clusters/default

.PHONY: deps build cluster-up cluster-down nodes demo test unit integration lint bench

deps:  ## Python packages for the scheduler, tests, linters and benchmarks
	$(PYTHON) -m pip install -q -r requirements-dev.txt

build:  ## kube-apiserver, kube-scheduler, kubectl, etcd from the official Go modules (cached)
	hack/build.sh

cluster-up: build  ## a local control plane; prints `export KUBECONFIG=…` last
	@hack/cluster.sh up $(CLUSTER_DIR)

cluster-down:
	@hack/cluster.sh down $(CLUSTER_DIR)

demo: build  ## the scheduler binds test-pod.yaml on a fresh local control plane, then everything stops
	hack/demo.sh

test: build  ## unit and integration tests (integration tests start their own control plane)
	$(PYTHON) -m pytest

unit:
	$(PYTHON) -m pytest tests --ignore=tests/integration

lint:
	$(PYTHON) -m ruff check . && $(PYTHON) -m ruff format --check . && $(PYTHON) -m mypy

bench: build  ## benchmarks against kube-scheduler on the local control plane (bench/README.md)
	$(PYTHON) bench/bench.py

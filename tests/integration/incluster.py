"""Run scheduler.py as it runs in its pod, with the service account read from another directory. Tests only.

The python client's in-cluster loader reads /var/run/secrets/kubernetes.io/serviceaccount/{token,ca.crt}, fixed
paths a test cannot write. This wrapper points the loader at MY_SCHEDULER_SERVICEACCOUNT_DIR, then calls
scheduler.main from the current directory (the image's /app layout):

    cd APP && KUBERNETES_SERVICE_HOST=127.0.0.1 KUBERNETES_SERVICE_PORT=PORT \
        MY_SCHEDULER_SERVICEACCOUNT_DIR=DIR python tests/integration/incluster.py --once ...

load_incluster_config() reads the module's path constants when it is called, so setting them here is enough.
"""

from __future__ import annotations

import os
import sys

from kubernetes.config import incluster_config

directory = os.environ["MY_SCHEDULER_SERVICEACCOUNT_DIR"]
incluster_config.SERVICE_TOKEN_FILENAME = os.path.join(directory, "token")
incluster_config.SERVICE_CERT_FILENAME = os.path.join(directory, "ca.crt")
sys.path.insert(0, os.getcwd())

from scheduler import main  # noqa: E402 — only after the loader points at the test's directory

sys.exit(main(sys.argv[1:]))

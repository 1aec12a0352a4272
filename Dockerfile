# my-scheduler: the daemon and its policies, nothing else (tests, hack/ and bench/ stay out; see .dockerignore).
#   docker build -t my-scheduler:dev .
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore

WORKDIR /app

# Dependencies first: this layer is rebuilt only when requirements.txt changes.
COPY requirements.txt ./
RUN pip install --no-cache-dir -r requirements.txt

# The daemon's top-level modules (scheduler.py, kubeapi.py and the ones it imports) and its policies: .dockerignore
# keeps tests/, hack/ and bench/ out of the context, and a test checks that /app holds exactly what it imports.
COPY *.py ./
COPY policies/ ./policies/

# Files stay owned by root, so the process cannot change its own code; 65532 is the distroless "nonroot" user,
# matching runAsUser in rbac-deploy.yaml.
USER 65532:65532

ENTRYPOINT ["python", "/app/scheduler.py"]

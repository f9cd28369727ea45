# syntax=docker/dockerfile:1
#
# The oxide-csi image: one image for the controller and the node plugin (the chart picks the
# mode with `serve --mode ...`).
#
#   docker build -t REGISTRY/oxide-csi:0.1.0 .
#
# Two stages: the first builds the wheel and installs it with its dependencies into a virtual
# environment; the second is a slim Python with only that environment and the filesystem tools
# the node plugin runs (mkfs.ext4, mkfs.xfs, blkid, mount). No compiler, no build tools, no
# source tree in the final image.
#
# Pins: the base image by Debian release and Python minor version; Debian packages by upstream
# version with the Debian revision left open (`=1.47.0-*`), so that security rebuilds of the
# same upstream release still install while a different upstream version fails the build.
# Python dependencies come from the wheel's own requirements (pyproject.toml).

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1

WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src

# pip builds the wheel in an isolated environment (setuptools, as pyproject's build-system
# names it); the wheel is then installed with its runtime dependencies into /opt/oxide-csi,
# which is all the final stage takes.
RUN python -m venv /opt/oxide-csi \
    && /opt/oxide-csi/bin/pip wheel --no-deps --wheel-dir /dist . \
    && /opt/oxide-csi/bin/pip install /dist/oxide_csi-*.whl \
    && /opt/oxide-csi/bin/oxide-csi --version

FROM ${PYTHON_IMAGE}

ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="oxide-csi" \
      org.opencontainers.image.description="Kubernetes CSI driver csi.oxide.computer for Oxide rack disks" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="MPL-2.0"

# e2fsprogs: mkfs.ext4, e2fsck; xfsprogs: mkfs.xfs; util-linux and mount: blkid, mount,
# umount, findmnt; util-linux brings libudev1, which pyudev's uevent monitor loads (a stage
# waiting for a hot-plugged disk; devices themselves are found by reading sysfs).
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        e2fsprogs=1.47.0-* \
        xfsprogs=6.1.0-* \
        util-linux=2.38.1-* \
        mount=2.38.1-* \
    && rm -rf /var/lib/apt/lists/*

COPY --from=build /opt/oxide-csi /opt/oxide-csi

ENV PATH=/opt/oxide-csi/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1

# The node plugin mounts filesystems and so runs as root (the chart sets that explicitly);
# the image itself carries no user of its own.
ENTRYPOINT ["oxide-csi"]
CMD ["--help"]

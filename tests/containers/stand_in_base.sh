#!/usr/bin/env bash
# Build a stand-in for the python:3.11-slim base image from Debian 12's own packages, for machines
# that reach Debian's archive and PyPI but no image registry. Debian 12's python3 is Python 3.11,
# the version the generated projects pin. The stand-in is tagged with the real image's name, so the
# generated Dockerfile builds on it unchanged (with --pull=never); it is built once: an image that
# already has the tag is kept.
#
# It is not the real python:3.11-slim, which builds Python from source under /usr/local: image
# sizes and timings measured on it say so.
set -euo pipefail

TAG="${1:-docker.io/library/python:3.11-slim}"
PODMAN=(podman --runtime runc)

if "${PODMAN[@]}" image exists "$TAG"; then
    echo "stand-in base: $TAG exists, kept"
    exit 0
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

mmdebstrap --quiet --variant=minbase --include=python3,python3-pip,python3-venv,passwd \
    bookworm "$work/rootfs.tar"
"${PODMAN[@]}" import "$work/rootfs.tar" localhost/nb2prod-stand-in:raw

# pip inside the build trusts what pip trusts here.
cp /etc/ssl/certs/ca-certificates.crt "$work/ca.crt"
cat > "$work/Containerfile" <<'CONTAINERFILE'
FROM localhost/nb2prod-stand-in:raw
COPY ca.crt /etc/ssl/certs/nb2prod-ca.crt
RUN printf '[global]\ncert = /etc/ssl/certs/nb2prod-ca.crt\n' > /etc/pip.conf \
    && rm -f /usr/lib/python3.11/EXTERNALLY-MANAGED \
    && ln -s /usr/bin/python3 /usr/local/bin/python \
    && ln -s /usr/bin/pip3 /usr/local/bin/pip
ENV LANG=C.UTF-8
CMD ["python3"]
CONTAINERFILE
"${PODMAN[@]}" build --quiet --network host --pull=never -t "$TAG" "$work"
"${PODMAN[@]}" rmi localhost/nb2prod-stand-in:raw >/dev/null
echo "stand-in base: $TAG built"

#!/bin/bash
# Builds the base images the project's Dockerfile and container tests use, from Debian bookworm with
# debootstrap, for machines that cannot pull from a registry (CI here). Users with a registry do not
# need this: the Dockerfile's defaults are public images. Each image is built once and reused.
#   blockserve-base/build:bookworm       JDK 17, g++, CMake, make, libgomp1 (the Dockerfile's build stage)
#   blockserve-base/run:bookworm         JRE 17 (headless), libgomp1 (the image users run)
#   blockserve-base/prometheus:bookworm  Debian's prometheus (the container tests' scraper)
# Usage: deploy/docker/make-base-images.sh [--force]   (root, a running Docker engine, debootstrap)
set -euo pipefail
mirror=$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -1)
mirror=${mirror:-http://deb.debian.org/debian}
force=${1:-}

make_image() { # name packages
  local name=$1 packages=$2
  if [ "$force" != --force ] && docker image inspect "$name" >/dev/null 2>&1; then
    echo "base image $name: present"
    return
  fi
  local root
  root=$(mktemp -d /tmp/blockserve-rootfs.XXXXXX)
  echo "base image $name: debootstrap bookworm + $packages"
  debootstrap --variant=minbase --include="$packages" bookworm "$root" "$mirror" >"$root.log" 2>&1 \
    || { tail -20 "$root.log"; exit 1; }
  # the CAs this machine adds to the system's (a TLS-intercepting egress proxy, a company CA): the
  # images must trust what the host trusts to reach Maven Central or the Hugging Face Hub through it
  if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
    cp /usr/local/share/ca-certificates/*.crt "$root/usr/local/share/ca-certificates/"
    chroot "$root" update-ca-certificates >>"$root.log" 2>&1 || { tail -20 "$root.log"; exit 1; }
  fi
  # apt lists and caches are not needed in an image
  rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb
  tar -C "$root" -c . | docker import -c 'ENV LANG=C.UTF-8' -c 'CMD ["bash"]' - "$name" >/dev/null
  rm -rf "$root" "$root.log"
  # the same CAs in Java's trust store (the package's trigger does not run inside debootstrap's chroot)
  if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
    local cid
    cid=$(docker create -v /usr/local/share/ca-certificates:/tmp/extra-ca:ro "$name" bash -c \
      'command -v keytool >/dev/null || exit 0; for f in /tmp/extra-ca/*.crt; do
         keytool -importcert -noprompt -cacerts -storepass changeit -alias "extra-$(basename "$f" .crt)" -file "$f" >/dev/null
       done')
    docker start -a "$cid"
    docker commit -c 'CMD ["bash"]' "$cid" "$name" >/dev/null
    docker rm "$cid" >/dev/null
  fi
  echo "base image $name: $(docker image inspect -f '{{.Size}}' "$name" | awk '{printf "%.0f MB", $1/1e6}')"
}

make_image blockserve-base/build:bookworm openjdk-17-jdk-headless,g++,cmake,make,libgomp1,ca-certificates &
make_image blockserve-base/run:bookworm openjdk-17-jre-headless,libgomp1,ca-certificates &
make_image blockserve-base/prometheus:bookworm prometheus,ca-certificates &
wait
for i in blockserve-base/build:bookworm blockserve-base/run:bookworm blockserve-base/prometheus:bookworm; do
  docker image inspect "$i" >/dev/null
done

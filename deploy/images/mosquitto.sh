#!/usr/bin/env bash
# deploy/images/mosquitto.sh — an image of this node's Mosquitto, FROM scratch.
#
# For `[broker] kind = "mosquitto"` in a manifest when no registry is at
# hand: the image holds Debian's /usr/sbin/mosquitto and /usr/bin/mosquitto_sub
# (the service's healthcheck), the shared libraries they load (as `ldd`
# lists them, with the dynamic loader), an /etc/passwd
# and /etc/group naming its `mosquitto` user, and /var/lib/mosquitto owned
# by that user (a new volume mounted there starts with that owner).
# Nothing is pulled. Run it on a node of each platform you deploy to (on a
# Pi it builds the arm64 or armv7 image), then `docker save | docker load`
# it to the other nodes of that platform.
#
#   bash deploy/images/mosquitto.sh   # prints the image name, e.g.
#                                     # rivulet-mosquitto:2.0.11-amd64
# Env: IMAGE_REPO (default rivulet-mosquitto), IMAGE_TAG (default the
# Mosquitto version). Installs Debian's mosquitto and mosquitto-clients
# packages when they are missing.
#
# Exit codes: 0 built; 1 a step failed (Docker missing, no mosquitto).
set -euo pipefail

die() { printf '[mosquitto image] error: %s\n' "$*" >&2; exit 1; }

command -v docker >/dev/null || die "docker not found (apt-get install docker.io)"
docker info >/dev/null 2>&1 || die "the Docker Engine is not reachable (docker info)"
missing=()
[[ -x /usr/sbin/mosquitto ]] || missing+=(mosquitto)
[[ -x /usr/bin/mosquitto_sub ]] || missing+=(mosquitto-clients)
if ((${#missing[@]})); then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2 \
    || die "installing Debian's ${missing[*]} failed"
fi
# The package's service would hold port 1883 on the host; the image is the point.
if command -v systemctl >/dev/null 2>&1; then systemctl stop mosquitto >/dev/null 2>&1 || true; fi

version=$( (/usr/sbin/mosquitto -h 2>&1 || true) | sed -n 's/^mosquitto version \([^ ]*\).*/\1/p' | head -n1)
[[ -n $version ]] || die "cannot read the version of /usr/sbin/mosquitto"
case $(dpkg --print-architecture) in
  amd64) arch=amd64 ;;
  arm64) arch=arm64 ;;
  armhf) arch=armv7 ;;
  *) die "unsupported architecture $(dpkg --print-architecture)" ;;
esac
image="${IMAGE_REPO:-rivulet-mosquitto}:${IMAGE_TAG:-$version}-$arch"
uid=$(id -u mosquitto 2>/dev/null) || die "no mosquitto user (Debian's package creates it)"
gid=$(id -g mosquitto)

ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
root="$ctx/rootfs"
mkdir -p "$root/usr/sbin" "$root/usr/bin" "$root/etc" "$root/mosquitto/config" "$ctx/data"
cp /usr/sbin/mosquitto "$root/usr/sbin/"
cp /usr/bin/mosquitto_sub "$root/usr/bin/"
# Every library ldd resolves, and the loader (the line without "=>").
while read -r lib; do
  mkdir -p "$root$(dirname "$lib")"
  cp -L "$lib" "$root$lib"
done < <(ldd /usr/sbin/mosquitto /usr/bin/mosquitto_sub \
  | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// && $1 !~ /:$/ { print $1 }' | sort -u)
printf 'root:x:0:0:root:/:/usr/sbin/nologin\nmosquitto:x:%s:%s::/var/lib/mosquitto:/usr/sbin/nologin\n' \
  "$uid" "$gid" >"$root/etc/passwd"
printf 'root:x:0:\nmosquitto:x:%s:\n' "$gid" >"$root/etc/group"
cat >"$ctx/Dockerfile" <<EOF
FROM scratch
COPY rootfs/ /
COPY --chown=$uid:$gid data/ /var/lib/mosquitto/
ENV PATH=/usr/sbin:/usr/bin
VOLUME ["/var/lib/mosquitto"]
EXPOSE 1883
ENTRYPOINT ["/usr/sbin/mosquitto"]
EOF
printf '[mosquitto image] docker build -t %s (mosquitto %s)\n' "$image" "$version" >&2
docker build --quiet -t "$image" "$ctx" >&2
echo "$image"

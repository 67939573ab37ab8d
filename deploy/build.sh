#!/bin/sh
# build.sh: build the jetworker and nats-server images FROM scratch with
# static binaries made by the local Go toolchain. Nothing is pulled, so it
# works without a container registry.
#
#   deploy/build.sh                      # jetworker:dev, jetworker-nats-server:dev
#   JETWORKER_IMAGE=jetworker:1.2.3 VERSION=1.2.3 deploy/build.sh
#
# Environment: JETWORKER_IMAGE, NATS_IMAGE (image tags), VERSION (default
# from git describe), DOCKER (default docker).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
jetworker_image=${JETWORKER_IMAGE:-jetworker:dev}
nats_image=${NATS_IMAGE:-jetworker-nats-server:dev}
docker=${DOCKER:-docker}
version=${VERSION:-$(git -C "$root" describe --tags --always --dirty 2>/dev/null || echo dev)}
commit=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo none)

ctx=$(mktemp -d "${TMPDIR:-/tmp}/jetworker-build.XXXXXX")
trap 'rm -rf "$ctx"' EXIT INT TERM

cd "$root"
export CGO_ENABLED=0 GOOS=linux
go build -trimpath -ldflags "-s -w -X main.version=$version -X main.commit=$commit" \
	-o "$ctx/jetworker" ./cmd/jetworker
go build -trimpath -ldflags "-s -w" -o "$ctx/nats-server" github.com/nats-io/nats-server/v2
nats_version=$(go list -m -f '{{.Version}}' github.com/nats-io/nats-server/v2)

cp /etc/ssl/certs/ca-certificates.crt "$ctx/"
printf '%s\n' 'root:x:0:0:root:/root:/sbin/nologin' \
	'nonroot:x:65532:65532:nonroot:/nonexistent:/sbin/nologin' > "$ctx/passwd"
printf '%s\n' 'root:x:0:' 'nonroot:x:65532:' > "$ctx/group"
mkdir "$ctx/data"
cp "$here/Dockerfile" "$here/Dockerfile.nats-server" "$here/nats/single.conf" "$ctx/"
chmod 0644 "$ctx/ca-certificates.crt" "$ctx/passwd" "$ctx/group" "$ctx/single.conf"

"$docker" build -q -f "$ctx/Dockerfile" --build-arg "VERSION=$version" -t "$jetworker_image" "$ctx"
"$docker" build -q -f "$ctx/Dockerfile.nats-server" --build-arg "NATS_VERSION=$nats_version" -t "$nats_image" "$ctx"
echo "built $jetworker_image ($version) and $nats_image (nats-server $nats_version)"

#!/usr/bin/env bash
# Build the local control plane (Kubernetes, etcd, KWOK), helm and Kueue from the Go module proxy.
#
# Each wrapper module below hack/controlplane/ is built into a cache directory outside the work
# tree, keyed by the sha256 of its go.mod, go.sum, Go sources and the Go version, so a warm
# machine rebuilds nothing and a changed go.mod rebuilds only that module.
#
# Usage: hack/controlplane/build.sh [MODULE ...]     (default: kubernetes etcd kwok helm kueue)
# Prints, as its last line of stdout, a directory holding one symlink per binary:
#   kube-apiserver kube-controller-manager kube-scheduler kubectl etcd kwok helm kueue
#
# Settings (all overridable from the environment):
#   BACKFILL_CACHE   cache root                        default ~/.cache/backfill-operator
#   GOMODCACHE       module cache                       default $BACKFILL_CACHE/go/mod
#   GOCACHE          build cache                        default $BACKFILL_CACHE/go/build
#   GOPROXY          module proxy, never `direct`       default https://proxy.golang.org
#   GOTOOLCHAIN      pinned to `local`: fail clearly rather than fetch a toolchain
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cache=${BACKFILL_CACHE:-$HOME/.cache/backfill-operator}
export GOMODCACHE=${GOMODCACHE:-$cache/go/mod}
export GOCACHE=${GOCACHE:-$cache/go/build}
export GOPROXY=${GOPROXY:-https://proxy.golang.org}
export GOTOOLCHAIN=local
export GOFLAGS=-mod=readonly
export CGO_ENABLED=0

if ! command -v go >/dev/null 2>&1; then
  echo "build.sh: no 'go' on PATH; install Go 1.26 (see README, 'Toolchain')" >&2
  exit 1
fi

k8s_version=v1.36.3
helm_version=v4.3.1
kwok_version=v0.8.0
kueue_version=v0.17.0

modules=("$@")
[ ${#modules[@]} -gt 0 ] || modules=(kubernetes etcd kwok helm kueue)

module_key() {
  local dir=$1
  {
    go version
    (cd "$dir" && find . -type f \( -name go.mod -o -name go.sum -o -name '*.go' \) -print0 \
      | sort -z | xargs -0 sha256sum)
    sha256sum "$here/build.sh"
  } | sha256sum | cut -c1-16
}

build_module() {
  local name=$1 dir=$here/$1 key out
  key=$(module_key "$dir")
  out=$cache/bin/$name-$key
  if [ -f "$out/.complete" ]; then
    echo "$out"
    return
  fi
  echo "build.sh: building $name into $out (cold builds take minutes)" >&2
  rm -rf "$out.tmp"
  mkdir -p "$out.tmp"
  local start=$SECONDS
  case $name in
    kubernetes)
      local v=k8s.io/component-base/version cv=k8s.io/client-go/pkg/version
      local minor=${k8s_version#v1.}; minor=${minor%%.*}
      local ld="-s -w"
      for p in $v $cv; do
        ld+=" -X $p.gitVersion=$k8s_version -X $p.gitMajor=1 -X $p.gitMinor=$minor"
        ld+=" -X $p.gitTreeState=clean -X $p.buildDate=1970-01-01T00:00:00Z"
      done
      (cd "$dir" && go build -trimpath -ldflags "$ld" -o "$out.tmp/" \
        k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
        k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubectl) >&2
      ;;
    etcd)
      (cd "$dir" && go build -trimpath -ldflags "-s -w" -o "$out.tmp/etcd" ./cmd/etcd) >&2
      ;;
    kwok)
      (cd "$dir" && go build -trimpath \
        -ldflags "-s -w -X sigs.k8s.io/kwok/pkg/consts.Version=$kwok_version" \
        -o "$out.tmp/kwok" sigs.k8s.io/kwok/cmd/kwok) >&2
      ;;
    helm)
      (cd "$dir" && go build -trimpath \
        -ldflags "-s -w -X helm.sh/helm/v4/internal/version.version=$helm_version" \
        -o "$out.tmp/helm" helm.sh/helm/v4/cmd/helm) >&2
      ;;
    kueue)
      # Its own module: Kueue v0.17.0 needs k8s.io/* v0.35 and controller-runtime v0.23.
      local kv=sigs.k8s.io/kueue/pkg/version
      (cd "$dir" && go build -trimpath \
        -ldflags "-s -w -X $kv.GitVersion=$kueue_version -X $kv.BuildDate=1970-01-01T00:00:00Z" \
        -o "$out.tmp/kueue" sigs.k8s.io/kueue/cmd/kueue) >&2
      ;;
    *)
      echo "build.sh: unknown module '$name'" >&2
      exit 2
      ;;
  esac
  touch "$out.tmp/.complete"
  rm -rf "$out"
  mv "$out.tmp" "$out"
  echo "build.sh: built $name in $((SECONDS - start)) s" >&2
  echo "$out"
}

links=$cache/bin/links
mkdir -p "$links"
for m in "${modules[@]}"; do
  dir=$(build_module "$m")
  for b in "$dir"/*; do
    ln -sfn "$b" "$links/$(basename "$b")"
  done
done
echo "$links"

#!/usr/bin/env bash
# Creates a new MCP service from templates/service (docs/adding-a-service.md):
#
#   scripts/new-service.sh <name> [port]      # or: just new-service <name> [port]
#
# <name> is the crate, binary, image and Kubernetes name: a DNS-1123 label
# that is also a Rust crate name (lower-case letters, digits and `-`,
# starting with a letter, at most 40 characters), not a Rust keyword and not
# a name the workspace, k8s/ or docker-compose.yml already uses. [port] is
# its default MCP_SERVER_PORT (2024..65535; default: the next free multiple
# of 100 from 9100); its replicas in scripts/local-stack.sh take port+1 and
# port+2 and nginx publishes it on port-1000, as for the calculator (9100,
# 8100).
#
# It writes:
#   services/<name>/                         crate: Cargo.toml, src/{main,lib,tools}.rs, tests/mcp.rs
#   k8s/base/<name>/                         Deployment, Service, HPA, PDB, ServiceAccount, Ingress, ConfigMap
#   k8s/overlays/{dev,prod}/services/<name>/ the service's overlay components
#   deploy/nginx/compose/<name>.conf         its upstream in docker compose's nginx
# and adds the service to the workspace members (Cargo.toml, Cargo.lock),
# k8s/base/kustomization.yaml, both overlays' components and
# docker-compose.yml. The Dockerfile builds it by name already
# (--build-arg SERVICE=<name>). Nothing is written when a check of the name
# or the port fails.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
templates=$root/templates/service

die() { echo "new-service: $*" >&2; exit 1; }

usage() {
  sed -n '2,6p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

[ $# -ge 1 ] && [ $# -le 2 ] || usage
case "$1" in -h | --help) usage ;; esac
name=$1
port=${2:-}

# --- the name ---------------------------------------------------------------
[[ $name =~ ^[a-z]([a-z0-9-]{0,38}[a-z0-9])?$ ]] \
  || die "'$name' is not a valid name: use lower-case letters, digits and '-', start with a letter, end with a letter or digit, at most 40 characters (a Kubernetes DNS-1123 label and a Rust crate name)"
crate=${name//-/_}
# Rust keywords (strict and reserved, 2024 edition) and the built-in crates:
# the library could not be named in a `use`.
for word in as async await break const continue crate dyn else enum extern false fn for gen if \
  impl in let loop match mod move mut pub ref return self static struct super trait true type \
  unsafe use where while abstract become box do final macro override priv try typeof unsized \
  virtual yield alloc core proc_macro std test; do
  [ "$crate" = "$word" ] && die "'$name' is a Rust keyword or a built-in crate name; pick another name"
done
for taken in "services/$name" "k8s/base/$name" "k8s/overlays/dev/services/$name" \
  "k8s/overlays/prod/services/$name" "deploy/nginx/compose/$name.conf"; do
  [ -e "$taken" ] && die "'$name' exists already: $taken"
done
# Any package of the lock file (workspace members and dependencies alike):
# `cargo -p <name>` would be ambiguous.
grep -qx "name = \"$name\"" Cargo.lock && die "'$name' is already a package in Cargo.lock; pick another name"
grep -qE "^  $name:" docker-compose.yml && die "'$name' is already a service of docker-compose.yml; pick another name"

# --- the port ----------------------------------------------------------------
# Default ports in use: every service's MCP_SERVER_PORT in k8s/base and every
# `DEFAULT_PORT: u16 = N` under services/.
used_ports=$(
  {
    sed -n 's/^MCP_SERVER_PORT=\([0-9]*\).*/\1/p' k8s/base/*/config.env
    grep -rhoE 'DEFAULT_PORT: u16 = [0-9]+' services/*/src | grep -oE '[0-9]+$'
  } | sort -un
)
clashes() { # port: the used port it is within 2 of (replicas take +1, +2), if any
  local used
  for used in $used_ports; do
    if [ $(($1 - used)) -le 2 ] && [ $((used - $1)) -le 2 ]; then
      echo "$used"
      return 0
    fi
  done
  return 1
}
if [ -n "$port" ]; then
  [[ $port =~ ^[0-9]{4,5}$ ]] && [ "$port" -ge 2024 ] && [ "$port" -le 65535 ] \
    || die "port '$port' must be a number from 2024 to 65535 (nginx publishes it on port-1000)"
  if other=$(clashes "$port"); then
    die "port $port is too close to $other, the default port of another service (replicas use port+1, port+2)"
  fi
else
  port=9100
  while clashes "$port" >/dev/null; do port=$((port + 100)); done
  [ "$port" -le 65535 ] || die "no free default port left; pass one"
fi
public_port=$((port - 1000))

# --- names in the files ----------------------------------------------------
# weather-alerts -> crate weather_alerts, type WeatherAlerts.
type=$(echo "$name" | sed -E 's/(^|-)([a-z])/\U\2/g')
render() { # template file -> stdout
  sed -e "s|{{name}}|$name|g" -e "s|{{crate}}|$crate|g" -e "s|{{Type}}|$type|g" \
    -e "s|{{port}}|$port|g" -e "s|{{public_port}}|$public_port|g" "$1"
}

# Appends "  - item" to the top-level YAML list `key:` of a file, after its
# last item.
append_to_list() { # file key item
  awk -v key="$2:" -v item="  - $3" '
    $0 == key { inside = 1; print; next }
    inside && /^  - / { print; next }
    inside { print item; inside = 0; done = 1 }
    { print }
    END { if (inside) { print item; done = 1 } if (!done) exit 1 }
  ' "$1" >"$1.new" || { rm -f "$1.new"; die "$1: no list '$2:' to add to"; }
  mv "$1.new" "$1"
}

# docker-compose.yml: the service's block before the nginx service's marker
# comment, its port and its dependency in nginx's lists.
add_to_compose() {
  local block=$templates/fragments/compose-service.yml.tmpl
  grep -q '^  # --- nginx' docker-compose.yml || die "docker-compose.yml: no '  # --- nginx' line to add the service before"
  awk -v block="$(render "$block")" -v port="      - \"$public_port:$public_port\" # $name" \
    -v dep="      - $name" '
    list != "" && /^      - / { print; next }
    list == "ports" { print port; list = "" }
    list == "depends" { print dep; list = "" }
    /^  # --- nginx/ { print block; print ""; nginx = 1 }
    nginx && /^    ports:$/ { list = "ports"; print; next }
    nginx && /^    depends_on:$/ { list = "depends"; print; next }
    { print }
    END { if (list == "ports") print port; if (list == "depends") print dep }
  ' docker-compose.yml >docker-compose.yml.new
  mv docker-compose.yml.new docker-compose.yml
}

# Cargo.toml: the crate after the last workspace member (one-line or
# multi-line `members = [...]`).
add_to_workspace() {
  awk -v member="\"services/$name\"" '
    /^members = \[.*\]$/ && !done { sub(/\]$/, ", " member "]"); done = 1; print; next }
    /^members = \[$/ { inside = 1 }
    inside && /^\]/ { print "    " member ","; inside = 0; done = 1 }
    { print }
    END { if (!done) exit 1 }
  ' Cargo.toml >Cargo.toml.new || { rm -f Cargo.toml.new; die "Cargo.toml: no workspace members list"; }
  mv Cargo.toml.new Cargo.toml
}

# --- write ---------------------------------------------------------------------
echo "creating service '$name' (crate $crate, type $type) on port $port"
(cd "$templates" && find . -type f -name '*.tmpl' ! -path './fragments/*' | sort) | while read -r template; do
  target=${template#./}
  target=${target%.tmpl}
  target=${target//__name__/$name}
  mkdir -p "$(dirname "$target")"
  render "$templates/$template" >"$target"
  echo "  wrote   $target"
done
add_to_workspace && echo "  added   services/$name to the workspace members (Cargo.toml)"
append_to_list k8s/base/kustomization.yaml resources "$name" && echo "  added   $name to k8s/base/kustomization.yaml"
for overlay in dev prod; do
  append_to_list "k8s/overlays/$overlay/kustomization.yaml" components "services/$name"
  echo "  added   services/$name to k8s/overlays/$overlay/kustomization.yaml"
done
add_to_compose && echo "  added   $name (2 replicas, nginx :$public_port) to docker-compose.yml"
# rustfmt's layout depends on the length of the names.
cargo fmt -p "$name" && echo "  formatted services/$name (cargo fmt)"
# Records the new member in Cargo.lock; other packages keep their versions.
cargo update --workspace --offline --quiet 2>/dev/null || cargo update --workspace --quiet
echo "  updated Cargo.lock"

cat <<EOF

Next steps (docs/adding-a-service.md):
  1. Write your tools in services/$name/src/tools.rs (replace count_words) and
     describe the service in the instructions of its #[tool_handler].
  2. Test it:            cargo test -p $name
     Run it:             cargo run -p $name      # http://127.0.0.1:$port/mcp and /sse
     Lint it:            just lint
  3. Settings: non-secret variables in k8s/base/$name/config.env; secrets as
     secretKeyRef in k8s/base/$name/deployment.yaml (see k8s/base/postgres).
  4. Hosts: $name.dev.mcp.example.com and $name.mcp.example.com in
     k8s/overlays/{dev,prod}/services/$name/kustomization.yaml.
  5. Image:              just image $name    # docker build --build-arg SERVICE=$name
     Local stack:        just stack          # or docker compose up --build
  6. Add a row for it to the README's Services table.
EOF

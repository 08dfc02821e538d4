#!/bin/sh
# Re-fetch the vendored D3 bundle from the npm registry (no CDN at run time).
# Usage: web/fetch_d3.sh [VERSION]   (default: the version in static/vendor/VERSION)
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
VENDOR="$HERE/static/vendor"
VERSION=${1:-$(sed -n 's/^d3@//p' "$VENDOR/VERSION" 2>/dev/null || true)}
VERSION=${VERSION:-7.9.0}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
(cd "$TMP" && npm pack --silent "d3@$VERSION" >/dev/null && tar xzf "d3-$VERSION.tgz")
cp "$TMP/package/dist/d3.min.js" "$VENDOR/d3.min.js"
cp "$TMP/package/LICENSE" "$VENDOR/d3.LICENSE"
printf 'd3@%s\nsource: npm registry, package/dist/d3.min.js\nsha256: %s\n' "$VERSION" \
    "$(sha256sum "$VENDOR/d3.min.js" | cut -d' ' -f1)" > "$VENDOR/VERSION"
echo "vendored d3@$VERSION into $VENDOR"

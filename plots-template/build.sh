#!/usr/bin/env bash
# Build plots-template/offline.html: DVC's plots page with Vega, Vega-Lite and Vega-Embed INLINED
# (from the npm packages, pinned below), so `dvc plots show --html-template plots-template/offline.html`
# draws its charts with no network. The template has no {scripts} placeholder, so DVC adds no CDN
# <script> tags; {plot_divs} is where DVC puts the plots.
#   bash plots-template/build.sh        (needs npm and the npm registry; the result is committed)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
VEGA=5.33.0 VEGA_LITE=5.23.0 VEGA_EMBED=6.29.0
tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
npm pack --silent "vega@$VEGA" "vega-lite@$VEGA_LITE" "vega-embed@$VEGA_EMBED" >/dev/null
for f in *.tgz; do mkdir -p "${f%.tgz}"; tar xzf "$f" -C "${f%.tgz}"; done
js() { sed '/^\/\/# sourceMappingURL=/d' "$1"; printf '\n'; }
{
  printf '<!DOCTYPE html>\n<html>\n<head>\n<meta charset="utf-8">\n<title>DVC plots (offline)</title>\n'
  printf '<!-- vega %s, vega-lite %s, vega-embed %s from npm (BSD-3-Clause; plots-template/LICENSES.txt) -->\n' \
    "$VEGA" "$VEGA_LITE" "$VEGA_EMBED"
  printf '<script>\n'; js "vega-$VEGA/package/build/vega.min.js"; printf '</script>\n'
  printf '<script>\n'; js "vega-lite-$VEGA_LITE/package/build/vega-lite.min.js"; printf '</script>\n'
  printf '<script>\n'; js "vega-embed-$VEGA_EMBED/package/build/vega-embed.min.js"; printf '</script>\n'
  printf '<style>body{font-family:sans-serif} table{border-spacing:15px} img{max-width:100%%}</style>\n'
  printf '</head>\n<body>\n{plot_divs}\n</body>\n</html>\n'
} > "$here/offline.html"
{
  for p in "vega-$VEGA" "vega-lite-$VEGA_LITE" "vega-embed-$VEGA_EMBED"; do
    printf '==== %s (npm) ====\n' "$p"; cat "$p/package/LICENSE"; printf '\n'
  done
} > "$here/LICENSES.txt"
echo "wrote $here/offline.html ($(wc -c < "$here/offline.html") bytes)"

#!/usr/bin/env bash
# Full-page PNG of an HTML report, to look at a report the way a reader sees it:
#   scripts/screenshot_report.sh REPORT.html OUT.png
# Needs headless Chromium (Debian: apt-get install -y chromium; or set CHROMIUM=/path/to/it).
# Chromium shoots only its window, so the window is made tall (HEIGHT, default 12000 px),
# taller again while the page still reaches the bottom edge, and the blank margin below the
# page is cut off with Pillow (found in the project's .venv, or PYTHON=...). WIDTH: 1280 px.
set -euo pipefail

if [ $# -ne 2 ]; then
  echo "usage: $0 REPORT.html OUT.png" >&2
  exit 2
fi
report=$1 out=$2
[ -f "$report" ] || { echo "no file $report" >&2; exit 2; }

browser=${CHROMIUM:-}
for name in chromium chromium-browser google-chrome; do
  [ -n "$browser" ] && break
  browser=$(command -v "$name" 2>/dev/null || true)
done
[ -n "$browser" ] || { echo "no Chromium on PATH: apt-get install -y chromium (or set CHROMIUM)" >&2; exit 1; }

root=$(cd "$(dirname "$0")/.." && pwd)
python=${PYTHON:-$root/.venv/bin/python}
[ -x "$python" ] || python=python3
url="file://$(cd "$(dirname "$report")" && pwd)/$(basename "$report")"
width=${WIDTH:-1280} height=${HEIGHT:-12000}

shoot() {   # a screenshot of a window $1 px tall; Chromium's chatter goes to /dev/null
  "$browser" --headless --no-sandbox --disable-gpu --hide-scrollbars \
    --force-device-scale-factor=1 --run-all-compositor-stages-before-draw \
    --virtual-time-budget=3000 --window-size="$width,$1" --screenshot="$out" "$url" \
    >/dev/null 2>&1
  [ -s "$out" ] || { echo "Chromium wrote no screenshot of $url" >&2; exit 1; }
}

# prints the height of the page in $out (last non-white row + a margin), or "full" when the
# page reaches the bottom of the window (it may go on below), or "nopil" without Pillow
measure() {
  "$python" - "$out" <<'EOF' 2>/dev/null || echo nopil
import sys
from PIL import Image, ImageChops
image = Image.open(sys.argv[1]).convert("RGB")
box = ImageChops.difference(image, Image.new("RGB", image.size, "white")).getbbox()
bottom = box[3] if box else 0
print("full" if bottom >= image.height - 8 else bottom + 40)
EOF
}

crop() {
  "$python" - "$out" "$1" <<'EOF'
import sys
from PIL import Image
image = Image.open(sys.argv[1])
image.crop((0, 0, image.width, int(sys.argv[2]))).save(sys.argv[1])
EOF
}

shoot "$height"
size=$(measure)
while [ "$size" = full ] && [ "$height" -lt 60000 ]; do
  height=$((height * 3))
  shoot "$height"
  size=$(measure)
done
case $size in
  nopil) echo "$out: ${width}x${height} px, not trimmed (no Pillow for $python)" ;;
  full) echo "$out: ${width}x${height} px; the page may go on below (set HEIGHT higher)" ;;
  *) crop "$size"; echo "$out: ${width}x${size} px" ;;
esac

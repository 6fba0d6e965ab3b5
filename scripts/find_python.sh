#!/usr/bin/env bash
# Print the path of a Python >= 3.12: $PYTHON if set, else the first suitable one found
# on PATH or under pyenv. Exit 1 with a clear message when there is none.
set -u
ok() { "$1" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)' 2>/dev/null; }
if [ -n "${PYTHON:-}" ]; then
  if ok "$PYTHON"; then command -v "$PYTHON"; exit 0; fi
  echo "PYTHON=$PYTHON is not a Python >= 3.12" >&2; exit 1
fi
for name in python3.13 python3.12 python3 python; do
  p=$(command -v "$name" 2>/dev/null) || continue
  if ok "$p"; then echo "$p"; exit 0; fi
done
root=$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")
for p in $(ls -d "$root"/versions/3.1[2-9]*/bin/python3 2>/dev/null | sort -rV); do
  if ok "$p"; then echo "$p"; exit 0; fi
done
echo "no Python >= 3.12 found: install one or run with PYTHON=/path/to/python3.12" >&2
exit 1

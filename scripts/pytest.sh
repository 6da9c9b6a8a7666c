#!/bin/sh
# Run the Python unit tests with an interpreter that has torch (Debian's python3-torch lives in /usr/bin/python3,
# which may not be the first python3 on PATH).
for py in /usr/bin/python3 python3; do
  if "$py" -c 'import torch, onnx, sentencepiece, pytest' 2>/dev/null; then exec "$py" -m pytest -q train/tests "$@"; fi
done
echo "no python3 with torch, onnx, sentencepiece and pytest: apt-get install python3-torch python3-onnx python3-sentencepiece python3-pytest" >&2
exit 1

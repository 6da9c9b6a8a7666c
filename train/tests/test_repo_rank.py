"""repo_rank folds a repository's code files in the product walker's order: each directory's entries sorted by name,
depth first, only code files."""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..'))
from repo_rank import groups_of, segments, walk  # noqa: E402
from stream import SHIPPED_TOKENIZER, Tokenizer  # noqa: E402
from tasks import decode_stream  # noqa: E402


def test_walk_order_and_stream(tmp_path):
    for rel, text in (('b.py', 'def beta():\n    return 2\n'), ('a/x.ts', 'export function alpha() {}\n'),
                      ('a/notes.txt', 'not code\n'), ('a/c/z.js', 'const zeta = 1;\n')):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    files = list(walk(str(tmp_path)))
    assert files == ['a/c/z.js', 'a/x.ts', 'b.py']
    tok = Tokenizer(SHIPPED_TOKENIZER)
    segs = segments(tok, str(tmp_path), files, 24)
    assert len(segs) >= 2 and all(len(s) == 24 for s in segs[:-1]) and 0 < len(segs[-1]) <= 24
    docs = decode_stream(tok, np.stack(segs[:-1]))
    assert [h for h, _ in docs][:2] == ['code a/c/z.js', 'code a/x.ts']


def test_groups_of_keeps_files_whole_and_in_order():
    assert groups_of([3, 4, 2, 9, 1], 7) == [[0, 1], [2], [3], [4]]
    assert groups_of([1, 1, 1], 10) == [[0, 1, 2]]
    assert groups_of([], 5) == []

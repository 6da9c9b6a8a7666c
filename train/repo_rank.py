"""`ctx eval repo`'s identifier questions, answered by the PyTorch model from a repository's code files folded in
Python: the product's failure on a real repository reproduced where each part can be changed (file order, files
left out, the model's internals through write_probe's hooks) without exporting.

    node bin/run.js eval repo DIR --model EXPORTED --json > /tmp/eval.json
    /usr/bin/python3 train/repo_rank.py --config CONFIG --weights runs/X/weights.pt --repo DIR --questions /tmp/eval.json

Only .py/.ts/.js files are folded, as 'code' documents in the walker's order (each directory's entries sorted by
name, depth first: src/ingest/walker.ts). The product decides file by file (it folds docs and logs, skips minified
and built code), so on a whole repository its stream differs; on source files alone the numbers agree closely
(RUNS.md run 10: fixtures/repo's src/ and app/, 2/18 here, 3/18 through the product).
"""
import argparse
import json
import os
from collections import Counter

import torch

from export import load_model
from stream import SHIPPED_TOKENIZER, Segmenter, Tokenizer, answer_tokens, question_prompt
from train import answer_logliks

CODE = ('.py', '.ts', '.js')


def walk(root, rel=''):
    for name in sorted(os.listdir(os.path.join(root, rel))):
        path = os.path.join(rel, name)
        if os.path.isdir(os.path.join(root, path)):
            yield from walk(root, path)
        elif path.endswith(CODE):
            yield path


def segments(tok, root, files, seg_len):
    seg, out = Segmenter(tok, seg_len), []
    for f in files:
        out += seg.begin_document('code', f)
        with open(os.path.join(root, f), encoding='utf-8') as fh:
            out += seg.text(fh.read())
    last = seg.flush()
    return out + ([last] if last is not None else [])


@torch.no_grad()
def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--config', required=True)
    p.add_argument('--weights', required=True, help='state_dict (or its .00/.01 parts)')
    p.add_argument('--repo', required=True)
    p.add_argument('--questions', required=True, help='`ctx eval repo --json` output: its identifier questions are asked')
    p.add_argument('--reverse', action='store_true', help='fold the files in reverse order')
    a = p.parse_args()
    model = load_model(a.config, a.weights)
    tok = Tokenizer(SHIPPED_TOKENIZER)
    files = list(walk(a.repo))[::-1 if a.reverse else 1]
    state = model.empty_state()
    segs = segments(tok, a.repo, files, model.cfg.seg_len)
    for s in segs:
        state = model.fold(torch.tensor([list(s)]), state)
    with open(a.questions, encoding='utf-8') as fh:
        asked = [(q['question'], q['path']) for q in json.load(fh)['results'] if q['kind'] == 'identifier']
    right, answers = 0, Counter()
    for question, path in asked:
        score = answer_logliks(model, state, [(question_prompt(tok, question), answer_tokens(tok, f)) for f in files])
        best = files[max(range(len(files)), key=score.__getitem__)]
        right += best == path
        answers[best] += 1
    print(json.dumps({'segments': len(segs), 'files': len(files), 'top1': right, 'questions': len(asked),
                      'answers': dict(answers.most_common())}))


if __name__ == '__main__':
    main()

"""`ctx eval repo`'s identifier questions, answered by the PyTorch model from a repository's code files folded in
Python: the product's failure on a real repository reproduced where each part can be changed (file order, files
left out, the model's internals through write_probe's hooks) without exporting.

    node bin/run.js eval repo DIR --model EXPORTED --json > /tmp/eval.json
    /usr/bin/python3 train/repo_rank.py --config CONFIG --weights runs/X/weights.pt --repo DIR --questions /tmp/eval.json

Only .py/.ts/.js files are folded, as 'code' documents in the walker's order (each directory's entries sorted by
name, depth first: src/ingest/walker.ts). The product decides file by file (it folds docs and logs, skips minified
and built code), so on a whole repository its stream differs; on source files alone the numbers agree closely
(RUNS.md run 10: fixtures/repo's src/ and app/, 2/18 here, 3/18 through the product).

--bank G folds the files in groups of at most G segments (whole files, in order), each into its own empty memory, and
scores every path against its own group's memory (RUNS.md run 37): beside the one memory's top-1 ("whole") it prints
top-1 with the right group known ("oracle"), over all paths by raw score ("raw"), and in the group whose memory
gives the answer "none" the lowest likelihood ("route", the group right: "route_group"); "none" is what
`train.py --absent` trains.
"""
import argparse
import json
import os
from collections import Counter

import torch

from export import load_model
from stream import SHIPPED_TOKENIZER, Segmenter, Tokenizer, answer_tokens, question_prompt
from tasks import NONE_ANSWER
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


def groups_of(sizes, limit):
    """Consecutive groups of indices into sizes (tokens per file), each summing to at most limit unless one file alone
    is larger."""
    out, cur, total = [], [], 0
    for i, n in enumerate(sizes):
        if cur and total + n > limit:
            out.append(cur)
            cur, total = [], 0
        cur.append(i)
        total += n
    return out + [cur] if cur else out


def fold(model, segs):
    state = model.empty_state()
    for s in segs:
        state = model.fold(torch.tensor([list(s)]), state)
    return state


def scores(model, tok, state, question, answers):
    """The log-likelihood of each answer to question, decoded from state."""
    q = question_prompt(tok, question)
    return answer_logliks(model, state, [(q, answer_tokens(tok, a)) for a in answers])


def bank_scores(model, tok, root, files, G, asked):
    """--bank G: top-1 counts over asked [(question, path)], as the module's docstring says."""
    sizes = []
    for f in files:
        with open(os.path.join(root, f), encoding='utf-8') as fh:
            sizes.append(len(tok.encode(fh.read())) + 8)    # + the document's header line, about
    L = model.cfg.seg_len
    groups = [[files[i] for i in g] for g in groups_of(sizes, G * L)]
    group_of = {f: k for k, g in enumerate(groups) for f in g}
    mems = [fold(model, segments(tok, root, g, L)) for g in groups]
    whole = fold(model, segments(tok, root, files, L)) if len(groups) > 1 else mems[0]
    c = Counter()
    for question, path in asked:
        one = scores(model, tok, whole, question, files)
        score, none = {}, []
        for g, mem in zip(groups, mems):
            s = scores(model, tok, mem, question, g + [NONE_ANSWER])
            score.update(zip(g, s))
            none.append(s[-1])
        k = min(range(len(groups)), key=none.__getitem__)
        c['n'] += 1
        c['whole'] += files[max(range(len(files)), key=one.__getitem__)] == path
        c['oracle'] += max(groups[group_of[path]], key=score.get) == path
        c['raw'] += max(files, key=score.get) == path
        c['route_group'] += k == group_of[path]
        c['route'] += max(groups[k], key=score.get) == path
    return dict(c, groups=len(groups))


@torch.no_grad()
def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--config', required=True)
    p.add_argument('--weights', required=True, help='state_dict (or its .00/.01 parts)')
    p.add_argument('--repo', required=True)
    p.add_argument('--questions', required=True, help='`ctx eval repo --json` output: its identifier questions are asked')
    p.add_argument('--reverse', action='store_true', help='fold the files in reverse order')
    p.add_argument('--bank', type=int, metavar='G', help='fold groups of files of at most G segments into memories of '
                   'their own and route each question by the answer "none" (see above)')
    a = p.parse_args()
    model = load_model(a.config, a.weights)
    tok = Tokenizer(SHIPPED_TOKENIZER)
    files = list(walk(a.repo))[::-1 if a.reverse else 1]
    with open(a.questions, encoding='utf-8') as fh:
        asked = [(q['question'], q['path']) for q in json.load(fh)['results'] if q['kind'] == 'identifier']
    if a.bank:    # only names of the files folded: a group is known for each
        asked = [(q, path) for q, path in asked if path in files]
        print(json.dumps(dict(bank_scores(model, tok, a.repo, files, a.bank, asked), files=len(files))))
        return
    segs = segments(tok, a.repo, files, model.cfg.seg_len)
    state = fold(model, segs)
    right, answers = 0, Counter()
    for question, path in asked:
        score = scores(model, tok, state, question, files)
        best = files[max(range(len(files)), key=score.__getitem__)]
        right += best == path
        answers[best] += 1
    print(json.dumps({'segments': len(segs), 'files': len(files), 'top1': right, 'questions': len(asked),
                      'answers': dict(answers.most_common())}))


if __name__ == '__main__':
    main()

"""Why is "where is X defined?" stuck at "one of the renamed files"? A probe of trained weights.

On held-out where_defined streams with two or more renamed definitions (TaskSampler ask_all), every asked
question is scored against every asked path (log-likelihood of the path as the answer, from the memory state).
For a stream with names a, b and paths A, B the model binds when A wins for a and B wins for b. Reported:

  bound       the right path wins for every question of the stream
  blind       the same path wins whatever the question asks (the memory answers "a renamed file", not which)
  latest      among blind streams, the winner is the path whose definition came last (a delta-rule memory with
              one generic key keeps the last write)
  margin      mean over questions of  score(own path) - score(other asked path): ~0 when the question is ignored
  q_effect    mean |score(A | a) - score(A | b)|: how much the question moves a path's score at all

The same numbers follow for the streams whose definitions each have a segment of their own, and for the rest.

  /usr/bin/python3 train/binding_probe.py --config train/configs/ctx-small-allrows.json \\
      --weights runs/ctx-small-allrows-s3/weights.pt --pool /tmp/pool-small.pkl.gz --n 64
"""
import argparse
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from export import load_model  # noqa: E402
from stream import SHIPPED_TOKENIZER, answer_tokens  # noqa: E402
from tasks import TaskSampler  # noqa: E402
from train import add_sampler_flags, answer_logliks, curriculum, fold_sample  # noqa: E402


def probe(model, sampler, n, nseg):
    """Scores of n held-out streams with two or more asked definitions: [(score matrix, definition depths)]."""
    out = []
    while len(out) < n:
        s = sampler.sample(nseg, 'where_defined')
        if not s.more:
            continue
        questions = [s.question] + [q for q, _ in s.more]
        answers = [answer_tokens(sampler.tok, s.meta['answer'])] + [a for _, a in s.more]
        state = fold_sample(model, s.segments, next(model.parameters()).device)
        flat = answer_logliks(model, state, [(q, a) for q in questions for a in answers])
        k = len(answers)
        out.append(([flat[i * k:(i + 1) * k] for i in range(len(questions))], s.meta['asked_depths']))
    return out


def tally(streams):
    """The numbers of the module doc from [(score[question][path], depth of each path's definition)]."""
    bound = blind = latest = 0
    margins, effects = [], []
    for sc, depths in streams:
        k = len(sc)
        wins = [max(range(k), key=lambda j: row[j]) for row in sc]
        bound += wins == list(range(k))
        if len(set(wins)) == 1:
            blind += 1
            latest += wins[0] == max(range(k), key=lambda j: depths[j])
        margins += [row[i] - max(row[j] for j in range(k) if j != i) for i, row in enumerate(sc)]
        effects += [max(sc[i][j] for i in range(k)) - min(sc[i][j] for i in range(k)) for j in range(k)]
    n = len(streams)
    return {'streams': n, 'bound': round(bound / n, 3), 'blind': round(blind / n, 3),
            'latest_of_blind': round(latest / max(1, blind), 3), 'margin': round(sum(margins) / len(margins), 3),
            'q_effect': round(sum(effects) / len(effects), 3)}


def probe_args(doc, n):
    """The flags both probes take (this one and write_probe.py): model, pool, and how the held-out streams are drawn."""
    p = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--config', required=True)
    p.add_argument('--weights', required=True, help='state_dict (or its .00/.01 parts)')
    p.add_argument('--pool', required=True)
    p.add_argument('--n', type=int, default=n, help='streams with two or more asked definitions')
    p.add_argument('--nseg', type=int, default=2)
    add_sampler_flags(p)
    p.set_defaults(win='256,768', def_lead=32, max_defs=2)
    p.add_argument('--seed', type=int, default=4242)
    p.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    return p


def probe_setup(a):
    """The model with its weights (eval mode) and the held-out where_defined sampler the flags describe."""
    torch.set_num_threads(os.cpu_count() or 1)
    model = load_model(a.config, a.weights).to(a.device)
    return model, TaskSampler(a.pool, SHIPPED_TOKENIZER, model.cfg.seg_len, a.seed, split='heldout', ask_all=True, **curriculum(a))


def main():
    a = probe_args(__doc__, 64).parse_args()
    model, sampler = probe_setup(a)
    streams = probe(model, sampler, a.n, a.nseg)
    # ARMT's own retrieval tasks hold one pair per segment; here two definitions often share one: report apart
    apart, shared = [], []
    for st in streams:
        (apart if len({int(d * a.nseg) for d in st[1]}) == len(st[1]) else shared).append(st)
    print(json.dumps({'weights': a.weights, 'nseg': a.nseg, **tally(streams),
                      'one_per_segment': tally(apart) if apart else None, 'sharing_a_segment': tally(shared) if shared else None}))


if __name__ == '__main__':
    main()

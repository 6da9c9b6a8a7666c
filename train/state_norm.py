"""How large the memory grows over a long fold: per layer, the Frobenius norm of M after 1, 2, 4, ... segments of
real text (Debian's license texts by default, the pass-key filler of `ctx eval passkey`). A model whose state keeps
growing past its training length answers garbage there (RUNS.md run 8: 10^17 after 128 segments); check this
before a long product evaluation.

  /usr/bin/python3 train/state_norm.py --config train/configs/ctx-small-seq.json --weights runs/seql-c2/weights.pt --segments 128
"""
import argparse
import glob
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from export import load_model  # noqa: E402
from stream import SHIPPED_TOKENIZER, Tokenizer  # noqa: E402


@torch.no_grad()
def state_norms(model, ids, segments):
    """Folds `segments` segments of seg_len tokens cut from ids (wrapping around) and yields (segments folded,
    [norm of M per layer]) after 1, 2, 4, ... segments and after the last."""
    L, state = model.cfg.seg_len, model.empty_state()
    for i in range(segments):
        j = (i * L) % max(1, len(ids) - L)
        state = model.fold(torch.tensor([ids[j:j + L]]), state)
        n = i + 1
        if n & (n - 1) == 0 or n == segments:
            yield n, [float(M.norm()) for M, _ in model.unpack(state)]


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--config', required=True)
    p.add_argument('--weights', required=True, help='state_dict (or its .00/.01 parts)')
    p.add_argument('--segments', type=int, default=128)
    p.add_argument('--text', nargs='*', default=sorted(glob.glob('/usr/share/common-licenses/*')))
    a = p.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    model = load_model(a.config, a.weights)
    tok = Tokenizer(SHIPPED_TOKENIZER)
    ids = [t for f in a.text if os.path.isfile(f) for t in tok.encode(open(f, errors='ignore').read())]
    for n, norms in state_norms(model, ids, a.segments):
        print(json.dumps({'segments': n, 'norm_M': [round(x, 1) for x in norms]}), flush=True)


if __name__ == '__main__':
    main()

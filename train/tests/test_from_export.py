"""from_export.py gives back the exported weights exactly, for the shipped kind of model and for a hybrid one."""
import os
import sys

import pytest
import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..'))
from export import round_to_half  # noqa: E402
from from_export import state_dict_from_export  # noqa: E402
from model import Config, CtxModel  # noqa: E402
from test_model import HYBRID_LAYER, TINY, export_config  # noqa: E402


def export_trained_like(tmp_path, cfg, extra=()):
    """export.py run on random weights, two of them equal (the ONNX exporter stores those once and passes the
    other name on through an Identity node, as it did for two write-gate biases of run 17's model)."""
    torch.manual_seed(1)
    model = CtxModel(cfg)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_()
        model.blocks[1].mb.bias.copy_(model.blocks[0].mb.bias)
    torch.save(model.state_dict(), tmp_path / 'w.pt')
    out = export_config(tmp_path, {**cfg.to_dict(), 'name': 'tiny'}, ckpt=tmp_path / 'w.pt', extra=extra)
    round_to_half(model)
    return model, out


INT8 = ('--int8_fold', '--int8_min_size', '256')   # the tiny model's weights are small: quantize them all


@pytest.mark.parametrize('layers,extra', [(None, ()), ({'0': HYBRID_LAYER}, ()), ({'0': HYBRID_LAYER}, INT8)])
def test_the_checkpoint_rebuilt_from_an_export_is_the_exported_model(tmp_path, layers, extra):
    """Also from int8 fold graphs: every weight they quantize keeps its float16 copy in decode.onnx or stays float."""
    cfg = Config(**TINY, layers=layers)
    want, out = export_trained_like(tmp_path, cfg, extra)
    got = state_dict_from_export(cfg, str(out))
    assert got.keys() == want.state_dict().keys()
    assert all(torch.equal(got[k], v) for k, v in want.state_dict().items())


def test_an_export_of_another_config_is_refused(tmp_path):
    out = export_config(tmp_path, {**TINY, 'name': 'tiny'})
    with pytest.raises(SystemExit, match='another config'):
        state_dict_from_export(Config(**{**TINY, 'd_mem': 16}), str(out))

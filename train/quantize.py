"""int8 weights for an exported fold graph (not yet used by the shipped model; train/RUNS.md run 33).

Every MatMul whose weight is a large initializer (through share_weights' float16 Cast) becomes ONNX Runtime's
com.microsoft DynamicQuantizeMatMul: the weight stored as int8 with one scale per output column, the activations
quantized per call. On "dev" (2 cores, AVX512-VNNI) it took ~20 % off fold.onnx and ~28 % off fold_alone.onnx; the
states drift 2.5-3.3 % from float32's over 40 segments, and hg-l2's names and 12 pass keys at 128K-1M did not change.
Before a model ships with it, the full pass-key protocol must be measured through the product (BENCHMARKS.md).

    /usr/bin/python3 train/quantize.py models/ctx-small/fold.onnx /tmp/q/fold.onnx
"""
import argparse
import os

import numpy as np
import onnx
from onnx import helper, numpy_helper


def matmul_weight(node, inits, cast_of):
    """The initializer a MatMul multiplies by, directly or through share_weights' float16 Cast; None for any other
    node or a MatMul of two activations."""
    if node.op_type != 'MatMul':
        return None
    b = node.input[1]
    return cast_of.get(b, b if b in inits else None)


def quantize(model, min_size=65536):
    """Rewrites `model` (an onnx ModelProto with its weights loaded) in place; returns how many MatMuls changed."""
    inits = {i.name: i for i in model.graph.initializer}
    cast_of = {n.output[0]: n.input[0] for n in model.graph.node if n.op_type == 'Cast' and n.input[0] in inits}
    nodes, done = [], 0
    for n in model.graph.node:
        w = matmul_weight(n, inits, cast_of)
        arr = numpy_helper.to_array(inits[w]).astype(np.float32) if w else None
        if arr is None or arr.ndim != 2 or arr.size < min_size:
            nodes.append(n)
            continue
        scale = (np.abs(arr).max(0) / 127.0 + 1e-12).astype(np.float32)
        q = np.clip(np.round(arr / scale), -127, 127).astype(np.int8)
        base = f'{w}_int8'
        model.graph.initializer.extend([numpy_helper.from_array(q, base), numpy_helper.from_array(scale, base + '_scale'),
                                        numpy_helper.from_array(np.zeros(arr.shape[1], np.int8), base + '_zero')])
        nodes.append(helper.make_node('DynamicQuantizeMatMul', [n.input[0], base, base + '_scale', base + '_zero'],
                                      list(n.output), name=n.name + '_int8', domain='com.microsoft'))
        done += 1
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    if done and not any(o.domain == 'com.microsoft' for o in model.opset_import):
        model.opset_import.append(helper.make_opsetid('com.microsoft', 1))
    return done


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('src')
    ap.add_argument('dst', help='written with its weights beside it in DST.data')
    ap.add_argument('--min_size', type=int, default=65536, help='quantize weights of at least this many values')
    args = ap.parse_args()
    model = onnx.load(args.src)
    n = quantize(model, args.min_size)
    onnx.save(model, args.dst, save_as_external_data=True, all_tensors_to_one_file=True,
              location=os.path.basename(args.dst) + '.data')
    print(f'{n} MatMuls as int8 -> {args.dst}')


if __name__ == '__main__':
    main()

"""safetensors writer and reader (no `safetensors` package needed), and the toeplitz-lm export/load.

File layout (DESIGN section 9, the safetensors format):
    [8 bytes: header length N, unsigned little-endian]
    [N bytes: JSON header, UTF-8, padded with spaces so the data starts at a multiple of 8]
    [data: each tensor raw little-endian, C-contiguous, in the order written, no gaps]
The header maps each tensor name to {"dtype": "F32"|"F64", "shape": [...], "data_offsets": [begin, end]}
(offsets relative to the start of the data) and "__metadata__" to a {str: str} map; ours holds "config",
the model contract as a JSON string.

    /usr/bin/python3 train/export.py models/toeplitz-lm.safetensors     # prints the header summary
"""

import json
import struct
import sys

import numpy as np
import torch

from model import ModelConfig, ToeplitzLM

DTYPES = {'F32': ('<f4', torch.float32), 'F64': ('<f8', torch.float64)}


def write_safetensors(path: str, tensors, metadata: dict) -> None:
    """tensors: list of (name, tensor) in the order to write; metadata: {str: str}."""
    header = {'__metadata__': {str(k): str(v) for k, v in metadata.items()}}
    blobs = []
    offset = 0
    for name, t in tensors:
        t = t.detach().cpu()
        if t.dtype == torch.float32:
            dtype = 'F32'
        elif t.dtype == torch.float64:
            dtype = 'F64'
        else:
            raise ValueError(f'{name}: dtype {t.dtype} is not F32 or F64')
        raw = np.ascontiguousarray(t.numpy().astype(DTYPES[dtype][0], copy=False)).tobytes()
        header[name] = {'dtype': dtype, 'shape': list(t.shape), 'data_offsets': [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    text = json.dumps(header, separators=(',', ':')).encode('utf-8')
    text += b' ' * ((-(8 + len(text))) % 8)  # data starts 8-byte aligned (typed-array views need it)
    tmp = path + '.tmp'
    with open(tmp, 'wb') as f:
        f.write(struct.pack('<Q', len(text)))
        f.write(text)
        for raw in blobs:
            f.write(raw)
    import os
    os.replace(tmp, path)


def read_safetensors(path: str):
    """-> (dict name -> tensor in the file's dtype, in file order; metadata dict). Checks the layout."""
    with open(path, 'rb') as f:
        data = f.read()
    (n,) = struct.unpack('<Q', data[:8])
    assert 8 + n <= len(data), 'header longer than the file'
    header = json.loads(data[8:8 + n].decode('utf-8'))
    metadata = header.pop('__metadata__', {})
    body = data[8 + n:]
    tensors = {}
    end = 0
    for name, info in sorted(header.items(), key=lambda kv: kv[1]['data_offsets'][0]):
        b, e = info['data_offsets']
        assert b == end, f'{name}: gap or overlap at {b} (expected {end})'
        np_dtype, _ = DTYPES[info['dtype']]
        count = int(np.prod(info['shape'])) if info['shape'] else 1
        assert e - b == count * np.dtype(np_dtype).itemsize, f'{name}: size does not match shape'
        arr = np.frombuffer(body, dtype=np_dtype, count=count, offset=b).reshape(info['shape'])
        tensors[name] = torch.from_numpy(arr.copy())
        end = e
    assert end == len(body), f'{len(body) - end} trailing bytes after the last tensor'
    return tensors, metadata


def export_model(model: ToeplitzLM, path: str, info: dict) -> None:
    """Write the model as F32 with __metadata__.config = contract config + informational keys (`info`)."""
    config = model.cfg.contract()
    config.update(info)
    sd = model.state_dict()
    names = ['tok_embeddings.weight']
    for l in range(model.cfg.layers):
        p = f'layers.{l}.'
        names += [p + 'attention_norm.weight', p + 'attention.wq.weight', p + 'attention.wk.weight',
                  p + 'attention.wv.weight', p + 'attention.wo.weight', p + 'attention.projection',
                  p + 'attention.rpe_bias', p + 'ffn_norm.weight', p + 'feed_forward.w1.weight',
                  p + 'feed_forward.w2.weight', p + 'feed_forward.w3.weight']
    names.append('norm.weight')
    if not model.cfg.tiedEmbedding:
        names.append('output.weight')
    if model.cfg.rpe_tail == 'decay':
        # toeplitz-lm/2: the trained log-parameter becomes the contract's r_h, written after each rpe_bias
        for l, b in enumerate(model.layers):
            key = f'layers.{l}.attention.'
            del sd[key + 'rpe_decay_log']
            sd[key + 'rpe_decay'] = b.attention.decay().detach()
            names.insert(names.index(key + 'rpe_bias') + 1, key + 'rpe_decay')
    assert sorted(names) == sorted(sd.keys()), set(names) ^ set(sd.keys())
    write_safetensors(path, [(nm, sd[nm].to(torch.float32)) for nm in names],
                      {'config': json.dumps(config, separators=(',', ':'))})


def load_model(path: str, dtype=torch.float64):
    """-> (ToeplitzLM in `dtype` with the file's weights, config dict from the file)."""
    tensors, metadata = read_safetensors(path)
    config = json.loads(metadata['config'])
    model = ToeplitzLM(ModelConfig.from_contract(config))
    decays = {k: tensors.pop(k) for k in list(tensors) if k.endswith('.attention.rpe_decay')}
    exact = []  # r_h per layer as stored
    if model.cfg.rpe_tail == 'decay':
        for l, b in enumerate(model.layers):
            r = decays.pop(f'layers.{l}.attention.rpe_decay')
            exact.append(r)
            assert r.shape == (model.cfg.heads,) and bool(torch.isfinite(r).all()) and bool((r >= 0).all()), r
            with torch.no_grad():  # the trainable parameter too (a further stage continues from it), floor 0
                b.attention.rpe_decay_log.copy_(torch.log(r.double()).float())
            tensors[f'layers.{l}.attention.rpe_decay_log'] = b.attention.rpe_decay_log.detach().clone()
    assert not decays, f'rpe_decay tensors in a {config["format"]} file: {sorted(decays)}'
    model.load_state_dict({k: v for k, v in tensors.items()}, strict=True)
    model = model.to(dtype).eval()
    if model.cfg.rpe_tail == 'decay':
        for l, b in enumerate(model.layers):
            b.attention.decay_exact = exact[l].to(dtype)  # the file's r_h exactly (exp(log r) is not)
    return model, config


if __name__ == '__main__':
    tensors, metadata = read_safetensors(sys.argv[1])
    print(json.dumps(json.loads(metadata['config']), indent=1))
    for k, v in tensors.items():
        print(f'{k:40s} {str(v.dtype):14s} {list(v.shape)}')
    print('parameters:', sum(v.numel() for v in tensors.values()))

"""Write the PyTorch logits fixture the TypeScript tests check the runtime against (no Python needed there).

    /usr/bin/python3 train/make_fixture.py [models/toeplitz-lm.safetensors] [test/fixtures/model]

The prompt is 300 bytes of the held-out split (never trained on), from PROMPT_OFFSET bytes into it. The model
file's F32 weights are cast to float64 and run with the FFT form of attention (the paper's algorithm), and
again with the direct O(n^2) form; both agree to 1e-10 (checked here) and both are stored. Files:

    prompt.json        {"tokens": [byte ids], "text": the bytes as UTF-8, "source": where they come from}
    logits-fft.f64     little-endian float64, row-major [n, vocab]: logits[i] predicts byte i+1
    logits-direct.f64  the same from the direct form
    logits.json        what the .f64 files hold: n, vocab, model path and sha256, tolerances, torch version
"""

import hashlib
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import numpy as np  # noqa: E402
import torch  # noqa: E402

from env import ensure_env  # noqa: E402
from export import load_model  # noqa: E402
from train import load_corpus, split_corpus  # noqa: E402

PROMPT_OFFSET = 20000
PROMPT_BYTES = 300


def per_row_rel(a: np.ndarray, b: np.ndarray) -> float:
    return float((np.linalg.norm(a - b, axis=1) / np.linalg.norm(b, axis=1)).max())


def main():
    ensure_env()
    root = os.path.dirname(HERE)
    model_path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(root, 'models', 'toeplitz-lm.safetensors')
    out_dir = sys.argv[2] if len(sys.argv) > 2 else os.path.join(root, 'test', 'fixtures', 'model')
    os.makedirs(out_dir, exist_ok=True)
    torch.set_num_threads(2)

    _, val = split_corpus(load_corpus())
    tokens = val[PROMPT_OFFSET:PROMPT_OFFSET + PROMPT_BYTES].tolist()
    text = bytes(tokens).decode('utf-8')  # the offset is chosen so the prompt is whole characters

    model, config = load_model(model_path, torch.float64)
    x = torch.tensor([tokens], dtype=torch.long)
    with torch.no_grad():
        model.set_method('fft')
        fft = model(x)[0].numpy()
        model.set_method('direct')
        direct = model(x)[0].numpy()
    diff = per_row_rel(fft, direct)
    assert diff <= 1e-10, f'FFT and direct logits differ by {diff} (per-row relative)'

    with open(os.path.join(out_dir, 'prompt.json'), 'w') as f:
        json.dump({'tokens': tokens, 'text': text,
                   'source': f'held-out split of Moby-Dick, bytes {PROMPT_OFFSET}..{PROMPT_OFFSET + PROMPT_BYTES} '
                             f'of it (corpus bytes {1144747 + PROMPT_OFFSET}..{1144747 + PROMPT_OFFSET + PROMPT_BYTES})'},
                  f, ensure_ascii=False)
        f.write('\n')
    for name, arr in (('logits-fft.f64', fft), ('logits-direct.f64', direct)):
        with open(os.path.join(out_dir, name), 'wb') as f:
            f.write(np.ascontiguousarray(arr, dtype='<f8').tobytes())
    with open(model_path, 'rb') as f:
        sha = hashlib.sha256(f.read()).hexdigest()
    logp = torch.log_softmax(torch.from_numpy(fft), dim=-1)
    bits = -logp[torch.arange(len(tokens) - 1), torch.tensor(tokens[1:])].mean().item() / np.log(2)
    meta = {
        'model': os.path.relpath(model_path, root), 'modelSha256': sha,
        'prompt': 'prompt.json', 'n': len(tokens), 'vocab': config['vocab'],
        'files': {'fft': 'logits-fft.f64', 'direct': 'logits-direct.f64'},
        'dtype': 'float64', 'endianness': 'little', 'layout': 'row-major [n, vocab]; row i = logits after tokens[0..i]',
        'computedWith': f'PyTorch {torch.__version__}, F32 weights cast to float64, attention in float64',
        'fftVsDirectMaxRowRelative': diff,
        'promptBitsPerByte': bits,
    }
    with open(os.path.join(out_dir, 'logits.json'), 'w') as f:
        json.dump(meta, f, indent=1)
        f.write('\n')
    print(json.dumps(meta, indent=1))


if __name__ == '__main__':
    main()

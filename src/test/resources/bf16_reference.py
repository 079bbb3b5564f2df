#!/usr/bin/env python3
"""Makes a BF16 copy of a shared test model (every tensor rounded to nearest even, as torch's
.to(torch.bfloat16) does) and prints, as one JSON object, the independent numpy reference's greedy
continuation of each golden prompt on that copy: BF16 goldens for BF16 checkpoints.

With "matrices" as a fourth argument only 2-D tensors are rounded (norm weights and biases stay F32):
what serving an F32 checkpoint with blockserve.dtype=bf16 computes.

usage: bf16_reference.py SRC_MODEL_DIR OUT_DIR STEPS [matrices]"""
import json, os, shutil, struct, sys
import numpy as np

src, out, steps = sys.argv[1], sys.argv[2], int(sys.argv[3])
matrices_only = len(sys.argv) > 4 and sys.argv[4] == 'matrices'
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(src)), '..', 'tools'))
import hf_llama_ref  # noqa: E402  (../shared/tools)

def to_bf16_bits(a):
    bits = np.ascontiguousarray(a, dtype=np.float32).view(np.uint32).astype(np.uint64)
    return ((bits + 0x7fff + ((bits >> 16) & 1)) >> 16).astype(np.uint16)

os.makedirs(out, exist_ok=True)
for f in os.listdir(src):
    if f not in ('model.safetensors', 'golden.json'):
        shutil.copy(os.path.join(src, f), os.path.join(out, f))
tensors = hf_llama_ref.read_safetensors(os.path.join(src, 'model.safetensors'))
header, blobs, offset = {}, [], 0
for name in sorted(tensors):
    keep = matrices_only and tensors[name].ndim < 2
    data = (np.ascontiguousarray(tensors[name], dtype='<f4') if keep else to_bf16_bits(tensors[name])).tobytes()
    header[name] = {'dtype': 'F32' if keep else 'BF16', 'shape': list(tensors[name].shape), 'data_offsets': [offset, offset + len(data)]}
    blobs.append(data)
    offset += len(data)
h = json.dumps(header).encode()
h += b' ' * ((8 - len(h) % 8) % 8)
with open(os.path.join(out, 'model.safetensors'), 'wb') as fh:
    fh.write(struct.pack('<Q', len(h)))
    fh.write(h)
    for b in blobs:
        fh.write(b)

model = hf_llama_ref.Llama(out)
cases = []
for c in json.load(open(os.path.join(src, 'golden.json')))['cases']:
    ids, first, margins = model.greedy(c['prompt_ids'], steps)
    cases.append({'prompt_ids': c['prompt_ids'], 'greedy_ids': ids, 'first_step_logits': [float(x) for x in first],
                  'min_margin': min(margins)})
print(json.dumps({'cases': cases}))

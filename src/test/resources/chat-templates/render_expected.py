#!/usr/bin/env python3
"""Renders every case of cases.json with every template here, the way Hugging Face's
apply_chat_template does (jinja2 sandbox, trim_blocks, lstrip_blocks, loopcontrols, tojson with
ensure_ascii=False, raise_exception; a case's "kwargs" are passed as chat_template_kwargs), and writes expected/<template>.<case>.txt. The Java renderer's
test compares against these files. Rerun after changing a template or a case."""
import json, os, sys
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.exceptions import TemplateError
import jinja2.ext

here = os.path.dirname(os.path.abspath(__file__))

def raise_exception(message):
    raise TemplateError(message)

def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[jinja2.ext.loopcontrols])
env.filters["tojson"] = tojson
env.globals["raise_exception"] = raise_exception
tokens = {"smollm2": ("", "<|im_end|>"), "llama3": ("<|begin_of_text|>", "<|eot_id|>"),
          "mistral": ("<s>", "</s>"), "qwen2.5": ("", "<|im_end|>"), "qwen3": ("", "<|im_end|>")}
cases = json.load(open(os.path.join(here, "cases.json")))
os.makedirs(os.path.join(here, "expected"), exist_ok=True)
for name, (bos, eos) in tokens.items():
    template = env.from_string(open(os.path.join(here, name + ".jinja")).read())
    for case in cases:
        if "only" in case and name not in case["only"]:
            continue
        try:
            out = template.render(messages=case["messages"], tools=case.get("tools"),
                                  add_generation_prompt=case["add_generation_prompt"], bos_token=bos, eos_token=eos,
                                  **case.get("kwargs", {}))
        except TemplateError as e:
            out = "ERROR: " + str(e)
        with open(os.path.join(here, "expected", f"{name}.{case['name']}.txt"), "w") as f:
            f.write(out)
print("ok")

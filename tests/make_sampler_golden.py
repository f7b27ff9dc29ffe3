"""Writes tests/fixtures/smollm2_greedy_golden.json: transformers' greedy SmolLM2 tokens.

The sampler test compares r1jax's greedy decoding of SmolLM2-135M-Instruct (float32, from the
Q4_1 GGUF) with these ids when torch is not installed, and with a live transformers run when
it is. Run from the repository root (needs torch, transformers and the cached GGUF):

  python -m tests.make_sampler_golden
"""

from __future__ import annotations

import json
import pathlib

FIXTURE = pathlib.Path(__file__).parent / "fixtures" / "smollm2_greedy_golden.json"
# Chat prompts whose greedy answers run past 48 tokens; of different lengths, so the sampler
# left-pads one of them (with the pad id, which is also <|im_end|> inside both prompts).
QUESTIONS = (
    "Write a short story about a robot who learns to paint.",
    "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in "
    "May. How many clips did Natalia sell altogether in April and May? Think step by step.",
)
MAX_NEW_TOKENS = 64


def hf_greedy(path: str | pathlib.Path, prompts: list[list[int]], max_new_tokens: int,
              eos_ids: list[int]) -> list[list[int]]:
  """transformers' greedy completions, each run alone (no padding), up to and with its eos."""
  import torch  # pylint: disable=g-import-not-at-top
  import transformers  # pylint: disable=g-import-not-at-top
  path = pathlib.Path(path)
  model = transformers.AutoModelForCausalLM.from_pretrained(
      str(path.parent), gguf_file=path.name, dtype=torch.float32).eval()
  out = []
  for ids in prompts:
    x = torch.tensor([ids], dtype=torch.long)
    with torch.inference_mode():
      y = model.generate(input_ids=x, attention_mask=torch.ones_like(x), do_sample=False,
                         max_new_tokens=max_new_tokens, eos_token_id=list(eos_ids),
                         pad_token_id=eos_ids[0])
    out.append(y[0, len(ids):].tolist())
  for row in out:  # Cut anything after the first eos (generate pads with the pad id).
    stop = next((i for i, t in enumerate(row) if t in eos_ids), None)
    if stop is not None:
      del row[stop + 1:]
  return out


def main() -> None:
  from r1jax import fetch  # pylint: disable=g-import-not-at-top
  from r1jax.tokenizer import load_tokenizer  # pylint: disable=g-import-not-at-top
  path = fetch.resolve_model_path("smollm2-135m")
  tok = load_tokenizer(path)
  prompts = [tok.apply_chat_template([{"role": "user", "content": q}], tokenize=True)
             for q in QUESTIONS]
  eos_ids = list(tok.eos_ids)
  tokens = hf_greedy(path, prompts, MAX_NEW_TOKENS, eos_ids)
  golden = {"questions": list(QUESTIONS), "prompt_ids": prompts, "eos_ids": eos_ids,
            "max_new_tokens": MAX_NEW_TOKENS, "hf_tokens": tokens,
            "hf_text": [tok.decode(t) for t in tokens]}
  FIXTURE.write_text(json.dumps(golden, indent=1) + "\n")
  print(f"wrote {FIXTURE}: lengths {[len(t) for t in tokens]}")


if __name__ == "__main__":
  main()

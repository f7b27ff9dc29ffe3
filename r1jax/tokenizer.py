"""Tokenizers behind one interface: text <-> token ids, special ids, and chat templates.

Place in the pipeline: data tasks render prompts with `apply_chat_template` and `encode` them;
the sampler stops on `eos_ids`; rewards `decode` completions on the host. `load_tokenizer`
accepts what researchers already have:

- a Hugging Face folder or its `tokenizer.json` (the `tokenizers` library), with special tokens
  from tokenizer_config.json / generation_config.json / config.json and the chat template from
  tokenizer_config.json, chat_template.jinja or chat_template.json;
- a SentencePiece `.model` file (alone or inside an HF folder without tokenizer.json);
- a GGUF file: a byte-level BPE tokenizer is rebuilt from the vocabulary, merges and token types
  stored in its metadata, split the way llama.cpp splits for the file's `tokenizer.ggml.pre`;
- a known model name such as `smollm2-135m` (see `r1jax.fetch`);
- `bytes`: a built-in byte-level tokenizer (any text, no file; debug runs and tests).

Padding: r1jax never infers padding from token values (SmolLM2's pad id is its eos id, which also
ends every chat turn inside prompts); it carries explicit lengths and masks. So when a tokenizer
defines no pad token, `pad_id` falls back to the eos id (then to 0): any id is a valid filler.
"""

from __future__ import annotations

import abc
import datetime
import json
import os
import pathlib
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import gguf
import jinja2
import jinja2.ext
import jinja2.sandbox
import sentencepiece
import tokenizers
from tokenizers import AddedToken, Regex, decoders, models, normalizers, pre_tokenizers, processors

from r1jax import fetch

__all__ = ["BYTES", "BYTES_EOS", "Tokenizer", "byte_tokenizer", "load_tokenizer"]

# Pre-tokenizer split patterns, keyed by llama.cpp's `tokenizer.ggml.pre` names. Each entry is a
# list of regexes applied in turn (matches and gaps both become pieces), as llama.cpp does.
_GPT2_SPLIT = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"
_LLAMA3_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}"
                 r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
_QWEN2_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}"
                r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
_PRE_SPLITS = {
    **{name: [_GPT2_SPLIT] for name in ("default", "gpt2", "gpt-2", "mpt", "olmo")},
    # StarCoder-lineage vocabularies (SmolLM, SmolLM2) isolate every digit first.
    **{name: [r"\p{N}", _GPT2_SPLIT]
       for name in ("smollm", "starcoder", "refact", "command-r", "codeshell", "exaone")},
    **{name: [_LLAMA3_SPLIT] for name in ("llama3", "llama-v3", "llama-bpe")},
    **{name: [_QWEN2_SPLIT] for name in ("qwen2", "deepseek-r1-qwen")},
}
_LLAMA3_PRES = ("llama3", "llama-v3", "llama-bpe")  # Whole-word vocab hits skip the merges.
_QWEN2_PRES = ("qwen2", "deepseek-r1-qwen")  # Their tokenizer.json NFC-normalizes the text.
_GGUF_CONTROL, _GGUF_USER_DEFINED = 3, 4  # llama.cpp token types.
_EOT_PROBE = "r1jax end-of-turn probe"
# A Hugging Face hub id ("org/name"), as `models.weights` recognises one.
_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")


class Tokenizer(abc.ABC):
  """Encodes and decodes text, knows the special ids, renders the chat template.

  Attributes:
    bos_id: beginning-of-sequence id, or None when the tokenizer has none.
    eos_ids: ids that end a completion: the eos id(s) and the chat template's end-of-turn id.
    pad_id: padding id; the first eos id (then 0) when the tokenizer defines none.
    chat_template: jinja2 source of the chat template, or None.
    chat_template_kwargs: template variables every render gets (Qwen3's
      `{"enable_thinking": False}`); set from `Config.chat_template_kwargs` or
      `--chat-template-kwarg`; a call's own keyword arguments win.
    vocab_size: number of ids, added tokens included.
    source: the file it was loaded from.
  """

  def __init__(self, *, bos_id: int | None, eos_ids: Sequence[int], pad_id: int | None,
               chat_template: str | None, source: str):
    self.source = source
    self.chat_template = chat_template
    self.chat_template_kwargs: dict[str, Any] = {}
    self.bos_id = bos_id
    self._compiled = None
    eos = list(dict.fromkeys(eos_ids))
    self.eos_ids: tuple[int, ...] = tuple(eos)  # Provisional: the probe below renders with it.
    eot = self._end_of_turn_id()
    if eot is not None and eot not in eos:
      eos.append(eot)
    self.eos_ids = tuple(eos)
    self.pad_id: int = pad_id if pad_id is not None else (eos[0] if eos else 0)

  # --- implemented by each backend ---------------------------------------------------------
  @abc.abstractmethod
  def encode(self, text: str, add_special_tokens: bool = False) -> list[int]:
    """Token ids of `text`; special-token strings inside it map to their single ids.

    `add_special_tokens` adds what the tokenizer adds around a text (e.g. bos), nothing more.
    """

  @abc.abstractmethod
  def decode(self, ids: Sequence[int], skip_special_tokens: bool = False) -> str:
    """Text of `ids`; `skip_special_tokens` drops control tokens such as `<|im_end|>`."""

  @abc.abstractmethod
  def token_to_id(self, token: str) -> int | None:
    """The id of a vocabulary string (e.g. `<think>`), or None."""

  @abc.abstractmethod
  def id_to_token(self, token_id: int) -> str | None:
    """The vocabulary string of an id, or None."""

  @abc.abstractmethod
  def is_special(self, token_id: int) -> bool:
    """Whether `token_id` is a control token."""

  @property
  @abc.abstractmethod
  def vocab_size(self) -> int:
    """Number of ids, added tokens included."""

  # --- shared --------------------------------------------------------------------------------
  def apply_chat_template(self, messages: Sequence[Mapping[str, Any]],
                          add_generation_prompt: bool = True, tokenize: bool = False,
                          **kwargs: Any) -> str | list[int]:
    """Renders a conversation with the chat template, as transformers does.

    Args:
      messages: [{"role": ..., "content": ...}, ...].
      add_generation_prompt: end with the header that opens the assistant's turn.
      tokenize: return token ids (encoded without adding bos/eos) instead of the string.
      **kwargs: extra template variables (e.g. `enable_thinking=False`, `tools=[...]`), on
        top of `chat_template_kwargs`.
    """
    if self.chat_template is None:
      raise ValueError(f"tokenizer {self.source!r} has no chat template; pass a tokenizer whose "
                       "tokenizer_config.json, chat_template.jinja or GGUF metadata defines one")
    if isinstance(messages, (str, bytes)) or not all(
        isinstance(m, Mapping) and "role" in m for m in messages):
      raise ValueError(f"messages must be a list of {{'role': ..., 'content': ...}} dicts, "
                       f"got {messages!r:.200}")
    if self._compiled is None:
      self._compiled = _template_env().from_string(self.chat_template)
    names = {"bos_token": self.bos_id, "eos_token": self.eos_ids[0] if self.eos_ids else None}
    special = {k: self.id_to_token(v) for k, v in names.items() if v is not None}
    text = self._compiled.render(messages=list(messages),
                                 add_generation_prompt=add_generation_prompt,
                                 **{**special, **self.chat_template_kwargs, **kwargs})
    return self.encode(text) if tokenize else text

  def _end_of_turn_id(self) -> int | None:
    """The special id the template writes right after an assistant message, if any.

    Chat models stop on it (`<|im_end|>`, `<|eot_id|>`, `<end_of_turn>`) even when the
    tokenizer's own eos is a different token.
    """
    if self.chat_template is None:
      return None
    try:
      text = self.apply_chat_template([{"role": "user", "content": "Hi"},
                                       {"role": "assistant", "content": _EOT_PROBE}],
                                      add_generation_prompt=False)
    except (ValueError, jinja2.TemplateError, TypeError, KeyError):
      return None  # A template that refuses this conversation names no end of turn.
    tail = text[text.rfind(_EOT_PROBE) + len(_EOT_PROBE):] if _EOT_PROBE in text else ""
    ids = self.encode(tail) if tail else []
    return ids[0] if ids and self.is_special(ids[0]) else None

  def __repr__(self) -> str:
    return (f"Tokenizer({self.source!r}, vocab_size={self.vocab_size}, bos_id={self.bos_id}, "
            f"eos_ids={self.eos_ids}, pad_id={self.pad_id})")


class _FastTokenizer(Tokenizer):
  """A `tokenizers.Tokenizer` (from tokenizer.json, or rebuilt from a GGUF)."""

  def __init__(self, backend, **kwargs):
    self._tok = backend
    self._special = {i for i, t in backend.get_added_tokens_decoder().items() if t.special}
    super().__init__(**kwargs)

  def encode(self, text: str, add_special_tokens: bool = False) -> list[int]:
    return self._tok.encode(text, add_special_tokens=add_special_tokens).ids

  def decode(self, ids: Sequence[int], skip_special_tokens: bool = False) -> str:
    return self._tok.decode([int(i) for i in ids], skip_special_tokens=skip_special_tokens)

  def token_to_id(self, token: str) -> int | None:
    return self._tok.token_to_id(token)

  def id_to_token(self, token_id: int) -> str | None:
    return self._tok.id_to_token(token_id)

  def is_special(self, token_id: int) -> bool:
    return token_id in self._special

  @property
  def vocab_size(self) -> int:
    return self._tok.get_vocab_size(with_added_tokens=True)

  def to_tokenizer_json(self) -> str:
    """The Hugging Face `tokenizer.json` text of this tokenizer (what `r1jax export` writes)."""
    return self._tok.to_str()


class _SentencePieceTokenizer(Tokenizer):
  """A SentencePiece model. Control pieces (`<s>`, `</s>`) written in the text map to their ids,
  the text between them is encoded piece by piece (as transformers' legacy Llama tokenizer)."""

  def __init__(self, processor, *, add_bos: bool, **kwargs):
    self._sp = processor
    self._add_bos = add_bos  # What encode(add_special_tokens=True) adds (HF Llama: bos only).
    n = processor.get_piece_size()
    self._control = {processor.id_to_piece(i): i for i in range(n) if processor.is_control(i)}
    pieces = sorted(self._control, key=len, reverse=True)
    self._split = re.compile("(" + "|".join(map(re.escape, pieces)) + ")") if pieces else None
    super().__init__(**kwargs)

  def encode(self, text: str, add_special_tokens: bool = False) -> list[int]:
    ids = [self.bos_id] if add_special_tokens and self._add_bos and self.bos_id is not None else []
    for part in (self._split.split(text) if self._split else [text]):
      if part in self._control:
        ids.append(self._control[part])
      elif part:
        ids.extend(self._sp.encode(part))
    return ids

  def decode(self, ids: Sequence[int], skip_special_tokens: bool = False) -> str:
    out, run = [], []
    for i in map(int, ids):
      if self._sp.is_control(i):  # sp.decode drops control ids; keep them unless asked not to.
        out.append(self._sp.decode(run))
        run = []
        if not skip_special_tokens:
          out.append(self._sp.id_to_piece(i))
      else:
        run.append(i)
    return "".join(out + [self._sp.decode(run)])

  def token_to_id(self, token: str) -> int | None:
    i = self._sp.piece_to_id(token)
    return i if self._sp.id_to_piece(i) == token else None

  def id_to_token(self, token_id: int) -> str | None:
    return self._sp.id_to_piece(token_id) if 0 <= token_id < self.vocab_size else None

  def is_special(self, token_id: int) -> bool:
    return bool(self._sp.is_control(token_id))

  @property
  def vocab_size(self) -> int:
    return self._sp.get_piece_size()


def _template_env() -> jinja2.sandbox.ImmutableSandboxedEnvironment:
  """A sandboxed jinja2 environment with the options and helpers HF chat templates expect."""

  class _GenerationTag(jinja2.ext.Extension):
    # `{% generation %}...{% endgeneration %}` marks assistant text for training masks in HF;
    # rendering only needs the body.
    tags = {"generation"}

    def parse(self, parser):
      next(parser.stream)
      return parser.parse_statements(("name:endgeneration",), drop_needle=True)

  def raise_exception(message):
    raise ValueError(f"chat template refused the conversation: {message}")

  def tojson(value, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(value, ensure_ascii=ensure_ascii, indent=indent, separators=separators,
                      sort_keys=sort_keys)

  env = jinja2.sandbox.ImmutableSandboxedEnvironment(
      trim_blocks=True, lstrip_blocks=True,
      extensions=[_GenerationTag, jinja2.ext.loopcontrols])
  env.filters["tojson"] = tojson
  env.globals["raise_exception"] = raise_exception
  env.globals["strftime_now"] = lambda fmt: datetime.datetime.now().strftime(fmt)
  return env


# --- Hugging Face folders --------------------------------------------------------------------
def _read_json(path: pathlib.Path) -> dict:
  if not path.is_file():
    return {}
  with open(path, encoding="utf-8") as f:
    return json.load(f)


def _token_text(value) -> str | None:
  """tokenizer_config.json writes a special token as a string or as {"content": ...}."""
  return value.get("content") if isinstance(value, Mapping) else value


def _as_ids(value) -> list[int]:
  if value is None:
    return []
  return [int(v) for v in value] if isinstance(value, (list, tuple)) else [int(value)]


def _folder_template(folder: pathlib.Path, tok_config: dict) -> str | None:
  """chat_template.jinja, then chat_template.json, then tokenizer_config.json's field."""
  if (folder / "chat_template.jinja").is_file():
    return (folder / "chat_template.jinja").read_text(encoding="utf-8")
  template = _read_json(folder / "chat_template.json").get("chat_template")
  template = template or tok_config.get("chat_template")
  if isinstance(template, list):  # Named templates: [{"name": "default", "template": ...}].
    named = {t.get("name"): t.get("template") for t in template}
    template = named.get("default")
  return template


def _folder_specials(folder: pathlib.Path, to_id: Callable[[str], int | None],
                     defaults: Mapping[str, Any]) -> dict:
  """bos/eos/pad ids and the chat template from the json files next to the tokenizer.

  eos collects every source (generation_config may list several stop ids, e.g. Llama 3.1).
  """
  tok_cfg = _read_json(folder / "tokenizer_config.json")
  gen_cfg = _read_json(folder / "generation_config.json")
  model_cfg = _read_json(folder / "config.json")

  def from_token(name):
    text = _token_text(tok_cfg.get(name))
    return to_id(text) if text is not None else None

  def first(*values):
    return next((v for v in values if v is not None), None)

  eos = [from_token("eos_token")] + _as_ids(gen_cfg.get("eos_token_id")) + _as_ids(
      model_cfg.get("eos_token_id")) + _as_ids(defaults.get("eos"))
  return dict(
      bos_id=first(from_token("bos_token"), gen_cfg.get("bos_token_id"),
                   model_cfg.get("bos_token_id"), defaults.get("bos")),
      eos_ids=[i for i in eos if i is not None],
      pad_id=first(from_token("pad_token"), gen_cfg.get("pad_token_id"),
                   model_cfg.get("pad_token_id"), defaults.get("pad")),
      chat_template=_folder_template(folder, tok_cfg),
      add_bos=bool(tok_cfg.get("add_bos_token", defaults.get("add_bos", False))))


def _load_tokenizer_json(path: pathlib.Path) -> Tokenizer:
  backend = tokenizers.Tokenizer.from_file(str(path))
  specials = _folder_specials(path.parent, backend.token_to_id, {})
  specials.pop("add_bos")  # tokenizer.json's post-processor already says what to add.
  return _FastTokenizer(backend, source=str(path), **specials)


def _load_sentencepiece(path: pathlib.Path) -> Tokenizer:
  sp = sentencepiece.SentencePieceProcessor(model_file=str(path))
  to_id = lambda piece: (i if sp.id_to_piece(i := sp.piece_to_id(piece)) == piece else None)
  own = {k: (v if v >= 0 else None)
         for k, v in (("bos", sp.bos_id()), ("eos", sp.eos_id()), ("pad", sp.pad_id()))}
  specials = _folder_specials(path.parent, to_id, {**own, "add_bos": True})
  return _SentencePieceTokenizer(sp, source=str(path), **specials)


# --- GGUF ------------------------------------------------------------------------------------
def _byte_level_bpe(tokens: list[str], merges: list[str], types: list[int],
                    pre: str) -> tokenizers.Tokenizer:
  """A byte-level BPE over llama.cpp's vocabulary, split as llama.cpp splits for `pre`."""
  model = models.BPE(vocab={t: i for i, t in enumerate(tokens)},
                     merges=[tuple(m.split(" ", 1)) for m in merges],
                     ignore_merges=pre in _LLAMA3_PRES)
  backend = tokenizers.Tokenizer(model)
  if pre in _QWEN2_PRES:
    backend.normalizer = normalizers.NFC()
  backend.pre_tokenizer = pre_tokenizers.Sequence(
      [pre_tokenizers.Split(Regex(rx), behavior="isolated") for rx in _PRE_SPLITS[pre]]
      + [pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
  backend.decoder = decoders.ByteLevel()
  # Control tokens (<|im_start|>, <|im_end|>) match whole, as in llama.cpp with special parsing
  # on; user-defined ones (<think>) match whole too but are not special. Both keep their ids.
  backend.add_special_tokens([AddedToken(t, special=True, normalized=False)
                              for t, k in zip(tokens, types) if k == _GGUF_CONTROL])
  backend.add_tokens([AddedToken(t, special=False, normalized=False)
                      for t, k in zip(tokens, types) if k == _GGUF_USER_DEFINED])
  return backend


def _load_gguf(path: pathlib.Path) -> Tokenizer:
  reader = gguf.GGUFReader(str(path))

  def field(key, default=None):
    f = reader.fields.get(key)
    return f.contents() if f is not None else default

  kind = field("tokenizer.ggml.model")
  if kind != "gpt2":
    raise ValueError(f"GGUF file {path} stores a tokenizer of type {kind!r}; r1jax builds "
                     "only byte-level BPE ('gpt2') tokenizers from GGUF metadata (use the "
                     "model's tokenizer.json or tokenizer.model instead)")
  pre = field("tokenizer.ggml.pre", "default")
  if pre not in _PRE_SPLITS:
    raise ValueError(f"GGUF file {path} names pre-tokenizer {pre!r}, which r1jax does not know; "
                     f"known: {', '.join(sorted(_PRE_SPLITS))}")
  tokens = field("tokenizer.ggml.tokens")
  merges = field("tokenizer.ggml.merges")
  if not tokens or merges is None:
    raise ValueError(f"GGUF file {path} has no tokenizer.ggml.tokens / tokenizer.ggml.merges")
  types = field("tokenizer.ggml.token_type") or [1] * len(tokens)
  backend = _byte_level_bpe(tokens, merges, types, pre)

  def token_id(key):
    value = field(key)
    return int(value) if value is not None and 0 <= int(value) < len(tokens) else None

  bos, eos = token_id("tokenizer.ggml.bos_token_id"), token_id("tokenizer.ggml.eos_token_id")
  # llama.cpp also stops on the end-of-turn / end-of-message ids when a file names them.
  stops = [eos, token_id("tokenizer.ggml.eot_token_id"), token_id("tokenizer.ggml.eom_token_id")]
  # A byte-level file that does not say add_bos_token adds nothing (as transformers reads it).
  add_bos = bool(field("tokenizer.ggml.add_bos_token", False)) and bos is not None
  add_eos = bool(field("tokenizer.ggml.add_eos_token", False)) and eos is not None
  if add_bos or add_eos:
    single = " ".join([tokens[bos]] * add_bos + ["$A"] + [tokens[eos]] * add_eos)
    backend.post_processor = processors.TemplateProcessing(
        single=single, special_tokens=[(tokens[i], i) for i in {bos, eos} if i is not None])
  return _FastTokenizer(backend, source=str(path), bos_id=bos,
                        eos_ids=[i for i in stops if i is not None],
                        pad_id=token_id("tokenizer.ggml.padding_token_id"),
                        chat_template=field("tokenizer.chat_template"))


# --- a built-in byte-level tokenizer ------------------------------------------------------------
BYTES = "bytes"  # The name `load_tokenizer` knows the byte tokenizer by.
BYTES_EOS = "<|endoftext|>"  # The byte tokenizer's end of sequence (and pad), id 256.


def _byte_alphabet() -> list[str]:
  """GPT-2's printable stand-in character for each byte 0..255 (what ByteLevel maps bytes to)."""
  keep = [*range(ord("!"), ord("~") + 1), *range(ord("\xa1"), ord("\xac") + 1),
          *range(ord("\xae"), ord("\xff") + 1)]
  chars, extra = {}, 0
  for b in range(256):
    if b in keep:
      chars[b] = chr(b)
    else:  # Control and space bytes take the code points after 255, in byte order.
      chars[b] = chr(256 + extra)
      extra += 1
  return [chars[b] for b in range(256)]


def byte_tokenizer() -> Tokenizer:
  """A byte-level tokenizer: id = byte value, 256 = `<|endoftext|>` (eos and pad).

  It encodes any text with no merges and no unknown tokens, so tiny random models (the debug
  variants of real recipes, tests) run real prompts and real rewards without a download.
  `load_tokenizer("bytes")` returns it.
  """
  vocab = {c: i for i, c in enumerate(_byte_alphabet())}
  backend = tokenizers.Tokenizer(models.BPE(vocab=vocab, merges=[]))
  backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
  backend.decoder = decoders.ByteLevel()
  backend.add_special_tokens([AddedToken(BYTES_EOS, special=True, normalized=False)])
  eos = backend.token_to_id(BYTES_EOS)
  return _FastTokenizer(backend, source=BYTES, bos_id=None, eos_ids=[eos], pad_id=eos,
                        chat_template=None)


# --- entry point -----------------------------------------------------------------------------
def _is_gguf(path: pathlib.Path) -> bool:
  with open(path, "rb") as f:
    return f.read(4) == b"GGUF"


def load_tokenizer(path: str | os.PathLike, *,
                   cache_dir: str | os.PathLike | None = None) -> Tokenizer:
  """Loads a tokenizer from an HF folder, tokenizer.json, a SentencePiece .model, a GGUF file,
  a known model name (`smollm2-135m`), a hub id ("org/name") in the local Hugging Face cache
  (its snapshot folder: tokenizer.json and the chat template of tokenizer_config.json, as the
  weights of `models.load` come from it), or "bytes" (the built-in `byte_tokenizer`).

  Raises:
    FileNotFoundError: the path does not exist, or a folder holds no tokenizer file.
    ValueError: the file is of a kind r1jax cannot read, or its GGUF tokenizer is unsupported.
  """
  if os.fspath(path) == BYTES and not os.path.exists(BYTES):
    return byte_tokenizer()
  p = pathlib.Path(fetch.resolve_model_path(path)).expanduser()
  if not p.exists() and _HUB_ID.fullmatch(os.fspath(path)):
    from r1jax.models import weights  # pylint: disable=g-import-not-at-top
    p = weights.resolve(path, cache_dir=cache_dir)  # Raises naming the hub id if not cached.
  if not p.exists():
    raise FileNotFoundError(
        f"tokenizer path {os.fspath(path)!r} does not exist; pass an HF folder, a "
        f"tokenizer.json, a SentencePiece .model, a .gguf file, or a known model name "
        f"({', '.join(sorted(fetch.KNOWN_MODELS))})")
  if p.is_dir():
    ggufs = sorted(p.glob("*.gguf"))
    if (p / "tokenizer.json").is_file():
      return _load_tokenizer_json(p / "tokenizer.json")
    if (p / "tokenizer.model").is_file():
      return _load_sentencepiece(p / "tokenizer.model")
    if len(ggufs) == 1:
      return _load_gguf(ggufs[0])
    raise FileNotFoundError(f"folder {p} holds no tokenizer.json, no tokenizer.model and "
                            f"{'several' if ggufs else 'no'} .gguf files; pass the file itself")
  if _is_gguf(p):
    return _load_gguf(p)
  if p.suffix == ".json":
    return _load_tokenizer_json(p)
  if p.suffix == ".model":
    return _load_sentencepiece(p)
  raise ValueError(f"cannot tell what tokenizer {p} is; accepted: an HF folder, tokenizer.json, "
                   "a SentencePiece .model file, or a .gguf file")

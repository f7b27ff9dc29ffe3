"""Code tasks from files: HumanEval, MBPP-style asserts, and stdin/stdout problems.

Place in the pipeline: registered tasks (`get_task("humaneval" | "mbpp" | "code", ...)`) whose
sources read JSONL/Parquet files into Examples with sandbox `tests`, and whose rewards run them
(`code_grading`). Three layouts, each record field renamable through `fields=`:

- `humaneval`: prompt (signature + docstring), entry_point, test (a `check(candidate)`
  function), canonical_solution. The test is `check(<entry_point>)` on the program, as OpenAI's
  `human-eval` runs it, through the sandbox's `CheckTest` (kept in the Example as
  {"check", "entry_point"}). In R1 style the program is the prompt's header (its imports and
  helper functions: everything before `def <entry_point>`) then the answer's code; in
  completion style it is prompt + completion.
- `mbpp`: text (the task in words), test_list (assert statements), optional test_setup_code
  and test_imports (run before the code), code (a reference solution). The prompt shows the
  first `show_tests` asserts (all by default, as the MBPP paper's prompt does), which is also
  how the model learns the function's name.
- `stdio`: a statement and tests of stdin and expected stdout (APPS, CodeContests,
  LiveCodeBench, DeepCoder). A tests field may hold a list of {"input", "output"} objects,
  an object of parallel lists ({"inputs", "outputs"} or {"input", "output"}), or either as
  a JSON string; several fields (CodeContests' public and private tests) are concatenated.
  Call-based tests (APPS' fn_name, LiveCodeBench's "functional") are refused.

Styles: "r1" asks for reasoning in <think> and the code in one fenced ```python block inside
<answer> (templates r1_zero or chat, with the R1 format reward); "completion" (humaneval only)
shows the bare function prompt for the model to continue.

Rewards: "accuracy" (1 when every test passes) plus, at weight 0 (logged, not optimized),
"pass_fraction", "no_code" and "syntax_error". Accuracies: "strict" (= accuracy),
"pass_fraction" (its `mean_score` in an eval report is the mean fraction of tests passed; a
HumanEval problem is one check, so there it equals strict), "no_code" and "syntax_error"
(their pass@1 is the share of samples that failed that way).
"""

from __future__ import annotations

import functools
import json
import re
from typing import Any, Mapping, Sequence

from r1jax import rewards as rewards_lib
from r1jax.data import code_grading
from r1jax.data import sources
from r1jax.data import tasks as tasks_lib
from r1jax.data import templates as templates_lib
from r1jax.data.code_templates import CODE_INSTRUCTION, CompletionTemplate

__all__ = ["DEFAULT_FIELDS", "LAYOUTS", "code", "code_task", "humaneval", "mbpp",
           "stdio_tests"]

LAYOUTS = ("humaneval", "mbpp", "stdio")
# Role -> record field, per layout. A role's value may be a list of fields (stdio tests).
DEFAULT_FIELDS: dict[str, dict[str, Any]] = {
    "humaneval": {"prompt": "prompt", "entry_point": "entry_point", "test": "test",
                  "solution": "canonical_solution", "id": "task_id"},
    "mbpp": {"text": "text", "tests": "test_list", "setup": "test_setup_code",
             "imports": "test_imports", "solution": "code", "id": "task_id"},
    "stdio": {"question": "question", "tests": "input_output", "solution": "solutions",
              "id": "id"},
}
# Roles a record may lack (the rest must be there).
_OPTIONAL = {"solution", "id", "setup", "imports"}


def _get(record: Mapping[str, Any], field: str | None, role: str) -> Any:
  if field is None or field not in record or record[field] is None:
    if role in _OPTIONAL:
      return None
    raise ValueError(f"record has no field {field!r} (for {role!r}); its fields are "
                     f"{sorted(record)}")
  return record[field]


def _humaneval_example(record: Mapping[str, Any], *, fields: Mapping[str, Any]) -> dict:
  prompt = str(_get(record, fields["prompt"], "prompt"))
  entry = str(_get(record, fields["entry_point"], "entry_point"))
  check = str(_get(record, fields["test"], "test"))
  if not re.fullmatch(r"[A-Za-z_]\w*", entry):
    raise ValueError(f"entry_point must be a Python name, got {entry!r}")
  match = re.search(rf"^def\s+{entry}\s*\(", prompt, re.MULTILINE)
  header = prompt[:match.start()] if match else ""
  question = (f"Complete the following Python function.\n\n```python\n{prompt.rstrip()}\n```"
              f"\n\n{CODE_INSTRUCTION}")
  return {"question": question, "prompt": prompt, "header": header, "entry_point": entry,
          "tests": [{"check": check, "entry_point": entry}],
          "answer": _get(record, fields["solution"], "solution") or entry}


def _lines(value: Any, role: str) -> list[str]:
  if value is None:
    return []
  if isinstance(value, str):
    return [value] if value.strip() else []
  if isinstance(value, Sequence) and all(isinstance(v, str) for v in value):
    return [v for v in value if v.strip()]
  raise ValueError(f"{role} must be text or a list of text, got {type(value).__name__}")


def _mbpp_example(record: Mapping[str, Any], *, fields: Mapping[str, Any],
                  show_tests: int | None) -> dict:
  text = str(_get(record, fields["text"], "text"))
  tests = _lines(_get(record, fields["tests"], "tests"), "tests")
  if not tests:
    raise ValueError("record has no assert tests")
  header = "\n".join(_lines(_get(record, fields["imports"], "imports"), "imports")
                     + _lines(_get(record, fields["setup"], "setup"), "setup"))
  shown = tests if show_tests is None else tests[:show_tests]
  question = text.strip()
  if shown:
    question += "\nYour code should pass these tests:\n\n" + "\n".join(shown)
  return {"question": f"{question}\n\n{CODE_INSTRUCTION}", "header": header, "tests": tests,
          "answer": _get(record, fields["solution"], "solution") or tests[0]}


def _as_text(value: Any) -> str:
  """A test's input or output as text (some sets store a list of lines)."""
  if isinstance(value, str):
    return value
  if isinstance(value, Sequence):
    return "\n".join(str(v) for v in value)
  return str(value)


def stdio_tests(value: Any) -> list[dict[str, str]]:
  """Stdin/stdout tests [{"input", "output"}] from the layouts in the module docstring."""
  if isinstance(value, str):
    try:
      value = json.loads(value)
    except json.JSONDecodeError as e:
      raise ValueError(f"tests text is not JSON ({e.msg} at {e.pos})") from None
  if isinstance(value, Mapping):
    if value.get("fn_name"):
      raise ValueError(f"call-based tests (fn_name {value['fn_name']!r}) are not stdin/stdout "
                       f"tests; only stdin/stdout problems are accepted")
    ins = value.get("inputs", value.get("input"))
    outs = value.get("outputs", value.get("output"))
    if not isinstance(ins, Sequence) or not isinstance(outs, Sequence) or isinstance(
        ins, str) or len(ins) != len(outs):
      raise ValueError(f"tests must hold equally long lists 'inputs' and 'outputs' (or 'input' "
                       f"and 'output'), got the keys {sorted(value)}")
    return [{"input": _as_text(i), "output": _as_text(o)} for i, o in zip(ins, outs)]
  if isinstance(value, Sequence):
    out = []
    for t in value:
      if not isinstance(t, Mapping) or "input" not in t or "output" not in t:
        raise ValueError(f"each test must be an object with 'input' and 'output', got {t!r:.80}")
      if t.get("testtype", "stdin") != "stdin":
        raise ValueError(f"test type {t['testtype']!r} is not accepted; only 'stdin' tests run "
                         f"as stdin/stdout programs")
      out.append({"input": _as_text(t["input"]), "output": _as_text(t["output"])})
    return out
  raise ValueError(f"tests must be a list, an object of lists, or JSON text, got "
                   f"{type(value).__name__}")


def _stdio_example(record: Mapping[str, Any], *, fields: Mapping[str, Any],
                   max_tests: int | None) -> dict:
  question = str(_get(record, fields["question"], "question"))
  names = fields["tests"]
  names = [names] if isinstance(names, str) else list(names)
  tests = []
  for name in names:
    if record.get(name) is not None:
      tests += stdio_tests(record[name])
  if not tests:
    raise ValueError(f"record has no tests in the fields {names}")
  if max_tests is not None:
    tests = tests[:max_tests]
  solution = _get(record, fields["solution"], "solution")
  if isinstance(solution, str) and solution.startswith("["):
    try:  # APPS stores its solutions as a JSON list of programs.
      solution = (json.loads(solution) or [None])[0]
    except json.JSONDecodeError:
      pass
  elif isinstance(solution, Sequence) and not isinstance(solution, str):
    solution = solution[0] if solution else None
  stdin_note = ("The program reads its input from standard input and writes the answer to "
                "standard output.")
  return {"question": f"{question.strip()}\n\n{stdin_note}\n\n{CODE_INSTRUCTION}",
          "tests": tests, "answer": solution or f"{len(tests)} hidden tests"}


def _whole(builder, record: Mapping[str, Any], *, part: str, **kwargs: Any) -> Any:
  """One Example key from a record (FieldMap functions build one key at a time)."""
  return builder(record, **kwargs)[part]


def _record_id(record: Mapping[str, Any], *, field: str | None) -> Any:
  return record.get(field) if field else None


def _fieldmap(layout: str, fields: Mapping[str, Any], **kwargs: Any) -> dict[str, Any]:
  builder = {"humaneval": _humaneval_example, "mbpp": _mbpp_example,
             "stdio": _stdio_example}[layout]
  # functools.partial of module-level functions: sources holding them pickle.
  parts = {"humaneval": ("question", "prompt", "header", "entry_point", "tests", "answer"),
           "mbpp": ("question", "header", "tests", "answer"),
           "stdio": ("question", "tests", "answer")}[layout]
  out = {p: functools.partial(_whole, builder, part=p, fields=fields, **kwargs) for p in parts}
  out["id"] = functools.partial(_record_id, field=fields.get("id"))
  return out


def _read(path: Any, layout: str, fields: Mapping[str, Any], **kwargs: Any
          ) -> sources.RecordSource:
  if path is None:
    raise ValueError(f"code layout {layout!r} reads a data file; pass path= (a .jsonl or "
                     f".parquet file, a glob, or a list)")
  first = str(path if isinstance(path, str) or not isinstance(path, Sequence) else path[0])
  reader = sources.read_parquet if first.endswith(".parquet") else sources.read_jsonl
  return reader(path, _fieldmap(layout, fields, **kwargs))


def code_task(name: str, source: sources.Source, *, style: str = "r1", template: Any = "r1_zero",
              format_weight: float = 0.1, format_kind: str = "strict", timeout_s: float = 10.0,
              memory_mb: int = 1024) -> tasks_lib.Task:
  """A Task over code Examples (`tests`, optional `prompt`, `header`) with the code rewards."""
  if style not in ("r1", "completion"):
    raise ValueError(f"style must be 'r1' or 'completion', got {style!r}")
  if style == "completion":
    if template not in ("r1_zero", "completion", "chat", None):
      raise ValueError(f"style 'completion' shows the bare code prompt; template must be left "
                       f"unset or 'completion', got {template!r}")
    template_obj: templates_lib.Template = CompletionTemplate()
  else:
    template_obj = templates_lib.get_template(template)
  grading = dict(style=style, timeout_s=timeout_s, memory_mb=memory_mb)
  accuracy = code_grading.CodeAccuracy(**grading)
  failures = {r: code_grading.CodeFailure(**grading, reason=r) for r in ("no_code",
                                                                          "syntax_error")}
  reward_fns: dict[str, tuple[Any, float]] = {
      "accuracy": (accuracy, 1.0),
      "pass_fraction": (code_grading.CodePassFraction(**grading), 0.0),
      **{r: (fn, 0.0) for r, fn in failures.items()}}
  kinds = {"strict": rewards_lib.R1Format, "tags": rewards_lib.TagCount}
  if format_kind not in kinds:
    raise ValueError(f"format_kind must be one of {sorted(kinds)}, got {format_kind!r}")
  if template_obj.uses_tags and format_weight:
    reward_fns["format"] = (kinds[format_kind](), float(format_weight))
  # Accuracies keep raw scores: `r1jax eval` counts full credit for pass@k and reports the
  # pass fraction's mean on its own (mean_score).
  accuracies = {"strict": accuracy, "pass_fraction": reward_fns["pass_fraction"][0], **failures}
  return tasks_lib.Task(name, source, template_obj, reward_fns, accuracies)


@tasks_lib.register_task("code")
def code(path: Any = None, *, layout: str = "humaneval", fields: Mapping[str, Any] | None = None,
         style: str = "r1", template: Any = "r1_zero", format_weight: float = 0.1,
         format_kind: str = "strict", show_tests: int | None = None,
         max_tests: int | None = None, timeout_s: float = 10.0,
         memory_mb: int = 1024) -> tasks_lib.Task:
  """Code problems from a file in one of LAYOUTS; `fields` renames record fields by role."""
  if layout not in LAYOUTS:
    raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
  if style == "completion" and layout != "humaneval":
    raise ValueError(f"style 'completion' continues a function prompt, which only the "
                     f"humaneval layout has; got layout {layout!r}")
  roles = dict(DEFAULT_FIELDS[layout])
  unknown = sorted(set(fields or {}) - set(roles))
  if unknown:
    raise ValueError(f"layout {layout!r} has no field role {unknown[0]!r}; its roles are "
                     f"{sorted(roles)}")
  roles.update(fields or {})
  kwargs = {"mbpp": {"show_tests": show_tests}, "stdio": {"max_tests": max_tests}}.get(layout, {})
  source = _read(path, layout, roles, **kwargs)
  return code_task(layout if layout != "stdio" else "code", source, style=style,
                   template=template, format_weight=format_weight, format_kind=format_kind,
                   timeout_s=timeout_s, memory_mb=memory_mb)


@tasks_lib.register_task("humaneval")
def humaneval(path: Any = None, *, fields: Mapping[str, Any] | None = None, style: str = "r1",
              template: Any = "r1_zero", format_weight: float = 0.1, timeout_s: float = 10.0
              ) -> tasks_lib.Task:
  """HumanEval JSONL (task_id, prompt, entry_point, canonical_solution, test)."""
  return code(path, layout="humaneval", fields=fields, style=style, template=template,
              format_weight=format_weight, timeout_s=timeout_s)


@tasks_lib.register_task("mbpp")
def mbpp(path: Any = None, *, fields: Mapping[str, Any] | None = None,
         template: Any = "r1_zero", format_weight: float = 0.1, show_tests: int | None = None,
         timeout_s: float = 10.0) -> tasks_lib.Task:
  """MBPP JSONL (task_id, text, code, test_list, test_setup_code)."""
  return code(path, layout="mbpp", fields=fields, template=template,
              format_weight=format_weight, show_tests=show_tests, timeout_s=timeout_s)

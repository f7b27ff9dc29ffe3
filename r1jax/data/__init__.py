"""Data: tasks (prompt template + source + reward), file and TFDS sources, generators.

Place in the pipeline: step 1 of a training step. `get_task(name, **kwargs)` builds a Task;
`task.stream(seed=..., process_index=..., process_count=...)` walks its Examples in a seeded,
sharded, resumable order; `task.prompts(P, tokenizer=...)` renders batches of prompt text;
`task.rewards(completion, example)` grades a completion by each named reward.
"""

from r1jax.data.generators import ArithmeticGenerator, CountdownGenerator
from r1jax.data.sources import (Example, ExampleStream, RecordSource, Source, TfdsSource,
                                read_jsonl, read_parquet, read_records)
from r1jax.data.templates import (ChatTemplate, QwenMathTemplate, R1ZeroTemplate, Template,
                                  get_template)
from r1jax.data.tasks import TASKS, PromptBatch, Task, get_task, register_task
from r1jax.data import miniature  # Registers the built-in "miniature" task.  # pylint: disable=g-bad-import-order
from r1jax.data import aha_miniature  # Registers "aha_miniature".  # pylint: disable=g-bad-import-order
# Registers the code tasks ("humaneval", "mbpp", "code", "code_functions") and "knights_knaves".
from r1jax.data import code_generators, code_tasks, knights_knaves  # pylint: disable=g-bad-import-order
from r1jax.data import hf_datasets  # Registers "hf" (needs `datasets` only when used).  # pylint: disable=g-bad-import-order

__all__ = [
    "ArithmeticGenerator",
    "ChatTemplate",
    "CountdownGenerator",
    "Example",
    "ExampleStream",
    "PromptBatch",
    "QwenMathTemplate",
    "R1ZeroTemplate",
    "RecordSource",
    "Source",
    "TASKS",
    "Task",
    "Template",
    "TfdsSource",
    "get_task",
    "get_template",
    "read_jsonl",
    "read_parquet",
    "read_records",
    "register_task",
]

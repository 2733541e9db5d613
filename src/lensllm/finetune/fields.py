"""Mapping raw records onto task examples: field names, prompt templates, chat messages.

A task has one of three kinds, each with its own example fields:

- ``causal``: ``text``; the model learns to continue it, every token is scored;
- ``seq2seq``: ``source`` and ``target``; only the target is scored;
- ``chat``: ``messages``, a list of ``{"role", "content"}``; rendered with the
  tokenizer's chat template, only the assistant turns are scored.

The columns holding those fields can have any names (``fields = {text = "body"}``);
instruction records are turned into seq2seq examples by a prompt template that writes the
source from the record's columns (``"Q: {question}\\nA: "``), or by the built-in
``"instruction"`` template for ``instruction``/``input``/``output`` records. Without a
mapping the kind is detected from the first record's columns: ``text``, then ``source``
and ``target``, then ``messages``, then ``instruction`` and ``output``, then ``prompt`` and
``completion`` (a seq2seq task).

Every problem names the source, the record and the field: a silently skipped or
half-read example would change which examples the nested subsets hold. A string that is
not text (a lone surrogate, ``"\\ud800"`` in JSON) is refused here, on load, for every
source: it would pass every check and then fail inside the tokenizer of every run.
"""

from __future__ import annotations

import string
from collections.abc import Mapping, Sequence
from typing import Any

from lensllm.exceptions import ConfigError, InputError
from lensllm.inputs import check_text

__all__ = ["TASK_KINDS", "ROLES", "BUILTIN_TEMPLATES", "check_mapping", "map_records"]

#: The task kinds and the fields each one's examples hold.
TASK_KINDS: dict[str, tuple[str, ...]] = {
    "causal": ("text",), "seq2seq": ("source", "target"), "chat": ("messages",),
}
#: Field roles a ``fields`` mapping may rename.
ROLES = ("text", "source", "target", "messages")

_INSTRUCTION = "### Instruction:\n{instruction}\n\n"
_INPUT = "### Input:\n{input}\n\n"
_RESPONSE = "### Response:\n"
#: Built-in prompt templates by name (the ``input`` section is left out when empty).
BUILTIN_TEMPLATES = {"instruction": _INSTRUCTION + _INPUT + _RESPONSE}
_BUILTIN_TARGET = "output"


def check_mapping(fields: Mapping[str, str], prompt_template: str) -> None:
    """Validate a ``fields`` mapping and prompt template (before any data is read).

    Raises:
        ConfigError: an unknown role, an empty column name, or roles of different kinds.
    """
    for role, column in fields.items():
        if role not in ROLES:
            raise ConfigError(f"unknown role `data.fields.{role}`; roles are {', '.join(ROLES)}")
        if not isinstance(column, str) or not column:
            raise ConfigError(f"`data.fields.{role}` must be a column name, got {column!r}")
    kinds = {_role_kind(role) for role in fields} - {None}
    if prompt_template:
        kinds.add("seq2seq")
        if "source" in fields:
            raise ConfigError("`data.fields.source` and `data.prompt_template` both define the "
                              "source; keep one")
        _template_columns(prompt_template)  # parses, or raises
    if len(kinds) > 1:
        raise ConfigError(f"`data.fields` mixes the roles of {' and '.join(sorted(kinds))} "
                          "tasks; map `text`, or `source`/`target`, or `messages`")


def _role_kind(role: str) -> str | None:
    return {"text": "causal", "source": "seq2seq", "target": "seq2seq",
            "messages": "chat"}.get(role)


def map_records(
    records: Sequence[tuple[str, Mapping[str, Any]]],
    label: str,
    *,
    fields: Mapping[str, str] | None = None,
    prompt_template: str = "",
) -> tuple[str, list[dict[str, Any]]]:
    """Turn raw records into examples of one task kind.

    Args:
        records: ``(where, record)`` pairs from :mod:`lensllm.finetune.sources`.
        label: the source's name for messages (a file path or a dataset name).
        fields: role -> column name (defaults: each role's own name).
        prompt_template: a template name of :data:`BUILTIN_TEMPLATES` or a format string
            whose ``{column}`` fields are filled from each record, giving the source.

    Returns:
        ``(kind, examples)``; each example holds exactly the fields of its kind.

    Raises:
        InputError: no records, a column missing, a text empty or not a string, a chat
            example without an assistant turn; the message names the record and field.
    """
    fields = dict(fields or {})
    check_mapping(fields, prompt_template)
    if not records:
        raise InputError(f"data source '{label}' holds no examples")
    first_where, first = records[0]
    if not fields and not prompt_template:
        kind, prompt_template, fields = _detect(label, first_where, first)
    else:
        kind = _kind(fields, prompt_template)
    if prompt_template in BUILTIN_TEMPLATES:
        fields.setdefault("target", _BUILTIN_TARGET)
    columns = {role: fields.get(role, role) for role in TASK_KINDS[kind]}
    examples = []
    for where, record in records:
        at = f"{label}, {where}"
        check_text(record, at)  # a lone surrogate would fail in every run's tokenizer
        if kind == "chat":
            examples.append({"messages": _messages(at, record, columns["messages"])})
            continue
        example = {}
        for role, column in columns.items():
            if role == "source" and prompt_template:
                example[role] = _render(at, record, prompt_template)
            else:
                example[role] = _text(at, record, column, role, kind)
        examples.append(example)
    return kind, examples


def _kind(fields: Mapping[str, str], prompt_template: str) -> str:
    """The kind a non-empty mapping names (:func:`check_mapping` made its roles agree)."""
    if prompt_template:
        return "seq2seq"
    return str(_role_kind(next(iter(fields))))


def _detect(label: str, where: str, record: Mapping[str, Any]
            ) -> tuple[str, str, dict[str, str]]:
    """``(kind, prompt template, fields)`` from the first record's columns, without a
    mapping. ``prompt``/``completion`` records (the prompt-completion format of TRL and of
    OpenAI's fine-tuning files) are seq2seq examples: the completion is scored, as-is
    (leading space included)."""
    if "text" in record:
        return "causal", "", {}
    if "source" in record and "target" in record:
        return "seq2seq", "", {}
    if "messages" in record:
        return "chat", "", {}
    if "instruction" in record and _BUILTIN_TARGET in record:
        return "seq2seq", "instruction", {}
    if "prompt" in record and "completion" in record:
        return "seq2seq", "", {"source": "prompt", "target": "completion"}
    found = ", ".join(f"'{k}'" for k in record) or "none"
    raise InputError(
        f"{label}, {where}: an example needs a 'text' field (causal task), 'source' and "
        f"'target' or 'prompt' and 'completion' (seq2seq), 'messages' (chat) or "
        f"'instruction' and 'output'; found fields {found} (map other names with "
        f"`data.fields`)"
    )


def _text(at: str, record: Mapping[str, Any], column: str, role: str, kind: str) -> str:
    value = record.get(column)
    if isinstance(value, str) and value:
        return value
    got = "missing" if column not in record else f"{type(value).__name__} {value!r}"
    mapped = f" (the {role} of a {kind} task)" if column != role else f" (a {kind} task)"
    raise InputError(f"{at}: field '{column}' must be a non-empty string{mapped}, got {got}")


def _template_parts(template: str) -> list[tuple[str, str | None]]:
    """``(literal text, column or None)`` pieces of a prompt template.

    Only plain ``{column}`` fields (``{{`` and ``}}`` for braces): a format spec
    (``{question:>2000000000}`` asked for a 2 GB string), a conversion (``{q!r}``), an
    attribute or index (``{q.x}``, ``{q[0]}``) or a nested field is refused, so that a
    template can only copy columns' text.

    Raises:
        ConfigError: the template does not parse, has such a field, or has no field.
    """
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise ConfigError(f"`data.prompt_template` is not a valid template: {exc}") from None
    parts: list[tuple[str, str | None]] = []
    for literal, name, spec, conversion in parsed:
        if name is not None and (spec or conversion or not name.isidentifier()):
            shown = "{" + name + (f"!{conversion}" if conversion else "") + (
                f":{spec}" if spec else "") + "}"
            raise ConfigError(f"`data.prompt_template` field {shown!r:.60} must be a plain "
                              "{column}: no format spec, conversion, index or attribute "
                              "(write {{ and }} for literal braces)")
        parts.append((literal, name))
    if not any(name is not None for _, name in parts):
        raise ConfigError("`data.prompt_template` uses no {column} field; it would give every "
                          "example the same source")
    return parts


def _template_columns(template: str) -> list[str]:
    if template in BUILTIN_TEMPLATES:
        return ["instruction"]
    return [name for _, name in _template_parts(template) if name is not None]


def _render(at: str, record: Mapping[str, Any], template: str) -> str:
    if template in BUILTIN_TEMPLATES:
        instruction = _text(at, record, "instruction", "instruction", "instruction")
        extra = record.get("input") or ""
        if not isinstance(extra, str):
            raise InputError(f"{at}: field 'input' must be a string, got "
                             f"{type(extra).__name__} {extra!r}")
        body = _INSTRUCTION.format(instruction=instruction)
        return body + (_INPUT.format(input=extra) if extra else "") + _RESPONSE
    out = []
    for literal, name in _template_parts(template):
        out.append(literal)
        if name is None:
            continue
        value = record.get(name)
        if not isinstance(value, str):
            got = "missing" if name not in record else f"{type(value).__name__} {value!r}"
            raise InputError(f"{at}: field '{name}' (used by `data.prompt_template`) must be a "
                             f"string, got {got}")
        out.append(value)
    return "".join(out)


def _messages(at: str, record: Mapping[str, Any], column: str) -> list[dict[str, str]]:
    value = record.get(column)
    if not isinstance(value, list) or not value:
        got = "missing" if column not in record else f"{type(value).__name__} {value!r:.60}"
        raise InputError(f"{at}: field '{column}' must be a non-empty list of messages "
                         f"(a chat task), got {got}")
    messages = []
    for i, message in enumerate(value):
        if not isinstance(message, Mapping):
            raise InputError(f"{at}: field '{column}', message {i}: expected an object with "
                             f"'role' and 'content', got {type(message).__name__}")
        for key in ("role", "content"):
            if not isinstance(message.get(key), str):
                raise InputError(f"{at}: field '{column}', message {i}: '{key}' must be a "
                                 f"string, got {message.get(key)!r:.60}")
        messages.append({"role": message["role"], "content": message["content"]})
    if not any(m["role"] == "assistant" and m["content"] for m in messages):
        raise InputError(f"{at}: field '{column}' has no assistant turn (a chat example needs a "
                         "message with role 'assistant' and non-empty content to score)")
    return messages

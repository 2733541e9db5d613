"""Chat examples: rendered with the tokenizer's chat template, only assistant turns scored.

A conversation is rendered turn by turn. For each assistant turn ``i`` the template renders
the messages before it with the generation prompt (the context, not scored) and then the
messages up to and including it; the difference is the assistant's reply with the
template's end-of-turn markup, whose tokens are scored. Each piece is tokenised on its own
and the pieces are concatenated, so a label is -100 exactly on the tokens that come from
user, system or template text. Whatever follows the last assistant turn is dropped: a
causal model's scored losses do not depend on later tokens.

This needs a template that renders conversations incrementally (the rendering of the first
``k`` messages is a prefix of the rendering of the first ``k + 1``); templates that rewrite
earlier turns are refused with one error naming the tokenizer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from lensllm.exceptions import ConfigError

__all__ = ["chat_row", "encode", "start_token_id"]


def encode(tokenizer, text: str, add_special_tokens: bool) -> list[int]:
    """Token ids of ``text`` (no padding, no truncation)."""
    return list(tokenizer(text, add_special_tokens=add_special_tokens)["input_ids"])


def start_token_id(tokenizer) -> int:
    """The token a causal example is read after, so that its first text token is scored:
    BOS, else EOS (GPT-2's convention of one token between documents).

    Raises:
        ConfigError: the tokenizer has neither.
    """
    for candidate in (tokenizer.bos_token_id, tokenizer.eos_token_id):
        if candidate is not None:
            return int(candidate)
    raise ConfigError(f"tokenizer {type(tokenizer).__name__} has neither a BOS nor an EOS "
                      "token; a causal example needs one to have its first token scored")


def chat_row(tokenizer, messages: Sequence[Mapping[str, str]], *,
             max_length: int) -> tuple[list[int], list[int]]:
    """``(input_ids, labels)`` of one conversation, labels -100 outside assistant turns.

    Args:
        tokenizer: a tokenizer with a ``chat_template``.
        messages: ``{"role", "content"}`` dicts with at least one assistant turn.
        max_length: longer rows are truncated on the right.

    Raises:
        ConfigError: the tokenizer has no chat template, or its template does not render
            conversations incrementally.
    """
    if not getattr(tokenizer, "chat_template", None):
        raise ConfigError(f"chat data needs a tokenizer with a chat template; "
                          f"{type(tokenizer).__name__} ({tokenizer.name_or_path or 'no name'}) "
                          "has none")
    last = max(i for i, m in enumerate(messages) if m["role"] == "assistant")
    ids: list[int] = []
    labels: list[int] = []
    done = ""
    for i in range(last + 1):
        if messages[i]["role"] != "assistant":
            continue
        prompt = _render(tokenizer, messages[:i], generation_prompt=True) if i else ""
        full = _render(tokenizer, messages[: i + 1], generation_prompt=False)
        if not (prompt.startswith(done) and full.startswith(prompt)):
            raise ConfigError(
                f"the chat template of {tokenizer.name_or_path or type(tokenizer).__name__} "
                "does not render conversations incrementally (an earlier turn is rendered "
                "differently once a later one follows); its assistant turns cannot be "
                "located")
        context = encode(tokenizer, prompt[len(done):], False)
        if not ids and not context:
            context = [start_token_id(tokenizer)]
        reply = encode(tokenizer, full[len(prompt):], False)
        ids += context + reply
        labels += [-100] * len(context) + reply
        done = full
    return ids[:max_length], labels[:max_length]


def _render(tokenizer, messages: Sequence[Mapping[str, str]], *,
            generation_prompt: bool) -> str:
    try:
        return tokenizer.apply_chat_template(list(messages), tokenize=False,
                                             add_generation_prompt=generation_prompt)
    except Exception as exc:  # jinja2 TemplateError and the template's own raise_exception
        raise ConfigError(f"the chat template of {tokenizer.name_or_path or 'the tokenizer'} "
                          f"failed: {exc}") from None

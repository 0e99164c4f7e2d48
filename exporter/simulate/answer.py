"""What the simulated model says, and how many tokens that costs. Pure functions.

The default chat probe asks for the capital of France and gets "Paris" in two deltas
("Par", "is"); any other prompt gets a canned sentence picked by a hash of the prompt, so
the same prompt always gets the same answer. Generation ends with an end-of-sequence token
(counted, as vLLM counts it, but with empty text), or is cut at max_tokens.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from typing import Any

__all__ = [
    "PROBE_PROMPT",
    "Plan",
    "count_prompt_tokens",
    "flatten_content",
    "plan_answer",
    "tokenize",
]

PROBE_PROMPT = "Reply with exactly one word: the capital of France."

# Known questions and their one-word answers, matched on the last user message.
KNOWN_ANSWERS: dict[str, str] = {
    PROBE_PROMPT.lower(): "Paris",
    "reply with exactly one word: the capital of germany.": "Berlin",
    "reply with exactly one word: the capital of italy.": "Rome",
}
WRONG_ANSWER = "London"

_WORDS = [
    "the",
    "model",
    "is",
    "running",
    "on",
    "a",
    "simulated",
    "engine",
    "and",
    "answers",
    "every",
    "prompt",
    "with",
    "a",
    "deterministic",
    "sentence",
    "so",
    "that",
    "monitoring",
    "can",
    "be",
    "rehearsed",
    "without",
    "a",
    "GPU",
    "while",
    "tokens",
    "stream",
    "at",
    "a",
    "steady",
    "pace",
    "through",
    "the",
    "same",
    "wire",
    "format",
    "as",
    "vLLM",
]

# Chat-template overhead per message and for the generation prompt (Qwen's ChatML:
# "<|im_start|>role\n ... <|im_end|>\n" and "<|im_start|>assistant\n").
_PER_MESSAGE_TOKENS = 5
_GENERATION_PROMPT_TOKENS = 3


@dataclass(frozen=True, slots=True)
class Plan:
    """The deltas to stream, the finish reason and the completion token count."""

    pieces: tuple[str, ...]
    finish_reason: str
    completion_tokens: int

    @property
    def text(self) -> str:
        return "".join(self.pieces)


def flatten_content(content: Any) -> str:
    """Message content as text: a string, or the text parts of a content list."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            str(p.get("text", "")) for p in content if isinstance(p, dict) and "text" in p
        )
    return ""


def tokenize(text: str) -> list[str]:
    """Split text into BPE-like pieces: a word keeps its leading space, long words are
    cut every 3-4 characters. "Paris" -> ["Par", "is"]."""
    pieces: list[str] = []
    word = ""
    for ch in text:
        if ch == " " and word:
            pieces.extend(_split_word(word))
            word = ch
        else:
            word += ch
    if word:
        pieces.extend(_split_word(word))
    return pieces


def _split_word(word: str) -> list[str]:
    if len(word) <= 4:
        return [word]
    head = 4 if word.startswith(" ") else 3
    return [word[:head], *_split_word(word[head:])]


def count_prompt_tokens(messages: list[dict[str, Any]]) -> int:
    """About 4 characters a token, plus the chat template's own tokens."""
    total = _GENERATION_PROMPT_TOKENS
    for message in messages:
        text = flatten_content(message.get("content"))
        total += _PER_MESSAGE_TOKENS + math.ceil(len(text) / 4)
    return total


def _last_user_text(messages: list[dict[str, Any]]) -> str:
    for message in reversed(messages):
        if message.get("role") == "user":
            return flatten_content(message.get("content")).strip()
    return ""


def canned_answer(prompt: str) -> str:
    """A sentence of 12-40 words chosen by the prompt's hash."""
    digest = hashlib.sha256(prompt.encode()).digest()
    n_words = 12 + digest[0] % 29
    start = digest[1] % len(_WORDS)
    words = [_WORDS[(start + i * (1 + digest[2] % 5)) % len(_WORDS)] for i in range(n_words)]
    sentence = " ".join(words)
    return sentence[0].upper() + sentence[1:] + "."


def answer_text(messages: list[dict[str, Any]], wrong: str | None = None) -> str:
    """The full answer before any max_tokens cut."""
    prompt = _last_user_text(messages)
    known = KNOWN_ANSWERS.get(prompt.lower())
    if wrong is not None:
        return wrong
    if known is not None:
        return known
    return canned_answer(prompt)


def plan_answer(messages: list[dict[str, Any]], max_tokens: int, wrong: str | None = None) -> Plan:
    """Pieces to stream for this prompt, cut at max_tokens.

    When the text fits, one more token (end of sequence, empty text) ends it with "stop";
    when it does not, the last piece that fits carries "length".
    """
    pieces = tokenize(answer_text(messages, wrong))
    if len(pieces) < max_tokens:
        return Plan((*pieces, ""), "stop", len(pieces) + 1)
    return Plan(tuple(pieces[:max_tokens]), "length", max_tokens)

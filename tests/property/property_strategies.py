"""Inputs a parser of external data may be handed: noise, near-valid documents and pathological JSON."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from hypothesis import strategies as st
from pydantic import ValidationError

from updraft.errors import UpdraftError

# The only errors a parser may raise: pydantic's, naming the field, or Updraft's own named errors.
NAMED_ERRORS = (ValidationError, UpdraftError)

# Every code point, lone surrogates included: json.loads("\"\\ud800\"") returns one.
any_text = st.text(st.characters(exclude_categories=()), max_size=40)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=10**18, max_value=10**40),
    st.floats(),  # NaN and the infinities too: json.dumps writes them, json.loads reads them back
    any_text,
    st.sampled_from(["", " ", "1.26.1", "v1.26.1", "2026-01-05T09:00:00Z", "ALARM", "x86_64", "null", "{{ x }}"]),
)
json_values = st.recursive(
    scalars,
    lambda children: st.one_of(st.lists(children, max_size=4), st.dictionaries(any_text, children, max_size=4)),
    max_leaves=12,
)


def nested(depth: int) -> Any:
    """A list nested `depth` deep: past a thousand, deeper than Python's default recursion limit."""
    value: Any = []
    for _ in range(depth):
        value = [value]
    return value


# Hypothesis itself compares and prints generated values recursively: deeper ones are fixed examples instead.
deep_values = st.integers(min_value=1, max_value=300).map(nested)
PATHOLOGICAL_DEPTHS = (1_000, 5_000, 50_000)
deep_json_text = st.integers(min_value=1, max_value=5000).map(lambda n: "[" * n + "]" * n)
# json.loads refuses integers longer than 4300 digits with a plain ValueError.
huge_number_text = st.integers(min_value=4000, max_value=6000).map(lambda n: "9" * n)


def _mutate(draw: st.DrawFn, value: Any, replacements: st.SearchStrategy[Any]) -> Any:
    """One change somewhere in `value`: a field dropped, retyped, added, or a change deeper down."""
    if isinstance(value, dict) and value:
        key = draw(st.sampled_from(sorted(value)))
        action = draw(st.sampled_from(["descend", "descend", "drop", "replace", "add"]))
        if action == "drop":
            return {k: v for k, v in value.items() if k != key}
        if action == "replace":
            return {**value, key: draw(replacements)}
        if action == "add":
            return {**value, draw(any_text): draw(json_values)}
        return {**value, key: _mutate(draw, value[key], replacements)}
    if isinstance(value, list) and value:
        index = draw(st.integers(0, len(value) - 1))
        changed = draw(st.one_of(st.just(_mutate(draw, value[index], replacements)), replacements))
        return [*value[:index], changed, *value[index + 1 :]]
    return draw(replacements)


def near(valid: Any, changes: int = 3, deep: bool = True) -> st.SearchStrategy[Any]:
    """`valid` with one to `changes` changes: valid JSON with wrong types, missing and unknown fields, and
    (`deep`) lists nested hundreds deep."""
    replacements = st.one_of(json_values, deep_values) if deep else json_values

    @st.composite
    def build(draw: st.DrawFn) -> Any:
        value = valid
        for _ in range(draw(st.integers(1, changes))):
            value = _mutate(draw, value, replacements)
        return value

    return build()


def documents(valid: Any) -> st.SearchStrategy[Any]:
    """Python values a parser may be given: near-valid ones, any JSON value, very deep nesting."""
    return st.one_of(near(valid), json_values, deep_values)


def texts(valid: Any) -> st.SearchStrategy[str]:
    """Text a parser may be given: near-valid JSON, noise, deep nesting and numbers JSON cannot hold."""
    return st.one_of(
        near(valid, deep=False).map(json.dumps),
        any_text,
        st.binary(max_size=40).map(repr),
        deep_json_text,
        huge_number_text,
    )


def pathological(valid: dict[str, Any]) -> list[Any]:
    """Fixed inputs nested deeper than Python's recursion limit: the whole value, and each field of `valid`."""
    return [
        *(nested(depth) for depth in PATHOLOGICAL_DEPTHS),
        *({**valid, key: nested(depth)} for key in sorted(valid) for depth in PATHOLOGICAL_DEPTHS),
    ]


def only_named_errors(parse: Callable[..., Any], *args: Any) -> Any:
    """`parse(*args)`, or None when it raised a named error; anything else fails the test by escaping."""
    try:
        return parse(*args)
    except NAMED_ERRORS:
        return None

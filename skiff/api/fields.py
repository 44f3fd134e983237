"""Typed fields of a request's JSON body: a missing or null field is its zero value, a field of
the wrong type a 400 that names it (Docker's decoder refuses such a body as a whole)."""

from __future__ import annotations

from typing import Any, Mapping

from skiff.api.errors import BadRequest


def json_object(document: Mapping[str, Any], key: str) -> dict[str, Any]:
    value = document.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BadRequest(f"{key} must be a JSON object")
    return value


def string(document: Mapping[str, Any], key: str) -> str:
    value = document.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise BadRequest(f"{key} must be a string")
    return value


def boolean(document: Mapping[str, Any], key: str) -> bool:
    value = document.get(key)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise BadRequest(f"{key} must be true or false")
    return value


def integer_or_none(document: Mapping[str, Any], key: str) -> int | None:
    value = document.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadRequest(f"{key} must be an integer")
    return value


def strings(document: Mapping[str, Any], key: str) -> list[str]:
    value = document.get(key)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise BadRequest(f"{key} must be a list of strings")
    return list(value)


def strslice(document: Mapping[str, Any], key: str) -> list[str]:
    """Docker's strslice: a list of strings, or one string (one word)."""
    value = document.get(key)
    if isinstance(value, str):
        return [value]
    return strings(document, key)

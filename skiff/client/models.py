"""What every model of the Python API shares (docker-py's Model), and docker-py's filters."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterable

if TYPE_CHECKING:
    from skiff.client import Client
    from skiff.engine.filters import FilterArgs


class Model:
    """An object skiff manages: ``attrs`` is its inspect document as of the last ``reload``."""

    id_attribute = "Id"

    def __init__(self, client: "Client", attrs: dict[str, Any]) -> None:
        self.client = client
        self.attrs = attrs

    @property
    def id(self) -> str:
        return str(self.attrs.get(self.id_attribute, ""))

    @property
    def short_id(self) -> str:
        return self.id[:12]

    def __repr__(self) -> str:
        return f"<{type(self).__name__}: {self.short_id}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, type(self)) and other.id == self.id

    def __hash__(self) -> int:
        return hash(f"{type(self).__name__}:{self.id}")


def filter_args(filters: dict[str, Any] | None, **more: Any) -> "FilterArgs":
    """docker-py's ``filters`` dict (a value may be a str, a bool, a number or a list of them)
    as the engine's FilterArgs, which ``--filter`` words also become."""
    from skiff.engine.filters import FilterArgs

    fields: dict[str, Iterable[str]] = {}
    for key, value in {**(filters or {}), **{k: v for k, v in more.items() if v is not None}}.items():
        values = value if isinstance(value, (list, tuple, set)) else [value]
        fields[str(key).lower()] = [_filter_text(item) for item in values]
    return FilterArgs(fields)


def _filter_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)

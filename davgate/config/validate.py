"""Build typed config objects from plain YAML data, with errors that name the key.

The schema is the set of dataclasses in :mod:`davgate.config.schema`; this
module walks their type hints, so there is one place that says what a key is
(its field) and one place that checks it (here).
"""

from __future__ import annotations

import contextvars
import dataclasses
import re
import types
import typing
from pathlib import Path
from typing import Annotated, Any, Literal, Union

SECRET: contextvars.ContextVar[bool] = contextvars.ContextVar("secret", default=False)  # converting a secret
ENV_PATTERN = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class ConfigError(ValueError):
    """A configuration problem, phrased as ``key: problem (file)``."""

    def __init__(self, key: str, problem: str, source: str | None = None) -> None:
        self.key = key
        self.problem = problem
        self.source = source
        where = f" ({source})" if source else ""
        super().__init__(f"{key}: {problem}{where}" if key else f"{problem}{where}")

    def __reduce__(self) -> tuple:
        """Pickled by its parts (it comes back from the process that checks the mounts at start)."""
        return (type(self), (self.key, self.problem, self.source))


def describe(value: Any) -> str:
    """Show a value in an error message, short; a secret's value only by its type."""
    if SECRET.get():
        return f"a value of type {type(value).__name__} (secret values are not shown)"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def substitute_env(value: str, key: str, environ: typing.Mapping[str, str]) -> str:
    """Replace ``${NAME}`` and ``${NAME:-default}`` with environment values."""

    def replace(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in environ:
            return environ[name]
        if default is not None:
            return default
        raise ConfigError(key, f"environment variable {name} is not set")

    return ENV_PATTERN.sub(replace, value)


class Builder:
    """Turns a YAML mapping into a dataclass tree, checking every key."""

    def __init__(self, environ: typing.Mapping[str, str]) -> None:
        self.environ = environ

    def build(self, cls: type, data: Any, key: str) -> Any:
        if not isinstance(data, dict):
            raise ConfigError(key or "(top level)", f"expected a mapping, got {describe(data)}")
        hints = typing.get_type_hints(cls, include_extras=True)
        fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
        unknown = sorted(set(map(str, data)) - set(fields))
        if unknown:
            allowed = ", ".join(sorted(fields))
            raise ConfigError(self.join(key, unknown[0]), f"unknown key (allowed: {allowed})")
        values = {}
        for name, field in fields.items():
            if name in data:
                values[name] = self.convert_field(field, hints[name], data[name], self.join(key, name))
            elif not has_default(field):
                raise ConfigError(self.join(key, name), "required key is missing")
        return cls(**values)

    def convert_field(self, field: dataclasses.Field, hint: Any, value: Any, key: str) -> Any:
        """A field marked ``repr=False`` holds a secret: its errors never show the value."""
        hidden = SECRET.set(not field.repr)
        try:
            return self.convert(hint, value, key)
        finally:
            SECRET.reset(hidden)

    def convert(self, hint: Any, value: Any, key: str) -> Any:
        origin = typing.get_origin(hint)
        if origin is Annotated:
            inner, *marks = typing.get_args(hint)
            return self.check_marks(self.convert(inner, value, key), marks, key)
        if origin in (Union, types.UnionType):
            return self.convert_union(typing.get_args(hint), value, key)
        if origin is Literal:
            return self.convert_literal(typing.get_args(hint), value, key)
        if origin is dict:
            return self.convert_dict(typing.get_args(hint), value, key)
        if origin is list or origin is tuple:
            return self.convert_list(typing.get_args(hint)[0], value, key)
        if dataclasses.is_dataclass(hint):
            return self.build(hint, value, key)
        return self.convert_scalar(hint, value, key)

    def convert_union(self, options: tuple[Any, ...], value: Any, key: str) -> Any:
        if value is None and type(None) in options:
            return None
        real = [o for o in options if o is not type(None)]
        if all(type_choices(o) for o in real):
            return self.convert_tagged(real, value, key)
        if len(real) == 1:
            return self.convert(real[0], value, key)
        errors = []
        for option in real:
            try:
                return self.convert(option, value, key)
            except ConfigError as error:
                errors.append(error.problem)
        raise ConfigError(key, " or ".join(errors))

    def convert_tagged(self, options: list[Any], value: Any, key: str) -> Any:
        """A union of sections told apart by their ``type`` key."""
        by_type = {name: option for option in options for name in type_choices(option)}
        if not isinstance(value, dict):
            raise ConfigError(key, f"expected a mapping, got {describe(value)}")
        if "type" not in value:
            raise ConfigError(self.join(key, "type"), "required key is missing")
        if isinstance(value["type"], str):  # ${NAME} in a type, as in any other choice
            value = {**value, "type": substitute_env(value["type"], self.join(key, "type"), self.environ)}
        if value["type"] not in by_type:
            names = ", ".join(by_type)
            raise ConfigError(self.join(key, "type"), f"expected one of {names}, got {describe(value['type'])}")
        return self.build(by_type[value["type"]], value, key)

    def check_marks(self, value: Any, marks: list[Any], key: str) -> Any:
        for mark in marks:
            check = getattr(mark, "check", None)
            if check is not None:
                check(value, key)
        return value

    def convert_literal(self, choices: tuple[Any, ...], value: Any, key: str) -> Any:
        if isinstance(value, str):
            value = substitute_env(value, key, self.environ)
        if value not in choices:
            names = ", ".join(str(c) for c in choices)
            raise ConfigError(key, f"expected one of {names}, got {describe(value)}")
        return value

    def convert_dict(self, args: tuple[Any, ...], value: Any, key: str) -> dict:
        if not isinstance(value, dict):
            raise ConfigError(key, f"expected a mapping, got {describe(value)}")
        return {str(k): self.convert(args[1], v, self.join(key, str(k))) for k, v in value.items()}

    def convert_list(self, item: Any, value: Any, key: str) -> tuple:
        if not isinstance(value, list):
            raise ConfigError(key, f"expected a list, got {describe(value)}")
        return tuple(self.convert(item, v, f"{key}[{i}]") for i, v in enumerate(value))

    def convert_scalar(self, hint: Any, value: Any, key: str) -> Any:
        if isinstance(value, str):
            value = substitute_env(value, key, self.environ)
        if hint is bool:
            return expect(isinstance(value, bool), value, "a boolean (true/false)", key)
        if hint is int:
            value = int_from_text(value)
            ok = isinstance(value, int) and not isinstance(value, bool)
            return expect(ok, value, "an integer", key)
        if hint is float:
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
            return float(expect(ok, value, "a number", key))
        if hint is str:
            return expect(isinstance(value, str) and value != "", value, "a non-empty string", key)
        if hint is Path:
            text = expect(isinstance(value, str) and value != "", value, "a path", key)
            return Path(text).expanduser().resolve()
        raise TypeError(f"schema type {hint!r} is not supported ({key})")

    @staticmethod
    def join(key: str, name: str) -> str:
        return f"{key}.{name}" if key else name


def type_choices(option: Any) -> tuple[Any, ...]:
    """The ``type`` values that select a tagged section, or () if it has none."""
    if not dataclasses.is_dataclass(option):
        return ()
    hint = typing.get_type_hints(option).get("type")
    return typing.get_args(hint) if typing.get_origin(hint) is Literal else ()


def has_default(field: dataclasses.Field) -> bool:
    return field.default is not dataclasses.MISSING or field.default_factory is not dataclasses.MISSING


def int_from_text(value: Any) -> Any:
    """Environment substitution yields text: accept ``"8080"`` for an integer."""
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    return value


def expect(ok: bool, value: Any, what: str, key: str) -> Any:
    if not ok:
        raise ConfigError(key, f"expected {what}, got {describe(value)}")
    return value

"""Typed template parameters, and the parser that turns a DISPEL path into values.

A template declares its parameters in order; a path gives one text per
parameter: ``/dispel/<template>/<p1>/.../<pn>``. Each type checks its text,
says what it expected when the text is wrong, and yields a value and a
canonical text (the cache key uses the canonical text, so ``007`` and ``7``
are one result for an integer). The last segment may end in ``.<output>``
(``.tif``, ``.png``, ...) to choose one of the template's outputs.

Types: ``integer`` (``min``, ``max``), ``digits`` (``min_length``,
``max_length``; the value keeps leading zeros), ``date`` (``format``, a
strftime pattern), ``grid`` and ``range`` (``pattern`` of named whole
numbers such as ``x0-x1-y0-y1``, end-exclusive intervals), ``enumeration``
(``values``).

A template may also declare *options*: typed like parameters, each with a
default, given in a result's query (``.../0-1200-0-400.png?colormap=viridis``)
and, like parameters, part of the cache key by their canonical text.
"""

from __future__ import annotations

import datetime
import functools
import re
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar
from urllib.parse import parse_qsl

from davgate.dispel.errors import BadOption, BadParameter, WrongCount

IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
MAX_INTEGER_DIGITS = 18
MAX_COORDINATE = 10**9


class TemplateError(ValueError):
    """A template definition problem, phrased as ``key: problem``."""

    def __init__(self, key: str, problem: str) -> None:
        self.key = key
        self.problem = problem
        super().__init__(f"{key}: {problem}" if key else problem)


class Param(ABC):
    """One typed parameter of a template."""

    type_name: ClassVar[str]
    options: ClassVar[tuple[str, ...]] = ()

    def __init__(self, name: str) -> None:
        self.name = name

    @abstractmethod
    def parse(self, text: str) -> Any:
        """The value of ``text``; raises :class:`BadParameter` if it has the wrong form."""

    @abstractmethod
    def text(self, value: Any) -> str:
        """The canonical text of a parsed value."""

    @property
    @abstractmethod
    def expected(self) -> str:
        """The expected form, for error messages: ``YYYYMMDD``, ``an integer >= 0``."""

    @property
    def regex(self) -> str:
        """A regular expression for the texts this type may accept (used to match names)."""
        return r"[^/]+?"

    @property
    def placeholder(self) -> str:
        return f"<{self.name}>"

    def bad(self, text: str) -> BadParameter:
        return BadParameter(self.name, self.expected, text)


class IntegerParam(Param):
    type_name = "integer"
    options = ("min", "max")

    def __init__(self, name: str, minimum: int | None = None, maximum: int | None = None) -> None:
        super().__init__(name)
        self.minimum = minimum
        self.maximum = maximum
        self._pattern = re.compile(self.regex)

    @property
    def expected(self) -> str:
        if self.minimum is not None and self.maximum is not None:
            return f"an integer from {self.minimum} to {self.maximum}"
        if self.minimum is not None:
            return f"an integer >= {self.minimum}"
        if self.maximum is not None:
            return f"an integer <= {self.maximum}"
        return "an integer"

    @property
    def regex(self) -> str:
        return rf"-?[0-9]{{1,{MAX_INTEGER_DIGITS}}}"

    def parse(self, text: str) -> int:
        if not self._pattern.fullmatch(text):
            raise self.bad(text)
        value = int(text)
        if (self.minimum is not None and value < self.minimum) or (self.maximum is not None and value > self.maximum):
            raise self.bad(text)
        return value

    def text(self, value: Any) -> str:
        return str(value)


class DigitsParam(Param):
    type_name = "digits"
    options = ("min_length", "max_length")

    def __init__(self, name: str, min_length: int = 1, max_length: int = 32) -> None:
        super().__init__(name)
        if not 1 <= min_length <= max_length:
            raise TemplateError("", "need 1 <= min_length <= max_length")
        self.min_length = min_length
        self.max_length = max_length
        self._pattern = re.compile(self.regex)

    @property
    def expected(self) -> str:
        if self.min_length == self.max_length:
            return f"{self.min_length} digits"
        return f"{self.min_length} to {self.max_length} digits"

    @property
    def regex(self) -> str:
        return f"[0-9]{{{self.min_length},{self.max_length}}}"

    def parse(self, text: str) -> str:
        if not self._pattern.fullmatch(text):
            raise self.bad(text)
        return text

    def text(self, value: Any) -> str:
        return str(value)


DATE_DIRECTIVES = {
    "Y": ("YYYY", "[0-9]{4}"),
    "m": ("MM", "[0-9]{2}"),
    "d": ("DD", "[0-9]{2}"),
    "H": ("hh", "[0-9]{2}"),
    "M": ("mm", "[0-9]{2}"),
    "S": ("ss", "[0-9]{2}"),
    "j": ("DDD", "[0-9]{3}"),
}


class DateParam(Param):
    """A date (or time) in one fixed strftime ``format``; the value is its text."""

    type_name = "date"
    options = ("format",)

    def __init__(self, name: str, fmt: str = "%Y%m%d") -> None:
        super().__init__(name)
        self.format = fmt
        self.form, self._regex = date_form(fmt)
        self._pattern = re.compile(self._regex)

    @property
    def expected(self) -> str:
        return self.form

    @property
    def regex(self) -> str:
        return self._regex

    def parse(self, text: str) -> str:
        if not self._pattern.fullmatch(text):
            raise self.bad(text)
        if not valid_date(self.format, text):
            raise BadParameter(self.name, f"a valid date as {self.form}", text)
        return text

    def text(self, value: Any) -> str:
        return str(value)


@functools.lru_cache(maxsize=4096)
def valid_date(fmt: str, text: str) -> bool:
    """True if ``text`` is a real date in ``fmt`` and written the way ``fmt`` writes it."""
    try:
        return datetime.datetime.strptime(text, fmt).strftime(fmt) == text
    except ValueError:
        return False


def date_form(fmt: str) -> tuple[str, str]:
    """The human form (``YYYYMMDD``) and the regular expression of a strftime format."""
    form, regex, i = [], [], 0
    while i < len(fmt):
        if fmt[i] == "%":
            code = fmt[i + 1 : i + 2]
            if code not in DATE_DIRECTIVES:
                known = ", ".join(f"%{c}" for c in DATE_DIRECTIVES)
                raise TemplateError("format", f"unsupported directive %{code} (known: {known})")
            form.append(DATE_DIRECTIVES[code][0])
            regex.append(DATE_DIRECTIVES[code][1])
            i += 2
        else:
            form.append(fmt[i])
            regex.append(re.escape(fmt[i]))
            i += 1
    if "/" in fmt or not fmt:
        raise TemplateError("format", "a date format is non-empty and has no '/'")
    return "".join(form), "".join(regex)


class GridParam(Param):
    """Named whole numbers in a ``pattern`` such as ``x0-x1-y0-y1``; the value is a dict.

    Names ``<a>0``/``<a>1`` (and ``start``/``end``) form end-exclusive
    intervals: ``<a>0 < <a>1`` is required.
    """

    type_name = "grid"
    options = ("pattern",)
    default_pattern = "x0-x1-y0-y1"

    def __init__(self, name: str, pattern: str | None = None) -> None:
        super().__init__(name)
        self.pattern = pattern or self.default_pattern
        self.fields, self.literals = split_pattern(self.pattern)
        self.intervals = find_intervals(self.fields)
        self._regex = "".join(
            re.escape(lit) + (f"(?P<{f}>[0-9]+)" if f else "") for lit, f in zip(self.literals, [*self.fields, ""])
        )
        self._pattern = re.compile(self._regex)

    @property
    def expected(self) -> str:
        rules = " and ".join(f"{lo} < {hi}" for lo, hi in self.intervals)
        return f"{self.pattern} (whole numbers{' with ' + rules if rules else ''})"

    @property
    def regex(self) -> str:
        return re.sub(r"\(\?P<[^>]+>", "(?:", self._regex)

    def parse(self, text: str) -> dict[str, int]:
        match = self._pattern.fullmatch(text)
        if not match or any(len(v) > 10 for v in match.groups()):
            raise self.bad(text)
        value = {f: int(match.group(f)) for f in self.fields}
        if any(v > MAX_COORDINATE for v in value.values()):
            raise self.bad(text)
        if any(value[lo] >= value[hi] for lo, hi in self.intervals):
            raise self.bad(text)
        return value

    def text(self, value: Any) -> str:
        return "".join(lit + (str(value[f]) if f else "") for lit, f in zip(self.literals, [*self.fields, ""]))

    @property
    def placeholder(self) -> str:
        return f"<{self.pattern}>"


class RangeParam(GridParam):
    type_name = "range"
    default_pattern = "start-end"


def split_pattern(pattern: str) -> tuple[list[str], list[str]]:
    """Field names and the literal texts around them (one more literal than fields)."""
    fields, literals, pos = [], [], 0
    for match in IDENT.finditer(pattern):
        literals.append(pattern[pos : match.start()])
        fields.append(match.group())
        pos = match.end()
    literals.append(pattern[pos:])
    if not fields:
        raise TemplateError("pattern", "a pattern names at least one number, e.g. x0-x1-y0-y1")
    if len(set(fields)) != len(fields):
        raise TemplateError("pattern", "a pattern names each number once")
    if "/" in pattern:
        raise TemplateError("pattern", "a pattern has no '/'")
    return fields, literals


def find_intervals(fields: Sequence[str]) -> list[tuple[str, str]]:
    pairs = [(f, f[:-1] + "1") for f in fields if f.endswith("0") and f[:-1] + "1" in fields]
    if "start" in fields and "end" in fields:
        pairs.append(("start", "end"))
    return pairs


class EnumParam(Param):
    type_name = "enumeration"
    options = ("values",)

    def __init__(self, name: str, values: Sequence[str]) -> None:
        super().__init__(name)
        if not values or any(not isinstance(v, str) or v in ("", ".", "..") or "/" in v for v in values):
            raise TemplateError("values", "a list of texts without '/' (and not '.' or '..')")
        self.values = tuple(values)

    @property
    def expected(self) -> str:
        return "one of " + ", ".join(self.values)

    @property
    def regex(self) -> str:
        return "(?:" + "|".join(re.escape(v) for v in sorted(self.values, key=len, reverse=True)) + ")"

    def parse(self, text: str) -> str:
        if text not in self.values:
            raise self.bad(text)
        return text

    def text(self, value: Any) -> str:
        return str(value)


TYPES: dict[str, type[Param]] = {
    cls.type_name: cls for cls in (IntegerParam, DigitsParam, DateParam, GridParam, RangeParam, EnumParam)
}
OPTION_ARGS = {"min": "minimum", "max": "maximum", "format": "fmt"}
OPTION_TYPES: dict[str, type | tuple[type, ...]] = {
    "min": int, "max": int, "min_length": int, "max_length": int, "format": str, "pattern": str, "values": list,
}  # fmt: skip


def param_from_spec(spec: Any, key: str) -> Param:
    """Build one parameter from its YAML mapping; errors name ``key``."""
    if not isinstance(spec, Mapping):
        raise TemplateError(key, "expected a mapping with name and type")
    name, kind = spec.get("name"), spec.get("type")
    if not isinstance(name, str) or not IDENT.fullmatch(name):
        raise TemplateError(f"{key}.name", "expected a name of letters, digits and '_'")
    if kind not in TYPES:
        raise TemplateError(f"{key}.type", f"expected one of {', '.join(TYPES)}, got {kind!r}")
    cls = TYPES[kind]
    options = {k: v for k, v in spec.items() if k not in ("name", "type", "description")}
    for option, value in options.items():
        if option not in cls.options:
            raise TemplateError(
                f"{key}.{option}", f"unknown option for {kind} (allowed: {', '.join(cls.options) or 'none'})"
            )
        if not isinstance(value, OPTION_TYPES[option]) or isinstance(value, bool):
            raise TemplateError(f"{key}.{option}", f"expected {OPTION_TYPES[option].__name__}, got {value!r}")  # type: ignore[union-attr]
    try:
        return cls(name, **{OPTION_ARGS.get(k, k): v for k, v in options.items()})
    except TemplateError as error:
        raise TemplateError(f"{key}.{error.key}" if error.key else key, error.problem) from None


@dataclass(frozen=True)
class Option:
    """A template's option: a typed value from the result's query, or ``default`` (None: not set)."""

    param: Param
    default: Any = None

    @property
    def name(self) -> str:
        return self.param.name


def option_from_spec(spec: Any, key: str) -> Option:
    """Build one option from its YAML mapping (a parameter's, plus ``default``); errors name ``key``."""
    if not isinstance(spec, Mapping):
        raise TemplateError(key, "expected a mapping with name, type and default")
    param = param_from_spec({k: v for k, v in spec.items() if k != "default"}, key)
    default = spec.get("default")
    if default is None:
        return Option(param)
    try:
        return Option(param, param.parse(str(default)))
    except BadParameter as error:
        raise TemplateError(f"{key}.default", f"expected {error.expected}, got {default!r}") from None


@dataclass(frozen=True)
class Selection:
    """Parsed parameters of a path: all of them (a result) or the first few (a folder)."""

    values: tuple[Any, ...]
    texts: tuple[str, ...]
    output: str | None = None  # the chosen output, for a complete selection
    options: tuple[tuple[str, Any, str], ...] = ()  # a result's options: name, value, canonical text ("": the default)

    @property
    def complete(self) -> bool:
        return self.output is not None

    def named(self, params: Sequence[Param]) -> dict[str, Any]:
        return {p.name: v for p, v in zip(params, self.values)} | {name: v for name, v, _ in self.options}

    def option_texts(self) -> dict[str, str]:
        return {name: text for name, _, text in self.options}


MAX_QUERY = 2048  # characters of a result's query


def parse_options(options: Sequence[Option], query: str, output: str) -> tuple[tuple[str, Any, str], ...]:
    """The options of a result from its query, in declaration order, defaults filled in.

    ``options`` are those the chosen ``output`` uses; naming another is an error.
    """
    if len(query) > MAX_QUERY:
        raise BadOption(f"the query is longer than {MAX_QUERY} characters")
    known = {option.name: option for option in options}
    given: dict[str, str] = {}
    for name, text in parse_qsl(query, keep_blank_values=True):
        if name not in known:
            allowed = ", ".join(known) or "none"
            raise BadOption(f"unknown option {shorten_name(name)!r} for .{output} (its options: {allowed})")
        if name in given:
            raise BadOption(f"option {name!r} is given twice")
        given[name] = text
    chosen = []
    for option in options:
        value = parse_option(option, given[option.name]) if option.name in given else option.default
        chosen.append((option.name, value, "" if value == option.default else option.param.text(value)))
    return tuple(chosen)


def parse_option(option: Option, text: str) -> Any:
    try:
        return option.param.parse(text)
    except BadParameter as error:
        raise BadOption(f"option {option.name!r}: expected {error.expected}, got {shorten_name(text)!r}") from None


def shorten_name(name: str) -> str:
    return name if len(name) <= 40 else name[:37] + "..."


def parse_segments(
    params: Sequence[Param],
    outputs: Sequence[str],
    default_output: str,
    segments: Sequence[str],
    usage: str,
) -> Selection:
    """Parse the segments after the template name.

    Fewer segments than parameters select a folder; as many select a
    result, whose last segment may end in ``.<output>``; more are an error.
    """
    if len(segments) > len(params):
        raise WrongCount(f"expected {len(params)} parameters: {usage}; got {len(segments)}")
    texts = list(segments)
    output = None
    if len(segments) == len(params):
        output = default_output
        stem, dot, ext = segments[-1].rpartition(".")
        if dot and ext in outputs:
            texts[-1], output = stem, ext
    values = tuple(param.parse(text) for param, text in zip(params, texts))
    canonical = tuple(param.text(value) for param, value in zip(params, values))
    return Selection(values, canonical, output)

"""Parameter types and the path parser: valid, huge, negative, non-numeric, malformed values."""

from __future__ import annotations

import pytest

from davgate.dispel.errors import BadParameter, WrongCount
from davgate.dispel.params import (
    DateParam,
    DigitsParam,
    EnumParam,
    GridParam,
    IntegerParam,
    RangeParam,
    TemplateError,
    param_from_spec,
    parse_segments,
)


def reason(param, text: str) -> str:
    with pytest.raises(BadParameter) as caught:
        param.parse(text)
    assert caught.value.status == 400
    return caught.value.reason


class TestInteger:
    def test_valid_values_and_canonical_text(self) -> None:
        layer = IntegerParam("layer", minimum=0)
        assert layer.parse("12") == 12
        assert layer.parse("007") == 7
        assert layer.text(layer.parse("007")) == "7"

    @pytest.mark.parametrize("text", ["-1", "abc", "1.5", "+3", " 3", "3 ", "", "1e3", "٣", "0x10", "12a"])
    def test_refused_texts_name_parameter_and_form(self, text: str) -> None:
        assert (
            reason(IntegerParam("layer", minimum=0), text)
            == f"parameter 'layer': expected an integer >= 0, got {text!r}"
        )

    def test_huge_values_are_refused_not_converted(self) -> None:
        huge = "9" * 60
        assert "expected an integer" in reason(IntegerParam("layer"), huge)
        assert "..." in reason(IntegerParam("layer"), huge)  # the echo is shortened

    def test_bounds(self) -> None:
        param = IntegerParam("n", minimum=1, maximum=3)
        assert param.parse("3") == 3
        assert reason(param, "4") == "parameter 'n': expected an integer from 1 to 3, got '4'"
        assert IntegerParam("n", maximum=0).parse("-5") == -5
        assert IntegerParam("n").expected == "an integer"


class TestDigits:
    def test_keeps_leading_zeros(self) -> None:
        assert DigitsParam("subject").parse("0312") == "0312"

    @pytest.mark.parametrize("text", ["", "31a", "-312", "3 12", "٣١٢", "1" * 33])
    def test_refused(self, text: str) -> None:
        assert reason(DigitsParam("subject"), text).startswith("parameter 'subject': expected 1 to 32 digits")

    def test_exact_length(self) -> None:
        param = DigitsParam("code", min_length=3, max_length=3)
        assert param.expected == "3 digits"
        assert param.parse("007") == "007"
        reason(param, "07")


class TestDate:
    def test_valid(self) -> None:
        assert DateParam("date").parse("20181129") == "20181129"
        assert DateParam("date").expected == "YYYYMMDD"

    @pytest.mark.parametrize("text", ["2018-11-29", "2018112", "201811290", "abcdefgh", "-2018112"])
    def test_wrong_form(self, text: str) -> None:
        assert reason(DateParam("date"), text) == f"parameter 'date': expected YYYYMMDD, got {text!r}"

    @pytest.mark.parametrize("text", ["20180230", "20181301", "20181100"])
    def test_impossible_dates(self, text: str) -> None:
        assert reason(DateParam("date"), text) == f"parameter 'date': expected a valid date as YYYYMMDD, got {text!r}"

    def test_other_formats(self) -> None:
        param = DateParam("day", "%Y-%m-%d")
        assert param.expected == "YYYY-MM-DD"
        assert param.parse("2018-11-29") == "2018-11-29"
        reason(param, "20181129")
        assert DateParam("t", "%Y%m%dT%H%M").parse("20181129T2359") == "20181129T2359"

    def test_unsupported_format(self) -> None:
        with pytest.raises(TemplateError, match="unsupported directive %b"):
            DateParam("date", "%d%b%Y")
        with pytest.raises(TemplateError, match="no '/'"):
            DateParam("date", "%Y/%m")


class TestGrid:
    def test_valid_and_canonical(self) -> None:
        grid = GridParam("grid")
        assert grid.parse("0-1200-0-400") == {"x0": 0, "x1": 1200, "y0": 0, "y1": 400}
        assert grid.text(grid.parse("000-1200-00-400")) == "0-1200-0-400"
        assert grid.placeholder == "<x0-x1-y0-y1>"

    @pytest.mark.parametrize(
        "text",
        ["0-1200-0", "0-1200-0-400-5", "a-b-c-d", "-1-5-0-4", "0-1200--0-400", "5-5-0-1", "10-5-0-1",
         "0-1-4-3", "0-99999999999-0-1", "0-1000000001-0-1", "0_1200_0_400", "", "0-1.5-0-1"],
    )  # fmt: skip
    def test_refused(self, text: str) -> None:
        assert reason(GridParam("grid"), text) == (
            f"parameter 'grid': expected x0-x1-y0-y1 (whole numbers with x0 < x1 and y0 < y1), got {text!r}"
        )

    def test_range(self) -> None:
        param = RangeParam("rows")
        assert param.parse("10-20") == {"start": 10, "end": 20}
        reason(param, "20-10")
        assert GridParam("box", "left,right,top").parse("1,2,3") == {"left": 1, "right": 2, "top": 3}

    def test_bad_patterns(self) -> None:
        for pattern, problem in (("---", "at least one"), ("a-a", "each number once"), ("a/b", "'/'")):
            with pytest.raises(TemplateError, match=problem):
                GridParam("g", pattern)


def test_enumeration() -> None:
    param = EnumParam("band", ["red", "green", "nir"])
    assert param.parse("nir") == "nir"
    assert reason(param, "blue") == "parameter 'band': expected one of red, green, nir, got 'blue'"
    with pytest.raises(TemplateError):
        EnumParam("band", [])


class TestSpecs:
    def test_from_yaml_mapping(self) -> None:
        param = param_from_spec({"name": "layer", "type": "integer", "min": 0}, "parameters[2]")
        assert isinstance(param, IntegerParam) and param.minimum == 0

    @pytest.mark.parametrize(
        ("spec", "key", "problem"),
        [
            ({"name": "x", "type": "float"}, "parameters[0].type", "expected one of integer, digits"),
            ({"name": "x y", "type": "integer"}, "parameters[0].name", "expected a name"),
            ({"name": "x", "type": "integer", "pattern": "a-b"}, "parameters[0].pattern", "unknown option for integer"),
            ({"name": "x", "type": "integer", "min": "0"}, "parameters[0].min", "expected int"),
            ({"name": "x", "type": "date", "format": "%Q"}, "parameters[0].format", "unsupported directive"),
            ({"name": "x", "type": "grid", "pattern": "0-1"}, "parameters[0].pattern", "at least one"),
            ("x", "parameters[0]", "expected a mapping"),
        ],
    )
    def test_errors_name_the_key(self, spec, key: str, problem: str) -> None:
        with pytest.raises(TemplateError) as caught:
            param_from_spec(spec, "parameters[0]")
        assert caught.value.key == key
        assert problem in caught.value.problem


class TestPathParser:
    PARAMS = (DigitsParam("subject"), DateParam("date"), IntegerParam("layer", minimum=0), GridParam("grid"))
    OUTPUTS = ("tif", "png", "npy")
    USAGE = "/dispel/t/<subject>/<date>/<layer>/<x0-x1-y0-y1>"

    def parse(self, *segments: str):
        return parse_segments(self.PARAMS, self.OUTPUTS, "tif", list(segments), self.USAGE)

    def test_a_complete_path_is_a_result_in_the_default_output(self) -> None:
        selection = self.parse("312", "20181129", "12", "0-1200-0-400")
        assert selection.complete and selection.output == "tif"
        assert selection.values == ("312", "20181129", 12, {"x0": 0, "x1": 1200, "y0": 0, "y1": 400})
        assert selection.texts == ("312", "20181129", "12", "0-1200-0-400")

    def test_extensions_pick_the_output(self) -> None:
        for output in self.OUTPUTS:
            assert self.parse("312", "20181129", "12", f"0-1-0-1.{output}").output == output

    def test_unknown_extension_is_part_of_the_value(self) -> None:
        with pytest.raises(BadParameter, match="parameter 'grid'.*got '0-1-0-1.gif'"):
            self.parse("312", "20181129", "12", "0-1-0-1.gif")
        with pytest.raises(BadParameter, match="got ''"):
            self.parse("312", "20181129", "12", ".png")

    def test_fewer_segments_are_a_folder(self) -> None:
        selection = self.parse("312", "20181129")
        assert not selection.complete and selection.values == ("312", "20181129")
        assert not self.parse().complete

    def test_an_extension_on_a_folder_level_is_an_error(self) -> None:
        with pytest.raises(BadParameter, match="parameter 'layer'"):
            self.parse("312", "20181129", "12.png")

    def test_too_many_segments(self) -> None:
        with pytest.raises(WrongCount) as caught:
            self.parse("312", "20181129", "12", "0-1-0-1", "extra")
        assert caught.value.status == 400
        assert caught.value.reason == f"expected 4 parameters: {self.USAGE}; got 5"

    def test_the_first_bad_parameter_is_named(self) -> None:
        with pytest.raises(BadParameter, match="parameter 'date'"):
            self.parse("312", "2018-11-29", "x", "y")

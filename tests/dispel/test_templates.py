"""Templates: the shipped tiffstore template, errors naming the key, references, reloading."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from davgate.dispel.elements import Registry
from davgate.dispel.errors import BadOption, TemplateInvalid, UnknownTemplate
from davgate.dispel.params import (
    DateParam,
    DigitsParam,
    GridParam,
    IntegerParam,
    TemplateError,
)
from davgate.dispel.templates import TemplateSet, load_template
from tests.dispel.conftest import TIFFSTORE

BASE = yaml.safe_load(TIFFSTORE.read_text())


def write(folder: Path, name: str, data: dict) -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def problem(tmp_path: Path, **changes) -> TemplateError:
    data = {**BASE, **changes}
    data = {k: v for k, v in data.items() if v is not None}
    with pytest.raises(TemplateError) as caught:
        load_template(write(tmp_path, "t", data), Registry())
    return caught.value


def test_the_shipped_tiffstore_template_is_as_spec_says() -> None:
    template = load_template(TIFFSTORE, Registry())
    assert template.name == "tiffstore"
    kinds = [type(p) for p in template.params]
    assert kinds == [DigitsParam, DateParam, IntegerParam, GridParam]
    assert [p.name for p in template.params] == ["subject", "date", "layer", "grid"]
    assert template.param("layer").minimum == 0  # 0-based page index
    assert template.param("grid").pattern == "x0-x1-y0-y1"
    assert template.input_path == "tiffstore/{subject}/{date}.tif"
    assert template.default_output == "tif"
    assert {"tif", "png", "npy"} <= set(template.outputs)
    assert template.outputs["tif"].media_type == "image/tiff"
    assert template.outputs["png"].media_type == "image/png" and not template.outputs["png"].gzip
    assert template.listed_outputs == ("tif", "png")
    assert template.usage.startswith("/dispel/tiffstore/<subject>/<date>/<layer>/<x0-x1-y0-y1>[.tif|.png|.npy")


def test_steps_get_typed_values_and_texts() -> None:
    template = load_template(TIFFSTORE, Registry())
    selection = template.parse(["312", "20181129", "12", "0-1200-0-400.png"])
    steps = template.job_steps(selection)
    assert steps[0] == ("read_tiff", {"page": 12, "window": {"x0": 0, "x1": 1200, "y0": 0, "y1": 400}})
    assert [name for name, _ in steps] == ["read_tiff", "fit", "stretch_8bit", "colormap", "encode_png"]
    assert steps[2] == ("stretch_8bit", {"low": 2, "high": 98, "rescale": None})  # the options' defaults
    assert template.input_rel(selection) == "tiffstore/312/20181129.tif"
    assert template.file_name(selection) == "312_20181129_layer12_0-1200-0-400.png"


def test_options_come_from_a_results_query_and_only_its_outputs() -> None:
    template = load_template(TIFFSTORE, Registry())
    segments = ["312", "20181129", "12", "0-1200-0-400.png"]
    chosen = template.parse(segments, "colormap=viridis&size=0256&rescale=100-4000")
    steps = dict(template.job_steps(chosen))
    assert steps["fit"] == {"size": 256} and steps["colormap"] == {"name": "viridis"}
    assert steps["stretch_8bit"]["rescale"] == {"start": 100, "end": 4000}
    texts = {name: text for name, _, text in chosen.options}
    assert texts == {"stretch": "", "rescale": "100-4000", "colormap": "viridis", "size": "256"}  # "": default
    assert template.parse(segments, "colormap=grey").options == template.parse(segments).options
    with pytest.raises(BadOption, match="unknown option 'colour' for .png"):
        template.parse(segments, "colour=viridis")
    with pytest.raises(BadOption, match="unknown option 'colormap' for .npy"):  # it would change nothing
        template.parse([*segments[:3], "0-1200-0-400.npy"], "colormap=viridis")
    with pytest.raises(BadOption, match="given twice"):
        template.parse(segments, "size=20&size=30")
    with pytest.raises(BadOption, match="option 'colormap': expected one of grey, viridis"):
        template.parse(segments, "colormap=jet")
    with pytest.raises(BadOption, match="option 'size': expected an integer"):
        template.parse(segments, "size=3")
    assert template.parse(segments[:3], "anything=at-all").options == ()  # a folder's query is not read


def test_references_to_fields_and_inside_text(tmp_path: Path) -> None:
    data = {
        **BASE,
        "pipeline": [
            {
                "element": "read_tiff",
                "page": "{layer}",
                "window": {"x0": "{grid.x0}", "x1": "{grid.x1}", "y0": 0, "y1": 1},
            },
            {"element": "tests.dispel.elements_for_tests:mark", "path": "/tmp/{subject}-{date}.marks"},
        ],
    }
    template = load_template(write(tmp_path, "refs", data), Registry())
    steps = template.job_steps(template.parse(["7", "20181129", "3", "5-9-0-1"]))
    assert steps[0][1] == {"page": 3, "window": {"x0": 5, "x1": 9, "y0": 0, "y1": 1}}
    assert steps[1][1] == {"path": "/tmp/7-20181129.marks"}


@pytest.mark.parametrize(
    ("changes", "key", "text"),
    [
        ({"parameters": []}, "parameters", "non-empty list"),
        (
            {"parameters": [{"name": "a", "type": "digits"}, {"name": "a", "type": "digits"}]},
            "parameters[1].name",
            "declared twice",
        ),
        ({"input": None}, "input", "expected a mapping with path"),
        ({"input": {"path": "tiffstore/{nobody}.tif"}}, "input.path", "{nobody} is not a parameter"),
        ({"input": {"path": "../{subject}"}}, "input.path", "'..'"),
        ({"pipeline": [{"element": "no_such_element"}]}, "pipeline[0].element", "no_such_element"),
        ({"pipeline": [{"element": "read_tiff", "pages": 1}]}, "pipeline[0]", "unexpected keyword argument 'pages'"),
        ({"pipeline": [{"element": "read_tiff", "page": "{layr}"}]}, "pipeline[0].page", "{layr} is not a parameter"),
        ({"pipeline": [{"element": "read_tiff", "page": "{layer.x0}"}]}, "pipeline[0].page", "not a field"),
        ({"outputs": {}}, "outputs", "mapping of outputs"),
        ({"outputs": {"TIF": {"media_type": "image/tiff"}}}, "outputs.TIF", "lower-case"),
        ({"default_output": "gif"}, "default_output", "expected one of csv, json, npy, png, tif, got 'gif'"),
        ({"listed_outputs": ["gif"]}, "listed_outputs", "among csv, json, npy, png, tif"),
        ({"browse": {"layer": {"list": "everything"}}}, "browse.layer.list", "pages or windows"),
        ({"browse": {"layer": {"list": "windows"}}}, "browse.layer", "grid parameter"),
        ({"time_limit": -1}, "time_limit", "positive"),
        ({"colour": "red"}, "colour", "unknown key"),
    ],
)
def test_errors_name_the_key(tmp_path: Path, changes: dict, key: str, text: str) -> None:
    error = problem(tmp_path, **changes)
    assert error.key == key
    assert text in error.problem


def test_not_yaml(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text("parameters: [unclosed")
    with pytest.raises(TemplateError, match="not valid YAML"):
        load_template(tmp_path / "bad.yaml", Registry())


class TestTemplateSet:
    def test_lists_the_templates_that_load(self, tmp_path: Path) -> None:
        write(tmp_path, "tiffstore", BASE)
        write(tmp_path, "broken", {**BASE, "parameters": []})
        (tmp_path / "notes.txt").write_text("not a template")
        templates = TemplateSet(tmp_path, Registry())
        assert templates.names() == ["tiffstore"]
        with pytest.raises(UnknownTemplate, match="unknown template 'nope'"):
            templates.get("nope")
        with pytest.raises(UnknownTemplate):
            templates.get("../etc")
        with pytest.raises(
            TemplateInvalid, match="template 'broken' is invalid: parameters: expected a non-empty list"
        ):
            templates.get("broken")

    def test_a_changed_file_is_reloaded_with_a_new_digest(self, tmp_path: Path) -> None:
        changes = []
        path = write(tmp_path, "tiffstore", BASE)
        templates = TemplateSet(tmp_path, Registry(), on_change=changes.append)
        first = templates.get("tiffstore")
        assert templates.get("tiffstore") is first  # unchanged file: no reload
        write(tmp_path, "tiffstore", {**BASE, "time_limit": 5})
        os.utime(path, ns=(1, 1))  # a new mtime even on coarse clocks
        second = templates.get("tiffstore")
        assert second.digest != first.digest and second.time_limit == 5
        assert [t.digest for t in changes] == [first.digest, second.digest]

"""The import graph of lrjax/ is layered: no circles, and no arrow that climbs back up
(`scripts/layers.py` reads the graph and holds the layers)."""

import os
import sys

import pytest

sys.path.insert(
  0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "scripts")
)

from layers import circles, climbs, imports, layer_of, modules


def test_every_module_has_a_layer():
  for module in modules():
    layer_of(module)


def test_no_arrow_climbs_back_up():
  assert climbs(imports(modules())) == []


def test_no_modules_import_each_other_in_a_circle():
  assert circles(imports(modules())) == []


def test_only_the_command_line_and_the_package_itself_import_lrjax_by_its_root():
  edges = imports(modules())
  users = sorted(a for a, bs in edges.items() if "lrjax" in bs)
  assert users == ["lrjax.__main__"] or users == [], users


@pytest.mark.parametrize(
  "edges, expected",
  [
    ({"lrjax.train.build": {"lrjax.compare.plan"}}, ["lrjax.train.build -> lrjax.compare.plan"]),
    ({"lrjax.compare.plan": {"lrjax.train.build"}}, []),
    ({"lrjax.plot.study": {"lrjax.compare.report"}}, ["lrjax.plot.study -> lrjax.compare.report"]),
    ({"lrjax.runtime.setup": {"lrjax.onednn.conv"}}, []),
  ],
)
def test_climbs_finds_what_it_should(edges, expected):
  assert climbs(edges) == expected


def test_circles_finds_what_it_should():
  edges = {"lrjax.a": {"lrjax.b"}, "lrjax.b": {"lrjax.a"}, "lrjax.c": {"lrjax.a"}}
  assert circles(edges) == [["lrjax.a", "lrjax.b"]]

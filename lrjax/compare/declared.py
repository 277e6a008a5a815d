"""The tests a study declared before any result was read (`config.study.test`,
`config.study.margin`), as every report and conclusion reads them from the results."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lrjax.stats.paired import ACCURACY_MARGIN


def tests(results: Mapping[str, Any], metric: str) -> dict[str, Any]:
  """`{"test", "margin"}` for `lrjax.stats.paired_comparison` on `metric`: the study's declared
  difference test, and its equivalence margin where the metric is an accuracy (none for others,
  or where the study declared 0). A results dict without the declaration takes the defaults.

  Args:
    results: a study's results (its `config.study` holds the declaration).
    metric: the metric compared.
  """
  study = (results.get("config") or {}).get("study") or {}
  margin = study.get("margin", ACCURACY_MARGIN)
  accuracy = "accuracy" in metric.rsplit(".", 1)[-1]
  return {"test": study.get("test") or "t", "margin": margin if accuracy and margin else None}

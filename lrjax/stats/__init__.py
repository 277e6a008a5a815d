"""Statistics over seeds: per-arm summaries and paired comparisons against a baseline.

`runs` reads a study's results dict, `significance` holds the tests of one comparison (the
paired t-test, the exact sign-flip test, equivalence by TOST, power from the noncentral t), and
`paired` compares every arm with a baseline as one family with its verdicts.

A study's results hold one run per (arm, seed); an arm is a schedule, or any set of overrides
(an optimizer, a weight decay). Runs of different arms that share a seed share the
initialisation and data order, so arms are compared seed by seed (a paired t-test) rather than
as two independent samples: the seed-to-seed spread cancels out of the differences. Comparing k
arms with one baseline makes k tests; their p-values are Holm-adjusted so that the chance of
calling any equal arm different stays at most alpha (the verdict reads the adjusted p-value),
and their intervals are at the Bonferroni level of the family. Verdicts: better, worse,
equivalent (within a margin, half a point of accuracy by default), or undecided.

A results dict names its arms under "arms" and each run's under "arm"
(`lrjax.compare.results.load` reads a results.json written before they had those names).

Missing data: an (arm, seed) run that is absent, or whose metric is absent, None or not finite,
counts as missing; every statistic reports the `n` it was computed from.

Every function given `results` raises ValueError when it has no list of runs.

Example:
  >>> from lrjax import stats
  >>> accs = {"constant": [0.80, 0.82, 0.81], "cosine": [0.84, 0.85, None]}  # a seed missing
  >>> runs = [{"arm": s, "seed": i, "final_test_accuracy": a}
  ...         for s in accs for i, a in enumerate(accs[s])]
  >>> summary = stats.summarize({"arms": list(accs), "runs": runs}, ["final_test_accuracy"])
  >>> cell = summary["cosine"]["final_test_accuracy"]
  >>> round(cell["mean"], 3), cell["n"], cell["seeds"]
  (0.845, 2, [0, 1])
"""

from lrjax.stats.paired import NEEDS_SEEDS as NEEDS_SEEDS
from lrjax.stats.paired import VERDICTS as VERDICTS
from lrjax.stats.paired import default_margin as default_margin
from lrjax.stats.paired import holm as holm
from lrjax.stats.paired import paired_comparison as paired_comparison
from lrjax.stats.paired import paired_stats as paired_stats
from lrjax.stats.paired import verdict as verdict
from lrjax.stats.runs import METRICS as METRICS
from lrjax.stats.runs import arm_names as arm_names
from lrjax.stats.runs import at_budget as at_budget
from lrjax.stats.runs import higher_is_better_for as higher_is_better_for
from lrjax.stats.runs import label as label
from lrjax.stats.runs import metric_value as metric_value
from lrjax.stats.runs import run_table as run_table
from lrjax.stats.runs import seeds_of as seeds_of
from lrjax.stats.runs import summarize as summarize
from lrjax.stats.significance import power as power
from lrjax.stats.significance import seeds_for as seeds_for
from lrjax.stats.significance import sign_flip_p as sign_flip_p
from lrjax.stats.significance import t_test as t_test
from lrjax.stats.significance import tost_p as tost_p

# The functions; the constants (METRICS, NEEDS_SEEDS, VERDICTS) are importable too.
__all__ = [
  "arm_names",
  "at_budget",
  "default_margin",
  "higher_is_better_for",
  "holm",
  "label",
  "metric_value",
  "paired_comparison",
  "paired_stats",
  "power",
  "run_table",
  "seeds_for",
  "seeds_of",
  "sign_flip_p",
  "summarize",
  "t_test",
  "tost_p",
  "verdict",
]

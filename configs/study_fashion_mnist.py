"""The chapter's study on real Fashion-MNIST, sized for a 2-core CPU.

    lrjax compare --config study_fashion_mnist --workdir runs/study          # quick
    lrjax compare --config study_fashion_mnist:medium --workdir runs/medium
    lrjax compare --config study_fashion_mnist:beyond --workdir runs/beyond
    lrjax compare --config study_fashion_mnist:budgets --workdir runs/budgets
    lrjax compare --config study_fashion_mnist:tuned --workdir runs/tuned --executor local
    lrjax compare --config study_fashion_mnist:tuned_budgets --workdir runs/tuned_budgets

The small ConvNet (0.1M parameters), 3 epochs over 12,800 training images per epoch and the full
10,000-image test set, seven schedules; the same initialisation and data order for every
schedule of a seed. "quick" (the default) trains 2 seeds: 14 runs of about half a minute each on
two CPU cores. "medium" trains 5 seeds (35 runs), enough for the paired t-test to tell schedules
apart (4 degrees of freedom instead of 1). "beyond" adds WSD with a 1-sqrt cooldown,
Schedule-Free SGD, Prodigy and DoG to the seven (22 runs, about 12 minutes). "budgets" trains
constant, linear and cosine decay and forked WSD at budgets of 1, 2, 4 and 8 epochs (2 seeds,
34 cells, about 20 minutes). "tuned" tunes the chapter's seven, linear and cosine decay to 0
per step, WSD with a 1-sqrt and a linear cooldown, Schedule-Free SGD and Prodigy (13 arms) each
at 0.5x-8x its learning rate by seed-wise successive halving on tuning seeds 1000 and 1001 (5
points on the first, the better 3 on the second: 104 runs, and 16x or 0.25x where an arm's best
lies on that edge), chooses each arm's factor on the validation split (10% of the training
images, held out), and trains the arms at their chosen factors on the 5 final seeds (65 more
runs), whose test data confirms. "tuned_budgets" does the same for constant, linear,
cosine and WSD at budgets of 1, 2 and 4 epochs (159 runs). With `--executor local` on 2 CPU
cores "tuned" takes about 40 minutes and "tuned_budgets" about 28 (docs/results).
"""

import ml_collections

from lrjax.configs import default
from lrjax.configs.beyond_arms import TUNE, use_variant
from lrjax.configs.chapter_schedules import CHAPTER_SCHEDULES, LABELS, chapter_study

FIVE = (0, 1, 2, 3, 4)
SEEDS = {
  "quick": (0, 1),
  "medium": FIVE,
  "beyond": (0, 1),
  "budgets": (0, 1),
  "tuned": FIVE,
  "tuned_budgets": FIVE,
}


def get_config(size: str = "quick"):
  if size not in SEEDS:
    raise ValueError(f"size must be one of {tuple(SEEDS)}, got {size!r}")
  config = default.get_config()
  config.model = "convnet"
  config.dataset = "fashion_mnist"
  config.train_limit = 12_800
  config.augment = False
  config.num_epochs = 3
  config.progress = True  # each run's progress line, beside the study's overall one
  config.tensorboard = False
  # Snapshot Ensembles (Huang et al. 2017) reported for every arm whose schedule has cycles.
  config.snapshot_ensemble = True
  config.study = ml_collections.ConfigDict()
  config.study.schedules = chapter_study(init_lr=0.1, num_epochs=config.num_epochs)
  config.study.order = tuple(CHAPTER_SCHEDULES)  # constant first: the baseline
  config.study.labels = LABELS  # as the chapter's Table 1.1 heads its columns
  config.study.seeds = SEEDS[size]  # a tuple, so --config.study.seeds="(0,1,2)" overrides it
  # "auto": one run at a time on CPU; elsewhere a seed's runs train as one vmapped population
  # where a probe finds that faster.
  config.study.population = "auto"
  # Tuning per arm, chosen on validation data (lrjax.compare.tuning); None: every arm as given.
  config.study.tune = None
  use_variant(config, size, budgets=(1, 2, 4) if size == "tuned_budgets" else (1, 2, 4, 8))
  if config.study.tune is not None:
    # At 3 epochs of 100 steps the best factors sit high: on 0.25x-4x, 7 of the 10 arms chose
    # 4x (measured). The grid is one step higher here, and grows one point past an edge.
    config.study.tune = {**TUNE, "lr_scale": {"log_range": [0.5, 8.0], "num": 5}, "extend_edges": 1}
  return config

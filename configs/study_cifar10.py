"""The chapter's study as it ran it: ResNet-50 (CIFAR stem) on CIFAR-10, lr 0.1, 100 epochs.

    lrjax compare --config study_cifar10 --workdir runs/study_cifar10
    lrjax compare --config study_cifar10:beyond --workdir runs/beyond_cifar10
    lrjax compare --config study_cifar10:budgets --workdir runs/budgets_cifar10
    lrjax compare --config study_cifar10:tuned --workdir runs/tuned_cifar10

Seven schedules x 3 seeds = 21 runs of 100 epochs (about 39 PFLOP each). Needs CIFAR-10 through
tensorflow-datasets or the binary archive (--config.data_dir). For the cheaper tutorial-sized
network: --config.model=preact_resnet_tutorial --config.augment=False. "beyond" adds WSD 1-sqrt,
Schedule-Free SGD, Prodigy and DoG (33 runs); "budgets" trains constant, linear, cosine and
forked WSD at 12, 25, 50 and 100 epochs (3 seeds; the forks cost one 80-epoch trunk and their
cooldowns per seed). "tuned" tunes the chapter's seven, linear and cosine decay to 0
per step, WSD with a 1-sqrt and a linear cooldown, Schedule-Free SGD and Prodigy (13 arms) each at
0.25x-4x its learning rate by successive halving on tuning seeds 1000 and 1001 (104 runs of 100
epochs), chooses each arm's factor on 5,000 held-out training images, and compares them over 5
final seeds (65 more runs): 169 runs, about 6,600 PFLOP; an accelerator's work.
"""

import ml_collections

from lrjax.configs import default
from lrjax.configs.beyond_arms import use_variant
from lrjax.configs.chapter_schedules import CHAPTER_SCHEDULES, LABELS, chapter_study

VARIANTS = ("chapter", "beyond", "budgets", "tuned")


def get_config(variant: str = "chapter"):
  if variant not in VARIANTS:
    raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
  config = default.get_config()
  config.progress = True
  # Snapshot Ensembles (Huang et al. 2017) reported for every arm whose schedule has cycles.
  config.snapshot_ensemble = True
  config.study = ml_collections.ConfigDict()
  config.study.schedules = chapter_study(init_lr=0.1, num_epochs=config.num_epochs)
  config.study.order = tuple(CHAPTER_SCHEDULES)  # constant first: the baseline
  config.study.labels = LABELS  # as the chapter's Table 1.1 heads its columns
  config.study.seeds = (0, 1, 2, 3, 4) if variant == "tuned" else (0, 1, 2)
  # "auto": one run at a time on CPU; elsewhere a seed's runs train as one vmapped population
  # where a probe finds that faster.
  config.study.population = "auto"
  # Tuning per arm, chosen on validation data (lrjax.compare.tuning); None: every arm as given.
  config.study.tune = None
  use_variant(config, variant, budgets=(12, 25, 50, 100))
  return config

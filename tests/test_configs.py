"""Every built-in config and variant loads by name and by path, from any directory; overrides."""

import json
import os
import subprocess
import sys

import pytest

import lrjax.configs
from lrjax import config as configs
from lrjax.configs.chapter_schedules import CHAPTER_SCHEDULES

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FOLDER = os.path.dirname(os.path.abspath(lrjax.configs.__file__))
VARIANTS = {
  "chapter": list(CHAPTER_SCHEDULES),
  "tutorial": list(CHAPTER_SCHEDULES),
  "study_fashion_mnist": ["quick", "medium", "beyond", "budgets"],
  "study_cifar10": ["chapter", "beyond", "budgets"],
}

_LOAD = """
import json, sys
from lrjax import config as configs
out = {}
for spec in sys.argv[1:]:
  config = configs.load(spec)
  out[spec] = {
    "model": config.model,
    "schedule": config.schedule.to_dict(),
    "seeds": list(config.get("study", {}).get("seeds", [])),
  }
print(json.dumps(out))
"""


def _specs() -> list[str]:
  specs = []
  for name in configs.builtin_names():
    specs.append(name)
    specs += [f"{name}:{v}" for v in VARIANTS.get(name, [])]
  return specs


def _load(tmp_path, *specs) -> dict:
  # Another directory, nothing extra on the path: configs import `lrjax.configs` alone.
  proc = subprocess.run(
    [sys.executable, "-c", _LOAD, *specs],
    cwd=tmp_path,
    env={**os.environ, "PYTHONPATH": ""},
    capture_output=True,
    text=True,
    timeout=300,
  )
  assert proc.returncode == 0, proc.stderr
  return json.loads(proc.stdout.strip().splitlines()[-1])


def test_the_builtins_are_the_files_of_the_top_level_configs_folder():
  assert FOLDER == os.path.join(ROOT, "configs")  # installed as lrjax.configs
  files = sorted(f[:-3] for f in os.listdir(FOLDER) if f.endswith(".py") and f != "__init__.py")
  # The schedule and arm definitions the study configs use are no configs.
  assert configs.builtin_names() == [
    f for f in files if f not in ("chapter_schedules", "beyond_arms")
  ]
  assert "study_smoke" in files and "fashion_mnist" in files


def test_every_config_and_variant_loads_by_name_and_by_path(tmp_path):
  by_name = _specs()
  by_path = [
    os.path.join(FOLDER, s.split(":")[0] + ".py") + s[len(s.split(":")[0]) :] for s in by_name
  ]
  loaded = _load(tmp_path, *by_name, *by_path)
  assert len(loaded) == len(by_name) + len(by_path)
  for name, path in zip(by_name, by_path):
    assert loaded[name] == loaded[path], name
  assert loaded["study_fashion_mnist"]["seeds"] == [0, 1]
  assert loaded["study_fashion_mnist:medium"]["seeds"] == [0, 1, 2, 3, 4]
  assert loaded["chapter:linear"]["model"] == "resnet50"
  assert loaded["chapter:linear"]["schedule"] != loaded["chapter:constant"]["schedule"]
  assert loaded["study_smoke"]["seeds"] == [0, 1] and loaded["study_smoke"]["model"] == "tiny"


def test_a_user_file_imports_the_defaults(tmp_path):
  path = tmp_path / "mine.py"
  path.write_text(
    "from lrjax.configs import fashion_mnist\n\n\n"
    "def get_config(epochs='2'):\n"
    "  config = fashion_mnist.get_config()\n"
    "  config.num_epochs = int(epochs)\n"
    "  return config\n"
  )
  assert configs.load(str(path)).num_epochs == 2
  assert configs.load(f"{path}:7").num_epochs == 7


def test_study_smoke_is_a_small_study():
  config = configs.load("study_smoke")
  assert list(config.study.order) == ["constant", "linear", "cosine"]
  assert set(config.study.schedules.keys()) == set(config.study.order)
  assert tuple(config.study.seeds) == (0, 1)
  assert config.model == "tiny" and config.dataset.startswith("synthetic")


@pytest.mark.parametrize(
  "field, text, expected",
  [
    ("num_epochs", "3", 3),
    ("weight_decay", "1e-3", 1e-3),
    ("weight_decay", "0", 0.0),
    ("augment", "false", False),
    ("augment", "True", True),
    ("model", "resnet20", "resnet20"),
    ("schedule.init_value", "0.02", 0.02),
    ("study.seeds", "(0,1,2)", (0, 1, 2)),
    ("study.seeds", "3,4", (3, 4)),
    ("schedule", '{"name": "constant", "value": 0.3}', {"name": "constant", "value": 0.3}),
  ],
)
def test_overrides_are_typed_by_the_default(field, text, expected):
  config = configs.load("study_smoke", [(field, text)])
  value = config
  for part in field.split("."):
    value = value[part]
  value = value.to_dict() if hasattr(value, "to_dict") else value
  assert value == expected and type(value) is type(expected)


@pytest.mark.parametrize(
  "spec, overrides, match",
  [
    ("nope", (), "'nope'"),
    ("nope.py", (), "'nope.py' not found"),
    ("smoke:x", (), "takes no variant"),
    ("smoke", [("nope", "1")], "unknown config field 'nope'"),
    ("smoke", [("schedule.init_valu", "1")], "did you mean 'schedule.init_value'"),
    ("smoke", [("num_epochs", "2.5")], "num_epochs must be int"),
    ("smoke", [("schedule", "[1]")], "schedule must be"),
  ],
)
def test_config_errors(spec, overrides, match):
  with pytest.raises(configs.ConfigError, match=match):
    configs.load(spec, overrides)


@pytest.mark.parametrize(
  "body, match",
  [
    (
      "c.weight_decy = 0.1",
      r"sets config.weight_decy, which lrjax does not know; did you mean "
      r"'weight_decay'\? put fields of your own under config.user",
    ),
    ("c.runtime.thread = 2", r"sets config.runtime.thread, .*did you mean 'runtime.threads'"),
    ("c.study = ml_collections.ConfigDict({'seeds': (0,), 'sedes': 1})", r"config.study.sedes"),
  ],
)
def test_a_config_file_setting_an_unknown_field_is_refused(tmp_path, body, match):
  path = tmp_path / "typo.py"
  path.write_text(
    "import ml_collections\n\nfrom lrjax.configs import smoke\n\n\n"
    f"def get_config():\n  c = smoke.get_config()\n  {body}\n  return c\n"
  )
  with pytest.raises(configs.ConfigError, match=match) as info:
    configs.load(str(path))
  assert "\n" not in str(info.value)


def test_fields_of_your_own_go_under_user(tmp_path):
  path = tmp_path / "mine.py"
  path.write_text(
    "from lrjax.configs import smoke\n\n\n"
    "def get_config():\n  c = smoke.get_config()\n  c.user.width = 64\n  return c\n"
  )
  config = configs.load(str(path), [("user.width", "32")])
  assert config.user.width == 32


def test_the_loaded_config_is_locked():
  config = configs.load("smoke")
  with pytest.raises(AttributeError):
    config.new_field = 1


def test_the_beyond_and_budget_studies_plan_their_arms():
  from lrjax.config import study

  beyond = study.parse(configs.load("study_fashion_mnist:beyond"))
  assert beyond.names[-4:] == ("wsd_1sqrt", "schedule_free_sgd", "prodigy", "dog")
  assert len(beyond.names) == 11 and beyond.seeds == (0, 1) and not beyond.budgets
  budgets = study.parse(configs.load("study_fashion_mnist:budgets"))
  assert budgets.budgets == (1, 2, 4, 8) and budgets.fork("wsd_1sqrt")["cooldown"] == 0.2
  assert study.parse(configs.load("study_cifar10:budgets")).budgets == (12, 25, 50, 100)


def test_the_tuned_study_sets_per_step_decays_beside_the_chapter_s():
  from lrjax.config import study
  from lrjax.config.durations import resolve_schedule

  tuned = study.parse(configs.load("study_fashion_mnist:tuned"))
  assert len(tuned.names) == 13 and tuned.names[:7] == tuple(CHAPTER_SCHEDULES)

  def rates(name, steps=(0, 1, 150, 240, 270, 299)):
    schedule = resolve_schedule(tuned.run(name, 0).schedule, 100, 300)
    return [float(schedule(t)) for t in steps]

  # The chapter's linear changes once an epoch and ends at a third of its start; the per-step
  # forms change every step and reach 0 at the last.
  assert rates("linear")[1] == rates("linear")[0] and rates("linear")[-1] > 0.03
  for name in ("linear_to_zero", "cosine_to_zero"):
    r = rates(name)
    assert r[0] == pytest.approx(0.1) and r[1] < r[0] and r[-1] < 1e-3
  assert rates("linear_to_zero")[2] == pytest.approx(0.05)  # halfway, half the peak
  # The two WSD arms differ in their cooldown alone: linear halves the rate halfway through it,
  # 1-sqrt falls faster (1 - sqrt(1/2) = 0.29 of the peak).
  lin, sqrt = rates("wsd_linear"), rates("wsd_1sqrt")
  assert lin[:4] == sqrt[:4] == [pytest.approx(0.1)] * 4
  assert lin[4] == pytest.approx(0.05) and sqrt[4] == pytest.approx(0.1 * (1 - 0.5**0.5), rel=1e-3)

"""The command line: help, exit codes (2 usage, 1 failure), one-line errors, missing extras."""

import os
import subprocess
import sys

import pytest

from lrjax import cli

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _exit(capsys, *args) -> tuple[int, str, str]:
  """(exit status, stdout, stderr) of `lrjax args...` run in this process."""
  try:
    code = cli.main(["lrjax", *args])
  except SystemExit as e:
    code = e.code
  out, err = capsys.readouterr()
  return code, out, err


def _one_line_error(err: str, *words: str) -> None:
  assert "Traceback" not in err
  lines = err.strip().splitlines()
  assert len(lines) == 1 and lines[0].startswith("lrjax"), err
  for word in words:
    assert word in lines[0], (word, err)


def test_top_level_help(capsys):
  code, out, _ = _exit(capsys, "--help")
  assert code == 0 and "train" in out and "find-lr" in out and "study_smoke" in out


@pytest.mark.parametrize("command", ["train", "compare", "find-lr", "plot"])
@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_command_help_lists_flags_and_config_fields(capsys, command, flag):
  code, out, err = _exit(capsys, command, flag)
  assert code == 0, err
  assert f"usage: lrjax {command}" in out
  if command == "plot":
    assert "--steps" in out and "--out" in out
  else:
    assert "--config" in out and "--workdir" in out
    assert "batch_size = 128" in out and "num_epochs = 100" in out  # the defaults
  if command == "train":
    assert "--num_processes" in out
  if command == "find-lr":
    assert "--min_lr" in out and "1e-05" in out


def test_help_shows_the_named_config(capsys):
  code, out, _ = _exit(capsys, "compare", "--config", "study_smoke", "--help")
  assert code == 0
  assert "config fields of study_smoke" in out and "study.seeds = (0, 1)" in out


def test_unknown_command_is_a_usage_error(capsys):
  code, _, err = _exit(capsys, "trian")
  assert code == 2
  _one_line_error(err, "trian")


@pytest.mark.parametrize(
  "args, words",
  [
    (["--num_processes", "two"], ["--num_processes", "two"]),
    (["--process_id", "1.5"], ["--process_id"]),
    (["--no_such_flag"], ["--no_such_flag"]),
  ],
)
def test_bad_flags_are_usage_errors(capsys, tmp_path, args, words):
  code, _, err = _exit(capsys, "train", "--config", "smoke", "--workdir", str(tmp_path), *args)
  assert code == 2
  _one_line_error(err, *words)


def test_missing_required_flags(capsys):
  code, _, err = _exit(capsys, "train", "--config", "smoke")
  assert code == 2
  _one_line_error(err, "--workdir")
  code, _, err = _exit(capsys, "find-lr", "--config", "smoke", "--workdir", "x", "--num_steps=0")
  assert code == 2
  _one_line_error(err, "--num_steps")


def test_config_errors_are_one_line_usage_errors(capsys, tmp_path):
  broken = tmp_path / "broken.py"
  broken.write_text("def get_config(:\n  pass\n")
  plain = tmp_path / "plain.py"
  plain.write_text(
    "from lrjax.configs import smoke\n\n\ndef get_config():\n  return smoke.get_config()\n"
  )
  workdir = ("--workdir", str(tmp_path / "w"))
  cases = [
    (["--config", str(tmp_path / "missing.py")], ["missing.py", "not found"]),
    (["--config", "no_such_config"], ["no_such_config", "fashion_mnist"]),
    (["--config", str(broken)], ["broken.py", "syntax error", "line 1"]),
    (["--config", f"{plain}:medium"], ["takes no variant", "medium"]),
    (["--config", "study_fashion_mnist:huge"], ["huge"]),
    (["--config", "smoke", "--config.foo=1"], ["unknown config field", "'foo'"]),
    (["--config", "smoke", "--config.batch_sise=1"], ["batch_sise", "did you mean 'batch_size'"]),
    (["--config", "smoke", "--config.schedule.nope=1"], ["schedule.nope"]),
    (["--config", "smoke", "--config.batch_size=abc"], ["--config.batch_size", "'abc'"]),
    (["--config", "smoke", "--config.augment=maybe"], ["--config.augment", "'maybe'"]),
    (["--config", "smoke", "--config.num_epochs"], ["--config.num_epochs", "needs a value"]),
  ]
  for args, words in cases:
    code, _, err = _exit(capsys, "train", *args, *workdir)
    assert code == 2, (args, err)
    _one_line_error(err, *words)
  assert not (tmp_path / "w").exists()  # nothing ran


def test_debug_shows_the_traceback(capsys, monkeypatch):
  monkeypatch.setenv("LRJAX_DEBUG", "1")
  with pytest.raises(Exception) as info:
    cli.main(["lrjax", "train", "--config", "smoke", "--workdir", "w", "--config.foo=1"])
  assert not isinstance(info.value, SystemExit)
  assert "foo" in str(info.value)


def test_a_bad_config_value_exits_2_before_anything_runs(capsys, tmp_path):
  args = ["--config", "smoke", "--workdir", str(tmp_path), "--config.batch_size=-4"]
  code, _, err = _exit(capsys, "train", *args)
  assert code == 2
  _one_line_error(err, "config.batch_size must be a positive integer, got -4")
  assert not os.listdir(tmp_path)  # nothing ran


def test_a_failed_run_exits_1_with_one_line(capsys, tmp_path):
  # A dataset only loading it can reject: the run starts, then fails.
  args = ["--config", "smoke", "--workdir", str(tmp_path), "--config.dataset=no_such_set_xyz"]
  code, _, err = _exit(capsys, "train", *args)
  assert code == 1
  _one_line_error(err, "no_such_set_xyz")


@pytest.mark.parametrize(
  "command, blocked, extra",
  [("train", "flax", "train"), ("compare", "scipy", "train"), ("plot", "matplotlib", "plot")],
)
def test_a_missing_extra_names_it(capsys, monkeypatch, tmp_path, command, blocked, extra):
  monkeypatch.setitem(sys.modules, blocked, None)  # as if not installed
  args = ["--out", str(tmp_path / "x.png"), "--all"] if command == "plot" else ["--help"]
  code, _, err = _exit(capsys, command, *args)
  assert code == 1
  _one_line_error(err, f"lrjax {command} needs the [{extra}] extra", f"'lrjax[{extra}]'", blocked)


def test_a_module_missing_on_the_way_names_its_extra(capsys, monkeypatch, tmp_path):
  def run(fn):
    raise ModuleNotFoundError("No module named 'tensorflow_datasets'", name="tensorflow_datasets")

  from lrjax.cli import train

  monkeypatch.setattr(train, "run_command", run)
  code, _, err = _exit(capsys, "train", "--config", "smoke", "--workdir", str(tmp_path))
  assert code == 1
  _one_line_error(err, "[tfds]")


def test_plot_errors(capsys, tmp_path):
  out = str(tmp_path / "p.png")
  code, _, err = _exit(capsys, "plot", "--out", out)
  assert code == 2
  _one_line_error(err, "--all")
  code, _, err = _exit(capsys, "plot", "--schedule", '{"name": "x"}', "--out", out)
  assert code == 2
  _one_line_error(err, "bad --schedule")
  code, _, err = _exit(capsys, "plot", "--all", "--steps", "many", "--out", out)
  assert code == 2
  _one_line_error(err, "--steps", "many")


def test_python_dash_m_lrjax_help():
  proc = subprocess.run(
    [sys.executable, "-m", "lrjax", "train", "--help"],
    cwd=ROOT,
    capture_output=True,
    text=True,
    timeout=300,
  )
  assert proc.returncode == 0, proc.stderr
  assert "usage: lrjax train" in proc.stdout and "batch_size = 128" in proc.stdout


def test_study_smoke_runs_end_to_end(capsys, tmp_path):
  args = ["--config", "study_smoke", "--workdir", str(tmp_path), "--config.num_epochs=1"]
  code, out, err = _exit(capsys, "compare", *args)
  assert code == 0, err
  assert "# Learning-rate schedules compared" in out and "p (Holm)" in out
  assert (tmp_path / "figures" / "accuracy_overlay.png").stat().st_size > 10_000

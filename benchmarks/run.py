"""Runs the benchmark suite and writes benchmarks/results.json and benchmarks/results.md.

    python benchmarks/run.py            # about 8 minutes on two CPU cores; PyTorch optional

Every figure is a ratio of two timings taken side by side in this one process, under the
default runtime of `lrjax`'s command line (`lrjax.runtime.setup()`), except the one that measures
the XLA:CPU settings: it needs a process for each side.
"""

from __future__ import annotations

import datetime
import os
import platform
import sys

import jax

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import cpu_flags  # noqa: E402
import profile_step  # noqa: E402
import schedules  # noqa: E402
import timing  # noqa: E402
import torch_compare  # noqa: E402
import training  # noqa: E402

TARGETS = {"schedule_vs_optax": 1.05, "schedule_in_step": 1.02, "host_overhead": 1.05}


def _mark(value: float, target: float) -> str:
  return "yes" if value <= target else "**no**"


def markdown(results: dict) -> str:
  lines = [
    f"Measured {results['date']} on {results['machine']} (jax {results['jax']}, "
    f"{results['devices']}).",
    "",
    "| schedule | lrjax / optax, 10^6 steps at once | lrjax / optax, 10^5 calls in fori_loop "
    "| same, lrjax schedule as a jit argument | lrjax / constant lr, in the train step |",
    "|---|---|---|---|---|",
  ]
  step = results["schedule_in_step"]
  in_step, in_q = step["ratios"], step.get("ratio_quartiles", {})

  def iqr(q):
    return f" ({q[0]:.2f}-{q[1]:.2f})" if q else ""

  for name, row in results["schedule_vs_optax"].items():
    lines.append(
      f"| {name} | {row['vectorised_ratio']:.3f}{iqr(row.get('vectorised_ratio_quartiles'))} | "
      f"{row['scalar_loop_ratio']:.3f}{iqr(row.get('scalar_loop_ratio_quartiles'))} | "
      f"{row['as_argument_vectorised_ratio']:.2f} / {row['as_argument_scalar_loop_ratio']:.2f} "
      f"| {in_step.get(name, float('nan')):.3f}{iqr(in_q.get(name))} |"
    )
  control = in_step.get("control: constant")
  if control is not None:
    lines.append(
      f"| control: a second constant | | | | {control:.3f}{iqr(in_q.get('control: constant'))} |"
    )
  c = results["compilations_and_overhead"]
  lines += [
    "",
    "Each figure is the median over rounds of a ratio of two timings taken back to back "
    "(quartiles in brackets: the noise). "
    f"Targets: <= {TARGETS['schedule_vs_optax']} against optax, <= "
    f"{TARGETS['schedule_in_step']} inside the step (constant-lr step: "
    f"{step['constant_step_ms']:.1f} ms, {step['model']}, batch {step.get('batch_size', 128)}, "
    f"{step.get('rounds', '?')} rounds; the control row is the same program with another "
    "constant).",
    "",
    "| figure | value | target | met (or: what compare does) |",
    "|---|---|---|---|",
    f"| train-step compilations, 3 epochs, lr changing every step | "
    f"{c['first_run_compilations']} | 1 | {_mark(c['first_run_compilations'], 1)} |",
    f"| new compilations of a 2nd run differing only in schedule values | "
    f"{c['second_run_new_compilations']} | 0 | {_mark(c['second_run_new_compilations'], 0)} |",
    "| the loop's epoch / the same steps over batches placed beforehand, no sync "
    f"| {c['host_overhead_ratio']:.3f}{iqr(c.get('host_overhead_quartiles'))} "
    f"({c['epoch_seconds']:.2f} s / {c.get('device_epoch_seconds', float('nan')):.2f} s, "
    f"{c['steps_per_epoch']} steps) | "
    f"{TARGETS['host_overhead']} | {_mark(c['host_overhead_ratio'], TARGETS['host_overhead'])} |",
  ]
  p = results["population"]
  lines += [
    f"| {p['members']} schedules as one vmapped train step / {p['members']} sequential steps "
    f"({p['platform']}, the probe `lrjax compare` runs) | {p['population_over_sequential']:.2f} "
    f"({p['population_ms']:.0f} ms / {p['sequential_ms']:.0f} ms) | < 1 to use it | "
    + ("population" if p["population_over_sequential"] < 1 else "one after another")
    + " |",
  ]
  t = results["torch"]
  if "skipped" in t:
    lines += ["", f"Throughput against PyTorch: skipped ({t['skipped']})."]
  else:
    lines += [
      "",
      "| train step, batch 128 | lrjax img/s | PyTorch NCHW img/s | PyTorch channels_last img/s "
      "| lrjax / best PyTorch (target >= 1.0) |",
      "|---|---|---|---|---|",
    ]
    for name, row in t.items():
      if isinstance(row, dict):
        lines.append(
          f"| {name} | {row['lrjax_images_per_second']:.0f} | "
          f"{row['torch_nchw_images_per_second']:.0f} | "
          f"{row['torch_channels_last_images_per_second']:.0f} | "
          f"{row['lrjax_over_best_torch']:.2f} |"
        )
  flags = results.get("cpu_flags")
  if flags:
    lines += [
      "",
      "| train step, batch 128 | XLA's CPU defaults | lrjax's XLA:CPU settings | settings / "
      "defaults |",
      "|---|---|---|---|",
    ]
    for name, row in flags.items():
      lines.append(
        f"| {name} | {row['default_step_ms']:.0f} ms | {row['tuned_step_ms']:.0f} ms | "
        f"{row['tuned_over_default']:.2f} |"
      )
  prof = results.get("profile")
  if prof:
    lines += [
      "",
      "| where a train step's time goes, batch 128 | step | its convolutions, each timed alone "
      "| their share |",
      "|---|---|---|---|",
    ]
    for name, row in prof.items():
      lines.append(
        f"| {name} | {row['step_ms']:.0f} ms | {row['convolutions']} convolutions: "
        f"{row['convolution_ms']:.0f} ms | {row['convolution_share']:.0%} |"
      )
  return "\n".join(lines) + "\n"


def main() -> None:
  from lrjax import runtime

  rt = runtime.setup()  # before the first JAX computation, as every lrjax entry point
  results = {
    "date": datetime.date.today().isoformat(),
    "runtime": rt.status(),
    "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
    "jax": jax.__version__,
    "devices": ", ".join(sorted({d.device_kind for d in jax.devices()})),
  }
  print("schedules against optax ...", flush=True)
  results["schedule_vs_optax"] = schedules.measure()
  print("schedules inside the train step ...", flush=True)
  results["schedule_in_step"] = training.schedule_in_step()
  print("compilations and host overhead ...", flush=True)
  results["compilations_and_overhead"] = training.compilations_and_overhead()
  print("population (vmapped schedules) against sequential ...", flush=True)
  results["population"] = training.population()
  print("throughput against PyTorch ...", flush=True)
  results["torch"] = torch_compare.measure()
  print("lrjax's XLA:CPU settings against XLA's defaults ...", flush=True)
  results["cpu_flags"] = cpu_flags.measure()
  print("where the step's time goes ...", flush=True)
  results["profile"] = {
    model: profile_step.profile(training.bench_config(model, dataset))
    for model, dataset in (
      ("resnet20", "synthetic:32x32x3:1024:256:10"),
      ("convnet", "synthetic:28x28x1:1024:256:10"),
    )
  }
  timing.write_outputs("results", results, markdown(results))


if __name__ == "__main__":
  main()

"""Figures: schedules (`schedules`), a study's runs (`study`), the lr range test (`lr_finder`).

All drawing is on matplotlib's object API (`matplotlib.figure.Figure`, `fig.savefig`): no pyplot
and no `matplotlib.use`, so plotting never switches a notebook's backend. matplotlib (the [plot]
extra) is imported only when a figure is drawn, so `import lrjax` works without it.
"""

from lrjax.plot.schedules import plot_schedules as plot_schedules
from lrjax.plot.schedules import schedule_values as schedule_values

__all__ = ["plot_schedules", "schedule_values"]

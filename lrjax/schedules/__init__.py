"""The schedule library: pure, jittable `step -> learning rate` pytrees (jax and optax only)."""

# Importing the modules registers every schedule factory for `from_config`.
from lrjax.schedules import arithmetic as arithmetic
from lrjax.schedules import compose as compose
from lrjax.schedules import cosine as cosine
from lrjax.schedules import cyclic as cyclic
from lrjax.schedules import decay as decay
from lrjax.schedules import momentum as momentum
from lrjax.schedules import multi_period as multi_period
from lrjax.schedules import noise as noise
from lrjax.schedules import piecewise as piecewise
from lrjax.schedules import plateau as plateau
from lrjax.schedules import polynomial as polynomial
from lrjax.schedules import power as power
from lrjax.schedules import restarts as restarts
from lrjax.schedules import wsd as wsd

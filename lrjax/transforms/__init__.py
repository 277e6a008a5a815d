"""Optax gradient transformations: factors on an optimizer's updates, driven by a metric."""

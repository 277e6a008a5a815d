"""Executors: the ways a study's cells are spread (this process, Ray tasks, Slurm array jobs)."""

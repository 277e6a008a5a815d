"""The study's read-out: statistics over seeds, the results table and report, and figures."""

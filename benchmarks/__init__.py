"""Matching at national scale: a deterministic instance generator, baselines to measure the optimiser
against (a plain PuLP/CBC model and an OR-Tools min-cost flow) and the benchmark script (issue 7)."""

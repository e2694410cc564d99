"""`resetrl compare`: every method at the same rollout budget, several seeds, one report.

- `grid.py`: the runs (one core-trainer run folder per method and seed), skipped when already done.
- `aggregate.py`: reading the run folders back; means and 95% confidence intervals over seeds,
  generated tokens, tokens needed to reach GRPO's final accuracy, localization accuracy.
- `report.py`: results.json and the Markdown tables.
- `plots.py`: accuracy against generated tokens and against steps; the localization sweep plot.
- `sweep.py`: SRPO on micro models of decreasing localization accuracy, RRPO and oracle at the ends.
"""

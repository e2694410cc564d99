"""The CPI theory lab: Conservative Policy Iteration with resets, computed exactly (docs/cpi.md).

Paper A (docs/method.md section 8) analyses resets inside Conservative Policy Iteration: with random
resets the samples per iteration grow like 1/p^2 and the improvement shrinks like p^2, p being the
probability that an on-policy chain reaches an improvable state; a credit-assignment oracle that
resets only there needs samples free of p and improves like p. This package measures both on a small
family of reasoning-shaped problems, with dynamic programming beside every sampled number.

    mdp.py         layered finite-horizon MDPs, the pivot-chain family, exact values/occupancies
    resets.py      reset distributions: random (CPI-RR), oracle (CPI-CARO), noisy-oracle (SRPO)
    estimate.py    reset rollouts, the policy-advantage estimator, the certificate (samples needed)
    cpi.py         the CPI iteration: greedy policy, certified step size, mixture update
    grid.py        one grid point: the first iteration over seeds, and its exact counterpart
    fits.py        log-log slopes with bootstrap errors
    measure.py     `measure`: the grids over p and q and their slopes
    runs.py        `run`: full CPI runs, one per reset distribution
    report.py      Markdown reports and the JSON/Markdown files
    plots.py       figures
    config.py      the config's `cpi:` section (CPIConfig and its parts)
    cli.py         `resetrl cpi measure | run | exact`; settings: the config's `cpi:` section
"""

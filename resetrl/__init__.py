"""resetrl: RL post-training of language models with resets for credit assignment.

The Python API (`resetrl.api`): `load_config`, `train`, `evaluate`, `read_rollouts`, `Task`, `Problem`,
`register_task`, `register_reward`. They load on first use, so `import resetrl` (and the CLI's
`--help`) stays light."""

__version__ = "0.1.0"

__all__ = ["Problem", "Task", "evaluate", "load_config", "read_rollouts", "register_reward", "register_task", "train"]


def __getattr__(name: str):
    if name in __all__:
        from resetrl import api

        return getattr(api, name)
    raise AttributeError(f"module 'resetrl' has no attribute {name!r}")

"""`resetrl tasks`, `resetrl presets`, `resetrl models`: what names are known."""

from __future__ import annotations

from resetrl.commands import add_config_arguments


def register(subparsers) -> None:
    for name, function, help_text in (("tasks", list_tasks, "list the registered tasks"),
                                      ("presets", list_presets, "list the built-in config presets"),
                                      ("models", list_models, "list the registered model names")):
        parser = subparsers.add_parser(name, help=help_text)
        parser.set_defaults(func=function)
        if name == "tasks":  # with a config: the run's task, its split as that run gets it
            add_config_arguments(parser)


def list_tasks(args) -> int:
    from resetrl.tasks import create_task, task_factory, task_names

    if args.config or args.preset or args.overrides:
        from resetrl.config import load_config

        config = load_config(args.config, args.preset, args.overrides)
        task = create_task(config.task.name, **config.task.options)
        doc = (type(task).__doc__ or "").strip().splitlines()[0]
        print(f"{config.task.name:28s} {doc}\n{'':28s} split: {task.splits}")
        return 0
    for name in task_names():
        factory, _ = task_factory(name)
        doc = (factory.__doc__ or "").strip().splitlines()[0] if factory.__doc__ else ""
        splits = getattr(factory, "splits", "")
        print(f"{name:28s} {doc}\n{'':28s} split: {splits}")
    return 0


def list_presets(args) -> int:
    from importlib import resources

    from resetrl.config import preset_names

    for name in preset_names():
        first = (resources.files("resetrl") / "presets" / f"{name}.yaml").read_text().splitlines()[0]
        print(f"{name:16s} {first.lstrip('# ')}")
    return 0


def list_models(args) -> int:
    from resetrl.models import MODELS

    print("\n".join(MODELS.names()) + "\n(or a local folder with a transformers model)")
    return 0

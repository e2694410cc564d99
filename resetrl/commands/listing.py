"""`resetrl tasks`, `resetrl presets`, `resetrl models`: what names are known."""

from __future__ import annotations


def register(subparsers) -> None:
    for name, function, help_text in (("tasks", list_tasks, "list the registered tasks"),
                                      ("presets", list_presets, "list the built-in config presets"),
                                      ("models", list_models, "list the registered model names")):
        subparsers.add_parser(name, help=help_text).set_defaults(func=function)


def list_tasks(args) -> int:
    from resetrl.tasks import task_factory, task_names

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

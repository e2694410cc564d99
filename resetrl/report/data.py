"""What a report shows, read back from a folder: the trainer's run folder or `resetrl compare`'s.

The rollout explorer's unit is an *item*: one problem at one step of one run, with every chain the
step sampled for it (the fresh group, the parents with their reset points, each parent's reset
continuations, the unused draws)."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import yaml

from resetrl.errors import ResetRLError
from resetrl.metrics import read_jsonl

# A compare page embeds the rollouts of all its runs only up to this size; beyond it, the runs' own
# reports hold them (the page must stay quick to open).
COMPARE_EXPLORER_MAX_BYTES = 30_000_000


def folder_kind(folder: Path) -> str:
    """"run" or "compare"; bad input is a one-line error naming what is missing."""
    if not folder.exists():
        raise ResetRLError(f"{folder}: no such folder")
    if not folder.is_dir():
        raise ResetRLError(f"{folder}: not a folder; give a run folder (`resetrl train --out`) or a compare folder")
    if (folder / "results.json").exists():
        return "compare"
    if (folder / "metrics.jsonl").exists() or (folder / "rollouts.jsonl").exists():
        return "run"
    if not any(folder.iterdir()):
        raise ResetRLError(f"{folder}: empty folder; expected a run folder (metrics.jsonl, rollouts.jsonl from "
                           "`resetrl train`) or a compare folder (results.json from `resetrl compare`)")
    raise ResetRLError(f"{folder}: not a run folder (no metrics.jsonl or rollouts.jsonl) "
                       "nor a compare folder (no results.json)")


def read_config(run_dir: Path) -> dict:
    """config.yaml as written (not validated: an older run's config must still display)."""
    path = run_dir / "config.yaml"
    try:
        data = yaml.safe_load(path.read_text()) if path.exists() else {}
    except yaml.YAMLError as error:
        raise ResetRLError(f"{path}: not valid YAML: {error}") from None
    return data if isinstance(data, dict) else {}


def _task_problems(config: dict) -> tuple[object | None, dict, str | None]:
    """(task, train problems by id, why not) for the questions and the first errors of every chain.
    Best effort: a task that cannot be rebuilt here leaves the page without them, with the reason."""
    task_config = config.get("task") or {}
    try:
        from resetrl.tasks import Task, create_task

        task = create_task(task_config["name"], **(task_config.get("options") or {}))
        problems = task.problems("train", task_config.get("train_size"), task_config.get("seed", 0))
        knows_errors = type(task).first_error is not Task.first_error
        return (task if knows_errors else None), {p.id: p for p in problems}, None
    except Exception as error:  # noqa: BLE001 - any failure only costs the page its questions
        return None, {}, f"questions not shown: task {task_config.get('name')!r} could not be rebuilt ({error})"


ROW_FIELDS = ("kind", "group_id", "thoughts", "answer", "reward", "advantage", "reset_step", "reset_source",
              "first_error", "localization", "suffix_start", "new_tokens", "stop_reason",
              "shaped_reward", "follows", "tree_path", "segment_advantages")


def build_items(rows: list[dict], run_index: int, task=None, problems: dict | None = None) -> list[dict]:
    """Rollout rows -> explorer items, one per (step, problem), in order. Each reset continuation gets
    `parent`: the index of its parent among the item's parents (matched in order on the reset step,
    the order rollout.py creates them in); each chain gets the task's first error where it knows it."""
    problems = problems or {}
    by_key: dict[tuple, list[dict]] = defaultdict(list)
    for row in rows:
        by_key[(row.get("step", 0), row.get("problem_id", "?"))].append(row)
    items = []
    for (step, problem_id), chains in by_key.items():
        kept = [{key: row.get(key) for key in ROW_FIELDS} for row in chains]
        problem = problems.get(problem_id)
        if task is not None and problem is not None:
            for chain in kept:
                if chain["first_error"] is None:
                    chain["first_error"] = task.first_error(problem, chain["thoughts"] or [])
        _match_parents(kept)
        trained = [c for c in kept if c["group_id"] is not None and c["reward"] is not None]
        rewards = [c["reward"] for c in trained]
        by_group = defaultdict(set)
        for chain in trained:
            by_group[chain["group_id"]].add(chain["reward"])
        items.append({
            "run": run_index, "step": step, "problem": problem_id,
            "question": problem.question if problem else None, "gold": problem.answer if problem else None,
            "reward": sum(rewards) / len(rewards) if rewards else None,
            "max_reward": max(rewards) if rewards else None,
            # a group whose advantages are not all 0 (SCoRe's unnormalised ones: any non-zero)
            "signal": any(len(values) > 1 for values in by_group.values()) or any(c["advantage"] for c in trained),
            "sources": sorted({c["reset_source"] for c in kept if c["kind"] == "parent" and c["reset_source"]}),
            "chains": kept,
        })
    return items


def _match_parents(chains: list[dict]) -> None:
    parents = [c for c in chains if c["kind"] == "parent"]
    # Reset continuations in record order, cut into runs of one group and one reset step: one per parent.
    blocks: list[list[dict]] = []
    for chain in (c for c in chains if c["kind"] == "reset"):
        if blocks and (blocks[-1][0]["group_id"], blocks[-1][0]["reset_step"]) == (chain["group_id"], chain["reset_step"]):
            blocks[-1].append(chain)
        else:
            blocks.append([chain])
    for index, parent in enumerate(parents):
        block = next((b for b in blocks if "parent" not in b[0] and b[0]["reset_step"] == parent["reset_step"]), None)
        for chain in block or []:
            chain["parent"] = index


def run_data(run_dir: Path, run_index: int = 0, name: str | None = None, with_rollouts: bool = True) -> dict:
    """One run for the page: its config, metrics and (optionally) explorer items."""
    config = read_config(run_dir)
    metrics = read_jsonl(run_dir / "metrics.jsonl")
    run = {"name": name or run_dir.name, "method": config.get("method", "?"), "config": config,
           "metrics": metrics, "notes": []}
    items = []
    if with_rollouts:
        rows = read_jsonl(run_dir / "rollouts.jsonl")
        task, problems, why_not = _task_problems(config) if rows else (None, {}, None)
        if why_not:
            run["notes"].append(why_not)
        items = build_items(rows, run_index, task, problems)
    return {"run": run, "items": items}


def compare_runs(folder: Path) -> tuple[dict, list[tuple[str, str, Path]]]:
    """results.json and its runs as (series, method, run folder), in the order compare ran them."""
    from resetrl.outputs import RunSpec

    try:
        results = json.loads((folder / "results.json").read_text())
    except json.JSONDecodeError as error:
        raise ResetRLError(f"{folder / 'results.json'}: not valid JSON ({error})") from None
    runs = []
    for entry in results.get("runs", []):
        spec = RunSpec(entry["method"], entry["seed"], entry.get("label", ""), tuple(entry.get("overrides", ())))
        runs.append((spec.series, spec.method, folder / "runs" / spec.folder_name))
    return results, runs

"""Run every CRI scenario with the runc and skiff handlers and print what each did, as a Markdown table.

    PYTHONPATH=. .venv/bin/python -m tests.cri.report [SCENARIO...]

One private containerd (tests/cri/node.py) serves both handlers, in the same run. A cell is the
step's observation, or FAIL and the error that stopped the scenario (its later steps: not reached).
The table in docs/kubernetes.md is this script's output.
"""

from __future__ import annotations

import secrets
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from tests.cri.node import HANDLERS, CriNode, cri_node  # noqa: E402
from tests.cri.scenarios import SCENARIOS, Steps  # noqa: E402
from tests.dockerd import remove_cgroup  # noqa: E402


def run_all(node: CriNode, names: list[str]) -> dict[str, dict[str, list[tuple[str, str]]]]:
    """handler -> scenario -> [(step, seen)]; a failed step is seen as 'FAIL: error'."""
    results: dict[str, dict[str, list[tuple[str, str]]]] = {}
    for handler in HANDLERS:
        results[handler] = {}
        for name in names:
            scenario = SCENARIOS[name]
            steps = Steps()
            try:
                scenario(node, handler, steps)
            except Exception as error:  # noqa: BLE001 (the table shows it)
                message = str(error).replace("\n", " ").replace("|", "/")
                step = message.split(":", 1)[0] if isinstance(error, AssertionError) else type(error).__name__
                steps.done.append((step if step in message else name, f"FAIL: {message[:300]}"))
                node.remove_everything()
            results[handler][name] = steps.done
    return results


def table(results: dict[str, dict[str, list[tuple[str, str]]]]) -> str:
    rows = ["| scenario | step | " + " | ".join(HANDLERS) + " |", "|---|---|" + "---|" * len(HANDLERS)]
    for name in results[HANDLERS[0]]:
        order: list[str] = []
        for handler in HANDLERS:
            order += [step for step, _ in results[handler][name] if step not in order]
        for step in order:
            cells = [dict(results[h][name]).get(step, "not reached").replace("|", "\\|") for h in HANDLERS]
            rows.append(f"| {name} | {step} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def main(names: list[str]) -> int:
    cgroup_root = f"skiff-cri-report-{secrets.token_hex(3)}"
    with tempfile.TemporaryDirectory(prefix="skiff-cri-") as tmp:
        base = Path(tmp)
        tar = base / "busybox.tar"
        subprocess.run([str(REPO / "scripts" / "busybox-rootfs"), str(tar)], check=True)
        try:
            with cri_node(base / "cri", tar, cgroup_root) as node:
                results = run_all(node, names or list(SCENARIOS))
        finally:
            remove_cgroup(f"/{cgroup_root}")
    print(table(results))
    return 0 if all(not seen.startswith("FAIL") for h in results.values() for s in h.values() for _, seen in s) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""`worker.py`'s own supervisor against `rq worker-pool`: deliveries/s and memory.

    .venv/bin/python scripts/bench_workers.py [--count N] [--rounds R]

Same machine, same database and endpoint, same number of processes (1 and 2),
runs alternated. Memory is that of the whole process tree (supervisor and its
worker processes) after the run: resident (RSS, shared pages counted in each
process) and proportional (PSS, shared pages split). Prints one line per run
and a summary (medians).
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scripts import proctree  # noqa: E402 (after the path is set)
from scripts.bench import BIN, Env, wait_count  # noqa: E402


def command(supervisor: str, processes: int, env: Env) -> list[str]:
    if supervisor == "worker.py":
        return [sys.executable, str(ROOT / "worker.py"), "--concurrency", str(processes)]
    return [
        str(BIN / "rq"),
        "worker-pool",
        "-u",
        env.env["REDIS_URL"],
        "-n",
        str(processes),
        "-w",
        "scripts.benchlib.pool_worker.Worker",
        "formhooks",
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=6000, help="pending logs per run")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    env = Env()
    results: dict[tuple[str, int], list[tuple[float, float, float]]] = {}
    try:
        url = env.endpoint()
        _, _, hook_ids = env.form(url)
        for _ in range(args.rounds):
            for processes in (1, 2):
                for supervisor in ("worker.py", "rq worker-pool"):
                    log_ids = env.pending_logs(hook_ids, args.count)
                    proc = env.spawn(command(supervisor, processes, env))
                    env.wait_ready(processes)
                    done = env.count("success")
                    env.push(log_ids)
                    seconds = wait_count(env, "success", done + args.count, timeout=600)
                    memory = proctree.total_memory(proctree.tree(proc.pid))
                    rss, pss = memory.rss_kb / 1024, memory.pss_kb / 1024
                    proc.terminate()
                    proc.wait(30)
                    env.processes.remove(proc)
                    rate = args.count / seconds
                    results.setdefault((supervisor, processes), []).append((rate, rss, pss))
                    print(
                        f"{supervisor:>15} x{processes}: {rate:6.0f} deliveries/s, {rss:6.1f} MB"
                        f" RSS, {pss:6.1f} MB PSS",
                        flush=True,
                    )
    finally:
        env.close()
    print("medians:")
    for (supervisor, processes), runs in results.items():
        rate, rss, pss = (statistics.median(run[i] for run in runs) for i in range(3))
        print(
            f"  {supervisor:>15} x{processes}: {rate:6.0f} deliveries/s, "
            f"{rss:6.1f} MB RSS, {pss:6.1f} MB PSS"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Multiruns: each job leaves a record in the sweep directory; at the end a manifest lists the jobs (their
run ids, status, value) and the reports of every swept paper and scale are refreshed once."""

import json
import os
import sys
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig


def record_job(cfg: DictConfig, command: str, result: object, error: BaseException | None) -> None:
    """Called in a multirun job (any launcher): write <sweep dir>/jobs/<num>.json."""
    from hydra.core.hydra_config import HydraConfig

    hydra = HydraConfig.get()
    jobs = Path(hydra.sweep.dir) / "jobs"
    jobs.mkdir(parents=True, exist_ok=True)
    from repro.core import store

    record = {"num": hydra.job.num, "command": command, "paper": str(cfg.paper.slug), "scale": str(cfg.scale.name),
              "overrides": list(hydra.overrides.task), "results_dir": str(cfg.results_dir),
              "run_id": store.run_id(cfg), "status": "failed" if error else "done",
              "error": f"{type(error).__name__}: {error}" if error else None,
              "value": result if isinstance(result, float) else None}
    tmp = jobs / f".{hydra.job.num}.{os.getpid()}.tmp"
    tmp.write_text(json.dumps(record, indent=2, default=str))
    tmp.replace(jobs / f"{hydra.job.num}.json")


class SweepManifest(Callback):
    """Hydra callback (conf/config.yaml): the sweep's manifest.json and refreshed reports."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        records = [json.loads(p.read_text()) for p in sorted((sweep_dir / "jobs").glob("*.json"))]
        if not records:
            return
        records.sort(key=lambda r: r["num"])
        (sweep_dir / "manifest.json").write_text(json.dumps({"jobs": records}, indent=2) + "\n")
        failed = [r for r in records if r["status"] != "done"]
        print(f"sweep: {len(records) - len(failed)} of {len(records)} jobs done; "
              f"manifest {sweep_dir / 'manifest.json'}")
        for r in failed:
            print(f"  job {r['num']} failed ({' '.join(r['overrides'])}): {r['error']}")
        swept = {(r["paper"], r["scale"], r["results_dir"]) for r in records
                 if r["status"] == "done" and r["command"] == "train"}
        if swept:
            from hydra import compose

            from repro.core.report import refresh

            for paper, scale, results_dir in sorted(swept):
                cfg = compose("config", overrides=[f"paper={paper}", f"scale={scale}", f"results_dir={results_dir}"])
                report = refresh(cfg, draw=True)
                print(f"{paper} ({scale}): table and verdicts refreshed in {report.paths[-1].parent}")
        if failed:
            sys.exit(1)

"""One generic suite over every registered paper (conf/paper/*.yaml): one broken paper is one red test.

- integrity: the config composes at every scale, the package is named after the slug, its grid of units is
  valid at every scale, its figures resolve, its claims are well formed and every unit column a claim
  selects on (experiment, method, setting) takes values the grid of that scale has;
- smoke: `repro train paper=<slug> scale=smoke`, rows are finite where numeric, every claim of the smoke
  scale is evaluable (never "not run" for a missing column), figures draw, and a second run of the same
  config and seed gives the same rows (wall-clock columns aside).
"""

import importlib
import json
import math

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf

from repro import CONF_DIR
from repro.core.claims import NOT_RUN, claim_scales, evaluate_claims, validate_claim, wheres
from repro.core.registry import figure_functions
from repro.core.runner import paper_module, paper_units
from repro.core.store import is_timing_column, read_unit
from tests.helpers import PAPERS, children_cpu_seconds, compose_config, repro, rows_of, run_dirs


@pytest.mark.parametrize("scale", ["smoke", "cpu", "paper"])
@pytest.mark.parametrize("slug", PAPERS)
def test_config_integrity(slug: str, scale: str) -> None:
    cfg = compose_config([f"paper={slug}", f"scale={scale}"])
    assert cfg.paper.slug == slug
    assert cfg.paper.title and cfg.paper.field
    assert str(cfg.paper.task).startswith(f"repro.papers.{slug}."), "the package must be named after the slug"
    assert cfg.paper.get("optimized_metric") is not None, "declare optimized_metric for sweepers"
    grid = paper_units(cfg, paper_module(cfg.paper))
    assert figure_functions(cfg.paper), f"{slug} declares no figures"
    claims = OmegaConf.to_container(cfg.paper.claims, resolve=True)
    assert claims, f"{slug} declares no claims"
    assert len({c["id"] for c in claims}) == len(claims), "claim ids must be unique"
    # Columns the grid fixes (a unit's rows may refine `method`, so it is not checked here).
    columns = {"experiment": {u.experiment for u in grid}}
    for u in grid:
        for key, value in u.setting:
            columns.setdefault(key, set()).add(str(value))
    for claim in claims:
        validate_claim(claim)
        if claim_scales(claim) is not None and scale not in claim_scales(claim):
            continue
        for where in wheres(claim["check"]):
            for key in set(where or {}) & set(columns):
                values = where[key] if isinstance(where[key], list) else [where[key]]
                missing = {str(v) for v in values} - columns[key]
                assert not missing, f"claim {claim['id']} selects {key}={sorted(missing)}, absent from the {scale} grid"
    for spec in OmegaConf.to_container(cfg.paper.get("tables", []), resolve=True):
        assert {"name", "index", "metrics"} <= set(spec)


# The smoke and dry bars are 20 s on 2 cores. It is checked on CPU time, which a machine shared with other jobs inflates
# far less than wall time; the wall-clock timeout only catches a hang.
SMOKE_CPU_S = 40


@pytest.mark.timeout(1800)
@pytest.mark.parametrize("slug", PAPERS)
def test_smoke_run(slug: str, results_dir, tmp_path) -> None:
    before = children_cpu_seconds()
    repro("train", f"paper={slug}", "scale=smoke", f"results_dir={results_dir}", timeout=850)
    cpu = children_cpu_seconds() - before
    assert cpu < SMOKE_CPU_S, f"the smoke run took {cpu:.0f} CPU-s (bar: 20 s on 2 cores, {SMOKE_CPU_S} CPU-s)"
    (run_dir,) = run_dirs(results_dir, slug)
    rows = rows_of(run_dir)
    numeric = rows.select_dtypes("number").to_numpy(dtype=float)
    assert not np.isinf(numeric).any(), "rows hold inf"
    assert len(rows) > 0
    assert {"experiment", "unit", "unit_time_s", "replicate"} <= set(rows.columns)
    cfg = compose_config([f"paper={slug}", "scale=smoke"])
    claims = OmegaConf.to_container(cfg.paper.claims, resolve=True)
    for verdict in evaluate_claims(claims, rows.assign(run_id=run_dir.name), "smoke"):
        claim = next(c for c in claims if c["id"] == verdict.id)
        if claim_scales(claim) is None or "smoke" in claim_scales(claim):
            assert verdict.status != NOT_RUN, f"claim {verdict.id} not evaluable at smoke: {verdict.ours}"
    for name, draw in figure_functions(cfg.paper).items():
        fig = draw(rows)
        assert fig.axes, f"figure {name} has no axes"
        assert not math.isnan(fig.get_size_inches()[0])
        plt.close(fig)

    # The last unit again, alone in a fresh process: its rows must not depend on the units run before it
    # (the framework seeds each unit from its name) nor on anything else left from the first run.
    last = str(rows["unit"].iloc[-1])
    repro("train", f"paper={slug}", "scale=smoke", f"unit='{last}'", f"results_dir={tmp_path / 'again'}",
          timeout=850)
    (again,) = run_dirs(tmp_path / "again", slug)
    alone = pd.DataFrame(read_unit(again / "units" / (last.replace("/", "__") + ".csv")))
    expected = rows[rows["unit"].astype(str) == last].dropna(axis=1, how="all").reset_index(drop=True)
    measured = [c for c in expected.columns if not is_timing_column(c) and c in alone.columns]
    assert len(measured) > 1 and len(alone) == len(expected)
    pd.testing.assert_frame_equal(alone[measured], expected[measured], check_exact=True, check_dtype=False)


@pytest.mark.timeout(900)
@pytest.mark.parametrize("slug", PAPERS)
def test_dry_run(slug: str, tmp_path) -> None:
    """The paper scale's own path (real loaders, the paper's architecture) on small files in the real format,
    written by the paper's test module (``write_dry_data(data_dir)``), lengths shrunk by its dry.yaml."""
    assert (CONF_DIR / "paper_scale" / slug / "dry.yaml").exists(), (
        f"{slug} needs conf/paper_scale/{slug}/dry.yaml (or one with dry_skip: <reason>)")
    cfg = compose_config([f"paper={slug}", "scale=dry"])
    if cfg.paper.get("dry_skip"):
        pytest.skip(str(cfg.paper.dry_skip))
    writer = getattr(importlib.import_module(f"tests.test_{slug}"), "write_dry_data", None)
    assert writer is not None, f"tests/test_{slug}.py must define write_dry_data(data_dir)"
    data_dir, results_dir = tmp_path / "data", tmp_path / "results"
    writer(data_dir)
    before = children_cpu_seconds()
    done = repro("train", f"paper={slug}", "scale=dry", f"data_dir={data_dir}", f"results_dir={results_dir}",
                 timeout=850)
    cpu = children_cpu_seconds() - before
    assert cpu < SMOKE_CPU_S, f"the dry run took {cpu:.0f} CPU-s (bar: 20 s on 2 cores, {SMOKE_CPU_S} CPU-s)"
    (run_dir,) = run_dirs(results_dir, slug)
    rows = rows_of(run_dir)
    assert len(rows) > 0 and "Traceback" not in done.stderr
    status = json.loads((run_dir / "status.json").read_text())
    assert status["status"] == "done"

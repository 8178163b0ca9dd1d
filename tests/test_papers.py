"""One generic suite over every registered paper (conf/paper/*.yaml): one broken paper is one red test.

- integrity: the config composes at every scale, its task and figures resolve, its claims are well formed
  (no code runs);
- smoke: `repro train paper=<slug> scale=smoke`, rows are finite where numeric, every claim is evaluable
  (holds or does not hold, never "not run" because a column is missing), figures draw, and a second run of the
  same config and seed gives the same rows (wall-clock columns aside).
"""

import math

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from hydra.utils import get_method
from omegaconf import OmegaConf

from repro.core.claims import FAILS, HOLDS, evaluate_claims, validate_claim
from repro.core.registry import figure_functions
from repro.core.store import is_timing_column
from tests.helpers import PAPERS, compose_config, repro, rows_of, run_dirs


@pytest.mark.parametrize("scale", ["smoke", "cpu", "paper"])
@pytest.mark.parametrize("slug", PAPERS)
def test_config_integrity(slug: str, scale: str) -> None:
    cfg = compose_config([f"paper={slug}", f"scale={scale}"])
    assert cfg.paper.slug == slug
    assert cfg.paper.title and cfg.paper.field
    assert callable(get_method(cfg.paper.task._target_))
    assert figure_functions(cfg.paper), f"{slug} declares no figures"
    claims = OmegaConf.to_container(cfg.paper.claims, resolve=True)
    assert claims, f"{slug} declares no claims"
    assert len({c["id"] for c in claims}) == len(claims), "claim ids must be unique"
    for claim in claims:
        validate_claim(claim)
    for spec in OmegaConf.to_container(cfg.paper.get("tables", []), resolve=True):
        assert {"name", "index", "metrics"} <= set(spec)


@pytest.mark.parametrize("slug", PAPERS)
def test_smoke_run(slug: str, results_dir, tmp_path) -> None:
    repro("train", f"paper={slug}", "scale=smoke", f"results_dir={results_dir}", timeout=120)
    (run_dir,) = run_dirs(results_dir, slug)
    rows = rows_of(run_dir)
    numeric = rows.select_dtypes("number").to_numpy(dtype=float)
    assert not np.isinf(numeric).any(), "rows hold inf"
    assert len(rows) > 0
    cfg = compose_config([f"paper={slug}", "scale=smoke"])
    claims = OmegaConf.to_container(cfg.paper.claims, resolve=True)
    scale_only = {c["id"] for c in claims if c.get("scale") == "paper"}
    for verdict in evaluate_claims(claims, rows.assign(run_id=run_dir.name)):
        if verdict.id not in scale_only:
            assert verdict.status in (HOLDS, FAILS), f"claim {verdict.id} not evaluable at smoke: {verdict.ours}"
    for name, draw in figure_functions(cfg.paper).items():
        fig = draw(rows)
        assert fig.axes, f"figure {name} has no axes"
        assert not math.isnan(fig.get_size_inches()[0])
        plt.close(fig)

    repro("train", f"paper={slug}", "scale=smoke", f"results_dir={tmp_path / 'again'}", timeout=120)
    (again,) = run_dirs(tmp_path / "again", slug)
    measured = [c for c in rows.columns if not is_timing_column(c)]
    pd.testing.assert_frame_equal(rows_of(again)[measured], rows[measured], check_exact=True)

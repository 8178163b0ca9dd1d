"""The grid of an experiment: named units of work that the framework runs, caches, seeds and resumes.

A paper declares its grid with ``units(cfg) -> list[Unit]`` and writes the body of one unit,
``run_unit(cfg, ctx, unit) -> list[dict]``. A unit is a point of the grid: which sub-experiment, which
method, which setting (a small dict such as ``{"n": 100}``) and, for stochastic units, which replicate.
The framework expands each stochastic unit over the scale's replicates; a deterministic unit (an exact
computation, a closed form) runs once with replicate 0.
"""

import fnmatch
import itertools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

from repro.core.errors import ConfigError

# Columns the framework adds to every row; a paper's rows may repeat them only with the same value.
UNIT_COLUMNS = ("experiment", "method", "replicate", "unit", "unit_time_s", "converged")
_SAFE = re.compile(r"^[A-Za-z0-9_.+\-]+$")


@dataclass(frozen=True)
class Unit:
    """One point of a paper's grid.

    ``setting`` holds the swept values of this point (they become columns of its rows);
    ``stochastic=False`` marks a unit whose result does not depend on the seed (it is run once).
    """

    experiment: str
    method: str = "-"
    setting: tuple[tuple[str, object], ...] = ()
    replicate: int = 0
    stochastic: bool = True

    @property
    def settings(self) -> dict[str, object]:
        return dict(self.setting)

    @property
    def name(self) -> str:
        """experiment/method/key=value,.../r<replicate>: the address used by ``unit=<glob>``."""
        setting = ",".join(f"{k}={v}" for k, v in self.setting) or "-"
        return f"{self.experiment}/{self.method}/{setting}/r{self.replicate}"

    @property
    def file_stem(self) -> str:
        return self.name.replace("/", "__")

    def columns(self) -> dict[str, object]:
        return {"experiment": self.experiment, "method": self.method, **self.settings, "replicate": self.replicate}


def unit(experiment: str, method: str = "-", stochastic: bool = True, **setting: object) -> Unit:
    """A unit with its setting given as keywords: ``unit("scaling", "krr", n=100)``."""
    return Unit(experiment, str(method), tuple(setting.items()), 0, stochastic)


def grid(experiment: str, methods: Iterable[str] = ("-",), stochastic: bool = True,
         **settings: Iterable[object]) -> list[Unit]:
    """Every method at every combination of the settings' values (a Cartesian product), in order."""
    keys = list(settings)
    combos = itertools.product(*(list(settings[k]) for k in keys)) if keys else [()]
    return [Unit(experiment, str(m), tuple(zip(keys, values)), 0, stochastic)
            for values in combos for m in methods]


def expand(units: list[Unit], replicates: int) -> list[Unit]:
    """Each stochastic unit once per replicate (replicates of a unit stay together, in grid order)."""
    return [replace(u, replicate=r) for u in units for r in (range(replicates) if u.stochastic else [0])]


def validate(units: list[Unit], known_methods: Mapping | Iterable[str] | None, slug: str) -> None:
    """Names that can address a file and a glob, known methods, no duplicates; raised before any work."""
    if not units:
        raise ConfigError(f"{slug}: the configuration gives an empty grid of units; check paper.methods and "
                          "the paper's settings")
    seen = set()
    for u in units:
        for part in (u.experiment, u.method, *(k for k, _ in u.setting), *(str(v) for _, v in u.setting)):
            if not _SAFE.match(part):
                raise ConfigError(f"{slug}: unit name part {part!r} of {u.name} must be letters, digits or _.+-")
        for key, _ in u.setting:
            if key in UNIT_COLUMNS:
                raise ConfigError(f"{slug}: setting {key!r} of {u.name} reuses a framework column {UNIT_COLUMNS}")
        if u.name in seen:
            raise ConfigError(f"{slug}: unit {u.name} appears twice in the grid")
        seen.add(u.name)
    if known_methods is not None:
        known = set(known_methods)
        unknown = sorted({u.method for u in units} - known - {"-"})
        if unknown:
            raise ConfigError(f"{slug}: unknown method(s) {unknown} (paper.methods); choose from {sorted(known)}")


def select(units: list[Unit], pattern: str | None, slug: str) -> list[Unit]:
    """The units whose name matches the glob (``unit=cycles/spe/*``); all when no pattern is given."""
    if pattern is None:
        return units
    chosen = [u for u in units if fnmatch.fnmatchcase(u.name, pattern)]
    if not chosen:
        names = ", ".join(u.name for u in units[:8]) + (" ..." if len(units) > 8 else "")
        raise ConfigError(f"unit={pattern!r} matches none of {slug}'s {len(units)} units ({names}); "
                          "use a glob over experiment/method/setting/r<replicate>")
    return chosen

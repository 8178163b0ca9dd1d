"""repro: reproduce the experiments of machine-learning papers from one command line.

Importing this package is cheap: it never imports torch or a paper's dependencies.
"""

from pathlib import Path

from omegaconf import OmegaConf

PACKAGE = Path(__file__).resolve().parent
# In a checkout (editable install) the repository root; installed from a wheel, the current directory,
# so that results/ and data/ never land inside site-packages.
ROOT = PACKAGE.parent if (PACKAGE.parent / "pyproject.toml").exists() else Path.cwd()
CONF_DIR = PACKAGE / "conf"

# `${repro_root:}` lets configs place results/ and data/ at the repository root whatever the cwd.
if not OmegaConf.has_resolver("repro_root"):
    OmegaConf.register_new_resolver("repro_root", lambda: str(ROOT))

__version__ = "0.1.0"

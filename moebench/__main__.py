"""`python -m moebench +experiment=NAME [overrides]`: run an experiment from Hydra configs.

Overrides are checked before Hydra starts (group choices, keys, types, values), so a typo
ends in one line that names the bad key and what is allowed, never a traceback.
"""

from __future__ import annotations

import sys

import hydra
from omegaconf import DictConfig, OmegaConf

from moebench.cli import CONF_DIR, check_arguments
from moebench.config import load_run_config
from moebench.errors import UserError, exit_with


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="config")
def main(cfg: DictConfig) -> None:
    from moebench.runner import execute  # heavy imports after argument checks

    try:
        run = load_run_config(OmegaConf.to_container(cfg, resolve=True))
        execute(run)
    except UserError as err:
        exit_with(err)


if __name__ == "__main__":
    try:
        check_arguments(sys.argv[1:])
    except UserError as err:
        exit_with(err)
    main()

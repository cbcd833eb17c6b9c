"""Every experiment config composes, and every point of its sweep validates."""

import itertools

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf

from moebench.cli import CONF_DIR, _values, group_options
from moebench.config import load_run_config


def points(experiment: str) -> list[list[str]]:
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=[f"+experiment={experiment}"], return_hydra_config=True)
    raw = cfg.hydra.sweeper.get("params")
    params = OmegaConf.to_container(raw) if raw else {}
    parsed = OverridesParser.create().parse_overrides(
        [f"{key}={values}" for key, values in params.items()]
    )
    axes = [
        [f"{ov.get_key_element()}={value}" for value in _values(ov)] for ov in parsed
    ]  # keeps a "+"
    return [list(combo) for combo in itertools.product(*axes)] or [[]]


@pytest.mark.parametrize("experiment", group_options("experiment"))
def test_experiment_composes_and_validates(experiment):
    for overrides in points(experiment):
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            cfg = compose("config", overrides=[f"+experiment={experiment}", *overrides])
        run = load_run_config(OmegaConf.to_container(cfg, resolve=True))
        # an experiment may add points to another one's records (prism_ppl_dsv2 -> prism_ppl)
        assert experiment.startswith(run.experiment)

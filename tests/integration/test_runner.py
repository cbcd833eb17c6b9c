"""Record lifecycle in-process: a crash leaves a failure marker and never a result."""

import json

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from moebench import runner
from moebench.cli import CONF_DIR
from moebench.config import load_run_config
from moebench.records import run_dir


def debug_config(results_dir, *overrides):
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(
            "config", overrides=["+experiment=debug", f"results_dir={results_dir}", *overrides]
        )
    return load_run_config(OmegaConf.to_container(cfg, resolve=True))


def test_crash_mid_run_leaves_failure_marker_and_no_result(results_dir, monkeypatch):
    cfg = debug_config(results_dir)

    def crash(*_args, **_kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(runner, "latency_metrics", crash)
    with pytest.raises(RuntimeError):
        runner.execute(cfg)
    folder = run_dir(cfg)
    assert not (folder / "result.json").exists()
    assert "disk on fire" in json.loads((folder / "failed.json").read_text())["error"]

    monkeypatch.undo()
    assert runner.execute(cfg) is not None  # a later good run replaces the marker
    assert not (folder / "failed.json").exists()


def test_broken_mirror_never_loses_the_record(results_dir, monkeypatch, capsys):
    cfg = debug_config(results_dir, "logger=wandb")
    import wandb

    def broken(*_a, **_k):
        raise ConnectionError("no route to host")

    monkeypatch.setattr(wandb, "init", broken)
    path = runner.execute(cfg)
    assert path.exists()
    assert "mirror failed" in capsys.readouterr().err


def test_wandb_offline_mirror_writes_locally(results_dir, monkeypatch):
    monkeypatch.setenv("WANDB_SILENT", "true")
    cfg = debug_config(results_dir, "logger=wandb")
    path = runner.execute(cfg)
    assert list((path.parent / "wandb").glob("offline-run-*"))


def test_a_killed_run_leaves_no_empty_record_folder(results_dir, monkeypatch):
    """The folder check before the run does not leave the folder behind: a run killed before
    it writes (SIGKILL, no failure marker) leaves nothing under results/."""
    cfg = debug_config(results_dir)
    seen = []

    def killed(*_args, **_kwargs):
        seen.append(run_dir(cfg).exists())  # what a kill at this moment would leave
        raise RuntimeError("killed")

    monkeypatch.setattr(runner, "latency_metrics", killed)
    with pytest.raises(RuntimeError):
        runner.execute(cfg)
    assert seen == [False]


def test_an_unwritable_results_folder_fails_before_the_run(tmp_path):
    (tmp_path / "file").write_text("not a folder")
    cfg = debug_config(tmp_path / "file" / "results")
    with pytest.raises(runner.ConfigError, match="results_dir"):
        runner.execute(cfg)

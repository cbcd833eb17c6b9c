"""Check command-line overrides before Hydra runs, and say what is wrong in one line.

Hydra's own messages for a bad group option or key span several lines (and a traceback
for a bad value), so every override - each value of a sweep too - is composed and
validated here first.
"""

from __future__ import annotations

from hydra import compose, initialize_config_dir
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from moebench.config import RunConfig, load_run_config
from moebench.errors import ConfigError, UserError
from moebench.methods.registry import check_method
from moebench.paths import CONF_DIR  # noqa: F401 - re-exported for the entry points

if not OmegaConf.has_resolver("minus"):  # e.g. method.budget_gb: ${minus:${hardware.memory_gb},1}
    OmegaConf.register_new_resolver("minus", lambda a, b: a - b)

GROUPS = ("model", "hardware", "method", "workload", "eval", "logger", "experiment", "speq_point")


def group_options(group: str) -> list[str]:
    """Names of the YAML files in conf/<group>/."""
    return sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml"))


def _values(override) -> list[str]:
    if override.is_sweep_override():
        return [str(v) for v in override.sweep_string_iterator()]
    return [override.get_value_element_as_str()]


def _one_line(err: Exception) -> str:
    return "; ".join(line.strip() for line in str(err).splitlines() if line.strip())


def check_arguments(argv: list[str]) -> None:
    """Raise `UserError` for the first bad override in `argv` (Hydra flags are skipped)."""
    # Overrides have "=" (or start with "~"); flag values such as `--cfg job` do not.
    args = [a for a in argv if not a.startswith("-") and ("=" in a or a.startswith("~"))]
    try:
        overrides = OverridesParser.create().parse_overrides(args)
    except HydraException as err:
        raise UserError(f"cannot parse overrides: {_one_line(err)}") from None
    for ov in overrides:
        group = ov.key_or_group.lstrip("+~")
        if group in GROUPS and not ov.is_delete():
            allowed = group_options(group)
            for value in _values(ov):
                if value not in allowed:
                    raise ConfigError(group, value, "one of " + ", ".join(allowed))
    first = [_first_value(ov) for ov in overrides]
    variants = [first]
    for i, ov in enumerate(overrides):
        if ov.is_sweep_override():
            variants += [first[:i] + [_with_value(ov, v)] + first[i + 1 :] for v in _values(ov)[1:]]
    for variant in variants:
        validate(variant)


def _with_value(override, value: str) -> str:
    prefix = {"ADD": "+", "FORCE_ADD": "++", "DEL": "~"}.get(override.type.name, "")
    return f"{prefix}{override.key_or_group}={value}"


def _first_value(override) -> str:
    if override.is_sweep_override():
        return _with_value(override, _values(override)[0])
    return override.input_line


def compose_run_config(overrides: list[str]) -> RunConfig:
    """The validated RunConfig that these (non-sweep) overrides compose to."""
    try:
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            cfg = compose(config_name="config", overrides=overrides)
        data = OmegaConf.to_container(cfg, resolve=True)
    except (HydraException, OmegaConfBaseException) as err:
        raise UserError(f"config error: {_one_line(err)}") from None
    return load_run_config(data)


def validate(overrides: list[str]) -> None:
    """Compose the config with these (non-sweep) overrides and validate it, the method's
    options included (methods/registry.py), before any model is built."""
    check_method(compose_run_config(overrides))

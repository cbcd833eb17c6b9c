"""The typed method options: every committed record's options still validate, defaults live
in one place, and `typed.build` reads choices and lists from the hints."""

import json
from dataclasses import fields

import pytest

from moebench.errors import ConfigError
from moebench.methods.options import SpeqOptions
from moebench.methods.registry import METHODS, options_of
from moebench.paths import REPO_ROOT


def committed_configs():
    for path in sorted(REPO_ROOT.glob("results/**/*.json")):
        if path.name in ("result.json", "eval.json"):
            record = json.loads(path.read_text())
            if "config" in record:
                yield path, record["config"]["method"]


def test_every_committed_record_options_validate():
    seen = set()
    for path, method in committed_configs():
        try:
            options_of(method["name"], method["options"])
        except ConfigError as err:
            pytest.fail(f"{path}: {err}")
        seen.add(method["name"])
    assert seen >= {"speq", "prism", "topk", "cloud", "mixtral_offloading", "next_layer_prefetch"}


def test_every_method_default_builds():
    for name, entry in METHODS.items():
        assert options_of(name, {}) == entry.options()


@pytest.mark.parametrize(
    "options,key",
    [
        ({"draft_bits": 9}, "draft_bits"),
        ({"k_min": 3, "k_max": 2}, "k_max"),
        ({"prefetch": "sometimes"}, "prefetch"),
        ({"draft": "int8"}, "draft"),
        ({"k_mn": 1}, "k_mn"),
    ],
)
def test_speq_bad_options_name_their_key(options, key):
    with pytest.raises(ConfigError, match=f"method.options.{key}"):
        options_of("speq", options)


def test_literal_bool_and_string_choices_are_kept_apart():
    assert options_of("speq", {"prefetch": "next_token"}).prefetch == "next_token"
    assert options_of("speq", {"prefetch": False}).prefetch is False
    with pytest.raises(ConfigError):
        options_of("speq", {"prefetch": 1})  # an int is not True


def test_list_items_are_checked():
    assert options_of("prism", {"gate": "cg", "cg_pattern": [2, 1]}).cg_pattern == [2, 1]
    with pytest.raises(ConfigError, match="cg_pattern"):
        options_of("prism", {"cg_pattern": [2, "one"]})


def test_ttft_profile_default_follows_the_objective():
    assert SpeqOptions().resolved_ttft_profile == "online"
    assert SpeqOptions(governor="bytes").resolved_ttft_profile == "offline"
    assert SpeqOptions(governor="bytes", ttft_profile="online").resolved_ttft_profile == "online"


def test_options_are_documented_defaults_not_config_copies():
    """conf/method/*.yaml may only set keys the dataclass knows (checked above through the
    records); every dataclass field has a default, so `{}` is always a valid choice."""
    for entry in METHODS.values():
        assert all(f.default is not f.default_factory for f in fields(entry.options))


def protocol_members(protocol) -> set[str]:
    """Methods and annotated attributes a protocol asks for (its own and its bases')."""
    names = set()
    for base in protocol.__mro__:
        if base.__module__ != "moebench.methods.protocol":
            continue
        names |= {n for n, v in vars(base).items() if callable(v) and not n.startswith("_")}
        names |= set(getattr(base, "__annotations__", {}))
    return names


INSTANCE_ATTRIBUTES = {"steps", "engine"}  # set in __init__, not on the class


def missing_for(cls, kind: str) -> set[str]:
    """What `cls` lacks of the protocol a `kind` run asks of its method."""
    from moebench.methods.protocol import PROTOCOLS

    wanted = protocol_members(PROTOCOLS[kind]) - INSTANCE_ATTRIBUTES
    return {m for m in wanted if not hasattr(cls, m)}


def test_every_method_class_has_what_its_kinds_ask():
    import importlib

    for name, entry in METHODS.items():
        module, _, cls_name = entry.runs.partition(":")
        cls = getattr(importlib.import_module(module), cls_name)
        for kind in entry.kinds:
            missing = missing_for(cls, kind)
            assert not missing, f"{name} ({kind}) lacks {sorted(missing)}"


def test_the_protocol_check_can_fail():
    """A serving class asked to decode, or a class without `serve`, is caught."""
    from moebench.methods.cloud import CloudServing

    class NoServe:
        clock_label = "virtual"

        def details(self):
            return {}

    assert missing_for(NoServe, "serving") == {"serve"}
    assert {"generate", "replay", "metrics", "timeline"} <= missing_for(CloudServing, "decode")

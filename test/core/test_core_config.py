"""config.py: typed dataclass loading, unknown keys rejected with the path named."""
from dataclasses import dataclass, field
from typing import Literal

import pytest

from dexterity_ros.config import ConfigError, from_dict, load_config, param, describe_fields, to_dict


@dataclass(frozen=True)
class Inner:
    gain: float = 1.0
    names: tuple[str, ...] = ("a",)


@dataclass(frozen=True)
class Outer:
    mode: Literal["fast", "slow"] = "fast"
    count: int = 3
    inner: Inner = field(default_factory=Inner)
    limit: float | None = None


def test_nested_values_and_coercion():
    cfg = from_dict(Outer, {"mode": "slow", "count": 5, "inner": {"gain": 2, "names": ["x", "y"]}, "limit": 0.5})
    assert cfg.mode == "slow" and cfg.count == 5
    assert cfg.inner.gain == 2.0 and isinstance(cfg.inner.gain, float)
    assert cfg.inner.names == ("x", "y")
    assert to_dict(cfg)["inner"]["names"] == ["x", "y"]


def test_unknown_key_is_rejected_with_path():
    with pytest.raises(ConfigError, match=r"inner: unknown key\(s\) \['gian'\]"):
        from_dict(Outer, {"inner": {"gian": 2.0}})


@pytest.mark.parametrize("data, message", [
    ({"count": "3"}, "expected an integer"),
    ({"count": True}, "expected an integer"),
    ({"mode": "medium"}, "not one of"),
    ({"inner": {"gain": "high"}}, "expected a number"),
    ({"inner": 3}, "expected a mapping"),
])
def test_wrong_types_are_named(data, message):
    with pytest.raises(ConfigError, match=message):
        from_dict(Outer, data)


@dataclass(frozen=True)
class Checked:
    low: float = 0.0
    high: float = 1.0

    def __post_init__(self) -> None:
        if self.low >= self.high:
            raise ValueError("checked: need low < high")


@dataclass(frozen=True)
class Holder:
    checked: Checked = field(default_factory=Checked)
    other: Checked = field(default_factory=Checked)


def test_a_check_that_names_its_own_section_is_reported_with_the_path_once():
    """`expert: need ...` raised by ExpertConfig read as `expert: need ...`, not `expert: expert: need ...`;
    a section whose check names another word keeps both."""
    with pytest.raises(ConfigError) as caught:
        from_dict(Holder, {"checked": {"low": 2.0}})
    assert str(caught.value) == "checked: need low < high"
    with pytest.raises(ConfigError) as caught:
        from_dict(Holder, {"other": {"low": 2.0}})
    assert str(caught.value) == "other: checked: need low < high"


def test_load_config_names_the_file(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("count: 4\nbogus: 1\n")
    with pytest.raises(ConfigError, match=str(path)):
        load_config(Outer, path)
    path.write_text("count: [unclosed\n")
    with pytest.raises(ConfigError, match="invalid YAML"):
        load_config(Outer, path)
    with pytest.raises(ConfigError, match="not found"):
        load_config(Outer, tmp_path / "missing.yaml")


def test_param_metadata_documents_fields():
    @dataclass(frozen=True)
    class NodeCfg:
        rate: float = param(10.0, "publish rate in Hz", min=0.1)
        profile: str = param("848x480x30", "depth profile", ros_name="depth_module.depth_profile")

    rows = describe_fields(NodeCfg)
    assert rows == [("rate", 10.0, "publish rate in Hz"),
                    ("depth_module.depth_profile", "848x480x30", "depth profile")]


def test_experiment_files_inherit_with_base_and_state_only_what_differs(tmp_path):
    from dexterity_ros.config import ConfigError, load_section_with_base
    from dexterity_ros.learning.config import load_distill_config

    fast = load_distill_config("config/experiments/distill_rotate_one_joints_40.yaml")
    full = load_distill_config("config/experiments/distill_rotate_one_joints.yaml")
    assert fast.train.epochs == 40 and full.train.epochs == 60 and full.student.joint_position_history
    assert fast.objects == full.objects == load_distill_config("config/experiments/distill_rotate_one.yaml").objects
    # nested mappings merge key by key; a cycle and a missing base are clear errors
    (tmp_path / "a.yaml").write_text("distill:\n  base: b.yaml\n  train: {epochs: 3}\n")
    (tmp_path / "b.yaml").write_text("distill:\n  name: b\n  train: {epochs: 9, batch_size: 7}\n")
    assert load_section_with_base(tmp_path / "a.yaml", "distill") == {"name": "b", "train": {"epochs": 3,
                                                                                            "batch_size": 7}}
    (tmp_path / "b.yaml").write_text("distill:\n  base: a.yaml\n")
    with pytest.raises(ConfigError, match="loops"):
        load_section_with_base(tmp_path / "a.yaml", "distill")
    (tmp_path / "c.yaml").write_text("distill:\n  base: missing.yaml\n")
    with pytest.raises(ConfigError, match="not found"):
        load_section_with_base(tmp_path / "c.yaml", "distill")

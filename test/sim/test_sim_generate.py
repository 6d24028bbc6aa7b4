"""dexterity-ros generate: seeded episode bags, resumable without duplicates or corruption."""
import subprocess
import sys

import numpy as np

from dexterity_ros import topics
from dexterity_ros.ros.bags.episode import EPISODE_TOPICS, bag_topic
from dexterity_ros.bags.io import BagReader
from dexterity_ros.ros.messages import deserialize
from dexterity_ros.ros.bags.generate import generate
from dexterity_ros.sim.episodes import PARTIAL_DIR


def actions(path):
    with BagReader(path) as reader:
        return [np.array(deserialize(m.data, m.type_name).position)
                for m in reader.messages([bag_topic(topics.JOINT_TARGETS)])]


def test_generate_is_seeded_and_resumable(tmp_path):
    out = tmp_path / "episodes"
    first = generate(out, 2, seed=5, max_steps=8, progress=False)
    assert [s.index for s in first] == [0, 1]
    for name in ("episode_000", "episode_001"):
        with BagReader(out / name) as reader:
            present = reader.topics()
            for topic in EPISODE_TOPICS:
                assert bag_topic(topic) in present, (name, topic.name)
            assert reader.custom_data["dexterity_ros.seed"] == "5"
    before = (out / "episode_000" / "episode_000.mcap").read_bytes()
    # an interrupted run leaves a half-written episode in the staging folder
    staging = out / PARTIAL_DIR / "episode_002"
    staging.mkdir(parents=True)
    (staging / "episode_002.mcap").write_bytes(b"\x89MCAP0\r\ntruncated")
    resumed = generate(out, 3, seed=5, max_steps=8, progress=False)
    assert [s.index for s in resumed] == [2]                          # only the missing one is made
    assert (out / "episode_000" / "episode_000.mcap").read_bytes() == before   # finished ones untouched
    assert not (out / PARTIAL_DIR).exists()
    assert sorted(p.name for p in out.iterdir()) == ["episode_000", "episode_001", "episode_002"]
    # same seed, same episode: the same actions, bit for bit
    again = generate(tmp_path / "again", 1, seed=5, max_steps=8, progress=False)
    assert again[0].seed == first[0].seed
    a, b = actions(out / "episode_000"), actions(tmp_path / "again" / "episode_000")
    assert len(a) == len(b) > 0 and all(np.array_equal(x, y) for x, y in zip(a, b))


def test_generate_cli_errors_are_clear(tmp_path):
    result = subprocess.run([sys.executable, "-m", "dexterity_ros.cli", "generate", "--episodes", "0",
                             "--out", str(tmp_path / "x")], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "--episodes must be positive" in result.stdout
    result = subprocess.run([sys.executable, "-m", "dexterity_ros.cli", "generate", "--episodes", "1", "--out",
                             str(tmp_path / "y"), "--randomization", str(tmp_path / "missing.yaml")],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "missing.yaml" in result.stdout


def test_generated_bags_record_the_configs_they_were_made_with(tmp_path):
    """--sim-config/--randomization: the fingerprint hashes the configs used, not the packaged files."""
    from dexterity_ros.cli import main as cli
    from dexterity_ros.paths import config_path
    from dexterity_ros.perception import load_perception_config
    from dexterity_ros.sim.episodes import data_fingerprint
    from dexterity_ros.sim.randomization import load_randomization_config
    from dexterity_ros.sim.sim_config import load_sim_config

    sim_text = config_path("sim.yaml").read_text()
    sim_yaml = tmp_path / "sim.yaml"
    sim_yaml.write_text(sim_text.replace("max_episode_steps: 600", "max_episode_steps: 500", 1))
    rand_yaml = tmp_path / "randomization.yaml"
    rand_yaml.write_text("randomization:\n  gravity: {enabled: true, std: 0.3}\n")
    assert cli(["generate", "--episodes", "1", "--max-steps", "2", "--out", str(tmp_path / "out"),
                "--sim-config", str(sim_yaml), "--randomization", str(rand_yaml), "--no-progress"]) == 0
    with BagReader(tmp_path / "out" / "episode_000") as reader:
        recorded = {k: reader.custom_data[f"dexterity_ros.{k}"] for k in data_fingerprint()}
    default = data_fingerprint()
    assert recorded["sim_config_hash"] == load_sim_config(sim_yaml).config_hash() != default["sim_config_hash"]
    assert recorded["randomization_config_hash"] == load_randomization_config(rand_yaml).config_hash() \
        != default["randomization_config_hash"]
    assert recorded["perception_config_hash"] == load_perception_config().config_hash() \
        == default["perception_config_hash"]
    assert recorded["policy_sha256"] == default["policy_sha256"]
    assert recorded == data_fingerprint(None, load_sim_config(sim_yaml), load_randomization_config(rand_yaml))

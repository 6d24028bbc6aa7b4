"""Importers: policies trained in other code bases -> ONNX files carrying a contract v2.

Each preset reads its upstream's file format (Isaac Lab's exported ONNX,
rl_games ``.pth``, HORA ``.ckpt``, a Playground/Brax ONNX) and writes the
contract from that upstream's convention (joint order by name, scalings,
quaternion order, normaliser, action transform, control rate). Where the
convention depends on how the policy was trained (physics backend, Isaac Lab
major version, EMA factor, asset limits), the preset requires the choice as an
option instead of guessing. One module per upstream; :data:`PRESETS` is the
registry the CLI (``dexterity-ros import``) reads.
"""
from __future__ import annotations

import argparse
import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ..contract import PolicyError
from ..contract_v2 import PolicyContractV2


class ImportRefused(PolicyError):
    """The file is not what the preset expects (format, layout, sizes); the message names the difference."""


@dataclass
class ImportResult:
    model: object                      # onnx.ModelProto with the contract attached
    contract: PolicyContractV2
    notes: list[str] = field(default_factory=list)   # what the user must know (assumptions, ⚠ unverified)


@dataclass(frozen=True)
class Preset:
    name: str
    summary: str
    upstream: str                                              # repository and files the convention comes from
    add_arguments: Callable[[argparse.ArgumentParser], None]
    build: Callable[[Path, argparse.Namespace], ImportResult]


PRESET_MODULES = {
    "isaaclab-allegro-repose": "isaaclab",
    "isaacgymenvs-allegro": "isaacgymenvs",
    "isaacgymenvs-dextreme": "dextreme",
    "hora": "hora",
    "playground-leap-reorient": "playground",
}


def preset(name: str) -> Preset:
    if name not in PRESET_MODULES:
        raise ImportRefused(f"unknown preset '{name}'; known: {sorted(PRESET_MODULES)}")
    module = importlib.import_module(f".{PRESET_MODULES[name]}", __name__)
    return module.PRESET


def all_presets() -> list[Preset]:
    return [preset(name) for name in PRESET_MODULES]

"""`dexterity-ros import --preset PRESET MODEL -o OUT.onnx [preset options]`: a policy trained elsewhere,
with a contract v2 written from its upstream's convention.

    dexterity-ros import --help                                   # the presets
    dexterity-ros import --preset isaaclab-allegro-repose --help   # that preset's options
    dexterity-ros import --preset isaaclab-allegro-repose exported/policy.onnx -o allegro.onnx \\
        --obs full --joint-order physx --isaaclab-version 2

Each preset (:mod:`dexterity_ros.policy.importers`) reads its upstream's file
format, checks it (names, sizes, a finite first inference) and attaches the
contract; the command prints the contract's table and the preset's notes (the
assumptions, ⚠ for what is not verified) and writes OUT atomically. A refusal
(not the expected file, a size that disagrees, a contract that does not fit)
is one ``error:`` line and exit status 1, with nothing written; a usage error
(a missing required option: the message says why it is required) exits 2.

The options depend on the preset, so the ``import`` parser adds the chosen
preset's options before parsing (:class:`_ImportParser`): ``--preset X
--help`` lists them, ``--help`` alone lists the presets.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _preset_name(args: list[str]) -> str | None:
    for k, arg in enumerate(args):
        if arg == "--":
            break
        if arg == "--preset" and k + 1 < len(args):
            return args[k + 1]
        if arg.startswith("--preset="):
            return arg.split("=", 1)[1]
    return None


def _preset_listing() -> str:
    from ..policy.importers import PRESET_MODULES, preset

    lines = ["presets:"]
    for name in PRESET_MODULES:
        try:
            p = preset(name)
            lines.append(f"  {name:<26} {p.summary}")
            lines.append(f"  {'':<26} convention from {p.upstream}")
        except ImportError:
            lines.append(f"  {name:<26} (not available in this installation)")
    lines.append("`dexterity-ros import --preset PRESET --help` lists a preset's options.")
    return "\n".join(lines)


class _ImportParser(argparse.ArgumentParser):
    """The ``import`` subparser: adds the options of the preset named by ``--preset`` before parsing."""

    _preset_added: str | None = None

    def format_help(self) -> str:
        if self._preset_added is None:            # `import --help`: the presets (imported only now)
            self.epilog = _preset_listing()
        return super().format_help()

    def parse_known_args(self, args=None, namespace=None):
        from ..policy.importers import PRESET_MODULES, preset

        args = list(sys.argv[1:] if args is None else args)
        name = _preset_name(args)
        if name in PRESET_MODULES and self._preset_added is None:
            try:
                chosen = preset(name)
            except ImportError as exc:
                self.error(f"preset '{name}' is not available in this installation ({exc})")
            group = self.add_argument_group(f"options of preset {name}", chosen.summary)
            chosen.add_arguments(group)
            self._preset_added = name
        return super().parse_known_args(args, namespace)

    def error(self, message: str):
        """argparse's usage error (exit 2), plus why each missing required option is required."""
        prefix = "the following arguments are required:"
        if message.startswith(prefix):
            wanted = [n.strip() for n in message[len(prefix):].split(",")]
            reasons = [f"  {n}: {a.help}" for n in wanted for a in self._actions
                       if n in a.option_strings and a.help and n != "--preset"]
            if reasons:
                message += "\n" + "\n".join(reasons)
        super().error(message)


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "import", help="bring a policy trained elsewhere (Isaac Lab, Playground, ...) in with a contract",
        description="Import a policy file trained in another code base: check it against the preset's upstream "
                    "convention and write an ONNX file carrying a contract v2 (observation terms, normaliser, "
                    "action transform, joint order by name). Options that depend on how the policy was trained "
                    "(physics backend, Isaac Lab version, observation group) are required, never guessed.",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.__class__ = _ImportParser      # the chosen preset's options are added when parsing
    from ..policy.importers import PRESET_MODULES
    parser.add_argument("--preset", required=True, choices=list(PRESET_MODULES), metavar="PRESET",
                        help=f"the upstream convention: {', '.join(PRESET_MODULES)}")
    parser.add_argument("model", type=Path, metavar="MODEL", help="the upstream policy file")
    parser.add_argument("-o", "--output", type=Path, required=True, metavar="OUT.onnx",
                        help="ONNX file to write (with the contract attached); never the input file")
    parser.set_defaults(func=run)


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


def run(args: argparse.Namespace) -> int:
    from ..policy.contract import PolicyError
    from ..policy.importers import preset
    from ..policy.importers.common import write_model_atomically

    model, output = Path(args.model), Path(args.output)
    if output.resolve() == model.resolve():
        print(f"error: -o {output} is the input model; write the imported policy to another file",
              file=sys.stderr)
        return 2
    try:
        result = preset(args.preset).build(model, args)
    except (PolicyError, OSError) as exc:         # ImportRefused, ContractError, unreadable files
        print(f"error: import refused: {_one_line(exc)}", file=sys.stderr)
        return 1
    print(result.contract.table())
    if result.notes:
        print("notes:")
        for note in result.notes:
            print(f"  - {note}")
    try:
        written = write_model_atomically(result.model, output)
    except OSError as exc:
        print(f"error: cannot write {output}: {_one_line(exc)}", file=sys.stderr)
        return 1
    print(f"wrote {written} ({written.stat().st_size / 1024:.0f} KiB); `dexterity-ros info {written}` shows it, "
          f"`student_node` runs it (model_path)")
    return 0

"""The pure half of the operator commands (`dexterity-ros hand|goal|topic|param`).

Users who installed from pip have no ``ros2`` CLI, so bring-up needs our own
commands; their ROS plumbing is in :mod:`dexterity_ros.ros.operator`. What a
person types (quaternions, parameter values, node and topic names) is parsed
here, before anything touches the graph, so a typo is refused with exit code 2
and nothing is published. What the graph says (messages as plain dicts,
/diagnostics values, arrival times) is turned into text here. No rclpy.
"""
from __future__ import annotations

import argparse
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import yaml

from .diagnostic_keys import Hand as K
from .diagnostic_keys import SCHEDULING, TaskMetrics, count, rate

QUATERNION_TOLERANCE = 1e-3        # |norm - 1| allowed for a typed goal (it is then normalised)
DEFAULT_TIMEOUT_S = 3.0
EXIT_BAD_INPUT = 2                 # as argparse: the command line itself is wrong
EXIT_FAILED = 1                    # the graph is missing, a node refused, nothing arrived


class OperatorInputError(ValueError):
    """Something typed on the command line cannot be used (exit code 2, nothing sent)."""


def add_graph_options(parser: argparse.ArgumentParser, namespace: bool = True) -> None:
    """``--timeout`` and ``--namespace``: every operator command has them."""
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S, metavar="S",
                        help=f"seconds to wait for the node/topic to appear and for each answer "
                             f"(default {DEFAULT_TIMEOUT_S:g})")
    if namespace:
        parser.add_argument("-n", "--namespace", default="", metavar="NS",
                            help="ROS namespace of the graph (robot.launch.xml namespace:=left -> --namespace left); "
                                 "relative names are resolved in it, absolute ones (/diagnostics) are not")


# ---------------------------------------------------------------- quaternions
def parse_quaternion(text: str) -> np.ndarray:
    """``w,x,y,z`` (scalar first; commas and/or spaces, optional brackets) -> unit quaternion.

    Refused: not 4 numbers, NaN/inf, a norm further than QUATERNION_TOLERANCE from 1.
    Within the tolerance the quaternion is normalised exactly.
    """
    body = text.strip().strip("[]()").strip()
    parts = [p for p in re.split(r"[,\s]+", body) if p]
    if len(parts) != 4:
        raise OperatorInputError(f"a quaternion is 4 numbers w,x,y,z (scalar first), got {len(parts)}: '{text}'")
    try:
        q = np.array([float(p) for p in parts], dtype=np.float64)
    except ValueError:
        raise OperatorInputError(f"a quaternion is 4 numbers w,x,y,z (scalar first), got '{text}'") from None
    if not np.all(np.isfinite(q)):
        raise OperatorInputError(f"quaternion '{text}' has NaN or inf")
    norm = float(np.linalg.norm(q))
    if abs(norm - 1.0) > QUATERNION_TOLERANCE:
        hint = f"; normalised: {format_quaternion(q / norm)}" if norm > 0 else ""
        raise OperatorInputError(f"quaternion '{text}' is not a unit quaternion: norm {norm:.6g} "
                                 f"(must be 1 within {QUATERNION_TOLERANCE:g}){hint}")
    return q / norm


def format_quaternion(q: Sequence[float]) -> str:
    return ",".join(f"{float(v):.6g}" for v in q)


def parse_quaternion_sequence(text: str) -> list[np.ndarray]:
    """Quaternions separated by ';' or newlines ('#' starts a comment); each as :func:`parse_quaternion`."""
    goals = []
    for number, raw in enumerate(re.split(r"[;\n]", text), start=1):
        item = raw.split("#", 1)[0].strip()
        if not item:
            continue
        try:
            goals.append(parse_quaternion(item))
        except OperatorInputError as exc:
            raise OperatorInputError(f"goal {len(goals) + 1} (item {number}): {exc}") from None
    if not goals:
        raise OperatorInputError(f"no quaternion in '{text.strip()[:80]}'")
    return goals


def read_goal_sequence(spec: str) -> list[np.ndarray]:
    """``--sequence``: a file (one w,x,y,z per line) if one exists at ``spec``, else the quaternions themselves."""
    path = Path(spec)
    if path.is_file():
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise OperatorInputError(f"cannot read goal file {path}: {exc}") from None
        try:
            return parse_quaternion_sequence(text)
        except OperatorInputError as exc:
            raise OperatorInputError(f"{path}: {exc}") from None
    if re.search(r"[a-df-zA-DF-Z]", spec) or "/" in spec:     # letters other than an exponent: a path
        raise OperatorInputError(f"--sequence: no file '{spec}' (and it is not a list of w,x,y,z quaternions)")
    return parse_quaternion_sequence(spec)


def random_goals(count_: int, seed: int | None, current: np.ndarray | None = None, object_name: str = "cube",
                 sim_config: str | None = None) -> list[np.ndarray]:
    """Goals from the simulator's task distribution (goal_node's GoalSampler, the object's symmetry).

    Each goal is drawn relative to the one before (the first relative to ``current``, identity if None),
    as goal_node draws the next goal from the object's orientation.
    """
    from .objects.models import load_object_model
    from .sim.sim_config import load_sim_config
    from .task.goals import GoalSampler

    try:
        symmetry = load_object_model(object_name).symmetry
        sampler = GoalSampler.from_task(load_sim_config(sim_config).task, symmetry)
    except ValueError as exc:              # ConfigError, ObjectModelError
        raise OperatorInputError(str(exc)) from None
    rng = np.random.default_rng(seed)
    goal = np.array([1.0, 0.0, 0.0, 0.0]) if current is None else np.asarray(current, dtype=np.float64)
    goals = []
    for _ in range(count_):
        goal = sampler.sample(goal, rng)
        goals.append(goal / np.linalg.norm(goal))
    return goals


def same_rotation(a: Sequence[float], b: Sequence[float], tolerance: float = 1e-3) -> bool:
    """Two quaternions name the same rotation (q and -q) within ``tolerance`` per component."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return bool(np.max(np.abs(a - b)) <= tolerance or np.max(np.abs(a + b)) <= tolerance)


# -------------------------------------------------------------- goal sequence
class GoalSequence:
    """When ``goal set --sequence`` moves on: a judge on task/metrics reports this goal reached, or the interval.

    "Reached" means the judge's ``goals reached`` counter grew since the goal was
    published *and* the goal it reports is this one (a judge that draws its own
    goals, like goal_node, says nothing about ours: :attr:`foreign_goal` then
    holds the goal it judges, for a warning).
    """

    def __init__(self, goals: Sequence[np.ndarray], interval_s: float | None):
        self.goals = [np.asarray(g, dtype=np.float64) for g in goals]
        self.interval_s = interval_s
        self.index = -1
        self.started_at = 0.0
        self._baseline: int | None = None      # the judge's count when this goal went out
        self._last_reached: int | None = None
        self.reached = False
        self.foreign_goal: str | None = None

    @property
    def current(self) -> np.ndarray:
        return self.goals[self.index]

    def start_next(self, t: float) -> np.ndarray:
        self.index += 1
        self.started_at = t
        self._baseline = self._last_reached
        self.reached = False
        return self.current

    def on_metrics(self, values: Mapping[str, str]) -> None:
        try:
            reached = int(values.get(TaskMetrics.GOALS_REACHED, ""))
        except ValueError:
            return
        self._last_reached = reached
        if self.index < 0:
            return
        judged = parse_vector(values.get(TaskMetrics.GOAL, ""))
        if judged is not None and len(judged) == 4 and not same_rotation(judged, self.current):
            self.foreign_goal = values.get(TaskMetrics.GOAL)
            self._baseline = reached          # successes on another goal never count for ours
        elif self._baseline is None:          # the first word of the judge: nothing reached yet
            self._baseline = reached
        elif reached > self._baseline:
            self.reached = True

    def advance_reason(self, t: float) -> str | None:
        """Why to move on now ('reached', 'interval'), or None."""
        if self.reached:
            return "reached"
        if self.interval_s is not None and t - self.started_at >= self.interval_s:
            return "interval"
        return None


def parse_vector(text: str) -> list[float] | None:
    """``[0.1, 0.2]`` (a diagnostic value) -> floats; None when it is not such a list."""
    body = text.strip()
    if not (body.startswith("[") and body.endswith("]")):
        return None
    try:
        return [float(v) for v in body[1:-1].split(",") if v.strip()]
    except ValueError:
        return None


# ----------------------------------------------------------------------- names
_NAME = re.compile(r"^~?/?([A-Za-z_][A-Za-z0-9_]*)(/[A-Za-z_][A-Za-z0-9_]*)*$")


def resolve_name(name: str, namespace: str = "", what: str = "name") -> str:
    """A node or topic name, absolute: relative ones are put in ``namespace`` (as a node there would)."""
    name = name.strip()
    if not name or not _NAME.match(name) or name.startswith("~"):
        raise OperatorInputError(f"'{name}' is not a valid ROS {what} (letters, digits, _ and /; no leading digit)")
    if name.startswith("/"):
        return name
    ns = namespace.strip().strip("/")
    if ns and not _NAME.match(ns):
        raise OperatorInputError(f"'{namespace}' is not a valid ROS namespace")
    return f"/{ns}/{name}" if ns else f"/{name}"


def split_node_name(fqn: str) -> tuple[str, str]:
    """'/left/hand' -> ('/left', 'hand'); '/hand' -> ('/', 'hand')."""
    ns, _, base = fqn.rpartition("/")
    return ns or "/", base


# ------------------------------------------------------------ parameter values
_NUMBER = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$")
PARAMETER_KINDS = ("bool", "integer", "double", "string", "bool_array", "integer_array", "double_array",
                   "string_array", "byte_array")


def parse_parameter_value(text: str) -> Any:
    """A value typed as for ``ros2 param set`` (YAML): true, 3, 0.5, 1e-3, text, [1, 2], ['a', 'b'].

    Lists must hold one kind (ints among floats become floats); an empty list has no type and is refused.
    """
    try:
        value = yaml.safe_load(text) if text.strip() else text
    except yaml.YAMLError:
        value = text                                   # not YAML: a string as typed
    if isinstance(value, str) and _NUMBER.match(value.strip()):
        value = float(value)                           # YAML 1.1 reads 1e-3 as a string
    if value is None or not isinstance(value, (bool, int, float, str, list)):
        value = text                                   # null, dates, mappings: the text itself
    if isinstance(value, list):
        return _homogeneous(value, text)
    return value


def _homogeneous(items: list, text: str) -> list:
    if not items:
        raise OperatorInputError(f"'{text}': an empty list has no type; ROS parameters cannot be set to []")
    kinds = {type(v) for v in items}
    if kinds <= {int, float} and float in kinds:
        return [float(v) for v in items]
    if len(kinds) != 1 or kinds.pop() not in (bool, int, float, str):
        raise OperatorInputError(f"'{text}': a list parameter holds one kind of value (all numbers, all "
                                 "true/false or all strings), not nested lists or mixtures")
    return items


def parameter_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "double"
    if isinstance(value, str):
        return "string"
    if isinstance(value, (bytes, bytearray)):
        return "byte_array"
    return f"{parameter_kind(value[0]) if len(value) else 'double'}_array"


def coerce_to_declared(value: Any, text: str, declared: str | None) -> Any:
    """What to send for a parameter of kind ``declared``: the typed text for a string, ints as floats."""
    if declared == "string" and not isinstance(value, str):
        return text
    if declared == "string_array" and isinstance(value, list):
        return [v if isinstance(v, str) else format_scalar(v) for v in value]
    if declared == "double" and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if declared == "double_array" and isinstance(value, list) and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
        return [float(v) for v in value]
    return value


# ------------------------------------------------------------ message text
@dataclass(frozen=True)
class TextOptions:
    max_items: int = 16         # longer numeric arrays are summarised
    max_string: int = 240       # longer strings are cut (with their length)
    digits: int = 6             # significant digits of floats
    full: bool = False          # print everything as is


def format_scalar(value: Any, digits: int = 6, full: bool = False) -> str:
    if isinstance(value, (bool, np.bool_)):
        return "true" if value else "false"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        value = float(value)
        if math.isnan(value):
            return ".nan"
        if math.isinf(value):
            return ".inf" if value > 0 else "-.inf"
        text = repr(value) if full else f"{value:.{digits}g}"
        return text if re.search(r"[.en]", text) else text + ".0"
    if isinstance(value, str):
        return _yaml_string(value)
    return str(value)


def _yaml_string(text: str) -> str:
    if text == "" or text.strip() != text or text[0] in "'\"[]{}&*!|>%@`#,-?:" \
            or not isinstance(parse_parameter_value_quiet(text), str) or ": " in text or "\n" in text:
        return "'" + text.replace("'", "''") + "'"
    return text


def parse_parameter_value_quiet(text: str) -> Any:
    try:
        return parse_parameter_value(text)
    except OperatorInputError:
        return text


def _is_array(value: Any) -> bool:
    return isinstance(value, (list, tuple, np.ndarray, bytes, bytearray)) or type(value).__name__ == "array"


def format_value(value: Any, options: TextOptions = TextOptions(), indent: int = 0) -> list[str]:
    """Lines of a plain value (dict, list, array, scalar), YAML-like; the first line has no key."""
    if isinstance(value, Mapping):
        return format_message(value, options, indent)
    if _is_array(value):
        return [_format_array(value, options, indent)] if not _has_mappings(value) else \
            _format_mapping_list(value, options, indent)
    if isinstance(value, str) and not options.full and len(value) > options.max_string:
        return [f"{_yaml_string(value[:options.max_string])}... ({len(value)} characters; --full prints all)"]
    return [format_scalar(value, options.digits, options.full)]


def _has_mappings(value: Any) -> bool:
    return isinstance(value, (list, tuple)) and any(isinstance(v, Mapping) for v in value)


def _format_array(value: Any, options: TextOptions, indent: int) -> str:
    if isinstance(value, (bytes, bytearray)):
        arr = np.frombuffer(bytes(value), dtype=np.uint8)
    else:
        arr = np.asarray(value)
    if arr.size > options.max_items and not options.full:
        head = ", ".join(format_scalar(v, options.digits) for v in arr.ravel()[:4])
        if arr.dtype.kind in "biuf" and arr.size:
            finite = arr[np.isfinite(arr)] if arr.dtype.kind == "f" else arr
            span = (f", min {format_scalar(finite.min(), options.digits)}, max "
                    f"{format_scalar(finite.max(), options.digits)}") if finite.size else ""
            return f"<{arr.size} values ({arr.dtype}){span}; first [{head}, ...]; --full prints all>"
        return f"<{arr.size} items; first [{head}, ...]; --full prints all>"
    return "[" + ", ".join(format_value(v, options)[0] for v in arr.ravel().tolist()) + "]"


def _format_mapping_list(items: Sequence[Any], options: TextOptions, indent: int) -> list[str]:
    if not items:
        return ["[]"]
    pad = " " * indent
    lines = [""]
    for item in items:
        sub = format_value(item, options, indent + 2)
        if isinstance(item, Mapping) and sub:
            lines.append(f"{pad}- {sub[0].lstrip()}")
            lines += sub[1:]
        else:
            lines.append(f"{pad}- {sub[0]}")
            lines += sub[1:]
    return lines


_IMAGE_DTYPES = {"16UC1": "u2", "mono16": "u2", "32FC1": "f4", "8UC1": "u1", "mono8": "u1"}


def _image_pixels(data: Mapping[str, Any]) -> Any:
    """An Image's ``data`` as its pixel type (16UC1 depth as uint16 millimetres), so the summary says something."""
    kind = _IMAGE_DTYPES.get(str(data.get("encoding", "")))
    raw = data.get("data")
    if kind is None or raw is None or not _is_array(raw):
        return raw
    buffer = bytes(raw) if isinstance(raw, (bytes, bytearray)) else np.asarray(raw, dtype=np.uint8).tobytes()
    dtype = np.dtype(kind).newbyteorder(">" if data.get("is_bigendian") else "<")
    if len(buffer) % dtype.itemsize:
        return raw
    return np.frombuffer(buffer, dtype=dtype).astype(dtype.newbyteorder("="))


def format_message(data: Mapping[str, Any], options: TextOptions = TextOptions(), indent: int = 0) -> list[str]:
    """A message as a plain dict -> YAML-like lines (as ``ros2 topic echo``), big arrays summarised.

    A summarised image's data is read as its pixels (a 16UC1 depth image: uint16 millimetres).
    """
    pad = " " * indent
    lines = []
    if not options.full and "encoding" in data and "data" in data:
        data = {**data, "data": _image_pixels(data)}
    for key, value in data.items():
        if isinstance(value, Mapping) and value:
            lines.append(f"{pad}{key}:")
            lines += format_message(value, options, indent + 2)
            continue
        sub = format_value(value, options, indent + 2) if not isinstance(value, Mapping) else ["{}"]
        if sub and sub[0] == "":
            lines.append(f"{pad}{key}:")
            lines += sub[1:]
        else:
            lines.append(f"{pad}{key}: {sub[0]}")
            lines += sub[1:]
    return lines


def extract_field(data: Any, path: str) -> Any:
    """``header.stamp.sec``, ``position.3`` or ``position[3]`` out of a message dict."""
    value = data
    walked = []
    for part in [p for p in re.split(r"\.|\[|\]", path) if p]:
        if isinstance(value, Mapping):
            if part not in value:
                where = ".".join(walked) or "the message"
                raise OperatorInputError(f"--field {path}: {where} has no field '{part}' "
                                         f"(fields: {', '.join(value)})")
            value = value[part]
        elif _is_array(value) and part.lstrip("-").isdigit():
            try:
                value = value[int(part)]
            except IndexError:
                raise OperatorInputError(f"--field {path}: index {part} out of range "
                                         f"({'.'.join(walked)} has {len(value)} items)") from None
        else:
            raise OperatorInputError(f"--field {path}: cannot look up '{part}' in {'.'.join(walked) or 'a value'}")
        walked.append(part)
    return value


# ------------------------------------------------------------------ QoS choice
def choose_qos(publishers: Iterable[tuple[str, str]]) -> tuple[str, str]:
    """(reliability, durability) of a subscription that matches every publisher (as ``ros2 topic echo``).

    ``publishers``: (reliability, durability) words, e.g. ("best_effort", "volatile"). A reliable
    subscription matches no best-effort publisher, a transient-local one no volatile publisher;
    best-effort volatile matches all (used when no publisher is known).
    """
    found = [(r.lower(), d.lower()) for r, d in publishers]
    if not found:
        return "best_effort", "volatile"
    reliability = "reliable" if all(r == "reliable" for r, _ in found) else "best_effort"
    durability = "transient_local" if all(d == "transient_local" for _, d in found) else "volatile"
    return reliability, durability


# ---------------------------------------------------------------- rate stats
@dataclass(frozen=True)
class RateStats:
    rate_hz: float
    min_s: float
    max_s: float
    std_s: float
    window: int            # intervals measured

    def line(self) -> str:
        return (f"average rate: {self.rate_hz:.3f} Hz  min: {self.min_s:.4f} s  max: {self.max_s:.4f} s  "
                f"std dev: {self.std_s:.5f} s  window: {self.window}")


def rate_stats(arrivals: Sequence[float], window: int = 100) -> RateStats | None:
    """Statistics of the last ``window`` intervals between arrival times (s); None below 2 arrivals."""
    times = np.asarray(arrivals[-(window + 1):], dtype=np.float64)
    if times.size < 2:
        return None
    intervals = np.diff(times)
    mean = float(intervals.mean())
    return RateStats(1.0 / mean if mean > 0 else math.inf, float(intervals.min()), float(intervals.max()),
                     float(intervals.std()), int(intervals.size))


# ------------------------------------------------------------- hand status
STATE_HINTS = {
    "DISABLED": "not commanding; `dexterity-ros hand enable` starts (ramping from the measured position)",
    "ACTIVE": "commanding: following the policy targets",
    "HOLD": "commanding: holding the last command (no fresh policy target)",
    "HOMING": "commanding: ramping to the home pose",
    "FAULT": "not commanding; fix the cause, then `dexterity-ros hand reset` and `hand enable`",
    "ESTOP": "not commanding (latched); `dexterity-ros hand reset`, then `hand enable`",
}
LEVEL_WORDS = {0: "OK", 1: "WARN", 2: "ERROR", 3: "STALE"}
_PROBLEM_KEYS = (K.BAD_FEEDBACK, K.FEEDBACK_NAME_MISMATCH, K.IMPLAUSIBLE_FEEDBACK, K.TARGET_REJECTED)


def format_hand_status(node: str, level: int, message: str, values: Mapping[str, str], age_s: float,
                       parameters: Mapping[str, Any] | None = None) -> list[str]:
    """One screen from hand_node's /diagnostics status (and a few of its parameters, if read)."""
    v = dict(values)
    get = lambda key, default="?": v.get(key, default)     # noqa: E731 - local shorthand
    state = get(K.STATE)
    level_word = LEVEL_WORDS.get(level, str(level))
    lines = [f"hand {node}: {state} [{level_word}]   (/diagnostics, {age_s:.1f} s old)",
             f"  state      {get(K.STATE_REASON, message)}",
             f"  meaning    {STATE_HINTS.get(state, 'unknown state')}"]
    if level >= 2 or (level == 1 and state == "DISABLED"):
        lines.append(f"  faults     {message}")
    else:
        lines.append("  faults     none")
    problems = [f"{k} {v[count(k)]}" for k in _PROBLEM_KEYS if v.get(count(k), "0") not in ("0", "")]
    if problems:
        lines.append(f"  problems   {', '.join(problems)} (since start)")
    feedback_rate = v.get(rate(K.DRIVER_FEEDBACK), "0.00")
    lines.append(f"  driver     {get(K.DRIVER_PROFILE)}: commands on {get(K.COMMAND_TOPIC)}, feedback from "
                 f"{get(K.FEEDBACK)} ({feedback_rate} Hz, {get(K.FEEDBACK_MESSAGES)} messages)")
    if K.FINGER_DIGIT_CHECK in v:
        lines.append(f"  mapping    {v[K.FINGER_DIGIT_CHECK]}")
    limits = (f"  limits     limit violations {get(K.LIMIT_VIOLATIONS)} (must stay 0), clamped targets "
              f"{get(K.CLAMPS)}, rate limits hit {get(K.RATE_LIMITS_HIT)}")
    lines.append(limits)
    if K.LAST_LIMIT_VIOLATION in v:
        lines.append(f"  last violation  {v[K.LAST_LIMIT_VIOLATION]}")
    if parameters:
        speed = ", ".join(f"{k} {format_value(val)[0]}" for k, val in parameters.items())
        lines.append(f"  settings   {speed}")
    lines.append(f"  policy     targets accepted {get(K.TARGETS_ACCEPTED)}, rejected {get(K.TARGETS_REJECTED)} "
                 f"({v.get(rate(K.POLICY_TARGETS), '0.00')} Hz)")
    lines.append(f"  commands   sent {get(K.COMMANDS_SENT)} ({v.get(rate(K.COMMANDS), '0.00')} Hz), watchdog trips "
                 f"{get(K.WATCHDOG_TRIPS)}, estops {get(K.ESTOPS)}, late ticks {get(K.LATE_TICKS)}")
    lines.append(f"  timer      {get(K.COMMAND_TIMER_RATE)} Hz, jitter p50/p99/max {get(K.COMMAND_JITTER_P50)} / "
                 f"{get(K.COMMAND_JITTER_P99)} / {get(K.COMMAND_JITTER_MAX)} ms")
    if SCHEDULING in v:
        lines.append(f"  scheduler  {v[SCHEDULING]}")
    return lines


# -------------------------------------------------------------- not running
def no_graph_message(what: str, domain: str, timeout_s: float, seen: Sequence[str] = (),
                     hint: str = "") -> str:
    """The one wording of "the graph is not there" for every operator command."""
    text = (f"no {what} on ROS_DOMAIN_ID={domain} within {timeout_s:g} s — is the graph running? "
            "(`dexterity-ros launch robot.launch.xml`, or replay.launch.xml for the emulated hand)")
    if hint:
        text += f"; {hint}"
    elif seen:
        shown = ", ".join(sorted(seen)[:12]) + (" ..." if len(seen) > 12 else "")
        text += f"; seen: {shown}"
    return text


def same_name_elsewhere(fqn: str, seen: Iterable[str]) -> str:
    """A hint when the node runs in another namespace (forgotten --namespace)."""
    _, base = split_node_name(fqn)
    others = sorted(n for n in seen if split_node_name(n)[1] == base and n != fqn)
    if not others:
        return ""
    ns = split_node_name(others[0])[0].strip("/")
    return f"found {', '.join(others)}: add --namespace {ns}" if ns else f"found {others[0]}: drop --namespace"

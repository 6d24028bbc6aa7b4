"""Every ``/diagnostics`` key the nodes publish and the tools read back, named once.

A node reports through :class:`dexterity_ros.diagnostics.Health`: values
(``set_value``) appear under their key, counters and problems (``count``,
``problem``, ``bad_input``) as ``"<key> count"``, rates (``tick``) as
``"<key> rate (Hz)"`` and latencies as ``"<key> latency p50 (ms)"`` / ``p99``.
The nodes write with these constants and the readers (``dexterity-ros demo``,
the HIL scenarios, the tests) read with them and :func:`count`, :func:`rate`,
:func:`latency_p50` / :func:`latency_p99`, so a renamed key cannot leave a
reader silently looking at nothing.

Style: human-readable words separated by spaces (what a dashboard shows);
a ROS name inside a key keeps its spelling (``bad joint_state``,
``no camera_info``, ``tf_static``, ``num_points``).

Keys renamed when they were gathered here (issue 17; the student used
underscores): ``bad_goal`` -> ``bad goal``, ``bad_joint_state`` ->
``bad joint_state`` (as segmentation_node), ``bad_cloud`` -> ``bad cloud``,
``no_goal`` -> ``no goal``, ``nan_outputs`` -> ``nan outputs``, ``bad_points``
-> ``bad points``, ``reload_failed`` -> ``reload failed``.

Pure module: no rclpy.
"""
from __future__ import annotations

COUNT_SUFFIX = " count"
RATE_SUFFIX = " rate (Hz)"


def count(key: str) -> str:
    """The key under which a counter (or a problem's occurrences) is published."""
    return key + COUNT_SUFFIX


def rate(key: str) -> str:
    """The key under which a ticked event rate is published."""
    return key + RATE_SUFFIX


def latency_p50(key: str) -> str:
    return f"{key} latency p50 (ms)"


def latency_p99(key: str) -> str:
    return f"{key} latency p99 (ms)"


def exception_in(what: str) -> str:
    """Problem key of an unexpected exception in a guarded callback (``what``: the callback)."""
    return f"exception in {what}"


# ------------------------------------------------------------------ shared by several nodes
BAD_JOINT_STATE = "bad joint_state"     # a joint state rejected (segmentation_node, student_node)
PROTOCOL_ERROR = "protocol error"       # a driver command a stand-in driver refused (emulator, sim_bridge live)
SCHEDULING = "scheduling"               # value: the node's scheduler (realtime_priority), or why SCHED_FIFO was refused


class Hand:
    """hand_node (docs/hand.md, Diagnostics)."""

    DRIVER_PROFILE = "driver profile"
    COMMAND_TOPIC = "command topic"
    FEEDBACK = "feedback"                       # value: where driver feedback comes from
    FINGER_DIGIT_CHECK = "finger-digit check"   # value and problem
    BAD_FEEDBACK = "bad feedback"
    FEEDBACK_NAME_MISMATCH = "feedback name mismatch"
    IMPLAUSIBLE_FEEDBACK = "implausible feedback"
    TARGET_REJECTED = "target rejected"
    DRIVER_FEEDBACK = "driver feedback"         # rate
    POLICY_TARGETS = "policy targets"           # rate
    COMMANDS = "commands"                       # rate
    TARGET_TO_COMMAND = "target stamp -> command"   # latency
    STATE = "state"
    STATE_REASON = "state reason"
    COMMANDS_SENT = "commands sent"
    TARGETS_ACCEPTED = "targets accepted"
    TARGETS_REJECTED = "targets rejected"
    CLAMPS = "clamps"
    RATE_LIMITS_HIT = "rate limits hit"
    WATCHDOG_TRIPS = "watchdog trips"
    LATE_TICKS = "late ticks"
    PROMPT_COMMANDS = "prompt commands"
    LIMIT_VIOLATIONS = "limit violations"
    LAST_LIMIT_VIOLATION = "last limit violation"
    ESTOPS = "estops"
    FEEDBACK_MESSAGES = "feedback messages"
    COMMAND_TIMER_RATE = "command timer rate (Hz)"
    COMMAND_JITTER_P50 = "command jitter p50 (ms)"
    COMMAND_JITTER_P99 = "command jitter p99 (ms)"
    COMMAND_JITTER_MAX = "command jitter max (ms)"


class Segmentation:
    """segmentation_node."""

    PERCEPTION_CONFIG_HASH = "perception config hash"
    NUM_POINTS = "num_points"
    TF_STATIC = "tf_static"
    BAD_CAMERA_INFO = "bad camera_info"
    BAD_JOINT_STATE = BAD_JOINT_STATE
    DEPTH_FRAMES = "depth frames"                               # rate
    DEPTH_TRANSPORT = "depth transport"                         # latency: DDS source time -> received here
    DEPTH_WAKE_UP = "depth wake-up"                             # latency: received here -> callback running
    FRAMES_SKIPPED_RATE = "frames skipped (max cloud rate)"
    WARM_UP = "warm-up"                                         # latency (once per intrinsics)
    WAIT_FOR_INPUTS = "wait for joint state / camera_info"      # latency
    FRAMES_SUPERSEDED = "frames superseded while waiting for joint state or camera_info"
    FRAMES_WITHOUT_INPUTS = "frames processed without their joint state / camera_info"
    NO_CAMERA_INFO = "no camera_info"
    BAD_DEPTH = "bad depth"
    DEPTH_SIZE_MISMATCH = "depth size mismatch"
    NON_FINITE_DEPTH = "non-finite depth values"
    NO_JOINT_STATE = "no joint state"
    JOINT_STATE_TOO_OLD = "joint state too old"
    SEGMENTATION_ERROR = "segmentation error"
    SEGMENTATION = "segmentation"                               # latency
    LAST_FRAME_POINTS = "last frame points"
    NO_OBJECT = "no object"
    NO_OBJECT_NON_FINITE = "no object (NaN/inf depth)"
    CLOUDS = "clouds"                                           # rate
    CLOUDS_PUBLISHED = "clouds published"
    CALLBACK = "callback"                                       # latency
    FRAME_AGE = "frame age at publish"                          # latency
    HAND_ALIGNMENT = "hand alignment"                           # value and problem
    HAND_ALIGNMENT_FAILED = "hand alignment failed"
    DEBUG_IMAGES = "debug images"                               # rate and count
    DEBUG_IMAGE = "debug image"                                 # latency of labelling + drawing
    EXTRINSIC_OFF = "extrinsic off"


class HandView:
    """hand_view_node (docs/visualization.md)."""

    OBJECT = "object"
    URDF_JOINTS = "urdf joints"
    JOINT_STATES = "joint states"            # rate
    TF = "tf"                                # rate of /tf messages
    MARKERS = "markers"                      # rate of MarkerArray messages
    POSE_AGE = "tracked pose age"
    BAD_JOINT_STATE = BAD_JOINT_STATE
    BAD_POSE = "bad pose"
    BAD_GOAL = "bad goal"


class Student:
    """student_node (docs/policy_contract.md)."""

    MODEL = "model"
    CONTRACT = "contract"
    CONTROL_RATE = "control rate (Hz)"
    SEGMENTATION_HASH = "segmentation hash"
    GOAL = "goal (w, x, y, z)"
    BAD_GOAL = "bad goal"
    BAD_JOINT_STATE = BAD_JOINT_STATE
    BAD_CLOUD = "bad cloud"
    BAD_POINTS = "bad points"
    NO_GOAL = "no goal"
    BAD_POSE = "bad pose"                       # a pose message rejected, or the runtime's BAD_POSE status
    NO_POSE = "no pose"                         # no pose within max_pose_age of the step (pose not the trigger)
    INPUTS = "inputs"                           # value: the sources subscribed and the trigger
    CLOUDS = "clouds"                           # rate
    POSES = "poses"                             # rate (contracts with object pose terms)
    SKIPPED = "skipped"                         # rate-gated cloud/pose, or superseded while waiting for a joint state
    STALE = "stale"
    NAN_OUTPUTS = "nan outputs"
    RESETS = "resets"
    ACTIONS = "actions"                         # count and rate
    INFERENCE = "inference"                     # latency
    CLOUD_TO_TARGET = "cloud stamp to target"   # latency
    TRIGGER_TO_TARGET = "trigger stamp to target"   # latency, pose- or joint-state-triggered contracts
    RELOADS = "reloads"
    RELOAD_FAILED = "reload failed"
    LAST_RELOAD_ERROR = "last reload error"


class Camera:
    """camera_node (docs/camera.md)."""

    SOURCE = "source"
    FILTERS = "filters"
    QOS = "qos"
    DEVICE = "device"
    FIRMWARE = "firmware"
    DEPTH_PROFILE = "depth profile"
    DEPTH_SCALE = "depth scale (m/unit)"
    RECORDING_TO = "recording to"
    RECONNECTS = "reconnects"
    CAMERA_READ = "camera read"
    FRAMES_LOST = "frames lost"
    FRAME_DROP = "frame drop"
    DEPTH = "depth"                             # rate
    FRAMES_PUBLISHED = "frames published"
    STAMP_TO_PUBLISH = "frame stamp -> publish"     # latency
    TIMESTAMP_DOMAIN = "timestamp domain"
    STAMP_METHOD = "stamp method"
    IMAGE_SIZE = "image size"


class SimBridge:
    """sim_bridge_node, replay and live mode."""

    BAG = "bag"
    LOOP = "loop"
    FRAMES = "frames"                           # rate
    FRAMES_REPLAYED = "frames replayed"
    LATE_MESSAGES = "late messages (>50 ms)"
    PUBLISH_LAG = "publish lag behind schedule"     # latency
    BAG_READ_ERROR = "bag read error"
    REPLAY_ERROR = "replay error"
    UNDECODABLE_MESSAGE = "undecodable message"
    # live mode
    HAND_COMMANDS = "hand commands"             # rate
    PROTOCOL_ERROR = PROTOCOL_ERROR
    CAMERA_FAULTS = "camera faults"
    SIMULATION_ERROR = "simulation error"
    OVERRUNS = "overruns (sim slower than real time)"
    PHYSICS_STEP = "physics step"               # latency
    RENDER = "render"                           # latency
    CAMERA_FRAMES_DROPPED = "camera frames dropped (randomization)"
    FRAMES_WITHHELD = "frames withheld (camera paused)"
    FRAMES_BLANK = "frames with blank depth"
    FRAMES_LATE = "frames published late"
    FRAMES_REORDERED = "frames published out of order"
    BAD_GOAL = "bad goal"                       # goal_source topic: a goal refused
    GOALS_RECEIVED = "goals received"           # goal_source topic
    DRIVER = "driver"                               # value: set when the expert drives (expert_config)
    EXPERT_PLAN = "expert plan"                     # latency


class TaskMetrics:
    """task/metrics and task/metrics_truth (DiagnosticStatus): :meth:`dexterity_ros.task.TaskMetrics.key_values`
    (goal_node, and sim_bridge_node live with goal_source sim) plus the simulator's own values; the
    publishing node copies them into its /diagnostics."""

    STATE = "state"                                 # running | waiting (for the object, between episodes)
    ROTATION_ERROR = "rotation error (rad)"
    CONSECUTIVE_SUCCESSES = "consecutive successes"
    GOALS_REACHED = "goals reached"                 # successes in all episodes
    EPISODES = "episodes"
    DROPS_SO_FAR = "drops so far"
    DROPS_LOST = "drops by lost object"             # of those, the object unseen for lost_timeout_s
    GOAL_TIMEOUTS = "goal timeouts"
    FRAMES_BELOW_THRESHOLD = "frames below threshold"
    OBJECT_SEEN = "object seen"
    GOAL = "goal (w, x, y, z)"
    # the simulator's (sim_bridge_node live)
    DROPPED = "dropped"
    EPISODE = "episode"
    EPISODE_STEP = "episode step"
    HAND_COMMANDS_RECEIVED = "hand commands received"


class GoalNode:
    """goal_node (docs/task.md)."""

    OBJECT = "object"
    SYMMETRY = "symmetry"
    RULES = "rules"
    POSES = "poses"                             # rate
    TRUTH_POSES = "truth poses"                 # rate
    BAD_POSE = "bad pose"
    BAD_TRUTH_POSE = "bad truth pose"
    OBJECT_LOST = "object lost"                 # problem: no pose for lost_timeout_s
    GOALS_PUBLISHED = "goals published"


class Emulator:
    """allegro_emulator_node (docs/hand.md)."""

    FAULTS = "faults"
    FEEDBACK = "feedback"                       # value: where feedback goes; also its rate
    COMMANDS = "commands"                       # rate
    COMMANDS_RECEIVED = "commands received"
    PROTOCOL_ERROR = PROTOCOL_ERROR
    COMMANDS_OUTSIDE_LIMITS = "commands outside joint limits"
    LARGEST_COMMAND_STEP = "largest command step (rad)"
    POSITIONS = "positions"


class Tracker:
    """pose_tracker_node (docs/perception.md, "Object pose tracking")."""

    OBJECT = "object"
    STATUS = "status"                           # value: tracking | lost: <reason>
    CLOUDS = "clouds"                           # rate
    POSES = "poses"                             # rate
    POSES_PUBLISHED = "poses published"
    LOST = "lost"                               # problem
    LOST_FRAMES = "frames lost"
    REINITIALIZED = "re-initialisations"
    FITNESS = "fitness"
    INLIER_RMSE = "inlier rmse"
    REGISTRATION = "registration"               # latency, per phase: "registration track" ...
    CALLBACK = "callback"                       # latency
    WRONG_FRAME = "wrong frame"
    BAD_CLOUD = "bad cloud"
    BAD_TRUTH = "bad true pose"
    TRUTH_ERROR = "error against the true pose"   # value (simulation, truth_pose_topic set)

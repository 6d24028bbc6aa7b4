"""The graph's interface contract: every topic name, type, QoS class and frame.

Nodes, launch files, bags, tests and docs refer to these constants, so a
renamed topic is renamed once. Names are relative (they follow a node's
namespace) except the ROS-global ones (/diagnostics, /tf_static, /clock).
"""
from __future__ import annotations

import enum
from dataclasses import dataclass


class QosClass(enum.Enum):
    """How a stream is delivered; :mod:`dexterity_ros.nodes.ros_common` maps to rclpy QoS."""

    SENSOR = "sensor"      # best effort, keep last 5, volatile (rclpy qos_profile_sensor_data)
    RELIABLE = "reliable"  # reliable, keep last 10, volatile
    LATCHED = "latched"    # reliable, keep last 1, transient local (late joiners get the last)


@dataclass(frozen=True)
class Topic:
    name: str
    type_name: str          # ROS interface name, e.g. sensor_msgs/msg/Image
    qos: QosClass
    description: str


# Frames (REP 105 style: the hand's palm is the robot base of this stack).
PALM_FRAME = "palm"
CAMERA_FRAME = "camera_depth_optical_frame"   # realsense-ros name; REP 103 optical (z forward)

# Sensors (realsense-ros names so a stock RealSense launch can feed us directly).
DEPTH_IMAGE = Topic("camera/camera/depth/image_rect_raw", "sensor_msgs/msg/Image", QosClass.SENSOR,
                    "depth image, 16UC1 in millimetres or 32FC1 in metres")
DEPTH_INFO = Topic("camera/camera/depth/camera_info", "sensor_msgs/msg/CameraInfo", QosClass.SENSOR,
                   "intrinsics of the depth image")
JOINT_STATES = Topic("hand/joint_states", "sensor_msgs/msg/JointState", QosClass.SENSOR,
                     "measured hand joint positions, canonical joint names (rad)")

# Perception and policy.
OBJECT_CLOUD = Topic("perception/object_cloud", "sensor_msgs/msg/PointCloud2", QosClass.SENSOR,
                     "N object points in the palm frame (x, y, z float32)")
OBJECT_POSE_TRACKED = Topic("perception/object_pose", "geometry_msgs/msg/PoseStamped", QosClass.SENSOR,
                            "object pose estimated by pose_tracker_node, palm frame")
GOAL = Topic("goal/orientation", "geometry_msgs/msg/QuaternionStamped", QosClass.LATCHED,
             "goal orientation of the object in the palm frame")
JOINT_TARGETS = Topic("policy/joint_targets", "sensor_msgs/msg/JointState", QosClass.RELIABLE,
                      "policy joint position targets, canonical joint names (rad)")

# Simulation-only (privileged; for evaluation, never an input of the student).
OBJECT_POSE = Topic("sim/object_pose", "geometry_msgs/msg/PoseStamped", QosClass.RELIABLE,
                    "true object pose in the palm frame (privileged)")
OBJECT_TWIST = Topic("sim/object_twist", "geometry_msgs/msg/TwistStamped", QosClass.RELIABLE,
                     "true object velocity in the palm frame (privileged)")
PHYSICS_PARAMS = Topic("sim/physics_params", "std_msgs/msg/String", QosClass.LATCHED,
                       "sampled physics parameters of the episode as JSON (privileged)")

# Task (goal_node on the robot; sim_bridge_node live judges itself unless goal_source is topic).
TASK_METRICS = Topic("task/metrics", "diagnostic_msgs/msg/DiagnosticStatus", QosClass.RELIABLE,
                     "task judge: rotation error, successes, drops, episodes (goal_node or the live simulation)")
TASK_METRICS_TRUTH = Topic("task/metrics_truth", "diagnostic_msgs/msg/DiagnosticStatus", QosClass.RELIABLE,
                           "goal_node's shadow judge on the true pose, same goals (simulation only)")

# ROS-global.
DIAGNOSTICS = Topic("/diagnostics", "diagnostic_msgs/msg/DiagnosticArray", QosClass.RELIABLE,
                    "node health, rates, latencies and counters")
TF_STATIC = Topic("/tf_static", "tf2_msgs/msg/TFMessage", QosClass.LATCHED,
                  "camera -> palm extrinsic")
CLOCK = Topic("/clock", "rosgraph_msgs/msg/Clock", QosClass.RELIABLE,
              "simulated or replayed time (use_sim_time)")

# Visualization (hand_view_node; segmentation_node's debug image): what the robot sees, docs/visualization.md.
DEBUG_IMAGE = Topic("perception/debug_image", "sensor_msgs/msg/Image", QosClass.SENSOR,
                    "segmentation debug view (rgb8, throttled, only while subscribed): depth shaded, pixels "
                    "coloured by what segmentation did with them (object, hand removed, outlier, background)")
ROBOT_DESCRIPTION = Topic("visualization/robot_description", "std_msgs/msg/String", QosClass.LATCHED,
                          "URDF of the hand (canonical joint names), as robot_state_publisher latches it")
VIS_MARKERS = Topic("visualization/markers", "visualization_msgs/msg/MarkerArray", QosClass.RELIABLE,
                    "workspace box, hand collision shapes at the measured joints, tracked object, goal "
                    "(built only while a viewer subscribes)")
TF = Topic("/tf", "tf2_msgs/msg/TFMessage", QosClass.RELIABLE,
           "palm -> hand link transforms from the measured joints (hand_view_node)")

RECORDED_TARGETS = Topic("sim/recorded_targets", JOINT_TARGETS.type_name, QosClass.RELIABLE,
                         "replay: the joint targets recorded in the episode (for parity checks)")
REFERENCE_TARGETS = Topic("policy/reference_targets", JOINT_TARGETS.type_name, QosClass.RELIABLE,
                          "replay with reference:=true: targets of the reference student (parity --reference)")

ALL_TOPICS = (DEPTH_IMAGE, DEPTH_INFO, JOINT_STATES, OBJECT_CLOUD, OBJECT_POSE_TRACKED, GOAL, JOINT_TARGETS,
              OBJECT_POSE, OBJECT_TWIST, PHYSICS_PARAMS, TASK_METRICS, TASK_METRICS_TRUTH, DEBUG_IMAGE,
              ROBOT_DESCRIPTION, VIS_MARKERS, DIAGNOSTICS, TF_STATIC, TF, CLOCK)

# Hand drivers (their own names; dexterity_ros.hand.profiles picks one set by `driver_profile`).
# Commands go out reliable; feedback is subscribed best effort so it matches either kind of publisher.
ALLEGRO_V4_COMMAND = Topic("allegroHand_0/joint_cmd", "sensor_msgs/msg/JointState", QosClass.RELIABLE,
                           "Allegro v4 driver: joint position command (joint_0.0..joint_15.0)")
ALLEGRO_V4_FEEDBACK = Topic("allegroHand_0/joint_states", "sensor_msgs/msg/JointState", QosClass.SENSOR,
                            "Allegro v4 driver: measured joint state")
ROS2_CONTROL_COMMAND = Topic("allegro_hand_position_controller/commands", "std_msgs/msg/Float64MultiArray",
                             QosClass.RELIABLE, "ros2_control forward position controller command, "
                             "in the controller's configured joint order")
ROS2_CONTROL_FEEDBACK = Topic("/joint_states", "sensor_msgs/msg/JointState", QosClass.SENSOR,
                              "ros2_control joint_state_broadcaster output (ah_jointXY names)")
ROS2_CONTROL_ROBOT_DESCRIPTION = Topic("/robot_description", "std_msgs/msg/String", QosClass.LATCHED,
                                      "ros2_control driver: URDF latched by its robot_state_publisher "
                                      "(hand_node checks the finger-digit mapping against its joint limits)")
LEAP_COMMAND = Topic("cmd_allegro", "sensor_msgs/msg/JointState", QosClass.RELIABLE,
                     "LEAP hand node, Allegro-compatible input (positions read by index)")
LEAP_POSITION_SERVICE = "leap_position"   # leap_hand/srv/LeapPosition, polled for feedback

DRIVER_TOPICS = (ALLEGRO_V4_COMMAND, ALLEGRO_V4_FEEDBACK, ROS2_CONTROL_COMMAND, ROS2_CONTROL_FEEDBACK,
                 ROS2_CONTROL_ROBOT_DESCRIPTION, LEAP_COMMAND)

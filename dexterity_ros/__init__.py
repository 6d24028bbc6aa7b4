"""dexterity_ros: sim-to-real dexterous in-hand manipulation on ROS 2.

The package is split into a pure core (numpy / onnxruntime / open3d / MuJoCo;
no rclpy) and thin node shells in :mod:`dexterity_ros.nodes`.
"""
__version__ = "0.1.0"

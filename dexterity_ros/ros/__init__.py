"""The ROS boundary: everything that imports rclpy or a message package, apart from the executables.

``common`` (DexterityNode: typed parameters, /diagnostics, run_node), ``conversions`` (messages <->
numpy, the one place), ``messages`` (CDR bytes <-> rclpy objects), ``background`` (a node in its own
context for tools and tests), ``graph_monitor`` (observer of a running graph), ``driver_endpoint`` (the
driver's side of a hand profile), ``sim_live`` (live MuJoCo behind the robot's topics), ``bags/``
(record, play, episode bags as messages). The executables are in ``dexterity_ros/nodes/``; the pure
core never imports from here (test/core/test_architecture.py checks it).
"""

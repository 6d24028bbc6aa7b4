"""rosbag2 storage, pure (no rclpy, no message packages): reading and writing CDR bytes (``io``,
``writer``, ``mcap``, ``sqlite``, ``metadata``, ``verify``), inspection (``inspect``) and replay timing
(``replay``). Recording, playing and the episode schema as messages are in ``dexterity_ros.ros.bags``
(docs/bags.md)."""

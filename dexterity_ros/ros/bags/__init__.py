"""The rclpy side of the bag tools: recorder, player, session, QoS mapping and the episode bag schema as messages."""

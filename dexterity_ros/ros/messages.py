"""ROS messages as bytes and back: the rclpy side of the bag tools.

``dexterity_ros.bags`` stores and reads CDR bytes without importing rclpy or
any message package; this module turns them into rclpy message objects (and
back) with ``rclpy.serialization``, so what lands in a bag is exactly what a
ROS 2 publisher puts on the wire.
"""
from __future__ import annotations

import importlib
from typing import Any

from ..bags.io import BagError, BagWriter


def message_class(type_name: str) -> type:
    """'sensor_msgs/msg/Image' -> the Python message class (from the ROS interface package)."""
    try:
        package, kind, name = type_name.split("/")
        module = importlib.import_module(f"{package}.{kind}")
        return getattr(module, name)
    except (ValueError, ImportError, AttributeError) as exc:
        raise BagError(f"message type '{type_name}' is not available in this environment") from exc


def serialize(msg: Any) -> bytes:
    from rclpy.serialization import serialize_message
    return serialize_message(msg)


def deserialize(data: bytes | memoryview, type_name: str) -> Any:
    from rclpy.serialization import deserialize_message
    return deserialize_message(bytes(data), message_class(type_name))


class MessageBagWriter(BagWriter):
    """A :class:`~dexterity_ros.bags.io.BagWriter` that also takes rclpy message objects."""

    def write(self, topic: str, stamp_ns: int, msg: Any) -> None:
        self.write_raw(topic, stamp_ns, serialize(msg))

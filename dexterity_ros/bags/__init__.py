"""rosbag2 reading/writing (``io``), the episode bag schema (``episode``) and the bag tools
(record/play/info/reindex: ``writer``, ``recorder``, ``player``, ``inspect``; docs/bags.md)."""

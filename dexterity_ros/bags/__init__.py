"""rosbag2 reading/writing (``io``) and the episode bag schema (``episode``)."""

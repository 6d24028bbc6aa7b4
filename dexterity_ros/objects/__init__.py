"""Object descriptions shared by the simulator and the robot: symmetry groups and tracking models."""

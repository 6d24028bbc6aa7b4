"""Randomized MuJoCo simulation of the Allegro reorientation task (the "sim" of sim-to-real).

Modules: :mod:`.model` (MJCF from the robot description), :mod:`.objects`,
:mod:`.randomization`, :mod:`.env` (ReorientEnv), :mod:`.render` (offscreen depth and
labels), :mod:`.vector` (worker processes). Pure core: never imports rclpy.
"""
from .gl_backend import prepare_mujoco_import

prepare_mujoco_import()     # before anything imports mujoco (see gl_backend)

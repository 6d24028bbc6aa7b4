"""The reorientation task's rules, shared by the simulator and the robot (pure core: no rclpy).

:mod:`.goals` draws goal orientations (:class:`GoalSampler`); :mod:`.judge`
decides success, drop and timeout frame by frame (:class:`TaskJudge`) and
reports :class:`TaskMetrics`. ``ReorientEnv`` and ``goal_node`` both use them,
so a success on the robot means what it meant in training.
"""
from .goals import GoalSampler
from .judge import TaskJudge, TaskMetrics, TaskRules, Verdict

__all__ = ["GoalSampler", "TaskJudge", "TaskMetrics", "TaskRules", "Verdict"]

"""Learning: the privileged expert and its distillation into a student (point cloud or tracked pose).

| module | what it does |
|---|---|
| ``expert.py`` | ``SamplingExpert``: MPPI / predictive sampling with MuJoCo rollouts from the true state |
| ``gait.py`` | ``GaitExpert``: a fitted finger gait whose label is a function of the previous command, pose and goal |
| ``gait_search.py`` | CMA-ES search of the gait on the simulator's reward (``dexterity-ros gait-search``) |
| ``student.py`` | the point-cloud student network, its contract, the action mapping, the runtime's exact inputs |
| ``pose_student.py`` | the pose student (tracked pose + goal + joints, contract v2), its mirror of TermPolicyRuntime, export |
| ``rollout.py`` | one episode: render, perceive, run the student through PolicyRuntime, label, drive |
| ``dataset.py`` | the aggregated dataset, the beta schedule |
| ``train.py`` | supervised training on (runtime inputs, expert target) |
| ``dagger.py`` | DAgger + BC baseline, checkpointed and resumable |
| ``evaluate.py`` | held-out metrics, result tables |
| ``plot.py`` | the DAgger-vs-BC figure |
| ``config.py`` | ``DistillConfig`` (config/experiments/distill_small.yaml, config/experiments/distill_full.yaml) |

Torch is imported here (training); the robot-side runtime never imports this package.
"""

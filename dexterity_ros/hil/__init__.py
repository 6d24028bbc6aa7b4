"""Hardware-in-the-loop scenarios: the full graph closed around the live simulation, with faults.

The camera fault pipeline the live sim bridge uses is sim logic
(:mod:`dexterity_ros.sim.faults`); ``checks`` (pure) judges what a run did; ``monitor`` observes a running graph;
``run`` brings one run up with the shared checks and ``scenarios`` says what each one does
(``dexterity-ros hil``, ``test/hil/``). See docs/hil.md.
"""

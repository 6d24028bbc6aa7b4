"""Hardware-in-the-loop scenarios: the full graph closed around the live simulation, with faults.

``faults`` (pure) is the camera fault pipeline the live sim bridge uses;
``checks`` (pure) judges what a run did; ``monitor`` observes a running graph;
``scenarios`` runs them (``dexterity-ros hil``, ``test/hil/``). See docs/hil.md.
"""

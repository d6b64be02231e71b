"""Scaling out on Ray: the same commands on one laptop or a cluster.

The modules here are the only ones of liquidnode that import ``ray`` (the ``[cluster]``
extra); the runtime and single-machine training never do. With no ``--address`` a command
starts Ray locally on this machine; with ``--address`` it joins an existing cluster
(``ray start --head`` on one node, ``ray start --address HEAD:6379`` on the others; every
node needs the same liquidnode install).

- :mod:`.session`: connecting to (or starting) Ray, and the one error line when it is missing.
- :mod:`.episodes`: blocks of seeded episodes (``eval`` / ``stress --workers N``) spread over
  actors; a dead or stuck actor is replaced and its block re-run.
- :mod:`.rollouts`: one training run's experience (``train --workers N``) collected by
  actors, each stepping a slice of the environments with the learner's latest weights; a
  dead or stuck actor is replaced and its slice collected again.
- :mod:`.sweep`: ``liquidnode sweep``: a search space of ``liquidnode train`` runs as Ray
  Tune trials.
"""

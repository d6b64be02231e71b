"""Training liquid policies (torch only; the runtime never imports this package).

- :mod:`controller.train.config`: :class:`TrainConfig`, the typed knobs (also the CLI).
- :mod:`controller.train.ppo`: recurrent PPO as one readable story (:func:`train`).
- :mod:`controller.train.agent`: the actor (an ncps CfC / LTC / NCP module) and the critic.
- :mod:`controller.train.envs`: Gymnasium env construction, checks and control-period jitter.
- :mod:`controller.train.normalization`: running observation / reward statistics.
- :mod:`controller.train.gae`: generalised advantage estimation.
- :mod:`controller.train.rollout.buffer`: rollout storage and BPTT sequence chunking.
- :mod:`controller.train.rollout.collector`: where rollouts come from (in-process vector envs,
  or Ray actors via ``liquidnode.cluster.rollouts``), the seam between acting and learning.
- :mod:`controller.train.export`: torch modules -> runtime :class:`controller.policy.Policy`.
- :mod:`controller.train.evaluate`: deterministic evaluation with the numpy runtime.
- :mod:`controller.train.checkpoint`: resumable checkpoints.
"""

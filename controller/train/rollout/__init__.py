"""Rollouts for recurrent PPO: storage (:mod:`controller.train.rollout.buffer`) and
collection (:mod:`controller.train.rollout.collector`)."""

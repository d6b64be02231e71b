"""Rollout storage for recurrent PPO (:mod:`controller.train.rollout.buffer`)."""

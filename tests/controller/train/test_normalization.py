"""Running statistics, observation normalisation and reward scaling."""

import numpy as np

from liquidnode.controller.train.normalization import ObsNormalizer, RewardScaler, RunningMeanStd


def test_running_mean_std_matches_numpy_over_batches():
    rng = np.random.default_rng(1)
    data = rng.normal(loc=[3.0, -2.0], scale=[0.5, 4.0], size=(1000, 2))
    rms = RunningMeanStd((2,))
    for batch in np.array_split(data, 37):
        rms.update(batch)
    np.testing.assert_allclose(rms.mean, data.mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(rms.var, data.var(axis=0), rtol=1e-5)


def test_state_dict_round_trip():
    rms = RunningMeanStd((3,))
    rms.update(np.arange(12.0).reshape(4, 3))
    other = RunningMeanStd((3,))
    other.load_state_dict(rms.state_dict())
    np.testing.assert_array_equal(other.mean, rms.mean)
    np.testing.assert_array_equal(other.var, rms.var)
    assert other.count == rms.count


def test_obs_normalizer_standardises_and_clips():
    rng = np.random.default_rng(2)
    norm = ObsNormalizer(2, clip=3.0)
    data = rng.normal(loc=[10.0, 0.0], scale=[2.0, 0.01], size=(5000, 2))
    norm(data, update=True)
    x = norm(data)
    assert x.dtype == np.float32
    np.testing.assert_allclose(x.mean(axis=0), 0.0, atol=0.05)
    np.testing.assert_allclose(x.std(axis=0), 1.0, atol=0.05)
    # an outlier is clipped to +-clip
    out = norm(np.array([[1e6, -1e6]]))
    np.testing.assert_array_equal(out, [[3.0, -3.0]])
    # without update the statistics stay frozen
    mean = norm.mean.copy()
    norm(np.full((10, 2), 100.0))
    np.testing.assert_array_equal(norm.mean, mean)


def test_reward_scaler_divides_by_return_std_and_resets_on_done():
    scaler = RewardScaler(num_envs=2, gamma=0.5)
    scaler(np.array([1.0, 1.0]), np.array([False, True]))
    # env 1's episode ended: its tracked return restarts from zero
    np.testing.assert_allclose(scaler.returns, [1.0, 0.0])
    r = scaler(np.array([2.0, 2.0]), np.array([False, False]))
    np.testing.assert_allclose(scaler.returns, [2.5, 2.0])
    np.testing.assert_allclose(r, np.array([2.0, 2.0]) / np.sqrt(scaler.rms.var + 1e-8))

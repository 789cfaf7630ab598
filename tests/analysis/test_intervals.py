"""Confidence intervals against published tables and closed forms."""

from __future__ import annotations

import math
import random

import pytest

from redraft.analysis.metrics import bootstrap_ci, diff_ci, mean, pearson, pearson_ci, wilson

# Newcombe (1998), "Two-sided confidence intervals for the single proportion", Table I, method 3.
NEWCOMBE = [
    ((81, 263), (0.2553, 0.3662)),
    ((15, 148), (0.0624, 0.1605)),
    ((0, 20), (0.0, 0.1611)),
    ((1, 29), (0.0061, 0.1718)),
]


@pytest.mark.parametrize(("kn", "expected"), NEWCOMBE)
def test_wilson_matches_newcombes_table(kn, expected):
    lo, hi = wilson(*kn)
    assert (round(lo, 4), round(hi, 4)) == expected


def test_wilson_at_the_edges_stays_in_the_unit_interval_and_is_not_empty():
    assert wilson(10, 10)[1] == 1.0 and 0.6 < wilson(10, 10)[0] < 0.8
    assert wilson(0, 10)[0] == 0.0 and 0.2 < wilson(0, 10)[1] < 0.35
    assert all(math.isnan(x) for x in wilson(0, 0))


def test_paired_bootstrap_of_a_difference_matches_the_normal_interval_for_large_n():
    rng = random.Random(1)
    before = [float(rng.random() < 0.4) for _ in range(2000)]
    after = [b if rng.random() < 0.8 else 1.0 - b for b in before]  # correlated with before
    d = [y - x for x, y in zip(before, after, strict=True)]
    m = mean(d)
    se = math.sqrt(sum((v - m) ** 2 for v in d) / (len(d) - 1) / len(d))
    lo, hi = diff_ci(before, after, paired=True)
    assert lo == pytest.approx(m - 1.96 * se, abs=0.006) and hi == pytest.approx(m + 1.96 * se, abs=0.006)


def test_independent_bootstrap_matches_the_two_sample_normal_interval():
    rng = random.Random(2)
    a = [float(rng.random() < 0.3) for _ in range(1500)]
    b = [float(rng.random() < 0.5) for _ in range(1000)]
    pa, pb = mean(a), mean(b)
    se = math.sqrt(pa * (1 - pa) / len(a) + pb * (1 - pb) / len(b))
    lo, hi = diff_ci(a, b, paired=False)
    assert lo == pytest.approx(pb - pa - 1.96 * se, abs=0.008) and hi == pytest.approx(pb - pa + 1.96 * se, abs=0.008)
    # Pairing the independent samples by position would be wrong, and is refused for unequal lengths.
    with pytest.raises(ValueError, match="same length"):
        diff_ci(a, b, paired=True)


def test_pearson_interval_matches_fishers_z_for_many_points_and_widens_for_few():
    rng = random.Random(3)
    xs = [rng.gauss(0, 1) for _ in range(500)]
    ys = [0.6 * x + 0.8 * rng.gauss(0, 1) for x in xs]
    r = pearson(xs, ys)
    z, se = math.atanh(r), 1 / math.sqrt(len(xs) - 3)
    lo, hi = pearson_ci(xs, ys)
    assert lo == pytest.approx(math.tanh(z - 1.96 * se), abs=0.02) and hi == pytest.approx(
        math.tanh(z + 1.96 * se), abs=0.02
    )
    few = pearson_ci(xs[:8], ys[:8])
    assert few[1] - few[0] > 2 * (hi - lo)
    assert all(math.isnan(x) for x in pearson_ci([1.0, 2.0], [1.0, 2.0]))
    # Three or four points: resamples mostly repeat points (r = ±1), so no interval is given.
    assert all(math.isnan(x) for x in pearson_ci([0.5, 0.75, 1.0], [-0.125, -0.125, 0.0]))
    assert all(math.isnan(x) for x in pearson_ci(xs[:4], ys[:4]))
    assert not any(math.isnan(x) for x in pearson_ci(xs[:5], ys[:5]))


def test_bootstrap_is_seeded():
    data = [float(i % 3 == 0) for i in range(90)]
    assert bootstrap_ci(mean, data, seed=4) == bootstrap_ci(mean, data, seed=4) != bootstrap_ci(mean, data, seed=5)

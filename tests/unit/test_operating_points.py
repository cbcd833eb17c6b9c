"""The operating-point count follows its stated definition."""

from moebench.report.prism import operating_points


def test_monotone_distinct_points_all_count():
    assert operating_points([(1, 30.0), (2, 20.0), (3, 15.0)], 0.01) == 3


def test_inversions_and_tiny_gains_do_not_count():
    # 2.5 is worse than 2 (unstable); 3 improves by only 0.5% (not distinct at 1%)
    points = [(1, 30.0), (2, 20.0), (2.5, 21.0), (3, 19.9)]
    assert operating_points(points, 0.01) == 2
    assert operating_points(points, 0.001) == 3  # distinct at a finer tolerance


def test_order_is_by_cost_not_by_input_order():
    assert operating_points([(3, 15.0), (1, 30.0), (2, 20.0)], 0.01) == 3

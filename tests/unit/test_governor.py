"""The governor's k* is the brute-force argmax of Theta(k), and falls when acceptance falls."""

import pytest

from moebench.speq.governor import Governor


def table_governor(p, io_per_token=0.010, **kw):
    # hand-made cost table: drafting 2 ms/token + 1 ms, verifying 5 ms + 1 ms/token, I/O grows
    # with k
    return Governor(
        t_draft=lambda k: 0.001 + 0.002 * k,
        t_verify=lambda n: 0.005 + 0.001 * n,
        t_pcie_new=lambda k: io_per_token * (k + 1) ** 0.5,
        k_max=len(p),
        **kw,
        p=list(p),
    )


def brute(g):
    best, arg = -1.0, None
    for k in range(g.k_min, g.k_slo() + 1):
        survive, tokens = 1.0, 1.0
        for j in range(k):
            survive *= g.p[j]
            tokens += survive
        theta = tokens / (max(g.t_draft(k), g.t_pcie_init) + g.t_pcie_new(k) + g.t_verify(k + 1))
        if theta > best:
            best, arg = theta, k
    return arg


@pytest.mark.parametrize("accept", [0.3, 0.6, 0.8, 0.9, 0.97])
def test_k_star_is_the_brute_force_argmax(accept):
    g = table_governor([accept] * 12)
    g.p = [accept] * 12  # __post_init__ resets p to the prior
    assert g.choose() == brute(g)


def test_k_star_falls_when_acceptance_falls():
    high, low = table_governor([0.95] * 12), table_governor([0.4] * 12)
    high.p, low.p = [0.95] * 12, [0.4] * 12
    assert low.choose() < high.choose()


def test_observations_move_the_ema_and_k_star_down():
    g = table_governor([0.9] * 12)
    first = g.choose()
    for _ in range(30):
        g.observe(first, accepted=0)  # every first draft rejected
    assert g.p[0] < 0.01
    assert g.choose() < first


def test_ttft_budget_caps_k():
    g = table_governor([0.99] * 12, ttft_budget_sec=0.05)
    g.p = [0.99] * 12
    assert g.cycle_sec(g.k_slo()) <= 0.05 < g.cycle_sec(g.k_slo() + 1)
    assert g.choose() <= g.k_slo()


def test_fixed_k_for_the_ablation():
    g = table_governor([0.5] * 8, fixed_k=4)
    assert g.choose() == 4


def test_loads_grow_twice_as_fast_once_the_union_outgrows_the_slots():
    from moebench.speq.governor import expected_loads

    assert expected_loads(4, 6, 0.5) == 2.0  # fits: only misses at the observed rate
    assert expected_loads(8, 6, 0.5) == 0.5 * 6 + 2 * 2  # 2 beyond the slots: load + come back


def thrash_governor(slots: float):
    """Hand-made costs: 16 experts, top-2, 1 ms per copy x 32 layers, cheap draft and verify,
    perfect acceptance."""
    from moebench.speq.governor import Governor, expected_loads

    def distinct(n):
        return 16 * (1 - (1 - 2 / 16) ** n)

    g = Governor(
        t_draft=lambda k: 0.002 * k,
        t_verify=lambda n: 0.02 + 0.001 * n,
        t_pcie_new=lambda k: 32 * 1e-3 * expected_loads(distinct(k + 1), slots, 0.3),
        k_max=8,
    )
    g.p = [1.0] * 8
    return g


def test_a_smaller_k_wins_when_the_verify_union_would_thrash_the_cache():
    roomy, tight = thrash_governor(slots=16).choose(), thrash_governor(slots=3).choose()
    assert roomy == 8  # nothing thrashes: the longest draft amortises best
    assert tight < roomy  # with 3 slots, k + 1 tokens' union (> 3 experts) evicts itself


def bytes_governor(io_sec: dict[int, float], accept: float, overlap: bool = True, **kw):
    """The bytes objective on a hand-made table: link seconds per cycle of k, 4 ms of draft
    per token, a 10 ms verify."""
    g = Governor(
        t_draft=lambda k: 0.004 * k,
        t_verify=lambda n: 0.010,
        t_pcie_new=lambda k: 0.0,
        t_io=lambda k, tokens: io_sec[k],
        objective="bytes",
        overlap=overlap,
        k_max=len(io_sec),
        **kw,
    )
    g.p = [accept] * len(io_sec)
    return g


def test_the_bytes_objective_picks_the_fewest_seconds_per_emitted_token():
    io = {1: 0.20, 2: 0.26, 3: 0.31, 4: 0.50}  # the verify union outgrows the slots at k = 4
    g = bytes_governor(io, accept=0.9)
    per_token = {k: max(io[k], 0.004 * k + 0.010) / g.tokens(k) for k in io}
    assert g.choose() == min(per_token, key=per_token.get) == 3
    # with copies that cannot overlap compute, the compute term adds instead of hiding
    serial = bytes_governor(io, accept=0.9, overlap=False)
    assert serial.cycle_sec(2) == pytest.approx(0.26 + 0.018)


def test_the_bytes_objective_drafts_less_when_drafts_are_rejected():
    io = {1: 0.20, 2: 0.26, 3: 0.31, 4: 0.50}
    assert bytes_governor(io, accept=0.2).choose() == 1 < bytes_governor(io, accept=0.9).choose()


def test_the_offline_ttft_profile_is_taken_once_and_kept():
    io = {1: 0.20, 2: 0.26, 3: 0.31, 4: 0.50}
    g = bytes_governor(io, accept=0.9, ttft_budget_sec=0.27, ttft_profile="offline")
    assert g.profile_sec == pytest.approx({1: 0.20, 2: 0.26, 3: 0.31, 4: 0.50})
    assert (
        g.k_slo() == 2 and g.choose() == 2
    )  # k = 3 would be cheaper per token but breaks the budget
    io[1] = io[2] = 1.0  # the costs change during the run: the paper's k_SLO does not move
    assert g.k_slo() == 2
    online = bytes_governor(io, accept=0.9, ttft_budget_sec=0.27, ttft_profile="online")
    assert online.k_slo() == online.k_min  # re-derived from the current costs, nothing fits

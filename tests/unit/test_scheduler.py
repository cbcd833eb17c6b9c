"""MoE-Prism's cloud scheduler and its baselines on scripted arrivals, under the virtual clock."""

import pytest

from moebench.engine.costs import CostModel
from moebench.models.catalog import real_model_shape
from moebench.prism.scheduler import Request, Scheduler
from moebench.prism.serving import simulate
from moebench.prism.serving_costs import Granularity, ServingCosts, carved_shape


@pytest.fixture
def costs(a100):
    return CostModel(a100, real_model_shape("dsv2lite"))


def model(costs, kind="prism"):
    return Granularity(kind, costs, n=4, prompt_len=128, new_tokens=8)


def requests(*specs):
    """(arrival, k_min) pairs -> requests with ids in arrival order."""
    return [Request(i, t, k, 136) for i, (t, k) in enumerate(specs)]


def test_cost_table_grows_with_batch_and_level(costs):
    m = model(costs)
    assert m.cost(1, 4) < m.cost(1, 12) < m.cost(1, 24)
    assert m.cost(1, 12) < m.cost(8, 12) < m.cost(32, 12)
    assert m.cost(32, 12) / 32 < m.cost(1, 12)  # batching amortises the weights


def test_carved_model_at_whole_experts_costs_about_the_original(costs):
    carved = ServingCosts(CostModel(costs.hw, carved_shape(costs.shape, 4)), 128, 8)
    original = ServingCosts(costs, 128, 8)
    for batch, experts in ((1, 6), (16, 3)):
        ratio = sum(carved.batch_sec(batch, 4 * experts)) / sum(original.batch_sec(batch, experts))
        assert ratio == pytest.approx(1.0, abs=0.05)  # only the 4x wider router differs


def test_original_granularity_rounds_floors_up_to_whole_experts(costs):
    m = model(costs, "original")
    assert [m.level(k) for k in (1, 4, 5, 9, 24)] == [4, 4, 8, 12, 24]
    assert model(costs).level(9) == 9


def test_fifo_launches_oldest_when_free_at_the_batch_max_floor(costs):
    reqs = requests((0.0, 3), (0.0001, 9), (0.0002, 2), (0.0003, 5))
    launches = simulate(reqs, Scheduler("fifo", model(costs, "original"), b_max=2, t_max=1.0))
    assert [[r.id for r in b.requests] for b in launches] == [[0], [1, 2], [3]]
    assert [b.level for b in launches] == [4, 12, 8]  # max floor, rounded up to whole experts
    assert launches[1].time == pytest.approx(reqs[0].finish)
    assert all(r.level >= r.k_min for r in reqs)


def test_fullbatch_waits_for_a_full_batch_then_drains(costs):
    reqs = requests((0.0, 4), (1.0, 4), (2.0, 4))
    launches = simulate(reqs, Scheduler("fullbatch", model(costs, "original"), b_max=2, t_max=1.0))
    assert launches[0].time == 1.0 and launches[0].trigger == "batch_full"
    assert [r.id for r in launches[1].requests] == [2] and launches[1].trigger == "drain"


def test_prism_upgrades_a_low_floor_into_the_better_batch(costs):
    # R_A (k_min 2) and R_B (k_min 8) wait together: one batch at m = 8 beats two batches.
    reqs = requests((0.0, 24), (0.0001, 2), (0.0002, 8))
    launches = simulate(reqs, Scheduler("prism", model(costs), b_max=8, t_max=100.0))
    assert [[r.id for r in b.requests] for b in launches] == [[0], [1, 2]]
    assert launches[1].level == 8 and launches[1].trigger == "utility"


def test_prism_timeout_serves_a_starving_high_floor_request(costs):
    m = model(costs)
    busy = m.cost(1, 24)
    # A high-floor request, then a stream of cheap low-floor ones that utility would prefer.
    specs = [(0.0, 1), (0.00001, 24)] + [(0.00002 + i * busy / 4, 1) for i in range(40)]
    reqs = requests(*specs)
    launches = simulate(reqs, Scheduler("prism", m, b_max=1, t_max=3 * busy))
    high = reqs[1]
    served = next(b for b in launches if high in b.requests)
    assert served.trigger == "timeout" and served.level == 24
    assert high.launch - high.arrival <= 3 * busy + m.cost(
        1, 24
    )  # served at the first launch past T_max
    without = requests(*specs)
    simulate(without, Scheduler("prism", m, b_max=1, t_max=1e9))
    assert without[1].launch > high.launch  # utility alone lets it starve longer


def test_prism_batch_full_trigger(costs):
    reqs = requests((0.0, 24), *[(0.0001 * (i + 1), 2) for i in range(3)])
    launches = simulate(reqs, Scheduler("prism", model(costs), b_max=2, t_max=100.0))
    assert launches[1].trigger == "batch_full" and len(launches[1].requests) == 2


def test_simulation_is_deterministic(costs):
    def run():
        reqs = requests(*[(0.001 * i, 1 + (7 * i) % 24) for i in range(200)])
        simulate(reqs, Scheduler("prism", model(costs), b_max=16, t_max=0.05))
        return [(r.launch, r.finish, r.level) for r in reqs]

    assert run() == run()

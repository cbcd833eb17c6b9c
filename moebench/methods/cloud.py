"""`cloud`: a serving simulation of MoE-Prism's quality-constrained scheduler or a baseline.

No model runs: the charged model's sizes on the hardware profile give the cost table
C(batch, m), Poisson arrivals with quality floors give the requests, and the scheduler
(prism/scheduler.py) decides batches under the virtual clock. Options: policy (prism | fifo
| fullbatch), granularity (prism: the carved model runs any m; original: m rounds up to whole
experts), n, b_max, t_max_sec. FIFO and FullBatch on the original model are the paper's
baselines; the mixed pairs are its "Model Only" and "System Only" ablations.
"""

from __future__ import annotations

from moebench.engine.costs import CostModel
from moebench.prism.scheduler import Scheduler
from moebench.prism.serving import poisson_requests, serving_metrics, simulate
from moebench.prism.serving_costs import Granularity


class CloudServing:
    clock_label = "virtual"

    def __init__(self, setup, loaded, costs: CostModel):
        self.setup, opt = setup, setup.options
        self.policy, granularity, n, self.b_max = opt.policy, opt.granularity, opt.n, opt.b_max
        t_max_x_slo = opt.t_max_x_slo
        w = setup.workload
        self.model = Granularity(granularity, costs, n, w.prompt_len, w.new_tokens)
        isolated = self.model.cost(1, self.model.max_level)
        self.slo_sec = w.arrivals["slo_x_isolated"] * isolated
        self.t_max = t_max_x_slo * self.slo_sec
        self.options = {
            "policy": self.policy,
            "granularity": granularity,
            "n": n,
            "b_max": self.b_max,
            "t_max_sec": self.t_max,
            "slo_sec": self.slo_sec,
            "isolated_e2e_sec_at_max_level": isolated,
            "max_level": self.model.max_level,
        }

    def serve(self) -> dict[str, float]:
        w = self.setup.workload
        requests = poisson_requests(w, self.model.max_level, self.setup.seed)
        launches = simulate(requests, Scheduler(self.policy, self.model, self.b_max, self.t_max))
        self.levels = {}
        for b in launches:
            self.levels[b.level] = self.levels.get(b.level, 0) + 1
        return serving_metrics(
            requests, launches, w.arrivals["duration_sec"], self.slo_sec, w.new_tokens
        )

    def details(self) -> dict:
        return {"serving": self.options, "batches_by_level": dict(sorted(self.levels.items()))}

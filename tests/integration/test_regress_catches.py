"""`python -m moebench.regress` fails on a real regression: an LRU cache that evicts the most
recently used expert instead of the least moves the golden hit fractions."""

from moebench import regress
from moebench.engine import policy


def most_recently_used(self, candidates, time):
    return max(candidates, key=lambda e: (self.last.get(e, -1), e))


def test_regress_fails_when_lru_evicts_the_most_recent_expert(ci_cache, monkeypatch, capsys):
    monkeypatch.setattr(policy.LRU, "victim", most_recently_used)
    assert regress.main(["--quick"]) == 1
    out = capsys.readouterr().out
    moved = [line.split()[0] for line in out.splitlines() if line.rstrip().endswith("NO")]
    assert "proxy_ci/mixtral_offloading/expert_hit_frac" in moved, out

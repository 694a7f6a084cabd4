"""The public hypothesis strategies generate what their docstrings promise."""

from __future__ import annotations

import subprocess
import sys

import pytest
import sympy as sp
from hypothesis import given, settings

import queueing_llm as ql
import queueing_llm.strategies as qs
from queueing_llm.errors import ParameterError

FEW = settings(max_examples=40, deadline=None, derandomize=True, database=None)


def load_of(model: ql.ContinuousBatching) -> sp.Expr:
    (t,) = model.types
    return t.arrival_rate * t.l1 / model.B


@pytest.mark.slow
def test_import_queueing_llm_does_not_import_hypothesis():
    code = "import sys, queueing_llm; assert 'hypothesis' not in sys.modules, 'hypothesis imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


@FEW
@given(qs.finite_pmfs(2, 9, 3))
def test_finite_pmfs(law):
    values = [v for v, _ in law.probabilities]
    assert 1 <= len(values) <= 3 and all(2 <= v <= 9 for v in values)
    assert sum(p for _, p in law.probabilities) == 1
    assert all(isinstance(p, sp.Rational) and p > 0 for _, p in law.probabilities)


@FEW
@given(qs.arrival_laws(max_mean=1.5, min_mean=0.1))
def test_arrival_laws_have_mean_in_range(law):
    assert isinstance(law, (ql.Poisson, ql.Bernoulli, ql.Binomial, ql.FinitePMF))
    assert sp.Rational(1, 10) <= law.mean <= sp.Rational(3, 2)
    assert not law.is_symbolic and law.support_min >= 0


@FEW
@given(qs.decode_laws(max_mean=5, max_value=7))
def test_decode_laws_live_on_positive_integers(law):
    assert law.support_min >= 1 and law.mean <= 5
    assert isinstance(law, (ql.Deterministic, ql.Geometric, ql.FinitePMF))
    if not isinstance(law, ql.Geometric):
        assert law.support_max <= 7


@FEW
@given(qs.decode_laws(kinds=("geometric",), max_mean=10))
def test_geometric_decode_laws(law):
    assert isinstance(law, ql.Geometric) and sp.Rational(1, 10) <= law.q <= 1


@FEW
@given(qs.request_types())
def test_request_types(rt):
    assert isinstance(rt, ql.RequestType) and rt.arrival_rate is not None and rt.decode.support_min >= 1


@FEW
@given(qs.policies())
def test_policies_are_policy_values(policy):
    assert isinstance(policy, ql.Policy) and policy.name in qs.POLICY_KINDS
    if isinstance(policy, ql.RateLimited) and policy.rate is not None:
        assert 0 < policy.rate <= 5


@FEW
@given(qs.stable_queues(load=(0.3, 0.8), batch_caps=(2, 6), arrivals=("poisson", "bernoulli", "binomial")))
def test_stable_queues(model):
    assert isinstance(model.policy, ql.FcfsCap) and model.M == sp.oo and 2 <= model.B <= 6
    assert sp.Rational(3, 10) <= load_of(model) <= sp.Rational(4, 5)
    arrivals = model.types[0].arrivals
    if isinstance(arrivals, ql.Bernoulli):
        assert arrivals.p <= 1


@FEW
@given(qs.queues(load=(0.5, 1.5), waiting_caps=(0, 5)))
def test_queues_with_a_waiting_cap(model):
    assert 0 <= model.waiting_cap <= 5 and sp.Rational(1, 2) <= load_of(model) <= sp.Rational(3, 2)


@FEW
@given(qs.overloaded_queues(load=(1.1, 1.5), decode=("geometric",)))
def test_overloaded_queues(model):
    assert sp.Rational(11, 10) <= load_of(model) <= sp.Rational(3, 2)
    assert isinstance(model.types[0].decode, ql.Geometric)


@FEW
@given(qs.saturated_models(max_types=3, policy_kinds=("greedy", "rate_limited", "reserve")))
def test_saturated_models_fit_one_request(model):
    assert all(t.arrivals is None for t in model.types) and 1 <= model.K <= 3
    assert model.M > max(t.max_tokens for t in model.types)
    assert model.policy.name in ("greedy", "rate_limited", "reserve")


@FEW
@given(qs.saturated_models(random_lengths=True))
def test_saturated_models_with_random_lengths(model):
    assert model.M > max(t.max_tokens for t in model.types)


def test_bad_arguments_are_rejected_with_the_parameter_named():
    with pytest.raises(ParameterError, match="stable_queues needs load below 1"):
        qs.stable_queues(load=(0.5, 1.2))
    with pytest.raises(ParameterError, match="overloaded_queues needs load above 1"):
        qs.overloaded_queues(load=(0.5, 1.2))
    with pytest.raises(ParameterError, match="decode kinds"):
        qs.decode_laws(kinds=("weibull",))
    with pytest.raises(ParameterError, match="policy kinds"):
        qs.policies(kinds=())
    with pytest.raises(ParameterError, match="policy_kinds must not include"):
        qs.saturated_models(policy_kinds=("fcfs_cap",))
    with pytest.raises(ParameterError, match="waiting_caps"):
        qs.queues(waiting_caps=(3, 1))
    with pytest.raises(ParameterError, match="probability range"):
        qs.probabilities(0.5, 0.2)


@FEW
@given(qs.nested_wait_policies(max_boundary=1))
def test_nested_wait_policies_with_boundary_one_have_one_segment(policy):
    assert list(policy.boundaries) == [1] and len(policy.thresholds) == 1


@FEW
@given(qs.nested_wait_policies(max_boundary=9, max_segments=3, max_threshold=2))
def test_nested_wait_policies_respect_their_bounds(policy):
    b = list(policy.boundaries)
    assert b[-1] == 9 and b == sorted(set(b)) and len(b) <= 3
    assert all(1 <= n <= 2 for n in policy.thresholds)


def test_nested_wait_policies_refuse_bad_bounds():
    for name, kwargs in (("max_boundary", {"max_boundary": 0}), ("max_segments", {"max_segments": 0}),
                         ("max_threshold", {"max_threshold": 0})):
        with pytest.raises(ParameterError, match=name):
            qs.nested_wait_policies(**kwargs)

"""queueing-llm: queueing theory of LLM inference.

One model object; theory derives from it, simulation runs it, verification compares
the two. See the model chapter for the conventions and the README for a tour.
"""

from . import catalogue  # noqa: E402,F401,I001  (registers the built-in theorems)
from .errors import (
    LawError,
    ModelError,
    NoEquilibriumError,
    ParameterError,
    PolicyError,
    SymbolicValueError,
    TraceError,
)
from .laws import (
    Bernoulli,
    Binomial,
    Deterministic,
    Empirical,
    FinitePMF,
    Geometric,
    Law,
    Poisson,
    Regular,
    regular_mix,
)
from .model import (
    ContinuousBatching,
    LinearIterationTime,
    PoissonProcess,
    RequestType,
    default_model,
)
from .policies import FcfsCap, Greedy, NestedWait, Policy, RateLimited, Reserve, Static, Wait, rate_limited
from .sim import RequestRecords, Trajectory, simulate
from .stats import Interval, batch_means_ci, mser5, replications_ci
from .theorems import Theorem, TheoremRegistry, theorems
from .traces import Trace, builtin_traces, load_trace
from .verdict import Verdict
from .verify import Verdicts, verify, verify_all
from . import report  # noqa: E402,I001  (the report package: ql.report.report(model), tables, figures)
from .report import Report
from .sweep import SweepResult, grid, sweep
from .scheduling import ThresholdWarning, fluid_nested_wait, fluid_wait
from .stable_range import HorizonWarning, StableRange, stable_range
from .compare import PolicyComparison, compare_policies
from .cluster import Cluster, ClusterRun, coprime_routing

__version__ = "0.1.0"

__all__ = [
    "Bernoulli",
    "Binomial",
    "ContinuousBatching",
    "Deterministic",
    "Empirical",
    "FcfsCap",
    "FinitePMF",
    "Geometric",
    "Greedy",
    "Law",
    "LawError",
    "LinearIterationTime",
    "ModelError",
    "ParameterError",
    "Poisson",
    "Regular",
    "regular_mix",
    "PoissonProcess",
    "Policy",
    "PolicyError",
    "RateLimited",
    "RequestType",
    "Reserve",
    "Static",
    "Wait",
    "NestedWait",
    "fluid_wait",
    "fluid_nested_wait",
    "ThresholdWarning",
    "HorizonWarning",
    "NoEquilibriumError",
    "stable_range",
    "compare_policies",
    "Cluster",
    "ClusterRun",
    "coprime_routing",
    "PolicyComparison",
    "StableRange",
    "SymbolicValueError",
    "TraceError",
    "Interval",
    "Theorem",
    "TheoremRegistry",
    "Verdict",
    "Verdicts",
    "batch_means_ci",
    "mser5",
    "replications_ci",
    "theorems",
    "default_model",
    "rate_limited",
    "simulate",
    "Trajectory",
    "RequestRecords",
    "verify",
    "verify_all",
    "Trace",
    "builtin_traces",
    "load_trace",
    "report",
    "Report",
    "SweepResult",
    "grid",
    "sweep",
]

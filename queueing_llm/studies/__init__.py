"""The papers' experiments as studies anyone can regenerate (``queueing-llm paper NAME``).

:mod:`.adls26`: [ADLS26]'s Tables 4, 5 and 8 and Figure 6, our numbers with confidence
intervals beside the paper's, with a column saying whether they agree. :mod:`.alsw25`:
[ALSW25]'s fluid examples from the registry and WAIT against greedy on Example 3.
"""

from . import adls26, alsw25

__all__ = ["adls26", "alsw25", "STUDIES"]

STUDIES = {"adls26": adls26, "alsw25": alsw25}
"""Study modules by the name ``queueing-llm paper`` takes."""

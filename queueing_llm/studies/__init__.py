"""The papers' experiments as studies anyone can regenerate (``queueing-llm paper NAME``).

:mod:`.adls26`: [ADLS26]'s Tables 4, 5 and 8 and Figure 6, our numbers with confidence
intervals beside the paper's, with a column saying whether they agree.
"""

from . import adls26

__all__ = ["adls26", "STUDIES"]

STUDIES = {"adls26": adls26}
"""Study modules by the name ``queueing-llm paper`` takes."""

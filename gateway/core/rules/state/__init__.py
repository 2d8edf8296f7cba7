"""Cross-message rules (level B): checks against what earlier accepted messages established.

Every rule here needs ``ctx.history`` (a :class:`gateway.core.dossier.History`) and is skipped
without it, so ``gateway validate`` stays in-message only. Each violation names an element
inside the class at fault, so the retour builder puts the rule's retourcode on that class
(StartProduct, ToegewezenProduct, Verzoek, Antwoord, Prestatie, …).

Where the standard lets a message correct itself (a delete + new delivery in one JW305/JW307,
IV008; credits before debits in one JW323, OP366) the rules first apply the message's own
deletions/credits to the history they compare against.

The rules are registered by topic, in this order: identification and start/stop
(:mod:`.deliveries`), allocations, requests and answers (:mod:`.allocations`), declarations with
their volume and budget limits (:mod:`.claims`).
"""

from __future__ import annotations

# Imported for their registrations, in the order the rules are registered (not alphabetical).
# isort: off
from gateway.core.rules.state import deliveries  # noqa: F401
from gateway.core.rules.state import allocations  # noqa: F401
from gateway.core.rules.state import claims  # noqa: F401
# isort: on

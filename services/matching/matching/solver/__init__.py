"""The matching solver: a round (``domain.model.Problem``) and a policy in, a ``Solution`` out.

Where to start: ``paths.solve`` picks the path a round takes; each module below holds one concern.

Modules
- ``paths``: the entry points. ``solve`` sends small rounds, CBC and solver factories to the plain path
  and the rest to ``solve_arrays``, which picks the array path's method for the policy.
- ``common``: what every path shares: ``Solution``, ``Progress`` (read by a watcher while HiGHS runs),
  the gap wanted (``mip_gap``), the solver factory and versions.
- ``pulp_model``: the plain model in PuLP, the definition: variables, every hard rule's rows from the
  domain, the objectives, the model hash and the LP/MPS export.
- ``plain``: the plain path: the PuLP model solved objective by objective through PuLP.
- ``diagnosis``: an infeasible round's elastic model, naming the rule groups that must give.
- ``arrays``: eligibility by vectorised joins and the same model as (row, column, coefficient) arrays
  (``build_arrays``), its hash and its check of a matching against every row (``ArrayModel.holds``).
- ``highs``: a model as triplets handed to HiGHS in one call, start values, the progress callback.
- ``stages``: the array path's driver (``solve_stages``): the policy's objectives in order, each stage
  by the network path, the side path or the full MIP.
- ``redundant``: the rows that cannot bind (supervision hours, institution capacity, firm caps whose
  bound the team and assignment rows already keep), left out of the model solved before the path is
  chosen (``stages``), so such a round keeps the network path; the hash and the check of a matching
  keep every row. ``hours_cannot_bind`` reads the same from the round for ``served.applies``.
- ``network``: the network path: the LP over the pairs by pricing, a later stage on the earlier one's
  optimal face, a one-stage round split by period and solved in parallel.
- ``side_path`` and ``tighter``: rounds with side constraints: the LP bound on a tighter formulation of
  the same matchings, a MIP near the LP optimum, reduced-cost fixing.
- ``served``: ``max_served`` on a network round: each assignment split into its first team and the rest.
- ``stable``: ``stable`` at scale: cutting planes over the stability rows, started from deferred
  acceptance; ``stable_bound``: the bound on every stable matching's fit its gap is taken against (the
  network LP's duals, lowered by what keeping ranked pairs from blocking costs).
(``matching.memory``, outside this package, pauses the garbage collector while a round is solved.)

Each policy's method (``domain.policies`` defines the objectives; each is solved lexicographically)
- ``max_fit``, ``min_change``, ``rank_maximal``: ``stages`` on the network path where
  ``network.is_network`` holds once the redundant rows are left out (every stage an LP with an
  integral vertex), else ``side_path``; rounds
  of at most ``paths.ARRAYS_FROM_PAIRS`` pairs: ``plain``.
- ``max_served``: ``served`` where ``served.applies`` (supervision hours only where they cannot bind),
  else ``stages`` (side path: "served" counts the open/closed decisions).
- ``stable``: ``stable.solve_lazily`` from ``stable.LAZY_STABLE_FROM_PAIRS`` pairs, else ``stages`` with
  every stability row (fewest blocking pairs first, then fit).

Each rule family, in its plain and its array version
The plain version of every hard rule is a row builder in ``domain/model.py`` (``team_at_most_one``,
``assignment_team_range``, ``institution_capacity``, ``supervision_hours``, ``firm_caps``,
``pinned_pairs``, ``fairness_floors``, ``stability``; gathered by ``hard_rows``), whose ``Row`` objects
``pulp_model.build_model`` turns into PuLP constraints (a key that appears twice in a row is summed) and
``domain.model.violations`` uses to validate a matching. The array version of each family is a block of
``arrays.build_arrays`` (one ``out.add`` per family, named by its group; institution capacity and
supervision hours in ``arrays._capacity_rows``); the stability rows are the domain's own ``Row`` objects
copied by ``arrays.add_rows``. The network path reads its LP from the array model
(``network.network_relaxation``: minimum rows dropped, the maximum bounding the pairs) and
``tighter`` adds rows that keep every matching of the plain model.

How the tests keep them equal
- tests/unit/test_fast_paths.py: vectorised eligibility gives the domain's pairs and fits to the last
  bit; the arrays hold exactly the rows of the PuLP model, family by family; both paths give the same
  model hash and the same optimum at every policy stage; the network LP with pricing, the split by
  period and the side path keep the plain optimum.
- tests/unit/test_matching_stable.py: a row holding a variable twice is summed on every path; the rows
  of both models count exactly the blocking pairs of a plain-Python checker; ``stable`` has the fewest
  blocking pairs, then the best fit, on every path (exhaustive small rounds).
- tests/unit/test_matching_stable_bound.py: ``stable_bound`` lies between the best fit of an enumerated
  matching without blocking pairs and the best fit of any, on small random rounds.
- tests/unit/test_redundant_rows.py: the rows left out are those a plain-Python reading of each rule
  finds, no enumerated matching of the rows kept breaks one, the optimum is the plain path's at every
  stage, and the round goes the network path exactly when every supervision-hours row is redundant.
- tests/unit/test_tighter.py: every matching of the plain model is a solution of the tighter one, whose
  bound lies between the optimum and the plain bound.
- tests/unit/test_matching_served.py: the split round equals the side path and a brute force.
- tests/unit/test_optimiser.py, test_optimiser_v2.py, test_matching_policies.py,
  test_matching_rank_maximal.py: every policy against brute force and the validator.
"""

from .arrays import eligibility, precheck_supply
from .common import Progress, Solution, SolverFactory, library_versions
from .paths import solve
from .pulp_model import export_model

__all__ = ["Progress", "Solution", "SolverFactory", "eligibility", "export_model", "library_versions",
           "precheck_supply", "solve"]

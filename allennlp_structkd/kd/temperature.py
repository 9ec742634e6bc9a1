"""
Temperature for teacher targets, in its two modes (``KDLoss(temperature_mode=...)``).

``global``: the teacher's *whole-structure score* is divided by T, ``P_t^T(y) ∝ exp(Score_t(y)/T)``;
every teacher scales its scores by ``1/T`` before inference (a CRF's emissions, transitions, start
and end; a parser's arc, label and second-order scores; a span model's span potentials).

``local``: each *local* teacher distribution is tempered, ``softmax(log p / T)``:

* a distribution that factorises over positions (a MaxEnt tagger's tokens, a parser's heads and
  deprels per word, BIOES marginals given to a MaxEnt student): each position's distribution;
* a linear-chain CRF: its chain-rule factors. The CRF is the Markov chain
  ``P(y) = P(y_0) Π_i P(y_i | y_{i-1})`` with ``P(y_i=b | y_{i-1}=a) = P(a, b) / P(a)`` from its exact
  marginals; the tempered targets are the marginals of the Markov chain whose initial and conditional
  distributions are those, each tempered, ``q(y) = q_0(y_0) Π_i q_i(y_i | y_{i-1})``.

Why the CRF is tempered through its conditionals: tempering its unary and pairwise marginals
separately (``softmax((α+β)/T)`` and likewise for pairs) gives pair marginals that no longer sum to
the unary ones, and the factorised loss ``-Σ_u q(u) Score_s(u) + log Z_s`` is then no cross-entropy:
it is unbounded below. The marginals of one distribution ``q`` keep it a cross-entropy ``≥ H(q) ≥ 0``.
At ``T = 1`` both modes give the teacher's own marginals; for a MaxEnt teacher ``q_i(b | a) = q_i(b)``,
so local tempering is the per-token ``softmax(log p / T)``.
"""
from allennlp_structkd.structures.tempering import temper_chain, temper_distribution

__all__ = ["temper_chain", "temper_distribution"]

"""
What a teacher is for a batch of sentences: its distribution over its own output structure, and the one
adapter from that structure onto what the objectives take. A teacher model only builds one of these
(``KDTeacher.teacher_distribution``); each objective derives its targets from it
(``KDLoss.teacher_targets``), so no model asks which objective it teaches.

An objective asks for one of three kinds of targets (the recipes of :mod:`allennlp_structkd.kd.targets`),
and a structure gives the kinds whose method it defines (:meth:`TeacherDistribution.gives`):

* ``potentials``: :meth:`~TeacherDistribution.potentials`, the teacher's own scores over the student's label
  sequences (token KD, emissions, k-best sequences, logits and hidden states);
* ``unary_marginals``: :meth:`~TeacherDistribution.marginal_targets`, each position's marginals at the
  objective's temperature (Structural and Posterior KD, Wang et al. 2021's factorised objective);
* ``one_best``: :meth:`~TeacherDistribution.one_best_targets`, the best structure, one-hot (Top-1).

The structures:

* :class:`SequenceTeacher`: a tagger's or token classifier's distribution over label sequences (a linear
  chain or independent tokens, :class:`~allennlp_structkd.structures.potentials.Potentials`): every kind;
* :class:`ParseTeacher`: a graph parser's head distribution (first-order head selection, or a second-order
  parser's mean field) and its deprel scores, read as each word's head and deprel marginals (Cases 1b, 2b; the
  sequence-labeling parser student maps them onto its relative-PoS labels) or as its best tree (Top-1);
* :class:`SpanTeacher`: NER as parsing (a span chart), read as per-token BIOES marginals (Case 4).

A new teacher structure is one new subclass defining the methods of the kinds it gives.
"""
from abc import ABC
from typing import Dict, FrozenSet, Optional, Protocol

import torch
from allennlp.common.checks import ConfigurationError

from allennlp_structkd.kd.targets import ONE_BEST, POTENTIALS, UNARY_MARGINALS
from allennlp_structkd.structures import head_selection
from allennlp_structkd.structures.distribution import StructuredDistribution
from allennlp_structkd.structures.mst import mst_heads
from allennlp_structkd.structures.potentials import Potentials
from allennlp_structkd.structures.span_dp import SpanChart

Targets = Dict[str, torch.Tensor]


class Tempering(Protocol):
    """What a distribution reads of an objective (a :class:`~allennlp_structkd.kd.losses.KDLoss`): its temperature."""

    temperature: float

    @property
    def score_scale(self) -> float:
        """What every score is multiplied by before inference (``1/T`` in global mode, else 1)."""

    @property
    def local_temperature(self) -> float:
        """The temperature of each local factor (``T`` in local mode, else 1)."""

    def temper(self, probs: torch.Tensor, start_dim: int) -> torch.Tensor:
        """Local temperature of distributions over the dimensions from ``start_dim`` on (global mode: unchanged)."""

# which method gives each kind of target
_METHODS = {POTENTIALS: "potentials", UNARY_MARGINALS: "marginal_targets", ONE_BEST: "one_best_targets"}


class TeacherDistribution(ABC):
    """
    A teacher's outputs for a batch: ``mask`` ``(B, n)``, the words; :meth:`pseudo_labels`, its best labels
    ``(B, n)`` as placeholder gold for unlabeled sentences (or None); and the methods of the kinds of targets
    it gives (see the module docstring). Targets are computed without gradients.
    """

    mask: torch.Tensor

    def pseudo_labels(self) -> Optional[torch.Tensor]:
        """The best labels ``(B, n)`` in the teacher's label order, or None (a parser gives its tree as targets)."""
        return None

    def potentials(self) -> Potentials:
        """The teacher's own scores over the student's label sequences."""
        raise NotImplementedError(f"{type(self).__name__} gives no potentials")

    def marginal_targets(self, objective: Tempering, pairwise: bool) -> Targets:
        """Each position's marginals at ``objective``'s temperature; with ``pairwise``, the adjacent-pair marginals
        too where the structure has them."""
        raise NotImplementedError(f"{type(self).__name__} gives no marginals")

    def one_best_targets(self, objective: Tempering) -> Targets:
        """The best structure (at ``objective``'s temperature), one-hot."""
        raise NotImplementedError(f"{type(self).__name__} gives no best structure")

    def hidden_states(self) -> torch.Tensor:
        """The states ``(B, n, H)`` the teacher's scores were computed from, for representation-level KD."""
        raise ConfigurationError(f"this teacher ({type(self).__name__}) exposes no hidden states")

    def compact_marginals(self) -> Optional[Targets]:
        """Scores from which :meth:`marginal_targets` are recomputed exactly, smaller than the marginals (what a
        cache keeps: see ``StructuralKD.storage_targets``), or None where there are none."""
        return None

    @classmethod
    def gives(cls) -> FrozenSet[str]:
        """The kinds of targets this structure gives: those whose method it defines."""
        return frozenset(recipe for recipe, method in _METHODS.items()
                         if getattr(cls, method) is not getattr(TeacherDistribution, method))


def kbest_targets(scores: Potentials, k: int, temperature: float, weighted: bool) -> Targets:
    """
    The ``k`` best allowed label sequences of ``scores`` at a global ``temperature``: ``teacher_kbest_tags``
    ``(B, k, n)`` and ``teacher_kbest_weights`` ``(B, k)``, uniform over the sequences that exist or, ``weighted``,
    their probabilities renormalised over the k best (Wang et al. 2020, Eqs. 8 and 9). A sentence with fewer
    allowed sequences has weight 0 on the rows past them.
    """
    with torch.no_grad():
        chain = scores.detached().constrained().scaled(1.0 / temperature).as_chain()
        tags, best = chain.kbest(k)
        exists = torch.isfinite(best)
        if weighted:  # log Z cancels in the renormalisation
            weights = (best - torch.logsumexp(best, dim=1, keepdim=True)).exp()
        else:
            weights = exists.to(best.dtype) / exists.sum(1, keepdim=True).clamp(min=1).to(best.dtype)
        weights = torch.where(exists, weights, torch.zeros_like(weights))
        return {"teacher_kbest_tags": tags, "teacher_kbest_weights": weights}


class SequenceTeacher(TeacherDistribution):
    """
    A distribution over the student's label sequences: ``scores``, a linear chain or per-token softmax
    (:class:`~allennlp_structkd.structures.potentials.Potentials`, its constraints kept: targets come from the allowed
    sequences only), and ``best`` ``(B, n)``, the teacher's own decoding. ``own_scores``: whether ``scores`` are the
    teacher's own (a tagger's) rather than read from another label set (a token classifier whose labels map
    several onto one): only its own scores are potentials to learn from. ``hidden`` ``(B, n, H)``: the states its
    scores were computed from, where it exposes them (a tagger's encoder output or a chosen transformer layer).
    """

    def __init__(self, scores: Potentials, best: Optional[torch.Tensor] = None, own_scores: bool = True,
                 hidden: Optional[torch.Tensor] = None) -> None:
        self.scores, self.best, self.own_scores, self.mask = scores, best, own_scores, scores.mask
        self.hidden = hidden

    def hidden_states(self) -> torch.Tensor:
        if self.hidden is None:
            return super().hidden_states()
        return self.hidden

    def pseudo_labels(self) -> Optional[torch.Tensor]:
        return self.best

    def potentials(self) -> Potentials:
        if not self.own_scores:
            raise ConfigurationError("this teacher's scores are read from another label set: it gives its marginals "
                                     "and its best sequence, not potentials of its own")
        return self.scores

    def marginal_targets(self, objective: Tempering, pairwise: bool) -> Targets:
        with torch.no_grad():
            scores = self.scores.detached().constrained().scaled(objective.score_scale)
            unary, pair = scores.tempered_marginals(objective.local_temperature)
            targets = {"teacher_unary": unary}
            if pairwise and pair is not None:
                targets["teacher_pairwise"] = pair
            return targets

    def one_best_targets(self, objective: Tempering) -> Targets:
        return kbest_targets(self.scores, 1, objective.temperature, weighted=False)

    def compact_marginals(self) -> Targets:
        """The constrained scores: ``(n, L)`` emissions a sentence and the ``(L, L)`` transitions (and start and end
        scores) repeated per sentence, which the cache keeps once a teacher."""
        with torch.no_grad():
            constrained = self.scores.detached().constrained()
            batch = constrained.emissions.size(0)
            stored = {"teacher_emissions": constrained.emissions}
            for name, value in (("teacher_transitions", constrained.transitions), ("teacher_start", constrained.start),
                                ("teacher_end", constrained.end)):
                if value is not None:
                    stored[name] = value.unsqueeze(0).expand(batch, *value.shape)
            return stored


class ParseTeacher(TeacherDistribution):
    """
    A graph parser's outputs with the root at position 0 (:mod:`allennlp_structkd.structures.head_selection`'s
    conventions): ``heads``, its head distribution (:class:`~allennlp_structkd.structures.head_selection.HeadSelection`
    or :class:`~allennlp_structkd.structures.second_order.SecondOrderMeanField`, over ``(B, n+1, n+1)`` arcs),
    ``label_scores`` ``(B, n+1, n+1, R)`` (``R = 0``: no deprels) and ``mask`` ``(B, n+1)``. Targets, over the
    words (the root row dropped): ``teacher_head_probs`` ``(B, n, n+1)`` and ``teacher_deprel_probs`` ``(B, n, R)``,
    ``P(r | m) = Σ_h P(h | m) P(r | m, h)``. Temperature: global mode divides every score by T before inference;
    local mode tempers each word's head and deprel distributions.
    """

    def __init__(self, heads: StructuredDistribution, label_scores: torch.Tensor, mask: torch.Tensor) -> None:
        self.heads, self.label_scores, self.root_mask = heads, label_scores, mask
        self.mask = mask[:, 1:]

    def marginal_targets(self, objective: Tempering, pairwise: bool) -> Targets:
        with torch.no_grad():
            scale = objective.score_scale
            heads = self.heads.scaled(scale).marginals().unary
            deprels = head_selection.labels_given_heads(heads, (self.label_scores * scale).softmax(dim=3))
            return {"teacher_head_probs": objective.temper(heads[:, 1:], 2),
                    "teacher_deprel_probs": objective.temper(deprels[:, 1:], 2)}

    def one_best_targets(self, objective: Tempering) -> Targets:
        """The maximum spanning tree and each word's best deprel under its head, one-hot, with ``pseudo_heads`` and
        ``pseudo_deprels`` (that tree), which the reader turns into the student's labels for unlabeled sentences."""
        with torch.no_grad():
            scale = objective.score_scale
            heads = self.heads.scaled(scale).marginals().unary
            deprel_probs = (self.label_scores * scale).softmax(dim=3)
            best = mst_heads(heads.log(), self.root_mask)  # (B, n+1), root and padding 0
            num_labels = self.label_scores.size(3)
            at_head = deprel_probs.gather(2, best.view(*best.shape, 1, 1).expand(-1, -1, 1, num_labels)).squeeze(2)
            best_deprel = at_head.argmax(-1)
            words = head_selection.arc_mask(self.root_mask).any(2).unsqueeze(2)
            one_hot_heads = torch.nn.functional.one_hot(best, heads.size(2)).to(heads.dtype) * words
            targets = {"teacher_head_probs": one_hot_heads[:, 1:], "pseudo_heads": best[:, 1:],
                       "pseudo_deprels": best_deprel[:, 1:]}
            if num_labels:
                targets["teacher_deprel_probs"] = (torch.nn.functional.one_hot(best_deprel, num_labels).to(heads.dtype)
                                                   * words)[:, 1:]
            return targets


class SpanTeacher(TeacherDistribution):
    """
    NER as parsing: ``chart``, the exact distribution over sets of labeled spans
    (:class:`~allennlp_structkd.structures.span_dp.SpanChart`), read by a token-level student as each word's
    BIOES marginals ``teacher_unary`` ``(B, n, 1 + 4C)`` (Case 4); ``best`` ``(B, n)``, its best spans as BIOES tags.
    Temperature: global mode divides the span scores by T before the dynamic program; local mode tempers each
    word's BIOES distribution.
    """

    def __init__(self, chart: SpanChart, best: torch.Tensor) -> None:
        self.chart, self.best, self.mask = chart, best, chart.mask

    def pseudo_labels(self) -> Optional[torch.Tensor]:
        return self.best

    def marginal_targets(self, objective: Tempering, pairwise: bool) -> Targets:
        with torch.no_grad():
            return {"teacher_unary": objective.temper(self.chart.scaled(objective.score_scale).bioes_marginals(), 2)}

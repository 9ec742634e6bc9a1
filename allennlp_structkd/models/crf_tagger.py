import torch
from allennlp.data import Vocabulary
from allennlp.models import Model
from allennlp.modules.conditional_random_field import allowed_transitions

from allennlp_structkd.models.tagger import SequenceTagger
from allennlp_structkd.structures.potentials import ChainPotentials, Constraints, Potentials
from structkd_spacy import chain as serving_chain

# Forbidden transitions get this score rather than -inf: exp() of it is 0 in float32, and unlike
# -inf it keeps gradients free of NaN.
FORBIDDEN = -1e4


@Model.register("structkd_crf_tagger")
class CrfTagger(SequenceTagger):
    """
    A tagger with a linear-chain CRF decoder: emissions from the shared body, a transition matrix
    and start/end scores, exact training (``log Z`` by the forward algorithm), Viterbi decoding, and
    exact per-token marginals as confidences (``probs``) rather than one-hot Viterbi output.

    With a span ``label_encoding`` (BIO, IOB1, BIOES) invalid transitions score ``FORBIDDEN``.
    Parameters otherwise as :class:`SequenceTagger`.
    """

    # buffers (``register_buffer``), declared for the type checker: 0 where allowed, FORBIDDEN where not
    transition_penalty: torch.Tensor
    start_penalty: torch.Tensor
    end_penalty: torch.Tensor

    def __init__(self, vocab: Vocabulary, **kwargs) -> None:
        super().__init__(vocab, **kwargs)
        num_labels = self.num_labels
        self.transitions = torch.nn.Parameter(torch.empty(num_labels, num_labels))
        self.start_transitions = torch.nn.Parameter(torch.empty(num_labels))
        self.end_transitions = torch.nn.Parameter(torch.empty(num_labels))
        torch.nn.init.xavier_normal_(self.transitions)
        torch.nn.init.normal_(self.start_transitions)
        torch.nn.init.normal_(self.end_transitions)
        penalty = torch.full((num_labels + 2, num_labels + 2), FORBIDDEN)
        if self.label_encoding is not None:
            encoding = {"BIO": "BIO", "IOB1": "IOB1", "BIOES": "BIOUL", "BIOUL": "BIOUL"}[self.label_encoding]
            labels = {i: self._as_bioul(label) for i, label in enumerate(self.labels)} if encoding == "BIOUL" else dict(enumerate(self.labels))
            for i, j in allowed_transitions(encoding, labels):
                penalty[i, j] = 0.0
        else:
            penalty.zero_()
        # rows/columns num_labels and num_labels + 1 are START and END, as in allennlp
        self.register_buffer("transition_penalty", penalty[:num_labels, :num_labels].clone(), persistent=False)
        self.register_buffer("start_penalty", penalty[num_labels, :num_labels].clone(), persistent=False)
        self.register_buffer("end_penalty", penalty[:num_labels, num_labels + 1].clone(), persistent=False)

    @staticmethod
    def _as_bioul(label: str) -> str:
        """allennlp's constraint tables speak BIOUL; our BIOES labels use S- and E-."""
        if label[:2] == "S-":
            return "U-" + label[2:]
        if label[:2] == "E-":
            return "L-" + label[2:]
        return label

    def potentials(self, emissions: torch.Tensor, mask: torch.Tensor) -> Potentials:
        return ChainPotentials(
            emissions,
            mask.bool(),
            self.transitions + self.transition_penalty,
            self.start_transitions + self.start_penalty,
            self.end_transitions + self.end_penalty,
            Constraints(self.transition_penalty == 0, self.start_penalty == 0, self.end_penalty == 0),
        )

    def decode(self, potentials: Potentials, with_probs: bool = True):
        """
        The Viterbi tags ``(B, n)`` and, ``with_probs``, each word's exact marginals ``(B, n, L)``: by the serving
        package's inference (:mod:`structkd_spacy.chain`, numpy), the one copy that also serves the exported student,
        on the CPU whatever the model's device (one thread: the Viterbi at 0.7-1.4x the torch one's speed, the marginals 4-11x
        faster; docs/benchmarks.md). Training's log-partition and marginals, and the k-best Viterbi of the Top-K
        objectives, stay the torch ones of :mod:`~allennlp_structkd.structures.linear_chain`.
        """
        chain = potentials.as_chain()
        emissions = chain.emissions.detach()
        device, dtype = emissions.device, emissions.dtype
        if dtype not in (torch.float32, torch.float64):  # half precision: numpy decodes in float32
            emissions = emissions.float()
        labels = emissions.size(2)
        zeros = emissions.new_zeros(labels)
        scores, transitions, start, end = (t.detach().to(emissions.dtype).cpu().numpy() for t in (
            emissions, chain.transitions, zeros if chain.start is None else chain.start, zeros if chain.end is None else chain.end))
        mask = potentials.mask.cpu().numpy().astype(bool)
        tags = torch.from_numpy(serving_chain.viterbi(scores, transitions, start, end, mask)).to(device)
        probs = None
        if with_probs:
            unary, _ = serving_chain.marginals(scores, transitions, start, end, mask)
            probs = torch.from_numpy(unary).to(device=device, dtype=dtype)
        return tags, probs

"""
The student's network behind one small surface, run by PyTorch (``weights.pt``) or by ONNX Runtime
(``network.onnx``, written by ``python -m allennlp_structkd.export --onnx``): index arrays and a word mask
in, label scores out, as numpy arrays. Decoding (Viterbi, marginals, trees) is the same numpy code after
either. Neither backend is imported before it is chosen, so a serving install without PyTorch works.
"""
import contextlib
import importlib.util
import os
import threading
from typing import Dict, Iterator, List, Optional, Protocol, Tuple

import numpy

from structkd_spacy.folder import StudentFormatError

BACKENDS = ("auto", "torch", "onnx")
ONNX_FILE = "network.onnx"


class Network(Protocol):
    """What the component asks of a network."""

    name: str  # "torch" or "onnx", for messages and benchmarks
    crf: Optional[Tuple[numpy.ndarray, numpy.ndarray, numpy.ndarray]]  # a CRF's (transitions, start, end), float32

    def scores(self, arrays: Dict[str, numpy.ndarray], mask: numpy.ndarray) -> numpy.ndarray:
        """Label scores ``(B, n, L)`` (float32) of index arrays (one per input) and the word mask ``(B, n)``."""


class TorchThreads:
    """
    ``torch.set_num_threads`` for the model calls, restored afterwards, shared by every thread of the process: the
    first call in sets the count and remembers the one before, the last call out restores it. (A save and restore
    per call would race when threads share a pipeline: one restores while another still runs, and the other then
    "restores" the count the first one set.)
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.users = 0
        self.before = 0

    @contextlib.contextmanager
    def set_to(self, threads: int) -> Iterator[None]:
        if not threads:  # 0: torch's own count
            yield
            return
        import torch

        with self.lock:
            if self.users == 0:
                self.before = torch.get_num_threads()
                torch.set_num_threads(threads)
            self.users += 1
        try:
            yield
        finally:
            with self.lock:
                self.users -= 1
                if self.users == 0:
                    torch.set_num_threads(self.before)


TORCH_THREADS = TorchThreads()


class TorchNetwork:
    """The network of ``weights.pt`` in PyTorch (:mod:`structkd_spacy.student`); ``threads`` torch threads a call."""

    name = "torch"
    crf: Optional[Tuple[numpy.ndarray, numpy.ndarray, numpy.ndarray]]

    def __init__(self, folder: str, spec: Dict, where: str, threads: int) -> None:
        from structkd_spacy.student import load

        _, _, self.model = load(folder, spec, where)
        self.threads = threads
        self.crf = None
        if spec["kind"] == "crf_tagger":
            transitions, start, end = (getattr(self.model, name).detach().float().numpy() for name in ("transitions", "start", "end"))
            self.crf = (transitions, start, end)

    def scores(self, arrays: Dict[str, numpy.ndarray], mask: numpy.ndarray) -> numpy.ndarray:
        import torch

        with TORCH_THREADS.set_to(self.threads), torch.no_grad():
            tensors = {name: torch.from_numpy(array) for name, array in arrays.items()}
            return self.model(tensors, torch.from_numpy(mask)).float().numpy()


class OnnxNetwork:
    """
    The network of ``network.onnx`` in ONNX Runtime (CPU), ``threads`` intra-op threads (0: its own count). Its
    outputs are checked: a CRF's transitions, start and end scores once, at load, and every batch's scores, since
    the weights inside the graph cannot be read without the ``onnx`` package; a non-finite value is an error, never
    a wrong label served.
    """

    name = "onnx"
    crf: Optional[Tuple[numpy.ndarray, numpy.ndarray, numpy.ndarray]]

    def __init__(self, folder: str, spec: Dict, where: str, threads: int) -> None:
        import onnxruntime

        shown = os.path.join(where, ONNX_FILE)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3  # errors only: a served model is not a place for its optimiser's notes
        try:
            self.session = onnxruntime.InferenceSession(os.path.join(folder, ONNX_FILE), sess_options=options,
                                                        providers=["CPUExecutionProvider"])
        except Exception as error:  # noqa: BLE001 (onnxruntime raises its own kinds for a damaged or foreign file)
            raise StudentFormatError(f"{shown} is not an ONNX network ONNX Runtime reads ({str(error)[:200]}): export the "
                                     "student again with --onnx") from None
        self.shown = shown
        self.inputs = [item["name"] for item in spec["inputs"]] + ["mask"]
        found = [node.name for node in self.session.get_inputs()]
        if sorted(found) != sorted(self.inputs):
            raise StudentFormatError(f"{shown} takes inputs {found}, but student.json names {self.inputs}: the files are "
                                     "not of one export")
        outputs = [node.name for node in self.session.get_outputs()]
        self.crf = None
        if spec["kind"] == "crf_tagger":
            if outputs != ["scores", "transitions", "start", "end"]:
                raise StudentFormatError(f"{shown} gives {outputs}; a CRF student's network gives scores, transitions, "
                                         "start and end: export the student again with --onnx")
            probe = self._run(*self._probe(spec))
            transitions, start, end = (numpy.asarray(value, dtype=numpy.float32) for value in probe[1:4])
            crf = (transitions, start, end)
            labels = len(spec["labels"])
            if crf[0].shape != (labels, labels) or crf[1].shape != (labels,) or crf[2].shape != (labels,):
                raise StudentFormatError(f"{shown}: its CRF scores have shapes {[c.shape for c in crf]}, not those of "
                                         f"{labels} labels: the files are not of one export")
            for name, value in zip(("transitions", "start", "end"), crf):
                if not numpy.isfinite(value).all():
                    raise StudentFormatError(f"{shown}: its CRF's {name} hold NaN or infinite values: this student would "
                                             "serve wrong labels silently; export it from weights that are finite")
            self.crf = crf
        elif outputs[:1] != ["scores"]:
            raise StudentFormatError(f"{shown} gives {outputs}, not the label scores: export the student again with --onnx")

    @staticmethod
    def _probe(spec: Dict) -> Tuple[Dict[str, numpy.ndarray], numpy.ndarray]:
        """One sentence of one unknown word: index 1 in every input."""
        width = max([5] + [size for item in spec["inputs"] for size in [*(item.get("ngram_sizes") or []),
                                                                          item.get("min_padding", 0)]])
        arrays = {item["name"]: numpy.ones((1, 1) if item["type"] == "words" else (1, 1, width), dtype=numpy.int64)
                  for item in spec["inputs"]}
        return arrays, numpy.ones((1, 1), dtype=bool)

    def _run(self, arrays: Dict[str, numpy.ndarray], mask: numpy.ndarray) -> List[numpy.ndarray]:
        return self.session.run(None, {**arrays, "mask": mask})

    def scores(self, arrays: Dict[str, numpy.ndarray], mask: numpy.ndarray) -> numpy.ndarray:
        if mask.shape[1] == 0:  # no words: nothing for the graph to do
            labels = self.session.get_outputs()[0].shape[-1]
            return numpy.zeros((*mask.shape, labels if isinstance(labels, int) else 0), dtype=numpy.float32)
        scores = numpy.asarray(self._run(arrays, mask)[0], dtype=numpy.float32)
        if not numpy.isfinite(scores[mask]).all():
            raise ValueError(f"structkd_tagger: {self.shown} gave NaN or infinite label scores: its weights are not "
                             "finite; export the student again from weights that are")
        return scores


def installed(module: str) -> bool:
    """Whether ``module`` can be imported here (a broken install that raises counts as none)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def open_network(folder: str, spec: Dict, where: str, backend: str, threads: int) -> Network:
    """
    The network of a student folder for ``backend``: ``onnx`` (``network.onnx`` in ONNX Runtime), ``torch``
    (``weights.pt`` in PyTorch), or ``auto``: ONNX where the folder has the network and ONNX Runtime is installed,
    else PyTorch. What is missing is an error naming the install that gives it.
    """
    if backend not in BACKENDS:
        raise ValueError(f"structkd_tagger: backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    has_onnx = os.path.isfile(os.path.join(folder, ONNX_FILE))
    if backend == "auto":
        backend = "onnx" if has_onnx and installed("onnxruntime") else "torch"
    if backend == "onnx":
        if not has_onnx:
            raise StudentFormatError(f"{where} has no {ONNX_FILE}: export the student with `python -m "
                                     "allennlp_structkd.export ARCHIVE FOLDER --onnx` to serve it with ONNX Runtime")
        if not installed("onnxruntime"):
            raise ImportError("structkd_tagger: the onnx backend needs ONNX Runtime: pip install onnxruntime (or "
                              "structkd-spacy[onnx])")
        return OnnxNetwork(folder, spec, where, threads)
    if not installed("torch"):
        raise ImportError(f"structkd_tagger: serving {where} needs PyTorch (pip install structkd-spacy[torch]), or ONNX "
                          "Runtime with a student exported with --onnx (pip install structkd-spacy[onnx])")
    return TorchNetwork(folder, spec, where, threads)

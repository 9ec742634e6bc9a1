"""What a suite is: its runs, the teachers they name, and how its table is made. Typed, and pure: building
a :class:`Suite` reads at most the data it describes and writes nothing; the files its runs need (data
subsets, transfer text) are written by its ``prepare`` steps, which the runner calls once before training.
"""
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple, Union

# a run's environment variables: a value, or the archive of a teacher run
RunEnv = Dict[str, Union[str, "TeacherRef"]]


@dataclass(frozen=True)
class PrepareOptions:
    """What the command line tells a suite's prepare steps. ``drop_overlap``: transfer text that repeats a
    sentence of the labeled part, dev or test is dropped (else the step stops, saying how many);
    ``test_files``: the test data the run will be scored on (``--test-data``), which transfer text must not hold."""

    drop_overlap: bool = False
    test_files: Tuple[str, ...] = ()


@dataclass(frozen=True)
class TeacherRef:
    """The archive of a teacher run (its first seed), given to a student through an environment variable;
    the runner resolves it when the student starts. ``suite``: the suite whose run it is, when not the
    student's own (that suite must have been run first)."""

    run: str
    suite: Optional[str] = None


@dataclass(frozen=True)
class FineTune:
    """
    A teacher run made by fine-tuning a Hugging Face encoder as a token classifier
    (:mod:`experiments.finetune_token_classifier`) instead of ``allennlp train``: the run's folder holds the
    saved Hugging Face folder under ``model/``, which students name as their teacher. ``train``, ``dev``:
    CoNLL (``data_format`` conll) or CoNLL-U (conllu) files; the rest are the tool's options.
    """

    encoder: str
    train: str
    dev: str
    data_format: str = "conll"
    epochs: int = 3
    lr: float = 1e-4
    head_lr: Optional[float] = None
    batch_size: int = 16
    max_length: int = 128
    train_layers: Optional[int] = None

    def arguments(self, output: str, seed: int) -> List[str]:
        """The tool's command-line arguments that fine-tune into ``output`` with ``seed``."""
        return ["--encoder", self.encoder, "--train", self.train, "--dev", self.dev, "--format", self.data_format,
                "--output", output, "--epochs", str(self.epochs), "--lr", str(self.lr), "--batch-size", str(self.batch_size),
                "--max-length", str(self.max_length), "--seed", str(seed),
                *(["--head-lr", str(self.head_lr)] if self.head_lr is not None else []),
                *(["--train-layers", str(self.train_layers)] if self.train_layers is not None else [])]


@dataclass(frozen=True)
class SpacyTrain:
    """
    A run made by ``spacy train`` instead of ``allennlp train``: spaCy's default CPU config for ``pipeline``
    (``spacy init config --optimize efficiency``) trained on ``train`` and selected on ``dev`` (each a JSON
    ``{lang: CoNLL file}`` map, as the suites' ``TAGGING_TRAIN`` / ``TAGGING_DEV``). The run's folder keeps the
    config, the corpora as spaCy reads them, spaCy's output (``training/model-best``, ``training/model-last``)
    and ``metrics.json``.
    """

    train: str
    dev: str
    lang: str = "xx"
    pipeline: str = "ner"
    # settings laid over spaCy's config, as `spacy train` takes them ("--training.max_steps", "20"): for tests;
    # the suites train with spaCy's defaults
    overrides: Tuple[str, ...] = ()

    def init_command(self, python: str, config: str) -> List[str]:
        """``spacy init config`` of this pipeline into ``config``, run by ``python``."""
        return [python, "-m", "spacy", "init", "config", config, "--lang", self.lang, "--pipeline",
                self.pipeline, "--optimize", "efficiency", "--force"]


@dataclass
class Run:
    name: str  # row label in the table
    config: str  # relative to training_configs/ ("" for a fine-tuned run)
    env: Mapping[str, Union[str, TeacherRef]] = field(default_factory=dict)
    teacher: bool = False  # trained once (first seed only), before the students
    evaluate_on: Optional[str] = None  # also `allennlp evaluate` on this data (e.g. zero-shot)
    baseline: Optional[str] = None  # the run this one is tested against (Almost Stochastic Order)
    curve: Optional[Tuple[str, float]] = None  # (series, x): a point of the suite's plot
    lang: Optional[str] = None  # a per-language teacher's language (its gap to the students is taken there)
    finetune: Optional[FineTune] = None  # a Hugging Face token classifier fine-tuned by the tool, not `allennlp train`
    spacy: Optional[SpacyTrain] = None  # spaCy's own pipeline, trained by `spacy train`, not `allennlp train`

    @property
    def teachers(self) -> List[str]:
        """The runs of its own suite whose archives this run reads."""
        return [value.run for value in self.env.values() if isinstance(value, TeacherRef) and value.suite is None]


@dataclass
class Suite:
    description: str  # the first paragraph of its results page
    runs: List[Run]
    env: Dict[str, str]  # the environment of every run (a run's own env is laid over it)
    metric: str  # the metrics.json key that ranks and is tabled, e.g. best_validation_f1-measure-overall
    metric_name: str  # its column header, e.g. "dev span F1"
    eval_metric: Optional[str] = None  # the same metric in `allennlp evaluate`'s output (default: metric without best_validation_)
    per_language: Dict[str, str] = field(default_factory=dict)  # {lang: dev file}: a column per language
    also: List[Tuple[str, str]] = field(default_factory=list)  # further (metric, header) columns
    summary: bool = False  # the headline page: KD's gain, the teacher-student gap, speed and size
    encode_first: List[str] = field(default_factory=list)  # frozen-encoder teacher configs whose features are cached first
    command_env: str = ""  # variables the page's reproduction command needs, e.g. "STRUCTKD_ENCODER=<folder> "
    command_flags: str = ""  # options of `run` the page's reproduction command needs, e.g. "--drop-overlapping-transfer"
    # writes the files the runs read (idempotent); each is called with the run's PrepareOptions
    prepare: List[Callable[[PrepareOptions], Any]] = field(default_factory=list)
    notes: List[str] = field(default_factory=list)  # files of "name: text" lines the prepare steps wrote, for the page
    machine: str = "a 2-core CPU shared with other runs"  # where its runs were trained, for the page's time line
    # goals the page checks (share_of_teacher, speedup, size_ratio as %/x; kd_gain in points; wall_minutes)
    goals: Dict[str, float] = field(default_factory=dict)
    # a retention curve: {run: {lang: the transfer file it reads}}, the x of the `% of teacher` plot (its lines)
    transfer_of: Dict[str, Dict[str, str]] = field(default_factory=dict)
    # teachers trained with every seed, not the first only: a student of seed s distils from its teachers of seed s,
    # and `% of teacher` is taken against the mean over the teachers' seeds
    teacher_seeds: bool = False

    def seeds_of(self, run: Run, seeds: List[int]) -> List[int]:
        """The seeds ``run`` is trained with: every seed, or a teacher's first only (unless ``teacher_seeds``)."""
        return seeds[:1] if run.teacher and not self.teacher_seeds else list(seeds)

    def __post_init__(self):
        if self.eval_metric is None:
            self.eval_metric = self.metric.replace("best_validation_", "")
        names = [run.name for run in self.runs]
        if len(set(names)) != len(names):
            raise ValueError(f"a suite's run names must be unique: {names}")
        for run in self.runs:
            if run.spacy is not None and (run.teacher or run.finetune is not None or run.teachers):
                raise ValueError(f"run {run.name!r}: a spaCy pipeline is a row of its own (no teacher, nothing distilled)")
            if run.finetune is not None and not run.teacher:
                raise ValueError(f"run {run.name!r}: a fine-tuned token classifier is a teacher run (teacher=True)")
            for teacher in run.teachers:
                if teacher not in names:
                    raise ValueError(f"run {run.name!r} names teacher {teacher!r}, which is not a run of its suite")

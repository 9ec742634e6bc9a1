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


@dataclass
class Run:
    name: str  # row label in the table
    config: str  # relative to training_configs/
    env: Mapping[str, Union[str, TeacherRef]] = field(default_factory=dict)
    teacher: bool = False  # trained once (first seed only), before the students
    evaluate_on: Optional[str] = None  # also `allennlp evaluate` on this data (e.g. zero-shot)
    baseline: Optional[str] = None  # the run this one is tested against (Almost Stochastic Order)
    curve: Optional[Tuple[str, float]] = None  # (series, x): a point of the suite's plot
    lang: Optional[str] = None  # a per-language teacher's language (its gap to the students is taken there)

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

    def __post_init__(self):
        if self.eval_metric is None:
            self.eval_metric = self.metric.replace("best_validation_", "")
        names = [run.name for run in self.runs]
        if len(set(names)) != len(names):
            raise ValueError(f"a suite's run names must be unique: {names}")
        for run in self.runs:
            for teacher in run.teachers:
                if teacher not in names:
                    raise ValueError(f"run {run.name!r} names teacher {teacher!r}, which is not a run of its suite")

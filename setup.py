"""
allennlp-structkd. AllenNLP 2.10.1 itself pins torch<1.13 and cannot be resolved on Python 3.11, so
`make install` installs it with --no-deps after the requirements below; see README "Install".
"""
import os

from setuptools import find_packages, setup

here = os.path.dirname(os.path.abspath(__file__))


def requirements(name):
    with open(os.path.join(here, name)) as handle:
        lines = (line.split("#")[0].strip() for line in handle)
        return [line for line in lines if line and not line.startswith("-")]


version = {}
with open(os.path.join(here, "allennlp_structkd", "version.py")) as handle:
    exec(handle.read(), version)

setup(
    name="allennlp-structkd",
    version=version["VERSION"],
    description="Structural knowledge distillation for AllenNLP: exact structured inference, KD losses, spaCy shipping",
    long_description=open(os.path.join(here, "README.md"), encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.9",
    # the spaCy component is its own package (spacy_component/, structkd-spacy): it serves exported students
    # without AllenNLP, and owns the structkd_tagger factory
    # experiments/ (the results runner, the demo job, the sample-data writers) is tooling beside the library, run from
    # a checkout, and not installed with it
    packages=find_packages(include=["allennlp_structkd", "allennlp_structkd.*"]),
    package_data={"allennlp_structkd": ["py.typed"]},
    # the serving package, from this checkout (it is not on a package index): the library imports its one copy of the
    # algorithms a served student needs (`make install` installs both, editable)
    install_requires=requirements("requirements.txt")
    + [f"structkd-spacy @ file://{os.path.join(here, 'spacy_component')}"],
    # ray: `annotate --engine ray`, the teachers' work on a Ray Data actor pool (this machine or a cluster)
    extras_require={"dev": requirements("requirements-dev.txt"), "ray": ["ray[data]>=2.40"]},
    classifiers=[
        "Programming Language :: Python :: 3",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
)

# For a GPU machine with no package index only (benchmarks/gpu_bundle.sh puts it beside the wheels):
# ../shared/tools/cuda_py312/sitecustomize.py's stand-ins for modules that training never uses (spaCy,
# cloud storage clients) and for transformers 4.25's import-time tokenizers pin (the device has 0.23),
# with two changes: a stand-in class's instance is callable, returning what it is given, so that
# spaCy's `@Language.factory(...)` decorator (imported by --include-package) can be applied; and
# boto3/botocore, which only cached-path's S3 client imports, are stand-ins too (17 MB fewer wheels).
import importlib
import importlib.abc
import importlib.machinery
import sys
import types

STUB_PREFIXES = ("spacy", "boto3", "botocore", "google.cloud", "google.auth", "google.oauth2", "google.api_core", "google.resumable_media")
STUB_EXACT = {"transformers.dependency_versions_check"}
class _Meta(type):
    def __getattr__(cls, name):
        if name.startswith("__"):
            raise AttributeError(name)
        # a decorator factory such as Language.factory(...): its instance returns what it decorates
        return _Meta(name, (), {"__init__": lambda self, *a, **k: None, "__call__": lambda self, *a, **k: a[0] if a else None})
def _no_op(*args, **kwargs):
    return None


class _Stub(types.ModuleType):
    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        if name[:1].isupper():  # a class
            value = _Meta(name, (Exception,), {"__init__": lambda self, *a, **k: None})
        elif self.__name__ in STUB_EXACT:  # a function: a no-op
            value = _no_op
        else:  # a submodule
            value = importlib.import_module(self.__name__ + "." + name)
        setattr(self, name, value)
        return value
class _Finder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, fullname, path, target=None):
        if fullname in STUB_EXACT or any(fullname == p or fullname.startswith(p + ".") for p in STUB_PREFIXES):
            return importlib.machinery.ModuleSpec(fullname, self, is_package=True)
        return None
    def create_module(self, spec):
        return _Stub(spec.name)
    def exec_module(self, module):
        module.__path__ = []
sys.meta_path.insert(0, _Finder())

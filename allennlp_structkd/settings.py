"""Unknown settings in a config: an error naming the component, the key and the keys it has."""
import difflib
import inspect
from typing import Any, Dict

from allennlp.common import Registrable
from allennlp.common.checks import ConfigurationError


def _registered_name(instance: Any, base: type) -> str:
    for registrable in (c for c in type(instance).__mro__ if isinstance(c, type) and issubclass(c, Registrable)):
        for name in registrable.list_available():
            if registrable.resolve_class_name(name)[0] is type(instance):
                return name
    return type(instance).__name__


def reject_unknown_settings(instance: Any, base: type, kwargs: Dict[str, Any]) -> None:
    """
    Raise a :class:`ConfigurationError` for keys of ``kwargs`` that ``base.__init__`` (the AllenNLP
    class the project's constructors pass their remaining keyword arguments to) does not take,
    instead of the ``TypeError: unexpected keyword argument`` that would otherwise come from there.
    """
    accepted = set(inspect.signature(base.__init__).parameters)  # type: ignore[misc]  # the class, not an instance
    unknown = sorted(set(kwargs) - accepted)
    if not unknown:
        return
    valid = set(accepted)
    for cls in type(instance).__mro__:
        init = cls.__dict__.get("__init__")
        if init is not None:
            valid |= {name for name, p in inspect.signature(init).parameters.items()
                      if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)}
        if cls is base:
            break
    valid -= {"self", "vocab"}
    raise_unknown(f"{base.__name__} {_registered_name(instance, base)!r}", unknown, valid)


def raise_unknown(component: str, unknown, valid) -> None:
    """A :class:`ConfigurationError` naming ``component``, its unknown keys (with the closest valid key) and its keys."""
    hints = [f"{key!r} (did you mean {difflib.get_close_matches(key, valid, 1)[0]!r}?)"
             if difflib.get_close_matches(key, valid, 1) else repr(key) for key in sorted(unknown)]
    raise ConfigurationError(f"{component} has no setting {', '.join(hints)}; its settings are: {', '.join(sorted(valid))}")


def reject_unknown_arguments(component: str, function: Any, kwargs: Dict[str, Any], skip=("self", "cls")) -> None:
    """Raise for keys of ``kwargs`` that ``function`` (whose own ``**kwargs`` swallows anything) does not name."""
    valid = {name for name, p in inspect.signature(function).parameters.items()
             if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL) and name not in skip}
    unknown = set(kwargs) - valid
    if unknown:
        raise_unknown(component, unknown, valid)

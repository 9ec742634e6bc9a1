"""Crafted copies of a model archive: extra members, changed weights."""
import io
import tarfile
from typing import Callable, Dict, Iterable, Optional, Tuple

import torch


def rebuild(source: str, target: str, extra: Iterable[Tuple[str, bytes]] = (),
            weights: Optional[Callable[[Dict[str, torch.Tensor]], None]] = None) -> str:
    """``source``'s members written to ``target``, ``weights.th`` changed in place by ``weights``, then ``extra``
    members (any name, ``..`` and absolute ones included: tarfile writes what it is given)."""
    with tarfile.open(source) as archive:
        members = [(m, archive.extractfile(m).read() if m.isfile() else None) for m in archive.getmembers()]
    with tarfile.open(target, "w:gz") as out:
        for member, data in members:
            if member.name == "weights.th" and weights is not None:
                state = torch.load(io.BytesIO(data), map_location="cpu")
                weights(state)
                buffer = io.BytesIO()
                torch.save(state, buffer)
                data = buffer.getvalue()
                member.size = len(data)
            out.addfile(member, io.BytesIO(data) if data is not None else None)
        for name, data in extra:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            out.addfile(info, io.BytesIO(data))
    return target

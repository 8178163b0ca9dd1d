"""Reading pickles we did not write without running them: only plain containers and CPU tensors.

Several data sets ship as pickles of dicts, lists and torch tensors (ZINC's molecules, PyG 1.x objects).
A pickle can name any importable function and call it while loading; this unpickler resolves only the
globals a tensor needs and refuses every other one, naming it.
"""

import importlib
import io
import pickle
from pathlib import Path
from typing import Any

from repro.core.errors import ReproError


def _storage_from_bytes(serialized: bytes) -> Any:
    """A tensor storage pickled as torch.save bytes, read back with torch's weights-only loader."""
    import torch

    return torch.load(io.BytesIO(serialized), weights_only=True)


class TensorUnpickler(pickle.Unpickler):
    """Allows the globals of tensors and ordered dicts (plus ``extra``: (module, name) -> object)."""

    ALLOWED = {("torch._utils", "_rebuild_tensor_v2"), ("torch._utils", "_rebuild_tensor"),
               ("torch._tensor", "_rebuild_from_type_v2"), ("torch", "Tensor"), ("collections", "OrderedDict"),
               ("_codecs", "encode")}  # protocol 2 pickles bytes as _codecs.encode(str, "latin1")

    def __init__(self, file: Any, extra: dict[tuple[str, str], Any] | None = None) -> None:
        super().__init__(file)
        self.extra = extra or {}

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in self.extra:
            return self.extra[(module, name)]
        if (module, name) == ("torch.storage", "_load_from_bytes"):
            return _storage_from_bytes
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"the pickle asks for {module}.{name}, which plain data and tensors "
                                         "do not need")
        return getattr(importlib.import_module(module), name)


def load_tensor_pickle(path: Path, extra: dict[tuple[str, str], Any] | None = None) -> Any:
    """The pickle's content, or a ReproError naming the file when it asks for anything but data."""
    try:
        with open(path, "rb") as f:
            return TensorUnpickler(f, extra).load()
    except (pickle.UnpicklingError, EOFError, ValueError, AttributeError) as error:
        raise ReproError(f"{path} is not a plain pickle of data and tensors ({error}); refusing to load it (a "
                         "pickle can run code): replace it with the file from the data set's source") from error

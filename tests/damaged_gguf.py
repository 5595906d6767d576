"""A damaged copy of the embedded GGUF: a served model that has "forgotten", for the served-model tests.

Adds Gaussian noise (``scale`` times each tensor's own spread) to the feed-forward output
weights of some layers, requantized to the file's own type; everything else is copied.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable


def damage_gguf(source: Path, dest: Path, *, layers: Iterable[int] = range(8, 20), scale: float = 1.0,
                seed: int = 0) -> Path:
    """Write ``dest``: ``source`` with noisy ``blk.N.ffn_down.weight`` for ``layers``."""
    import gguf
    import numpy as np

    reader = gguf.GGUFReader(str(source))
    arch = reader.fields[gguf.Keys.General.ARCHITECTURE].contents()
    writer = gguf.GGUFWriter(str(dest), arch=arch, endianess=reader.endianess)
    for field in reader.fields.values():
        if field.name == gguf.Keys.General.ARCHITECTURE or field.name.startswith("GGUF."):
            continue
        kind = field.types[0]
        writer.add_key_value(field.name, field.contents(), kind,
                             sub_type=field.types[-1] if kind == gguf.GGUFValueType.ARRAY else None)
    rng = np.random.default_rng(seed)
    targets = {f"blk.{i}.ffn_down.weight" for i in layers}
    tensors = []
    for tensor in reader.tensors:
        data = tensor.data
        if tensor.name in targets:
            values = gguf.quants.dequantize(data, tensor.tensor_type)
            noisy = values + rng.normal(0, scale * values.std(), values.shape)
            data = gguf.quants.quantize(noisy.astype(np.float32), tensor.tensor_type)
        tensors.append(data)
        writer.add_tensor_info(tensor.name, data.shape, data.dtype, data.nbytes, tensor.tensor_type)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    for data in tensors:
        writer.write_tensor_data(data, tensor_endianess=reader.endianess)
    writer.close()
    return dest

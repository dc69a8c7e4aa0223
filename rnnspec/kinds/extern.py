"""A user's own layer (`extern layer NAME { ... }`): its shape and mask come from its declaration.

Its weights are the user's classes' business (their `weights` table or hooks), mapped at
verification time by rnnspec/equivalence/extern.py.
"""

from __future__ import annotations

from rnnspec.ir import Layer, LayerSchema, TensorValue
from rnnspec.kinds.base import Context, LayerKind, needs_sequence_message


class Extern(LayerKind):
    name = "extern"
    schema = LayerSchema((), {})  # each extern layer has its own: `layer.extern.schema`
    reads_mask = True  # a user's layer is given `mask=` whatever its mode

    def infer(self, layer: Layer, current: TensorValue, ctx: Context) -> list[TensorValue] | None:
        """The output of a user's layer, from its declared `output` shape and mask mode."""
        extern = layer.extern
        assert extern is not None
        report = ctx.report
        needs_time = extern.mask in ("keep", "produce") or "time" in extern.output
        if needs_time and not current.is_sequence:
            why = f"`mask = {extern.mask}`" if extern.mask != "consume" else "its `output` uses `time`"
            message = needs_sequence_message(layer, current, ctx.previous).replace(
                f"`{layer.kind}` needs a sequence", f"`{layer.kind}` ({why}) needs a sequence", 1
            )
            report.error(layer.pos, message)
            return None
        shape: list[int | None] = []
        for dim in extern.output:
            if dim == "time":
                shape.append(current.shape[0])
            elif dim == "*":
                shape.append(None)
            elif dim == "features":
                shape.append(current.shape[-1])
            elif isinstance(dim, str):
                shape.append(layer.attrs[dim])
                if layer.attrs[dim] <= 0:
                    report.error(
                        layer.where(dim),
                        f"`{dim}` of `{layer.name}` sets its output width, so it must be a positive integer, "
                        f"got `{layer.attrs[dim]}`",
                    )
                    return None
            else:
                shape.append(dim)
        if extern.mask == "keep" and extern.output[0] != "time":
            report.error(
                extern.field_pos["output"],
                f"`{extern.name}` keeps the mask (`mask = keep`), so its output keeps the time axis: "
                "write `output = [time, ...]`",
            )
            return None
        if extern.mask == "produce" and len(extern.output) != 2:
            report.error(
                extern.field_pos["output"],
                f"`{extern.name}` produces a mask over time (`mask = produce`), so its output is a sequence: "
                "write `output = [time, ...]` or `[*, ...]`",
            )
            return None
        return [TensorValue(layer.name, "float32", tuple(shape), self.mask_out(layer, current.masked))]

    def mask_out(self, layer: Layer, masked_in: bool) -> bool:
        assert layer.extern is not None
        return {"consume": False, "keep": masked_in, "produce": True}[layer.extern.mask]

    def keeps_mask(self, layer: Layer) -> bool:
        return False


EXTERN = Extern()

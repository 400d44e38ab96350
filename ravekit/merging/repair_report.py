"""What ``--repair`` did, in words (stderr) and in the recipe."""

from __future__ import annotations

from collections.abc import Sequence


def repair_summary(layers: Sequence, fidelity: float | None) -> list[str]:
    """Lines for stderr: how many layers were rescaled, how far their spread had collapsed, dead channels."""
    if not layers:
        return []
    spreads = sorted(layer.spread_before for layer in layers)
    worst = min(layers, key=lambda layer: layer.spread_before)
    dead = sum(layer.dead for layer in layers)
    lines = [f"--repair: rescaled the channels of {len(layers)} convolutions (per-channel scale only: RAVE v2 "
             f"layers have no bias to take a shift); before, the merge's channel RMS was "
             f"{spreads[len(spreads) // 2]:.3g} of the target (median over layers), lowest {worst.spread_before:.3g} "
             f"in {worst.name}"]
    if dead:
        lines.append(f"--repair: {dead} channel(s) were silent in the merge and left alone")
    if fidelity is not None:
        lines.append(f"--repair: latent PCA recomputed on the merged encoder; the exported dims keep "
                     f"{fidelity:.3g} of its variance (fidelity)")
    return lines


def repair_record(result, audio: Sequence | None) -> dict:
    """The recipe's ``repair`` entry."""
    if result.repair is None:
        return {"used": False}
    return {"used": True, "audio": [str(a) for a in audio or []], "statistic": "rms",
            "fidelity": result.fidelity,
            "layers": [{"name": layer.name, "channels": layer.channels, "rms_before": layer.spread_before,
                        "scale_min": layer.scale_min, "scale_max": layer.scale_max, "dead": layer.dead}
                       for layer in result.repair]}

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
    shifted = sum(layer.shifted for layer in layers)
    how = ("per-channel scale only: these layers have no bias to take a shift" if not shifted else
           f"{shifted} with a bias (v1's BatchNorm) took a scale and a shift, matching mean and std; the other "
           f"{len(layers) - shifted} a scale only: no bias to take a shift")
    lines = [f"--repair: rescaled the channels of {len(layers)} layers ({how}); before, the merge's channel "
             f"spread (RMS, or std where shifted) was {spreads[len(spreads) // 2]:.3g} of the target (median over "
             f"layers), lowest {worst.spread_before:.3g} in {worst.name}"]
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
    return {"used": True, "audio": [str(a) for a in audio or []],
            "statistic": "rms" if not any(layer.shifted for layer in result.repair) else "rms, or mean and std",
            "fidelity": result.fidelity,
            "layers": [{"name": layer.name, "channels": layer.channels, "rms_before": layer.spread_before,
                        "scale_min": layer.scale_min, "scale_max": layer.scale_max, "dead": layer.dead,
                        "shift": layer.shifted}
                       for layer in result.repair]}

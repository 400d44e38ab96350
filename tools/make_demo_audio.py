"""Write the demo's test piece: a few seconds of tones over noise, as WAV."""

import sys
from pathlib import Path


def main(argv=None) -> int:
    import soundfile as sf

    from ravekit.demo.model import demo_signal

    out = Path((argv or sys.argv[1:] or ["_demo/audio/melody.wav"])[0])
    out.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(out), demo_signal(44100, 6.0), 44100, subtype="FLOAT")
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())

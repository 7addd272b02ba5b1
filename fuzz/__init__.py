"""Fuzzing of every parser of untrusted bytes (the device codecs, the MQTT numerics parser, the MLLP decoder and
the HL7 ACK reader): not a package of the product. `make fuzz` runs `python -m fuzz` (a million inputs per
parser); tests/unit/test_codec_fuzz.py runs the same targets and checks, bounded, in `make test`.

- `oracle`: what must hold after every call, whatever the input (the parsers' contract).
- `seeds`: valid frames made with the simulators' encoders (written apart from the decoders), and protocol tokens.
- `mutate`: a fast seeded mutation loop (random bytes, bit flips, truncations, insertions, splices, chunk cuts).
- `targets`: one `Target` per parser, tying the three together.
- `run` (and `__main__`): the long run over worker processes, its report, crash files and `--replay`.
"""

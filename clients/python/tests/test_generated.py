"""The committed stubs are what scripts/generate.sh makes from the proto today."""

import filecmp
import os
import subprocess
import sys
from pathlib import Path

from stave import ErrorCode
from stave._proto.stave.v1 import stave_pb2

HERE = Path(__file__).resolve().parents[1]
COMMITTED = HERE / "stave" / "_proto" / "stave" / "v1"
FILES = ["stave_pb2.py", "stave_pb2.pyi", "stave_pb2_grpc.py"]


def test_committed_stubs_match_a_fresh_generation(tmp_path):
    env = dict(os.environ, PYTHON=sys.executable)
    subprocess.run(
        ["bash", str(HERE / "scripts" / "generate.sh"), "--out", str(tmp_path)],
        check=True,
        env=env,
    )
    stale = [f for f in FILES if not filecmp.cmp(tmp_path / f, COMMITTED / f, shallow=False)]
    assert not stale, f"stale generated files {stale}: run clients/python/scripts/generate.sh"


def test_error_code_mirrors_the_proto_enum():
    proto = {v.name: v.number for v in stave_pb2.DESCRIPTOR.enum_types_by_name["ErrorCode"].values}
    ours = {c.name: c.value for c in ErrorCode}
    assert ours == proto

